//! Logs and traces: the `tracing` subscriber (text or JSON on stderr) and,
//! when an OTLP endpoint is given, OpenTelemetry trace export.
//!
//! Traces are off unless `--otlp-endpoint` or `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) names a collector. Off means
//! one atomic load per request: no span objects, no header parsing.
//!
//! On, each request gets a server span (a child of the client's W3C
//! `traceparent` when it sent one) and each upstream attempt a client span
//! under it, whose `traceparent` is what the replica receives. Spans are
//! batched and sent as OTLP/HTTP protobuf (`POST {endpoint}/v1/traces`) by
//! the SDK's batch thread, through a small hyper client on a runtime of its
//! own: export never runs on the request path's runtime, and still works
//! while that runtime is being torn down at exit (the final flush).
//! Plain `http://` only: TLS to a collector is left to a local agent.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector, HttpClient, HttpError};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use switchyard_config::Replica;
use tracing_subscriber::EnvFilter;

use crate::error::ProxyError;
use crate::state::Snapshot;

/// The tracer, once export is set up. Unset: tracing is off.
static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Keeps trace export alive; dropping it flushes what is buffered and
/// stops the exporter. Hold it for the life of the process.
#[derive(Debug, Default)]
#[must_use = "dropping it stops trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Sends every finished span now. Blocks: call it off the async runtime
    /// (`spawn_blocking`), as it waits for the export thread.
    pub fn flush(&self) {
        if let Some(p) = &self.provider
            && let Err(e) = p.force_flush()
        {
            tracing::warn!(error = %e, "trace flush failed");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("warning: trace export shutdown: {e}");
        }
    }
}

/// Sets up logging (`json`: one JSON object per line) and, if an endpoint
/// is given or set in the environment, trace export. A bad endpoint is
/// logged and leaves tracing off rather than refusing to serve.
pub fn init(json: bool, otlp_endpoint: Option<&str>) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    match start_otlp(otlp_endpoint) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "trace export is off");
            Telemetry::default()
        }
    }
}

/// Starts OTLP/HTTP trace export to `endpoint` (a base URL such as
/// `http://collector:4318`; `/v1/traces` is appended unless present), or
/// to the one in `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or
/// `OTEL_EXPORTER_OTLP_ENDPOINT`. Neither: tracing stays off. The first
/// call that starts export wins for the life of the process.
pub fn start_otlp(endpoint: Option<&str>) -> Result<Telemetry, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    if env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(Telemetry::default());
    }
    let url = match (endpoint, env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
        (Some(base), _) => traces_url(base),
        (None, Some(exact)) => exact,
        (None, None) => match env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(base) => traces_url(&base),
            None => return Ok(Telemetry::default()),
        },
    };
    if !url.starts_with("http://") {
        return Err(format!(
            "OTLP endpoint {url}: only http:// is supported (send to a local collector)"
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(ExportClient::new()?)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(url.clone())
        .build()
        .map_err(|e| format!("OTLP exporter for {url}: {e}"))?;
    let mut resource = Resource::builder();
    if env("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("switchyard");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    if TRACER.set(provider.tracer("switchyard")).is_err() {
        return Err("trace export is already running".into());
    }
    tracing::info!(endpoint = %url, "exporting traces over OTLP/HTTP");
    Ok(Telemetry {
        provider: Some(provider),
    })
}

fn traces_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The span name's route: the path with the model taken out, so names
/// stay few whatever clients send.
fn route(path: &str) -> &'static str {
    match path {
        "/v1/chat/completions" => "/v1/chat/completions",
        "/v1/completions" => "/v1/completions",
        "/v1/embeddings" => "/v1/embeddings",
        "/v1/models" => "/v1/models",
        "/v2/health/live" => "/v2/health/live",
        "/v2/health/ready" => "/v2/health/ready",
        p if p.starts_with("/v2/models/") && p.ends_with("/infer") => "/v2/models/{model}/infer",
        p if p.starts_with("/v2/models/") && p.ends_with("/ready") => "/v2/models/{model}/ready",
        p if p.starts_with("/v2/models/") => "/v2/models/{model}",
        _ => "unmatched",
    }
}

/// GenAI semantic conventions' `gen_ai.operation.name` for an OpenAI path.
fn operation(path: &str) -> Option<&'static str> {
    match path {
        "/v1/chat/completions" => Some("chat"),
        "/v1/completions" => Some("text_completion"),
        "/v1/embeddings" => Some("embeddings"),
        _ => None,
    }
}

/// One request's spans: the server span, and the current attempt's span.
#[derive(Debug)]
pub(crate) struct Trace {
    request: Context,
    attempt: Option<Context>,
    operation: Option<&'static str>,
}

impl Trace {
    /// The request span, when tracing is on.
    pub(crate) fn request<B>(req: &Request<B>, request_id: &HeaderValue) -> Option<Box<Self>> {
        let tracer = TRACER.get()?;
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
        let path = req.uri().path();
        let operation = operation(path);
        let route = route(path);
        let mut attrs = vec![
            KeyValue::new("http.request.method", req.method().as_str().to_owned()),
            KeyValue::new("http.route", route),
            KeyValue::new("url.path", path.to_owned()),
            KeyValue::new(
                "switchyard.request_id",
                request_id.to_str().unwrap_or("-").to_owned(),
            ),
        ];
        if let Some(op) = operation {
            attrs.push(KeyValue::new("gen_ai.operation.name", op));
        }
        let span = tracer
            .span_builder(format!("{} {route}", req.method()))
            .with_kind(SpanKind::Server)
            .with_attributes(attrs)
            .start_with_context(tracer, &parent);
        Some(Box::new(Self {
            request: parent.with_span(span),
            attempt: None,
            operation,
        }))
    }

