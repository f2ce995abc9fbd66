//! The AWS event-stream decoder (Bedrock ConverseStream → OpenAI SSE),
//! fed arbitrary frames cut anywhere: it never panics, and what it writes
//! is SSE whose `data:` payloads are JSON or `[DONE]`.
#![no_main]

mod chunks;

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use switchyard_proxy::BoxError;
use switchyard_proxy::adapter::eventstream::EventStreamToSse;

/// A body that yields the given chunks, then ends.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fuzz_target!(|data: &[u8]| {
    let (chunks, _) = chunks::split(data);
    let inner = Chunks(chunks.iter().map(|c| Bytes::copy_from_slice(c)).collect());
    let mut body = EventStreamToSse::new(inner.boxed(), "m", "id".to_owned(), 0);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    for _ in 0..10_000 {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(d) = frame.into_data() {
                    out.extend_from_slice(&d);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => break,
            Poll::Pending => panic!("a body that is always ready never waits"),
        }
    }
    let text = String::from_utf8(out).expect("SSE out is UTF-8");
    for line in text.lines() {
        if let Some(payload) = line.strip_prefix("data: ") {
            assert!(
                payload == "[DONE]" || serde_json::from_str::<serde_json::Value>(payload).is_ok(),
                "{payload}"
            );
        }
    }
});
