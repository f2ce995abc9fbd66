//! The data plane's observer: one per gateway, one [`Obs`] per request.

use std::sync::Arc;

use switchyard_config::Replica;
use switchyard_control::rollout::Rollouts;
use switchyard_proxy::Snapshot;
use switchyard_proxy::observe::{Arrival, ResumeAttempt};
use switchyard_proxy::usage::UsageSink;
use switchyard_proxy::{Observer, RequestObserver};

use crate::costs::Costs;
use crate::metrics::{Obs, Recorder};

/// The gateway's observer of its data plane: metrics, access log, spans
/// and rollout figures through each request's [`Obs`]; token usage into
/// the cost ledger.
#[derive(Debug, Clone, Default)]
pub struct GatewayObserver {
    recorder: Arc<Recorder>,
    costs: Arc<Costs>,
}

impl GatewayObserver {
    /// An observer feeding `rollouts` (shared with the controller).
    pub fn new(rollouts: Arc<Rollouts>) -> Self {
        Self {
            recorder: Arc::new(Recorder::new(rollouts)),
            costs: Arc::default(),
        }
    }

    /// Metric families and rollout figures.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The cost ledger.
    pub fn costs(&self) -> &Costs {
        &self.costs
    }
}

impl Observer for GatewayObserver {
    fn request(&self, arrival: Arrival<'_>) -> Box<dyn RequestObserver> {
        Box::new(Obs::start(Arc::clone(&self.recorder), arrival))
    }

    fn meter(&self, replica: &Replica) -> Option<Arc<dyn UsageSink>> {
        Some(self.costs.sink(replica))
    }

    /// Counted in `switchyard_upstream_attempts_total` with a `resume_*`
    /// result, so continuation attempts are told from first attempts.
    fn resume_attempt(&self, snap: &Snapshot, index: usize, end: ResumeAttempt) {
        self.recorder.metrics.resume_attempt(snap, index, end);
    }
}
