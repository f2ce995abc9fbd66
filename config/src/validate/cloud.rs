//! Validation of what issue 6 added to a replica: the managed-cloud
//! protocols (`azure_openai`, `bedrock`), upstream TLS trust, credential
//! files, and the SSRF guard on replica URLs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

use url::Url;

use super::{Validator, http_token};
use crate::Secret;
use crate::model::{
    AwsCredentials, AzureOpenAi, Bedrock, Cloud, CloudApi, Protocol, Sagemaker, Tls, UpstreamAuth,
};
use crate::raw::{RawAuth, RawReplica, RawTls};

/// Why `url` points at a link-local or cloud metadata address, if it does.
/// Literal addresses only: a host name is not resolved at validation (the
/// config crate does no network I/O), see the README's SSRF notes.
pub(super) fn metadata_address(url: &Url) -> Option<String> {
    let ip = match url.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            return ["metadata.google.internal", "metadata.goog", "instance-data"]
                .contains(&d.as_str())
                .then(|| format!("`{d}` is a cloud metadata host name"));
        }
    };
    let bad = match ip {
        // 169.254.0.0/16, which includes 169.254.169.254 (AWS, Azure, GCP metadata).
        IpAddr::V4(v4) => v4.is_link_local(),
        // fe80::/10, and AWS's IPv6 metadata endpoint fd00:ec2::254.
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    };
    bad.then(|| format!("{ip} is a link-local or metadata address"))
}

impl Validator {
    /// `replicas[i].protocol`, and the cloud API settings it requires.
    pub(super) fn protocol(
        &mut self,
        path: &str,
        r: &RawReplica,
        clouds: &BTreeMap<String, Cloud>,
    ) -> (Protocol, Option<CloudApi>) {
        let upstream = || r.upstream_model.clone().unwrap_or_else(|| r.model.clone());
        let api = match r.protocol.as_deref() {
            None | Some("openai") => None,
            Some("kserve_v2") => return (Protocol::KserveV2, None),
            Some("azure_openai") => self.azure(path, r, upstream()).map(CloudApi::AzureOpenAi),
            Some(kind @ ("bedrock" | "sagemaker")) => {
                let region = clouds.get(&r.cloud).and_then(|c| c.region.clone());
                let aws = self.aws(path, r, kind, region);
                let endpoint = self.endpoint_name(path, r, kind);
                match (aws, endpoint) {
                    (Some((region, credentials)), Some(endpoint_name)) => {
                        Some(CloudApi::Sagemaker(Sagemaker {
                            endpoint_name,
                            region,
                            credentials,
                        }))
                    }
                    (Some((region, credentials)), None) if kind == "bedrock" => {
                        Some(CloudApi::Bedrock(Bedrock {
                            model_id: upstream(),
                            region,
                            credentials,
                        }))
                    }
                    _ => None,
                }
            }
            Some(other) => {
                self.err(
                    format!("{path}.protocol"),
                    format!(
                        "unknown protocol `{other}` (expected openai, kserve_v2, azure_openai, bedrock or sagemaker)"
                    ),
                );
                None
            }
        };
        let kind = r.protocol.as_deref().unwrap_or("openai");
        if r.azure.is_some() && kind != "azure_openai" {
            self.err(
                format!("{path}.azure"),
                "only meaningful with `protocol: azure_openai`",
            );
        }
        if r.aws.is_some() && !matches!(kind, "bedrock" | "sagemaker") {
            self.err(
                format!("{path}.aws"),
                "only meaningful with `protocol: bedrock` or `sagemaker`",
            );
        }
        (Protocol::OpenAi, api)
    }

