//! The `switchyard` binary's crate: builds a gateway from a config and runs
//! it. It wires the layers below together and owns every task they run.
//!
//! - [`App`]: the data plane ([`switchyard_proxy::Proxy`]), its observer
//!   ([`switchyard_ops::GatewayObserver`]) and its controller
//!   ([`switchyard_control::Controller`]), built from one config.
//! - [`start`] / [`start_on`]: bind (or take) the two listeners and serve;
//!   [`Running`]: the handle that reloads, inspects and stops it.
//! - [`server`]: the data-plane accept loop, connection limits (re-read for
//!   every new connection, so a reload changes them), graceful shutdown.
//! - [`admin_client`]: the CLI's client of the admin API (`switchyard keys`).
//! - [`signal`]: which process signals mean "stop"; [`silent`]: the
//!   deadline for a connection's first byte.
//!
//! Every background task (listeners, connections' drain, rollout loop,
//! probes, health events, file watch, SIGHUP) runs on one
//! [`TaskTracker`] and ends with one [`CancellationToken`]; shutdown waits
//! for them all.

pub mod admin_client;
pub mod http1;
pub mod server;
pub mod signal;
pub mod silent;
pub mod tls;
mod workers;

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use switchyard_config::Config;
use switchyard_control::Controller;
use switchyard_control::keys::{KeyError, KeyStore};
use switchyard_control::reload::Source;
use switchyard_control::watch::FileWatch;
use switchyard_fleet::etcd::{Fleet, FleetOptions, Initial};
use switchyard_ops::{GatewayObserver, Ops};
use switchyard_proxy::{PrepareError, Proxy};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A gateway built from one config: the three layers, wired.
pub struct App {
    /// The data plane.
    pub proxy: Arc<Proxy>,
    /// The control plane.
    pub control: Arc<Controller>,
    /// What the admin API serves.
    pub ops: Arc<Ops>,
    tasks: TaskTracker,
}

impl App {
    /// Builds the layers for `config` (not serving yet).
    pub fn new(config: Config) -> Result<Self, PrepareError> {
        let tasks = TaskTracker::new();
        let rollouts = Arc::default();
        let observer = GatewayObserver::new(Arc::clone(&rollouts));
        let proxy = Arc::new(Proxy::new(config, Arc::new(observer.clone()))?);
        let control = Arc::new(Controller::new(Arc::clone(&proxy), rollouts, tasks.clone()));
        let ops = Arc::new(Ops {
            proxy: Arc::clone(&proxy),
            control: Arc::clone(&control),
            observer,
            keys: Arc::new(KeyStore::new(Arc::clone(&proxy))),
            fleet: Default::default(),
        });
        Ok(Self {
            proxy,
            control,
            ops,
            tasks,
        })
    }
}

/// A running gateway: both listeners, and the means to stop them.
pub struct Running {
    /// Where the data plane listens.
    pub data_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    app: App,
    /// Stops the data listener (after the shutdown overlap).
    stop_listeners: CancellationToken,
    /// Stops the admin listener, once the data plane has drained: `/readyz`
    /// answers 503 all through the drain instead of refusing connections.
    stop_admin: CancellationToken,
    admin: TaskTracker,
    /// Stops the background loops once the listeners have drained.
    stop_background: CancellationToken,
    listeners: TaskTracker,
    /// Dedicated workers run on threads of their own, which outlive a
    /// `Running` dropped without a shutdown: dropping it stops them.
    _workers_stop: tokio_util::sync::DropGuard,
}

impl Running {
    /// The data plane (for in-process inspection).
    pub fn proxy(&self) -> &Arc<Proxy> {
        &self.app.proxy
    }

    /// The control plane (reloads, weights).
    pub fn control(&self) -> &Arc<Controller> {
        &self.app.control
    }

    /// Reads the config from `path` on SIGHUP and `POST /admin/reload`.
    pub fn set_source(&self, path: &Path) {
        self.app.control.set_source(Source::file(path));
    }

    /// Sets `path` as the config source and reloads whenever it changes,
    /// until the guard is dropped or the gateway stops.
    pub fn watch_file(&self, path: &Path) -> notify::Result<FileWatch> {
        self.set_source(path);
        switchyard_control::watch::watch_file(
            Arc::clone(&self.app.control),
            path,
            &self.app.tasks,
            &self.stop_background,
        )
    }

