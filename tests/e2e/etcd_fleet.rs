//! The fleet in etcd: instances in-process follow the document and control
//! keys under a prefix of a real etcd (one per test, on its own ports),
//! confirm revisions in their status keys, refuse bad documents visibly,
//! survive compaction and etcd's death without losing live state.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchyard_fake_replica::{FakeReplica, ReplicaConfig};
use switchyard_fleet::etcd::{FleetClient, FleetError, FleetOptions};
use switchyard_gateway::Running;
use switchyard_tests::etcd::{EtcdServer, Relay};
use switchyard_tests::{Http, chat, eventually};
use tokio::net::TcpListener;

use crate::CONFIG;

const PREFIX: &str = "/sy-test";

/// Fails the test after `s` seconds (etcd start, leases: longer than `within`).
async fn bounded<T>(s: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(s), fut)
        .await
        .expect("fleet test timed out")
}

async fn replicas() -> HashMap<String, FakeReplica> {
    let specs: Vec<(&str, ReplicaConfig)> = ["a", "b", "c", "k"]
        .iter()
        .map(|n| (*n, ReplicaConfig::default()))
        .collect();
    switchyard_tests::replicas(&specs).await
}

/// `CONFIG` with the replicas' URLs written in (instances in one process
/// share one environment).
fn resolved(replicas: &HashMap<String, FakeReplica>) -> String {
    let mut text = CONFIG.to_owned();
    for (name, r) in replicas {
        text = text.replace(&format!("${{{}_URL}}", name.to_uppercase()), &r.url());
    }
    text
}

fn options(endpoint: &str, id: &str, ttl_s: u64) -> FleetOptions {
    FleetOptions {
        endpoint: endpoint.to_owned(),
        prefix: PREFIX.to_owned(),
        instance_id: id.to_owned(),
        lease_ttl: Duration::from_secs(ttl_s),
    }
}

async fn instance(endpoint: &str, id: &str, ttl_s: u64) -> Running {
    let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    switchyard_gateway::start_fleet_on(options(endpoint, id, ttl_s), data, admin)
        .await
        .unwrap()
}

/// etcd with `text` as the fleet's document, and a client of it.
async fn seeded(text: &str) -> (EtcdServer, FleetClient) {
    let etcd = EtcdServer::start().await;
    let client = FleetClient::connect(&etcd.endpoint(), PREFIX)
        .await
        .unwrap();
    client.put_config(text, 0).await.unwrap();
    (etcd, client)
}

