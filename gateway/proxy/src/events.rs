//! SSE event framing: the gateway forwards only whole events.
//!
//! Bytes of an unfinished event are held until its blank line arrives
//! (bounded by [`MAX_EVENT`]), so when a replica breaks off mid-event the
//! partial event is dropped and the gateway's error event follows whole
//! events: every conforming SSE parser sees it as an event of its own.
//! The framer also tells `data:` events (tokens) from comments and
//! field-only blocks, which commit nothing and keep nothing alive.
//!
//! Lines end in CRLF, LF or CR (the SSE grammar); an event ends at an
//! empty line. The scan is incremental: each byte is looked at once.

use bytes::{Bytes, BytesMut};

/// The largest single event held while it is incomplete.
pub const MAX_EVENT: usize = 1 << 20;

/// A byte order mark, allowed once at the start of a stream.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// What one [`EventFramer::push`] released.
#[derive(Debug, Default)]
pub struct Framed {
    /// Whole events, ready to forward (may be empty).
    pub events: Bytes,
    /// How many of them carry a `data` field.
    pub data_events: usize,
}

/// An unfinished event grew past [`MAX_EVENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("replica sent an SSE event larger than {MAX_EVENT} bytes")]
pub struct EventTooLarge;

/// Incremental splitter of an SSE byte stream into whole events.
#[derive(Debug)]
pub struct EventFramer {
    /// Bytes not yet released: whole events first, then the partial one.
    pending: BytesMut,
    /// End of the last whole event in `pending`.
    boundary: usize,
    /// Bytes of `pending` already scanned.
    scanned: usize,
    /// The current line's length so far.
    line_len: usize,
    /// The current line's first bytes so far match `data`.
    line_is_data: bool,
    /// The previous byte was a CR (a following LF belongs to it).
    after_cr: bool,
    /// The current event has a `data` field.
    event_has_data: bool,
    /// Whole `data` events between the last release and `boundary`.
    data_events: usize,
    /// Bytes of a leading UTF-8 BOM seen (the grammar strips one); 3 or
    /// more: past the stream's start.
    bom: usize,
}

impl Default for EventFramer {
    fn default() -> Self {
        Self {
            pending: BytesMut::new(),
            boundary: 0,
            scanned: 0,
            line_len: 0,
            line_is_data: true,
            after_cr: false,
            event_has_data: false,
            data_events: 0,
            bom: 0,
        }
    }
}

