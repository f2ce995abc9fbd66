//! Token-exact resume (`resume: token_ids`), the way NVIDIA Dynamo's
//! request migration continues a generation: the replica is asked for its
//! token ids (vLLM's `return_token_ids`: the first chat chunk carries the
//! prompt's `prompt_token_ids`, every choice its `token_ids`), and a
//! broken answer goes on as a `/v1/completions` request whose `prompt` is
//! the prompt's ids followed by the ids generated so far, `max_tokens`
//! lowered by those. The new replica sees exactly the sequence the old
//! one had; no text is re-tokenized, no chat template re-applied.
//!
//! This file: asking for the ids, hiding them from a client that did not,
//! the continuation's body, and its completion chunks made chat chunks.

use bytes::{Bytes, BytesMut};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The ids of the answer so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenIds {
    /// The prompt as the replica tokenized it (chat template applied).
    pub prompt: Vec<u32>,
    /// What it generated, in order.
    pub generated: Vec<u32>,
}

/// Most ids (prompt and generated) remembered per stream, 256 KiB like
/// the text (`delivered::MAX_REMEMBERED`); past it the stream is
/// continued from its text instead (Dynamo's `--migration-max-seq-len`).
pub const MAX_IDS: usize = 64 << 10;

/// `body` (a JSON object) asking for token ids: `"return_token_ids":true`
/// goes last, where a parser that keeps the last of a duplicated key (as
/// vLLM's does) takes it over a client's `false`.
pub fn ask(body: &Bytes) -> Bytes {
    let Some(end) = body.iter().rposition(|b| *b == b'}') else {
        return body.clone();
    };
    const FIELD: &[u8] = br#","return_token_ids":true"#;
    let mut out = BytesMut::with_capacity(body.len() + FIELD.len());
    out.extend_from_slice(&body[..end]);
    out.extend_from_slice(FIELD);
    out.extend_from_slice(&body[end..]);
    out.freeze()
}

/// Whether the client asked for token ids itself (then it gets them).
pub fn client_asked(body: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Asked {
        return_token_ids: Option<bool>,
    }
    memchr::memmem::find(body, b"return_token_ids").is_some()
        && serde_json::from_slice::<Asked>(body).is_ok_and(|a| a.return_token_ids == Some(true))
}

/// The event for `data` without the ids the gateway asked for: the
/// chunk's `prompt_token_ids`, each choice's `token_ids`. `None`: nothing
/// to take out (not a JSON object, or no ids).
pub fn strip(data: &[u8]) -> Option<Bytes> {
    memchr::memmem::find(data, b"token_ids")?;
    let mut chunk: Map<String, Value> = serde_json::from_slice(data).ok()?;
    chunk.remove("prompt_token_ids");
    if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
        for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
            choice.remove("token_ids");
            choice.remove("prompt_token_ids");
        }
    }
    let json = serde_json::to_string(&chunk).ok()?;
    Some(Bytes::from(format!("data: {json}\n\n")))
}

/// Why the client's request cannot be continued from token ids on
/// `/v1/completions` (whose output is plain text), if it cannot: tool
/// calls and structured output are parsed or constrained by the chat
/// endpoint from the answer's start; chat log probabilities have another
/// shape; several choices cannot share one sequence.
pub fn unsuited(request: &Map<String, Value>) -> Option<&'static str> {
    let set = |key: &str| request.get(key).is_some_and(|v| !v.is_null());
    let tools = request
        .get("tools")
        .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()))
        && request.get("tool_choice").and_then(Value::as_str) != Some("none");
    if tools || set("functions") {
        return Some("the request offers tools");
    }
    let format = request
        .get("response_format")
        .and_then(|f| f.get("type"))
        .and_then(Value::as_str);
    let guided = [
        "guided_json",
        "guided_regex",
        "guided_choice",
        "guided_grammar",
    ];
    if format.is_some_and(|t| t != "text")
        || set("structured_outputs")
        || guided.iter().any(|k| set(k))
    {
        return Some("the request asks for structured output");
    }
    if request.get("logprobs").and_then(Value::as_bool) == Some(true) {
        return Some("the request asks for log probabilities");
    }
    if request
        .get("n")
        .and_then(Value::as_u64)
        .is_some_and(|n| n > 1)
    {
        return Some("the request asks for several choices");
    }
    None
}

/// Chat-only fields a `/v1/completions` request must not carry.
const CHAT_ONLY: [&str; 18] = [
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "functions",
    "function_call",
    "response_format",
    "logprobs",
    "top_logprobs",
    "max_completion_tokens",
    "add_generation_prompt",
    "continue_final_message",
    "chat_template",
    "chat_template_kwargs",
    "documents",
    "echo",
    "reasoning_effort",
    "include_reasoning",
];

/// The `/v1/completions` body that continues `request` (the client's chat
/// request) after `ids`: same sampling, the id sequence as `prompt`, the
/// token caps lowered by what was generated, ids asked for again (a
/// second break resumes the same way).
pub fn body(
    request: &Map<String, Value>,
    model_name: &str,
    ids: &TokenIds,
) -> Result<Bytes, String> {
    let mut body = request.clone();
    let done = ids.generated.len() as u64;
    let cap = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);
    for key in CHAT_ONLY {
        body.remove(key);
    }
    if let Some(cap) = cap {
        let left = cap.saturating_sub(done);
        if left == 0 {
            return Err("the answer had used all its max_tokens".to_owned());
        }
        body.insert("max_tokens".into(), left.into());
    }
    if let Some(min) = body.get("min_tokens").and_then(Value::as_u64) {
        body.insert("min_tokens".into(), min.saturating_sub(done).into());
    }
    let prompt: Vec<u32> = ids.prompt.iter().chain(&ids.generated).copied().collect();
    body.insert("model".into(), model_name.into());
    body.insert("prompt".into(), prompt.into());
    body.insert("stream".into(), true.into());
    body.insert("return_token_ids".into(), true.into());
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| format!("request body: {e}"))
}

/// `/v1/chat/completions` → `/v1/completions` (any prefix kept).
pub fn path(chat_path: &str) -> String {
    match chat_path.strip_suffix("chat/completions") {
        Some(base) => format!("{base}completions"),
        None => chat_path.to_owned(),
    }
}

/// Makes a completion chunk (`text_completion`) a chat chunk: each
/// choice's `text` becomes `delta.content`; its `token_ids` stay (the
/// caller records, then strips them), its `prompt_token_ids` go.
pub fn to_chat(chunk: &mut Map<String, Value>) {
    if chunk.contains_key("object") {
        chunk.insert("object".into(), "chat.completion.chunk".into());
    }
    let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
        return;
    };
    for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
        choice.remove("prompt_token_ids");
        let text = choice.remove("text").unwrap_or_else(|| "".into());
        let mut delta = Map::new();
        delta.insert("content".into(), text);
        choice.insert("delta".into(), Value::Object(delta));
        choice.insert("logprobs".into(), Value::Null);
    }
}

#[cfg(test)]
#[path = "token_ids_tests.rs"]
mod tests;
