//! The file as written: serde types that mirror the YAML one to one.
//!
//! Everything a human may get wrong is kept loose here (enums as strings,
//! numbers as `i64`/`f64`) so that [`crate::validate`] can report *all*
//! problems with their field path, instead of serde stopping at the first.
//! Unknown fields are rejected: a typo (`max_concurency`) must not silently
//! fall back to a default.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listeners and limits.
    #[serde(default)]
    pub server: RawServer,
    /// Cloud id -> where it runs.
    #[serde(default)]
    pub clouds: BTreeMap<String, RawCloud>,
    /// Model groups that clients name in `model`.
    #[serde(default)]
    pub models: Vec<RawModel>,
    /// The replicas that serve them.
    #[serde(default)]
    pub replicas: Vec<RawReplica>,
    /// Clients and their API keys.
    #[serde(default)]
    pub tenants: Vec<RawTenant>,
    /// Client authentication besides API keys (JWT issuers).
    #[serde(default)]
    pub auth: RawClientAuth,
    /// Tenants' limits shared by every instance through Redis.
    pub global_limits: Option<RawGlobalLimits>,
}

/// `global_limits:` see [`crate::GlobalLimits`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGlobalLimits {
    /// `redis://host:port/db` (no password: `password`).
    pub redis_url: String,
    /// Redis AUTH password (use `${ENV}`).
    pub password: Option<String>,
    /// Prefix of every key written.
    pub key_prefix: Option<String>,
    /// How often leases are topped up, returned and spend booked.
    pub sync_interval_ms: Option<i64>,
    /// Share of a limit one instance may lease at once, 0 < slice <= 1.
    pub slice: Option<f64>,
    /// `open` or `closed` while Redis is unreachable.
    pub on_unavailable: Option<String>,
}

/// `auth:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClientAuth {
    /// Identity providers whose tokens are accepted.
    #[serde(default)]
    pub jwt: Vec<RawJwtIssuer>,
}

/// `auth.jwt[i]:` see [`crate::jwt::JwtIssuer`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwtIssuer {
    /// The exact `iss`.
    pub issuer: String,
    /// Accepted `aud` values.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// HTTPS (or loopback HTTP) URL of the JWKS.
    pub jwks_uri: Option<String>,
    /// A JWKS file, instead of `jwks_uri`.
    pub jwks_file: Option<String>,
    /// Accepted `alg` values (default: RS256, ES256).
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed, seconds.
    pub leeway_s: Option<i64>,
    /// Seconds between JWKS fetches.
    pub jwks_refresh_s: Option<i64>,
    /// Least milliseconds between two JWKS fetches.
    pub jwks_min_refetch_ms: Option<i64>,
    /// A fixed tenant for every token of the issuer.
    pub tenant: Option<String>,
    /// The claim naming the tenant (`a.b` for nested).
    pub tenant_claim: Option<String>,
    /// Claim value -> tenant name.
    #[serde(default)]
    pub tenant_map: BTreeMap<String, String>,
}

/// `tenants[i]:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    /// Name, in logs and errors.
    pub name: String,
    /// Its API keys.
    #[serde(default)]
    pub keys: Vec<RawTenantKey>,
    /// Model groups it may call (absent: all).
    pub models: Option<Vec<String>>,
    /// Highest `x-switchyard-priority` honoured: high, normal or low.
    pub max_priority: Option<String>,
    /// Requests it may start per minute (all its keys together).
    pub requests_per_minute: Option<i64>,
    /// Requests (streams included) it may have in flight at once.
    pub concurrency: Option<i64>,
    /// Tokens (input estimate + `max_tokens`, corrected by the reported
    /// usage) it may use per minute.
    pub tokens_per_minute: Option<i64>,
    /// Output tokens reserved for a request that sets no `max_tokens`.
    pub default_max_tokens: Option<i64>,
    /// Spend allowed per UTC day, in the unit of `replicas[].cost` (USD).
    pub daily_budget_usd: Option<f64>,
    /// Spend allowed per UTC month.
    pub monthly_budget_usd: Option<f64>,
    /// Client-certificate names (subject CN, DNS or URI SAN) that
    /// authenticate as this tenant, with `server.tls.client_ca_file`.
    #[serde(default)]
    pub client_cert_names: Vec<String>,
    /// Cloud ids or providers its requests may reach (residency, on top of
    /// each group's); absent: all.
    pub clouds: Option<Vec<String>>,
    /// `open` or `closed`: overrides `global_limits.on_unavailable`.
    pub on_redis_unavailable: Option<String>,
}

