//! Admission and reservation against the fleet's shared counters
//! (`global_limits`): requests per minute, tokens per minute and
//! concurrency are taken from the slices this instance leased
//! ([`super::slot`]), a lease asked only when a slice is spent; budgets are
//! checked against the fleet's spend as of the last sync plus this
//! instance's since. When the counters are unreachable a tenant's limits
//! fail closed (503) or open (this instance's own counters, each limit
//! divided by the instances last seen alive).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use switchyard_config::{FailMode, Quota, Tenant, TenantKey};
use tokio::time::Instant;

use super::global::{Global, Kind};
use super::leasing::{Which, lease, refusal, take};
use super::level::Level;
use super::rate::RateInfo;
use super::slot::Take;
use super::{Admission, Ask, Held, TenantLimits, who};
use crate::error::ProxyError;

impl TenantLimits {
    /// [`TenantLimits::admit`], against the fleet's counters in fleet mode.
    pub async fn admit_any(
        &self,
        tenant: &Tenant,
        key: &TenantKey,
        now: Instant,
        rate: &mut RateInfo,
    ) -> Result<Admission, ProxyError> {
        let Some(g) = self.global.get() else {
            return self.admit_local(tenant, key, now, rate, 1);
        };
        if !tenant.limited() {
            return self.admit_local(tenant, key, now, rate, 1);
        }
        if !g.degraded() {
            match self.admit_global(g, tenant, key, now, rate).await {
                Err(None) => {}
                done => return done.map_err(|e| e.expect("an error")),
            }
        }
        match g.mode(tenant) {
            FailMode::Closed => Err(ProxyError::GlobalLimitsUnavailable {
                who: who(tenant, None),
            }),
            FailMode::Open => self.admit_local(tenant, key, now, rate, g.live()),
        }
    }

    /// [`TenantLimits::reserve`], against the fleet's counters in fleet mode.
    #[allow(clippy::too_many_arguments, reason = "reserve's")]
    pub async fn reserve_any(
        &self,
        admission: &mut Admission,
        tenant: &Tenant,
        key: &TenantKey,
        ask: Ask,
        now: Instant,
        rate: &mut RateInfo,
    ) -> Result<(), ProxyError> {
        let Some(g) = self.global.get() else {
            return self.reserve_local(admission, tenant, key, ask, now, rate, 1);
        };
        if !tenant.quota.any() && !key.quota.any() {
            return Ok(());
        }
        if !g.degraded() {
            match self
                .reserve_global(g, admission, tenant, key, ask, now, rate)
                .await
            {
                Err(None) => {}
                done => return done.map_err(|e| e.expect("an error")),
            }
        }
        match g.mode(tenant) {
            FailMode::Closed => Err(ProxyError::GlobalLimitsUnavailable {
                who: who(tenant, None),
            }),
            FailMode::Open => self.reserve_local(admission, tenant, key, ask, now, rate, g.live()),
        }
    }

    /// `Err(None)`: the counters became unreachable (the caller falls
    /// back by the tenant's failure mode).
    async fn admit_global(
        &self,
        g: &Global,
        tenant: &Tenant,
        key: &TenantKey,
        now: Instant,
        rate: &mut RateInfo,
    ) -> Result<Admission, Option<ProxyError>> {
        let account = self.key_account(&tenant.name, &key.id);
        let parent = account.parent.clone().expect("a key account has a tenant");
        let mut admission = Admission {
            key: Arc::clone(&account),
            in_flight: false,
            reservation: None,
        };
        if let Some(max) = tenant.concurrency {
            let slice = g.slice_of(u64::from(max));
            let mut taken = parent.slots.conc.take(&parent.in_flight, slice);
            if let Take::Miss { ask } = taken {
                let lease = lease(tenant, None, Kind::Concurrency, 0, ask, max);
                match g.lease(lease).await {
                    Some(got) => {
                        parent.slots.conc.granted(got.got, got.got < ask);
                        taken = parent.slots.conc.take(&parent.in_flight, 0);
                    }
                    None if g.degraded() => return Err(None),
                    None => {}
                }
            }
            if !matches!(taken, Take::Taken { .. }) {
                return Err(Some(ProxyError::TenantLimited {
                    who: who(tenant, None),
                    what: "concurrency",
                    retry_after: 1,
                }));
            }
            admission.in_flight = true;
        }
        let unix = self.clock.unix(now);
        let window = unix / 60;
        let levels = [
            (&*account, key.requests_per_minute, Some(key)),
            (&*parent, tenant.requests_per_minute, None),
        ];
        for (i, &(acc, rpm, k)) in levels.iter().enumerate() {
            let Some(cap) = rpm else { continue };
            let l = Which {
                tenant,
                k,
                kind: Kind::Rpm,
                window,
                cap,
            };
            match take(g, &acc.slots.rpm, l, 1, unix, &mut rate.requests).await {
                Ok(()) => {}
                Err(short) => {
                    if let Some(&(first, Some(_), _)) = levels[..i].first() {
                        first.slots.rpm.give(window, 1);
                    }
                    return Err(refusal(short, tenant, k, "requests_per_minute", unix));
                }
            }
        }
        Ok(admission)
    }

