//! Listeners: accept loops for the data plane and the admin API, and the
//! orderly shutdown that lets in-flight requests and streams finish.

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
use switchyard_config::Config;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::state::Gateway;

/// A running gateway: both listeners, and the means to stop them.
pub struct Running {
    /// Where the data plane listens.
    pub data_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    gateway: Arc<Gateway>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<io::Result<()>>>,
    /// Control-plane loops (rollouts, health probes): stopped when the
    /// listeners have finished.
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// The shared state (for reloads and in-process inspection).
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Begins shutdown without waiting: readiness turns false at once; the
    /// listeners keep accepting for `limits.shutdown_overlap_ms` (so load
    /// balancers, or the next process during an upgrade, take over first),
    /// then stop; in-flight requests keep going.
    pub fn begin_shutdown(&self) {
        self.gateway.set_ready(false);
        let overlap = self
            .gateway
            .snapshot()
            .config
            .server
            .limits
            .shutdown_overlap;
        if overlap.is_zero() {
            let _ = self.stop.send(true);
        } else {
            tracing::info!(
                overlap_ms = overlap.as_millis() as u64,
                "not ready; still accepting during the overlap"
            );
            let stop = self.stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(overlap).await;
                let _ = stop.send(true);
            });
        }
    }

    /// Shuts down and waits until every connection has finished or the
    /// grace period (`server.limits.shutdown_grace_ms`) has passed.
    pub async fn shutdown(self) -> io::Result<()> {
        self.begin_shutdown();
        self.wait().await
    }

    /// Waits for the listeners to finish (after [`Running::begin_shutdown`]).
    pub async fn wait(self) -> io::Result<()> {
        for t in self.tasks {
            t.await.map_err(io::Error::other)??;
        }
        for t in self.background {
            t.abort();
        }
        Ok(())
    }
}

/// Binds the config's two addresses and starts serving.
pub async fn start(config: Config) -> io::Result<Running> {
    let data = bind(config.server.listen, "server.listen").await?;
    let admin = bind(config.server.admin_listen, "server.admin_listen").await?;
    start_on(config, data, admin)
}

/// Binds with `SO_REUSEPORT` (on Unix), so a new gateway process can bind
/// the same address while the old one drains: the zero-downtime upgrade
/// (see README, "Upgrading without downtime"). Two unrelated processes
/// cannot share the port by accident: Linux allows it only for the same user.
async fn bind(addr: SocketAddr, field: &str) -> io::Result<TcpListener> {
    let named =
        |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr} ({field}): {e}"));
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(named)?;
    socket.set_reuseaddr(true).map_err(named)?;
    #[cfg(unix)]
    socket.set_reuseport(true).map_err(named)?;
    socket.bind(addr).map_err(named)?;
    socket.listen(1024).map_err(named)
}

/// Serves on listeners the caller bound (tests bind `127.0.0.1:0`).
pub fn start_on(config: Config, data: TcpListener, admin: TcpListener) -> io::Result<Running> {
    let data_addr = data.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let gateway = Gateway::new(config);
    let (stop, stopped) = watch::channel(false);
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let data_task = tokio::spawn(serve_data(
        data,
        Arc::clone(&gateway),
        until_stopped(stopped.clone()),
    ));
    let admin_router = crate::admin::router(Arc::clone(&gateway));
    let _probes = crate::probe::spawn(&gateway, until_stopped(stopped.clone())); // ends on stop
    let admin_stop = until_stopped(stopped);
    let admin_task = tokio::spawn(async move {
        axum::serve(admin, admin_router)
            .with_graceful_shutdown(admin_stop)
            .await
    });
    let background = vec![
        tokio::spawn(crate::rollout::run(Arc::clone(&gateway))),
        tokio::spawn(crate::health_events::run(Arc::clone(&gateway))),
    ];
    gateway.set_ready(true);
    tracing::info!(%data_addr, %admin_addr, "switchyard serving");
    Ok(Running {
        data_addr,
        admin_addr,
        gateway,
        stop,
        tasks: vec![data_task, admin_task],
        background,
    })
}

/// How long just-accepted connections get to send their first request
/// before a shutdown treats them as idle.
const FIRST_REQUEST_SETTLE: Duration = Duration::from_millis(250);

/// The data-plane accept loop. Returns after `shutdown` resolves and every
/// connection has drained, or the grace period has passed.
pub async fn serve_data(
    listener: TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = gw.snapshot().config.server.limits.clone();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    let serve = |stream: tokio::net::TcpStream, remote: SocketAddr| {
        let _ = stream.set_nodelay(true);
        let gw = Arc::clone(&gw);
        let svc = service_fn(move |req| {
            let gw = Arc::clone(&gw);
            async move { Ok::<_, Infallible>(crate::proxy::handle(&gw, req, remote).await) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), svc)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
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
    tracing::info!(
        grace_ms = limits.shutdown_grace.as_millis() as u64,
        backlog,
        "listener closed; draining connections"
    );
    // Graceful shutdown closes HTTP/1 connections that are idle, and a
    // connection accepted a moment ago is idle until its request arrives:
    // give just-accepted clients a moment to send it, or they would see a
    // reset on a request they had every right to send.
    tokio::time::sleep(FIRST_REQUEST_SETTLE).await;
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; remaining connections are closed");
    }
    Ok(())
}
