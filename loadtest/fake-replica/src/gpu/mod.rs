//! The GPU-like model (opt-in with [`GpuModel`]): a bounded prefix cache of
//! prompt blocks and a prefill time per uncached byte, so that where a
//! request lands changes its time to first token as it does on vLLM.
//!
//! The prompt's rendering, chunking and hashing are in `prompt` (the rules
//! a prefix-aware router must follow); the LRU is `cache`; the Prometheus
//! text of `GET /metrics` is `metrics`.

mod cache;
mod lora;
mod metrics;
mod prompt;

pub use lora::LoraModel;
pub use prompt::{block_hashes, render_prompt};

pub(crate) use metrics::metrics;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderValue, Response};

use crate::handler::{FakeBody, Kind};
use cache::PrefixCache;

/// Response header with the prefill time charged to a request, in µs.
pub const PREFILL_HEADER: &str = "x-fake-prefill-us";
/// Response header with the leading prompt blocks found in the cache.
pub const CACHED_BLOCKS_HEADER: &str = "x-fake-cached-blocks";
/// Response header with the time a request waited for its LoRA adapter to
/// load, in µs (0: it was resident); only on requests naming an adapter.
pub const ADAPTER_LOAD_HEADER: &str = "x-fake-adapter-load-us";

/// What makes a fake replica GPU-like.
///
/// Time to first token becomes queue wait (`slots`/`queue`) + `latency` +
/// `prefill_per_byte` × the canonical prompt bytes *not* covered by cached
/// blocks; then tokens every `inter_token` as without it. Chat and
/// completions only; other endpoints are unaffected.
///
/// # The canonical prompt (what a prefix-aware router must reproduce)
/// - `POST /v1/chat/completions`: for each entry of `messages`, in order,
///   its `role`, `\n`, its content, `\n`. The content is the string, or for
///   an array of parts the `text` of every part whose `type` is `"text"`,
///   concatenated with nothing between; `null` or absent is empty.
/// - `POST /v1/completions`: the `prompt` string as is (any other shape
///   renders as nothing).
///
/// Strings are the decoded JSON strings, as UTF-8 bytes ([`render_prompt`]).
///
/// # Blocks and cache
/// The rendered bytes are cut into successive `cache_block_bytes` chunks; a
/// last partial chunk is not a block (never cached). Block `i` is
/// `h_i = fnv1a64(le_bytes(h_{i-1}) ++ chunk_i)` with `h_{-1} = 0`, where
/// `fnv1a64` is 64-bit FNV-1a (offset basis `0xcbf29ce484222325`, prime
/// `0x100000001b3`), so a block's hash names its whole prefix
/// ([`block_hashes`]). A request's cached prefix is the run of its leading
/// blocks present in an LRU of `cache_blocks` blocks, looked up once it
/// holds a slot; when its prefill is done (before its first token) all its
/// full blocks are inserted or refreshed, last to first, so a prompt's tail
/// is evicted before its head (as vLLM frees blocks).
#[derive(Clone, Debug, PartialEq)]
pub struct GpuModel {
    /// Prefill cost of one uncached prompt byte.
    pub prefill_per_byte: Duration,
    /// Cache capacity in blocks.
    pub cache_blocks: usize,
    /// Bytes per block (> 0).
    pub cache_block_bytes: usize,
    /// LoRA adapters: a request whose `model` differs from the replica's
    /// names one, loaded on first use (`None`: LoRA off, names ignored).
    pub lora: Option<LoraModel>,
}

impl Default for GpuModel {
    fn default() -> Self {
        Self {
            prefill_per_byte: Duration::from_micros(20),
            cache_blocks: 2048,
            cache_block_bytes: 64,
            lora: None,
        }
    }
}

/// A replica's GPU state.
pub(crate) struct Gpu {
    model: GpuModel,
    cache: Mutex<PrefixCache>,
    /// Blocks looked up (a request's full blocks), a counter.
    queries: AtomicU64,
    /// Of which found in the cache.
    hits: AtomicU64,
    /// Resident and loading LoRA adapters.
    lora: Option<Mutex<lora::Slots>>,
}

