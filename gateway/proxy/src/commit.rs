//! What a replica's answer must show before it is passed on (committed).
//! Until then nothing has reached the client, so a failure is a failed
//! attempt that another replica can take over.
//!
//! - The head must be valid HTTP: a final status in 200..=599 (hyper
//!   accepts any three digits and hands over an unsolicited `101`), and
//!   not both `Content-Length` and `Transfer-Encoding` (RFC 9112 6.3:
//!   a message that has both is an attack or a bug, not an answer).
//! - An event stream is committed on its first `data:` event, within
//!   `first_token_timeout_ms` of the attempt's start: comments and
//!   field-only blocks before it neither commit nor extend the deadline.
//! - A JSON body, or one whose `Content-Length` is at most [`WHOLE_BODY`],
//!   is read up to [`WHOLE_BODY`] bytes before it is committed (binary
//!   streams such as AWS event streams are not: they stream at once): a body the replica cuts short (shorter than
//!   its `Content-Length`, a chunked body broken off, a JSON body ended by
//!   a connection close) is a failed attempt, and one read whole goes on
//!   with its exact `Content-Length`.

use crate::upstream::UpstreamBody;
use bytes::{Bytes, BytesMut};
use http::response::Parts;
use http::{HeaderMap, Response, Version, header};
use http_body_util::BodyExt;

use switchyard_config::Limits;

use crate::body::BoxError;
use crate::error::ProxyError;
use crate::events::EventFramer;
use crate::guarded::Sse;
use crate::lazy_deadline::LazyDeadline;

/// Bodies up to this size are read whole before they are passed on.
pub const WHOLE_BODY: usize = 256 << 10;

/// Why an answer is not passed on.
#[derive(Debug)]
pub enum Refused {
    /// The replica broke HTTP or its body failed.
    Failed(BoxError),
    /// No `data:` event before the deadline.
    NoFirstEvent,
}

/// What a replica's head says about its body, read in one pass over its
/// lines: the checks here each asked the map by name before (a hash and a
/// probe per lookup, about nine an answer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Described {
    /// How many `content-length` lines.
    pub lengths: u8,
    /// The first `content-length`, when it is digits only.
    pub length: Option<u64>,
    /// A `transfer-encoding` line.
    pub coding: bool,
    /// The first `content-encoding` is not `identity`: the body is opaque.
    pub encoded: bool,
    /// The first `content-type` is `application/json`.
    pub json: bool,
    /// The first `content-type` is `text/event-stream`.
    pub event_stream: bool,
}

impl Described {
    /// One pass over `headers`.
    pub fn of(headers: &HeaderMap) -> Self {
        let mut d = Described::default();
        let (mut encoding, mut content_type) = (false, false);
        for (name, value) in headers {
            if name == header::CONTENT_LENGTH {
                if d.lengths == 0 {
                    d.length = crate::upstream::h1::digits(value.as_bytes());
                }
                d.lengths = d.lengths.saturating_add(1);
            } else if name == header::TRANSFER_ENCODING {
                d.coding = true;
            } else if name == header::CONTENT_ENCODING && !std::mem::replace(&mut encoding, true) {
                d.encoded = value != "identity";
            } else if name == header::CONTENT_TYPE && !std::mem::replace(&mut content_type, true) {
                d.json = value.as_bytes().starts_with(b"application/json");
                d.event_stream = value.as_bytes().starts_with(b"text/event-stream");
            }
        }
        d
    }

    /// Whether the one `content-length` line says `len` (the usual case:
    /// then no value is made for it, which is an allocation).
    pub fn says_length(&self, len: usize) -> bool {
        self.lengths == 1 && self.length == Some(len as u64)
    }
}

/// An answer's head that breaks HTTP, as a reason.
pub fn check_head<B>(resp: &Response<B>, head: &Described) -> Result<(), Refused> {
    let status = resp.status();
    let reason = if status.is_informational() {
        format!("replica answered {status} to a request that asked for no upgrade")
    } else if status.as_u16() > 599 {
        format!("replica answered with invalid status {}", status.as_u16())
    } else if head.lengths > 0 && head.coding {
        "replica sent both Content-Length and Transfer-Encoding".to_owned()
    } else {
        return Ok(());
    };
    Err(Refused::Failed(reason.into()))
}

