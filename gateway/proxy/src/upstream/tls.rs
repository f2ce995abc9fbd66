//! rustls client configs: the webpki roots, optionally plus a private CA.

use std::sync::Arc;

use rustls::pki_types::TrustAnchor;
use rustls::{ClientConfig, RootCertStore};

/// Trusts the Mozilla roots compiled into `webpki-roots`: the same trust on
/// every host, and no dependency on the image's CA bundle.
pub(super) fn webpki() -> ClientConfig {
    config(webpki_roots()).unwrap_or_else(|_| unreachable_config())
}

/// The webpki roots plus a replica's private CA: the trust anchors config
/// validation parsed from its `tls.ca_file` (with rustls' own parser), so
/// no file is read here. Building the client config can still fail in
/// principle (protocol versions); then the generation is refused rather
/// than served with the wrong trust.
pub(super) fn with_private_ca(ca_roots: &[TrustAnchor<'static>]) -> Result<ClientConfig, String> {
    let mut roots = webpki_roots();
    roots.roots.extend_from_slice(ca_roots);
    config(roots)
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn config(roots: RootCertStore) -> Result<ClientConfig, String> {
    // The provider is named, not taken from a process default, so a
    // dependency that enables another rustls backend cannot make this panic.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // ALPN (`h2`, `http/1.1`) is set by the hyper-rustls connector builder.
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| format!("cannot build a TLS client: {e}"))
}

/// `ring` supports the default protocol versions, so the shared client
/// never gets here; if it did, it would trust nothing rather than panic.
fn unreachable_config() -> ClientConfig {
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}
