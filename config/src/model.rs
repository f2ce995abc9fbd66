//! The validated, immutable config. Everything here has been checked: ids are
//! unique, references resolve, numbers are in range. Code downstream never
//! re-validates and never sees a raw string where an enum belongs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Serialize, Serializer};
use url::Url;

use crate::Secret;
pub use rustls_pki_types::TrustAnchor;

/// A whole validated config.
///
/// Serializes (YAML for people, JSON for `GET /admin/config`) with the
/// file's own field names and shapes, those of [`crate::raw`], so that
/// the output loads again into an equivalent config; secrets show as
/// `<redacted>` and must be put back before it does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listeners and limits.
    pub server: ServerConfig,
    /// Cloud id -> cloud.
    pub clouds: BTreeMap<String, Cloud>,
    /// Model groups, in file order.
    pub models: Vec<ModelGroup>,
    /// Replicas, in file order, then (in a serving generation) the members
    /// discovery added. Serializes without the discovered ones and with
    /// the templates, as the file has them (see [`crate::serialize`]).
    pub replicas: Vec<Replica>,
    /// Replica templates (`replicas[i]` with `discovery`), in file order:
    /// not replicas themselves, the settings of their members.
    pub templates: Vec<Replica>,
    /// Clients and their API keys, in file order (none: no client auth).
    pub tenants: Vec<Tenant>,
    /// SHA-256 of each key -> (tenant, key) indexes. Derived: not serialized.
    pub key_index: std::collections::HashMap<[u8; 32], (usize, usize)>,
    /// Client authentication besides API keys (JWT issuers).
    pub auth: crate::jwt::ClientAuth,
    /// Tenants' limits shared through Redis (absent: each instance counts
    /// alone, in memory).
    pub global_limits: Option<GlobalLimits>,
    /// SHA-256 of the interpolated document, hex. Two loads of the same
    /// content give the same hash, which is how a reload of an unchanged file
    /// is recognised as a no-op. Not part of the file: not serialized.
    pub hash: String,
}

impl Config {
    /// The group clients call `name`.
    pub fn model(&self, name: &str) -> Option<&ModelGroup> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The group serving LoRA adapter `name`, if one lists it.
    pub fn adapter_group(&self, name: &str) -> Option<&ModelGroup> {
        self.models
            .iter()
            .find(|m| m.adapters.iter().any(|a| a == name))
    }
}

/// `server:`
#[derive(Debug, Clone, Serialize)]
pub struct ServerConfig {
    /// Data-plane listen address (default `0.0.0.0:8080`).
    pub listen: SocketAddr,
    /// Admin listen address (default `127.0.0.1:9090`).
    pub admin_listen: SocketAddr,
    /// When set, admin endpoints other than probes require `Authorization: Bearer <token>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// More admin tokens, each with its role.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub admin_tokens: Vec<AdminToken>,
    /// Serve requests without an API key although `listen` is not
    /// loopback (validation refuses that otherwise).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_unauthenticated: bool,
    /// Host names (lower case) besides loopback names and the admin
    /// listener's address under which the admin API may be called without
    /// a token (a `Host` not among them is refused: DNS rebinding).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub admin_hosts: Vec<String>,
    /// How the data plane's connections are served (restart to change).
    #[serde(skip_serializing_if = "Workers::is_auto")]
    pub workers: Workers,
    /// Size and time limits.
    pub limits: Limits,
    /// Which replica response headers reach clients.
    #[serde(skip_serializing_if = "ResponseHeaders::is_default")]
    pub response_headers: ResponseHeaders,
    /// Cross-origin access for browser apps; `None`: no CORS headers, and
    /// `OPTIONS` is 405.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// TLS on the data listener; `None`: plain HTTP (and h2c).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<ServerTls>,
}

/// `server.workers`: which threads serve the data plane's connections.
///
/// Dedicated workers are current-thread runtimes, one per core, each with
/// its own listener (`SO_REUSEPORT`) and upstream connections: a request
/// stays on the thread that accepted it, as in nginx's or Envoy's workers,
/// instead of being moved between cores by a work-stealing scheduler. The
/// admin API and the control plane stay on the process's shared runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// One dedicated worker per available core (the default).
    Auto,
    /// No dedicated workers: connections are served on the process's
    /// shared work-stealing runtime (the one the admin API runs on).
    Shared,
    /// This many dedicated workers.
    Count(std::num::NonZeroU16),
}

impl Workers {
    fn is_auto(&self) -> bool {
        *self == Workers::Auto
    }
}

impl Serialize for Workers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Workers::Auto => s.serialize_str("auto"),
            Workers::Shared => s.serialize_str("shared"),
            Workers::Count(n) => s.serialize_u16(n.get()),
        }
    }
}

