//! `GET /metrics`: the Prometheus text a vLLM server exposes, with vLLM's
//! names and its `model_name` label, so engine-signal scraping can be tested
//! against a fake replica (GPU-like or not; a plain one reports cache 0).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use crate::Shared;
use crate::handler::{FakeBody, with_name};

/// The exposition, rendered from the replica's live counts.
pub(crate) fn render(shared: &Shared) -> String {
    let waiting = shared.admission.queued();
    let running = shared
        .in_flight
        .load(Ordering::Acquire)
        .saturating_sub(waiting);
    let (usage, (queries, hits)) = shared
        .gpu
        .as_ref()
        .map_or((0.0, (0, 0)), |g| (g.usage(), g.counters()));
    let label = format!("{{model_name={}}}", crate::openai::quote(&shared.cfg.model));
    let mut out = String::with_capacity(1024);
    let families: [(&str, &str, &str, String); 6] = [
        (
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            running.to_string(),
        ),
        (
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            waiting.to_string(),
        ),
        (
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            usage.to_string(),
        ),
        (
            "vllm:gpu_cache_usage_perc",
            "gauge",
            "GPU KV-cache usage. 1 means 100 percent usage.",
            usage.to_string(),
        ),
        (
            "vllm:prefix_cache_queries",
            "counter",
            "Prefix cache queries, in blocks.",
            queries.to_string(),
        ),
        (
            "vllm:prefix_cache_hits",
            "counter",
            "Prefix cache hits, in blocks.",
            hits.to_string(),
        ),
    ];
    for (name, ty, help, value) in families {
        let sample = if ty == "counter" {
            format!("{name}_total")
        } else {
            name.to_owned()
        };
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {ty}\n{sample}{label} {value}\n"
        );
    }
    if let Some(sample) = shared.gpu.as_ref().and_then(|g| g.lora_sample()) {
        out.push_str("# HELP vllm:lora_requests_info Running stats on lora requests.\n");
        out.push_str("# TYPE vllm:lora_requests_info gauge\n");
        out.push_str(&sample);
    }
    out
}

/// The `/metrics` answer.
pub(crate) fn metrics(shared: &Shared) -> Response<FakeBody> {
    let mut resp = Response::new(Full::new(Bytes::from(render(shared))).boxed());
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    with_name(shared, resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GpuModel, ReplicaConfig};

    fn value(text: &str, sample: &str) -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{sample}{{")))
            .unwrap_or_else(|| panic!("no {sample} in\n{text}"));
        let v = line.rsplit(' ').next().unwrap_or_default();
        v.parse().unwrap_or_else(|_| panic!("bad value in {line}"))
    }

    #[test]
    fn plain_replica_reports_gauges_and_zero_cache() {
        let shared = Shared::new(ReplicaConfig::default(), false);
        let text = render(&shared);
        assert!(text.contains("# TYPE vllm:num_requests_waiting gauge\n"));
        assert!(text.contains("# TYPE vllm:prefix_cache_hits counter\n"));
        assert!(text.contains("vllm:num_requests_running{model_name=\"fake-model\"} 0\n"));
        for s in ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"] {
            assert_eq!(value(&text, s), 0.0);
        }
        assert_eq!(value(&text, "vllm:prefix_cache_queries_total"), 0.0);
    }

    #[test]
    fn gpu_replica_reports_cache_usage_and_block_counters() {
        let gpu = GpuModel {
            cache_blocks: 8,
            cache_block_bytes: 4,
            ..GpuModel::default()
        };
        let cfg = ReplicaConfig {
            gpu: Some(gpu),
            ..ReplicaConfig::default()
        };
        let shared = Shared::new(cfg, false);
        let g = shared.gpu.as_ref().unwrap();
        // "abcdefghij" renders to 10 bytes: 2 full blocks of 4.
        let body = br#"{"prompt":"abcdefghij"}"#;
        for _ in 0..2 {
            let p = g.plan(crate::handler::Kind::Completion, body, "m").unwrap();
            g.commit(&p);
        }
        let text = render(&shared);
        assert_eq!(value(&text, "vllm:prefix_cache_queries_total"), 4.0);
        assert_eq!(value(&text, "vllm:prefix_cache_hits_total"), 2.0);
        assert_eq!(value(&text, "vllm:kv_cache_usage_perc"), 0.25);
        assert_eq!(value(&text, "vllm:gpu_cache_usage_perc"), 0.25);
    }
}
