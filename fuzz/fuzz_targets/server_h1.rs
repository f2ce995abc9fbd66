//! A client's byte stream on one keep-alive connection (request heads,
//! length or chunked bodies, pipelined requests) read by the gateway's
//! own HTTP/1 server framing (gateway/proxy/src/server_h1/), whole and cut
//! anywhere: never a panic, and the same requests, bodies and verdict
//! however the reads fall.
#![no_main]

mod chunks;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use switchyard_proxy::server_h1::{Decoded, Decoder, RequestHead, parse_request};

/// Each request: method, target, headers seen, body bytes.
type Served = Vec<(String, String, usize, Vec<u8>)>;

/// The requests read, and how the stream ended: `Ok(true)` at a request
/// boundary, `Ok(false)` mid-request, `Err(status)` refused (400 or 431).
fn read(reads: &[&[u8]]) -> (Served, Result<bool, u16>) {
    let mut buf = BytesMut::new();
    let mut served = Served::new();
    // The request being read: its summary so far, and its body's framing.
    let mut current: Option<((String, String, usize, Vec<u8>), Decoder)> = None;
    for bytes in reads {
        buf.extend_from_slice(bytes);
        loop {
            if current.is_none() {
                if buf.is_empty() {
                    break;
                }
                match parse_request(&mut buf, 4096) {
                    Ok(Some(head)) => current = Some((summary(&head), head.body)),
                    Ok(None) => break,
                    Err(e) => return (served, Err(if e.is_too_large() { 431 } else { 400 })),
                }
            }
            let Some((request, decoder)) = current.as_mut() else {
                break;
            };
            match decoder.decode(&mut buf) {
                Ok(Decoded::Data(d)) => request.3.extend_from_slice(&d),
                Ok(Decoded::End) => {
                    if let Some((request, _)) = current.take() {
                        served.push(request);
                    }
                }
                Ok(Decoded::NeedMore) => break,
                Err(_) => return (served, Err(400)),
            }
        }
    }
    let clean = current.is_none() && buf.is_empty();
    (served, Ok(clean))
}

fn summary(head: &RequestHead) -> (String, String, usize, Vec<u8>) {
    let r = &head.request;
    (
        r.method().to_string(),
        r.uri().to_string(),
        r.headers().len(),
        Vec::new(),
    )
}

fuzz_target!(|data: &[u8]| {
    let (cut, payload) = chunks::split(data);
    let whole = read(&[payload]);
    let pieces = read(&cut);
    // A head over the limit is refused as soon as the buffer passes it,
    // which depends on how much arrived at once; everything else must agree.
    if whole.1 == Err(431) || pieces.1 == Err(431) {
        return;
    }
    assert_eq!(pieces, whole, "cut reads changed the requests");
});