/// `server.tls`: the data listener's certificate and key, read, parsed and
/// checked to match at validation (a reload re-reads both files).
#[derive(Debug, Clone, Serialize)]
pub struct ServerTls {
    /// PEM file with the certificate chain, as configured.
    pub cert_file: std::path::PathBuf,
    /// PEM file with the private key, as configured.
    pub key_file: std::path::PathBuf,
    /// The chain and the loaded signing key, checked to match: building the
    /// listener's TLS config from it cannot fail on the key.
    #[serde(skip)]
    pub certified: std::sync::Arc<rustls::sign::CertifiedKey>,
    /// Client certificates: verified against `client_ca_file`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientCerts>,
}

/// `server.tls.client_ca_file` and `client_auth`.
#[derive(Debug, Clone, Serialize)]
pub struct ClientCerts {
    /// PEM file with the CAs, as configured.
    pub client_ca_file: std::path::PathBuf,
    /// Whether a connection without a client certificate is refused.
    pub client_auth: ClientAuth,
    /// The verifier built from the CAs (rustls, ring).
    #[serde(skip)]
    pub verifier: std::sync::Arc<dyn rustls::server::danger::ClientCertVerifier>,
}

/// `server.tls.client_auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// The handshake fails without a valid client certificate.
    Required,
    /// A client may present none (and then needs an API key, if tenants
    /// are configured); one it presents must be valid.
    Optional,
}

/// `server.cors`: which browser origins may call the data plane.
#[derive(Debug, Clone, Serialize)]
pub struct Cors {
    /// Allowed origins, lower case, as `scheme://host[:port]`; `["*"]`: any.
    pub allow_origins: Vec<String>,
    /// Request headers allowed besides [`crate::defaults::CORS_ALLOW_HEADERS`]
    /// and `x-switchyard-*` (lower case).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_headers: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds.
    pub max_age_s: u32,
}

impl Cors {
    /// Whether `origin` (the request's `Origin` header) may call.
    pub fn allows(&self, origin: &str) -> bool {
        self.allow_origins
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

/// `server.response_headers`: names (lower case) or `prefix-*` patterns.
/// Hop-by-hop headers never pass; [`crate::defaults::RESPONSE_HEADERS_DENIED`]
/// are dropped unless allowed here; `deny` drops more.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ResponseHeaders {
    /// Passed on although dropped by default.
    pub allow: Vec<String>,
    /// Dropped besides the defaults.
    pub deny: Vec<String>,
}

impl ResponseHeaders {
    fn is_default(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

impl ServerConfig {
    /// Whether any admin token is configured (then every `/admin/` call
    /// must present one).
    pub fn admin_auth(&self) -> bool {
        self.admin_token.is_some() || !self.admin_tokens.is_empty()
    }
}

/// `server.admin_tokens[i]`: a token and what it may do.
#[derive(Debug, Clone, Serialize)]
pub struct AdminToken {
    /// The bearer token.
    pub token: Secret,
    /// What it may do.
    pub role: AdminRole,
}

/// What an admin token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminRole {
    /// `GET` only: tables, config (redacted), metrics, events.
    Read,
    /// Everything, changes included (`server.admin_token` is one).
    Operator,
}

impl AdminRole {
    /// The name used in the file and in audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Operator => "operator",
        }
    }
}

/// `tenants[i]`: a client of the gateway.
#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    /// Name, in logs and errors.
    pub name: String,
    /// Its keys (only their hashes).
    pub keys: Vec<TenantKey>,
    /// Model groups it may call; empty: all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Highest priority honoured (a request asking more gets this).
    pub max_priority: MaxPriority,
    /// Requests it may start per minute (429 beyond; a bucket that
    /// refills continuously, holding at most a minute's worth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Requests it may have in flight at once, streams until their last
    /// byte (429 beyond).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Tokens per minute, spend per UTC day and month, for all its keys
    /// together.
    #[serde(flatten)]
    pub quota: Quota,
    /// Output tokens reserved for a request without `max_tokens` (or
    /// `max_completion_tokens`) when a token limit or budget applies.
    pub default_max_tokens: u32,
    /// Verified client-certificate names (CN, DNS or URI SAN) that
    /// authenticate as this tenant.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_cert_names: Vec<String>,
    /// Cloud ids or providers its requests may reach, on top of each
    /// group's residency and the request's `x-switchyard-clouds`; empty: all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub clouds: Vec<String>,
    /// What its limits do while Redis is unreachable (`None`:
    /// `global_limits.on_unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_redis_unavailable: Option<FailMode>,
}

impl Tenant {
    /// Whether it has any limit a fleet shares (`global_limits`).
    pub fn limited(&self) -> bool {
        self.requests_per_minute.is_some()
            || self.concurrency.is_some()
            || self.quota.any()
            || self
                .keys
                .iter()
                .any(|k| k.requests_per_minute.is_some() || k.quota.any())
    }

