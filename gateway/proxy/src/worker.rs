//! Which data-plane worker the current thread is.
//!
//! With dedicated workers (`server.workers`), every worker is a
//! current-thread runtime on a thread of its own. State that holds
//! sockets, such as the idle upstream connections of a
//! `upstream::pool::Pool`, is kept per worker: a socket is
//! registered with the reactor of the runtime that opened it, and using it
//! from another worker would wait on that worker's event loop for every
//! read. Threads that are not workers (the shared runtime, tests) are
//! worker 0.

use std::cell::Cell;

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as worker `index` (called once, as the
/// worker's thread starts).
pub fn enter(index: usize) {
    INDEX.with(|i| i.set(index));
}

/// The current thread's worker index (0 when it is not a worker).
pub fn index() -> usize {
    INDEX.with(Cell::get)
}

/// How many shards per-worker state keeps: enough for one per worker on
/// any machine this runs on; more workers share shards (`index % SHARDS`).
pub const SHARDS: usize = 16;

/// The shard of per-worker state the current thread uses.
pub fn shard() -> usize {
    index() % SHARDS
}
