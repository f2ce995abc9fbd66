//! Making a continuation's chunks read as the rest of the stream the
//! client already has: the first stream's `id`, `model`, `created` and
//! fingerprint; no second `role` delta; for `regenerate`, the text the
//! client already has skipped (or the mismatch reported); for
//! `token_ids`, completion chunks made chat chunks; a usage chunk true for
//! what the client received.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::delivered::Identity;
use super::token_ids;
use crate::usage::Usage;

/// How the continuation was asked for, which decides what its chunks mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The replica continued the delivered text: its chunks are new text,
    /// its usage counts the delivered text as prompt.
    Prefill,
    /// The replica answered again from the start.
    Regenerate,
    /// The replica continued the token ids on `/v1/completions`: its
    /// chunks are completion chunks of new text, its usage counts the
    /// generated ids as prompt.
    TokenIds,
}

impl Strategy {
    /// Fixed label for logs.
    pub fn label(self) -> &'static str {
        match self {
            Strategy::Prefill => "prefill",
            Strategy::Regenerate => "regenerate",
            Strategy::TokenIds => "token_ids",
        }
    }
}

/// Rewrites one continuation's events.
#[derive(Debug)]
pub struct Rewrite {
    identity: Identity,
    strategy: Strategy,
    /// `Regenerate`: delivered text the new answer has not matched yet.
    skip: String,
    /// `Prefill`, `TokenIds`: tokens the client had before this continuation.
    prefix_tokens: u64,
}

/// One rewritten event.
#[derive(Debug, Default)]
pub struct Rewritten {
    /// The event to send (`None`: nothing left of it to send).
    pub event: Option<Bytes>,
    /// The usage the replica reported in it, as reported.
    pub usage: Option<Usage>,
}

impl Rewrite {
    /// A rewrite for a continuation asked for with `strategy`, after the
    /// client received `text` in `tokens` content chunks.
    pub fn new(identity: Identity, strategy: Strategy, text: &str, tokens: u64) -> Self {
        Self {
            identity,
            strategy,
            skip: match strategy {
                Strategy::Regenerate => text.to_owned(),
                Strategy::Prefill | Strategy::TokenIds => String::new(),
            },
            prefix_tokens: tokens,
        }
    }

    /// The first stream's prompt tokens, judged from the usage `reported`
    /// by this continuation (the prefill counts as prompt).
    pub fn original_prompt(&self, reported: Usage) -> u64 {
        match self.strategy {
            Strategy::Regenerate => reported.prompt_tokens,
            Strategy::Prefill | Strategy::TokenIds => {
                reported.prompt_tokens.saturating_sub(self.prefix_tokens)
            }
        }
    }

    /// Rewrites the `data` payload of one event; `Err` when the
    /// continuation cannot be made the rest of the client's answer.
    pub fn apply(&mut self, data: &[u8]) -> Result<Rewritten, String> {
        if data == b"[DONE]" {
            self.not_short()?;
            return Ok(Rewritten {
                event: Some(Bytes::from_static(b"data: [DONE]\n\n")),
                usage: None,
            });
        }
        let mut chunk: Map<String, Value> = serde_json::from_slice(data)
            .map_err(|_| "the new replica sent an event that is not a chat chunk".to_owned())?;
        if chunk.contains_key("error") {
            return Ok(Rewritten {
                event: Some(event(&chunk)),
                usage: None,
            });
        }
        if self.strategy == Strategy::TokenIds {
            token_ids::to_chat(&mut chunk);
        }
        for (key, value) in &self.identity.fields {
            if chunk.contains_key(*key) {
                chunk.insert((*key).to_owned(), value.clone());
            }
        }
        let mut keep = false;
        if let Some(Value::Array(choices)) = chunk.get_mut("choices") {
            for choice in choices.iter_mut() {
                keep |= self.choice(choice)?;
            }
        }
        let usage = chunk.get_mut("usage").and_then(|u| self.usage(u));
        keep |= usage.is_some() || !matches!(chunk.get("choices"), Some(Value::Array(_)));
        Ok(Rewritten {
            event: keep.then(|| event(&chunk)),
            usage,
        })
    }

    /// Rewrites one choice; whether anything of it is left to send.
    fn choice(&mut self, choice: &mut Value) -> Result<bool, String> {
        if choice.get("index").and_then(Value::as_u64).unwrap_or(0) != 0 {
            return Err("the new replica answered with several choices".to_owned());
        }
        let finished = choice.get("finish_reason").is_some_and(|f| !f.is_null());
        let Some(Value::Object(delta)) = choice.get_mut("delta") else {
            if finished {
                self.not_short()?;
            }
            return Ok(finished);
        };
        delta.remove("role");
        if !self.skip.is_empty() && (delta.contains_key("tool_calls") || finished) {
            return Err(self.differs());
        }
        let mut trimmed = false;
        if let Some(Value::String(content)) = delta.get_mut("content") {
            if !self.skip.is_empty() {
                trimmed = true;
                if let Some(rest) = self.skip.strip_prefix(content.as_str()) {
                    self.skip = rest.to_owned();
                    content.clear();
                } else if let Some(rest) = content.strip_prefix(self.skip.as_str()) {
                    *content = rest.to_owned();
                    self.skip.clear();
                } else {
                    return Err(self.differs());
                }
            }
            if content.is_empty() {
                delta.remove("content");
            }
        }
        let has_text = !delta.is_empty();
        // A token without text (vLLM sends its ids when asked) is part of
        // the sequence a later exact resume continues.
        let ids = self.strategy == Strategy::TokenIds
            && choice
                .get("token_ids")
                .and_then(Value::as_array)
                .is_some_and(|ids| !ids.is_empty());
        let has_delta = has_text || ids;
        if trimmed && let Some(obj) = choice.as_object_mut() {
            // Log probabilities and token ids of skipped text would not
            // match the text.
            obj.remove("logprobs");
            obj.remove("token_ids");
        }
        Ok(has_delta || finished)
    }

    /// The reported usage; rewritten for a prefill or token ids so the
    /// client's usage counts the tokens it received as completion, not
    /// prompt.
    fn usage(&self, usage: &mut Value) -> Option<Usage> {
        let reported: Usage = serde_json::from_value(usage.clone()).ok()?;
        if matches!(self.strategy, Strategy::Prefill | Strategy::TokenIds)
            && let Some(obj) = usage.as_object_mut()
        {
            let prompt = self.original_prompt(reported);
            let completion = reported.completion_tokens + self.prefix_tokens;
            obj.insert("prompt_tokens".into(), prompt.into());
            obj.insert("completion_tokens".into(), completion.into());
            obj.insert("total_tokens".into(), (prompt + completion).into());
        }
        Some(reported)
    }

    fn not_short(&self) -> Result<(), String> {
        if self.skip.is_empty() {
            Ok(())
        } else {
            Err(self.differs())
        }
    }

    fn differs(&self) -> String {
        "the new replica's answer differs from the text already sent \
         (its decoding is not deterministic)"
            .to_owned()
    }
}

fn event(chunk: &Map<String, Value>) -> Bytes {
    let json = serde_json::to_string(chunk).unwrap_or_default();
    Bytes::from(format!("data: {json}\n\n"))
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
