//! A replica's HTTP/1 answer (head, then a body by length, chunks or until
//! close) parsed by the upstream connection's own framing
//! (gateway/proxy/src/upstream/pool/h1.rs), whole and cut anywhere: never
//! a panic, and the same verdict and body bytes however the reads fall.
#![no_main]

mod chunks;

use bytes::BytesMut;
use http::Method;
use libfuzzer_sys::fuzz_target;
use switchyard_proxy::upstream::h1::{Decoded, parse_head};

/// The status, the body bytes, and whether the body was complete (`None`:
/// the answer was refused as malformed).
type Verdict = Option<(u16, Vec<u8>, bool)>;

fn read(reads: &[&[u8]]) -> Verdict {
    let mut buf = BytesMut::new();
    let mut head = None;
    let mut body = Vec::new();
    for bytes in reads {
        buf.extend_from_slice(bytes);
        if head.is_none() {
            match parse_head(&mut buf, 16 << 10, &Method::POST) {
                Ok(Some(h)) => head = Some(h),
                Ok(None) => continue,
                Err(_) => return None,
            }
        }
        let h = head.as_mut().expect("parsed above");
        loop {
            match h.body.decode(&mut buf) {
                Ok(Decoded::Data(d)) => body.extend_from_slice(&d),
                Ok(Decoded::End) => return Some((h.response.status().as_u16(), body, true)),
                Ok(Decoded::NeedMore) => break,
                Err(_) => return None,
            }
        }
    }
    // The replica closed the connection here.
    let mut h = head?;
    let complete = h.body.eof().is_ok();
    Some((h.response.status().as_u16(), body, complete))
}

fuzz_target!(|data: &[u8]| {
    let (cut, payload) = chunks::split(data);
    assert_eq!(read(&cut), read(&[payload]), "cut reads changed the answer");
});
