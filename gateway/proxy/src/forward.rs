//! Sending the request to the chosen replica and turning its answer into ours.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use switchyard_config::{Limits, Protocol};
use switchyard_router::{Admitted, Outcome, clock};

use crate::admission::Release;
use crate::body::ProxyBody;
use crate::commit::{self, Refused};
use crate::error::ProxyError;
use crate::first_token::FirstToken;
use crate::guarded::GuardedBody;
use crate::observe::{Observer, OutcomeSlot, RequestObserver};
use crate::snapshot::Snapshot;
use crate::upstream::{Pool, SendError, Upstream, h1};
use crate::usage::{Meter, UsageSink, UsageTap};

/// What to send upstream, already adapted to the replica.
pub struct Outbound<'a> {
    /// Method.
    pub method: Method,
    /// Path and query on the replica (base path is prepended later): the
    /// client's, borrowed, when it passes as is.
    pub path_and_query: Cow<'a, str>,
    /// The client's headers (filtered here).
    pub headers: &'a HeaderMap,
    /// The body to send.
    pub body: Bytes,
    /// Client address, appended to `x-forwarded-for`.
    pub remote: SocketAddr,
    /// The request id, sent on so replica logs can be joined with ours.
    pub request_id: &'a HeaderValue,
    /// When the attempt started (its time to first token is measured from here).
    pub started: tokio::time::Instant,
    /// When the replica's response headers must have arrived.
    pub deadline: tokio::time::Instant,
    /// When a held SSE stream's first event must have arrived at the
    /// latest (`first_token_timeout_ms` from the attempt's start), and
    /// when a held JSON body must be in.
    pub first_event_deadline: tokio::time::Instant,
    /// No attempt can follow this one: the adaptive first-token deadline
    /// (see `first_token.rs`) does not apply.
    pub last_chance: bool,
    /// A break of this attempt's event stream may be continued elsewhere
    /// (see `resume/`): the body reports it instead of ending the stream,
    /// and the resume layer meters the answer.
    pub resumable: bool,
    /// Cancelled when the shutdown grace period is over.
    pub closing: &'a tokio_util::sync::CancellationToken,
    /// The request's observer (timings, the attempt span's `traceparent`).
    pub obs: &'a mut dyn RequestObserver,
    /// Where the answer's token usage is booked.
    pub observer: &'a dyn Observer,
    /// And where it is booked for the caller's tenant.
    pub tenant_usage: Option<&'a Arc<dyn UsageSink>>,
    /// Where the answer's body records how the replica's side ended.
    pub outcome: &'a OutcomeSlot,
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Headers the gateway adds to a replica's request (`x-forwarded-for`,
/// `x-request-id`, `accept-encoding`, `traceparent`, credentials).
const ADDED_UPSTREAM: usize = 5;

