//! The fake replica answers like the servers it stands in for, and its
//! knobs do what tests rely on.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard_fake_replica::{FakeReplica, ReplicaConfig};

async fn post(r: &FakeReplica, path: &str, body: &str) -> (u16, http::HeaderMap, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("{}{path}", r.url()))
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let fut = async {
        let resp = client.request(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status.as_u16(),
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("timed out")
}

fn cfg(name: &str) -> ReplicaConfig {
    ReplicaConfig {
        name: name.into(),
        tokens: 3,
        ..ReplicaConfig::default()
    }
}

#[tokio::test]
async fn chat_answers_echo_the_model_and_count_usage() {
    let r = FakeReplica::start(cfg("r1")).await.unwrap();
    let (status, headers, body) = post(
        &r,
        "/v1/chat/completions",
        r#"{"model":"m-1","messages":[]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["x-fake-replica"], "r1");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["model"], "m-1");
    assert_eq!(v["choices"][0]["message"]["content"], "tok0 tok1 tok2");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert_eq!(r.hits(), 1);
}

#[tokio::test]
async fn streams_end_with_usage_then_done_and_honour_max_tokens() {
    let r = FakeReplica::start(cfg("r1")).await.unwrap();
    let (status, headers, body) = post(
        &r,
        "/v1/chat/completions",
        r#"{"model":"m","stream":true,"max_tokens":2}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/event-stream");
    let events: Vec<&str> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let usage: serde_json::Value = serde_json::from_str(events[events.len() - 2]).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 2);
    let finish: serde_json::Value = serde_json::from_str(events[events.len() - 3]).unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn malformed_requests_get_each_apis_error_shape() {
    let r = FakeReplica::start(cfg("r1")).await.unwrap();
    let (status, _, body) = post(&r, "/v1/chat/completions", "{nope").await;
    assert_eq!(status, 400);
    assert!(body.contains(r#""type":"invalid_request_error""#), "{body}");
    let (status, _, body) = post(&r, "/v2/models/x/infer", r#"{"inputs":[]}"#).await;
    assert_eq!(status, 400);
    assert!(body.starts_with(r#"{"error":""#), "{body}");
}

#[tokio::test]
async fn kserve_echoes_the_first_input() {
    let r = FakeReplica::start(cfg("k")).await.unwrap();
    let req = r#"{"id":"7","inputs":[{"name":"x","shape":[2],"datatype":"INT32","data":[5,6]}]}"#;
    let (status, _, body) = post(&r, "/v2/models/resnet/infer", req).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["model_name"], "resnet");
    assert_eq!(v["id"], "7");
    assert_eq!(v["outputs"][0]["data"], serde_json::json!([5, 6]));
}

#[tokio::test]
async fn fail_next_and_hold_and_capacity() {
    let r = FakeReplica::start(ReplicaConfig {
        max_concurrency: Some(1),
        ..cfg("r")
    })
    .await
    .unwrap();
    r.fail_next(1);
    let chat = r#"{"model":"m"}"#;
    assert_eq!(post(&r, "/v1/chat/completions", chat).await.0, 500);
    assert_eq!(post(&r, "/v1/chat/completions", chat).await.0, 200);

    r.hold();
    let url = r.url();
    let held = tokio::spawn(async move {
        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let req = http::Request::post(format!("{url}/v1/chat/completions"))
            .body(Full::new(Bytes::from_static(br#"{"model":"m"}"#)))
            .unwrap();
        client.request(req).await.unwrap().status().as_u16()
    });
    let counted = async {
        while r.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), counted)
        .await
        .expect("request never arrived");
    let (status, headers, _) = post(&r, "/v1/chat/completions", chat).await;
    assert_eq!(status, 429, "over max_concurrency");
    assert_eq!(headers["retry-after"], "1");
    r.release();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), held)
            .await
            .unwrap()
            .unwrap(),
        200
    );
    assert_eq!(r.last_request().unwrap().path, "/v1/chat/completions");
}
