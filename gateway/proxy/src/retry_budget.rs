//! The gateway-wide retry budget: retries may be at most 20 % of requests
//! plus 10 per second (Envoy's and Finagle's shape), so an outage cannot
//! turn into a retry storm.
//!
//! A token bucket in milli-tokens, lock-free. Time is tokio's clock, so
//! tests pause it and advance it instead of sleeping.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::time::Instant;

/// Milli-tokens every request earns: a fifth of a retry.
const PER_REQUEST: i64 = 200;
/// Milli-tokens earned per millisecond: 10 retries per second.
const PER_MS: i64 = 10;
/// At most 100 retries banked.
const CAP: i64 = 100_000;
/// What a fresh budget holds: 10 retries, so the first failures after a
/// start are retried before any request has earned anything.
const INITIAL: i64 = 10_000;

/// The budget; see the module docs.
#[derive(Debug)]
pub struct RetryBudget {
    milli_tokens: AtomicI64,
    /// Milliseconds since `epoch` at the last refill.
    last_refill_ms: AtomicU64,
    epoch: Instant,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self::with_tokens(INITIAL)
    }
}

impl RetryBudget {
    fn with_tokens(milli: i64) -> Self {
        Self {
            milli_tokens: AtomicI64::new(milli),
            last_refill_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Every request earns a fifth of a retry.
    pub fn deposit(&self) {
        self.add(PER_REQUEST);
    }

    /// Spends one retry; false when the budget is exhausted.
    pub fn withdraw(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_refill_ms.swap(now, Ordering::AcqRel);
        let elapsed = i64::try_from(now.saturating_sub(last)).unwrap_or(i64::MAX / PER_MS);
        self.add(elapsed.saturating_mul(PER_MS));
        self.milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                (t >= 1000).then_some(t - 1000)
            })
            .is_ok()
    }

    fn add(&self, milli: i64) {
        let _ = self
            .milli_tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some(t.saturating_add(milli).min(CAP))
            });
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_fifth_of_requests_plus_ten_per_second() {
        let b = RetryBudget::with_tokens(0);
        for _ in 0..10 {
            b.deposit();
        }
        assert!(b.withdraw());
        assert!(b.withdraw());
        assert!(!b.withdraw(), "10 requests earn 2 retries");
        // Paused time: nothing accrues until the clock is moved.
        assert!(!b.withdraw());
        tokio::time::advance(Duration::from_millis(300)).await;
        for i in 0..3 {
            assert!(b.withdraw(), "300 ms earn 3 retries (retry {i})");
        }
        assert!(!b.withdraw());
    }

    #[tokio::test(start_paused = true)]
    async fn the_bank_is_capped() {
        let b = RetryBudget::with_tokens(0);
        tokio::time::advance(Duration::from_secs(3600)).await;
        let granted = (0..200).filter(|_| b.withdraw()).count();
        assert_eq!(granted, 100, "at most 100 retries banked");
    }
}
