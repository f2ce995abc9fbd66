//! The fleet's rollout decisions, pure: the stored record, the group's
//! stored weights, whether every live instance serves them and the
//! fleet's counts go in; the record to store (and the weights to write
//! with it, in the same transaction) come out. Time is a parameter.
//!
//! The rules are `control::rollout`'s (roll back at once on a breached
//! guard rail or an ejected canary, advance when the interval is over and
//! both sides have data, extend otherwise, promote after the last step),
//! with two differences: a step's window opens only when every live
//! instance reports serving the step's weights, and everything a step
//! needs to go on lives in the record, so whoever leads next resumes it.

use std::collections::BTreeMap;

use switchyard_config::Rollout;

use super::figures::{self, PerInstance, VersionCounts};
use super::record::{Decision, Figures, Record, RunState, WeightsDoc, step_weights};

/// What the leader sees of one group at one moment.
#[derive(Debug, Clone)]
pub struct Observed<'a> {
    /// The group's stored weights, if any.
    pub weights: Option<&'a WeightsDoc>,
    /// Every live instance serves the stored weights' revision.
    pub applied: bool,
    /// Version -> live instance -> cumulative counts.
    pub counts: BTreeMap<String, PerInstance>,
    /// The group's weights in the config, for [`WeightsDoc::source_weights`].
    pub source_weights: Vec<(String, u32)>,
    /// Wall clock, ms since the Unix epoch.
    pub now_ms: u64,
}

/// What the leader must store.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Nothing changed.
    Nothing,
    /// Store the record.
    Save(Record),
    /// Store the record and the group's weights, atomically.
    SaveAndWrite(Record, WeightsDoc),
}

/// One look at one group's rollout.
pub fn decide(spec: &Rollout, record: Option<&Record>, seen: &Observed<'_>) -> Effect {
    let spec_json = serde_json::to_string(spec).unwrap_or_default();
    let mut rec = match record {
        Some(r) if r.spec == spec_json => r.clone(),
        other => {
            let reason = match other {
                None => format!("rolling out {} against {}", spec.canary, spec.baseline),
                Some(_) => "the declared rollout changed; starting over".to_owned(),
            };
            return start(spec, spec_json, reason, seen);
        }
    };
    if rec.state != RunState::Running {
        return Effect::Nothing;
    }
    let wanted = rec.weights(spec);
    let ours = seen
        .weights
        .is_some_and(|d| d.weights == wanted && d.trigger == "rollout");
    if !ours {
        rec.state = RunState::Paused;
        note(
            &mut rec,
            spec,
            seen,
            "paused",
            "the group's weights were changed by someone else; the rollout stops here".to_owned(),
        );
        return Effect::Save(rec);
    }
    let Some(applied_ms) = rec.applied_ms else {
        if !seen.applied {
            return Effect::Nothing;
        }
        rec.applied_ms = Some(seen.now_ms);
        rec.base = seen.counts.clone();
        let reason = format!(
            "every live instance serves {} at {}%",
            spec.canary, rec.percent
        );
        note(&mut rec, spec, seen, "applied", reason);
        return Effect::Save(rec);
    };
    judge(rec, spec, seen, applied_ms)
}

/// A running step whose window is open since `applied_ms`: roll back,
/// wait, extend, hold, promote or advance.
fn judge(mut rec: Record, spec: &Rollout, seen: &Observed<'_>, applied_ms: u64) -> Effect {
    let (c, b) = window(&rec, spec, seen);
    if let Some(reason) = breach(spec, &c, &b) {
        rec.state = RunState::RolledBack;
        note(&mut rec, spec, seen, "rollback", reason);
        let back = BTreeMap::from([(spec.baseline.clone(), 100)]);
        return Effect::SaveAndWrite(rec, doc(back, seen, None));
    }
    if seen.now_ms.saturating_sub(applied_ms) < spec.step_interval.as_millis() as u64 {
        return Effect::Nothing;
    }
    if c.requests < spec.min_requests || b.requests < spec.min_requests {
        let reason = format!(
            "waiting for {} requests per side (canary {}, baseline {})",
            spec.min_requests, c.requests, b.requests
        );
        return once(rec, spec, seen, "extend", reason);
    }
    let last = rec.step + 1 >= spec.steps.len() || spec.steps[rec.step + 1] >= 100;
    if last && spec.steps.last() == Some(&100) {
        rec.state = RunState::Promoted;
        rec.step = spec.steps.len() - 1;
        rec.percent = 100;
        note(
            &mut rec,
            spec,
            seen,
            "complete",
            "every step within bounds; promoting".to_owned(),
        );
        let all = BTreeMap::from([(spec.canary.clone(), 100)]);
        return Effect::SaveAndWrite(rec, doc(all, seen, Some(spec.canary.clone())));
    }
    if last {
        return once(
            rec,
            spec,
            seen,
            "hold",
            "last declared step reached; holding".to_owned(),
        );
    }
    note(&mut rec, spec, seen, "advance", "within bounds".to_owned());
    rec.step += 1;
    rec.percent = Record::percent_at(spec, rec.step);
    rec.step_at_ms = seen.now_ms;
    rec.applied_ms = None;
    rec.base.clear();
    let next = rec.weights(spec);
    Effect::SaveAndWrite(rec, doc(next, seen, None))
}

