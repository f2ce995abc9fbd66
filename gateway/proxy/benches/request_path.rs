//! Per-request work of a plain chat completion that is ours (not hyper's):
//! reading `model` from the body (`openai::parse`; its fields by serde and
//! by our scanner), the header policy
//! both ways (`headers::to_replica`, `headers::to_client`), and the answer
//! head with our own headers (`answer_head`). Each `_before`
//! is the code as it was before issue 15's session 6, kept here as the
//! baseline: the body parsed with path tracking on every request, and the
//! response headers filtered with a list built and eight removals made
//! whether or not anything had to go.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_config::ResponseHeaders;
use switchyard_config::defaults::RESPONSE_HEADERS_DENIED;
use switchyard_proxy::answer::{Ours, Stamp};
use switchyard_proxy::server_h1::encode::{Framing, Persist, encode_head};
use switchyard_proxy::{NoObserver, Proxy, headers, openai};

/// A chat request as `switchyard-loadtest` sends it (200-byte prompt).
fn chat_body() -> Vec<u8> {
    let prompt = "lorem ipsum dolor sit amet ".repeat(8);
    format!(r#"{{"model":"bench","stream":false,"max_tokens":16,"messages":[{{"role":"user","content":"{prompt}"}}]}}"#)
        .into_bytes()
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Head<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    stream: Option<bool>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    #[serde(borrow)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow)]
    max_completion_tokens: Option<&'a RawValue>,
}

/// The parse as it was: path tracking on every body, `model` through serde.
fn parse_before(body: &[u8]) -> String {
    let mut de = serde_json::Deserializer::from_slice(body);
    let head: Head<'_> = serde_path_to_error::deserialize(&mut de).unwrap();
    de.end().unwrap();
    serde_json::from_str(head.model.unwrap().get()).unwrap()
}

fn parse(c: &mut Criterion) {
    let body = chat_body();
    assert_eq!(parse_before(&body), openai::parse(&body).unwrap().model);
    c.bench_function("openai_parse_before", |b| {
        b.iter(|| black_box(parse_before(black_box(&body))))
    });
    c.bench_function("openai_parse", |b| {
        b.iter(|| black_box(openai::parse(black_box(&body)).unwrap()))
    });
    // The fields alone: serde's walk (the parse before session 14) against
    // the scanner, on the usual body and on a 100 KiB prompt with escapes.
    let long = format!(
        r#"{{"model":"bench","stream":true,"messages":[{{"role":"user","content":"{}"}}]}}"#,
        r#"Summarise this.\n\t\"quoted\" text, ünïcödé — "#.repeat(2_000)
    )
    .into_bytes();
    for (name, body) in [("chat", &body), ("long", &long)] {
        assert_eq!(
            openai::scan::fields(body),
            Some(openai::serde_fields(body).unwrap())
        );
        c.bench_function(&format!("openai_fields_serde_{name}"), |b| {
            b.iter(|| black_box(openai::serde_fields(black_box(body)).unwrap()))
        });
        c.bench_function(&format!("openai_fields_scan_{name}"), |b| {
            b.iter(|| black_box(openai::scan::fields(black_box(body)).unwrap()))
        });
    }
}

fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, HeaderValue::from_static(v));
    }
    h
}

/// The filter as it was: the `Connection` list, eight hop-by-hop removals
/// and the denied names collected, for every answer.
fn to_client_before(headers: &mut HeaderMap, policy: &ResponseHeaders) {
    const HOP: [HeaderName; 8] = [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
    ];
    let matches = |p: &str, name: &str| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    };
    let denied = |name: &str| {
        policy.deny.iter().any(|p| matches(p, name))
            || (RESPONSE_HEADERS_DENIED.iter().any(|p| matches(p, name))
                && !policy.allow.iter().any(|p| matches(p, name)))
    };
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for name in listed {
        headers.remove(name.as_str());
    }
    for name in &HOP {
        headers.remove(name);
    }
    let dropped: Vec<HeaderName> = headers
        .keys()
        .filter(|n| denied(n.as_str()))
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
}

