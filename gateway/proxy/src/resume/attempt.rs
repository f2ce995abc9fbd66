//! One continuation: pick another replica of the broken one's group and
//! version that declares a `resume` strategy, ask it for the rest of the
//! answer, and hold its stream until its first data event (as any attempt
//! is held, `commit.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response};
use serde_json::{Map, Value};
use switchyard_config::{Protocol, Resume};
use switchyard_router::{RouteRequest, clock};
use tokio::time::Instant;

use super::rewrite::Strategy;
use super::token_ids::{self, TokenIds};
use crate::admission::{GroupQueue, Release};
use crate::body::ProxyBody;
use crate::forward::{self, Outbound, Resumable};
use crate::observe::{NoObserver, Observer, OutcomeSlot, ResumeAttempt};
use crate::retry_budget::RetryBudget;
use crate::snapshot::Snapshot;
use crate::usage::UsageSink;

/// What a continuation needs of the request, owned: it outlives the
/// request handler (the body streams on after `handle` returned).
pub struct Continuation {
    /// The request's generation.
    pub snap: Arc<Snapshot>,
    /// Where the replicas' usage is booked.
    pub observer: Arc<dyn Observer>,
    /// The gateway-wide retry budget; a resume spends from it.
    pub budget: Arc<RetryBudget>,
    /// The group's wait queue, woken when a continuation's slot frees.
    pub queue: Arc<GroupQueue>,
    /// The client's path (`/v1/chat/completions`).
    pub path: String,
    /// The client's headers (filtered on the way, as for any attempt).
    pub headers: HeaderMap,
    /// The client's body as it came.
    pub body: Bytes,
    /// The client's `x-switchyard-clouds` restriction.
    pub clouds: Vec<String>,
    /// Client address.
    pub remote: SocketAddr,
    /// Request id.
    pub request_id: HeaderValue,
    /// The request deadline: no resume starts after it.
    pub deadline: Instant,
    /// Resumes allowed (the group's `max_resumes`).
    pub max_resumes: u32,
    /// The LoRA adapter the client named, sent instead of the replica's
    /// model name (a resume stays in the adapter's group).
    pub adapter: Option<String>,
    /// Where every attempt's usage is booked for the caller's tenant, so a
    /// resumed answer costs the tenant both attempts.
    pub tenant_usage: Option<Arc<dyn UsageSink>>,
    /// Cancelled when the shutdown grace period is over.
    pub closing: tokio_util::sync::CancellationToken,
}

/// A continuation that started streaming.
pub struct Continued {
    /// Its answer, first data event held.
    pub resp: Response<ProxyBody>,
    /// What was asked of it.
    pub strategy: Strategy,
    /// The replica serving it.
    pub replica: String,
    /// Its index in the snapshot's table.
    pub index: usize,
}

/// Longest a resume waits for the retry budget. A replica that dies
/// breaks every stream it serves at once (about 330 in `streams-1000`);
/// the budget's window allows that much when the traffic that opened those
/// streams is in it, and when it is not (a quiet gateway, or an outage
/// that keeps the budget dry) waiting up to 2 s lets streams resume as
/// retries leave the window instead of ending with an error event at once,
/// still within a bounded time.
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// How often a waiting resume asks the budget again.
const BUDGET_POLL: std::time::Duration = std::time::Duration::from_millis(25);

/// One retry-budget token for a resume, waiting up to [`BUDGET_WAIT`]
/// (and never past `deadline`) for the budget to refill.
async fn spend_budget(budget: &RetryBudget, deadline: Instant) -> Result<(), String> {
    let give_up = deadline.min(Instant::now() + BUDGET_WAIT);
    loop {
        if budget.withdraw() {
            return Ok(());
        }
        if Instant::now() + BUDGET_POLL > give_up {
            return Err("the retry budget is spent".into());
        }
        tokio::time::sleep(BUDGET_POLL).await;
    }
}

/// What a continuation continues: the text the client has, in how many
/// tokens, and the token ids when an exact resume is possible.
pub struct Plan {
    /// The answer's text so far.
    pub text: String,
    /// Tokens the client received.
    pub tokens: u64,
    /// The prompt's and answer's ids, or why there are none.
    pub ids: Result<TokenIds, &'static str>,
}

