//! The `weighted` and `affinity` policies, slow start, the first-token
//! timeout, SSE keep-alive comments and the request-buffer budget,
//! observed from outside.

use std::collections::HashMap;
use std::time::Duration;

use switchyard_fake_replica::{Fault, FaultRule, ReplicaConfig};
use switchyard_tests::{Http, chat, eventually, replicas};

/// Replicas `a`, `b`, `c` of group `m`; `ROUTING` and `EXTRA_*` are
/// replaced per test.
const FLEET: &str = r#"
server: { limits: { request_timeout_ms: 4000, stream_idle_timeout_ms: 3000 LIMITS } }
clouds: { c: { provider: private } }
models:
  - name: m
    versions: [{ name: v1, weight: 100 }]
    routing: ROUTING
    HEALTH
replicas:
  - { id: a, model: m, cloud: c, url: "${A_URL}" EXTRA_A }
  - { id: b, model: m, cloud: c, url: "${B_URL}" EXTRA_B }
  - { id: c, model: m, cloud: c, url: "${C_URL}" }
"#;

type Fleet = (
    switchyard_gateway::Running,
    HashMap<String, switchyard_fake_replica::FakeReplica>,
);

/// A gateway over three fake replicas built from `FLEET` with these parts.
pub async fn fleet(cfg: ReplicaConfig, parts: &[(&str, &str)]) -> Fleet {
    let fleet = replicas(&[("a", cfg.clone()), ("b", cfg.clone()), ("c", cfg)]).await;
    let mut yaml = FLEET.to_owned();
    for key in ["ROUTING", "HEALTH", "LIMITS", "EXTRA_A", "EXTRA_B"] {
        let value = parts.iter().find(|(k, _)| *k == key).map_or("", |(_, v)| v);
        let value = if key == "ROUTING" && value.is_empty() {
            "{}"
        } else {
            value
        };
        yaml = yaml.replace(key, value);
    }
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    (gw, fleet)
}

async fn served_by(
    http: &Http,
    gw: &switchyard_gateway::Running,
    headers: &[(&str, &str)],
    body: &serde_json::Value,
) -> String {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    let ans = http
        .call(
            "POST",
            gw.data_addr,
            "/v1/chat/completions",
            &h,
            body.to_string(),
        )
        .await;
    assert_eq!(ans.status, 200, "{:?}", ans.body);
    ans.header("x-switchyard-replica").to_owned()
}

#[tokio::test]
async fn weighted_policy_splits_traffic_by_replica_weight() {
    let (gw, _fleet) = fleet(
        ReplicaConfig::default(),
        &[
            ("ROUTING", "{ policy: weighted }"),
            ("EXTRA_A", ", weight: 1"),
            ("EXTRA_B", ", weight: 3"),
        ],
    )
    .await;
    // c has the default weight, 1: shares 1/5, 3/5, 1/5.
    let http = Http::default();
    let n = 600;
    let mut by: HashMap<String, u32> = HashMap::new();
    for _ in 0..n {
        *by.entry(served_by(&http, &gw, &[], &chat("m", false)).await)
            .or_default() += 1;
    }
    let share = |id: &str| f64::from(by.get(id).copied().unwrap_or(0)) / f64::from(n);
    // ±0.07 is about four standard deviations at n = 600.
    assert!((share("b") - 0.6).abs() < 0.07, "{by:?}");
    assert!((share("a") - 0.2).abs() < 0.07, "{by:?}");
    assert!((share("c") - 0.2).abs() < 0.07, "{by:?}");
}

