//! In-flight accounting, the admin API, and graceful shutdown.

use std::time::Duration;

use bytes::Bytes;
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Http, chat, eventually, next_chunk, within};

use crate::{fleet, streaming};

async fn admin_in_flight(http: &Http, admin: std::net::SocketAddr) -> Vec<(String, u64)> {
    let ans = http.get(admin, "/admin/replicas").await;
    assert_eq!(ans.status, 200);
    ans.json()["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["in_flight"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn in_flight_returns_to_zero_after_streams_complete() {
    let (gw, _r) = fleet(streaming(8, 5)).await;
    let http = Http::default();
    let streams: Vec<_> = (0..6)
        .map(|_| {
            let http = http.clone();
            let addr = gw.data_addr;
            tokio::spawn(async move {
                http.post(addr, "/v1/chat/completions", &chat("chat", true))
                    .await
            })
        })
        .collect();
    for s in streams {
        let ans = within(s).await.unwrap();
        assert_eq!(ans.sse_data().last().map(String::as_str), Some("[DONE]"));
    }
    let rows = admin_in_flight(&http, gw.admin_addr).await;
    assert!(rows.iter().all(|(_, n)| *n == 0), "{rows:?}");
    let requests: u64 = http.get(gw.admin_addr, "/admin/replicas").await.json()["replicas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, 6);
}

#[tokio::test]
async fn client_disconnect_mid_stream_releases_the_slot_and_the_replica() {
    let (gw, replicas) = fleet(streaming(500, 20)).await;
    let http = Http::default();
    let resp = http.open_stream(gw.data_addr, &chat("chat@v2", true)).await;
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    assert!(next_chunk(&mut body).await.is_some());
    assert_eq!(
        admin_in_flight(&http, gw.admin_addr)
            .await
            .iter()
            .map(|r| r.1)
            .sum::<u64>(),
        1
    );
    drop(body); // the client goes away mid-stream

    let c = &replicas["c"];
    eventually("the replica sees the upstream request cancelled", || {
        c.in_flight() == 0
    })
    .await;
    switchyard_tests::slots_released(&gw).await;
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_stream_finish() {
    let (gw, _r) = fleet(streaming(30, 20)).await;
    let http = Http::default();
    let resp = http.open_stream(gw.data_addr, &chat("chat", true)).await;
    let mut stream = resp.into_body();
    let mut text = String::from_utf8(next_chunk(&mut stream).await.unwrap().to_vec()).unwrap();

    let addr = gw.data_addr;
    gw.begin_shutdown();
    assert!(!gw.proxy().is_ready(), "readiness turns false at once");
    eventually_refused(addr).await;
    // The admin listener stays up through the drain: orchestrators see
    // "not ready", not a refused connection.
    let ready = http.get(gw.admin_addr, "/readyz").await;
    assert_eq!(ready.status, 503, "readyz during the drain");

    while let Some(chunk) = next_chunk(&mut stream).await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events = switchyard_tests::sse_data(&text);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "stream finished: {events:?}"
    );
    within(gw.wait()).await.unwrap();
}

/// HTTP/2 connections are hyper's (HTTP/1 is ours): the same drain holds
/// for them, an h2c stream in flight at shutdown finishes whole (hyper
/// sends GOAWAY and lets open streams end) and the drain then completes.
#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_h2c_stream_finish() {
    use http_body_util::Full;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let (gw, _r) = fleet(streaming(30, 20)).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let body = serde_json::to_vec(&chat("chat", true)).unwrap();
    let req = http::Request::post(format!("http://{}/v1/chat/completions", gw.data_addr))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let resp = within(client.request(req)).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let mut stream = resp.into_body();
    let mut text = String::from_utf8(next_chunk(&mut stream).await.unwrap().to_vec()).unwrap();

    gw.begin_shutdown();
    eventually_refused(gw.data_addr).await;
    while let Some(chunk) = next_chunk(&mut stream).await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events = switchyard_tests::sse_data(&text);
    let tokens = events.iter().filter(|e| e.contains("\"tok")).count();
    assert_eq!(tokens, 30, "every token arrived: {events:?}");
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    within(gw.wait()).await.unwrap();
}

#[tokio::test]
async fn a_stream_still_running_when_the_grace_period_ends_gets_an_error_event() {
    let cfg = streaming(400, 20);
    let specs: Vec<(&str, _)> = ["a", "b", "c", "k"]
        .iter()
        .map(|n| (*n, cfg.clone()))
        .collect();
    let r = switchyard_tests::replicas(&specs).await;
    let yaml = crate::CONFIG.replace("shutdown_grace_ms: 10000", "shutdown_grace_ms: 300");
    let gw = switchyard_tests::gateway(&yaml, &r).await;
    let http = Http::default();
    let resp = http.open_stream(gw.data_addr, &chat("chat", true)).await;
    let mut stream = resp.into_body();
    let mut text = String::from_utf8(next_chunk(&mut stream).await.unwrap().to_vec()).unwrap();
    gw.begin_shutdown();
    while let Some(chunk) = next_chunk(&mut stream).await {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let events = switchyard_tests::sse_data(&text);
    let last: serde_json::Value = serde_json::from_str(events.last().unwrap()).unwrap();
    let message = last["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("shutting down"), "{events:?}");
    assert!(!events.iter().any(|e| e == "[DONE]"), "{events:?}");
    within(gw.wait()).await.unwrap();
}

async fn eventually_refused(addr: std::net::SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("listener still accepting after shutdown began");
}

#[tokio::test]
async fn admin_config_redacts_secrets_and_probes_answer() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    assert_eq!(http.get(gw.admin_addr, "/healthz").await.status, 200);
    assert_eq!(http.get(gw.admin_addr, "/readyz").await.status, 200);
    let cfg = http.get(gw.admin_addr, "/admin/config").await;
    assert_eq!(cfg.status, 200);
    let text = String::from_utf8_lossy(&cfg.body);
    assert!(!text.contains("secret-a"), "secret leaked: {text}");
    assert!(text.contains("<redacted>"));
    assert_eq!(cfg.json()["generation"], 1);
}

#[tokio::test]
async fn admin_endpoints_require_the_token_when_configured() {
    let fleet = switchyard_tests::replicas(&[("r", ReplicaConfig::default())]).await;
    let yaml = r#"
server: { admin_token: "adm1n" }
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r, model: m, cloud: c, url: "${R_URL}" }]
"#;
    let gw = switchyard_tests::gateway(yaml, &fleet).await;
    let http = Http::default();
    assert_eq!(http.get(gw.admin_addr, "/admin/replicas").await.status, 401);
    let wrong = [("authorization", "Bearer nope")];
    let ans = http
        .call(
            "GET",
            gw.admin_addr,
            "/admin/replicas",
            &wrong,
            Bytes::new(),
        )
        .await;
    assert_eq!(ans.status, 401);
    let right = [("authorization", "Bearer adm1n")];
    let ans = http
        .call(
            "GET",
            gw.admin_addr,
            "/admin/replicas",
            &right,
            Bytes::new(),
        )
        .await;
    assert_eq!(ans.status, 200);
    assert_eq!(
        http.get(gw.admin_addr, "/healthz").await.status,
        200,
        "probes stay open"
    );
}
