//! Families read at scrape time from the current snapshot: nothing on the
//! request path writes them, and a replica or group a reload removed is
//! simply not in the next scrape.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use switchyard_router::{Entry, clock};

use switchyard_proxy::Snapshot;

use switchyard_control::Controller;
use switchyard_proxy::Proxy;
use switchyard_proxy::connections::Refused;

use crate::costs::{CostRow, Costs};

/// Health states always rendered (0 or 1), so a query for one sees a 0
/// rather than no series. A state the router adds later is rendered too,
/// when a replica is in it.
const STATES: [&str; 4] = ["healthy", "ejected", "probing", "down"];

/// A registry holding the scrape-time collector for `snap`.
pub(super) fn registry(
    proxy: &Proxy,
    control: &Controller,
    costs: &Costs,
    snap: Arc<Snapshot>,
) -> Registry {
    let depths = snap
        .table
        .groups()
        .map(|g| (g.name.clone(), proxy.queues().get(&g.name).len()))
        .collect();
    let mut r = Registry::with_prefix("switchyard");
    // Spend of replicas the serving config has (under their current
    // labels); `GET /admin/costs` keeps the history of removed ones, the
    // scrape does not, so series follow the replica table like the rest.
    let costs = costs
        .rows()
        .into_iter()
        .filter(|c| {
            snap.table.entries().iter().any(|e| {
                let r = &e.replica;
                r.id == c.replica
                    && r.model == c.model
                    && r.version == c.version
                    && r.cloud == c.cloud
            })
        })
        .collect();
    r.register_collector(Box::new(super::tenants::TenantSpend::new(
        &snap.config,
        proxy.runtime_keys(),
        proxy.tenant_limits().figures(),
    )));
    if let Some(g) = proxy.tenant_limits().global() {
        r.register_collector(Box::new(super::global_limits::GlobalLimits::new(g)));
    }
    r.register_collector(Box::new(Live {
        snap,
        depths,
        now: clock(),
        costs,
        rollouts: control.rollouts.view(),
        discovery: control.discovery_view(tokio::time::Instant::now()).0,
        conns: {
            let c = proxy.connections();
            (
                c.open(),
                c.refused(Refused::Listener),
                c.refused(Refused::Client),
                c.silent(),
            )
        },
        accepted: proxy.connections().accepted(),
    }));
    r
}

struct Live {
    snap: Arc<Snapshot>,
    depths: Vec<(String, usize)>,
    now: u64,
    /// Spend ledger rows of the replicas in `snap`.
    costs: Vec<CostRow>,
    rollouts: Vec<switchyard_control::rollout::RolloutView>,
    /// Each replica template's source: members now, failing or not.
    discovery: Vec<switchyard_control::members::SourceStatus>,
    /// Open data-plane connections, refused (over the cap: listener,
    /// client), closed silent.
    conns: (usize, u64, u64, u64),
    /// Connections admitted per data-plane worker.
    accepted: Vec<(usize, u64)>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("generation", &self.snap.generation)
            .finish_non_exhaustive()
    }
}

