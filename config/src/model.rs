//! The validated, immutable config. Everything here has been checked: ids are
//! unique, references resolve, numbers are in range. Code downstream never
//! re-validates and never sees a raw string where an enum belongs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Serialize, Serializer};
use url::Url;

use crate::Secret;

/// A whole validated config.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Listeners and limits.
    pub server: ServerConfig,
    /// Cloud id -> cloud.
    pub clouds: BTreeMap<String, Cloud>,
    /// Model groups, in file order.
    pub models: Vec<ModelGroup>,
    /// Replicas, in file order.
    pub replicas: Vec<Replica>,
    /// SHA-256 of the interpolated document, hex. Two loads of the same
    /// content give the same hash, which is how a reload of an unchanged file
    /// is recognised as a no-op.
    pub hash: String,
}

impl Config {
    /// The group clients call `name`.
    pub fn model(&self, name: &str) -> Option<&ModelGroup> {
        self.models.iter().find(|m| m.name == name)
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
    pub admin_token: Option<Secret>,
    /// Size and time limits.
    pub limits: Limits,
}

/// Bounds on what a client or a replica can make the gateway hold.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Largest request head accepted (431 above it).
    pub max_header_bytes: usize,
    /// Time a client has to send its request head.
    #[serde(serialize_with = "ms")]
    pub header_read_timeout: Duration,
    /// Time a client has to send its request body (408 after it).
    #[serde(serialize_with = "ms")]
    pub body_read_timeout: Duration,
    /// Time to open a TCP connection to a replica.
    #[serde(serialize_with = "ms")]
    pub connect_timeout: Duration,
    /// Deadline for a replica's response headers (504 after it), across all
    /// failover attempts.
    #[serde(serialize_with = "ms")]
    pub request_timeout: Duration,
    /// Deadline for one attempt's response headers; past it the attempt is
    /// abandoned and the next replica tried (a replica that never answers
    /// costs this, not the whole request). Defaults to `request_timeout`.
    #[serde(serialize_with = "ms")]
    pub attempt_timeout: Duration,
    /// Longest silence between two response-body chunks before the response is cut
    /// with an explicit error.
    #[serde(serialize_with = "ms")]
    pub stream_idle_timeout: Duration,
    /// Time in-flight requests and streams get to finish on shutdown.
    #[serde(serialize_with = "ms")]
    pub shutdown_grace: Duration,
    /// How long an idle pooled upstream connection is kept open.
    #[serde(serialize_with = "ms")]
    pub pool_idle_timeout: Duration,
    /// Idle pooled connections kept per replica.
    pub pool_max_idle_per_host: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            max_header_bytes: 64 << 10,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(300),
            stream_idle_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
        }
    }
}

fn ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
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
    /// The key under `clouds`.
    pub id: String,
    /// Who runs it.
    pub provider: Provider,
    /// Region, when given.
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
    /// Replica-choice policy.
    pub routing: Routing,
    /// Cloud ids or providers (`private`, `aws`, `azure`) this group's
    /// traffic may reach; empty means anywhere. Requests can narrow it
    /// further with `x-switchyard-clouds`, never widen it.
    pub residency: Vec<String>,
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
    #[serde(serialize_with = "ms")]
    pub queue_timeout: Duration,
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

/// One model server.
#[derive(Debug, Clone, Serialize)]
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
    /// Token prices.
    pub cost: Cost,
    /// Credentials sent to this replica only.
    pub auth: Option<UpstreamAuth>,
}

/// Token prices, in whatever currency the operator uses consistently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cost {
    /// Price per 1,000 input tokens.
    pub input_per_1k: f64,
    /// Price per 1,000 output tokens.
    pub output_per_1k: f64,
}

/// How the gateway authenticates to one replica.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
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
}
