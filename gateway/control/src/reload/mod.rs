//! The control path: how a new config, or a new set of version weights,
//! becomes the serving snapshot.
//!
//! Every change goes through one function, `Controller::publish`, under one
//! lock, in two halves:
//!
//! 1. **prepare** (fallible, off to the side): parse and validate the YAML,
//!    lay the operator's weight overrides over it, build the replica table
//!    and upstream details. Any error here leaves the serving snapshot alone
//!    and is recorded as `last_error`.
//! 2. **swap** (infallible): one `ArcSwap::store`. Requests already running
//!    keep the snapshot they loaded (all their attempts, their whole stream);
//!    the old snapshot is freed when its last request ends.
//!
//! After the swap, replicas the new table no longer has start draining
//! (no new requests; in-flight ones get `limits.drain_timeout_ms`, then
//! whatever still runs ends with an explicit error).
//!
//! Weights set through the admin API (`weights`, `promote`, `rollback`, and
//! the rollout controller) are *overrides* on top of the config source: a
//! reload of an unrelated change keeps them, and a reload that changes that
//! group's versions or weights in the file replaces them (the newer intent
//! wins).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use switchyard_config::{Config, ConfigError, FieldError};
use switchyard_proxy::PrepareError;
use switchyard_router::ReplicaStats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use switchyard_proxy::Proxy;
use tokio_util::task::TaskTracker;

use crate::events::Events;
use crate::lease::Leases;
use crate::members::{Members, SourceStatus};
use crate::rollout::Rollouts;

mod discovered;
mod fleet;
mod source;
pub use discovered::{RegisterError, Registered};
pub use source::Source;

/// The control plane of one gateway.
pub struct Controller {
    proxy: Arc<Proxy>,
    state: Mutex<Control>,
    /// Recent notable events (ejections, reloads, rollouts) for operators.
    pub events: Events,
    /// Automatic canary rollouts and the figures they are judged on.
    pub rollouts: Arc<Rollouts>,
    /// Where timers the controller starts (drain windows) are tracked, so
    /// shutdown waits for or cancels them.
    tasks: TaskTracker,
    reloads: [AtomicU64; 2],
}

impl Controller {
    /// The controller of `proxy`, whose serving config becomes the base.
    /// `rollouts` is shared with the observer that feeds it figures.
    pub fn new(proxy: Arc<Proxy>, rollouts: Arc<Rollouts>, tasks: TaskTracker) -> Self {
        let base = (*proxy.snapshot().config).clone();
        Self {
            proxy,
            state: Mutex::new(Control::new(base)),
            events: Events::default(),
            rollouts,
            tasks,
            reloads: Default::default(),
        }
    }

    /// The data plane this controller publishes into.
    pub fn proxy(&self) -> &Arc<Proxy> {
        &self.proxy
    }

    /// The control-plane state (reloads, overrides, history). Never taken
    /// on the request path; held only for in-memory work.
    pub fn state(&self) -> MutexGuard<'_, Control> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes applied and refused since start: `(applied, refused)`.
    pub fn reload_counts(&self) -> (u64, u64) {
        (
            self.reloads[0].load(Ordering::Relaxed),
            self.reloads[1].load(Ordering::Relaxed),
        )
    }

