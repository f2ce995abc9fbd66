//! Every default of the config, defined once.
//!
//! Validation fills an omitted field from here, and the `Default` impls of
//! the model types ([`crate::Limits`], [`crate::Affinity`]) are built from the
//! same constants, so the two can never disagree. Each value says why it is
//! what it is; a change here is a change of behaviour for every config that
//! omits the field.

use std::time::Duration;

// --- server ---

/// Data plane on loopback: listening beyond it is a decision, and then
/// needs `tenants` (client API keys) or `server.allow_unauthenticated`.
pub const LISTEN: &str = "127.0.0.1:8080";
/// Admin API on loopback only: it can change routing, so exposing it is a
/// decision (and then needs `admin_token`).
pub const ADMIN_LISTEN: &str = "127.0.0.1:9090";

// --- server.cors ---

/// 10 minutes: Chrome caps a preflight cache at 2 hours, Firefox at 24;
/// 600 s spares most preflights while a config change reaches browsers soon.
pub const CORS_MAX_AGE_S: u32 = 600;
/// Longest `server.cors.max_age_s` accepted: Firefox's cap (24 hours).
pub const CORS_MAX_AGE_S_MAX: u32 = 86_400;
/// Request headers every preflight allows: the API keys' three headers,
/// the body's type and the request id. `x-switchyard-*` are allowed too
/// (a header list has no wildcard for a prefix, so requested ones are echoed).
pub const CORS_ALLOW_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "x-api-key",
    "api-key",
    "x-request-id",
];

// --- server.limits ---

/// 8 MiB: a long chat history or a batch of embeddings inputs fits; a
/// client cannot make the gateway buffer an arbitrary upload.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// 64 KiB: room for large cookies and tracing headers, far below what
/// would let one client pin memory.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// A client that has not sent its request head in 10 s is slowloris, not slow.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Bodies are at most [`MAX_BODY_BYTES`]: 30 s allows a slow uplink.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A replica that does not accept a TCP connection in 2 s is treated as
/// down and the next one tried; connecting is cheap when it is up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// 5 minutes: a long non-streaming generation on a loaded GPU can take
/// minutes before its response headers. Also the default of
/// `attempt_timeout` and `first_token_timeout`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Two minutes of silence inside a response body means the replica is stuck.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Matches Kubernetes' default `terminationGracePeriodSeconds` (30 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Same as [`SHUTDOWN_GRACE`]: a replica removed by a reload gets the time
/// the whole gateway would get on shutdown.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Off: without a load balancer in front there is nobody to wait for.
pub const SHUTDOWN_OVERLAP: Duration = Duration::ZERO;
/// 90 s (Go's `http.Transport` default): a connection is reused across short
/// lulls in traffic without sockets being held open forever.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Enough idle connections per replica for bursty traffic without
/// reconnecting, bounded so a burst does not leave thousands open.
pub const POOL_MAX_IDLE_PER_HOST: usize = 256;
/// Measured in BENCHMARKS.md ("Upstream connections in the request's task").
pub const UPSTREAM_IN_TASK: bool = true;
/// A first event ten times later than the replica's usual is not load
/// noise: the replica is stuck, and another one will likely answer sooner.
pub const FIRST_TOKEN_TTFT_MULTIPLE: u32 = 10;
/// 1.5 s: above the prefill of a long prompt on a busy GPU compared with
/// the short prompts that set a replica's usual time to first event, and
/// still far below a fixed timeout of minutes.
pub const FIRST_TOKEN_FLOOR: Duration = Duration::from_millis(1500);
/// 15 s: under the 30-60 s idle cut of most proxies between us and a client.
pub const SSE_KEEPALIVE: Option<Duration> = Some(Duration::from_secs(15));
/// 256 MiB of request bodies held for replay, across all requests: 32
/// maximal bodies; past it new requests are shed instead of memory grown.
pub const MAX_BUFFERED_BYTES: usize = 256 << 20;

// --- models[i].routing ---

