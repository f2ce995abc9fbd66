//! What a request holds until its answer is done: its tenant's in-flight
//! place and, with token limits or budgets, its reservation. Both ride in
//! the response body ([`super::hold`]), so a stream counts until its last
//! byte or the client's disconnect.
//!
//! A reservation is settled once: by the usage the answer reports (the
//! meter books it), or when dropped unbooked: charged in full when an
//! answer was served (it reported no usage, or the client left before
//! it), refunded in full when none was (every attempt failed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use switchyard_config::Cost;
use tokio::time::Instant;

use super::account::{Account, Settle};
use crate::usage::{Usage, UsageSink};

/// A request's hold on its tenant's and key's counters.
#[derive(Debug)]
pub struct Admission {
    /// The key's account (its parent is the tenant's).
    pub(super) key: Arc<Account>,
    /// Whether a place among the tenant's in-flight requests was taken.
    pub(super) in_flight: bool,
    pub(super) reservation: Option<Arc<Reservation>>,
}

impl Admission {
    /// Where the answer's usage is booked: the reservation, or the key's
    /// account when nothing was reserved (an `Arc` clone, no allocation).
    pub fn sink(&self) -> Arc<dyn UsageSink> {
        match &self.reservation {
            Some(r) => Arc::clone(r) as Arc<dyn UsageSink>,
            None => Arc::clone(&self.key) as Arc<dyn UsageSink>,
        }
    }

    /// An answer was served: an unbooked reservation is charged, not
    /// refunded.
    pub fn served(&self) {
        if let Some(r) = &self.reservation {
            r.served.store(true, Ordering::Relaxed);
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.in_flight
            && let Some(tenant) = &self.key.parent
        {
            tenant.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Tokens and estimated cost set aside for one request.
#[derive(Debug)]
pub struct Reservation {
    pub(super) key: Arc<Account>,
    /// Tokens taken from the key's and the tenant's token buckets
    /// (`None`: that level has no token limit), and their capacities then.
    pub(super) key_tokens: Option<f64>,
    pub(super) tenant_tokens: Option<f64>,
    pub(super) key_tpm: Option<u32>,
    pub(super) tenant_tpm: Option<u32>,
    /// The minute the tokens were taken from the fleet's slices in
    /// (`None`: from this instance's buckets).
    pub(super) global_window: Option<u64>,
    /// Estimated cost added to both levels' `reserved`.
    pub(super) cost_nano: u64,
    pub(super) settled: AtomicBool,
    pub(super) served: AtomicBool,
}

impl Reservation {
    fn settle(&self, usage: Option<Usage>, price: Option<&Cost>, served: bool) {
        if self.settled.swap(true, Ordering::AcqRel) {
            return;
        }
        // `None`: the reservation stands as what was used.
        let (used, cost) = match (served, usage, price) {
            (false, _, _) => (Some(0.0), 0),
            (true, Some(u), Some(p)) => (Some(u.total() as f64), u.cost_nano(p)),
            // Served, usage unknown: the reservation is what it cost.
            (true, _, _) => (None, self.cost_nano),
        };
        let refund = |taken: Option<f64>| match (taken, used) {
            (Some(t), Some(u)) => t - u,
            _ => 0.0,
        };
        let mut s = Settle {
            refund_tokens: refund(self.key_tokens),
            tpm_cap: self.key_tpm,
            global_window: self.global_window,
            release_nano: self.cost_nano,
            cost_nano: cost,
            usage: usage.filter(|_| served),
            served,
        };
        let now = Instant::now();
        let unix = self.key.clock.unix(now);
        // The key's level, then the tenant's with its own bucket capacity.
        self.key.settle_one(&s, now, unix);
        s.tpm_cap = self.tenant_tpm;
        s.refund_tokens = refund(self.tenant_tokens);
        if let Some(tenant) = &self.key.parent {
            tenant.settle_one(&s, now, unix);
        }
    }
}

impl UsageSink for Reservation {
    fn book(&self, usage: Option<Usage>, price: &Cost) {
        self.settle(usage, Some(price), true);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let served = self.served.load(Ordering::Relaxed);
        self.settle(None, None, served);
    }
}
