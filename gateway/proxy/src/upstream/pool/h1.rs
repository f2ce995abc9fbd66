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

use std::io::Write;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};

mod decode;

pub use decode::{Chunked, Decoded, Decoder};

/// Most header lines in a response head (hyper's default).
const MAX_HEADERS: usize = 100;

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
    out.reserve(64 + path.len() + headers.len() * 48);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let wants_length = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if body_len > 0 || wants_length {
        let _ = write!(out, "content-length: {body_len}\r\n");
    }
    out.extend_from_slice(b"\r\n");
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
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(buf)? {
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
        let base = buf.as_ptr() as usize;
        let mut spans = Vec::with_capacity(parsed.headers.len());
        for h in parsed.headers.iter() {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| H1Error::Invalid("header name"))?;
            let start = h.value.as_ptr() as usize - base;
            spans.push((name, start, start + h.value.len()));
        }
        let head = buf.split_to(len).freeze();
        let mut headers = HeaderMap::with_capacity(spans.len());
        for (name, start, end) in spans {
            let value = HeaderValue::from_maybe_shared(head.slice(start..end))
                .map_err(|_| H1Error::Invalid("header value"))?;
            headers.append(name, value);
        }
        let (body, framed) = framing(status, method, &headers)?;
        let keep_alive = framed && version == Version::HTTP_11 && !wants_close(&headers);
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

/// How the body is delimited, and whether its end is known without the
/// connection closing (RFC 9112 §6.3).
fn framing(
    status: StatusCode,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(Decoder, bool), H1Error> {
    if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok((Decoder::Length(0), true));
    }
    if let Some(te) = last_token(headers, &header::TRANSFER_ENCODING) {
        // A length next to a transfer coding is ignored, and such a
        // connection is not trusted with another request.
        let clean = !headers.contains_key(header::CONTENT_LENGTH);
        return Ok(if te.eq_ignore_ascii_case("chunked") {
            (Decoder::Chunked(Chunked::Size), clean)
        } else {
            (Decoder::UntilClose, false)
        });
    }
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
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
