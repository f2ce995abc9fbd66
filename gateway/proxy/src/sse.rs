//! Watching an SSE response go by, to tell a finished stream from one the
//! replica just stopped sending.
//!
//! A stream is finished when it carried `data: [DONE]`, a non-null
//! `finish_reason`, or an in-band error event. One that ends without any of
//! those is a silent truncation, and the gateway must not pass it on as if
//! it were complete. The scan is incremental and keeps only a short tail,
//! so markers split across chunks are still found.

use std::sync::LazyLock;

use memchr::memmem;

/// Longest marker we look for, minus one: the tail kept between chunks.
const TAIL: usize = 48;

/// Incremental detector of "this stream was finished properly".
///
/// Chunks are scanned where they lie: only the seam between the kept tail
/// and the next chunk's start is copied (into a small stack buffer), so a
/// stream costs no allocation and no copy of its bytes.
#[derive(Debug, Clone)]
pub struct SseWatch {
    finished: bool,
    tail: [u8; TAIL],
    tail_len: usize,
}

impl Default for SseWatch {
    fn default() -> Self {
        Self {
            finished: false,
            tail: [0; TAIL],
            tail_len: 0,
        }
    }
}

impl SseWatch {
    /// Whether a finishing marker has been seen so far.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// Scans the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.finished || chunk.is_empty() {
            return;
        }
        // A marker that starts in the tail ends within TAIL bytes of the
        // chunk's start: the seam holds it whole.
        let mut seam = [0u8; 2 * TAIL];
        let head = chunk.len().min(TAIL);
        seam[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        seam[self.tail_len..self.tail_len + head].copy_from_slice(&chunk[..head]);
        let seam = &seam[..self.tail_len + head];
        self.finished = marks_end(seam) || marks_end(chunk);
        // The new tail: the last TAIL bytes of tail + chunk.
        let keep = seam.len().min(TAIL);
        if chunk.len() >= TAIL {
            self.tail.copy_from_slice(&chunk[chunk.len() - TAIL..]);
        } else {
            let mut next = [0u8; TAIL];
            next[..keep].copy_from_slice(&seam[seam.len() - keep..]);
            self.tail = next;
        }
        self.tail_len = keep;
    }
}

/// The markers' searchers, built once (building one per scan cost more
/// than the scan).
struct Finders {
    done: memmem::Finder<'static>,
    done_tight: memmem::Finder<'static>,
    error: memmem::Finder<'static>,
    finish_reason: memmem::Finder<'static>,
}

static FINDERS: LazyLock<Finders> = LazyLock::new(|| Finders {
    done: memmem::Finder::new(b"data: [DONE]"),
    done_tight: memmem::Finder::new(b"data:[DONE]"),
    error: memmem::Finder::new(b"data: {\"error\""),
    finish_reason: memmem::Finder::new(b"\"finish_reason\""),
});

fn marks_end(w: &[u8]) -> bool {
    let f = &*FINDERS;
    f.done.find(w).is_some()
        || f.done_tight.find(w).is_some()
        || f.error.find(w).is_some()
        || has_finish_reason(w, &f.finish_reason)
}

/// `"finish_reason"`, optional spaces, `:`, optional spaces, then a string.
fn has_finish_reason(w: &[u8], key: &memmem::Finder<'_>) -> bool {
    let mut from = 0;
    while let Some(pos) = key.find(&w[from..]) {
        let rest = &w[from + pos + key.needle().len()..];
        let mut it = rest.iter().skip_while(|b| **b == b' ');
        if it.next() == Some(&b':') && it.find(|b| **b != b' ') == Some(&b'"') {
            return true;
        }
        from += pos + 1;
    }
    false
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
        // A marker split after a chunk longer than the kept tail.
        let long = format!("{}data: [DO", "x".repeat(200));
        assert!(watch(&[&long, "NE]\n\n"]));
        assert!(watch(&["da", "ta", ": ", "[D", "ON", "E]"]));
    }

    #[test]
    fn a_stream_cut_mid_answer_is_not_finished() {
        assert!(!watch(&[
            "data: {\"choices\":[{\"delta\":{\"content\":\"[DONE] is what I say\"},\"finish_reason\":null}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"tok\"},\"finish_reason\": null}]}\n\n",
        ]));
    }
}
