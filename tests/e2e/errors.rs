//! Bad input and broken replicas get clear 4xx/5xx answers in OpenAI's shape.

use bytes::Bytes;
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{Http, chat, replicas};

use crate::fleet;

#[tokio::test]
async fn unknown_model_is_404_in_openai_shape() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let ans = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &chat("gpt-9", false))
        .await;
    assert_eq!(ans.status, 404);
    let err = &ans.json()["error"];
    assert_eq!(err["code"], "model_not_found");
    assert_eq!(err["type"], "invalid_request_error");
    assert_eq!(err["param"], "model");
    assert!(err["message"].as_str().unwrap().contains("gpt-9"));
}

#[tokio::test]
async fn malformed_and_incomplete_requests_are_400_naming_the_problem() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    let json = [("content-type", "application/json")];
    let cases: [(&str, &str); 4] = [
        (
            r#"{"model": "chat", "messages": ["#,
            "not a valid JSON object",
        ),
        (r#"{"messages": []}"#, "'model'"),
        (r#"{"model": "chat", "stream": "yes"}"#, "field `stream`"),
        ("", "empty"),
    ];
    for (body, needle) in cases {
        let ans = http
            .call("POST", gw.data_addr, "/v1/chat/completions", &json, body)
            .await;
        assert_eq!(ans.status, 400, "{body}");
        let msg = ans.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(needle), "{body} -> {msg}");
    }
    let hits: u64 = replicas.values().map(|r| r.hits()).sum();
    assert_eq!(hits, 0, "nothing malformed reached a replica");
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let big = format!(r#"{{"model":"chat","prompt":"{}"}}"#, "x".repeat(70_000));
    let json = [("content-type", "application/json")];
    let ans = Http::default()
        .call("POST", gw.data_addr, "/v1/completions", &json, big)
        .await;
    assert_eq!(ans.status, 413);
    assert!(
        ans.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("65536")
    );
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let huge = "v".repeat(100_000);
    let resp = Http::default()
        .send(
            "GET",
            gw.data_addr,
            "/v1/models",
            &[("x-big", huge.as_str())],
            Bytes::new(),
        )
        .await;
    assert_eq!(resp.status(), 431);
}

#[tokio::test]
async fn unknown_paths_and_wrong_methods() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let http = Http::default();
    assert_eq!(http.get(gw.data_addr, "/v1/nothing").await.status, 404);
    let ans = http.get(gw.data_addr, "/v1/chat/completions").await;
    assert_eq!(ans.status, 405);
    assert!(
        ans.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("GET")
    );
}

const ONE_REPLICA: &str = r#"
server: { limits: { request_timeout_ms: 300, connect_timeout_ms: 500 } }
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r, model: m, cloud: c, url: "${R_URL}" }]
"#;

#[tokio::test]
async fn unreachable_replica_is_502_and_silent_replica_is_504() {
    // A port with nothing listening.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let yaml = ONE_REPLICA.replace("${R_URL}", &dead_url);
    let gw = switchyard_tests::gateway(&yaml, &Default::default()).await;
    let ans = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(ans.status, 502);
    assert_eq!(ans.json()["error"]["type"], "server_error");

    let fleet = replicas(&[("r", ReplicaConfig::default())]).await;
    fleet["r"].hold();
    let gw = switchyard_tests::gateway(ONE_REPLICA, &fleet).await;
    let ans = Http::default()
        .post(gw.data_addr, "/v1/chat/completions", &chat("m", false))
        .await;
    assert_eq!(ans.status, 504);
    assert!(
        ans.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300 ms")
    );
    fleet["r"].release();
}
