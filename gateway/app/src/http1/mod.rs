//! Our own client-facing HTTP/1.1 connection (issue 15): hyper's server
//! codec kept ~16 KiB per connection whatever it carried (an 8 KiB write
//! buffer allocated up front, an adaptive read buffer of 8 KiB and more
//! for the connection's life, the h1/h2 detection's rewind prefix). Here a
//! connection is its socket plus, only while bytes wait, a read buffer;
//! the head and body pieces are written with `writev`, never copied into
//! a buffer of ours. The framing rules are pure functions in
//! `switchyard_proxy::server_h1` (tested and fuzzed there); this module
//! drives them on a socket.
//!
//! HTTP/2 stays hyper's (`h2`): the HTTP/2 preface (h2c prior
//! knowledge) or ALPN `h2` hands the connection to hyper's `http2`
//! connection, with the bytes read to tell them apart replayed.
//!
//! # Layout
//! - `io`: the socket and its read buffer, shared with the request body;
//! - `body`: the request body the proxy polls (`100 Continue` on first poll);
//! - `conn`: a connection's requests in order: head (limits, timeout),
//!   `Proxy::handle`, the response, keep-alive or close;
//! - `respond`: the response head and body on the wire;
//! - `h2`: hyper's HTTP/2 for the connections that speak it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use switchyard_proxy::Proxy;
use switchyard_proxy::client_cert::ClientCertNames;
use switchyard_proxy::server_h1::RequestError;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

mod body;
mod conn;
mod date;
mod h2;
mod io;
mod respond;

/// Why a client connection's request could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    /// The socket failed.
    #[error("client connection: {0}")]
    Io(#[from] std::io::Error),
    /// The request's framing is broken.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The client closed the connection before its body was complete.
    #[error("the client closed the connection before the request body was complete")]
    BodyCut,
}

/// What every request of a connection is served with.
pub struct Served {
    /// The data plane.
    pub gw: Arc<Proxy>,
    /// The client's address.
    pub remote: SocketAddr,
    /// A verified client certificate's names, put in every request.
    pub names: Option<ClientCertNames>,
    /// `server.limits.max_header_bytes` when the connection was accepted.
    pub max_header_bytes: usize,
    /// `server.limits.header_read_timeout_ms`: for each request head.
    pub header_read_timeout: Duration,
    /// The listener's shutdown: idle connections close, busy ones finish.
    pub stop: Stop,
}

/// A listener's shutdown as its connections look at it: a flag read with
/// a plain load (`CancellationToken::is_cancelled` takes a mutex), and the
/// token an idle connection is woken by.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    token: CancellationToken,
}

impl Stop {
    /// Stops: idle connections close now, busy ones after their answer.
    pub fn stop(&self) {
        // Before the token: a connection woken by it sees the flag.
        self.flag.store(true, Ordering::SeqCst);
        self.token.cancel();
    }

    /// Whether [`Stop::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}

/// One connection's wait for its listener's [`Stop`], registered with the
/// connection's task once and not again for each idle wait (a `Notify`
/// registration and its removal, under a mutex, per request): while the
/// task's waker stays the same, the flag is all there is to look at.
pub(super) struct StopWatch<'s> {
    stop: &'s Stop,
    /// Boxed, at the first idle wait: the connection's task stays small.
    wait: Option<Pin<Box<WaitForCancellationFuture<'s>>>>,
    /// The waker the wait is registered with.
    woken: Option<Waker>,
}

impl<'s> StopWatch<'s> {
    pub(super) fn new(stop: &'s Stop) -> Self {
        Self {
            stop,
            wait: None,
            woken: None,
        }
    }

    /// Whether the listener stopped; if not, this task is woken when it does.
    pub(super) fn poll_stopped(&mut self, cx: &mut Context<'_>) -> bool {
        if self.stop.is_stopped() {
            return true;
        }
        if self.woken.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return false;
        }
        self.woken = Some(cx.waker().clone());
        let stop = self.stop;
        let wait = self
            .wait
            .get_or_insert_with(|| Box::pin(stop.token.cancelled()));
        wait.as_mut().poll(cx).is_ready()
    }
}

/// Serves a connection to its end: HTTP/2 when ALPN chose it or the
/// client opens with its preface, our HTTP/1 otherwise.
pub async fn serve<S>(stream: S, alpn_h2: bool, served: Served)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = io::Io::new(stream, BytesMut::new());
    let h2 = alpn_h2 || {
        match sniff(&mut conn, &served).await {
            Some(h2) => h2,
            None => return,
        }
    };
    if h2 {
        let Some(conn) = conn.into_inner() else {
            return;
        };
        let replay = h2::Replay::new(conn.buf, conn.stream);
        let Served {
            gw,
            remote,
            names,
            max_header_bytes,
            stop,
            ..
        } = served;
        let stop = stop.token;
        // Boxed: an HTTP/1 connection's task is not the size of hyper's.
        return Box::pin(h2::serve(replay, gw, remote, names, max_header_bytes, stop)).await;
    }
    conn::serve_h1(conn, &served).await;
}

/// Reads until the first bytes tell HTTP/2's preface from anything else;
/// `None`: the client left, or sent nothing before a shutdown or within
/// `header_read_timeout`.
async fn sniff<S>(conn: &mut io::Io<S>, served: &Served) -> Option<bool>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stop = std::pin::pin!(served.stop.token.cancelled());
    let read = std::future::poll_fn(|cx| {
        conn.with(|conn| {
            loop {
                let n = conn.buf.len().min(h2::PREFACE.len());
                if conn.buf[..n] != h2::PREFACE[..n] {
                    return Poll::Ready(Some(false));
                }
                if n == h2::PREFACE.len() {
                    return Poll::Ready(Some(true));
                }
                match conn.poll_fill(cx, 0) {
                    Poll::Ready(Ok(0) | Err(_)) => return Poll::Ready(None),
                    Poll::Ready(Ok(_)) => {}
                    Poll::Pending if conn.buf.is_empty() && stop.as_mut().poll(cx).is_ready() => {
                        return Poll::Ready(None);
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
    });
    tokio::time::timeout(served.header_read_timeout, read)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests;
