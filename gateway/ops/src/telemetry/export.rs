//! OTLP's HTTP client: hyper on a current-thread runtime of its own,
//! driven by the SDK's batch export thread.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use opentelemetry_http::{HttpClient, HttpError};

/// Body limit of a collector's answer (it is only checked for errors).
const MAX_ANSWER: usize = 4 << 20;
/// Longest one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// OTLP's HTTP client: hyper on a current-thread runtime of its own,
/// driven by the SDK's export thread (never a request-path thread).
pub(super) struct ExportClient {
    rt: tokio::runtime::Runtime,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportClient")
    }
}

impl ExportClient {
    pub(super) fn new() -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| format!("trace export runtime: {e}"))?;
        // A connection per export: exports are seconds apart, and a pooled
        // connection would sit unpolled between them.
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build_http();
        Ok(Self { rt, client })
    }

    fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("OTLP export must run on the batch export thread".into());
        }
        self.rt.block_on(async {
            let request = request.map(Full::new);
            let resp = tokio::time::timeout(EXPORT_TIMEOUT, self.client.request(request)).await??;
            let (parts, body) = resp.into_parts();
            let body =
                tokio::time::timeout(EXPORT_TIMEOUT, Limited::new(body, MAX_ANSWER).collect())
                    .await?
                    .map_err(|e| -> HttpError { e })?
                    .to_bytes();
            Ok(Response::from_parts(parts, body))
        })
    }
}

impl HttpClient for ExportClient {
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(self.send(request)))
    }
}