fn labels(e: &Entry) -> [(&'static str, &str); 4] {
    let r = &e.replica;
    [
        ("model", r.model.as_str()),
        ("version", r.version.as_str()),
        ("cloud", r.cloud.as_str()),
        ("replica", r.id.as_str()),
    ]
}

/// The state's snake_case name, as the admin API shows it.
fn state_name(e: &Entry, now: u64) -> String {
    serde_json::to_value(e.stats.health.state(now))
        .ok()
        .and_then(|v| v.get("state")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

impl Live {
    fn per_replica(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        value: impl Fn(&Entry) -> f64,
    ) -> std::fmt::Result {
        let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for e in self.snap.table.entries() {
            ConstGauge::new(value(e)).encode(m.encode_family(&labels(e))?)?;
        }
        Ok(())
    }
}

impl Live {
    /// Members per template and whether its source is failing (the last
    /// good members serving meanwhile); nothing without templates.
    fn discovery(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        if self.discovery.is_empty() {
            return Ok(());
        }
        let mut m = encoder.encode_descriptor(
            "discovery_members",
            "Replicas a template's DNS name, registrations or Kubernetes EndpointSlices put in the table (source=dns|registered|kubernetes)",
            None,
            MetricType::Gauge,
        )?;
        for d in &self.discovery {
            let l = [
                ("template", d.template.as_str()),
                ("source", d.kind.as_str()),
            ];
            ConstGauge::new(d.members as i64).encode(m.encode_family(&l)?)?;
        }
        let mut m = encoder.encode_descriptor(
            "discovery_failing",
            "1 while a template's last resolution failed or found nothing (its last good members keep serving)",
            None,
            MetricType::Gauge,
        )?;
        for d in &self.discovery {
            let failing = i64::from(d.last_error.is_some());
            ConstGauge::new(failing)
                .encode(m.encode_family(&[("template", d.template.as_str())])?)?;
        }
        Ok(())
    }

    /// Data-plane connections: open, admitted per worker, closed at once
    /// over a cap, closed for sending nothing.
    fn connections(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let (open, listener, client, silent) = self.conns;
        let m = encoder.encode_descriptor(
            "connections_open",
            "Open client connections on the data listener",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(open as i64).encode(m)?;
        let mut m = encoder.encode_descriptor(
            "connections_accepted",
            "Client connections admitted since start, per data-plane worker (server.workers; worker 0 when shared)",
            None,
            MetricType::Counter,
        )?;
        for (worker, n) in &self.accepted {
            let worker = worker.to_string();
            ConstCounter::new(*n).encode(m.encode_family(&[("worker", worker.as_str())])?)?;
        }
        let mut m = encoder.encode_descriptor(
            "connections_refused",
            "Client connections closed at once: over server.limits.max_connections (cap=listener) or max_connections_per_client (cap=client)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(listener).encode(m.encode_family(&[("cap", "listener")])?)?;
        ConstCounter::new(client).encode(m.encode_family(&[("cap", "client")])?)?;
        let m = encoder.encode_descriptor(
            "connections_silent_closed",
            "Client connections closed for sending nothing within header_read_timeout_ms",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(silent).encode(m)?;
        Ok(())
    }

    /// Estimated spend and token usage from the cost ledger, and the state
    /// of automatic rollouts.
    fn costs_and_rollouts(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let row_labels = |c: &CostRow| {
            [
                ("model", c.model.clone()),
                ("version", c.version.clone()),
                ("cloud", c.cloud.clone()),
                ("replica", c.replica.clone()),
            ]
        };
        let mut m = encoder.encode_descriptor(
            "estimated_spend",
            "Estimated spend from reported token usage, priced by the replica's cost (config currency)",
            None,
            MetricType::Counter,
        )?;
        for c in &self.costs {
            ConstCounter::new(c.spend).encode(m.encode_family(&row_labels(c))?)?;
        }
        let mut m = encoder.encode_descriptor(
            "tokens",
            "Tokens reported by replicas' usage, by direction",
            None,
            MetricType::Counter,
        )?;
        for c in &self.costs {
            for (direction, n) in [("input", c.input_tokens), ("output", c.output_tokens)] {
                let [a, b, d, e] = row_labels(c);
                let l = [a, b, d, e, ("direction", direction.to_owned())];
                ConstCounter::new(n).encode(m.encode_family(&l)?)?;
            }
        }
        let mut m = encoder.encode_descriptor(
            "unmetered_responses",
            "Successful answers that reported no token usage (not priced, never guessed)",
            None,
            MetricType::Counter,
        )?;
        for c in &self.costs {
            ConstCounter::new(c.unknown_usage).encode(m.encode_family(&row_labels(c))?)?;
        }
        let mut m = encoder.encode_descriptor(
            "rollout_canary_percent",
            "Canary traffic percentage of the current rollout step",
            None,
            MetricType::Gauge,
        )?;
        for r in &self.rollouts {
            let l = [
                ("model", r.group.as_str()),
                ("canary", r.spec.canary.as_str()),
            ];
            ConstGauge::new(i64::from(r.percent)).encode(m.encode_family(&l)?)?;
        }
        let mut m = encoder.encode_descriptor(
            "rollout_phase",
            "1 for the rollout's current phase, 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        for r in &self.rollouts {
            let current = r.phase.name();
            for phase in switchyard_control::rollout::PHASES {
                let l = [
                    ("model", r.group.as_str()),
                    ("canary", r.spec.canary.as_str()),
                    ("phase", phase),
                ];
                ConstGauge::new(i64::from(phase == current)).encode(m.encode_family(&l)?)?;
            }
        }
        Ok(())
    }
}

impl Collector for Live {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        let entries = self.snap.table.entries();
        self.per_replica(
            &mut encoder,
            "replica_in_flight",
            "Requests holding one of the replica's concurrency slots",
            |e| f64::from(e.stats.in_flight()),
        )?;
        self.per_replica(
            &mut encoder,
            "replica_max_concurrency",
            "Configured concurrency slots of the replica",
            |e| f64::from(e.replica.max_concurrency),
        )?;
        self.per_replica(
            &mut encoder,
            "replica_utilization",
            "In-flight over max concurrency (0..1)",
            |e| f64::from(e.stats.in_flight()) / f64::from(e.replica.max_concurrency.max(1)),
        )?;
        self.per_replica(
            &mut encoder,
            "replica_ewma_latency_seconds",
            "Smoothed latency to response headers of successful requests (NaN before the first)",
            |e| e.stats.ewma_latency().map_or(f64::NAN, |d| d.as_secs_f64()),
        )?;
        self.per_replica(
            &mut encoder,
            "replica_engine_waiting",
            "Requests waiting in the replica's inference engine at its last scrape (NaN: no engine figures)",
            |e| e.stats.engine.last().map_or(f64::NAN, |(f, _)| f64::from(f.waiting)),
        )?;
        self.per_replica(
            &mut encoder,
            "replica_engine_kv_cache_usage",
            "KV-cache use (0..1) the replica's engine reported at its last scrape (NaN: none)",
            |e| {
                e.stats
                    .engine
                    .last()
                    .and_then(|(f, _)| f.kv)
                    .unwrap_or(f64::NAN)
            },
        )?;
        self.per_replica(
            &mut encoder,
            "replica_consecutive_failures",
            "Failures in a row since the last success (5 eject the replica)",
            |e| f64::from(e.stats.health.consecutive_failures()),
        )?;
        {
            let mut m = encoder.encode_descriptor(
                "replica_health",
                "1 for the replica's current health state, 0 for the others",
                None,
                MetricType::Gauge,
            )?;
            for e in entries {
                let current = state_name(e, self.now);
                let extra = (!STATES.contains(&current.as_str())).then_some(current.as_str());
                for state in STATES.iter().copied().chain(extra) {
                    let [a, b, c, d] = labels(e);
                    let l = [a, b, c, d, ("state", state)];
                    ConstGauge::new(i64::from(state == current)).encode(m.encode_family(&l)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "replica_ejections",
                "Times passive health ejected the replica (resets if its URL changes)",
                None,
                MetricType::Counter,
            )?;
            for e in entries {
                ConstCounter::new(e.stats.health.ejections())
                    .encode(m.encode_family(&labels(e))?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "version_weight",
                "Configured traffic weight of each version of a model group",
                None,
                MetricType::Gauge,
            )?;
            for g in self.snap.table.groups() {
                for v in &g.versions {
                    let l = [("model", g.name.as_str()), ("version", v.name.as_str())];
                    ConstGauge::new(i64::from(v.weight)).encode(m.encode_family(&l)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "queue_depth",
                "Requests waiting in a model group's admission queue",
                None,
                MetricType::Gauge,
            )?;
            for (group, depth) in &self.depths {
                let l = [("model", group.as_str())];
                ConstGauge::new(*depth as i64).encode(m.encode_family(&l)?)?;
            }
        }
        self.costs_and_rollouts(&mut encoder)?;
        self.connections(&mut encoder)?;
        self.discovery(&mut encoder)?;
        let m = encoder.encode_descriptor(
            "config_generation",
            "Generation of the config being served (1 at start, +1 per applied reload)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.snap.generation as i64).encode(m)?;
        let mut m = encoder.encode_descriptor(
            "config_info",
            "Always 1; the hash label identifies the config being served",
            None,
            MetricType::Gauge,
        )?;
        let l = [("hash", self.snap.config.hash.as_str())];
        ConstGauge::new(1i64).encode(m.encode_family(&l)?)?;
        Ok(())
    }
}
