//! HTTP/1.1 on the client side, as bytes: the request head a client sends
//! (`httparse`, as hyper and pingora parse it), its body's framing
//! (RFC 9112 §6.3, decoded by the same [`Decoder`] the replica side uses)
//! and the response head we write ([`encode`]). Pure functions over
//! buffers, so every framing rule is tested (`tests.rs`) and fuzzed
//! (`fuzz/fuzz_targets/server_h1.rs`) without a socket; the connection
//! that drives them is `gateway/app/src/http1/`.
//!
//! Framing is strict where a lenient reading lets a request smuggle
//! another past a proxy in front of us or behind us: a length and a
//! transfer coding together, differing lengths, a coding other than a
//! lone `chunked`, a transfer coding on HTTP/1.0, a bad chunk size and
//! folded header lines (`httparse` refuses those) are all refused.

use std::mem::MaybeUninit;

use bytes::BytesMut;
use http::header::{self, HeaderMap};
use http::{Method, Request, Uri, Version};

pub mod encode;

pub use crate::upstream::h1::{Chunked, Decoded, Decoder, H1Error, MAX_HEADERS};
use crate::upstream::h1::{FramingLines, HeaderSpans, digits};

/// Why a request cannot be read; each maps to the answer the client gets.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The head is longer than `server.limits.max_header_bytes` (431).
    #[error("request head is larger than the limit of {0} bytes (server.limits.max_header_bytes)")]
    HeadTooLarge(usize),
    /// More header lines than [`MAX_HEADERS`] (431).
    #[error("request has more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    /// The head is not HTTP/1 (400).
    #[error("invalid request head: {0}")]
    Parse(httparse::Error),
    /// The head parses but cannot be served as it is (400).
    #[error("{0}")]
    Invalid(&'static str),
    /// The body's chunked framing is broken (400).
    #[error("invalid chunked request body: {0}")]
    Body(&'static str),
}

impl From<httparse::Error> for RequestError {
    fn from(e: httparse::Error) -> Self {
        match e {
            httparse::Error::TooManyHeaders => RequestError::TooManyHeaders,
            e => RequestError::Parse(e),
        }
    }
}

impl From<H1Error> for RequestError {
    fn from(e: H1Error) -> Self {
        match e {
            H1Error::Invalid(what) => RequestError::Body(what),
            _ => RequestError::Body("cut short"),
        }
    }
}

impl RequestError {
    /// Whether the answer is 431 (a limit) rather than 400 (a bad request).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            RequestError::HeadTooLarge(_) | RequestError::TooManyHeaders
        )
    }
}

/// A parsed request head and how its body is framed.
#[derive(Debug)]
pub struct RequestHead {
    /// Method, target, version and headers (the body comes from [`Decoder`]).
    pub request: Request<()>,
    /// How the body is framed, and where its decoding is.
    pub body: Decoder,
    /// Whether the client lets the connection carry another request.
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a `100 Continue`.
    pub expect_continue: bool,
}

/// Parses a request head from the front of `buf`, consuming it (empty
/// lines before it are skipped). `Ok(None)`: more bytes are needed.
/// Header values share the head's bytes (no copy per header).
pub fn parse_request(buf: &mut BytesMut, max: usize) -> Result<Option<RequestHead>, RequestError> {
    // Left uninitialized: httparse writes the lines it finds.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let len = match parsed.parse_with_uninit_headers(buf, &mut slots)? {
        httparse::Status::Complete(len) if len > max => {
            return Err(RequestError::HeadTooLarge(max));
        }
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial if buf.len() >= max => {
            return Err(RequestError::HeadTooLarge(max));
        }
        httparse::Status::Partial => return Ok(None),
    };
    let method = parsed.method.unwrap_or_default();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| RequestError::Invalid("invalid method"))?;
    let version = match parsed.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let base = buf.as_ptr() as usize;
    let target = parsed.path.unwrap_or_default();
    let target_at = target.as_ptr() as usize - base;
    let target = (target_at, target_at + target.len());
    let spans = HeaderSpans::of(buf, parsed.headers);
    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(target.0..target.1))
        .map_err(|_| RequestError::Invalid("invalid request target"))?;
    let (headers, seen) = spans.to_map(&head, 0).map_err(RequestError::Invalid)?;
    let body = framing(version, &headers, seen)?;
    let keep_alive = match version {
        Version::HTTP_10 => seen.connection && has_token(&headers, "keep-alive"),
        _ => !(seen.connection && has_token(&headers, "close")),
    };
    let expect_continue = version == Version::HTTP_11
        && seen.expect
        && headers
            .get(header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some(RequestHead {
        request,
        body,
        keep_alive,
        expect_continue,
    }))
}

/// How the request body is delimited (RFC 9112 §6.3): a request without
/// a length or a coding has none.
fn framing(
    version: Version,
    headers: &HeaderMap,
    seen: FramingLines,
) -> Result<Decoder, RequestError> {
    if seen.coding {
        if seen.length {
            return Err(RequestError::Invalid(
                "both content-length and transfer-encoding are set",
            ));
        }
        if version == Version::HTTP_10 {
            return Err(RequestError::Invalid(
                "transfer-encoding is not allowed in HTTP/1.0",
            ));
        }
        let mut count = 0;
        for value in headers.get_all(header::TRANSFER_ENCODING) {
            for coding in value.as_bytes().split(|&b| b == b',') {
                count += 1;
                if count > 1 || !coding.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return Err(RequestError::Invalid(
                        "transfer-encoding other than a single `chunked`",
                    ));
                }
            }
        }
        return Ok(Decoder::Chunked(Chunked::Size));
    }
    let mut length = None;
    let lengths = seen.length.then(|| headers.get_all(header::CONTENT_LENGTH));
    for value in lengths.into_iter().flatten() {
        for part in value.as_bytes().split(|&b| b == b',') {
            let n =
                digits(part.trim_ascii()).ok_or(RequestError::Invalid("invalid content-length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(RequestError::Invalid("conflicting content-length values"));
            }
            length = Some(n);
        }
    }
    Ok(Decoder::Length(length.unwrap_or(0)))
}

/// Whether a `Connection` line names `token`.
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

#[cfg(test)]
mod tests;
