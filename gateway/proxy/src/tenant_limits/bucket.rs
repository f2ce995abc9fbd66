//! A token bucket that refills its capacity once a minute, continuously,
//! on tokio's clock. Requests per minute take 1; tokens per minute take the
//! reservation and are corrected by the reported usage after the answer,
//! so the level may fall below zero (the next requests then wait).

use std::time::Duration;

use tokio::time::Instant;

/// Level and when it was last refilled. The capacity comes from the
/// config at each call, so a reload changes it in place.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    level: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket of `cap`.
    pub(super) fn full(cap: u32, now: Instant) -> Self {
        Self {
            level: f64::from(cap),
            last: now,
        }
    }

    fn refill(&mut self, cap: u32, now: Instant) {
        let cap = f64::from(cap);
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + elapsed * cap / 60.0).min(cap);
        self.last = now;
    }

    /// Takes `n` when the bucket holds that many; otherwise how long until
    /// it will.
    pub(super) fn take(&mut self, cap: u32, n: f64, now: Instant) -> Result<(), Duration> {
        self.refill(cap, now);
        if self.level >= n {
            self.level -= n;
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (n - self.level) * 60.0 / f64::from(cap),
        ))
    }

    /// Gives `n` back (a negative `n` charges more), never above `cap`.
    pub(super) fn give(&mut self, cap: u32, n: f64, now: Instant) {
        self.refill(cap, now);
        self.level = (self.level + n).min(f64::from(cap));
    }

    /// Whole units left (`x-ratelimit-remaining-*`).
    pub(super) fn remaining(&self) -> u64 {
        self.level.max(0.0) as u64
    }

    /// Time until the bucket is full again (`x-ratelimit-reset-*`).
    pub(super) fn until_full(&self, cap: u32) -> Duration {
        let missing = (f64::from(cap) - self.level).max(0.0);
        Duration::from_secs_f64(missing * 60.0 / f64::from(cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_refills_and_may_owe() {
        let t0 = Instant::now();
        let mut b = Bucket::full(600, t0);
        b.take(600, 600.0, t0).unwrap();
        // 600 a minute is 10 a second.
        assert_eq!(b.take(600, 20.0, t0), Err(Duration::from_secs(2)));
        let t1 = t0 + Duration::from_secs(1);
        b.take(600, 10.0, t1).unwrap();
        // The answer used 110 where 10 were reserved: the bucket owes 100.
        b.give(600, -100.0, t1);
        assert_eq!(b.remaining(), 0);
        assert_eq!(b.take(600, 1.0, t1), Err(Duration::from_secs_f64(10.1)));
        assert_eq!(b.until_full(600), Duration::from_secs(70));
        b.give(600, 10_000.0, t1);
        assert_eq!(b.remaining(), 600, "never above the capacity");
    }
}
