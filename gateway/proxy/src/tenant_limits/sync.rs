//! What the fleet's sync task (`switchyard-fleet`) reads and writes on
//! every account: its slices, to return or charge, and its spend, to add
//! to the fleet's day and month counters and learn the fleet's total.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use super::TenantLimits;
use super::account::Account;
use super::calendar;
use super::slot::{ConcSlot, WindowSlot};

/// One account, by tenant and key.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Tenant name.
    pub tenant: String,
    /// Key id; `None`: the tenant's own account.
    pub key: Option<String>,
    /// Its counters.
    pub account: Arc<Account>,
}

/// Spend booked on this instance and not yet added to the fleet's
/// counter of one UTC day or month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpendPush {
    /// `day` or `month`.
    pub period: &'static str,
    /// Days or months since the epoch.
    pub window: u32,
    /// Billionths of the price unit.
    pub delta: u64,
}

impl TenantLimits {
    /// Every account there is (created at their first request).
    pub fn accounts(&self) -> Vec<AccountRow> {
        let mut rows = Vec::new();
        for e in &self.by_tenant {
            rows.push(AccountRow {
                tenant: e.key().clone(),
                key: None,
                account: Arc::clone(&e.account),
            });
            for k in &e.keys {
                rows.push(AccountRow {
                    tenant: e.key().clone(),
                    key: Some(k.key().clone()),
                    account: Arc::clone(k.value()),
                });
            }
        }
        rows
    }
}

impl Account {
    /// Its requests-per-minute slice.
    pub fn rpm_slot(&self) -> &WindowSlot {
        &self.slots.rpm
    }

    /// Its tokens-per-minute slice.
    pub fn tpm_slot(&self) -> &WindowSlot {
        &self.slots.tpm
    }

    /// Its concurrency slots (a tenant's account).
    pub fn conc_slot(&self) -> &ConcSlot {
        &self.slots.conc
    }

    /// Its requests in flight.
    pub fn in_flight(&self) -> &AtomicU32 {
        &self.in_flight
    }

    /// Takes the spend not yet pushed, for the day and the month of `unix`.
    pub fn take_spend(&self, unix: u64) -> [SpendPush; 2] {
        let mut w = self.lock();
        let w = &mut *w;
        [
            ("day", &mut w.day, calendar::day(unix)),
            ("month", &mut w.month, calendar::month(unix)),
        ]
        .map(|(period, spend, window)| {
            spend.roll(window);
            SpendPush {
                period,
                window,
                delta: std::mem::take(&mut spend.unpushed),
            }
        })
    }

    /// `push` reached the fleet, whose counter now says `total`: what was
    /// spent is the fleet's total plus what was booked here since (never
    /// less than this instance knows: a Redis that lost its data does not
    /// reopen a spent budget).
    pub fn spend_pushed(&self, push: &SpendPush, total: u64) {
        let mut w = self.lock();
        let spend = if push.period == "day" {
            &mut w.day
        } else {
            &mut w.month
        };
        if spend.window == push.window {
            spend.spent = spend.spent.max(total.saturating_add(spend.unpushed));
        }
    }

    /// `push` did not reach the fleet: its spend is to push again.
    pub fn spend_unpushed(&self, push: &SpendPush) {
        let mut w = self.lock();
        let spend = if push.period == "day" {
            &mut w.day
        } else {
            &mut w.month
        };
        if spend.window == push.window {
            spend.unpushed = spend.unpushed.saturating_add(push.delta);
        }
    }
}
