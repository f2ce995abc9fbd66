//! The connection driver on an in-memory socket: what a connection holds
//! between requests, shutdown, and the size of its task.

use std::time::Duration;

use switchyard_proxy::NoObserver;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_util::task::TaskTracker;

use super::*;

fn proxy() -> Arc<Proxy> {
    let yaml = "clouds: { c: { provider: private } }\n\
                models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]\n\
                replicas: [{ id: r, model: m, cloud: c, url: \"http://127.0.0.1:1\" }]\n";
    let config = switchyard_config::load_str(yaml, &|_| None).unwrap();
    Arc::new(Proxy::new(config, Arc::new(NoObserver)).unwrap())
}

fn served(stop: &super::Stop) -> Served {
    Served {
        gw: proxy(),
        remote: "127.0.0.1:9".parse().unwrap(),
        names: None,
        max_header_bytes: 16 << 10,
        header_read_timeout: Duration::from_secs(5),
        stop: stop.clone(),
    }
}

/// Reads one whole response with a `content-length` body.
async fn response(client: &mut DuplexStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(client.read(&mut byte).await.unwrap(), 1, "head cut short");
        got.push(byte[0]);
    }
    let head = String::from_utf8(got).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    client.read_exact(&mut body).await.unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn a_keep_alive_connection_holds_no_read_buffer_between_requests() {
    let stop = super::Stop::default();
    let served = served(&stop);
    let (mut client, server) = tokio::io::duplex(64 << 10);
    // Shared with the test, which looks into it (the connection then
    // never has it to itself again, and locks it each time).
    let (conn, shared) = io::Io::new(server, BytesMut::new()).lend();
    let conn = TaskTracker::new().spawn(async move { conn::serve_h1(conn, &served).await });
    client
        .write_all(b"GET /v1/models HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .unwrap();
    let first = response(&mut client).await;
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.contains("\r\ndate: "), "{first}");
    // The next request's future goes into the box of the first's.
    client
        .write_all(b"GET /v1/nope HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .unwrap();
    let second = response(&mut client).await;
    assert!(second.starts_with("HTTP/1.1 404 "), "{second}");
    tokio::task::yield_now().await;
    assert_eq!(io::lock(&shared).buf.capacity(), 0, "no buffer while idle");
    // Shutdown closes the idle connection at once.
    stop.stop();
    tokio::time::timeout(Duration::from_secs(2), conn)
        .await
        .expect("an idle connection closes on shutdown")
        .unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_request_half_sent_at_shutdown_is_still_answered_then_closed() {
    let stop = super::Stop::default();
    let (mut client, server) = tokio::io::duplex(64 << 10);
    let conn = TaskTracker::new().spawn(serve(server, false, served(&stop)));
    client
        .write_all(b"GET /v1/models HTTP/1.1\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    stop.stop();
    client.write_all(b"host: gw\r\n\r\n").await.unwrap();
    let answer = response(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    tokio::time::timeout(Duration::from_secs(2), conn)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_connection_task_is_small() {
    let stop = super::Stop::default();
    let (_client, server) = tokio::io::duplex(64);
    let fut = serve(server, false, served(&stop));
    // hyper's HTTP/1 connection held ~16 KiB of buffers besides its
    // ~3.5 KiB task. (Unoptimized builds lay futures out larger; this
    // guards against a buffer creeping into the task's state; the request
    // futures' box, reused across requests, is a pointer in it; the
    // socket and its buffer are boxed, or shared with a body.)
    let size = std::mem::size_of_val(&fut);
    assert!(size < 2368, "the connection future is {size} bytes");
}

// Paused time: the pause below ends once every task waits, so the
// connection has read the head and half the body by then.
#[tokio::test(start_paused = true)]
async fn a_body_that_comes_after_its_head_is_read_and_the_connection_carries_on() {
    let stop = super::Stop::default();
    let served = served(&stop);
    let (mut client, server) = tokio::io::duplex(64 << 10);
    let conn = TaskTracker::new().spawn(serve(server, false, served));
    let body = br#"{"model":"nope","messages":[]}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    // The head and half the body, then the rest: the body is read from
    // the connection (shared with the handler), which is the
    // connection's own again for the next request.
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    client.write_all(&body[10..]).await.unwrap();
    let first = response(&mut client).await;
    assert!(first.starts_with("HTTP/1.1 404 "), "{first}");
    assert!(first.contains("nope"), "{first}");
    // The same body whole with its head, then a request with none.
    client.write_all(head.as_bytes()).await.unwrap();
    client.write_all(body).await.unwrap();
    let second = response(&mut client).await;
    assert!(second.starts_with("HTTP/1.1 404 "), "{second}");
    client
        .write_all(b"GET /v1/models HTTP/1.1\r\nhost: gw\r\n\r\n")
        .await
        .unwrap();
    let third = response(&mut client).await;
    assert!(third.starts_with("HTTP/1.1 200 OK\r\n"), "{third}");
    drop(client);
    tokio::time::timeout(Duration::from_secs(2), conn)
        .await
        .expect("the connection ends with its client")
        .unwrap();
}
