//! Injected faults: what a replica does wrong, for how many requests, how often.
//!
//! Faults exist so that the gateway's failover, retry, breaker and stream
//! handling can be tested against every way a real model server misbehaves,
//! on demand, without a real GPU. A fault applies to inference endpoints only;
//! health, readiness, model listing and the control endpoints keep answering.
//!
//! The hot path pays one relaxed atomic load while no fault is set
//! ([`FaultCell::pick`]); the mutex is only taken while a rule is active.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One way to misbehave. JSON: `{"mode": "<snake_case name>", ...fields}`.
///
/// Faults that answer without generating (`error`, `rate_limited`,
/// `context_length_exceeded`, `reset_before_headers`, `blackhole`) act before
/// the `slots`/`queue` admission, like a server's front end; the stream faults
/// act on generation. Stream faults only change streamed OpenAI answers, except
/// `slow_first_token`, which delays every answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Behave normally (the same as no rule).
    None,
    /// Answer `status` (400..=599) in the endpoint's error shape (OpenAI or KServe).
    Error {
        /// HTTP status to answer.
        status: u16,
    },
    /// Answer 429, with `Retry-After: <secs>` when given, without it otherwise.
    RateLimited {
        /// Value of the `Retry-After` header, in seconds.
        retry_after_secs: Option<u32>,
    },
    /// Close the TCP connection with a reset (`SO_LINGER` 0) before any
    /// response byte. Over HTTP/2 this resets the whole connection.
    ResetBeforeHeaders,
    /// Accept the request and never answer; the request stays in flight until
    /// the client goes away or the replica shuts down.
    Blackhole,
    /// Streams: headers go out at once, the first SSE event `delay_ms` later.
    /// Non-streaming answers come `delay_ms` late (headers included).
    SlowFirstToken {
        /// Delay before the first token, in milliseconds.
        delay_ms: u64,
    },
    /// Send `after_tokens` token chunks, then end the body cleanly with no
    /// `finish_reason`, no usage and no `[DONE]`: a silent truncation.
    CutStream {
        /// Token chunks sent before the cut.
        after_tokens: u32,
    },
    /// Send `after_tokens` token chunks, then nothing more, keeping the
    /// connection open until the client leaves.
    StallStream {
        /// Token chunks sent before the stall.
        after_tokens: u32,
    },
    /// After `after_tokens` token chunks send `data: {not json`, then carry on
    /// normally to `[DONE]`.
    MalformedEvent {
        /// Token chunks sent before the bad event.
        after_tokens: u32,
    },
    /// A complete stream (finish reason and usage) without `data: [DONE]`.
    OmitDone,
    /// 400 with OpenAI's `context_length_exceeded` error (KServe: a 400 error).
    ContextLengthExceeded,
    /// A chat request asking to continue its final assistant message
    /// (`continue_final_message: true`) answers 400, as a server without
    /// prefill does; other requests are answered normally.
    RejectPrefill,
    /// Sampling is not deterministic: every answer's tokens differ from
    /// the last one's (`tok0-<random> ...`).
    Nondeterministic,
    /// A completion request whose `prompt` is a list of token ids answers
    /// 400, as a server that takes only text does; other requests are
    /// answered normally.
    RejectTokenIds,
}

/// A [`Fault`] with how many requests and how often it applies.
///
/// JSON is flat: `{"mode":"error","status":503,"count":3,"rate":0.5}`; unknown
/// fields are rejected, so a typo is an error rather than a silent no-op.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct FaultRule {
    /// What to do.
    #[serde(flatten)]
    pub fault: Fault,
    /// Apply to the next `count` inference requests (those the rate picked),
    /// then revert to no fault. A pick counts even when the fault does not
    /// change that answer (a stream fault on a non-streaming request).
    /// `None`: until changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Probability (0..=1) that a request gets the fault. `None`: 1.0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
}

impl FaultRule {
    /// A rule applying `fault` to every request until changed.
    pub fn always(fault: Fault) -> Self {
        Self {
            fault,
            count: None,
            rate: None,
        }
    }

    /// A rule applying `fault` to the next `n` requests.
    pub fn next(fault: Fault, n: u32) -> Self {
        Self {
            fault,
            count: Some(n),
            rate: None,
        }
    }

