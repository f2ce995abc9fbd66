//! TLS on the data listener (`server.tls`): one rustls acceptor per
//! certificate, ALPN `h2` then `http/1.1`.
//!
//! The certificate and key were read, parsed and checked to match by the
//! config loader, so building the acceptor here cannot fail on them. The
//! accept loop asks for the acceptor of the serving snapshot on every new
//! connection: a reload with a renewed certificate (or with TLS turned on
//! or off) applies to connections accepted after it; open ones keep theirs.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use switchyard_config::ServerTls;
use tokio_rustls::TlsAcceptor;

/// The acceptor for the last certificate seen.
#[derive(Default)]
pub struct Acceptors {
    current: Option<(Arc<CertifiedKey>, TlsAcceptor)>,
}

impl Acceptors {
    /// The acceptor for `tls`, built once per certificate; `None` for plain HTTP.
    pub fn for_config(
        &mut self,
        tls: Option<&ServerTls>,
    ) -> Result<Option<TlsAcceptor>, rustls::Error> {
        let Some(tls) = tls else {
            return Ok(None);
        };
        if let Some((key, acceptor)) = &self.current
            && Arc::ptr_eq(key, &tls.certified)
        {
            return Ok(Some(acceptor.clone()));
        }
        let acceptor = acceptor(Arc::clone(&tls.certified))?;
        self.current = Some((Arc::clone(&tls.certified), acceptor.clone()));
        Ok(Some(acceptor))
    }
}

/// A rustls server config (ring, TLS 1.2 and 1.3) serving `key`.
fn acceptor(key: Arc<CertifiedKey>) -> Result<TlsAcceptor, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Single(key)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// One certificate for every client hello (no SNI selection).
#[derive(Debug)]
struct Single(Arc<CertifiedKey>);

impl ResolvesServerCert for Single {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}
