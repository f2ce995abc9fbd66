//! A response body's framing, decoded from the front of a read buffer:
//! a length, chunks (RFC 9112 §7.1; extensions and trailers read and
//! dropped), or the connection's end. Data comes out as slices of the
//! buffer, never copied.

use bytes::{Bytes, BytesMut};

use super::H1Error;

/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 4096;

/// Where a response body is in its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    /// `content-length`: this many bytes still to come (0: done).
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked(Chunked),
    /// No length: the body ends when the replica closes the connection.
    UntilClose,
    /// Read to its end.
    Done,
}

/// The chunked decoder's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: this many data bytes still to come.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines up to a blank line.
    Trailers,
}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The body is complete.
    End,
    /// More bytes must be read first.
    NeedMore,
}

impl Decoder {
    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        matches!(self, Decoder::Done | Decoder::Length(0))
    }

    /// Takes the next piece of the body from the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, H1Error> {
        loop {
            match self {
                Decoder::Done => return Ok(Decoded::End),
                Decoder::Length(0) => {
                    *self = Decoder::Done;
                    return Ok(Decoded::End);
                }
                Decoder::Length(rest) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = (*rest).min(buf.len() as u64);
                    *rest -= n;
                    return Ok(Decoded::Data(take(buf, n)));
                }
                Decoder::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = buf.len() as u64;
                    return Ok(Decoded::Data(take(buf, n)));
                }
                Decoder::Chunked(state) => match chunked_step(state, buf)? {
                    Some(Decoded::End) => *self = Decoder::Done,
                    Some(piece) => return Ok(piece),
                    None => {}
                },
            }
        }
    }

    /// Consumes the framing that follows the data just taken (a chunk's
    /// CRLF, the next size line, the last chunk and its trailers) as far
    /// as it is buffered: a buffer left holding only framing can then be
    /// let go, and a body whose last chunk is in is seen complete at once.
    pub fn settle(&mut self, buf: &mut BytesMut) -> Result<(), H1Error> {
        loop {
            let Decoder::Chunked(state) = self else {
                return Ok(());
            };
            if buf.is_empty() || matches!(state, Chunked::Data(_)) {
                return Ok(());
            }
            match chunked_step(state, buf)? {
                None => {}
                Some(Decoded::End) => *self = Decoder::Done,
                Some(_) => return Ok(()),
            }
        }
    }

    /// The connection reached its end: fine only for a body delimited by
    /// it (or already complete).
    pub fn eof(&mut self) -> Result<(), H1Error> {
        match self {
            Decoder::UntilClose | Decoder::Done | Decoder::Length(0) => {
                *self = Decoder::Done;
                Ok(())
            }
            _ => Err(H1Error::Incomplete),
        }
    }
}

fn take(buf: &mut BytesMut, n: u64) -> Bytes {
    buf.split_to(usize::try_from(n).unwrap_or(usize::MAX))
        .freeze()
}

/// One step of the chunked decoder. `Ok(None)`: the state moved on, step
/// again; `Some(NeedMore)`: read first.
fn chunked_step(state: &mut Chunked, buf: &mut BytesMut) -> Result<Option<Decoded>, H1Error> {
    match *state {
        Chunked::Size => {
            let Some(line) = line(buf)? else {
                return Ok(Some(Decoded::NeedMore));
            };
            let size = chunk_size(&line)?;
            *state = if size == 0 {
                Chunked::Trailers
            } else {
                Chunked::Data(size)
            };
            Ok(None)
        }
        Chunked::Data(rest) => {
            if buf.is_empty() {
                return Ok(Some(Decoded::NeedMore));
            }
            let n = rest.min(buf.len() as u64);
            *state = if n == rest {
                Chunked::DataEnd
            } else {
                Chunked::Data(rest - n)
            };
            Ok(Some(Decoded::Data(take(buf, n))))
        }
        Chunked::DataEnd => {
            if buf.len() < 2 {
                return Ok(Some(Decoded::NeedMore));
            }
            if &buf[..2] != b"\r\n" {
                return Err(H1Error::Invalid("chunk data not followed by CRLF"));
            }
            let _ = buf.split_to(2);
            *state = Chunked::Size;
            Ok(None)
        }
        Chunked::Trailers => match line(buf)? {
            None => Ok(Some(Decoded::NeedMore)),
            Some(l) if l.is_empty() => Ok(Some(Decoded::End)),
            // Trailer fields are not relayed.
            Some(_) => Ok(None),
        },
    }
}

/// The next CRLF-terminated line (without it), consumed; `None`: not all
/// there yet. A line over [`MAX_LINE`] is refused whether it arrived
/// whole or is still coming (the verdict must not depend on the reads).
fn line(buf: &mut BytesMut) -> Result<Option<BytesMut>, H1Error> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) if at > MAX_LINE => Err(H1Error::Invalid("chunk line too long")),
        Some(at) => {
            let mut l = buf.split_to(at + 2);
            l.truncate(at);
            Ok(Some(l))
        }
        None if buf.len() > MAX_LINE + 1 => Err(H1Error::Invalid("chunk line too long")),
        None => Ok(None),
    }
}

/// A chunk-size line's hex size (extensions after `;` ignored).
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(H1Error::Invalid("chunk size"));
    }
    let mut size = 0u64;
    for &d in digits {
        let v = (d as char)
            .to_digit(16)
            .ok_or(H1Error::Invalid("chunk size"))?;
        size = size * 16 + u64::from(v);
    }
    Ok(size)
}
