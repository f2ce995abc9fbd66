//! Watching an SSE response go by, to tell a finished stream from one the
//! replica just stopped sending.
//!
//! A stream is finished when it carried `data: [DONE]`, a non-null
//! `finish_reason`, or an in-band error event. One that ends without any of
//! those is a silent truncation, and the gateway must not pass it on as if
//! it were complete. The scan is incremental and keeps only a short tail,
//! so markers split across chunks are still found.

/// Longest marker we look for, minus one: the tail kept between chunks.
const TAIL: usize = 48;

/// Incremental detector of "this stream was finished properly".
#[derive(Debug, Default, Clone)]
pub struct SseWatch {
    finished: bool,
    tail: Vec<u8>,
}

impl SseWatch {
    /// Whether a finishing marker has been seen so far.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Scans the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        let mut window = std::mem::take(&mut self.tail);
        window.extend_from_slice(chunk);
        self.finished = marks_end(&window);
        let keep = window.len().min(TAIL);
        self.tail = window.split_off(window.len() - keep);
    }
}

fn marks_end(w: &[u8]) -> bool {
    find(w, b"data: [DONE]").is_some()
        || find(w, b"data:[DONE]").is_some()
        || find(w, b"data: {\"error\"").is_some()
        || has_finish_reason(w)
}

/// `"finish_reason"`, optional spaces, `:`, optional spaces, then a string.
fn has_finish_reason(w: &[u8]) -> bool {
    let key = b"\"finish_reason\"";
    let mut from = 0;
    while let Some(pos) = find(&w[from..], key) {
        let rest = &w[from + pos + key.len()..];
        let mut it = rest.iter().skip_while(|b| **b == b' ');
        if it.next() == Some(&b':') && it.find(|b| **b != b' ') == Some(&b'"') {
            return true;
        }
        from += pos + 1;
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(chunks: &[&str]) -> bool {
        let mut w = SseWatch::default();
        for c in chunks {
            w.feed(c.as_bytes());
        }
        w.finished()
    }

    #[test]
    fn done_finish_reason_and_error_events_finish_a_stream() {
        assert!(watch(&["data: {\"choices\":[]}\n\n", "data: [DONE]\n\n"]));
        assert!(watch(&[
            "data: {\"choices\":[{\"finish_reason\": \"stop\"}]}\n\n"
        ]));
        assert!(watch(&["data: {\"error\":{\"message\":\"boom\"}}\n\n"]));
    }

    #[test]
    fn markers_split_across_chunks_are_found() {
        assert!(watch(&["data: [DO", "NE]\n\n"]));
        assert!(watch(&["{\"finish_re", "ason\":", "\"length\"}"]));
    }

    #[test]
    fn a_stream_cut_mid_answer_is_not_finished() {
        assert!(!watch(&[
            "data: {\"choices\":[{\"delta\":{\"content\":\"[DONE] is what I say\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"tok\"},\"finish_reason\": null}]}\n\n",
        ]));
    }
}
