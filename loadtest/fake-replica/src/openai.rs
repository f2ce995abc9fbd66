//! OpenAI-shaped answers: chat, completions (both also streamed) and embeddings.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::Shared;
use crate::fault::Fault;
use crate::handler::{FakeBody, Kind, error, json, with_name};
use crate::stream::{EventStream, Slot};
use crate::token_ids;

#[derive(Deserialize)]
struct Req<'a> {
    #[serde(borrow)]
    model: Option<std::borrow::Cow<'a, str>>,
    stream: Option<bool>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    /// vLLM's prefill: continue the final (assistant) message.
    continue_final_message: Option<bool>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    /// Completions: text, or (vLLM) a list of token ids.
    #[serde(borrow)]
    prompt: Option<&'a RawValue>,
    /// vLLM's: stream the prompt's and each chunk's token ids.
    return_token_ids: Option<bool>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: Option<String>,
}

/// `{"error": {...}}` as OpenAI sends it.
pub(crate) fn error_json(msg: &str, ty: &str) -> String {
    format!(
        r#"{{"error":{{"message":{},"type":"{ty}","param":null,"code":null}}}}"#,
        quote(msg)
    )
}

/// The 400 OpenAI-compatible servers send for a prompt longer than the
/// model's context window, which a gateway must not retry elsewhere.
pub(crate) fn context_length_exceeded(
    shared: &Shared,
    kind: Kind,
    body: &[u8],
) -> Response<FakeBody> {
    let prompt = (body.len() / 4).max(1) + 4096;
    let msg = format!(
        "This model's maximum context length is 4096 tokens. However, you requested \
         {prompt} tokens. Please reduce the length of the messages."
    );
    if kind == Kind::Kserve {
        return error(shared, kind, StatusCode::BAD_REQUEST, &msg);
    }
    let param = match kind {
        Kind::Completion => "prompt",
        Kind::Embedding => "input",
        _ => "messages",
    };
    let body = format!(
        r#"{{"error":{{"message":{},"type":"invalid_request_error","param":"{param}","code":"context_length_exceeded"}}}}"#,
        quote(&msg)
    );
    json(shared, StatusCode::BAD_REQUEST, body)
}

/// A JSON string literal.
pub(crate) fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// `GET /v1/models`.
pub(crate) fn models(shared: &Shared) -> Response<FakeBody> {
    let body = format!(
        r#"{{"object":"list","data":[{{"id":{},"object":"model","created":0,"owned_by":"fake"}}]}}"#,
        quote(&shared.cfg.model)
    );
    json(shared, StatusCode::OK, body)
}

