//! The gateway's own client-facing HTTP/1.1 (gateway/app/src/http1/), on
//! raw sockets: malformed and smuggling-shaped requests get a 400 in
//! OpenAI's error shape naming the problem and never reach a replica;
//! pipelined requests are answered in order; `100 Continue`, `HEAD` and
//! HTTP/1.0 behave as clients expect; h2c prior knowledge still works.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{chat, within};

use crate::fleet;

mod raw;

use raw::Raw;

fn chat_post(extra: &str, body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n{extra}\r\n{body}"
    )
}

#[tokio::test]
async fn malformed_and_smuggling_shaped_requests_get_a_400_naming_the_problem_and_reach_no_replica()
{
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let json = chat("chat", false).to_string();
    let n = json.len();
    let cases = [
        (
            format!("content-length: {n}\r\ncontent-length: {}\r\n", n + 1),
            "conflicting content-length",
        ),
        (
            format!("content-length: {n}\r\ntransfer-encoding: chunked\r\n"),
            "both content-length and transfer-encoding",
        ),
        (
            "transfer-encoding: gzip, chunked\r\n".into(),
            "transfer-encoding other than a single `chunked`",
        ),
        (
            format!("content-length: {n}\r\nx-a: b\r\n folded\r\n"),
            "invalid request head",
        ),
        ("transfer-encoding: chunked\r\n".into(), "chunk size"),
    ];
    for (headers, needle) in cases {
        let mut c = Raw::open(gw.data_addr).await;
        // The last case's body is not valid chunked framing.
        c.send(chat_post(&headers, &format!("zz\r\n{json}")).as_bytes())
            .await;
        let reply = c.reply(false).await;
        assert_eq!(reply.status, 400, "{headers:?}");
        let err = &reply.json()["error"];
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(needle), "{headers:?} -> {message}");
        assert_eq!(err["type"], "invalid_request_error");
        assert_eq!(reply.header("connection"), Some("close"));
        assert!(
            c.closed().await,
            "{headers:?}: the connection is closed after"
        );
    }
    // A request smuggled in the body of one with both framings.
    let smuggled = chat_post(&format!("content-length: {n}\r\n"), &json);
    let outer = chat_post(
        &format!(
            "content-length: {}\r\ntransfer-encoding: chunked\r\n",
            smuggled.len() + 5
        ),
        &format!("0\r\n\r\n{smuggled}"),
    );
    let mut c = Raw::open(gw.data_addr).await;
    c.send(outer.as_bytes()).await;
    let reply = c.reply(false).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["code"], "malformed_request");
    assert!(
        c.closed().await,
        "nothing after the refusal is read as a request"
    );
    let hits: u64 = replicas.values().map(|r| r.hits()).sum();
    assert_eq!(hits, 0, "nothing malformed reached a replica");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    let json = chat("chat", false).to_string();
    let chunked: String = json
        .as_bytes()
        .chunks(7)
        .map(|c| format!("{:x}\r\n{}\r\n", c.len(), String::from_utf8_lossy(c)))
        .collect();
    let wire = [
        chat_post(&format!("content-length: {}\r\n", json.len()), &json),
        "GET /v1/nothing HTTP/1.1\r\nhost: gw\r\n\r\n".into(),
        chat_post(
            "transfer-encoding: chunked\r\n",
            &format!("{chunked}0\r\n\r\n"),
        ),
        "GET /v1/models HTTP/1.1\r\nhost: gw\r\n\r\n".into(),
    ]
    .concat();
    let mut c = Raw::open(gw.data_addr).await;
    c.send(wire.as_bytes()).await;
    let statuses = [
        c.reply(false).await,
        c.reply(false).await,
        c.reply(false).await,
        c.reply(false).await,
    ]
    .map(|r| {
        let _ = r.json();
        r.status
    });
    assert_eq!(statuses, [200, 404, 200, 200]);
    let hits: u64 = replicas.values().map(|r| r.hits()).sum();
    assert_eq!(
        hits, 2,
        "both chat requests, chunked or not, were forwarded"
    );
    // Still open for more.
    c.send(b"GET /v1/models HTTP/1.1\r\nhost: gw\r\n\r\n").await;
    assert_eq!(c.reply(false).await.status, 200);
}

#[tokio::test]
async fn expect_100_continue_is_answered_when_the_body_is_wanted_and_only_then() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let json = chat("chat", false).to_string();
    let expect = format!("expect: 100-continue\r\ncontent-length: {}\r\n", json.len());
    let mut c = Raw::open(gw.data_addr).await;
    c.send(chat_post(&expect, "").as_bytes()).await;
    assert_eq!(c.line().await, "HTTP/1.1 100 Continue");
    assert_eq!(c.line().await, "");
    c.send(json.as_bytes()).await;
    assert_eq!(c.reply(false).await.status, 200);
    // Refused before the body is read: no 100, the answer, and a close
    // (the body the client may still send is not taken for a request).
    let mut c = Raw::open(gw.data_addr).await;
    c.send(format!("POST /v1/nothing HTTP/1.1\r\nhost: gw\r\n{expect}\r\n").as_bytes())
        .await;
    let reply = c.reply(false).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("connection"), Some("close"));
}

