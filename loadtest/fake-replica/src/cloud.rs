//! The managed clouds the fake can pretend to be: which protocol, with which
//! known test credentials, and checking them the way the cloud would.
//!
//! - `azure_openai`: `/openai/deployments/{d}/{chat/completions|completions|embeddings}`
//!   with `api-version` required and `api-key` (or `Authorization: Bearer`)
//!   equal to the configured key; otherwise Azure's error JSON (401 / 400).
//! - `bedrock`: `/model/{id}/converse` and `/model/{id}/converse-stream`,
//!   the SigV4 signature recomputed from the request with the known keys
//!   (see [`crate::sigv4`]); a mismatch is AWS's 403.

use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};

use crate::Shared;
use crate::handler::{FakeBody, Kind, json};

/// Azure key the fake accepts by default.
pub const TEST_AZURE_API_KEY: &str = "fake-azure-api-key";
/// AWS access key id the fake accepts by default.
pub const TEST_AWS_ACCESS_KEY_ID: &str = "AKIDFAKEREPLICA0000";
/// AWS secret key the fake verifies signatures with by default.
pub const TEST_AWS_SECRET_ACCESS_KEY: &str = "fake/Replica+Secret/Key0000000000000000";
/// AWS region the fake expects in the credential scope by default.
pub const TEST_AWS_REGION: &str = "us-east-1";

/// The API the fake replica speaks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum FakeProtocol {
    /// OpenAI-compatible (and KServe v2), no auth: vLLM, TGI, Triton.
    #[default]
    OpenAi,
    /// Azure OpenAI, requiring this key.
    AzureOpenAi {
        /// The `api-key` (or bearer token) that is accepted.
        api_key: String,
    },
    /// AWS Bedrock Runtime Converse, requiring SigV4 with these keys.
    Bedrock {
        /// Accepted access key id.
        access_key_id: String,
        /// Secret the signature is recomputed with.
        secret_access_key: String,
        /// Required `x-amz-security-token`, for temporary credentials.
        session_token: Option<String>,
        /// Region of the credential scope.
        region: String,
    },
    /// SageMaker Runtime InvokeEndpoint(WithResponseStream) of an
    /// OpenAI-compatible container, requiring SigV4 (service `sagemaker`).
    Sagemaker {
        /// Accepted access key id.
        access_key_id: String,
        /// Secret the signature is recomputed with.
        secret_access_key: String,
        /// Region of the credential scope.
        region: String,
    },
}

impl FakeProtocol {
    /// Azure OpenAI with [`TEST_AZURE_API_KEY`].
    pub fn azure() -> Self {
        FakeProtocol::AzureOpenAi {
            api_key: TEST_AZURE_API_KEY.into(),
        }
    }

    /// Bedrock with the `TEST_AWS_*` keys and region, no session token.
    pub fn bedrock() -> Self {
        FakeProtocol::Bedrock {
            access_key_id: TEST_AWS_ACCESS_KEY_ID.into(),
            secret_access_key: TEST_AWS_SECRET_ACCESS_KEY.into(),
            session_token: None,
            region: TEST_AWS_REGION.into(),
        }
    }

    /// SageMaker with the `TEST_AWS_*` keys and region.
    pub fn sagemaker() -> Self {
        FakeProtocol::Sagemaker {
            access_key_id: TEST_AWS_ACCESS_KEY_ID.into(),
            secret_access_key: TEST_AWS_SECRET_ACCESS_KEY.into(),
            region: TEST_AWS_REGION.into(),
        }
    }

    /// The CLI spelling: `openai`, `azure_openai`, `bedrock` or `sagemaker` (test keys).
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "openai" => Ok(FakeProtocol::OpenAi),
            "azure_openai" => Ok(Self::azure()),
            "bedrock" => Ok(Self::bedrock()),
            "sagemaker" => Ok(Self::sagemaker()),
            other => Err(format!(
                "unknown protocol `{other}` (expected openai, azure_openai, bedrock or sagemaker)"
            )),
        }
    }
}

