//! The gateway's state: one atomically swapped [`Snapshot`] of everything
//! that changes together, plus what outlives any one config.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use switchyard_config::Config;
use switchyard_router::{ReplicaTable, StatsRegistry};

use crate::admission::Queues;
use crate::proxy::failover::RetryBudget;
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
    /// Per-group wait queues for admission control.
    pub queues: Queues,
    /// Prometheus metric families.
    pub metrics: crate::metrics::Metrics,
    /// Recent notable events (ejections, reloads, rollouts) for operators.
    pub events: crate::events::Events,
    current: ArcSwap<Snapshot>,
    stats: StatsRegistry,
    ready: AtomicBool,
}

impl Gateway {
    /// Builds the first snapshot (generation 1).
    pub fn new(config: Config) -> Arc<Self> {
        let stats = StatsRegistry::new();
        let first = Self::prepare(config, &stats, 1);
        Arc::new(Self {
            retry_budget: RetryBudget::default(),
            queues: Queues::default(),
            metrics: crate::metrics::Metrics::default(),
            events: crate::events::Events::default(),
            current: ArcSwap::from_pointee(first),
            stats,
            ready: AtomicBool::new(false),
        })
    }

    fn prepare(config: Config, stats: &StatsRegistry, generation: u64) -> Snapshot {
        let table = ReplicaTable::build(&config, stats);
        let upstreams = config.replicas.iter().map(Upstream::new).collect();
        let client = crate::upstream::client(&config.server.limits);
        Snapshot {
            generation,
            config: Arc::new(config),
            table,
            upstreams,
            client,
            generation_header: http::HeaderValue::from(generation),
        }
    }

    /// The snapshot a new request should use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes `config` as the next generation. Requests already running
    /// keep the snapshot they loaded; new ones get this one.
    pub fn apply(&self, config: Config) -> u64 {
        let generation = self.current.load().generation + 1;
        let next = Self::prepare(config, &self.stats, generation);
        self.current.store(Arc::new(next));
        let current = self.current.load();
        self.stats.retain(|id| current.table.contains(id));
        generation
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
