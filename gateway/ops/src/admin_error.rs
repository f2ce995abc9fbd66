//! The admin API's one error shape,
//! `{"error": "...", "errors": [{"field": "...", "reason": "..."}]}`
//! (control endpoints add the `generation` still serving), and the layer
//! that puts every other error answer (axum's own 404, 405, 413, a body
//! that is not UTF-8) into it.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Largest plain-text error body carried over into the JSON shape.
const MAX_TEXT: usize = 4096;

/// An admin error answer: `field` is what it concerns (a header name, a
/// config field path, or empty).
pub fn error_response(status: StatusCode, field: &str, reason: &str) -> Response {
    (
        status,
        Json(serde_json::json!({
            "error": reason,
            "errors": [{ "field": field, "reason": reason }],
        })),
    )
        .into_response()
}

/// Rewrites an error answer that is not JSON into [`error_response`]'s
/// shape, its text (or the status's name) as the reason.
pub async fn uniform(resp: Response) -> Response {
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/json"));
    if !(resp.status().is_client_error() || resp.status().is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let reason = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_owned()
    } else {
        text
    };
    let mut out = error_response(parts.status, "", &reason);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
