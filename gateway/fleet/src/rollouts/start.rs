//! Starting the fleet's rollouts in a gateway: the figure publisher on
//! every instance, the leader's campaign on every instance (one wins).

use std::sync::Arc;

use etcd_client::Client;
use switchyard_config::Config;
use switchyard_proxy::Proxy;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::figures::Counters;
use super::publish;
use crate::leader;

/// Spawns on `tasks`, until `stop`: the publication of `counters` (the
/// ops recorder's `fleet_figures`, following `proxy`'s serving config) and
/// the rollout leader's campaign on `document` (the config document as
/// read from etcd, before weight overrides). In etcd mode this replaces
/// `switchyard_control::driver::run`: only the leader decides.
#[allow(clippy::too_many_arguments)]
pub fn start<F>(
    tasks: &TaskTracker,
    client: Client,
    prefix: &str,
    instance_id: &str,
    proxy: Arc<Proxy>,
    counters: Arc<Counters>,
    document: F,
    stop: CancellationToken,
) where
    F: Fn() -> Arc<Config> + Send + Sync + 'static,
{
    tasks.spawn(publish::run(
        client.clone(),
        prefix.to_owned(),
        instance_id.to_owned(),
        counters,
        move |c| publish::follow(c, &proxy.snapshot()),
        stop.clone(),
    ));
    tasks.spawn(leader::run(
        client,
        prefix.to_owned(),
        instance_id.to_owned(),
        leader::TTL_S,
        document,
        stop,
    ));
}
