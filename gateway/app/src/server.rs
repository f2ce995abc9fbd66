//! The data-plane listener: the accept loop, per-connection limits (the
//! caps on open connections, a deadline for the first byte, header size
//! and time limits), our own HTTP/1 or hyper's HTTP/2 ([`crate::http1`]),
//! TLS when `server.tls` is set ([`crate::tls`]), and the orderly shutdown
//! that lets in-flight requests and streams finish.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use switchyard_proxy::Proxy;
use switchyard_proxy::client_cert::ClientCertNames;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

use crate::http1::{self, Served};
use crate::silent::FirstByte;
use crate::tls::Acceptors;

/// Binds `addr` for serving. Listeners use `SO_REUSEPORT` (on Unix), so
/// a new gateway process can bind the same address while the old one
/// drains: the zero-downtime upgrade (README, "Upgrading without
/// downtime"). That handover must be asked for: unless `takeover` is set,
/// an address another process already listens on is refused with a clear
/// error, instead of two gateways silently sharing its traffic.
pub async fn bind(addr: SocketAddr, field: &str, takeover: bool) -> io::Result<TcpListener> {
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr} ({field}): {e}"));
    if !takeover && addr.port() != 0 {
        in_use_check(addr).map_err(|e| match e.kind() {
            io::ErrorKind::AddrInUse => io::Error::new(
                e.kind(),
                format!(
                    "cannot listen on {addr} ({field}): another process listens there; \
                     to take it over for a zero-downtime upgrade, start with --takeover"
                ),
            ),
            _ => named(e),
        })?;
    }
    let socket = new_socket(addr).map_err(named)?;
    socket.set_reuseaddr(true).map_err(named)?;
    #[cfg(unix)]
    socket.set_reuseport(true).map_err(named)?;
    socket.bind(addr).map_err(named)?;
    socket.listen(1024).map_err(named)
}

fn new_socket(addr: SocketAddr) -> io::Result<tokio::net::TcpSocket> {
    if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
}

/// Binds `addr` without `SO_REUSEPORT` and lets it go: that fails with
/// `AddrInUse` exactly when some process listens there (ours set
/// `SO_REUSEPORT`, which a socket without it cannot share).
fn in_use_check(addr: SocketAddr) -> io::Result<()> {
    let probe = new_socket(addr)?;
    probe.set_reuseaddr(true)?;
    probe.bind(addr)
}

/// How long streams cut at the end of the grace period get to write
/// their error event before their connections are dropped.
const STREAM_CLOSE: Duration = Duration::from_millis(500);

/// How long just-accepted connections get to send their first request
/// before a shutdown treats them as idle.
const FIRST_REQUEST_SETTLE: Duration = Duration::from_millis(250);

/// The data-plane accept loop. Returns after `shutdown` resolves and every
/// connection has drained, or the grace period has passed.
pub async fn serve_data(
    listener: TcpListener,
    gw: Arc<Proxy>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    // Every connection watches this: on shutdown, idle ones close at once
    // and busy ones finish what is in flight first.
    let stop = http1::Stop::default();
    let connections = TaskTracker::new();
    // Connection-level limits are read from the serving snapshot for every
    // new connection: a reload that changes them applies to connections
    // accepted after it (open ones keep the limits they started with).
    let mut acceptors = Acceptors::default();
    let mut serve = |stream: tokio::net::TcpStream, remote: SocketAddr| {
        let snap = gw.snapshot();
        let tls = match acceptors.for_config(snap.config.server.tls.as_ref()) {
            Ok(tls) => tls,
            Err(e) => {
                // Never plaintext in place of TLS: the connection is closed.
                tracing::error!(error = %e, "cannot build the TLS acceptor; connection closed");
                return;
            }
        };
        let limits = &snap.config.server.limits;
        let conns = gw.connections();
        let permit = match conns.admit(
            remote.ip(),
            limits.max_connections,
            limits.max_connections_per_client,
        ) {
            Ok(permit) => permit,
            Err(why) => {
                // Closed at once (dropped); counted for the metrics.
                tracing::debug!(%remote, ?why, "connection over the cap closed");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = FirstByte::new(stream, limits.header_read_timeout, Arc::clone(conns));
        let served = Served {
            gw: Arc::clone(&gw),
            remote,
            names: None,
            max_header_bytes: limits.max_header_bytes,
            header_read_timeout: limits.header_read_timeout,
            stop: stop.clone(),
        };
        let Some(acceptor) = tls else {
            connections.spawn(async move {
                let _permit = permit;
                http1::serve(stream, false, served).await;
            });
            return;
        };
        // The handshake runs in the connection's task, within the time a
        // client has for its request head.
        connections.spawn(async move {
            let _permit = permit;
            let handshake = served.header_read_timeout;
            let stream = match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, %remote, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let session = stream.get_ref().1;
            // A verified client certificate's names ride in every request
            // of the connection (the data plane maps them to a tenant).
            let names = session
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| ClientCertNames::of(leaf));
            let alpn_h2 = session.alpn_protocol() == Some(b"h2");
            http1::serve(stream, alpn_h2, Served { names, ..served }).await;
        });
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => serve(stream, remote),
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    // Connections the kernel already completed into our backlog would be
    // reset by closing the listener: accept and serve them first (straight
    // `accept(2)` calls until EAGAIN, not the reactor's possibly stale view).
    let mut backlog = 0usize;
    if let Ok(std_listener) = listener.into_std() {
        while let Ok((stream, remote)) = std_listener.accept() {
            let adopted = stream
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpStream::from_std(stream));
            match adopted {
                Ok(stream) => {
                    backlog += 1;
                    serve(stream, remote);
                }
                Err(e) => tracing::debug!(error = %e, "cannot adopt a backlogged connection"),
            }
        }
    }
    let grace = gw.snapshot().config.server.limits.shutdown_grace;
    tracing::info!(
        grace_ms = grace.as_millis() as u64,
        backlog,
        "listener closed; draining connections"
    );
    // Shutdown closes HTTP/1 connections that are idle, and a connection
    // accepted a moment ago is idle until its request arrives: give
    // just-accepted clients a moment to send it, or they would see a
    // reset on a request they had every right to send.
    tokio::time::sleep(FIRST_REQUEST_SETTLE).await;
    stop.stop();
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; remaining connections are closed");
        // Streams still running end with an error event naming the
        // shutdown, not a bare cut: give them a moment to write it.
        gw.close_streams();
        let _ = tokio::time::timeout(STREAM_CLOSE, connections.wait()).await;
    }
    Ok(())
}
