//! API keys managed at run time (operator role for changes, read role
//! for the list); the store is `switchyard_control::keys`.
//!
//! | Method | Path | Does |
//! |---|---|---|
//! | GET  | `/admin/keys` | every key: id, prefix, tenant, name, times, state; config keys too (`source: config`) |
//! | POST | `/admin/keys` | `{"tenant": "t", "name": "ci"}` → 201 with the key, shown this once |
//! | POST | `/admin/keys/{id}/revoke` | fails from the next request on |
//! | POST | `/admin/keys/{id}/rotate` | `{"grace_s": 300}` optional → 201 with the new key; the old one is revoked, or expires after the grace |
//!
//! In etcd mode the records are written to `P/keys/<id>` for the whole
//! fleet (`crate::admin_fleet`), and answered once applied here.
//!
//! A listing never holds a key or its hash. Every change is an event in
//! the feed (`key_created`, `key_revoked`, `key_rotated`: who, tenant, id,
//! prefix), besides the guard's `admin_change` audit record.

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_control::events::wall_ms;
use switchyard_control::keys::{KeyError, KeyRecord, NewKey};

use crate::admin_error::error_response;
use crate::admin_guard::Caller;
use crate::state::Ops;

/// Longest grace period a rotation accepts (30 days).
const MAX_GRACE_S: u64 = 30 * 24 * 3600;

/// The routes of this resource (mounted behind the admin guard).
pub fn routes() -> Router<Arc<Ops>> {
    Router::new()
        .route("/admin/keys", get(list).post(create))
        .route("/admin/keys/{id}/revoke", post(revoke))
        .route("/admin/keys/{id}/rotate", post(rotate))
}