/// Sends `out` to the admitted replica and returns its response, the
/// lines that must not reach the client removed and its body wrapped to
/// hold the replica's slot. (Our own headers are added by the caller:
/// `answer.rs`.)
///
/// Not an `async fn`: one stores its by-value arguments twice (the
/// arguments, then the locals they move into: rust-lang/rust#62958) for the
/// whole first-event wait; the block uses `out`'s fields in place.
#[allow(clippy::manual_async_fn)]
pub fn forward(
    snap: &Snapshot,
    admitted: Admitted<'_>,
    mut out: Outbound<'_>,
    release: Release,
) -> impl Future<Output = Result<Response<ProxyBody>, ProxyError>> {
    async move {
        let started = out.started;
        let Admitted {
            index,
            entry,
            mut guard,
        } = admitted;
        let up = &snap.upstreams[index];
        let limits = &snap.config.server.limits;
        let replica = &entry.replica.id;
        let body = out.body.clone();
        let sent = match (&up.pool, &up.adapter) {
            // Plain HTTP/1 on our own pool: the head is written straight
            // from the client's headers, with no request built for it.
            (Some(pool), None) => {
                let head = pooled_head(up, pool, replica, &mut out, body.len())?;
                let (method, deadline) = (&out.method, out.deadline);
                let sent = Upstream::send_head(pool, method, &head, &body, started, deadline).await;
                crate::spare::recycle_buffer(head);
                sent
            }
            _ => {
                let req = request(up, replica, &mut out)?;
                up.send(&snap.client, req, started, out.deadline).await
            }
        };
        let resp = match sent {
            Err(SendError::TimedOut) => {
                guard.finish(Outcome::Failure);
                return Err(timed_out(replica, limits));
            }
            Err(e) => {
                guard.finish(Outcome::Failure);
                let replica = replica.clone();
                return Err(if e.is_connect() {
                    ProxyError::UpstreamConnect {
                        replica,
                        source: e.into(),
                    }
                } else {
                    ProxyError::UpstreamFailed {
                        replica,
                        source: e.into(),
                    }
                });
            }
            Ok(resp) => resp,
        };
        let described = commit::Described::of(resp.headers());
        if let Err(refused) = commit::check_head(&resp, &described) {
            guard.finish(Outcome::Failure);
            return Err(refused.into_error(replica, limits));
        }
        guard.record(if resp.status().is_server_error() {
            Outcome::Failure
        } else {
            Outcome::Success
        });
        if let Some(secs) = retry_after(&resp) {
            // The replica asked for a pause: route around it for that long.
            guard
                .stats()
                .health
                .cool_until(clock() + secs.min(60) * 1000);
        }

        let (mut parts, mut body) = resp.into_parts();
        // Nothing reaches the client before the answer may be committed (see
        // `commit.rs`): until then a replica that goes silent or breaks is a
        // failed attempt that another replica can take over.
        let first = FirstToken::new(
            started,
            out.first_event_deadline,
            guard.stats().ttft(),
            limits,
            out.last_chance,
        );
        let held = commit::hold(
            &parts,
            &described,
            &mut body,
            out.first_event_deadline,
            first.deadline,
        )
        .await;
        let (stream, held) = match held {
            Ok(held) => held,
            Err(Refused::NoFirstEvent) => {
                guard.fail_late();
                return Err(ProxyError::FirstTokenTimeout {
                    replica: replica.clone(),
                    ms: first.waited_ms(started),
                    usual_ms: first.usual.map(|u| u.as_millis()),
                });
            }
            Err(refused) => {
                guard.fail_late();
                return Err(refused.into_error(replica, limits));
            }
        };
        let sse = stream.is_some();
        if sse && parts.status.is_success() {
            guard.stats().record_ttft(started.elapsed());
        }
        if parts.status == StatusCode::BAD_REQUEST
            && held.ended
            && says_context_length_exceeded(&held.prefix)
        {
            parts.extensions.insert(ContextLengthExceeded);
        }
        let filtered =
            crate::headers::to_client(&mut parts.headers, &snap.config.server.response_headers);
        if sse {
            // We may append an error event, so the length is ours to decide.
            parts.headers.remove(header::CONTENT_LENGTH);
        } else if held.ended && (filtered || !described.says_length(held.prefix.len())) {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(held.prefix.len()));
        }
        out.obs.answered();
        let resumable = out.resumable && sse && parts.status.is_success() && up.adapter.is_none();
        if resumable {
            parts.extensions.insert(Resumable { index });
        }
        // Set in place: the body is a few hundred bytes, and each
        // by-value builder step was a copy of it.
        let mut body = GuardedBody::new(
            body,
            guard,
            release,
            limits.stream_idle_timeout,
            stream,
            out.outcome.clone(),
        );
        body.set_keepalive(limits.sse_keepalive.filter(|_| sse));
        body.watch_closing(out.closing);
        body.set_prefix(held.prefix, held.ended);
        if resumable {
            body.set_resumable();
            return Ok(Response::from_parts(parts, body.boxed()));
        }
        // Cloud protocols translate the answer; every OpenAI-shaped success is
        // metered for cost (the pass-through wraps inline: no extra allocation).
        let meter = (entry.replica.protocol == Protocol::OpenAi && parts.status.is_success())
            .then(|| {
                Meter::new(
                    out.observer.meter(&entry.replica),
                    out.tenant_usage.cloned(),
                    entry.replica.cost,
                )
            })
            .flatten();
        let body = match &up.adapter {
            Some(adapter) => {
                let translated = adapter.respond(parts.status, &mut parts.headers, body.boxed());
                match meter {
                    Some(m) => UsageTap::new(translated, m).boxed(),
                    None => translated,
                }
            }
            None => match meter {
                Some(m) => UsageTap::new(body, m).boxed(),
                None => body.boxed(),
            },
        };
        Ok(Response::from_parts(parts, body))
    }
}

