//! `GET /metrics`: parses as OpenMetrics text, and the counters move as they
//! should under a small load with one failing replica, a full queue and a
//! reload that removes a replica.

use switchyard_fake_replica::{Fault, FaultRule, ReplicaConfig};
use switchyard_tests::{Http, chat, eventually, replicas};

use crate::streaming;

mod openmetrics;

use openmetrics::{Scrape, parse};

/// Two replicas of `m` in two clouds.
const PAIR: &str = r#"
server: { limits: { request_timeout_ms: 3000 } }
clouds: { c1: { provider: private }, c2: { provider: aws } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: a, model: m, cloud: c1, url: "${A_URL}" }
  - { id: b, model: m, cloud: c2, url: "${B_URL}" }
"#;

async fn scrape(http: &Http, gw: &switchyard_gateway::Running) -> Scrape {
    let ans = http.get(gw.admin_addr, "/metrics").await;
    assert_eq!(ans.status, 200);
    assert!(
        ans.header("content-type")
            .starts_with("application/openmetrics-text"),
        "{}",
        ans.header("content-type")
    );
    parse(std::str::from_utf8(&ans.body).unwrap())
}

#[tokio::test]
async fn counters_follow_a_load_with_one_failing_replica() {
    let fleet = replicas(&[("a", streaming(3, 1)), ("b", streaming(3, 1))]).await;
    let gw = switchyard_tests::gateway(PAIR, &fleet).await;
    fleet["a"].set_fault(FaultRule::always(Fault::Error { status: 500 }));
    let http = Http::default();
    let (plain, streams) = (30, 5);
    for i in 0..plain + streams {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", i >= plain))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "b");
    }
    let unknown = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("nope", false))
        .await;
    assert_eq!(unknown.status, 404);
    let total = f64::from(plain + streams);
    let a_hits = fleet["a"].hits() as f64;
    // In-flight drops when hyper has finished with each body.
    let mut m = scrape(&http, &gw).await;
    for _ in 0..100 {
        if m.sum("switchyard_replica_in_flight", &[]) == 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        m = scrape(&http, &gw).await;
    }

    assert_eq!(m.types["switchyard_requests"], "counter");
    assert_eq!(m.types["switchyard_request_duration_seconds"], "histogram");
    let ok_b = [
        ("model", "m"),
        ("version", "v1"),
        ("cloud", "c2"),
        ("replica", "b"),
        ("status_class", "2xx"),
    ];
    assert_eq!(m.sum("switchyard_requests_total", &ok_b), total);
    assert_eq!(m.sum("switchyard_requests_total", &[("replica", "a")]), 0.0);
    assert_eq!(
        m.sum(
            "switchyard_requests_total",
            &[("model", "_unknown"), ("status_class", "4xx")]
        ),
        1.0,
        "an unknown model is counted under a fixed label"
    );
    assert!(
        !m.samples
            .iter()
            .any(|s| s.labels.values().any(|v| v == "nope")),
        "no client-chosen label values"
    );

    // Attempts: every hit on `a` was a 500 retried on `b` (same version).
    assert!(
        (5.0..=6.0).contains(&a_hits),
        "a is ejected after 5: {a_hits}"
    );
    let attempts = |replica: &str, result: &str| {
        m.sum(
            "switchyard_upstream_attempts_total",
            &[("replica", replica), ("result", result)],
        )
    };
    assert_eq!(attempts("a", "retried"), a_hits);
    assert_eq!(attempts("a", "ok") + attempts("a", "error"), 0.0);
    assert_eq!(attempts("b", "ok"), total);
    assert_eq!(
        m.sum(
            "switchyard_retries_total",
            &[("model", "m"), ("reason", "status_5xx")]
        ),
        a_hits
    );

    // Health, read from the replica table at scrape time.
    let health = |replica: &str, state: &str| {
        m.sum(
            "switchyard_replica_health",
            &[("replica", replica), ("state", state)],
        )
    };
    assert_eq!(health("a", "ejected"), 1.0);
    assert_eq!(health("a", "healthy"), 0.0);
    assert_eq!(health("b", "healthy"), 1.0);
    assert!(m.sum("switchyard_replica_ejections_total", &[("replica", "a")]) >= 1.0);
    assert_eq!(
        m.sum("switchyard_replica_max_concurrency", &[("replica", "b")]),
        m.sum("switchyard_replica_max_concurrency", &[("replica", "a")])
    );
    assert!(
        m.sum(
            "switchyard_replica_ewma_latency_seconds",
            &[("replica", "b")]
        ) > 0.0
    );

    // Histograms: one observation per request; TTFT and gaps only for streams.
    let route = [("model", "m"), ("version", "v1"), ("cloud", "c2")];
    assert_eq!(
        m.sum("switchyard_request_duration_seconds_count", &route),
        total
    );
    assert_eq!(
        m.sum("switchyard_time_to_first_token_seconds_count", &route),
        f64::from(streams)
    );
    assert!(m.sum("switchyard_inter_token_seconds_count", &route) >= 1.0);
    assert_eq!(
        m.sum("switchyard_gateway_overhead_seconds_count", &[]),
        total
    );
    assert!(
        m.sum("switchyard_gateway_overhead_seconds_sum", &[]) / total < 0.05,
        "overhead excludes upstream waits"
    );

    assert_eq!(m.sum("switchyard_config_generation", &[]), 1.0);
    let info: Vec<_> = m.find("switchyard_config_info", &[]).collect();
    assert_eq!(info.len(), 1);
    assert_eq!(info[0].labels["hash"].len(), 64, "{:?}", info[0]);
    assert_eq!(
        m.sum(
            "switchyard_version_weight",
            &[("model", "m"), ("version", "v1")]
        ),
        100.0
    );
}

