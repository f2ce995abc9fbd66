//! Kubernetes EndpointSlice discovery: per template, list the Service's
//! slices (label `kubernetes.io/service-name`), publish the ready
//! endpoints, then watch from the list's resourceVersion; when the watch
//! ends or fails, list again. Every reconnect re-lists and the new list
//! replaces the member set at once, so a pod deleted while the watch was
//! down is gone (vllm production-stack #1091). kube's `runtime::watcher`
//! resumes a dropped watch from its last resourceVersion and re-lists only
//! on `410 Gone`, so this loop drives `Api::list` / `Api::watch` itself.
//!
//! A failure keeps the last members serving, shows the error in
//! `/admin/discovery`, and retries after a growing delay (0.5 s .. 30 s).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use switchyard_config::{DiscoverySource, KubePort};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::slices::{Step, Tracker};
use crate::reload::Controller;

/// Server-side watch timeout: the watch ends (and the loop re-lists) at
/// least this often even when nothing fails.
const WATCH_TIMEOUT_S: u32 = 290;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// One Kubernetes template as the loop watches it.
#[derive(Clone, PartialEq, Debug)]
pub struct Spec {
    /// Namespace of the Service.
    pub namespace: String,
    /// Service name.
    pub service: String,
    /// Port members get.
    pub port: KubePort,
    /// Kubeconfig file, if not inferred.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// As `/admin/discovery` names it.
    pub source: String,
}

fn specs(gw: &Controller) -> HashMap<String, Spec> {
    let snap = gw.proxy().snapshot();
    snap.config
        .templates
        .iter()
        .filter_map(|t| match &t.discovery.as_ref()?.source {
            s @ DiscoverySource::Kubernetes {
                namespace,
                service,
                port,
                kubeconfig,
            } => Some((
                t.id.clone(),
                Spec {
                    namespace: namespace.clone(),
                    service: service.clone(),
                    port: port.clone(),
                    kubeconfig: kubeconfig.clone(),
                    source: s.name(),
                },
            )),
            _ => None,
        })
        .collect()
}

/// Watches every Kubernetes template of the serving config until `stop`
/// is cancelled; a template added, changed or removed by a reload starts,
/// restarts or stops its watch within [`super::LOOK_AGAIN`].
pub async fn run(gw: Arc<Controller>, stop: CancellationToken) {
    let mut watching: HashMap<String, (Spec, CancellationToken)> = HashMap::new();
    let mut tasks = JoinSet::new();
    loop {
        let current = specs(&gw);
        watching.retain(|id, (spec, token)| {
            let keep = current.get(id) == Some(spec);
            if !keep {
                token.cancel();
            }
            keep
        });
        for (id, spec) in current {
            if watching.contains_key(&id) {
                continue;
            }
            let token = stop.child_token();
            watching.insert(id.clone(), (spec.clone(), token.clone()));
            tasks.spawn(watch(Arc::clone(&gw), id, spec, token));
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(super::LOOK_AGAIN) => {}
            Some(_) = tasks.join_next() => {}
        }
    }
    tasks.shutdown().await;
}

/// A client from `kubeconfig`, else inferred (`$KUBECONFIG` or
/// `~/.kube/config`, else the in-cluster service account).
async fn client(kubeconfig: Option<&Path>) -> Result<Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None => Config::infer()
            .await
            .map_err(|e| format!("no in-cluster config or kubeconfig: {e}"))?,
    };
    Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))
}

/// Lists and watches one template's slices until `stop` is cancelled.
pub async fn watch(gw: Arc<Controller>, id: String, spec: Spec, stop: CancellationToken) {
    let mut tracker = Tracker::new(spec.port.clone());
    let mut retry = FIRST_RETRY;
    let mut client_ = None;
    while !stop.is_cancelled() {
        let outcome = match &client_ {
            Some(c) => session(&gw, &id, &spec, c, &mut tracker, &stop).await,
            None => client(spec.kubeconfig.as_deref()).await.map(|c| {
                client_ = Some(c);
            }),
        };
        match outcome {
            Ok(()) => retry = FIRST_RETRY,
            Err(error) => {
                let (gw, id, source) = (Arc::clone(&gw), id.clone(), spec.source.clone());
                let _ =
                    tokio::task::spawn_blocking(move || gw.kubernetes_failed(&id, &source, error))
                        .await;
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(LAST_RETRY);
            }
        }
    }
}

/// One list, then one watch until it ends (`Ok`) or fails.
async fn session(
    gw: &Arc<Controller>,
    id: &str,
    spec: &Spec,
    client: &Client,
    tracker: &mut Tracker,
    stop: &CancellationToken,
) -> Result<(), String> {
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &spec.namespace);
    let selector = format!("kubernetes.io/service-name={}", spec.service);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| format!("list EndpointSlices: {e}"))?;
    let version = list.metadata.resource_version.clone().unwrap_or_default();
    tracker.step(Step::ListStart);
    for slice in list.items {
        tracker.step(Step::Listed(slice));
    }
    publish(gw, id, spec, tracker.step(Step::ListDone)).await?;
    let params = WatchParams::default()
        .labels(&selector)
        .timeout(WATCH_TIMEOUT_S);
    let mut events = api
        .watch(&params, &version)
        .await
        .map_err(|e| format!("watch EndpointSlices: {e}"))?
        .boxed();
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            e = events.try_next() => e.map_err(|e| format!("watch EndpointSlices: {e}"))?,
        };
        let step = match event {
            None => return Ok(()),
            Some(WatchEvent::Added(s) | WatchEvent::Modified(s)) => Step::Applied(s),
            Some(WatchEvent::Deleted(s)) => Step::Deleted(s),
            Some(WatchEvent::Bookmark(_)) => continue,
            // 410 Gone (history compacted) and the like: re-list.
            Some(WatchEvent::Error(e)) if e.code == 410 => return Ok(()),
            Some(WatchEvent::Error(e)) => return Err(format!("watch: {} ({})", e.message, e.code)),
        };
        publish(gw, id, spec, tracker.step(step)).await?;
    }
}

async fn publish(
    gw: &Arc<Controller>,
    id: &str,
    spec: &Spec,
    members: Option<Vec<SocketAddr>>,
) -> Result<(), String> {
    let Some(addrs) = members else { return Ok(()) };
    let (gw, id, source) = (Arc::clone(gw), id.to_owned(), spec.source.clone());
    tokio::task::spawn_blocking(move || {
        gw.set_kubernetes_members(&id, &source, &addrs)
            .map(|_| ())
            .map_err(|e| format!("members could not be applied: {e}"))
    })
    .await
    .map_err(|e| format!("publish: {e}"))?
}

#[cfg(test)]
mod tests;
