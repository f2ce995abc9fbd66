//! The live dashboard served at `/` on the admin listener.
//!
//! Placeholder anchor: filled in by the observability work (#7).

use axum::response::{Html, IntoResponse};

/// `GET /`: the single-page dashboard.
pub async fn index() -> impl IntoResponse {
    Html("<!doctype html><title>Switchyard</title>")
}
