//! Switchyard's routing core: the replica table, live per-replica stats, and
//! the choice of replica for a request.
//!
//! This crate owns *which* replica; it does not own *how* to talk to it. It
//! has no HTTP, no async runtime and no I/O, and takes the time as a
//! parameter, so every routing decision can be unit-tested, property-tested
//! and benchmarked on its own.
//!
//! # Layout
//! Modules from the bottom up: each imports only modules listed before it
//! (no cycles), and nothing imports `pick`.
//! - `hash`: the leaf of hashing helpers: [`affinity_key`], the mixing
//!   function behind rendezvous scores and the per-request random stream.
//! - [`health`]: passive outlier detection (eject, half-open probe,
//!   recover), active-check state with hysteresis, slow start, [`clock`].
//! - [`error`]: [`RouteError`], why no replica could be chosen.
//! - [`engine`]: what a replica's inference engine last reported (queue,
//!   KV cache), corrected for our sends since; [`prefix`]: the chained
//!   prompt-block hashes and each replica's approximate prefix cache;
//!   [`lora`]: the LoRA adapters an engine reports loaded.
//! - [`stats`]: lock-free live numbers per replica id (in-flight, EWMA
//!   latency, errors, engine figures, prefix index) and the RAII slot
//!   guard; these outlive config swaps.
//! - [`lifecycle`]: active, draining, retired across reloads.
//! - `entry`: one replica as routing reads it ([`Entry`]: capacity in slow
//!   start, routable, residency).
//! - `lane`: a version's replicas split by protocol, indexed by
//!   `Protocol` rather than one field per protocol.
//! - `policy`: one file per replica-choice policy behind one trait; a new
//!   policy is one file plus one arm there.
//! - [`table`]: a validated config turned into groups -> versions -> lanes,
//!   each group holding its policy and that policy's settings.
//! - [`pick`]: ranking candidates (pure, lazy) and admitting into a slot
//!   (one CAS).

pub mod engine;
mod entry;
pub mod error;
mod hash;
pub mod health;
mod lane;
pub mod lifecycle;
pub mod lora;
pub mod pick;
mod policy;
pub mod prefix;
pub mod stats;
pub mod table;

pub use engine::{EngineFigures, EngineLoad, EngineView};
pub use error::RouteError;
pub use hash::affinity_key;
pub use health::{ActiveView, EjectionReason, HealthState, clock, clock_at};
pub use lora::{Adapters, LoraLoad};
pub use pick::{Admitted, Ranking, RouteRequest, parse_model};
pub use prefix::{PrefixIndex, prefix_blocks};
pub use stats::{InFlightGuard, Outcome, ReplicaStats, StatsRegistry};
pub use table::{Entry, Group, ReplicaTable, VersionSlot};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