#[tokio::test]
async fn affinity_keeps_a_session_on_one_replica_and_spreads_sessions() {
    let (gw, _fleet) = fleet(
        ReplicaConfig::default(),
        &[("ROUTING", "{ policy: affinity, affinity_prefix_bytes: 40 }")],
    )
    .await;
    let http = Http::default();
    let mut owners = HashMap::new();
    for session in 0..24 {
        let id = format!("session-{session}");
        let first = served_by(
            &http,
            &gw,
            &[("x-switchyard-session", &id)],
            &chat("m", false),
        )
        .await;
        for _ in 0..5 {
            let again = served_by(
                &http,
                &gw,
                &[("x-switchyard-session", &id)],
                &chat("m", false),
            )
            .await;
            assert_eq!(again, first, "session {id} moved");
        }
        owners.insert(id, first);
    }
    let used: std::collections::HashSet<_> = owners.values().collect();
    assert_eq!(
        used.len(),
        3,
        "24 sessions spread over all replicas: {owners:?}"
    );

    // Without the header, the prompt's first 40 bytes are the key: the
    // same system prompt lands on the same replica.
    let prompt = |system: &str, k: u32| {
        serde_json::json!({
            "model": "m",
            "messages": [
                { "role": "system", "content": system },
                { "role": "user", "content": format!("question {k}") },
            ],
        })
    };
    let home = served_by(&http, &gw, &[], &prompt("You are a pirate.", 0)).await;
    for k in 1..10 {
        assert_eq!(
            served_by(&http, &gw, &[], &prompt("You are a pirate.", k)).await,
            home
        );
    }
}

#[tokio::test]
async fn a_hot_session_spills_under_bounded_load() {
    let (gw, fleet) = fleet(
        ReplicaConfig::default(),
        &[("ROUTING", "{ policy: affinity }")],
    )
    .await;
    let http = Http::default();
    let session = [("x-switchyard-session", "hot")];
    let home = served_by(&http, &gw, &session, &chat("m", false)).await;
    for r in fleet.values() {
        r.hold();
    }
    let held: Vec<_> = (0..6)
        .map(|_| {
            let (http, addr) = (http.clone(), gw.data_addr);
            tokio::spawn(async move {
                let h = [
                    ("content-type", "application/json"),
                    ("x-switchyard-session", "hot"),
                ];
                http.call(
                    "POST",
                    addr,
                    "/v1/chat/completions",
                    &h,
                    chat("m", false).to_string(),
                )
                .await
            })
        })
        .collect();
    eventually("6 requests in flight", || {
        fleet.values().map(|r| r.in_flight()).sum::<u32>() == 6
    })
    .await;
    let loads: Vec<u32> = ["a", "b", "c"]
        .iter()
        .map(|id| fleet[*id].in_flight())
        .collect();
    // Bound: 1.25 x average (+1): no replica holds more than 3 of the 6.
    assert!(loads.iter().all(|&n| n <= 3), "{loads:?}");
    assert!(
        fleet[home.as_str()].in_flight() >= 2,
        "home first: {loads:?}"
    );
    for r in fleet.values() {
        r.release();
    }
    for h in held {
        assert_eq!(h.await.unwrap().status, 200);
    }
    assert_eq!(
        served_by(&http, &gw, &session, &chat("m", false)).await,
        home
    );
}

#[tokio::test]
async fn a_replica_back_from_a_failed_health_check_ramps_up_slowly() {
    let (gw, fleet) = fleet(
        ReplicaConfig::default(),
        &[
            ("ROUTING", "{ policy: weighted, slow_start_ms: 2000 }"),
            (
                "HEALTH",
                "health_check: { interval_ms: 40, rise: 1, fall: 1 }",
            ),
        ],
    )
    .await;
    let http = Http::default();
    fleet["a"].fail_probes(true);
    eventually_state(&http, &gw, "a", "down").await;
    fleet["a"].fail_probes(false);
    eventually_state(&http, &gw, "a", "healthy").await;
    let row = crate::health::row(&http, &gw, "a").await;
    let ramp = row["slow_start_ramp"].as_f64().unwrap_or(1.0);
    assert!(ramp < 0.5, "ramping right after coming back: {row}");
    let share_of_a = |by: &HashMap<String, u32>| {
        f64::from(by.get("a").copied().unwrap_or(0)) / f64::from(by.values().sum::<u32>())
    };
    let mut early = HashMap::new();
    for _ in 0..150 {
        *early
            .entry(served_by(&http, &gw, &[], &chat("m", false)).await)
            .or_default() += 1;
    }
    // Not a sleep: the ramp is over when the admin row says so.
    crate::health::until_row(&http, &gw, "a", "ended its slow start", |r| {
        r["slow_start_ramp"].is_null()
    })
    .await;
    let mut late = HashMap::new();
    for _ in 0..300 {
        *late
            .entry(served_by(&http, &gw, &[], &chat("m", false)).await)
            .or_default() += 1;
    }
    let (early, late) = (share_of_a(&early), share_of_a(&late));
    assert!(early < 0.2, "a takes a small share while ramping: {early}");
    assert!(late > 0.22, "a full third after the window: {late}");
}

