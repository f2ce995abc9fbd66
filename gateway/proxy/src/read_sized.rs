//! Reading a socket into a buffer that is sized by what came.
//!
//! Both sides of a connection keep no read buffer between messages (a
//! long stream's connections would hold it through every pause). The
//! next read then needs one: reserving the read's whole room (4 or 8 KiB)
//! took glibc's slow path twice per request (sizes above its per-thread
//! cache's 1 KiB, with a consolidation of free chunks), while what comes
//! is usually a head and a small body, or one token event, a few hundred
//! bytes. Here such a read goes to the stack first and the buffer is
//! allocated at the size of what came.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

/// Reads up to `N` bytes through the stack into the empty `buf`, which is
/// allocated only for bytes that came: at their size, or at `room` when
/// the read filled the `N` bytes (more is probably on its way). `Ok(0)`:
/// the peer closed its side.
///
/// Through `poll_read`, whose short reads tell tokio the socket is
/// drained (no `recvfrom` that finds nothing afterwards).
pub fn poll_read_sized<S, const N: usize>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
    room: usize,
) -> Poll<io::Result<usize>>
where
    S: AsyncRead + Unpin,
{
    // Uninitialised: no memset per read.
    let mut stack = [MaybeUninit::<u8>::uninit(); N];
    let mut rb = ReadBuf::uninit(&mut stack);
    ready!(Pin::new(stream).poll_read(cx, &mut rb))?;
    let got = rb.filled();
    if !got.is_empty() {
        buf.reserve(if got.len() < N {
            got.len()
        } else {
            room.max(got.len())
        });
        buf.extend_from_slice(got);
    }
    Poll::Ready(Ok(got.len()))
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    #[test]
    fn the_buffer_is_sized_by_what_came() {
        let mut cx = Context::from_waker(Waker::noop());
        let mut small: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        let mut buf = BytesMut::new();
        let n = poll_read_sized::<_, 64>(&mut small, &mut cx, &mut buf, 4096);
        assert!(matches!(n, Poll::Ready(Ok(18))));
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(buf.capacity(), 18);

        // A read that fills the stack buffer gets the room asked for.
        let big = vec![b'x'; 100];
        let mut big: &[u8] = &big;
        let mut buf = BytesMut::new();
        let n = poll_read_sized::<_, 64>(&mut big, &mut cx, &mut buf, 4096);
        assert!(matches!(n, Poll::Ready(Ok(64))));
        assert!(buf.capacity() >= 4096);

        // Nothing came: nothing is allocated.
        let mut empty: &[u8] = b"";
        let mut buf = BytesMut::new();
        let n = poll_read_sized::<_, 64>(&mut empty, &mut cx, &mut buf, 4096);
        assert!(matches!(n, Poll::Ready(Ok(0))));
        assert_eq!(buf.capacity(), 0);
    }
}