    fn count_reload(&self, applied: bool) {
        self.reloads[usize::from(!applied)].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
impl Controller {
    /// A controller over a data plane that observes nothing.
    pub(crate) fn for_tests(config: switchyard_config::Config) -> Arc<Self> {
        let proxy = Proxy::new(config, Arc::new(switchyard_proxy::NoObserver))
            .unwrap_or_else(|e| panic!("test config does not prepare: {e}"));
        Arc::new(Self::new(
            Arc::new(proxy),
            Arc::default(),
            TaskTracker::new(),
        ))
    }
}

/// What caused a change; shown in logs, events, history and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The config file changed on disk.
    File,
    /// SIGHUP.
    Signal,
    /// `POST /admin/config` with a full YAML body.
    AdminConfig,
    /// `POST /admin/reload`.
    AdminReload,
    /// `POST /admin/models/{name}/weights`.
    Weights,
    /// `POST /admin/models/{name}/promote`.
    Promote,
    /// `POST /admin/models/{name}/rollback`.
    Rollback,
    /// The automatic rollout controller.
    Rollout,
    /// A template's DNS name resolved to a different set of addresses.
    Dns,
    /// A member registered, deregistered, or its lease expired.
    Registration,
    /// A change read from the fleet's etcd (config or control keys).
    Fleet,
    /// A template's Kubernetes EndpointSlices changed (list or watch).
    Kubernetes,
}

impl Trigger {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::File => "file",
            Trigger::Signal => "signal",
            Trigger::AdminConfig => "admin_config",
            Trigger::AdminReload => "admin_reload",
            Trigger::Weights => "weights",
            Trigger::Promote => "promote",
            Trigger::Rollback => "rollback",
            Trigger::Rollout => "rollout",
            Trigger::Dns => "dns",
            Trigger::Registration => "registration",
            Trigger::Fleet => "fleet",
            Trigger::Kubernetes => "kubernetes",
        }
    }
}

/// Why a change was refused. The serving config is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config does not parse or validate; every problem is listed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `POST /admin/reload` or SIGHUP with nothing to reload from.
    #[error("this gateway has no config file to reload from")]
    NoSource,
    /// A weights call named a group that does not exist.
    #[error("unknown model group `{0}`")]
    UnknownModel(String),
    /// The change failed inside the gateway (a bug); nothing was published.
    #[error("internal error while applying the change: {0}")]
    Internal(String),
    /// A weights call named a version the group does not have.
    #[error("model group `{group}` has no version `{version}` (versions: {known})")]
    UnknownVersion {
        /// Group.
        group: String,
        /// The version asked for.
        version: String,
        /// The versions it has.
        known: String,
    },
    /// The config validated but a generation could not be built from it
    /// (a replica's TLS trust).
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// Weights out of range or all zero.
    #[error("weights for `{group}`: {reason}")]
    BadWeights {
        /// Group.
        group: String,
        /// What is wrong.
        reason: String,
    },
}

impl ReloadError {
    /// Field-level problems, for the admin API's `errors` list.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            ReloadError::Config(e) => e.field_errors(),
            ReloadError::Prepare(e) => vec![FieldError::new(e.field(), e.to_string())],
            other => vec![FieldError::new("", other.to_string())],
        }
    }
}

/// The result of an accepted change.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// The generation now serving.
    pub generation: u64,
    /// Content hash of the config source now serving.
    pub hash: String,
    /// False when the change was identical to what was serving (no new generation).
    pub changed: bool,
    /// What caused it.
    pub trigger: Trigger,
    /// Things that were accepted but need attention (e.g. a listener
    /// address change, which needs a restart).
    pub warnings: Vec<String>,
}

/// The last refused change, for `GET /admin/config`.
#[derive(Debug, Clone, Serialize)]
pub struct LastError {
    /// Wall-clock time, ms since the Unix epoch.
    pub at_ms: u64,
    /// What caused the attempt.
    pub trigger: Trigger,
    /// Every problem, with its field path.
    pub errors: Vec<FieldErrorJson>,
}

/// A [`FieldError`] as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct FieldErrorJson {
    /// Dotted field path (empty when the whole document is at fault).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl From<FieldError> for FieldErrorJson {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.path,
            reason: e.reason,
        }
    }
}

/// One applied generation, for `GET /admin/config`'s history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// Generation number.
    pub generation: u64,
    /// Wall-clock time, ms since the Unix epoch.
    pub at_ms: u64,
    /// What caused it.
    pub trigger: Trigger,
    /// Config source hash.
    pub hash: String,
    /// One-line summary of what changed.
    pub summary: String,
}

/// Generations kept in the history.
const HISTORY: usize = 32;

