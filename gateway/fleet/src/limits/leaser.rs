//! The proxy's [`Leaser`] over Redis: one script call per miss.

use switchyard_proxy::tenant_limits::{Lease, LeaseFuture, Leaser};

use super::store::Store;

/// Leases slices from the fleet's counters.
#[derive(Debug)]
pub(super) struct RedisLeaser(pub(super) Store);

impl Leaser for RedisLeaser {
    fn lease(&self, lease: Lease) -> LeaseFuture {
        let store = self.0.clone();
        Box::pin(async move { store.lease(&lease).await })
    }
}
