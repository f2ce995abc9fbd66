//! Incremental SSE reader for OpenAI-style streams: feeds arbitrary byte
//! chunks (an event may be split across TCP reads anywhere, even inside
//! `\r\n`), and tells which chunks carried a token, whether the stream
//! finished, and whether an in-band error event arrived.

use serde::Deserialize;
use serde::de::IgnoredAny;
use std::borrow::Cow;

/// What one dispatched SSE event meant.
#[derive(Debug, PartialEq, Eq)]
pub enum SseEvent {
    /// `data: [DONE]`.
    Done,
    /// A JSON payload with a top-level `error` key.
    Error,
    /// A chunk; `tokens` counts choices with non-empty content or text and
    /// `finished` is set when a choice had a non-null `finish_reason`.
    Chunk {
        /// Choices with non-empty `delta.content` or `text`.
        tokens: u32,
        /// Some choice carried a `finish_reason`.
        finished: bool,
    },
    /// A data payload that is not JSON (counted, otherwise ignored).
    Malformed,
    /// Switchyard's `: switchyard resumed on <replica>` comment: the stream
    /// broke and another replica continues it.
    Resumed,
}

/// Accumulates bytes and yields complete events.
#[derive(Default)]
pub struct SseParser {
    buf: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    /// Feeds bytes and calls `on_event` for every event completed by them.
    pub fn feed(&mut self, bytes: &[u8], mut on_event: impl FnMut(SseEvent)) {
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(nl) = self.buf[start..].iter().position(|b| *b == b'\n') {
            let end = start + nl;
            let line = &self.buf[start..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                if self.has_data {
                    on_event(classify(&self.data));
                }
                self.data.clear();
                self.has_data = false;
            } else if let Some(v) = line.strip_prefix(b"data:") {
                let v = v.strip_prefix(b" ").unwrap_or(v);
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(v);
                self.has_data = true;
            } else if line.starts_with(b": switchyard resumed") {
                on_event(SseEvent::Resumed);
            }
            // Other comments, `event:`, `id:`, `retry:` carry nothing we judge.
            start = end + 1;
        }
        self.buf.drain(..start);
    }
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default)]
    error: Option<IgnoredAny>,
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    finish_reason: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

fn classify(data: &[u8]) -> SseEvent {
    if data.trim_ascii() == b"[DONE]" {
        return SseEvent::Done;
    }
    let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(data) else {
        return SseEvent::Malformed;
    };
    if chunk.error.is_some() {
        return SseEvent::Error;
    }
    let mut tokens = 0;
    let mut finished = false;
    for c in &chunk.choices {
        let content = c.delta.as_ref().and_then(|d| d.content.as_deref());
        if content.or(c.text.as_deref()).is_some_and(|t| !t.is_empty()) {
            tokens += 1;
        }
        finished |= c.finish_reason.is_some();
    }
    SseEvent::Chunk { tokens, finished }
}

/// What a whole stream amounted to, folded event by event.
#[derive(Debug, Default, Clone, Copy)]
pub struct StreamState {
    /// `[DONE]` seen.
    pub done: bool,
    /// A `finish_reason` seen.
    pub finished: bool,
    /// An error event seen.
    pub error_event: bool,
    /// Token-bearing choices seen.
    pub tokens: u64,
    /// Payloads that were not JSON.
    pub malformed: u64,
    /// Resumes the gateway announced.
    pub resumes: u32,
}

impl StreamState {
    /// Folds one event in; returns how many tokens it carried.
    pub fn apply(&mut self, e: &SseEvent) -> u32 {
        match e {
            SseEvent::Done => self.done = true,
            SseEvent::Error => self.error_event = true,
            SseEvent::Malformed => self.malformed += 1,
            SseEvent::Resumed => self.resumes += 1,
            SseEvent::Chunk { tokens, finished } => {
                self.finished |= finished;
                self.tokens += u64::from(*tokens);
                return *tokens;
            }
        }
        0
    }

    /// Verdict of a stream whose body ended cleanly: an error event wins
    /// (the server said it failed), then a proper end, else the stream
    /// stopped without saying why: a silent truncation.
    pub fn verdict(&self) -> super::Verdict {
        use super::Verdict;
        if self.error_event {
            Verdict::ErrorEvent
        } else if self.done || self.finished {
            Verdict::Complete
        } else {
            Verdict::SilentTruncation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Verdict;
    use super::*;

    fn run(chunks: &[&[u8]]) -> (Vec<SseEvent>, StreamState) {
        let mut p = SseParser::default();
        let mut st = StreamState::default();
        let mut evs = Vec::new();
        for c in chunks {
            p.feed(c, |e| {
                st.apply(&e);
                evs.push(e);
            });
        }
        (evs, st)
    }

    const STREAM: &str = concat!(
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        ": keep-alive\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"he\\\"llo\"},\"finish_reason\":null}]}\r\n\r\n",
        "data: {\"choices\":[{\"text\":\"x\",\"finish_reason\":null}]}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn whole_stream_is_complete_with_tokens() {
        let (evs, st) = run(&[STREAM.as_bytes()]);
        assert_eq!(evs.len(), 5);
        assert_eq!(st.tokens, 2);
        assert!(st.done && st.finished);
        assert_eq!(st.verdict(), Verdict::Complete);
    }

    #[test]
    fn events_split_at_every_byte_give_the_same_result() {
        let bytes = STREAM.as_bytes();
        let pieces: Vec<&[u8]> = bytes.chunks(1).collect();
        let (evs, st) = run(&pieces);
        assert_eq!(evs, run(&[bytes]).0);
        assert_eq!(st.tokens, 2);
        for split in [3, 7, 50, 101, 150] {
            let (a, b) = bytes.split_at(split);
            assert_eq!(run(&[a, b]).0, evs, "split at {split}");
        }
    }

    #[test]
    fn finish_reason_without_done_is_complete() {
        let s = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}]}\n\n";
        assert_eq!(run(&[s.as_bytes()]).1.verdict(), Verdict::Complete);
    }

    #[test]
    fn a_gateway_resume_is_reported_and_the_stream_judged_by_its_end() {
        let s = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n",
            ": switchyard resumed on aws-1\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let (evs, st) = run(&[s.as_bytes()]);
        assert_eq!(evs[1], SseEvent::Resumed);
        assert_eq!(st.resumes, 1);
        assert_eq!(st.verdict(), Verdict::Complete);
    }

    #[test]
    fn error_event_is_reported() {
        let s = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n",
            "event: error\ndata: {\"error\":{\"message\":\"replica died\",\"type\":\"upstream\"}}\n\n",
        );
        let (evs, st) = run(&[s.as_bytes()]);
        assert_eq!(evs[1], SseEvent::Error);
        assert_eq!(st.verdict(), Verdict::ErrorEvent);
    }

    #[test]
    fn stream_ending_without_marker_is_silent_truncation() {
        let s = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":null}]}\n\n",
            "data: [DO",
        );
        let (_, st) = run(&[s.as_bytes()]);
        assert_eq!(st.tokens, 2);
        assert_eq!(st.verdict(), Verdict::SilentTruncation);
    }

    #[test]
    fn multi_line_data_and_garbage() {
        let s = "data: {\"choices\":\ndata: []}\n\ndata: not json\n\n";
        let (evs, st) = run(&[s.as_bytes()]);
        assert_eq!(
            evs[0],
            SseEvent::Chunk {
                tokens: 0,
                finished: false
            }
        );
        assert_eq!(st.malformed, 1);
        assert_eq!(st.verdict(), Verdict::SilentTruncation);
    }
}