/// `tenants[i].keys[j]:` exactly one of `hash`, `key`, `key_file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenantKey {
    /// Name of the key (never the key), in logs.
    pub id: String,
    /// `sha256:<64 hex digits>` of the key.
    pub hash: Option<String>,
    /// The key itself (use `${ENV}`); only its hash is kept.
    pub key: Option<String>,
    /// A file holding the key; only its hash is kept.
    pub key_file: Option<String>,
    /// This key's own limits, checked on top of its tenant's.
    pub requests_per_minute: Option<i64>,
    /// This key's own tokens per minute.
    pub tokens_per_minute: Option<i64>,
    /// This key's own spend per UTC day.
    pub daily_budget_usd: Option<f64>,
    /// This key's own spend per UTC month.
    pub monthly_budget_usd: Option<f64>,
}

/// `server:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Data-plane listen address.
    pub listen: Option<String>,
    /// Admin listen address.
    pub admin_listen: Option<String>,
    /// Bearer token the admin API requires (an operator token).
    pub admin_token: Option<String>,
    /// More admin tokens, each with a role (`read` or `operator`).
    #[serde(default)]
    pub admin_tokens: Vec<RawAdminToken>,
    /// Serve clients without an API key on a non-loopback `listen`.
    pub allow_unauthenticated: Option<bool>,
    /// Host names (besides loopback and `admin_listen`'s address) under
    /// which the admin API may be reached without a token.
    #[serde(default)]
    pub admin_hosts: Vec<String>,
    /// Data-plane workers: `auto` (one per core), `shared`, or a count.
    pub workers: Option<RawWorkers>,
    /// Size and time limits.
    #[serde(default)]
    pub limits: RawLimits,
    /// Which replica response headers reach clients.
    #[serde(default)]
    pub response_headers: RawResponseHeaders,
    /// Cross-origin access for browser apps (none: no CORS headers, `OPTIONS` is 405).
    pub cors: Option<RawCors>,
    /// TLS on the data listener (none: plain HTTP).
    pub tls: Option<RawServerTls>,
}

/// `server.tls:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerTls {
    /// PEM file: the server certificate, then its intermediates.
    pub cert_file: Option<String>,
    /// PEM file: the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<String>,
    /// PEM file: CAs whose client certificates the listener accepts.
    pub client_ca_file: Option<String>,
    /// With `client_ca_file`: `required` (the default) or `optional`.
    pub client_auth: Option<String>,
}

/// `server.cors:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCors {
    /// Origins (`https://app.example.com`) allowed to call, or `["*"]`.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Request headers allowed besides the gateway's own.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// How long a browser may cache a preflight answer, in seconds.
    pub max_age_s: Option<i64>,
}

/// `server.response_headers:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponseHeaders {
    /// Names (or `prefix-*`) passed on although dropped by default.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Names (or `prefix-*`) dropped besides the defaults.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `server.admin_tokens[i]:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminToken {
    /// The bearer token.
    pub token: String,
    /// `read` (GET only) or `operator` (everything).
    pub role: String,
}

