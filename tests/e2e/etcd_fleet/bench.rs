//! The figure for BENCHMARKS.md (ignored in CI).

use std::sync::Arc;
use std::time::Duration;

use switchyard_tests::{Http, chat};

use super::{bounded, instance, live, replicas, resolved, seeded};

/// BENCHMARKS.md "Fleet (etcd)": 50 `fleet apply`s to 3 instances under a
/// light request load; the time from the write's answer until every
/// instance's status confirms it (polled every 2 ms), p50 / p99 / max, and
/// the requests that failed meanwhile. Ignored: run it by name,
/// `cargo test -p switchyard-tests --test e2e bench_fleet_apply -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for BENCHMARKS.md, not a check"]
async fn bench_fleet_apply_to_three_instances() {
    bounded(300, async {
        let reps = replicas().await;
        let text = resolved(&reps);
        let (etcd, client) = seeded(&text).await;
        let gws = [
            instance(&etcd.endpoint(), "gw-1", 10).await,
            instance(&etcd.endpoint(), "gw-2", 10).await,
            instance(&etcd.endpoint(), "gw-3", 10).await,
        ];
        live(&client, 3).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counts = Arc::new([std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(0)]);
        let mut load = Vec::new();
        for gw in &gws {
            let (addr, stop, counts) = (gw.data_addr, Arc::clone(&stop), Arc::clone(&counts));
            load.push(tokio::spawn(async move {
                let http = Http::default();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let ans = http.post(addr, "/v1/chat/completions", &chat("chat", false)).await;
                    counts[usize::from(ans.status != 200)].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }));
        }
        let mut read = client.config().await.unwrap().unwrap().mod_revision;
        let mut samples = Vec::with_capacity(50);
        for n in 0..50u32 {
            let w = 10 + n % 80;
            let next = text.replace(
                "{ name: v1, weight: 75 }, { name: v2, weight: 25 }",
                &format!("{{ name: v1, weight: {w} }}, {{ name: v2, weight: {} }}", 100 - w),
            );
            let revision = client.put_config(&next, read).await.unwrap();
            let written = tokio::time::Instant::now();
            loop {
                let all = client.instances().await.unwrap();
                if all.len() == 3 && all.iter().all(|s| matches!(s.confirms(revision), Some(Ok(())))) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            samples.push(written.elapsed());
            read = revision;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for l in load {
            l.await.unwrap();
        }
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let (ok, failed) = (counts[0].load(std::sync::atomic::Ordering::Relaxed), counts[1].load(std::sync::atomic::Ordering::Relaxed));
        println!(
            "fleet apply -> 3/3 instances serving, 50 applies: p50 {:.1} ms, p90 {:.1} ms, p99 (nearest rank = max of 50) {:.1} ms; requests meanwhile: {ok} ok, {failed} failed",
            ms(samples[24]),
            ms(samples[44]),
            ms(samples[49]),
        );
        assert_eq!(failed, 0, "no request fails across applies");
    })
    .await;
}
