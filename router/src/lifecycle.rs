//! A replica's life across config reloads: active, then (once a reload
//! removes it) draining, then retired when its drain window is over; and,
//! independently, cordoned by an operator (no new requests until
//! uncordoned).
//!
//! The flag lives on [`ReplicaStats`] because that is what every request
//! holding the replica's slot can already see: a request pinned to an old
//! snapshot keeps serving on a draining replica, and a stream still running
//! when the replica retires learns it on its next frame.

use std::sync::atomic::Ordering;

use crate::stats::ReplicaStats;

const ACTIVE: u8 = 0;
const DRAINING: u8 = 1;
const RETIRED: u8 = 2;

impl ReplicaStats {
    /// Marks the replica as removed: no new requests (admission skips it),
    /// in-flight ones continue.
    pub fn drain(&self) {
        let _ =
            self.lifecycle
                .compare_exchange(ACTIVE, DRAINING, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The drain window is over: requests still running on this replica
    /// end with an explicit error.
    pub fn retire(&self) {
        self.lifecycle.store(RETIRED, Ordering::Release);
    }

    /// Removed by a reload (draining or retired).
    pub fn is_draining(&self) -> bool {
        self.lifecycle.load(Ordering::Acquire) != ACTIVE
    }

    /// Drain window over.
    pub fn is_retired(&self) -> bool {
        self.lifecycle.load(Ordering::Acquire) == RETIRED
    }

    /// An operator takes the replica out of rotation: no new requests,
    /// in-flight ones finish. Returns whether it was not cordoned before.
    pub fn cordon(&self) -> bool {
        !self.cordoned.swap(true, Ordering::AcqRel)
    }

    /// Back in rotation. Returns whether it was cordoned.
    pub fn uncordon(&self) -> bool {
        self.cordoned.swap(false, Ordering::AcqRel)
    }

    /// Cordoned by an operator.
    pub fn is_cordoned(&self) -> bool {
        self.cordoned.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{ReplicaTable, RouteError, RouteRequest, StatsRegistry};
    use switchyard_config::{Protocol, load_str};

    const TWO: &str = r#"
clouds: { c: { provider: private } }
models: [{ name: m, versions: [{ name: v1, weight: 100 }] }]
replicas:
  - { id: a, model: m, cloud: c, url: "http://127.0.0.1:1", max_concurrency: 8 }
  - { id: b, model: m, cloud: c, url: "http://127.0.0.1:2", max_concurrency: 8 }
"#;

    /// The two-replica table and a plain request for its group.
    fn two() -> (ReplicaTable, RouteRequest<'static>) {
        let table = ReplicaTable::build(&load_str(TWO, &|_| None).unwrap(), &StatsRegistry::new());
        let req = RouteRequest {
            model: "m",
            protocol: Protocol::OpenAi,
            clouds: &[],
            affinity_key: None,
            prefix: &[],
            adapter: None,
        };
        (table, req)
    }

    #[test]
    fn draining_replicas_are_a_last_resort_and_retired_ones_never_serve() {
        let (table, req) = two();
        let (a, b) = (&table.entries()[0].stats, &table.entries()[1].stats);
        a.drain();
        for seed in 0..50 {
            let ranking = table.rank(&req, seed).unwrap();
            let got = table.admit("m", &ranking, &[]).unwrap();
            assert_eq!(got.entry.replica.id, "b", "a live replica goes first");
        }
        b.drain();
        let ranking = table.rank(&req, 7).unwrap();
        assert!(
            table.admit("m", &ranking, &[]).is_ok(),
            "a pinned request still finds a draining replica"
        );
        a.retire();
        b.retire();
        assert!(matches!(
            table.admit("m", &ranking, &[]),
            Err(RouteError::NoCapacity { .. })
        ));
    }

    #[test]
    fn a_cordoned_replica_gets_nothing_until_uncordoned() {
        let (table, req) = two();
        let (a, b) = (&table.entries()[0].stats, &table.entries()[1].stats);
        assert!(a.cordon() && !a.cordon(), "cordon reports a change once");
        for seed in 0..50 {
            let ranking = table.rank(&req, seed).unwrap();
            assert_eq!(
                table.admit("m", &ranking, &[]).unwrap().entry.replica.id,
                "b"
            );
        }
        b.cordon();
        let ranking = table.rank(&req, 1).unwrap();
        assert!(
            matches!(
                table.admit("m", &ranking, &[]),
                Err(RouteError::NoCapacity { .. })
            ),
            "unlike a draining replica, a cordoned one is not even a last resort"
        );
        assert!(a.uncordon());
        assert_eq!(
            table.admit("m", &ranking, &[]).unwrap().entry.replica.id,
            "a"
        );
    }

    #[test]
    fn drains_then_retires_and_never_goes_back() {
        let s = ReplicaStats::default();
        assert!(!s.is_draining());
        s.drain();
        assert!(s.is_draining() && !s.is_retired());
        s.retire();
        s.drain();
        assert!(s.is_retired(), "drain after retire must not revive it");
    }
}
