//! A fast, scriptable fake model server for Switchyard's tests, demo and
//! load tests. It speaks the OpenAI API (with SSE streaming) and the KServe
//! v2 inference protocol well enough that the gateway cannot tell it from
//! vLLM or Triton, and it can be told to be slow, fail, or hold requests.
//!
//! # Layout
//! - [`ReplicaConfig`]: the knobs (also the CLI flags of `switchyard-loadtest replica`).
//! - [`FakeReplica`]: a running replica and its test controls (hits,
//!   in-flight, `fail_next`, `hold`/`release`, faults, last request).
//! - [`Fault`], [`FaultRule`]: injected misbehaviour, also settable over HTTP
//!   with `PUT /_control/fault` (see `control`).
//! - [`GpuModel`]: opt-in prefix cache and prefill time (`gpu`), and the
//!   vLLM-named Prometheus text of `GET /metrics` (answered in every mode).
//! - `server`: accept loop and connection resets; `handler`: the endpoints;
//!   `admit`: GPU-like slots and queue; `openai`/`kserve`: the wire shapes.
//!
//! Hot-path work is kept small (one borrowed JSON parse, one formatted
//! response) so that one core serves tens of thousands of requests a second
//! and the replica is never what a load test measures.

mod admit;
mod cloud;
mod control;
mod converse;
mod fault;
mod gpu;
mod handler;
mod kserve;
mod openai;
mod server;
mod sigv4;
mod stream;
mod token_ids;

pub use cloud::{
    FakeProtocol, TEST_AWS_ACCESS_KEY_ID, TEST_AWS_REGION, TEST_AWS_SECRET_ACCESS_KEY,
    TEST_AZURE_API_KEY,
};
pub use fault::{Fault, FaultRule};
pub use gpu::{
    ADAPTER_LOAD_HEADER, CACHED_BLOCKS_HEADER, GpuModel, LoraModel, PREFILL_HEADER, block_hashes,
    render_prompt,
};
pub use token_ids::ANSWER_BASE;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::admit::Admission;
use crate::fault::FaultCell;
use crate::gpu::Gpu;
use crate::server::accept_loop;

/// How a fake replica behaves.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// Replica name, sent back in `x-fake-replica` and `system_fingerprint`.
    pub name: String,
    /// Model it lists in `/v1/models`; requests for any model are answered
    /// and the requested name is echoed, so tests can see what the gateway sent.
    pub model: String,
    /// Delay before the response headers.
    pub latency: Duration,
    /// Completion tokens per answer (capped by the request's `max_tokens`).
    pub tokens: u32,
    /// Delay between stream chunks.
    pub inter_token: Duration,
    /// Probability (0..=1) of answering 500.
    pub fail_rate: f64,
    /// Above this many requests in flight, answer 429 with `Retry-After: 1`.
    pub max_concurrency: Option<u32>,
    /// Like a GPU server: at most this many requests are answered at once
    /// (a stream holds its slot until its last chunk); others wait in `queue`.
    pub slots: Option<u32>,
    /// With `slots`: how many requests may wait for a slot, in arrival order;
    /// beyond that answer 429 with `Retry-After: 1`. `None`: unbounded.
    pub queue: Option<u32>,
    /// Fault in force from the start (changed later with
    /// [`FakeReplica::set_fault`] or `PUT /_control/fault`).
    pub fault: Option<FaultRule>,
    /// The API spoken: OpenAI-compatible, or a managed cloud's (Azure
    /// OpenAI, Bedrock) with its auth checked as that cloud would.
    pub protocol: FakeProtocol,
    /// When set, every request (health endpoints included, as on a hosted
    /// vLLM behind an API key) must carry `Authorization: Bearer <this>`,
    /// else 401 (counted in [`FakeReplica::auth_failures`]).
    pub bearer: Option<String>,
    /// GPU-like prefill and prefix cache; `None` (the default): prompts
    /// cost nothing and nothing is cached.
    pub gpu: Option<GpuModel>,
    /// Headers added to every answer (to see what a gateway passes on).
    pub extra_headers: Vec<(String, String)>,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            name: "fake".into(),
            model: "fake-model".into(),
            latency: Duration::ZERO,
            tokens: 16,
            inter_token: Duration::ZERO,
            fail_rate: 0.0,
            max_concurrency: None,
            slots: None,
            queue: None,
            fault: None,
            protocol: FakeProtocol::OpenAi,
            bearer: None,
            gpu: None,
            extra_headers: Vec::new(),
        }
    }
}

/// A request as the replica received it, for tests to inspect.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Method.
    pub method: http::Method,
    /// Path and query.
    pub path: String,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// State shared by every connection of one replica.
pub(crate) struct Shared {
    pub(crate) cfg: ReplicaConfig,
    pub(crate) latency_us: AtomicU64,
    pub(crate) fail_rate_ppm: AtomicU32,
    pub(crate) hits: AtomicU64,
    pub(crate) in_flight: AtomicU32,
    pub(crate) fail_next: AtomicU32,
    pub(crate) held: AtomicBool,
    pub(crate) gate: Notify,
    pub(crate) last: Mutex<Option<RecordedRequest>>,
    pub(crate) record: AtomicBool,
    pub(crate) fault: FaultCell,
    pub(crate) admission: Admission,
    /// Health endpoints (`/health`, `/v1/models`, `/v2/health/*`) answer
    /// 503 while inference keeps working: a broken health check.
    pub(crate) probes_fail: AtomicBool,
    /// Requests refused for their credentials (cloud protocols).
    pub(crate) auth_failures: AtomicU64,
    /// Prefix cache and prefill model, when GPU-like.
    pub(crate) gpu: Option<Gpu>,
}

