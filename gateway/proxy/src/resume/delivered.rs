//! What the client has received of a resumable stream: the answer's text
//! (choice 0), how many content chunks carried it, the stream's identity
//! (`id`, `model`, ...) that a continuation must keep, and whether a
//! continuation could still be made correct.
//!
//! The gateway forwards whole SSE events (`events.rs`), so every frame the
//! resume layer sees is a run of whole events: [`events`] splits one into
//! events and each event's `data` payload.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::token_ids::{MAX_IDS, TokenIds};

/// Most answer text remembered per stream. Past it the stream is no longer
/// resumable (a break ends with the error event) and the text is freed.
pub const MAX_REMEMBERED: usize = 256 << 10;

/// The fields of the first chunk every continuation chunk is given, so the
/// client sees one stream: same `id`, `model`, `created`, fingerprint.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// `(key, raw JSON value)` for each of those the first chunk had.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

/// The client's side of the answer so far.
#[derive(Debug)]
pub struct Delivered {
    /// Text of choice 0's `delta.content`, in order.
    pub text: String,
    /// Tokens generated: the token ids chunks carried, else one per
    /// content chunk (one token each on vLLM-like servers); the
    /// completion tokens a continuation did not generate.
    pub tokens: u64,
    /// Of those, since the current attempt started (what it cost).
    pub attempt_tokens: u64,
    /// The prompt's and the answer's token ids while every chunk carried
    /// them (`resume: token_ids`); `Err`: why a resume cannot be exact.
    pub ids: Result<TokenIds, &'static str>,
    /// From the first chunk.
    pub identity: Option<Identity>,
    /// Why a continuation could not be made correct, once it cannot.
    pub blocked: Option<&'static str>,
}

impl Default for Delivered {
    fn default() -> Self {
        Self {
            text: String::new(),
            tokens: 0,
            attempt_tokens: 0,
            ids: Err("the replica sent no token ids"),
            identity: None,
            blocked: None,
        }
    }
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    created: Option<&'a RawValue>,
    #[serde(borrow)]
    system_fingerprint: Option<&'a RawValue>,
    #[serde(borrow, default)]
    choices: Vec<Choice<'a>>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    prompt_token_ids: Option<Vec<u32>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    #[serde(borrow)]
    finish_reason: Option<&'a RawValue>,
    token_ids: Option<Vec<u32>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tool_calls: Option<&'a RawValue>,
    #[serde(borrow)]
    function_call: Option<&'a RawValue>,
    #[serde(borrow)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(borrow)]
    reasoning: Option<&'a RawValue>,
}

impl Delivered {
    /// Records one `data` payload the client received.
    pub fn observe(&mut self, data: &[u8]) {
        if self.blocked.is_some() || data == b"[DONE]" {
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(data) else {
            self.block("the replica sent an event that is not a chat chunk");
            return;
        };
        if chunk.error.is_some() {
            return self.block("the replica reported an error in the stream");
        }
        if self.identity.is_none() {
            let raw = [
                ("id", chunk.id),
                ("model", chunk.model),
                ("created", chunk.created),
                ("system_fingerprint", chunk.system_fingerprint),
            ];
            let fields = raw
                .into_iter()
                .filter_map(|(k, v)| Some((k, serde_json::from_str(v?.get()).ok()?)))
                .collect();
            self.identity = Some(Identity { fields });
            if let Some(prompt) = chunk.prompt_token_ids {
                self.ids = Ok(TokenIds {
                    prompt,
                    generated: Vec::new(),
                });
            }
        }
        for choice in chunk.choices {
            if choice.index != 0 {
                return self.block("the answer has several choices");
            }
            if choice.finish_reason.is_some() {
                return self.block("the answer had already finished");
            }
            let content = match &choice.delta {
                Some(delta) if delta.tool_calls.is_some() || delta.function_call.is_some() => {
                    return self.block("a tool call was being streamed");
                }
                Some(delta) if delta.reasoning_content.is_some() || delta.reasoning.is_some() => {
                    // The chat endpoint parses reasoning out of the text;
                    // a completion would not: only text can go on.
                    self.ids_off("the answer streamed reasoning");
                    delta.content.as_deref()
                }
                Some(delta) => delta.content.as_deref(),
                None => None,
            };
            let content = content.filter(|c| !c.is_empty());
            if let Some(content) = content {
                if self.text.len() + content.len() > MAX_REMEMBERED {
                    return self
                        .block("the answer is longer than the text remembered for a resume");
                }
                self.text.push_str(content);
            }
            let generated = match choice.token_ids {
                Some(ids) => self.record_ids(ids),
                None if content.is_some() => {
                    self.ids_off("a chunk came without its token ids");
                    1
                }
                None => 0,
            };
            self.tokens += generated;
            self.attempt_tokens += generated;
        }
    }

    /// Records generated `ids`; how many.
    fn record_ids(&mut self, ids: Vec<u32>) -> u64 {
        let n = ids.len() as u64;
        if let Ok(have) = &mut self.ids {
            if have.prompt.len() + have.generated.len() + ids.len() > MAX_IDS {
                self.ids_off("the answer is longer than the token ids remembered for a resume");
            } else {
                have.generated.extend(ids);
            }
        }
        n
    }

    /// From now on a resume cannot be token-exact, because of `why`.
    pub fn ids_off(&mut self, why: &'static str) {
        if self.ids.is_ok() {
            self.ids = Err(why);
        }
    }

    fn block(&mut self, why: &'static str) {
        self.blocked = Some(why);
        self.text = String::new();
        self.ids_off(why);
    }
}

/// One event's bytes, and its `data` payload when it has one.
pub type Event<'a> = (&'a [u8], Option<Cow<'a, [u8]>>);

/// The events of `frame` (whole events): each one's bytes, and its `data`
/// payload (lines joined by `\n`) when it has one. Lines end in CRLF, LF
/// or CR, as the SSE grammar allows.
pub fn events(frame: &[u8]) -> Vec<Event<'_>> {
    let mut out = Vec::new();
    let (mut start, mut at) = (0, 0);
    let mut data: Option<Cow<'_, [u8]>> = None;
    while at < frame.len() {
        let end = memchr::memchr2(b'\n', b'\r', &frame[at..]).map_or(frame.len(), |i| at + i);
        let line = &frame[at..end];
        let mut next = end + 1;
        if frame.get(end) == Some(&b'\r') && frame.get(end + 1) == Some(&b'\n') {
            next += 1;
        }
        if line.is_empty() {
            out.push((&frame[start..next.min(frame.len())], data.take()));
            start = next;
        } else if let Some(value) = data_value(line) {
            data = Some(match data.take() {
                None => Cow::Borrowed(value),
                Some(prev) => {
                    let mut joined = prev.into_owned();
                    joined.push(b'\n');
                    joined.extend_from_slice(value);
                    Cow::Owned(joined)
                }
            });
        }
        at = next;
    }
    if start < frame.len() {
        out.push((&frame[start..], data));
    }
    out
}

/// The value of a `data` field line (one leading space stripped).
fn data_value(line: &[u8]) -> Option<&[u8]> {
    if line == b"data" {
        return Some(b"");
    }
    let value = line.strip_prefix(b"data:")?;
    Some(value.strip_prefix(b" ").unwrap_or(value))
}

#[cfg(test)]
#[path = "delivered_tests.rs"]
mod tests;
