//! Switchyard's fleet: what several gateway instances share, and nothing
//! on the request path.
//!
//! - `etcd`: the config document and control state as a source besides the
//!   file (a watch with revisions; each applied revision is a generation),
//!   each instance's lease-bound status, the rollout leader.
//! - `limits`: tenants' limits made global through Redis: each instance
//!   leases a slice of every limit and reserves locally, so no request
//!   waits on a Redis round trip.
//!
//! Sits between `control` (which it drives) and `ops` (which shows it):
//! `config ← router ← proxy ← control ← fleet ← ops ← gateway`.

pub mod etcd;
pub mod leader;
pub mod limits;
pub mod rollouts;
pub mod weights;
