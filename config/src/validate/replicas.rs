//! `replicas:` identity, group and version, URL (with the SSRF guard), cost.
//! The protocol-specific parts are in [`super::cloud`], [`super::aws`],
//! [`super::tls`] and [`super::auth`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use url::Url;

use super::{Validator, cloud};
use crate::defaults as d;
use crate::model::{Cloud, Cost, Engine, ModelGroup, Provider, Replica, Resume};
use crate::raw::{RawCost, RawReplica};

impl Validator<'_> {
    pub(super) fn replicas(
        &mut self,
        raw: Vec<RawReplica>,
        models: &[ModelGroup],
        clouds: &BTreeMap<String, Cloud>,
    ) -> Vec<Replica> {
        let by_name: HashMap<&str, &ModelGroup> =
            models.iter().map(|m| (m.name.as_str(), m)).collect();
        let mut ids = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, r) in raw.into_iter().enumerate() {
            let path = format!("replicas[{i}]");
            self.name(&format!("{path}.id"), &r.id);
            if !ids.insert(r.id.clone()) {
                self.err(
                    format!("{path}.id"),
                    format!("duplicate replica id `{}`", r.id),
                );
            }
            let group = by_name.get(r.model.as_str()).copied();
            if group.is_none() {
                self.err(
                    format!("{path}.model"),
                    format!("unknown model group `{}`", r.model),
                );
            }
            let version = self.replica_version(&path, group, r.version.clone());
            let provider = match clouds.get(&r.cloud) {
                Some(c) => c.provider,
                None => {
                    self.err(format!("{path}.cloud"), unknown_cloud(&r.cloud, clouds));
                    Provider::Private
                }
            };
            let url = self.url(
                &format!("{path}.url"),
                &r.url,
                r.allow_link_local.unwrap_or(false),
            );
            let (protocol, cloud_api) = self.protocol(&path, &r, clouds);
            let tls = self.tls(&path, r.tls, url.as_ref());
            let weight = self
                .int(&path, "weight", r.weight, 1, 1_000_000)
                .map_or(d::REPLICA_WEIGHT, |n| n as u32);
            let max_concurrency = self
                .int(&path, "max_concurrency", r.max_concurrency, 1, 100_000)
                .map_or(d::MAX_CONCURRENCY, |n| n as u32);
            let cost = self.cost(&path, r.cost);
            let engine = self.engine(&path, r.engine.as_deref(), provider, cloud_api.is_some());
            let metrics_path = match r.metrics_path {
                Some(p) if p.starts_with('/') && !p.contains(['?', '#', ' ']) => p,
                Some(p) => {
                    self.err(
                        format!("{path}.metrics_path"),
                        format!("`{p}` must be an absolute path without query (e.g. /metrics)"),
                    );
                    d::METRICS_PATH.to_owned()
                }
                None => d::METRICS_PATH.to_owned(),
            };
            let auth = self.auth(&path, r.auth);
            let resume = self.resume(&path, r.resume.as_deref(), cloud_api.is_some(), protocol);
            if r.upstream_model.as_ref().is_some_and(String::is_empty) {
                self.err(format!("{path}.upstream_model"), "must not be empty");
            }
            let discovery = r
                .discovery
                .and_then(|raw| self.discovery(&path, raw, url.as_ref(), cloud_api.is_some()));
            if let Some(url) = url {
                out.push(Replica {
                    id: r.id,
                    model: r.model,
                    version,
                    cloud: r.cloud,
                    provider,
                    url,
                    protocol,
                    upstream_model: r.upstream_model,
                    max_concurrency,
                    weight,
                    cost,
                    auth,
                    cloud_api,
                    tls,
                    engine,
                    metrics_path,
                    resume,
                    discovery,
                    membership: crate::Membership::Config,
                    template: None,
                });
            }
        }
        out
    }

    /// `replicas[i].engine`: only private replicas have an engine whose
    /// metrics the gateway can read (a managed cloud's are its own).
    fn engine(
        &mut self,
        path: &str,
        engine: Option<&str>,
        provider: Provider,
        cloud_api: bool,
    ) -> Option<Engine> {
        let engine = match engine? {
            "vllm" => Engine::Vllm,
            "sglang" => Engine::Sglang,
            "trtllm_serve" => Engine::TrtllmServe,
            "triton_trtllm" => Engine::TritonTrtllm,
            "tgi" => Engine::Tgi,
            other => {
                self.err(
                    format!("{path}.engine"),
                    format!(
                        "unknown engine `{other}` (expected vllm, sglang, trtllm_serve, triton_trtllm or tgi)"
                    ),
                );
                return None;
            }
        };
        if cloud_api || provider != Provider::Private {
            self.err(
                format!("{path}.engine"),
                "only replicas in a private cloud have an engine to scrape",
            );
            return None;
        }
        Some(engine)
    }

    /// `replicas[i].resume`: only a replica that speaks OpenAI natively (a
    /// vLLM-like server, not a cloud API the gateway translates to) can
    /// take over an OpenAI chat stream.
    fn resume(
        &mut self,
        path: &str,
        resume: Option<&str>,
        cloud_api: bool,
        protocol: crate::model::Protocol,
    ) -> Resume {
        let resume = match resume {
            None | Some("none") => return Resume::None,
            Some("prefill") => Resume::Prefill,
            Some("regenerate") => Resume::Regenerate,
            Some("token_ids") => Resume::TokenIds,
            Some(other) => {
                self.err(
                    format!("{path}.resume"),
                    format!("unknown strategy `{other}` (expected token_ids, prefill, regenerate or none)"),
                );
                return Resume::None;
            }
        };
        if cloud_api || protocol != crate::model::Protocol::OpenAi {
            self.err(
                format!("{path}.resume"),
                "only a replica speaking the OpenAI protocol natively can continue a stream",
            );
            return Resume::None;
        }
        resume
    }

    fn replica_version(
        &mut self,
        path: &str,
        group: Option<&ModelGroup>,
        version: Option<String>,
    ) -> String {
        let Some(group) = group else {
            return version.unwrap_or_default();
        };
        match version {
            Some(v) if group.versions.iter().any(|gv| gv.name == v) => v,
            Some(v) => {
                let known: Vec<&str> = group.versions.iter().map(|v| v.name.as_str()).collect();
                self.err(
                    format!("{path}.version"),
                    format!(
                        "model group `{}` has no version `{v}` (it has: {})",
                        group.name,
                        known.join(", ")
                    ),
                );
                v
            }
            None if group.versions.len() == 1 => group.versions[0].name.clone(),
            None => {
                self.err(
                    format!("{path}.version"),
                    format!(
                        "required: model group `{}` has several versions",
                        group.name
                    ),
                );
                String::new()
            }
        }
    }

    fn url(&mut self, path: &str, text: &str, allow_link_local: bool) -> Option<Url> {
        let url = match Url::parse(text) {
            Ok(u) => u,
            Err(e) => {
                self.err(path, format!("`{text}` is not a URL: {e}"));
                return None;
            }
        };
        match url.scheme() {
            "http" | "https" => {}
            s => {
                self.err(
                    path,
                    format!("scheme `{s}` is not allowed (expected http or https)"),
                );
                return None;
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            self.err(path, "must name a host");
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            self.err(
                path,
                "must not carry credentials; use the replica's `auth` section",
            );
            return None;
        }
        if url.query().is_some() || url.fragment().is_some() {
            self.err(path, "must not have a query or fragment");
            return None;
        }
        if let Some(url::Host::Ipv4(ip)) = url.host()
            && IpAddr::V4(ip).is_unspecified()
        {
            self.err(
                path,
                "0.0.0.0 is not a destination; name the replica's address",
            );
            return None;
        }
        if !allow_link_local && let Some(why) = cloud::metadata_address(&url) {
            self.err(
                path,
                format!(
                    "{why}: a link-local / cloud metadata address is refused (SSRF guard); \
                     set `allow_link_local: true` on the replica if it is really meant"
                ),
            );
            return None;
        }
        Some(url)
    }

    fn cost(&mut self, path: &str, raw: Option<RawCost>) -> Cost {
        let Some(c) = raw else { return Cost::default() };
        for (field, v) in [
            ("input_per_1k", c.input_per_1k),
            ("output_per_1k", c.output_per_1k),
        ] {
            if !v.is_finite() || v < 0.0 {
                self.err(
                    format!("{path}.cost.{field}"),
                    format!("must be >= 0, got {v}"),
                );
            }
        }
        match (c.per_hour, c.tokens_per_hour) {
            (None, None) => Cost {
                input_per_1k: c.input_per_1k.max(0.0),
                output_per_1k: c.output_per_1k.max(0.0),
                ..Cost::default()
            },
            (Some(per_hour), Some(tokens)) => {
                if c.input_per_1k != 0.0 || c.output_per_1k != 0.0 {
                    self.err(
                        format!("{path}.cost"),
                        "give either per_1k prices or per_hour + tokens_per_hour, not both",
                    );
                }
                if !per_hour.is_finite() || per_hour < 0.0 {
                    self.err(
                        format!("{path}.cost.per_hour"),
                        format!("must be >= 0, got {per_hour}"),
                    );
                }
                if !tokens.is_finite() || tokens <= 0.0 {
                    self.err(
                        format!("{path}.cost.tokens_per_hour"),
                        format!("must be > 0 (tokens served per hour when busy), got {tokens}"),
                    );
                }
                let per_1k = if tokens > 0.0 && per_hour >= 0.0 {
                    per_hour / tokens * 1000.0
                } else {
                    0.0
                };
                Cost {
                    input_per_1k: per_1k,
                    output_per_1k: per_1k,
                    per_hour: Some(per_hour),
                    tokens_per_hour: Some(tokens),
                }
            }
            (Some(_), None) => {
                self.err(
                    format!("{path}.cost.tokens_per_hour"),
                    "required with per_hour: the tokens it serves per hour turn the hourly price into a price per token",
                );
                Cost::default()
            }
            (None, Some(_)) => {
                self.err(
                    format!("{path}.cost.per_hour"),
                    "required with tokens_per_hour",
                );
                Cost::default()
            }
        }
    }
}

fn unknown_cloud(id: &str, clouds: &BTreeMap<String, Cloud>) -> String {
    if clouds.is_empty() {
        format!("unknown cloud `{id}` (no `clouds` are defined)")
    } else {
        let known: Vec<&str> = clouds.keys().map(String::as_str).collect();
        format!("unknown cloud `{id}` (defined: {})", known.join(", "))
    }
}