fn header_policy(c: &mut Criterion) {
    let policy = ResponseHeaders::default();
    // What a replica answers a chat completion with.
    let answer = map(&[
        ("content-type", "application/json"),
        ("content-length", "312"),
        ("date", "Sun, 06 Dec 2026 23:00:00 GMT"),
    ]);
    c.bench_function("headers_to_client_before", |b| {
        b.iter(|| {
            let mut h = answer.clone();
            to_client_before(&mut h, &policy);
            black_box(h)
        })
    });
    c.bench_function("headers_to_client", |b| {
        b.iter(|| {
            let mut h = answer.clone();
            headers::to_client(&mut h, &policy);
            black_box(h)
        })
    });
    // What `switchyard-loadtest` (and most SDKs) send.
    let client = map(&[
        ("content-type", "application/json"),
        ("content-length", "312"),
        ("host", "127.0.0.1:8080"),
        ("accept", "*/*"),
    ]);
    c.bench_function("headers_to_replica_unsized", |b| {
        b.iter(|| {
            let mut to = HeaderMap::new();
            headers::to_replica(&client, &mut to, false);
            to.insert("x-request-id", HeaderValue::from_static("abc"));
            to.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
            to.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
            black_box(to)
        })
    });
    c.bench_function("headers_to_replica", |b| {
        b.iter(|| {
            let mut to = HeaderMap::with_capacity(client.len() + 5);
            headers::to_replica(&client, &mut to, false);
            to.insert("x-request-id", HeaderValue::from_static("abc"));
            to.insert("x-forwarded-for", HeaderValue::from_static("127.0.0.1"));
            to.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
            black_box(to)
        })
    });
}

/// A replica's answer head as the client gets it over HTTP/1: the
/// replica's lines, then ours (replica, version, generation, attempts,
/// request id). `_before`: ours inserted into the header map and the map
/// encoded (issue 15 before session 13); now the encoder writes them
/// ([`switchyard_proxy::answer::Ours::write_h1`]).
fn answer_head(c: &mut Criterion) {
    let yaml = r#"
clouds: { c: { provider: private } }
models: [{ name: bench, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r1, model: bench, cloud: c, url: "http://127.0.0.1:9" }]
"#;
    let config = switchyard_config::load_str(yaml, &|_| None).unwrap();
    let gw = Proxy::new(config, Arc::new(NoObserver)).unwrap();
    let request_id = HeaderValue::from_static("5f0c6a7e2d3b4c1a9e8f7d6c5b4a3f2e");
    let replica = map(&[
        ("content-type", "application/json"),
        ("content-length", "312"),
        ("date", "Sun, 06 Dec 2026 23:00:00 GMT"),
    ]);
    let stamp = Stamp {
        replica: 0,
        attempts: 1,
    };
    let encode = |headers: &HeaderMap, ours: Option<&Ours>, out: &mut Vec<u8>| {
        encode_head(
            StatusCode::OK,
            headers,
            Framing::Length(312),
            Persist::Default,
            None,
            |out| {
                if let Some(ours) = ours {
                    ours.write_h1(out);
                }
            },
            out,
        );
    };
    // Both write the same lines (ours after the framing now, not before).
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let mut h = replica.clone();
    Ours::new(request_id.clone(), Some((gw.snapshot(), stamp))).into_map(&mut h);
    encode(&h, None, &mut before);
    let ours = Ours::new(request_id.clone(), Some((gw.snapshot(), stamp)));
    encode(&replica, Some(&ours), &mut after);
    let lines = |head: &[u8]| {
        let mut l: Vec<Vec<u8>> = head.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
        l.sort();
        l
    };
    assert_eq!(lines(&before), lines(&after));
    let snap = gw.snapshot();
    let up = &snap.upstreams[0];
    c.bench_function("answer_head_before", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            let mut h = replica.clone();
            h.insert("x-switchyard-replica", up.id_header.clone());
            h.insert("x-switchyard-version", up.version_header.clone());
            h.insert(
                "x-switchyard-config-generation",
                snap.generation_header.clone(),
            );
            h.insert("x-switchyard-attempts", HeaderValue::from_static("1"));
            h.insert("x-request-id", request_id.clone());
            out.clear();
            encode(&h, None, &mut out);
            black_box(&out);
        })
    });
    c.bench_function("answer_head", |b| {
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            let h = replica.clone();
            let ours = Ours::new(request_id.clone(), Some((Arc::clone(&snap), stamp)));
            out.clear();
            encode(&h, Some(&ours), &mut out);
            black_box(&out);
        })
    });
}

criterion_group!(benches, parse, header_policy, answer_head);
criterion_main!(benches);
