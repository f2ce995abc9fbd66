//! The admin API, on its own listener: probes, the replica table, the config.
//!
//! `/healthz` and `/readyz` are open (orchestrators probe them), and so is
//! the dashboard's static shell (`/`, `/dashboard/*`: no data in it);
//! everything under `/admin/` requires
//! `Authorization: Bearer <server.admin_token>` when a token is configured.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::state::Gateway;

/// The admin API as a value (tests call it with `oneshot`, no socket).
pub fn router(gw: Arc<Gateway>) -> Router {
    let admin = Router::new()
        .route("/admin/replicas", get(replicas))
        .merge(crate::control_api::routes())
        .route("/admin/events", get(events))
        .route("/admin/costs", get(crate::costs::admin))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&gw),
            require_token,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        // The dashboard's static shell holds no data; it asks for the token.
        .merge(crate::dashboard::routes())
        .merge(admin)
        .with_state(gw)
}

async fn require_token(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let snap = gw.snapshot();
    let Some(token) = &snap.config.server.admin_token else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    match presented {
        Some(p) if token.matches(p) => next.run(req).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(
                serde_json::json!({ "error": "admin token required (Authorization: Bearer ...)" }),
            ),
        )
            .into_response(),
    }
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> impl IntoResponse {
    if gw.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
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
}

async fn replicas(State(gw): State<Arc<Gateway>>) -> Response {
    let snap = gw.snapshot();
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
            }
        })
        .collect();
    Json(ReplicaTable {
        generation: snap.generation,
        replicas: rows,
    })
    .into_response()
}

#[derive(serde::Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

/// `GET /admin/events?since=SEQ`: the event feed after `SEQ`.
async fn events(
    State(gw): State<Arc<Gateway>>,
    axum::extract::Query(q): axum::extract::Query<Since>,
) -> Response {
    Json(serde_json::json!({ "events": gw.events.since(q.since) })).into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&gw),
    )
        .into_response()
}
