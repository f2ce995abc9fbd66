//! Active health checks and a flapping replica, observed from outside.

use std::time::Duration;

use switchyard_fake_replica::{FakeReplica, Fault, FaultRule, ReplicaConfig};
use switchyard_tests::{Http, chat, replicas};
use tokio::net::TcpListener;

/// Two replicas of `m`, round robin (so each gets traffic whenever it is
/// routable), probed every 40 ms.
const PROBED: &str = r#"
server: { limits: { request_timeout_ms: 3000 } }
clouds: { c: { provider: private } }
models:
  - name: m
    versions: [{ name: v1, weight: 100 }]
    routing: { policy: round_robin, slow_start_ms: 0 }
    health_check: { interval_ms: 40, timeout_ms: 40, rise: 2, fall: 2 }
replicas:
  - { id: a, model: m, cloud: c, url: "${A_URL}" }
  - { id: b, model: m, cloud: c, url: "${B_URL}" }
"#;

/// One row of `GET /admin/replicas`.
pub async fn row(http: &Http, gw: &switchyard_gateway::Running, id: &str) -> serde_json::Value {
    let rows = http.get(gw.admin_addr, "/admin/replicas").await.json();
    rows["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone()
}

/// Waits (≤ 5 s) until `check` holds for replica `id`'s admin row.
pub(crate) async fn until_row(
    http: &Http,
    gw: &switchyard_gateway::Running,
    id: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = row(http, gw, id).await;
        if check(&r) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never {what}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_dead_idle_replica_is_taken_out_by_probes_and_rise_brings_it_back() {
    let mut fleet = replicas(&[
        ("a", ReplicaConfig::default()),
        ("b", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(PROBED, &fleet).await;
    let http = Http::default();
    until_row(&http, &gw, "a", "probed", |r| {
        r["active_check"]["consecutive_ok"].as_u64() >= Some(2)
    })
    .await;

    // a dies while nobody sends it anything.
    let a = fleet.remove("a").unwrap();
    let addr = a.addr();
    a.shutdown().await;
    until_row(&http, &gw, "a", "down", |r| r["health"]["state"] == "down").await;
    let row_a = row(&http, &gw, "a").await;
    assert_eq!(row_a["active_check"]["down"], true, "{row_a}");
    assert_eq!(
        row_a["errors"], 0,
        "taken out before any request failed: {row_a}"
    );
    for _ in 0..20 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-attempts"), "1", "never tried on a");
        assert_eq!(ans.header("x-switchyard-replica"), "b");
    }

    // It comes back on the same address: `rise` good probes return it.
    let listener = TcpListener::bind(addr).await.unwrap();
    let a = FakeReplica::start_on(
        listener,
        ReplicaConfig {
            name: "a".into(),
            ..ReplicaConfig::default()
        },
    )
    .await
    .unwrap();
    until_row(&http, &gw, "a", "healthy", |r| {
        r["health"]["state"] == "healthy"
    })
    .await;
    for _ in 0..10 {
        http.post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
    }
    assert!(a.hits() >= 4, "a serves again: {}", a.hits());
}

#[tokio::test]
async fn failing_probes_do_not_eject_a_replica_that_serves_traffic() {
    let fleet = replicas(&[
        ("a", ReplicaConfig::default()),
        ("b", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(PROBED, &fleet).await;
    let http = Http::default();
    fleet["a"].fail_probes(true);
    // Traffic keeps flowing while a's health endpoint says 503.
    let until = tokio::time::Instant::now() + Duration::from_millis(800);
    let mut on_a = 0;
    while tokio::time::Instant::now() < until {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        on_a += u32::from(ans.header("x-switchyard-replica") == "a");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let r = row(&http, &gw, "a").await;
    assert_eq!(r["active_check"]["down"], true, "the probes did fail: {r}");
    assert_eq!(
        r["health"]["state"], "healthy",
        "but its traffic succeeds: {r}"
    );
    assert!(on_a > 10, "a kept serving: {on_a}");
}

#[tokio::test]
async fn a_flapping_replica_is_served_around_and_returned_to() {
    let fleet = replicas(&[
        ("a", ReplicaConfig::default()),
        ("b", ReplicaConfig::default()),
    ])
    .await;
    // Passive health only: the fake's faults leave its health endpoint up.
    let yaml = PROBED.replace(
        "    health_check: { interval_ms: 40, timeout_ms: 40, rise: 2, fall: 2 }\n",
        "",
    );
    assert!(!yaml.contains("health_check"));
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    let http = Http::default();
    let started = tokio::time::Instant::now();
    // a flaps: 500s for 150 ms, fine for 150 ms, for 1.2 s.
    let flapper = FaultRule::always(Fault::Error { status: 500 });
    let mut failures = 0;
    while started.elapsed() < Duration::from_millis(1200) {
        let on = (started.elapsed().as_millis() / 150).is_multiple_of(2);
        if on {
            fleet["a"].set_fault(flapper.clone());
        } else {
            fleet["a"].clear_fault();
        }
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        failures += u32::from(ans.status != 200);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_eq!(failures, 0, "every request was served during the outage");
    fleet["a"].clear_fault();
    // Back to a within 30 s (one ejection here: 5 s, jittered).
    let back = tokio::time::Instant::now();
    let hits = fleet["a"].hits();
    while fleet["a"].hits() == hits {
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "never returned to a"
        );
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_replica_whose_key_is_in_a_file_is_probed_with_that_key() {
    let token = "probe-token-from-file";
    let fleet = replicas(&[(
        "a",
        ReplicaConfig {
            bearer: Some(token.to_owned()),
            ..ReplicaConfig::default()
        },
    )])
    .await;
    let file = std::env::temp_dir().join(format!(
        "switchyard-probe-key-{}-{}",
        std::process::id(),
        fleet["a"].addr().port()
    ));
    std::fs::write(&file, format!("{token}\n")).unwrap();
    let config = format!(
        r#"
clouds: {{ c: {{ provider: private }} }}
models:
  - name: m
    versions: [{{ name: v1, weight: 100 }}]
    health_check: {{ interval_ms: 40, timeout_ms: 40, rise: 2, fall: 2 }}
replicas:
  - {{ id: a, model: m, cloud: c, url: "${{A_URL}}", auth: {{ bearer_file: "{}" }} }}
"#,
        file.display()
    );
    let gw = switchyard_tests::gateway(&config, &fleet).await;
    let http = Http::default();
    // Idle: only probes reach it. Before probes carried the file's key,
    // they were refused, the replica was marked down and never came back.
    until_row(&http, &gw, "a", "probed healthy", |r| {
        r["active_check"]["consecutive_ok"].as_u64() >= Some(3)
    })
    .await;
    let r = row(&http, &gw, "a").await;
    assert_eq!(r["active_check"]["down"], false, "{r}");
    assert_eq!(fleet["a"].auth_failures(), 0, "every probe carried the key");
    let a = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    std::fs::remove_file(&file).ok();
}
