//! The LoRA adapters a vLLM engine reports in `vllm:lora_requests_info`:
//! one gauge whose labels carry the state, `running_lora_adapters` and
//! `waiting_lora_adapters` (comma-separated names) and `max_lora`.
//!
//! Each combination of labels is its own series and old ones stay on the
//! page; the value is the time the series was last set, so the newest one
//! is the state (the Inference Extension's `getLatestLoraMetric` reads it
//! the same way). Like it, series with no adapter at all are passed over
//! while another names some: vLLM lists adapters with requests in flight,
//! and the last series that named any approximates what is still loaded
//! (vLLM keeps adapters on the GPU until it needs their slot).

use memchr::memmem;
use switchyard_config::Engine;
use switchyard_router::Adapters;

const NAME: &str = "vllm:lora_requests_info";

/// The adapters on the page; `None` when the engine reports none (not
/// vLLM, or LoRA not enabled).
pub fn parse(engine: Engine, page: &[u8]) -> Option<Adapters> {
    if engine != Engine::Vllm {
        return None;
    }
    // (has adapters, time set, labels) of the best series so far.
    let mut best: Option<(bool, f64, &[u8])> = None;
    for at in memmem::find_iter(page, NAME.as_bytes()) {
        if at > 0 && page[at - 1] != b'\n' {
            continue;
        }
        let line = &page[at + NAME.len()..];
        let line = &line[..memchr::memchr(b'\n', line).unwrap_or(line.len())];
        let Some(rest) = line.strip_prefix(b"{") else {
            continue;
        };
        let Some(end) = memchr::memrchr(b'}', rest) else {
            continue;
        };
        let (labels, value) = (&rest[..end], &rest[end + 1..]);
        let Some(set) = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.split_ascii_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
        else {
            continue;
        };
        let named = !label(labels, "running_lora_adapters").is_empty()
            || !label(labels, "waiting_lora_adapters").is_empty();
        if best.is_none_or(|(n, t, _)| (named, set) > (n, t)) {
            best = Some((named, set, labels));
        }
    }
    let (_, _, labels) = best?;
    let names = |key: &str| -> Vec<String> {
        label(labels, key)
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Some(Adapters {
        running: names("running_lora_adapters"),
        waiting: names("waiting_lora_adapters"),
        max: label(labels, "max_lora").trim().parse().unwrap_or(0),
    })
}

/// The value of label `key` in a `k="v",k2="v2"` list ("" when absent).
/// Adapter names carry no quotes or backslashes, so escapes are not undone.
fn label<'a>(labels: &'a [u8], key: &str) -> &'a str {
    let mut rest = labels;
    while !rest.is_empty() {
        let Some(eq) = memchr::memchr(b'=', rest) else {
            break;
        };
        let k = rest[..eq].trim_ascii();
        let after = &rest[eq + 1..];
        let Some(v) = after.strip_prefix(b"\"") else {
            break;
        };
        let mut end = 0;
        while end < v.len() && !(v[end] == b'"' && (end == 0 || v[end - 1] != b'\\')) {
            end += 1;
        }
        if k == key.as_bytes() {
            return std::str::from_utf8(&v[..end]).unwrap_or("");
        }
        rest = v.get(end + 1..).unwrap_or(&[]);
        rest = rest.strip_prefix(b",").unwrap_or(rest);
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A vLLM page after `sql` ran, then `sql` and `chat` with `code`
    /// queued, then everything went idle (three series, as vLLM leaves them).
    const PAGE: &str = "\
# HELP vllm:lora_requests_info Running stats on lora requests.
# TYPE vllm:lora_requests_info gauge
vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"sql\",waiting_lora_adapters=\"\"} 1.7000001e+09
vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"sql,chat\",waiting_lora_adapters=\"code\"} 1.7000002e+09
vllm:lora_requests_info{max_lora=\"2\",running_lora_adapters=\"\",waiting_lora_adapters=\"\"} 1.7000003e+09
vllm:num_requests_waiting{model_name=\"base\"} 0.0
";

    #[test]
    fn the_newest_series_naming_adapters_is_the_state() {
        let a = parse(Engine::Vllm, PAGE.as_bytes()).unwrap();
        assert_eq!(a.running, ["sql", "chat"]);
        assert_eq!(a.waiting, ["code"]);
        assert_eq!(a.max, 2);
    }

    #[test]
    fn an_idle_engine_has_free_slots_and_other_engines_report_none() {
        let idle = "vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"\",waiting_lora_adapters=\"\"} 1.7e+09\n";
        let a = parse(Engine::Vllm, idle.as_bytes()).unwrap();
        assert!(a.running.is_empty() && a.waiting.is_empty());
        assert_eq!(a.max, 4);
        assert_eq!(parse(Engine::Vllm, b"vllm:num_requests_waiting 0\n"), None);
        assert_eq!(parse(Engine::Sglang, PAGE.as_bytes()), None);
    }
}
