//! One HTTP/1 connection's requests, in order: read a head (within
//! `max_header_bytes` and `header_read_timeout`), hand the request to
//! `Proxy::handle` with a body read from this connection, write the
//! answer, then the next request (pipelined ones are already buffered)
//! or close. A request that cannot be read gets its answer in the API's
//! error shape and the connection closes.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Version};
use switchyard_proxy::answer::Answer;
use switchyard_proxy::lazy_deadline::LazyDeadline;
use switchyard_proxy::server_h1::{Decoded, Decoder, RequestHead, parse_request};
use switchyard_proxy::{Api, ProxyError};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::body::RequestBody;
use super::io::{ConnIo, Io};
use super::respond::{Asked, Sent, client_left, respond};
use super::{Served, StopWatch};

/// How long a closing connection reads (and drops) what the client still
/// sends, so our last answer is not lost to a reset.
const LINGER: Duration = Duration::from_secs(2);
/// Most bytes dropped that way.
const LINGER_BYTES: usize = 1 << 20;

enum Head {
    /// A request, and its body when it came whole with the head.
    Request(RequestHead, Option<Bytes>),
    /// The client left, the connection idled past its deadline, or the
    /// gateway is shutting down with nothing in flight.
    Closed,
    /// A request that cannot be served: this answer, then close.
    Refused(ProxyError),
}

/// Serves the connection's requests until one closes it.
pub async fn serve_h1<S>(mut io: Io<S>, served: &Served)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // The head-wait timer and the shutdown watch, kept for the
    // connection's life (see `read_head`).
    let mut timer = LazyDeadline::default();
    let mut stop = StopWatch::new(&served.stop);
    // The box of the requests' futures (kilobytes): a new request's future
    // goes into the last one's, so a keep-alive connection allocates it
    // once, not per request. Freed when an answer streams (it would sit
    // idle for the stream's whole life) and with the connection.
    let mut handled = None;
    loop {
        let (head, whole) = match read_head(&mut io, served, &mut timer, &mut stop).await {
            Head::Request(head, whole) => (head, whole),
            Head::Closed => break,
            Head::Refused(e) => {
                tracing::debug!(error = %e, remote = %served.remote, "request refused");
                let asked = Asked {
                    head: false,
                    version: Version::HTTP_11,
                    keep_alive: false,
                };
                let refused = Answer {
                    response: e.into_response(Api::OpenAi),
                    ours: None,
                };
                if respond(&mut io, refused, asked, false).await != Sent::Abort {
                    linger(&mut io).await;
                }
                return;
            }
        };
        // (The body's framing is on the connection already: `read_head`.)
        let RequestHead {
            mut request,
            body,
            keep_alive,
            ..
        } = head;
        let asked = Asked {
            head: request.method() == Method::HEAD,
            version: request.version(),
            keep_alive,
        };
        if let Some(names) = &served.names {
            request.extensions_mut().insert(names.clone());
        }
        let body = match whole {
            Some(whole) => RequestBody::whole(whole),
            // Still to come: the body reads it from the connection.
            None => {
                let shared;
                (io, shared) = io.lend();
                RequestBody::new(shared, body)
            }
        };
        let request = request.map(|()| body);
        // A client that leaves while its answer is being prepared (queued,
        // waiting for a replica's first byte) cancels it, as under hyper.
        // (The new future is not bound to a local: one would be kept in
        // this task's state across the await below, kilobytes of it.)
        let mut fut = reuse(
            &mut handled,
            served.gw.handle_unboxed(request, served.remote),
        );
        let resp = poll_fn(|cx| match fut.as_mut().poll(cx) {
            Poll::Ready(resp) => Poll::Ready(Some(resp)),
            Poll::Pending if client_left(&mut io, cx) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        let Some(resp) = resp else {
            tracing::debug!(remote = %served.remote, "client left before its answer");
            return;
        };
        if http_body::Body::size_hint(resp.response.body())
            .exact()
            .is_none()
        {
            // A stream: its request's state goes now, not when it ends.
            handled = None;
        }
        // (A body lent out is gone with the handler's future.)
        io = io.reclaim();
        let body_read = io.with(finish_body);
        let keep = body_read && !served.stop.is_stopped();
        match respond(&mut io, resp, asked, keep).await {
            Sent::KeepAlive => {}
            Sent::Close if !body_read => return linger(&mut io).await,
            Sent::Close => break,
            Sent::Abort => return,
        }
    }
    let _ = poll_fn(|cx| io.with(|conn| Pin::new(&mut conn.stream).poll_shutdown(cx))).await;
}

/// `next`, in `slot`'s box when there is one (the finished future before
/// it is dropped in place), else in a new one kept there.
fn reuse<F: Future>(slot: &mut Option<Pin<Box<F>>>, next: F) -> Pin<&mut F> {
    match slot {
        Some(boxed) => {
            boxed.set(next);
            boxed.as_mut()
        }
        None => slot.insert(Box::pin(next)).as_mut(),
    }
}

/// Reads the next request head; the deadline starts with the wait.
///
/// The timer outlives the wait ([`LazyDeadline`]): registering a fresh one
/// for every request made the worker wake its own event loop (an `eventfd`
/// write and one more `epoll_wait`) whenever the new deadline was the
/// earliest, about every third request. Set for an earlier wait, it fires
/// no later than this wait's deadline and is then moved on to it, so it is
/// registered about once per `header_read_timeout`. When it fires while a
/// request is being served, the connection's task is polled once for
/// nothing.
async fn read_head<S>(
    io: &mut Io<S>,
    served: &Served,
    timer: &mut LazyDeadline,
    stop: &mut StopWatch<'_>,
) -> Head
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut deadline = None::<Instant>;
    poll_fn(|cx| {
        let idle = match io.with(|conn| poll_head(conn, cx, served.max_header_bytes)) {
            Poll::Ready(head) => return Poll::Ready(head),
            Poll::Pending => io.with(|conn| conn.buf.is_empty()),
        };
        if idle && stop.poll_stopped(cx) {
            return Poll::Ready(Head::Closed);
        }
        let deadline = *deadline.get_or_insert_with(|| Instant::now() + served.header_read_timeout);
        let expired = timer.poll_expired(cx, deadline).is_ready();
        match (expired, idle) {
            (false, _) => Poll::Pending,
            (true, true) => Poll::Ready(Head::Closed),
            (true, false) => Poll::Ready(Head::Refused(ProxyError::HeadTimeout {
                ms: served.header_read_timeout.as_millis(),
            })),
        }
    })
    .await
}

