//! `models[i].rollout`: an automatic canary of one version.

use super::Validator;
use crate::defaults as d;
use crate::model::{Rollout, Version};
use crate::raw::RawRollout;

impl Validator<'_> {
    pub(super) fn rollout(
        &mut self,
        path: &str,
        raw: RawRollout,
        versions: &[Version],
    ) -> Option<Rollout> {
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
        let steps = raw.steps.unwrap_or_else(|| d::ROLLOUT_STEPS.to_vec());
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
        let max_error_rate_increase = raw
            .max_error_rate_increase
            .unwrap_or(d::ROLLOUT_MAX_ERROR_RATE_INCREASE);
        if !(0.0..=1.0).contains(&max_error_rate_increase) {
            self.err(
                format!("{path}.max_error_rate_increase"),
                format!("must be 0..=1, got {max_error_rate_increase}"),
            );
        }
        let max_p95_ratio = raw.max_p95_ratio.unwrap_or(d::ROLLOUT_MAX_P95_RATIO);
        if !(max_p95_ratio >= 1.0 && max_p95_ratio.is_finite()) {
            self.err(
                format!("{path}.max_p95_ratio"),
                format!("must be a number >= 1, got {max_p95_ratio}"),
            );
        }
        let rollout = Rollout {
            step_interval: self
                .ms(path, "step_interval_ms", raw.step_interval_ms)
                .unwrap_or(d::ROLLOUT_STEP_INTERVAL),
            min_requests: self
                .int(path, "min_requests", raw.min_requests, 1, 1_000_000)
                .map_or(d::ROLLOUT_MIN_REQUESTS, |n| n as u64),
            canary: raw.canary,
            baseline,
            steps: steps.iter().map(|s| (*s).clamp(0, 100) as u32).collect(),
            max_error_rate_increase,
            max_p95_ratio,
        };
        (self.errors.len() == before).then_some(rollout)
    }
}
