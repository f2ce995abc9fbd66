//! The data-plane listener: the accept loop, per-connection limits (the
//! caps on open connections, a deadline for the first byte, hyper's header
//! limits), TLS when `server.tls` is set ([`crate::tls`]), and the orderly
//! shutdown that lets in-flight requests and streams finish.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use switchyard_config::Limits;
use switchyard_proxy::Proxy;
use switchyard_proxy::client_cert::ClientCertNames;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

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
    let graceful = GracefulShutdown::new();
    let connections = TaskTracker::new();
    // Connection-level limits are read from the serving snapshot for every
    // new connection: a reload that changes them applies to connections
    // accepted after it (open ones keep the limits they started with).
    let mut conn_limits = ConnLimits::of(&gw.snapshot().config.server.limits);
    let mut builder = conn_limits.builder();
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
        let now = ConnLimits::of(&snap.config.server.limits);
        if now != conn_limits {
            conn_limits = now;
            builder = conn_limits.builder();
        }
        let conns = gw.connections();
        let permit = match conns.admit(
            remote.ip(),
            conn_limits.max_connections,
            conn_limits.max_connections_per_client,
        ) {
            Ok(permit) => permit,
            Err(why) => {
                // Closed at once (dropped); counted for the metrics.
                tracing::debug!(%remote, ?why, "connection over the cap closed");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = FirstByte::new(stream, conn_limits.header_read_timeout, Arc::clone(conns));
        let gw = Arc::clone(&gw);
        let watcher = graceful.watcher();
        let Some(acceptor) = tls else {
            let svc = service_fn(move |req| {
                let gw = Arc::clone(&gw);
                async move { Ok::<_, Infallible>(gw.handle(req, remote).await) }
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), svc)
                .into_owned();
            connections.spawn(async move {
                let _permit = permit;
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(error = %e, %remote, "connection ended with an error");
                }
            });
            return;
        };
        // The handshake runs in the connection's task, within the time a
        // client has for its request head.
        let (builder, handshake) = (builder.clone(), conn_limits.header_read_timeout);
        connections.spawn(async move {
            let _permit = permit;
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
            // A verified client certificate's names ride in every request
            // of the connection (the data plane maps them to a tenant).
            let names = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| ClientCertNames::of(leaf));
            let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let gw = Arc::clone(&gw);
                if let Some(names) = &names {
                    req.extensions_mut().insert(names.clone());
                }
                async move { Ok::<_, Infallible>(gw.handle(req, remote).await) }
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), svc)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
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
    // Graceful shutdown closes HTTP/1 connections that are idle, and a
    // connection accepted a moment ago is idle until its request arrives:
    // give just-accepted clients a moment to send it, or they would see a
    // reset on a request they had every right to send.
    tokio::time::sleep(FIRST_REQUEST_SETTLE).await;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; remaining connections are closed");
        // Streams still running end with an error event naming the
        // shutdown, not a bare cut: give them a moment to write it.
        gw.close_streams();
        connections.close();
        let _ = tokio::time::timeout(STREAM_CLOSE, connections.wait()).await;
    }
    connections.close();
    Ok(())
}

/// The limits a connection is served with, taken from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConnLimits {
    header_read_timeout: Duration,
    max_header_bytes: usize,
    max_connections: usize,
    max_connections_per_client: usize,
}

impl ConnLimits {
    fn of(limits: &Limits) -> Self {
        Self {
            header_read_timeout: limits.header_read_timeout,
            max_header_bytes: limits.max_header_bytes,
            max_connections: limits.max_connections,
            max_connections_per_client: limits.max_connections_per_client,
        }
    }

    /// An HTTP/1 + h2c connection builder with these limits.
    fn builder(&self) -> auto::Builder<TokioExecutor> {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .max_buf_size(self.max_header_bytes)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(self.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(Duration::from_secs(30)));
        builder
    }
}