    /// Loads the runtime API keys kept in `path` and keeps every change
    /// to them there (`switchyard run` uses `<config>.keys.json`). Without
    /// it, `/admin/keys` refuses to create keys (they would not survive a
    /// restart). Returns how many records the file held.
    pub fn open_keys(&self, path: &Path) -> Result<usize, KeyError> {
        self.app
            .ops
            .keys
            .open(path, switchyard_control::events::wall_ms())
    }

    /// Joins the fleet in etcd (`switchyard run --etcd`): applies its
    /// control state, then follows it, publishes this instance's status,
    /// and makes the admin API's changes fleet-wide. `initial` is what
    /// this gateway was started from.
    pub fn join_fleet(&self, initial: Initial, options: FleetOptions) -> Arc<Fleet> {
        let fleet = Fleet::start(
            initial,
            options,
            Arc::clone(&self.app.control),
            Arc::clone(&self.app.ops.keys),
            (self.data_addr.to_string(), self.admin_addr.to_string()),
            &self.app.tasks,
            self.stop_background.clone(),
        );
        let _ = self.app.ops.fleet.set(Arc::clone(&fleet));
        fleet
    }

    /// The fleet, in etcd mode.
    pub fn fleet(&self) -> Option<&Arc<Fleet>> {
        self.app.ops.fleet()
    }

    /// Reloads on SIGHUP until the gateway stops.
    #[cfg(unix)]
    pub fn reload_on_sighup(&self) -> io::Result<()> {
        switchyard_control::watch::reload_on_sighup(
            Arc::clone(&self.app.control),
            &self.app.tasks,
            self.stop_background.clone(),
        )
    }

    /// Begins shutdown without waiting: readiness turns false at once; the
    /// listeners keep accepting for `limits.shutdown_overlap_ms` (so load
    /// balancers, or the next process during an upgrade, take over first),
    /// then stop; in-flight requests keep going.
    pub fn begin_shutdown(&self) {
        self.app.proxy.set_ready(false);
        let overlap = self
            .app
            .proxy
            .snapshot()
            .config
            .server
            .limits
            .shutdown_overlap;
        if overlap.is_zero() {
            self.stop_listeners.cancel();
            return;
        }
        tracing::info!(
            overlap_ms = overlap.as_millis() as u64,
            "not ready; still accepting during the overlap"
        );
        let stop = self.stop_listeners.clone();
        self.app.tasks.spawn(async move {
            tokio::time::sleep(overlap).await;
            stop.cancel();
        });
    }

    /// Shuts down and waits until every connection has finished or the
    /// grace period (`server.limits.shutdown_grace_ms`) has passed.
    pub async fn shutdown(self) -> io::Result<()> {
        self.begin_shutdown();
        self.wait().await
    }

    /// Waits for the listeners to finish (after [`Running::begin_shutdown`]),
    /// then stops every background task and waits for it.
    pub async fn wait(self) -> io::Result<()> {
        self.listeners.close();
        self.listeners.wait().await;
        self.stop_admin.cancel();
        self.admin.close();
        self.admin.wait().await;
        self.stop_background.cancel();
        self.app.tasks.close();
        self.app.tasks.wait().await;
        Ok(())
    }
}

/// Binds the config's two addresses and starts serving; an address
/// another process listens on is refused (see [`start_takeover`]).
pub async fn start(config: Config) -> io::Result<Running> {
    start_bound(config, false).await
}

/// Like [`start`], but shares addresses another gateway listens on: the
/// zero-downtime upgrade (`switchyard run --takeover`), after which the
/// old process is sent SIGTERM.
pub async fn start_takeover(config: Config) -> io::Result<Running> {
    start_bound(config, true).await
}

async fn start_bound(config: Config, takeover: bool) -> io::Result<Running> {
    let data = server::bind(config.server.listen, "server.listen", takeover).await?;
    let admin = server::bind(config.server.admin_listen, "server.admin_listen", takeover).await?;
    start_on(config, data, admin)
}

