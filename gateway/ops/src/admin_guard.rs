//! Who may call the admin API and whether a browser could have sent the
//! call: the one middleware in front of everything under `/admin/` and
//! `/metrics`.
//!
//! In order:
//! 1. **Token.** With tokens configured (`server.admin_token`, an
//!    operator, and `server.admin_tokens`), a call must present one as
//!    `Authorization: Bearer <token>` (scheme in any case), compared in
//!    constant time; else 401. A `read` token may only `GET`/`HEAD` (403).
//!    Without tokens the caller is `loopback-no-token` (the listener is
//!    loopback: config validation requires a token otherwise).
//! 2. **Host** (only without a token: a browser cannot attach one by
//!    itself): the `Host` must be a loopback name, `admin_listen`'s
//!    address or one of `server.admin_hosts`; anything else is a DNS
//!    rebinding page (403).
//! 3. **Changes** (every method but `GET`/`HEAD`/`OPTIONS`): an `Origin`,
//!    when sent, must be the admin's own (`http(s)://<Host>`), 403; a
//!    `Content-Type`, when sent, must be JSON or YAML, 415 (a cross-site
//!    form can only send form or `text/plain` bodies).
//! 4. **Audit.** Every change, applied or refused, goes to the event
//!    feed (and the log) as `admin_change` / `admin_refused`: who (role
//!    and token field, or `loopback-no-token`), what (method and path),
//!    the status and the generation serving after it.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use switchyard_config::{AdminRole, ServerConfig};

use crate::admin_error::error_response;
use crate::state::Ops;

/// Who made an admin call, as the audit record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No token is configured (loopback listener).
    NoToken,
    /// A configured token: its role and the config field holding it.
    Token {
        /// What it may do.
        role: AdminRole,
        /// `server.admin_token` or `server.admin_tokens[i]`.
        field: String,
    },
}

impl Caller {
    /// For the audit record: `loopback-no-token`, `operator
    /// (server.admin_token)`, `read (server.admin_tokens[0])`.
    pub fn describe(&self) -> String {
        match self {
            Self::NoToken => "loopback-no-token".to_owned(),
            Self::Token { role, field } => format!("{} ({field})", role.as_str()),
        }
    }
}

/// A refusal: status, the header it concerns, and why.
type Refusal = (StatusCode, &'static str, String);

/// The admin middleware (see the module docs).
pub async fn guard(State(gw): State<Arc<Ops>>, req: Request, next: Next) -> Response {
    let snap = gw.proxy.snapshot();
    let server = &snap.config.server;
    let caller = match authenticate(server, req.headers()) {
        Some(caller) => caller,
        None => {
            let mut resp = error_response(
                StatusCode::UNAUTHORIZED,
                "authorization",
                "admin token required (Authorization: Bearer ...)",
            );
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("static"));
            return resp;
        }
    };
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let what = format!("{} {}", req.method(), req.uri().path());
    let checked = check(server, &caller, &req, changes);
    drop(snap);
    if let Err((status, field, reason)) = checked {
        if changes {
            gw.control.events.push(
                "admin_refused",
                caller.describe(),
                format!("{what}: {} {reason}", status.as_u16()),
            );
        }
        return error_response(status, field, &reason);
    }
    // A heartbeat renews a lease every few seconds per member: recording
    // each would push every other change out of the bounded feed.
    let audited = changes && !req.uri().path().ends_with("/heartbeat");
    // Handlers that record who changed what read the caller from here.
    let mut req = req;
    req.extensions_mut().insert(caller.clone());
    let resp = next.run(req).await;
    if audited {
        let generation = gw.proxy.snapshot().generation;
        gw.control.events.push(
            if resp.status().is_success() {
                "admin_change"
            } else {
                "admin_refused"
            },
            caller.describe(),
            format!(
                "{what}: {}, generation {generation}",
                resp.status().as_u16()
            ),
        );
    }
    resp.into_response()
}

