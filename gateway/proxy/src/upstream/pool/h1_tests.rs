//! The replica side's HTTP/1 framing, on byte buffers.

use bytes::Bytes;

use super::*;

fn head(raw: &str, method: &Method) -> Result<Option<Head>, H1Error> {
    parse_head(&mut BytesMut::from(raw), 16 << 10, method)
}

fn complete(raw: &str) -> Head {
    head(raw, &Method::POST).unwrap().expect("a complete head")
}

/// Feeds `wire` one byte at a time (the worst split) and collects the body.
fn body_bytewise(mut decoder: Decoder, wire: &[u8]) -> Result<Vec<u8>, H1Error> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(b) => out.extend_from_slice(&b),
            Decoded::End => return Ok(out),
            Decoded::NeedMore => match rest.split_first() {
                Some((b, tail)) => {
                    buf.extend_from_slice(&[*b]);
                    rest = tail;
                }
                None => {
                    decoder.eof()?;
                    return Ok(out);
                }
            },
        }
    }
}

#[test]
fn a_content_length_body_ends_at_its_length_and_keeps_the_connection() {
    let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhelloNEXT");
    let h = parse_head(&mut buf, 1024, &Method::POST).unwrap().unwrap();
    assert_eq!(h.response.status(), 200);
    assert_eq!(h.response.headers()["x-a"], "b");
    assert!(h.keep_alive);
    let mut d = h.body;
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from("hello"))
    );
    assert!(d.is_done());
    assert_eq!(d.decode(&mut buf).unwrap(), Decoded::End);
    assert_eq!(&buf[..], b"NEXT", "bytes past the body are not taken");
}

#[test]
fn a_chunked_body_decodes_whatever_the_read_boundaries() {
    let h = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert!(h.keep_alive);
    let wire = b"5\r\ndata:\r\n1a;ext=1\r\n abcdefghijklmnopqrstuvwxy\r\n0\r\nx-trailer: t\r\n\r\n";
    let got = body_bytewise(h.body, wire).unwrap();
    assert_eq!(got, b"data: abcdefghijklmnopqrstuvwxy");
}

