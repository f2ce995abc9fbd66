//! Failover and passive health, observed from outside: the client sees a
//! good answer while replicas fail in each way the fake replica can fail.

use switchyard_fake_replica::{Fault, FaultRule, ReplicaConfig};
use switchyard_tests::{Http, chat, replicas};

/// Two replicas of one model; `${A_URL}` / `${B_URL}`.
const PAIR: &str = r#"
server: { limits: { request_timeout_ms: 3000, stream_idle_timeout_ms: 300 } }
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: a, model: m, cloud: c, url: "${A_URL}" }
  - { id: b, model: m, cloud: c, url: "${B_URL}" }
"#;

/// A gateway and its two replicas `a` and `b`.
type Pair = (
    switchyard_gateway::Running,
    std::collections::HashMap<String, switchyard_fake_replica::FakeReplica>,
);

async fn pair() -> Pair {
    pair_with("").await
}

/// [`pair`] with extra `server.limits` fields, e.g. `attempt_timeout_ms: 200`.
async fn pair_with(limits: &str) -> Pair {
    let fleet = replicas(&[
        ("a", ReplicaConfig::default()),
        ("b", ReplicaConfig::default()),
    ])
    .await;
    let extra = if limits.is_empty() {
        String::new()
    } else {
        format!(", {limits}")
    };
    let yaml = PAIR.replace(
        "request_timeout_ms: 3000",
        &format!("request_timeout_ms: 3000{extra}"),
    );
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    (gw, fleet)
}

async fn replica_row(http: &Http, gw: &switchyard_gateway::Running, id: &str) -> serde_json::Value {
    let rows = http.get(gw.admin_addr, "/admin/replicas").await.json();
    rows["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_replica_answering_500_is_retried_elsewhere_and_ejected() {
    let (gw, fleet) = pair().await;
    fleet["a"].set_fault(FaultRule::always(Fault::Error { status: 500 }));
    let http = Http::default();
    for _ in 0..40 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200, "the client never sees the 500");
        assert_eq!(ans.header("x-switchyard-replica"), "b");
    }
    let a = replica_row(&http, &gw, "a").await;
    assert_eq!(a["health"]["state"], "ejected", "{a}");
    assert_eq!(a["last_ejection_reason"], "consecutive_failures", "{a}");
    assert!(
        a["health"]["until_ms"].as_u64().is_some(),
        "the ejection deadline is shown: {a}"
    );
    assert!(
        fleet["a"].hits() <= 6,
        "ejected after 5 failures, not hammered: {}",
        fleet["a"].hits()
    );
}

#[tokio::test]
async fn an_unreachable_replica_is_failed_over() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let fleet = replicas(&[("b", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(&PAIR.replace("${A_URL}", &dead), &fleet).await;
    let http = Http::default();
    for _ in 0..20 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
    }
}

#[tokio::test]
async fn client_errors_are_passed_through_once_and_do_not_hurt_health() {
    let (gw, fleet) = pair().await;
    for r in fleet.values() {
        r.set_fault(FaultRule::always(Fault::ContextLengthExceeded));
    }
    let http = Http::default();
    for _ in 0..10 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 400);
        assert_eq!(ans.json()["error"]["code"], "context_length_exceeded");
        assert_eq!(ans.header("x-switchyard-attempts"), "1");
    }
    assert_eq!(fleet["a"].hits() + fleet["b"].hits(), 10, "never retried");
    for id in ["a", "b"] {
        assert_eq!(
            replica_row(&http, &gw, id).await["health"]["state"],
            "healthy"
        );
    }
}

#[tokio::test]
async fn rate_limited_replica_is_cooled_for_its_retry_after() {
    let (gw, fleet) = pair().await;
    fleet["a"].set_fault(FaultRule::always(Fault::RateLimited {
        retry_after_secs: Some(30),
    }));
    let http = Http::default();
    for _ in 0..30 {
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
    }
    assert!(
        fleet["a"].hits() <= 1,
        "cooled after its first 429: {}",
        fleet["a"].hits()
    );
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_event_not_done() {
    let (gw, fleet) = pair().await;
    for r in fleet.values() {
        r.set_fault(FaultRule::always(Fault::StallStream { after_tokens: 2 }));
    }
    let http = Http::default();
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
        .await;
    assert_eq!(ans.status, 200);
    ans.assert_ends_with_error("sent no data event for 300 ms");
}

#[tokio::test]
async fn a_stream_the_replica_cuts_short_never_looks_complete() {
    let (gw, fleet) = pair().await;
    for r in fleet.values() {
        r.set_fault(FaultRule::always(Fault::CutStream { after_tokens: 3 }));
    }
    let http = Http::default();
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
        .await;
    ans.assert_ends_with_error("without finishing it");

    // A stream that finished (finish_reason) but left out [DONE] is complete:
    // nothing is appended.
    for r in fleet.values() {
        r.set_fault(FaultRule::always(Fault::OmitDone));
    }
    let ans = http
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
        .await;
    assert!(
        !ans.sse_data().iter().any(|e| e.contains("\"error\"")),
        "{:?}",
        ans.sse_data()
    );
}

#[tokio::test]
async fn a_replica_that_never_answers_costs_one_attempt_timeout_then_fails_over() {
    let (gw, fleet) = pair_with("attempt_timeout_ms: 200").await;
    fleet["a"].set_fault(FaultRule::always(Fault::Blackhole));
    let http = Http::default();
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "b");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn a_stream_whose_first_token_never_comes_is_failed_over_before_the_client_sees_it() {
    let (gw, fleet) = pair_with("attempt_timeout_ms: 200").await;
    // Headers at once, then silence for 5 s before the first event.
    fleet["a"].set_fault(FaultRule::always(Fault::SlowFirstToken { delay_ms: 5000 }));
    let http = Http::default();
    for _ in 0..6 {
        let started = std::time::Instant::now();
        let ans = http
            .post(gw.data_addr, "/v1/chat/completions", &chat("m", true))
            .await;
        assert_eq!(ans.status, 200);
        assert_eq!(ans.header("x-switchyard-replica"), "b");
        assert_eq!(ans.sse_data().last().map(String::as_str), Some("[DONE]"));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
}
