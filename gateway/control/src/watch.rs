//! Reload triggers that come from outside the admin API: the config file
//! changing on disk, and SIGHUP.
//!
//! The file watch is on the file's *directory*, not the file: editors that
//! write a temporary file and rename it over the original, and Kubernetes
//! ConfigMap mounts that swap a `..data` symlink, replace the inode a
//! file-level watch would be attached to. An event on the file, or on a
//! ConfigMap's `..data` swap (debounced: an editor's save is several
//! events), makes the gateway read the file again; an unchanged file has
//! the same content hash and is a no-op. Events on the directory's other
//! files (a log written beside the config, the cordons file) are not
//! looked at: each one cost a parse of the whole config.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::reload::Trigger;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::reload::Controller;

/// Quiet time after the last file event before the file is read.
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Watches the config file until the returned guard is dropped (or the
/// gateway's stop token is cancelled).
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    stop: CancellationToken,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts watching `path` and reloading `gw` from its source when it
/// changes; the debounce loop runs on `tasks` and ends with `stop`.
pub fn watch_file(
    gw: Arc<Controller>,
    path: &Path,
    tasks: &TaskTracker,
    stop: &CancellationToken,
) -> notify::Result<FileWatch> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir: PathBuf = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = path
        .file_name()
        .map(OsStr::to_os_string)
        .unwrap_or_default();
    let (tx, rx) = mpsc::channel::<()>(16);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            // Access events (a reader opening the file) are not changes.
            Ok(e) if e.kind.is_access() || !concerns(&e, &name) => {}
            Ok(_) => {
                // Full channel: a reload is already pending, which is enough.
                let _ = tx.try_send(());
            }
            Err(e) => tracing::warn!(error = %e, "config file watch error"),
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    tracing::info!(file = %path.display(), "watching the config file for changes");
    let stop = stop.child_token();
    tasks.spawn(debounced_reloads(gw, rx, stop.clone()));
    Ok(FileWatch {
        _watcher: watcher,
        stop,
    })
}

/// Whether a directory event may have changed the config file `name`: it
/// names the file, or a name starting with `..` (a Kubernetes ConfigMap
/// mount swaps its `..data` link; the file is a link through it). An event
/// that names no path is taken to.
fn concerns(event: &notify::Event, name: &OsStr) -> bool {
    event.paths.is_empty()
        || event.paths.iter().any(|p| {
            p.file_name()
                .is_none_or(|n| n == name || n.as_encoded_bytes().starts_with(b".."))
        })
}

async fn debounced_reloads(
    gw: Arc<Controller>,
    mut rx: mpsc::Receiver<()>,
    stop: CancellationToken,
) {
    while stop
        .run_until_cancelled(rx.recv())
        .await
        .flatten()
        .is_some()
    {
        // Wait for the burst to end: each new event restarts the quiet time.
        while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
        // Reading the file and building TLS clients is blocking work.
        let gw = Arc::clone(&gw);
        let _ = tokio::task::spawn_blocking(move || reload_logged(&gw, Trigger::File)).await;
    }
}

/// Reloads from the config source, logging the outcome (the triggers here
/// have no caller to answer).
pub fn reload_logged(gw: &Controller, trigger: Trigger) {
    match gw.reload(trigger) {
        Ok(a) if a.changed => {
            tracing::info!(
                generation = a.generation,
                hash = %a.hash,
                trigger = trigger.as_str(),
                "config reloaded"
            );
        }
        Ok(_) => tracing::debug!(trigger = trigger.as_str(), "config unchanged"),
        Err(e) => tracing::error!(
            trigger = trigger.as_str(),
            "config reload refused; the previous config keeps serving:\n{e}"
        ),
    }
}

/// Reloads on every SIGHUP until `stop` is cancelled; runs on `tasks`.
#[cfg(unix)]
pub fn reload_on_sighup(
    gw: Arc<Controller>,
    tasks: &TaskTracker,
    stop: CancellationToken,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    tasks.spawn(async move {
        while stop
            .run_until_cancelled(hup.recv())
            .await
            .flatten()
            .is_some()
        {
            tracing::info!("SIGHUP: reloading the config");
            let gw = Arc::clone(&gw);
            let _ = tokio::task::spawn_blocking(move || reload_logged(&gw, Trigger::Signal)).await;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, EventKind, ModifyKind, RenameMode};

    use super::*;

    fn event(kind: EventKind, paths: &[&str]) -> notify::Event {
        paths.iter().fold(notify::Event::new(kind), |e, p| {
            e.add_path(PathBuf::from(p))
        })
    }

    #[test]
    fn only_the_config_file_and_a_configmap_swap_concern_the_watch() {
        let name = OsStr::new("switchyard.yaml");
        let write = EventKind::Modify(ModifyKind::Any);
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        // The file itself, written in place or renamed over by an editor.
        assert!(concerns(&event(write, &["/etc/sy/switchyard.yaml"]), name));
        assert!(concerns(
            &event(
                rename,
                &["/etc/sy/.switchyard.yaml.tmp", "/etc/sy/switchyard.yaml"]
            ),
            name
        ));
        // A ConfigMap update: `..data_tmp` renamed over `..data`.
        assert!(concerns(
            &event(rename, &["/etc/sy/..data_tmp", "/etc/sy/..data"]),
            name
        ));
        assert!(concerns(&event(EventKind::Any, &[]), name));
        // A log and the cordons file beside it do not.
        assert!(!concerns(&event(write, &["/etc/sy/switchyard.log"]), name));
        assert!(!concerns(
            &event(
                EventKind::Create(CreateKind::File),
                &["/etc/sy/switchyard.yaml.cordons.json"]
            ),
            name
        ));
    }
}
