//! `auth.jwt`: token issuers. A `jwks_file` is read and parsed here, so
//! `check` refuses a file the gateway could not verify tokens with; a
//! `jwks_uri` is fetched by the gateway (this crate does no network I/O).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::Validator;
use crate::defaults;
use crate::jwt::{
    Algorithm, ClaimPath, ClientAuth, Jwks, JwksFile, JwksSource, JwtIssuer, is_public,
};
use crate::model::Tenant;
use crate::raw::{RawClientAuth, RawJwtIssuer};

impl Validator<'_> {
    pub(super) fn client_auth_section(
        &mut self,
        raw: RawClientAuth,
        tenants: &[Tenant],
    ) -> ClientAuth {
        let mut jwt: Vec<JwtIssuer> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for (i, r) in raw.jwt.into_iter().enumerate() {
            let path = format!("auth.jwt[{i}]");
            if seen.contains(&r.issuer) {
                self.err(
                    format!("{path}.issuer"),
                    format!("duplicate issuer `{}`", r.issuer),
                );
            }
            seen.push(r.issuer.clone());
            if let Some(issuer) = self.jwt_issuer(&path, r, tenants) {
                jwt.push(issuer);
            }
        }
        if !jwt.is_empty() && tenants.is_empty() {
            self.err(
                "auth.jwt",
                "tokens are mapped to tenants: define `tenants` (a tenant may have no keys)",
            );
        }
        ClientAuth { jwt }
    }

    fn jwt_issuer(&mut self, path: &str, r: RawJwtIssuer, tenants: &[Tenant]) -> Option<JwtIssuer> {
        if r.issuer.trim().is_empty() {
            self.err(format!("{path}.issuer"), "must not be empty");
        }
        if r.audiences.is_empty() || r.audiences.iter().any(|a| a.trim().is_empty()) {
            self.err(
                format!("{path}.audiences"),
                "list at least one non-empty `aud` value: a token for another service must not be accepted here",
            );
        }
        let jwks = self.jwks_source(path, r.jwks_uri, r.jwks_file);
        let algorithms = self.jwt_algorithms(path, r.algorithms);
        let leeway = self
            .int(path, "leeway_s", r.leeway_s, 0, defaults::JWT_LEEWAY_MAX_S)
            .map_or(defaults::JWT_LEEWAY, |s| Duration::from_secs(s as u64));
        let refresh = self
            .int(path, "jwks_refresh_s", r.jwks_refresh_s, 1, 86_400)
            .map_or(defaults::JWKS_REFRESH, |s| Duration::from_secs(s as u64));
        let min_refetch = self
            .int(
                path,
                "jwks_min_refetch_ms",
                r.jwks_min_refetch_ms,
                100,
                3_600_000,
            )
            .map_or(defaults::JWKS_MIN_REFETCH, |ms| {
                Duration::from_millis(ms as u64)
            });
        let tenant_claim =
            self.tenant_source(path, &r.tenant, r.tenant_claim, &r.tenant_map, tenants);
        Some(JwtIssuer {
            issuer: r.issuer,
            audiences: r.audiences,
            jwks: jwks?,
            algorithms,
            leeway,
            refresh,
            min_refetch,
            tenant: r.tenant,
            tenant_claim,
            tenant_map: r.tenant_map,
        })
    }

    fn jwks_source(
        &mut self,
        path: &str,
        uri: Option<String>,
        file: Option<String>,
    ) -> Option<JwksSource> {
        match (uri, file) {
            (Some(uri), None) => {
                let field = format!("{path}.jwks_uri");
                let url = match Url::parse(&uri) {
                    Ok(u) => u,
                    Err(e) => {
                        self.err(field, format!("`{uri}` is not a URL: {e}"));
                        return None;
                    }
                };
                let loopback = match url.host() {
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    Some(url::Host::Domain(d)) => d == "localhost",
                    None => false,
                };
                match url.scheme() {
                    "https" => Some(JwksSource::Uri(url)),
                    "http" if loopback => Some(JwksSource::Uri(url)),
                    _ => {
                        self.err(
                            field,
                            "must be https (plain http only to a loopback address): \
                             whoever can change the keys in transit can mint tokens",
                        );
                        None
                    }
                }
            }
            (None, Some(file)) => {
                let field = format!("{path}.jwks_file");
                let keys = std::fs::read(&file)
                    .map_err(|e| format!("cannot read {file}: {e}"))
                    .and_then(|bytes| Jwks::parse(&bytes).map_err(|e| format!("{file}: {e}")));
                match keys {
                    Ok(keys) => Some(JwksSource::File(JwksFile {
                        path: PathBuf::from(file),
                        keys: Arc::new(keys),
                    })),
                    Err(e) => {
                        self.err(field, e);
                        None
                    }
                }
            }
            _ => {
                self.err(path, "needs exactly one of jwks_uri, jwks_file");
                None
            }
        }
    }

    fn jwt_algorithms(&mut self, path: &str, raw: Option<Vec<String>>) -> Vec<Algorithm> {
        let names = raw.unwrap_or_else(|| {
            defaults::JWT_ALGORITHMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect()
        });
        if names.is_empty() {
            self.err(format!("{path}.algorithms"), "must not be empty");
        }
        let mut out = Vec::new();
        for (j, name) in names.iter().enumerate() {
            let field = format!("{path}.algorithms[{j}]");
            match name.parse::<Algorithm>() {
                Ok(a) if is_public(&a) => out.push(a),
                Ok(_) => self.err(
                    field,
                    format!(
                        "`{name}` is a shared-secret algorithm: JWKS keys are public, \
                         so anyone could sign with them"
                    ),
                ),
                Err(_) => self.err(
                    field,
                    format!(
                        "`{name}` is not supported (RS256, RS384, RS512, PS256, PS384, \
                         PS512, ES256, ES384, EdDSA)"
                    ),
                ),
            }
        }
        out
    }

    /// Exactly one of `tenant` and `tenant_claim`; every tenant named (the
    /// static one, `tenant_map`'s values) must exist.
    fn tenant_source(
        &mut self,
        path: &str,
        tenant: &Option<String>,
        claim: Option<String>,
        map: &std::collections::BTreeMap<String, String>,
        tenants: &[Tenant],
    ) -> Option<ClaimPath> {
        let known = |name: &str| tenants.iter().any(|t| t.name == name);
        for (value, name) in map {
            if !known(name) {
                self.err(
                    format!("{path}.tenant_map.{value}"),
                    format!("unknown tenant `{name}`"),
                );
            }
        }
        match (tenant, claim) {
            (Some(name), None) => {
                if !known(name) {
                    self.err(format!("{path}.tenant"), format!("unknown tenant `{name}`"));
                }
                if !map.is_empty() {
                    self.err(
                        format!("{path}.tenant_map"),
                        "applies to `tenant_claim`, not to a fixed `tenant`",
                    );
                }
                None
            }
            (None, Some(claim)) => ClaimPath::parse(&claim).or_else(|| {
                self.err(
                    format!("{path}.tenant_claim"),
                    format!("`{claim}` is not a claim name or a dotted path (`a.b`)"),
                );
                None
            }),
            _ => {
                self.err(path, "needs exactly one of tenant, tenant_claim");
                None
            }
        }
    }
}
