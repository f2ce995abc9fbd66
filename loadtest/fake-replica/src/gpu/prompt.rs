//! The canonical prompt text and its chained block hashes: the contract a
//! prefix-cache-aware router must follow to predict this replica's cache.
//! The rule is written once, on [`crate::GpuModel`].

use serde::Deserialize;
use serde_json::Value;

/// The `messages` / `prompt` fields the rendering reads.
#[derive(Deserialize)]
struct Req {
    #[serde(default)]
    messages: Vec<Message>,
    prompt: Option<Value>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: Value,
}

/// The canonical prompt of a request to `path` (`/v1/chat/completions` or
/// `/v1/completions`; see [`crate::GpuModel`]), `None` for other paths or a
/// body that is not JSON. For tests that check a router's copy of the rule.
pub fn render_prompt(path: &str, body: &[u8]) -> Option<Vec<u8>> {
    match path {
        "/v1/chat/completions" => render_chat(body),
        "/v1/completions" => render_completion(body),
        _ => None,
    }
}

/// The canonical text of a chat request body (see the module docs);
/// `None` when the body is not JSON.
pub(crate) fn render_chat(body: &[u8]) -> Option<Vec<u8>> {
    let req: Req = serde_json::from_slice(body).ok()?;
    let mut out = Vec::new();
    for m in &req.messages {
        out.extend_from_slice(m.role.as_bytes());
        out.push(b'\n');
        match &m.content {
            Value::String(s) => out.extend_from_slice(s.as_bytes()),
            Value::Array(parts) => {
                for p in parts {
                    if p.get("type").and_then(Value::as_str) == Some("text")
                        && let Some(t) = p.get("text").and_then(Value::as_str)
                    {
                        out.extend_from_slice(t.as_bytes());
                    }
                }
            }
            _ => {}
        }
        out.push(b'\n');
    }
    Some(out)
}

/// The canonical text of a completions request body: its `prompt` string.
pub(crate) fn render_completion(body: &[u8]) -> Option<Vec<u8>> {
    let req: Req = serde_json::from_slice(body).ok()?;
    match req.prompt {
        Some(Value::String(s)) => Some(s.into_bytes()),
        _ => Some(Vec::new()),
    }
}

/// 64-bit FNV-1a of `prev` (little-endian) followed by `chunk`.
fn chained(prev: u64, chunk: &[u8]) -> u64 {
    prev.to_le_bytes()
        .iter()
        .chain(chunk)
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        })
}

/// The chained hashes of every full `block_bytes` chunk of `text` (none
/// when `block_bytes` is 0); see [`crate::GpuModel`].
pub fn block_hashes(text: &[u8], block_bytes: usize) -> Vec<u64> {
    if block_bytes == 0 {
        return Vec::new();
    }
    let mut prev = 0;
    text.chunks_exact(block_bytes)
        .map(|c| {
            prev = chained(prev, c);
            prev
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_renders_roles_and_text_parts() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"a\"b"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"c"}]},
            {"role":"assistant","content":null}]}"#;
        assert_eq!(
            render_chat(body).unwrap(),
            b"system\nbe brief\nuser\na\"bc\nassistant\n\n"
        );
        assert_eq!(render_chat(b"{}").unwrap(), b"");
        assert!(render_chat(b"nope").is_none());
        assert_eq!(
            render_prompt("/v1/chat/completions", body),
            render_chat(body)
        );
        assert!(render_prompt("/v1/embeddings", body).is_none());
    }

    #[test]
    fn completion_renders_the_prompt_string() {
        assert_eq!(
            render_completion(br#"{"prompt":"hi\nthere"}"#).unwrap(),
            b"hi\nthere"
        );
        assert_eq!(render_completion(br#"{"prompt":["a"]}"#).unwrap(), b"");
    }

    #[test]
    fn blocks_chain_and_drop_the_partial_tail() {
        assert_eq!(block_hashes(b"abcdefg", 3).len(), 2);
        assert!(block_hashes(b"ab", 3).is_empty());
        let a = block_hashes(b"xxxyyy", 3);
        let b = block_hashes(b"zzzyyy", 3);
        assert_ne!(a[1], b[1], "the same chunk after another prefix differs");
        assert_eq!(block_hashes(b"xxxyyyzzz", 3)[..2], a[..]);
        // Pinned so the gateway's copy of the rule can be checked against it.
        assert_eq!(a[0], chained(0, b"xxx"));
        assert_eq!(chained(0, b""), 0xa8c7_f832_281a_39c5);
    }
}
