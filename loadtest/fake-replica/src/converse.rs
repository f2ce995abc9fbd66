//! Bedrock Converse answers: JSON for `converse`, AWS event-stream frames
//! for `converse-stream` (messageStart, contentBlockDelta per token,
//! contentBlockStop, messageStop, metadata with usage).

use std::collections::VecDeque;

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue as EsValue, Message};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::Shared;
use crate::cloud::aws_error;
use crate::fault::Fault;
use crate::handler::{FakeBody, Kind, json, with_name};
use crate::stream::{EventStream, Slot};

/// Answers a Converse / ConverseStream request.
pub(crate) fn answer(
    shared: &Shared,
    stream: bool,
    body: &[u8],
    slot: Slot,
    fault: Option<&Fault>,
) -> Response<FakeBody> {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return validation(shared, &format!("invalid JSON: {e}")),
    };
    let Some(messages) = req.get("messages").and_then(Value::as_array) else {
        return validation(shared, "messages is required");
    };
    if messages
        .first()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        != Some("user")
    {
        return validation(shared, "A conversation must start with a user message.");
    }
    let roles: Vec<&str> = messages
        .iter()
        .filter_map(|m| m.get("role")?.as_str())
        .collect();
    if roles.windows(2).any(|w| w[0] == w[1]) {
        return validation(
            shared,
            "A conversation must alternate between user and assistant roles.",
        );
    }
    let cap = req
        .pointer("/inferenceConfig/maxTokens")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let n = u64::from(shared.cfg.tokens).min(cap);
    let stop = if n < u64::from(shared.cfg.tokens) {
        "max_tokens"
    } else {
        "end_turn"
    };
    let input = (body.len() / 4).max(1) as u64;
    let usage = json!({ "inputTokens": input, "outputTokens": n, "totalTokens": input + n });
    if !stream {
        let text: Vec<String> = (0..n).map(|i| format!("tok{i}")).collect();
        let out = json!({
            "output": { "message": { "role": "assistant", "content": [{ "text": text.join(" ") }] } },
            "stopReason": stop,
            "usage": usage,
            "metrics": { "latencyMs": 1 },
        });
        return json(shared, StatusCode::OK, out.to_string());
    }
    let mut events = VecDeque::with_capacity(n as usize + 4);
    events.push_back(frame("messageStart", json!({ "role": "assistant" })));
    for i in 0..n {
        events.push_back(frame(
            "contentBlockDelta",
            json!({ "contentBlockIndex": 0, "delta": { "text": format!("tok{i} ") } }),
        ));
    }
    events.push_back(frame("contentBlockStop", json!({ "contentBlockIndex": 0 })));
    events.push_back(frame("messageStop", json!({ "stopReason": stop })));
    events.push_back(frame(
        "metadata",
        json!({ "usage": usage, "metrics": { "latencyMs": 1 } }),
    ));
    if let Some(Fault::CutStream { after_tokens }) = fault {
        events.truncate(1 + (*after_tokens as usize).min(n as usize));
    }
    let mut resp = Response::new(EventStream::new(events, shared.cfg.inter_token, slot).boxed());
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    with_name(shared, resp)
}

fn validation(shared: &Shared, message: &str) -> Response<FakeBody> {
    aws_error(
        shared,
        StatusCode::BAD_REQUEST,
        "ValidationException",
        message,
    )
}

/// One event-stream frame (prelude, headers, payload, CRCs).
fn frame(event: &str, payload: Value) -> Bytes {
    let msg = Message::new(Bytes::from(payload.to_string()))
        .add_header(Header::new(
            ":event-type",
            EsValue::String(event.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            EsValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            EsValue::String("event".into()),
        ));
    let mut out = Vec::new();
    // Writing to a Vec only fails for oversized headers, which these are not.
    let _ = write_message_to(&msg, &mut out);
    Bytes::from(out)
}

/// Answers a SageMaker invocation of an OpenAI-compatible container: the
/// OpenAI answer itself, or (streaming) its SSE bytes in `PayloadPart`
/// event-stream frames, as InvokeEndpointWithResponseStream sends them.
pub(crate) async fn sagemaker(
    shared: &Shared,
    stream: bool,
    body: &[u8],
    slot: Slot,
    fault: Option<&Fault>,
) -> Response<FakeBody> {
    let chat = memchr_messages(body);
    let kind = if chat { Kind::Chat } else { Kind::Completion };
    let resp = crate::openai::answer(shared, kind, body, slot, fault).await;
    if !stream || !resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    let framed = body
        .map_frame(|f| {
            f.map_data(|d| {
                let msg = Message::new(d)
                    .add_header(Header::new(
                        ":event-type",
                        EsValue::String("PayloadPart".into()),
                    ))
                    .add_header(Header::new(
                        ":message-type",
                        EsValue::String("event".into()),
                    ));
                let mut out = Vec::new();
                let _ = write_message_to(&msg, &mut out);
                Bytes::from(out)
            })
        })
        .boxed();
    Response::from_parts(parts, framed)
}

fn memchr_messages(body: &[u8]) -> bool {
    body.windows(10).any(|w| w == b"\"messages\"")
}
