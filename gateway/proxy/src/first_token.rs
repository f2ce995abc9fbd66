//! How long one attempt waits for a stream's first event.
//!
//! The fixed `first_token_timeout_ms` has to cover the slowest legitimate
//! start (a long prompt on a loaded GPU), so on its own it lets a replica
//! that is stuck hold a request for minutes. The adaptive deadline judges
//! lateness against the replica itself: `first_token_ttft_multiple` times
//! its smoothed time to first event, never under `first_token_floor_ms`,
//! never over the fixed timeout. It is a reason to try elsewhere, not a
//! cap on the answer: the request's last chance (no attempt after this
//! one) waits the fixed timeout, so a prompt that is slow everywhere is
//! still answered.

use std::time::Duration;

use switchyard_config::Limits;
use tokio::time::Instant;

/// One attempt's first-event deadline and what it was made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstToken {
    /// When the first `data:` event must have arrived.
    pub deadline: Instant,
    /// `Some(usual)` when the adaptive deadline set it: the replica's
    /// smoothed time to first event it was judged against.
    pub usual: Option<Duration>,
}

impl FirstToken {
    /// The deadline for an attempt that started at `start`: `fixed` (the
    /// fixed timeout, within the request deadline), brought forward by the
    /// adaptive rule when the replica has a usual time to first event
    /// (`ttft`) and a later attempt could still be made (`last_chance`
    /// false).
    pub fn new(
        start: Instant,
        fixed: Instant,
        ttft: Option<Duration>,
        limits: &Limits,
        last_chance: bool,
    ) -> Self {
        let fixed_only = Self {
            deadline: fixed,
            usual: None,
        };
        let multiple = limits.first_token_ttft_multiple;
        let Some(usual) = ttft.filter(|_| multiple > 0 && !last_chance) else {
            return fixed_only;
        };
        let budget = usual.saturating_mul(multiple).max(limits.first_token_floor);
        let adaptive = start + budget;
        if adaptive >= fixed {
            return fixed_only;
        }
        Self {
            deadline: adaptive,
            usual: Some(usual),
        }
    }

    /// The wait it allowed, from `start`, in milliseconds (for the error).
    pub fn waited_ms(&self, start: Instant) -> u128 {
        self.deadline.saturating_duration_since(start).as_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(multiple: u32, floor_ms: u64) -> Limits {
        Limits {
            first_token_ttft_multiple: multiple,
            first_token_floor: Duration::from_millis(floor_ms),
            ..Limits::default()
        }
    }

    #[test]
    fn a_fast_replica_is_judged_late_after_the_floor() {
        let t0 = Instant::now();
        let fixed = t0 + Duration::from_secs(300);
        let ft = FirstToken::new(
            t0,
            fixed,
            Some(Duration::from_millis(20)),
            &limits(10, 1500),
            false,
        );
        assert_eq!(ft.deadline, t0 + Duration::from_millis(1500));
        assert_eq!(ft.usual, Some(Duration::from_millis(20)));
        assert_eq!(ft.waited_ms(t0), 1500);
    }

    #[test]
    fn a_slow_replica_gets_its_multiple() {
        let t0 = Instant::now();
        let fixed = t0 + Duration::from_secs(300);
        let ttft = Some(Duration::from_millis(800));
        let ft = FirstToken::new(t0, fixed, ttft, &limits(10, 1500), false);
        assert_eq!(ft.deadline, t0 + Duration::from_secs(8));
    }

    #[test]
    fn the_fixed_timeout_stays_the_ceiling_and_the_last_chance_waits_it() {
        let t0 = Instant::now();
        let fixed = t0 + Duration::from_secs(5);
        let ttft = Some(Duration::from_secs(2));
        let capped = FirstToken::new(t0, fixed, ttft, &limits(10, 1500), false);
        assert_eq!((capped.deadline, capped.usual), (fixed, None));
        let fast = Some(Duration::from_millis(20));
        let last = FirstToken::new(t0, fixed, fast, &limits(10, 1500), true);
        assert_eq!((last.deadline, last.usual), (fixed, None));
    }

    #[test]
    fn no_sample_or_multiple_zero_is_the_fixed_timeout() {
        let t0 = Instant::now();
        let fixed = t0 + Duration::from_secs(5);
        assert_eq!(
            FirstToken::new(t0, fixed, None, &limits(10, 100), false).deadline,
            fixed
        );
        let fast = Some(Duration::from_millis(20));
        assert_eq!(
            FirstToken::new(t0, fixed, fast, &limits(0, 100), false).deadline,
            fixed
        );
    }
}
