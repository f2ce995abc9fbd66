//! OpenAI chat completions <-> Bedrock Converse JSON.
//!
//! Request: `messages` (system and developer messages become Converse's
//! `system` blocks; consecutive turns of one role are merged, as Converse
//! requires alternating roles), `max_tokens` / `max_completion_tokens`,
//! `temperature`, `top_p`, `stop` into `inferenceConfig`. Content is text
//! (a string or `text` parts); images, tools and tool results are refused
//! with a 400 naming the field rather than silently dropped.
//!
//! Response: the assistant text, `stopReason` mapped to `finish_reason`,
//! and `usage` in OpenAI's names. Errors (`{"message": ...}` with
//! `x-amzn-ErrorType`) become OpenAI's `{"error": {...}}`.

use serde_json::{Map, Value, json};

/// Converse request body for an OpenAI chat request body.
pub fn request(body: &[u8]) -> Result<Vec<u8>, String> {
    let req: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let messages = req
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("`messages` must be an array")?;
    let mut system = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let blocks =
            text_blocks(m.get("content")).map_err(|e| format!("messages[{i}].content: {e}"))?;
        match role {
            "system" | "developer" => system.extend(blocks),
            "user" | "assistant" => match turns.last_mut() {
                Some((last, content)) if last == role => content.extend(blocks),
                _ => turns.push((role.to_owned(), blocks)),
            },
            other => {
                return Err(format!(
                    "messages[{i}].role `{other}` is not supported by bedrock replicas (tools are not translated)"
                ));
            }
        }
    }
    if turns.is_empty() {
        return Err("`messages` needs at least one user message".into());
    }
    let mut out = Map::new();
    out.insert(
        "messages".into(),
        turns
            .into_iter()
            .map(|(role, content)| json!({ "role": role, "content": content }))
            .collect(),
    );
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let mut cfg = Map::new();
    if let Some(n) = req
        .get("max_completion_tokens")
        .or(req.get("max_tokens"))
        .filter(|v| !v.is_null())
    {
        cfg.insert(
            "maxTokens".into(),
            n.as_u64()
                .ok_or("`max_tokens` must be a positive integer")?
                .into(),
        );
    }
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(v) = req.get(from).filter(|v| !v.is_null()) {
            cfg.insert(
                to.into(),
                v.as_f64()
                    .ok_or(format!("`{from}` must be a number"))?
                    .into(),
            );
        }
    }
    match req.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            cfg.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            cfg.insert("stopSequences".into(), Value::Array(a.clone()));
        }
        Some(_) => return Err("`stop` must be a string or an array of strings".into()),
    }
    if req.get("tools").is_some_and(|t| !t.is_null()) {
        return Err("`tools` are not translated for bedrock replicas yet".into());
    }
    if !cfg.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(cfg));
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| e.to_string())
}

/// `[{"text": ...}]` from an OpenAI `content` (string or parts).
fn text_blocks(content: Option<&Value>) -> Result<Vec<Value>, String> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![json!({ "text": s })]),
        Some(Value::Array(parts)) => parts
            .iter()
            .map(
                |p| match (p.get("type").and_then(Value::as_str), p.get("text")) {
                    (Some("text"), Some(Value::String(t))) => Ok(json!({ "text": t })),
                    (ty, _) => Err(format!(
                        "content part type `{}` is not supported by bedrock replicas",
                        ty.unwrap_or("?")
                    )),
                },
            )
            .collect(),
        Some(_) => Err("must be a string or an array of parts".into()),
    }
}

/// OpenAI `finish_reason` for a Converse `stopReason`.
pub fn finish_reason(stop: &str) -> &'static str {
    match stop {
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        "content_filtered" | "guardrail_intervened" => "content_filter",
        _ => "stop",
    }
}