async fn eventually_state(http: &Http, gw: &switchyard_gateway::Running, id: &str, state: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let row = crate::health::row(http, gw, id).await;
        if row["health"]["state"] == state {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{id} never {state}: {row}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn no_first_token_within_the_timeout_fails_over_to_another_replica() {
    let cfg = crate::streaming(4, 0);
    let (gw, fleet) = fleet(
        cfg,
        &[
            ("ROUTING", "{ policy: round_robin }"),
            ("LIMITS", ", first_token_timeout_ms: 300"),
        ],
    )
    .await;
    fleet["a"].set_fault(FaultRule::always(Fault::SlowFirstToken { delay_ms: 3000 }));
    let http = Http::default();
    let mut failed_over = 0;
    for _ in 0..3 {
        let started = tokio::time::Instant::now();
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
            .await;
        assert_eq!(ans.status, 200);
        assert_ne!(ans.header("x-switchyard-replica"), "a");
        assert!(
            ans.sse_data().iter().any(|e| e == "[DONE]"),
            "a complete stream"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        if ans.header("x-switchyard-attempts") == "2" {
            failed_over += 1;
        }
    }
    assert_eq!(failed_over, 1, "round robin put one of three on a first");
}

#[tokio::test]
async fn a_silent_committed_stream_gets_keep_alive_comments() {
    let cfg = crate::streaming(3, 350);
    let (gw, _fleet) = fleet(cfg, &[("LIMITS", ", sse_keepalive_ms: 100")]).await;
    let http = Http::default();
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
        .await;
    assert_eq!(ans.status, 200);
    let text = String::from_utf8_lossy(&ans.body);
    assert!(text.contains("\n\n: keep-alive\n\n"), "{text}");
    assert!(ans.sse_data().iter().any(|e| e == "[DONE]"), "{text}");
    // Comments sit between events, never inside one.
    for event in text.split("\n\n").filter(|e| !e.is_empty()) {
        assert!(
            event == ": keep-alive" || event.starts_with("data:"),
            "{event:?} in {text}"
        );
    }
}

#[tokio::test]
async fn a_spent_buffer_budget_is_an_explicit_503_with_retry_after() {
    let (gw, fleet) = fleet(
        ReplicaConfig::default(),
        &[("LIMITS", ", max_buffered_bytes: 1500")],
    )
    .await;
    let http = Http::default();
    let big = |n: usize| {
        serde_json::json!({
            "model": "m",
            "messages": [{ "role": "user", "content": "x".repeat(n) }],
        })
    };
    // One body fits, and is given back when the request ends.
    for _ in 0..3 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &big(1000))
            .await;
        assert_eq!(ans.status, 200);
    }
    // While one is held for replay, a second does not fit.
    for r in fleet.values() {
        r.hold();
    }
    let first = {
        let (http, addr) = (http.clone(), gw.data_addr);
        let body = big(1000);
        tokio::spawn(async move { http.post(addr, "/v1/chat/completions", &body).await })
    };
    eventually("the first request is held", || {
        fleet.values().map(|r| r.in_flight()).sum::<u32>() == 1
    })
    .await;
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &big(1000))
        .await;
    assert_eq!(ans.status, 503);
    assert_eq!(ans.header("retry-after"), "1");
    let err = &ans.json()["error"];
    assert_eq!(err["code"], "buffer_budget_exhausted");
    assert!(
        err["message"].as_str().unwrap().contains("buffer budget"),
        "{err}"
    );
    for r in fleet.values() {
        r.release();
    }
    assert_eq!(first.await.unwrap().status, 200);
}
