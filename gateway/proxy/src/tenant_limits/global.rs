//! The seam to the fleet's shared counters (`global_limits`): the proxy
//! admits against the slices this instance holds ([`super::slot`]) and
//! asks a [`Leaser`] only when a slice is spent. The fleet crate
//! implements the leaser over Redis and runs the sync; this crate knows
//! nothing of Redis.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use switchyard_config::{FailMode, Tenant};

/// Which limit a slice is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Requests per minute.
    Rpm,
    /// Tokens per minute.
    Tpm,
    /// Requests in flight (the tenant's).
    Concurrency,
}

impl Kind {
    /// Its name in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rpm => "rpm",
            Kind::Tpm => "tpm",
            Kind::Concurrency => "conc",
        }
    }
}

/// One lease asked of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Tenant name.
    pub tenant: String,
    /// Key id (`None`: the tenant's own limit).
    pub key: Option<String>,
    /// Which limit.
    pub kind: Kind,
    /// The minute (Unix seconds / 60); 0 for concurrency.
    pub window: u64,
    /// How much this instance would like.
    pub ask: u64,
    /// The configured limit.
    pub limit: u64,
}

/// What the fleet granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// At most `ask`, never beyond the limit fleet-wide.
    pub got: u64,
    /// What the fleet has left after this grant.
    pub left: u64,
}

/// A lease's answer: `None` when the shared counters are unreachable.
pub type LeaseFuture = Pin<Box<dyn Future<Output = Option<Granted>> + Send>>;

/// Leases slices of the fleet's limits (one round trip, on a miss only).
pub trait Leaser: Send + Sync + fmt::Debug {
    /// Grants up to `lease.ask`, capped so the fleet never grants beyond
    /// `lease.limit` in a window (or held at once, for concurrency).
    fn lease(&self, lease: Lease) -> LeaseFuture;
}

/// The fleet mode of [`super::TenantLimits`], set once at start.
#[derive(Debug)]
pub struct Global {
    pub(super) leaser: Box<dyn Leaser>,
    slice: f64,
    mode: FailMode,
    degraded: AtomicBool,
    live: AtomicU32,
    lease_failures: AtomicU64,
}

impl Global {
    /// Shared limits leased through `leaser`, `slice` of a limit at once.
    pub fn new(leaser: Box<dyn Leaser>, slice: f64, mode: FailMode) -> Self {
        Self {
            leaser,
            slice,
            mode,
            degraded: AtomicBool::new(false),
            live: AtomicU32::new(1),
            lease_failures: AtomicU64::new(0),
        }
    }

    /// Whether the shared counters are unreachable (the limits then act
    /// by their failure mode).
    pub fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Set by the sync (and by a failed lease).
    pub fn set_degraded(&self, degraded: bool) {
        self.degraded.store(degraded, Ordering::Relaxed);
    }

    /// Instances last seen alive (what an open limit is divided by).
    pub fn live(&self) -> u32 {
        self.live.load(Ordering::Relaxed).max(1)
    }

    /// Set by the sync from the instances' heartbeats.
    pub fn set_live(&self, n: u32) {
        self.live.store(n.max(1), Ordering::Relaxed);
    }

    /// Leases that found the counters unreachable, since start.
    pub fn lease_failures(&self) -> u64 {
        self.lease_failures.load(Ordering::Relaxed)
    }

    /// The slice of `limit` one lease asks for (at least 1).
    pub fn slice_of(&self, limit: u64) -> u64 {
        ((limit as f64 * self.slice).ceil() as u64).clamp(1, limit.max(1))
    }

    /// `tenant`'s failure mode.
    pub(super) fn mode(&self, tenant: &Tenant) -> FailMode {
        tenant.on_redis_unavailable.unwrap_or(self.mode)
    }

    /// Asks the fleet; `None`: unreachable (this request falls back by
    /// its failure mode; the sync decides whether the fleet is degraded).
    pub(super) async fn lease(&self, lease: Lease) -> Option<Granted> {
        let got = self.leaser.lease(lease).await;
        if got.is_none() {
            self.lease_failures.fetch_add(1, Ordering::Relaxed);
        }
        got
    }
}
