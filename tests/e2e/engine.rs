//! Engine signals and cached prefixes, end to end: the gateway scrapes each
//! replica's vLLM-named `/metrics` and routes around a queue it did not
//! cause; `prefix_cache` sends a conversation back where its prefix is
//! cached (the GPU-like fake replica reports the blocks it found).

use std::time::Duration;

use switchyard_fake_replica::{GpuModel, ReplicaConfig};
use switchyard_tests::{Http, chat, replicas};

/// Two single-slot "GPUs" of group `m` with vLLM engines, scraped every 50 ms.
const ENGINES: &str = r#"
clouds: { c: { provider: private } }
models:
  - name: m
    versions: [{ name: v1, weight: 100 }]
    routing: { policy: least_loaded, slow_start_ms: 0, engine_interval_ms: 50, engine_stale_ms: 2000 }
replicas:
  - { id: a, model: m, cloud: c, url: "${A_URL}", engine: vllm }
  - { id: b, model: m, cloud: c, url: "${B_URL}", engine: vllm }
"#;

#[tokio::test]
async fn a_queue_only_the_engine_sees_steers_traffic_away() {
    let gpu = ReplicaConfig {
        slots: Some(1),
        queue: Some(32),
        ..ReplicaConfig::default()
    };
    let fleet = replicas(&[("a", gpu.clone()), ("b", gpu)]).await;
    let gw = switchyard_tests::gateway(ENGINES, &fleet).await;
    let http = Http::default();

    // Another gateway's (or a batch job's) traffic fills a's engine: one
    // request on its slot, four waiting. This gateway has nothing in flight.
    fleet["a"].hold();
    let direct: Vec<_> = (0..5)
        .map(|_| {
            let (http, url) = (Http::default(), fleet["a"].addr());
            tokio::spawn(async move {
                http.post(url, "/v1/chat/completions", &chat("m", false))
                    .await
            })
        })
        .collect();
    crate::health::until_row(&http, &gw, "a", "scraped with a queue", |r| {
        r["engine"]["waiting"].as_u64() >= Some(4) && r["engine"]["stale"] == false
    })
    .await;

    for _ in 0..20 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        assert_eq!(
            ans.header("x-switchyard-replica"),
            "b",
            "a's engine has four waiting: every request goes to b"
        );
    }
    let metrics = http.get(gw.admin_addr, "/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.lines()
            .any(|l| l.starts_with("switchyard_replica_engine_waiting{")
                && l.contains("replica=\"a\"")
                && !l.ends_with(" 0")),
        "{text}"
    );
    fleet["a"].release();
    for d in direct {
        tokio::time::timeout(Duration::from_secs(10), d)
            .await
            .unwrap()
            .unwrap();
    }
}

const PREFIX: &str = r#"
clouds: { c: { provider: private } }
models:
  - name: m
    versions: [{ name: v1, weight: 100 }]
    routing: { policy: prefix_cache, slow_start_ms: 0 }
replicas:
  - { id: a, model: m, cloud: c, url: "${A_URL}", engine: vllm }
  - { id: b, model: m, cloud: c, url: "${B_URL}", engine: vllm }
  - { id: c, model: m, cloud: c, url: "${C_URL}", engine: vllm }
"#;

#[tokio::test]
async fn a_conversation_returns_to_the_replica_holding_its_prefix() {
    let gpu = ReplicaConfig {
        gpu: Some(GpuModel {
            prefill_per_byte: Duration::from_nanos(100),
            ..GpuModel::default()
        }),
        ..ReplicaConfig::default()
    };
    let fleet = replicas(&[("a", gpu.clone()), ("b", gpu.clone()), ("c", gpu)]).await;
    let gw = switchyard_tests::gateway(PREFIX, &fleet).await;
    let http = Http::default();
    let system = "You are a meticulous assistant who answers in short sentences. ".repeat(16);
    let mut messages = vec![serde_json::json!({ "role": "system", "content": system })];
    let mut served = Vec::new();
    for turn in 0..5 {
        messages
            .push(serde_json::json!({ "role": "user", "content": format!("question {turn}?") }));
        let body = serde_json::json!({ "model": "m", "messages": messages });
        let ans = http.post(gw.data_addr, "/v1/chat/completions", &body).await;
        assert_eq!(ans.status, 200, "{:?}", ans.body);
        let cached: u64 = ans.header("x-fake-cached-blocks").parse().unwrap_or(0);
        served.push((ans.header("x-switchyard-replica").to_owned(), cached));
        messages
            .push(serde_json::json!({ "role": "assistant", "content": format!("answer {turn}.") }));
    }
    let first = &served[0].0;
    for (replica, cached) in &served[1..] {
        assert_eq!(
            replica, first,
            "every turn on the replica with the prefix: {served:?}"
        );
        assert!(
            *cached >= 10,
            "the system prompt was cached there: {served:?}"
        );
    }
}