    /// The model the client asked for.
    pub(crate) fn target(&self, model: &str) {
        self.request
            .span()
            .set_attribute(KeyValue::new("gen_ai.request.model", model.to_owned()));
    }

    /// Starts attempt `n` on replica `i` and puts its `traceparent` (and
    /// `tracestate`) in the upstream request's `headers`.
    pub(crate) fn attempt(&mut self, snap: &Snapshot, i: usize, n: u32, headers: &mut HeaderMap) {
        let Some(tracer) = TRACER.get() else {
            return;
        };
        if let Some(old) = self.attempt.take() {
            old.span().end();
        }
        let r = &snap.table.entries()[i].replica;
        let up = &snap.upstreams[i];
        let name = format!("{} {}", self.operation.unwrap_or("infer"), up.model_name);
        let attrs = vec![
            KeyValue::new("switchyard.replica", r.id.clone()),
            KeyValue::new("switchyard.cloud", r.cloud.clone()),
            KeyValue::new("switchyard.version", r.version.clone()),
            KeyValue::new("switchyard.attempt", i64::from(n)),
            KeyValue::new("gen_ai.request.model", up.model_name.clone()),
            KeyValue::new("server.address", up.authority.host().to_owned()),
        ];
        let span = tracer
            .span_builder(name)
            .with_kind(SpanKind::Client)
            .with_attributes(attrs)
            .start_with_context(tracer, &self.request);
        let cx = self.request.with_span(span);
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
        self.attempt = Some(cx);
    }

    /// The attempt's outcome. A retried one ends here with its reason; the
    /// one that answers stays open until the response has been sent.
    pub(crate) fn attempt_done<B>(
        &mut self,
        result: &Result<Response<B>, ProxyError>,
        retry_reason: Option<&'static str>,
    ) {
        let Some(cx) = &self.attempt else {
            return;
        };
        let span = cx.span();
        match result {
            Ok(r) => span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(r.status().as_u16()),
            )),
            Err(e) => {
                span.set_attribute(KeyValue::new("error.type", e.label()));
                span.set_status(Status::error(e.label()));
            }
        }
        let result_label = match (retry_reason, result) {
            (Some(_), _) => "retried",
            (None, Ok(_)) => "ok",
            (None, Err(_)) => "error",
        };
        span.set_attribute(KeyValue::new("switchyard.result", result_label));
        if let Some(reason) = retry_reason {
            span.set_attribute(KeyValue::new("switchyard.retry_reason", reason));
        }
        if retry_reason.is_some() || result.is_err() {
            span.end();
            self.attempt = None;
        }
    }

    /// The trace id, for the access log.
    pub(crate) fn trace_id(&self) -> String {
        self.request.span().span_context().trace_id().to_string()
    }

    /// Ends the open spans with the request's outcome.
    pub(crate) fn finish(
        self,
        status: u16,
        attempts: u32,
        replica: Option<&Replica>,
        error: Option<&'static str>,
        completed: bool,
    ) {
        if let Some(a) = self.attempt {
            a.span().end();
        }
        let span = self.request.span();
        span.set_attributes([
            KeyValue::new("http.response.status_code", i64::from(status)),
            KeyValue::new("switchyard.attempts", i64::from(attempts)),
            KeyValue::new("switchyard.completed", completed),
        ]);
        if let Some(r) = replica {
            span.set_attributes([
                KeyValue::new("switchyard.replica", r.id.clone()),
                KeyValue::new("switchyard.cloud", r.cloud.clone()),
                KeyValue::new("switchyard.version", r.version.clone()),
            ]);
        }
        if let Some(e) = error {
            span.set_attribute(KeyValue::new("error.type", e));
        }
        if status >= 500 {
            span.set_status(Status::error(error.unwrap_or("server error")));
        }
        span.end();
    }
}

/// Body limit of a collector's answer (it is only checked for errors).
const MAX_ANSWER: usize = 4 << 20;
/// Longest one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// OTLP's HTTP client: hyper on a current-thread runtime of its own,
/// driven by the SDK's export thread (never a request-path thread).
struct ExportClient {
    rt: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportClient")
    }
}

impl ExportClient {
    fn new() -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("trace export runtime: {e}"))?;
        // A connection per export: exports are seconds apart, and a pooled
        // connection would sit unpolled between them.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        Ok(Self { rt, client })
    }

    fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("OTLP export must run on the batch export thread".into());
        }
        self.rt.block_on(async {
            let request = request.map(Full::new);
            let resp = tokio::time::timeout(EXPORT_TIMEOUT, self.client.request(request)).await??;
            let (parts, body) = resp.into_parts();
            let body = tokio::time::timeout(EXPORT_TIMEOUT, Limited::new(body, MAX_ANSWER).collect())
                .await?
                .map_err(|e| -> HttpError { e })?
                .to_bytes();
            Ok(Response::from_parts(parts, body))
        })
    }
}

impl HttpClient for ExportClient {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(self.send(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_urls_stay_bounded() {
        assert_eq!(route("/v2/models/secret-name/infer"), "/v2/models/{model}/infer");
        assert_eq!(route("/anything/else"), "unmatched");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/v1/traces"), "http://c:4318/v1/traces");
    }
}
