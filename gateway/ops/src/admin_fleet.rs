//! The fleet (etcd mode): `GET /admin/fleet` lists the live instances
//! from `P/instances/`, and the changing endpoints of the other admin
//! files call here instead of their local path, so an operator action on
//! any instance is a fleet-wide change. Each writes to etcd, then answers
//! once this instance has applied it (or refused it: 422 with the field
//! paths); etcd unreachable is 503, a concurrent edit 409.
//!
//! | Method | Path | Does |
//! |---|---|---|
//! | GET | `/admin/fleet` | `{"mode", "self", "instances", "error"}`: this instance's status (also while etcd is away) and every live one's |

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use switchyard_control::keys::{KeyError, KeyRecord};
use switchyard_control::reload::{ReloadError, Trigger};
use switchyard_fleet::etcd::{Fleet, FleetError};

use crate::state::Ops;

/// How long a change waits for this instance to apply it.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// The routes of this resource (mounted behind the admin guard).
pub fn routes() -> Router<Arc<Ops>> {
    Router::new().route("/admin/fleet", get(fleet))
}

async fn fleet(State(gw): State<Arc<Ops>>) -> Response {
    let Some(f) = gw.fleet() else {
        return Json(json!({ "mode": "file", "instances": [] })).into_response();
    };
    let (instances, error) = match f.client().instances().await {
        Ok(list) => (list, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let o = f.options();
    Json(json!({
        "mode": "etcd",
        "endpoint": o.endpoint,
        "prefix": o.prefix,
        "self": f.status(),
        "instances": instances,
        "error": error,
    }))
    .into_response()
}

/// A write's revision applied here, answered as the local path answers.
async fn confirmed(
    gw: &Ops,
    f: &Fleet,
    written: Result<i64, FleetError>,
    trigger: Trigger,
) -> Response {
    let applied = match written {
        Ok(revision) => f
            .wait_applied(revision, APPLY_WAIT)
            .await
            .map(|()| revision),
        Err(e) => Err(e),
    };
    match applied {
        Ok(revision) => {
            let snap = gw.proxy.snapshot();
            Json(json!({
                "generation": snap.generation,
                "hash": snap.config.hash,
                "revision": revision,
                "changed": true,
                "trigger": trigger,
                "warnings": [],
            }))
            .into_response()
        }
        Err(e) => fleet_error(gw, &e),
    }
}

/// A fleet error in the control endpoints' shape.
pub(crate) fn fleet_error(gw: &Ops, e: &FleetError) -> Response {
    let status = match e {
        FleetError::Conflict { .. } => StatusCode::CONFLICT,
        FleetError::Refused { .. } | FleetError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        FleetError::NotApplied { .. } => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let errors: Vec<serde_json::Value> = match e {
        FleetError::Refused { errors, .. } => errors
            .iter()
            .map(|x| json!({ "field": x.path, "reason": x.message }))
            .collect(),
        other => vec![json!({ "field": "", "reason": other.to_string() })],
    };
    let generation = gw.proxy.snapshot().generation;
    (
        status,
        Json(json!({
            "error": format!("{e}; generation {generation} keeps serving"),
            "errors": errors,
            "generation": generation,
        })),
    )
        .into_response()
}

/// `POST /admin/models/{name}/weights` in etcd mode.
pub(crate) async fn weights(
    gw: &Ops,
    f: &Fleet,
    group: &str,
    weights: BTreeMap<String, u32>,
) -> Result<Response, ReloadError> {
    gw.control.state().check_weights(group, &weights)?;
    let written = f.client().put_weights(group, &weights).await;
    Ok(confirmed(gw, f, written, Trigger::Weights).await)
}

/// `POST /admin/models/{name}/promote` in etcd mode.
pub(crate) async fn promote(
    gw: &Ops,
    f: &Fleet,
    group: &str,
    version: &str,
) -> Result<Response, ReloadError> {
    let all = BTreeMap::from([(version.to_owned(), 100)]);
    gw.control.state().check_weights(group, &all)?;
    let written = f.client().put_stable(group, version).await;
    Ok(confirmed(gw, f, written, Trigger::Promote).await)
}

/// `POST /admin/models/{name}/rollback` in etcd mode: the target is
/// chosen as the local rollback would, then written for everyone.
pub(crate) async fn rollback(gw: &Ops, f: &Fleet, group: &str) -> Result<Response, ReloadError> {
    let target = gw.control.state().rollback_target(group)?;
    let written = f.client().put_stable(group, &target).await;
    Ok(confirmed(gw, f, written, Trigger::Rollback).await)
}

/// `POST /admin/config` in etcd mode: validated here first (a refusal
/// never reaches etcd), then a compare-and-swap on the document this
/// instance last saw.
pub(crate) async fn config(gw: &Ops, f: &Fleet, yaml: String) -> Result<Response, ReloadError> {
    let source = gw.control.source().ok_or(ReloadError::NoSource)?;
    source.parse(&yaml)?;
    let written = f.client().put_config(&yaml, f.config_revision()).await;
    Ok(confirmed(gw, f, written, Trigger::AdminConfig).await)
}

/// `POST /admin/reload` in etcd mode: lists the prefix again.
pub(crate) fn reload(gw: &Ops, f: &Fleet) -> Response {
    f.request_resync();
    let snap = gw.proxy.snapshot();
    Json(json!({
        "generation": snap.generation,
        "hash": snap.config.hash,
        "revision": f.status().revision,
        "changed": false,
        "trigger": Trigger::AdminReload,
        "warnings": ["etcd mode: the prefix is listed again; only differences apply"],
    }))
    .into_response()
}

/// A cordon (or uncordon) for the whole fleet, applied here.
pub(crate) async fn cordon(gw: &Ops, f: &Fleet, id: &str, cordoned: bool) -> Result<(), Response> {
    let written = f.client().cordon(id, cordoned).await;
    let applied = match written {
        Ok(revision) => f.wait_applied(revision, APPLY_WAIT).await,
        Err(e) => Err(e),
    };
    applied.map_err(|e| fleet_error(gw, &e))
}

/// Key records written for the whole fleet, applied here.
pub(crate) async fn keys(f: &Fleet, records: &[KeyRecord]) -> Result<(), KeyError> {
    let written = f.client().put_keys(records).await;
    let applied = match written {
        Ok(revision) => f.wait_applied(revision, APPLY_WAIT).await,
        Err(e) => Err(e),
    };
    applied.map_err(|e| KeyError::File {
        file: f.client().layout().key("").into(),
        reason: e.to_string(),
    })
}
