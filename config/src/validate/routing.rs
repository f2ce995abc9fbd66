//! `models[i].routing` (policy, queue, slow start, affinity) and
//! `models[i].health_check`.

use super::{Validator, http_token};
use crate::defaults as d;
use crate::model::{Affinity, HealthCheck, Policy, Routing, Scoring};
use crate::raw::{RawHealthCheck, RawRouting};

impl Validator<'_> {
    /// `models[i].routing`; `path` is that field.
    pub(super) fn routing(&mut self, path: &str, raw: RawRouting) -> Routing {
        let policy = match raw.policy.as_deref() {
            None | Some("cost_aware") => Policy::CostAware,
            Some("least_loaded") => Policy::LeastLoaded,
            Some("round_robin") => Policy::RoundRobin,
            Some("weighted") => Policy::Weighted,
            Some("affinity") => Policy::Affinity,
            Some("prefix_cache") => Policy::PrefixCache,
            Some(other) => {
                self.err(
                    format!("{path}.policy"),
                    format!(
                        "unknown policy `{other}` (expected cost_aware, least_loaded, round_robin, weighted, affinity or prefix_cache)"
                    ),
                );
                Policy::CostAware
            }
        };
        let spill_at = raw.spill_at.unwrap_or(d::SPILL_AT);
        if !(spill_at > 0.0 && spill_at <= 1.0) {
            self.err(
                format!("{path}.spill_at"),
                format!("must be > 0 and <= 1, got {spill_at}"),
            );
        }
        let scoring = self.scoring(path, &raw);
        Routing {
            scoring,
            slow_start: self
                .ms_or_zero(path, "slow_start_ms", raw.slow_start_ms, 3_600_000)
                .unwrap_or(d::SLOW_START),
            affinity: self.affinity(
                path,
                raw.affinity_header,
                raw.affinity_prefix_bytes,
                raw.affinity_load_factor,
            ),
            policy,
            spill_at,
            queue_size: self
                .int(path, "queue_size", raw.queue_size, 0, 100_000)
                .unwrap_or(d::QUEUE_SIZE),
            queue_timeout: self
                .ms(path, "queue_timeout_ms", raw.queue_timeout_ms)
                .unwrap_or(d::QUEUE_TIMEOUT),
            retry_after_max: self
                .ms_or_zero(path, "retry_after_max_ms", raw.retry_after_max_ms, 60_000)
                .unwrap_or(d::RETRY_AFTER_MAX),
            max_resumes: self
                .int(path, "max_resumes", raw.max_resumes, 0, 8)
                .map_or(d::MAX_RESUMES, |n| n as u32),
        }
    }

    /// `models[i].routing`'s engine-signal and prefix-cache settings.
    fn scoring(&mut self, path: &str, raw: &RawRouting) -> Scoring {
        let d = Scoring::default();
        let mut weight = |field: &str, v: Option<f64>, default: f64| {
            let w = v.unwrap_or(default);
            if !(w.is_finite() && (0.0..=100.0).contains(&w)) {
                self.err(
                    format!("{path}.{field}"),
                    format!("must be 0..=100, got {w}"),
                );
                return default;
            }
            w
        };
        let prefix_weight = weight("prefix_weight", raw.prefix_weight, d.prefix_weight);
        let queue_weight = weight("queue_weight", raw.queue_weight, d.queue_weight);
        let kv_weight = weight("kv_weight", raw.kv_weight, d.kv_weight);
        let lora_weight = weight("lora_weight", raw.lora_weight, d.lora_weight);
        let engine_interval = self
            .ms(path, "engine_interval_ms", raw.engine_interval_ms)
            .unwrap_or(d.engine_interval);
        let engine_stale = self
            .ms(path, "engine_stale_ms", raw.engine_stale_ms)
            .unwrap_or(d.engine_stale);
        if engine_stale < engine_interval {
            self.err(
                format!("{path}.engine_stale_ms"),
                format!(
                    "must be at least engine_interval_ms ({} ms), or every figure is stale",
                    engine_interval.as_millis()
                ),
            );
        }
        Scoring {
            engine_interval,
            engine_stale,
            prefix_block_bytes: self
                .int(
                    path,
                    "prefix_block_bytes",
                    raw.prefix_block_bytes,
                    8,
                    1 << 16,
                )
                .unwrap_or(d.prefix_block_bytes),
            prefix_max_blocks: self
                .int(path, "prefix_max_blocks", raw.prefix_max_blocks, 1, 4096)
                .unwrap_or(d.prefix_max_blocks),
            prefix_index_blocks: self
                .int(
                    path,
                    "prefix_index_blocks",
                    raw.prefix_index_blocks,
                    64,
                    1 << 22,
                )
                .unwrap_or(d.prefix_index_blocks),
            prefix_weight,
            queue_weight,
            kv_weight,
            lora_weight,
        }
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
    pub(super) fn health_check(&mut self, path: &str, raw: RawHealthCheck) -> HealthCheck {
        let interval = self
            .ms(path, "interval_ms", raw.interval_ms)
            .unwrap_or(d::HEALTH_INTERVAL);
        let timeout = self
            .ms(path, "timeout_ms", raw.timeout_ms)
            .unwrap_or(d::HEALTH_TIMEOUT.min(interval));
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
        let count = |v: Option<usize>, default: u32| v.map_or(default, |n| n as u32);
        HealthCheck {
            interval,
            timeout,
            rise: count(self.int(path, "rise", raw.rise, 1, 100), d::HEALTH_RISE),
            fall: count(self.int(path, "fall", raw.fall, 1, 100), d::HEALTH_FALL),
            path: raw.path,
        }
    }
}