impl EventFramer {
    /// Feeds `chunk` and releases the whole events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Framed, EventTooLarge> {
        self.pending.extend_from_slice(chunk);
        let pending = std::mem::take(&mut self.pending);
        self.scan(&pending);
        self.pending = pending;
        if self.pending.len() - self.boundary > MAX_EVENT {
            return Err(EventTooLarge);
        }
        let events = self.pending.split_to(self.boundary).freeze();
        self.scanned -= self.boundary;
        self.boundary = 0;
        Ok(Framed {
            events,
            data_events: std::mem::take(&mut self.data_events),
        })
    }

    /// [`EventFramer::push`] for an owned chunk: with no partial event
    /// held (the common case), the whole events are a slice of `chunk`,
    /// not a copy; only an unfinished tail is copied and held.
    pub fn push_bytes(&mut self, chunk: Bytes) -> Result<Framed, EventTooLarge> {
        if !self.pending.is_empty() {
            return self.push(&chunk);
        }
        // Nothing held: `scanned` and `boundary` are 0 and positions in
        // `chunk` are what they would be in `pending`.
        self.scan(&chunk);
        let boundary = std::mem::take(&mut self.boundary);
        if chunk.len() - boundary > MAX_EVENT {
            return Err(EventTooLarge);
        }
        self.pending.extend_from_slice(&chunk[boundary..]);
        self.scanned -= boundary;
        Ok(Framed {
            events: chunk.slice(..boundary),
            data_events: std::mem::take(&mut self.data_events),
        })
    }

    /// Bytes of an unfinished event held back.
    pub fn partial(&self) -> &[u8] {
        &self.pending[self.boundary..]
    }

    /// Scans `buf` from `scanned` to its end. Past a line's first five
    /// bytes (which tell a `data:` line), only line ends matter: the rest
    /// of the line is skipped with one `memchr2` instead of byte by byte.
    fn scan(&mut self, buf: &[u8]) {
        while self.scanned < buf.len() {
            if self.bom < BOM.len() || self.after_cr || self.line_len < 5 {
                let b = buf[self.scanned];
                self.scanned += 1;
                self.byte(b);
                continue;
            }
            // Mid-line: `line_is_data` is settled and no CR is pending.
            let rest = &buf[self.scanned..];
            match memchr::memchr2(b'\n', b'\r', rest) {
                Some(k) => {
                    self.line_len += k;
                    self.scanned += k + 1;
                    self.byte(rest[k]);
                }
                None => {
                    self.line_len += rest.len();
                    self.scanned = buf.len();
                }
            }
        }
    }

    fn byte(&mut self, b: u8) {
        if self.bom < BOM.len() {
            if b == BOM[self.bom] {
                self.bom += 1;
                return;
            }
            self.bom = BOM.len();
        }
        let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
        if b == b'\n' && after_cr {
            // The LF of a CRLF: the line already ended at its CR.
            if self.line_len == 0 && self.boundary + 1 == self.scanned {
                // Keep the LF with the event that ended at the CR.
                self.boundary = self.scanned;
            }
            return;
        }
        if b == b'\r' || b == b'\n' {
            self.end_line();
            return;
        }
        if self.line_is_data {
            self.line_is_data = match self.line_len {
                0..=3 => b == b"data"[self.line_len],
                _ => {
                    // `data:`: a data field. Anything else: another field.
                    self.event_has_data |= b == b':' && self.line_len == 4;
                    false
                }
            };
        }
        self.line_len += 1;
    }

    fn end_line(&mut self) {
        if self.line_len == 0 {
            // An empty line: the event is whole.
            self.boundary = self.scanned;
            if std::mem::take(&mut self.event_has_data) {
                self.data_events += 1;
            }
        } else if self.line_is_data && self.line_len == 4 {
            // `data` alone on its line: a data field with an empty value.
            self.event_has_data = true;
        }
        self.line_len = 0;
        self.line_is_data = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(chunks: &[&str]) -> (String, usize, String) {
        let mut f = EventFramer::default();
        let mut out = String::new();
        let mut data = 0;
        for c in chunks {
            let framed = f.push(c.as_bytes()).unwrap();
            out.push_str(std::str::from_utf8(&framed.events).unwrap());
            data += framed.data_events;
        }
        (out, data, String::from_utf8_lossy(f.partial()).into_owned())
    }

    #[test]
    fn whole_events_pass_and_a_partial_one_is_held() {
        let (out, data, partial) = frame(&[
            "data: a\n\ndata: b\n",
            "\ndata: {\"choices\":[{\"delta\":{\"content\":\"half",
        ]);
        assert_eq!(out, "data: a\n\ndata: b\n\n");
        assert_eq!(data, 2);
        assert_eq!(
            partial,
            "data: {\"choices\":[{\"delta\":{\"content\":\"half"
        );
    }

    #[test]
    fn comments_and_field_only_blocks_are_not_data_events() {
        let (out, data, _) = frame(&[": ping\n\n", "event: x\nid: 3\n\n", ":\n\n"]);
        assert_eq!(out, ": ping\n\nevent: x\nid: 3\n\n:\n\n");
        assert_eq!(data, 0);
        assert_eq!(frame(&["data\n\n"]).1, 1);
        assert_eq!(frame(&["database: 1\n\n"]).1, 0);
        assert_eq!(frame(&["dat", "a:x\n", "\n"]).1, 1);
    }

    #[test]
    fn every_line_ending_is_understood() {
        let (out, data, partial) =
            frame(&["data: a\r\n\r\n", "data: b\r\rdata: c\r", "\n\r", "\n"]);
        assert_eq!(out, "data: a\r\n\r\ndata: b\r\rdata: c\r\n\r\n");
        assert_eq!(data, 3);
        assert_eq!(partial, "");
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let (out, data, _) = frame(&["\u{feff}data: a\n\n", "\u{feff}data: b\n\n"]);
        assert_eq!(out, "\u{feff}data: a\n\n\u{feff}data: b\n\n");
        assert_eq!(data, 1, "only the stream's first BOM is one");
    }

    #[test]
    fn long_lines_split_anywhere_frame_the_same() {
        let stream = "\u{feff}data: {\"choices\":[{\"delta\":{\"content\":\"a long token\"}}]}\r\n\r\n: a comment line that is long\n\nevent: x\rdata:yy\r\r";
        let whole = frame(&[stream]);
        assert_eq!(whole.1, 2);
        for at in 0..stream.len() {
            if !stream.is_char_boundary(at) {
                continue;
            }
            let (a, b) = stream.split_at(at);
            assert_eq!(frame(&[a, b]), whole, "split at {at}");
        }
    }

    #[test]
    fn owned_chunks_frame_like_borrowed_ones() {
        let chunks = [
            "data: a\r\n\r\ndata: b\r",
            "\n\r\n: c\n\ndata: {\"half",
            "\"}\n\n",
            "data: x\n\n",
        ];
        let (mut a, mut b) = (EventFramer::default(), EventFramer::default());
        for c in chunks {
            let x = a.push(c.as_bytes()).unwrap();
            let y = b.push_bytes(Bytes::from_static(c.as_bytes())).unwrap();
            assert_eq!((x.events, x.data_events), (y.events, y.data_events));
            assert_eq!(a.partial(), b.partial());
        }
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut f = EventFramer::default();
        let big = vec![b'x'; MAX_EVENT + 1];
        assert_eq!(f.push(&big).unwrap_err(), EventTooLarge);
        let mut f = EventFramer::default();
        assert_eq!(f.push_bytes(Bytes::from(big)).unwrap_err(), EventTooLarge);
    }
}
