//! CORS for browser apps (`server.cors`): the preflight answer, and the
//! headers every answer to an allowed origin carries.
//!
//! Two calls, both from [`crate::handle`]: [`preflight`] answers an
//! `OPTIONS` the classifier recognised (no API key needed: browsers send
//! none on a preflight), and [`decorate`] adds `access-control-allow-origin`
//! and `-expose-headers` to every response, whatever produced it (local
//! answer, error, stream). Without `server.cors` neither runs: `OPTIONS`
//! stays 405 and responses are untouched.

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use switchyard_config::Cors;
use switchyard_config::defaults::CORS_ALLOW_HEADERS;

use crate::body::{ProxyBody, full};
use crate::error::ProxyError;

/// Request and response headers of the gateway's own, allowed and exposed
/// by prefix (a CORS header list has no wildcard for a prefix).
const OWN_PREFIX: &str = "x-switchyard-";

/// Answers a preflight for an endpoint that takes `allow`: 204 with the
/// methods, headers and max age; 403 for an origin `cors` does not allow;
/// 405 (as without CORS) when `cors` is off or the request has no `Origin`.
pub fn preflight(
    cors: Option<&Cors>,
    headers: &HeaderMap,
    allow: &Method,
    path: &str,
) -> Result<Response<ProxyBody>, ProxyError> {
    let not_allowed = || ProxyError::MethodNotAllowed {
        method: Method::OPTIONS,
        path: path.to_owned(),
    };
    let cors = cors.ok_or_else(not_allowed)?;
    let origin = headers.get(ORIGIN).ok_or_else(not_allowed)?;
    let origin = origin.to_str().unwrap_or_default();
    if !cors.allows(origin) {
        return Err(ProxyError::OriginNotAllowed {
            origin: origin.chars().take(256).collect(),
        });
    }
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::NO_CONTENT;
    let h = resp.headers_mut();
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_str(&format!("{allow}, OPTIONS"))
            .unwrap_or_else(|_| HeaderValue::from_static("GET, POST, OPTIONS")),
    );
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, allow_headers(cors, headers));
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(cors.max_age_s));
    Ok(resp)
}

/// The gateway's headers, the configured ones, and the `x-switchyard-*`
/// ones the browser asked for.
fn allow_headers(cors: &Cors, headers: &HeaderMap) -> HeaderValue {
    let mut names: Vec<String> = CORS_ALLOW_HEADERS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(cors.allow_headers.iter().cloned())
        .collect();
    let asked = headers
        .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase());
    for name in asked {
        if name.starts_with(OWN_PREFIX) && !names.contains(&name) {
            names.push(name);
        }
    }
    HeaderValue::from_str(&names.join(", "))
        .unwrap_or_else(|_| HeaderValue::from_static("authorization, content-type"))
}

/// Adds the CORS headers to an answer for a request from `origin`: the
/// origin echoed when allowed, the exposed headers, and `vary: origin`
/// always (the answer depends on it). Replicas' own CORS headers never
/// pass: the gateway alone decides who may read its answers.
pub fn decorate(cors: &Cors, origin: Option<&HeaderValue>, headers: &mut HeaderMap) {
    for name in [
        ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        ACCESS_CONTROL_EXPOSE_HEADERS,
    ] {
        headers.remove(name);
    }
    headers.append(VARY, HeaderValue::from_static("origin"));
    let Some(origin) = origin.filter(|o| o.to_str().is_ok_and(|o| cors.allows(o))) else {
        return;
    };
    let mut expose = String::from("x-request-id");
    // Ours, and what a browser client needs to pace itself on a tenant's
    // limits (none of them is CORS-safelisted).
    for name in headers.keys() {
        let n = name.as_str();
        if n.starts_with(OWN_PREFIX) || n.starts_with("x-ratelimit-") || n == "retry-after" {
            expose.push_str(", ");
            expose.push_str(name.as_str());
        }
    }
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
    if let Ok(v) = HeaderValue::from_str(&expose) {
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> Cors {
        Cors {
            allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            allow_headers: vec!["x-trace".into()],
            max_age_s: 600,
        }
    }

    fn req(origin: &str, asked: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        h.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_str(asked).unwrap(),
        );
        h
    }

    #[test]
    fn a_preflight_from_an_allowed_origin_lists_methods_headers_and_max_age() {
        let c = cors(&["https://app.example.com"]);
        let h = req(
            "https://app.example.com",
            "Authorization, X-Switchyard-Session, x-other",
        );
        let resp = preflight(Some(&c), &h, &Method::POST, "/v1/chat/completions").unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let h = resp.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "POST, OPTIONS");
        assert_eq!(
            h[ACCESS_CONTROL_ALLOW_HEADERS],
            "authorization, content-type, x-api-key, api-key, x-request-id, x-trace, x-switchyard-session"
        );
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "600");
    }

    #[test]
    fn a_preflight_is_refused_off_cors_without_origin_and_from_other_origins() {
        let c = cors(&["https://app.example.com"]);
        let h = req("https://evil.example.com", "");
        let refuse = |c: Option<&Cors>, h: &HeaderMap| {
            preflight(c, h, &Method::POST, "/v1/completions").unwrap_err()
        };
        assert!(matches!(
            refuse(None, &h),
            ProxyError::MethodNotAllowed { .. }
        ));
        assert!(matches!(
            refuse(Some(&c), &HeaderMap::new()),
            ProxyError::MethodNotAllowed { .. }
        ));
        let e = refuse(Some(&c), &h);
        assert!(matches!(e, ProxyError::OriginNotAllowed { .. }));
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(preflight(Some(&cors(&["*"])), &h, &Method::GET, "/v1/models").is_ok());
    }

    #[test]
    fn answers_to_an_allowed_origin_echo_it_and_expose_our_headers() {
        let c = cors(&["https://app.example.com"]);
        let mut h = HeaderMap::new();
        h.insert("x-switchyard-replica", HeaderValue::from_static("a"));
        h.insert(
            "x-ratelimit-remaining-tokens",
            HeaderValue::from_static("9"),
        );
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        let origin = HeaderValue::from_static("https://app.example.com");
        decorate(&c, Some(&origin), &mut h);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(
            h[ACCESS_CONTROL_EXPOSE_HEADERS],
            "x-request-id, x-switchyard-replica, x-ratelimit-remaining-tokens"
        );
        assert_eq!(h[VARY], "origin");

        let mut h = HeaderMap::new();
        h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        let other = HeaderValue::from_static("https://evil.example.com");
        decorate(&c, Some(&other), &mut h);
        assert!(
            h.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "replica's dropped"
        );
        assert!(h.get(ACCESS_CONTROL_EXPOSE_HEADERS).is_none());
        assert_eq!(h[VARY], "origin");
    }
}
