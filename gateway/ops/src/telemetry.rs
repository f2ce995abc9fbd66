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

//!
//! # Layout
//! - [`span`]: one request's spans and the `traceparent` in and out.
//! - [`export`]: the OTLP/HTTP client the batch exporter sends through.

mod export;
mod span;

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_subscriber::EnvFilter;

pub(crate) use span::Trace;

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
        .with_http_client(export::ExportClient::new()?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use span::route;

    #[test]
    fn routes_and_urls_stay_bounded() {
        assert_eq!(
            route("/v2/models/secret-name/infer"),
            "/v2/models/{model}/infer"
        );
        assert_eq!(route("/anything/else"), "unmatched");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