/// The prefill of one request, decided when it got its slot.
pub(crate) struct Prefill {
    blocks: Vec<u64>,
    /// Leading blocks found in the cache.
    pub(crate) cached: usize,
    /// Time charged for the uncached bytes.
    pub(crate) time: Duration,
    /// Of which waiting for the LoRA adapter (`None`: no adapter named).
    adapter_load: Option<Duration>,
}

impl Gpu {
    pub(crate) fn new(model: GpuModel) -> Self {
        Self {
            cache: Mutex::new(PrefixCache::new(model.cache_blocks)),
            lora: model.lora.clone().map(|l| Mutex::new(lora::Slots::new(l))),
            model,
            queries: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    /// Looks the request's blocks up and prices its prefill (and its LoRA
    /// adapter's load when `base` is not the model it names); `None` for
    /// endpoints without a prompt (embeddings, KServe, clouds).
    pub(crate) fn plan(&self, kind: Kind, body: &[u8], base: &str) -> Option<Prefill> {
        let text = match kind {
            Kind::Chat => prompt::render_chat(body)?,
            Kind::Completion => prompt::render_completion(body)?,
            _ => return None,
        };
        let bytes = self.model.cache_block_bytes;
        let blocks = prompt::block_hashes(&text, bytes);
        let cached = self.cache.lock().map_or(0, |c| c.cached_prefix(&blocks));
        self.queries
            .fetch_add(blocks.len() as u64, Ordering::Relaxed);
        self.hits.fetch_add(cached as u64, Ordering::Relaxed);
        let uncached = text.len() - cached * bytes;
        let time = (self.model.prefill_per_byte)
            .saturating_mul(u32::try_from(uncached).unwrap_or(u32::MAX));
        let adapter_load = self.lora.as_ref().and_then(|slots| {
            let name = lora::requested_model(body).filter(|m| m != base)?;
            let mut slots = slots.lock().ok()?;
            Some(slots.acquire(&name, std::time::Instant::now()))
        });
        Some(Prefill {
            blocks,
            cached,
            time,
            adapter_load,
        })
    }

    /// Time before the first token: the adapter's load, then the prefill.
    pub(crate) fn wait(p: &Prefill) -> Duration {
        p.time + p.adapter_load.unwrap_or_default()
    }

    /// The prefill is done: its blocks are now cached (and most recent).
    pub(crate) fn commit(&self, p: &Prefill) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(&p.blocks);
        }
    }

    /// `(blocks looked up, blocks found)` so far.
    pub(crate) fn counters(&self) -> (u64, u64) {
        (
            self.queries.load(Ordering::Relaxed),
            self.hits.load(Ordering::Relaxed),
        )
    }

    /// The `vllm:lora_requests_info` sample line, with LoRA on.
    fn lora_sample(&self) -> Option<String> {
        Some(self.lora.as_ref()?.lock().ok()?.sample())
    }

    /// Cached blocks / capacity, 0..=1.
    fn usage(&self) -> f64 {
        self.cache
            .lock()
            .map_or(0.0, |c| c.len() as f64 / c.capacity().max(1) as f64)
    }
}

/// Adds [`PREFILL_HEADER`] and [`CACHED_BLOCKS_HEADER`]: what the replica
/// charged, so tests assert on the computed prefill instead of timing it.
pub(crate) fn annotate(mut resp: Response<FakeBody>, p: &Prefill) -> Response<FakeBody> {
    let h = resp.headers_mut();
    h.insert(PREFILL_HEADER, HeaderValue::from(p.time.as_micros() as u64));
    h.insert(CACHED_BLOCKS_HEADER, HeaderValue::from(p.cached as u64));
    if let Some(load) = p.adapter_load {
        h.insert(
            ADAPTER_LOAD_HEADER,
            HeaderValue::from(load.as_micros() as u64),
        );
    }
    resp
}
