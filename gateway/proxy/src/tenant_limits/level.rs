//! One level of a request's reservation: the key's or the tenant's token
//! bucket and budgets, checked and taken together under its account's lock.

use std::time::Duration;

use tokio::time::Instant;

use super::account::Account;
use super::bucket::Bucket;
use super::calendar;
use super::rate::{RateInfo, Window};
use crate::error::ProxyError;
use switchyard_config::Quota;

/// One level's (key's or tenant's) token limit and budgets.
pub(super) struct Level<'a> {
    pub(super) account: &'a Account,
    pub(super) quota: &'a Quota,
}

/// Why a level refused.
pub(super) enum Refusal {
    Tokens(Duration),
    Budget {
        window: &'static str,
        budget: f64,
        retry_after: u64,
    },
}

impl Refusal {
    pub(super) fn into_error(self, who: String) -> ProxyError {
        match self {
            Refusal::Tokens(wait) => ProxyError::TenantLimited {
                who,
                what: "tokens_per_minute",
                retry_after: secs(wait),
            },
            Refusal::Budget {
                window,
                budget,
                retry_after,
            } => ProxyError::QuotaExceeded {
                who,
                window,
                budget,
                retry_after: u32::try_from(retry_after).unwrap_or(u32::MAX),
            },
        }
    }
}

impl Level<'_> {
    /// Checks the budgets, then takes the tokens and reserves the cost;
    /// all or nothing.
    pub(super) fn take(
        &self,
        tokens: f64,
        cost: u64,
        now: Instant,
        unix: u64,
        rate: &mut RateInfo,
    ) -> Result<(), Refusal> {
        let q = self.quota;
        let mut w = self.account.lock();
        let w = &mut *w;
        w.day.roll(calendar::day(unix));
        w.month.roll(calendar::month(unix));
        // The month first: when both are spent, its wait is the true one.
        for (spend, budget, window, reset) in [
            (
                &w.month,
                q.monthly_budget_usd,
                "monthly",
                calendar::to_next_month(unix),
            ),
            (
                &w.day,
                q.daily_budget_usd,
                "daily",
                calendar::to_next_day(unix),
            ),
        ] {
            if let Some(budget) = budget
                && !spend.has_room((budget * 1e9) as u64)
            {
                return Err(Refusal::Budget {
                    window,
                    budget,
                    retry_after: reset,
                });
            }
        }
        if let Some(cap) = q.tokens_per_minute {
            let bucket = w.tpm.get_or_insert_with(|| Bucket::full(cap, now));
            // A request larger than the whole minute passes when the
            // bucket is full, instead of never.
            let taken = bucket.take(cap, tokens.min(f64::from(cap)), now);
            RateInfo::note(&mut rate.tokens, Window::of(bucket, cap));
            taken.map_err(Refusal::Tokens)?;
        }
        w.day.reserved += cost;
        w.month.reserved += cost;
        Ok(())
    }

    /// Gives back what `take` took (the other level refused).
    pub(super) fn undo(&self, tokens: f64, cost: u64, now: Instant) {
        let mut w = self.account.lock();
        if let (Some(cap), Some(b)) = (self.quota.tokens_per_minute, w.tpm.as_mut()) {
            b.give(cap, tokens.min(f64::from(cap)), now);
        }
        w.day.reserved = w.day.reserved.saturating_sub(cost);
        w.month.reserved = w.month.reserved.saturating_sub(cost);
    }
}

/// `quota` with its token limit divided by `share` (1: as configured).
pub(super) fn shared(quota: &Quota, share: u32) -> Quota {
    Quota {
        tokens_per_minute: quota
            .tokens_per_minute
            .map(|c| c.div_ceil(share.max(1)).max(1)),
        ..*quota
    }
}

/// Whole seconds to wait, at least 1 (`Retry-After`).
pub(super) fn secs(wait: Duration) -> u32 {
    (wait.as_secs_f64().ceil() as u32).max(1)
}