/// Reads until a whole head is in; pending once the socket has nothing.
fn poll_head<S>(conn: &mut ConnIo<S>, cx: &mut Context<'_>, max_header_bytes: usize) -> Poll<Head>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        if !conn.buf.is_empty() {
            match parse_request(&mut conn.buf, max_header_bytes) {
                Ok(Some(head)) => {
                    let whole = whole_body(conn, &head);
                    conn.release();
                    return Poll::Ready(Head::Request(head, whole));
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Head::Refused(refusal(&e))),
            }
        }
        if conn.eof {
            return Poll::Ready(Head::Closed);
        }
        match conn.poll_fill(cx, 0) {
            Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(Head::Closed),
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Sets up the connection for reading `head`'s body, and takes the body
/// when it is already buffered whole (then nothing is left to read, and
/// no `100 Continue` is owed).
fn whole_body<S>(conn: &mut ConnIo<S>, head: &RequestHead) -> Option<Bytes> {
    if let Decoder::Length(n) = head.body
        && n <= conn.buf.len() as u64
    {
        conn.body = Decoder::Length(0);
        conn.continue_sent = None;
        return Some(match n {
            0 => Bytes::new(),
            n => conn.buf.split_to(n as usize).freeze(),
        });
    }
    conn.body = head.body;
    conn.continue_sent = head.expect_continue.then_some(0);
    None
}

/// The error answer for a head that cannot be read.
fn refusal(e: &switchyard_proxy::server_h1::RequestError) -> ProxyError {
    if e.is_too_large() {
        ProxyError::HeadTooLarge {
            message: e.to_string(),
        }
    } else {
        ProxyError::MalformedRequest {
            message: e.to_string(),
        }
    }
}

/// Drops what of the request body is buffered but was never read (the
/// answer did not need it); whether the body is now read whole, so the
/// connection can carry the next request.
fn finish_body<S>(conn: &mut ConnIo<S>) -> bool {
    conn.continue_sent = None;
    while !conn.body.is_done() && !conn.buf.is_empty() {
        match conn.body.decode(&mut conn.buf) {
            Ok(Decoded::Data(_)) => {}
            Ok(_) => break,
            Err(_) => return false,
        }
    }
    let done = conn.body.is_done();
    if conn.buf.is_empty() {
        conn.buf = bytes::BytesMut::new();
    }
    done
}

/// Closes our side, then reads and drops what the client still sends for
/// a moment: closing with unread bytes would reset the connection, and a
/// reset can destroy the answer before the client reads it.
async fn linger<S>(io: &mut Io<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = poll_fn(|cx| io.with(|conn| Pin::new(&mut conn.stream).poll_shutdown(cx))).await;
    let mut dropped = 0usize;
    let drain = poll_fn(|cx| {
        io.with(|conn| {
            loop {
                dropped += conn.buf.len();
                conn.buf.clear();
                if dropped > LINGER_BYTES {
                    return Poll::Ready(());
                }
                match conn.poll_fill(cx, 0) {
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(()),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
    });
    let _ = tokio::time::timeout(LINGER, drain).await;
}