/// The replica's request as an `http::Request` (TLS replicas through
/// hyper, cloud adapters that sign or rewrite it): the client's headers
/// that may pass, ours, and the replica's credentials, last (SigV4 signs
/// the final bytes).
fn request(
    up: &Upstream,
    replica: &str,
    out: &mut Outbound<'_>,
) -> Result<Request<Full<Bytes>>, ProxyError> {
    let uri = up
        .uri(std::mem::take(&mut out.path_and_query).into_owned())
        .map_err(|e| unforwardable(&e))?;
    let mut req = Request::new(Full::new(out.body.clone()));
    *req.method_mut() = out.method.clone();
    *req.uri_mut() = uri;
    // Sized once for the client's headers and the few added below.
    *req.headers_mut() = HeaderMap::with_capacity(out.headers.len() + ADDED_UPSTREAM);
    let headers = req.headers_mut();
    crate::headers::to_replica(out.headers, headers, up.adapter.is_some());
    append_forwarded_for(headers, out.remote);
    headers.insert(X_REQUEST_ID.clone(), out.request_id.clone());
    // The body is inspected (SSE framing, usage) and may get an error event
    // appended: it must reach us as plain bytes.
    headers.insert(
        header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    out.obs.sending(headers, out.started);
    up.authorize(&mut req, &out.body)
        .map_err(|reason| credentials_failed(replica, reason))?;
    Ok(req)
}

/// The same request for a replica on our own HTTP/1 pool, as the bytes of
/// its head, written straight from the client's headers: no header map,
/// URI or request is built for it (they were 9 % of a request's
/// instructions). What [`request`] sends, in the same order of precedence:
/// our headers and the credentials replace the client's of the same name.
fn pooled_head(
    up: &Upstream,
    pool: &Pool,
    replica: &str,
    out: &mut Outbound<'_>,
    body_len: usize,
) -> Result<Vec<u8>, ProxyError> {
    let path = &*out.path_and_query;
    // What `http::Uri` would refuse and would break the request line.
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) || !path.starts_with('/') {
        return Err(unforwardable(&"invalid uri character"));
    }
    // The observer's (`traceparent`); no allocation when there is none.
    let mut added = HeaderMap::new();
    out.obs.sending(&mut added, out.started);
    let credentials = up
        .credential_headers()
        .map_err(|reason| credentials_failed(replica, reason))?;
    let ours = |name: &HeaderName| {
        *name == X_REQUEST_ID
            || *name == header::ACCEPT_ENCODING
            || added.contains_key(name)
            || credentials.iter().flatten().any(|(n, _)| n == name)
    };
    let mut head = h1::RequestHead::start(
        &out.method,
        &up.base_path,
        path,
        out.headers.len() + ADDED_UPSTREAM,
    );
    head.header(&header::HOST, pool.host().as_bytes());
    let mut forwarded_for = None;
    for (name, value) in crate::headers::for_replica(out.headers, false) {
        if *name == X_FORWARDED_FOR {
            forwarded_for = forwarded_for.or(Some(value));
        } else if !ours(name) {
            head.header(name, value.as_bytes());
        }
    }
    let mut ip = [0u8; 48];
    let n = write_ip(&mut ip, out.remote.ip());
    match forwarded_for {
        Some(prev) => head.header_parts(&X_FORWARDED_FOR, &[prev.as_bytes(), b", ", &ip[..n]]),
        None => head.header_parts(&X_FORWARDED_FOR, &[&ip[..n]]),
    }
    head.header(&X_REQUEST_ID, out.request_id.as_bytes());
    head.header(&header::ACCEPT_ENCODING, b"identity");
    for (name, value) in added
        .iter()
        .chain(credentials.iter().flatten().map(|(n, v)| (n, v)))
    {
        head.header(name, value.as_bytes());
    }
    Ok(head.finish(&out.method, body_len))
}

