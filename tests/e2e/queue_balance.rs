//! Queue balance under uneven request sizes, measured: four GPU-like fake
//! replicas (2 slots each, prefill time per prompt byte), 1 request in 10
//! with an 80x longer prompt, and a client outside this gateway (another
//! gateway, a batch job) keeping long requests on gpu-0. `least_loaded`
//! with engine signals (each replica's scraped `vllm:num_requests_waiting`,
//! plus our sends since the scrape) against the same policy on this
//! gateway's in-flight counts only, same load, fresh replicas each. The
//! figure is the spread of the engines' queues (largest minus smallest
//! waiting, sampled every 10 ms): BENCHMARKS.md has the numbers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use switchyard_fake_replica::{GpuModel, ReplicaConfig};
use switchyard_tests::{Http, replicas, within};

fn config(engine: bool) -> String {
    let engine = if engine { ", engine: vllm" } else { "" };
    let mut s = String::from(
        "clouds: { c: { provider: private } }\nmodels:\n  - name: m\n    versions: [{ name: v1, weight: 100 }]\n    \
         routing: { policy: prefix_cache, slow_start_ms: 0, engine_interval_ms: 50, engine_stale_ms: 2000 }\nreplicas:\n",
    );
    for i in 0..4 {
        s.push_str(&format!(
            "  - {{ id: gpu-{i}, model: m, cloud: c, url: \"${{GPU_{i}_URL}}\", max_concurrency: 64{engine} }}\n"
        ));
    }
    s
}

fn body(n: u64) -> serde_json::Value {
    // Unique text (no prefix-cache hits); 1 in 10 is 80x longer.
    let len = if n.is_multiple_of(10) { 8000 } else { 100 };
    let text: String = format!("{n} ")
        .repeat(len / 4 + 1)
        .chars()
        .take(len)
        .collect();
    serde_json::json!({ "model": "m", "messages": [{ "role": "user", "content": text }] })
}

/// Closed-loop clients sending to `addr` until `stop`; failures counted.
fn clients(
    n: usize,
    addr: std::net::SocketAddr,
    long_only: bool,
    stop: &Arc<AtomicBool>,
    failed: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let counter = Arc::new(AtomicU64::new(1));
    (0..n)
        .map(|_| {
            let (stop, failed, counter, http) = (
                Arc::clone(stop),
                Arc::clone(failed),
                Arc::clone(&counter),
                Http::default(),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let k = counter.fetch_add(1, Ordering::Relaxed);
                    let k = if long_only { k * 10 } else { k };
                    let ans = http.post(addr, "/v1/chat/completions", &body(k)).await;
                    if ans.status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect()
}

/// Spread samples (max - min waiting across the four) over `secs` seconds.
async fn measure(engine: bool) -> (Vec<u32>, Vec<f64>, u64) {
    let gpu = ReplicaConfig {
        slots: Some(2),
        queue: Some(256),
        tokens: 4,
        gpu: Some(GpuModel {
            prefill_per_byte: Duration::from_micros(10),
            cache_blocks: 1,
            cache_block_bytes: 64,
            lora: None,
        }),
        ..ReplicaConfig::default()
    };
    let names = ["gpu-0", "gpu-1", "gpu-2", "gpu-3"];
    let specs: Vec<(&str, ReplicaConfig)> = names.iter().map(|n| (*n, gpu.clone())).collect();
    let fleet = replicas(&specs).await;
    let gw = switchyard_tests::gateway(&config(engine), &fleet).await;
    let (stop, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    // Another gateway's (or a batch job's) long requests on gpu-0, and ours.
    let mut tasks = clients(4, fleet["gpu-0"].addr(), true, &stop, &failed);
    tasks.extend(clients(16, gw.data_addr, false, &stop, &failed));
    tokio::time::sleep(Duration::from_millis(500)).await; // warm up
    let mut spreads = Vec::new();
    let mut sums = [0u64; 4];
    for _ in 0..300 {
        let q: Vec<u32> = names.iter().map(|n| fleet[*n].queued()).collect();
        for (s, v) in sums.iter_mut().zip(&q) {
            *s += u64::from(*v);
        }
        spreads.push(q.iter().max().unwrap() - q.iter().min().unwrap());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        within(t).await.unwrap();
    }
    let means = sums.iter().map(|s| *s as f64 / 300.0).collect();
    spreads.sort_unstable();
    (spreads, means, failed.load(Ordering::Relaxed))
}

fn pct(sorted: &[u32], p: f64) -> u32 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_signals_keep_the_gpu_queues_within_two_of_each_other() {
    let (with, with_means, with_failed) = measure(true).await;
    let (without, without_means, without_failed) = measure(false).await;
    for (name, s, means) in [
        ("engine signals", &with, &with_means),
        ("in-flight only", &without, &without_means),
    ] {
        eprintln!(
            "queue spread, {name}: p50={} p90={} p99={} max={}; mean waiting per gpu {:.1?}",
            pct(s, 0.5),
            pct(s, 0.9),
            pct(s, 0.99),
            s.last().unwrap(),
            means
        );
    }
    assert_eq!(with_failed + without_failed, 0);
    assert!(
        pct(&with, 0.5) <= 2 && pct(&with, 0.9) <= 3,
        "engine signals: spread {with:?}"
    );
    assert!(
        pct(&without, 0.5) >= 3,
        "in-flight only: p50 spread {}",
        pct(&without, 0.5)
    );
}
