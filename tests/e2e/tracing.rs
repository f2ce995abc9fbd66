//! OpenTelemetry export, received by an in-process OTLP/HTTP receiver
//! (hyper on 127.0.0.1:0, decoding `ExportTraceServiceRequest` with prost):
//! one server span per request under the client's `traceparent`, one client
//! span per upstream attempt under it, and the attempt's `traceparent` is
//! what the replica receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use switchyard_fake_replica::{Fault, FaultRule, ReplicaConfig};
use switchyard_tests::{Http, chat, eventually, replicas, within};
use tokio::net::TcpListener;

const PAIR: &str = r#"
clouds: { c1: { provider: private }, c2: { provider: aws } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: a, model: m, cloud: c1, url: "${A_URL}" }
  - { id: b, model: m, cloud: c2, url: "${B_URL}" }
"#;

/// OTLP span kinds.
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

/// Receives OTLP/HTTP protobuf exports and keeps every span.
async fn receiver() -> (SocketAddr, Arc<Mutex<Vec<Span>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let spans = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&spans);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = Arc::clone(&store);
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let store = Arc::clone(&store);
                async move {
                    assert_eq!(req.uri().path(), "/v1/traces");
                    assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let export = ExportTraceServiceRequest::decode(body).unwrap();
                    let mut store = store.lock().unwrap();
                    for rs in export.resource_spans {
                        for ss in rs.scope_spans {
                            store.extend(ss.spans);
                        }
                    }
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, spans)
}

fn attr(span: &Span, key: &str) -> Option<String> {
    let kv = span.attributes.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        other => Some(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_attempt_spans_reach_the_collector_under_the_clients_trace() {
    let (collector, spans) = receiver().await;
    let telemetry =
        switchyard_ops::telemetry::start_otlp(Some(&format!("http://{collector}"))).unwrap();
    assert!(telemetry.exporting());
    let fleet = replicas(&[
        ("a", ReplicaConfig::default()),
        ("b", ReplicaConfig::default()),
    ])
    .await;
    let gw = switchyard_tests::gateway(PAIR, &fleet).await;
    fleet["a"].set_fault(FaultRule::always(Fault::Error { status: 503 }));
    let http = Http::default();

    // Until one request is tried on `a` first and failed over to `b`.
    let client_span = "00f067aa0ba902b7";
    let mut traced = None;
    for i in 0..20u32 {
        let trace_id = format!("4bf92f3577b34da6a3ce929d{i:08x}");
        let traceparent = format!("00-{trace_id}-{client_span}-01");
        let ans = http
            .call(
                "POST",
                gw.data_addr,
                "/v1/chat/completions",
                &[
                    ("content-type", "application/json"),
                    ("traceparent", traceparent.as_str()),
                ],
                chat("m", false).to_string(),
            )
            .await;
        assert_eq!(ans.status, 200);
        if ans.header("x-switchyard-attempts") == "2" {
            traced = Some(trace_id);
            break;
        }
    }
    let trace_id = traced.expect("some request was tried on `a` first");
    let upstream = fleet["b"].last_request().unwrap();
    let sent = upstream.headers["traceparent"].to_str().unwrap().to_owned();

    let flusher = tokio::task::spawn_blocking(move || {
        telemetry.flush();
        telemetry
    });
    let telemetry = within(flusher).await.unwrap();
    let mine = |spans: &[Span]| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| hex(&s.trace_id) == trace_id)
            .cloned()
            .collect()
    };
    eventually("the request's three spans are exported", || {
        mine(&spans.lock().unwrap()).len() >= 3
    })
    .await;
    let mine = mine(&spans.lock().unwrap());

    let server: Vec<&Span> = mine.iter().filter(|s| s.kind == SERVER).collect();
    assert_eq!(server.len(), 1, "{mine:#?}");
    let server = server[0];
    assert_eq!(server.name, "POST /v1/chat/completions");
    assert_eq!(
        hex(&server.parent_span_id),
        client_span,
        "child of the client's span"
    );
    assert_eq!(attr(server, "gen_ai.request.model").as_deref(), Some("m"));
    assert_eq!(
        attr(server, "gen_ai.operation.name").as_deref(),
        Some("chat")
    );
    assert_eq!(
        attr(server, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(attr(server, "switchyard.attempts").as_deref(), Some("2"));
    assert_eq!(attr(server, "switchyard.replica").as_deref(), Some("b"));

    let mut attempts: Vec<&Span> = mine.iter().filter(|s| s.kind == CLIENT).collect();
    attempts.sort_by_key(|s| attr(s, "switchyard.attempt"));
    assert_eq!(attempts.len(), 2, "{mine:#?}");
    for a in &attempts {
        assert_eq!(
            a.parent_span_id, server.span_id,
            "attempts are children of the request"
        );
    }
    let (first, second) = (attempts[0], attempts[1]);
    assert_eq!(attr(first, "switchyard.replica").as_deref(), Some("a"));
    assert_eq!(attr(first, "switchyard.cloud").as_deref(), Some("c1"));
    assert_eq!(attr(first, "switchyard.result").as_deref(), Some("retried"));
    assert_eq!(
        attr(first, "switchyard.retry_reason").as_deref(),
        Some("status_5xx")
    );
    assert_eq!(
        attr(first, "http.response.status_code").as_deref(),
        Some("503")
    );
    assert_eq!(attr(second, "switchyard.replica").as_deref(), Some("b"));
    assert_eq!(attr(second, "switchyard.result").as_deref(), Some("ok"));

    // The replica got the trace, as a child of its attempt span.
    assert_eq!(
        sent,
        format!("00-{trace_id}-{}-01", hex(&second.span_id)),
        "traceparent sent upstream"
    );
    within(tokio::task::spawn_blocking(move || drop(telemetry)))
        .await
        .unwrap();
}
