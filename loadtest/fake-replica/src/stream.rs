//! What an inference request holds while it is answered: its place in the
//! in-flight count (and GPU slot), and the SSE body that carries it to the end.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Sleep;

use crate::Shared;

/// One request counted in `in_flight`, with its GPU slot if it has one;
/// released on drop (for streams, when the body is dropped: after the last
/// chunk or when the client leaves).
pub(crate) struct Slot {
    shared: Arc<Shared>,
    pub(crate) count: u32,
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

impl Slot {
    pub(crate) fn take(shared: &Arc<Shared>) -> Self {
        let count = shared.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        Self {
            shared: Arc::clone(shared),
            count,
            permit: None,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An SSE body: pre-rendered events, `gap` apart, holding the slot.
pub(crate) struct EventStream {
    events: VecDeque<Bytes>,
    gap: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    /// After the last event, never end (a stalled generation).
    stall: bool,
    _slot: Slot,
}

impl EventStream {
    pub(crate) fn new(events: VecDeque<Bytes>, gap: Duration, slot: Slot) -> Self {
        Self {
            events,
            gap,
            sleep: None,
            stall: false,
            _slot: slot,
        }
    }

    /// Waits `delay` before the first event (headers are already sent).
    pub(crate) fn first_after(mut self, delay: Duration) -> Self {
        if !delay.is_zero() {
            self.sleep = Some(Box::pin(tokio::time::sleep(delay)));
        }
        self
    }

    /// After the last event, sends nothing and never ends; the body (and its
    /// slot) goes when the client leaves or the replica shuts down.
    pub(crate) fn stall_at_end(mut self) -> Self {
        self.stall = true;
        self
    }
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(sleep) = self.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        let Some(event) = self.events.pop_front() else {
            return if self.stall {
                Poll::Pending
            } else {
                Poll::Ready(None)
            };
        };
        if !self.gap.is_zero() && !self.events.is_empty() {
            self.sleep = Some(Box::pin(tokio::time::sleep(self.gap)));
        }
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    fn is_end_stream(&self) -> bool {
        self.events.is_empty() && !self.stall
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
