//! Mid-stream resume: when a committed OpenAI chat stream breaks (the
//! replica errors, cuts it, or stalls past the idle timeout), continue the
//! answer on another replica of the same group and version, so the client
//! receives one complete answer ending in one `[DONE]`.
//!
//! - **Opt-in per replica** (`replicas[i].resume`): `token_ids` (the
//!   prompt's and the answer's token ids as a `/v1/completions` prompt,
//!   [`token_ids`]; without ids, `regenerate`), `prefill` (the text so far
//!   as a trailing assistant message, vLLM's `continue_final_message`) or
//!   `regenerate` (run the request again and skip what the client has,
//!   only when the new answer starts with exactly that text); a 4xx to
//!   `token_ids` or `prefill` falls back to `regenerate`. A stream is
//!   resumable when its replica declares a strategy and its group allows
//!   resumes (`routing.max_resumes`, default 1).
//! - **Bounded**: each resume spends a retry-budget token (waiting up to
//!   2 s for it to refill: a dying replica breaks many streams at once),
//!   starts only
//!   before the request deadline, and waits for its first event like any
//!   attempt. Remembered text is capped (`delivered::MAX_REMEMBERED`).
//! - **Honest**: what cannot be made correct (tool-call deltas in flight,
//!   several choices, a different regenerated answer, no replica, limit
//!   reached) ends with the same SSE error event as without resume.
//! - **One stream**: continuation chunks carry the first stream's `id`,
//!   `model`, `created` and fingerprint, no second `role`; the usage chunk
//!   counts what the client received (`rewrite.rs`). Each attempt is metered
//!   on its own replica; a broken one books the tokens it delivered.
//! - **Visible**: an SSE comment `: switchyard resumed on <replica>`, the
//!   outcome `resumed` (access log, metrics, span), a log line; every
//!   continuation attempt is reported to [`crate::Observer::resume_attempt`].
//!
//! Cost for streams that never break: the events are parsed to remember
//! the delivered text (and on `token_ids` replicas the ids; an event with
//! ids the client did not ask for is written again without them,
//! `frame.rs`); nothing else. Other answers are not wrapped at all.

mod attempt;
mod delivered;
mod frame;
mod rewrite;
pub mod token_ids;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty};
use sync_wrapper::SyncWrapper;
use tokio::time::Instant;

pub use attempt::Continuation;
use attempt::{Continued, Plan, continue_after};
use delivered::Delivered;
use rewrite::{Rewrite, Strategy};

use crate::body::{BoxError, ProxyBody, StreamBroken, sse_error_event};
use crate::forward::Resumable;
use crate::observe::{OutcomeSlot, ResumeAttempt, StreamOutcome};
use crate::usage::{Meter, Usage};

/// Wraps a resumable answer (one `forward` marked [`Resumable`]) so that a
/// break is continued elsewhere; any other answer is returned untouched
/// and `make` is not called.
pub fn attach(
    mut resp: Response<ProxyBody>,
    outcome: &OutcomeSlot,
    make: impl FnOnce() -> Continuation,
) -> Response<ProxyBody> {
    let Some(Resumable { index }) = resp.extensions_mut().remove::<Resumable>() else {
        return resp;
    };
    let outcome = outcome.clone();
    let ctx = Arc::new(make());
    let meter = meter(&ctx, index);
    let client_ids = token_ids::client_asked(&ctx.body);
    resp.map(|inner| {
        ResumeBody {
            inner,
            state: State::Streaming,
            delivered: Delivered::default(),
            rewrite: None,
            replica: index,
            resumes: 0,
            meter,
            broken: Vec::new(),
            outcome,
            client_ids,
            continuing: None,
            ctx,
        }
        .boxed()
    })
}

/// The continuation being set up, polled by the body itself (so it goes
/// when the client leaves). A response body must be `Sync`; the future is
/// only ever touched through `&mut`, which `SyncWrapper` makes `Sync`.
type Resuming = SyncWrapper<Pin<Box<dyn Future<Output = Result<Continued, String>> + Send>>>;

enum State {
    Streaming,
    Resuming {
        fut: Resuming,
        why: String,
    },
    /// Events went out; the error event follows.
    Failing(String),
    Done,
}

/// The client's body of a resumable stream.
struct ResumeBody {
    /// The stream being forwarded (the first, or a continuation).
    inner: ProxyBody,
    state: State,
    delivered: Delivered,
    /// For a continuation: how its events become the client's stream.
    rewrite: Option<Rewrite>,
    /// The current stream's replica (index in the snapshot's table).
    replica: usize,
    resumes: u32,
    /// Meters the current stream's replica.
    meter: Option<Meter>,
    /// Meters of broken attempts, with the tokens each delivered.
    broken: Vec<(Option<Meter>, u64)>,
    outcome: OutcomeSlot,
    /// The client asked for token ids itself: they are not stripped.
    client_ids: bool,
    /// The continuation streaming now, until its end is reported.
    continuing: Option<usize>,
    ctx: Arc<Continuation>,
}

fn meter(ctx: &Continuation, index: usize) -> Option<Meter> {
    let replica = &ctx.snap.table.entries()[index].replica;
    Meter::new(
        ctx.observer.meter(replica),
        ctx.tenant_usage.clone(),
        replica.cost,
    )
}

