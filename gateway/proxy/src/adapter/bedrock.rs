//! AWS Bedrock Runtime: Converse and ConverseStream, signed with SigV4.
//!
//! `POST /v1/chat/completions` goes to `/model/{modelId}/converse`, or
//! `/model/{modelId}/converse-stream` when the client asked for `stream`;
//! the body is translated ([`converse`]), signed ([`sigv4`], service
//! `bedrock`, the replica's region), and the answer translated back: JSON
//! for JSON, event-stream frames into SSE chunks ([`eventstream`]).
//!
//! Credentials are resolved by config validation (the replica's `aws`
//! section, else the `AWS_*` variables of the loader's environment), so a
//! replica always has them here; a reload resolves them again.

use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use switchyard_config::AwsCredentials;

use super::whole::Whole;
use super::{Adapter, Call, converse, eventstream, sigv4, unsupported};
use crate::body::ProxyBody;
use crate::error::ProxyError;

/// Settings of one Bedrock replica.
#[derive(Debug)]
pub struct Bedrock {
    model_id: String,
    /// `/model/{percent-encoded id}/converse`.
    path: String,
    region: String,
    credentials: AwsCredentials,
}

impl Bedrock {
    /// From the validated `replicas[i].aws`, credentials resolved.
    pub fn new(cfg: &switchyard_config::Bedrock) -> Self {
        Self {
            path: format!("/model/{}/converse", encode(&cfg.model_id)),
            model_id: cfg.model_id.clone(),
            region: cfg.region.clone(),
            credentials: cfg.credentials.clone(),
        }
    }
}

/// Model ids carry `:` (`anthropic.claude-3-haiku-20240307-v1:0`) and
/// ARNs `/`: percent-encode everything but unreserved characters, as the
/// AWS SDKs do for this path label.
fn encode(label: &str) -> String {
    label
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

impl Adapter for Bedrock {
    fn name(&self) -> &'static str {
        "bedrock"
    }

    fn prepare(&self, call: &Call<'_>, _model_name: &str) -> Result<(String, Bytes), ProxyError> {
        if call.path != "/v1/chat/completions" {
            return Err(unsupported(format!(
                "{} is not available on bedrock replicas (chat completions only)",
                call.path
            )));
        }
        let body = converse::request(call.body).map_err(unsupported)?;
        let path = if call.head.stream {
            format!("{}-stream", self.path)
        } else {
            self.path.clone()
        };
        Ok((path, Bytes::from(body)))
    }

    fn authorize(&self, req: &mut Request<Full<Bytes>>, body: &Bytes) -> Result<(), String> {
        let stream = req.uri().path().ends_with("-stream");
        let h = req.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(if stream {
                EVENT_STREAM
            } else {
                "application/json"
            }),
        );
        sigv4::sign_request(
            req,
            body,
            &self.credentials,
            &self.region,
            "bedrock",
            sigv4::signing_time(),
        )
    }

    fn respond(&self, status: StatusCode, headers: &mut HeaderMap, body: ProxyBody) -> ProxyBody {
        let is_stream = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(EVENT_STREAM.as_bytes()));
        headers.remove(header::CONTENT_LENGTH);
        let created = sigv4::signing_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let id = format!("chatcmpl-{:016x}", fastrand::u64(..));
        if status.is_success() && is_stream {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return eventstream::EventStreamToSse::new(body, &self.model_id, id, created).boxed();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if status.is_success() {
            let model = self.model_id.clone();
            return Whole::new(
                body,
                Box::new(move |bytes| {
                    let out = converse::response(bytes, &model, &id, created)
                        .unwrap_or_else(|e| converse::error(502, None, e.as_bytes()));
                    Bytes::from(out.to_string())
                }),
            )
            .boxed();
        }
        let error_type = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = status.as_u16();
        Whole::new(
            body,
            Box::new(move |bytes| {
                Bytes::from(converse::error(status, error_type.as_deref(), bytes).to_string())
            }),
        )
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_are_percent_encoded_in_the_path() {
        assert_eq!(
            encode("anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1%3A0"
        );
        assert_eq!(encode("arn:aws:x/y"), "arn%3Aaws%3Ax%2Fy");
    }
}
