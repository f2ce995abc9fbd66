//! The retry decision: what one failed attempt leads to, as a typed action.
//! Pure (no clock, no table), so every rule is a unit test.

use std::time::Duration;

/// How an attempt ended, as far as retrying cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An answer to pass on: a success, or the client's own 4xx.
    None,
    /// The replica broke or is briefly unwell: 500, 502, 503 without
    /// `Retry-After`, a reset before the response headers, a connect error.
    /// Worth the same group once more.
    Transient,
    /// The replica asked for a pause: 429 or 503 with `Retry-After`.
    Paused(Duration),
    /// Any other retryable failure (504, 429 without `Retry-After`, an
    /// attempt timeout): another replica only.
    Elsewhere,
    /// 400 `context_length_exceeded`: no replica of this group can take it.
    ContextLength,
}

/// What the attempt loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// This attempt's result is the answer.
    Answer,
    /// An untried replica, in ranking order (the group's, then its
    /// fallbacks').
    Untried,
    /// The group being served again, tried replicas included, after at
    /// least `wait`.
    SameGroup {
        /// The replica's `Retry-After`, or zero (the usual backoff).
        wait: Duration,
    },
    /// The next context fallback group; this group is not asked again.
    ContextFallback,
}

/// Where the request stands when an attempt has failed.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// The attempt was on the group being served (the requested one, or
    /// the context fallback in use), not on one of its fallbacks.
    pub in_group: bool,
    /// The ranking's next untried candidate is of that group.
    pub group_untried: bool,
    /// The one same-group retry of this request is spent.
    pub group_retried: bool,
    /// The group's `routing.retry_after_max`.
    pub retry_after_max: Duration,
    /// Time left until the request deadline.
    pub left: Duration,
    /// A context fallback group is left to try.
    pub context_fallback: bool,
}

/// The rules, in order: an answer is an answer; a context-length error goes
/// to a context fallback or passes through; a transient failure, or a short
/// pause that fits in the deadline, on the group's last untried replica is
/// retried on the group once; everything else goes to the next untried
/// replica (which may be a fallback group's).
pub fn decide(failure: Failure, s: &Standing) -> Next {
    let last_of_group = s.in_group && !s.group_untried && !s.group_retried;
    match failure {
        Failure::None => Next::Answer,
        Failure::ContextLength if s.context_fallback => Next::ContextFallback,
        Failure::ContextLength => Next::Answer,
        Failure::Transient if last_of_group => Next::SameGroup {
            wait: Duration::ZERO,
        },
        Failure::Paused(wait)
            if last_of_group
                && !s.retry_after_max.is_zero()
                && wait <= s.retry_after_max
                && wait < s.left =>
        {
            Next::SameGroup { wait }
        }
        Failure::Transient | Failure::Paused(_) | Failure::Elsewhere => Next::Untried,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Standing = Standing {
        in_group: true,
        group_untried: false,
        group_retried: false,
        retry_after_max: Duration::from_secs(3),
        left: Duration::from_secs(60),
        context_fallback: false,
    };

    #[test]
    fn the_last_replica_of_the_group_is_retried_once() {
        let again = Next::SameGroup {
            wait: Duration::ZERO,
        };
        assert_eq!(decide(Failure::Transient, &S), again);
        let spent = Standing {
            group_retried: true,
            ..S
        };
        assert_eq!(decide(Failure::Transient, &spent), Next::Untried);
        let more = Standing {
            group_untried: true,
            ..S
        };
        assert_eq!(decide(Failure::Transient, &more), Next::Untried);
        let fallback = Standing {
            in_group: false,
            ..S
        };
        assert_eq!(decide(Failure::Transient, &fallback), Next::Untried);
        assert_eq!(decide(Failure::Elsewhere, &S), Next::Untried);
    }

    #[test]
    fn short_pauses_are_waited_out_long_ones_move_on() {
        let one = Duration::from_secs(1);
        assert_eq!(
            decide(Failure::Paused(one), &S),
            Next::SameGroup { wait: one }
        );
        let long = Duration::from_secs(4);
        assert_eq!(decide(Failure::Paused(long), &S), Next::Untried);
        let late = Standing {
            left: Duration::from_millis(500),
            ..S
        };
        assert_eq!(decide(Failure::Paused(one), &late), Next::Untried);
        let never = Standing {
            retry_after_max: Duration::ZERO,
            ..S
        };
        assert_eq!(decide(Failure::Paused(one), &never), Next::Untried);
        let zero = Failure::Paused(Duration::ZERO);
        assert_eq!(decide(zero, &never), Next::Untried, "0 turns waiting off");
    }

    #[test]
    fn context_length_goes_to_a_bigger_group_or_passes_through() {
        assert_eq!(decide(Failure::ContextLength, &S), Next::Answer);
        let bigger = Standing {
            context_fallback: true,
            ..S
        };
        assert_eq!(
            decide(Failure::ContextLength, &bigger),
            Next::ContextFallback
        );
        assert_eq!(decide(Failure::None, &bigger), Next::Answer);
    }
}
