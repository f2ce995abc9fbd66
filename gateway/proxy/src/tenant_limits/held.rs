//! The response body carrying a request's [`Admission`]: dropping the body
//! (after its last byte, or when the client leaves) frees the tenant's
//! in-flight place and settles an unbooked reservation.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::Admission;
use crate::body::{BoxError, ProxyBody};

pub(super) struct Held {
    inner: ProxyBody,
    _admission: Admission,
}

impl Held {
    pub(super) fn new(inner: ProxyBody, admission: Admission) -> Self {
        Self {
            inner,
            _admission: admission,
        }
    }
}

impl Body for Held {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
