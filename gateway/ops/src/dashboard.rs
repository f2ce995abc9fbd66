//! The live dashboard served at `/` on the admin listener: one page of plain
//! HTML, CSS and JavaScript from `gateway/ops/assets/`, embedded in the binary
//! (no CDN, no build step).
//!
//! The page is a static shell with no data in it, so it is served without
//! the admin token. Its script polls the JSON endpoints about once a second
//! (`/admin/replicas`, `/admin/events?since=`, `/admin/config`, and
//! `/admin/rollouts` when the gateway has it; `/admin/costs` every 3 s for
//! the tenants panel, shown when the config has tenants); when one answers 401 it asks
//! for the token, keeps it in the tab's `sessionStorage` and sends it as
//! `Authorization: Bearer`, never in a URL. Everything it draws (throughput,
//! traffic share, latency sparklines) is computed in the browser from
//! deltas between polls, so the gateway pays nothing while nobody watches.
//!
//! Responses carry a strict `Content-Security-Policy` (same-origin scripts,
//! styles and fetches only; no inline script), and the script writes data
//! into the page as text only.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("../assets/dashboard.html");
const APP_JS: &str = include_str!("../assets/dashboard.js");
const APP_CSS: &str = include_str!("../assets/dashboard.css");
const ICON_SVG: &str = include_str!("../assets/icon.svg");

/// Same-origin everything, no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes: `/` and its assets under `/dashboard/`. They
/// serve static files only and need no token (see the module docs).
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route(
            "/dashboard/app.js",
            get(|| asset(APP_JS, "text/javascript")),
        )
        .route("/dashboard/app.css", get(|| asset(APP_CSS, "text/css")))
        .route(
            "/dashboard/icon.svg",
            get(|| asset(ICON_SVG, "image/svg+xml")),
        )
}

/// `GET /`: the single-page dashboard's HTML shell.
pub async fn index() -> Response {
    asset(INDEX_HTML, "text/html").await
}

async fn asset(body: &'static str, mime: &'static str) -> Response {
    let content_type = match mime {
        "image/svg+xml" => HeaderValue::from_static("image/svg+xml"),
        "text/javascript" => HeaderValue::from_static("text/javascript; charset=utf-8"),
        "text/css" => HeaderValue::from_static("text/css; charset=utf-8"),
        _ => HeaderValue::from_static("text/html; charset=utf-8"),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn get_path(path: &str) -> Response {
        routes::<()>()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn serves_the_shell_and_its_assets_with_a_strict_policy() {
        for (path, mime) in [
            ("/", "text/html"),
            ("/dashboard/app.js", "text/javascript"),
            ("/dashboard/app.css", "text/css"),
            ("/dashboard/icon.svg", "image/svg+xml"),
        ] {
            let resp = get_path(path).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
            let h = resp.headers();
            let ct = h[header::CONTENT_TYPE].to_str().expect("ascii");
            assert!(ct.starts_with(mime), "{path}: {ct}");
            let csp = h[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
            assert!(csp.contains("script-src 'self'"), "{csp}");
            assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
    }

    #[test]
    fn the_shell_loads_only_same_origin_assets_and_no_inline_script() {
        assert!(INDEX_HTML.contains(r#"src="/dashboard/app.js""#));
        assert!(INDEX_HTML.contains(r#"href="/dashboard/app.css""#));
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
        assert_eq!(INDEX_HTML.matches("<script").count(), 1);
        assert!(!APP_JS.contains("innerHTML"), "data goes in as text only");
    }
}