/// OpenAI `usage` from Converse `usage`, when present.
pub fn usage(u: Option<&Value>) -> Option<Value> {
    let u = u?;
    let input = u.get("inputTokens")?.as_u64()?;
    let output = u.get("outputTokens")?.as_u64()?;
    Some(json!({
        "prompt_tokens": input,
        "completion_tokens": output,
        "total_tokens": u.get("totalTokens").and_then(Value::as_u64).unwrap_or(input + output),
    }))
}

/// A `chat.completion` for a Converse response body.
pub fn response(body: &[u8], model: &str, id: &str, created: u64) -> Result<Value, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("replica sent invalid JSON: {e}"))?;
    let text: String = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter_map(|b| b.get("text")?.as_str())
                .collect()
        })
        .unwrap_or_default();
    let stop = v
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let mut out = json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text },
            "finish_reason": finish_reason(stop),
        }],
    });
    if let Some(u) = usage(v.get("usage")) {
        out["usage"] = u;
    }
    Ok(out)
}

/// OpenAI's error JSON for an AWS error answer (`{"message": ...}`, the
/// error type in `x-amzn-ErrorType`, e.g. `AccessDeniedException:http://…`).
pub fn error(status: u16, error_type: Option<&str>, body: &[u8]) -> Value {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message").or(v.get("Message")))
        .and_then(Value::as_str)
        .map_or_else(
            || String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            str::to_owned,
        );
    let code = error_type.map(|t| t.split(':').next().unwrap_or(t).to_owned());
    let ty = match status {
        401 | 403 => "authentication_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    };
    json!({ "error": { "message": format!("bedrock: {message}"), "type": ty, "param": null, "code": code } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_becomes_converse() {
        let body = br#"{"model":"m","messages":[
            {"role":"system","content":"be brief"},
            {"role":"user","content":"hi"},
            {"role":"user","content":[{"type":"text","text":"there"}]},
            {"role":"assistant","content":"hello"},
            {"role":"user","content":"more"}],
            "max_tokens":7,"temperature":0.5,"top_p":0.9,"stop":"END","stream":true}"#;
        let out: Value = serde_json::from_slice(&request(body).unwrap()).unwrap();
        assert_eq!(
            out,
            json!({
                "messages": [
                    {"role":"user","content":[{"text":"hi"},{"text":"there"}]},
                    {"role":"assistant","content":[{"text":"hello"}]},
                    {"role":"user","content":[{"text":"more"}]}
                ],
                "system": [{"text":"be brief"}],
                "inferenceConfig": {"maxTokens":7,"temperature":0.5,"topP":0.9,"stopSequences":["END"]}
            })
        );
    }

    #[test]
    fn what_cannot_be_translated_is_refused_by_name() {
        for (body, needle) in [
            (
                &br#"{"messages":[{"role":"tool","content":"x"}]}"#[..],
                "messages[0].role",
            ),
            (
                br#"{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}"#,
                "image_url",
            ),
            (br#"{"messages":[]}"#, "at least one"),
            (
                br#"{"messages":[{"role":"user","content":"x"}],"stop":7}"#,
                "`stop`",
            ),
        ] {
            let err = request(body).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn converse_answer_becomes_chat_completion() {
        let body = br#"{"output":{"message":{"role":"assistant","content":[{"text":"Hi "},{"text":"there"}]}},
            "stopReason":"max_tokens","usage":{"inputTokens":12,"outputTokens":3,"totalTokens":15},"metrics":{"latencyMs":5}}"#;
        let out = response(body, "anthropic.claude", "chatcmpl-1", 7).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "Hi there");
        assert_eq!(out["choices"][0]["finish_reason"], "length");
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens":12,"completion_tokens":3,"total_tokens":15})
        );
    }

    #[test]
    fn aws_errors_become_openai_errors() {
        let e = error(
            403,
            Some("AccessDeniedException:http://internal.amazon.com/"),
            br#"{"message":"The request signature we calculated does not match"}"#,
        );
        assert_eq!(e["error"]["type"], "authentication_error");
        assert_eq!(e["error"]["code"], "AccessDeniedException");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("signature")
        );
    }
}
