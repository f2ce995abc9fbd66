//! Routing a request to an endpoint, and the behaviour knobs every
//! inference endpoint shares (counting, gate, failures, latency).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use tokio::time::Sleep;

use crate::{RecordedRequest, Shared, kserve, openai};

/// Body type of every answer.
pub(crate) type FakeBody = BoxBody<Bytes, Infallible>;

/// Which inference endpoint.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Chat,
    Completion,
    Embedding,
    Kserve,
}

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<FakeBody> {
    let path = req.uri().path();
    let kind = match (req.method(), path) {
        (&Method::POST, "/v1/chat/completions") => Kind::Chat,
        (&Method::POST, "/v1/completions") => Kind::Completion,
        (&Method::POST, "/v1/embeddings") => Kind::Embedding,
        (&Method::GET, "/health" | "/v2/health/live" | "/v2/health/ready") => {
            return text(&shared, StatusCode::OK, "ok");
        }
        (&Method::GET, "/v1/models") => return openai::models(&shared),
        (m, p) if p.starts_with("/v2/models/") => match kserve::route(m, p) {
            kserve::Route::Infer => Kind::Kserve,
            kserve::Route::Metadata(name) => return kserve::metadata(&shared, &name),
            kserve::Route::Ready => return text(&shared, StatusCode::OK, ""),
            kserve::Route::NotFound => {
                return json(
                    &shared,
                    StatusCode::NOT_FOUND,
                    r#"{"error":"no such endpoint"}"#.into(),
                );
            }
        },
        _ => {
            return json(
                &shared,
                StatusCode::NOT_FOUND,
                openai::error_json("no such endpoint", "invalid_request_error"),
            );
        }
    };
    infer(shared, kind, req).await
}

async fn infer(shared: Arc<Shared>, kind: Kind, req: Request<Incoming>) -> Response<FakeBody> {
    shared.hits.fetch_add(1, Ordering::Relaxed);
    let slot = Slot::take(&shared);
    let (parts, body) = req.into_parts();
    let model_from_path = (kind == Kind::Kserve).then(|| kserve::model_name(parts.uri.path()));
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return error(
            &shared,
            kind,
            StatusCode::BAD_REQUEST,
            "could not read body",
        );
    };
    if shared.record.load(Ordering::Relaxed) {
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
    if shared
        .cfg
        .max_concurrency
        .is_some_and(|max| slot.count > max)
    {
        let msg = "replica is at capacity";
        let mut resp = error(&shared, kind, StatusCode::TOO_MANY_REQUESTS, msg);
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return resp;
    }
    shared.pass_gate().await;
    if should_fail(&shared) {
        return error(
            &shared,
            kind,
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected failure",
        );
    }
    let latency = shared.latency_us.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_micros(latency)).await;
    }
    match kind {
        Kind::Kserve => kserve::infer(&shared, model_from_path.as_deref().unwrap_or(""), &body),
        _ => openai::answer(&shared, kind, &body, slot),
    }
}

fn should_fail(shared: &Shared) -> bool {
    let forced = shared
        .fail_next
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok();
    let ppm = shared.fail_rate_ppm.load(Ordering::Relaxed);
    forced || (ppm > 0 && fastrand::u32(0..1_000_000) < ppm)
}

/// One request counted in `in_flight`; released on drop (for streams, when
/// the body is dropped: after the last chunk or when the client leaves).
pub(crate) struct Slot {
    shared: Arc<Shared>,
    count: u32,
}

impl Slot {
    fn take(shared: &Arc<Shared>) -> Self {
        let count = shared.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        Self {
            shared: Arc::clone(shared),
            count,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An SSE body: pre-rendered events, `gap` apart, holding the slot.
pub(crate) struct EventStream {
    pub(crate) events: VecDeque<Bytes>,
    pub(crate) gap: Duration,
    pub(crate) sleep: Option<Pin<Box<Sleep>>>,
    pub(crate) _slot: Slot,
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(sleep) = self.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
        }
        let Some(event) = self.events.pop_front() else {
            return Poll::Ready(None);
        };
        if !self.gap.is_zero() && !self.events.is_empty() {
            self.sleep = Some(Box::pin(tokio::time::sleep(self.gap)));
        }
        Poll::Ready(Some(Ok(Frame::data(event))))
    }

    fn is_end_stream(&self) -> bool {
        self.events.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

pub(crate) fn with_name(shared: &Shared, mut resp: Response<FakeBody>) -> Response<FakeBody> {
    if let Ok(v) = HeaderValue::from_str(&shared.cfg.name) {
        resp.headers_mut().insert("x-fake-replica", v);
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