/// Weights the operator (or the rollout controller) set for one group.
#[derive(Debug, Clone, PartialEq)]
struct Override {
    /// Version -> weight; versions not named get 0.
    weights: BTreeMap<String, u32>,
    /// The group's weights in the config source when this was set: when the
    /// source's weights change, the source wins and this override goes.
    source_weights: Vec<(String, u32)>,
}

/// Control-plane state, behind one mutex: changes are rare and must be
/// serialized; the data plane never takes this lock.
#[derive(Debug)]
pub struct Control {
    /// The last config accepted from a source, before overrides.
    base: Config,
    overrides: BTreeMap<String, Override>,
    /// Per group: the version `rollback` returns to.
    stable: HashMap<String, String>,
    /// Per group: the stable version before the last promote.
    previous_stable: HashMap<String, String>,
    /// The last refused change, until a change is accepted.
    pub last_error: Option<LastError>,
    /// The last applied generations, oldest first.
    pub history: VecDeque<HistoryEntry>,
    /// Where the config is read again from.
    pub source: Option<Source>,
    /// Members discovery found for the base's templates.
    members: Members,
    /// Registration leases (their members are in `members` too).
    pub leases: Leases,
    /// Per template: what its source last said.
    pub discovery: BTreeMap<String, SourceStatus>,
    /// Replica ids an operator cordoned: applied to every generation (a
    /// member that comes back is still cordoned) and saved next to the
    /// config file, when there is one.
    cordoned: std::collections::BTreeSet<String>,
}

impl Control {
    pub(crate) fn new(base: Config) -> Self {
        let mut c = Self {
            base,
            overrides: BTreeMap::new(),
            stable: HashMap::new(),
            previous_stable: HashMap::new(),
            last_error: None,
            history: VecDeque::new(),
            source: None,
            members: Members::default(),
            leases: Leases::default(),
            discovery: BTreeMap::new(),
            cordoned: Default::default(),
        };
        c.refresh_stable();
        c
    }

    /// A group's stable version: the rollout's baseline, else its heaviest.
    fn refresh_stable(&mut self) {
        let stable = &mut self.stable;
        for m in &self.base.models {
            let known = |v: &str| m.versions.iter().any(|x| x.name == v);
            if stable.get(&m.name).is_some_and(|v| known(v)) {
                continue;
            }
            let pick = m
                .rollout
                .as_ref()
                .map(|r| r.baseline.clone())
                .or_else(|| heaviest(m));
            if let Some(v) = pick {
                stable.insert(m.name.clone(), v);
            }
        }
        stable.retain(|g, _| self.base.model(g).is_some());
    }

    /// The base with overrides laid over it and discovered members added.
    fn effective(&self) -> Config {
        self.members.compose(overlay(&self.base, &self.overrides))
    }

    /// The last config accepted from its source, before weight overrides
    /// and discovered members (what a fleet's rollout leader plans from).
    pub fn base(&self) -> &Config {
        &self.base
    }

    /// Stable versions per group, for `GET /admin/rollouts`.
    pub fn stable(&self, group: &str) -> Option<&str> {
        self.stable.get(group).map(String::as_str)
    }

    /// Whether `group`'s weights are an admin/rollout override.
    pub fn overridden(&self, group: &str) -> bool {
        self.overrides.contains_key(group)
    }

    /// Where `rollback` of `group` goes: its stable version, or, when the
    /// stable version already has all the traffic, the one before the
    /// last promote. The fleet asks this before it writes a rollback.
    pub fn rollback_target(&self, group: &str) -> Result<String, ReloadError> {
        let Some(stable) = self.stable.get(group).cloned() else {
            return Err(ReloadError::UnknownModel(group.to_owned()));
        };
        let all_on_stable = self.effective().model(group).is_some_and(|m| {
            m.versions
                .iter()
                .all(|v| (v.name == stable) == (v.weight > 0))
        });
        Ok(match self.previous_stable.get(group) {
            Some(prev) if all_on_stable => prev.clone(),
            _ => stable,
        })
    }

