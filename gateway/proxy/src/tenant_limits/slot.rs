//! This instance's slice of one fleet-wide limit (`global_limits`): what
//! it leased from the shared counters and may still admit without asking
//! them. Requests take from the slice under a short lock; only a miss (the
//! slice is spent) asks the [`super::Leaser`]; the fleet's sync task
//! returns what an idle slice holds and charges what answers used beyond
//! their reservation.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A per-minute limit's slice (requests or tokens per minute), in a fixed
/// window: window `w` is the minute `[60 w, 60 w + 60)` of Unix time, the
/// key every instance leases from.
#[derive(Debug, Default)]
pub struct WindowSlot(Mutex<WindowState>);

#[derive(Debug, Default)]
struct WindowState {
    window: u64,
    /// What this instance may still admit in `window`; negative: owed
    /// (answers used more tokens than they reserved).
    held: i64,
    /// The fleet granted less than asked: nothing left this window. The
    /// sync clears it, so a miss asks again once a sync interval.
    exhausted: bool,
    /// Taken since the last sync (an idle slice is returned).
    used: bool,
    /// What the fleet had left at the last lease (for the headers).
    fleet_left: u64,
}

/// What a take found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Take {
    /// Taken from the slice; what the instance and fleet have left.
    Taken { left: u64 },
    /// The slice is short: lease `ask` (then take again).
    Miss { ask: u64 },
    /// The fleet has nothing left this window.
    Spent,
}

impl WindowSlot {
    fn lock(&self) -> MutexGuard<'_, WindowState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `n` in `window`; a miss asks for a slice (and at least `n`).
    pub(super) fn take(&self, window: u64, n: u64, slice: u64) -> Take {
        let mut s = self.lock();
        if s.window != window {
            // What an old window held is stranded: its key expires.
            *s = WindowState {
                window,
                ..WindowState::default()
            };
        }
        let want = n as i64;
        if s.held >= want {
            s.held -= want;
            s.used = true;
            return Take::Taken {
                left: s.held as u64 + s.fleet_left,
            };
        }
        if s.exhausted {
            return Take::Spent;
        }
        // Owed units are paid from the lease first.
        Take::Miss {
            ask: slice.max(n).saturating_add(s.held.min(0).unsigned_abs()),
        }
    }

    /// Adds what a lease for `window` got; `short`: less than asked.
    pub(super) fn granted(&self, window: u64, got: u64, fleet_left: u64, short: bool) {
        let mut s = self.lock();
        if s.window == window {
            s.held += got as i64;
            s.fleet_left = fleet_left;
            s.exhausted |= short;
        }
    }

    /// Gives `n` back to `window` (negative: charges more).
    pub(super) fn give(&self, window: u64, n: i64) {
        let mut s = self.lock();
        if s.window == window {
            s.held += n;
        }
    }

    /// For the sync: the window and how much to hand back to the fleet
    /// (positive: an idle slice returned; negative: a debt charged), taken
    /// off the slice now. `None`: nothing to do.
    pub fn settle(&self, window: u64) -> Option<(u64, i64)> {
        let mut s = self.lock();
        s.exhausted = false;
        if s.window != window {
            return None;
        }
        let idle = !std::mem::take(&mut s.used);
        let delta = match s.held {
            h if h < 0 => h,
            h if h > 0 && idle => h,
            _ => return None,
        };
        s.held -= delta;
        Some((s.window, delta))
    }

    /// For the last sync before the instance stops: everything held in
    /// `window`, idle or not, handed back (or owed, charged).
    pub fn release(&self, window: u64) -> Option<(u64, i64)> {
        let mut s = self.lock();
        if s.window != window || s.held == 0 {
            return None;
        }
        let delta = std::mem::take(&mut s.held);
        Some((s.window, delta))
    }

    /// A settle the fleet did not receive: the delta is this instance's
    /// again.
    pub fn unsettle(&self, window: u64, delta: i64) {
        self.give(window, delta);
    }
}

/// The tenant's concurrency slots held by this instance: at most this
/// many of its requests may be in flight here.
#[derive(Debug, Default)]
pub struct ConcSlot(Mutex<ConcState>);

#[derive(Debug, Default)]
struct ConcState {
    held: u64,
    used: bool,
    exhausted: bool,
}

impl ConcSlot {
    fn lock(&self) -> MutexGuard<'_, ConcState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one more in `in_flight` when a held slot is free.
    pub(super) fn take(&self, in_flight: &AtomicU32, slice: u64) -> Take {
        let mut s = self.lock();
        let now = u64::from(in_flight.load(Ordering::Acquire));
        if now < s.held {
            in_flight.fetch_add(1, Ordering::AcqRel);
            s.used = true;
            return Take::Taken {
                left: s.held - now - 1,
            };
        }
        if s.exhausted {
            return Take::Spent;
        }
        Take::Miss { ask: slice.max(1) }
    }

    /// Adds leased slots.
    pub(super) fn granted(&self, got: u64, short: bool) {
        let mut s = self.lock();
        s.held += got;
        s.exhausted |= short;
    }

    /// For the sync: slots to hand back (all but those in flight when
    /// idle since the last sync, else all but one slice of headroom).
    pub fn settle(&self, in_flight: &AtomicU32, slice: u64) -> u64 {
        let mut s = self.lock();
        s.exhausted = false;
        let busy = u64::from(in_flight.load(Ordering::Acquire));
        let keep = if std::mem::take(&mut s.used) {
            busy + slice
        } else {
            busy
        };
        let back = s.held.saturating_sub(keep);
        s.held -= back;
        back
    }

    /// Slots held (what this instance's lease in the fleet says).
    pub fn held(&self) -> u64 {
        self.lock().held
    }
}
