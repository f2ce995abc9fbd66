//! The data plane's one error type, and the one edge that turns it into an
//! HTTP answer in the client's own API shape.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use switchyard_router::RouteError;

use crate::body::{BoxError, ProxyBody, full};

/// An error and its sources, `: `-joined: hyper's top line alone
/// (`client error (SendRequest)`) does not say what failed.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let line = s.to_string();
        if !out.ends_with(&line) {
            out.push_str(": ");
            out.push_str(&line);
        }
        source = s.source();
    }
    out
}

fn earlier_attempts(earlier: &[String]) -> String {
    if earlier.is_empty() {
        return String::new();
    }
    format!(" (earlier attempts: {})", earlier.join("; "))
}

/// Which API the client spoke; decides the error JSON shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI: `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// KServe v2: `{"error": "message"}`.
    KserveV2,
}

impl Api {
    /// Paths under `/v2/` speak KServe; everything else answers like OpenAI.
    pub fn for_path(path: &str) -> Self {
        if path.starts_with("/v2/") {
            Api::KserveV2
        } else {
            Api::OpenAi
        }
    }
}

/// Everything that can stop a request before a replica's answer reaches the client.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Routing found no replica (unknown model, no capacity, ...).
    #[error(transparent)]
    Route(#[from] RouteError),
    /// No such endpoint.
    #[error("no route for {method} {path}")]
    NotFound {
        /// Request method.
        method: http::Method,
        /// Request path.
        path: String,
    },
    /// The endpoint exists but not with this method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed {
        /// Request method.
        method: http::Method,
        /// Request path.
        path: String,
    },
    /// A CORS preflight from an origin `server.cors` does not allow.
    #[error("origin `{origin}` may not call this API (server.cors.allow_origins)")]
    OriginNotAllowed {
        /// The `Origin` header, as sent.
        origin: String,
    },
    /// The request body is not what the API expects.
    #[error("{message}")]
    BadRequest {
        /// What is wrong, naming the field.
        message: String,
        /// The request field at fault, when there is one.
        param: Option<&'static str>,
    },
    /// No API key, or one no tenant has.
    #[error("{message}")]
    Unauthorized {
        /// What was wrong (never the key).
        message: String,
    },
    /// A valid token whose claims name no configured tenant.
    #[error("{message}")]
    UnknownTenant {
        /// Which claim named what (never the token).
        message: String,
    },
    /// The tenant may not call this model group.
    #[error("tenant `{tenant}` may not call model `{model}`")]
    ModelNotAllowed {
        /// The caller's tenant.
        tenant: String,
        /// The group asked for.
        model: String,
    },
    /// The tenant may not reach any cloud the request could go to
    /// (`tenants[i].clouds`, with `x-switchyard-clouds`).
    #[error("tenant `{tenant}` may not reach clouds `{asked}` (allowed: {allowed})")]
    CloudNotAllowed {
        /// The caller's tenant.
        tenant: String,
        /// The request's `x-switchyard-clouds`, or `any`.
        asked: String,
        /// The tenant's `clouds`.
        allowed: String,
    },
    /// The fleet's shared counters (`global_limits`, Redis) cannot be
    /// reached and the tenant's limits fail closed.
    #[error(
        "the limits of {who} are shared by the gateway fleet and their store is unreachable; they fail closed (tenants[].on_redis_unavailable)"
    )]
    GlobalLimitsUnavailable {
        /// ``tenant `a` ``.
        who: String,
    },
    /// The tenant, or the key, reached one of its rate limits.
    #[error("{who} is over its {what} limit")]
    TenantLimited {
        /// ``tenant `a` `` or ``key `k` of tenant `a` ``.
        who: String,
        /// `requests_per_minute`, `tokens_per_minute` or `concurrency`.
        what: &'static str,
        /// Seconds until a retry may pass.
        retry_after: u32,
    },
    /// The tenant, or the key, has spent its budget for the UTC day or month.
    #[error(
        "{who} has used its {window} budget of {budget} USD; it renews at the start of the next UTC {}",
        if *window == "daily" { "day" } else { "month" }
    )]
    QuotaExceeded {
        /// ``tenant `a` `` or ``key `k` of tenant `a` ``.
        who: String,
        /// `daily` or `monthly`.
        window: &'static str,
        /// The budget, USD.
        budget: f64,
        /// Seconds until the window renews.
        retry_after: u32,
    },
    /// The body is larger than `server.limits.max_body_bytes`.
    #[error("request body is larger than the limit of {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The client did not send its body within `server.limits.body_read_timeout_ms`.
    #[error("request body was not received within {ms} ms")]
    BodyTimeout {
        /// The configured timeout.
        ms: u128,
    },
    /// The request's HTTP/1 framing is broken or ambiguous (a bad head,
    /// conflicting lengths, a transfer coding other than `chunked`, a bad
    /// chunk): answered by the connection itself, never forwarded.
    #[error("malformed HTTP request: {message}")]
    MalformedRequest {
        /// What is wrong, naming the header or part.
        message: String,
    },
    /// The request head is larger than `server.limits.max_header_bytes`
    /// or has more header lines than the gateway reads.
    #[error("{message}")]
    HeadTooLarge {
        /// Which limit, with its value.
        message: String,
    },
    /// The request head did not arrive within `server.limits.header_read_timeout_ms`.
    #[error("request head was not received within {ms} ms (server.limits.header_read_timeout_ms)")]
    HeadTimeout {
        /// The configured timeout.
        ms: u128,
    },
    /// The client's body stream failed.
    #[error("could not read request body: {0}")]
    BodyRead(#[source] BoxError),
    /// Could not reach the replica.
    #[error("replica `{replica}` is unreachable: {}", chain(source.as_ref()))]
    UpstreamConnect {
        /// Replica id.
        replica: String,
        /// Transport error.
        #[source]
        source: BoxError,
    },
    /// The connection to the replica failed after the request was sent
    /// (reset, malformed response) and before response headers arrived,
    /// or the answer broke HTTP (conflicting framing, invalid status, an
    /// unsolicited upgrade, a body cut short) before anything was passed on.
    #[error("replica `{replica}` failed before answering: {}", chain(source.as_ref()))]
    UpstreamFailed {
        /// Replica id.
        replica: String,
        /// Transport or protocol error.
        #[source]
        source: BoxError,
    },
    /// The replica did not answer within the request deadline.
    #[error("replica `{replica}` did not answer within {ms} ms")]
    UpstreamTimeout {
        /// Replica id.
        replica: String,
        /// The deadline.
        ms: u128,
    },
    /// A streamed answer's headers came but its first event did not, within
    /// `first_token_timeout_ms` of the attempt's start.
    #[error("replica `{replica}` sent no first token within {ms} ms{}", usual_note(*usual_ms))]
    FirstTokenTimeout {
        /// Replica id.
        replica: String,
        /// The wait allowed.
        ms: u128,
        /// Set when the adaptive deadline cut it short: the replica's usual
        /// time to first event, in milliseconds.
        usual_ms: Option<u128>,
    },
    /// Request bodies held for replay already fill `max_buffered_bytes`.
    #[error(
        "the gateway's request buffer budget ({limit} bytes, server.limits.max_buffered_bytes) is exhausted; retry shortly"
    )]
    BufferBudget {
        /// The configured budget.
        limit: usize,
    },
    /// Every replica stayed full for the group's whole queue timeout.
    #[error("all replicas of model `{model}` stayed at capacity for {ms} ms; request shed")]
    QueueTimeout {
        /// The model the client named.
        model: String,
        /// How long it waited.
        ms: u128,
    },
    /// Every attempt failed: the last attempt's error decides the answer,
    /// and the message lists what each earlier attempt ran into.
    #[error("{last}{}", earlier_attempts(earlier))]
    Attempts {
        /// The last attempt's error.
        last: Box<ProxyError>,
        /// What each earlier attempt ran into, in order.
        earlier: Vec<String>,
        /// The replica the last attempt went to.
        replica: String,
        /// How many attempts were made.
        attempts: usize,
    },
    /// The gateway could not put the replica's credentials on the request
    /// (a credential file is missing, AWS keys are not configured). The
    /// reason names the file or setting, never a credential's value.
    #[error("cannot authenticate to replica `{replica}`: {reason}")]
    UpstreamCredentials {
        /// Replica id.
        replica: String,
        /// What is missing.
        reason: String,
    },
}

