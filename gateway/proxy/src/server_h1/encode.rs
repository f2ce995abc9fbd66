//! The response head we write to a client, and how its body is framed:
//! a `content-length` when the body's size is known, else chunks on
//! HTTP/1.1 or the connection's end on HTTP/1.0; none at all for `HEAD`,
//! 1xx, 204 and 304.

use http::header::{self, HeaderMap};
use http::{StatusCode, Version};

use crate::upstream::h1::push_decimal;

/// How a response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes at all (`HEAD`, 1xx, 204, 304).
    None,
    /// `content-length: n`, then exactly `n` bytes.
    Length(u64),
    /// `transfer-encoding: chunked` (HTTP/1.1 clients).
    Chunked,
    /// Bytes until we close the connection (HTTP/1.0 clients, size unknown).
    UntilClose,
}

impl Framing {
    /// The framing for a response to a `version` request; `len`: the
    /// body's size when known in advance.
    pub fn choose(
        status: StatusCode,
        head_request: bool,
        version: Version,
        len: Option<u64>,
    ) -> Self {
        if head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Framing::None;
        }
        match len {
            Some(n) => Framing::Length(n),
            None if version == Version::HTTP_10 => Framing::UntilClose,
            None => Framing::Chunked,
        }
    }
}

/// What the head says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// Nothing (HTTP/1.1 keeps connections by default).
    Default,
    /// `connection: keep-alive` (an HTTP/1.0 client that asked for it).
    KeepAlive,
    /// `connection: close`: this is the connection's last response.
    Close,
}

/// Writes the status line, `headers` (without any framing or connection
/// header of their own: ours are written from `framing` and `persist`),
/// the lines `extra` writes (the gateway's own, [`crate::answer::Ours`],
/// and the connection's, such as `date`), and the blank line.
/// `head_len`: for a `HEAD` answer, the length a `GET` would have had,
/// when known.
pub fn encode_head(
    status: StatusCode,
    headers: &HeaderMap,
    framing: Framing,
    persist: Persist,
    head_len: Option<u64>,
    extra: impl FnOnce(&mut Vec<u8>),
    out: &mut Vec<u8>,
) {
    // (Ours and the date: about 200 bytes.)
    out.reserve(288 + headers.len() * 40);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH
            || name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let length = match framing {
        Framing::Length(n) => Some(n),
        Framing::Chunked => {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
            None
        }
        Framing::None => head_len,
        Framing::UntilClose => None,
    };
    if let Some(n) = length {
        out.extend_from_slice(b"content-length: ");
        push_decimal(out, n);
        out.extend_from_slice(b"\r\n");
    }
    match persist {
        Persist::Default => {}
        Persist::KeepAlive => out.extend_from_slice(b"connection: keep-alive\r\n"),
        Persist::Close => out.extend_from_slice(b"connection: close\r\n"),
    }
    extra(out);
    out.extend_from_slice(b"\r\n");
}

/// Whether `headers` (set by the handler) ask to close the connection.
pub fn asks_close(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// A chunk's size line (`1a\r\n`) into `out`; returns its length.
pub fn chunk_line(len: usize, out: &mut [u8; 18]) -> usize {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut n = len;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    let d = &digits[i..];
    out[..d.len()].copy_from_slice(d);
    out[d.len()..d.len() + 2].copy_from_slice(b"\r\n");
    d.len() + 2
}
