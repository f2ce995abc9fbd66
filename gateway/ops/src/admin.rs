//! The admin API, on its own listener: probes, the replica table, the config.
//!
//! `/healthz` and `/readyz` are open (orchestrators probe them), and so is
//! the dashboard's static shell (`/`, `/dashboard/*`: no data in it);
//! everything under `/admin/` and `/metrics` goes through
//! [`crate::admin_guard`] (tokens and roles, cross-site refusals, the audit
//! record), and every error answer has the shape of [`crate::admin_error`].

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::Ops;

/// The admin API as a value (tests call it with `oneshot`, no socket).
pub fn router(gw: Arc<Ops>) -> Router {
    let admin = Router::new()
        .merge(crate::admin_replicas::routes())
        .merge(crate::admin_replica_actions::routes())
        .merge(crate::admin_registrations::routes())
        .merge(crate::control_api::routes())
        .merge(crate::admin_keys::routes())
        .merge(crate::admin_fleet::routes())
        .route("/admin/costs", get(crate::admin_costs::admin))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&gw),
            crate::admin_guard::guard,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        // The dashboard's static shell holds no data; it asks for the token.
        .merge(crate::dashboard::routes())
        .merge(admin)
        .layer(middleware::map_response(crate::admin_error::uniform))
        .with_state(gw)
}

async fn readyz(State(gw): State<Arc<Ops>>) -> impl IntoResponse {
    if gw.proxy.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(gw): State<Arc<Ops>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.render_metrics(),
    )
        .into_response()
}
