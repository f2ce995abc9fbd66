//! Per-tenant and per-key limits, budgets and spend.
//!
//! - **Before the body**: requests in flight (`concurrency`, tenant) and
//!   requests per minute (tenant and key) — [`TenantLimits::admit`].
//! - **Once the model and body are known**: tokens per minute and the
//!   spend budgets per UTC day and month (tenant and key) —
//!   [`TenantLimits::reserve`] sets aside the estimated tokens (input ≈
//!   prompt bytes / 4, plus `max_tokens`, `max_completion_tokens` or
//!   `default_max_tokens`) and their estimated cost at the model group's
//!   highest replica price; the answer's reported usage corrects both.
//! - **Every answer** of a tenant is booked to its key's account (and so its
//!   tenant's), priced with the same rule as the cost ledger
//!   ([`crate::usage::cost_nano`]); the operator surface reads
//!   [`TenantLimits::figures`].
//!
//! A key's limits are checked on top of its tenant's: both must pass. State
//! is kept by tenant name and key id across config generations, in memory
//! (a restart starts the day's spend at zero). A tenant with no limits takes
//! no lock here before the answer; its booking is an `Arc` clone.
//!
//! **Fleet mode** (`global_limits`, [`Global`]): the per-minute limits and
//! concurrency are leased in slices from counters every instance shares
//! (`shared.rs`) and spend is booked to them by the fleet's sync task
//! (`sync.rs`); without it, none of that code runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use http::Response;
use http_body_util::BodyExt;
use switchyard_config::{Tenant, TenantKey};
use tokio::time::Instant;

use crate::body::ProxyBody;
use crate::error::ProxyError;

mod account;
mod ask;
mod bucket;
mod calendar;
mod figures;
mod global;
mod held;
mod leasing;
mod level;
mod rate;
mod reservation;
mod shared;
mod slot;
mod sync;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_global;

pub use account::{Account, AccountFigures};
pub use ask::estimate;
pub use calendar::Clock;
pub use figures::SpendRow;
pub use global::{Global, Granted, Kind, Lease, LeaseFuture, Leaser};
pub use rate::{RateInfo, Window};
pub use reservation::{Admission, Reservation};
pub use slot::{ConcSlot, WindowSlot};
pub use sync::{AccountRow, SpendPush};

use bucket::Bucket;
use level::{Level, secs};
use reservation::Reservation as Held;

/// Every tenant's and key's live counters.
#[derive(Debug, Default)]
pub struct TenantLimits {
    clock: Clock,
    by_tenant: DashMap<String, Arc<Entry>>,
    /// Fleet mode, set once at start (`global_limits`).
    global: OnceLock<Global>,
}

#[derive(Debug)]
struct Entry {
    account: Arc<Account>,
    keys: DashMap<String, Arc<Account>>,
}

/// What a request is estimated to use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ask {
    /// Input estimate plus the output it may produce.
    pub tokens: u64,
    /// Those tokens at the highest price of the group's replicas, in
    /// billionths of the price unit.
    pub cost_nano: u64,
}

/// Who a limit belongs to, for the error message.
fn who(tenant: &Tenant, key: Option<&TenantKey>) -> String {
    match key {
        Some(k) => format!("key `{}` of tenant `{}`", k.id, tenant.name),
        None => format!("tenant `{}`", tenant.name),
    }
}

impl TenantLimits {
    /// Limits whose days and months are read off `clock`.
    pub fn with_clock(clock: Clock) -> Self {
        Self {
            clock,
            by_tenant: DashMap::new(),
            global: OnceLock::new(),
        }
    }

    /// Turns fleet mode on (once; `false` when it already was).
    pub fn enable_global(&self, global: Global) -> bool {
        self.global.set(global).is_ok()
    }

    /// The fleet mode, when on.
    pub fn global(&self) -> Option<&Global> {
        self.global.get()
    }

