//! Discovered members entering and leaving the table: DNS answers and
//! registration leases. Each change is one `publish`, exactly like a
//! reload: fallible prepare, one swap, removed members drain. A member
//! keeps its live stats across changes because its id and URL do not
//! change (`template@addr`).

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_config::{DiscoverySource, Membership, Replica};
use tokio::time::Instant;

use super::{Applied, Control, Controller, ReloadError, Trigger};
use crate::lease::{Lease, LeaseView};
use crate::members::{self, Set, SourceStatus};

mod error;
pub use error::{MIN_TTL, RegisterError, Registered};

impl Controller {
    /// A DNS template's name now resolves to `addrs`: the members follow
    /// (at most `max_members`, lowest addresses first).
    pub fn set_dns_members(
        &self,
        template: &str,
        source: &str,
        addrs: &[SocketAddr],
    ) -> Result<Applied, ReloadError> {
        self.set_discovered(template, Membership::Dns, source, addrs)
    }

    /// A Kubernetes template's EndpointSlices now have `addrs` ready: the
    /// members follow (at most `max_members`, lowest addresses first). An
    /// empty set is the Service's answer (scaled to zero), not a failure.
    pub fn set_kubernetes_members(
        &self,
        template: &str,
        source: &str,
        addrs: &[SocketAddr],
    ) -> Result<Applied, ReloadError> {
        self.set_discovered(template, Membership::Kubernetes, source, addrs)
    }

    fn set_discovered(
        &self,
        template: &str,
        kind: Membership,
        source: &str,
        addrs: &[SocketAddr],
    ) -> Result<Applied, ReloadError> {
        let trigger = match kind {
            Membership::Kubernetes => Trigger::Kubernetes,
            _ => Trigger::Dns,
        };
        let mut control = self.state();
        let max = template_of(&control, template)
            .and_then(|t| t.discovery.as_ref())
            .map_or(0, |d| d.max_members as usize);
        let mut sorted = addrs.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let error = (sorted.len() > max).then(|| {
            format!(
                "{} addresses; only the first {max} (max_members) are used",
                sorted.len()
            )
        });
        let set: Set = sorted
            .into_iter()
            .take(max)
            .map(|a| (format!("{template}@{a}"), a))
            .collect();
        let count = set.len();
        let applied = self.set_members_locked(&mut control, template, kind, set, trigger)?;
        control.discovery.insert(
            template.to_owned(),
            SourceStatus {
                template: template.to_owned(),
                kind,
                source: source.to_owned(),
                members: count,
                last_ok_ms: Some(crate::events::wall_ms()),
                last_error: error,
            },
        );
        Ok(applied)
    }

    /// A DNS template's resolution failed or found nothing: its last good
    /// members keep serving, and the error is shown.
    pub fn dns_failed(&self, template: &str, source: &str, error: String) {
        self.discovery_failed(template, Membership::Dns, source, error);
    }

    /// A Kubernetes template's list or watch failed: its last members keep
    /// serving until a list succeeds, and the error is shown.
    pub fn kubernetes_failed(&self, template: &str, source: &str, error: String) {
        self.discovery_failed(template, Membership::Kubernetes, source, error);
    }

    fn discovery_failed(&self, template: &str, kind: Membership, source: &str, error: String) {
        let mut control = self.state();
        let members = control.members.of(template).map_or(0, |m| m.len());
        let entry = control
            .discovery
            .entry(template.to_owned())
            .or_insert_with(|| SourceStatus {
                template: template.to_owned(),
                kind,
                source: source.to_owned(),
                members,
                last_ok_ms: None,
                last_error: None,
            });
        if entry.last_error.as_deref() != Some(error.as_str()) {
            self.events.push(
                "discovery_failed",
                template.to_owned(),
                format!("{source}: {error}; {members} members keep serving"),
            );
        }
        entry.last_error = Some(error);
    }