/// Steps 2 and 3 and the read role.
fn check(
    server: &ServerConfig,
    caller: &Caller,
    req: &Request,
    changes: bool,
) -> Result<(), Refusal> {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    if *caller == Caller::NoToken
        && let Some(host) = &host
        && !host_allowed(server, host)
    {
        return Err((
            StatusCode::FORBIDDEN,
            "host",
            format!(
                "Host `{host}` is not this admin API's name (DNS rebinding?): call it as \
                 localhost or 127.0.0.1, or list the name in server.admin_hosts"
            ),
        ));
    }
    if !changes {
        return Ok(());
    }
    if let Caller::Token {
        role: AdminRole::Read,
        field,
    } = caller
    {
        return Err((
            StatusCode::FORBIDDEN,
            "authorization",
            format!("the token in {field} is read-only: it may only GET"),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = host
            .as_deref()
            .zip(origin.to_str().ok())
            .is_some_and(|(host, origin)| same_origin(origin, host));
        if !own {
            return Err((
                StatusCode::FORBIDDEN,
                "origin",
                format!(
                    "cross-site request refused: Origin `{}` is not this admin API",
                    String::from_utf8_lossy(origin.as_bytes())
                ),
            ));
        }
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE)
        && !json_or_yaml(ct.as_bytes())
    {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type",
            format!(
                "Content-Type `{}` refused: send application/json or application/yaml",
                String::from_utf8_lossy(ct.as_bytes())
            ),
        ));
    }
    Ok(())
}

/// Step 1: which token was presented, if tokens are configured.
pub fn authenticate(server: &ServerConfig, headers: &HeaderMap) -> Option<Caller> {
    if !server.admin_auth() {
        return Some(Caller::NoToken);
    }
    let presented = bearer(headers)?;
    if let Some(t) = &server.admin_token
        && t.matches(presented)
    {
        return Some(Caller::Token {
            role: AdminRole::Operator,
            field: "server.admin_token".to_owned(),
        });
    }
    server
        .admin_tokens
        .iter()
        .enumerate()
        .find(|(_, t)| t.token.matches(presented))
        .map(|(i, t)| Caller::Token {
            role: t.role,
            field: format!("server.admin_tokens[{i}]"),
        })
}

/// The credentials of `Authorization: Bearer <token>`, the scheme in any
/// case (RFC 9110 §11.1), spaces around the token ignored.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first().is_none_or(|&b| b != b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Whether `host` (a `Host` value, port optional) names this admin API.
fn host_allowed(server: &ServerConfig, host: &str) -> bool {
    let name = host_name(host).to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        let listen = server.admin_listen.ip();
        if ip.is_loopback() || (!listen.is_unspecified() && ip == listen) {
            return true;
        }
    }
    server.admin_hosts.contains(&name)
}

/// `host` without its `:port`.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// `origin` is `http://<host>` or `https://<host>`.
fn same_origin(origin: &str, host: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    rest.is_some_and(|r| r.eq_ignore_ascii_case(host))
}

/// JSON or YAML media types (parameters such as `charset` ignored).
fn json_or_yaml(ct: &[u8]) -> bool {
    let media = ct.split(|&b| b == b';').next().unwrap_or_default();
    let media = String::from_utf8_lossy(media.trim_ascii()).to_ascii_lowercase();
    matches!(
        media.as_str(),
        "application/json"
            | "application/yaml"
            | "application/x-yaml"
            | "text/yaml"
            | "text/x-yaml"
    ) || (media.starts_with("application/") && media.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            bearer(&h).map(<[u8]>::to_vec)
        };
        assert_eq!(with("Bearer abc"), Some(b"abc".to_vec()));
        assert_eq!(with("bearer abc"), Some(b"abc".to_vec()));
        assert_eq!(with("BEARER  abc "), Some(b"abc".to_vec()));
        assert_eq!(with("Bearer "), None);
        assert_eq!(with("Bearerabc"), None);
        assert_eq!(with("Basic abc"), None);
    }

    #[test]
    fn hosts_and_media_types() {
        assert_eq!(host_name("localhost:9090"), "localhost");
        assert_eq!(host_name("[::1]:9090"), "[::1]");
        assert_eq!(host_name("evil.example"), "evil.example");
        assert!(same_origin("http://127.0.0.1:9090", "127.0.0.1:9090"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:9090"));
        assert!(!same_origin("null", "127.0.0.1:9090"));
        assert!(json_or_yaml(b"application/json; charset=utf-8"));
        assert!(json_or_yaml(b"Application/YAML"));
        assert!(!json_or_yaml(b"text/plain"));
        assert!(!json_or_yaml(b"application/x-www-form-urlencoded"));
        assert!(!json_or_yaml(b"multipart/form-data; boundary=x"));
    }
}