/// `server.limits:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest request body accepted.
    pub max_body_bytes: Option<i64>,
    /// Largest request head (request line + headers) accepted.
    pub max_header_bytes: Option<i64>,
    /// Time a client has to send its request head.
    pub header_read_timeout_ms: Option<i64>,
    /// Time a client has to send its request body.
    pub body_read_timeout_ms: Option<i64>,
    /// Time to open a TCP connection to a replica.
    pub connect_timeout_ms: Option<i64>,
    /// Deadline for a replica's response headers.
    pub request_timeout_ms: Option<i64>,
    /// Deadline for one attempt's response headers (failover after it).
    pub attempt_timeout_ms: Option<i64>,
    /// Longest gap between two chunks of a response body.
    pub stream_idle_timeout_ms: Option<i64>,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_grace_ms: Option<i64>,
    /// Time in-flight requests on a replica removed by a reload get to finish.
    pub drain_timeout_ms: Option<i64>,
    /// Time listeners keep accepting after shutdown begins (readiness is false).
    pub shutdown_overlap_ms: Option<i64>,
    /// How long an idle pooled upstream connection is kept.
    pub pool_idle_timeout_ms: Option<i64>,
    /// Idle pooled connections kept per replica.
    pub pool_max_idle_per_host: Option<i64>,
    /// Plain-HTTP replicas: drive each HTTP/1 connection in the request's task.
    pub upstream_in_task: Option<bool>,
    /// Deadline for a held SSE stream's first event (failover after it).
    pub first_token_timeout_ms: Option<i64>,
    /// A stream's first event later than this many times the replica's
    /// usual time to first event fails over (0: off).
    pub first_token_ttft_multiple: Option<i64>,
    /// The adaptive first-token deadline is never shorter than this.
    pub first_token_floor_ms: Option<i64>,
    /// Silence after which a committed SSE stream gets a keep-alive comment (0: off).
    pub sse_keepalive_ms: Option<i64>,
    /// Request bytes the gateway may hold for replay, across all requests.
    pub max_buffered_bytes: Option<i64>,
    /// Open client connections on the data listener.
    pub max_connections: Option<i64>,
    /// Open client connections from one client IP.
    pub max_connections_per_client: Option<i64>,
}

/// `clouds.<id>:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCloud {
    /// `aws`, `azure` or `private`.
    pub provider: String,
    /// Free-form region name (`us-east-1`, `westeurope`, `dc-fra`).
    pub region: Option<String>,
}

/// `models[i]:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// Name clients put in `model`.
    pub name: String,
    /// Versions with their traffic weights.
    #[serde(default)]
    pub versions: Vec<RawVersion>,
    /// Groups to use when this one cannot serve.
    #[serde(default)]
    pub fallbacks: Vec<String>,
    /// Groups with a longer context, tried in order when a replica of this
    /// one answers 400 `context_length_exceeded`.
    #[serde(default)]
    pub context_fallbacks: Vec<String>,
    /// How a replica is chosen inside a version.
    #[serde(default)]
    pub routing: RawRouting,
    /// Cloud ids or providers this group's traffic may go to.
    #[serde(default)]
    pub residency: Vec<String>,
    /// LoRA adapter names this group's replicas serve: a request whose
    /// `model` is one of them goes to this group, named as sent.
    #[serde(default)]
    pub adapters: Vec<String>,
    /// Active health checks of this group's replicas (off when absent).
    pub health_check: Option<RawHealthCheck>,
    /// Automatic canary rollout of one version.
    pub rollout: Option<RawRollout>,
}

/// `models[i].rollout:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollout {
    /// The version being rolled out.
    pub canary: String,
    /// The version it is compared with (default: the group's heaviest other version).
    pub baseline: Option<String>,
    /// Canary traffic percentages, one per step.
    pub steps: Option<Vec<i64>>,
    /// Time each step lasts before it is judged.
    pub step_interval_ms: Option<i64>,
    /// Requests each side needs in a step before it can be judged.
    pub min_requests: Option<i64>,
    /// Canary error rate may exceed the baseline's by at most this (0..1).
    pub max_error_rate_increase: Option<f64>,
    /// Canary p95 latency may be at most this multiple of the baseline's.
    pub max_p95_ratio: Option<f64>,
}

/// `models[i].versions[j]:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVersion {
    /// Version name (`v1`, `2025-06-01`).
    pub name: String,
    /// Share of unpinned traffic, 0..=100.
    pub weight: i64,
}

