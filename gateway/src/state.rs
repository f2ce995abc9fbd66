//! The gateway's state: one atomically swapped [`Snapshot`] of everything
//! that changes together, plus what outlives any one config.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use switchyard_config::Config;
use switchyard_router::{ReplicaTable, StatsRegistry};

use crate::admission::Queues;
use crate::proxy::failover::RetryBudget;
use crate::reload::Control;
use crate::upstream::{Upstream, UpstreamClient};

/// Everything one config generation needs to serve a request. Built in full
/// before it is published; a request loads it once and keeps it for its
/// whole life, so it never sees half of one config and half of another.
pub struct Snapshot {
    /// Increases by one with every applied config.
    pub generation: u64,
    /// The validated config.
    pub config: Arc<Config>,
    /// Groups, versions, replicas and their live stats.
    pub table: ReplicaTable,
    /// Per-replica upstream details, same index as `table.entries()`.
    pub upstreams: Vec<Upstream>,
    /// Pooled HTTP client to the replicas.
    pub client: UpstreamClient,
    /// `generation` as a ready-made header value.
    pub generation_header: http::HeaderValue,
}

/// The shared state behind both listeners.
pub struct Gateway {
    /// Gateway-wide cap on retries, shared by every request and generation.
    pub retry_budget: RetryBudget,
    /// Gateway-wide count of request-body bytes held for replay.
    pub buffer_budget: crate::proxy::budget::BufferBudget,
    /// Per-group wait queues for admission control.
    pub queues: Queues,
    /// Prometheus metric families.
    pub metrics: crate::metrics::Metrics,
    /// Recent notable events (ejections, reloads, rollouts) for operators.
    pub events: crate::events::Events,
    /// Automatic canary rollouts and the figures they are judged on.
    pub rollouts: crate::rollout::Rollouts,
    /// Estimated spend from reported token usage (`GET /admin/costs`).
    pub costs: crate::costs::Costs,
    current: ArcSwap<Snapshot>,
    pub(crate) stats: StatsRegistry,
    ready: AtomicBool,
    control: Mutex<Control>,
}

impl Snapshot {
    /// Builds a snapshot for `config`. Reuses `previous`'s connection pool
    /// when the settings it was built with are unchanged, so a reload does
    /// not cost every replica a fresh TCP handshake.
    pub(crate) fn prepare(
        config: Config,
        stats: &StatsRegistry,
        generation: u64,
        previous: Option<&Snapshot>,
    ) -> Snapshot {
        let table = ReplicaTable::build(&config, stats);
        let limits = &config.server.limits;
        let upstreams = config
            .replicas
            .iter()
            .map(|r| Upstream::new(r, limits))
            .collect();
        let client = match previous {
            Some(p) if same_pool(&p.config.server.limits, limits) => p.client.clone(),
            _ => crate::upstream::client(limits),
        };
        Snapshot {
            generation,
            config: Arc::new(config),
            table,
            upstreams,
            client,
            generation_header: http::HeaderValue::from(generation),
        }
    }
}

fn same_pool(a: &switchyard_config::Limits, b: &switchyard_config::Limits) -> bool {
    a.connect_timeout == b.connect_timeout
        && a.pool_idle_timeout == b.pool_idle_timeout
        && a.pool_max_idle_per_host == b.pool_max_idle_per_host
}

impl Gateway {
    /// Builds the first snapshot (generation 1).
    pub fn new(config: Config) -> Arc<Self> {
        let stats = StatsRegistry::new();
        let control = Control::new(config.clone());
        let first = Snapshot::prepare(config, &stats, 1, None);
        Arc::new(Self {
            retry_budget: RetryBudget::default(),
            buffer_budget: Default::default(),
            queues: Queues::default(),
            metrics: crate::metrics::Metrics::default(),
            events: crate::events::Events::default(),
            rollouts: crate::rollout::Rollouts::default(),
            costs: crate::costs::Costs::default(),
            current: ArcSwap::from_pointee(first),
            stats,
            ready: AtomicBool::new(false),
            control: Mutex::new(control),
        })
    }

    /// The snapshot a new request should use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes `next`. Requests already running keep the snapshot they
    /// loaded; new ones get this one.
    pub(crate) fn store(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
    }

    /// The control-plane state (reloads, overrides, history). Never taken
    /// on the request path.
    pub(crate) fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `/readyz` and `/v2/health/ready` should say yes.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Set once listeners are bound; cleared when shutdown begins so load
    /// balancers stop sending before we stop accepting.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}