/// Which endpoint a cloud path names, or `None` when it names none (404).
pub(crate) fn route(protocol: &FakeProtocol, path: &str) -> Option<Kind> {
    match protocol {
        FakeProtocol::OpenAi => None,
        FakeProtocol::AzureOpenAi { .. } => {
            let rest = path.strip_prefix("/openai/deployments/")?;
            let (_deployment, op) = rest.split_once('/')?;
            match op {
                "chat/completions" => Some(Kind::Chat),
                "completions" => Some(Kind::Completion),
                "embeddings" => Some(Kind::Embedding),
                _ => None,
            }
        }
        FakeProtocol::Bedrock { .. } => {
            let rest = path.strip_prefix("/model/")?;
            let (_model, op) = rest.rsplit_once('/')?;
            match op {
                "converse" => Some(Kind::Converse { stream: false }),
                "converse-stream" => Some(Kind::Converse { stream: true }),
                _ => None,
            }
        }
        FakeProtocol::Sagemaker { .. } => {
            let rest = path.strip_prefix("/endpoints/")?;
            let (_endpoint, op) = rest.split_once('/')?;
            match op {
                "invocations" => Some(Kind::Sagemaker { stream: false }),
                "invocations-response-stream" => Some(Kind::Sagemaker { stream: true }),
                _ => None,
            }
        }
    }
}

/// Checks the request's credentials as the cloud would; `Some` is the refusal.
pub(crate) fn verify(shared: &Shared, parts: &Parts, body: &[u8]) -> Option<Response<FakeBody>> {
    match &shared.cfg.protocol {
        FakeProtocol::OpenAi => None,
        FakeProtocol::AzureOpenAi { api_key } => azure_verify(shared, parts, api_key),
        FakeProtocol::Bedrock {
            access_key_id,
            secret_access_key,
            session_token,
            region,
        } => {
            let keys = crate::sigv4::Keys {
                access_key_id,
                secret_access_key,
                session_token: session_token.as_deref(),
                region,
                service: "bedrock",
            };
            crate::sigv4::verify(parts, body, &keys)
                .err()
                .map(|(kind, message)| aws_error(shared, StatusCode::FORBIDDEN, kind, &message))
        }
        FakeProtocol::Sagemaker {
            access_key_id,
            secret_access_key,
            region,
        } => {
            let keys = crate::sigv4::Keys {
                access_key_id,
                secret_access_key,
                session_token: None,
                region,
                service: "sagemaker",
            };
            crate::sigv4::verify(parts, body, &keys)
                .err()
                .map(|(kind, message)| aws_error(shared, StatusCode::FORBIDDEN, kind, &message))
        }
    }
}

fn azure_verify(shared: &Shared, parts: &Parts, api_key: &str) -> Option<Response<FakeBody>> {
    let presented = parts
        .headers
        .get("api-key")
        .map(HeaderValue::as_bytes)
        .or_else(|| {
            parts
                .headers
                .get(http::header::AUTHORIZATION)?
                .as_bytes()
                .strip_prefix(b"Bearer ")
        });
    if presented != Some(api_key.as_bytes()) {
        let body = r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#;
        return Some(json(shared, StatusCode::UNAUTHORIZED, body.into()));
    }
    let has_version = parts.uri.query().is_some_and(|q| {
        q.split('&').any(|kv| {
            kv.strip_prefix("api-version=")
                .is_some_and(|v| !v.is_empty())
        })
    });
    if !has_version {
        let body = r#"{"error":{"code":"BadRequest","message":"Missing required query parameter: api-version"}}"#;
        return Some(json(shared, StatusCode::BAD_REQUEST, body.into()));
    }
    None
}

/// AWS's JSON error: `{"message": ...}` and `x-amzn-ErrorType`.
pub(crate) fn aws_error(
    shared: &Shared,
    status: StatusCode,
    kind: &str,
    message: &str,
) -> Response<FakeBody> {
    let body = format!(r#"{{"message":{}}}"#, crate::openai::quote(message));
    let mut resp = json(shared, status, body);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{kind}:http://internal.amazon.com/coral/com.amazon.coral.service/"
    )) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}