    /// Whether it may call group `model`.
    ///
    /// `model` is what the client named: `group` or `group@version`. An
    /// allowed `group` covers all its versions; an allowed `group@version`
    /// only requests pinned to that version.
    pub fn may_call(&self, model: &str) -> bool {
        let group = match model.rsplit_once('@') {
            Some((g, v)) if !g.is_empty() && !v.is_empty() => g,
            _ => model,
        };
        self.models.is_empty() || self.models.iter().any(|m| m == model || m == group)
    }
}

/// Limits a tenant, or one of its keys on top of its tenant's, may have
/// besides a request rate. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quota {
    /// Tokens per minute (input estimate + output reservation, corrected
    /// by the reported usage after the answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u32>,
    /// Spend per UTC day, in the unit of `replicas[].cost` (USD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_budget_usd: Option<f64>,
    /// Spend per UTC month.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly_budget_usd: Option<f64>,
}

impl Quota {
    /// Whether any of these limits is set.
    pub fn any(&self) -> bool {
        self.tokens_per_minute.is_some()
            || self.daily_budget_usd.is_some()
            || self.monthly_budget_usd.is_some()
    }
}

/// `tenants[i].keys[j]`: serialized as its hash, so the output loads again.
#[derive(Debug, Clone, Default)]
pub struct TenantKey {
    /// Name of the key.
    pub id: String,
    /// SHA-256 of the key.
    pub sha256: [u8; 32],
    /// This key's own request rate, on top of its tenant's.
    pub requests_per_minute: Option<u32>,
    /// This key's own tokens per minute and budgets, on top of its tenant's.
    pub quota: Quota,
}

impl TenantKey {
    /// Whether this key has limits of its own.
    pub fn limited(&self) -> bool {
        self.requests_per_minute.is_some() || self.quota.any()
    }
}

impl Serialize for TenantKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let hex: String = self.sha256.iter().map(|b| format!("{b:02x}")).collect();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("hash", &format!("sha256:{hex}"))?;
        if let Some(rpm) = self.requests_per_minute {
            m.serialize_entry("requests_per_minute", &rpm)?;
        }
        let q = &self.quota;
        if let Some(tpm) = q.tokens_per_minute {
            m.serialize_entry("tokens_per_minute", &tpm)?;
        }
        if let Some(usd) = q.daily_budget_usd {
            m.serialize_entry("daily_budget_usd", &usd)?;
        }
        if let Some(usd) = q.monthly_budget_usd {
            m.serialize_entry("monthly_budget_usd", &usd)?;
        }
        m.end()
    }
}

/// `global_limits:` each instance leases a slice of every tenant limit
/// from Redis and admits locally against it (see the README).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GlobalLimits {
    /// `redis://host:port/db`, without a password.
    pub redis_url: String,
    /// Redis AUTH password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<crate::Secret>,
    /// Prefix of every key written (several fleets may share a Redis).
    pub key_prefix: String,
    /// How often leases are topped up, returned and spend booked.
    #[serde(rename = "sync_interval_ms", serialize_with = "ms")]
    pub sync_interval: Duration,
    /// Share of a limit one instance may lease at once (0 < slice <= 1).
    pub slice: f64,
    /// What a limit does while Redis is unreachable.
    pub on_unavailable: FailMode,
}

/// What a global limit does while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Serve, each instance enforcing the limit divided by the instances
    /// last seen alive.
    Open,
    /// Refuse (503) the requests the limit applies to.
    Closed,
}

/// `tenants[i].max_priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MaxPriority {
    /// Any priority (the default).
    High,
    /// `high` is served as `normal`.
    Normal,
    /// Everything is served as `low`.
    Low,
}

/// The SHA-256 a tenant key is stored and looked up as: the one
/// definition config validation and the data plane share.
pub fn key_digest(key: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(key).into()
}

