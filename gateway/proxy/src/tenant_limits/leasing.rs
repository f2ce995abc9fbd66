//! Taking from a slice of a fleet-wide limit, leasing on a miss, and
//! what a short take answers.

use std::time::Duration;

use switchyard_config::{Tenant, TenantKey};

use super::global::{Global, Kind, Lease};
use super::rate::{RateInfo, Window};
use super::slot::{Take, WindowSlot};
use super::who;
use crate::error::ProxyError;

/// Why a take from a slice failed.
pub(super) enum Short {
    /// The fleet has nothing left.
    Spent,
    /// A lease failed while the fleet is not known to be degraded: this
    /// request is refused (429, retry in 1 s) rather than admitted
    /// unaccounted, so a slow Redis never overshoots a limit.
    NotNow,
    /// The counters are unreachable.
    Unreachable,
}

/// What a failed lease means now.
pub(super) fn unleased(g: &Global) -> Short {
    if g.degraded() {
        Short::Unreachable
    } else {
        Short::NotNow
    }
}

/// Seconds left in the minute of `unix`.
pub(super) fn to_window_end(unix: u64) -> u64 {
    60 - unix % 60
}

/// A lease of `kind` of `cap` for `tenant` (or its key `k`).
pub(super) fn lease(
    tenant: &Tenant,
    k: Option<&TenantKey>,
    kind: Kind,
    window: u64,
    ask: u64,
    cap: u32,
) -> Lease {
    Lease {
        tenant: tenant.name.clone(),
        key: k.map(|k| k.id.clone()),
        kind,
        window,
        ask,
        limit: u64::from(cap),
    }
}

/// Which limit a take is of (borrowed: a lease is built on a miss only).
pub(super) struct Which<'a> {
    pub(super) tenant: &'a Tenant,
    pub(super) k: Option<&'a TenantKey>,
    pub(super) kind: Kind,
    pub(super) window: u64,
    pub(super) cap: u32,
}

/// Takes `n` of `l.cap` from `slot` in the minute of `unix`, leasing on
/// a miss; notes the window for the rate headers.
pub(super) async fn take(
    g: &Global,
    slot: &WindowSlot,
    l: Which<'_>,
    n: u64,
    unix: u64,
    note: &mut Option<Window>,
) -> Result<(), Short> {
    let (window, cap) = (l.window, l.cap);
    let slice = g.slice_of(u64::from(cap));
    let mut taken = slot.take(window, n, slice);
    if let Take::Miss { ask } = taken {
        let lease = lease(l.tenant, l.k, l.kind, window, ask, cap);
        let got = g.lease(lease).await.ok_or_else(|| unleased(g))?;
        slot.granted(window, got.got, got.left, got.got < ask);
        taken = slot.take(window, n, slice);
    }
    let reset = Duration::from_secs(to_window_end(unix));
    let left = match taken {
        Take::Taken { left } => left,
        _ => 0,
    };
    RateInfo::note(
        note,
        Window {
            limit: cap,
            remaining: left.min(u64::from(cap)),
            reset,
        },
    );
    match taken {
        Take::Taken { .. } => Ok(()),
        _ => Err(Short::Spent),
    }
}

/// The error of a short take: the limit's 429, or `None` (unreachable).
pub(super) fn refusal(
    short: Short,
    tenant: &Tenant,
    k: Option<&TenantKey>,
    what: &'static str,
    unix: u64,
) -> Option<ProxyError> {
    match short {
        Short::Unreachable => None,
        Short::NotNow => Some(ProxyError::TenantLimited {
            who: who(tenant, k),
            what,
            retry_after: 1,
        }),
        Short::Spent => Some(ProxyError::TenantLimited {
            who: who(tenant, k),
            what,
            retry_after: to_window_end(unix) as u32,
        }),
    }
}
