//! The shared-prefix multi-turn workload: chat conversations that each
//! start from one of a few system prompts and grow by a user and an
//! assistant turn per request, as a chat product's traffic does. Routing
//! that keeps a conversation (and its system prompt) where its blocks are
//! cached pays less prefill than routing that spreads it.
//!
//! Conversation `c` uses system prompt `c % system_prompts`; its turn `k`
//! sends the system prompt, then for every earlier turn `j` the user text
//! of `(c, j)` and the fixed assistant text of `j`, then the user text of
//! `(c, k)`, streamed. All text is deterministic ASCII of the asked size,
//! so turn `k + 1` extends turn `k`'s prompt byte for byte. A conversation
//! that sent its last turn is replaced by a new one (a fresh id), so
//! `conversations` are always active; each request picks one at random.
//! Turns are sent on the load's schedule, not after the previous answer.

use bytes::Bytes;
use serde::Serialize;

/// Shape of the workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SharedPrefix {
    /// Model name sent.
    pub model: String,
    /// Distinct system prompts.
    pub system_prompts: usize,
    /// Conversations active at once.
    pub conversations: usize,
    /// Requests (user turns) per conversation.
    pub turns: usize,
    /// Bytes of each system prompt.
    pub system_bytes: usize,
    /// Bytes of each user turn and of each assistant turn.
    pub turn_bytes: usize,
}

impl SharedPrefix {
    /// Every count must be at least 1.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.system_prompts > 0 && self.conversations > 0 && self.turns > 0,
            "--system-prompts, --conversations and --turns must be > 0"
        );
        Ok(())
    }

    /// The JSON body of turn `turn` of conversation `conv`.
    pub(crate) fn body(&self, conv: u64, turn: usize) -> Bytes {
        let system = text(
            &format!("system prompt {}. ", conv % self.system_prompts as u64),
            self.system_bytes,
        );
        let mut messages = Vec::with_capacity(2 * turn + 2);
        messages.push(serde_json::json!({"role": "system", "content": system}));
        for j in 0..turn {
            messages.push(serde_json::json!({"role": "user", "content": self.user(conv, j)}));
            let reply = text(&format!("assistant reply {j}. "), self.turn_bytes);
            messages.push(serde_json::json!({"role": "assistant", "content": reply}));
        }
        messages.push(serde_json::json!({"role": "user", "content": self.user(conv, turn)}));
        let body = serde_json::json!({"model": self.model, "stream": true, "messages": messages});
        Bytes::from(body.to_string())
    }

    fn user(&self, conv: u64, turn: usize) -> String {
        text(
            &format!("conversation {conv} turn {turn}. "),
            self.turn_bytes,
        )
    }
}

/// `head` followed by filler, exactly `n` bytes (ASCII).
fn text(head: &str, n: usize) -> String {
    let mut t = String::with_capacity(n + 32);
    t.push_str(head);
    while t.len() < n {
        t.push_str("lorem ipsum dolor sit amet ");
    }
    t.truncate(n);
    t
}

/// The active conversations and where each one is.
pub(crate) struct Conversations {
    shape: SharedPrefix,
    /// `(conversation id, next turn)`.
    active: Vec<(u64, usize)>,
    next_id: u64,
}

impl Conversations {
    pub(crate) fn new(shape: SharedPrefix) -> Self {
        let n = shape.conversations;
        Self {
            active: (0..n as u64).map(|c| (c, 0)).collect(),
            next_id: n as u64,
            shape,
        }
    }

    /// The body of the next request: the next turn of a random active
    /// conversation (replaced by a fresh one after its last turn).
    pub(crate) fn next(&mut self, rng: &mut fastrand::Rng) -> Bytes {
        let i = rng.usize(..self.active.len());
        let (conv, turn) = self.active[i];
        let body = self.shape.body(conv, turn);
        self.active[i] = if turn + 1 < self.shape.turns {
            (conv, turn + 1)
        } else {
            self.next_id += 1;
            (self.next_id - 1, 0)
        };
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> SharedPrefix {
        SharedPrefix {
            model: "m".into(),
            system_prompts: 2,
            conversations: 3,
            turns: 2,
            system_bytes: 100,
            turn_bytes: 30,
        }
    }

    fn messages(body: &Bytes) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["stream"], true);
        v["messages"].as_array().unwrap().clone()
    }

    #[test]
    fn a_turn_extends_the_previous_one() {
        let s = shape();
        let t0 = messages(&s.body(5, 0));
        let t1 = messages(&s.body(5, 1));
        assert_eq!(t0.len(), 2);
        assert_eq!(t1.len(), 4);
        assert_eq!(t1[..2], t0[..], "turn 1 starts with all of turn 0");
        assert_eq!(t1[2]["role"], "assistant");
        assert_eq!(t0[0]["content"].as_str().unwrap().len(), 100);
        assert_eq!(t0[1]["content"].as_str().unwrap().len(), 30);
        assert_eq!(t0[0], messages(&s.body(7, 0))[0], "same system prompt");
        assert_ne!(t0[0], messages(&s.body(6, 0))[0], "another system prompt");
        assert_ne!(t0[1], messages(&s.body(7, 0))[1], "own user turns");
    }

    #[test]
    fn conversations_run_their_turns_then_are_replaced() {
        let mut c = Conversations::new(shape());
        let mut rng = fastrand::Rng::with_seed(1);
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for _ in 0..30 {
            let m = messages(&c.next(&mut rng));
            let first_user = m[1]["content"].as_str().unwrap().to_owned();
            let turns = seen.entry(first_user).or_default();
            assert_eq!(m.len(), 2 * *turns + 2, "turns come in order");
            *turns += 1;
        }
        assert!(seen.len() > 3, "finished conversations were replaced");
        assert!(seen.values().all(|n| *n <= 2));
        assert_eq!(c.active.len(), 3);
    }
}