/// Bounds on what a client or a replica can make the gateway hold.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Largest request head accepted (431 above it).
    pub max_header_bytes: usize,
    /// Time a client has to send its request head.
    #[serde(rename = "header_read_timeout_ms", serialize_with = "ms")]
    pub header_read_timeout: Duration,
    /// Time a client has to send its request body (408 after it).
    #[serde(rename = "body_read_timeout_ms", serialize_with = "ms")]
    pub body_read_timeout: Duration,
    /// Time to open a TCP connection to a replica.
    #[serde(rename = "connect_timeout_ms", serialize_with = "ms")]
    pub connect_timeout: Duration,
    /// Deadline for a replica's response headers (504 after it), across all
    /// failover attempts.
    #[serde(rename = "request_timeout_ms", serialize_with = "ms")]
    pub request_timeout: Duration,
    /// Deadline for one attempt's response headers; past it the attempt is
    /// abandoned and the next replica tried (a replica that never answers
    /// costs this, not the whole request). Defaults to `request_timeout`.
    #[serde(rename = "attempt_timeout_ms", serialize_with = "ms")]
    pub attempt_timeout: Duration,
    /// Longest silence between two response-body chunks before the response is cut
    /// with an explicit error.
    #[serde(rename = "stream_idle_timeout_ms", serialize_with = "ms")]
    pub stream_idle_timeout: Duration,
    /// Time in-flight requests and streams get to finish on shutdown.
    #[serde(rename = "shutdown_grace_ms", serialize_with = "ms")]
    pub shutdown_grace: Duration,
    /// Time in-flight requests on a replica that a reload removed get to
    /// finish; streams still running after it end with an explicit error.
    #[serde(rename = "drain_timeout_ms", serialize_with = "ms")]
    pub drain_timeout: Duration,
    /// After SIGTERM, readiness turns false at once but the listeners keep
    /// accepting this long, so load balancers (or the next process of a
    /// zero-downtime upgrade) take over before connections are refused.
    /// Default 0.
    #[serde(rename = "shutdown_overlap_ms", serialize_with = "ms")]
    pub shutdown_overlap: Duration,
    /// How long an idle pooled upstream connection is kept open.
    #[serde(rename = "pool_idle_timeout_ms", serialize_with = "ms")]
    pub pool_idle_timeout: Duration,
    /// Idle pooled connections kept per replica.
    pub pool_max_idle_per_host: usize,
    /// Plain-HTTP replicas are reached over HTTP/1 connections the request's
    /// own task drives (a chunk read from the replica is written to the
    /// client in the same poll), instead of hyper-util's pooled client,
    /// which runs each connection as a task of its own. HTTPS replicas
    /// always use the pooled client (TLS, HTTP/2).
    pub upstream_in_task: bool,
    /// Deadline, from the start of an attempt, for a held SSE stream's first
    /// event; past it the attempt fails over like a timeout. Defaults to
    /// `attempt_timeout` (a model that takes long to start streaming should
    /// not also hold up failover until the whole attempt's deadline).
    #[serde(rename = "first_token_timeout_ms", serialize_with = "ms")]
    pub first_token_timeout: Duration,
    /// The adaptive first-token deadline: an attempt whose first event is
    /// later than this many times the replica's recent time to first event
    /// (never less than `first_token_floor`, never more than
    /// `first_token_timeout`) is failed over, unless it is the request's
    /// last chance. A replica that usually starts in 20 ms and is stuck
    /// for 20 s costs the client a second or two, not the whole timeout.
    /// 0: off (the fixed `first_token_timeout` only).
    pub first_token_ttft_multiple: u32,
    /// Lower bound of the adaptive first-token deadline: a long prompt's
    /// prefill takes longer than a short one's, so "late" is never judged
    /// on a few milliseconds.
    #[serde(rename = "first_token_floor_ms", serialize_with = "ms")]
    pub first_token_floor: Duration,
    /// After a stream is committed, silence from the replica this long
    /// sends the client an SSE comment (`: keep-alive`) so proxies between
    /// us and the client do not time it out. `None`: off. Separate from
    /// `stream_idle_timeout`, which still cuts a stalled stream.
    #[serde(rename = "sse_keepalive_ms", serialize_with = "opt_ms")]
    pub sse_keepalive: Option<Duration>,
    /// Request-body bytes held for replay across all requests in flight;
    /// past it new requests get 503 + `Retry-After` instead of memory.
    pub max_buffered_bytes: usize,
    /// Open client connections on the data listener; one more is closed
    /// at once (and counted).
    pub max_connections: usize,
    /// Open client connections from one client IP; one more is closed at
    /// once (and counted).
    pub max_connections_per_client: usize,
}

impl Default for Limits {
    /// The values of [`crate::defaults`]; `attempt_timeout` and
    /// `first_token_timeout` default to the request timeout.
    fn default() -> Self {
        use crate::defaults as d;
        Self {
            max_body_bytes: d::MAX_BODY_BYTES,
            max_header_bytes: d::MAX_HEADER_BYTES,
            header_read_timeout: d::HEADER_READ_TIMEOUT,
            body_read_timeout: d::BODY_READ_TIMEOUT,
            connect_timeout: d::CONNECT_TIMEOUT,
            request_timeout: d::REQUEST_TIMEOUT,
            attempt_timeout: d::REQUEST_TIMEOUT,
            stream_idle_timeout: d::STREAM_IDLE_TIMEOUT,
            shutdown_grace: d::SHUTDOWN_GRACE,
            drain_timeout: d::DRAIN_TIMEOUT,
            shutdown_overlap: d::SHUTDOWN_OVERLAP,
            pool_idle_timeout: d::POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: d::POOL_MAX_IDLE_PER_HOST,
            upstream_in_task: d::UPSTREAM_IN_TASK,
            first_token_timeout: d::REQUEST_TIMEOUT,
            first_token_ttft_multiple: d::FIRST_TOKEN_TTFT_MULTIPLE,
            first_token_floor: d::FIRST_TOKEN_FLOOR,
            sse_keepalive: d::SSE_KEEPALIVE,
            max_buffered_bytes: d::MAX_BUFFERED_BYTES,
            max_connections: d::MAX_CONNECTIONS,
            max_connections_per_client: d::MAX_CONNECTIONS_PER_CLIENT,
        }
    }
}

