//! The admin API's control endpoints: reloads, version weights, rollouts.
//! Mounted behind the admin token by [`crate::admin::router`].
//!
//! | Method | Path | Does |
//! |---|---|---|
//! | GET  | `/admin/config` | serving config in the file's format (secrets redacted), generation, hash, overrides, `last_error`, history |
//! | POST | `/admin/config` | apply the YAML body as the whole config |
//! | POST | `/admin/reload` | read the config file again |
//! | POST | `/admin/models/{name}/weights` | `{"v1": 90, "v2": 10}` |
//! | POST | `/admin/models/{name}/promote` | `{"version": "v2"}`: 100% to it |
//! | POST | `/admin/models/{name}/rollback` | 100% back to the stable version |
//! | GET  | `/admin/rollouts` | per group: weights, stable version, rollout state and decisions |
//!
//! In etcd mode (`switchyard run --etcd`) the changes are written to etcd
//! for the whole fleet instead (`crate::admin_fleet`).
//!
//! A refused change answers 422 (400 for a body that is not what the
//! endpoint takes, 404 for an unknown model) with
//! `{"error": "...", "errors": [{"field": "...", "reason": "..."}], "generation": N}`,
//! where `generation` is the one still serving.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use switchyard_control::Controller;
use switchyard_control::reload::{Applied, FieldErrorJson, ReloadError, Trigger};

use crate::state::Ops;

/// Largest config accepted by `POST /admin/config`.
pub const MAX_CONFIG_BYTES: usize = 4 << 20;

/// The control routes (the caller adds the token layer).
pub fn routes() -> Router<Arc<Ops>> {
    Router::new()
        .route("/admin/config", get(get_config).post(post_config))
        .route("/admin/reload", post(reload))
        .route("/admin/models/{name}/weights", post(weights))
        .route("/admin/models/{name}/promote", post(promote))
        .route("/admin/models/{name}/rollback", post(rollback))
        .route("/admin/rollouts", get(rollouts))
        .layer(DefaultBodyLimit::max(MAX_CONFIG_BYTES))
}

async fn get_config(State(gw): State<Arc<Ops>>) -> Response {
    let snap = gw.proxy.snapshot();
    let control = gw.control.state();
    let overrides: Vec<&str> = snap
        .config
        .models
        .iter()
        .map(|m| m.name.as_str())
        .filter(|g| control.overridden(g))
        .collect();
    Json(serde_json::json!({
        "generation": snap.generation,
        "hash": snap.config.hash,
        "source": control.source.as_ref().and_then(|s| s.watched()).map(|p| p.display().to_string()),
        "weight_overrides": overrides,
        "last_error": control.last_error,
        "history": control.history,
        "config": &*snap.config,
    }))
    .into_response()
}

async fn post_config(State(gw): State<Arc<Ops>>, body: String) -> Response {
    if let Some(f) = gw.fleet() {
        let result = crate::admin_fleet::config(&gw, f, body).await;
        return result.unwrap_or_else(|e| answer(&gw, Err(e)));
    }
    let result = blocking(&gw, move |c| c.apply_yaml(&body)).await;
    answer(&gw, result)
}

async fn reload(State(gw): State<Arc<Ops>>) -> Response {
    if let Some(f) = gw.fleet() {
        return crate::admin_fleet::reload(&gw, f);
    }
    let result = blocking(&gw, |c| c.reload(Trigger::AdminReload)).await;
    answer(&gw, result)
}

async fn weights(
    State(gw): State<Arc<Ops>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let weights: BTreeMap<String, u32> = match serde_json::from_slice(&body) {
        Ok(w) => w,
        Err(e) => {
            return bad_request(
                &gw,
                format!(
                    "body must be a JSON object of version -> weight (0..=100), e.g. {{\"v1\": 90, \"v2\": 10}}: {e}"
                ),
            );
        }
    };
    if let Some(f) = gw.fleet() {
        let result = crate::admin_fleet::weights(&gw, f, &name, weights).await;
        return result.unwrap_or_else(|e| answer(&gw, Err(e)));
    }
    let result = blocking(&gw, move |c| {
        c.set_weights(&name, weights, Trigger::Weights)
    })
    .await;
    answer(&gw, result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteBody {
    version: String,
}

async fn promote(
    State(gw): State<Arc<Ops>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: PromoteBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad_request(
                &gw,
                format!("body must be {{\"version\": \"<name>\"}}: {e}"),
            );
        }
    };
    if let Some(f) = gw.fleet() {
        let result = crate::admin_fleet::promote(&gw, f, &name, &body.version).await;
        return result.unwrap_or_else(|e| answer(&gw, Err(e)));
    }
    let result = blocking(&gw, move |c| {
        c.promote(&name, &body.version, Trigger::Promote)
    })
    .await;
    answer(&gw, result)
}

async fn rollback(State(gw): State<Arc<Ops>>, Path(name): Path<String>) -> Response {
    if let Some(f) = gw.fleet() {
        let result = crate::admin_fleet::rollback(&gw, f, &name).await;
        return result.unwrap_or_else(|e| answer(&gw, Err(e)));
    }
    let result = blocking(&gw, move |c| c.rollback(&name, Trigger::Rollback)).await;
    answer(&gw, result)
}

async fn rollouts(State(gw): State<Arc<Ops>>) -> Response {
    let snap = gw.proxy.snapshot();
    let running = gw.control.rollouts.view();
    let control = gw.control.state();
    let groups: Vec<serde_json::Value> = snap
        .config
        .models
        .iter()
        .map(|m| {
            serde_json::json!({
                "group": m.name,
                "versions": m.versions,
                "stable": control.stable(&m.name),
                "weights_overridden": control.overridden(&m.name),
                "rollout": running.iter().find(|r| r.group == m.name),
            })
        })
        .collect();
    Json(serde_json::json!({ "generation": snap.generation, "groups": groups })).into_response()
}

/// Runs a control-plane change off the async workers: it reads files,
/// builds TLS clients and waits for the controller's lock.
async fn blocking(
    gw: &Ops,
    change: impl FnOnce(&Controller) -> Result<Applied, ReloadError> + Send + 'static,
) -> Result<Applied, ReloadError> {
    let control = Arc::clone(&gw.control);
    match tokio::task::spawn_blocking(move || change(&control)).await {
        Ok(result) => result,
        // The change panicked: nothing was published (the swap is last).
        Err(e) => Err(ReloadError::Internal(e.to_string())),
    }
}

fn answer(gw: &Ops, result: Result<Applied, ReloadError>) -> Response {
    match result {
        Ok(applied) => Json(applied).into_response(),
        Err(e) => {
            let status = match &e {
                ReloadError::UnknownModel(_) => StatusCode::NOT_FOUND,
                ReloadError::NoSource => StatusCode::CONFLICT,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let errors: Vec<FieldErrorJson> =
                e.field_errors().into_iter().map(Into::into).collect();
            (
                status,
                Json(serde_json::json!({
                    "error": format!("change refused; generation {} keeps serving", gw.proxy.snapshot().generation),
                    "errors": errors,
                    "generation": gw.proxy.snapshot().generation,
                })),
            )
                .into_response()
        }
    }
}

fn bad_request(gw: &Ops, reason: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({
            "error": reason,
            "errors": [{ "field": "", "reason": reason }],
            "generation": gw.proxy.snapshot().generation,
        })),
    )
        .into_response()
}
