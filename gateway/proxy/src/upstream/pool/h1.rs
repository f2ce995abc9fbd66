//! HTTP/1.1 on the replica side, as bytes: the request head we write, the
//! response head we parse (`httparse`, as hyper does) and the response
//! body's framing (RFC 9112 §6.3). Pure functions over buffers, so every
//! framing rule is tested without a socket (`h1_tests.rs`).
//!
//! Why not hyper's client connection: it costs ~26 KiB per open
//! connection whatever the traffic (an 8 KiB header buffer, an 8 KiB read
//! buffer kept between reads and a ~9 KiB request channel), which for a
//! long, mostly idle token stream is most of the gateway's memory per
//! stream. Here a connection holds a socket and, only while bytes are
//! being decoded, a read buffer.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use smallvec::SmallVec;

mod decode;

pub use decode::{Chunked, Decoded, Decoder};

/// Most header lines in a head, either side's (hyper's default).
pub const MAX_HEADERS: usize = 100;

/// Why a replica's answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum H1Error {
    /// The socket failed.
    #[error("replica connection: {0}")]
    Io(#[from] std::io::Error),
    /// The replica closed the connection before its answer was complete.
    #[error("connection closed before message completed")]
    Incomplete,
    /// The response head is not valid HTTP/1.
    #[error("invalid response head from the replica: {0}")]
    Parse(#[from] httparse::Error),
    /// The response head is longer than `server.limits.max_header_bytes`.
    #[error("response head from the replica is over {0} bytes")]
    HeadTooLarge(usize),
    /// A status, header or framing the gateway cannot relay.
    #[error("invalid response from the replica: {0}")]
    Invalid(&'static str),
}

/// Writes `method path HTTP/1.1`, the headers (a `content-length` for the
/// body we send, never the caller's length or transfer coding) and the
/// blank line.
pub fn encode_head(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body_len: usize,
    out: &mut Vec<u8>,
) {
    let mut head = RequestHead::start(method, "", path, headers.len());
    for (name, value) in headers {
        head.header(name, value.as_bytes());
    }
    *out = head.finish(method, body_len);
}

/// A request head written line by line: the request path writes the
/// client's headers and ours straight into it, with no header map built
/// for the replica's request.
pub struct RequestHead {
    buf: Vec<u8>,
}

impl RequestHead {
    /// `method base path HTTP/1.1`, with room for about `lines` headers.
    pub fn start(method: &Method, base: &str, path: &str, lines: usize) -> Self {
        let mut buf = crate::spare::buffer(64 + base.len() + path.len() + lines * 48);
        buf.extend_from_slice(method.as_str().as_bytes());
        buf.push(b' ');
        buf.extend_from_slice(base.as_bytes());
        buf.extend_from_slice(path.as_bytes());
        buf.extend_from_slice(b" HTTP/1.1\r\n");
        Self { buf }
    }

    /// One header line; a length or transfer coding is never the caller's
    /// (the body's own length is written at the end).
    pub fn header(&mut self, name: &HeaderName, value: &[u8]) {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            return;
        }
        self.header_parts(name, &[value]);
    }

    /// One header line, given as parts of its value (`x-forwarded-for`:
    /// the client's, then the address we saw).
    pub fn header_parts(&mut self, name: &HeaderName, parts: &[&[u8]]) {
        self.buf.extend_from_slice(name.as_str().as_bytes());
        self.buf.extend_from_slice(b": ");
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    /// The `content-length` of the body sent (for a method that has a
    /// body, or any body) and the blank line.
    pub fn finish(mut self, method: &Method, body_len: usize) -> Vec<u8> {
        let wants_length = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
        if body_len > 0 || wants_length {
            self.buf.extend_from_slice(b"content-length: ");
            push_decimal(&mut self.buf, body_len as u64);
            self.buf.extend_from_slice(b"\r\n");
        }
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

/// `n` in decimal, without the formatting machinery (both sides' heads
/// write a length per message).
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// A decimal length: digits only (no sign, no spaces), at most 18 of them.
pub fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// A parsed response head and how its body is framed.
#[derive(Debug)]
pub struct Head {
    /// The status, version and headers (the body comes from [`Decoder`]).
    pub response: Response<()>,
    /// How the body is framed, and where its decoding is.
    pub body: Decoder,
    /// Whether the connection may carry another request once the body
    /// has been read to its end.
    pub keep_alive: bool,
}

/// Parses a final response head from the front of `buf`, consuming it
/// (interim 1xx heads are skipped). `Ok(None)`: more bytes are needed.
/// Header values share the head's bytes (no copy per header).
pub fn parse_head(
    buf: &mut BytesMut,
    max: usize,
    method: &Method,
) -> Result<Option<Head>, H1Error> {
    loop {
        // Left uninitialized: httparse writes the lines it finds (zeroing
        // 3 KiB of slots was a memset per head).
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let config = httparse::ParserConfig::default();
        let len = match config.parse_response_with_uninit_headers(&mut parsed, buf, &mut slots)? {
            httparse::Status::Complete(len) => len,
            httparse::Status::Partial if buf.len() >= max => {
                return Err(H1Error::HeadTooLarge(max));
            }
            httparse::Status::Partial => return Ok(None),
        };
        let code = parsed.code.ok_or(H1Error::Invalid("no status code"))?;
        let status = StatusCode::from_u16(code).map_err(|_| H1Error::Invalid("status code"))?;
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        if status.is_informational() {
            if status == StatusCode::SWITCHING_PROTOCOLS {
                return Err(H1Error::Invalid(
                    "101 Switching Protocols was never asked for",
                ));
            }
            let _ = buf.split_to(len);
            continue;
        }
        let spans = HeaderSpans::of(buf, parsed.headers);
        let head = buf.split_to(len).freeze();
        // Room for the headers the gateway adds to an answer: no regrowth.
        let (headers, seen) = spans.to_map(&head, ANSWER_ROOM).map_err(H1Error::Invalid)?;
        let (body, framed) = framing(status, method, &headers, seen)?;
        let keep_alive =
            framed && version == Version::HTTP_11 && !(seen.connection && wants_close(&headers));
        let mut response = Response::new(());
        *response.status_mut() = status;
        *response.version_mut() = version;
        *response.headers_mut() = headers;
        return Ok(Some(Head {
            response,
            body,
            keep_alive,
        }));
    }
}

/// Headers the gateway adds to a replica's answer (the replica, version,
/// generation, attempts, request id, a length), room for which the parsed
/// map is given up front.
const ANSWER_ROOM: usize = 6;

/// Where each header line of a parsed head is, as offsets into the buffer
/// it was parsed from: the map is built once the head has been split off,
/// its values sharing the head's bytes. On the stack for a usual head (a
/// `Vec` was an allocation per head), and not a `MAX_HEADERS` array: that
/// was 1.6 KiB zeroed, then copied when handed on, twice a request.
pub struct HeaderSpans {
    /// `[name start, name end, value start, value end]` per line.
    at: SmallVec<[[u32; 4]; INLINE_LINES]>,
}

/// Header lines kept on the stack; a head with more spills to the heap.
const INLINE_LINES: usize = 24;

impl HeaderSpans {
    /// The spans of `lines`, parsed from `buf`.
    pub fn of(buf: &[u8], lines: &[httparse::Header<'_>]) -> Self {
        let base = buf.as_ptr() as usize;
        let at = lines
            .iter()
            .map(|line| {
                // A head is bounded by `max_header_bytes`, far below 4 GiB.
                let name = (line.name.as_ptr() as usize - base) as u32;
                let value = (line.value.as_ptr() as usize - base) as u32;
                [
                    name,
                    name + line.name.len() as u32,
                    value,
                    value + line.value.len() as u32,
                ]
            })
            .collect();
        Self { at }
    }

    /// The header map over `head` (the bytes the spans point into), with
    /// room for `room` more headers, and which framing lines it has.
    pub fn to_map(
        &self,
        head: &bytes::Bytes,
        room: usize,
    ) -> Result<(HeaderMap, FramingLines), &'static str> {
        let mut headers = crate::spare::header_map(self.at.len() + room);
        let mut seen = FramingLines::default();
        for &[ns, ne, vs, ve] in &self.at {
            let name = &head[ns as usize..ne as usize];
            let name = match common_name(name) {
                Some(name) => name,
                None => crate::spare::header_name(name).map_err(|_| "invalid header name")?,
            };
            seen.note(&name);
            let value = &head[vs as usize..ve as usize];
            let value = match common_value(value) {
                Some(value) => value,
                None => HeaderValue::from_maybe_shared(head.slice(vs as usize..ve as usize))
                    .map_err(|_| "invalid header value")?,
            };
            headers.append(name, value);
        }
        Ok((headers, seen))
    }
}

/// Which of the lines that frame a message a parsed head has, noted while
/// its map is built: the framing rules then look up only lines that are
/// there (most heads have a length and nothing else of these; each lookup
/// that finds nothing still hashes and probes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramingLines {
    /// A `content-length` line.
    pub length: bool,
    /// A `transfer-encoding` line.
    pub coding: bool,
    /// A `connection` line.
    pub connection: bool,
    /// An `expect` line.
    pub expect: bool,
}

impl FramingLines {
    fn note(&mut self, name: &HeaderName) {
        // Standard names compare as one byte each.
        if name == header::CONTENT_LENGTH {
            self.length = true;
        } else if name == header::TRANSFER_ENCODING {
            self.coding = true;
        } else if name == header::CONNECTION {
            self.connection = true;
        } else if name == header::EXPECT {
            self.expect = true;
        }
    }
}

/// The names heads usually carry, as clients and replicas write them (in
/// lowercase), without `HeaderName::from_bytes`: it copies each name
/// through a lowercasing table and searches the standard names (~170
/// instructions a line), and allocates for the others. Any other spelling
/// takes that path (through the thread's kept names,
/// [`crate::spare::header_name`]) and yields the same name.
fn common_name(name: &[u8]) -> Option<HeaderName> {
    Some(match name {
        b"host" => header::HOST,
        b"date" => header::DATE,
        b"accept" => header::ACCEPT,
        b"server" => header::SERVER,
        b"expect" => header::EXPECT,
        b"connection" => header::CONNECTION,
        b"user-agent" => header::USER_AGENT,
        b"content-type" => header::CONTENT_TYPE,
        b"authorization" => header::AUTHORIZATION,
        b"cache-control" => header::CACHE_CONTROL,
        b"content-length" => header::CONTENT_LENGTH,
        b"accept-encoding" => header::ACCEPT_ENCODING,
        b"content-encoding" => header::CONTENT_ENCODING,
        b"transfer-encoding" => header::TRANSFER_ENCODING,
        b"x-request-id" => crate::headers::names::X_REQUEST_ID,
        _ => return None,
    })
}

/// The values heads usually carry, as static values: a value sliced out of
/// the head costs two atomic reference-count updates (the slice, its
/// drop), and keeps the head's buffer alive as long as the map. Any other
/// value is sliced, and reads the same.
fn common_value(value: &[u8]) -> Option<HeaderValue> {
    Some(HeaderValue::from_static(match value {
        b"application/json" => "application/json",
        b"application/json; charset=utf-8" => "application/json; charset=utf-8",
        b"text/event-stream" => "text/event-stream",
        b"text/event-stream; charset=utf-8" => "text/event-stream; charset=utf-8",
        b"text/plain; charset=utf-8" => "text/plain; charset=utf-8",
        b"keep-alive" => "keep-alive",
        b"close" => "close",
        b"chunked" => "chunked",
        b"no-cache" => "no-cache",
        b"*/*" => "*/*",
        b"gzip, deflate" => "gzip, deflate",
        b"gzip, deflate, br" => "gzip, deflate, br",
        b"gzip, deflate, br, zstd" => "gzip, deflate, br, zstd",
        b"identity" => "identity",
        b"0" => "0",
        _ => return None,
    }))
}

/// How the body is delimited, and whether its end is known without the
/// connection closing (RFC 9112 §6.3).
fn framing(
    status: StatusCode,
    method: &Method,
    headers: &HeaderMap,
    seen: FramingLines,
) -> Result<(Decoder, bool), H1Error> {
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Decoder::Length(0), true));
    }
    if let Some(te) = seen
        .coding
        .then(|| last_token(headers, &header::TRANSFER_ENCODING))
        .flatten()
    {
        // A length next to a transfer coding is ignored, and such a
        // connection is not trusted with another request.
        let clean = !seen.length;
        return Ok(if te.eq_ignore_ascii_case("chunked") {
            (Decoder::Chunked(Chunked::Size), clean)
        } else {
            (Decoder::UntilClose, false)
        });
    }
    let mut length = None;
    let lengths = seen.length.then(|| headers.get_all(header::CONTENT_LENGTH));
    for value in lengths.into_iter().flatten() {
        for part in value
            .to_str()
            .map_err(|_| H1Error::Invalid("content-length"))?
            .split(',')
        {
            let n: u64 = part
                .trim()
                .parse()
                .map_err(|_| H1Error::Invalid("content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(H1Error::Invalid("conflicting content-length values"));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(n) => (Decoder::Length(n), true),
        None => (Decoder::UntilClose, false),
    })
}

/// The last coding of `name` (comma-separated, over every line).
fn last_token<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    let last_line = headers.get_all(name).iter().next_back()?;
    last_line
        .to_str()
        .ok()?
        .rsplit(',')
        .map(str::trim)
        .find(|t| !t.is_empty())
}

fn wants_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("close"))
}

#[cfg(test)]
#[path = "h1_tests.rs"]
mod tests;
