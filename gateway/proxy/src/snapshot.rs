//! One config generation: everything a request needs, built in full
//! (fallibly) before it is published, then swapped in as one value.

use std::sync::Arc;

use std::collections::HashMap;

use switchyard_config::{Config, Cost, Limits};
use switchyard_router::{ReplicaTable, StatsRegistry};

use crate::admission::{GroupQueue, Queues};
use crate::upstream::{Upstream, UpstreamClient};

/// Everything one config generation needs to serve a request. A request
/// loads it once and keeps it for its whole life, so it never sees half of
/// one config and half of another.
pub struct Snapshot {
    /// Increases by one with every applied config.
    pub generation: u64,
    /// The validated config.
    pub config: Arc<Config>,
    /// Groups, versions, replicas and their live stats.
    pub table: ReplicaTable,
    /// Per-replica upstream details, same index as `table.entries()`.
    pub upstreams: Vec<Upstream>,
    /// Per replica, same index, its group's wait queue (the queues outlive
    /// generations): found once here, not in a shared map per attempt.
    pub queues: Vec<Arc<GroupQueue>>,
    /// Pooled HTTP client to the replicas.
    pub client: UpstreamClient,
    /// `generation` as a ready-made header value.
    pub generation_header: http::HeaderValue,
    /// Per model group, the highest input and output prices of its
    /// replicas: what a tenant's budget reserves a request at, before
    /// the replica is known.
    pub max_price: HashMap<String, Cost>,
    /// Token verification (`auth.jwt`); `None` when no issuer is configured.
    pub jwt: Option<crate::jwt::JwtAuth>,
}

/// Why a generation could not be prepared; the serving one is untouched.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A replica's TLS trust could not be built from its CA certificates.
    #[error("replicas[{index}] (`{replica}`).tls.ca_file: {reason}")]
    Tls {
        /// Position in `replicas`.
        index: usize,
        /// Replica id.
        replica: String,
        /// What failed.
        reason: String,
    },
}

impl PrepareError {
    /// The config field at fault, for the admin API's `errors` list.
    pub fn field(&self) -> String {
        match self {
            PrepareError::Tls { index, .. } => format!("replicas[{index}].tls.ca_file"),
        }
    }
}

impl Snapshot {
    /// Builds a snapshot for `config`. Reuses `previous`'s connection pool
    /// when the settings it was built with are unchanged, so a reload does
    /// not cost every replica a fresh TCP handshake.
    pub fn prepare(
        config: Config,
        stats: &StatsRegistry,
        queues: &Queues,
        generation: u64,
        previous: Option<&Snapshot>,
    ) -> Result<Snapshot, PrepareError> {
        let limits = &config.server.limits;
        let upstreams = config
            .replicas
            .iter()
            .enumerate()
            .map(|(index, r)| {
                Upstream::new(r, limits).map_err(|reason| PrepareError::Tls {
                    index,
                    replica: r.id.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let table = ReplicaTable::build(&config, stats);
        let queues = config
            .replicas
            .iter()
            .map(|r| queues.get(&r.model))
            .collect();
        let client = match previous {
            Some(p) if same_pool(&p.config.server.limits, limits) => p.client.clone(),
            _ => crate::upstream::client(limits),
        };
        let jwt = crate::jwt::JwtAuth::prepare(&config, previous.and_then(|p| p.jwt.as_ref()));
        let mut max_price: HashMap<String, Cost> = HashMap::new();
        for r in &config.replicas {
            let p = max_price.entry(r.model.clone()).or_insert(r.cost);
            p.input_per_1k = p.input_per_1k.max(r.cost.input_per_1k);
            p.output_per_1k = p.output_per_1k.max(r.cost.output_per_1k);
        }
        Ok(Snapshot {
            max_price,
            jwt,
            generation,
            config: Arc::new(config),
            table,
            upstreams,
            queues,
            client,
            generation_header: http::HeaderValue::from(generation),
        })
    }
}

fn same_pool(a: &Limits, b: &Limits) -> bool {
    a.connect_timeout == b.connect_timeout
        && a.pool_idle_timeout == b.pool_idle_timeout
        && a.pool_max_idle_per_host == b.pool_max_idle_per_host
}
