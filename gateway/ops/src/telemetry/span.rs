//! One request's spans: the server span (a child of the client's
//! `traceparent`), and a client span per upstream attempt whose
//! `traceparent` is what the replica receives.

use http::{HeaderMap, Response};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use switchyard_config::Replica;

use super::TRACER;
use switchyard_proxy::observe::Arrival;
use switchyard_proxy::{ProxyError, Snapshot};

/// The span name's route: the path with the model taken out, so names
/// stay few whatever clients send.
pub(super) fn route(path: &str) -> &'static str {
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
    pub(crate) fn request(req: Arrival<'_>) -> Option<Box<Self>> {
        let tracer = TRACER.get()?;
        let request_id = req.request_id;
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers));
        let path = req.uri.path();
        let operation = operation(path);
        let route = route(path);
        let mut attrs = vec![
            KeyValue::new("http.request.method", req.method.as_str().to_owned()),
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
            .span_builder(format!("{} {route}", req.method))
            .with_kind(SpanKind::Server)
            .with_attributes(attrs)
            .start_with_context(tracer, &parent);
        Some(Box::new(Self {
            request: parent.with_span(span),
            attempt: None,
            operation,
        }))
    }

    /// The caller's tenant and key id (never the key itself).
    pub(crate) fn caller(&self, tenant: &str, key: &str) {
        let span = self.request.span();
        span.set_attribute(KeyValue::new("switchyard.tenant", tenant.to_owned()));
        span.set_attribute(KeyValue::new("switchyard.key_id", key.to_owned()));
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
        outcome: &'static str,
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
        if !outcome.is_empty() {
            // How the body ended: complete, resumed, error_event, ...
            span.set_attribute(KeyValue::new("switchyard.outcome", outcome));
        }
        // A stream the replica broke after it was passed on is a failed
        // request, whatever its status said.
        let broken = error.is_some_and(|e| e.starts_with("stream_"));
        if status >= 500 || broken {
            span.set_status(Status::error(error.unwrap_or("server error")));
        }
        span.end();
    }
}
