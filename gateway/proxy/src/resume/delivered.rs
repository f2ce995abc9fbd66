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
mod tests {
    use super::*;

    fn chunk(content: &str) -> String {
        format!(
            r#"{{"id":"c1","model":"m","created":7,"choices":[{{"index":0,"delta":{{"content":{}}},"finish_reason":null}}]}}"#,
            serde_json::to_string(content).unwrap()
        )
    }

    #[test]
    fn text_tokens_and_identity_are_remembered() {
        let mut d = Delivered::default();
        d.observe(
            br#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        );
        d.observe(chunk("Hello").as_bytes());
        d.observe(chunk(", \"world\"").as_bytes());
        assert_eq!(d.text, "Hello, \"world\"");
        assert_eq!(d.tokens, 2);
        assert_eq!(d.blocked, None);
        let id = d.identity.unwrap();
        assert_eq!(id.fields[0], ("id", serde_json::json!("c1")));
        assert_eq!(id.fields.len(), 2, "only the fields the first chunk had");
    }

    #[test]
    fn what_cannot_be_continued_correctly_blocks_a_resume() {
        let tool = br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}"#;
        let two = br#"{"choices":[{"index":1,"delta":{"content":"b"}}]}"#;
        let done = br#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        for (event, why) in [
            (&tool[..], "tool call"),
            (two, "several choices"),
            (done, "finished"),
            (b"{not json", "not a chat chunk"),
        ] {
            let mut d = Delivered::default();
            d.observe(chunk("a").as_bytes());
            d.observe(event);
            assert!(d.blocked.unwrap().contains(why), "{:?}", d.blocked);
            assert!(d.text.is_empty(), "the text is freed");
        }
        let mut d = Delivered::default();
        d.observe(chunk(&"x".repeat(MAX_REMEMBERED + 1)).as_bytes());
        assert!(d.blocked.unwrap().contains("longer than"));
    }

    #[test]
    fn token_ids_are_recorded_while_every_chunk_has_them() {
        let mut d = Delivered::default();
        d.observe(
            br#"{"id":"c1","prompt_token_ids":[1,2,3],"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
        );
        d.observe(br#"{"choices":[{"index":0,"delta":{"content":"ab"},"token_ids":[10,11]}]}"#);
        d.observe(br#"{"choices":[{"index":0,"delta":{},"token_ids":[12]}]}"#);
        let ids = d.ids.as_ref().unwrap();
        assert_eq!(ids.prompt, [1, 2, 3]);
        assert_eq!(ids.generated, [10, 11, 12], "ids without text count too");
        assert_eq!((d.text.as_str(), d.tokens), ("ab", 3));
        d.observe(chunk("c").as_bytes());
        assert_eq!(d.ids, Err("a chunk came without its token ids"));
        assert_eq!(d.text, "abc", "text goes on");
        let mut plain = Delivered::default();
        plain.observe(chunk("x").as_bytes());
        assert!(plain.ids.is_err(), "no prompt ids: no exact resume");
    }

    #[test]
    fn frames_split_into_events_and_their_data() {
        let frame = b": ping\n\ndata: {\"a\":1}\r\n\r\ndata: x\ndata: y\r\rdata: [DONE]\n\n";
        let ev = events(frame);
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[0].0, b": ping\n\n");
        assert_eq!(ev[0].1, None);
        assert_eq!(ev[1].1.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(ev[1].0, b"data: {\"a\":1}\r\n\r\n");
        assert_eq!(ev[2].1.as_deref(), Some(&b"x\ny"[..]));
        assert_eq!(ev[3].1.as_deref(), Some(&b"[DONE]"[..]));
        let joined: Vec<u8> = ev.iter().flat_map(|e| e.0.to_vec()).collect();
        assert_eq!(joined, frame, "every byte belongs to one event");
    }
}
