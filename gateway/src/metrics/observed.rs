//! The response body wrapper that carries a request's [`Obs`] and
//! finishes it when the last byte has gone (or the body is dropped).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::observe::Obs;
use crate::proxy::body::{BoxError, ProxyBody};

/// A response body that finishes its request's [`Obs`] at its end.
pub(super) struct Observed {
    pub(super) inner: ProxyBody,
    pub(super) obs: Obs,
}

impl Body for Observed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.obs.on_write(data.len());
                }
                if this.inner.is_end_stream() || this.obs.remaining == Some(0) {
                    this.obs.finish(true);
                }
            }
            Poll::Ready(None) => this.obs.finish(true),
            Poll::Ready(Some(Err(_))) => this.obs.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