    fn azure(&mut self, path: &str, r: &RawReplica, upstream: String) -> Option<AzureOpenAi> {
        let Some(raw) = &r.azure else {
            self.err(
                format!("{path}.azure"),
                "required by `protocol: azure_openai` (at least `api_version`)",
            );
            return None;
        };
        let deployment = raw.deployment.clone().unwrap_or(upstream);
        self.name(&format!("{path}.azure.deployment"), &deployment);
        let api_version = match &raw.api_version {
            Some(v)
                if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                v.clone()
            }
            Some(v) => {
                self.err(
                    format!("{path}.azure.api_version"),
                    format!("`{v}` is not an api-version (e.g. 2024-06-01)"),
                );
                return None;
            }
            None => {
                self.err(
                    format!("{path}.azure.api_version"),
                    "required (e.g. 2024-06-01)",
                );
                return None;
            }
        };
        if r.auth.is_none() {
            self.err(
                format!("{path}.auth"),
                "required by `protocol: azure_openai`: `header: api-key` + `value`/`value_file`, \
                 or `bearer`/`bearer_file` (Entra ID)",
            );
        }
        Some(AzureOpenAi {
            deployment,
            api_version,
        })
    }

    /// `replicas[i].aws` region and keys, shared by `bedrock` and `sagemaker`.
    fn aws(
        &mut self,
        path: &str,
        r: &RawReplica,
        kind: &str,
        cloud_region: Option<String>,
    ) -> Option<(String, Option<AwsCredentials>)> {
        let raw = r.aws.as_ref();
        let region = raw.and_then(|a| a.region.clone()).or(cloud_region);
        let region = match region {
            Some(reg)
                if !reg.is_empty()
                    && reg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                reg
            }
            Some(reg) => {
                self.err(
                    format!("{path}.aws.region"),
                    format!("`{reg}` is not an AWS region"),
                );
                return None;
            }
            None => {
                self.err(
                    format!("{path}.aws.region"),
                    format!("required by `protocol: {kind}` (or set the cloud's `region`)"),
                );
                return None;
            }
        };
        if r.auth.is_some() {
            self.err(
                format!("{path}.auth"),
                format!(
                    "not used by `protocol: {kind}`: requests are signed with the `aws` credentials"
                ),
            );
        }
        let credentials = match raw.map(|a| (&a.access_key_id, &a.secret_access_key)) {
            None | Some((None, None)) => None,
            Some((Some(id), Some(secret))) if !id.is_empty() && !secret.is_empty() => {
                Some(AwsCredentials {
                    access_key_id: Secret::new(id.clone()),
                    secret_access_key: Secret::new(secret.clone()),
                    session_token: raw
                        .and_then(|a| a.session_token.clone())
                        .filter(|t| !t.is_empty())
                        .map(Secret::new),
                })
            }
            Some(_) => {
                self.err(
                    format!("{path}.aws"),
                    "set both `access_key_id` and `secret_access_key` (non-empty), or neither \
                     to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
                );
                None
            }
        };
        Some((region, credentials))
    }

    /// `replicas[i].aws.endpoint_name`, required by `sagemaker` only.
    fn endpoint_name(&mut self, path: &str, r: &RawReplica, kind: &str) -> Option<String> {
        let name = r.aws.as_ref().and_then(|a| a.endpoint_name.clone());
        match (kind, name) {
            ("sagemaker", Some(n)) => {
                let before = self.errors.len();
                self.name(&format!("{path}.aws.endpoint_name"), &n);
                (self.errors.len() == before).then_some(n)
            }
            ("sagemaker", None) => {
                self.err(
                    format!("{path}.aws.endpoint_name"),
                    "required by `protocol: sagemaker`",
                );
                None
            }
            (_, Some(_)) => {
                self.err(
                    format!("{path}.aws.endpoint_name"),
                    "only meaningful with `protocol: sagemaker`",
                );
                None
            }
            (_, None) => None,
        }
    }

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

    /// `auth.bearer_file`, or `auth.header` + `auth.value_file`.
    pub(super) fn auth_file(&mut self, path: &str, a: RawAuth) -> Option<UpstreamAuth> {
        let (header, file) = match (a.bearer, a.header, a.value, a.bearer_file, a.value_file) {
            (None, None, None, Some(f), None) => (None, f),
            (None, Some(h), None, None, Some(f)) => {
                if !http_token(&h) {
                    self.err(
                        format!("{path}.header"),
                        format!("`{h}` is not a valid header name"),
                    );
                    return None;
                }
                (Some(h.to_ascii_lowercase()), f)
            }
            _ => {
                self.err(
                    path,
                    "set either `bearer_file`, or `header` and `value_file`, with no inline value",
                );
                return None;
            }
        };
        if file.is_empty() {
            self.err(path, "the credential file path must not be empty");
            return None;
        }
        Some(UpstreamAuth::File {
            header,
            path: PathBuf::from(file),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(url: &str) -> Option<String> {
        metadata_address(&Url::parse(url).unwrap())
    }

    fn errors(replica: &str) -> String {
        let yaml = format!(
            "clouds: {{ aws: {{ provider: aws }}, az: {{ provider: azure }} }}\n\
             models: [{{ name: m, versions: [{{ name: v1, weight: 100 }}] }}]\n\
             replicas:\n  - {{ id: r, model: m, {replica} }}\n"
        );
        match crate::load_str(&yaml, &|_| None) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn cloud_protocol_settings_are_checked_with_field_paths() {
        for (replica, path, needle) in [
            (
                "cloud: az, url: \"https://x.openai.azure.com\", protocol: azure_openai, auth: { bearer: t }",
                "replicas[0].azure",
                "api_version",
            ),
            (
                "cloud: az, url: \"https://x.openai.azure.com\", protocol: azure_openai, azure: { api_version: \"2024-06-01\" }",
                "replicas[0].auth",
                "required",
            ),
            (
                "cloud: aws, url: \"https://bedrock-runtime.us-east-1.amazonaws.com\", protocol: bedrock",
                "replicas[0].aws.region",
                "required",
            ),
            (
                "cloud: aws, url: \"https://b\", protocol: bedrock, aws: { region: us-east-1, access_key_id: a }",
                "replicas[0].aws",
                "both",
            ),
            (
                "cloud: aws, url: \"https://s\", protocol: sagemaker, aws: { region: us-east-1 }",
                "replicas[0].aws.endpoint_name",
                "required",
            ),
            (
                "cloud: aws, url: \"http://h\", aws: { region: us-east-1 }",
                "replicas[0].aws",
                "only meaningful",
            ),
            (
                "cloud: aws, url: \"https://h\", tls: { ca_file: /nonexistent/ca.pem }",
                "replicas[0].tls.ca_file",
                "cannot read",
            ),
            (
                "cloud: aws, url: \"http://h\", auth: { bearer: x, bearer_file: /f }",
                "replicas[0].auth",
                "bearer_file",
            ),
        ] {
            let err = errors(replica);
            assert!(
                err.contains(&format!("{path}:")) && err.contains(needle),
                "{replica}\n{err}"
            );
        }
        assert_eq!(
            errors(
                "cloud: aws, url: \"https://s\", protocol: sagemaker, aws: { region: us-east-1, endpoint_name: e }"
            ),
            ""
        );
    }

    #[test]
    fn metadata_and_link_local_addresses_are_recognised() {
        for bad in [
            "http://169.254.169.254/latest",
            "http://169.254.1.2:8080",
            "http://[fe80::1]/",
            "http://[febf::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
            "http://metadata.google.internal/",
        ] {
            assert!(why(bad).is_some(), "{bad}");
        }
        for ok in [
            "http://127.0.0.1:8000",
            "https://10.0.0.5",
            "http://[fd00:ec2::253]/",
            "http://[fec0::1]/",
            "https://myres.openai.azure.com",
        ] {
            assert!(why(ok).is_none(), "{ok}");
        }
    }
}
