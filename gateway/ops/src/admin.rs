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

use crate::state::Ops;

/// The admin API as a value (tests call it with `oneshot`, no socket).
pub fn router(gw: Arc<Ops>) -> Router {
    let admin = Router::new()
        .merge(crate::admin_replicas::routes())
        .merge(crate::control_api::routes())
        .route("/admin/costs", get(crate::admin_costs::admin))
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

async fn require_token(State(gw): State<Arc<Ops>>, req: Request, next: Next) -> Response {
    let snap = gw.proxy.snapshot();
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