/// The replica's credentials could not be had (the reason never holds one).
fn credentials_failed(replica: &str, reason: String) -> ProxyError {
    ProxyError::UpstreamCredentials {
        replica: replica.to_owned(),
        reason,
    }
}

fn unforwardable(e: &dyn std::fmt::Display) -> ProxyError {
    ProxyError::BadRequest {
        message: format!("request path cannot be forwarded: {e}"),
        param: None,
    }
}

/// Marks an answer whose event stream, should it break, the resume layer
/// may continue on another replica: it was served by replica `index` of
/// the snapshot's table, and it is not metered here.
#[derive(Debug, Clone, Copy)]
pub struct Resumable {
    /// The replica's index in the snapshot's table.
    pub index: usize,
}

/// Marks a 400 whose (whole, small) JSON body carries OpenAI's
/// `code: context_length_exceeded`: the prompt does not fit this model, so
/// no replica of its group can take it.
#[derive(Debug, Clone, Copy)]
pub struct ContextLengthExceeded;

/// `{"error":{"code":"context_length_exceeded",...}}`.
fn says_context_length_exceeded(body: &[u8]) -> bool {
    const CODE: &str = "context_length_exceeded";
    memchr::memmem::find(body, CODE.as_bytes()).is_some()
        && serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| {
            v.get("error")
                .and_then(|e| e.get("code"))
                .and_then(|c| c.as_str())
                == Some(CODE)
        })
}

/// The attempt ran out of time before the replica's first byte.
fn timed_out(replica: &str, limits: &Limits) -> ProxyError {
    ProxyError::UpstreamTimeout {
        replica: replica.to_owned(),
        ms: limits
            .attempt_timeout
            .min(limits.request_timeout)
            .as_millis(),
    }
}