    /// Checks the ranges serde cannot express.
    fn validate(self) -> Result<Self, String> {
        if let Some(rate) = self.rate.filter(|r| !(0.0..=1.0).contains(r)) {
            return Err(format!("`rate` must be within 0..=1, got {rate}"));
        }
        match self.fault {
            Fault::Error { status } if !(400..=599).contains(&status) => {
                Err(format!("`status` must be within 400..=599, got {status}"))
            }
            _ => Ok(self),
        }
    }
}

impl TryFrom<Map<String, Value>> for FaultRule {
    type Error = String;

    fn try_from(mut map: Map<String, Value>) -> Result<Self, String> {
        let mut take = |key: &str| map.remove(key).filter(|v| !v.is_null());
        let count = take("count")
            .map(serde_json::from_value::<u32>)
            .transpose()
            .map_err(|e| format!("`count`: {e}"))?;
        let rate = take("rate")
            .map(serde_json::from_value::<f64>)
            .transpose()
            .map_err(|e| format!("`rate`: {e}"))?;
        let fault = serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?;
        Self { fault, count, rate }.validate()
    }
}

/// The replica's current rule, shared by all connections.
#[derive(Default)]
pub(crate) struct FaultCell {
    active: AtomicBool,
    rule: Mutex<Option<FaultRule>>,
}

impl FaultCell {
    /// Replaces the rule; `count: Some(0)` and `mode: none` clear it.
    pub(crate) fn set(&self, rule: FaultRule) {
        let rule = (rule.fault != Fault::None && rule.count != Some(0)).then_some(rule);
        let mut guard = self.rule.lock().unwrap_or_else(|p| p.into_inner());
        self.active.store(rule.is_some(), Ordering::Release);
        *guard = rule;
    }

    /// Removes the rule.
    pub(crate) fn clear(&self) {
        self.set(FaultRule::always(Fault::None));
    }

    /// The current rule (with the count left), if any.
    pub(crate) fn get(&self) -> Option<FaultRule> {
        self.rule.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The fault for one request, spending one of the rule's count.
    pub(crate) fn pick(&self) -> Option<Fault> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        let mut guard = self.rule.lock().unwrap_or_else(|p| p.into_inner());
        let rule = guard.as_mut()?;
        if rule.rate.is_some_and(|r| fastrand::f64() >= r) {
            return None;
        }
        let fault = rule.fault.clone();
        if let Some(n) = rule.count.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                *guard = None;
                self.active.store(false, Ordering::Release);
            }
        }
        Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_flat_json_and_reject_typos() {
        let r: FaultRule =
            serde_json::from_str(r#"{"mode":"error","status":503,"count":3}"#).expect("valid rule");
        assert_eq!(r, FaultRule::next(Fault::Error { status: 503 }, 3));
        let back = serde_json::to_string(&r).expect("serializes");
        assert_eq!(back, r#"{"mode":"error","status":503,"count":3}"#);
        let r: FaultRule = serde_json::from_str(r#"{"mode":"omit_done"}"#).expect("unit mode");
        assert_eq!(r, FaultRule::always(Fault::OmitDone));
        for bad in [
            r#"{"mode":"error","stauts":503}"#,
            r#"{"mode":"rate_limited","retry_after":1}"#,
            r#"{"mode":"nope"}"#,
            r#"{"mode":"error","status":200}"#,
            r#"{"mode":"blackhole","rate":2}"#,
        ] {
            assert!(serde_json::from_str::<FaultRule>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_counted_rule_reverts_after_n_picks() {
        let cell = FaultCell::default();
        assert_eq!(cell.pick(), None);
        cell.set(FaultRule::next(Fault::OmitDone, 2));
        assert_eq!(cell.pick(), Some(Fault::OmitDone));
        assert_eq!(cell.get().and_then(|r| r.count), Some(1));
        assert_eq!(cell.pick(), Some(Fault::OmitDone));
        assert_eq!(cell.pick(), None);
        assert_eq!(cell.get(), None);
        cell.set(FaultRule {
            rate: Some(0.0),
            ..FaultRule::always(Fault::Blackhole)
        });
        assert_eq!(cell.pick(), None);
    }
}
