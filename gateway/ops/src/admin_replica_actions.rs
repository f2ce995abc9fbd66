//! Operator actions on one replica: `POST /admin/replicas/{id}/cordon`
//! (no new requests), `/uncordon` (back in rotation) and `/drain` (cordon,
//! then wait until its in-flight requests have finished, up to
//! `timeout_ms`, default 30 s, at most 10 min). The guard in front of the
//! admin API makes these operator-only and records each in the audit feed.
//!
//! The cordon flag lives in the replica's live stats, which follow its id:
//! it survives reloads; the controller also keeps the cordoned ids in a
//! file next to the config, so it survives a restart too (and a
//! discovered member that leaves and comes back is still cordoned).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use switchyard_router::ReplicaStats;

use crate::admin_error::error_response;
use crate::state::Ops;

/// Longest a drain call waits.
const MAX_DRAIN: Duration = Duration::from_secs(600);
/// Default wait of a drain call.
const DEFAULT_DRAIN: Duration = Duration::from_secs(30);
/// How often a drain looks at the in-flight count.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// The routes of this resource (mounted behind the admin guard).
pub fn routes() -> Router<Arc<Ops>> {
    Router::new()
        .route("/admin/replicas/{id}/cordon", post(cordon))
        .route("/admin/replicas/{id}/uncordon", post(uncordon))
        .route("/admin/replicas/{id}/drain", post(drain))
}

/// The replica's live stats in the serving snapshot.
fn replica(ops: &Ops, id: &str) -> Option<Arc<ReplicaStats>> {
    let snap = ops.proxy.snapshot();
    snap.table
        .entries()
        .iter()
        .find(|e| e.replica.id == id)
        .map(|e| Arc::clone(&e.stats))
}

fn not_found(id: &str) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "id",
        &format!("no replica `{id}` in the serving config"),
    )
}

/// Saves the cordon (a synced file write: on a blocking thread); a
/// failure to write is reported, the cordon holds. In etcd mode it is
/// written for the whole fleet and applied here first; etcd unreachable
/// is an error answer.
async fn remember(ops: &Ops, id: &str, cordoned: bool) -> Result<(), Response> {
    if let Some(f) = ops.fleet() {
        return crate::admin_fleet::cordon(ops, f, id, cordoned).await;
    }
    let (control, owned) = (Arc::clone(&ops.control), id.to_owned());
    let saved = tokio::task::spawn_blocking(move || control.remember_cordon(&owned, cordoned))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
    if let Err(e) = saved {
        ops.control.events.push(
            "cordons_not_saved",
            id.to_owned(),
            format!("{e}: holds until restart only"),
        );
    }
    Ok(())
}

fn state(id: &str, stats: &ReplicaStats, drained: Option<bool>) -> Response {
    let mut body = serde_json::json!({
        "id": id,
        "cordoned": stats.is_cordoned(),
        "in_flight": stats.in_flight(),
    });
    if let Some(d) = drained {
        body["drained"] = d.into();
    }
    Json(body).into_response()
}

async fn cordon(State(ops): State<Arc<Ops>>, Path(id): Path<String>) -> Response {
    let Some(stats) = replica(&ops, &id) else {
        return not_found(&id);
    };
    if let Err(r) = remember(&ops, &id, true).await {
        return r;
    }
    if stats.cordon() {
        ops.control.events.push(
            "replica_cordoned",
            id.clone(),
            format!("no new requests; {} in flight finish", stats.in_flight()),
        );
    }
    state(&id, &stats, None)
}

async fn uncordon(State(ops): State<Arc<Ops>>, Path(id): Path<String>) -> Response {
    let Some(stats) = replica(&ops, &id) else {
        return not_found(&id);
    };
    if let Err(r) = remember(&ops, &id, false).await {
        return r;
    }
    if stats.uncordon() {
        ops.control.events.push(
            "replica_uncordoned",
            id.clone(),
            "back in rotation".to_owned(),
        );
    }
    state(&id, &stats, None)
}

/// `POST /admin/replicas/{id}/drain` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DrainBody {
    timeout_ms: Option<u64>,
}

async fn drain(
    State(ops): State<Arc<Ops>>,
    Path(id): Path<String>,
    body: Option<Json<DrainBody>>,
) -> Response {
    let Some(stats) = replica(&ops, &id) else {
        return not_found(&id);
    };
    let wait = body
        .and_then(|Json(b)| b.timeout_ms)
        .map_or(DEFAULT_DRAIN, Duration::from_millis)
        .min(MAX_DRAIN);
    if let Err(r) = remember(&ops, &id, true).await {
        return r;
    }
    if stats.cordon() {
        ops.control.events.push(
            "replica_draining",
            id.clone(),
            format!(
                "drain asked: no new requests; {} in flight get {} ms",
                stats.in_flight(),
                wait.as_millis()
            ),
        );
    }
    let deadline = tokio::time::Instant::now() + wait;
    while stats.in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let drained = stats.in_flight() == 0;
    if drained {
        ops.control.events.push(
            "replica_drained",
            id.clone(),
            "nothing in flight; cordoned until uncordoned".to_owned(),
        );
    }
    let mut resp = state(&id, &stats, Some(drained));
    if !drained {
        *resp.status_mut() = StatusCode::ACCEPTED;
    }
    resp
}