    /// Checks weights for `group` against the serving base, as
    /// `set_weights` would, without applying them (the fleet checks before
    /// it writes to etcd).
    pub fn check_weights(
        &self,
        group: &str,
        weights: &BTreeMap<String, u32>,
    ) -> Result<(), ReloadError> {
        check_weights(&self.base, group, weights)
    }
}

/// `base` with the weight `overrides` laid over it.
fn overlay(base: &Config, overrides: &BTreeMap<String, Override>) -> Config {
    let mut c = base.clone();
    for m in &mut c.models {
        if let Some(o) = overrides.get(&m.name) {
            for v in &mut m.versions {
                v.weight = o.weights.get(&v.name).copied().unwrap_or(0);
            }
        }
    }
    c
}

fn heaviest(m: &switchyard_config::ModelGroup) -> Option<String> {
    // First of the heaviest, so ties go to the version listed first.
    let max = m.versions.iter().map(|v| v.weight).max()?;
    m.versions
        .iter()
        .find(|v| v.weight == max)
        .map(|v| v.name.clone())
}

fn source_weights(config: &Config, group: &str) -> Vec<(String, u32)> {
    config
        .model(group)
        .map(|m| {
            m.versions
                .iter()
                .map(|v| (v.name.clone(), v.weight))
                .collect()
        })
        .unwrap_or_default()
}

impl Controller {
    /// Remembers where the config came from, so SIGHUP, file changes and
    /// `POST /admin/reload` can read it again.
    /// Cordons saved next to a config file are read back and applied.
    pub fn set_source(&self, source: Source) {
        let mut control = self.state();
        if let Some(path) = source.watched() {
            match crate::cordons::load(&crate::cordons::path_for(path)) {
                Ok(ids) => control.cordoned = ids,
                Err(e) => self.events.push(
                    "cordons_unreadable",
                    "cordons",
                    format!("{e}; starting with no replica cordoned"),
                ),
            }
        }
        control.source = Some(source);
        apply_cordons(&self.proxy, &control.cordoned);
    }

    /// Records an operator's cordon (or uncordon) of `id` so that it
    /// outlives this process. Errors are the file's; the cordon itself
    /// already holds in memory.
    pub fn remember_cordon(&self, id: &str, cordoned: bool) -> std::io::Result<()> {
        let mut control = self.state();
        let changed = if cordoned {
            control.cordoned.insert(id.to_owned())
        } else {
            control.cordoned.remove(id)
        };
        match control.source.as_ref().and_then(Source::watched) {
            Some(path) if changed => {
                crate::cordons::save(&crate::cordons::path_for(path), &control.cordoned)
            }
            _ => Ok(()),
        }
    }

    /// The config source, if one was set.
    pub fn source(&self) -> Option<Source> {
        self.state().source.clone()
    }

    /// Reads the config source again and applies it (SIGHUP, file change,
    /// `POST /admin/reload`).
    pub fn reload(&self, trigger: Trigger) -> Result<Applied, ReloadError> {
        let loaded = match self.source() {
            Some(source) => source.load(),
            None => Err(ReloadError::NoSource),
        };
        self.apply_loaded(loaded, trigger)
    }

    /// Validates `yaml` (with the source's variables) and applies it
    /// (`POST /admin/config`).
    pub fn apply_yaml(&self, yaml: &str) -> Result<Applied, ReloadError> {
        let source = self
            .source()
            .unwrap_or_else(|| Source::embedded("", HashMap::new()));
        let loaded = source.parse(yaml);
        self.apply_loaded(loaded, Trigger::AdminConfig)
    }

    /// Applies an already validated config from a source.
    pub fn apply(&self, config: Config, trigger: Trigger) -> Result<Applied, ReloadError> {
        self.apply_loaded(Ok(config), trigger)
    }

