//! The data plane's value: what every request shares and what outlives a
//! config generation. Serving a request is [`Proxy::handle`], in
//! `handle.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use switchyard_config::Config;
use switchyard_router::StatsRegistry;
use tokio_util::sync::CancellationToken;

use crate::connections::Connections;
use crate::observe::Observer;
use crate::runtime_keys::RuntimeKeys;
use crate::snapshot::{PrepareError, Snapshot};
use crate::tenant_limits::TenantLimits;
use crate::{admission, budget, retry_budget};

/// The data plane: shared by every connection of the data listener.
pub struct Proxy {
    current: ArcSwap<Snapshot>,
    stats: StatsRegistry,
    /// Gateway-wide cap on retries, shared by every request and generation.
    retry_budget: Arc<retry_budget::RetryBudget>,
    /// Gateway-wide count of request-body bytes held for replay.
    buffer_budget: budget::BufferBudget,
    /// Per-group wait queues for admission control.
    queues: admission::Queues,
    ready: AtomicBool,
    observer: Arc<dyn Observer>,
    /// Open client connections (the accept loop counts them).
    connections: Arc<Connections>,
    /// Per-tenant request rate and in-flight counts.
    tenant_limits: TenantLimits,
    /// API keys created at run time (the admin API publishes them).
    runtime_keys: RuntimeKeys,
    /// Cancelled when the shutdown grace period is over: event streams
    /// still running end with an error event naming the shutdown.
    closing: CancellationToken,
}

impl Proxy {
    /// Builds the first snapshot (generation 1) of `config`. Fails when a
    /// replica's upstream cannot be prepared (its TLS settings).
    pub fn new(config: Config, observer: Arc<dyn Observer>) -> Result<Self, PrepareError> {
        let stats = StatsRegistry::new();
        let queues = admission::Queues::default();
        let first = Snapshot::prepare(config, &stats, &queues, 1, None)?;
        Ok(Self {
            current: ArcSwap::from_pointee(first),
            stats,
            retry_budget: Arc::default(),
            buffer_budget: budget::BufferBudget::default(),
            queues,
            ready: AtomicBool::new(false),
            observer,
            connections: Arc::default(),
            tenant_limits: TenantLimits::default(),
            runtime_keys: RuntimeKeys::default(),
            closing: CancellationToken::new(),
        })
    }

    /// The snapshot a new request should use.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Prepares the next generation of `config` next to the serving one
    /// (reusing its connection pool when it can). Publishing it is
    /// [`Proxy::store`]: the control plane does both under its own lock.
    pub fn prepare(&self, config: Config, generation: u64) -> Result<Snapshot, PrepareError> {
        let old = self.snapshot();
        Snapshot::prepare(config, &self.stats, &self.queues, generation, Some(&old))
    }

    /// Publishes `next`. Requests already running keep the snapshot they
    /// loaded; new ones get this one.
    pub fn store(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
    }

    /// Live per-replica stats, kept across generations by replica identity.
    pub fn stats(&self) -> &StatsRegistry {
        &self.stats
    }

    /// Per-group wait queues (their depth is a metric).
    pub fn queues(&self) -> &admission::Queues {
        &self.queues
    }

    /// Request-body bytes held for replay right now.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer_budget.used()
    }

    /// Open client connections, their caps and counts.
    pub fn connections(&self) -> &Arc<Connections> {
        &self.connections
    }

    /// The observer every request reports to.
    pub fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
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

    /// API keys created at run time; the control plane's key store
    /// publishes into it, requests read it when the config's keys miss.
    pub fn runtime_keys(&self) -> &RuntimeKeys {
        &self.runtime_keys
    }

    /// The shutdown grace period is over: every event stream still running
    /// ends now with an SSE error event that names the shutdown (other
    /// bodies are cut when their connection closes).
    pub fn close_streams(&self) {
        self.closing.cancel();
    }

    /// Cancelled by [`Proxy::close_streams`].
    pub(crate) fn closing(&self) -> &CancellationToken {
        &self.closing
    }

    /// Per-tenant and per-key limits, budgets and spend.
    pub fn tenant_limits(&self) -> &TenantLimits {
        &self.tenant_limits
    }

    pub(crate) fn retry_budget(&self) -> &Arc<retry_budget::RetryBudget> {
        &self.retry_budget
    }

    pub(crate) fn buffer_budget(&self) -> &budget::BufferBudget {
        &self.buffer_budget
    }
}
