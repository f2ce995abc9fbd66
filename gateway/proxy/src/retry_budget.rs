//! The gateway-wide retry budget: within any 10 s, retries may be at most
//! 20 % of the requests of those 10 s plus 10 per second (Finagle's and
//! Linkerd's shape), so an outage cannot turn into a retry storm.
//!
//! Why a window and not a token bucket with a fixed bank: a replica that
//! dies breaks every stream it serves at once (about a third of the
//! streams in flight when it is one of three), and each of them needs a
//! resume in the same instant. A fixed bank (we had 100) is drained by
//! that at any traffic level above a few hundred streams; a window's
//! allowance grows with the traffic that produced those streams, while a
//! storm (every request retried) is still held to a fifth.
//!
//! Lock-free: ten one-second slices, each an atomic holding the second it
//! counts and its count (requests, and separately retries). A withdrawal
//! reads the window and then counts itself, so retries racing on several
//! workers can overshoot by at most one each. Time is tokio's clock, so
//! tests pause it and advance it instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

/// Seconds a request or a retry counts for.
const WINDOW_SECS: u64 = 10;
/// Retries earned per request: 20 %, as a ratio.
const PERCENT: u64 = 20;
/// Retries always allowed per window: 10 per second.
const RESERVE: u64 = 10 * WINDOW_SECS;

/// Counts per second over the last [`WINDOW_SECS`] seconds.
#[derive(Debug, Default)]
struct Window {
    /// `second << 32 | count` for the slice `second % WINDOW_SECS`.
    slices: [AtomicU64; WINDOW_SECS as usize],
}

impl Window {
    fn add(&self, second: u64) {
        let slice = &self.slices[(second % WINDOW_SECS) as usize];
        let _ = slice.fetch_update(Ordering::AcqRel, Ordering::Acquire, |packed| {
            let (at, count) = unpack(packed);
            Some(if at == second {
                pack(second, count.saturating_add(1))
            } else {
                pack(second, 1)
            })
        });
    }

    /// The counts of the seconds `second - WINDOW_SECS + 1 ..= second`.
    fn sum(&self, second: u64) -> u64 {
        self.slices
            .iter()
            .map(|slice| unpack(slice.load(Ordering::Acquire)))
            .filter(|&(at, _)| at <= second && second - at < WINDOW_SECS)
            .map(|(_, count)| count)
            .sum()
    }
}

fn pack(second: u64, count: u64) -> u64 {
    (second << 32) | count.min(u64::from(u32::MAX))
}

fn unpack(packed: u64) -> (u64, u64) {
    (packed >> 32, packed & u64::from(u32::MAX))
}

/// The budget; see the module docs.
#[derive(Debug)]
pub struct RetryBudget {
    requests: Window,
    retries: Window,
    epoch: Instant,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            requests: Window::default(),
            retries: Window::default(),
            epoch: Instant::now(),
        }
    }
}

impl RetryBudget {
    /// Seconds since the budget was made, from 1: a zeroed slice (second
    /// 0) then never counts as current.
    fn second(&self) -> u64 {
        self.epoch.elapsed().as_secs() + 1
    }

    /// Counts a request: every request earns a fifth of a retry.
    pub fn deposit(&self) {
        self.requests.add(self.second());
    }

    /// Spends one retry; false when the window's retries are all spent.
    pub fn withdraw(&self) -> bool {
        let now = self.second();
        let allowed = self.requests.sum(now) * PERCENT / 100 + RESERVE;
        if self.retries.sum(now) >= allowed {
            return false;
        }
        self.retries.add(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ten_per_second_without_traffic_then_a_fifth_of_requests() {
        let b = RetryBudget::default();
        let granted = (0..200).filter(|_| b.withdraw()).count();
        assert_eq!(granted, 100, "10/s over the 10 s window");
        for _ in 0..50 {
            b.deposit();
        }
        let granted = (0..200).filter(|_| b.withdraw()).count();
        assert_eq!(granted, 10, "50 requests earn 10 retries");
    }

    #[tokio::test(start_paused = true)]
    async fn the_allowance_grows_with_traffic() {
        // 1,000 streams of ~1.3 s: ~770 requests a second. A replica of
        // three dies after 3 s and ~330 streams need a resume at once.
        let b = RetryBudget::default();
        for _ in 0..3 {
            for _ in 0..770 {
                b.deposit();
            }
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let granted = (0..330).filter(|_| b.withdraw()).count();
        assert_eq!(granted, 330, "2,310 requests in the window allow 562");
        // A storm (every request retried) is still held to a fifth.
        let storm = (0..1000).filter(|_| b.withdraw()).count();
        assert_eq!(storm, 562 - 330);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_and_retries_leave_the_window_after_ten_seconds() {
        let b = RetryBudget::default();
        for _ in 0..1000 {
            b.deposit();
        }
        assert_eq!((0..1000).filter(|_| b.withdraw()).count(), 300);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(!b.withdraw(), "still inside the window");
        tokio::time::advance(Duration::from_secs(5)).await;
        // The 1,000 requests and 300 retries have expired: the reserve
        // alone is left.
        assert_eq!((0..1000).filter(|_| b.withdraw()).count(), 100);
    }
}
