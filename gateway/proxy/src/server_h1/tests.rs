//! The client side's HTTP/1 framing, on byte buffers.

use bytes::Bytes;
use http::HeaderValue;

use super::encode::{Framing, Persist, chunk_line, encode_head};
use super::*;

fn parse(raw: &str) -> Result<Option<RequestHead>, RequestError> {
    parse_request(&mut BytesMut::from(raw), 16 << 10)
}

fn refused(raw: &str) -> String {
    parse(raw).expect_err(raw).to_string()
}

/// Feeds `wire` in pieces of `step` bytes and collects the body.
fn body_split(mut decoder: Decoder, wire: &[u8], step: usize) -> Result<Vec<u8>, RequestError> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(b) => out.extend_from_slice(&b),
            Decoded::End => return Ok(out),
            Decoded::NeedMore if rest.is_empty() => return Err(RequestError::Body("cut short")),
            Decoded::NeedMore => {
                let (now, later) = rest.split_at(step.min(rest.len()));
                buf.extend_from_slice(now);
                rest = later;
            }
        }
    }
}

#[test]
fn a_simple_request_parses_and_leaves_the_next_one_in_the_buffer() {
    let mut buf = BytesMut::from(
        "\r\nPOST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\n\r\n",
    );
    let h = parse_request(&mut buf, 1024).unwrap().unwrap();
    assert_eq!(h.request.method(), Method::POST);
    assert_eq!(h.request.uri().path(), "/v1/chat/completions");
    assert_eq!(h.request.uri().query(), Some("x=1"));
    assert_eq!(h.request.headers()["host"], "gw");
    assert_eq!(h.body, Decoder::Length(2));
    assert!(h.keep_alive && !h.expect_continue);
    let mut d = h.body;
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from("{}"))
    );
    assert!(d.is_done());
    // Pipelined: the next request is served from the same buffer.
    let next = parse_request(&mut buf, 1024).unwrap().unwrap();
    assert_eq!(next.request.method(), Method::GET);
    assert_eq!(next.body, Decoder::Length(0));
    assert!(buf.is_empty());
}

