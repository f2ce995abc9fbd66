//! The body type every answer uses, and the bodies the gateway writes
//! itself. A leaf: it imports nothing else from this crate.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// Error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the data plane sends.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A complete, in-memory body.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// The SSE event that ends a stream the replica broke. OpenAI clients treat
/// a `data:` line with an `error` object as a failed stream. The one
/// builder of it: cloud adapters that translate streams end them the same way.
pub(crate) fn sse_error_event(message: &str) -> Bytes {
    let body = serde_json::json!({
        "error": { "message": message, "type": "server_error", "param": null, "code": "upstream_stream_error" }
    });
    Bytes::from(format!("data: {body}\n\n"))
}

/// A resumable event stream broke (upstream error, cut, stall): the body
/// holding the replica's slot ends with this error instead of writing the
/// error event itself, so the resume layer above can continue the answer
/// elsewhere, or write the error event.
#[derive(Debug)]
pub(crate) struct StreamBroken(pub String);

impl std::fmt::Display for StreamBroken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StreamBroken {}