fn ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn opt_ms<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.map_or(0, |d| d.as_millis() as u64))
}

/// Who runs a cloud: decides (in later work) auth, residency and pricing rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure.
    Azure,
    /// Capacity we run ourselves (on-prem, colo, a neocloud).
    Private,
}

impl Provider {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Private => "private",
        }
    }
}

/// `clouds.<id>`
#[derive(Debug, Clone, Serialize)]
pub struct Cloud {
    /// The key under `clouds` (serialized as that key only).
    #[serde(skip_serializing)]
    pub id: String,
    /// Who runs it.
    pub provider: Provider,
    /// Region, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A model group: the name clients put in `model`, split into versions by weight.
#[derive(Debug, Clone, Serialize)]
pub struct ModelGroup {
    /// Name clients use.
    pub name: String,
    /// Versions with weights; at least one has weight > 0.
    pub versions: Vec<Version>,
    /// Groups tried, in order, when this one has no replica that can serve.
    pub fallbacks: Vec<String>,
    /// Groups tried, in order, when a replica of this one answers 400
    /// `context_length_exceeded`: the request is never resent to this
    /// group. Empty: that 400 passes through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub context_fallbacks: Vec<String>,
    /// Replica-choice policy.
    pub routing: Routing,
    /// Cloud ids or providers (`private`, `aws`, `azure`) this group's
    /// traffic may reach; empty means anywhere. Requests can narrow it
    /// further with `x-switchyard-clouds`, never widen it.
    pub residency: Vec<String>,
    /// LoRA adapters the group's replicas serve (vLLM `--lora-modules` or
    /// `/v1/load_lora_adapter` names): a request whose `model` is one of
    /// them routes to this group and is forwarded with that name, and
    /// prefers replicas reporting the adapter loaded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adapters: Vec<String>,
    /// Active health checks of the group's replicas; `None`: passive only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Automatic canary rollout, when one is declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// `models[i].rollout`: move traffic to `canary` step by step, judging
/// each step against `baseline` in the same window, and roll back on a
/// breached guard rail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rollout {
    /// The version being rolled out.
    pub canary: String,
    /// The version it is compared with and rolled back to.
    pub baseline: String,
    /// Canary traffic percentage per step, increasing; default 5, 25, 50, 100.
    pub steps: Vec<u32>,
    /// How long each step runs before it is judged. Default 60 s.
    #[serde(rename = "step_interval_ms", serialize_with = "ms")]
    pub step_interval: Duration,
    /// Requests each side needs in a step's window before it is judged; a
    /// step short of them is extended. Default 20.
    pub min_requests: u64,
    /// Rollback when canary error rate > baseline's + this. Default 0.02.
    pub max_error_rate_increase: f64,
    /// Rollback when canary p95 latency > this × baseline's. Default 1.5.
    pub max_p95_ratio: f64,
}

/// One version of a model group.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    /// Version name; clients pin it with `model: "group@version"`.
    pub name: String,
    /// Share of unpinned traffic (relative to the group's total).
    pub weight: u32,
}

/// `models[i].routing`
#[derive(Debug, Clone, Serialize)]
pub struct Routing {
    /// How a replica is chosen among a version's replicas.
    pub policy: Policy,
    /// For `cost_aware`: a price tier whose best replica is at least this
    /// utilised (in-flight / max_concurrency) is passed over for the next
    /// tier, and used again once load drops. Default 0.8.
    pub spill_at: f64,
    /// Requests that may wait for a slot when every eligible replica is at
    /// `max_concurrency` (0: shed at once). Default 64.
    pub queue_size: usize,
    /// Longest wait in that queue before the request is shed with 429.
    #[serde(rename = "queue_timeout_ms", serialize_with = "ms")]
    pub queue_timeout: Duration,
    /// A 429/503 whose `Retry-After` is at most this (and fits in the
    /// request deadline) is waited out and the group retried; a longer one
    /// moves on to the fallbacks. Zero: never wait. Default 3 s.
    #[serde(rename = "retry_after_max_ms", serialize_with = "ms")]
    pub retry_after_max: Duration,
    /// How many times one broken stream may be continued on another
    /// replica of its group and version (replicas that declare a
    /// `resume` strategy). Zero: never. Default 1.
    pub max_resumes: u32,
    /// A replica that was just added by a reload or has just come back
    /// from an ejection ramps from 10% to its full share of traffic and
    /// concurrency over this window, instead of taking a thundering herd
    /// with a cold cache. Zero: off. Default 10 s.
    #[serde(rename = "slow_start_ms", serialize_with = "ms")]
    pub slow_start: Duration,
    /// Settings of the `affinity` policy (ignored by the others), serialized
    /// as the file spells them: `affinity_*` fields of `routing`.
    #[serde(flatten)]
    pub affinity: Affinity,
    /// How replicas are scored on engine figures and cached prefixes
    /// (`least_loaded`, `cost_aware` and `prefix_cache`), as `routing` fields.
    #[serde(flatten)]
    pub scoring: Scoring,
}

