//! Client certificates as credentials: a connection whose certificate the
//! TLS listener verified (`server.tls.client_ca_file`) carries its names
//! in every request's extensions ([`ClientCertNames`], set by the accept
//! loop), and a request that presents no API key is the tenant listing
//! one of those names in `client_cert_names`.
//!
//! An API key, when sent, decides (it is more specific than the
//! connection); a name no tenant lists leaves the request keyless.

use std::sync::{Arc, LazyLock};

use http::{Extensions, HeaderMap};
use switchyard_config::{Config, Quota, Tenant, TenantKey};

use crate::auth::{self, Caller, KeyRef};
use crate::error::ProxyError;
use crate::jwt::JwtAuth;
use crate::runtime_keys::RuntimeKeys;

/// The names of a verified client certificate: subject CN, then DNS and
/// URI (e.g. SPIFFE) subject alternative names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertNames(pub Arc<[String]>);

impl ClientCertNames {
    /// The names in the end-entity certificate `der` (already verified by
    /// the handshake); empty when it cannot be parsed.
    pub fn of(der: &[u8]) -> Self {
        let der = rustls::pki_types::CertificateDer::from(der);
        let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
            return Self(Arc::new([]));
        };
        let mut names: Vec<String> = common_name(cert.subject()).into_iter().collect();
        names.extend(cert.valid_dns_names().map(str::to_owned));
        names.extend(cert.valid_uri_names().map(str::to_owned));
        Self(names.into())
    }
}

/// The account every certificate-authenticated caller of a tenant is
/// booked under (no limits of its own: its tenant's apply).
static CERT_KEY: LazyLock<TenantKey> = LazyLock::new(|| TenantKey {
    id: "client_cert".into(),
    sha256: [0; 32],
    requests_per_minute: None,
    quota: Quota::default(),
});

/// [`auth::authenticate`], and when no key is presented, the tenant of the
/// connection's client certificate.
pub fn authenticate<'c>(
    config: &'c Config,
    runtime: &RuntimeKeys,
    jwt: Option<&'c JwtAuth>,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<Caller<'c>, ProxyError> {
    Ok(identify(config, runtime, jwt, headers, extensions)?.map(|(tenant, _)| tenant))
}

/// [`authenticate`], with the key the caller is accounted under.
pub fn identify<'c>(
    config: &'c Config,
    runtime: &RuntimeKeys,
    jwt: Option<&'c JwtAuth>,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<Option<(&'c Tenant, KeyRef<'c>)>, ProxyError> {
    // Plain connections carry no names: one empty-map check.
    if let Some(names) = extensions.get::<ClientCertNames>()
        && !auth::presents_key(headers)
        && let Some(tenant) = tenant_of(config, names)
    {
        return Ok(Some((tenant, KeyRef::Shared(&CERT_KEY))));
    }
    auth::identify(config, runtime, jwt, headers)
}

fn tenant_of<'c>(config: &'c Config, names: &ClientCertNames) -> Option<&'c Tenant> {
    config
        .tenants
        .iter()
        .find(|t| t.client_cert_names.iter().any(|n| names.0.contains(n)))
}

/// The first common name (OID 2.5.4.3) in a DER `Name`'s contents (a
/// sequence of SETs of `AttributeTypeAndValue`), if it is a string.
fn common_name(subject: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    let mut rdns = subject;
    while let Some((0x31, set, rest)) = tlv(rdns) {
        rdns = rest;
        let mut atvs = set;
        while let Some((0x30, atv, rest)) = tlv(atvs) {
            atvs = rest;
            let Some((0x06, oid, value)) = tlv(atv) else {
                continue;
            };
            // UTF8String, PrintableString, IA5String, TeletexString (as Latin-1 is rare: bytes).
            if oid == CN
                && let Some((0x0c | 0x13 | 0x16 | 0x14, text, _)) = tlv(value)
            {
                return std::str::from_utf8(text).ok().map(str::to_owned);
            }
        }
    }
    None
}

/// One DER tag-length-value: (tag, value, rest). Lengths up to 4 bytes.
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_name_is_found_among_other_attributes() {
        // SET{ SEQ{ OID 2.5.4.6 (C), PrintableString "DE" } }, SET{ SEQ{ OID CN, UTF8String "svc-a" } }
        let subject = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'D', b'E', 0x31,
            0x0e, 0x30, 0x0c, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x05, b's', b'v', b'c', b'-',
            b'a',
        ];
        assert_eq!(common_name(&subject).as_deref(), Some("svc-a"));
        assert_eq!(common_name(&subject[..13]), None, "no CN");
        assert_eq!(common_name(&subject[..20]), None, "truncated");
        assert_eq!(common_name(&[]), None);
    }
}
