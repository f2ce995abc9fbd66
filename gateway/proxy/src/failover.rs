//! The attempt loop: the one place that decides whether a failed attempt is
//! tried again on another replica.
//!
//! Rules (pingora's and Envoy's, and what clients need):
//! - Retry only before anything was sent to the client: an attempt fails
//!   here only before its response headers are passed on, so a stream that
//!   has started is never replayed (a broken one ends with an error event).
//! - Retry on: connect failure, reset before response headers, 429, 500,
//!   502, 503, 504. Never on other 4xx: those are the client's fault and are
//!   passed through as the replica sent them.
//! - Each retry goes to a replica this request has not tried, waits a short
//!   jittered backoff, and spends a token from the gateway-wide
//!   [`crate::retry_budget::RetryBudget`], so an outage cannot turn into a retry storm.
//! - Retries prefer the model the client asked for: a transient failure
//!   (500, 502, 503, reset, connect error) on the requested group's last
//!   untried replica is retried on that group once before a fallback group
//!   is used, and so is a 429/503 whose `Retry-After` is at most the group's
//!   `retry_after_max` and fits in the deadline (after waiting it out).
//! - A 400 `context_length_exceeded` is never resent to the same group: it
//!   goes to the group's `context_fallbacks`, or passes through unchanged.
//! - `next::decide` is the one function that says which: it returns a
//!   typed `Next`; `course` tracks which group is being served.
//! - Each attempt gets at most `attempt_timeout_ms` for its response
//!   headers, and all attempts share the request deadline
//!   (`request_timeout_ms`): a replica that never answers costs one attempt
//!   timeout, then the request moves on.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use smallvec::SmallVec;
use switchyard_config::Resume;
use switchyard_router::{
    Admitted, Ranking, RouteError, RouteRequest, clock, clock_at, parse_model,
};

use crate::admission::{Priority, Release};
use crate::answer::Stamp;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::forward::{self, Outbound};
use crate::observe::{OutcomeSlot, RequestObserver, Shed};
use crate::proxy::Proxy;
use crate::snapshot::Snapshot;
use crate::upstream::Upstream;
use crate::usage::UsageSink;

mod course;
mod next;

use course::{Course, classify};
use next::{Failure, Next};

/// Attempts per request: the first plus two retries.
pub const MAX_ATTEMPTS: usize = 3;

/// What the loop needs to know about the request.
pub struct Request<'a> {
    /// The model the client named (for errors).
    pub model: &'a str,
    /// Candidates, best first.
    pub ranking: &'a Ranking<'a>,
    /// What the ranking was made from (a context fallback is ranked alike).
    pub route: RouteRequest<'a>,
    /// Client method.
    pub method: &'a Method,
    /// Client headers.
    pub headers: &'a HeaderMap,
    /// Client address.
    pub remote: SocketAddr,
    /// Request id.
    pub request_id: &'a HeaderValue,
    /// Place in the wait queue when every replica is full.
    pub priority: Priority,
    /// The request's record: attempts, timings, spans.
    pub obs: &'a mut dyn RequestObserver,
    /// A stream answer may be resumed if it breaks (an OpenAI chat stream
    /// of a group with `max_resumes`); replicas declaring a `resume`
    /// strategy then serve it resumably.
    pub resumable: bool,
    /// Where the answer's usage is booked for the caller's tenant.
    pub tenant_usage: Option<&'a Arc<dyn UsageSink>>,
    /// When the whole request (`server.limits.request_timeout`) is over.
    pub deadline: tokio::time::Instant,
    /// Where the answer's body records how the replica's side ended.
    pub outcome: &'a OutcomeSlot,
}

/// Statuses that say "this replica, not this request": worth another replica.
pub fn retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 500 | 502 | 503 | 504)
}

