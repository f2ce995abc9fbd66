//! Raw -> validated. Collects every problem with its field path.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use url::Url;

use crate::model::*;
use crate::raw::*;
use crate::{FieldError, Secret};

mod cloud;

/// Turns a parsed file into a [`Config`], or lists every problem found.
pub fn validate(raw: RawConfig, hash: String) -> Result<Config, Vec<FieldError>> {
    let mut v = Validator::default();
    let server = v.server(raw.server);
    let clouds = v.clouds(raw.clouds);
    let models = v.models(raw.models);
    let replicas = v.replicas(raw.replicas, &models, &clouds);
    v.cross_checks(&models, &replicas);
    v.residency(&models, &clouds);
    if v.errors.is_empty() {
        Ok(Config {
            server,
            clouds,
            models,
            replicas,
            hash,
        })
    } else {
        Err(v.errors)
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.errors.push(FieldError::new(path, reason));
    }

    fn server(&mut self, raw: RawServer) -> ServerConfig {
        let listen = self.addr("server.listen", raw.listen.as_deref(), "0.0.0.0:8080");
        let admin_listen = self.addr(
            "server.admin_listen",
            raw.admin_listen.as_deref(),
            "127.0.0.1:9090",
        );
        let admin_token = match raw.admin_token {
            Some(t) if t.is_empty() => {
                self.err(
                    "server.admin_token",
                    "must not be empty (omit it to disable admin auth)",
                );
                None
            }
            Some(t) => Some(Secret::new(t)),
            None => None,
        };
        if admin_token.is_none() && !admin_listen.ip().is_loopback() {
            self.err(
                "server.admin_token",
                format!(
                    "required when server.admin_listen ({admin_listen}) is not a loopback address: \
                     the admin API can change routing"
                ),
            );
        }
        if listen == admin_listen && listen.port() != 0 {
            self.err("server.admin_listen", "must differ from server.listen");
        }
        let limits = self.limits(raw.limits);
        ServerConfig {
            listen,
            admin_listen,
            admin_token,
            limits,
        }
    }

    fn addr(&mut self, path: &str, raw: Option<&str>, default: &str) -> SocketAddr {
        let text = raw.unwrap_or(default);
        text.parse().unwrap_or_else(|_| {
            self.err(
                path,
                format!("`{text}` is not an IP:port address (e.g. 127.0.0.1:8080)"),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        })
    }

    fn limits(&mut self, raw: RawLimits) -> Limits {
        let d = Limits::default();
        let p = "server.limits";
        let request_timeout = self
            .ms(p, "request_timeout_ms", raw.request_timeout_ms)
            .unwrap_or(d.request_timeout);
        let attempt_timeout = self
            .ms(p, "attempt_timeout_ms", raw.attempt_timeout_ms)
            .unwrap_or(request_timeout);
        Limits {
            request_timeout,
            attempt_timeout,
            first_token_timeout: self
                .ms(p, "first_token_timeout_ms", raw.first_token_timeout_ms)
                .unwrap_or(attempt_timeout),
            sse_keepalive: match self.int(p, "sse_keepalive_ms", raw.sse_keepalive_ms, 0, 3_600_000)
            {
                Some(0) => None,
                Some(ms) => Some(Duration::from_millis(ms as u64)),
                None => d.sse_keepalive,
            },
            max_buffered_bytes: self
                .int(p, "max_buffered_bytes", raw.max_buffered_bytes, 1, 1 << 40)
                .unwrap_or(d.max_buffered_bytes),
            max_body_bytes: self
                .int(p, "max_body_bytes", raw.max_body_bytes, 1, 1 << 30)
                .unwrap_or(d.max_body_bytes),
            max_header_bytes: self
                .int(p, "max_header_bytes", raw.max_header_bytes, 8192, 1 << 20)
                .unwrap_or(d.max_header_bytes),
            header_read_timeout: self
                .ms(p, "header_read_timeout_ms", raw.header_read_timeout_ms)
                .unwrap_or(d.header_read_timeout),
            body_read_timeout: self
                .ms(p, "body_read_timeout_ms", raw.body_read_timeout_ms)
                .unwrap_or(d.body_read_timeout),
            connect_timeout: self
                .ms(p, "connect_timeout_ms", raw.connect_timeout_ms)
                .unwrap_or(d.connect_timeout),
            stream_idle_timeout: self
                .ms(p, "stream_idle_timeout_ms", raw.stream_idle_timeout_ms)
                .unwrap_or(d.stream_idle_timeout),
            shutdown_grace: self
                .ms(p, "shutdown_grace_ms", raw.shutdown_grace_ms)
                .unwrap_or(d.shutdown_grace),
            drain_timeout: self
                .ms(p, "drain_timeout_ms", raw.drain_timeout_ms)
                .unwrap_or(d.drain_timeout),
            shutdown_overlap: self
                .int(
                    p,
                    "shutdown_overlap_ms",
                    raw.shutdown_overlap_ms,
                    0,
                    600_000,
                )
                .map_or(d.shutdown_overlap, |ms| Duration::from_millis(ms as u64)),
            pool_idle_timeout: self
                .ms(p, "pool_idle_timeout_ms", raw.pool_idle_timeout_ms)
                .unwrap_or(d.pool_idle_timeout),
            pool_max_idle_per_host: self
                .int(
                    p,
                    "pool_max_idle_per_host",
                    raw.pool_max_idle_per_host,
                    0,
                    65_536,
                )
                .unwrap_or(d.pool_max_idle_per_host),
        }
    }

    /// `None` when absent or invalid (the error is recorded); the caller uses the default.
    fn int(
        &mut self,
        base: &str,
        field: &str,
        v: Option<i64>,
        min: i64,
        max: i64,
    ) -> Option<usize> {
        let v = v?;
        if (min..=max).contains(&v) {
            Some(v as usize)
        } else {
            self.err(
                format!("{base}.{field}"),
                format!("must be {min}..={max}, got {v}"),
            );
            None
        }
    }

    fn ms(&mut self, base: &str, field: &str, v: Option<i64>) -> Option<Duration> {
        self.int(base, field, v, 1, 24 * 3600 * 1000)
            .map(|ms| Duration::from_millis(ms as u64))
    }

    fn clouds(&mut self, raw: BTreeMap<String, RawCloud>) -> BTreeMap<String, Cloud> {
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

    /// Names appear in URLs, headers and `group@version`: keep them plain.
    fn name(&mut self, path: &str, name: &str) {
        if name.is_empty() {
            self.err(path, "must not be empty");
        } else if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-:/".contains(*c)))
        {
            self.err(
                path,
                format!("`{name}` contains `{c}`; use letters, digits and . _ - : /"),
            );
        }
    }

    fn models(&mut self, raw: Vec<RawModel>) -> Vec<ModelGroup> {
        if raw.is_empty() {
            self.err("models", "at least one model group is required");
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (i, m) in raw.into_iter().enumerate() {
            let path = format!("models[{i}]");
            self.name(&format!("{path}.name"), &m.name);
            if !seen.insert(m.name.clone()) {
                self.err(
                    format!("{path}.name"),
                    format!("duplicate model group `{}`", m.name),
                );
            }
            let versions = self.versions(&path, m.versions);
            let policy = match m.routing.policy.as_deref() {
                None | Some("cost_aware") => Policy::CostAware,
                Some("least_loaded") => Policy::LeastLoaded,
                Some("round_robin") => Policy::RoundRobin,
                Some("weighted") => Policy::Weighted,
                Some("affinity") => Policy::Affinity,
                Some(other) => {
                    self.err(
                        format!("{path}.routing.policy"),
                        format!(
                            "unknown policy `{other}` (expected cost_aware, least_loaded, round_robin, weighted or affinity)"
                        ),
                    );
                    Policy::CostAware
                }
            };
            let spill_at = m.routing.spill_at.unwrap_or(0.8);
            if !(spill_at > 0.0 && spill_at <= 1.0) {
                self.err(
                    format!("{path}.routing.spill_at"),
                    format!("must be > 0 and <= 1, got {spill_at}"),
                );
            }
            let rollout = m
                .rollout
                .and_then(|r| self.rollout(&format!("{path}.rollout"), r, &versions));
            out.push(ModelGroup {
                rollout,
                name: m.name,
                versions,
                fallbacks: m.fallbacks,
                residency: m.residency,
                health_check: m
                    .health_check
                    .map(|h| self.health_check(&format!("{path}.health_check"), h)),
                routing: Routing {
                    slow_start: self
                        .int(
                            &format!("{path}.routing"),
                            "slow_start_ms",
                            m.routing.slow_start_ms,
                            0,
                            3_600_000,
                        )
                        .map_or(Duration::from_secs(10), |ms| {
                            Duration::from_millis(ms as u64)
                        }),
                    affinity: self.affinity(
                        &format!("{path}.routing"),
                        m.routing.affinity_header,
                        m.routing.affinity_prefix_bytes,
                        m.routing.affinity_load_factor,
                    ),
                    policy,
                    spill_at,
                    queue_size: self
                        .int(
                            &format!("{path}.routing"),
                            "queue_size",
                            m.routing.queue_size,
                            0,
                            100_000,
                        )
                        .unwrap_or(64),
                    queue_timeout: self
                        .ms(
                            &format!("{path}.routing"),
                            "queue_timeout_ms",
                            m.routing.queue_timeout_ms,
                        )
                        .unwrap_or(Duration::from_secs(5)),
                },
            });
        }
        // Fallbacks need the full list of names.
        let names: HashSet<&str> = out.iter().map(|m| m.name.as_str()).collect();
        for (i, m) in out.iter().enumerate() {
            for (j, f) in m.fallbacks.iter().enumerate() {
                let path = format!("models[{i}].fallbacks[{j}]");
                if f == &m.name {
                    self.err(path, "a group cannot fall back to itself");
                } else if !names.contains(f.as_str()) {
                    self.errors
                        .push(FieldError::new(path, format!("unknown model group `{f}`")));
                }
            }
        }
        out
    }

    fn rollout(&mut self, path: &str, raw: RawRollout, versions: &[Version]) -> Option<Rollout> {
        let known = |v: &str| versions.iter().any(|x| x.name == v);
        let names = || {
            versions
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let before = self.errors.len();
        if !known(&raw.canary) {
            self.err(
                format!("{path}.canary"),
                format!("unknown version `{}` (versions: {})", raw.canary, names()),
            );
        }
        let baseline = match raw.baseline {
            Some(b) if !known(&b) => {
                self.err(
                    format!("{path}.baseline"),
                    format!("unknown version `{b}` (versions: {})", names()),
                );
                b
            }
            Some(b) if b == raw.canary => {
                self.err(
                    format!("{path}.baseline"),
                    "must differ from the canary version",
                );
                b
            }
            Some(b) => b,
            None => match versions
                .iter()
                .filter(|v| v.name != raw.canary)
                .max_by_key(|v| v.weight)
            {
                Some(v) => v.name.clone(),
                None => {
                    self.err(
                        format!("{path}.baseline"),
                        "the group needs a second version to compare the canary with",
                    );
                    String::new()
                }
            },
        };
        let steps = raw.steps.unwrap_or_else(|| vec![5, 25, 50, 100]);
        if steps.is_empty() {
            self.err(format!("{path}.steps"), "at least one step is required");
        }
        for (k, s) in steps.iter().enumerate() {
            if !(1..=100).contains(s) {
                self.err(
                    format!("{path}.steps[{k}]"),
                    format!("must be 1..=100 (percent of traffic), got {s}"),
                );
            } else if k > 0 && *s <= steps[k - 1] {
                self.err(
                    format!("{path}.steps[{k}]"),
                    format!("steps must increase, got {s} after {}", steps[k - 1]),
                );
            }
        }
        let max_error_rate_increase = raw.max_error_rate_increase.unwrap_or(0.02);
        if !(0.0..=1.0).contains(&max_error_rate_increase) {
            self.err(
                format!("{path}.max_error_rate_increase"),
                format!("must be 0..=1, got {max_error_rate_increase}"),
            );
        }
        let max_p95_ratio = raw.max_p95_ratio.unwrap_or(1.5);
        if !(max_p95_ratio >= 1.0 && max_p95_ratio.is_finite()) {
            self.err(
                format!("{path}.max_p95_ratio"),
                format!("must be a number >= 1, got {max_p95_ratio}"),
            );
        }
        let rollout = Rollout {
            step_interval: self
                .ms(path, "step_interval_ms", raw.step_interval_ms)
                .unwrap_or(Duration::from_secs(60)),
            min_requests: self
                .int(path, "min_requests", raw.min_requests, 1, 1_000_000)
                .unwrap_or(20) as u64,
            canary: raw.canary,
            baseline,
            steps: steps.iter().map(|s| (*s).clamp(0, 100) as u32).collect(),
            max_error_rate_increase,
            max_p95_ratio,
        };
        (self.errors.len() == before).then_some(rollout)
    }

    /// `models[i].routing.affinity_*`.
    fn affinity(
        &mut self,
        path: &str,
        header: Option<String>,
        prefix_bytes: Option<i64>,
        load_factor: Option<f64>,
    ) -> Affinity {
        let d = Affinity::default();
        let header = match header {
            Some(h) if http_token(&h) => h.to_ascii_lowercase(),
            Some(h) => {
                self.err(
                    format!("{path}.affinity_header"),
                    format!("`{h}` is not a valid header name"),
                );
                d.header.clone()
            }
            None => d.header.clone(),
        };
        let load_factor = load_factor.unwrap_or(d.load_factor);
        if !(load_factor.is_finite() && (1.0..=100.0).contains(&load_factor)) {
            self.err(
                format!("{path}.affinity_load_factor"),
                format!("must be 1..=100 (1.25: 25% above average), got {load_factor}"),
            );
        }
        Affinity {
            header,
            prefix_bytes: self
                .int(path, "affinity_prefix_bytes", prefix_bytes, 0, 1 << 20)
                .unwrap_or(d.prefix_bytes),
            load_factor: load_factor.clamp(1.0, 100.0),
        }
    }

    /// `models[i].health_check`.
    fn health_check(&mut self, path: &str, raw: RawHealthCheck) -> HealthCheck {
        let interval = self
            .ms(path, "interval_ms", raw.interval_ms)
            .unwrap_or(Duration::from_secs(5));
        let timeout = self
            .ms(path, "timeout_ms", raw.timeout_ms)
            .unwrap_or(Duration::from_secs(1).min(interval));
        if timeout > interval {
            self.err(
                format!("{path}.timeout_ms"),
                format!(
                    "must not exceed interval_ms ({} ms), got {} ms",
                    interval.as_millis(),
                    timeout.as_millis()
                ),
            );
        }
        if let Some(p) = &raw.path
            && (!p.starts_with('/') || p.contains(['?', '#', ' ']))
        {
            self.err(
                format!("{path}.path"),
                format!("`{p}` must be an absolute path without query (e.g. /health)"),
            );
        }
        HealthCheck {
            interval,
            timeout,
            rise: self.int(path, "rise", raw.rise, 1, 100).unwrap_or(2) as u32,
            fall: self.int(path, "fall", raw.fall, 1, 100).unwrap_or(3) as u32,
            path: raw.path,
        }
    }

    fn versions(&mut self, path: &str, raw: Vec<RawVersion>) -> Vec<Version> {
        if raw.is_empty() {
            self.err(
                format!("{path}.versions"),
                "at least one version is required",
            );
            return Vec::new();
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(raw.len());
        for (j, v) in raw.into_iter().enumerate() {
            let vpath = format!("{path}.versions[{j}]");
            self.name(&format!("{vpath}.name"), &v.name);
            if !seen.insert(v.name.clone()) {
                self.err(
                    format!("{vpath}.name"),
                    format!("duplicate version `{}`", v.name),
                );
            }
            if !(0..=100).contains(&v.weight) {
                self.err(
                    format!("{vpath}.weight"),
                    format!("must be 0..=100, got {}", v.weight),
                );
            }
            out.push(Version {
                name: v.name,
                weight: v.weight.clamp(0, 100) as u32,
            });
        }
        if out.iter().all(|v| v.weight == 0) {
            self.err(
                format!("{path}.versions"),
                "total weight is 0: at least one version needs weight > 0",
            );
        }
        out
    }

    fn replicas(
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
                .unwrap_or(1) as u32;
            let max_concurrency = self
                .int(&path, "max_concurrency", r.max_concurrency, 1, 100_000)
                .unwrap_or(64) as u32;
            let cost = self.cost(&path, r.cost);
            let auth = self.auth(&path, r.auth);
            if r.upstream_model.as_ref().is_some_and(String::is_empty) {
                self.err(format!("{path}.upstream_model"), "must not be empty");
            }
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
                });
            }
        }
        out
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

    fn auth(&mut self, path: &str, raw: Option<RawAuth>) -> Option<UpstreamAuth> {
        let a = raw?;
        let path = format!("{path}.auth");
        if a.bearer_file.is_some() || a.value_file.is_some() {
            return self.auth_file(&path, a);
        }
        match (a.bearer, a.header, a.value) {
            (Some(b), None, None) if !b.is_empty() => Some(UpstreamAuth::Bearer(Secret::new(b))),
            (None, Some(name), Some(value)) if !value.is_empty() => {
                if http_token(&name) {
                    Some(UpstreamAuth::Header {
                        name: name.to_ascii_lowercase(),
                        value: Secret::new(value),
                    })
                } else {
                    self.err(
                        format!("{path}.header"),
                        format!("`{name}` is not a valid header name"),
                    );
                    None
                }
            }
            _ => {
                self.err(
                    path,
                    "set either `bearer`, or `header` and `value`, all non-empty",
                );
                None
            }
        }
    }

    fn cross_checks(&mut self, models: &[ModelGroup], replicas: &[Replica]) {
        for (i, m) in models.iter().enumerate() {
            for (j, v) in m.versions.iter().enumerate() {
                let served = replicas
                    .iter()
                    .any(|r| r.model == m.name && r.version == v.name);
                if !served && v.weight > 0 {
                    self.err(
                        format!("models[{i}].versions[{j}]"),
                        format!(
                            "`{}@{}` has weight {} but no replica serves it",
                            m.name, v.name, v.weight
                        ),
                    );
                }
            }
        }
    }
}

impl Validator {
    fn residency(&mut self, models: &[ModelGroup], clouds: &BTreeMap<String, Cloud>) {
        for (i, m) in models.iter().enumerate() {
            for (j, r) in m.residency.iter().enumerate() {
                let known =
                    clouds.contains_key(r) || ["aws", "azure", "private"].contains(&r.as_str());
                if !known {
                    self.err(
                        format!("models[{i}].residency[{j}]"),
                        format!("`{r}` is neither a cloud id nor a provider (aws, azure, private)"),
                    );
                }
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

fn http_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
