//! The data plane as a value: requests that need no replica, served by
//! `Proxy::handle` with no socket at all, each answer in its API's shape;
//! and the observer seam seeing what a request did.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use switchyard_proxy::observe::Arrival;
use switchyard_proxy::{NoObserver, Observer, Proxy, ProxyError, RequestObserver};

const CONFIG: &str = r#"
server: { limits: { max_body_bytes: 1024 } }
clouds: { c: { provider: private } }
models:
  - name: chat
    versions: [{ name: v1, weight: 100 }]
  - name: resnet
    versions: [{ name: "1", weight: 100 }]
replicas:
  - { id: a, model: chat, cloud: c, url: "http://127.0.0.1:9", max_concurrency: 1 }
  - { id: k, model: resnet, cloud: c, url: "http://127.0.0.1:9", protocol: kserve_v2 }
"#;

fn proxy(observer: Arc<dyn Observer>) -> Proxy {
    let config = switchyard_config::load_str(CONFIG, &|_| None).unwrap();
    Proxy::new(config, observer).unwrap()
}

const CLIENT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 5);

async fn call(p: &Proxy, method: &str, path: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = p.handle(req, CLIENT).await;
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, json)
}

#[tokio::test]
async fn local_answers_come_from_the_snapshot() {
    let p = proxy(Arc::new(NoObserver));
    let (status, models) = call(&p, "GET", "/v1/models", "").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["chat", "resnet"]);
    assert_eq!(
        call(&p, "GET", "/v2/health/ready", "").await.0,
        503,
        "not ready until told"
    );
    p.set_ready(true);
    assert_eq!(call(&p, "GET", "/v2/health/ready", "").await.0, 200);
}

#[tokio::test]
async fn client_errors_are_in_the_openai_shape_naming_the_field() {
    let p = proxy(Arc::new(NoObserver));
    let (status, body) = call(&p, "POST", "/v1/chat/completions", r#"{"model": 5}"#).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("model"),
        "{body}"
    );

    let (status, body) = call(&p, "POST", "/v1/chat/completions", r#"{"model":"nope"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");

    let big = format!(r#"{{"model":"chat","pad":"{}"}}"#, "x".repeat(2000));
    let (status, body) = call(&p, "POST", "/v1/chat/completions", &big).await;
    assert_eq!(status, 413);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("1024"),
        "{body}"
    );

    assert_eq!(call(&p, "GET", "/v1/chat/completions", "").await.0, 405);
    assert_eq!(call(&p, "GET", "/nowhere", "").await.0, 404);
}

#[tokio::test]
async fn kserve_errors_are_in_the_kserve_shape() {
    let p = proxy(Arc::new(NoObserver));
    let (status, body) = call(&p, "POST", "/v2/models/nope/infer", "{}").await;
    assert_eq!(status, 404);
    assert!(
        body["error"].is_string(),
        "KServe errors are a string: {body}"
    );
    assert_eq!(call(&p, "GET", "/v2/models/resnet/ready", "").await.0, 200);
}

#[tokio::test]
async fn a_bad_priority_header_is_a_400() {
    let p = proxy(Arc::new(NoObserver));
    let req = Request::post("/v1/chat/completions")
        .header("x-switchyard-priority", "urgent")
        .body(Full::new(Bytes::from_static(br#"{"model":"chat"}"#)))
        .unwrap();
    assert_eq!(p.handle(req, CLIENT).await.status(), 400);
}

/// Records the hooks a request calls, in order.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Observer for Recorder {
    fn request(&self, arrival: Arrival<'_>) -> Box<dyn RequestObserver> {
        self.0
            .lock()
            .unwrap()
            .push(format!("request {}", arrival.uri.path()));
        Box::new(self.clone())
    }
}

impl RequestObserver for Recorder {
    fn target(&mut self, model: &str) {
        self.0.lock().unwrap().push(format!("target {model}"));
    }
    fn failed(&mut self, e: &ProxyError) {
        self.0.lock().unwrap().push(format!("failed {}", e.label()));
    }
    fn respond(&mut self, status: StatusCode, _stream: bool) {
        self.0
            .lock()
            .unwrap()
            .push(format!("respond {}", status.as_u16()));
    }
    fn finish(&mut self, completed: bool) {
        self.0.lock().unwrap().push(format!("finish {completed}"));
    }
}

#[tokio::test]
async fn the_observer_sees_the_request_to_its_end_once() {
    let seen = Recorder::default();
    let p = proxy(Arc::new(seen.clone()));
    let (status, _) = call(&p, "POST", "/v1/chat/completions", r#"{"model":"gone"}"#).await;
    assert_eq!(status, 404);
    assert_eq!(
        *seen.0.lock().unwrap(),
        [
            "request /v1/chat/completions",
            "target gone",
            "failed unknown_model",
            "respond 404",
            "finish true",
        ]
    );
}
