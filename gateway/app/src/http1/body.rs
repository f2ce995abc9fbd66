//! The request body the proxy reads: decoded from the connection's own
//! buffer and socket in the proxy's poll (no channel, no second task).
//! `100 Continue` goes out the first time it is polled, as hyper does.
//!
//! A body that came whole with its head (most requests: a small JSON body
//! in the head's read, or no body) is handed over as it is, and never
//! touches the connection again: no lock on it and no reference to it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use switchyard_proxy::server_h1::{Decoded, Decoder, RequestError};
use tokio::io::{AsyncRead, AsyncWrite};

use super::Http1Error;
use super::io::{ConnIo, Shared, lock};

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A request's body, read from its connection when polled.
pub struct RequestBody<S> {
    from: From<S>,
    /// Known at the head: what `size_hint` says.
    hint: SizeHint,
}

enum From<S> {
    /// Read with the head; `None` once taken.
    Whole(Option<Bytes>),
    /// Still to be read from the connection.
    Conn(Shared<S>),
}

impl<S> RequestBody<S> {
    /// A body read from `io` as it comes, framed by `framing`.
    pub fn new(io: Shared<S>, framing: Decoder) -> Self {
        let hint = match framing {
            Decoder::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        };
        Self {
            from: From::Conn(io),
            hint,
        }
    }

    /// A body that was read whole with its head.
    pub fn whole(body: Bytes) -> Self {
        Self {
            hint: SizeHint::with_exact(body.len() as u64),
            from: From::Whole((!body.is_empty()).then_some(body)),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Body for RequestBody<S> {
    type Data = Bytes;
    type Error = Http1Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Http1Error>>> {
        let io = match &mut self.get_mut().from {
            From::Whole(body) => return Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            From::Conn(io) => io,
        };
        let mut io = lock(io);
        ready!(poll_continue(&mut io, cx))?;
        loop {
            if !io.buf.is_empty() || io.body.is_done() {
                let ConnIo { buf, body, .. } = &mut *io;
                match body.decode(buf).map_err(RequestError::from)? {
                    Decoded::Data(data) => {
                        // Framing right after the data (a chunk's CRLF, the
                        // last chunk) is taken now: the body may be whole.
                        body.settle(buf).map_err(RequestError::from)?;
                        io.release();
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Decoded::End => {
                        io.release();
                        return Poll::Ready(None);
                    }
                    Decoded::NeedMore => {}
                }
            }
            let want = match io.body {
                Decoder::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
                _ => 0,
            };
            if ready!(io.poll_fill(cx, want))? == 0 {
                return Poll::Ready(Some(Err(Http1Error::BodyCut)));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.from {
            From::Whole(body) => body.is_none(),
            From::Conn(io) => lock(io).body.is_done(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.hint
    }
}

/// Writes the `100 Continue` the client waits for, unless its body is
/// already arriving or there is none.
fn poll_continue<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut ConnIo<S>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Http1Error>> {
    let Some(sent) = io.continue_sent else {
        return Poll::Ready(Ok(()));
    };
    if sent == 0 && (!io.buf.is_empty() || io.body.is_done()) {
        io.continue_sent = None;
        return Poll::Ready(Ok(()));
    }
    let mut written = sent;
    while written < CONTINUE.len() {
        let n = ready!(Pin::new(&mut io.stream).poll_write(cx, &CONTINUE[written..]))?;
        if n == 0 {
            return Poll::Ready(Err(Http1Error::Io(std::io::ErrorKind::WriteZero.into())));
        }
        written += n;
        io.continue_sent = Some(written);
    }
    ready!(Pin::new(&mut io.stream).poll_flush(cx))?;
    io.continue_sent = None;
    Poll::Ready(Ok(()))
}
