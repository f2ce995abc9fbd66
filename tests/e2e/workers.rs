//! `server.workers`: dedicated data-plane workers, each accepting on a
//! listener of its own in one `SO_REUSEPORT` group. Every connection is
//! served, the kernel spreads them over the workers (visible in
//! `switchyard_connections_accepted_total{worker}`), and a shutdown stops
//! every worker and frees the port.

use std::collections::HashMap;

use switchyard_fake_replica::{FakeReplica, ReplicaConfig};
use switchyard_gateway::Running;
use switchyard_tests::{Http, chat, replicas, within};

const CONFIG: &str = r#"
server:
  listen: 127.0.0.1:DATA
  admin_listen: 127.0.0.1:ADMIN
  workers: WORKERS
  limits: { request_timeout_ms: 3000 }
clouds: { c1: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: a, model: m, cloud: c1, url: "${A_URL}" }
"#;

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port().to_string()
}

/// A gateway that binds its own listeners (as `switchyard run` does, with
/// `SO_REUSEPORT`), with `server.workers: workers`.
async fn gateway(workers: &str, replicas: &HashMap<String, FakeReplica>) -> Running {
    let yaml = CONFIG
        .replace("DATA", &free_port())
        .replace("ADMIN", &free_port())
        .replace("WORKERS", workers);
    let url = replicas["a"].url();
    let config =
        switchyard_config::load_str(&yaml, &|k| (k == "A_URL").then(|| url.clone())).unwrap();
    switchyard_gateway::start(config).await.unwrap()
}

/// `connections_accepted_total` per worker label.
async fn accepted(gw: &Running) -> HashMap<String, u64> {
    let text = Http::default().get(gw.admin_addr, "/metrics").await;
    String::from_utf8_lossy(&text.body)
        .lines()
        .filter_map(|l| l.strip_prefix("switchyard_connections_accepted_total{worker=\""))
        .map(|rest| {
            let (worker, value) = rest.split_once("\"} ").unwrap();
            (
                worker.to_owned(),
                value.trim().parse::<f64>().unwrap() as u64,
            )
        })
        .collect()
}

/// `n` requests at once, each on a connection of its own.
async fn requests_on_fresh_connections(gw: &Running, n: usize) {
    let calls = (0..n).map(|_| {
        let addr = gw.data_addr;
        tokio::spawn(async move {
            Http::default()
                .post(addr, "/v1/chat/completions", &chat("m", false))
                .await
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let ans = within(call).await.unwrap();
        assert_eq!(ans.status, 200, "{}", String::from_utf8_lossy(&ans.body));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_the_port_serve_every_connection_and_free_it_on_shutdown() {
    let replicas = replicas(&[("a", ReplicaConfig::default())]).await;
    let gw = gateway("3", &replicas).await;
    requests_on_fresh_connections(&gw, 60).await;
    let per_worker = accepted(&gw).await;
    assert_eq!(per_worker.values().sum::<u64>(), 60, "{per_worker:?}");
    assert!(
        per_worker
            .keys()
            .all(|w| ["0", "1", "2"].contains(&w.as_str())),
        "{per_worker:?}"
    );
    // 60 connections hashed over 3 listeners all landing on one worker
    // would mean the others never accept (chance 3 × 3⁻⁶⁰).
    assert!(
        per_worker.len() >= 2,
        "one worker took everything: {per_worker:?}"
    );
    let addr = gw.data_addr;
    within(gw.shutdown()).await.unwrap();
    // Every worker's listener is closed: the port binds without
    // SO_REUSEPORT again.
    std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("{addr} still held: {e}"));
}

#[tokio::test]
async fn shared_serves_on_the_admin_runtime_as_worker_zero() {
    let replicas = replicas(&[("a", ReplicaConfig::default())]).await;
    let gw = gateway("shared", &replicas).await;
    requests_on_fresh_connections(&gw, 5).await;
    assert_eq!(accepted(&gw).await, HashMap::from([("0".to_owned(), 5)]));
    within(gw.shutdown()).await.unwrap();
}