/// A price tier at 80% utilisation still has headroom for bursts; past it
/// the next tier takes the overflow.
pub const SPILL_AT: f64 = 0.8;
/// Requests that may wait for a free slot: one replica's worth at the
/// default [`MAX_CONCURRENCY`].
pub const QUEUE_SIZE: usize = 64;
/// A client waits at most 5 s for a slot; then 429 lets it back off.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// A `Retry-After` of up to 3 s is cheaper to wait out on the model the
/// client asked for than to answer from a fallback; longer ones move on.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3);
/// One resume per request: a second break in the same answer says more
/// about the fleet than about bad luck, and each resume re-runs a prompt.
pub const MAX_RESUMES: u32 = 1;
/// 10 s ramp-up: long enough to warm a KV/prefix cache, short enough that
/// a recovered replica takes its share soon.
pub const SLOW_START: Duration = Duration::from_secs(10);
/// Session header of the `affinity` policy, in our own namespace.
pub const AFFINITY_HEADER: &str = "x-switchyard-session";
/// 256 prompt bytes cover a typical system prompt's start, which is what
/// a KV cache is shared on.
pub const AFFINITY_PREFIX_BYTES: usize = 256;
/// Bounded load: 25% above the average before a key moves on, the usual
/// setting for consistent hashing with bounded loads.
pub const AFFINITY_LOAD_FACTOR: f64 = 1.25;

/// The Gateway API Inference Extension's endpoint picker scrapes every
/// 50 ms and OOMed at fleet scale (llm-d-router #2195); 250 ms keeps
/// figures fresh for GPU-second requests at a fifth of the cost.
pub const ENGINE_INTERVAL: Duration = Duration::from_millis(250);
/// Figures older than 2 s are not trusted (the inference extension's
/// staleness bound): routing falls back to this gateway's in-flight.
pub const ENGINE_STALE: Duration = Duration::from_secs(2);
/// 64 bytes (~16 tokens, vLLM's block size) per hashed prompt block, as
/// the inference extension's prefix plugin does with characters.
pub const PREFIX_BLOCK_BYTES: usize = 64;
/// 128 blocks (8 KiB of prompt) cover system prompts and a few turns.
pub const PREFIX_MAX_BLOCKS: usize = 128;
/// 16,384 remembered blocks per replica (1 MiB of prompt text; 128 KiB of
/// index), about a 7B model's KV cache on one GPU.
pub const PREFIX_INDEX_BLOCKS: usize = 16_384;
/// llm-d's default scorer weights, queue : KV : prefix = 2 : 2 : 3.
pub const PREFIX_WEIGHT: f64 = 3.0;
/// See [`PREFIX_WEIGHT`].
pub const QUEUE_WEIGHT: f64 = 2.0;
/// See [`PREFIX_WEIGHT`].
pub const KV_WEIGHT: f64 = 2.0;
/// A loaded adapter (tier 1.0) against a free adapter slot (0.6) is worth
/// 0.8 of a batch of extra load at `QUEUE_WEIGHT` 2; against a replica
/// that must evict (0) two batches. KServe's LLMInferenceService gives the
/// Inference Extension's `lora-affinity-scorer` the same weight, 4.
pub const LORA_WEIGHT: f64 = 4.0;
/// Engines' Prometheus endpoint.
pub const METRICS_PATH: &str = "/metrics";

// --- models[i].health_check ---

/// A probe every 5 s finds a dead replica quickly at a negligible cost.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// A health endpoint answers in milliseconds; 1 s (or the interval, if
/// shorter) is generous.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
/// Two good probes in a row before a replica is trusted again (no flapping).
pub const HEALTH_RISE: u32 = 2;
/// Three failed probes in a row before a replica is taken down (one lost
/// packet is not an outage).
pub const HEALTH_FALL: u32 = 3;

// --- models[i].rollout ---

/// Canary traffic per step, in percent: a small first exposure, then halving
/// the remaining risk, then all.
pub const ROLLOUT_STEPS: [i64; 4] = [5, 25, 50, 100];
/// A minute per step: enough requests at moderate traffic to compare.
pub const ROLLOUT_STEP_INTERVAL: Duration = Duration::from_secs(60);
/// Fewer requests than this per side in a step say nothing; the step is extended.
pub const ROLLOUT_MIN_REQUESTS: u64 = 20;
/// Two percentage points more errors than the baseline roll the canary back.
pub const ROLLOUT_MAX_ERROR_RATE_INCREASE: f64 = 0.02;
/// A canary 50% slower at p95 than the baseline is rolled back.
pub const ROLLOUT_MAX_P95_RATIO: f64 = 1.5;

