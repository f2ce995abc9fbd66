//! The tally a run fills while it goes: HDR histograms for the whole
//! measured window, and one small bucket per second (by completion time) so
//! the report can show latency, throughput and the traffic split over time.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::exchange::Outcome;

/// Microsecond histogram up to 10 minutes with `sigfig` significant digits.
pub(crate) fn micros_histogram(sigfig: u8) -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 600_000_000, sigfig).context("histogram bounds")
}

fn us(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// Adds one to `map[key]` without allocating when the key exists.
pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// Whole-window histograms, in microseconds (tokens: counts).
pub struct Histograms {
    /// Latency of `complete` requests, from intended send to last byte.
    pub latency_ok: Histogram<u64>,
    /// Latency of every measured request, failures included.
    pub latency_all: Histogram<u64>,
    /// Time from intended send to the first body byte.
    pub ttfb: Histogram<u64>,
    /// Time from intended send to the first content token (streams).
    pub ttft: Histogram<u64>,
    /// Gaps between consecutive content tokens (streams).
    pub inter_token: Histogram<u64>,
    /// Tokens received per stream.
    pub tokens_per_stream: Histogram<u64>,
    /// Across a gateway resume: the last token before the break to the
    /// first token from the replica that continued the stream.
    pub resume_gap: Histogram<u64>,
}

/// One second of the timeline, as recorded.
pub(crate) struct Bucket {
    pub(crate) completed: u64,
    pub(crate) ok: u64,
    pub(crate) verdicts: BTreeMap<String, u64>,
    pub(crate) latency: Histogram<u64>,
    pub(crate) replicas: BTreeMap<String, u64>,
    pub(crate) versions: BTreeMap<String, u64>,
    pub(crate) generations: BTreeMap<String, u64>,
}

/// Everything measured so far.
pub(crate) struct Recorder {
    pub(crate) start: Instant,
    pub(crate) hist: Histograms,
    pub(crate) requests: u64,
    pub(crate) ok: u64,
    pub(crate) tokens: u64,
    pub(crate) verdicts: BTreeMap<String, u64>,
    pub(crate) statuses: BTreeMap<String, u64>,
    pub(crate) replicas: BTreeMap<String, u64>,
    pub(crate) versions: BTreeMap<String, u64>,
    pub(crate) generations: BTreeMap<String, u64>,
    pub(crate) max_send_lag: Duration,
    pub(crate) buckets: Vec<Option<Bucket>>,
}

impl Recorder {
    /// An empty tally; timeline offsets count from `start`.
    pub(crate) fn new(start: Instant) -> anyhow::Result<Self> {
        Ok(Self {
            start,
            hist: Histograms {
                latency_ok: micros_histogram(3)?,
                latency_all: micros_histogram(3)?,
                ttfb: micros_histogram(3)?,
                ttft: micros_histogram(3)?,
                inter_token: micros_histogram(3)?,
                resume_gap: micros_histogram(3)?,
                tokens_per_stream: Histogram::new_with_bounds(1, 10_000_000, 2)
                    .context("histogram bounds")?,
            },
            requests: 0,
            ok: 0,
            tokens: 0,
            verdicts: BTreeMap::new(),
            statuses: BTreeMap::new(),
            replicas: BTreeMap::new(),
            versions: BTreeMap::new(),
            generations: BTreeMap::new(),
            max_send_lag: Duration::ZERO,
            buckets: Vec::new(),
        })
    }

    /// Records one measured request that finished at `done`.
    pub(crate) fn record(&mut self, o: &Outcome, done: Instant) {
        let verdict = o.verdict.unwrap_or(super::Verdict::Reset);
        let label = verdict.label();
        self.requests += 1;
        bump(&mut self.verdicts, &label);
        let status = o.status.map_or_else(|| label.clone(), |s| s.to_string());
        bump(&mut self.statuses, &status);
        let h = &mut self.hist;
        h.latency_all.saturating_record(us(o.latency));
        if verdict.is_ok() {
            self.ok += 1;
            h.latency_ok.saturating_record(us(o.latency));
        }
        if let Some(t) = o.ttfb {
            h.ttfb.saturating_record(us(t));
        }
        if let Some(t) = o.ttft {
            h.ttft.saturating_record(us(t));
        }
        for g in &o.gaps {
            h.inter_token.saturating_record(us(*g));
        }
        for g in &o.resume_gaps {
            h.resume_gap.saturating_record(us(*g));
        }
        if o.streamed {
            h.tokens_per_stream.saturating_record(o.tokens);
            self.tokens += o.tokens;
        }
        let keys = [&o.replica, &o.version, &o.generation];
        for (map, key) in [
            &mut self.replicas,
            &mut self.versions,
            &mut self.generations,
        ]
        .into_iter()
        .zip(keys)
        {
            if let Some(k) = key {
                bump(map, k);
            }
        }
        if let Some(b) = self.bucket(done) {
            b.completed += 1;
            b.ok += u64::from(verdict.is_ok());
            bump(&mut b.verdicts, &label);
            b.latency.saturating_record(us(o.latency));
            let maps = [&mut b.replicas, &mut b.versions, &mut b.generations];
            for (map, key) in maps.into_iter().zip(keys) {
                if let Some(k) = key {
                    bump(map, k);
                }
            }
        }
    }

    /// The bucket of the second `at` falls in (created on first use).
    fn bucket(&mut self, at: Instant) -> Option<&mut Bucket> {
        let i = at.saturating_duration_since(self.start).as_secs() as usize;
        if self.buckets.len() <= i {
            self.buckets.resize_with(i + 1, || None);
        }
        if self.buckets[i].is_none() {
            self.buckets[i] = Some(Bucket {
                completed: 0,
                ok: 0,
                verdicts: BTreeMap::new(),
                latency: micros_histogram(2).ok()?,
                replicas: BTreeMap::new(),
                versions: BTreeMap::new(),
                generations: BTreeMap::new(),
            });
        }
        self.buckets[i].as_mut()
    }
}