/// Engine-signal and prefix-cache scoring of a group's replicas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scoring {
    /// Scrape interval of replicas with an `engine`.
    #[serde(rename = "engine_interval_ms", serialize_with = "ms")]
    pub engine_interval: Duration,
    /// Engine figures older than this are ignored.
    #[serde(rename = "engine_stale_ms", serialize_with = "ms")]
    pub engine_stale: Duration,
    /// Bytes of prompt per hashed block.
    pub prefix_block_bytes: usize,
    /// Most leading blocks of one prompt considered.
    pub prefix_max_blocks: usize,
    /// Blocks remembered per replica.
    pub prefix_index_blocks: usize,
    /// Weight of the cached share of the prompt.
    pub prefix_weight: f64,
    /// Weight of the queue (engine's waiting + this gateway's in-flight since
    /// the scrape).
    pub queue_weight: f64,
    /// Weight of the engine's KV-cache use.
    pub kv_weight: f64,
    /// Weight of the requested LoRA adapter's state on a replica (loaded,
    /// loading, a free slot, none).
    pub lora_weight: f64,
}

impl Default for Scoring {
    fn default() -> Self {
        use crate::defaults as d;
        Self {
            engine_interval: d::ENGINE_INTERVAL,
            engine_stale: d::ENGINE_STALE,
            prefix_block_bytes: d::PREFIX_BLOCK_BYTES,
            prefix_max_blocks: d::PREFIX_MAX_BLOCKS,
            prefix_index_blocks: d::PREFIX_INDEX_BLOCKS,
            prefix_weight: d::PREFIX_WEIGHT,
            queue_weight: d::QUEUE_WEIGHT,
            kv_weight: d::KV_WEIGHT,
            lora_weight: d::LORA_WEIGHT,
        }
    }
}

/// The inference engine behind a replica: which metric names carry its
/// queue depth, running requests and KV-cache use (the Gateway API
/// Inference Extension's model-server protocol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// `vllm:num_requests_waiting`, `vllm:num_requests_running`,
    /// `vllm:kv_cache_usage_perc` (older: `vllm:gpu_cache_usage_perc`).
    Vllm,
    /// `sglang:num_queue_reqs`, `sglang:num_running_reqs`, `sglang:token_usage`.
    Sglang,
    /// trtllm-serve: `trtllm_num_requests_waiting`, `trtllm_num_requests_running`,
    /// `trtllm_kv_cache_utilization`.
    TrtllmServe,
    /// Triton with TensorRT-LLM: `nv_trt_llm_request_metrics{request_type=waiting|scheduled}`,
    /// `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=fraction}`.
    TritonTrtllm,
    /// TGI: `tgi_queue_size`, `tgi_batch_current_size`; no KV-cache gauge.
    Tgi,
}

impl Engine {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Vllm => "vllm",
            Engine::Sglang => "sglang",
            Engine::TrtllmServe => "trtllm_serve",
            Engine::TritonTrtllm => "triton_trtllm",
            Engine::Tgi => "tgi",
        }
    }
}

/// `affinity` policy settings: which key, and how much imbalance is allowed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Affinity {
    /// Request header holding the session key (lower case). Default
    /// `x-switchyard-session`.
    #[serde(rename = "affinity_header")]
    pub header: String,
    /// Without the header, this many leading bytes of the prompt
    /// (`messages`, or `prompt`) are the key, so requests sharing a system
    /// prompt land where its KV cache is. 0: header only. Default 256.
    #[serde(rename = "affinity_prefix_bytes")]
    pub prefix_bytes: usize,
    /// Bounded load: a replica with more than this multiple of the average
    /// in-flight load passes the key to the next replica in hash order, so
    /// one hot key cannot overload a replica. Default 1.25, at least 1.
    #[serde(rename = "affinity_load_factor")]
    pub load_factor: f64,
}

impl Default for Affinity {
    fn default() -> Self {
        Self {
            header: crate::defaults::AFFINITY_HEADER.to_owned(),
            prefix_bytes: crate::defaults::AFFINITY_PREFIX_BYTES,
            load_factor: crate::defaults::AFFINITY_LOAD_FACTOR,
        }
    }
}

