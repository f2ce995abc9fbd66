//! Routing a request to an endpoint, and the behaviour knobs every
//! inference endpoint shares, in the order they apply: counting, recording,
//! `max_concurrency`, refusing faults, GPU slots and queue, the hold gate,
//! `fail_next`/`fail_rate`, latency, then the answer (with stream faults).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;

use crate::fault::Fault;
use crate::gpu::Gpu;
use crate::server::Conn;
use crate::stream::Slot;
use crate::{RecordedRequest, Shared, cloud, control, converse, gpu, kserve, openai};

/// Body type of every answer.
pub(crate) type FakeBody = BoxBody<Bytes, Infallible>;

/// Which inference endpoint.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Chat,
    Completion,
    Embedding,
    Kserve,
    /// Bedrock Converse (`stream`: ConverseStream).
    Converse {
        stream: bool,
    },
    /// SageMaker InvokeEndpoint (`stream`: WithResponseStream).
    Sagemaker {
        stream: bool,
    },
}

pub(crate) async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Response<FakeBody> {
    let shared = &conn.shared;
    let path = req.uri().path();
    if req.method() == Method::POST
        && let Some(kind) = cloud::route(&shared.cfg.protocol, path)
    {
        return infer(&conn, kind, req).await;
    }
    if !path.starts_with("/_control/")
        && let Some(token) = &shared.cfg.bearer
    {
        let presented = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented != Some(token.as_str()) {
            shared.auth_failures.fetch_add(1, Ordering::Relaxed);
            return json(
                shared,
                StatusCode::UNAUTHORIZED,
                openai::error_json("missing or wrong API key", "invalid_request_error"),
            );
        }
    }
    let kind = match (req.method(), path) {
        (_, p) if p.starts_with("/_control/") => return control::handle(shared, req).await,
        (&Method::POST, "/v1/chat/completions") => Kind::Chat,
        (&Method::POST, "/v1/completions") => Kind::Completion,
        (&Method::POST, "/v1/embeddings") => Kind::Embedding,
        (&Method::GET, "/health" | "/v2/health/live" | "/v2/health/ready" | "/v1/models")
            if shared.probes_fail.load(Ordering::Relaxed) =>
        {
            return text(shared, StatusCode::SERVICE_UNAVAILABLE, "unhealthy");
        }
        (&Method::GET, "/health" | "/v2/health/live" | "/v2/health/ready") => {
            return text(shared, StatusCode::OK, "ok");
        }
        (&Method::GET, "/v1/models") => return openai::models(shared),
        (&Method::GET, "/metrics") => return gpu::metrics(shared),
        (m, p) if p.starts_with("/v2/models/") => match kserve::route(m, p) {
            kserve::Route::Infer => Kind::Kserve,
            kserve::Route::Metadata(name) => return kserve::metadata(shared, &name),
            kserve::Route::Ready => return text(shared, StatusCode::OK, ""),
            kserve::Route::NotFound => {
                return json(
                    shared,
                    StatusCode::NOT_FOUND,
                    r#"{"error":"no such endpoint"}"#.into(),
                );
            }
        },
        _ => {
            return json(
                shared,
                StatusCode::NOT_FOUND,
                openai::error_json("no such endpoint", "invalid_request_error"),
            );
        }
    };
    infer(&conn, kind, req).await
}

async fn infer(conn: &Conn, kind: Kind, req: Request<Incoming>) -> Response<FakeBody> {
    let shared = &conn.shared;
    shared.hits.fetch_add(1, Ordering::Relaxed);
    let mut slot = Slot::take(shared);
    let (parts, body) = req.into_parts();
    let model_from_path = (kind == Kind::Kserve).then(|| kserve::model_name(parts.uri.path()));
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(shared, kind, StatusCode::BAD_REQUEST, "could not read body");
    };
    if shared.record.load(Ordering::Relaxed) {
        record(shared, &parts, &body);
    }
    if let Some(refused) = cloud::verify(shared, &parts, &body) {
        shared.auth_failures.fetch_add(1, Ordering::Relaxed);
        return refused;
    }
    if shared
        .cfg
        .max_concurrency
        .is_some_and(|max| slot.count > max)
    {
        return busy(
            shared,
            kind,
            StatusCode::TOO_MANY_REQUESTS,
            Some(1),
            "replica is at capacity",
        );
    }
    let fault = shared.fault.pick();
    if let Some(resp) = refuse(conn, kind, fault.as_ref(), &body).await {
        return resp;
    }
    match shared.admission.admit().await {
        Ok(permit) => slot.permit = permit,
        Err(_) => {
            let msg = "replica queue is full";
            return busy(shared, kind, StatusCode::TOO_MANY_REQUESTS, Some(1), msg);
        }
    }
    shared.pass_gate().await;
    if should_fail(shared) {
        return error(
            shared,
            kind,
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected failure",
        );
    }
    let prefill = shared
        .gpu
        .as_ref()
        .and_then(|g| g.plan(kind, &body, &shared.cfg.model));
    let latency = Duration::from_micros(shared.latency_us.load(Ordering::Relaxed));
    let wait = latency + prefill.as_ref().map_or(Duration::ZERO, Gpu::wait);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if let (Some(g), Some(p)) = (&shared.gpu, &prefill) {
        g.commit(p);
    }
    let resp = answer(shared, kind, &body, slot, fault.as_ref(), model_from_path).await;
    match prefill {
        Some(p) => gpu::annotate(resp, &p),
        None => resp,
    }
}

