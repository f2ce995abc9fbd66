//! The result of a run as a value: totals, percentiles, per-verdict counts,
//! who served what, and a per-second timeline. It serializes to the JSON
//! that `--json` writes and `loadtest/bench/run.sh` reads, and keeps the raw
//! HDR histograms for callers that want other quantiles.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::recorder::{Histograms, Recorder};
use super::{LoadSpec, Mode, PrefixCacheStats, PromptSizes, SharedPrefix, Workload};

/// Quantiles of a microsecond histogram, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

impl Percentiles {
    /// Quantiles of `h` (microseconds) in ms; `None` when empty.
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        (!h.is_empty()).then(|| Self::of_scaled(h, 1000.0))
    }

    fn of_scaled(h: &Histogram<u64>, div: f64) -> Self {
        let v = |q: f64| h.value_at_quantile(q) as f64 / div;
        Self {
            count: h.len(),
            mean: h.mean() / div,
            p50: v(0.5),
            p90: v(0.9),
            p99: v(0.99),
            p999: v(0.999),
            max: h.max() as f64 / div,
        }
    }

    fn zero() -> Self {
        Self {
            count: 0,
            mean: 0.0,
            p50: 0.0,
            p90: 0.0,
            p99: 0.0,
            p999: 0.0,
            max: 0.0,
        }
    }
}

/// One entry of the workload mix, as reported.
#[derive(Clone, Debug, Serialize)]
pub struct MixItem {
    /// Relative weight.
    pub weight: f64,
    /// The request kind.
    #[serde(flatten)]
    pub workload: Workload,
}

/// Tokens received over streams.
#[derive(Clone, Debug, Serialize)]
pub struct TokenStats {
    /// All content tokens received in the measured window.
    pub total: u64,
    /// `total / seconds`.
    pub per_sec: f64,
    /// Median tokens per stream.
    pub per_stream_p50: u64,
    /// Fewest tokens in a stream.
    pub per_stream_min: u64,
}

/// One second of the timeline (requests that *completed* in it).
#[derive(Clone, Debug, Serialize)]
pub struct Second {
    /// Start of the second, in seconds since `run_load` began (event
    /// markers use the same clock).
    pub t: f64,
    /// Measured requests finished in this second.
    pub completed: u64,
    /// Of which `complete`.
    pub ok: u64,
    /// Of which anything else.
    pub failed: u64,
    /// Count per verdict label.
    pub verdicts: BTreeMap<String, u64>,
    /// Median latency (all verdicts) in ms.
    pub latency_p50_ms: f64,
    /// 99th percentile latency (all verdicts) in ms.
    pub latency_p99_ms: f64,
    /// Largest latency in ms.
    pub latency_max_ms: f64,
    /// Requests per `x-switchyard-replica` (or `x-fake-replica`).
    pub replicas: BTreeMap<String, u64>,
    /// Requests per `x-switchyard-version`.
    pub versions: BTreeMap<String, u64>,
    /// Requests per `x-switchyard-config-generation`.
    pub generations: BTreeMap<String, u64>,
}

/// Everything a run measured. Warm-up requests are in none of it.
#[derive(Serialize)]
pub struct LoadReport {
    /// Target base URL.
    pub url: String,
    /// Pacing.
    pub mode: Mode,
    /// The workload mix.
    pub workload: Vec<MixItem>,
    /// Prompt sizes.
    pub prompt_bytes: PromptSizes,
    /// The shared-prefix conversations, when that was the workload
    /// (`workload` and `prompt_bytes` then did not apply).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared_prefix: Option<SharedPrefix>,
    /// Warm-up length in seconds (t of the first measured second).
    pub warmup_seconds: f64,
    /// Length of the measured window in seconds.
    pub seconds: f64,
    /// Measured requests.
    pub requests: u64,
    /// Of which `complete`.
    pub ok: u64,
    /// Of which anything else.
    pub failed: u64,
    /// `requests / seconds`.
    pub rps: f64,
    /// `ok / seconds`.
    pub ok_rps: f64,
    /// Count per verdict label (`complete`, `silent-truncation`, `http_503`...).
    pub verdicts: BTreeMap<String, u64>,
    /// Count per HTTP status, or per verdict label when there was none.
    pub statuses: BTreeMap<String, u64>,
    /// Latency of `complete` requests from intended send to last byte.
    pub latency_ms: Percentiles,
    /// Latency of all requests, failures included.
    pub latency_all_ms: Percentiles,
    /// Time from intended send to first body byte.
    pub ttfb_ms: Option<Percentiles>,
    /// Time from intended send to first content token (streams).
    pub ttft_ms: Option<Percentiles>,
    /// Gaps between content tokens (streams).
    pub inter_token_ms: Option<Percentiles>,
    /// Across gateway resumes (`: switchyard resumed on`): last token
    /// before the break to the first token after; absent without resumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_gap_ms: Option<Percentiles>,
    /// Tokens received (streams).
    pub tokens: TokenStats,
    /// Requests per replica header.
    pub replicas: BTreeMap<String, u64>,
    /// Requests per model version header.
    pub versions: BTreeMap<String, u64>,
    /// Requests per config generation header.
    pub generations: BTreeMap<String, u64>,
    /// Open loop: the latest a request was sent after its due time (the
    /// generator or `max_in_flight` could not keep up when large).
    pub max_send_lag_ms: f64,
    /// `--engine-metrics`: the replicas' prefix-cache counters over the
    /// run (warm-up included), read from their `/metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_cache: Option<PrefixCacheStats>,
    /// One entry per second from the first measured completion on.
    pub timeline: Vec<Second>,
    /// The raw HDR histograms (not serialized), for in-process callers that
    /// want other quantiles.
    #[serde(skip)]
    #[allow(dead_code, reason = "read by in-process callers, not the binary")]
    pub histograms: Histograms,
}

