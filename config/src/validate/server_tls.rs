//! `server.tls`: the data listener's certificate chain and key are read,
//! parsed and checked to match here, with rustls' own parser and key
//! loader (ring), so a pair the listener could not serve fails `check`
//! (and refuses a reload) instead of failing handshakes.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Validator;
use crate::model::ServerTls;
use crate::raw::RawServerTls;

impl Validator<'_> {
    pub(super) fn server_tls(&mut self, raw: Option<RawServerTls>) -> Option<ServerTls> {
        let raw = raw?;
        let base = "server.tls";
        let (Some(cert_file), Some(key_file)) = (raw.cert_file, raw.key_file) else {
            self.err(base, "needs both cert_file and key_file");
            return None;
        };
        let chain = match chain(&cert_file) {
            Ok(c) => c,
            Err(why) => {
                self.err(format!("{base}.cert_file"), why);
                return None;
            }
        };
        let key = match key(&key_file) {
            Ok(k) => k,
            Err(why) => {
                self.err(format!("{base}.key_file"), why);
                return None;
            }
        };
        let certified = CertifiedKey::new(chain, key);
        if let Err(e) = certified.keys_match() {
            self.err(
                format!("{base}.key_file"),
                format!("`{key_file}` is not the key of the certificate in `{cert_file}`: {e}"),
            );
            return None;
        }
        Some(ServerTls {
            cert_file: PathBuf::from(cert_file),
            key_file: PathBuf::from(key_file),
            certified: Arc::new(certified),
        })
    }
}

/// The certificates of `file`, leaf first.
fn chain(file: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read `{file}`: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{file}` is not a valid PEM file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "`{file}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

/// The private key of `file`, loaded for signing.
fn key(file: &str) -> Result<Arc<dyn rustls::sign::SigningKey>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read `{file}`: {e}"))?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("`{file}` holds no PEM private key: {e}"))?;
    rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| format!("the key in `{file}` cannot be used: {e}"))
}
