//! `server:` listeners, admin token and `server.limits`.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Validator, http_token};
use crate::defaults as d;
use crate::model::{AdminRole, AdminToken, Limits, ResponseHeaders, ServerConfig, Workers};
use crate::raw::{RawAdminToken, RawLimits, RawServer, RawWorkers};

/// More workers than this is a typo, not a machine.
const MAX_WORKERS: i64 = 1024;

impl Validator<'_> {
    fn workers(&mut self, raw: Option<RawWorkers>) -> Workers {
        match raw {
            None => Workers::Auto,
            Some(RawWorkers::Word(w)) if w == "auto" => Workers::Auto,
            Some(RawWorkers::Word(w)) if w == "shared" => Workers::Shared,
            Some(RawWorkers::Count(n)) if (1..=MAX_WORKERS).contains(&n) => {
                Workers::Count(std::num::NonZeroU16::new(n as u16).expect("checked ≥ 1"))
            }
            Some(RawWorkers::Count(n)) => {
                self.err(
                    "server.workers",
                    format!("{n} is out of range: give 1 to {MAX_WORKERS}, `auto` or `shared`"),
                );
                Workers::Auto
            }
            Some(RawWorkers::Word(w)) => {
                self.err(
                    "server.workers",
                    format!("`{w}` is not a worker count: give a number, `auto` or `shared`"),
                );
                Workers::Auto
            }
        }
    }

    pub(super) fn server(&mut self, raw: RawServer) -> ServerConfig {
        let listen = self.addr("server.listen", raw.listen.as_deref(), d::LISTEN);
        let admin_listen = self.addr(
            "server.admin_listen",
            raw.admin_listen.as_deref(),
            d::ADMIN_LISTEN,
        );
        let admin_token = match raw.admin_token {
            Some(t) if t.trim().is_empty() => {
                self.err(
                    "server.admin_token",
                    "must not be empty or only whitespace (omit it to disable admin auth)",
                );
                None
            }
            // Presented in an `Authorization` header: held to the same rule.
            Some(t) => self.header_secret("server.admin_token", t),
            None => None,
        };
        let admin_tokens = self.admin_tokens(raw.admin_tokens);
        let admin_hosts = self.admin_hosts(raw.admin_hosts);
        if admin_token.is_none() && admin_tokens.is_empty() && !admin_listen.ip().is_loopback() {
            self.err(
                "server.admin_token",
                format!(
                    "required when server.admin_listen ({admin_listen}) is not a loopback address: \
                     the admin API can change routing"
                ),
            );
        }
        if listen == admin_listen && listen.port() != 0 {
            self.err("server.admin_listen", "must differ from server.listen");
        }
        let workers = self.workers(raw.workers);
        let limits = self.limits(raw.limits);
        let response_headers = ResponseHeaders {
            allow: self
                .header_patterns("server.response_headers.allow", raw.response_headers.allow),
            deny: self.header_patterns("server.response_headers.deny", raw.response_headers.deny),
        };
        let cors = self.cors(raw.cors);
        let tls = self.server_tls(raw.tls);
        ServerConfig {
            cors,
            tls,
            response_headers,
            allow_unauthenticated: raw.allow_unauthenticated.unwrap_or(false),
            listen,
            admin_listen,
            workers,
            admin_token,
            admin_tokens,
            admin_hosts,
            limits,
        }
    }

    fn admin_tokens(&mut self, raw: Vec<RawAdminToken>) -> Vec<AdminToken> {
        let mut out = Vec::new();
        for (i, t) in raw.into_iter().enumerate() {
            let path = format!("server.admin_tokens[{i}]");
            let role = match t.role.as_str() {
                "read" => Some(AdminRole::Read),
                "operator" => Some(AdminRole::Operator),
                other => {
                    self.err(
                        format!("{path}.role"),
                        format!("`{other}` is not a role (read or operator)"),
                    );
                    None
                }
            };
            let token = if t.token.trim().is_empty() {
                self.err(
                    format!("{path}.token"),
                    "must not be empty or only whitespace",
                );
                None
            } else {
                self.header_secret(&format!("{path}.token"), t.token)
            };
            if let (Some(token), Some(role)) = (token, role) {
                out.push(AdminToken { token, role });
            }
        }
        out
    }

    fn admin_hosts(&mut self, raw: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        for (i, h) in raw.into_iter().enumerate() {
            let ok = !h.is_empty()
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
                });
            if ok {
                out.push(h.to_ascii_lowercase());
            } else {
                self.err(
                    format!("server.admin_hosts[{i}]"),
                    format!("`{h}` is not a host name (e.g. gateway.internal, without a port)"),
                );
            }
        }
        out
    }

    /// Header names or `prefix-*` patterns, lower-cased.
    fn header_patterns(&mut self, path: &str, raw: Vec<String>) -> Vec<String> {
        let mut out = Vec::new();
        for (i, p) in raw.into_iter().enumerate() {
            let name = p.strip_suffix('*').unwrap_or(&p);
            if name.is_empty() || !http_token(name) {
                self.err(
                    format!("{path}[{i}]"),
                    format!("`{p}` is not a header name or `prefix-*` pattern"),
                );
            } else {
                out.push(p.to_ascii_lowercase());
            }
        }
        out
    }

    fn addr(&mut self, path: &str, raw: Option<&str>, default: &str) -> SocketAddr {
        let text = raw.unwrap_or(default);
        text.parse().unwrap_or_else(|_| {
            self.err(
                path,
                format!("`{text}` is not an IP:port address (e.g. 127.0.0.1:8080)"),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    fn limits(&mut self, raw: RawLimits) -> Limits {
        let default = Limits::default();
        let p = "server.limits";
        let request_timeout = self
            .ms(p, "request_timeout_ms", raw.request_timeout_ms)
            .unwrap_or(default.request_timeout);
        let attempt_timeout = self
            .ms(p, "attempt_timeout_ms", raw.attempt_timeout_ms)
            .unwrap_or(request_timeout);
        Limits {
            request_timeout,
            attempt_timeout,
            first_token_timeout: self
                .ms(p, "first_token_timeout_ms", raw.first_token_timeout_ms)
                .unwrap_or(attempt_timeout),
            first_token_ttft_multiple: self
                .int(
                    p,
                    "first_token_ttft_multiple",
                    raw.first_token_ttft_multiple,
                    0,
                    1000,
                )
                .map_or(default.first_token_ttft_multiple, |m| m as u32),
            first_token_floor: self
                .ms(p, "first_token_floor_ms", raw.first_token_floor_ms)
                .unwrap_or(default.first_token_floor),
            sse_keepalive: match self.ms_or_zero(
                p,
                "sse_keepalive_ms",
                raw.sse_keepalive_ms,
                3_600_000,
            ) {
                Some(Duration::ZERO) => None,
                Some(every) => Some(every),
                None => default.sse_keepalive,
            },
            max_buffered_bytes: self
                .int(p, "max_buffered_bytes", raw.max_buffered_bytes, 1, 1 << 40)
                .unwrap_or(default.max_buffered_bytes),
            max_body_bytes: self
                .int(p, "max_body_bytes", raw.max_body_bytes, 1, 1 << 30)
                .unwrap_or(default.max_body_bytes),
            max_header_bytes: self
                .int(p, "max_header_bytes", raw.max_header_bytes, 8192, 1 << 20)
                .unwrap_or(default.max_header_bytes),
            header_read_timeout: self
                .ms(p, "header_read_timeout_ms", raw.header_read_timeout_ms)
                .unwrap_or(default.header_read_timeout),
            body_read_timeout: self
                .ms(p, "body_read_timeout_ms", raw.body_read_timeout_ms)
                .unwrap_or(default.body_read_timeout),
            connect_timeout: self
                .ms(p, "connect_timeout_ms", raw.connect_timeout_ms)
                .unwrap_or(default.connect_timeout),
            stream_idle_timeout: self
                .ms(p, "stream_idle_timeout_ms", raw.stream_idle_timeout_ms)
                .unwrap_or(default.stream_idle_timeout),
            shutdown_grace: self
                .ms(p, "shutdown_grace_ms", raw.shutdown_grace_ms)
                .unwrap_or(default.shutdown_grace),
            drain_timeout: self
                .ms(p, "drain_timeout_ms", raw.drain_timeout_ms)
                .unwrap_or(default.drain_timeout),
            shutdown_overlap: self
                .ms_or_zero(p, "shutdown_overlap_ms", raw.shutdown_overlap_ms, 600_000)
                .unwrap_or(default.shutdown_overlap),
            pool_idle_timeout: self
                .ms(p, "pool_idle_timeout_ms", raw.pool_idle_timeout_ms)
                .unwrap_or(default.pool_idle_timeout),
            max_connections: self
                .int(p, "max_connections", raw.max_connections, 1, 10_000_000)
                .unwrap_or(default.max_connections),
            max_connections_per_client: self
                .int(
                    p,
                    "max_connections_per_client",
                    raw.max_connections_per_client,
                    1,
                    10_000_000,
                )
                .unwrap_or(default.max_connections_per_client),
            pool_max_idle_per_host: self
                .int(
                    p,
                    "pool_max_idle_per_host",
                    raw.pool_max_idle_per_host,
                    0,
                    65_536,
                )
                .unwrap_or(default.pool_max_idle_per_host),
            upstream_in_task: raw.upstream_in_task.unwrap_or(default.upstream_in_task),
        }
    }
}