/// Answers chat, completions and embeddings, applying `fault` to streams
/// (and `slow_first_token` to every answer).
pub(crate) async fn answer(
    shared: &Shared,
    kind: Kind,
    body: &[u8],
    slot: Slot,
    fault: Option<&Fault>,
) -> Response<FakeBody> {
    let req: Req<'_> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                shared,
                kind,
                StatusCode::BAD_REQUEST,
                &format!("invalid JSON: {e}"),
            );
        }
    };
    let Some(model) = req.model else {
        return error(
            shared,
            kind,
            StatusCode::BAD_REQUEST,
            "missing required parameter: 'model'",
        );
    };
    let model = quote(&model);
    let streaming = req.stream == Some(true);
    if let (false, Some(Fault::SlowFirstToken { delay_ms })) = (streaming, fault) {
        tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
    }
    let want_ids = req.return_token_ids == Some(true);
    // Token ids: the prompt's (counted as vLLM counts them when asked for
    // or given), and where a token-id prompt's answer goes on.
    let (prompt_ids, start) = match kind {
        Kind::Completion => match token_ids::completion_prompt(req.prompt) {
            Ok(_) if matches!(fault, Some(Fault::RejectTokenIds)) => {
                let msg = "a prompt of token ids is not supported by this server";
                return error(shared, kind, StatusCode::BAD_REQUEST, msg);
            }
            Ok(ids) => {
                let at = token_ids::continues_at(&ids);
                (Some(ids), at)
            }
            Err(ids) => (want_ids.then_some(ids), 0),
        },
        _ => (want_ids.then(|| token_ids::chat_prompt(req.messages)), 0),
    };
    let prompt_tokens = prompt_ids
        .as_ref()
        .map_or((body.len() / 4).max(1), Vec::len);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if kind == Kind::Embedding {
        return embeddings(shared, &model, req.input, prompt_tokens);
    }
    let prefill = match prefilled(req.continue_final_message, req.messages) {
        Some(_) if matches!(fault, Some(Fault::RejectPrefill)) => {
            let msg = "continue_final_message is not supported by this server";
            return error(shared, kind, StatusCode::BAD_REQUEST, msg);
        }
        Some(text) => text,
        None => String::new(),
    };
    let salt = matches!(fault, Some(Fault::Nondeterministic)).then(|| fastrand::u32(..));
    let (first, mut pieces) = canned(shared.cfg.tokens, salt, &prefill, start);
    let cap = req
        .max_completion_tokens
        .or(req.max_tokens)
        .unwrap_or(u32::MAX) as usize;
    let finish = if cap < pieces.len() { "length" } else { "stop" };
    pieces.truncate(cap);
    let n = pieces.len() as u32;
    let usage = format!(
        r#"{{"prompt_tokens":{prompt_tokens},"completion_tokens":{n},"total_tokens":{}}}"#,
        prompt_tokens + n as usize
    );
    let fp = quote(&shared.cfg.name);
    let id = format!("fake-{:x}", fastrand::u64(..));
    if !streaming {
        let text: String = pieces.concat();
        let text = quote(text.trim_end());
        let body = if kind == Kind::Chat {
            format!(
                r#"{{"id":"{id}","object":"chat.completion","created":{created},"model":{model},"system_fingerprint":{fp},"choices":[{{"index":0,"message":{{"role":"assistant","content":{text}}},"finish_reason":"{finish}"}}],"usage":{usage}}}"#
            )
        } else {
            format!(
                r#"{{"id":"{id}","object":"text_completion","created":{created},"model":{model},"system_fingerprint":{fp},"choices":[{{"index":0,"text":{text},"finish_reason":"{finish}"}}],"usage":{usage}}}"#
            )
        };
        return json(shared, StatusCode::OK, body);
    }
    let (object, delta): (&str, fn(&str) -> String) = if kind == Kind::Chat {
        ("chat.completion.chunk", |c| {
            format!(r#""delta":{{"content":{c}}}"#)
        })
    } else {
        ("text_completion", |c| format!(r#""text":{c}"#))
    };
    let head = format!(
        r#"{{"id":"{id}","object":"{object}","created":{created},"model":{model},"system_fingerprint":{fp},"#
    );
    let event = |rest: String| Bytes::from(format!("data: {head}{rest}}}\n\n"));
    let mut events = VecDeque::with_capacity(n as usize + 4);
    // vLLM: the prompt's ids on the first chunk (a chat chunk's own field,
    // a completion's first choice's), each chunk's ids on its choice.
    let prompt_json = prompt_ids
        .as_deref()
        .filter(|_| want_ids)
        .map(token_ids::json);
    let ids = |k: Option<u32>| match (want_ids, k) {
        (false, _) => String::new(),
        (true, Some(k)) => format!(r#","token_ids":[{}]"#, token_ids::answer_id(k)),
        (true, None) => r#","token_ids":[]"#.to_owned(),
    };
    if kind == Kind::Chat {
        let prompt = prompt_json
            .as_ref()
            .map_or(String::new(), |p| format!(r#""prompt_token_ids":{p},"#));
        events.push_back(event(format!(
            r#"{prompt}"choices":[{{"index":0,"delta":{{"role":"assistant","content":""}},"finish_reason":null}}]"#
        )));
    }
    for (j, piece) in pieces.iter().enumerate() {
        let piece = delta(&quote(piece));
        let ids = ids(Some(first + j as u32));
        let prompt = match (&prompt_json, kind, j) {
            (Some(p), Kind::Completion, 0) => format!(r#","prompt_token_ids":{p}"#),
            _ => String::new(),
        };
        events.push_back(event(format!(
            r#""choices":[{{"index":0,{piece},"finish_reason":null{prompt}{ids}}}]"#
        )));
    }
    let empty = delta("\"\"");
    let ids = ids(None);
    events.push_back(event(format!(
        r#""choices":[{{"index":0,{empty},"finish_reason":"{finish}"{ids}}}]"#
    )));
    events.push_back(event(format!(r#""choices":[],"usage":{usage}"#)));
    events.push_back(Bytes::from_static(b"data: [DONE]\n\n"));
    let lead = usize::from(kind == Kind::Chat);
    let stream = misbehave(events, lead, n, fault, shared.cfg.inter_token, slot);
    let mut resp = Response::new(stream.boxed());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    with_name(shared, resp)
}

/// The content of a final assistant message the request asks to continue
/// (`continue_final_message: true`), if it does.
fn prefilled(continue_final: Option<bool>, messages: Option<&RawValue>) -> Option<String> {
    if continue_final != Some(true) {
        return None;
    }
    let messages: Vec<Message> = serde_json::from_str(messages?.get()).ok()?;
    let last = messages.into_iter().last()?;
    (last.role == "assistant").then(|| last.content.unwrap_or_default())
}

/// The canned answer's token texts from token `start` (`tok0 `, `tok1 `,
/// ...; with a `salt`, `tok0-<salt> `...) after `prefix`: a prefix of the
/// canned answer is continued where it stops (mid-token too), like a model
/// continuing its own text; any other prefix gets the whole answer. With
/// the number of the first token.
fn canned(tokens: u32, salt: Option<u32>, prefix: &str, start: u32) -> (u32, Vec<String>) {
    let mut pieces: Vec<String> = (start.min(tokens)..tokens)
        .map(|i| match salt {
            Some(s) => format!("tok{i}-{s:x} "),
            None => format!("tok{i} "),
        })
        .collect();
    let mut left = prefix;
    let mut skip = 0;
    for piece in &pieces {
        if left.is_empty() {
            break;
        }
        if let Some(rest) = left.strip_prefix(piece.as_str()) {
            left = rest;
            skip += 1;
        } else if piece.starts_with(left) {
            break;
        } else {
            return (start, pieces);
        }
    }
    pieces.drain(..skip);
    if let Some(first) = pieces.first_mut() {
        first.drain(..left.len().min(first.len()));
    }
    (start + skip as u32, pieces)
}

/// Applies a stream fault to the rendered events: `lead` events come before
/// the `n` token events, then finish, usage and `[DONE]`.
fn misbehave(
    mut events: VecDeque<Bytes>,
    lead: usize,
    n: u32,
    fault: Option<&Fault>,
    gap: Duration,
    slot: Slot,
) -> EventStream {
    let at = |k: &u32| lead + (*k).min(n) as usize;
    let mut stall = false;
    let mut delay = Duration::ZERO;
    match fault {
        Some(Fault::CutStream { after_tokens }) => events.truncate(at(after_tokens)),
        Some(Fault::StallStream { after_tokens }) => {
            events.truncate(at(after_tokens));
            stall = true;
        }
        Some(Fault::MalformedEvent { after_tokens }) => {
            events.insert(at(after_tokens), Bytes::from_static(b"data: {not json\n\n"));
        }
        Some(Fault::OmitDone) => {
            events.pop_back();
        }
        Some(Fault::SlowFirstToken { delay_ms }) => delay = Duration::from_millis(*delay_ms),
        _ => {}
    }
    let stream = EventStream::new(events, gap, slot).first_after(delay);
    if stall { stream.stall_at_end() } else { stream }
}

fn embeddings(
    shared: &Shared,
    model: &str,
    input: Option<&RawValue>,
    prompt_tokens: usize,
) -> Response<FakeBody> {
    let inputs: Vec<&RawValue> = match input {
        None => {
            let msg = "missing required parameter: 'input'";
            return error(shared, Kind::Embedding, StatusCode::BAD_REQUEST, msg);
        }
        Some(raw) if raw.get().trim_start().starts_with('[') => {
            serde_json::from_str(raw.get()).unwrap_or_default()
        }
        Some(raw) => vec![raw],
    };
    let data: Vec<String> = inputs
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            // Deterministic per input: a hash spread over 8 dimensions.
            let h = raw.get().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
            let v: Vec<String> = (0..8)
                .map(|k| format!("{:.4}", ((h >> (k * 8)) & 0xff) as f64 / 255.0))
                .collect();
            format!(
                r#"{{"object":"embedding","index":{i},"embedding":[{}]}}"#,
                v.join(",")
            )
        })
        .collect();
    let body = format!(
        r#"{{"object":"list","data":[{}],"model":{model},"usage":{{"prompt_tokens":{prompt_tokens},"total_tokens":{prompt_tokens}}}}}"#,
        data.join(",")
    );
    json(shared, StatusCode::OK, body)
}

#[cfg(test)]
mod tests {
    use super::canned;

    #[test]
    fn a_prefix_of_the_answer_is_continued_where_it_stops() {
        let text = |t, p| canned(t, None, p, 0).1;
        assert_eq!(text(3, ""), ["tok0 ", "tok1 ", "tok2 "]);
        assert_eq!(
            canned(3, None, "tok0 ", 0),
            (1, vec!["tok1 ".into(), "tok2 ".into()])
        );
        assert_eq!(text(3, "tok0 to"), ["k1 ", "tok2 "]);
        assert_eq!(text(3, "tok0 tok1 tok2 "), Vec::<String>::new());
        assert_eq!(text(2, "something else"), ["tok0 ", "tok1 "]);
        assert_ne!(canned(2, Some(1), "", 0), canned(2, Some(2), "", 0));
        assert_eq!(
            canned(4, None, "", 2),
            (2, vec!["tok2 ".into(), "tok3 ".into()])
        );
    }
}