/// Sends the request, failing over to other replicas as the rules above
/// allow; a replica's answer comes with which replica gave it, after how
/// many attempts.
/// `prepare` adapts path and body to a replica (its model name, its
/// protocol adapter; the client's path is borrowed when it passes as is);
/// its error is the client's request that the replica's protocol cannot
/// carry, returned as is.
///
/// Not an `async fn`, which would store `req` and `prepare` twice for the
/// whole attempt (see `forward::forward`).
#[allow(clippy::manual_async_fn)]
pub fn send<'p>(
    gw: &Proxy,
    snap: &Snapshot,
    mut req: Request<'_>,
    prepare: impl Fn(&Upstream) -> Result<(Cow<'p, str>, Bytes), ProxyError>,
) -> impl Future<Output = Result<(Response<ProxyBody>, Stamp), ProxyError>> {
    async move {
        let limits = &snap.config.server.limits;
        let deadline = req.deadline;
        // On the stack: at most `MAX_ATTEMPTS` replicas are ever tried.
        let mut tried: SmallVec<[usize; MAX_ATTEMPTS]> = SmallVec::new();
        gw.retry_budget().deposit();
        let mut last: Option<Result<Response<ProxyBody>, ProxyError>> = None;
        // What each failed attempt ran into, for the final answer.
        let mut failures: Vec<String> = Vec::new();
        let mut last_replica = ("", 0);
        let mut course = Course::new(req.model);
        // The context fallback's ranking once one is in use.
        let mut context_ranking: Option<Ranking<'_>> = None;
        let mut next = Next::Untried;
        // The first refusal of a replica whose protocol cannot carry the request.
        let mut refusal: Option<ProxyError> = None;
        'attempts: for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let granted = gw.retry_budget().withdraw();
                req.obs.retry_budget(granted);
                if !granted {
                    break;
                }
                let wait = match next {
                    Next::SameGroup { wait } => wait,
                    _ => Duration::ZERO,
                };
                tokio::time::sleep(backoff(attempt).max(wait)).await;
            }
            if next == Next::ContextFallback {
                match course.switch(snap, &req) {
                    Some(r) => context_ranking = Some(r),
                    None => break,
                }
            }
            let ranking = context_ranking.as_ref().unwrap_or(req.ranking);
            // A replica whose protocol cannot carry the request (an adapter
            // refuses it: `tools` to Bedrock, say) gives its slot back and is
            // left out, without counting as an attempt or a replica failure;
            // its refusal is the answer only if no candidate can carry it.
            // One clock reading for the admission and the attempt's start
            // (its deadlines, the observer's send); again after a wait.
            let mut sent = tokio::time::Instant::now();
            let (admitted, (path_and_query, body)) = loop {
                let now = clock_at(sent.into_std());
                let admitted = match course.admit(snap, req.model, ranking, (&tried, next), now) {
                    Ok(a) => a,
                    // Nothing left to try: the last attempt's answer stands.
                    Err(_) if last.is_some() => break 'attempts,
                    Err(_) if refusal.is_some() && !ranking.iter().any(|i| course.can_carry(i)) => {
                        return Err(refusal.take().expect("checked"));
                    }
                    Err(RouteError::NoCapacity { .. }) => {
                        let waited = wait_for_slot(gw, snap, &mut req, &course, deadline).await?;
                        sent = tokio::time::Instant::now();
                        waited
                    }
                    Err(e) => return Err(e.into()),
                };
                match prepare(&snap.upstreams[admitted.index]) {
                    Ok(prepared) => break (admitted, prepared),
                    Err(e) => {
                        tracing::debug!(replica = %admitted.entry.replica.id, error = %e, "protocol cannot carry the request");
                        course.cannot_carry(admitted.index);
                        refusal.get_or_insert(e);
                    }
                }
            };
            // Declared after the slot's guard inside the body: wakes a waiter
            // of this replica's group once the slot is free again.
            let (entry, index) = (admitted.entry, admitted.index);
            let release = Release(Arc::clone(&snap.queues[admitted.index]));
            tried.push(admitted.index);
            req.obs.admitted(&admitted);
            let replica = entry.replica.id.as_str();
            let out = Outbound {
                method: req.method.clone(),
                path_and_query,
                headers: req.headers,
                body,
                remote: req.remote,
                request_id: req.request_id,
                obs: &mut *req.obs,
                observer: gw.observer().as_ref(),
                tenant_usage: req.tenant_usage,
                outcome: req.outcome,
                started: sent,
                deadline: deadline.min(sent + limits.attempt_timeout),
                first_event_deadline: deadline.min(sent + limits.first_token_timeout),
                resumable: req.resumable && entry.replica.resume != Resume::None,
                closing: gw.closing(),
                // Nothing left to fail over to: wait the fixed timeout.
                last_chance: attempt + 1 == MAX_ATTEMPTS
                    || !ranking
                        .iter()
                        .any(|i| !tried.contains(&i) && course.can_carry(i)),
            };
            let result = forward::forward(snap, admitted, out, release).await;
            let failure = classify(&result);
            next = match failure {
                Failure::None => Next::Answer,
                _ => {
                    let standing = course.standing(snap, ranking, &tried, entry, failure, deadline);
                    next::decide(failure, &standing)
                }
            };
            req.obs.attempt_done(&result, next != Next::Answer, sent);
            if next == Next::Answer {
                return finish(result, failures, (replica, index), attempt + 1);
            }
            if matches!(next, Next::SameGroup { .. }) {
                course.group_retried = true;
            }
            match &result {
                Ok(resp) => {
                    tracing::debug!(%replica, status = %resp.status(), attempt, ?next, "retryable answer");
                    failures.push(format!("replica `{replica}` answered {}", resp.status()));
                }
                Err(e) => {
                    tracing::debug!(%replica, error = %e, attempt, ?next, "retryable failure");
                    failures.push(e.to_string());
                }
            }
            last_replica = (replica, index);
            last = Some(result);
        }
        req.obs.attempts_exhausted();
        let attempts = tried.len();
        match last {
            Some(result) => {
                failures.pop();
                finish(result, failures, last_replica, attempts)
            }
            None => Err(ProxyError::Route(
                switchyard_router::RouteError::NoCapacity {
                    model: req.model.to_owned(),
                },
            )),
        }
    }
}

