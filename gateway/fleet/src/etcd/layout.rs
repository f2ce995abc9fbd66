//! The key layout under the fleet's prefix `P` (shared with the rollout
//! leader; keep it exactly):
//!
//! | key | value |
//! |---|---|
//! | `P/config` | the config document, YAML as in a file (`${ENV}` resolved by each instance) |
//! | `P/control/weights/<group>` | weight override, JSON `{"v1": 90, "v2": 10}` |
//! | `P/control/stable/<group>` | the stable version (promote, rollback), plain text |
//! | `P/control/cordons/<replica_id>` | present: cordoned (value ignored) |
//! | `P/control/rollouts/<group>` | rollout state, written only by the leader |
//! | `P/keys/<key_id>` | a runtime key record (hash only), JSON as in the state file |
//! | `P/instances/<instance_id>` | lease-bound status of one instance, JSON |

/// Key names under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

/// What a key under the prefix is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `P/config`.
    Config,
    /// `P/control/weights/<group>`.
    Weights(String),
    /// `P/control/stable/<group>`.
    Stable(String),
    /// `P/control/cordons/<replica_id>`.
    Cordon(String),
    /// `P/keys/<key_id>`.
    Key(String),
    /// `P/instances/<instance_id>`.
    Instance(String),
    /// Anything else (rollout state, the leader's keys): not applied here.
    Other,
}

impl Layout {
    /// The layout under `prefix` (a trailing `/` is ignored).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// The prefix as given, without a trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `P/`: every key of the fleet starts with it.
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    /// `P/config`.
    pub fn config(&self) -> String {
        format!("{}/config", self.prefix)
    }

    /// `P/control/weights/<group>`.
    pub fn weights(&self, group: &str) -> String {
        format!("{}/control/weights/{group}", self.prefix)
    }

    /// `P/control/stable/<group>`.
    pub fn stable(&self, group: &str) -> String {
        format!("{}/control/stable/{group}", self.prefix)
    }

    /// `P/control/cordons/<replica_id>`.
    pub fn cordon(&self, id: &str) -> String {
        format!("{}/control/cordons/{id}", self.prefix)
    }

    /// `P/keys/<key_id>`.
    pub fn key(&self, id: &str) -> String {
        format!("{}/keys/{id}", self.prefix)
    }

    /// `P/instances/`: the prefix of every instance's status.
    pub fn instances(&self) -> String {
        format!("{}/instances/", self.prefix)
    }

    /// `P/instances/<instance_id>`.
    pub fn instance(&self, id: &str) -> String {
        format!("{}/instances/{id}", self.prefix)
    }

    /// What `key` is; `None` when it is not under the prefix.
    pub fn classify(&self, key: &str) -> Option<Entry> {
        let rest = key.strip_prefix(&self.root())?;
        let named = |p: &str| {
            rest.strip_prefix(p)
                .filter(|n| !n.is_empty() && !n.contains('/'))
                .map(str::to_owned)
        };
        Some(if rest == "config" {
            Entry::Config
        } else if let Some(g) = named("control/weights/") {
            Entry::Weights(g)
        } else if let Some(g) = named("control/stable/") {
            Entry::Stable(g)
        } else if let Some(id) = named("control/cordons/") {
            Entry::Cordon(id)
        } else if let Some(id) = named("keys/") {
            Entry::Key(id)
        } else if let Some(id) = named("instances/") {
            Entry::Instance(id)
        } else {
            Entry::Other
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_named_and_read_back_under_the_prefix() {
        let l = Layout::new("/sy/");
        assert_eq!(l.config(), "/sy/config");
        assert_eq!(l.classify("/sy/config"), Some(Entry::Config));
        assert_eq!(
            l.classify(&l.weights("chat")),
            Some(Entry::Weights("chat".into()))
        );
        assert_eq!(
            l.classify(&l.stable("chat")),
            Some(Entry::Stable("chat".into()))
        );
        assert_eq!(l.classify(&l.cordon("a")), Some(Entry::Cordon("a".into())));
        assert_eq!(
            l.classify(&l.key("key_1")),
            Some(Entry::Key("key_1".into()))
        );
        assert_eq!(
            l.classify(&l.instance("i1")),
            Some(Entry::Instance("i1".into()))
        );
        assert_eq!(l.classify("/sy/control/rollouts/chat"), Some(Entry::Other));
        assert_eq!(l.classify("/sy2/config"), None, "another prefix");
        assert_eq!(l.classify("/sy/control/weights/"), Some(Entry::Other));
    }
}
