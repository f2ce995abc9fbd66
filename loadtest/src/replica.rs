//! `switchyard-loadtest replica`: the fake replica as its own process, so a
//! scenario can kill and restart it for real.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use switchyard_fake_replica::{FakeProtocol, FaultRule, GpuModel, LoraModel, ReplicaConfig};

/// Flags of `replica`.
#[derive(clap::Args)]
pub struct ReplicaArgs {
    /// Port to listen on.
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Model name it lists.
    #[arg(long, default_value = "fake-model")]
    model: String,
    /// Name echoed in `x-fake-replica`.
    #[arg(long, default_value = "fake")]
    name: String,
    /// Delay before response headers.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Completion tokens per answer.
    #[arg(long, default_value_t = 16)]
    tokens: u32,
    /// Delay between stream chunks.
    #[arg(long, default_value_t = 0)]
    inter_token_ms: u64,
    /// Probability of answering 500.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Answer 429 above this many requests in flight.
    #[arg(long)]
    max_concurrency: Option<u32>,
    /// Like a GPU server: answer at most this many requests at once, queue the rest.
    #[arg(long)]
    slots: Option<u32>,
    /// With `--slots`: at most this many requests wait (FIFO); beyond, 429
    /// with `Retry-After: 1`. Unbounded if not given.
    #[arg(long, requires = "slots")]
    queue: Option<u32>,
    /// A fault from the start, as flat JSON, e.g.
    /// `{"mode":"error","status":503,"count":3}`; change it later with
    /// `PUT /_control/fault`.
    #[arg(long, value_name = "JSON", value_parser = parse_fault)]
    fault: Option<FaultRule>,
    /// API spoken: `openai`, `azure_openai` (requires the test api-key) or
    /// `bedrock` (verifies SigV4 with the test AWS keys).
    #[arg(long, default_value = "openai", value_parser = FakeProtocol::parse)]
    protocol: FakeProtocol,
    /// GPU-like: a prefix cache of prompt blocks, and prefill time for the
    /// uncached bytes before the first token (see `--prefill-us-per-byte`).
    #[arg(long)]
    gpu: bool,
    /// With `--gpu`: prefill time per uncached prompt byte, in µs.
    #[arg(long, default_value_t = 20, requires = "gpu")]
    prefill_us_per_byte: u64,
    /// With `--gpu`: prefix cache capacity, in blocks (LRU).
    #[arg(long, default_value_t = 2048, requires = "gpu")]
    cache_blocks: usize,
    /// With `--gpu`: bytes of canonical prompt per cache block.
    #[arg(long, default_value_t = 64, requires = "gpu", value_parser = clap::value_parser!(u64).range(1..))]
    cache_block_bytes: u64,
    /// With `--gpu`: LoRA on, this many adapters resident at once (LRU); a
    /// request whose `model` is not `--model` names an adapter.
    #[arg(long, requires = "gpu", value_parser = clap::value_parser!(u64).range(1..))]
    max_lora: Option<u64>,
    /// With `--max-lora`: time to load a cold adapter, in ms.
    #[arg(long, default_value_t = 200, requires = "max_lora")]
    lora_load_ms: u64,
    /// Runtime worker threads (1 = a single-threaded runtime).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Runs the replica until Ctrl-C.
pub fn run(args: ReplicaArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.fail_rate),
        "--fail-rate must be 0..=1"
    );
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let cfg = ReplicaConfig {
        name: args.name,
        model: args.model,
        latency: Duration::from_millis(args.latency_ms),
        tokens: args.tokens,
        inter_token: Duration::from_millis(args.inter_token_ms),
        fail_rate: args.fail_rate,
        max_concurrency: args.max_concurrency,
        slots: args.slots,
        queue: args.queue,
        fault: args.fault,
        protocol: args.protocol,
        bearer: None,
        gpu: args.gpu.then(|| GpuModel {
            prefill_per_byte: Duration::from_micros(args.prefill_us_per_byte),
            cache_blocks: args.cache_blocks,
            cache_block_bytes: args.cache_block_bytes as usize,
            lora: args.max_lora.map(|max_lora| LoraModel {
                max_lora: max_lora as usize,
                load: Duration::from_millis(args.lora_load_ms),
                preloaded: Vec::new(),
            }),
        }),
        extra_headers: Vec::new(),
    };
    rt.block_on(async move {
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let bound = listener.local_addr()?;
        println!(
            "fake replica `{}` serving model `{}` at http://{bound}",
            cfg.name, cfg.model
        );
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        switchyard_fake_replica::serve(listener, cfg, stop).await?;
        Ok(())
    })
}

/// `--fault`: the error names the bad field, so a typo is caught at startup.
fn parse_fault(s: &str) -> Result<FaultRule, String> {
    serde_json::from_str(s).map_err(|e| format!("not a fault rule: {e}"))
}
