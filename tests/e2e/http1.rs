//! The gateway's own client-facing HTTP/1.1 (gateway/app/src/http1/), on
//! raw sockets: malformed and smuggling-shaped requests get a 400 in
//! OpenAI's error shape naming the problem and never reach a replica;
//! pipelined requests are answered in order; `100 Continue`, `HEAD` and
//! HTTP/1.0 behave as clients expect; h2c prior knowledge still works.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use switchyard_fake_replica::ReplicaConfig;
use switchyard_tests::{chat, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fleet;

/// One response read off a raw connection.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A client connection speaking HTTP/1 by hand.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn open(addr: SocketAddr) -> Self {
        let s = within(TcpStream::connect(addr)).await.unwrap();
        Self { s, buf: Vec::new() }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Reads more; `false` at the end of the connection.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        match within(self.s.read(&mut chunk)).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "connection ended inside a response");
        }
        self.buf.drain(..n).collect()
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(at + 2).await;
                return String::from_utf8_lossy(&line[..at]).into_owned();
            }
            assert!(self.fill().await, "connection ended inside a line");
        }
    }

    /// The next response; `no_body`: it answers a `HEAD`.
    async fn reply(&mut self, no_body: bool) -> Reply {
        let mut head = String::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            head.push_str(&line);
            head.push('\n');
        }
        let status = head[9..12].parse().unwrap();
        let mut reply = Reply {
            status,
            head,
            body: Vec::new(),
        };
        if no_body {
            return reply;
        }
        if let Some(n) = reply.header("content-length") {
            reply.body = self.take(n.parse().unwrap()).await;
        } else if reply.header("transfer-encoding") == Some("chunked") {
            loop {
                let size = usize::from_str_radix(&self.line().await, 16).unwrap();
                let data = self.take(size + 2).await;
                if size == 0 {
                    break;
                }
                reply.body.extend_from_slice(&data[..size]);
            }
        } else {
            while self.fill().await {}
            reply.body = std::mem::take(&mut self.buf);
        }
        reply
    }

    /// Whether the gateway closed the connection (nothing more comes).
    async fn closed(&mut self) -> bool {
        !self.fill().await && self.buf.is_empty()
    }
}

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
