//! Every injected fault, as a client sees it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard_fake_replica::{FakeReplica, Fault, FaultRule, ReplicaConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const CHAT: &str = r#"{"model":"m","messages":[]}"#;
const STREAM: &str = r#"{"model":"m","stream":true}"#;

/// Bounds a step of a test.
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out")
}

async fn request(
    r: &FakeReplica,
    method: &str,
    path: &str,
    body: &str,
) -> hyper_util::client::legacy::ResponseFuture {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", r.url()))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    client.request(req)
}

async fn call(
    r: &FakeReplica,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, http::HeaderMap, String) {
    let resp = bounded(request(r, method, path, body).await).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = bounded(body.collect()).await.unwrap().to_bytes();
    (
        parts.status.as_u16(),
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

async fn chat(r: &FakeReplica, body: &str) -> (u16, http::HeaderMap, String) {
    call(r, "POST", "/v1/chat/completions", body).await
}

/// The `data:` payloads of an SSE body.
fn events(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect()
}

async fn replica(fault: Fault) -> FakeReplica {
    let cfg = ReplicaConfig {
        tokens: 5,
        fault: Some(FaultRule::always(fault)),
        ..ReplicaConfig::default()
    };
    FakeReplica::start(cfg).await.unwrap()
}

/// A raw HTTP/1.1 chat request on its own connection.
async fn raw_chat(r: &FakeReplica) -> TcpStream {
    let mut tcp = TcpStream::connect(r.addr()).await.unwrap();
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{CHAT}",
        CHAT.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    tcp
}

async fn until(mut cond: impl FnMut() -> bool) {
    bounded(async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn error_answers_the_status_in_each_apis_shape_and_health_keeps_answering() {
    let r = replica(Fault::Error { status: 503 }).await;
    let (status, _, body) = chat(&r, CHAT).await;
    assert_eq!(status, 503);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["type"], "server_error");
    let kserve = r#"{"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1]}]}"#;
    let (status, _, body) = call(&r, "POST", "/v2/models/k/infer", kserve).await;
    assert_eq!(status, 503);
    assert!(body.starts_with(r#"{"error":""#), "{body}");
    assert_eq!(call(&r, "GET", "/health", "").await.0, 200);
    assert_eq!(call(&r, "GET", "/v1/models", "").await.0, 200);
}

#[tokio::test]
async fn rate_limited_with_and_without_retry_after() {
    let r = replica(Fault::RateLimited {
        retry_after_secs: Some(7),
    })
    .await;
    let (status, headers, _) = chat(&r, CHAT).await;
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "7");
    r.set_fault(FaultRule::always(Fault::RateLimited {
        retry_after_secs: None,
    }));
    let (status, headers, _) = chat(&r, CHAT).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none());
}

#[tokio::test]
async fn context_length_exceeded_has_openais_shape() {
    let r = replica(Fault::ContextLengthExceeded).await;
    let (status, _, body) = chat(&r, CHAT).await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["param"], "messages");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("This model's maximum context length is"),
        "{msg}"
    );
}

#[tokio::test]
async fn reset_before_headers_resets_the_connection() {
    let r = replica(Fault::ResetBeforeHeaders).await;
    let mut tcp = raw_chat(&r).await;
    let mut buf = [0u8; 64];
    let read = bounded(tcp.read(&mut buf)).await;
    let err = read.expect_err("a reset, not a response or a clean close");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(
        bounded(request(&r, "POST", "/v1/chat/completions", CHAT).await)
            .await
            .is_err()
    );
    until(|| r.in_flight() == 0).await;
}

#[tokio::test]
async fn blackhole_never_answers_and_lets_go_when_the_client_leaves() {
    let r = replica(Fault::Blackhole).await;
    let mut tcp = raw_chat(&r).await;
    let mut buf = [0u8; 64];
    let waited = timeout(Duration::from_millis(300), tcp.read(&mut buf)).await;
    assert!(waited.is_err(), "no answer and no close: {waited:?}");
    assert_eq!(r.in_flight(), 1);
    drop(tcp);
    until(|| r.in_flight() == 0).await;
    assert_eq!(call(&r, "GET", "/health", "").await.0, 200);
}

#[tokio::test]
async fn blackholed_requests_end_when_the_replica_shuts_down() {
    let r = replica(Fault::Blackhole).await;
    let mut tcp = raw_chat(&r).await;
    until(|| r.in_flight() == 1).await;
    bounded(r.shutdown()).await;
    let mut buf = [0u8; 64];
    let n = bounded(tcp.read(&mut buf)).await.unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");
}

#[tokio::test]
async fn slow_first_token_sends_headers_then_waits() {
    let r = replica(Fault::SlowFirstToken { delay_ms: 200 }).await;
    let resp = bounded(request(&r, "POST", "/v1/chat/completions", STREAM).await)
        .await
        .unwrap();
    let headers_at = Instant::now();
    let mut body = resp.into_body();
    let first = bounded(body.frame()).await.unwrap().unwrap();
    assert!(first.is_data());
    assert!(
        headers_at.elapsed() >= Duration::from_millis(190),
        "{:?}",
        headers_at.elapsed()
    );
    let rest = bounded(body.collect()).await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&rest).ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn cut_stream_ends_cleanly_without_finish_or_done() {
    let r = replica(Fault::CutStream { after_tokens: 2 }).await;
    let (status, _, body) = chat(&r, STREAM).await;
    assert_eq!(status, 200);
    let ev = events(&body);
    assert_eq!(ev.len(), 3, "role chunk + 2 tokens: {body}");
    assert!(
        !body.contains("[DONE]") && !body.contains(r#""finish_reason":"stop""#),
        "{body}"
    );
}

#[tokio::test]
async fn stall_stream_keeps_the_connection_open_and_silent() {
    let r = replica(Fault::StallStream { after_tokens: 2 }).await;
    let resp = bounded(request(&r, "POST", "/v1/chat/completions", STREAM).await)
        .await
        .unwrap();
    let mut body = resp.into_body();
    let mut got = String::new();
    while events(&got).len() < 3 {
        let frame = bounded(body.frame()).await.unwrap().unwrap();
        got.push_str(std::str::from_utf8(frame.data_ref().unwrap()).unwrap());
    }
    let next = timeout(Duration::from_millis(300), body.frame()).await;
    assert!(next.is_err(), "neither data nor end: {next:?}");
    assert_eq!(r.in_flight(), 1);
    drop(body);
    until(|| r.in_flight() == 0).await;
}

#[tokio::test]
async fn malformed_event_then_a_normal_end() {
    let r = replica(Fault::MalformedEvent { after_tokens: 1 }).await;
    let (_, _, body) = chat(&r, STREAM).await;
    let ev = events(&body);
    assert_eq!(ev[2], "{not json", "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(ev[2]).is_err());
    assert_eq!(ev.last(), Some(&"[DONE]"));
}

#[tokio::test]
async fn omit_done_sends_finish_and_usage_only() {
    let r = replica(Fault::OmitDone).await;
    let (_, _, body) = chat(&r, STREAM).await;
    let ev = events(&body);
    assert!(!body.contains("[DONE]"), "{body}");
    let usage: serde_json::Value = serde_json::from_str(ev[ev.len() - 1]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 5);
    let finish: serde_json::Value = serde_json::from_str(ev[ev.len() - 2]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn a_counted_fault_reverts_after_n_requests() {
    let r = FakeReplica::start(ReplicaConfig::default()).await.unwrap();
    r.set_fault(FaultRule::next(Fault::Error { status: 502 }, 2));
    assert_eq!(chat(&r, CHAT).await.0, 502);
    assert_eq!(chat(&r, CHAT).await.0, 502);
    assert_eq!(chat(&r, CHAT).await.0, 200);
    assert_eq!(r.fault(), None);
    r.set_fault(FaultRule::always(Fault::Error { status: 500 }));
    r.clear_fault();
    assert_eq!(chat(&r, CHAT).await.0, 200);
}

#[tokio::test]
async fn control_endpoint_sets_reports_and_clears_the_fault() {
    let r = FakeReplica::start(ReplicaConfig::default()).await.unwrap();
    let (status, _, body) = call(
        &r,
        "PUT",
        "/_control/fault",
        r#"{"mode":"error","stauts":1}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("unknown field"), "{body}");

    let rule = r#"{"mode":"error","status":503,"count":2}"#;
    let (status, _, body) = call(&r, "PUT", "/_control/fault", rule).await;
    assert_eq!((status, body.as_str()), (200, rule));
    assert_eq!(chat(&r, CHAT).await.0, 503);
    let (_, _, stats) = call(&r, "GET", "/_control/stats", "").await;
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(v["hits"], 1);
    assert_eq!(v["in_flight"], 0);
    assert_eq!(v["queued"], 0);
    assert_eq!(
        v["fault"],
        serde_json::json!({"mode":"error","status":503,"count":1})
    );

    assert_eq!(call(&r, "DELETE", "/_control/fault", "").await.0, 204);
    assert_eq!(chat(&r, CHAT).await.0, 200);
    let (_, _, stats) = call(&r, "GET", "/_control/stats", "").await;
    let v: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert_eq!((v["hits"].as_u64(), v["fault"].is_null()), (Some(2), true));
}

#[tokio::test]
async fn slots_and_queue_then_429_when_the_queue_is_full() {
    let r = FakeReplica::start(ReplicaConfig {
        slots: Some(1),
        queue: Some(1),
        ..ReplicaConfig::default()
    })
    .await
    .unwrap();
    r.hold();
    let first = request(&r, "POST", "/v1/chat/completions", CHAT).await;
    let first = tokio::spawn(first);
    until(|| r.in_flight() == 1).await;
    let second = tokio::spawn(request(&r, "POST", "/v1/chat/completions", CHAT).await);
    until(|| r.queued() == 1).await;
    let (status, headers, _) = chat(&r, CHAT).await;
    assert_eq!(status, 429, "one running, one queued, no room");
    assert_eq!(headers["retry-after"], "1");
    r.release();
    for held in [first, second] {
        let resp: http::Response<Incoming> = bounded(held).await.unwrap().unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(r.queued(), 0);
}
