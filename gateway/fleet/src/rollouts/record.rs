//! What the fleet stores about rollouts: the rollout record under
//! `P/control/rollouts/<group>` and the group's weights under
//! `P/control/weights/<group>`, as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_config::Rollout;

use super::figures::{PerInstance, VersionCounts};
pub use crate::weights::WeightsDoc;

/// Where a stored rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Moving through its steps.
    Running,
    /// Someone else changed the group's weights: the leader let go.
    Paused,
    /// The canary serves 100 % and is the stable version.
    Promoted,
    /// A guard rail broke; all traffic went back to the baseline.
    RolledBack,
}

/// A window's figures, as shown in decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Attempts, fleet-wide.
    pub requests: u64,
    /// Of which failed on the replica's side.
    pub errors: u64,
    /// `errors / requests` (0 without requests).
    pub error_rate: f64,
    /// 95th percentile time to response headers, ms (19 % buckets).
    pub p95_ms: Option<f64>,
    /// Outlier-detection ejections of the version's replicas.
    pub ejections: u64,
}

impl From<&VersionCounts> for Figures {
    fn from(c: &VersionCounts) -> Self {
        Self {
            requests: c.requests,
            errors: c.errors,
            error_rate: c.error_rate(),
            p95_ms: c.p95_ms(),
            ejections: c.ejections,
        }
    }
}

/// One decision and the fleet-wide figures it was based on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Wall-clock time, ms since the Unix epoch.
    pub at_ms: u64,
    /// Step index the decision was taken in.
    pub step: usize,
    /// Canary percentage during that step.
    pub percent: u32,
    /// `start`, `applied`, `advance`, `extend`, `hold`, `complete`,
    /// `rollback`, `paused`.
    pub action: String,
    /// Why, in words.
    pub reason: String,
    /// Canary figures of the window.
    pub canary: Figures,
    /// Baseline figures of the window.
    pub baseline: Figures,
}

/// Decisions kept in a record, newest last.
pub const HISTORY: usize = 16;

/// One group's rollout as stored. Times are wall-clock ms, so they mean
/// the same to the next leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The declared rollout, as JSON: when the declaration changes, the
    /// rollout starts over.
    pub spec: String,
    /// Where it stands.
    pub state: RunState,
    /// Current step index into the declared steps.
    pub step: usize,
    /// Canary percentage of the current step.
    pub percent: u32,
    /// When the rollout started.
    pub started_ms: u64,
    /// When the current step's weights were written.
    pub step_at_ms: u64,
    /// When every live instance served them: the step's window opened.
    pub applied_ms: Option<u64>,
    /// Version -> instance -> counts when the window opened.
    #[serde(default)]
    pub base: BTreeMap<String, PerInstance>,
    /// The last decisions, oldest first (at most [`HISTORY`]).
    #[serde(default)]
    pub history: Vec<Decision>,
}

impl Record {
    /// The canary's percentage at `step` of `spec`.
    pub fn percent_at(spec: &Rollout, step: usize) -> u32 {
        spec.steps.get(step).copied().unwrap_or(100)
    }

    /// The weights this record's step wants.
    pub fn weights(&self, spec: &Rollout) -> BTreeMap<String, u32> {
        step_weights(spec, self.percent)
    }

    /// The last decision, if any.
    pub fn last_decision(&self) -> Option<&Decision> {
        self.history.last()
    }

    pub(crate) fn push(&mut self, decision: Decision) {
        self.history.push(decision);
        let over = self.history.len().saturating_sub(HISTORY);
        self.history.drain(..over);
    }
}

/// Canary at `percent`, the baseline the rest.
pub fn step_weights(spec: &Rollout, percent: u32) -> BTreeMap<String, u32> {
    let mut w = BTreeMap::from([(spec.canary.clone(), percent)]);
    if percent < 100 {
        w.insert(spec.baseline.clone(), 100 - percent);
    }
    w
}