#[test]
fn a_head_split_anywhere_parses_the_same() {
    let raw = "GET /v1/models HTTP/1.1\r\nHost: gw\r\nX-A: b\r\n\r\n";
    for cut in 0..raw.len() {
        let mut buf = BytesMut::from(&raw[..cut]);
        assert!(
            parse_request(&mut buf, 1024).unwrap().is_none(),
            "cut at {cut}"
        );
        buf.extend_from_slice(&raw.as_bytes()[cut..]);
        let h = parse_request(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(h.request.headers()["x-a"], "b");
    }
}

#[test]
fn every_line_of_a_long_head_is_kept_in_order_and_names_are_read_in_any_case() {
    // More lines than are kept on the stack: the rest spill, none is lost.
    let lines: String = (0..90).map(|i| format!("x-line-{i}: v{i}\r\n")).collect();
    let raw = format!("GET / HTTP/1.1\r\n{lines}Content-LENGTH: 0\r\nconnection: close\r\n\r\n");
    let h = parse(&raw).unwrap().unwrap();
    let headers = h.request.headers();
    assert_eq!(headers.len(), 92);
    for i in 0..90 {
        assert_eq!(
            headers[format!("x-line-{i}").as_str()],
            format!("v{i}").as_str()
        );
    }
    assert_eq!(headers["content-length"], "0");
    // A `connection` line written in lowercase (the common spelling) is seen.
    assert!(!h.keep_alive);
    let upper = parse("GET / HTTP/1.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
    let upper = upper.unwrap().unwrap();
    assert!(!upper.keep_alive);
    assert_eq!(upper.body, Decoder::Chunked(Chunked::Size));
}

#[test]
fn heads_over_the_limit_or_with_too_many_lines_are_431() {
    let big = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "v".repeat(2000));
    let e = parse_request(&mut BytesMut::from(big.as_str()), 1024).unwrap_err();
    assert!(e.is_too_large() && e.to_string().contains("1024"), "{e}");
    // Unfinished but already over the limit: refused without waiting.
    let e = parse_request(&mut BytesMut::from(&big[..1500]), 1024).unwrap_err();
    assert!(e.is_too_large());
    let many: String = (0..150).map(|i| format!("x-{i}: v\r\n")).collect();
    let e = parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")).unwrap_err();
    assert!(e.is_too_large(), "{e}");
}

#[test]
fn smuggling_shapes_are_refused_naming_the_problem() {
    let cases = [
        (
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "both content-length and transfer-encoding",
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "conflicting content-length",
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
            "conflicting content-length",
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "invalid content-length",
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 0x3\r\n\r\n",
            "invalid content-length",
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "single `chunked`",
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "single `chunked`",
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "single `chunked`",
        ),
        (
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.0",
        ),
        (
            "POST / HTTP/1.1\r\nX-A: b\r\n folded\r\nContent-Length: 1\r\n\r\n",
            "invalid request head",
        ),
        ("POST / HTTP/1.1\r\nX A: b\r\n\r\n", "invalid request head"),
        ("GET / HTTP/2.0\r\n\r\n", "invalid request head"),
    ];
    for (raw, needle) in cases {
        let e = refused(raw);
        assert!(e.contains(needle), "{raw:?} -> {e}");
    }
    // The same length twice is one length.
    let h = parse("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n").unwrap();
    assert_eq!(h.unwrap().body, Decoder::Length(3));
}

#[test]
fn bad_chunk_sizes_and_framing_are_refused() {
    for wire in [
        "zz\r\nabc\r\n0\r\n\r\n",
        "3\r\nabcX\r\n0\r\n\r\n",
        "ffffffffffffffffff\r\n",
        "\r\n",
    ] {
        let e = body_split(Decoder::Chunked(Chunked::Size), wire.as_bytes(), 64).unwrap_err();
        assert!(e.to_string().contains("chunk"), "{wire:?} -> {e}");
    }
}

#[test]
fn a_chunked_body_split_at_every_byte_decodes_the_same() {
    let h = parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n")
        .unwrap()
        .unwrap();
    let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-t: 1\r\n\r\n";
    for step in 1..wire.len() {
        assert_eq!(
            body_split(h.body, wire, step).unwrap(),
            b"hello, world",
            "step {step}"
        );
    }
    for cut in 0..wire.len() {
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut d = h.body;
        let mut out = Vec::new();
        while let Decoded::Data(b) = d.decode(&mut buf).unwrap() {
            out.extend_from_slice(&b);
        }
        buf.extend_from_slice(&wire[cut..]);
        loop {
            match d.decode(&mut buf).unwrap() {
                Decoded::Data(b) => out.extend_from_slice(&b),
                Decoded::End => break,
                Decoded::NeedMore => panic!("all bytes are in"),
            }
        }
        assert_eq!(out, b"hello, world", "cut at {cut}");
    }
}

#[test]
fn keep_alive_follows_the_version_and_the_connection_header() {
    let ka = |raw: &str| parse(raw).unwrap().unwrap().keep_alive;
    assert!(ka("GET / HTTP/1.1\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.1\r\nConnection: te, close\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
    assert!(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    let h = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
    assert_eq!(h.request.version(), Version::HTTP_10);
}

#[test]
fn expect_continue_is_seen_on_http_1_1_only() {
    let raw = "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
    assert!(parse(raw).unwrap().unwrap().expect_continue);
    let old = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    assert!(!parse(old).unwrap().unwrap().expect_continue);
}

#[test]
fn response_framing_is_chosen_from_the_request_and_the_body() {
    use http::StatusCode as S;
    let v11 = Version::HTTP_11;
    assert_eq!(
        Framing::choose(S::OK, false, v11, Some(5)),
        Framing::Length(5)
    );
    assert_eq!(Framing::choose(S::OK, false, v11, None), Framing::Chunked);
    assert_eq!(
        Framing::choose(S::OK, false, Version::HTTP_10, None),
        Framing::UntilClose
    );
    assert_eq!(Framing::choose(S::OK, true, v11, Some(5)), Framing::None);
    assert_eq!(
        Framing::choose(S::NO_CONTENT, false, v11, None),
        Framing::None
    );
    assert_eq!(
        Framing::choose(S::NOT_MODIFIED, false, v11, Some(3)),
        Framing::None
    );
}

#[test]
fn a_response_head_carries_our_framing_and_not_the_handlers() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert("content-length", HeaderValue::from_static("999"));
    headers.insert("connection", HeaderValue::from_static("keep-alive"));
    let mut out = Vec::new();
    encode_head(
        http::StatusCode::OK,
        &headers,
        Framing::Chunked,
        Persist::Close,
        None,
        |out: &mut Vec<u8>| out.extend_from_slice(b"date: d\r\n"),
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\ndate: d\r\n\r\n"
    );
    let mut out = Vec::new();
    encode_head(
        http::StatusCode::OK,
        &HeaderMap::new(),
        Framing::None,
        Persist::KeepAlive,
        Some(7),
        |_: &mut Vec<u8>| {},
        &mut out,
    );
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: keep-alive\r\n\r\n"
    );
}

#[test]
fn chunk_lines_are_lowercase_hex() {
    let mut line = [0u8; 18];
    for (n, want) in [
        (0usize, "0\r\n"),
        (10, "a\r\n"),
        (4096, "1000\r\n"),
        (usize::MAX, "ffffffffffffffff\r\n"),
    ] {
        let len = chunk_line(n, &mut line);
        assert_eq!(&line[..len], want.as_bytes());
    }
}
