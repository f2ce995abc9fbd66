//! Compaction, etcd's death and an instance's: live state survives,
//! degraded mode shows, the lease cleans up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use switchyard_fleet::etcd::FleetClient;
use switchyard_tests::etcd::Relay;
use switchyard_tests::{Http, chat, eventually};

use super::{PREFIX, bounded, instance, live, replicas, resolved, seeded, weight};

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
