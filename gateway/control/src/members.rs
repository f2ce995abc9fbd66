//! Discovered members: which addresses each template has now, and how
//! they join a config. Pure; the controller keeps one [`Members`] and lays
//! it over every config it publishes, so a reload of the file keeps the
//! members (re-instantiated from the new template) and a membership change
//! goes through the same prepare and swap as a reload.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;
use switchyard_config::{Config, Membership};

/// Member id -> address.
pub type Set = BTreeMap<String, SocketAddr>;

/// Template id -> (how they were found, its members).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Members(BTreeMap<String, (Membership, Set)>);

impl Members {
    /// `template`'s members.
    pub fn of(&self, template: &str) -> Option<&Set> {
        self.0.get(template).map(|(_, set)| set)
    }

    /// Replaces `template`'s members; returns the previous ones.
    pub fn set(&mut self, template: &str, kind: Membership, members: Set) -> Option<Set> {
        let old = if members.is_empty() {
            self.0.remove(template)
        } else {
            self.0.insert(template.to_owned(), (kind, members))
        };
        old.map(|(_, set)| set)
    }

    /// Drops the members of templates `config` no longer has, or whose
    /// source changed kind (a DNS template turned registration-based).
    pub fn retain_templates(&mut self, config: &Config) {
        self.0.retain(|t, (kind, _)| {
            config
                .templates
                .iter()
                .find(|x| &x.id == t)
                .and_then(|x| x.discovery.as_ref())
                .is_some_and(|d| d.source.kind() == *kind)
        });
    }

    /// `config` with every member of its templates appended to `replicas`.
    pub fn compose(&self, mut config: Config) -> Config {
        let mut added = Vec::new();
        for template in &config.templates {
            let Some((_, members)) = self.0.get(&template.id) else {
                continue;
            };
            added.extend(
                members
                    .iter()
                    .filter_map(|(id, addr)| template.member(*addr, Some(id.clone()))),
            );
        }
        config.replicas.extend(added);
        config
    }
}

/// What operators see of one template (`GET /admin/discovery`).
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    /// Template id.
    pub template: String,
    /// `dns` or `registered`.
    pub kind: Membership,
    /// The DNS name, or `registration`.
    pub source: String,
    /// Members now in the table.
    pub members: usize,
    /// Wall clock (ms since the epoch) of the last good resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_ok_ms: Option<u64>,
    /// The last failure, while the last good set keeps serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// "+2 -1 (3 members)".
pub fn summary(template: &str, before: Option<&Set>, after: &Set) -> String {
    let had = |id: &String| before.is_some_and(|b| b.contains_key(id));
    let added = after.keys().filter(|id| !had(id)).count();
    let removed = before.map_or(0, |b| {
        b.keys().filter(|id| !after.contains_key(*id)).count()
    });
    format!(
        "{template}: members +{added} -{removed} ({} now)",
        after.len()
    )
}