/// Serves the fleet's config from etcd on listeners the caller bound and
/// joins the fleet (tests bind `127.0.0.1:0`). etcd unreachable, or no
/// valid document under the prefix, is an error: there is nothing to serve.
pub async fn start_fleet_on(
    options: FleetOptions,
    data: TcpListener,
    admin: TcpListener,
) -> anyhow::Result<Running> {
    let initial = switchyard_fleet::etcd::load(&options).await?;
    let running = serve(initial.config.clone(), data, admin, Rollouts::Fleet)?;
    let fleet = running.join_fleet(initial, options);
    // One rollout leader per fleet instead of this process's driver: it
    // plans from the document in etcd, before weight overrides.
    let control = Arc::clone(&running.app.control);
    switchyard_fleet::rollouts::start(
        &running.app.tasks,
        fleet.client().raw(),
        &fleet.options().prefix,
        &fleet.options().instance_id,
        Arc::clone(&running.app.proxy),
        Arc::clone(&running.app.ops.observer.recorder().fleet_figures),
        move || Arc::new(control.state().base().clone()),
        running.stop_background.clone(),
    );
    Ok(running)
}

/// Who runs canary rollouts: this process, or the fleet's leader.
#[derive(PartialEq)]
enum Rollouts {
    Local,
    Fleet,
}

/// Serves on listeners the caller bound (tests bind `127.0.0.1:0`).
pub fn start_on(config: Config, data: TcpListener, admin: TcpListener) -> io::Result<Running> {
    serve(config, data, admin, Rollouts::Local)
}

fn serve(
    config: Config,
    data: TcpListener,
    admin: TcpListener,
    rollouts: Rollouts,
) -> io::Result<Running> {
    let data_addr = data.local_addr()?;
    let admin_addr = admin.local_addr()?;
    let global_limits = config.global_limits.clone();
    let app = App::new(config).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stop_listeners = CancellationToken::new();
    let stop_admin = CancellationToken::new();
    let stop_background = CancellationToken::new();
    let listeners = TaskTracker::new();
    let admin_tasks = TaskTracker::new();
    match workers::count(app.proxy.snapshot().config.server.workers) {
        Some(n) => {
            let served = workers::start(data, n, Arc::clone(&app.proxy), stop_listeners.clone())?;
            listeners.spawn(served);
        }
        None => {
            listeners.spawn(server::serve_data(
                data,
                Arc::clone(&app.proxy),
                stop_listeners.clone().cancelled_owned(),
            ));
        }
    }
    let admin_router = switchyard_ops::admin::router(Arc::clone(&app.ops));
    let admin_stop = stop_admin.clone().cancelled_owned();
    let admin = silent::AdminListener::new(admin, Arc::clone(&app.proxy));
    admin_tasks.spawn(async move {
        if let Err(e) = axum::serve(admin, admin_router)
            .with_graceful_shutdown(admin_stop)
            .await
        {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    if let Some(g) = &global_limits {
        // Tenants' limits shared through Redis: its sync task.
        switchyard_fleet::limits::start(
            g,
            Arc::clone(&app.proxy),
            &app.tasks,
            stop_background.clone(),
        )
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    }
    let control = &app.control;
    app.tasks.spawn(switchyard_control::probe::run(
        Arc::clone(control),
        stop_background.clone().cancelled_owned(),
    ));
    if rollouts == Rollouts::Local {
        app.tasks.spawn(switchyard_control::driver::run(
            Arc::clone(control),
            stop_background.clone(),
        ));
    }
    app.tasks.spawn(switchyard_control::engine::run(
        Arc::clone(control),
        stop_background.clone(),
    ));
    app.tasks.spawn(switchyard_control::credentials::run(
        Arc::clone(control),
        stop_background.clone(),
    ));
    app.tasks.spawn(switchyard_control::discovery::run(
        Arc::clone(control),
        stop_background.clone(),
    ));
    app.tasks
        .spawn(switchyard_control::discovery::kubernetes::run(
            Arc::clone(control),
            stop_background.clone(),
        ));
    app.tasks.spawn(switchyard_control::discovery::sweep(
        Arc::clone(control),
        stop_background.clone(),
    ));
    app.tasks.spawn(switchyard_control::jwks::run(
        Arc::clone(control),
        stop_background.clone(),
    ));
    app.tasks.spawn(switchyard_control::health_events::run(
        Arc::clone(control),
        stop_background.clone(),
    ));
    app.proxy.set_ready(true);
    tracing::info!(%data_addr, %admin_addr, "switchyard serving");
    Ok(Running {
        data_addr,
        admin_addr,
        app,
        _workers_stop: stop_listeners.clone().drop_guard(),
        stop_listeners,
        stop_admin,
        admin: admin_tasks,
        stop_background,
        listeners,
    })
}