fn start(spec: &Rollout, spec_json: String, reason: String, seen: &Observed<'_>) -> Effect {
    let percent = Record::percent_at(spec, 0);
    let mut rec = Record {
        spec: spec_json,
        state: RunState::Running,
        step: 0,
        percent,
        started_ms: seen.now_ms,
        step_at_ms: seen.now_ms,
        applied_ms: None,
        base: BTreeMap::new(),
        history: Vec::new(),
    };
    note(&mut rec, spec, seen, "start", reason);
    Effect::SaveAndWrite(rec, doc(step_weights(spec, percent), seen, None))
}

fn doc(weights: BTreeMap<String, u32>, seen: &Observed<'_>, stable: Option<String>) -> WeightsDoc {
    WeightsDoc {
        weights,
        source_weights: seen.source_weights.clone(),
        trigger: "rollout".to_owned(),
        stable,
    }
}

/// The window's (canary, baseline) counts: the fleet's now less the base.
fn window(rec: &Record, spec: &Rollout, seen: &Observed<'_>) -> (VersionCounts, VersionCounts) {
    let of = |version: &str| {
        let empty = PerInstance::new();
        let now = seen.counts.get(version).unwrap_or(&empty);
        let base = rec.base.get(version).unwrap_or(&empty);
        figures::window(now, base)
    };
    (of(&spec.canary), of(&spec.baseline))
}

/// The guard rail the canary breaks, if any.
fn breach(spec: &Rollout, c: &VersionCounts, b: &VersionCounts) -> Option<String> {
    if c.ejections > 0 && b.ejections == 0 {
        return Some(format!(
            "outlier detection ejected a canary replica {} time(s) in this step, none of the baseline's",
            c.ejections
        ));
    }
    if c.requests < spec.min_requests || b.requests < spec.min_requests {
        return None;
    }
    let (ce, be) = (c.error_rate(), b.error_rate());
    if ce > be + spec.max_error_rate_increase {
        return Some(format!(
            "canary error rate {:.1}% vs baseline {:.1}% (allowed: +{:.1} points)",
            ce * 100.0,
            be * 100.0,
            spec.max_error_rate_increase * 100.0
        ));
    }
    if let (Some(cp), Some(bp)) = (c.p95_ms(), b.p95_ms())
        && cp > bp * spec.max_p95_ratio
    {
        return Some(format!(
            "canary p95 {cp:.1} ms vs baseline {bp:.1} ms (allowed: {}x)",
            spec.max_p95_ratio
        ));
    }
    None
}

/// Records `action` once per step: a repeat changes nothing.
fn once(
    mut rec: Record,
    spec: &Rollout,
    seen: &Observed<'_>,
    action: &str,
    reason: String,
) -> Effect {
    if rec
        .last_decision()
        .is_some_and(|d| d.action == action && d.step == rec.step)
    {
        return Effect::Nothing;
    }
    note(&mut rec, spec, seen, action, reason);
    Effect::Save(rec)
}

fn note(rec: &mut Record, spec: &Rollout, seen: &Observed<'_>, action: &str, reason: String) {
    let (canary, baseline) = match rec.applied_ms {
        Some(_) => {
            let (c, b) = window(rec, spec, seen);
            (Figures::from(&c), Figures::from(&b))
        }
        None => (Figures::default(), Figures::default()),
    };
    tracing::info!(canary = %spec.canary, step = rec.step, action, "fleet rollout: {reason}");
    rec.push(Decision {
        at_ms: seen.now_ms,
        step: rec.step,
        percent: rec.percent,
        action: action.to_owned(),
        reason,
        canary,
        baseline,
    });
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
