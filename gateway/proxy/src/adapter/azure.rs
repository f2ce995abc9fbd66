//! Azure OpenAI: the OpenAI API under per-deployment paths.
//!
//! `/v1/chat/completions` becomes
//! `/openai/deployments/{deployment}/chat/completions?api-version=…` (and
//! likewise `completions`, `embeddings`). Bodies and answers are OpenAI's
//! already; the credential (`api-key` header or an Entra ID bearer, inline
//! or from a rotated file) is stamped by `forward` like any replica's.

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::Full;

use super::{Adapter, Call, unsupported};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::openai;

/// Settings of one Azure OpenAI replica.
#[derive(Debug)]
pub struct AzureOpenAi {
    /// `/openai/deployments/{deployment}/`, ready to append the operation to.
    prefix: String,
    /// `?api-version=…`.
    query: String,
}

impl AzureOpenAi {
    /// From the validated `replicas[i].azure` (names checked to be URL-safe).
    pub fn new(cfg: &switchyard_config::AzureOpenAi) -> Self {
        Self {
            prefix: format!("/openai/deployments/{}/", cfg.deployment),
            query: format!("?api-version={}", cfg.api_version),
        }
    }
}

impl Adapter for AzureOpenAi {
    fn name(&self) -> &'static str {
        "azure_openai"
    }

    fn prepare(&self, call: &Call<'_>, model_name: &str) -> Result<(String, Bytes), ProxyError> {
        let op = match call.path {
            "/v1/chat/completions" => "chat/completions",
            "/v1/completions" => "completions",
            "/v1/embeddings" => "embeddings",
            other => {
                return Err(unsupported(format!(
                    "{other} is not available on azure_openai replicas"
                )));
            }
        };
        let path = format!("{}{op}{}", self.prefix, self.query);
        Ok((
            path,
            openai::rewrite_model(call.body, call.head, model_name),
        ))
    }

    fn authorize(&self, _req: &mut Request<Full<Bytes>>, _body: &Bytes) -> Result<(), String> {
        Ok(())
    }

    fn respond(&self, _status: StatusCode, _headers: &mut HeaderMap, body: ProxyBody) -> ProxyBody {
        body
    }
}
