//! SageMaker Runtime: InvokeEndpoint and InvokeEndpointWithResponseStream,
//! signed with SigV4 (service `sagemaker`).
//!
//! LLM containers on SageMaker (vLLM, LMI, TGI's Messages API) take and
//! return OpenAI-shaped payloads, so the body passes through (with the
//! model name swapped); only the path, the signature and the streaming
//! framing change. A streamed answer arrives as AWS event-stream
//! `PayloadPart` frames whose payloads are the container's own SSE bytes:
//! they are unwrapped and forwarded as they are. A `ModelStreamError` or
//! `InternalStreamFailure`, a broken frame, or an end without `[DONE]` /
//! `finish_reason` ends the stream with an in-band error event.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::HeaderValue as EsValue;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use switchyard_config::AwsCredentials;

use super::whole::Whole;
use super::{Adapter, Call, converse, sigv4, unsupported};
use crate::body::{BoxError, ProxyBody};
use crate::error::ProxyError;
use crate::openai;
use crate::sse::SseWatch;

/// Settings of one SageMaker endpoint.
#[derive(Debug)]
pub struct Sagemaker {
    /// `/endpoints/{name}/invocations`.
    path: String,
    region: String,
    credentials: AwsCredentials,
}

impl Sagemaker {
    /// From the validated `replicas[i].aws` (endpoint name checked URL-safe).
    pub fn new(cfg: &switchyard_config::Sagemaker) -> Self {
        Self {
            path: format!("/endpoints/{}/invocations", cfg.endpoint_name),
            region: cfg.region.clone(),
            credentials: cfg.credentials.clone(),
        }
    }
}

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

impl Adapter for Sagemaker {
    fn name(&self) -> &'static str {
        "sagemaker"
    }

    fn prepare(&self, call: &Call<'_>, model_name: &str) -> Result<(String, Bytes), ProxyError> {
        if !matches!(call.path, "/v1/chat/completions" | "/v1/completions") {
            return Err(unsupported(format!(
                "{} is not available on sagemaker replicas (chat and text completions only)",
                call.path
            )));
        }
        let path = if call.head.stream {
            format!("{}-response-stream", self.path)
        } else {
            self.path.clone()
        };
        Ok((
            path,
            openai::rewrite_model(call.body, call.head, model_name),
        ))
    }

    fn authorize(&self, req: &mut Request<Full<Bytes>>, body: &Bytes) -> Result<(), String> {
        let h = req.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        sigv4::sign_request(
            req,
            body,
            &self.credentials,
            &self.region,
            "sagemaker",
            sigv4::signing_time(),
        )
    }

    fn respond(&self, status: StatusCode, headers: &mut HeaderMap, body: ProxyBody) -> ProxyBody {
        let is_stream = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(EVENT_STREAM.as_bytes()));
        if status.is_success() && !is_stream {
            return body;
        }
        headers.remove(header::CONTENT_LENGTH);
        if status.is_success() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            return PayloadParts::new(body).boxed();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let error_type = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let status = status.as_u16();
        Whole::new(
            body,
            Box::new(move |bytes| {
                let e = converse::error(status, error_type.as_deref(), bytes);
                Bytes::from(e.to_string().replacen("bedrock: ", "sagemaker: ", 1))
            }),
        )
        .boxed()
    }
}

/// Unwraps `PayloadPart` frames into the container's SSE bytes.
struct PayloadParts {
    inner: ProxyBody,
    buf: BytesMut,
    decoder: MessageFrameDecoder,
    watch: SseWatch,
    done: bool,
}

impl PayloadParts {
    fn new(inner: ProxyBody) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            decoder: MessageFrameDecoder::new(),
            watch: SseWatch::default(),
            done: false,
        }
    }

    fn fail(&mut self, message: &str) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.done = true;
        Poll::Ready(Some(Ok(Frame::data(crate::body::sse_error_event(message)))))
    }
}

impl Body for PayloadParts {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            let mut out = BytesMut::new();
            loop {
                match this.decoder.decode_frame(&mut this.buf) {
                    Ok(DecodedFrame::Complete(msg)) => {
                        let header = |name: &str| {
                            msg.headers()
                                .iter()
                                .find(|h| h.name().as_str() == name)
                                .and_then(|h| match h.value() {
                                    EsValue::String(s) => Some(s.as_str().to_owned()),
                                    _ => None,
                                })
                        };
                        if header(":message-type").as_deref() == Some("event") {
                            if header(":event-type").as_deref() == Some("PayloadPart") {
                                out.extend_from_slice(msg.payload());
                            }
                            continue;
                        }
                        let kind = header(":exception-type").unwrap_or_else(|| "error".into());
                        let detail = String::from_utf8_lossy(msg.payload()).into_owned();
                        if !out.is_empty() {
                            this.buf.clear();
                            this.watch.feed(&out);
                            this.done = true;
                            let mut out = out;
                            out.extend_from_slice(&crate::body::sse_error_event(&format!(
                                "sagemaker {kind}: {detail}"
                            )));
                            return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
                        }
                        return this.fail(&format!("sagemaker {kind}: {detail}"));
                    }
                    Ok(DecodedFrame::Incomplete) => break,
                    Err(e) => return this.fail(&format!("sagemaker stream is malformed: {e}")),
                }
            }
            if !out.is_empty() {
                this.watch.feed(&out);
                return Poll::Ready(Some(Ok(Frame::data(out.freeze()))));
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return this.fail(&format!("replica stream failed: {e}")),
                None if this.watch.finished() => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                None => {
                    return this.fail(
                        "replica ended the stream without finishing it (no [DONE], no finish_reason)",
                    );
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
