//! The request's course through the groups, and how an attempt ended.

use std::time::Duration;

use http::Response;
use switchyard_router::{Admitted, Entry, Ranking, RouteError, RouteRequest, parse_model};

use super::next::{Failure, Next, Standing};
use super::{Request, retryable_status};
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::forward::{self, ContextLengthExceeded};
use crate::snapshot::Snapshot;

/// How an attempt ended, as far as retrying cares.
pub(super) fn classify(result: &Result<Response<ProxyBody>, ProxyError>) -> Failure {
    let resp = match result {
        Ok(resp) => resp,
        Err(ProxyError::UpstreamConnect { .. } | ProxyError::UpstreamFailed { .. }) => {
            return Failure::Transient;
        }
        Err(e) if e.is_retryable() => return Failure::Elsewhere,
        Err(_) => return Failure::None,
    };
    let status = resp.status();
    let paused = forward::retry_after(resp).map(Duration::from_secs);
    match (status.as_u16(), paused) {
        (400, _) if resp.extensions().get::<ContextLengthExceeded>().is_some() => {
            Failure::ContextLength
        }
        (429 | 503, Some(wait)) => Failure::Paused(wait),
        (500 | 502 | 503, _) => Failure::Transient,
        _ if retryable_status(status) => Failure::Elsewhere,
        _ => Failure::None,
    }
}

/// The request's course through the groups: the one being served (the
/// requested group, then a context fallback), the groups a context-length
/// error ruled out, and the context fallbacks still to try.
pub(super) struct Course<'a> {
    group: &'a str,
    ruled_out: Vec<&'a str>,
    pending: Vec<&'a str>,
    /// Replicas whose protocol cannot carry this request (an adapter
    /// refused it): never admitted again for it.
    cannot_carry: Vec<usize>,
    pub(super) group_retried: bool,
}

impl<'a> Course<'a> {
    pub(super) fn new(model: &'a str) -> Self {
        Course {
            group: parse_model(model).0,
            ruled_out: Vec::new(),
            pending: Vec::new(),
            cannot_carry: Vec::new(),
            group_retried: false,
        }
    }

    /// Takes a slot as `next` says: the group again (else an untried
    /// replica), or the best untried replica outside ruled-out groups;
    /// `now`: the attempt's clock reading ([`switchyard_router::clock`] scale).
    pub(super) fn admit<'t>(
        &self,
        snap: &'t Snapshot,
        model: &str,
        ranking: &Ranking<'_>,
        (tried, next): (&[usize], Next),
        now: u64,
    ) -> Result<Admitted<'t>, RouteError> {
        let entries = snap.table.entries();
        let untried = || {
            snap.table.admit_where_at(
                model,
                ranking,
                |i| {
                    !tried.contains(&i)
                        && self.can_carry(i)
                        && !self.ruled_out.contains(&entries[i].replica.model.as_str())
                },
                now,
            )
        };
        match next {
            Next::SameGroup { .. } => snap
                .table
                .admit_group_where_at(model, ranking, self.group, |i| self.can_carry(i), now)
                .or_else(|_| untried()),
            _ => untried(),
        }
    }

    /// Whether replica `i` may still be offered this request.
    pub(super) fn can_carry(&self, i: usize) -> bool {
        !self.cannot_carry.contains(&i)
    }

    /// Replica `i`'s protocol refused the request: leave it out from now on.
    pub(super) fn cannot_carry(&mut self, i: usize) {
        self.cannot_carry.push(i);
    }

    /// Moves on to the next context fallback and returns its ranking;
    /// `None` when it cannot be ranked (the last answer stands).
    pub(super) fn switch(&mut self, snap: &'a Snapshot, req: &Request<'_>) -> Option<Ranking<'a>> {
        let group = self.pending.remove(0);
        let route = RouteRequest {
            model: group,
            ..req.route
        };
        match snap.table.rank(&route, fastrand::u64(..)) {
            Ok(ranking) => {
                self.group = group;
                self.group_retried = false;
                Some(ranking)
            }
            Err(e) => {
                tracing::debug!(%group, error = %e, "context fallback cannot be ranked");
                None
            }
        }
    }

    /// What the decision needs to know after `entry`'s attempt failed.
    pub(super) fn standing(
        &mut self,
        snap: &'a Snapshot,
        ranking: &Ranking<'_>,
        tried: &[usize],
        entry: &'a Entry,
        failure: Failure,
        deadline: tokio::time::Instant,
    ) -> Standing {
        let entries = snap.table.entries();
        let of = entry.replica.model.as_str();
        if failure == Failure::ContextLength {
            self.ruled_out.push(of);
            let more = snap
                .config
                .model(of)
                .map_or(&[][..], |m| &m.context_fallbacks);
            for g in more {
                if !self.ruled_out.contains(&g.as_str()) && !self.pending.contains(&g.as_str()) {
                    self.pending.push(g);
                }
            }
        }
        Standing {
            in_group: of == self.group,
            group_untried: ranking
                .iter()
                .find(|i| !tried.contains(i))
                .is_some_and(|i| entries[i].replica.model == self.group),
            group_retried: self.group_retried,
            retry_after_max: snap
                .config
                .model(self.group)
                .map_or(Duration::ZERO, |m| m.routing.retry_after_max),
            left: deadline.saturating_duration_since(tokio::time::Instant::now()),
            context_fallback: !self.pending.is_empty(),
        }
    }
}