    /// Registers (or renews) a member of a `registration` template at `url`
    /// for `ttl` (default: the template's `max_ttl_ms`).
    pub fn register(
        &self,
        template: &str,
        url: &str,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Result<Registered, RegisterError> {
        let mut control = self.state();
        let t = template_of(&control, template)
            .ok_or_else(|| RegisterError::UnknownTemplate(template.to_owned()))?;
        let Some(discovery) = t.discovery.clone() else {
            return Err(RegisterError::UnknownTemplate(template.to_owned()));
        };
        let DiscoverySource::Registration { max_ttl } = discovery.source else {
            return Err(RegisterError::NotRegistration(template.to_owned()));
        };
        let addr = switchyard_config::member_addr(url).map_err(RegisterError::BadUrl)?;
        if !url.starts_with(&format!("{}:", t.url.scheme())) {
            return Err(RegisterError::BadUrl(format!(
                "the template speaks {}; register an {0} URL",
                t.url.scheme()
            )));
        }
        let member_url = t.member(addr, None).map(|m| m.url.to_string());
        let ttl = ttl.unwrap_or(max_ttl);
        if ttl < MIN_TTL || ttl > max_ttl {
            return Err(RegisterError::BadTtl {
                max: max_ttl.as_millis(),
                got: ttl.as_millis(),
            });
        }
        let id = format!("{template}@{addr}");
        let lease = Lease {
            template: template.to_owned(),
            addr,
            ttl,
            expires: now + ttl,
        };
        let existing = control.leases.get(&id).is_some();
        let count = control.leases.members(template).len();
        if !existing && count >= discovery.max_members as usize {
            return Err(RegisterError::Full {
                template: template.to_owned(),
                max: discovery.max_members,
            });
        }
        let created = control.leases.grant(&id, lease);
        if created {
            let set = control.leases.members(template);
            let published = self.set_members_locked(
                &mut control,
                template,
                Membership::Registered,
                set,
                Trigger::Registration,
            );
            if let Err(e) = published {
                control.leases.remove(&id);
                return Err(e.into());
            }
            self.events.push(
                "replica_registered",
                id.clone(),
                format!("lease of {} ms", ttl.as_millis()),
            );
        }
        Ok(Registered {
            id,
            template: template.to_owned(),
            url: member_url.unwrap_or_default(),
            ttl_ms: ttl.as_millis() as u64,
            created,
        })
    }

    /// Renews `id`'s lease for its TTL.
    pub fn heartbeat(&self, id: &str, now: Instant) -> Result<LeaseView, RegisterError> {
        let mut control = self.state();
        control
            .leases
            .renew(id, now)
            .ok_or_else(|| RegisterError::UnknownLease(id.to_owned()))?;
        control
            .leases
            .view(now)
            .into_iter()
            .find(|l| l.id == id)
            .ok_or_else(|| RegisterError::UnknownLease(id.to_owned()))
    }

    /// Ends `id`'s lease now: the member leaves rotation and drains.
    pub fn deregister(&self, id: &str) -> Result<Applied, RegisterError> {
        let mut control = self.state();
        let lease = control
            .leases
            .remove(id)
            .ok_or_else(|| RegisterError::UnknownLease(id.to_owned()))?;
        self.events.push(
            "replica_deregistered",
            id.to_owned(),
            "lease ended by the member".to_owned(),
        );
        let set = control.leases.members(&lease.template);
        Ok(self.set_members_locked(
            &mut control,
            &lease.template,
            Membership::Registered,
            set,
            Trigger::Registration,
        )?)
    }

    /// Whether a lease ran out by `now` (a cheap look before a publish).
    pub fn has_expired_leases(&self, now: Instant) -> bool {
        self.state().leases.any_expired(now)
    }

    /// Takes out the members whose lease expired by `now` (they drain).
    pub fn expire_leases(&self, now: Instant) {
        let mut control = self.state();
        let gone = control.leases.expire(now);
        let mut templates: Vec<String> = Vec::new();
        for (id, lease) in gone {
            self.events.push(
                "lease_expired",
                id,
                format!("no heartbeat for {} ms: draining", lease.ttl.as_millis()),
            );
            if !templates.contains(&lease.template) {
                templates.push(lease.template);
            }
        }
        for t in templates {
            let set = control.leases.members(&t);
            if let Err(e) = self.set_members_locked(
                &mut control,
                &t,
                Membership::Registered,
                set,
                Trigger::Registration,
            ) {
                tracing::error!(template = %t, error = %e, "expired members could not be removed");
            }
        }
    }

    /// Every template's source and every lease, for operators.
    pub fn discovery_view(&self, now: Instant) -> (Vec<SourceStatus>, Vec<LeaseView>) {
        let control = self.state();
        let sources = control
            .base
            .templates
            .iter()
            .filter_map(|t| {
                let d = t.discovery.as_ref()?;
                let members = control.members.of(&t.id).map_or(0, |m| m.len());
                // A status kept from before a reload changed the source's
                // kind is not this source's.
                let status = control
                    .discovery
                    .get(&t.id)
                    .filter(|s| s.kind == d.source.kind())
                    .cloned();
                Some(status.map_or_else(
                    || SourceStatus {
                        template: t.id.clone(),
                        kind: d.source.kind(),
                        source: d.source.name(),
                        members,
                        last_ok_ms: None,
                        last_error: None,
                    },
                    |s| SourceStatus { members, ..s },
                ))
            })
            .collect();
        (sources, control.leases.view(now))
    }

    fn set_members_locked(
        &self,
        control: &mut Control,
        template: &str,
        kind: Membership,
        set: Set,
        trigger: Trigger,
    ) -> Result<Applied, ReloadError> {
        let before = control.members.of(template).cloned();
        if before.as_ref().map_or(set.is_empty(), |b| *b == set) {
            return Ok(self.unchanged(trigger));
        }
        let summary = members::summary(template, before.as_ref(), &set);
        let previous = control.members.clone();
        control.members.set(template, kind, set);
        let effective = control.effective();
        let published = self.publish(control, effective, trigger, summary, Vec::new());
        if published.is_err() {
            control.members = previous;
        }
        published
    }
}

fn template_of<'c>(control: &'c Control, id: &str) -> Option<&'c Replica> {
    control.base.templates.iter().find(|t| t.id == id)
}

#[cfg(test)]
mod tests;
