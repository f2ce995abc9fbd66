//! The response body wrapper that carries a request's observer and
//! finishes it when the last byte has gone (or the body is dropped).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Response, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

use crate::body::{BoxError, ProxyBody};
use crate::observe::{OutcomeSlot, RequestObserver, StreamOutcome};

/// Hands `resp` to `obs` and moves `obs` into its body, which finishes it
/// at its end (`slot`: where a replica's body records how it ended; an
/// answer no replica gave records nothing there).
pub(crate) fn respond(
    mut obs: Box<dyn RequestObserver>,
    slot: OutcomeSlot,
    resp: Response<ProxyBody>,
) -> Response<ProxyBody> {
    let stream = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    obs.respond(resp.status(), stream);
    if resp.body().is_end_stream() {
        obs.stream_end(slot.get().unwrap_or(StreamOutcome::Complete));
        obs.finish(true);
        return resp;
    }
    let remaining = resp.body().size_hint().exact();
    resp.map(|inner| {
        Observed {
            inner,
            obs,
            slot,
            remaining,
            finished: false,
        }
        .boxed()
    })
}

/// A response body that finishes its request's observer at its end.
struct Observed {
    inner: ProxyBody,
    obs: Box<dyn RequestObserver>,
    /// How the replica's side ended, when a replica answered.
    slot: OutcomeSlot,
    /// Body bytes still to send when the length is known: hyper stops
    /// polling a sized body once it has that many, without a final `None`.
    remaining: Option<u64>,
    finished: bool,
}

impl Observed {
    fn finish(&mut self, completed: bool) {
        if !std::mem::replace(&mut self.finished, true) {
            let outcome = self.slot.get();
            self.obs.stream_end(outcome.unwrap_or(if completed {
                StreamOutcome::Complete
            } else {
                StreamOutcome::ClientGone
            }));
            self.obs.finish(completed);
        }
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        self.finish(false);
    }
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
                    let len = data.len();
                    if let Some(left) = &mut this.remaining {
                        *left = left.saturating_sub(len as u64);
                    }
                    this.obs.on_write(len);
                }
                if this.inner.is_end_stream() || this.remaining == Some(0) {
                    this.finish(true);
                }
            }
            Poll::Ready(None) => this.finish(true),
            Poll::Ready(Some(Err(_))) => this.finish(false),
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
