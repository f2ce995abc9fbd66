//! Writing a response: the head with our framing, then the body as it
//! comes, each piece flushed at once (a stream's tokens leave when they
//! arrive). Head and first piece go in one `writev`, and so do a chunk's
//! size line, data and end; body bytes are never copied.
//!
//! While the body waits for its next piece, the connection is watched for
//! the client leaving (as hyper does): its end ends the response, so a
//! stream nobody reads stops holding a replica's slot.

use std::future::{Future, poll_fn};
use std::io::IoSlice;
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use http::Version;
use http_body::Body;
use switchyard_proxy::answer::Answer;
use switchyard_proxy::server_h1::encode::{Framing, Persist, asks_close, chunk_line, encode_head};
use switchyard_proxy::{ProxyBody, spare};
use tokio::io::{AsyncRead, AsyncWrite};

use super::date::date_line;
use super::io::{Io, write_all};

/// Most bytes of pipelined requests read while a response is written.
const PIPELINED: usize = 16 << 10;

/// What the response needs to know about its request.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    pub head: bool,
    pub version: Version,
    /// The request allows another one on this connection.
    pub keep_alive: bool,
}

/// How a response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Whole; the connection may carry the next request.
    KeepAlive,
    /// Whole (or as far as its framing allows); close the connection.
    Close,
    /// Cut short (body error, client gone): drop the connection now.
    Abort,
}

/// Writes `answer` to the client, our own headers straight into its head;
/// `keep`: whether the connection may carry another request afterwards
/// (the request's wish, our shutdown, whether its body was read whole).
///
/// Not an `async fn`: that keeps its arguments and the locals they are
/// taken apart into, both, for the whole response (rust-lang/rust#62958);
/// the block below keeps each part once.
pub fn respond<S>(
    io: &mut Io<S>,
    answer: Answer,
    asked: Asked,
    keep: bool,
) -> impl Future<Output = Sent>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Answer { response, ours } = answer;
    let (parts, mut body) = response.into_parts();
    // (Before the first poll: a body's hint shrinks as it is read.)
    let hint = body.size_hint().exact();
    async move {
        // Whatever the body has ready goes with the head.
        let mut first = None;
        let mut failed = false;
        poll_fn(|cx| {
            match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(None) => first = Some(None),
                // (A trailers frame is not relayed: as if nothing were ready.)
                Poll::Ready(Some(Ok(f))) => first = f.into_data().ok().map(Some),
                Poll::Ready(Some(Err(_))) => failed = true,
                Poll::Pending => {}
            }
            Poll::Ready(())
        })
        .await;
        if failed {
            return Sent::Abort;
        }
        let (first_data, ended) = match first {
            Some(None) => (None, true),
            Some(Some(data)) => (Some(data), body.is_end_stream()),
            None => (None, false),
        };
        let len = hint.or_else(|| ended.then(|| first_data.as_ref().map_or(0, |d| d.len() as u64)));
        let framing = Framing::choose(parts.status, asked.head, asked.version, len);
        let keep = keep
            && asked.keep_alive
            && framing != Framing::UntilClose
            && !asks_close(&parts.headers);
        let persist = match (keep, asked.version) {
            (false, _) => Persist::Close,
            (true, Version::HTTP_10) => Persist::KeepAlive,
            (true, _) => Persist::Default,
        };
        let head_len = hint.filter(|&n| asked.head && n > 0);
        let date = date_line(&parts.headers);
        let mut head = spare::buffer(0);
        encode_head(
            parts.status,
            &parts.headers,
            framing,
            persist,
            head_len,
            |out| {
                if let Some(ours) = &ours {
                    ours.write_h1(out);
                }
                if let Some(date) = &date {
                    out.extend_from_slice(date);
                }
            },
            &mut head,
        );
        spare::recycle_map(parts.headers);
        // (Not held for a long stream's whole life.)
        drop(ours);
        let after = if keep { Sent::KeepAlive } else { Sent::Close };
        if framing == Framing::None {
            drop(body);
            let written = write_all(io, &mut [IoSlice::new(&head)]).await;
            spare::recycle_buffer(head);
            return match written {
                Ok(()) => after,
                Err(_) => Sent::Abort,
            };
        }
        let mut writer = Writer {
            framing,
            left: len.unwrap_or(u64::MAX),
            head: Some(head),
        };
        let mut piece = first_data;
        let mut done = ended;
        loop {
            // A length-framed body is whole once its length is there, whether
            // or not the body said so yet.
            let completes = matches!(framing, Framing::Length(_))
                && piece.as_ref().map_or(0, |p| p.len() as u64) >= writer.left;
            let last = done || completes || body.is_end_stream();
            if last {
                // Let the body go before its last bytes leave, as hyper does:
                // what it records when dropped (metrics, spend, the access
                // log) is done by the time the client has the whole answer.
                drop(std::mem::take(&mut body));
            }
            if writer.write(io, piece.take(), last).await.is_err() {
                return Sent::Abort;
            }
            if last {
                // A body shorter than its length leaves the client waiting: cut.
                let short = matches!(framing, Framing::Length(_)) && writer.left > 0;
                return if short { Sent::Abort } else { after };
            }
            match next_data(io, &mut body).await {
                Next::Data(d) => piece = Some(d),
                Next::End => done = true,
                Next::Gone => return Sent::Abort,
            }
        }
    }
}

