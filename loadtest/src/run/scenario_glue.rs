//! The few calls the scenario runner (`crate::scenario`) makes into `run`:
//! building a [`LoadSpec`] from a scenario's `load:` section, and the
//! numbers its assertions check. Kept here so the scenario runner does not
//! re-derive load semantics (e.g. its duration includes the warm-up).

use std::time::Duration;

use anyhow::Context;

use super::{Endpoint, LoadReport, LoadSpec, Mode, PromptSizes, Workload};
use crate::scenario::spec::LoadSection;

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("load.{name}: {v}"))
}

/// The [`LoadSpec`] of a scenario's `load:` against `url`. The scenario's
/// `duration_secs` includes its `warmup_secs`; `rate` (open loop) wins over
/// `concurrency` (closed loop, default 64).
pub fn spec_from_scenario(
    load: &LoadSection,
    url: &str,
    progress: bool,
) -> anyhow::Result<LoadSpec> {
    let mode = match (load.rate, load.concurrency) {
        (Some(rate_per_sec), _) => Mode::Open {
            rate_per_sec,
            max_in_flight: load.max_in_flight,
        },
        (None, c) => Mode::Closed {
            concurrency: c.unwrap_or(64),
        },
    };
    let workload = load
        .mix
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let endpoint =
                Endpoint::parse(&m.endpoint).with_context(|| format!("load.mix[{i}]"))?;
            let stream = m.stream && endpoint.can_stream();
            Ok((
                m.weight,
                Workload {
                    endpoint,
                    model: m.model.clone(),
                    stream,
                    api_key: m.api_key.clone(),
                },
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let warmup = secs("warmup_secs", load.warmup_secs)?;
    let total = secs("duration_secs", load.duration_secs)?;
    Ok(LoadSpec {
        url: url.to_owned(),
        mode,
        duration: total.saturating_sub(warmup),
        max_requests: None,
        warmup,
        workload,
        prompt: PromptSizes::Fixed(load.prompt_bytes),
        shared_prefix: None,
        request_timeout: secs("timeout_secs", load.timeout_secs)?,
        progress,
        api_key: None,
    })
}

impl LoadReport {
    /// Measured requests (same as `requests`).
    pub fn total(&self) -> u64 {
        self.requests
    }

    /// Measured requests whose verdict was not `complete` (same as the
    /// `failed` field).
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// Streams that ended with neither `[DONE]`/`finish_reason` nor an
    /// error event.
    pub fn silent_truncations(&self) -> u64 {
        self.verdict("silent-truncation")
    }

    /// p99 latency of `complete` requests in ms (failures are bounded by
    /// their own assertion; counting timeouts here would hide them in a
    /// number).
    pub fn p99_ms(&self) -> f64 {
        self.latency_ms.p99
    }

    /// `complete=N  http_503=M ...` on one line, for messages.
    pub fn verdicts_line(&self) -> String {
        self.verdicts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("  ")
    }
}
