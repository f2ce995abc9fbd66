//! A bounded feed of things an operator wants to see happen: ejections and
//! recoveries, config swaps, rollout steps and rollbacks. The dashboard and
//! `GET /admin/events` read it; nothing on the request path waits on it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Wall-clock time in ms since the Unix epoch: the one place the control
/// plane reads it, for timestamps people read (events, history,
/// decisions), never for deciding anything.
#[allow(
    clippy::disallowed_methods,
    reason = "timestamps shown to people, not a clock that decides"
)]
pub fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How many events are kept; older ones fall off.
pub const CAPACITY: usize = 512;

/// One event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Position in the feed, increasing from 1; clients poll with `since`.
    pub seq: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Machine-readable kind: `config_applied`, `config_rejected`,
    /// `replica_ejected`, `replica_recovered`, `rollout_step`, `rollback`...
    pub kind: &'static str,
    /// What it concerns (replica id, model name, generation).
    pub subject: String,
    /// One human sentence.
    pub detail: String,
}

/// The feed. A mutex is fine: events are rare (per ejection, per reload).
#[derive(Debug, Default)]
pub struct Events {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    ring: VecDeque<Event>,
}

impl Events {
    /// Records an event (and logs it at info level).
    pub fn push(&self, kind: &'static str, subject: impl Into<String>, detail: impl Into<String>) {
        let (subject, detail) = (subject.into(), detail.into());
        tracing::info!(kind, %subject, "{detail}");
        let at_ms = wall_ms();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.next += 1;
        let seq = inner.next;
        if inner.ring.len() == CAPACITY {
            inner.ring.pop_front();
        }
        inner.ring.push_back(Event {
            seq,
            at_ms,
            kind,
            subject,
            detail,
        });
    }

    /// Events with `seq > since`, oldest first.
    pub fn since(&self, since: u64) -> Vec<Event> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .ring
            .iter()
            .filter(|e| e.seq > since)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_filters_by_seq() {
        let ev = Events::default();
        for i in 0..(CAPACITY + 10) {
            ev.push("test", format!("s{i}"), "d");
        }
        let all = ev.since(0);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].seq, 11);
        assert_eq!(ev.since(all[CAPACITY - 2].seq).len(), 1);
    }
}
