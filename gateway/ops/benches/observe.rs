//! What one request's metrics record (`metrics::Obs`) costs on the hot
//! path: series lookups, counters, histograms, the body wrapper, and the
//! access-log line, next to the same request path without it.

#![allow(missing_docs, clippy::unwrap_used)]

use std::fmt::Write;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use switchyard_config::{Protocol, load_str};
use switchyard_ops::GatewayObserver;
use switchyard_proxy::body::full;
use switchyard_proxy::observe::Arrival;
use switchyard_proxy::{Observer, Proxy};
use switchyard_router::RouteRequest;

fn gateway(n: usize) -> (Proxy, GatewayObserver) {
    let mut yaml = String::from(
        "clouds: { c: { provider: private } }\nmodels:\n  - name: chat\n    versions: [{ name: v1, weight: 100 }]\nreplicas:\n",
    );
    for i in 0..n {
        writeln!(
            yaml,
            "  - {{ id: r{i}, model: chat, cloud: c, url: \"http://10.0.0.{i}:8000\", max_concurrency: 64 }}"
        )
        .unwrap();
    }
    let observer = GatewayObserver::default();
    let proxy = Proxy::new(
        load_str(&yaml, &|_| None).unwrap(),
        std::sync::Arc::new(observer.clone()),
    )
    .unwrap();
    (proxy, observer)
}

const ANSWER: &str = r#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

fn observe(c: &mut Criterion) {
    let (gw, observer) = gateway(10);
    let snap = gw.snapshot();
    let req = Request::post("/v1/chat/completions").body(()).unwrap();
    let rid = HeaderValue::from_static("0123456789abcdef0123456789abcdef");
    let route = RouteRequest {
        model: "chat",
        protocol: Protocol::OpenAi,
        clouds: &[],
        affinity_key: None,
        prefix: &[],
        adapter: None,
    };
    // The parts of a request that are there with or without metrics.
    let bare = || {
        let ranking = snap.table.rank(&route, fastrand::u64(..)).unwrap();
        let admitted = snap.table.admit("chat", &ranking, &[]).unwrap();
        drop(admitted);
        let resp = Response::new(full(ANSWER));
        black_box(resp.into_body().collect().now_or_never());
    };
    let observed = || {
        let mut obs = observer.request(Arrival {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
            request_id: &rid,
        });
        obs.bind(&snap);
        let read = tokio::time::Instant::now();
        obs.body_read(read);
        obs.target("chat");
        let ranking = snap.table.rank(&route, fastrand::u64(..)).unwrap();
        let admitted = snap.table.admit("chat", &ranking, &[]).unwrap();
        obs.admitted(&admitted);
        let mut headers = HeaderMap::new();
        obs.sending(&mut headers, tokio::time::Instant::now());
        obs.answered();
        let answer = Response::new(full(ANSWER));
        obs.attempt_done(&Ok(answer), false, tokio::time::Instant::now());
        drop(admitted);
        let resp = Response::new(full(ANSWER));
        obs.respond(resp.status(), false);
        obs.on_write(ANSWER.len());
        black_box(resp.into_body().collect().now_or_never());
        obs.finish(true);
    };
    let mut group = c.benchmark_group("request_record");
    group.bench_function("without", |b| b.iter(bare));
    group.bench_function("with, access log filtered out", |b| b.iter(observed));
    let json = tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(json, || {
        group.bench_function("with, JSON access log", |b| b.iter(observed));
    });
    group.finish();
}

criterion_group!(benches, observe);
criterion_main!(benches);
