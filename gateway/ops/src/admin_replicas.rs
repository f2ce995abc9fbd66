//! `GET /admin/replicas` (the live table) and `GET /admin/events` (the
//! feed of ejections, reloads and rollouts).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::state::Ops;

/// The routes of this resource (mounted behind the admin token).
pub fn routes() -> Router<Arc<Ops>> {
    Router::new()
        .route("/admin/replicas", get(replicas))
        .route("/admin/events", get(events))
}

/// `GET /admin/replicas`: fields in this order, for people reading it raw.
#[derive(Serialize)]
struct ReplicaTable<'a> {
    generation: u64,
    replicas: Vec<ReplicaRow<'a>>,
}

/// One row of `GET /admin/replicas`.
#[derive(Serialize)]
struct ReplicaRow<'a> {
    id: &'a str,
    model: &'a str,
    version: &'a str,
    cloud: &'a str,
    provider: &'static str,
    url: &'a str,
    protocol: &'static str,
    max_concurrency: u32,
    in_flight: u32,
    utilization: f64,
    ewma_latency_ms: Option<f64>,
    requests: u64,
    errors: u64,
    health: switchyard_router::HealthState,
    /// While ejected (or cooling down after `Retry-After`): time left, ms.
    ejection_ends_in_ms: Option<u64>,
    consecutive_failures: u32,
    ejections: u64,
    last_ejection_reason: Option<switchyard_router::EjectionReason>,
    /// Active health checks (when the group has them): down, probes in a row.
    active_check: Option<switchyard_router::ActiveView>,
    /// Share of full capacity during slow start (absent when not ramping).
    slow_start_ramp: Option<f64>,
    weight: u32,
    cost: switchyard_config::Cost,
    /// Cordoned by an operator (`POST /admin/replicas/{id}/cordon`).
    cordoned: bool,
    /// How it joined the table: `config`, `dns`, `registered` or `kubernetes`.
    membership: switchyard_config::Membership,
    /// The template a discovered member was made from.
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<&'a str>,
    /// Whether it takes new requests, apart from health: `ready`,
    /// `awaiting_probe` (new, no good probe yet), `warming` (slow start),
    /// `cordoned`.
    readiness: &'static str,
    /// What the replica's inference engine last reported (replicas with an
    /// `engine` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<EngineRow>,
}

/// A replica's last engine figures, and whether routing still trusts them.
#[derive(Serialize)]
struct EngineRow {
    kind: &'static str,
    waiting: Option<u32>,
    running: Option<u32>,
    kv_cache_usage: Option<f64>,
    age_ms: Option<u64>,
    stale: bool,
    /// The LoRA adapters it reported (vLLM with LoRA on), as of the same scrape.
    #[serde(skip_serializing_if = "Option::is_none")]
    lora: Option<LoraRow>,
}

/// A replica's LoRA adapters as its engine last reported them.
#[derive(Serialize)]
struct LoraRow {
    running: Vec<String>,
    waiting: Vec<String>,
    max_lora: u32,
}

async fn replicas(State(gw): State<Arc<Ops>>) -> Response {
    let snap = gw.proxy.snapshot();
    let now = switchyard_router::clock();
    let rows: Vec<ReplicaRow<'_>> = snap
        .table
        .entries()
        .iter()
        .map(|e| {
            let r = &e.replica;
            let in_flight = e.stats.in_flight();
            let health = e.stats.health.state(now);
            let ejection_ends_in_ms = match health {
                switchyard_router::HealthState::Ejected { until_ms } => {
                    Some(until_ms.saturating_sub(now))
                }
                _ => None,
            };
            ReplicaRow {
                id: &r.id,
                model: &r.model,
                version: &r.version,
                cloud: &r.cloud,
                provider: r.provider.as_str(),
                url: r.url.as_str(),
                protocol: r.protocol.as_str(),
                max_concurrency: r.max_concurrency,
                in_flight,
                utilization: f64::from(in_flight) / f64::from(r.max_concurrency),
                ewma_latency_ms: e.stats.ewma_latency().map(|d| d.as_secs_f64() * 1e3),
                requests: e.stats.requests(),
                errors: e.stats.errors(),
                health,
                ejection_ends_in_ms,
                consecutive_failures: e.stats.health.consecutive_failures(),
                ejections: e.stats.health.ejections(),
                last_ejection_reason: e.stats.health.last_ejection_reason(),
                active_check: e.stats.health.active(),
                slow_start_ramp: e
                    .stats
                    .health
                    .warming_since()
                    .map(|_| f64::from(e.capacity(now)) / f64::from(r.max_concurrency))
                    .filter(|ramp| *ramp < 1.0),
                weight: r.weight,
                cost: r.cost,
                cordoned: e.stats.is_cordoned(),
                membership: r.membership,
                template: r.template.as_deref(),
                readiness: readiness(e, now),
                engine: r.engine.map(|kind| {
                    let stale_ms = snap
                        .table
                        .group(&r.model)
                        .map_or(0, |g| g.scoring.engine_stale.as_millis() as u64);
                    let last = e.stats.engine.last();
                    let age = last.map(|(_, at)| now.saturating_sub(at));
                    EngineRow {
                        kind: kind.as_str(),
                        waiting: last.map(|(f, _)| f.waiting),
                        running: last.map(|(f, _)| f.running),
                        kv_cache_usage: last.and_then(|(f, _)| f.kv),
                        age_ms: age,
                        stale: age.is_none_or(|a| a > stale_ms),
                        lora: e.stats.lora.last().map(|(a, _)| LoraRow {
                            running: a.running.clone(),
                            waiting: a.waiting.clone(),
                            max_lora: a.max,
                        }),
                    }
                }),
            }
        })
        .collect();
    Json(ReplicaTable {
        generation: snap.generation,
        replicas: rows,
    })
    .into_response()
}

/// See `ReplicaRow::readiness`.
fn readiness(e: &switchyard_router::Entry, now: u64) -> &'static str {
    if e.stats.is_cordoned() {
        "cordoned"
    } else if e.stats.health.is_unready() {
        "awaiting_probe"
    } else if e.capacity(now) < e.replica.max_concurrency {
        "warming"
    } else {
        "ready"
    }
}

#[derive(serde::Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

/// `GET /admin/events?since=SEQ`: the event feed after `SEQ`.
async fn events(
    State(gw): State<Arc<Ops>>,
    axum::extract::Query(q): axum::extract::Query<Since>,
) -> Response {
    Json(serde_json::json!({ "events": gw.control.events.since(q.since) })).into_response()
}