/// Every candidate is full: wait in the group's queue (bounded, by
/// priority) for a slot, until the group's `queue_timeout` or the request
/// deadline. Joins the queue *before* looking again, so a slot freed in
/// between is not missed.
async fn wait_for_slot<'t>(
    gw: &Proxy,
    snap: &'t Snapshot,
    req: &mut Request<'_>,
    course: &Course<'_>,
    deadline: tokio::time::Instant,
) -> Result<Admitted<'t>, ProxyError> {
    let (group, _) = parse_model(req.model);
    let full = || {
        ProxyError::Route(RouteError::NoCapacity {
            model: req.model.to_owned(),
        })
    };
    let Some(routing) = snap.config.model(group).map(|m| &m.routing) else {
        return Err(full());
    };
    if routing.queue_size == 0 {
        req.obs.shed(Shed::NoQueue);
        return Err(full());
    }
    let started = tokio::time::Instant::now();
    let until = deadline.min(started + routing.queue_timeout);
    let queue = gw.queues().get(group);
    loop {
        let Some(woken) = queue.enqueue(req.priority, routing.queue_size) else {
            req.obs.queue_wait(started.elapsed(), false);
            req.obs.shed(Shed::QueueFull);
            return Err(full());
        };
        let carried =
            snap.table
                .admit_where_at(req.model, req.ranking, |i| course.can_carry(i), clock());
        if let Ok(admitted) = carried {
            req.obs.queue_wait(started.elapsed(), true);
            return Ok(admitted);
        }
        if tokio::time::timeout_at(until, woken).await.is_err() {
            req.obs.queue_wait(started.elapsed(), false);
            req.obs.shed(Shed::QueueTimeout);
            return Err(ProxyError::QueueTimeout {
                model: req.model.to_owned(),
                ms: started.elapsed().as_millis(),
            });
        }
    }
}

/// The final answer: a replica's response stamped with the replica and
/// the attempt count, or the last error with every earlier attempt's, the
/// count and the replica.
fn finish(
    result: Result<Response<ProxyBody>, ProxyError>,
    earlier: Vec<String>,
    (replica, index): (&str, usize),
    attempts: usize,
) -> Result<(Response<ProxyBody>, Stamp), ProxyError> {
    match result {
        Ok(resp) => Ok((
            resp,
            Stamp {
                replica: index,
                attempts,
            },
        )),
        Err(last) => Err(ProxyError::Attempts {
            last: Box::new(last),
            earlier,
            replica: replica.to_owned(),
            attempts,
        }),
    }
}

/// 10 ms, 20 ms, ... with full jitter: enough to let a reset connection
/// pool settle, short next to model latency.
fn backoff(attempt: usize) -> Duration {
    let cap = 10u64 << attempt.min(6);
    Duration::from_millis(fastrand::u64(cap / 2..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_replica_side_statuses_are_retried() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 413, 422, 501] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(backoff(1) <= Duration::from_millis(20));
        assert!(backoff(20) <= Duration::from_millis(640));
    }
}