async fn live(client: &FleetClient, n: usize) {
    loop {
        if client.instances().await.map(|l| l.len()).unwrap_or(0) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn weight(gw: &Running, group: &str, version: &str) -> u32 {
    let snap = gw.proxy().snapshot();
    let m = snap.config.model(group).unwrap();
    m.versions
        .iter()
        .find(|v| v.name == version)
        .unwrap()
        .weight
}

#[tokio::test]
async fn instances_follow_an_apply_and_a_stale_write_is_refused() {
    bounded(60, async {
        let reps = replicas().await;
        let text = resolved(&reps);
        let (_etcd, client) = seeded(&text).await;
        let endpoint = _etcd.endpoint();
        let gws = [
            instance(&endpoint, "gw-1", 10).await,
            instance(&endpoint, "gw-2", 10).await,
            instance(&endpoint, "gw-3", 10).await,
        ];
        live(&client, 3).await;
        let read = client.config().await.unwrap().unwrap().mod_revision;
        let next = text.replace("{ name: v1, weight: 75 }, { name: v2, weight: 25 }", "{ name: v1, weight: 40 }, { name: v2, weight: 60 }");
        assert_ne!(next, text);
        let revision = client.put_config(&next, read).await.unwrap();
        let c = client.wait(revision, Duration::from_secs(10)).await.unwrap();
        assert!(c.complete(), "{c:?}");
        assert_eq!(c.confirmed.len(), 3);
        let hash = switchyard_fleet::etcd::status::doc_hash(&next);
        for s in &c.confirmed {
            assert_eq!(s.hash, hash, "{} serves the new document", s.id);
        }
        for gw in &gws {
            assert_eq!(weight(gw, "chat", "v2"), 60);
        }
        // A write based on the revision read before the last one loses.
        let stale = client.put_config(&text, read).await;
        assert!(
            matches!(stale, Err(FleetError::Conflict { expected, found, .. }) if expected == read && found == revision),
            "{stale:?}"
        );
        for gw in &gws {
            assert_eq!(weight(gw, "chat", "v2"), 60, "the refused write changed nothing");
        }
    })
    .await;
}

#[tokio::test]
async fn an_invalid_document_is_refused_with_field_paths_and_the_old_one_serves() {
    bounded(60, async {
        let reps = replicas().await;
        let text = resolved(&reps);
        let (etcd, client) = seeded(&text).await;
        let gws = [
            instance(&etcd.endpoint(), "gw-1", 10).await,
            instance(&etcd.endpoint(), "gw-2", 10).await,
        ];
        live(&client, 2).await;
        let generation = gws[0].proxy().snapshot().generation;
        let bad = text.replace("{ name: v1, weight: 75 }", "{ name: v1, weight: 750 }");
        let read = client.config().await.unwrap().unwrap().mod_revision;
        let revision = client.put_config(&bad, read).await.unwrap();
        let c = client
            .wait(revision, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(c.refused.len(), 2, "{c:?}");
        for s in &c.refused {
            let r = s.last_refusal.as_ref().unwrap();
            assert_eq!(r.revision, revision);
            assert!(
                r.errors
                    .iter()
                    .any(|e| e.path.starts_with("models[0].versions[0].weight")),
                "{r:?}"
            );
            assert_eq!(s.hash, switchyard_fleet::etcd::status::doc_hash(&text));
        }
        let http = Http::default();
        for gw in &gws {
            assert_eq!(gw.proxy().snapshot().generation, generation);
            let ans = http
                .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
                .await;
            assert_eq!(ans.status, 200, "the old config serves");
        }
        // The fix lands and clears the refusal.
        let revision = client.put_config(&text, revision).await.unwrap();
        let c = client
            .wait(revision, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(c.complete(), "{c:?}");
        assert!(c.confirmed.iter().all(|s| s.last_refusal.is_none()));
    })
    .await;
}

#[tokio::test]
async fn an_operator_action_on_one_instance_is_fleet_wide() {
    bounded(60, async {
        let reps = replicas().await;
        let (etcd, client) = seeded(&resolved(&reps)).await;
        let a = instance(&etcd.endpoint(), "gw-a", 10).await;
        let b = instance(&etcd.endpoint(), "gw-b", 10).await;
        live(&client, 2).await;
        let http = Http::default();
        let ans = http
            .post(
                a.admin_addr,
                "/admin/models/chat/weights",
                &serde_json::json!({"v1": 0, "v2": 100}),
            )
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        assert_eq!(weight(&a, "chat", "v2"), 100, "answered once applied here");
        eventually("B follows A's weights", || weight(&b, "chat", "v2") == 100).await;
        // A refused change never reaches etcd.
        let ans = http
            .post(
                a.admin_addr,
                "/admin/models/chat/weights",
                &serde_json::json!({"v9": 100}),
            )
            .await;
        assert_eq!(ans.status, 422, "{:?}", ans.body);
        // Promote on B, rollback on A.
        let ans = http
            .post(
                b.admin_addr,
                "/admin/models/chat/promote",
                &serde_json::json!({"version": "v1"}),
            )
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        eventually("A follows B's promote", || weight(&a, "chat", "v1") == 100).await;
        assert_eq!(client.stable("chat").await.unwrap().as_deref(), Some("v1"));
        // A cordon on A holds on B.
        let ans = http
            .post(
                a.admin_addr,
                "/admin/replicas/a/cordon",
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        let cordoned = |gw: &Running| {
            gw.proxy()
                .snapshot()
                .table
                .entries()
                .iter()
                .any(|e| e.replica.id == "a" && e.stats.is_cordoned())
        };
        eventually("B cordons a", || cordoned(&b)).await;
        let ans = http
            .post(
                b.admin_addr,
                "/admin/replicas/a/uncordon",
                &serde_json::json!({}),
            )
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        eventually("A uncordons a", || !cordoned(&a)).await;
        // GET /admin/fleet on either lists both.
        let fleet = http.get(b.admin_addr, "/admin/fleet").await.json();
        assert_eq!(fleet["mode"], "etcd");
        assert_eq!(fleet["instances"].as_array().unwrap().len(), 2, "{fleet}");
    })
    .await;
}

#[tokio::test]
async fn compaction_and_resync_keep_stats_health_and_cordons() {
    bounded(60, async {
        let reps = replicas().await;
        let (etcd, client) = seeded(&resolved(&reps)).await;
        let relay = Relay::start(etcd.addr()).await;
        let gw = instance(&relay.endpoint(), "gw-r", 10).await;
        live(&client, 1).await;
        let http = Http::default();
        for _ in 0..6 {
            let ans = http
                .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
                .await;
            assert_eq!(ans.status, 200);
        }
        let stats_of = |id: &str| {
            let snap = gw.proxy().snapshot();
            let e = snap
                .table
                .entries()
                .iter()
                .find(|e| e.replica.id == id)
                .unwrap();
            Arc::clone(&e.stats)
        };
        let (a_before, c_before) = (stats_of("a"), stats_of("c"));
        let served: u64 = ["a", "b", "c"]
            .iter()
            .map(|id| stats_of(id).requests())
            .sum();
        assert_eq!(served, 6);
        // Live state only this instance has: a local cordon of b.
        stats_of("b").cordon();
        let generation = gw.proxy().snapshot().generation;
        // Off etcd: changes land and the history it would resume from is
        // compacted away.
        relay.cut();
        eventually("degraded while cut off", || {
            gw.fleet().unwrap().status().degraded
        })
        .await;
        let ready = http.get(gw.admin_addr, "/readyz").await;
        assert_eq!(ready.status, 200, "still ready while degraded");
        let mut weights = BTreeMap::new();
        weights.insert("v2".to_owned(), 100);
        let mut revision = 0;
        for _ in 0..3 {
            revision = client.put_weights("chat", &weights).await.unwrap();
        }
        let mut raw = client.raw();
        raw.compact(revision, None).await.unwrap();
        relay.restore();
        eventually("resynced past the compaction", || {
            gw.fleet().unwrap().status().revision >= revision
        })
        .await;
        assert!(!gw.fleet().unwrap().status().degraded);
        assert_eq!(weight(&gw, "chat", "v2"), 100);
        assert_eq!(
            gw.proxy().snapshot().generation,
            generation + 1,
            "one generation for the difference, none for what already served"
        );
        assert!(
            Arc::ptr_eq(&a_before, &stats_of("a")),
            "a's live stats carried over"
        );
        assert!(Arc::ptr_eq(&c_before, &stats_of("c")));
        assert!(
            stats_of("b").is_cordoned(),
            "a re-sync does not reset drain state"
        );
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(stats_of("c").requests(), c_before.requests());
        let total: u64 = ["a", "b", "c"]
            .iter()
            .map(|id| stats_of(id).requests())
            .sum();
        assert_eq!(total, 7, "counters kept counting");
        // A re-list asked for through the admin API publishes nothing.
        let ans = http
            .post(gw.admin_addr, "/admin/reload", &serde_json::json!({}))
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(gw.proxy().snapshot().generation, generation + 1);
    })
    .await;
}

#[tokio::test]
async fn etcd_down_keeps_serving_degraded_and_a_later_apply_lands() {
    bounded(90, async {
        let reps = replicas().await;
        let text = resolved(&reps);
        let (mut etcd, _client) = seeded(&text).await;
        let gw = instance(&etcd.endpoint(), "gw-d", 10).await;
        let http = Http::default();
        etcd.kill();
        eventually("degraded", || gw.fleet().unwrap().status().degraded).await;
        assert_eq!(http.get(gw.admin_addr, "/readyz").await.status, 200);
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
            .await;
        assert_eq!(ans.status, 200, "the last good config serves");
        let fleet = http.get(gw.admin_addr, "/admin/fleet").await.json();
        assert_eq!(fleet["self"]["degraded"], true, "{fleet}");
        assert!(fleet["error"].is_string(), "{fleet}");
        let metrics =
            String::from_utf8_lossy(&http.get(gw.admin_addr, "/metrics").await.body).into_owned();
        assert!(metrics.contains("switchyard_fleet_degraded 1"), "{metrics}");
        etcd.restart().await;
        let client = FleetClient::connect(&etcd.endpoint(), PREFIX)
            .await
            .unwrap();
        bounded(20, live(&client, 1)).await;
        let next = text.replace(
            "{ name: v1, weight: 75 }, { name: v2, weight: 25 }",
            "{ name: v1, weight: 10 }, { name: v2, weight: 90 }",
        );
        let read = client.config().await.unwrap().unwrap().mod_revision;
        let revision = client.put_config(&next, read).await.unwrap();
        let c = client
            .wait(revision, Duration::from_secs(15))
            .await
            .unwrap();
        assert!(c.complete(), "{c:?}");
        assert_eq!(weight(&gw, "chat", "v2"), 90);
        assert!(!gw.fleet().unwrap().status().degraded);
        let metrics =
            String::from_utf8_lossy(&http.get(gw.admin_addr, "/metrics").await.body).into_owned();
        assert!(metrics.contains("switchyard_fleet_degraded 0"));
    })
    .await;
}

#[tokio::test]
async fn a_dead_instance_leaves_the_fleet_after_its_lease() {
    bounded(60, async {
        let reps = replicas().await;
        let (etcd, client) = seeded(&resolved(&reps)).await;
        let relay = Relay::start(etcd.addr()).await;
        let _alive = instance(&etcd.endpoint(), "gw-alive", 2).await;
        let _dying = instance(&relay.endpoint(), "gw-dying", 2).await;
        live(&client, 2).await;
        // Cut off for good: its keepalives stop, as if it had died.
        relay.cut();
        let started = tokio::time::Instant::now();
        live(&client, 1).await;
        let ids: Vec<String> = client
            .instances()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(ids, ["gw-alive"]);
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "gone within about the TTL"
        );
        // A clean stop removes the key at once.
        _alive.shutdown().await.unwrap();
        bounded(3, live(&client, 0)).await;
    })
    .await;
}

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
