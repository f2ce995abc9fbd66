//! What the fleet (config and control state in etcd) needs of the
//! controller beyond the admin API's paths: marking a stable version
//! without moving traffic, and dropping a weight override whose key was
//! deleted. Everything else it applies through the same calls as the admin
//! API (`apply`, `set_weights`, `remember_cordon`).

use std::collections::BTreeMap;

use super::{Applied, Controller, ReloadError, Trigger};

impl Controller {
    /// Makes `version` the stable version of `group` (the one `rollback`
    /// returns to), remembering the previous one, as `promote` does. No
    /// traffic moves: the weights arrive as their own key.
    pub fn set_stable(&self, group: &str, version: &str) {
        let mut control = self.state();
        if let Some(old) = control.stable.insert(group.to_owned(), version.to_owned())
            && old != version
        {
            control.previous_stable.insert(group.to_owned(), old);
        }
    }

    /// Drops `group`'s weight override: the config source's weights serve
    /// again. Unchanged (no generation) when there was none.
    pub fn clear_override(&self, group: &str, trigger: Trigger) -> Result<Applied, ReloadError> {
        let mut control = self.state();
        let Some(previous) = control.overrides.remove(group) else {
            return Ok(self.unchanged(trigger));
        };
        let effective = control.effective();
        let summary = format!("{group} weights back to the config's");
        let published = self.publish(&mut control, effective, trigger, summary, Vec::new());
        if published.is_err() {
            control.overrides.insert(group.to_owned(), previous);
        }
        published
    }

    /// Applies a config read (or refused) from a source that is not this
    /// controller's own, with its refusal recorded as `last_error` like a
    /// file's.
    pub fn apply_result(
        &self,
        loaded: Result<switchyard_config::Config, ReloadError>,
        trigger: Trigger,
    ) -> Result<Applied, ReloadError> {
        self.apply_loaded(loaded, trigger)
    }

    /// `group`'s override weights, if it has one.
    pub fn override_weights(&self, group: &str) -> Option<BTreeMap<String, u32>> {
        self.state().overrides.get(group).map(|o| o.weights.clone())
    }
}
