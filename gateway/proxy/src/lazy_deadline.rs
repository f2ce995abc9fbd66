//! A deadline that moves later often and is looked at rarely: a stream's
//! idle timeout (pushed back by every event), its keep-alive (by every
//! chunk), a keep-alive connection's wait for its next request head.
//!
//! Moving a registered tokio timer is a lock on the worker's timer wheel
//! and an unlink and relink; registering one that is the earliest also
//! wakes the worker's event loop (an `eventfd` write and one more
//! `epoll_wait`). Here the timer is registered once and left where it is
//! while the deadline moves on; when it fires early it is re-armed for
//! the deadline as it is then. A deadline that moves on every chunk costs
//! one timer registration per timeout instead of one per chunk.
//!
//! It also bounds waits that are usually over before they start ([`within`],
//! [`LazyDeadline::run`]): a request body that came with its head, a
//! replica's answer body that came with its head. tokio's `timeout` sets up
//! its timer up front (a reference to the runtime, atomic, taken and let go;
//! for a duration, a clock read); here none of that happens unless the
//! future has to wait.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The timer behind a moving deadline; none until first waited on.
#[derive(Debug, Default)]
pub struct LazyDeadline {
    // Boxed: it stays where it was registered, and its owner (a body, a
    // connection's future) moves and stays small until it waits.
    timer: Option<Pin<Box<Sleep>>>,
}

impl LazyDeadline {
    /// Ready once `deadline` (the latest one: it may have moved since the
    /// last call) has passed; registers this task's wake-up for it.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() > deadline {
            // Moved earlier (not how its users move it, but exact anyway).
            timer.as_mut().reset(deadline);
        }
        loop {
            ready!(timer.as_mut().poll(cx));
            if timer.deadline() >= deadline {
                return Poll::Ready(());
            }
            // It fired for a deadline that has moved on since.
            timer.as_mut().reset(deadline);
        }
    }

    /// `fut`'s output, or `None` once `deadline` has passed first. The
    /// timer is set up only if `fut` has to wait, and kept for the next
    /// wait on `self`.
    pub async fn run<F: Future>(&mut self, deadline: Instant, fut: F) -> Option<F::Output> {
        let mut fut = pin!(fut);
        poll_fn(|cx| match fut.as_mut().poll(cx) {
            Poll::Ready(out) => Poll::Ready(Some(out)),
            Poll::Pending => self.poll_expired(cx, deadline).map(|()| None),
        })
        .await
    }
}

/// `fut`'s output, or `None` when it takes longer than `limit` (counted
/// from its first wait). Unlike `tokio::time::timeout`, a future that is
/// ready at once costs no clock read and no timer.
pub async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut timer = LazyDeadline::default();
    let mut deadline = None;
    poll_fn(|cx| match fut.as_mut().poll(cx) {
        Poll::Ready(out) => Poll::Ready(Some(out)),
        Poll::Pending => {
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + limit);
            timer.poll_expired(cx, deadline).map(|()| None)
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_fires_at_the_deadline_as_it_is_when_the_timer_fires() {
        let start = Instant::now();
        let mut d = LazyDeadline::default();
        let mut deadline = start + Duration::from_secs(10);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(d.poll_expired(&mut cx, deadline).is_pending());
        // Moved on twice before the first timer fires: still one wait.
        tokio::time::sleep(Duration::from_secs(4)).await;
        deadline = start + Duration::from_secs(14);
        assert!(d.poll_expired(&mut cx, deadline).is_pending());
        tokio::time::sleep(Duration::from_secs(4)).await;
        deadline = start + Duration::from_secs(18);
        poll_fn(|cx| d.poll_expired(cx, deadline)).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(18));
        // A deadline moved earlier is kept too.
        let mut d = LazyDeadline::default();
        let far = Instant::now() + Duration::from_secs(60);
        assert!(d.poll_expired(&mut cx, far).is_pending());
        let near = Instant::now() + Duration::from_secs(1);
        poll_fn(|cx| d.poll_expired(cx, near)).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(19));
    }

    #[tokio::test(start_paused = true)]
    async fn a_bounded_wait_ends_at_its_limit_or_with_its_future() {
        let start = Instant::now();
        // Ready at once: no timer ever.
        let mut d = LazyDeadline::default();
        assert_eq!(d.run(start, async { 7 }).await, Some(7));
        assert!(d.timer.is_none());
        assert_eq!(within(Duration::ZERO, async { 8 }).await, Some(8));
        // Waits past the deadline: none, at the deadline.
        let late = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(d.run(start + Duration::from_secs(3), late).await, None);
        assert_eq!(Instant::now() - start, Duration::from_secs(3));
        // The kept timer serves a later, longer wait.
        let soon = async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            9
        };
        assert_eq!(d.run(start + Duration::from_secs(10), soon).await, Some(9));
        let never = std::future::pending::<()>();
        assert_eq!(d.run(start + Duration::from_secs(10), never).await, None);
        assert_eq!(Instant::now() - start, Duration::from_secs(10));
        // `within` counts from the first wait.
        let slow = tokio::time::sleep(Duration::from_secs(3));
        assert_eq!(within(Duration::from_secs(2), slow).await, None);
        assert_eq!(Instant::now() - start, Duration::from_secs(12));
    }
}