impl Shared {
    pub(crate) fn new(cfg: ReplicaConfig, record: bool) -> Arc<Self> {
        let fault = FaultCell::default();
        if let Some(rule) = cfg.fault.clone() {
            fault.set(rule);
        }
        Arc::new(Self {
            admission: Admission::new(cfg.slots, cfg.queue),
            gpu: cfg.gpu.clone().map(Gpu::new),
            fault,
            latency_us: AtomicU64::new(cfg.latency.as_micros() as u64),
            fail_rate_ppm: AtomicU32::new((cfg.fail_rate.clamp(0.0, 1.0) * 1e6) as u32),
            cfg,
            hits: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            fail_next: AtomicU32::new(0),
            held: AtomicBool::new(false),
            gate: Notify::new(),
            last: Mutex::new(None),
            record: AtomicBool::new(record),
            probes_fail: AtomicBool::new(false),
            auth_failures: AtomicU64::new(0),
        })
    }

    /// Waits while the replica is held. Registers interest before checking,
    /// so a `release` between the check and the wait is not missed.
    pub(crate) async fn pass_gate(&self) {
        loop {
            let notified = self.gate.notified();
            if !self.held.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// A running fake replica (in this process) and its controls.
///
/// Dropping it stops the replica's accept loop; use [`FakeReplica::shutdown`]
/// to also wait for it.
pub struct FakeReplica {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl FakeReplica {
    /// Starts a replica on `127.0.0.1`, on a free port.
    pub async fn start(cfg: ReplicaConfig) -> io::Result<Self> {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await?, cfg).await
    }

    /// Starts a replica on a listener the caller bound.
    pub async fn start_on(listener: TcpListener, cfg: ReplicaConfig) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Shared::new(cfg, true);
        let (stop, mut stopped) = watch::channel(false);
        let s = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let until = async move {
                let _ = stopped.wait_for(|v| *v).await;
            };
            if let Err(e) = accept_loop(listener, s, until).await {
                tracing::warn!(error = %e, "fake replica stopped");
            }
        });
        Ok(Self {
            addr,
            shared,
            stop,
            task: Some(task),
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Inference requests received (chat, completions, embeddings, KServe infer).
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::Relaxed)
    }

    /// Requests refused because their credentials did not check out
    /// (Azure key, AWS signature): what a cloud would bill as nothing.
    pub fn auth_failures(&self) -> u64 {
        self.shared.auth_failures.load(Ordering::Relaxed)
    }

    /// Inference requests being answered right now (a stream counts until
    /// its last chunk is sent or the client goes away).
    pub fn in_flight(&self) -> u32 {
        self.shared.in_flight.load(Ordering::Acquire)
    }

    /// GPU-like replicas: prompt blocks looked up and found in the prefix
    /// cache so far (`vllm:prefix_cache_queries_total`, `..._hits_total`).
    pub fn prefix_cache(&self) -> Option<(u64, u64)> {
        self.shared.gpu.as_ref().map(Gpu::counters)
    }

    /// The next `n` inference requests answer 500.
    pub fn fail_next(&self, n: u32) {
        self.shared.fail_next.store(n, Ordering::Release);
    }

    /// Requests waiting for one of the `slots` right now.
    pub fn queued(&self) -> u32 {
        self.shared.admission.queued()
    }

    /// Injects a fault into inference requests (replacing any previous one).
    pub fn set_fault(&self, rule: FaultRule) {
        self.shared.fault.set(rule);
    }

    /// Makes the health endpoints (`/health`, `/v1/models`,
    /// `/v2/health/live`, `/v2/health/ready`) answer 503 (`true`) or 200
    /// again, without touching inference: tests of active health checks.
    pub fn fail_probes(&self, fail: bool) {
        self.shared.probes_fail.store(fail, Ordering::Relaxed);
    }

    /// Removes the injected fault.
    pub fn clear_fault(&self) {
        self.shared.fault.clear();
    }

    /// The fault in force, with the count it has left.
    pub fn fault(&self) -> Option<FaultRule> {
        self.shared.fault.get()
    }

    /// Holds inference requests (after counting them and giving them one of
    /// the `slots`) until [`FakeReplica::release`].
    pub fn hold(&self) {
        self.shared.held.store(true, Ordering::Release);
    }

    /// Lets held and future requests through.
    pub fn release(&self) {
        self.shared.held.store(false, Ordering::Release);
        self.shared.gate.notify_waiters();
    }

    /// The last inference request received.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.last.lock().ok().and_then(|l| l.clone())
    }

    /// Changes the delay before response headers.
    pub fn set_latency(&self, d: Duration) {
        self.shared
            .latency_us
            .store(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// Changes the probability of answering 500.
    pub fn set_fail_rate(&self, f: f64) {
        self.shared
            .fail_rate_ppm
            .store((f.clamp(0.0, 1.0) * 1e6) as u32, Ordering::Relaxed);
    }

    /// Stops accepting, closes connections and waits for the accept loop.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        self.release();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for FakeReplica {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.shared.held.store(false, Ordering::Release);
        self.shared.gate.notify_waiters();
    }
}

/// Serves until `shutdown` resolves (the CLI's entry point). Requests are
/// not recorded (no per-request copy) to keep the hot path lean.
pub async fn serve(
    listener: TcpListener,
    cfg: ReplicaConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    accept_loop(listener, Shared::new(cfg, false), shutdown).await
}