/// The bytes read before committing.
#[derive(Debug, Default)]
pub struct Held {
    /// Forwarded first: whole events up to the first `data:` one, or the
    /// body's start.
    pub prefix: Bytes,
    /// The body ended: `prefix` is all of it.
    pub ended: bool,
}

/// Reads what must be in before the answer is committed: for an event
/// stream (`Some` state; an encoded one, from a replica ignoring our
/// `identity`, is opaque bytes and never framed or appended to) its first
/// `data:` event (by `first_event`), for a JSON or small body the body (by
/// `deadline`).
pub async fn hold(
    parts: &Parts,
    head: &Described,
    body: &mut UpstreamBody,
    deadline: tokio::time::Instant,
    first_event_deadline: tokio::time::Instant,
) -> Result<(Option<Sse>, Held), Refused> {
    if head.event_stream && !head.encoded {
        let mut stream = Sse::default();
        let held = if parts.status.is_success() {
            first_event(body, &mut stream.framer, first_event_deadline).await?
        } else {
            Held::default()
        };
        return Ok((Some(stream), held));
    }
    let held = if read_whole(head) {
        whole_body(body, (head, parts.version), deadline).await?
    } else {
        Held::default()
    };
    Ok((None, held))
}

/// Reads an event stream up to and including its first `data:` event.
async fn first_event(
    body: &mut UpstreamBody,
    framer: &mut EventFramer,
    deadline: tokio::time::Instant,
) -> Result<Held, Refused> {
    let mut prefix = Prefix::default();
    let mut timer = LazyDeadline::default();
    loop {
        let frame = match timer.run(deadline, body.frame()).await {
            None => return Err(Refused::NoFirstEvent),
            Some(None) => {
                return Err(Refused::Failed(
                    "replica ended the stream before its first data event".into(),
                ));
            }
            Some(Some(Err(e))) => return Err(Refused::Failed(e)),
            Some(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let framed = framer
            .push_bytes(data)
            .map_err(|e| Refused::Failed(Box::new(e)))?;
        prefix.push(framed.events);
        if framed.data_events > 0 {
            return Ok(Held {
                prefix: prefix.freeze(),
                ended: false,
            });
        }
    }
}

/// Whether a body that is not SSE is read whole before committing.
pub fn read_whole(head: &Described) -> bool {
    head.json || head.length.is_some_and(|n| n <= WHOLE_BODY as u64)
}

/// Reads a body that is not a stream, up to [`WHOLE_BODY`] bytes or until
/// `deadline` (then the rest streams). `head` is the replica's headers as
/// they came: a body delimited by the connection's close must be whole
/// JSON when it says it is JSON, since a cut looks like its end.
async fn whole_body(
    body: &mut UpstreamBody,
    head: (&Described, Version),
    deadline: tokio::time::Instant,
) -> Result<Held, Refused> {
    let mut prefix = Prefix::default();
    // (A body that came with its head sets up no timer.)
    let mut timer = LazyDeadline::default();
    while prefix.len() < WHOLE_BODY {
        let frame = match timer.run(deadline, body.frame()).await {
            None => break,
            Some(None) => {
                let prefix = prefix.freeze();
                close_delimited_json_is_whole(head, &prefix)?;
                return Ok(Held {
                    prefix,
                    ended: true,
                });
            }
            Some(Some(Err(e))) => return Err(Refused::Failed(e)),
            Some(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            prefix.push(data);
        }
    }
    Ok(Held {
        prefix: prefix.freeze(),
        ended: false,
    })
}

/// Bytes read before committing: the first chunk as is (most answers
/// are one), copied into one buffer only when a second one arrives.
#[derive(Default)]
enum Prefix {
    #[default]
    Empty,
    One(Bytes),
    Many(BytesMut),
}

impl Prefix {
    fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        *self = match std::mem::take(self) {
            Prefix::Empty => Prefix::One(data),
            Prefix::One(first) => {
                let mut all = BytesMut::with_capacity(first.len() + data.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                Prefix::Many(all)
            }
            Prefix::Many(mut all) => {
                all.extend_from_slice(&data);
                Prefix::Many(all)
            }
        };
    }

    fn len(&self) -> usize {
        match self {
            Prefix::Empty => 0,
            Prefix::One(b) => b.len(),
            Prefix::Many(b) => b.len(),
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Prefix::Empty => Bytes::new(),
            Prefix::One(b) => b,
            Prefix::Many(b) => b.freeze(),
        }
    }
}

fn close_delimited_json_is_whole(
    (head, version): (&Described, Version),
    body: &[u8],
) -> Result<(), Refused> {
    let close_delimited = version <= Version::HTTP_11 && head.lengths == 0 && !head.coding;
    if close_delimited
        && head.json
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err()
    {
        return Err(Refused::Failed(
            "replica closed the connection in the middle of its JSON body".into(),
        ));
    }
    Ok(())
}

impl Refused {
    /// The attempt's error.
    pub fn into_error(self, replica: &str, limits: &Limits) -> ProxyError {
        match self {
            Refused::Failed(source) => ProxyError::UpstreamFailed {
                replica: replica.to_owned(),
                source,
            },
            Refused::NoFirstEvent => ProxyError::FirstTokenTimeout {
                replica: replica.to_owned(),
                ms: limits
                    .first_token_timeout
                    .min(limits.request_timeout)
                    .as_millis(),
                usual_ms: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)]) -> Response<()> {
        let mut r = Response::builder().status(status);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(()).unwrap()
    }

    #[test]
    fn heads_that_break_http_are_refused() {
        let check = |r: &Response<()>| check_head(r, &Described::of(r.headers()));
        assert!(check(&resp(200, &[("content-length", "2")])).is_ok());
        assert!(check(&resp(503, &[])).is_ok());
        for bad in [
            resp(101, &[("upgrade", "websocket")]),
            resp(103, &[]),
            resp(600, &[]),
            resp(999, &[]),
            resp(
                200,
                &[("content-length", "5"), ("transfer-encoding", "chunked")],
            ),
        ] {
            assert!(matches!(check(&bad), Err(Refused::Failed(_))), "{bad:?}");
        }
    }

    #[test]
    fn json_and_small_bodies_are_read_whole_binary_streams_are_not() {
        let h = |pairs: &[(&str, &str)]| Described::of(resp(200, pairs).headers());
        assert!(read_whole(&h(&[("content-type", "application/json")])));
        assert!(read_whole(&h(&[("content-length", "100")])));
        assert!(!read_whole(&h(&[(
            "content-type",
            "application/vnd.amazon.eventstream"
        )])));
        assert!(!read_whole(&h(&[("content-length", "10000000")])));
    }

    #[test]
    fn a_head_is_described_by_the_first_line_of_each_name() {
        let d = |pairs: &[(&str, &str)]| Described::of(resp(200, pairs).headers());
        let sse = d(&[
            ("content-type", "text/event-stream; charset=utf-8"),
            ("content-type", "application/json"),
            ("content-encoding", "identity"),
        ]);
        assert!(sse.event_stream && !sse.json && !sse.encoded);
        assert_eq!((sse.lengths, sse.length, sse.coding), (0, None, false));
        let gz = d(&[
            ("content-encoding", "gzip"),
            ("content-encoding", "identity"),
        ]);
        assert!(gz.encoded);
        let json = d(&[
            ("content-type", "application/json"),
            ("content-length", "12"),
            ("transfer-encoding", "chunked"),
        ]);
        assert!(json.json && json.coding);
        assert_eq!((json.lengths, json.length), (1, Some(12)));
    }

    #[test]
    fn a_replica_length_is_kept_only_when_it_is_the_body_s() {
        let d = |pairs: &[(&str, &str)]| Described::of(resp(200, pairs).headers());
        assert!(!d(&[]).says_length(5));
        assert!(d(&[("content-length", "5")]).says_length(5));
        assert!(!d(&[("content-length", "5")]).says_length(6));
        assert!(!d(&[("content-length", "+5")]).says_length(5));
        assert!(!d(&[("content-length", "5"), ("content-length", "5")]).says_length(5));
    }
}