const ONE_SLOT: &str = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }], routing: { queue_size: 1, queue_timeout_ms: 150 } }]
replicas: [{ id: r, model: m, cloud: c, url: "${R_URL}", max_concurrency: 1 }]
"#;

#[tokio::test]
async fn a_full_group_queues_sheds_and_is_counted() {
    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(ONE_SLOT, &fleet).await;
    let http = Http::default();
    fleet["r"].hold();
    let held = {
        let (http, addr) = (http.clone(), gw.data_addr);
        tokio::spawn(async move {
            http.post(addr, "/v1/chat/completions", &chat("m", false))
                .await
        })
    };
    eventually("the slot is taken", || fleet["r"].in_flight() == 1).await;
    let waiting = {
        let (http, addr) = (http.clone(), gw.data_addr);
        tokio::spawn(async move {
            http.post(addr, "/v1/chat/completions", &chat("m", false))
                .await
        })
    };
    let queue = gw.proxy().queues().get("m");
    eventually("one waits", || queue.len() == 1).await;
    let m = scrape(&http, &gw).await;
    assert_eq!(m.sum("switchyard_queue_depth", &[("model", "m")]), 1.0);
    assert_eq!(
        m.sum("switchyard_replica_in_flight", &[("replica", "r")]),
        1.0
    );
    assert_eq!(
        m.sum("switchyard_replica_utilization", &[("replica", "r")]),
        1.0
    );
    // The queue (1) is full: shed at once.
    let full = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(full.status, 429);
    // The waiter times out after 150 ms.
    assert_eq!(switchyard_tests::within(waiting).await.unwrap().status, 429);
    fleet["r"].release();
    assert_eq!(switchyard_tests::within(held).await.unwrap().status, 200);

    let m = scrape(&http, &gw).await;
    let shed = |reason: &str| {
        m.sum(
            "switchyard_shed_total",
            &[("model", "m"), ("reason", reason)],
        )
    };
    assert_eq!(shed("queue_full"), 1.0);
    assert_eq!(shed("queue_timeout"), 1.0);
    let waited = m.sum(
        "switchyard_queue_wait_seconds_sum",
        &[("model", "m"), ("outcome", "shed")],
    );
    assert!(waited >= 0.14, "the timed-out wait is measured: {waited}");
    assert_eq!(
        m.sum(
            "switchyard_requests_total",
            &[("model", "m"), ("replica", ""), ("status_class", "4xx")]
        ),
        2.0
    );
    assert_eq!(m.sum("switchyard_queue_depth", &[("model", "m")]), 0.0);
}

#[tokio::test]
async fn a_replica_removed_by_a_reload_leaves_the_output() {
    let fleet = replicas(&[
        ("a", ReplicaConfig::default()),
        ("b", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(PAIR, &fleet).await;
    let http = Http::default();
    for _ in 0..10 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
    }
    let before = scrape(&http, &gw).await;
    assert!(before.has("switchyard_replica_in_flight", &[("replica", "a")]));
    let with_only_b = PAIR
        .replace("${B_URL}", &fleet["b"].url())
        .lines()
        .filter(|l| !l.contains("id: a,"))
        .collect::<Vec<_>>()
        .join("\n");
    let applied = http
        .call(
            "POST",
            gw.admin_addr,
            "/admin/config",
            &[("content-type", "application/yaml")],
            with_only_b,
        )
        .await;
    assert_eq!(applied.status, 200, "{:?}", applied.body);
    let after = scrape(&http, &gw).await;
    assert!(
        !after
            .samples
            .iter()
            .any(|s| s.labels.get("replica").is_some_and(|r| r == "a")),
        "no series of the removed replica"
    );
    assert!(after.has("switchyard_replica_in_flight", &[("replica", "b")]));
    assert_eq!(after.sum("switchyard_config_generation", &[]), 2.0);
    assert_eq!(
        after.sum("switchyard_config_reloads_total", &[("result", "ok")]),
        1.0
    );
    assert_ne!(
        before
            .find("switchyard_config_info", &[])
            .next()
            .unwrap()
            .labels["hash"],
        after
            .find("switchyard_config_info", &[])
            .next()
            .unwrap()
            .labels["hash"],
    );
}