// --- replicas[i] ---

/// Under `weighted`, replicas without a weight share equally.
pub const REPLICA_WEIGHT: u32 = 1;
/// 64 concurrent requests: a typical continuous-batching server's batch on
/// one GPU; set it to the replica's real slot count.
pub const MAX_CONCURRENCY: u32 = 64;

/// Open client connections on the data listener (`server.limits.max_connections`).
pub const MAX_CONNECTIONS: usize = 10_000;

/// Open client connections from one IP (`server.limits.max_connections_per_client`):
/// by default the listener's own cap, so no per-IP limit applies. Behind an
/// L4 balancer or NAT every client shares one address, and a lower default
/// closed a thousand-stream client's connections as it reconnected (the
/// `streams-1000` scenario lost 100 requests to it). Set it lower where
/// clients connect from their own addresses.
pub const MAX_CONNECTIONS_PER_CLIENT: usize = MAX_CONNECTIONS;

/// Replica response headers dropped unless `server.response_headers.allow`
/// names them: they describe the replica (software, internal addresses) or
/// set state on the client (cookies) for a host it never talked to.
pub const RESPONSE_HEADERS_DENIED: &[&str] = &[
    "server",
    "set-cookie",
    "set-cookie2",
    "x-powered-by",
    "x-upstream-*",
    "x-internal-*",
    "x-backend-*",
];

/// Output tokens a tenant's request without `max_tokens` reserves against
/// its token limit and budgets (corrected by the reported usage after).
pub const DEFAULT_MAX_TOKENS: u32 = 1024;
// --- replicas[i].discovery ---

/// 1 s: a member removed from DNS leaves rotation within a second when the
/// record's TTL allows, and a failing nameserver is asked again no sooner.
pub const DNS_MIN_REFRESH_MS: u64 = 1_000;
/// 30 s: a long TTL still gets looked at twice a minute.
pub const DNS_MAX_REFRESH_MS: u64 = 30_000;
/// 5 minutes: a registration that stops heartbeating is gone within this.
pub const REGISTRATION_MAX_TTL_MS: u64 = 300_000;
/// 256 members per template: far above a GPU pool, far below a table that
/// a runaway autoscaler or a poisoned answer could grow.
pub const DISCOVERY_MAX_MEMBERS: u32 = 256;
/// JWT clock skew: 60 s, what most IdP SDKs allow between hosts' clocks.
pub const JWT_LEEWAY: Duration = Duration::from_secs(60);
/// Largest `leeway_s`: beyond 10 minutes an expired token is simply valid.
pub const JWT_LEEWAY_MAX_S: i64 = 600;
/// JWKS refetched every 5 minutes: a key an IdP rotates in (published ahead
/// of use, as IdPs do) is known long before tokens carry it.
pub const JWKS_REFRESH: Duration = Duration::from_secs(300);
/// No JWKS fetch sooner than 10 s after the last one (`jwks_min_refetch_ms`),
/// whatever the IdP's `max-age` or a stream of tokens naming unknown `kid`s
/// asks: garbage tokens cannot make the gateway hammer the IdP.
pub const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);
/// Algorithms accepted when `algorithms` is absent: what IdPs sign with.
pub const JWT_ALGORITHMS: &[&str] = &["RS256", "ES256"];

// --- global_limits ---

/// Keys start `switchyard:`; set another prefix when fleets share a Redis.
pub const GLOBAL_LIMITS_KEY_PREFIX: &str = "switchyard";
/// 100 ms: an idle instance returns its unused slice within a tenth of a
/// second, and a fleet of 10 sends ~100 small pipelines a second.
pub const GLOBAL_LIMITS_SYNC_INTERVAL: Duration = Duration::from_millis(100);
/// A tenth of a limit per lease: at most ten leases a window per
/// instance, and what an instance strands (unused when the window ends)
/// is a tenth at most.
pub const GLOBAL_LIMITS_SLICE: f64 = 0.1;
