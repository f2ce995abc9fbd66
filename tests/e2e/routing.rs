//! Version choice, pinning and concurrency limits, observed from outside.

use std::collections::HashMap;

use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Http, chat, eventually, within};

use crate::fleet;

#[tokio::test]
async fn pinned_version_always_reaches_that_version() {
    let (gw, _replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    for _ in 0..30 {
        let ans = http
            .post(
                gw.data_addr,
                "/v1/chat/completions",
                &chat("chat@v2", false),
            )
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "c");
        assert_eq!(ans.header("x-switchyard-version"), "v2");
    }
}

#[tokio::test]
async fn version_weights_are_respected_over_many_requests() {
    let (gw, _replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let n = 800;
    let mut by_version: HashMap<String, u32> = HashMap::new();
    for _ in 0..n {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
            .await;
        assert_eq!(ans.status, 200);
        *by_version
            .entry(ans.header("x-switchyard-version").to_owned())
            .or_default() += 1;
    }
    let v2 = f64::from(by_version.get("v2").copied().unwrap_or(0)) / f64::from(n);
    // 25% configured; 0.06 is about four standard deviations at n = 800.
    assert!(
        (0.19..=0.31).contains(&v2),
        "v2 got {v2:.3} of traffic: {by_version:?}"
    );
}

#[tokio::test]
async fn full_replicas_are_skipped_and_a_full_version_sheds_with_retry_after() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let (a, b) = (&replicas["a"], &replicas["b"]);
    a.hold();
    b.hold();
    let http = Http::default();
    // Eight pinned requests against two replicas with max_concurrency 4 each.
    let held: Vec<_> = (0..8)
        .map(|_| {
            let http = http.clone();
            let addr = gw.data_addr;
            tokio::spawn(async move {
                http.post(addr, "/v1/chat/completions", &chat("chat@v1", false))
                    .await
            })
        })
        .collect();
    eventually("8 requests held by the replicas", || {
        a.in_flight() + b.in_flight() == 8
    })
    .await;
    assert_eq!(
        (a.in_flight(), b.in_flight()),
        (4, 4),
        "no replica above max_concurrency"
    );

    // The pinned version stays full for the group's queue timeout (200 ms):
    // shed, in OpenAI's shape, with Retry-After.
    let shed = http
        .post(
            gw.data_addr,
            "/v1/chat/completions",
            &chat("chat@v1", false),
        )
        .await;
    assert_eq!(shed.status, 429);
    assert_eq!(shed.header("retry-after"), "1");
    assert_eq!(shed.json()["error"]["code"], "rate_limit_exceeded");

    // Unpinned traffic skips the full replicas and is served by v2.
    let spilled = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("chat", false))
        .await;
    assert_eq!(spilled.status, 200);
    assert_eq!(spilled.header("x-switchyard-replica"), "c");

    a.release();
    b.release();
    for h in held {
        assert_eq!(within(h).await.unwrap().status, 200);
    }
}

#[tokio::test]
async fn residency_header_keeps_traffic_in_the_named_clouds() {
    let (gw, _replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let onprem = [
        ("content-type", "application/json"),
        ("x-switchyard-clouds", "private"),
    ];
    for _ in 0..20 {
        let body = chat("chat", false).to_string();
        let ans = http
            .call("POST", gw.data_addr, "/v1/chat/completions", &onprem, body)
            .await;
        assert_eq!(ans.status, 200);
        let replica = ans.header("x-switchyard-replica");
        assert!(
            replica == "a" || replica == "b",
            "{replica} is not in the private cloud"
        );
    }
    let nowhere = [
        ("content-type", "application/json"),
        ("x-switchyard-clouds", "azure"),
    ];
    let body = chat("chat", false).to_string();
    let ans = http
        .call("POST", gw.data_addr, "/v1/chat/completions", &nowhere, body)
        .await;
    assert_eq!(ans.status, 503);
    assert_eq!(ans.json()["error"]["code"], "no_replica_in_allowed_clouds");
}
