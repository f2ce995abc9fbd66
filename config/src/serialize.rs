//! The validated config written back in the file's own format.
//!
//! Most of [`crate::model`] serializes through serde attributes there
//! (`*_ms` names for durations, derived fields skipped, absent options
//! left out). The two types whose shape differs from the file's are here:
//!
//! - [`Replica`]: the model keeps `protocol: openai` plus a [`CloudApi`]
//!   for the managed clouds; the file says `protocol: azure_openai |
//!   bedrock | sagemaker` with an `azure` or `aws` block. The derived
//!   `provider` and Bedrock model id are left out, private-capacity cost
//!   goes back as `per_hour` + `tokens_per_hour` (not the per-token price
//!   derived from it), and `allow_link_local: true` is written when the
//!   URL needs it.
//! - [`UpstreamAuth`]: an enum in the model, the flat `auth` block in the file.
//!
//! Secrets serialize as `<redacted>` ([`Secret`]): the output is a config
//! to read or to edit and post back once the secrets are filled in, never
//! a way to read them.

use std::path::Path;

use serde::{Serialize, Serializer};

use std::collections::BTreeMap;

use crate::model::{
    AzureOpenAi, Cloud, CloudApi, Config, Cost, ModelGroup, Replica, ServerConfig, Tenant, Tls,
    UpstreamAuth,
};
use crate::{Secret, validate};

/// `replicas[i]` as the file has it.
#[derive(Serialize)]
struct RawReplica<'a> {
    id: &'a str,
    model: &'a str,
    version: &'a str,
    cloud: &'a str,
    url: &'a str,
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_model: Option<&'a str>,
    max_concurrency: u32,
    weight: u32,
    cost: RawCost,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<&'a UpstreamAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<&'a Tls>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_link_local: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    azure: Option<&'a AzureOpenAi>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aws: Option<RawAws<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resume: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    discovery: Option<&'a crate::Discovery>,
}

/// `replicas[i].aws`, for `bedrock` and `sagemaker`.
#[derive(Serialize)]
struct RawAws<'a> {
    region: &'a str,
    access_key_id: &'a Secret,
    secret_access_key: &'a Secret,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_token: Option<&'a Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_name: Option<&'a str>,
}

/// `replicas[i].cost`: per-token prices, or the hourly price they were
/// derived from (the file may not give both).
#[derive(Serialize)]
#[serde(untagged)]
enum RawCost {
    PerToken {
        input_per_1k: f64,
        output_per_1k: f64,
    },
    PerHour {
        per_hour: f64,
        tokens_per_hour: f64,
    },
}

impl From<Cost> for RawCost {
    fn from(c: Cost) -> Self {
        match (c.per_hour, c.tokens_per_hour) {
            (Some(per_hour), Some(tokens_per_hour)) => RawCost::PerHour {
                per_hour,
                tokens_per_hour,
            },
            _ => RawCost::PerToken {
                input_per_1k: c.input_per_1k,
                output_per_1k: c.output_per_1k,
            },
        }
    }
}

impl Serialize for Replica {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (azure, aws) = match &self.cloud_api {
            None => (None, None),
            Some(CloudApi::AzureOpenAi(a)) => (Some(a), None),
            Some(CloudApi::Bedrock(b)) => (None, Some((&b.region, &b.credentials, None))),
            Some(CloudApi::Sagemaker(m)) => (
                None,
                Some((&m.region, &m.credentials, Some(m.endpoint_name.as_str()))),
            ),
        };
        RawReplica {
            id: &self.id,
            model: &self.model,
            version: &self.version,
            cloud: &self.cloud,
            url: self.url.as_str(),
            protocol: self
                .cloud_api
                .as_ref()
                .map_or(self.protocol.as_str(), CloudApi::as_str),
            upstream_model: self.upstream_model.as_deref(),
            max_concurrency: self.max_concurrency,
            weight: self.weight,
            cost: self.cost.into(),
            auth: self.auth.as_ref(),
            tls: self.tls.as_ref(),
            allow_link_local: validate::metadata_address(&self.url).is_some(),
            azure,
            engine: self.engine.map(crate::model::Engine::as_str),
            metrics_path: (self.metrics_path != crate::defaults::METRICS_PATH)
                .then_some(self.metrics_path.as_str()),
            resume: (self.resume != crate::model::Resume::None).then(|| self.resume.as_str()),
            aws: aws.map(|(region, c, endpoint_name)| RawAws {
                region,
                access_key_id: &c.access_key_id,
                secret_access_key: &c.secret_access_key,
                session_token: c.session_token.as_ref(),
                endpoint_name,
            }),
            discovery: self.discovery.as_ref(),
        }
        .serialize(s)
    }
}

/// The whole config as the file has it: the configured replicas, then the
/// templates, without the members discovery added to a serving generation
/// (their template stands for them); derived fields left out.
impl Serialize for Config {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Raw<'a> {
            server: &'a ServerConfig,
            clouds: &'a BTreeMap<String, Cloud>,
            models: &'a [ModelGroup],
            replicas: Vec<&'a Replica>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            tenants: &'a [Tenant],
            #[serde(skip_serializing_if = "crate::jwt::ClientAuth::is_empty")]
            auth: &'a crate::jwt::ClientAuth,
            #[serde(skip_serializing_if = "Option::is_none")]
            global_limits: Option<&'a crate::GlobalLimits>,
        }
        Raw {
            server: &self.server,
            clouds: &self.clouds,
            models: &self.models,
            replicas: self
                .replicas
                .iter()
                .filter(|r| r.membership == crate::Membership::Config)
                .chain(&self.templates)
                .collect(),
            tenants: &self.tenants,
            auth: &self.auth,
            global_limits: self.global_limits.as_ref(),
        }
        .serialize(s)
    }
}

/// `replicas[i].auth` as the file has it: one of `bearer`, `header` +
/// `value`, `bearer_file`, `header` + `value_file`.
#[derive(Default, Serialize)]
struct RawAuth<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    bearer: Option<&'a Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bearer_file: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_file: Option<&'a Path>,
}

impl Serialize for UpstreamAuth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = match self {
            UpstreamAuth::Bearer(token) => RawAuth {
                bearer: Some(token),
                ..RawAuth::default()
            },
            UpstreamAuth::Header { name, value } => RawAuth {
                header: Some(name),
                value: Some(value),
                ..RawAuth::default()
            },
            UpstreamAuth::File { header: None, path } => RawAuth {
                bearer_file: Some(path),
                ..RawAuth::default()
            },
            UpstreamAuth::File {
                header: Some(name),
                path,
            } => RawAuth {
                header: Some(name),
                value_file: Some(path),
                ..RawAuth::default()
            },
        };
        raw.serialize(s)
    }
}
