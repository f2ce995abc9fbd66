//! How the gateway talks to a replica: the pooled client, and the per-replica
//! details (address, base path, credentials) prepared once per config.
//!
//! Upstream TLS is rustls (on `ring`: no cmake, quick builds) with the
//! webpki roots compiled in, plus a replica's own `tls.ca_file` for that
//! replica only. ALPN offers `h2` and `http/1.1`, so a replica that speaks
//! HTTP/2 gets it. Redirects are never followed (hyper does not), so a
//! replica cannot bounce a request, with its credentials, elsewhere.

mod body;
mod credential;
mod pool;
mod tls;

pub use body::UpstreamBody;
pub use credential::{CredentialSource, FileCredential, REFRESH_EVERY};
pub use pool::{H1Error, Pool, PoolSettings, PooledBody, h1};

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use switchyard_config::{Limits, Replica, UpstreamAuth};

/// Pooled keep-alive client shared by all replicas of a snapshot (plain
/// http, or https trusting the webpki roots).
pub type UpstreamClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Builds the client with the config's connect timeout and pool settings.
pub fn client(limits: &Limits) -> UpstreamClient {
    client_trusting(limits, tls::webpki())
}

/// A client whose TLS trusts `tls` (the webpki roots, or those plus a
/// replica's private CA).
fn client_trusting(limits: &Limits, tls: rustls::ClientConfig) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(limits.connect_timeout));
    connector.set_nodelay(true);
    connector.set_keepalive(Some(std::time::Duration::from_secs(60)));
    // https URLs only get TLS; http stays plain (validation allows both).
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(connector);
    // A replica's response head is bounded like a client's request head
    // (`max_header_bytes`): hyper would otherwise read ~400 KiB of it.
    // hyper's HTTP/1 read buffer cannot be smaller than 8 KiB.
    let head_limit = limits.max_header_bytes.max(8 << 10);
    Client::builder(TokioExecutor::new())
        .http1_max_buf_size(head_limit)
        .http2_max_header_list_size(u32::try_from(head_limit).unwrap_or(u32::MAX))
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(limits.pool_idle_timeout)
        .pool_max_idle_per_host(limits.pool_max_idle_per_host)
        .build(connector)
}

/// Why a request did not get a response head from a replica.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be opened.
    #[error(transparent)]
    Connect(crate::body::BoxError),
    /// The connection failed while the request was sent or the head read.
    #[error(transparent)]
    Failed(pool::H1Error),
    /// hyper-util's pooled client failed (HTTPS, HTTP/2).
    #[error(transparent)]
    Legacy(hyper_util::client::legacy::Error),
    /// No answer's head before the attempt's deadline.
    #[error("no response head before the attempt's deadline")]
    TimedOut,
}

impl SendError {
    /// Whether the replica could not be reached at all.
    pub fn is_connect(&self) -> bool {
        match self {
            SendError::Connect(_) => true,
            SendError::Failed(_) | SendError::TimedOut => false,
            SendError::Legacy(e) => e.is_connect(),
        }
    }
}

/// One replica's address and credentials, ready to stamp on requests.
#[derive(Debug)]
pub struct Upstream {
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// The URL's path without a trailing `/` (often empty); request paths are appended.
    pub base_path: String,
    /// Credential header, marked sensitive so HTTP/2 never indexes it.
    /// Private: [`Upstream::authorize`] is the one place it is attached.
    auth: Option<(HeaderName, HeaderValue)>,
    /// Name sent upstream in the body or path.
    pub model_name: String,
    /// The replica's model group (a LoRA adapter's name goes only to
    /// replicas of the group listing it).
    pub group: String,
    /// The replica id as a header value.
    pub id_header: HeaderValue,
    /// The replica's version as a header value.
    pub version_header: HeaderValue,
    /// A credential that changes while the gateway runs (a rotated file),
    /// brought up to date by the control plane's refresher.
    credential: Option<Arc<dyn CredentialSource>>,
    /// Translation to a managed cloud's API; `None`: pass-through (OpenAI,
    /// KServe), which costs nothing per request.
    pub adapter: Option<Box<dyn crate::adapter::Adapter>>,
    /// This replica's own client when it trusts a private CA (`tls.ca_file`);
    /// `None`: the snapshot's shared client.
    pub client: Option<UpstreamClient>,
    /// `resume: token_ids`: its resumable streams are asked for their
    /// token ids (`resume/token_ids.rs`).
    pub token_ids: bool,
    /// Plain-HTTP replicas: HTTP/1 connections of our own, driven in the
    /// request's task (`pool.rs`); `None`: the pooled client.
    pub pool: Option<Pool>,
}