    /// `Err(None)`: the counters became unreachable.
    #[allow(clippy::too_many_arguments, reason = "reserve's, plus the mode")]
    async fn reserve_global(
        &self,
        g: &Global,
        admission: &mut Admission,
        tenant: &Tenant,
        key: &TenantKey,
        ask: Ask,
        now: Instant,
        rate: &mut RateInfo,
    ) -> Result<(), Option<ProxyError>> {
        let unix = self.clock.unix(now);
        let window = unix / 60;
        let account = Arc::clone(&admission.key);
        let parent = account.parent.clone().expect("a key account has a tenant");
        // Budgets here (the sync keeps `spent` at the fleet's figure);
        // tokens from the slices below.
        let budgets = |q: &Quota| Quota {
            tokens_per_minute: None,
            ..*q
        };
        let (kq, tq) = (budgets(&key.quota), budgets(&tenant.quota));
        let at_key = Level {
            account: &account,
            quota: &kq,
        };
        let at_tenant = Level {
            account: &parent,
            quota: &tq,
        };
        at_key
            .take(0.0, ask.cost_nano, now, unix, rate)
            .map_err(|r| Some(r.into_error(who(tenant, Some(key)))))?;
        if let Err(r) = at_tenant.take(0.0, ask.cost_nano, now, unix, rate) {
            at_key.undo(0.0, ask.cost_nano, now);
            return Err(Some(r.into_error(who(tenant, None))));
        }
        let undo_budgets = || {
            at_key.undo(0.0, ask.cost_nano, now);
            at_tenant.undo(0.0, ask.cost_nano, now);
        };
        let tokens_at = |cap: Option<u32>| cap.map(|c| ask.tokens.min(u64::from(c)));
        let levels = [
            (&*account, key.quota.tokens_per_minute, Some(key)),
            (&*parent, tenant.quota.tokens_per_minute, None),
        ];
        for (i, &(acc, tpm, k)) in levels.iter().enumerate() {
            let (Some(cap), Some(n)) = (tpm, tokens_at(tpm)) else {
                continue;
            };
            let l = Which {
                tenant,
                k,
                kind: Kind::Tpm,
                window,
                cap,
            };
            if let Err(short) = take(g, &acc.slots.tpm, l, n, unix, &mut rate.tokens).await {
                // The key's tokens were taken before its tenant refused.
                if i == 1
                    && let Some(n0) = tokens_at(key.quota.tokens_per_minute)
                {
                    account.slots.tpm.give(window, n0 as i64);
                }
                undo_budgets();
                return Err(refusal(short, tenant, k, "tokens_per_minute", unix));
            }
        }
        admission.reservation = Some(Arc::new(Held {
            key: account,
            key_tokens: tokens_at(key.quota.tokens_per_minute).map(|n| n as f64),
            tenant_tokens: tokens_at(tenant.quota.tokens_per_minute).map(|n| n as f64),
            key_tpm: key.quota.tokens_per_minute,
            tenant_tpm: tenant.quota.tokens_per_minute,
            global_window: Some(window),
            cost_nano: ask.cost_nano,
            settled: AtomicBool::new(false),
            served: AtomicBool::new(false),
        }));
        Ok(())
    }
}