enum Next {
    Data(Bytes),
    End,
    /// The body failed or the client left.
    Gone,
}

/// The body's next data, while watching the client's side of the socket.
async fn next_data<S>(io: &mut Io<S>, body: &mut ProxyBody) -> Next
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    poll_fn(|cx| {
        loop {
            match Pin::new(&mut *body).poll_frame(cx) {
                Poll::Ready(None) => return Poll::Ready(Next::End),
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Next::Gone),
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(d) if d.is_empty() => continue,
                    Ok(d) => return Poll::Ready(Next::Data(d)),
                    // Trailers are not relayed.
                    Err(_) => continue,
                },
                Poll::Pending => {}
            }
            if client_left(io, cx) {
                return Poll::Ready(Next::Gone);
            }
            return Poll::Pending;
        }
    })
    .await
}

/// Reads what the client sends meanwhile (a pipelined request is kept,
/// up to a head's worth); `true` once it closed its side. Not while an
/// unread request body is still coming (those bytes are not a request).
pub fn client_left<S>(io: &mut Io<S>, cx: &mut std::task::Context<'_>) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    io.with(|io| watch_client(io, cx))
}

fn watch_client<S>(io: &mut super::io::ConnIo<S>, cx: &mut std::task::Context<'_>) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if io.eof {
        return true;
    }
    while io.body.is_done() && io.buf.len() < PIPELINED {
        match io.poll_fill(cx, 0) {
            Poll::Ready(Ok(0) | Err(_)) => return true,
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => return false,
        }
    }
    false
}

/// Writes body pieces in the response's framing.
struct Writer {
    framing: Framing,
    /// Bytes a length-framed body still owes.
    left: u64,
    /// The head, until it is written with the first piece.
    head: Option<Vec<u8>>,
}

impl Writer {
    async fn write<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut Io<S>,
        data: Option<Bytes>,
        last: bool,
    ) -> std::io::Result<()> {
        let head = self.head.take().unwrap_or_default();
        let mut data = data.unwrap_or_default();
        if let Framing::Length(_) = self.framing {
            if data.len() as u64 > self.left {
                // More than the length promised: never written.
                data.truncate(usize::try_from(self.left).unwrap_or(usize::MAX));
            }
            self.left -= data.len() as u64;
        }
        let mut line = [0u8; 18];
        let chunked = self.framing == Framing::Chunked;
        let line_len = if chunked && !data.is_empty() {
            chunk_line(data.len(), &mut line)
        } else {
            0
        };
        let end: &[u8] = match (chunked, data.is_empty(), last) {
            (true, false, true) => b"\r\n0\r\n\r\n",
            (true, false, false) => b"\r\n",
            (true, true, true) => b"0\r\n\r\n",
            _ => b"",
        };
        let mut bufs = [
            IoSlice::new(&head),
            IoSlice::new(&line[..line_len]),
            IoSlice::new(&data),
            IoSlice::new(end),
        ];
        let n = bufs.iter().filter(|b| !b.is_empty()).count();
        let written = if n == 0 {
            Ok(())
        } else {
            write_all(io, &mut bufs).await
        };
        spare::recycle_buffer(head);
        written
    }
}
