//! GPU-server admission: `slots` requests generate at once, up to `queue`
//! more wait their turn in arrival order, the rest are turned away.
//!
//! This is how vLLM, TGI or Triton behave under load: latency grows with the
//! queue depth (a waiting request starts only when a running one finishes),
//! and a full queue answers 429. 429 rather than 503 because the replica is
//! healthy, only busy, and that is what TGI sends ("model is overloaded").

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Slots and queue of one replica.
pub(crate) struct Admission {
    slots: Option<Arc<Semaphore>>,
    queue: Option<u32>,
    queued: AtomicU32,
}

/// The queue is full: answer 429.
pub(crate) struct Full;

impl Admission {
    /// `slots: None` admits everything at once; `queue: None` is unbounded.
    pub(crate) fn new(slots: Option<u32>, queue: Option<u32>) -> Self {
        Self {
            slots: slots.map(|n| Arc::new(Semaphore::new(n as usize))),
            queue,
            queued: AtomicU32::new(0),
        }
    }

    /// Requests waiting for a slot right now.
    pub(crate) fn queued(&self) -> u32 {
        self.queued.load(Ordering::Acquire)
    }

    /// Waits for a slot (FIFO: tokio's semaphore is fair). The permit is held
    /// until the answer is fully sent, so a stream keeps its slot while it
    /// generates. `Ok(None)` when there are no slots to take.
    pub(crate) async fn admit(&self) -> Result<Option<OwnedSemaphorePermit>, Full> {
        let Some(slots) = &self.slots else {
            return Ok(None);
        };
        if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
            return Ok(Some(permit));
        }
        let max = self.queue.unwrap_or(u32::MAX);
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q < max).then_some(q + 1)
            })
            .map_err(|_| Full)?;
        let _waiting = Waiting(&self.queued);
        // The semaphore is never closed, so acquiring cannot fail.
        Arc::clone(slots)
            .acquire_owned()
            .await
            .map(Some)
            .map_err(|_| Full)
    }
}

/// One request counted in `queued`, until it gets a slot or gives up.
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_slot_one_queue_then_full() {
        let a = Arc::new(Admission::new(Some(1), Some(1)));
        let first = a.admit().await.ok().flatten().expect("slot");
        let a2 = Arc::clone(&a);
        let second = tokio::spawn(async move { a2.admit().await.ok().flatten().is_some() });
        while a.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(a.admit().await.is_err(), "queue full");
        drop(first);
        assert!(second.await.expect("joins"));
        assert_eq!(a.queued(), 0);
    }
}
