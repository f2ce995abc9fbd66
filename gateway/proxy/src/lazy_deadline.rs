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

use std::pin::Pin;
use std::task::{Context, Poll, ready};

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
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

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
}