impl LoadReport {
    /// Builds the report from the tally and the measured window length.
    pub(crate) fn new(spec: &LoadSpec, rec: Recorder, seconds: f64) -> Self {
        let seconds = seconds.max(1e-9);
        let timeline = rec
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.as_ref().map(|b| (i, b)))
            .map(|(i, b)| Second {
                t: i as f64,
                completed: b.completed,
                ok: b.ok,
                failed: b.completed - b.ok,
                verdicts: b.verdicts.clone(),
                latency_p50_ms: b.latency.value_at_quantile(0.5) as f64 / 1000.0,
                latency_p99_ms: b.latency.value_at_quantile(0.99) as f64 / 1000.0,
                latency_max_ms: b.latency.max() as f64 / 1000.0,
                replicas: b.replicas.clone(),
                versions: b.versions.clone(),
                generations: b.generations.clone(),
            })
            .collect();
        let h = &rec.hist;
        let tokens = TokenStats {
            total: rec.tokens,
            per_sec: rec.tokens as f64 / seconds,
            per_stream_p50: h.tokens_per_stream.value_at_quantile(0.5),
            per_stream_min: h.tokens_per_stream.min(),
        };
        Self {
            url: spec.url.clone(),
            mode: spec.mode,
            workload: spec
                .workload
                .iter()
                .map(|(weight, w)| MixItem {
                    weight: *weight,
                    workload: w.clone(),
                })
                .collect(),
            prompt_bytes: spec.prompt.clone(),
            shared_prefix: spec.shared_prefix.clone(),
            warmup_seconds: spec.warmup.as_secs_f64(),
            seconds,
            requests: rec.requests,
            ok: rec.ok,
            failed: rec.requests - rec.ok,
            rps: rec.requests as f64 / seconds,
            ok_rps: rec.ok as f64 / seconds,
            latency_ms: Percentiles::of(&h.latency_ok).unwrap_or_else(Percentiles::zero),
            latency_all_ms: Percentiles::of(&h.latency_all).unwrap_or_else(Percentiles::zero),
            ttfb_ms: Percentiles::of(&h.ttfb),
            ttft_ms: Percentiles::of(&h.ttft),
            inter_token_ms: Percentiles::of(&h.inter_token),
            resume_gap_ms: Percentiles::of(&h.resume_gap),
            tokens,
            verdicts: rec.verdicts,
            statuses: rec.statuses,
            replicas: rec.replicas,
            versions: rec.versions,
            generations: rec.generations,
            max_send_lag_ms: rec.max_send_lag.as_secs_f64() * 1000.0,
            prefix_cache: None,
            timeline,
            histograms: rec.hist,
        }
    }

    /// The report as JSON (the `--json` file).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}))
    }

    /// Count of one verdict label (0 when absent).
    pub fn verdict(&self, label: &str) -> u64 {
        self.verdicts.get(label).copied().unwrap_or(0)
    }

    /// Traffic share over time: the timeline cut into `windows` equal spans,
    /// each with the fraction of its requests per key of `by` (for example
    /// `|s| &s.versions`). Lets a scenario assert "after the swap, 90% went
    /// to v2" without re-deriving windows itself.
    pub fn split_over_time(
        &self,
        windows: usize,
        by: impl Fn(&Second) -> &BTreeMap<String, u64>,
    ) -> Vec<(f64, f64, BTreeMap<String, f64>)> {
        let (Some(first), Some(last)) = (self.timeline.first(), self.timeline.last()) else {
            return Vec::new();
        };
        let span = (last.t + 1.0 - first.t).max(1.0);
        let n = windows.clamp(1, span as usize);
        let width = (span / n as f64).ceil();
        let mut out = Vec::new();
        let mut t0 = first.t;
        while t0 <= last.t {
            let t1 = t0 + width;
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            for s in self.timeline.iter().filter(|s| s.t >= t0 && s.t < t1) {
                for (k, v) in by(s) {
                    *counts.entry(k.clone()).or_default() += v;
                }
            }
            let total = counts.values().sum::<u64>().max(1) as f64;
            let shares = counts
                .into_iter()
                .map(|(k, v)| (k, v as f64 / total))
                .collect();
            out.push((t0, t1, shares));
            t0 = t1;
        }
        out
    }
}