/// `Retry-After` in seconds on a 429 or 503 (the HTTP-date form is rare
/// from model servers and is ignored).
pub fn retry_after<B>(resp: &Response<B>) -> Option<u64> {
    if !matches!(resp.status().as_u16(), 429 | 503) {
        return None;
    }
    resp.headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn append_forwarded_for(headers: &mut HeaderMap, remote: SocketAddr) {
    let mut ip = [0u8; 48];
    let n = write_ip(&mut ip, remote.ip());
    let ip = &ip[..n];
    // One allocation, at the value's exact length.
    let value = match headers.get(&X_FORWARDED_FOR) {
        None => HeaderValue::from_bytes(ip),
        Some(prev) => {
            let mut all = Vec::with_capacity(prev.len() + 2 + ip.len());
            all.extend_from_slice(prev.as_bytes());
            all.extend_from_slice(b", ");
            all.extend_from_slice(ip);
            HeaderValue::from_maybe_shared(Bytes::from(all))
        }
    };
    if let Ok(v) = value {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
}

/// Writes `ip` into `out`, returning its length: IPv4 in dotted decimal
/// without the formatting machinery (every request writes one), IPv6
/// through `Display` (at most 45 bytes).
fn write_ip(out: &mut [u8; 48], ip: std::net::IpAddr) -> usize {
    use std::io::Write;
    let std::net::IpAddr::V4(v4) = ip else {
        let mut cursor = std::io::Cursor::new(&mut out[..]);
        let _ = write!(cursor, "{ip}");
        return cursor.position() as usize;
    };
    let mut n = 0;
    let mut push = |b: u8| {
        out[n] = b;
        n += 1;
    };
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            push(b'.');
        }
        if octet >= 100 {
            push(b'0' + octet / 100);
        }
        if octet >= 10 {
            push(b'0' + octet / 10 % 10);
        }
        push(b'0' + octet % 10);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_appends() {
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "10.0.0.1:5".parse().unwrap());
        append_forwarded_for(&mut h, "127.0.0.1:6".parse().unwrap());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1, 127.0.0.1");
        append_forwarded_for(&mut h, "[::1]:7".parse().unwrap());
        assert_eq!(
            h.get("x-forwarded-for").unwrap(),
            "10.0.0.1, 127.0.0.1, ::1"
        );
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.254.200.1",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:1.2.3.4",
        ] {
            let mut out = [0u8; 48];
            let n = write_ip(&mut out, ip.parse().unwrap());
            assert_eq!(&out[..n], ip.as_bytes());
        }
    }

    /// The head written for a pooled replica: its base path, its `host`,
    /// the client's headers that may pass, ours replacing the client's,
    /// the credential last, the body's length.
    #[test]
    fn a_pooled_replica_gets_its_head_written_from_the_client_s_headers() {
        let yaml = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas: [{ id: r, model: m, cloud: c, url: "http://127.0.0.1:9/base/", auth: { bearer: tok } }]
"#;
        let config = switchyard_config::load_str(yaml, &|_| None).unwrap();
        let up = Upstream::new(&config.replicas[0], &config.server.limits).unwrap();
        let pool = up.pool.as_ref().unwrap();
        let mut client = HeaderMap::new();
        for (k, v) in [
            ("host", "gw"),
            ("content-type", "application/json"),
            ("content-length", "999"),
            ("authorization", "Bearer client"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-request-id", "theirs"),
            ("accept-encoding", "gzip"),
            ("connection", "x-hop"),
            ("x-hop", "1"),
        ] {
            client.append(k, HeaderValue::from_static(v));
        }
        let (mut obs, closing) = (crate::observe::NoObserver, Default::default());
        let now = tokio::time::Instant::now();
        let mut out = Outbound {
            method: Method::POST,
            path_and_query: "/v1/chat/completions".into(),
            headers: &client,
            body: Bytes::from_static(b"{}"),
            remote: "127.0.0.2:5".parse().unwrap(),
            request_id: &HeaderValue::from_static("ours"),
            started: now,
            deadline: now,
            first_event_deadline: now,
            last_chance: true,
            resumable: false,
            closing: &closing,
            obs: &mut obs,
            observer: &crate::observe::NoObserver,
            tenant_usage: None,
            outcome: &OutcomeSlot::default(),
        };
        let head = pooled_head(&up, pool, "r", &mut out, 2).unwrap();
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "POST /base/v1/chat/completions HTTP/1.1\r\n\
             host: 127.0.0.1:9\r\n\
             content-type: application/json\r\n\
             x-forwarded-for: 10.0.0.1, 127.0.0.2\r\n\
             x-request-id: ours\r\n\
             accept-encoding: identity\r\n\
             authorization: Bearer tok\r\n\
             content-length: 2\r\n\r\n"
        );
        // A path that would break the request line is refused.
        out.path_and_query = "/v1/a b".into();
        assert!(pooled_head(&up, pool, "r", &mut out, 2).is_err());
    }

    #[test]
    fn context_length_is_read_from_the_error_code() {
        let yes = br#"{"error":{"message":"too long","code":"context_length_exceeded"}}"#;
        assert!(says_context_length_exceeded(yes));
        let in_message = br#"{"error":{"message":"context_length_exceeded","code":"other"}}"#;
        assert!(!says_context_length_exceeded(in_message));
        assert!(!says_context_length_exceeded(b"context_length_exceeded"));
    }
}
