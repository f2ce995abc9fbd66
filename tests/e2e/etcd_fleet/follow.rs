//! Instances follow writes: a `fleet apply`, a refused document, an
//! operator's action on one instance.

use std::time::Duration;

use switchyard_fleet::etcd::FleetError;
use switchyard_gateway::Running;
use switchyard_tests::{Http, chat, eventually};

use super::{bounded, instance, live, replicas, resolved, seeded, weight};

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
        // An override, then `fleet weights --clear`: the document's weights again.
        let over = [("v1".to_owned(), 0), ("v2".to_owned(), 100)].into_iter().collect();
        let revision = client.put_weights("chat", &over).await.unwrap();
        assert!(client.wait(revision, Duration::from_secs(10)).await.unwrap().complete());
        for gw in &gws {
            assert_eq!(weight(gw, "chat", "v2"), 100);
        }
        let revision = client.clear_weights("chat").await.unwrap();
        assert!(client.wait(revision, Duration::from_secs(10)).await.unwrap().complete());
        for gw in &gws {
            assert_eq!(weight(gw, "chat", "v2"), 60, "{} serves the document's weights", gw.admin_addr);
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