impl ProxyError {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Attempts { last, .. } => last.status(),
            ProxyError::Route(r) => match r {
                RouteError::UnknownModel { .. }
                | RouteError::UnknownVersion { .. }
                | RouteError::WrongProtocol { .. } => StatusCode::NOT_FOUND,
                RouteError::NoCapacity { .. } => StatusCode::TOO_MANY_REQUESTS,
                RouteError::OutsideResidency { .. } => StatusCode::SERVICE_UNAVAILABLE,
            },
            ProxyError::NotFound { .. } => StatusCode::NOT_FOUND,
            ProxyError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ProxyError::ModelNotAllowed { .. }
            | ProxyError::CloudNotAllowed { .. }
            | ProxyError::OriginNotAllowed { .. }
            | ProxyError::UnknownTenant { .. } => StatusCode::FORBIDDEN,
            ProxyError::TenantLimited { .. } | ProxyError::QuotaExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ProxyError::GlobalLimitsUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::BadRequest { .. }
            | ProxyError::BodyRead(_)
            | ProxyError::MalformedRequest { .. } => StatusCode::BAD_REQUEST,
            ProxyError::HeadTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::HeadTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ProxyError::UpstreamConnect { .. }
            | ProxyError::UpstreamFailed { .. }
            | ProxyError::UpstreamCredentials { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout { .. } | ProxyError::FirstTokenTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ProxyError::BufferBudget { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::QueueTimeout { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// Seconds the client should wait before retrying, for overload answers.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ProxyError::Attempts { last, .. } => last.retry_after(),
            ProxyError::Route(RouteError::NoCapacity { .. }) | ProxyError::QueueTimeout { .. } => {
                Some(1)
            }
            ProxyError::BufferBudget { .. } | ProxyError::GlobalLimitsUnavailable { .. } => Some(1),
            ProxyError::TenantLimited { retry_after, .. }
            | ProxyError::QuotaExceeded { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether another replica might succeed where this attempt failed.
    /// Only failures before any response byte reached the client get here.
    pub fn is_retryable(&self) -> bool {
        if let ProxyError::Attempts { last, .. } = self {
            return last.is_retryable();
        }
        matches!(
            self,
            ProxyError::UpstreamConnect { .. }
                | ProxyError::UpstreamFailed { .. }
                | ProxyError::UpstreamCredentials { .. }
                | ProxyError::UpstreamTimeout { .. }
                | ProxyError::FirstTokenTimeout { .. }
        )
    }

    /// Fixed label for logs and metrics (never request-derived).
    pub fn label(&self) -> &'static str {
        match self {
            ProxyError::Attempts { last, .. } => last.label(),
            ProxyError::Route(r) => r.label(),
            ProxyError::NotFound { .. } => "not_found",
            ProxyError::Unauthorized { .. } => "invalid_api_key",
            ProxyError::ModelNotAllowed { .. } => "model_not_allowed",
            ProxyError::CloudNotAllowed { .. } => "cloud_not_allowed",
            ProxyError::UnknownTenant { .. } => "unknown_tenant",
            ProxyError::OriginNotAllowed { .. } => "origin_not_allowed",
            ProxyError::TenantLimited { .. } => "tenant_limited",
            ProxyError::QuotaExceeded { .. } => "insufficient_quota",
            ProxyError::GlobalLimitsUnavailable { .. } => "global_limits_unavailable",
            ProxyError::MethodNotAllowed { .. } => "method_not_allowed",
            ProxyError::BadRequest { .. } => "bad_request",
            ProxyError::BodyTooLarge { .. } => "body_too_large",
            ProxyError::BodyTimeout { .. } => "body_timeout",
            ProxyError::BodyRead(_) => "body_read",
            ProxyError::MalformedRequest { .. } => "malformed_request",
            ProxyError::HeadTooLarge { .. } => "request_head_too_large",
            ProxyError::HeadTimeout { .. } => "request_head_timeout",
            ProxyError::UpstreamConnect { .. } => "upstream_connect",
            ProxyError::UpstreamFailed { .. } => "upstream_failed",
            ProxyError::UpstreamTimeout { .. } => "upstream_timeout",
            ProxyError::FirstTokenTimeout { .. } => "first_token_timeout",
            ProxyError::BufferBudget { .. } => "buffer_budget_exhausted",
            ProxyError::UpstreamCredentials { .. } => "upstream_credentials",
            ProxyError::QueueTimeout { .. } => "queue_timeout",
        }
    }

    /// OpenAI's `error.type` for this error.
    fn openai_type(&self) -> &'static str {
        match self.status().as_u16() {
            429 if matches!(self, ProxyError::QuotaExceeded { .. }) => "insufficient_quota",
            404 if matches!(self, ProxyError::Route(_)) => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        }
    }

    /// OpenAI's `error.code` for this error.
    fn openai_code(&self) -> &'static str {
        match self {
            ProxyError::Attempts { last, .. } => last.openai_code(),
            ProxyError::Route(
                RouteError::UnknownModel { .. } | RouteError::UnknownVersion { .. },
            ) => "model_not_found",
            ProxyError::Route(RouteError::NoCapacity { .. })
            | ProxyError::QueueTimeout { .. }
            | ProxyError::TenantLimited { .. } => "rate_limit_exceeded",
            ProxyError::Route(RouteError::OutsideResidency { .. }) => {
                "no_replica_in_allowed_clouds"
            }
            other => other.label(),
        }
    }

    fn param(&self) -> Option<&'static str> {
        match self {
            ProxyError::Attempts { last, .. } => last.param(),
            ProxyError::BadRequest { param, .. } => *param,
            ProxyError::Route(_) | ProxyError::ModelNotAllowed { .. } => Some("model"),
            _ => None,
        }
    }