/// `models[i].health_check`: active probes of every replica of a group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthCheck {
    /// Time between two probes of one replica. Default 5 s.
    #[serde(rename = "interval_ms", serialize_with = "ms")]
    pub interval: Duration,
    /// Deadline of one probe. Default 1 s (or `interval`, if shorter).
    #[serde(rename = "timeout_ms", serialize_with = "ms")]
    pub timeout: Duration,
    /// Consecutive good probes that bring a down replica back. Default 2.
    pub rise: u32,
    /// Consecutive failed probes that take a replica down. Default 3.
    pub fall: u32,
    /// Path probed, appended to the replica's base URL; `None`: the
    /// protocol's cheap endpoint (`/v1/models` for OpenAI,
    /// `/v2/health/ready` for KServe), never a billed completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Replica-choice policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Cheapest price tier first (price = input + output per 1k tokens),
    /// least loaded within a tier; spill to the next tier when a tier is
    /// above `spill_at`. The default: equal prices make it `least_loaded`.
    CostAware,
    /// The less utilised of two random replicas (power of two choices).
    LeastLoaded,
    /// Each replica in turn.
    RoundRobin,
    /// At random in proportion to each replica's `weight`.
    Weighted,
    /// Consistent hashing (rendezvous) of a session header or prompt
    /// prefix, with bounded load, so a conversation returns to the replica
    /// holding its KV cache.
    Affinity,
    /// The replica whose (approximate) prefix cache holds the longest
    /// prefix of the prompt, weighed against its queue and KV-cache use.
    PrefixCache,
}

/// Wire protocol a replica speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OpenAI-compatible HTTP API (`/v1/chat/completions`, ...): vLLM, TGI, SGLang, OpenAI.
    #[serde(rename = "openai")]
    OpenAi,
    /// KServe v2 Open Inference Protocol (`/v2/models/{name}/infer`): Triton, KServe.
    KserveV2,
}

impl Protocol {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::KserveV2 => "kserve_v2",
        }
    }
}

/// One model server. Serializes as `replicas[i]` is written (see
/// [`crate::serialize`]): `protocol` names the cloud API, whose settings
/// go back into the `azure` / `aws` blocks; derived fields are left out.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Unique id; live stats follow it across reloads.
    pub id: String,
    /// Group served.
    pub model: String,
    /// Version of the group served.
    pub version: String,
    /// Cloud id.
    pub cloud: String,
    /// Provider of that cloud (copied here so routing needs no lookup).
    pub provider: Provider,
    /// Base URL; request paths are appended to its path.
    pub url: Url,
    /// Protocol spoken.
    pub protocol: Protocol,
    /// Name sent upstream in place of the group name, if different.
    pub upstream_model: Option<String>,
    /// Concurrent requests it accepts from this gateway.
    pub max_concurrency: u32,
    /// Relative share of traffic under the `weighted` policy (>= 1).
    pub weight: u32,
    /// Token prices.
    pub cost: Cost,
    /// Credentials sent to this replica only.
    pub auth: Option<UpstreamAuth>,
    /// A managed cloud's own API that requests are translated to
    /// (`protocol: azure_openai | bedrock`); `None`: the replica speaks
    /// `protocol` natively and requests pass through untranslated.
    pub cloud_api: Option<CloudApi>,
    /// Extra CA certificates trusted for this (`https`) replica.
    pub tls: Option<Tls>,
    /// The inference engine behind it, whose metrics are scraped; `None`:
    /// routing uses this gateway's own in-flight count and latency only.
    pub engine: Option<Engine>,
    /// Path of the engine's Prometheus metrics.
    pub metrics_path: String,
    /// On a template only: where its members come from.
    pub discovery: Option<crate::Discovery>,
    /// Configured, or discovered (and how).
    pub membership: crate::Membership,
    /// On a discovered member: the id of its template.
    pub template: Option<String>,
    /// How a stream that broke mid-answer is continued on this replica.
    pub resume: Resume,
}

/// `replicas[i].resume`: how this replica can continue an answer another
/// replica of its group and version broke off. A gateway cannot tell what
/// an engine accepts or whether its decoding is deterministic, so it is
/// declared; `none` (the default) keeps today's honest error event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    /// Never a continuation target; its own broken streams end with an
    /// error event.
    #[default]
    None,
    /// The text sent so far goes as a trailing assistant message with
    /// vLLM's `continue_final_message: true, add_generation_prompt: false`;
    /// the replica generates only what follows. A 4xx (prefill refused)
    /// falls back to `regenerate`.
    Prefill,
    /// The request runs again; what the client already has is skipped when
    /// the new answer starts with exactly that text (deterministic
    /// decoding), otherwise the stream ends with an error event.
    Regenerate,
    /// Token-exact (vLLM's `return_token_ids`, as NVIDIA Dynamo's request
    /// migration does): the gateway asks this replica's streams for their
    /// token ids and, when one breaks, sends the prompt's ids plus the ids
    /// generated so far as a `/v1/completions` prompt to another
    /// `token_ids` replica, which generates exactly the rest. Without ids
    /// to continue from (or refused with a 4xx), `regenerate`.
    TokenIds,
}

