//! The scenario file: what to start, what load to drive, what to do when,
//! and what must hold at the end.

use serde::Deserialize;

/// A whole scenario (`loadtest/scenarios/*.yaml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name; also names the results folder.
    pub name: String,
    /// What the scenario shows, for people reading the file.
    #[serde(default)]
    pub description: String,
    /// Fake replicas, each its own process so it can be killed for real.
    pub replicas: Vec<ReplicaSpec>,
    /// The gateway under test.
    pub gateway: GatewaySpec,
    /// The load.
    pub load: LoadSection,
    /// Timed actions.
    #[serde(default)]
    pub events: Vec<Event>,
    /// What must hold at the end; any breach makes the run exit non-zero.
    #[serde(default, rename = "assert")]
    pub assertions: Assertions,
}

/// One fake replica process.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSpec {
    /// Name; the gateway config refers to its URL as `${NAME_URL}`
    /// (uppercased, `-` as `_`).
    pub name: String,
    /// Model name it lists.
    #[serde(default = "default_model")]
    pub model: String,
    /// Delay before response headers.
    #[serde(default)]
    pub latency_ms: u64,
    /// Tokens per answer.
    #[serde(default = "default_tokens")]
    pub tokens: u32,
    /// Delay between stream chunks.
    #[serde(default)]
    pub inter_token_ms: u64,
    /// Extra command-line flags for `switchyard-loadtest replica`.
    #[serde(default)]
    pub args: Vec<String>,
}

fn default_model() -> String {
    "fake-model".into()
}

fn default_tokens() -> u32 {
    16
}

/// The gateway process.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// Its YAML config. `${NAME_URL}` (per replica), `${SWITCHYARD_LISTEN}`
    /// and `${SWITCHYARD_ADMIN_LISTEN}` are set in the gateway's environment,
    /// so the gateway's own `${VAR}` interpolation fills them in.
    pub config: String,
}

/// `load:` — see `switchyard-loadtest run --help` for the meaning of each.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    /// Closed loop: this many concurrent clients.
    pub concurrency: Option<usize>,
    /// Open loop: this many requests per second.
    pub rate: Option<f64>,
    /// Cap on in-flight requests in open loop.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Seconds of load, warm-up included.
    pub duration_secs: f64,
    /// Seconds at the start whose samples are not recorded.
    #[serde(default)]
    pub warmup_secs: f64,
    /// Per-request timeout.
    #[serde(default = "default_timeout")]
    pub timeout_secs: f64,
    /// Prompt size in bytes.
    #[serde(default = "default_prompt")]
    pub prompt_bytes: usize,
    /// What to send, with weights.
    pub mix: Vec<MixEntry>,
}

fn default_max_in_flight() -> usize {
    10_000
}

fn default_timeout() -> f64 {
    30.0
}

fn default_prompt() -> usize {
    200
}

/// One kind of request in the mix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    /// `chat`, `completions`, `embeddings` or `kserve`.
    pub endpoint: String,
    /// Model (group) name.
    pub model: String,
    /// Ask for SSE.
    #[serde(default)]
    pub stream: bool,
    /// Relative weight.
    #[serde(default = "one")]
    pub weight: f64,
    /// A tenant's API key, sent as `x-api-key`.
    #[serde(default)]
    pub api_key: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// An action at a time.
#[derive(Debug, Deserialize)]
pub struct Event {
    /// Seconds after the load starts.
    pub at_secs: f64,
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
}

/// Things a scenario can do while load runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// SIGKILL a replica process.
    Kill {
        /// Replica name.
        replica: String,
    },
    /// Start a killed replica again on the same port.
    Restart {
        /// Replica name.
        replica: String,
    },
    /// Set a replica's fault (`PUT /_control/fault`).
    Fault {
        /// Replica name.
        replica: String,
        /// The fault rule, as the replica's control endpoint takes it.
        fault: serde_json::Value,
    },
    /// Clear a replica's fault.
    ClearFault {
        /// Replica name.
        replica: String,
    },
    /// Send SIGHUP to the gateway.
    Sighup,
    /// Write a new gateway config file, then SIGHUP the gateway.
    SwapConfig {
        /// The new config.
        config: String,
    },
}

impl Action {
    /// Label for logs and plot markers.
    pub fn label(&self) -> String {
        match self {
            Action::Kill { replica } => format!("kill {replica}"),
            Action::Restart { replica } => format!("restart {replica}"),
            Action::Fault { replica, fault } => {
                let mode = fault.get("mode").and_then(|m| m.as_str()).unwrap_or("?");
                format!("fault {replica}: {mode}")
            }
            Action::ClearFault { replica } => format!("clear fault {replica}"),
            Action::Sighup => "SIGHUP".into(),
            Action::SwapConfig { .. } => "swap config".into(),
        }
    }
}

/// Outcome bounds.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assertions {
    /// Requests that did not complete (any verdict but `complete`).
    pub max_failed: Option<u64>,
    /// Streams that ended with neither `[DONE]`/finish_reason nor an error event.
    pub max_silent_truncations: Option<u64>,
    /// At least this many measured requests (guards against a run that did nothing).
    pub min_requests: Option<u64>,
    /// p99 latency bound, ms.
    pub max_p99_ms: Option<f64>,
    /// Complete answers per minute of the measured window, within a
    /// tolerance: a tenant's rate limit holding under load.
    pub ok_per_minute: Option<OkPerMinute>,
}

/// `assert.ok_per_minute`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OkPerMinute {
    /// The rate the limit should let through.
    pub expect: f64,
    /// Allowed deviation, percent of `expect`.
    pub tolerance_pct: f64,
}
