//! `switchyard-loadtest run`: closed-loop load (N workers, each sending its
//! next request when the previous answer has been read in full) with latency
//! histograms, time to first byte for streams, and a stream verdict.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;

/// Flags of `run`.
#[derive(clap::Args, Clone)]
pub struct RunArgs {
    /// Base URL of the gateway or replica.
    #[arg(long)]
    url: String,
    /// Concurrent workers.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// How long to send (after warm-up).
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Stop after this many measured requests instead.
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up time whose samples are not recorded.
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Model name to request.
    #[arg(long, default_value = "chat")]
    model: String,
    /// Ask for SSE streams.
    #[arg(long)]
    stream: bool,
    /// Endpoint: chat, completions, embeddings or kserve.
    #[arg(long, default_value = "chat")]
    endpoint: String,
    /// Prompt size in bytes.
    #[arg(long, default_value_t = 200)]
    prompt_bytes: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Tally {
    latency: Option<Histogram<u64>>,
    ttfb: Option<Histogram<u64>>,
    ok: u64,
    statuses: BTreeMap<String, u64>,
    replicas: BTreeMap<String, u64>,
    complete: u64,
    incomplete: u64,
}

/// What a run measured.
#[derive(Serialize)]
struct Report {
    url: String,
    endpoint: String,
    stream: bool,
    concurrency: usize,
    seconds: f64,
    requests: u64,
    ok: u64,
    rps: f64,
    latency_ms: Percentiles,
    ttfb_ms: Option<Percentiles>,
    statuses: BTreeMap<String, u64>,
    replicas: BTreeMap<String, u64>,
    streams_complete: u64,
    streams_incomplete: u64,
}

#[derive(Serialize)]
struct Percentiles {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, 3).context("histogram bounds")
}

fn request_body(args: &RunArgs) -> anyhow::Result<(String, Bytes)> {
    let prompt = "lorem ipsum ".repeat(args.prompt_bytes / 12 + 1);
    let prompt = &prompt[..args.prompt_bytes];
    let (path, body) = match args.endpoint.as_str() {
        "chat" => (
            "/v1/chat/completions".to_owned(),
            serde_json::json!({"model": args.model, "stream": args.stream,
                "messages": [{"role": "user", "content": prompt}]}),
        ),
        "completions" => (
            "/v1/completions".to_owned(),
            serde_json::json!({"model": args.model, "stream": args.stream, "prompt": prompt}),
        ),
        "embeddings" => (
            "/v1/embeddings".to_owned(),
            serde_json::json!({"model": args.model, "input": prompt}),
        ),
        "kserve" => (
            format!("/v2/models/{}/infer", args.model),
            serde_json::json!({"inputs": [{"name": "x", "shape": [4], "datatype": "FP32",
                "data": [1.0, 2.0, 3.0, 4.0]}]}),
        ),
        other => {
            anyhow::bail!("unknown --endpoint {other} (chat, completions, embeddings, kserve)")
        }
    };
    Ok((
        format!("{}{path}", args.url.trim_end_matches('/')),
        Bytes::from(body.to_string()),
    ))
}

/// Runs the load and prints the summary.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let (uri, body) = request_body(&args)?;
    let uri: http::Uri = uri.parse().context("--url")?;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_max_idle_per_host(args.concurrency)
        .build_http();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup_secs);
    let deadline = measure_from + Duration::from_secs(args.duration_secs);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let budget = args.requests.unwrap_or(u64::MAX);

    let progress = {
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        tokio::spawn(async move {
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = done.load(Ordering::Relaxed);
                eprintln!(
                    "[{:>5.1}s] {now} requests, {} req/s",
                    start.elapsed().as_secs_f64(),
                    now - last
                );
                last = now;
            }
        })
    };

    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (client, uri, body) = (client.clone(), uri.clone(), body.clone());
        let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
        let stream = args.stream;
        workers.push(tokio::spawn(async move {
            let mut t = Tally {
                latency: Some(histogram()?),
                ttfb: Some(histogram()?),
                ..Tally::default()
            };
            while !stop.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                if t0 >= deadline {
                    break;
                }
                let outcome = one(&client, &uri, &body).await;
                let measured = t0 >= measure_from;
                if !measured {
                    continue;
                }
                if done.fetch_add(1, Ordering::Relaxed) + 1 >= budget {
                    stop.store(true, Ordering::Relaxed);
                }
                record(&mut t, outcome, t0, stream);
            }
            anyhow::Ok(t)
        }));
    }
    let mut total = Tally {
        latency: Some(histogram()?),
        ttfb: Some(histogram()?),
        ..Tally::default()
    };
    for w in workers {
        let t = w.await??;
        merge(&mut total, t)?;
    }
    stop.store(true, Ordering::Relaxed);
    progress.abort();
    let seconds = (Instant::now().min(deadline) - measure_from)
        .as_secs_f64()
        .max(1e-9);
    report(&args, total, seconds)
}

