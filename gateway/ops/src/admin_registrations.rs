//! Discovery through the admin API: members of a `registration` template
//! register, heartbeat and deregister; operators read every template's
//! source and lease.
//!
//! | Method | Path | Does |
//! |---|---|---|
//! | POST   | `/admin/registrations` | `{"template": T, "url": "http://ip:port", "ttl_ms": N}`: registers (201) or renews (200) the member `T@ip:port` |
//! | POST   | `/admin/registrations/{id}/heartbeat` | renews the lease for its TTL; 404 once it expired (register again) |
//! | DELETE | `/admin/registrations/{id}` | ends the lease: the member leaves rotation and drains |
//! | GET    | `/admin/discovery` | every template's source (DNS name, last error, members) and every lease |
//!
//! Changes are operator-only (the guard's role check); a heartbeat is not
//! written to the audit feed (the guard skips it), or a fleet would drown it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use switchyard_control::reload::RegisterError;
use tokio::time::Instant;

use crate::admin_error::error_response;
use crate::state::Ops;

/// The routes of this resource (mounted behind the admin guard).
pub fn routes() -> Router<Arc<Ops>> {
    Router::new()
        .route("/admin/registrations", post(register))
        .route("/admin/registrations/{id}/heartbeat", post(heartbeat))
        .route("/admin/registrations/{id}", delete(deregister))
        .route("/admin/discovery", get(discovery))
}

/// `POST /admin/registrations` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    template: String,
    url: String,
    /// Lease length (default: the template's `max_ttl_ms`).
    ttl_ms: Option<u64>,
}

fn refused(e: &RegisterError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
    error_response(status, e.field(), &e.to_string())
}

/// Runs a controller call that may publish on a blocking thread.
async fn blocking<T: Send + 'static>(
    ops: &Ops,
    call: impl FnOnce(&switchyard_control::Controller) -> Result<T, RegisterError> + Send + 'static,
) -> Result<T, Response> {
    let control = Arc::clone(&ops.control);
    match tokio::task::spawn_blocking(move || call(&control)).await {
        Ok(result) => result.map_err(|e| refused(&e)),
        Err(e) => Err(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "",
            &format!("internal error: {e}"),
        )),
    }
}

async fn register(
    State(ops): State<Arc<Ops>>,
    body: Result<Json<Registration>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(r) = match body {
        Ok(b) => b,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, "", &e.body_text()),
    };
    let now = Instant::now();
    let ttl = r.ttl_ms.map(Duration::from_millis);
    match blocking(&ops, move |c| c.register(&r.template, &r.url, ttl, now)).await {
        Ok(done) => {
            let status = if done.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (status, Json(done)).into_response()
        }
        Err(resp) => resp,
    }
}

async fn heartbeat(State(ops): State<Arc<Ops>>, Path(id): Path<String>) -> Response {
    match ops.control.heartbeat(&id, Instant::now()) {
        Ok(lease) => Json(lease).into_response(),
        Err(e) => refused(&e),
    }
}

async fn deregister(State(ops): State<Arc<Ops>>, Path(id): Path<String>) -> Response {
    match blocking(&ops, move |c| c.deregister(&id)).await {
        Ok(applied) => Json(applied).into_response(),
        Err(resp) => resp,
    }
}

async fn discovery(State(ops): State<Arc<Ops>>) -> Response {
    let (sources, leases) = ops.control.discovery_view(Instant::now());
    Json(serde_json::json!({ "sources": sources, "leases": leases })).into_response()
}
