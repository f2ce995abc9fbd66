//! Endpoints the gateway answers itself, from the snapshot.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use switchyard_config::Protocol;
use switchyard_router::parse_model;

use crate::body::{ProxyBody, full};
use crate::proxy::Proxy;
use crate::snapshot::Snapshot;

/// `GET /v1/models`: one entry per model group, in config order, then
/// each group's LoRA adapters with the group as `parent` (as vLLM lists
/// its adapters under the base model).
pub fn list_models(snap: &Snapshot) -> Response<ProxyBody> {
    let groups = snap.table.groups().map(|g| {
        serde_json::json!({
            "id": g.name,
            "object": "model",
            "created": 0,
            "owned_by": "switchyard",
        })
    });
    let adapters = snap.config.models.iter().flat_map(|m| {
        m.adapters.iter().map(move |a| {
            serde_json::json!({
                "id": a,
                "object": "model",
                "created": 0,
                "owned_by": "switchyard",
                "parent": m.name,
            })
        })
    });
    let data: Vec<_> = groups.chain(adapters).collect();
    json(
        StatusCode::OK,
        &serde_json::json!({ "object": "list", "data": data }),
    )
}

/// `GET /v2/health/live`: the process answers.
pub fn live() -> Response<ProxyBody> {
    empty(StatusCode::OK)
}

/// `GET /v2/health/ready`: listeners up and not shutting down.
pub fn ready(gw: &Proxy) -> Response<ProxyBody> {
    empty(if gw.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    })
}

/// `GET /v2/models/{name}/ready`: the group (or pinned version) exists and
/// has a KServe replica with a free slot. 404 for an unknown model, as the spec has it.
pub fn model_ready(snap: &Snapshot, model: &str) -> Response<ProxyBody> {
    let (name, pin) = parse_model(model);
    let Some(group) = snap.table.group(name) else {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": format!("model `{model}` does not exist") }),
        );
    };
    let ready = group
        .versions
        .iter()
        .filter(|v| pin.is_none_or(|p| p == v.name))
        .flat_map(|v| &v.replicas)
        .map(|&i| &snap.table.entries()[i])
        .any(|e| {
            e.replica.protocol == Protocol::KserveV2
                && e.stats.in_flight() < e.replica.max_concurrency
        });
    empty(if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    })
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<ProxyBody> {
    let mut resp = Response::new(full(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn empty(status: StatusCode) -> Response<ProxyBody> {
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = status;
    resp
}
