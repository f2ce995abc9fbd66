//! A replica's response body, from either way of reaching it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::pool::PooledBody;
use crate::body::BoxError;

/// The body of a replica's answer: from hyper-util's pooled client
/// (HTTPS, HTTP/2), or from a connection of our own that this body drives.
pub enum UpstreamBody {
    /// The connection runs in a task of its own.
    Legacy(Incoming),
    /// The connection is polled by this body (see `pool.rs`).
    Pooled(PooledBody),
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UpstreamBody::Legacy(_) => "UpstreamBody::Legacy",
            UpstreamBody::Pooled(_) => "UpstreamBody::Pooled",
        })
    }
}

impl From<Incoming> for UpstreamBody {
    fn from(body: Incoming) -> Self {
        UpstreamBody::Legacy(body)
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            UpstreamBody::Legacy(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
            UpstreamBody::Pooled(b) => Pin::new(b).poll_frame(cx).map_err(BoxError::from),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Legacy(b) => b.is_end_stream(),
            UpstreamBody::Pooled(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Legacy(b) => b.size_hint(),
            UpstreamBody::Pooled(b) => b.size_hint(),
        }
    }
}