#[test]
fn a_chunked_body_cut_short_is_an_error_not_an_end() {
    let h = complete("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
    let err = body_bytewise(h.body, b"5\r\nhel").unwrap_err();
    assert!(matches!(err, H1Error::Incomplete), "{err}");
    let h = complete("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n");
    assert!(matches!(
        body_bytewise(h.body, b"hello"),
        Err(H1Error::Incomplete)
    ));
}

#[test]
fn malformed_chunks_are_refused() {
    for wire in [
        &b"zz\r\n"[..],
        b"5\r\nhelloXX",
        b"\r\n",
        b"fffffffffffffffff\r\n",
    ] {
        let h = complete("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        assert!(
            matches!(body_bytewise(h.body, wire), Err(H1Error::Invalid(_))),
            "{wire:?}"
        );
    }
}

#[test]
fn without_a_length_the_body_runs_to_the_close_and_the_connection_is_not_kept() {
    let h = complete("HTTP/1.1 200 OK\r\n\r\n");
    assert!(!h.keep_alive);
    assert_eq!(body_bytewise(h.body, b"all of it").unwrap(), b"all of it");
}

#[test]
fn head_204_and_304_answers_have_no_body() {
    let h = head(
        "HTTP/1.1 200 OK\r\ncontent-length: 42\r\n\r\n",
        &Method::HEAD,
    )
    .unwrap()
    .unwrap();
    assert!(h.body.is_done());
    assert!(complete("HTTP/1.1 204 No Content\r\n\r\n").body.is_done());
    assert!(complete("HTTP/1.1 304 Not Modified\r\n\r\n").body.is_done());
}

#[test]
fn interim_answers_are_skipped_and_101_refused() {
    let mut buf = BytesMut::from(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
    );
    let h = parse_head(&mut buf, 1024, &Method::POST).unwrap().unwrap();
    assert_eq!(h.response.status(), 201);
    assert!(buf.is_empty());
    let err = head("HTTP/1.1 101 Switching Protocols\r\n\r\n", &Method::GET).unwrap_err();
    assert!(matches!(err, H1Error::Invalid(_)), "{err}");
}

#[test]
fn lengths_and_codings_that_disagree() {
    let err = head(
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
        &Method::GET,
    )
    .unwrap_err();
    assert!(matches!(err, H1Error::Invalid(_)), "{err}");
    assert!(
        head(
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            &Method::GET
        )
        .is_err()
    );
    // Repeated equal lengths are one length.
    let h = complete("HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\n\r\n");
    assert_eq!(h.body, Decoder::Length(5));
    // A transfer coding wins over a length, and the connection is not reused.
    let h = complete("HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n");
    assert_eq!(h.body, Decoder::Chunked(Chunked::Size));
    assert!(!h.keep_alive);
}

#[test]
fn connection_close_and_http_1_0_are_not_reused() {
    assert!(
        !complete("HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 0\r\n\r\n")
            .keep_alive
    );
    assert!(!complete("HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n").keep_alive);
}

#[test]
fn a_partial_head_waits_and_an_oversized_one_fails() {
    assert!(
        head("HTTP/1.1 200 OK\r\ncontent-le", &Method::GET)
            .unwrap()
            .is_none()
    );
    let long = format!("HTTP/1.1 200 OK\r\nx-big: {}", "a".repeat(2000));
    let err = parse_head(&mut BytesMut::from(long.as_str()), 1024, &Method::GET).unwrap_err();
    assert!(matches!(err, H1Error::HeadTooLarge(1024)), "{err}");
    assert!(matches!(
        head("NOT HTTP\r\n\r\n", &Method::GET),
        Err(H1Error::Parse(_))
    ));
}

#[test]
fn the_request_head_carries_our_length_and_not_the_callers() {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("r1:80"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    headers.append("x-multi", HeaderValue::from_static("1"));
    headers.append("x-multi", HeaderValue::from_static("2"));
    let mut out = Vec::new();
    encode_head(&Method::POST, "/v1/chat?x=1", &headers, 12, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "POST /v1/chat?x=1 HTTP/1.1\r\nhost: r1:80\r\nx-multi: 1\r\nx-multi: 2\r\ncontent-length: 12\r\n\r\n"
    );
    let mut out = Vec::new();
    encode_head(&Method::GET, "/", &HeaderMap::new(), 0, &mut out);
    assert_eq!(out, b"GET / HTTP/1.1\r\n\r\n");
}

#[test]
fn settling_after_a_chunk_consumes_its_framing_and_sees_the_end() {
    let mut d = Decoder::Chunked(Chunked::Size);
    let mut buf = BytesMut::from("3\r\nabc\r\n");
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from("abc"))
    );
    d.settle(&mut buf).unwrap();
    assert!(buf.is_empty(), "the CRLF after the data is framing");
    assert_eq!(d, Decoder::Chunked(Chunked::Size));
    let mut buf = BytesMut::from("3\r\nabc\r\n0\r\n\r\n");
    let mut d = Decoder::Chunked(Chunked::Size);
    assert_eq!(
        d.decode(&mut buf).unwrap(),
        Decoded::Data(Bytes::from("abc"))
    );
    d.settle(&mut buf).unwrap();
    assert!(d.is_done());
    // The next chunk's data is left for `decode`.
    let mut buf = BytesMut::from("3\r\nabc\r\n2\r\nde\r\n");
    let mut d = Decoder::Chunked(Chunked::Size);
    d.decode(&mut buf).unwrap();
    d.settle(&mut buf).unwrap();
    assert_eq!(d, Decoder::Chunked(Chunked::Data(2)));
    assert_eq!(&buf[..], b"de\r\n");
}

#[test]
fn common_values_read_as_the_bytes_they_stand_for() {
    let listed = [
        "application/json",
        "application/json; charset=utf-8",
        "text/event-stream",
        "text/event-stream; charset=utf-8",
        "text/plain; charset=utf-8",
        "keep-alive",
        "close",
        "chunked",
        "no-cache",
        "*/*",
        "gzip, deflate",
        "gzip, deflate, br",
        "gzip, deflate, br, zstd",
        "identity",
        "0",
    ];
    for v in listed {
        assert_eq!(common_value(v.as_bytes()).unwrap(), v, "{v}");
    }
    // Near misses are not taken for them: case, spacing, a prefix.
    for v in [
        "Application/json",
        "application/json ",
        "gzip,deflate",
        "chunk",
        "",
    ] {
        assert!(common_value(v.as_bytes()).is_none(), "{v:?}");
    }
    // In a parsed head, listed or not, a value reads as it was written.
    let head = complete(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
         cache-control: no-cache, private\r\ncontent-length: 0\r\n\r\n",
    );
    let h = head.response.headers();
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["cache-control"], "no-cache, private");
}
