//! ConverseStream's AWS event-stream framing, decoded into OpenAI SSE.
//!
//! Frames are decoded with `aws-smithy-eventstream` (prelude, headers,
//! payload and both CRCs checked). Events map to `chat.completion.chunk`s:
//! `messageStart` → the role chunk, `contentBlockDelta` → content,
//! `messageStop` → the `finish_reason` chunk, `metadata` → a usage chunk
//! (`choices: []`, as OpenAI sends with `include_usage`), then `[DONE]`.
//!
//! A stream is never passed on as complete unless it was: an exception
//! event, a broken frame, an upstream error or an end before `messageStop`
//! ends the SSE stream with an in-band error event and no `[DONE]`.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use serde_json::{Value, json};

use super::converse;
use crate::body::{BoxError, ProxyBody};

/// The translating body.
pub struct EventStreamToSse {
    inner: ProxyBody,
    buf: BytesMut,
    decoder: MessageFrameDecoder,
    id: String,
    model: String,
    created: u64,
    /// `messageStop`'s finish reason, once seen.
    stopped: bool,
    /// The stream has been ended (error event or `[DONE]` sent).
    done: bool,
}

impl EventStreamToSse {
    /// Translates `inner` (the replica's event-stream body).
    pub fn new(inner: ProxyBody, model: &str, id: String, created: u64) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            decoder: MessageFrameDecoder::new(),
            id,
            model: model.to_owned(),
            created,
            stopped: false,
            done: false,
        }
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> String {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        });
        if let Some(u) = usage {
            c["usage"] = u;
        }
        format!("data: {c}\n\n")
    }

    fn delta(&self, delta: Value, finish: Option<&str>) -> String {
        self.chunk(
            json!([{ "index": 0, "delta": delta, "finish_reason": finish }]),
            None,
        )
    }

    /// SSE text for one decoded message; sets `done` when it ends the stream.
    fn translate(&mut self, msg: &Message, out: &mut String) {
        let header = |name: &str| {
            msg.headers()
                .iter()
                .find(|h| h.name().as_str() == name)
                .and_then(|h| match h.value() {
                    HeaderValue::String(s) => Some(s.as_str().to_owned()),
                    _ => None,
                })
        };
        let payload: Value = serde_json::from_slice(msg.payload()).unwrap_or(Value::Null);
        if header(":message-type").as_deref() != Some("event") {
            let kind = header(":exception-type")
                .or_else(|| header(":error-code"))
                .unwrap_or_else(|| "exception".into());
            let message = payload.get("message").and_then(Value::as_str).map_or_else(
                || header(":error-message").unwrap_or_default(),
                str::to_owned,
            );
            out.push_str(&error_event(&format!("bedrock {kind}: {message}")));
            self.done = true;
            return;
        }
        match header(":event-type").as_deref() {
            Some("messageStart") => {
                out.push_str(&self.delta(json!({ "role": "assistant", "content": "" }), None));
            }
            Some("contentBlockDelta") => {
                if let Some(text) = payload.pointer("/delta/text").and_then(Value::as_str) {
                    out.push_str(&self.delta(json!({ "content": text }), None));
                }
            }
            Some("messageStop") => {
                let stop = payload
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                out.push_str(&self.delta(json!({}), Some(converse::finish_reason(stop))));
                self.stopped = true;
            }
            Some("metadata") => {
                if let Some(u) = converse::usage(payload.get("usage")) {
                    out.push_str(&self.chunk(json!([]), Some(u)));
                }
                if self.stopped {
                    out.push_str("data: [DONE]\n\n");
                    self.done = true;
                }
            }
            _ => {}
        }
    }
}

/// An in-band SSE error event (what `GuardedBody` sends for a broken stream).
fn error_event(message: &str) -> String {
    String::from_utf8_lossy(&crate::body::sse_error_event(message)).into_owned()
}

impl Body for EventStreamToSse {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let mut out = String::new();
            loop {
                match this.decoder.decode_frame(&mut this.buf) {
                    Ok(DecodedFrame::Complete(msg)) => {
                        this.translate(&msg, &mut out);
                        if this.done {
                            break;
                        }
                    }
                    Ok(DecodedFrame::Incomplete) => break,
                    Err(e) => {
                        out.push_str(&error_event(&format!("bedrock stream is malformed: {e}")));
                        this.done = true;
                        break;
                    }
                }
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    this.done = true;
                    let event = error_event(&format!("replica stream failed: {e}"));
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
                }
                None => {
                    this.done = true;
                    let event = if this.stopped {
                        // messageStop came but no metadata: complete, no usage.
                        "data: [DONE]\n\n".to_owned()
                    } else {
                        error_event("replica ended the stream before messageStop")
                    };
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(event)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::Header;
    use http_body_util::BodyExt;

    use super::*;
    use crate::body::full;

    fn event(kind: &str, payload: Value) -> Vec<u8> {
        let msg = Message::new(Bytes::from(payload.to_string()))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String("event".into()),
            ))
            .add_header(Header::new(
                ":event-type",
                HeaderValue::String(kind.to_owned().into()),
            ))
            .add_header(Header::new(
                ":content-type",
                HeaderValue::String("application/json".into()),
            ));
        let mut out = Vec::new();
        write_message_to(&msg, &mut out).unwrap();
        out
    }

    async fn translate(bytes: Vec<u8>) -> Vec<String> {
        let body = EventStreamToSse::new(full(bytes), "m", "id".into(), 1);
        let out = body.collect().await.unwrap().to_bytes();
        String::from_utf8(out.to_vec())
            .unwrap()
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: ").map(str::to_owned))
            .collect()
    }

    #[tokio::test]
    async fn a_full_stream_becomes_chunks_usage_and_done() {
        let mut bytes = event("messageStart", json!({"role":"assistant"}));
        bytes.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex":0,"delta":{"text":"Hel"}}),
        ));
        bytes.extend(event(
            "contentBlockDelta",
            json!({"contentBlockIndex":0,"delta":{"text":"lo"}}),
        ));
        bytes.extend(event("contentBlockStop", json!({"contentBlockIndex":0})));
        bytes.extend(event("messageStop", json!({"stopReason":"end_turn"})));
        bytes.extend(event(
            "metadata",
            json!({"usage":{"inputTokens":5,"outputTokens":2,"totalTokens":7}}),
        ));
        let events = translate(bytes).await;
        assert_eq!(events.len(), 6, "{events:?}");
        let text: String = events[..3]
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(text, "Hello");
        let stop: Value = serde_json::from_str(&events[3]).unwrap();
        assert_eq!(stop["choices"][0]["finish_reason"], "stop");
        let usage: Value = serde_json::from_str(&events[4]).unwrap();
        assert_eq!(usage["usage"]["completion_tokens"], 2);
        assert_eq!(events[5], "[DONE]");
    }

    #[tokio::test]
    async fn a_cut_stream_ends_with_an_error_and_no_done() {
        let mut bytes = event("messageStart", json!({"role":"assistant"}));
        bytes.extend(event("contentBlockDelta", json!({"delta":{"text":"Hel"}})));
        let events = translate(bytes).await;
        assert!(
            events.last().unwrap().contains("before messageStop"),
            "{events:?}"
        );
        assert!(!events.iter().any(|e| e == "[DONE]"));
        // A frame cut in half is malformed too, never complete.
        let mut bytes = event("messageStart", json!({}));
        let half = event("messageStop", json!({"stopReason":"end_turn"}));
        bytes.extend(&half[..half.len() / 2]);
        let events = translate(bytes).await;
        assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    }
}