/// Asks a replica other than `broken` to continue after `plan`. With token
/// ids (and a request a completion can continue), a `token_ids` replica
/// first; otherwise, or when none has a slot, any replica declaring a
/// strategy. A 4xx to a token-id or prefill continuation (the replica does
/// not take one) falls back to regenerate on the same replica, never to
/// silence.
pub async fn continue_after(
    ctx: Arc<Continuation>,
    broken: usize,
    plan: Plan,
) -> Result<Continued, String> {
    spend_budget(&ctx.budget, ctx.deadline).await?;
    let snap = &ctx.snap;
    let request: Map<String, Value> =
        serde_json::from_slice(&ctx.body).map_err(|e| format!("request body: {e}"))?;
    let ids = plan
        .ids
        .and_then(|ids| token_ids::unsuited(&request).map_or(Ok(ids), Err));
    let entries = snap.table.entries();
    let was = &entries[broken].replica;
    let model = format!("{}@{}", was.model, was.version);
    let clouds: Vec<&str> = ctx.clouds.iter().map(String::as_str).collect();
    let route = RouteRequest {
        model: &model,
        protocol: Protocol::OpenAi,
        clouds: &clouds,
        affinity_key: None,
        prefix: &[],
        adapter: None,
    };
    let ranking = snap
        .table
        .rank(&route, fastrand::u64(..))
        .map_err(|e| format!("no replica to continue on: {e}"))?;
    let eligible = |i: usize| {
        let r = &entries[i].replica;
        i != broken && r.model == was.model && r.version == was.version && r.resume != Resume::None
    };
    let exact = |i: usize| eligible(i) && entries[i].replica.resume == Resume::TokenIds;
    let first = match ids {
        Ok(_) => snap
            .table
            .admit_where_at(&model, &ranking, exact, clock())
            .ok(),
        Err(_) => None,
    };
    let mut admitted = match first {
        Some(a) => a,
        None => snap
            .table
            .admit_where_at(&model, &ranking, eligible, clock())
            .map_err(|e| format!("no replica to continue on: {e}"))?,
    };
    let index = admitted.index;
    let mut strategy = match (admitted.entry.replica.resume, &ids) {
        (Resume::TokenIds, Ok(_)) => Strategy::TokenIds,
        (Resume::Prefill, _) => Strategy::Prefill,
        _ => Strategy::Regenerate,
    };
    if let Err(why) = &ids {
        tracing::debug!(reason = why, "resume is not token-exact");
    }
    loop {
        let replica = admitted.entry.replica.id.clone();
        let up = &snap.upstreams[index];
        let name = ctx.adapter.as_deref().unwrap_or(&up.model_name);
        let (path, body) = match (strategy, &ids) {
            (Strategy::TokenIds, Ok(ids)) => (
                token_ids::path(&ctx.path),
                token_ids::body(&request, name, ids)?,
            ),
            _ => (
                ctx.path.clone(),
                request_body(&request, name, strategy, &plan.text, plan.tokens)?,
            ),
        };
        let limits = &snap.config.server.limits;
        let now = Instant::now();
        let mut obs = NoObserver;
        // The continuation's own: the client's body reports the answer.
        let outcome = OutcomeSlot::default();
        let out = Outbound {
            method: Method::POST,
            path_and_query: path.into(),
            headers: &ctx.headers,
            body,
            remote: ctx.remote,
            request_id: &ctx.request_id,
            started: now,
            deadline: ctx.deadline.min(now + limits.attempt_timeout),
            first_event_deadline: ctx.deadline.min(now + limits.first_token_timeout),
            last_chance: true,
            resumable: true,
            closing: &ctx.closing,
            obs: &mut obs,
            observer: ctx.observer.as_ref(),
            tenant_usage: ctx.tenant_usage.as_ref(),
            outcome: &outcome,
        };
        let release = Release(Arc::clone(&ctx.queue));
        let sent = forward::forward(snap, admitted, out, release).await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                ctx.observer
                    .resume_attempt(snap, index, ResumeAttempt::Failed);
                return Err(e.to_string());
            }
        };
        if resp.extensions().get::<Resumable>().is_some() {
            return Ok(Continued {
                resp,
                strategy,
                replica,
                index,
            });
        }
        let status = resp.status();
        drop(resp);
        ctx.observer
            .resume_attempt(snap, index, ResumeAttempt::Failed);
        if strategy != Strategy::Regenerate && status.is_client_error() {
            tracing::debug!(%replica, %status, strategy = strategy.label(), "continuation refused; regenerating");
            let refused = strategy.label();
            strategy = Strategy::Regenerate;
            admitted = snap
                .table
                .admit_where_at(&model, &ranking, |i| i == index, clock())
                .map_err(|e| format!("replica `{replica}` refused {refused} ({status}): {e}"))?;
            continue;
        }
        return Err(format!(
            "replica `{replica}` answered the {} with {status}",
            strategy.label()
        ));
    }
}

/// The continuation's body: the client's, for the replica's model name;
/// for a prefill, with the delivered text as a trailing assistant message
/// (vLLM's `continue_final_message`) and `max_tokens` lowered by what was
/// already generated.
fn request_body(
    original: &Map<String, Value>,
    model_name: &str,
    strategy: Strategy,
    text: &str,
    tokens: u64,
) -> Result<Bytes, String> {
    let mut body = original.clone();
    body.insert("model".into(), model_name.into());
    if strategy == Strategy::Prefill {
        let Some(Value::Array(messages)) = body.get_mut("messages") else {
            return Err("request has no `messages` to continue".to_owned());
        };
        messages.push(serde_json::json!({ "role": "assistant", "content": text }));
        body.insert("continue_final_message".into(), true.into());
        body.insert("add_generation_prompt".into(), false.into());
        for key in ["max_tokens", "max_completion_tokens"] {
            if let Some(n) = body.get(key).and_then(Value::as_u64) {
                body.insert(key.into(), n.saturating_sub(tokens).max(1).into());
            }
        }
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| format!("request body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn prefill_appends_the_text_and_lowers_the_token_cap() {
        let original = map(
            r#"{"model":"chat","messages":[{"role":"user","content":"hi"}],"max_tokens":10,"stream":true}"#,
        );
        let body = request_body(&original, "llama", Strategy::Prefill, "tok0 tok1 ", 2).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["model"], "llama");
        assert_eq!(v["messages"][1]["role"], "assistant");
        assert_eq!(v["messages"][1]["content"], "tok0 tok1 ");
        assert_eq!(v["continue_final_message"], true);
        assert_eq!(v["add_generation_prompt"], false);
        assert_eq!(v["max_tokens"], 8);
        assert_eq!(v["stream"], true);
    }

    #[test]
    fn regenerate_resends_the_request() {
        let original = map(r#"{"model":"chat","messages":[],"temperature":0,"stream":true}"#);
        let body = request_body(&original, "chat", Strategy::Regenerate, "x", 1).unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["temperature"], 0);
        assert!(v.get("continue_final_message").is_none());
    }
}
