//! The pool against raw TCP replicas that count their connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::*;

/// How the fake replica treats a connection after each answer.
#[derive(Clone, Copy)]
enum After {
    /// Keeps it open for the next request.
    KeepAlive,
    /// Closes it without saying so (no `Connection: close`): a replica's
    /// idle timeout firing between two requests.
    SilentClose,
    /// Sends bytes nobody asked for a moment after its answer, and keeps
    /// the connection open.
    Stray,
}

/// A replica answering `hello` to each request; returns its address, its
/// count of accepted connections and its task (aborted when dropped).
async fn replica(after: After) -> (String, Arc<AtomicUsize>, JoinSet<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let mut task = JoinSet::new();
    task.spawn(async move {
        let mut conns = JoinSet::new();
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            conns.spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut have = Vec::new();
                loop {
                    let Ok(n) = s.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    have.extend_from_slice(&buf[..n]);
                    if !have.windows(4).any(|w| w == b"\r\n\r\n") {
                        continue;
                    }
                    have.clear();
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
                    if s.write_all(ok).await.is_err() {
                        return;
                    }
                    match after {
                        After::SilentClose => return,
                        After::Stray => {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            if s.write_all(b"HTTP/1.1 200 OK\r\n").await.is_err() {
                                return;
                            }
                            STRAYS_SENT.fetch_add(1, Ordering::SeqCst);
                        }
                        After::KeepAlive => {}
                    }
                }
            });
        }
    });
    (addr, accepted, task)
}

fn pool(addr: &str) -> Pool {
    Pool::new(
        &addr.parse().unwrap(),
        PoolSettings {
            max_idle: 8,
            idle_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(2),
            max_buf: 16 << 10,
        },
    )
}

