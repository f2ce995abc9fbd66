//! The one-screen text summary of a [`LoadReport`].

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Mode;
use super::report::{LoadReport, Percentiles, Second};

fn row(out: &mut String, name: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "  {name:<13} p50 {:>9.3}  p90 {:>9.3}  p99 {:>9.3}  p99.9 {:>9.3}  max {:>9.3}",
        p.p50, p.p90, p.p99, p.p999, p.max
    );
}

fn counts(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("  ")
}

impl LoadReport {
    /// A summary that fits one terminal screen: totals, verdicts, latency
    /// rows in ms, and the traffic split (over time when it changed).
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let mode = match self.mode {
            Mode::Closed { concurrency } => format!("closed loop, {concurrency} workers"),
            Mode::Open {
                rate_per_sec,
                max_in_flight,
            } => {
                format!("open loop, {rate_per_sec} req/s (max {max_in_flight} in flight)")
            }
        };
        let mix = self
            .workload
            .iter()
            .map(|m| {
                let s = if m.workload.stream { ":stream" } else { "" };
                format!(
                    "{:?}{s}:{}={}",
                    m.workload.endpoint, m.workload.model, m.weight
                )
                .to_lowercase()
            })
            .collect::<Vec<_>>()
            .join(",");
        let _ = writeln!(
            out,
            "{} | {mode} | {:.1}s measured | {mix}",
            self.url, self.seconds
        );
        let _ = writeln!(
            out,
            "  requests {}  ok {}  failed {}  rate {:.1} req/s  ok {:.1} req/s",
            self.requests, self.ok, self.failed, self.rps, self.ok_rps
        );
        let _ = writeln!(out, "  verdicts      {}", counts(&self.verdicts));
        let _ = writeln!(out, "  latency in ms (from intended send time):");
        row(&mut out, "ok", &self.latency_ms);
        if self.failed > 0 {
            row(&mut out, "all", &self.latency_all_ms);
        }
        if let Some(p) = &self.ttfb_ms {
            row(&mut out, "first byte", p);
        }
        if let Some(p) = &self.ttft_ms {
            row(&mut out, "first token", p);
        }
        if let Some(p) = &self.inter_token_ms {
            row(&mut out, "token gap", p);
        }
        if let Some(p) = &self.resume_gap_ms {
            let _ = writeln!(out, "  resumes       {}", p.count);
            row(&mut out, "resume gap", p);
        }
        if self.tokens.total > 0 {
            let _ = writeln!(
                out,
                "  tokens        {} ({:.0}/s), per stream p50 {} min {}",
                self.tokens.total,
                self.tokens.per_sec,
                self.tokens.per_stream_p50,
                self.tokens.per_stream_min
            );
        }
        if let Some(c) = &self.prefix_cache {
            let _ = writeln!(
                out,
                "  prefix cache  {} of {} blocks hit ({:.1} %)",
                c.hits,
                c.queries,
                c.hit_rate * 100.0
            );
        }
        if self.max_send_lag_ms > 1.0 {
            let _ = writeln!(
                out,
                "  max send lag  {:.1} ms behind schedule",
                self.max_send_lag_ms
            );
        }
        self.split_lines(&mut out, "replicas", &self.replicas, |s| &s.replicas);
        self.split_lines(&mut out, "versions", &self.versions, |s| &s.versions);
        self.split_lines(&mut out, "generations", &self.generations, |s| {
            &s.generations
        });
        out
    }

    fn split_lines(
        &self,
        out: &mut String,
        name: &str,
        total: &BTreeMap<String, u64>,
        by: fn(&Second) -> &BTreeMap<String, u64>,
    ) {
        if total.is_empty() {
            return;
        }
        let _ = writeln!(out, "  {name:<13} {}", counts(total));
        if total.len() < 2 {
            return;
        }
        for (t0, t1, shares) in self.split_over_time(6, by) {
            let s = shares
                .iter()
                .map(|(k, v)| format!("{k} {:.0}%", v * 100.0))
                .collect::<Vec<_>>()
                .join("  ");
            let _ = writeln!(out, "    {t0:>5.0}-{t1:<5.0}s  {s}");
        }
    }
}
