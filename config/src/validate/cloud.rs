//! `clouds:`, and what a replica's `protocol` needs: the managed-cloud
//! APIs (`azure_openai` here, `bedrock` / `sagemaker` in [`super::aws`]),
//! plus the SSRF guard's address check for replica URLs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use url::Url;

use super::Validator;
use crate::model::{AzureOpenAi, Bedrock, Cloud, CloudApi, Protocol, Provider, Sagemaker};
use crate::raw::{RawCloud, RawReplica};

/// Why `url` points at a link-local or cloud metadata address, if it does.
/// Literal addresses only: a host name is not resolved at validation (the
/// config crate does no network I/O), see the README's SSRF notes.
pub(crate) fn metadata_address(url: &Url) -> Option<String> {
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

impl Validator<'_> {
    pub(super) fn clouds(&mut self, raw: BTreeMap<String, RawCloud>) -> BTreeMap<String, Cloud> {
        let mut out = BTreeMap::new();
        for (id, c) in raw {
            let path = format!("clouds.{id}");
            self.name(&path, &id);
            let provider = match c.provider.as_str() {
                "aws" => Provider::Aws,
                "azure" => Provider::Azure,
                "private" => Provider::Private,
                other => {
                    self.err(
                        format!("{path}.provider"),
                        format!("unknown provider `{other}` (expected aws, azure or private)"),
                    );
                    continue;
                }
            };
            out.insert(
                id.clone(),
                Cloud {
                    id,
                    provider,
                    region: c.region,
                },
            );
        }
        out
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(url: &str) -> Option<String> {
        metadata_address(&Url::parse(url).unwrap())
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
