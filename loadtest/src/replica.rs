//! `switchyard-loadtest replica`: the fake replica as its own process, so a
//! scenario can kill and restart it for real.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use switchyard_fake_replica::ReplicaConfig;

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
    };
    rt.block_on(async move {
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        println!(
            "fake replica `{}` serving model `{}` at http://{addr}",
            cfg.name, cfg.model
        );
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        switchyard_fake_replica::serve(listener, cfg, stop).await?;
        Ok(())
    })
}
