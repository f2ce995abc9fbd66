//! What the admin API reads and drives.

use std::sync::{Arc, OnceLock};

use switchyard_control::Controller;
use switchyard_control::keys::KeyStore;
use switchyard_fleet::etcd::Fleet;
use switchyard_proxy::Proxy;

use crate::observer::GatewayObserver;

/// The admin API's state: the data plane, its controller and its observer.
pub struct Ops {
    /// The data plane.
    pub proxy: Arc<Proxy>,
    /// The control plane.
    pub control: Arc<Controller>,
    /// Metrics, costs and rollout figures.
    pub observer: GatewayObserver,
    /// API keys created at run time.
    pub keys: Arc<KeyStore>,
    /// The fleet this instance belongs to (etcd mode); set once, after
    /// start. With it, the changing endpoints write to etcd.
    pub fleet: OnceLock<Arc<Fleet>>,
}

impl Ops {
    /// The fleet, in etcd mode.
    pub fn fleet(&self) -> Option<&Arc<Fleet>> {
        self.fleet.get()
    }

    /// `GET /metrics`: every family, counted and scrape-time.
    pub fn render_metrics(&self) -> String {
        crate::metrics::render(
            &self.proxy,
            &self.control,
            self.observer.recorder(),
            self.observer.costs(),
            self.fleet().map(|f| f.status()).as_ref(),
        )
    }
}
