//! Test support: start a gateway and fake replicas on loopback port 0, and a
//! small HTTP client that can read SSE streams event by event.
//!
//! Everything here is bounded in time: every await that waits on the network
//! goes through [`within`], so a broken gateway fails a test instead of
//! hanging CI.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod dns;
pub mod etcd;
pub mod observe;
pub mod redis;
pub mod scripted;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use switchyard_fake_replica::{FakeReplica, ReplicaConfig};
use switchyard_gateway::Running;
use tokio::net::TcpListener;

/// Fails the test if `fut` takes longer than 10 s.
pub async fn within<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("timed out after 10 s")
}

/// Starts fake replicas, one per `(name, config)`.
pub async fn replicas(specs: &[(&str, ReplicaConfig)]) -> HashMap<String, FakeReplica> {
    let mut out = HashMap::new();
    for (name, cfg) in specs {
        let cfg = ReplicaConfig {
            name: (*name).to_owned(),
            ..cfg.clone()
        };
        out.insert((*name).to_owned(), FakeReplica::start(cfg).await.unwrap());
    }
    out
}

/// Starts a gateway from `yaml`, where `${NAME_URL}` is replaced by the URL of
/// replica `name` (uppercased, `-` as `_`), on loopback port 0.
pub async fn gateway(yaml: &str, replicas: &HashMap<String, FakeReplica>) -> Running {
    let env: HashMap<String, String> = replicas
        .iter()
        .map(|(name, r)| {
            (
                format!("{}_URL", name.to_uppercase().replace('-', "_")),
                r.url(),
            )
        })
        .collect();
    let config = switchyard_config::load_str(yaml, &|k| env.get(k).cloned()).unwrap();
    let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    switchyard_gateway::start_on(config, data, admin).unwrap()
}

/// A response read in full.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// The SSE `data:` payloads, in order.
    pub fn sse_data(&self) -> Vec<String> {
        sse_data(&String::from_utf8_lossy(&self.body))
    }

    /// Asserts the stream ended with an in-band error event mentioning
    /// `needle`, and never claimed to be complete (`[DONE]`).
    pub fn assert_ends_with_error(&self, needle: &str) {
        let events = self.sse_data();
        let last: serde_json::Value = serde_json::from_str(events.last().expect("no events"))
            .unwrap_or_else(|e| panic!("last event is not JSON ({e}): {events:?}"));
        let message = last["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{events:?}");
        assert!(
            !events.iter().any(|e| e == "[DONE]"),
            "a cut stream must not look complete"
        );
    }
}

/// Splits an SSE body into its `data:` payloads.
pub fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

/// A keep-alive HTTP/1.1 client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl Http {
    /// Sends a request and returns the response with its body unread.
    pub async fn send(
        &self,
        method: &str,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> http::Response<Incoming> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("http://{addr}{path}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Full::new(body.into())).unwrap();
        within(self.client.request(req)).await.unwrap()
    }

    /// Sends a request and reads the whole answer.
    pub async fn call(
        &self,
        method: &str,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        let resp = self.send(method, addr, path, headers, body).await;
        let (parts, body) = resp.into_parts();
        let body = within(body.collect()).await.unwrap().to_bytes();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// POSTs JSON.
    pub async fn post(&self, addr: SocketAddr, path: &str, json: &serde_json::Value) -> Answer {
        self.call(
            "POST",
            addr,
            path,
            &[("content-type", "application/json")],
            json.to_string(),
        )
        .await
    }

    /// POSTs a chat request to `/v1/chat/completions` and returns as soon as
    /// the headers are in, with the (streaming) body unread.
    pub async fn open_stream(
        &self,
        addr: SocketAddr,
        json: &serde_json::Value,
    ) -> http::Response<Incoming> {
        let headers = [("content-type", "application/json")];
        self.send(
            "POST",
            addr,
            "/v1/chat/completions",
            &headers,
            json.to_string(),
        )
        .await
    }

    /// GETs.
    pub async fn get(&self, addr: SocketAddr, path: &str) -> Answer {
        self.call("GET", addr, path, &[], Bytes::new()).await
    }
}

/// Reads the next data frame of a streaming body (None at the end).
pub async fn next_chunk(body: &mut Incoming) -> Option<Bytes> {
    loop {
        match within(body.frame()).await {
            None => return None,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Some(data);
                }
            }
            Some(Err(e)) => panic!("stream error: {e}"),
        }
    }
}

/// Polls `cond` every 10 ms until it holds, failing the test after 10 s.
/// For state that settles asynchronously (a counter released when a
/// connection task notices a disconnect), not for timing assertions.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the gateway holds no replica slot (every request it
/// forwarded was let go).
pub async fn slots_released(gw: &switchyard_gateway::Running) {
    let proxy = gw.proxy().clone();
    eventually("the gateway releases every replica slot", || {
        proxy
            .snapshot()
            .table
            .entries()
            .iter()
            .all(|e| e.stats.in_flight() == 0)
    })
    .await;
}

/// A chat request body.
pub fn chat(model: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": stream,
        "messages": [{ "role": "user", "content": "Say hello" }],
    })
}