#[tokio::test]
async fn head_answers_have_no_body_and_http_1_0_gets_no_chunks_and_a_close() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let mut c = Raw::open(gw.data_addr).await;
    c.send(
        b"HEAD /v1/models HTTP/1.1\r\nhost: gw\r\n\r\nGET /v1/models HTTP/1.1\r\nhost: gw\r\n\r\n",
    )
    .await;
    let head = c.reply(true).await;
    let get = c.reply(false).await;
    assert_eq!(
        get.status, 200,
        "the answer right after the HEAD's head is the GET's"
    );
    assert!(get.json()["data"].is_array());
    assert_ne!(head.status, 0);

    let mut c = Raw::open(gw.data_addr).await;
    c.send(b"GET /v1/models HTTP/1.0\r\n\r\n").await;
    let reply = c.reply(false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("transfer-encoding"), None);
    assert!(c.closed().await, "HTTP/1.0 without keep-alive closes");

    let mut c = Raw::open(gw.data_addr).await;
    c.send(b"GET /v1/models HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
        .await;
    let reply = c.reply(false).await;
    assert_eq!(reply.header("connection"), Some("keep-alive"));
    c.send(b"GET /v1/models HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n")
        .await;
    assert_eq!(c.reply(false).await.header("connection"), Some("close"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn h2c_prior_knowledge_is_still_served_by_http2() {
    let (gw, _r) = fleet(ReplicaConfig::default()).await;
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Empty<Bytes>>();
    let uri = format!("http://{}/v1/models", gw.data_addr);
    let resp = within(client.get(uri.parse().unwrap())).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = within(resp.into_body().collect()).await.unwrap().to_bytes();
    let models: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(models["data"].is_array());
}

/// A gateway with `header_read_timeout_ms: ms` in front of one replica, `r`.
async fn head_timeout_gateway(
    ms: u64,
) -> (
    switchyard_gateway::Running,
    std::collections::HashMap<String, switchyard_fake_replica::FakeReplica>,
) {
    let yaml = format!(
        r#"
server: {{ limits: {{ header_read_timeout_ms: {ms} }} }}
clouds: {{ c: {{ provider: private }} }}
models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]
replicas: [{{ id: r, model: m, cloud: c, url: "${{R_URL}}" }}]
"#
    );
    let fleet = switchyard_tests::replicas(&[("r", ReplicaConfig::default())]).await;
    let gw = switchyard_tests::gateway(&yaml, &fleet).await;
    (gw, fleet)
}

#[tokio::test]
async fn a_head_started_but_not_finished_in_time_gets_a_408_naming_the_limit() {
    let (gw, fleet) = head_timeout_gateway(300).await;
    let mut c = Raw::open(gw.data_addr).await;
    c.send(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n")
        .await;
    let reply = c.reply(false).await;
    assert_eq!(reply.status, 408);
    let err = &reply.json()["error"];
    assert_eq!(err["code"], "request_head_timeout");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("header_read_timeout_ms"),
        "{err}"
    );
    assert!(c.closed().await);
    assert_eq!(fleet["r"].hits(), 0);
}

/// The head-wait timer is kept across a connection's requests (one
/// registration per timeout, not per request): each wait still gets the
/// whole `header_read_timeout_ms` from its own start, and an idle
/// connection still closes.
#[tokio::test]
async fn each_keep_alive_wait_gets_the_whole_head_timeout_and_an_idle_connection_closes() {
    let (gw, fleet) = head_timeout_gateway(2000).await;
    let json = chat("m", false).to_string();
    let request = chat_post(&format!("content-length: {}\r\n", json.len()), &json);
    let mut c = Raw::open(gw.data_addr).await;
    // Three requests 1.2 s apart: the third comes 2.4 s after the first
    // wait began, so a timer left at that wait's deadline (2 s) would have
    // closed the connection; each wait has 0.8 s to spare.
    for i in 0..3 {
        if i > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        }
        c.send(request.as_bytes()).await;
        assert_eq!(c.reply(false).await.status, 200, "request {i}");
    }
    let idle = std::time::Instant::now();
    assert!(c.closed().await);
    assert!(
        idle.elapsed() >= std::time::Duration::from_millis(1800),
        "closed after {:?}",
        idle.elapsed()
    );
    assert_eq!(fleet["r"].hits(), 3);
}

#[tokio::test]
async fn a_client_that_leaves_before_its_answer_cancels_the_request_upstream() {
    let (gw, replicas) = fleet(ReplicaConfig::default()).await;
    for r in replicas.values() {
        r.hold();
    }
    let json = chat("chat", false).to_string();
    let mut c = Raw::open(gw.data_addr).await;
    c.send(chat_post(&format!("content-length: {}\r\n", json.len()), &json).as_bytes())
        .await;
    switchyard_tests::eventually("the request waits at a replica", || {
        replicas.values().map(|r| r.in_flight()).sum::<u32>() == 1
    })
    .await;
    let left = tokio::time::Instant::now();
    drop(c);
    switchyard_tests::slots_released(&gw).await;
    switchyard_tests::eventually("the replica sees it cancelled", || {
        replicas.values().map(|r| r.in_flight()).sum::<u32>() == 0
    })
    .await;
    // At once, not when request_timeout_ms (3 s here) ends the attempt.
    let took = left.elapsed();
    assert!(
        took < std::time::Duration::from_millis(1500),
        "took {took:?}"
    );
}