struct Outcome {
    status: Result<u16, String>,
    replica: Option<String>,
    ttfb: Option<Duration>,
    total: Duration,
    done_marker: bool,
}

async fn one(
    client: &Client<HttpConnector, Full<Bytes>>,
    uri: &http::Uri,
    body: &Bytes,
) -> Outcome {
    let t0 = Instant::now();
    let req = http::Request::post(uri.clone())
        .header("content-type", "application/json")
        .body(Full::new(body.clone()));
    let fail = |e: String| Outcome {
        status: Err(e),
        replica: None,
        ttfb: None,
        total: t0.elapsed(),
        done_marker: false,
    };
    let req = match req {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) => {
            return fail(if e.is_connect() {
                "connect".into()
            } else {
                "reset".into()
            });
        }
    };
    let status = resp.status().as_u16();
    let replica = resp
        .headers()
        .get("x-switchyard-replica")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = resp.into_body();
    let mut ttfb = None;
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    ttfb.get_or_insert_with(|| t0.elapsed());
                    tail.extend_from_slice(&data);
                    if tail.len() > 64 {
                        tail.drain(..tail.len() - 64);
                    }
                }
            }
            Some(Err(_)) => return fail("reset".into()),
        }
    }
    let done_marker = tail.windows(12).any(|w| w == b"data: [DONE]");
    Outcome {
        status: Ok(status),
        replica,
        ttfb,
        total: t0.elapsed(),
        done_marker,
    }
}

fn record(t: &mut Tally, o: Outcome, _t0: Instant, stream: bool) {
    let key = match &o.status {
        Ok(s) => s.to_string(),
        Err(e) => e.clone(),
    };
    *t.statuses.entry(key).or_default() += 1;
    if let Some(r) = o.replica {
        *t.replicas.entry(r).or_default() += 1;
    }
    if o.status.as_ref().is_ok_and(|s| (200..300).contains(s)) {
        t.ok += 1;
        if let Some(h) = t.latency.as_mut() {
            let _ = h.record(o.total.as_micros().max(1) as u64);
        }
        if stream {
            if let (Some(h), Some(ttfb)) = (t.ttfb.as_mut(), o.ttfb) {
                let _ = h.record(ttfb.as_micros().max(1) as u64);
            }
            if o.done_marker {
                t.complete += 1
            } else {
                t.incomplete += 1
            }
        }
    }
}

fn merge(into: &mut Tally, t: Tally) -> anyhow::Result<()> {
    for (a, b) in [(&mut into.latency, t.latency), (&mut into.ttfb, t.ttfb)] {
        if let (Some(a), Some(b)) = (a.as_mut(), b) {
            a.add(b).context("merging histograms")?;
        }
    }
    into.ok += t.ok;
    into.complete += t.complete;
    into.incomplete += t.incomplete;
    for (k, v) in t.statuses {
        *into.statuses.entry(k).or_default() += v;
    }
    for (k, v) in t.replicas {
        *into.replicas.entry(k).or_default() += v;
    }
    Ok(())
}

fn report(args: &RunArgs, t: Tally, seconds: f64) -> anyhow::Result<()> {
    let requests: u64 = t.statuses.values().sum();
    let latency = t.latency.as_ref().context("histogram")?;
    let r = Report {
        url: args.url.clone(),
        endpoint: args.endpoint.clone(),
        stream: args.stream,
        concurrency: args.concurrency,
        seconds,
        requests,
        ok: t.ok,
        rps: requests as f64 / seconds,
        latency_ms: Percentiles::of(latency),
        ttfb_ms: args
            .stream
            .then(|| t.ttfb.as_ref().map(Percentiles::of))
            .flatten(),
        statuses: t.statuses,
        replicas: t.replicas,
        streams_complete: t.complete,
        streams_incomplete: t.incomplete,
    };
    println!(
        "{} {} x{} for {:.1}s",
        r.url, r.endpoint, r.concurrency, r.seconds
    );
    println!(
        "  requests {}  ok {}  rate {:.0} req/s",
        r.requests, r.ok, r.rps
    );
    let l = &r.latency_ms;
    println!(
        "  latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        l.p50, l.p90, l.p99, l.max
    );
    if let Some(f) = &r.ttfb_ms {
        println!(
            "  first byte  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
            f.p50, f.p90, f.p99, f.max
        );
        println!(
            "  streams complete {}  incomplete {}",
            r.streams_complete, r.streams_incomplete
        );
    }
    println!("  statuses {:?}", r.statuses);
    if !r.replicas.is_empty() {
        println!("  replicas {:?}", r.replicas);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
