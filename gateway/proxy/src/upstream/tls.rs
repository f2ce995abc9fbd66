//! rustls client configs: the webpki roots, optionally plus a private CA.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// Trusts the Mozilla roots compiled into `webpki-roots`: the same trust on
/// every host, and no dependency on the image's CA bundle.
pub(super) fn webpki() -> ClientConfig {
    config(webpki_roots())
}

/// The webpki roots plus every certificate in the PEM file `path`.
pub(super) fn with_ca_file(path: &Path) -> Result<ClientConfig, String> {
    let mut roots = webpki_roots();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{}: no usable CA certificate", path.display()));
    }
    Ok(config(roots))
}

fn webpki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn config(roots: RootCertStore) -> ClientConfig {
    // The provider is named, not taken from a process default, so a
    // dependency that enables another rustls backend cannot make this panic.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // ALPN (`h2`, `http/1.1`) is set by the hyper-rustls connector builder.
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| unreachable_config())
}

/// `ring` supports the default protocol versions; this is never reached,
/// but the data plane does not panic on it either: no roots, no trust.
fn unreachable_config() -> ClientConfig {
    ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}