async fn list(State(gw): State<Arc<Ops>>) -> Response {
    let now = wall_ms();
    let snap = gw.proxy.snapshot();
    let configured = |t: &str| snap.config.tenants.iter().any(|c| c.name == t);
    let mut keys: Vec<Value> = gw
        .keys
        .list()
        .iter()
        .map(|r| {
            let mut v = view(r, now);
            v["tenant_configured"] = configured(&r.tenant).into();
            v
        })
        .collect();
    for t in &snap.config.tenants {
        for k in &t.keys {
            keys.push(
                json!({ "id": k.id, "tenant": t.name, "source": "config", "state": "active" }),
            );
        }
    }
    Json(json!({
        "state_file": gw.keys.file().map(|f| f.display().to_string()),
        "keys": keys,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    tenant: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create(
    State(gw): State<Arc<Ops>>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Response {
    let body: CreateBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return bad_body(&format!(
                r#"must be {{"tenant": "<name>", "name": "<label>"}}: {e}"#
            ));
        }
    };
    let result = match gw.fleet() {
        Some(f) => match gw.keys.prepare_create(&body.tenant, body.name, wall_ms()) {
            Ok(new) => crate::admin_fleet::keys(f, std::slice::from_ref(&new.record))
                .await
                .map(|()| new),
            Err(e) => Err(e),
        },
        None => {
            let store = Arc::clone(&gw);
            blocking(move || store.keys.create(&body.tenant, body.name, wall_ms())).await
        }
    };
    match result {
        Ok(new) => {
            event(&gw, "key_created", &caller, &new.record, "created");
            created(&new, None)
        }
        Err(e) => key_error(&e),
    }
}

async fn revoke(
    State(gw): State<Arc<Ops>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let result = match gw.fleet() {
        Some(f) => match gw.keys.prepare_revoke(&id, wall_ms()) {
            Ok(rec) => crate::admin_fleet::keys(f, std::slice::from_ref(&rec))
                .await
                .map(|()| rec),
            Err(e) => Err(e),
        },
        None => {
            let store = Arc::clone(&gw);
            blocking(move || store.keys.revoke(&id, wall_ms())).await
        }
    };
    match result {
        Ok(rec) => {
            event(&gw, "key_revoked", &caller, &rec, "revoked");
            Json(view(&rec, wall_ms())).into_response()
        }
        Err(e) => key_error(&e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    #[serde(default)]
    grace_s: Option<u64>,
}

async fn rotate(
    State(gw): State<Arc<Ops>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let body: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return bad_body(&format!(
                    r#"must be empty or {{"grace_s": <seconds>}}: {e}"#
                ));
            }
        }
    };
    if body.grace_s.is_some_and(|g| g > MAX_GRACE_S) {
        return error_response(
            StatusCode::BAD_REQUEST,
            "grace_s",
            &format!("at most {MAX_GRACE_S} (30 days)"),
        );
    }
    let grace_ms = body.grace_s.map(|s| s * 1000);
    let result = match gw.fleet() {
        Some(f) => match gw.keys.prepare_rotate(&id, grace_ms, wall_ms()) {
            Ok((new, old)) => crate::admin_fleet::keys(f, &[old.clone(), new.record.clone()])
                .await
                .map(|()| (new, old)),
            Err(e) => Err(e),
        },
        None => {
            let store = Arc::clone(&gw);
            blocking(move || store.keys.rotate(&id, grace_ms, wall_ms())).await
        }
    };
    match result {
        Ok((new, old)) => {
            let how = match old.expires_at_ms {
                Some(_) => format!(
                    "rotated to {} (old key expires after the grace)",
                    new.record.id
                ),
                None => format!("rotated to {} (old key revoked)", new.record.id),
            };
            event(&gw, "key_rotated", &caller, &old, &how);
            created(&new, Some(&old))
        }
        Err(e) => key_error(&e),
    }
}

/// A record as listed: metadata and its state, never the hash.
fn view(r: &KeyRecord, now_ms: u64) -> Value {
    let state = if r.revoked_at_ms.is_some() || !r.active(now_ms) {
        "revoked"
    } else if r.expires_at_ms.is_some() {
        "expiring"
    } else {
        "active"
    };
    json!({
        "id": r.id,
        "prefix": r.prefix,
        "tenant": r.tenant,
        "name": r.name,
        "source": "runtime",
        "state": state,
        "revoked": state == "revoked",
        "created_at_ms": r.created_at_ms,
        "revoked_at_ms": r.revoked_at_ms,
        "expires_at_ms": r.expires_at_ms,
        "replaces": r.replaces,
    })
}

/// 201 with the key, the only time it is shown.
fn created(new: &NewKey, old: Option<&KeyRecord>) -> Response {
    let mut body = view(&new.record, new.record.created_at_ms);
    body["key"] = new.key.clone().into();
    if let Some(old) = old {
        body["old"] = view(old, new.record.created_at_ms);
    }
    (StatusCode::CREATED, Json(body)).into_response()
}

fn event(gw: &Ops, kind: &'static str, caller: &Caller, r: &KeyRecord, what: &str) {
    gw.control.events.push(
        kind,
        format!("tenant {}", r.tenant),
        format!(
            "key {} ({}…) {what} by {}",
            r.id,
            r.prefix,
            caller.describe()
        ),
    );
}

fn bad_body(reason: &str) -> Response {
    error_response(StatusCode::BAD_REQUEST, "body", &format!("body {reason}"))
}

fn key_error(e: &KeyError) -> Response {
    let (status, field) = match e {
        KeyError::UnknownTenant(_) => (StatusCode::UNPROCESSABLE_ENTITY, "tenant"),
        KeyError::NotFound(_) => (StatusCode::NOT_FOUND, "id"),
        KeyError::Revoked(_) => (StatusCode::CONFLICT, "id"),
        KeyError::Invalid { field, .. } => (StatusCode::BAD_REQUEST, *field),
        KeyError::NoStateFile => (StatusCode::CONFLICT, ""),
        KeyError::File { .. } | KeyError::Random => (StatusCode::INTERNAL_SERVER_ERROR, ""),
    };
    if status.is_server_error() {
        tracing::error!(error = %e, "key change failed");
    }
    error_response(status, field, &e.to_string())
}

/// Runs a store call (it writes and syncs a file) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