impl ResumeBody {
    /// Passes a frame of whole events on, rewritten for a continuation;
    /// the events to send, and why the stream must end, if it must.
    fn pass(&mut self, frame: Bytes) -> (Bytes, Option<String>) {
        if let Some(m) = &mut self.meter {
            m.feed(&frame);
        }
        let Some(rewrite) = &mut self.rewrite else {
            let strip = !self.client_ids;
            return (frame::pass_on(frame, &mut self.delivered, strip), None);
        };
        let strip = !self.client_ids;
        let broken = &mut self.broken;
        let estimate = |prompt: u64| {
            // What each broken attempt cost, now that the prompt is known.
            for (m, tokens) in broken.iter_mut() {
                if let Some(m) = m {
                    m.estimate(Usage {
                        prompt_tokens: prompt,
                        completion_tokens: *tokens,
                    });
                }
            }
        };
        let (out, failure) =
            frame::pass_rewritten(&frame, rewrite, &mut self.delivered, strip, estimate);
        if failure.is_some() {
            self.report(ResumeAttempt::Failed);
        }
        (out, failure)
    }

    /// The stream broke: start a continuation, or say why there is none.
    fn start(&mut self, why: String) -> Result<(), String> {
        self.report(ResumeAttempt::Broken);
        let refuse = |reason: &str| Err(format!("{why}; not resumed: {reason}"));
        if let Some(blocked) = self.delivered.blocked {
            return refuse(blocked);
        }
        if self.resumes >= self.ctx.max_resumes {
            return refuse("the resume limit for this request is reached");
        }
        if self.ctx.closing.is_cancelled() {
            return refuse("the gateway is shutting down");
        }
        if Instant::now() >= self.ctx.deadline {
            return refuse("the request deadline has passed");
        }
        if self.delivered.identity.is_none() {
            return refuse("the replica sent no chat chunk to continue");
        }
        // The retry budget is spent (or waited for) by the continuation.
        self.resumes += 1;
        let spent = std::mem::take(&mut self.delivered.attempt_tokens);
        self.broken.push((self.meter.take(), spent));
        // The broken stream (its slot is already free) goes now.
        self.inner = empty();
        self.rewrite = None;
        let plan = Plan {
            text: self.delivered.text.clone(),
            tokens: self.delivered.tokens,
            ids: self.delivered.ids.clone(),
        };
        let fut = continue_after(Arc::clone(&self.ctx), self.replica, plan);
        self.state = State::Resuming {
            fut: SyncWrapper::new(Box::pin(fut)),
            why,
        };
        Ok(())
    }

    /// A continuation is streaming: install it; the comment that says so.
    fn resumed(&mut self, c: Continued) -> Bytes {
        let identity = self.delivered.identity.clone().unwrap_or_default();
        self.rewrite = Some(Rewrite::new(
            identity,
            c.strategy,
            &self.delivered.text,
            self.delivered.tokens,
        ));
        if c.strategy != Strategy::TokenIds {
            // Its ids (if any) do not continue the ones recorded.
            self.delivered
                .ids_off("the answer was continued from its text");
        }
        self.meter = meter(&self.ctx, c.index);
        self.replica = c.index;
        self.continuing = Some(c.index);
        self.inner = c.resp.into_body();
        self.state = State::Streaming;
        tracing::info!(replica = %c.replica, strategy = c.strategy.label(), resumes = self.resumes, "stream resumed");
        Bytes::from(format!(": switchyard resumed on {}\n\n", c.replica))
    }

    /// Reports how the continuation streaming now ended, once.
    fn report(&mut self, end: ResumeAttempt) {
        if let Some(index) = self.continuing.take() {
            self.ctx.observer.resume_attempt(&self.ctx.snap, index, end);
        }
    }

    /// Ends the stream with the error event.
    fn fail(&mut self, why: String) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        tracing::warn!(error = %why, "stream ended with an error event");
        self.inner = empty();
        self.state = State::Done;
        self.outcome.set(StreamOutcome::ErrorEvent);
        Poll::Ready(Some(Ok(Frame::data(sse_error_event(&why)))))
    }
}

impl Drop for ResumeBody {
    /// The client left while a continuation streamed.
    fn drop(&mut self) {
        self.report(ResumeAttempt::ClientGone);
    }
}

fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

impl Body for ResumeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match &mut this.state {
                State::Done => return Poll::Ready(None),
                State::Failing(why) => {
                    let why = std::mem::take(why);
                    return this.fail(why);
                }
                State::Resuming { fut, why } => {
                    let result = match fut.get_mut().as_mut().poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(result) => result,
                    };
                    return match result {
                        Ok(c) => Poll::Ready(Some(Ok(Frame::data(this.resumed(c))))),
                        Err(e) => {
                            let why = format!("{why}; resume failed: {e}");
                            this.fail(why)
                        }
                    };
                }
                State::Streaming => {}
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.state = State::Done;
                    this.report(ResumeAttempt::Complete);
                    if this.resumes > 0 {
                        this.outcome.set(StreamOutcome::Resumed);
                    }
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(frame))) => {
                    let data = match frame.into_data() {
                        Ok(data) => data,
                        Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                    };
                    let (out, failure) = this.pass(data);
                    if let Some(why) = failure {
                        if out.is_empty() {
                            return this.fail(why);
                        }
                        this.state = State::Failing(why);
                    }
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Poll::Ready(Some(Err(e))) => match e.downcast::<StreamBroken>() {
                    Ok(broken) => {
                        if let Err(why) = this.start(broken.0) {
                            return this.fail(why);
                        }
                    }
                    Err(e) => {
                        this.state = State::Done;
                        this.report(ResumeAttempt::Broken);
                        return Poll::Ready(Some(Err(e)));
                    }
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