impl Resume {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Resume::None => "none",
            Resume::Prefill => "prefill",
            Resume::Regenerate => "regenerate",
            Resume::TokenIds => "token_ids",
        }
    }
}

/// `replicas[i].tls`: trust for a replica whose certificate is issued by a
/// private CA, added to (never replacing) the webpki roots, for this replica only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tls {
    /// PEM file with one or more CA certificates, as configured (for display).
    pub ca_file: std::path::PathBuf,
    /// The trust anchors parsed from `ca_file` at validation, by the same
    /// parser rustls uses (`webpki::anchor_from_trusted_cert`): never empty,
    /// and ready to go into a `rustls::RootCertStore` as they are, so
    /// building the replica's TLS config cannot fail and the file is not
    /// read again. A reload re-reads the file.
    #[serde(skip)]
    pub ca_roots: Vec<TrustAnchor<'static>>,
}

/// A managed cloud API the gateway translates OpenAI requests into. The
/// replica's `protocol` stays [`Protocol::OpenAi`] for routing: clients
/// speak OpenAI to these replicas through the gateway.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudApi {
    /// Azure OpenAI: deployment paths, `api-version`, `api-key` or Entra ID bearer.
    AzureOpenAi(AzureOpenAi),
    /// AWS Bedrock Runtime Converse / ConverseStream, signed with SigV4.
    Bedrock(Bedrock),
    /// SageMaker Runtime InvokeEndpoint(WithResponseStream), SigV4, with
    /// OpenAI-shaped payloads as LLM containers (vLLM, LMI, TGI) serve them.
    Sagemaker(Sagemaker),
}

impl CloudApi {
    /// The config spelling of the protocol.
    pub fn as_str(&self) -> &'static str {
        match self {
            CloudApi::AzureOpenAi(_) => "azure_openai",
            CloudApi::Bedrock(_) => "bedrock",
            CloudApi::Sagemaker(_) => "sagemaker",
        }
    }
}

/// `replicas[i].azure`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AzureOpenAi {
    /// Deployment name in `/openai/deployments/{deployment}/...`.
    pub deployment: String,
    /// `api-version` query parameter.
    pub api_version: String,
}

/// `replicas[i].aws` for `protocol: bedrock`.
#[derive(Debug, Clone, Serialize)]
pub struct Bedrock {
    /// Bedrock model id (`upstream_model`, else the group name).
    pub model_id: String,
    /// SigV4 signing region.
    pub region: String,
    /// Keys from the config or, when it has none, from the `AWS_*`
    /// variables of the loader's environment, read at load.
    pub credentials: AwsCredentials,
}

/// `replicas[i].aws` for `protocol: sagemaker`.
#[derive(Debug, Clone, Serialize)]
pub struct Sagemaker {
    /// Endpoint name in `/endpoints/{name}/invocations`.
    pub endpoint_name: String,
    /// SigV4 signing region.
    pub region: String,
    /// Keys from the config or the loader's `AWS_*` variables, read at load.
    pub credentials: AwsCredentials,
}

/// AWS credentials. Every part is a [`Secret`] (even the key id: it names
/// an account's user and has no business in a log).
#[derive(Debug, Clone, Serialize)]
pub struct AwsCredentials {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Secret,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Secret,
    /// `AWS_SESSION_TOKEN` of temporary credentials.
    pub session_token: Option<Secret>,
}

/// Token prices, in whatever currency the operator uses consistently.
///
/// Private capacity priced by the hour (`per_hour` + `tokens_per_hour`) is
/// converted at validation to its marginal price per token, the same for
/// input and output, so routing tiers and spend accounting compare it with
/// managed clouds' per-token prices directly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Price per 1,000 input tokens.
    pub input_per_1k: f64,
    /// Price per 1,000 output tokens.
    pub output_per_1k: f64,
    /// The hourly price it was derived from, when given that way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<f64>,
    /// The expected throughput (tokens per hour) it was derived with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_hour: Option<f64>,
}

/// How the gateway authenticates to one replica. Serializes as the
/// `auth` block is written (`bearer`, `header` + `value`, `bearer_file`,
/// `header` + `value_file`), secrets as `<redacted>`.
#[derive(Debug, Clone)]
pub enum UpstreamAuth {
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// A custom header, e.g. `api-key: <value>`.
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: Secret,
    },
    /// A credential kept in a file that an agent rotates on disk (an Entra
    /// ID token, a mounted Kubernetes secret): re-read when it changes.
    File {
        /// Header name; `None`: `Authorization: Bearer <file contents>`.
        header: Option<String>,
        /// The file.
        path: std::path::PathBuf,
    },
}
