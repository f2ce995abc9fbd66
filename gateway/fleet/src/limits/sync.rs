//! The sync task's one tick: renew this instance's lease (and learn how
//! many are alive), return idle slices, charge debts, publish the
//! concurrency slots held, and book spend to the day's and month's
//! counters (learning the fleet's totals). What a failed tick did not
//! deliver is kept for the next; the task decides when the limits are
//! degraded (see [`super::start`]).

use switchyard_config::Tenant;
use switchyard_proxy::Proxy;
use switchyard_proxy::tenant_limits::{AccountRow, Global, Kind};
use tokio::time::Instant;

use super::store::Store;

/// One tick; whether the fleet's counters were reached. `last`: the
/// instance is stopping (nothing is in flight any more): every slice and
/// concurrency slot it holds goes back, and its unbooked spend is booked.
pub(super) async fn tick(store: &Store, proxy: &Proxy, last: bool) -> bool {
    let limits = proxy.tenant_limits();
    let Some(g) = limits.global() else {
        return false;
    };
    let Some(live) = store.heartbeat().await else {
        return false;
    };
    g.set_live(live);
    let snap = proxy.snapshot();
    let unix = limits.clock().unix(Instant::now());
    let mut ok = true;
    for row in limits.accounts() {
        let tenant = snap.config.tenants.iter().find(|t| t.name == row.tenant);
        ok = ok && settle_row(store, g, &row, tenant, unix, last).await;
        if !ok {
            break;
        }
    }
    ok
}

/// Settles one account; `false` at the first call that failed.
async fn settle_row(
    store: &Store,
    g: &Global,
    row: &AccountRow,
    tenant: Option<&Tenant>,
    unix: u64,
    last: bool,
) -> bool {
    let acc = &row.account;
    for (kind, slot) in [(Kind::Rpm, acc.rpm_slot()), (Kind::Tpm, acc.tpm_slot())] {
        let back = if last {
            slot.release(unix / 60)
        } else {
            slot.settle(unix / 60)
        };
        if let Some((w, delta)) = back {
            let key = store.keys.limit(kind, &row.tenant, row.key.as_deref(), w);
            if store.adjust(&key, delta).await.is_none() {
                slot.unsettle(w, delta);
                return false;
            }
        }
    }
    if row.key.is_none()
        && let Some(max) = tenant.and_then(|t| t.concurrency)
    {
        let slot = acc.conc_slot();
        slot.settle(acc.in_flight(), g.slice_of(u64::from(max)));
        let held = if last { 0 } else { slot.held() };
        if store.hold_conc(&row.tenant, held).await.is_none() {
            return false;
        }
    }
    let budgets = tenant.is_some_and(|t| match &row.key {
        None => has_budget(&t.quota),
        Some(id) => t.keys.iter().any(|k| &k.id == id && has_budget(&k.quota)),
    });
    for push in acc.take_spend(unix) {
        if push.delta == 0 && !budgets {
            continue;
        }
        let key = store
            .keys
            .spend(push.period, &row.tenant, row.key.as_deref(), push.window);
        match store.add_spend(&key, push.period, push.delta).await {
            Some(total) => acc.spend_pushed(&push, total),
            None => {
                acc.spend_unpushed(&push);
                return false;
            }
        }
    }
    true
}

fn has_budget(q: &switchyard_config::Quota) -> bool {
    q.daily_budget_usd.is_some() || q.monthly_budget_usd.is_some()
}