    /// The answer the client sees: status, `Retry-After` when useful, and the
    /// API's own error JSON. Messages never contain secrets: upstream auth
    /// lives only in headers we build, and no error here formats a header.
    pub fn into_response(self, api: Api) -> Response<ProxyBody> {
        let status = self.status();
        let message = self.to_string();
        let body = match api {
            Api::OpenAi => serde_json::json!({
                "error": {
                    "message": message,
                    "type": self.openai_type(),
                    "param": self.param(),
                    "code": self.openai_code(),
                }
            }),
            Api::KserveV2 => serde_json::json!({ "error": message }),
        };
        let mut resp = Response::new(full(Bytes::from(body.to_string())));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after() {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ProxyError::Attempts {
            replica, attempts, ..
        } = &self
        {
            h.insert(
                crate::headers::names::X_ATTEMPTS,
                crate::headers::names::attempts_value(*attempts),
            );
            if let Ok(v) = HeaderValue::from_str(replica) {
                h.insert("x-switchyard-replica", v);
            }
        }
        resp
    }
}

/// ` (its usual is 20 ms)` for an attempt the adaptive deadline cut short.
fn usual_note(usual_ms: Option<u128>) -> String {
    usual_ms.map_or_else(String::new, |u| format!(" (its usual is {u} ms)"))
}