/// `models[i].routing:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouting {
    /// Replica-choice policy name.
    pub policy: Option<String>,
    /// `cost_aware`: utilisation (0..1) above which a price tier counts as full.
    pub spill_at: Option<f64>,
    /// Requests that may wait for a free slot when every replica is full.
    pub queue_size: Option<i64>,
    /// How long one may wait before it is shed with 429.
    pub queue_timeout_ms: Option<i64>,
    /// Longest `Retry-After` waited out before retrying this group (0: never).
    pub retry_after_max_ms: Option<i64>,
    /// Times one broken stream may be continued on another replica (0: never).
    pub max_resumes: Option<i64>,
    /// Ramp-up window of a replica that recovered or was added (0: off).
    pub slow_start_ms: Option<i64>,
    /// `affinity`: request header carrying the session key.
    pub affinity_header: Option<String>,
    /// `affinity`: bytes of the prompt hashed when the header is absent.
    pub affinity_prefix_bytes: Option<i64>,
    /// `affinity`: a replica above this multiple of the average load passes
    /// the key on (bounded-load consistent hashing).
    pub affinity_load_factor: Option<f64>,
    /// How often replicas with an `engine` have their metrics scraped.
    pub engine_interval_ms: Option<i64>,
    /// Engine figures older than this are ignored (in-flight only).
    pub engine_stale_ms: Option<i64>,
    /// `prefix_cache`: bytes of prompt per hashed block.
    pub prefix_block_bytes: Option<i64>,
    /// `prefix_cache`: most leading blocks of one prompt considered.
    pub prefix_max_blocks: Option<i64>,
    /// `prefix_cache`: blocks remembered per replica (its approximate cache).
    pub prefix_index_blocks: Option<i64>,
    /// Weight of the cached-prefix share in the replica score.
    pub prefix_weight: Option<f64>,
    /// Weight of the engine's queue (and this gateway's in-flight) in the score.
    pub queue_weight: Option<f64>,
    /// Weight of the engine's KV-cache use in the score.
    pub kv_weight: Option<f64>,
    /// Weight of a replica having the requested LoRA adapter loaded.
    pub lora_weight: Option<f64>,
}

/// `models[i].health_check:`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    /// Time between two probes of one replica.
    pub interval_ms: Option<i64>,
    /// Deadline of one probe.
    pub timeout_ms: Option<i64>,
    /// Consecutive good probes that bring a down replica back.
    pub rise: Option<i64>,
    /// Consecutive failed probes that take a replica down.
    pub fall: Option<i64>,
    /// Path probed (default per protocol).
    pub path: Option<String>,
}

/// `replicas[i]:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplica {
    /// Unique id; live stats are keyed by it.
    pub id: String,
    /// Model group served.
    pub model: String,
    /// Version of that group served (may be omitted when the group has one).
    pub version: Option<String>,
    /// Cloud id from `clouds`.
    pub cloud: String,
    /// Base URL of the replica.
    pub url: String,
    /// Wire protocol the replica speaks.
    pub protocol: Option<String>,
    /// Model name to send upstream instead of the group name.
    pub upstream_model: Option<String>,
    /// Concurrent requests the replica can take (GPU slots).
    pub max_concurrency: Option<i64>,
    /// Share of traffic under the `weighted` policy (default 1).
    pub weight: Option<i64>,
    /// Price of the replica's tokens.
    pub cost: Option<RawCost>,
    /// Credentials sent to this replica only.
    pub auth: Option<RawAuth>,
    /// Extra trust for an `https` replica (a private CA).
    pub tls: Option<RawTls>,
    /// Allow a link-local / cloud-metadata address as the replica URL.
    pub allow_link_local: Option<bool>,
    /// `protocol: azure_openai`: deployment and API version.
    pub azure: Option<RawAzure>,
    /// `protocol: bedrock`: region and credentials for SigV4.
    pub aws: Option<RawAws>,
    /// Inference engine behind a private replica (`vllm`, `sglang`,
    /// `trtllm_serve`, `triton_trtllm`, `tgi`): its `/metrics` are scraped
    /// for queue depth and KV-cache use.
    pub engine: Option<String>,
    /// Path of the engine's Prometheus metrics (default `/metrics`).
    pub metrics_path: Option<String>,
    /// How a broken stream is continued on this replica: `prefill`,
    /// `regenerate` or `none` (default).
    pub resume: Option<String>,
    /// Makes this entry a template whose members DNS or registrations supply.
    pub discovery: Option<RawDiscovery>,
}

