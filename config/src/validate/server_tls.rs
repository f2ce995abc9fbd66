//! `server.tls`: the data listener's certificate chain and key are read,
//! parsed and checked to match here, with rustls' own parser and key
//! loader (ring), so a pair the listener could not serve fails `check`
//! (and refuses a reload) instead of failing handshakes. The client CAs
//! (`client_ca_file`) become the listener's client-certificate verifier
//! here too. [`ServerTls::reload_key`] reads the pair again the same way
//! (the listener's file watch calls it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::Validator;
use crate::model::{ClientAuth, ClientCerts, ServerTls};
use crate::raw::RawServerTls;

impl Validator<'_> {
    pub(super) fn server_tls(&mut self, raw: Option<RawServerTls>) -> Option<ServerTls> {
        let raw = raw?;
        let base = "server.tls";
        let (Some(cert_file), Some(key_file)) = (raw.cert_file, raw.key_file) else {
            self.err(base, "needs both cert_file and key_file");
            return None;
        };
        let client = self.client_certs(raw.client_ca_file, raw.client_auth);
        let certified = match certified(Path::new(&cert_file), Path::new(&key_file)) {
            Ok(c) => c,
            Err((field, why)) => {
                self.err(format!("{base}.{field}"), why);
                return None;
            }
        };
        Some(ServerTls {
            cert_file: PathBuf::from(cert_file),
            key_file: PathBuf::from(key_file),
            certified: Arc::new(certified),
            client,
        })
    }

    fn client_certs(&mut self, ca: Option<String>, mode: Option<String>) -> Option<ClientCerts> {
        let base = "server.tls";
        let client_auth = match mode.as_deref() {
            None | Some("required") => ClientAuth::Required,
            Some("optional") => ClientAuth::Optional,
            Some(other) => {
                self.err(
                    format!("{base}.client_auth"),
                    format!("`{other}` is not `required` or `optional`"),
                );
                return None;
            }
        };
        let Some(ca) = ca else {
            if mode.is_some() {
                self.err(format!("{base}.client_auth"), "needs client_ca_file");
            }
            return None;
        };
        let roots = match super::tls::ca_roots(&ca) {
            Ok(r) => r,
            Err(why) => {
                self.err(format!("{base}.client_ca_file"), why);
                return None;
            }
        };
        let store = rustls::RootCertStore { roots };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut builder =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider);
        if client_auth == ClientAuth::Optional {
            builder = builder.allow_unauthenticated();
        }
        match builder.build() {
            Ok(verifier) => Some(ClientCerts {
                client_ca_file: PathBuf::from(ca),
                client_auth,
                verifier,
            }),
            Err(e) => {
                self.err(format!("{base}.client_ca_file"), format!("`{ca}`: {e}"));
                None
            }
        }
    }
}

impl ServerTls {
    /// Reads `cert_file` and `key_file` again and checks them as the
    /// loader does: for a certificate renewed on disk without a config
    /// change. The error names the file at fault.
    pub fn reload_key(&self) -> Result<Arc<CertifiedKey>, String> {
        certified(&self.cert_file, &self.key_file)
            .map(Arc::new)
            .map_err(|(_, why)| why)
    }
}

/// The chain of `cert_file` and the key of `key_file`, checked to match;
/// on error, which field and why.
fn certified(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, (&'static str, String)> {
    let chain = chain(cert_file).map_err(|why| ("cert_file", why))?;
    let key = key(key_file).map_err(|why| ("key_file", why))?;
    let certified = CertifiedKey::new(chain, key);
    if let Err(e) = certified.keys_match() {
        return Err((
            "key_file",
            format!(
                "`{}` is not the key of the certificate in `{}`: {e}",
                key_file.display(),
                cert_file.display()
            ),
        ));
    }
    Ok(certified)
}

/// The certificates of `file`, leaf first.
fn chain(file: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = file.display();
    let pem = std::fs::read(file.to_string()).map_err(|e| format!("cannot read `{file}`: {e}"))?;
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
fn key(file: &Path) -> Result<Arc<dyn rustls::sign::SigningKey>, String> {
    let file = file.display();
    let pem = std::fs::read(file.to_string()).map_err(|e| format!("cannot read `{file}`: {e}"))?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("`{file}` holds no PEM private key: {e}"))?;
    rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| format!("the key in `{file}` cannot be used: {e}"))
}
