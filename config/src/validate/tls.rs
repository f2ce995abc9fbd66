//! `replicas[i].tls`: the private CA file is read and parsed here, once,
//! by the parser rustls itself uses, so a CA the gateway could not trust
//! fails `check` (and refuses a reload) instead of degrading at apply time.

use std::path::PathBuf;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor};
use url::Url;

use super::Validator;
use crate::model::Tls;
use crate::raw::RawTls;

impl Validator<'_> {
    /// `replicas[i].tls`: only for https, and the CA file must hold at
    /// least one certificate, every one of which parses.
    pub(super) fn tls(
        &mut self,
        path: &str,
        raw: Option<RawTls>,
        url: Option<&Url>,
    ) -> Option<Tls> {
        let raw = raw?;
        let path = format!("{path}.tls");
        if url.is_some_and(|u| u.scheme() != "https") {
            self.err(&path, "only meaningful for an https `url`");
        }
        let file = raw.ca_file?;
        match ca_roots(&file) {
            Ok(ca_roots) => Some(Tls {
                ca_file: PathBuf::from(file),
                ca_roots,
            }),
            Err(why) => {
                self.err(format!("{path}.ca_file"), why);
                None
            }
        }
    }
}

/// Every certificate of the PEM file `file`, as trust anchors.
pub(super) fn ca_roots(file: &str) -> Result<Vec<TrustAnchor<'static>>, String> {
    let pem = std::fs::read(file).map_err(|e| format!("cannot read `{file}`: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{file}` is not a valid PEM file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "`{file}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    certs
        .iter()
        .enumerate()
        .map(|(n, cert)| {
            webpki::anchor_from_trusted_cert(cert)
                .map(|anchor| anchor.to_owned())
                .map_err(|e| {
                    format!(
                        "certificate {} of {} in `{file}` cannot be parsed: {e}",
                        n + 1,
                        certs.len()
                    )
                })
        })
        .collect()
}