    fn apply_loaded(
        &self,
        loaded: Result<Config, ReloadError>,
        trigger: Trigger,
    ) -> Result<Applied, ReloadError> {
        let mut control = self.state();
        let config = match loaded {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(&mut control, trigger, e)),
        };
        if config.hash == control.base.hash {
            // The source is back to what serves (a broken save reverted):
            // nothing is wrong any more.
            control.last_error = None;
            return Ok(self.unchanged(trigger));
        }
        let mut warnings = Vec::new();
        let old = &control.base.server;
        if config.server.listen != old.listen || config.server.admin_listen != old.admin_listen {
            warnings.push(
                "server.listen / server.admin_listen changed: listeners are bound at start, \
                 so the new addresses take effect on restart"
                    .to_owned(),
            );
        }
        if config.server.workers != old.workers {
            warnings.push(
                "server.workers changed: workers are started with the listeners, \
                 so the new count takes effect on restart"
                    .to_owned(),
            );
        }
        // The source changed a group's weights (or versions): the source wins.
        let dropped: Vec<String> = control
            .overrides
            .iter()
            .filter(|(g, o)| source_weights(&config, g) != o.source_weights)
            .map(|(g, _)| g.clone())
            .collect();
        for g in &dropped {
            control.overrides.remove(g);
            warnings.push(format!(
                "model group `{g}`: weights set through the admin API were replaced by the config's"
            ));
        }
        let summary = summarize(&control.base, &config);
        // Members follow their template: re-made from its new settings,
        // dropped with it.
        let mut members = control.members.clone();
        members.retain_templates(&config);
        let effective = members.compose(overlay(&config, &control.overrides));
        let applied = self.publish(&mut control, effective, trigger, summary, warnings)?;
        control.members = members;
        control.leases.retain_templates(|t| {
            config.templates.iter().any(|x| {
                x.id == t
                    && x.discovery.as_ref().is_some_and(|d| {
                        d.source.kind() == switchyard_config::Membership::Registered
                    })
            })
        });
        control
            .discovery
            .retain(|t, _| config.templates.iter().any(|x| &x.id == t));
        control.base = config;
        control.refresh_stable();
        Ok(applied)
    }

    /// Sets `group`'s version weights (versions not named get 0).
    pub fn set_weights(
        &self,
        group: &str,
        weights: BTreeMap<String, u32>,
        trigger: Trigger,
    ) -> Result<Applied, ReloadError> {
        let mut control = self.state();
        self.set_weights_locked(&mut control, group, weights, trigger)
    }

    fn set_weights_locked(
        &self,
        control: &mut Control,
        group: &str,
        weights: BTreeMap<String, u32>,
        trigger: Trigger,
    ) -> Result<Applied, ReloadError> {
        let checked = check_weights(&control.base, group, &weights);
        if let Err(e) = checked {
            return Err(self.refuse(control, trigger, e));
        }
        let current = control.effective();
        let unchanged = current.model(group).is_some_and(|m| {
            m.versions
                .iter()
                .all(|v| weights.get(&v.name).copied().unwrap_or(0) == v.weight)
        });
        if unchanged {
            return Ok(self.unchanged(trigger));
        }
        let summary = format!(
            "{group} weights {}",
            weights
                .iter()
                .map(|(v, w)| format!("{v}={w}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let source_weights = source_weights(&control.base, group);
        let previous = control.overrides.insert(
            group.to_owned(),
            Override {
                weights,
                source_weights,
            },
        );
        let effective = control.effective();
        let published = self.publish(control, effective, trigger, summary, Vec::new());
        if published.is_err() {
            // Not serving: the override must not linger either.
            match previous {
                Some(p) => control.overrides.insert(group.to_owned(), p),
                None => control.overrides.remove(group),
            };
        }
        published
    }

    /// Sends all of `group`'s traffic to `version` and makes it the stable
    /// version that `rollback` returns to. One critical section: the
    /// rollout controller cannot act between the weights and the stable mark.
    pub fn promote(
        &self,
        group: &str,
        version: &str,
        trigger: Trigger,
    ) -> Result<Applied, ReloadError> {
        let mut control = self.state();
        let applied = self.set_weights_locked(
            &mut control,
            group,
            BTreeMap::from([(version.to_owned(), 100)]),
            trigger,
        )?;
        if let Some(old) = control.stable.insert(group.to_owned(), version.to_owned())
            && old != version
        {
            control.previous_stable.insert(group.to_owned(), old);
        }
        Ok(applied)
    }

    /// Sends all of `group`'s traffic back to its stable version; when the
    /// stable version already has it all, to the one before the last
    /// promote. One critical section, like [`Controller::promote`].
    pub fn rollback(&self, group: &str, trigger: Trigger) -> Result<Applied, ReloadError> {
        let mut control = self.state();
        let target = control.rollback_target(group)?;
        let applied = self.set_weights_locked(
            &mut control,
            group,
            BTreeMap::from([(target.clone(), 100)]),
            trigger,
        )?;
        control.stable.insert(group.to_owned(), target);
        Ok(applied)
    }

    fn unchanged(&self, trigger: Trigger) -> Applied {
        let snap = self.proxy.snapshot();
        tracing::debug!(
            trigger = trigger.as_str(),
            "config unchanged; nothing to do"
        );
        Applied {
            generation: snap.generation,
            hash: snap.config.hash.clone(),
            changed: false,
            trigger,
            warnings: Vec::new(),
        }
    }

    fn refuse(&self, control: &mut Control, trigger: Trigger, e: ReloadError) -> ReloadError {
        let errors = e.field_errors();
        self.events.push(
            "config_rejected",
            trigger.as_str(),
            format!(
                "change refused, generation {} keeps serving: {}",
                self.proxy.snapshot().generation,
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        );
        self.count_reload(false);
        control.last_error = Some(LastError {
            at_ms: crate::events::wall_ms(),
            trigger,
            errors: errors.into_iter().map(Into::into).collect(),
        });
        e
    }

    /// Prepares the next snapshot, swaps it in, and starts draining the
    /// replicas it dropped. Only the prepare can fail (a replica's TLS
    /// trust); then nothing changed and the refusal is recorded.
    fn publish(
        &self,
        control: &mut Control,
        config: Config,
        trigger: Trigger,
        summary: String,
        warnings: Vec<String>,
    ) -> Result<Applied, ReloadError> {
        let old = self.proxy.snapshot();
        let generation = old.generation + 1;
        let next = match self.proxy.prepare(config, generation) {
            Ok(next) => next,
            Err(e) => return Err(self.refuse(control, trigger, e.into())),
        };
        let hash = next.config.hash.clone();
        let drain = next.config.server.limits.drain_timeout;
        // A replica is the same one across generations exactly when its live
        // stats are (the registry keys them by id + URL).
        let stats_of = |t: &switchyard_router::ReplicaTable| -> HashSet<*const ReplicaStats> {
            t.entries().iter().map(|e| Arc::as_ptr(&e.stats)).collect()
        };
        let (before, after) = (stats_of(&old.table), stats_of(&next.table));
        let removed: Vec<_> = old
            .table
            .entries()
            .iter()
            .filter(|e| !after.contains(&Arc::as_ptr(&e.stats)))
            .map(|e| (e.replica.id.clone(), Arc::clone(&e.stats)))
            .collect();
        // The readiness gate: a replica this change adds to a group with
        // active health checks takes traffic only once a probe has seen it
        // healthy, so weights toward a new version wait instead of failing.
        for e in next.table.entries() {
            let added = !before.contains(&Arc::as_ptr(&e.stats));
            let checked = next
                .config
                .model(&e.replica.model)
                .is_some_and(|m| m.health_check.is_some());
            if added && checked {
                e.stats.health.await_first_probe();
            }
        }
        self.proxy.store(next);
        apply_cordons(&self.proxy, &control.cordoned);
        let serving = self.proxy.snapshot();
        self.proxy.stats().retain(|id| serving.table.contains(id));
        for (id, stats) in removed {
            stats.drain();
            let in_flight = stats.in_flight();
            self.events.push(
                "replica_draining",
                id.clone(),
                format!(
                    "removed by generation {generation}; {in_flight} in flight get {} ms to finish",
                    drain.as_millis()
                ),
            );
            if in_flight > 0 {
                self.retire_after(stats, drain);
            } else {
                stats.retire();
            }
        }
        control.last_error = None;
        control.history.push_back(HistoryEntry {
            generation,
            at_ms: crate::events::wall_ms(),
            trigger,
            hash: hash.clone(),
            summary: summary.clone(),
        });
        while control.history.len() > HISTORY {
            control.history.pop_front();
        }
        self.count_reload(true);
        self.events.push(
            "config_applied",
            format!("generation {generation}"),
            format!("{} ({summary})", trigger.as_str()),
        );
        for w in &warnings {
            tracing::warn!(generation, "{w}");
        }
        Ok(Applied {
            generation,
            hash,
            changed: true,
            trigger,
            warnings,
        })
    }

    /// Retires a removed replica once its drain window is over, on the
    /// controller's task tracker (shutdown does not wait for it: the
    /// process ends the drain). Outside a runtime (unit tests of the
    /// control plane) it retires at once.
    fn retire_after(&self, stats: Arc<ReplicaStats>, after: Duration) {
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                // The tracker keeps the handle; dropping ours detaches nothing.
                drop(self.tasks.spawn_on(
                    async move {
                        tokio::time::sleep(after).await;
                        stats.retire();
                    },
                    &rt,
                ));
            }
            Err(_) => stats.retire(),
        }
    }
}

/// Cordons the serving table's replicas whose ids are in `ids`.
fn apply_cordons(proxy: &Proxy, ids: &std::collections::BTreeSet<String>) {
    if ids.is_empty() {
        return;
    }
    for e in proxy.snapshot().table.entries() {
        if ids.contains(&e.replica.id) {
            e.stats.cordon();
        }
    }
}

fn check_weights(
    base: &Config,
    group: &str,
    weights: &BTreeMap<String, u32>,
) -> Result<(), ReloadError> {
    let m = base
        .model(group)
        .ok_or_else(|| ReloadError::UnknownModel(group.to_owned()))?;
    for (v, w) in weights {
        if !m.versions.iter().any(|x| &x.name == v) {
            return Err(ReloadError::UnknownVersion {
                group: group.to_owned(),
                version: v.clone(),
                known: m
                    .versions
                    .iter()
                    .map(|x| x.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if *w > 100 {
            return Err(ReloadError::BadWeights {
                group: group.to_owned(),
                reason: format!("`{v}`: must be 0..=100, got {w}"),
            });
        }
    }
    if weights.values().all(|w| *w == 0) {
        return Err(ReloadError::BadWeights {
            group: group.to_owned(),
            reason: "total weight is 0: at least one version needs weight > 0".to_owned(),
        });
    }
    Ok(())
}

/// "+2 replicas, -1 replica, 3 changed, models: chat" style summary.
fn summarize(old: &Config, new: &Config) -> String {
    let by_id = |c: &Config| -> HashMap<String, serde_json::Value> {
        c.replicas
            .iter()
            .map(|r| (r.id.clone(), serde_json::to_value(r).unwrap_or_default()))
            .collect()
    };
    let (before, after) = (by_id(old), by_id(new));
    let added = after.keys().filter(|id| !before.contains_key(*id)).count();
    let removed = before.keys().filter(|id| !after.contains_key(*id)).count();
    let changed = after
        .iter()
        .filter(|(id, r)| before.get(*id).is_some_and(|o| o != *r))
        .count();
    format!(
        "replicas +{added} -{removed} ~{changed}, {} model groups",
        new.models.len()
    )
}

#[cfg(test)]
mod tests;
