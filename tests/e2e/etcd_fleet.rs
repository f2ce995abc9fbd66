//! The fleet in etcd: instances in-process follow the document and control
//! keys under a prefix of a real etcd (one per test, on its own ports),
//! confirm revisions in their status keys, refuse bad documents visibly,
//! survive compaction and etcd's death without losing live state.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use switchyard_fake_replica::{FakeReplica, ReplicaConfig};
use switchyard_fleet::etcd::{FleetClient, FleetOptions};
use switchyard_gateway::Running;
use switchyard_tests::etcd::EtcdServer;
use tokio::net::TcpListener;

use crate::CONFIG;

mod bench;
mod follow;
mod leader;
mod resilience;
mod rollout;

pub(crate) const PREFIX: &str = "/sy-test";

/// Fails the test after `s` seconds (etcd start, leases: longer than `within`).
pub(crate) async fn bounded<T>(s: u64, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(s), fut)
        .await
        .expect("fleet test timed out")
}

pub(crate) async fn replicas() -> HashMap<String, FakeReplica> {
    let specs: Vec<(&str, ReplicaConfig)> = ["a", "b", "c", "k"]
        .iter()
        .map(|n| (*n, ReplicaConfig::default()))
        .collect();
    switchyard_tests::replicas(&specs).await
}

/// `CONFIG` with the replicas' URLs written in (instances in one process
/// share one environment).
pub(crate) fn resolved(replicas: &HashMap<String, FakeReplica>) -> String {
    let mut text = CONFIG.to_owned();
    for (name, r) in replicas {
        text = text.replace(&format!("${{{}_URL}}", name.to_uppercase()), &r.url());
    }
    text
}

fn options(endpoint: &str, id: &str, ttl_s: u64) -> FleetOptions {
    FleetOptions {
        endpoint: endpoint.to_owned(),
        prefix: PREFIX.to_owned(),
        instance_id: id.to_owned(),
        lease_ttl: Duration::from_secs(ttl_s),
    }
}

pub(crate) async fn instance(endpoint: &str, id: &str, ttl_s: u64) -> Running {
    let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    switchyard_gateway::start_fleet_on(options(endpoint, id, ttl_s), data, admin)
        .await
        .unwrap()
}

/// etcd with `text` as the fleet's document, and a client of it.
pub(crate) async fn seeded(text: &str) -> (EtcdServer, FleetClient) {
    let etcd = EtcdServer::start().await;
    let client = FleetClient::connect(&etcd.endpoint(), PREFIX)
        .await
        .unwrap();
    client.put_config(text, 0).await.unwrap();
    (etcd, client)
}

pub(crate) async fn live(client: &FleetClient, n: usize) {
    loop {
        if client.instances().await.map(|l| l.len()).unwrap_or(0) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn weight(gw: &Running, group: &str, version: &str) -> u32 {
    let snap = gw.proxy().snapshot();
    let m = snap.config.model(group).unwrap();
    m.versions
        .iter()
        .find(|v| v.name == version)
        .unwrap()
        .weight
}