/// `replicas[i].discovery:` either `dns: NAME` (with `type`, `port`,
/// `nameserver`, `min_refresh_ms`, `max_refresh_ms`) or `registration: true`
/// (with `max_ttl_ms`); `max_members` for both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    /// Name to resolve.
    pub dns: Option<String>,
    /// `a` (default), `aaaa` or `srv`.
    #[serde(rename = "type")]
    pub record: Option<String>,
    /// Port of A/AAAA members (default: the URL's).
    pub port: Option<i64>,
    /// `ip` or `ip:port` of the nameserver to ask (default: the system's).
    pub nameserver: Option<String>,
    /// Shortest time between two resolutions.
    pub min_refresh_ms: Option<i64>,
    /// Longest time between two resolutions.
    pub max_refresh_ms: Option<i64>,
    /// Members register through `POST /admin/registrations`.
    pub registration: Option<bool>,
    /// Longest lease a registration may ask for.
    pub max_ttl_ms: Option<i64>,
    /// A Kubernetes Service's EndpointSlices.
    pub kubernetes: Option<RawKubernetes>,
    /// Most members this template may have.
    pub max_members: Option<i64>,
}

/// `replicas[i].discovery.kubernetes:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    /// Namespace of the Service.
    pub namespace: Option<String>,
    /// Service name.
    pub service: Option<String>,
    /// Port name or number (default: the template URL's port).
    pub port: Option<RawPort>,
    /// Kubeconfig file (default: `$KUBECONFIG` or `~/.kube/config`, else in-cluster).
    pub kubeconfig: Option<String>,
}

/// `server.workers`: a count or a word (`auto`, `shared`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawWorkers {
    /// `workers: 2`
    Count(i64),
    /// `workers: auto`
    Word(String),
}

/// A port given by number or by name.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawPort {
    /// `port: 8000`
    Number(i64),
    /// `port: http`
    Name(String),
}

/// `replicas[i].tls:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// PEM file of CA certificates trusted for this replica, on top of the
    /// webpki roots; read and parsed at load.
    pub ca_file: Option<String>,
}

/// `replicas[i].azure:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAzure {
    /// Deployment name (default: `upstream_model`, else the group name).
    pub deployment: Option<String>,
    /// `api-version` query parameter, e.g. `2024-06-01`.
    pub api_version: Option<String>,
}

/// `replicas[i].aws:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAws {
    /// Signing region (default: the cloud's `region`).
    pub region: Option<String>,
    /// Access key id. With `secret_access_key`, or neither: then
    /// `AWS_ACCESS_KEY_ID` etc. are read through the loader's env at load
    /// (start, `check`, every reload) and their absence is an error.
    pub access_key_id: Option<String>,
    /// Secret access key (default: `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials (default: `AWS_SESSION_TOKEN`).
    pub session_token: Option<String>,
    /// `protocol: sagemaker`: the SageMaker endpoint's name.
    pub endpoint_name: Option<String>,
}

/// `replicas[i].cost:`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCost {
    /// Price per 1,000 input tokens.
    #[serde(default)]
    pub input_per_1k: f64,
    /// Price per 1,000 output tokens.
    #[serde(default)]
    pub output_per_1k: f64,
    /// Private capacity: price of the replica per hour...
    pub per_hour: Option<f64>,
    /// ...and the tokens (input + output) it serves in an hour when busy.
    pub tokens_per_hour: Option<f64>,
}

/// `replicas[i].auth:` either `bearer: TOKEN` or `header: NAME` + `value: SECRET`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Sent as `Authorization: Bearer <bearer>`.
    pub bearer: Option<String>,
    /// Custom header name (`api-key`, `x-api-key`).
    pub header: Option<String>,
    /// Value for `header`.
    pub value: Option<String>,
    /// File holding the bearer token, checked at load and re-read when it
    /// changes (rotation); one trailing line break is dropped.
    pub bearer_file: Option<String>,
    /// File holding the value for `header`, like `bearer_file`.
    pub value_file: Option<String>,
}
