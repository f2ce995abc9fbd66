//! Registration leases, pure: every call takes `now`, so expiry is tested
//! without waiting. A lease is held by a member that registered with a TTL
//! and renews it by heartbeat; one that is not renewed within its TTL
//! expires, and its member leaves the table (it drains, like any replica
//! a reload removes).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// One member's lease.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The template it was registered under.
    pub template: String,
    /// Its address.
    pub addr: SocketAddr,
    /// How long a heartbeat keeps it.
    pub ttl: Duration,
    /// When it expires unless renewed.
    pub expires: Instant,
}

/// A lease as `GET /admin/registrations` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseView {
    /// Member id (`template@addr`).
    pub id: String,
    /// Template.
    pub template: String,
    /// Address.
    pub addr: String,
    /// Lease length, ms.
    pub ttl_ms: u64,
    /// Time left, ms.
    pub expires_in_ms: u64,
}

/// Every live lease, by member id.
#[derive(Debug, Default)]
pub struct Leases {
    by_id: BTreeMap<String, Lease>,
}

impl Leases {
    /// Grants or renews `id`'s lease; returns whether the member is new
    /// (the table must change) rather than renewed.
    pub fn grant(&mut self, id: &str, lease: Lease) -> bool {
        self.by_id.insert(id.to_owned(), lease).is_none()
    }

    /// Renews `id`'s lease for its TTL from `now`; `None` when it has none
    /// (never registered, deregistered or already expired: register again).
    pub fn renew(&mut self, id: &str, now: Instant) -> Option<&Lease> {
        let lease = self.by_id.get_mut(id)?;
        if lease.expires <= now {
            return None;
        }
        lease.expires = now + lease.ttl;
        Some(lease)
    }

    /// Ends `id`'s lease now.
    pub fn remove(&mut self, id: &str) -> Option<Lease> {
        self.by_id.remove(id)
    }

    /// Takes out every lease that expired by `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<(String, Lease)> {
        let gone: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        gone.into_iter()
            .filter_map(|id| self.by_id.remove(&id).map(|l| (id, l)))
            .collect()
    }

    /// Whether any lease expired by `now`.
    pub fn any_expired(&self, now: Instant) -> bool {
        self.by_id.values().any(|l| l.expires <= now)
    }

    /// Drops the leases of templates `keep` refuses (a reload removed them).
    pub fn retain_templates(&mut self, keep: impl Fn(&str) -> bool) {
        self.by_id.retain(|_, l| keep(&l.template));
    }

    /// The members of `template`: id -> address.
    pub fn members(&self, template: &str) -> BTreeMap<String, SocketAddr> {
        self.by_id
            .iter()
            .filter(|(_, l)| l.template == template)
            .map(|(id, l)| (id.clone(), l.addr))
            .collect()
    }

    /// The lease of `id`.
    pub fn get(&self, id: &str) -> Option<&Lease> {
        self.by_id.get(id)
    }

    /// Every lease, for operators.
    pub fn view(&self, now: Instant) -> Vec<LeaseView> {
        self.by_id
            .iter()
            .map(|(id, l)| LeaseView {
                id: id.clone(),
                template: l.template.clone(),
                addr: l.addr.to_string(),
                ttl_ms: l.ttl.as_millis() as u64,
                expires_in_ms: l.expires.saturating_duration_since(now).as_millis() as u64,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(addr: &str, ttl_ms: u64, now: Instant) -> Lease {
        Lease {
            template: "gpu".into(),
            addr: addr.parse().unwrap_or_else(|e| panic!("{e}")),
            ttl: Duration::from_millis(ttl_ms),
            expires: now + Duration::from_millis(ttl_ms),
        }
    }

    #[test]
    fn a_lease_lives_while_it_is_renewed_and_expires_one_ttl_after_the_last_heartbeat() {
        let t0 = Instant::now();
        let mut leases = Leases::default();
        assert!(leases.grant("gpu@10.0.0.1:80", lease("10.0.0.1:80", 1000, t0)));
        for s in 1..=5 {
            let at = t0 + Duration::from_millis(800 * s);
            assert!(leases.renew("gpu@10.0.0.1:80", at).is_some(), "renewal {s}");
            assert!(leases.expire(at).is_empty());
        }
        let last = t0 + Duration::from_millis(4000);
        assert!(leases.expire(last + Duration::from_millis(999)).is_empty());
        let gone = leases.expire(last + Duration::from_millis(1000));
        assert_eq!(gone.len(), 1);
        assert!(leases.members("gpu").is_empty());
        assert!(
            leases.renew("gpu@10.0.0.1:80", last).is_none(),
            "an expired member must register again"
        );
    }

    #[test]
    fn registering_again_is_a_renewal_not_a_new_member() {
        let t0 = Instant::now();
        let mut leases = Leases::default();
        assert!(leases.grant("a", lease("10.0.0.1:80", 1000, t0)));
        assert!(!leases.grant("a", lease("10.0.0.1:80", 1000, t0)));
        assert!(leases.grant("b", lease("10.0.0.2:80", 1000, t0)));
        assert_eq!(leases.members("gpu").len(), 2);
        assert!(leases.remove("a").is_some());
        assert_eq!(leases.members("gpu").len(), 1);
        leases.retain_templates(|t| t != "gpu");
        assert!(leases.members("gpu").is_empty());
    }
}
