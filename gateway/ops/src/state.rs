//! What the admin API reads and drives.

use std::sync::Arc;

use switchyard_control::Controller;
use switchyard_control::keys::KeyStore;
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
}

impl Ops {
    /// `GET /metrics`: every family, counted and scrape-time.
    pub fn render_metrics(&self) -> String {
        crate::metrics::render(
            &self.proxy,
            &self.control,
            self.observer.recorder(),
            self.observer.costs(),
        )
    }
}
