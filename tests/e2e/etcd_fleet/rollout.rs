//! The fleet's rollout leader as `switchyard run --etcd` runs it: one of
//! the instances leads, the canary walks its steps on every instance, and
//! the promoted version is stable fleet-wide.

use std::time::Duration;

use switchyard_tests::{Http, chat};

use super::{bounded, instance, live, replicas, resolved, seeded, weight};

#[tokio::test]
async fn one_instance_leads_the_rollout_and_every_instance_serves_its_steps() {
    bounded(90, async {
        let reps = replicas().await;
        let text = resolved(&reps).replace(
            "routing: { queue_timeout_ms: 200 }",
            "routing: { queue_timeout_ms: 200 }\n    rollout: { canary: v2, baseline: v1, steps: [50, 100], \
             step_interval_ms: 300, min_requests: 2, max_error_rate_increase: 0.5, max_p95_ratio: 50 }",
        );
        assert_ne!(text, resolved(&reps), "the rollout went into the document");
        let (etcd, client) = seeded(&text).await;
        let a = instance(&etcd.endpoint(), "gw-a", 10).await;
        let b = instance(&etcd.endpoint(), "gw-b", 10).await;
        live(&client, 2).await;
        // Traffic on both instances: the leader judges the sum of both.
        let http = Http::default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut v2_seen_partial = false;
        while !(weight(&a, "chat", "v2") == 100 && weight(&b, "chat", "v2") == 100) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the rollout did not complete: a={} b={}",
                weight(&a, "chat", "v2"),
                weight(&b, "chat", "v2")
            );
            for gw in [&a, &b] {
                let ans = http
                    .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
                    .await;
                assert_eq!(ans.status, 200, "{:?}", ans.body);
            }
            v2_seen_partial |= weight(&a, "chat", "v2") == 50;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(v2_seen_partial, "the 50 % step was served before 100 %");
        // One leader, and it is one of the two; the record says promoted.
        let mut raw = client.raw();
        let leader = raw
            .get(format!("{}/leader/rollouts", super::PREFIX), None)
            .await
            .unwrap();
        let id = leader.kvs()[0].value_str().unwrap().to_owned();
        assert!(id == "gw-a" || id == "gw-b", "{id}");
        let record = raw
            .get(format!("{}/control/rollouts/chat", super::PREFIX), None)
            .await
            .unwrap();
        let record = record.kvs()[0].value_str().unwrap().to_owned();
        assert!(record.contains("\"promoted\""), "{record}");
        // The promote's stable version, where every instance reads it.
        let stable = raw
            .get(format!("{}/control/stable/chat", super::PREFIX), None)
            .await
            .unwrap();
        assert_eq!(stable.kvs()[0].value_str().unwrap(), "v2");
    })
    .await;
}
