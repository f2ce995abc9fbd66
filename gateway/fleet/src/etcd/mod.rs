//! etcd as the config source and control-state store of a fleet of
//! instances (`switchyard run --etcd URL --prefix P`).
//!
//! - [`layout`]: the keys under the prefix; [`state`]: what they ask
//!   for at one revision; [`apply`]: bringing an instance from one desired
//!   state to the next through the controller's own calls.
//! - [`sync`]: the watch (with revisions) that feeds it, re-sync after a
//!   compaction, reconnects with backoff, the lease-bound status.
//! - [`client`]: compare-and-swap writes and the wait for every live
//!   instance to confirm (the `switchyard fleet` CLI and the admin API).
//! - [`status`]: what each instance publishes under `P/instances/<id>`.

pub mod apply;
pub mod client;
pub mod error;
pub mod layout;
pub mod state;
pub mod status;
mod sync;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_config::Config;
use switchyard_control::Controller;
use switchyard_control::keys::KeyStore;
use switchyard_control::reload::Source;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use client::{Confirmation, FleetClient};
pub use error::FleetError;
pub use layout::Layout;
pub use state::Desired;
pub use status::{InstanceStatus, Refusal, RefusalError};

/// How an instance joins the fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// etcd endpoint (`http://127.0.0.1:2379`).
    pub endpoint: String,
    /// Key prefix (`/switchyard`).
    pub prefix: String,
    /// This instance's id (its status key).
    pub instance_id: String,
    /// TTL of the lease its status key is bound to.
    pub lease_ttl: Duration,
}

/// What an instance starts from: the document and the state at one revision.
pub struct Initial {
    /// The config document, validated.
    pub config: Config,
    desired: Desired,
    revision: i64,
    client: FleetClient,
}

/// Reads the fleet's state; errors when etcd cannot be reached (there is
/// no previous config to serve) or the document is missing or invalid.
pub async fn load(options: &FleetOptions) -> Result<Initial, FleetError> {
    let client = FleetClient::connect(&options.endpoint, &options.prefix).await?;
    let (desired, revision) = client.list().await?;
    let key = client.layout().config();
    let text = desired
        .text()
        .ok_or_else(|| FleetError::NoConfig(key.clone()))?;
    let config = switchyard_config::load_str(text, &|k| std::env::var(k).ok())
        .map_err(|source| FleetError::Config { key, source })?;
    Ok(Initial {
        config,
        desired,
        revision,
        client,
    })
}

/// One instance's membership in the fleet.
pub struct Fleet {
    options: FleetOptions,
    applier: apply::Applier,
    client: Mutex<FleetClient>,
    live: Mutex<Live>,
    applied: tokio::sync::watch::Sender<i64>,
    resync: tokio::sync::Notify,
    /// The status key's lease (0: none yet), revoked on a clean stop.
    lease: std::sync::atomic::AtomicI64,
}

/// What the status key shows, kept between publications.
struct Live {
    status: InstanceStatus,
    /// `mod_revision` of the document serving (what the admin API's
    /// config writes compare).
    config_revision: i64,
}

impl Fleet {
    /// Joins the fleet: applies the control state of `initial` (its
    /// config already serves), then follows the prefix on `tasks` until
    /// `stop`. `data_addr`/`admin_addr` go into the status.
    pub fn start(
        initial: Initial,
        options: FleetOptions,
        control: Arc<Controller>,
        keys: Arc<KeyStore>,
        addrs: (String, String),
        tasks: &TaskTracker,
        stop: CancellationToken,
    ) -> Arc<Self> {
        let source = Source::environment();
        control.set_source(source.clone());
        let applier = apply::Applier {
            control,
            keys,
            source,
        };
        let served = Desired {
            config: initial.desired.config.clone(),
            ..Desired::default()
        };
        let outcome = applier.apply(&served, &initial.desired);
        let text = initial.desired.text().unwrap_or_default();
        let status = InstanceStatus {
            id: options.instance_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: switchyard_control::events::wall_ms(),
            data_addr: addrs.0,
            admin_addr: addrs.1,
            revision: initial.revision,
            hash: status::doc_hash(text),
            last_refusal: (!outcome.refused.is_empty()).then_some(Refusal {
                revision: initial.revision,
                errors: outcome.refused,
            }),
            degraded: false,
            degraded_reason: None,
        };
        let fleet = Arc::new(Self {
            applier,
            client: Mutex::new(initial.client),
            live: Mutex::new(Live {
                status,
                config_revision: initial
                    .desired
                    .config
                    .as_ref()
                    .map_or(0, |d| d.mod_revision),
            }),
            applied: tokio::sync::watch::Sender::new(initial.revision),
            resync: tokio::sync::Notify::new(),
            lease: std::sync::atomic::AtomicI64::new(0),
            options,
        });
        tasks.spawn(sync::run(
            Arc::clone(&fleet),
            initial.desired,
            initial.revision,
            stop,
        ));
        fleet
    }

    /// This instance's status as it is now (also while etcd is away).
    pub fn status(&self) -> InstanceStatus {
        self.live().status.clone()
    }

    /// The options it joined with.
    pub fn options(&self) -> &FleetOptions {
        &self.options
    }

    /// A client of the fleet's etcd (the current connection).
    pub fn client(&self) -> FleetClient {
        self.client
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The controller it applies to.
    pub fn control(&self) -> &Arc<Controller> {
        &self.applier.control
    }

    /// The runtime key store it applies to.
    pub fn keys(&self) -> &Arc<KeyStore> {
        &self.applier.keys
    }

    /// `mod_revision` of the config document serving.
    pub fn config_revision(&self) -> i64 {
        self.live().config_revision
    }

    /// Asks the watch loop to list the prefix again (`POST /admin/reload`).
    pub fn request_resync(&self) {
        self.resync.notify_one();
    }

    /// Waits until this instance applied `revision`; its refusal of it
    /// is an error with the field paths.
    pub async fn wait_applied(&self, revision: i64, timeout: Duration) -> Result<(), FleetError> {
        let mut rx = self.applied.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|r| *r >= revision)).await;
        if !matches!(reached, Ok(Ok(_))) {
            return Err(FleetError::NotApplied {
                revision,
                ms: timeout.as_millis() as u64,
            });
        }
        match self.status().last_refusal {
            Some(r) if r.revision >= revision => Err(FleetError::Refused {
                revision: r.revision,
                errors: r.errors,
            }),
            _ => Ok(()),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}
