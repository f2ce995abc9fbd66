//! Upstream protocol adapters: how a request the client sent in OpenAI's
//! shape reaches a replica that speaks a managed cloud's API, and how that
//! API's answer comes back in OpenAI's shape.
//!
//! One trait, one implementation per protocol:
//! - [`azure::AzureOpenAi`]: deployment paths and `api-version`; the answer
//!   is OpenAI-shaped already.
//! - [`bedrock::Bedrock`]: Converse / ConverseStream JSON, SigV4 signing,
//!   AWS event-stream framing decoded into SSE.
//! - [`sagemaker::Sagemaker`]: InvokeEndpoint(WithResponseStream), SigV4,
//!   OpenAI-shaped payloads unwrapped from `PayloadPart` frames.
//!
//! OpenAI-compatible and KServe replicas have no adapter at all
//! (`Upstream::adapter` is `None`): their path is a pass-through with no
//! per-request allocation or dynamic call.
//!
//! Where each hook runs, in `proxy/`:
//! 1. [`Adapter::prepare`], per attempt, once the replica is chosen: path,
//!    query and body for it (`failover::send` calls the closure in `mod.rs`).
//! 2. [`Adapter::authorize`], in `forward`, on the finished request just
//!    before it is sent: content headers and signature (SigV4 must see the
//!    exact bytes that go out).
//! 3. [`Adapter::respond`], in `forward`, on the replica's answer once its
//!    slot guard is attached: status kept, body translated as it streams.

pub mod azure;
pub mod bedrock;
pub mod converse;
pub mod eventstream;
pub mod sagemaker;
pub mod sigv4;
mod whole;

use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;
use switchyard_config::{CloudApi, Replica};

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::openai::OpenAiHead;

/// The client's request, as every adapter sees it.
pub struct Call<'a> {
    /// The client's path (`/v1/chat/completions`).
    pub path: &'a str,
    /// The client's body, as sent.
    pub body: &'a Bytes,
    /// What routing already parsed from it (model, `stream`).
    pub head: &'a OpenAiHead,
}

/// One upstream protocol. Implementations hold only per-replica settings
/// prepared once per config generation, so every hook is cheap to call.
pub trait Adapter: Send + Sync + fmt::Debug {
    /// The config spelling of the protocol (`bedrock`), for logs.
    fn name(&self) -> &'static str;

    /// Path and query on the replica (its base path is prepended later) and
    /// the body to send. An `Err` is the client's request that this
    /// protocol cannot express (400), never a replica failure.
    fn prepare(&self, call: &Call<'_>, model_name: &str) -> Result<(String, Bytes), ProxyError>;

    /// Last touches on the finished request: content headers, credentials,
    /// signature. `body` is exactly what will be sent. The error names what
    /// is missing, never a credential.
    fn authorize(&self, req: &mut Request<Full<Bytes>>, body: &Bytes) -> Result<(), String>;

    /// The replica's answer in OpenAI's shape. `headers` are the response
    /// headers (an adapter that changes the body fixes `content-type` and
    /// drops `content-length`).
    fn respond(&self, status: StatusCode, headers: &mut HeaderMap, body: ProxyBody) -> ProxyBody;
}

/// The adapter a replica needs, if any.
pub fn for_replica(replica: &Replica) -> Option<Box<dyn Adapter>> {
    match replica.cloud_api.as_ref()? {
        CloudApi::AzureOpenAi(a) => Some(Box::new(azure::AzureOpenAi::new(a))),
        CloudApi::Bedrock(b) => Some(Box::new(bedrock::Bedrock::new(b))),
        CloudApi::Sagemaker(s) => Some(Box::new(sagemaker::Sagemaker::new(s))),
    }
}

/// A request this protocol cannot carry: the client's to fix.
pub(crate) fn unsupported(message: String) -> ProxyError {
    ProxyError::BadRequest {
        message,
        param: None,
    }
}
