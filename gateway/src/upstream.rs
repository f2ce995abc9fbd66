//! How the gateway talks to a replica: the pooled client, and the per-replica
//! details (address, base path, credentials) prepared once per config.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http_body_util::Full;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use switchyard_config::{Limits, Replica, UpstreamAuth};

/// Pooled keep-alive client shared by all replicas of a snapshot.
pub type UpstreamClient = Client<HttpConnector, Full<Bytes>>;

/// Builds the client with the config's connect timeout and pool settings.
pub fn client(limits: &Limits) -> UpstreamClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(limits.connect_timeout));
    connector.set_nodelay(true);
    connector.set_keepalive(Some(std::time::Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(limits.pool_idle_timeout)
        .pool_max_idle_per_host(limits.pool_max_idle_per_host)
        .build(connector)
}

/// One replica's address and credentials, ready to stamp on requests.
#[derive(Debug)]
pub struct Upstream {
    /// Host and port.
    pub authority: Authority,
    /// The URL's path without a trailing `/` (often empty); request paths are appended.
    pub base_path: String,
    /// Credential header, marked sensitive so HTTP/2 never indexes it.
    pub auth: Option<(HeaderName, HeaderValue)>,
    /// Name sent upstream in the body or path.
    pub model_name: String,
    /// The replica id as a header value.
    pub id_header: HeaderValue,
    /// The replica's version as a header value.
    pub version_header: HeaderValue,
}

impl Upstream {
    /// Prepares `replica`. Config validation already guaranteed a host and
    /// an http URL; header values that cannot be encoded are dropped with a
    /// warning rather than sent malformed.
    pub fn new(replica: &Replica) -> Self {
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
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| {
                    tracing::warn!(replica = %replica.id, "auth value is not a valid header; not sent")
                })
                .ok()?;
            value.set_sensitive(true);
            Some((name, value))
        });
        Self {
            authority,
            base_path: replica.url.path().trim_end_matches('/').to_owned(),
            auth,
            model_name: replica
                .upstream_model
                .clone()
                .unwrap_or_else(|| replica.model.clone()),
            id_header: header_value(&replica.id),
            version_header: header_value(&replica.version),
        }
    }

    /// The full upstream URI for `path_and_query` (which starts with `/`).
    pub fn uri(&self, path_and_query: &str) -> Result<http::Uri, http::Error> {
        http::Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(self.authority.clone())
            .path_and_query(format!("{}{}", self.base_path, path_and_query))
            .build()
    }
}

fn header_value(s: &str) -> HeaderValue {
    // Ids and versions are validated to a header-safe alphabet.
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
