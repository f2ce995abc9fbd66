//! Admission control in front of GPU fleets: when every eligible replica is
//! at `max_concurrency`, a request waits in its model group's bounded queue,
//! most urgent first, until a slot frees or `queue_timeout_ms` passes; then
//! it is shed with 429 and `Retry-After`. The gateway never queues without
//! bound, and an admitted request's latency is never traded for a queued one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use http::HeaderMap;
use tokio::sync::oneshot;

use crate::error::ProxyError;

/// `x-switchyard-priority`: which waiting request gets the next free slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// Interactive traffic.
    High = 0,
    /// The default.
    Normal = 1,
    /// Batch traffic; waits behind everything else.
    Low = 2,
}

impl Priority {
    /// Reads the header; a value other than high, normal or low is a 400.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ProxyError> {
        Self::from_value(
            headers
                .get(crate::headers::names::X_PRIORITY)
                .map(|v| v.as_bytes()),
        )
        .ok_or_else(Self::invalid)
    }

    /// The header's value (none: normal); `None` for a value other than
    /// high, normal or low.
    pub fn from_value(value: Option<&[u8]>) -> Option<Self> {
        match value {
            None | Some(b"normal") => Some(Priority::Normal),
            Some(b"high") => Some(Priority::High),
            Some(b"low") => Some(Priority::Low),
            Some(_) => None,
        }
    }

    /// The 400 for a value other than high, normal or low.
    pub fn invalid() -> ProxyError {
        ProxyError::BadRequest {
            message: "header x-switchyard-priority must be high, normal or low".into(),
            param: None,
        }
    }
}

/// One wait queue per model group, shared across config generations.
#[derive(Debug, Default)]
pub struct Queues {
    /// Read by every attempt: a fast hasher (names are the config's).
    by_group: DashMap<String, Arc<GroupQueue>, foldhash::fast::RandomState>,
}

impl Queues {
    /// The queue of `group`.
    pub fn get(&self, group: &str) -> Arc<GroupQueue> {
        if let Some(q) = self.by_group.get(group) {
            return Arc::clone(&q);
        }
        Arc::clone(&self.by_group.entry(group.to_owned()).or_default())
    }
}

/// Waiters of one group, one FIFO per priority.
#[derive(Debug, Default)]
pub struct GroupQueue {
    waiters: Mutex<[VecDeque<oneshot::Sender<()>>; 3]>,
    /// Senders in `waiters` (live or not): lets a release with nobody
    /// waiting, every response's end in normal operation, skip the lock.
    queued: AtomicUsize,
}

impl GroupQueue {
    /// Joins the queue; `None` when `capacity` live waiters are already there.
    pub fn enqueue(&self, priority: Priority, capacity: usize) -> Option<oneshot::Receiver<()>> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for q in waiters.iter_mut() {
            q.retain(|tx| !tx.is_closed());
        }
        self.count(&waiters);
        if waiters.iter().map(VecDeque::len).sum::<usize>() >= capacity {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        waiters[priority as usize].push_back(tx);
        self.count(&waiters);
        // Pairs with the fence in `wake_one` (Dekker): either a release
        // that freed a slot sees this waiter, or the caller's look for a
        // slot, which comes after this, sees the freed slot.
        fence(Ordering::SeqCst);
        Some(rx)
    }

    /// A slot was released: wake the most urgent waiter still waiting.
    /// With nobody queued, one atomic load and no lock.
    pub fn wake_one(&self) {
        fence(Ordering::SeqCst);
        if self.queued.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        'all: for q in waiters.iter_mut() {
            while let Some(tx) = q.pop_front() {
                if tx.send(()).is_ok() {
                    break 'all;
                }
            }
        }
        self.count(&waiters);
    }

    fn count(&self, waiters: &[VecDeque<oneshot::Sender<()>>; 3]) {
        let n = waiters.iter().map(VecDeque::len).sum();
        self.queued.store(n, Ordering::Relaxed);
    }

    /// Requests waiting now (for the admin view and metrics).
    pub fn len(&self) -> usize {
        let waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        waiters
            .iter()
            .flatten()
            .filter(|tx| !tx.is_closed())
            .count()
    }

    /// Whether nobody waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Wakes one waiter of a group when dropped. Travels with a replica slot
/// and is declared after it, so the slot is free before the waiter looks.
#[derive(Debug)]
pub struct Release(pub Arc<GroupQueue>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.wake_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_is_woken_first_and_capacity_bounds_the_queue() {
        let q = GroupQueue::default();
        let mut low = q.enqueue(Priority::Low, 3).unwrap();
        let mut normal = q.enqueue(Priority::Normal, 3).unwrap();
        let mut high = q.enqueue(Priority::High, 3).unwrap();
        assert!(q.enqueue(Priority::High, 3).is_none(), "full");
        q.wake_one();
        assert!(high.try_recv().is_ok());
        assert!(normal.try_recv().is_err() && low.try_recv().is_err());
        q.wake_one();
        assert!(normal.try_recv().is_ok());
    }

    #[test]
    fn waiters_that_gave_up_are_skipped_and_free_their_place() {
        let q = GroupQueue::default();
        let gone = q.enqueue(Priority::High, 2).unwrap();
        let mut waiting = q.enqueue(Priority::Low, 2).unwrap();
        drop(gone);
        let mut normal = q
            .enqueue(Priority::Normal, 2)
            .expect("the dead waiter's place is free");
        q.wake_one();
        // The dead high-priority waiter is skipped; the normal one is woken.
        assert!(normal.try_recv().is_ok());
        assert!(waiting.try_recv().is_err());
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a_release_with_nobody_queued_has_nothing_to_look_at() {
        let q = GroupQueue::default();
        q.wake_one();
        assert_eq!(q.queued.load(Ordering::Relaxed), 0);
        let gone = q.enqueue(Priority::Normal, 4).unwrap();
        assert_eq!(q.queued.load(Ordering::Relaxed), 1);
        drop(gone);
        // The waiter left; the next release cleans it out, and releases
        // after that skip the lock again.
        q.wake_one();
        assert_eq!(q.queued.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn priority_header_is_validated() {
        let mut h = HeaderMap::new();
        assert_eq!(Priority::from_headers(&h).unwrap(), Priority::Normal);
        h.insert("x-switchyard-priority", "high".parse().unwrap());
        assert_eq!(Priority::from_headers(&h).unwrap(), Priority::High);
        h.insert("x-switchyard-priority", "urgent".parse().unwrap());
        assert!(Priority::from_headers(&h).is_err());
    }
}