fn get(addr: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://{addr}/v1/models"))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// A deadline no test reaches.
fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

async fn read(resp: Response<PooledBody>) -> Bytes {
    resp.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn a_connection_read_to_the_end_is_reused() {
    let (addr, accepted, _replica) = replica(After::KeepAlive).await;
    let pool = pool(&addr);
    for _ in 0..3 {
        let resp = pool.send(get(&addr), Instant::now(), far()).await.unwrap();
        assert_eq!(read(resp).await, "hello");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let (addr, accepted, _replica) = replica(After::KeepAlive).await;
    let pool = pool(&addr);
    drop(pool.send(get(&addr), Instant::now(), far()).await.unwrap());
    let resp = pool.send(get(&addr), Instant::now(), far()).await.unwrap();
    assert_eq!(read(resp).await, "hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_replica_closed_while_idle_is_replaced() {
    let (addr, accepted, _replica) = replica(After::SilentClose).await;
    let pool = pool(&addr);
    for _ in 0..3 {
        let resp = pool.send(get(&addr), Instant::now(), far()).await.unwrap();
        assert_eq!(read(resp).await, "hello");
        // The replica's FIN arrives while the connection is idle.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

/// Stray bytes written by `After::Stray` replicas (one test uses them).
static STRAYS_SENT: AtomicUsize = AtomicUsize::new(0);

/// The answer's last read was short, so tokio marks the socket drained
/// and the idle check makes no syscall; bytes that come after are an
/// event, and the check reads them.
#[tokio::test]
async fn a_connection_with_stray_bytes_after_its_answer_is_not_reused() {
    let (addr, accepted, _replica) = replica(After::Stray).await;
    let pool = pool(&addr);
    for i in 1..=3 {
        let resp = pool.send(get(&addr), Instant::now(), far()).await.unwrap();
        assert_eq!(read(resp).await, "hello");
        // Until the replica has written them (on loopback they are then
        // in our socket), and the runtime has had a turn to see them.
        let waited = tokio::time::Instant::now();
        while STRAYS_SENT.load(Ordering::SeqCst) < i {
            assert!(waited.elapsed() < Duration::from_secs(10), "no stray bytes");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn an_unreachable_replica_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = pool(&addr)
        .send(get(&addr), Instant::now(), far())
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err}");
}

#[tokio::test]
async fn a_replica_silent_past_the_deadline_is_a_timeout_and_its_connection_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut task = JoinSet::new();
    task.spawn(async move {
        // Accepts, reads the request, never answers.
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = socket.read(&mut buf).await;
        std::future::pending::<()>().await;
    });
    let pool = pool(&addr);
    let start = Instant::now();
    let deadline = start + Duration::from_millis(300);
    let err = pool.send(get(&addr), start, deadline).await.unwrap_err();
    assert!(matches!(err, SendError::TimedOut), "{err}");
    let waited = Instant::now() - start;
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(
        pool.shared
            .idle
            .iter()
            .all(|i| i.lock().unwrap().is_empty())
    );
}

#[tokio::test]
async fn the_request_goes_out_in_origin_form_with_a_host() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut task = JoinSet::new();
    task.spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    let pool = pool(&addr);
    let resp = pool.send(get(&addr), Instant::now(), far()).await.unwrap();
    read(resp).await;
    let head = task.join_next().await.unwrap().unwrap();
    assert!(head.starts_with("GET /v1/models HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_lowercase().contains(&format!("host: {addr}")),
        "{head}"
    );
}

/// A replica that answers one request with a chunked SSE stream: `events`
/// sent `gap` apart, then the last chunk (or, with `cut`, a close in the
/// middle of a chunk).
async fn sse_replica(events: usize, gap: Duration, cut: bool) -> (String, JoinSet<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut task = JoinSet::new();
    task.spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await.unwrap();
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        s.write_all(head.as_bytes()).await.unwrap();
        for i in 0..events {
            let event = format!("data: {i}\n\n");
            let chunk = format!("{:x}\r\n{event}\r\n", event.len());
            s.write_all(chunk.as_bytes()).await.unwrap();
            tokio::time::sleep(gap).await;
        }
        if cut {
            s.write_all(b"20\r\ndata: half").await.unwrap();
            return;
        }
        s.write_all(b"0\r\n\r\n").await.unwrap();
        // Keeps the connection open: a reused one must not be closed.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    (addr, task)
}

#[tokio::test]
async fn a_chunked_stream_arrives_event_by_event_and_holds_no_buffer_between_events() {
    let (addr, _replica) = sse_replica(3, Duration::from_millis(50), false).await;
    let pool = pool(&addr);
    let resp = pool.send(get(&addr), Instant::now(), far()).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    for i in 0..3 {
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), format!("data: {i}\n\n"));
        // Between two events nothing is buffered: the stream's memory is
        // its socket, not a read buffer.
        assert_eq!(body.held_buffer(), 0, "after event {i}");
    }
    assert!(body.frame().await.is_none());
    // Read to its end: the connection went back to the pool.
    assert_eq!(
        pool.shared.idle[crate::worker::shard()]
            .lock()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_stream_cut_in_the_middle_of_a_chunk_is_an_error() {
    let (addr, _replica) = sse_replica(1, Duration::ZERO, true).await;
    let pool = pool(&addr);
    let resp = pool.send(get(&addr), Instant::now(), far()).await.unwrap();
    let err = resp.into_body().collect().await.unwrap_err();
    assert!(matches!(err, H1Error::Incomplete), "{err}");
    assert!(
        pool.shared.idle[crate::worker::shard()]
            .lock()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_request_body_is_sent_with_its_length() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut task = JoinSet::new();
    task.spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut have = Vec::new();
        let mut buf = vec![0u8; 4096];
        while !String::from_utf8_lossy(&have).ends_with("{\"a\":1}") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed early");
            have.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await
            .unwrap();
        String::from_utf8_lossy(&have).into_owned()
    });
    let pool = pool(&addr);
    let req = Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-length", "999")
        .body(Full::new(Bytes::from_static(b"{\"a\":1}")))
        .unwrap();
    let resp = pool.send(req, Instant::now(), far()).await.unwrap();
    assert_eq!(read(resp).await, "ok");
    let sent = task.join_next().await.unwrap().unwrap();
    assert!(sent.contains("content-length: 7\r\n"), "{sent}");
    assert!(!sent.contains("999"), "{sent}");
}
