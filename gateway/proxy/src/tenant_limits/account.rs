//! One tenant's, or one key's, live counters: what it has in flight, its
//! rate buckets, its spend per UTC day and month (spent, and reserved by
//! requests in flight), and its running totals for `/admin/costs` and
//! `/metrics`. A key's account has its tenant's as parent: what the key
//! spends, the tenant spends.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use switchyard_config::Cost;
use tokio::time::Instant;

use super::bucket::Bucket;
use super::calendar::{self, Clock};
use super::slot::{ConcSlot, WindowSlot};
use crate::usage::{Usage, UsageSink};

/// Counters of one tenant or key; outlives config generations (kept by
/// name in [`super::TenantLimits`]).
#[derive(Debug, Default)]
pub struct Account {
    /// The tenant's account, for a key's.
    pub(super) parent: Option<Arc<Account>>,
    pub(super) clock: Clock,
    pub(super) in_flight: AtomicU32,
    requests: AtomicU64,
    unknown_usage: AtomicU64,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    spend_nano: AtomicU64,
    windows: Mutex<Windows>,
    /// Its slices of the fleet's limits (fleet mode only).
    pub(super) slots: Slots,
}

/// An account's slices of the fleet-wide limits.
#[derive(Debug, Default)]
pub(super) struct Slots {
    pub(super) rpm: WindowSlot,
    pub(super) tpm: WindowSlot,
    pub(super) conc: ConcSlot,
}

/// What is checked and changed together, under the account's lock (held
/// for a few arithmetic operations, never across an await).
#[derive(Debug, Default)]
pub(super) struct Windows {
    pub(super) rpm: Option<Bucket>,
    pub(super) tpm: Option<Bucket>,
    pub(super) day: Spend,
    pub(super) month: Spend,
}

/// Spend in one UTC day or month, in billionths of the price unit.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Spend {
    /// Which day or month (`calendar::day` / `calendar::month`).
    pub(super) window: u32,
    /// Booked from reported usage in that window.
    pub(super) spent: u64,
    /// Estimated cost of the requests in flight (kept across a rollover:
    /// they will be booked in the new window).
    pub(super) reserved: u64,
    /// Booked here and not yet added to the fleet's counter (fleet mode).
    pub(super) unpushed: u64,
}

impl Spend {
    /// Starts a new window when `window` moved on.
    pub(super) fn roll(&mut self, window: u32) {
        if self.window != window {
            self.window = window;
            self.spent = 0;
            self.unpushed = 0;
        }
    }

    /// Whether anything of `budget_nano` is left for a new request: a
    /// request is let in while spent + reserved is under the budget, so
    /// the budget is overshot by at most one request's reservation (plus
    /// what answers use beyond their reservation).
    pub(super) fn has_room(&self, budget_nano: u64) -> bool {
        self.spent.saturating_add(self.reserved) < budget_nano
    }
}

/// What one settled request changes: tokens to give back to the token
/// bucket (negative: charge), the reserved cost to release and the cost to
/// book, and the usage for the totals.
#[derive(Debug, Clone, Copy)]
pub(super) struct Settle {
    pub(super) refund_tokens: f64,
    pub(super) tpm_cap: Option<u32>,
    /// The fleet window the tokens were taken in (fleet mode).
    pub(super) global_window: Option<u64>,
    pub(super) release_nano: u64,
    pub(super) cost_nano: u64,
    /// `None`: the answer reported no usage.
    pub(super) usage: Option<Usage>,
    /// Whether an answer was served (false: everything is refunded).
    pub(super) served: bool,
}

/// One account's figures, as `/admin/costs` and `/metrics` read them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AccountFigures {
    /// Answers served and booked.
    pub requests: u64,
    /// Of those, answers that reported no usage (charged their reservation).
    pub unknown_usage: u64,
    /// Input tokens reported.
    pub input_tokens: u64,
    /// Output tokens reported.
    pub output_tokens: u64,
    /// Spend since the gateway started, in the unit of the replicas' prices.
    pub spend: f64,
    /// Spend in the current UTC day.
    pub spend_today: f64,
    /// Spend in the current UTC month.
    pub spend_this_month: f64,
    /// Estimated cost of the requests in flight.
    pub reserved: f64,
    /// Requests in flight (counted for tenants with a `concurrency` limit).
    pub in_flight: u32,
}

impl Account {
    /// A tenant's account, its days read off `clock`.
    pub(super) fn new(clock: Clock) -> Self {
        Self {
            clock,
            ..Self::default()
        }
    }

    /// A key's account under `parent`.
    pub(super) fn child(parent: Arc<Account>) -> Self {
        Self {
            clock: parent.clock,
            parent: Some(parent),
            ..Self::default()
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Books a settled request at this level only.
    pub(super) fn settle_one(&self, s: &Settle, now: Instant, unix: u64) {
        if s.served {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match s.usage {
                Some(u) => {
                    self.input_tokens
                        .fetch_add(u.prompt_tokens, Ordering::Relaxed);
                    self.output_tokens
                        .fetch_add(u.completion_tokens, Ordering::Relaxed);
                }
                None => {
                    self.unknown_usage.fetch_add(1, Ordering::Relaxed);
                }
            }
            self.spend_nano.fetch_add(s.cost_nano, Ordering::Relaxed);
        }
        {
            let mut guard = self.lock();
            let w = &mut *guard;
            match (s.global_window, s.tpm_cap, w.tpm.as_mut()) {
                (Some(window), Some(_), _) => self.slots.tpm.give(window, s.refund_tokens as i64),
                (None, Some(cap), Some(bucket)) => bucket.give(cap, s.refund_tokens, now),
                _ => {}
            }
            for (spend, window) in [
                (&mut w.day, calendar::day(unix)),
                (&mut w.month, calendar::month(unix)),
            ] {
                spend.roll(window);
                spend.reserved = spend.reserved.saturating_sub(s.release_nano);
                spend.spent = spend.spent.saturating_add(s.cost_nano);
                spend.unpushed = spend.unpushed.saturating_add(s.cost_nano);
            }
        }
    }

    /// Its figures now.
    pub fn figures(&self) -> AccountFigures {
        let unix = self.clock.unix(Instant::now());
        let (today, month, reserved) = {
            let w = self.lock();
            let today = (w.day.window == calendar::day(unix)).then_some(w.day.spent);
            let month = (w.month.window == calendar::month(unix)).then_some(w.month.spent);
            (today.unwrap_or(0), month.unwrap_or(0), w.day.reserved)
        };
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AccountFigures {
            requests: n(&self.requests),
            unknown_usage: n(&self.unknown_usage),
            input_tokens: n(&self.input_tokens),
            output_tokens: n(&self.output_tokens),
            spend: n(&self.spend_nano) as f64 / 1e9,
            spend_today: today as f64 / 1e9,
            spend_this_month: month as f64 / 1e9,
            reserved: reserved as f64 / 1e9,
            in_flight: self.in_flight.load(Ordering::Relaxed),
        }
    }
}

/// A tenant without token limits or budgets is only accounted: its key's
/// account is the meter's sink, and nothing was reserved.
impl UsageSink for Account {
    fn book(&self, usage: Option<Usage>, price: &Cost) {
        let s = Settle {
            refund_tokens: 0.0,
            tpm_cap: None,
            global_window: None,
            release_nano: 0,
            cost_nano: usage.map_or(0, |u| u.cost_nano(price)),
            usage,
            served: true,
        };
        let now = Instant::now();
        let unix = self.clock.unix(now);
        self.settle_one(&s, now, unix);
        if let Some(parent) = &self.parent {
            parent.settle_one(&s, now, unix);
        }
    }
}