impl Upstream {
    /// Prepares `replica`. Config validation already guaranteed a host and
    /// an http URL; header values that cannot be encoded are dropped with a
    /// warning rather than sent malformed. Fails when the replica's private
    /// CA cannot be turned into a TLS client: the generation is refused
    /// rather than served with the wrong trust.
    pub fn new(replica: &Replica, limits: &Limits) -> Result<Self, String> {
        let host = replica.url.host_str().unwrap_or("invalid");
        let port = replica.url.port_or_known_default().unwrap_or(80);
        let authority = format!("{host}:{port}")
            .parse()
            .unwrap_or_else(|_| Authority::from_static("invalid:80"));
        let auth = replica.auth.as_ref().and_then(|a| {
            let (name, value) = match a {
                UpstreamAuth::Bearer(s) => {
                    (header::AUTHORIZATION, format!("Bearer {}", s.expose()))
                }
                UpstreamAuth::Header { name, value } => {
                    (HeaderName::from_bytes(name.as_bytes()).ok()?, value.expose().to_owned())
                }
                UpstreamAuth::File { .. } => return None,
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| {
                    tracing::warn!(replica = %replica.id, "auth value is not a valid header; not sent")
                })
                .ok()?;
            value.set_sensitive(true);
            Some((name, value))
        });
        let client = match &replica.tls {
            Some(t) => Some(client_trusting(limits, tls::with_private_ca(&t.ca_roots)?)),
            None => None,
        };
        let https = replica.url.scheme() == "https";
        let pool = (!https && limits.upstream_in_task).then(|| {
            Pool::new(
                &authority,
                PoolSettings {
                    max_idle: limits.pool_max_idle_per_host,
                    idle_timeout: limits.pool_idle_timeout,
                    connect_timeout: limits.connect_timeout,
                    max_buf: limits.max_header_bytes,
                },
            )
        });
        Ok(Self {
            scheme: if https { Scheme::HTTPS } else { Scheme::HTTP },
            pool,
            credential: match &replica.auth {
                Some(UpstreamAuth::File { header, path }) => {
                    Some(FileCredential::new(header.as_deref(), path) as Arc<dyn CredentialSource>)
                }
                _ => None,
            },
            adapter: crate::adapter::for_replica(replica),
            client,
            authority,
            base_path: replica.url.path().trim_end_matches('/').to_owned(),
            auth,
            group: replica.model.clone(),
            model_name: replica
                .upstream_model
                .clone()
                .unwrap_or_else(|| replica.model.clone()),
            id_header: header_value(&replica.id),
            version_header: header_value(&replica.version),
            token_ids: replica.resume == switchyard_config::Resume::TokenIds,
        })
    }

    /// The full upstream URI for `path_and_query` (which starts with `/`);
    /// without a base path the string becomes the URI's without a copy.
    pub fn uri(&self, mut path_and_query: String) -> Result<http::Uri, http::Error> {
        if !self.base_path.is_empty() {
            path_and_query.insert_str(0, &self.base_path);
        }
        http::Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
    }
}

impl Upstream {
    /// Puts the replica's credentials on `req`, whose body is `body`: the
    /// static header, a rotated credential file's current value, and the
    /// cloud adapter's content headers and signature (SigV4 signs the exact
    /// bytes sent). The one path for requests and health probes alike. The
    /// error names what is missing, never a credential.
    pub fn authorize(&self, req: &mut Request<Full<Bytes>>, body: &Bytes) -> Result<(), String> {
        for (name, value) in self.credential_headers()?.into_iter().flatten() {
            req.headers_mut().insert(name, value);
        }
        if let Some(adapter) = &self.adapter {
            adapter.authorize(req, body)?;
        }
        Ok(())
    }

    /// The replica's own credential headers: the config's fixed one and a
    /// file's current one (an adapter's signature is not among them).
    pub fn credential_headers(&self) -> Result<[Option<(HeaderName, HeaderValue)>; 2], String> {
        let current = match &self.credential {
            Some(source) => Some(source.current()?),
            None => None,
        };
        Ok([self.auth.clone(), current])
    }

    /// Brings the replica's changing credential (if any) up to date.
    pub async fn refresh_credentials(&self) {
        if let Some(source) = &self.credential {
            source.refresh().await;
        }
    }

    /// Sends `req` to this replica: on a connection of its own pool (plain
    /// HTTP), else with its own client (private CA) or `shared`. `at` and
    /// `deadline` as for [`Pool::send_head`].
    pub async fn send(
        &self,
        shared: &UpstreamClient,
        req: Request<Full<Bytes>>,
        at: tokio::time::Instant,
        deadline: tokio::time::Instant,
    ) -> Result<http::Response<UpstreamBody>, SendError> {
        match &self.pool {
            // Boxed like the pooled client's future: it holds a connection
            // being opened, and the attempt's future stays small.
            Some(pool) => Box::pin(pool.send(req, at, deadline))
                .await
                .map(|resp| resp.map(UpstreamBody::Pooled)),
            None => match tokio::time::timeout_at(deadline, self.client(shared).request(req)).await
            {
                Err(_) => Err(SendError::TimedOut),
                Ok(Ok(resp)) => Ok(resp.map(UpstreamBody::from)),
                Ok(Err(e)) => Err(SendError::Legacy(e)),
            },
        }
    }

    /// Sends a request whose head is already written to this replica's
    /// own pool (plain HTTP/1, no adapter: see `forward::pooled_head`).
    pub async fn send_head(
        pool: &Pool,
        method: &http::Method,
        head: &[u8],
        body: &[u8],
        at: tokio::time::Instant,
        deadline: tokio::time::Instant,
    ) -> Result<http::Response<UpstreamBody>, SendError> {
        // Boxed, as in `send`.
        Box::pin(pool.send_head(method, head, body, at, deadline))
            .await
            .map(|resp| resp.map(UpstreamBody::Pooled))
    }

    /// The client to send with: this replica's own (private CA) or `shared`.
    pub fn client<'a>(&'a self, shared: &'a UpstreamClient) -> &'a UpstreamClient {
        self.client.as_ref().unwrap_or(shared)
    }
}

fn header_value(s: &str) -> HeaderValue {
    // Ids and versions are validated to a header-safe alphabet.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
