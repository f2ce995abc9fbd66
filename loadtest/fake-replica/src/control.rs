//! The replica's control endpoints, so that a replica running as its own
//! process (`switchyard-loadtest replica`) can be given faults mid-scenario:
//!
//! - `PUT /_control/fault` with a [`FaultRule`] as JSON sets the fault and
//!   answers 200 with the rule; bad JSON answers 400 `{"error":"<reason>"}`.
//! - `GET /_control/fault` answers the rule in force, or `null`.
//! - `DELETE /_control/fault` clears it (204).
//! - `PUT /_control/probes` with `{"fail": true}` makes the health
//!   endpoints answer 503 (inference unaffected); `{"fail": false}` undoes it.
//! - `GET /_control/stats` answers `{"hits":N,"in_flight":N,"queued":N,"fault":<rule or null>}`.
//!
//! Control requests are not inference requests: they are not counted,
//! recorded, held or faulted.

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::atomic::Ordering;

use crate::Shared;
use crate::fault::FaultRule;
use crate::handler::{FakeBody, json};
use crate::openai::quote;

/// Answers a `/_control/...` request.
pub(crate) async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<FakeBody> {
    match (req.method(), req.uri().path()) {
        (&Method::PUT, "/_control/fault") => put_fault(shared, req).await,
        (&Method::GET, "/_control/fault") => json(shared, StatusCode::OK, fault_json(shared)),
        (&Method::DELETE, "/_control/fault") => {
            shared.fault.clear();
            let mut resp = json(shared, StatusCode::NO_CONTENT, String::new());
            resp.headers_mut().remove(http::header::CONTENT_TYPE);
            resp
        }
        (&Method::PUT, "/_control/probes") => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            match body
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                Some(v) if v["fail"].is_boolean() => {
                    let fail = v["fail"].as_bool().unwrap_or(false);
                    shared.probes_fail.store(fail, Ordering::Relaxed);
                    json(shared, StatusCode::OK, format!(r#"{{"fail":{fail}}}"#))
                }
                _ => json(
                    shared,
                    StatusCode::BAD_REQUEST,
                    r#"{"error":"expected {\"fail\": true|false}"}"#.into(),
                ),
            }
        }
        (&Method::GET, "/_control/stats") => {
            let body = format!(
                r#"{{"hits":{},"in_flight":{},"queued":{},"fault":{}}}"#,
                shared.hits.load(Ordering::Relaxed),
                shared.in_flight.load(Ordering::Acquire),
                shared.admission.queued(),
                fault_json(shared)
            );
            json(shared, StatusCode::OK, body)
        }
        _ => json(
            shared,
            StatusCode::NOT_FOUND,
            r#"{"error":"no such control endpoint"}"#.into(),
        ),
    }
}

async fn put_fault(shared: &Shared, req: Request<Incoming>) -> Response<FakeBody> {
    let bad = |msg: &str| {
        let body = format!(r#"{{"error":{}}}"#, quote(msg));
        json(shared, StatusCode::BAD_REQUEST, body)
    };
    let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
        return bad("could not read body");
    };
    match serde_json::from_slice::<FaultRule>(&body) {
        Ok(rule) => {
            shared.fault.set(rule);
            json(shared, StatusCode::OK, fault_json(shared))
        }
        Err(e) => bad(&e.to_string()),
    }
}

/// The rule in force as JSON, `null` when none.
fn fault_json(shared: &Shared) -> String {
    serde_json::to_string(&shared.fault.get()).unwrap_or_else(|_| "null".into())
}