/// The answer proper, once admitted and past latency and prefill.
async fn answer(
    shared: &Arc<Shared>,
    kind: Kind,
    body: &Bytes,
    slot: Slot,
    fault: Option<&Fault>,
    model_from_path: Option<String>,
) -> Response<FakeBody> {
    match kind {
        Kind::Kserve => {
            if let Some(Fault::SlowFirstToken { delay_ms }) = fault {
                tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
            }
            kserve::infer(shared, model_from_path.as_deref().unwrap_or(""), body)
        }
        Kind::Converse { stream } => converse::answer(shared, stream, body, slot, fault),
        Kind::Sagemaker { stream } => converse::sagemaker(shared, stream, body, slot, fault).await,
        _ => openai::answer(shared, kind, body, slot, fault).await,
    }
}

/// The faults that answer (or never do) without generating anything.
async fn refuse(
    conn: &Conn,
    kind: Kind,
    fault: Option<&Fault>,
    body: &[u8],
) -> Option<Response<FakeBody>> {
    let shared = &conn.shared;
    match fault? {
        Fault::Error { status } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(error(shared, kind, status, "injected failure"))
        }
        Fault::RateLimited { retry_after_secs } => {
            let msg = "rate limit reached";
            let status = StatusCode::TOO_MANY_REQUESTS;
            Some(busy(shared, kind, status, *retry_after_secs, msg))
        }
        Fault::ContextLengthExceeded => Some(openai::context_length_exceeded(shared, kind, body)),
        Fault::ResetBeforeHeaders => {
            conn.reset();
            std::future::pending().await
        }
        Fault::Blackhole => std::future::pending().await,
        _ => None,
    }
}

fn record(shared: &Shared, parts: &http::request::Parts, body: &Bytes) {
    let rec = RecordedRequest {
        method: parts.method.clone(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".into(), |p| p.to_string()),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    if let Ok(mut last) = shared.last.lock() {
        *last = Some(rec);
    }
}

/// An error with `Retry-After` when `retry_after` is given.
fn busy(
    shared: &Shared,
    kind: Kind,
    status: StatusCode,
    retry_after: Option<u32>,
    msg: &str,
) -> Response<FakeBody> {
    let mut resp = error(shared, kind, status, msg);
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn should_fail(shared: &Shared) -> bool {
    let forced = shared
        .fail_next
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok();
    let ppm = shared.fail_rate_ppm.load(Ordering::Relaxed);
    forced || (ppm > 0 && fastrand::u32(0..1_000_000) < ppm)
}

pub(crate) fn with_name(shared: &Shared, mut resp: Response<FakeBody>) -> Response<FakeBody> {
    if let Ok(v) = HeaderValue::from_str(&shared.cfg.name) {
        resp.headers_mut().insert("x-fake-replica", v);
    }
    for (name, value) in &shared.cfg.extra_headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}

pub(crate) fn json(shared: &Shared, status: StatusCode, body: String) -> Response<FakeBody> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_name(shared, resp)
}

fn text(shared: &Shared, status: StatusCode, body: &'static str) -> Response<FakeBody> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *resp.status_mut() = status;
    with_name(shared, resp)
}

/// An error in the endpoint's own API shape.
pub(crate) fn error(
    shared: &Shared,
    kind: Kind,
    status: StatusCode,
    msg: &str,
) -> Response<FakeBody> {
    let body = match kind {
        Kind::Kserve => format!(r#"{{"error":{}}}"#, openai::quote(msg)),
        Kind::Converse { .. } | Kind::Sagemaker { .. } => {
            let aws = if status.as_u16() == 429 {
                "ThrottlingException"
            } else if status.is_server_error() {
                "InternalServerException"
            } else {
                "ValidationException"
            };
            return cloud::aws_error(shared, status, aws, msg);
        }
        _ => {
            let ty = if status.is_server_error() {
                "server_error"
            } else {
                "invalid_request_error"
            };
            openai::error_json(msg, ty)
        }
    };
    json(shared, status, body)
}
