//! Applying the difference between two desired states to one instance,
//! through the same controller calls the admin API makes (one path per
//! job). What did not change is not touched: a re-sync that lists what
//! already serves publishes nothing, so live stats, health and drain state
//! carry on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use switchyard_config::Config;
use switchyard_control::Controller;
use switchyard_control::keys::{KeyRecord, KeyStore};
use switchyard_control::reload::{ReloadError, Source, Trigger};

use super::state::Desired;
use super::status::RefusalError;
use crate::weights::WeightsDoc;

/// What an instance applies changes to.
pub struct Applier {
    /// The controller (config, weights, stable versions, cordons).
    pub control: Arc<Controller>,
    /// The runtime keys.
    pub keys: Arc<KeyStore>,
    /// `${VAR}` lookup for the document.
    pub source: Source,
}

/// What applying a difference did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Whether the config document was applied (or was what serves).
    pub config_applied: bool,
    /// Problems, each with its field path or key.
    pub refused: Vec<RefusalError>,
}

impl Applier {
    /// Brings the instance from `prev` to `next`. Blocking (a new config
    /// builds TLS clients): call it off the async workers.
    pub fn apply(&self, prev: &Desired, next: &Desired) -> Outcome {
        let mut out = Outcome::default();
        let config_changed = prev.text() != next.text();
        if config_changed {
            self.apply_config(next.text(), &mut out);
        }
        self.apply_weights(prev, next, config_changed, &mut out);
        for (group, version) in &next.stable {
            if prev.stable.get(group) != Some(version) || config_changed {
                self.control.set_stable(group, version);
            }
        }
        self.apply_cordons(&prev.cordons, &next.cordons);
        if prev.keys != next.keys {
            self.apply_keys(&next.keys, &mut out);
        }
        out
    }

    fn apply_config(&self, text: Option<&str>, out: &mut Outcome) {
        let Some(text) = text else {
            out.refused.push(RefusalError {
                path: "config".into(),
                message: "the config key was deleted; the last config keeps serving".into(),
            });
            return;
        };
        let loaded = self.source.parse(text).map(|c| self.keep_listeners(c));
        match self.control.apply_result(loaded, Trigger::Fleet) {
            Ok(_) => out.config_applied = true,
            Err(e) => out.refused.extend(field_errors(&e, "")),
        }
    }

    /// Listeners are bound once, per instance: a document shared by the
    /// fleet does not move them.
    fn keep_listeners(&self, mut c: Config) -> Config {
        let serving = self.control.proxy().snapshot();
        c.server.listen = serving.config.server.listen;
        c.server.admin_listen = serving.config.server.admin_listen;
        c
    }

    fn apply_weights(&self, prev: &Desired, next: &Desired, all: bool, out: &mut Outcome) {
        for (group, raw) in &next.weights {
            if !all && prev.weights.get(group) == Some(raw) {
                continue;
            }
            let path = format!("control/weights/{group}");
            // The leader's document or an operator's plain map: one reader.
            let weights = match serde_json::from_str::<WeightsDoc>(raw) {
                Ok(d) => d.weights,
                Err(e) => {
                    out.refused.push(RefusalError {
                        path,
                        message: format!("not a JSON object of version -> weight: {e}"),
                    });
                    continue;
                }
            };
            if let Err(e) = self.control.set_weights(group, weights, Trigger::Fleet) {
                out.refused.extend(field_errors(&e, &path));
            }
        }
        for group in prev.weights.keys() {
            if !next.weights.contains_key(group)
                && let Err(e) = self.control.clear_override(group, Trigger::Fleet)
            {
                out.refused
                    .extend(field_errors(&e, &format!("control/weights/{group}")));
            }
        }
    }

    /// Cordons and uncordons as the admin API's cordon endpoints do: the
    /// id remembered (for replicas that come back) and the flag set.
    fn apply_cordons(&self, prev: &BTreeSet<String>, next: &BTreeSet<String>) {
        let snap = self.control.proxy().snapshot();
        let stats = |id: &str| snap.table.entries().iter().find(|e| e.replica.id == id);
        for id in next.difference(prev) {
            let _ = self.control.remember_cordon(id, true);
            if let Some(e) = stats(id)
                && e.stats.cordon()
            {
                self.control
                    .events
                    .push("replica_cordoned", id.clone(), "by the fleet".to_owned());
            }
        }
        for id in prev.difference(next) {
            let _ = self.control.remember_cordon(id, false);
            if let Some(e) = stats(id)
                && e.stats.uncordon()
            {
                self.control.events.push(
                    "replica_uncordoned",
                    id.clone(),
                    "by the fleet".to_owned(),
                );
            }
        }
    }

    fn apply_keys(&self, keys: &BTreeMap<String, String>, out: &mut Outcome) {
        let mut records = Vec::with_capacity(keys.len());
        for (id, raw) in keys {
            match serde_json::from_str::<KeyRecord>(raw) {
                Ok(r) if &r.id == id => records.push(r),
                Ok(r) => out.refused.push(RefusalError {
                    path: format!("keys/{id}"),
                    message: format!("the record's id is `{}`", r.id),
                }),
                Err(e) => out.refused.push(RefusalError {
                    path: format!("keys/{id}"),
                    message: format!("not a key record: {e}"),
                }),
            }
        }
        self.keys
            .replace(records, switchyard_control::events::wall_ms());
    }
}

/// `e`'s problems; those without a field path get `key`.
fn field_errors(e: &ReloadError, key: &str) -> Vec<RefusalError> {
    e.field_errors()
        .into_iter()
        .map(|f| RefusalError {
            path: if f.path.is_empty() {
                key.to_owned()
            } else {
                f.path
            },
            message: f.reason,
        })
        .collect()
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