    /// The clock the windows are read off.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The account of `key` of `tenant` (created at its first request).
    pub(super) fn key_account(&self, tenant: &str, key: &str) -> Arc<Account> {
        let entry = match self.by_tenant.get(tenant) {
            Some(e) => Arc::clone(&e),
            None => Arc::clone(&self.by_tenant.entry(tenant.to_owned()).or_insert_with(|| {
                Arc::new(Entry {
                    account: Arc::new(Account::new(self.clock)),
                    keys: DashMap::new(),
                })
            })),
        };
        if let Some(k) = entry.keys.get(key) {
            return Arc::clone(&k);
        }
        let k = entry
            .keys
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(Account::child(Arc::clone(&entry.account))));
        Arc::clone(&k)
    }

    /// Counts a request of `key` of `tenant` starting at `now`: 429 when
    /// its tenant has `concurrency` requests in flight, or the key or the
    /// tenant has no request left this minute. `rate` gets the request
    /// window either way.
    pub fn admit(
        &self,
        tenant: &Tenant,
        key: &TenantKey,
        now: Instant,
        rate: &mut RateInfo,
    ) -> Result<Admission, ProxyError> {
        self.admit_local(tenant, key, now, rate, 1)
    }

    /// Admits against this instance's own counters, each limit divided
    /// by `share` (the instances alive, when a fleet fails open).
    pub(super) fn admit_local(
        &self,
        tenant: &Tenant,
        key: &TenantKey,
        now: Instant,
        rate: &mut RateInfo,
        share: u32,
    ) -> Result<Admission, ProxyError> {
        let part = |cap: Option<u32>| cap.map(|c| c.div_ceil(share).max(1));
        let account = self.key_account(&tenant.name, &key.id);
        let parent = account.parent.clone().expect("a key account has a tenant");
        let mut admission = Admission {
            key: account,
            in_flight: false,
            reservation: None,
        };
        if let Some(max) = part(tenant.concurrency) {
            let taken = parent
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                });
            if taken.is_err() {
                return Err(ProxyError::TenantLimited {
                    who: who(tenant, None),
                    what: "concurrency",
                    retry_after: 1,
                });
            }
            admission.in_flight = true;
        }
        let levels = [
            (&*admission.key, part(key.requests_per_minute), Some(key)),
            (&*parent, part(tenant.requests_per_minute), None),
        ];
        for (i, &(acc, rpm, k)) in levels.iter().enumerate() {
            let Some(cap) = rpm else { continue };
            let mut w = acc.lock();
            let bucket = w.rpm.get_or_insert_with(|| Bucket::full(cap, now));
            let taken = bucket.take(cap, 1.0, now);
            RateInfo::note(&mut rate.requests, Window::of(bucket, cap));
            drop(w);
            if let Err(wait) = taken {
                // The key's request was counted before its tenant refused it.
                if let Some(&(first, Some(cap), _)) = levels[..i].first()
                    && let Some(b) = first.lock().rpm.as_mut()
                {
                    b.give(cap, 1.0, now);
                }
                return Err(ProxyError::TenantLimited {
                    who: who(tenant, k),
                    what: "requests_per_minute",
                    retry_after: secs(wait),
                });
            }
        }
        Ok(admission)
    }

    /// Sets `ask` aside against the token limits and budgets of `key` and
    /// `tenant` (nothing to do when neither has any): 429
    /// `rate_limit_exceeded` when a token bucket is short, 429
    /// `insufficient_quota` when a budget is spent.
    pub fn reserve(
        &self,
        admission: &mut Admission,
        tenant: &Tenant,
        key: &TenantKey,
        ask: Ask,
        now: Instant,
        rate: &mut RateInfo,
    ) -> Result<(), ProxyError> {
        self.reserve_local(admission, tenant, key, ask, now, rate, 1)
    }

    /// Reserves against this instance's own counters, token limits
    /// divided by `share`.
    #[allow(clippy::too_many_arguments, reason = "reserve's, plus the share")]
    pub(super) fn reserve_local(
        &self,
        admission: &mut Admission,
        tenant: &Tenant,
        key: &TenantKey,
        ask: Ask,
        now: Instant,
        rate: &mut RateInfo,
        share: u32,
    ) -> Result<(), ProxyError> {
        if !tenant.quota.any() && !key.quota.any() {
            return Ok(());
        }
        let unix = self.clock.unix(now);
        let account = &admission.key;
        let parent = account.parent.as_ref().expect("a key account has a tenant");
        let tokens = ask.tokens as f64;
        let key_quota = level::shared(&key.quota, share);
        let tenant_quota = level::shared(&tenant.quota, share);
        let at_key = Level {
            account,
            quota: &key_quota,
        };
        at_key
            .take(tokens, ask.cost_nano, now, unix, rate)
            .map_err(|r| r.into_error(who(tenant, Some(key))))?;
        let at_tenant = Level {
            account: parent,
            quota: &tenant_quota,
        };
        if let Err(r) = at_tenant.take(tokens, ask.cost_nano, now, unix, rate) {
            at_key.undo(tokens, ask.cost_nano, now);
            return Err(r.into_error(who(tenant, None)));
        }
        let clamp = |cap: Option<u32>| cap.map(|c| tokens.min(f64::from(c)));
        let (key_quota, tenant_quota) = (&key_quota, &tenant_quota);
        admission.reservation = Some(Arc::new(Held {
            key: Arc::clone(account),
            key_tokens: clamp(key.quota.tokens_per_minute),
            tenant_tokens: clamp(tenant.quota.tokens_per_minute),
            key_tpm: key_quota.tokens_per_minute,
            tenant_tpm: tenant_quota.tokens_per_minute,
            global_window: None,
            cost_nano: ask.cost_nano,
            settled: AtomicBool::new(false),
            served: AtomicBool::new(false),
        }));
        Ok(())
    }
}

/// `resp` with `admission` carried in its body (released with the body);
/// a successful answer marks the reservation served. An admission that
/// holds nothing (a tenant without limits: its booking rides in the
/// usage meter) is dropped here, so its answer is not wrapped.
pub fn hold(resp: Response<ProxyBody>, admission: Option<Admission>) -> Response<ProxyBody> {
    match admission {
        None => resp,
        Some(a) if !a.in_flight && a.reservation.is_none() => resp,
        Some(admission) => {
            if resp.status().is_success() {
                admission.served();
            }
            resp.map(|inner| held::Held::new(inner, admission).boxed())
        }
    }
}
