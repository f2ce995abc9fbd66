//! What the keys under the prefix ask for, at one revision: the desired
//! state an instance converges to. Kept as the raw values: parsing (and
//! refusing) is the applier's job, so a bad value is reported once, with
//! its key, and never stops the rest from applying.

use std::collections::{BTreeMap, BTreeSet};

use super::layout::{Entry, Layout};

/// The config document and the revision it was last written at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doc {
    /// The YAML text.
    pub text: String,
    /// `mod_revision` of `P/config`: what a compare-and-swap compares.
    pub mod_revision: i64,
}

/// The desired state under the prefix (see [`super::layout`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    /// `P/config`.
    pub config: Option<Doc>,
    /// Group → raw JSON of its weights.
    pub weights: BTreeMap<String, String>,
    /// Group → stable version.
    pub stable: BTreeMap<String, String>,
    /// Cordoned replica ids.
    pub cordons: BTreeSet<String>,
    /// Key id → raw JSON record.
    pub keys: BTreeMap<String, String>,
}

/// Whether a change touched something instances apply (not only status
/// keys or the leader's own state).
pub type Relevant = bool;

impl Desired {
    /// The state from a listing of the prefix.
    pub fn from_kvs<'a>(
        layout: &Layout,
        kvs: impl IntoIterator<Item = (&'a str, &'a str, i64)>,
    ) -> Self {
        let mut d = Self::default();
        for (k, v, rev) in kvs {
            d.put(layout, k, v, rev);
        }
        d
    }

    /// Applies a put of `key` = `value` at `mod_revision`.
    pub fn put(&mut self, layout: &Layout, key: &str, value: &str, mod_revision: i64) -> Relevant {
        let v = value.to_owned();
        match layout.classify(key) {
            Some(Entry::Config) => {
                self.config = Some(Doc {
                    text: v,
                    mod_revision,
                })
            }
            Some(Entry::Weights(g)) => drop(self.weights.insert(g, v)),
            Some(Entry::Stable(g)) => drop(self.stable.insert(g, v.trim().to_owned())),
            Some(Entry::Cordon(id)) => drop(self.cordons.insert(id)),
            Some(Entry::Key(id)) => drop(self.keys.insert(id, v)),
            Some(Entry::Instance(_) | Entry::Other) | None => return false,
        }
        true
    }

    /// Applies a delete of `key`.
    pub fn delete(&mut self, layout: &Layout, key: &str) -> Relevant {
        match layout.classify(key) {
            Some(Entry::Config) => self.config = None,
            Some(Entry::Weights(g)) => drop(self.weights.remove(&g)),
            Some(Entry::Stable(g)) => drop(self.stable.remove(&g)),
            Some(Entry::Cordon(id)) => drop(self.cordons.remove(&id)),
            Some(Entry::Key(id)) => drop(self.keys.remove(&id)),
            Some(Entry::Instance(_) | Entry::Other) | None => return false,
        }
        true
    }

    /// The config text, if any.
    pub fn text(&self) -> Option<&str> {
        self.config.as_ref().map(|d| d.text.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puts_and_deletes_build_the_desired_state() {
        let l = Layout::new("/p");
        let mut d = Desired::from_kvs(
            &l,
            [
                ("/p/config", "server: {}", 5),
                ("/p/control/weights/chat", r#"{"v1":50,"v2":50}"#, 6),
                ("/p/control/stable/chat", "v1\n", 6),
                ("/p/instances/i1", "{}", 7),
            ],
        );
        assert_eq!(d.config.as_ref().map(|c| c.mod_revision), Some(5));
        assert_eq!(d.stable.get("chat").map(String::as_str), Some("v1"));
        assert!(d.put(&l, "/p/control/cordons/a", "", 8));
        assert!(
            !d.put(&l, "/p/instances/i2", "{}", 9),
            "status keys apply nothing"
        );
        assert!(!d.put(&l, "/p/control/rollouts/chat", "{}", 9));
        assert!(d.cordons.contains("a"));
        assert!(d.delete(&l, "/p/control/weights/chat"));
        assert!(d.weights.is_empty());
        let same = d.clone();
        d.put(&l, "/p/config", "server: {}", 10);
        assert_ne!(d, same, "a rewrite moves the revision a CAS compares");
        assert_eq!(d.text(), same.text(), "but the text is the same");
    }
}
