//! Dedicated data-plane workers (`server.workers`): one current-thread
//! runtime per thread, each accepting on a listener of its own and serving
//! its connections start to end, as nginx's, Envoy's and pingora's workers
//! do. A request's task is never moved to another core, the upstream
//! connections it reuses were opened by the same runtime
//! ([`switchyard_proxy::worker`]), and no work-stealing queue sits between
//! a socket becoming readable and the task that reads it.
//!
//! The listeners: with `SO_REUSEPORT` on the caller's socket (the gateway
//! binds that way, for zero-downtime upgrades), each further worker binds
//! a socket of its own to the same address and the kernel spreads new
//! connections over them. A listener bound without it (tests bind
//! `127.0.0.1:0`) is shared: every worker accepts from a duplicate of it.
//! Each worker drains its own backlog on shutdown
//! ([`crate::server::serve_data`]).

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::thread;

use switchyard_config::Workers;
use switchyard_proxy::Proxy;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::server;

/// How many dedicated workers `workers` asks for; `None`: serve on the
/// shared runtime.
pub fn count(workers: Workers) -> Option<usize> {
    match workers {
        Workers::Shared => None,
        Workers::Count(n) => Some(usize::from(n.get())),
        Workers::Auto => Some(thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// Starts `n` workers serving `listener` until `stop` is cancelled, and
/// returns what resolves once every one of them has drained.
pub fn start(
    listener: TcpListener,
    n: usize,
    gw: Arc<Proxy>,
    stop: CancellationToken,
) -> io::Result<impl Future<Output = io::Result<()>> + Send + 'static> {
    let listeners = listeners(listener.into_std()?, n)?;
    // Logs and spans go where the caller's go (a scoped subscriber, as
    // tests set, is per thread and not inherited by new threads).
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let mut done = Vec::with_capacity(n);
    for (index, listener) in listeners.into_iter().enumerate() {
        let (tx, rx) = oneshot::channel();
        let (gw, stop, dispatch) = (Arc::clone(&gw), stop.clone(), dispatch.clone());
        thread::Builder::new()
            .name(format!("switchyard-w{index}"))
            .spawn(move || {
                let _logs = tracing::dispatcher::set_default(&dispatch);
                let _ = tx.send(run(index, listener, gw, stop));
            })?;
        done.push(rx);
    }
    Ok(async move {
        let mut result = Ok(());
        for rx in done {
            match rx.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err(io::Error::other("a data-plane worker panicked")),
            }
        }
        result
    })
}

/// One worker's thread: its runtime, serving its listener to the end.
fn run(
    index: usize,
    listener: StdListener,
    gw: Arc<Proxy>,
    stop: CancellationToken,
) -> io::Result<()> {
    switchyard_proxy::worker::enter(index);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        server::serve_data(listener, gw, stop.cancelled_owned()).await
    })
}

/// `n` listeners for the address `first` listens on: `first` itself, then
/// sockets of their own in its `SO_REUSEPORT` group, or duplicates of it.
fn listeners(first: StdListener, n: usize) -> io::Result<Vec<StdListener>> {
    first.set_nonblocking(true)?;
    let reuse_port = socket2::SockRef::from(&first).reuse_port().unwrap_or(false);
    let addr = first.local_addr()?;
    let mut all = Vec::with_capacity(n);
    for _ in 1..n {
        all.push(if reuse_port {
            reuse_port_listener(addr)?
        } else {
            first.try_clone()?
        });
    }
    all.insert(0, first);
    Ok(all)
}

/// A listener of its own on `addr`, in the `SO_REUSEPORT` group there.
fn reuse_port_listener(addr: SocketAddr) -> io::Result<StdListener> {
    use socket2::{Domain, Socket, Type};
    let named = |e: io::Error| io::Error::new(e.kind(), format!("worker listener on {addr}: {e}"));
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(named)?;
    socket.set_reuse_address(true).map_err(named)?;
    socket.set_reuse_port(true).map_err(named)?;
    socket.set_nonblocking(true).map_err(named)?;
    socket.bind(&addr.into()).map_err(named)?;
    socket.listen(1024).map_err(named)?;
    Ok(socket.into())
}
