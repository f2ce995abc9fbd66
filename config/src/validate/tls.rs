//! `replicas[i].tls`: a private CA file for an https replica.

use std::path::PathBuf;

use url::Url;

use super::Validator;
use crate::model::Tls;
use crate::raw::RawTls;

impl Validator {
    /// `replicas[i].tls`: only for https, and the CA file must hold a certificate.
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
        match std::fs::read_to_string(&file) {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => Some(Tls {
                ca_file: PathBuf::from(file),
            }),
            Ok(_) => {
                self.err(
                    format!("{path}.ca_file"),
                    format!("`{file}` holds no PEM certificate"),
                );
                None
            }
            Err(e) => {
                self.err(
                    format!("{path}.ca_file"),
                    format!("cannot read `{file}`: {e}"),
                );
                None
            }
        }
    }
}
