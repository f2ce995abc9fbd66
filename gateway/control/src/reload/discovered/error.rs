//! What a registration call answers, and why one is refused.

use std::time::Duration;

use serde::Serialize;

use super::super::ReloadError;

/// Shortest lease a registration may ask for: heartbeats more often than
/// this are load, not liveness.
pub const MIN_TTL: Duration = Duration::from_millis(100);

/// Why a registration call was refused.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// No template with that id.
    #[error("no replica template `{0}` (a `replicas` entry with `discovery`)")]
    UnknownTemplate(String),
    /// The template's members come from DNS.
    #[error("template `{0}` is not `discovery: {{ registration: true }}`")]
    NotRegistration(String),
    /// The member's URL is not a plain address.
    #[error("url: {0}")]
    BadUrl(String),
    /// TTL out of range.
    #[error("ttl_ms: must be {min}..={max}, got {got}", min = MIN_TTL.as_millis())]
    BadTtl {
        /// The template's `max_ttl_ms`.
        max: u128,
        /// Asked for.
        got: u128,
    },
    /// The template has `max_members` members already.
    #[error("template `{template}` has its maximum of {max} members")]
    Full {
        /// Template.
        template: String,
        /// Its `max_members`.
        max: u32,
    },
    /// Heartbeat or deregistration of a member without a lease.
    #[error("no lease `{0}` (never registered, deregistered or expired: register again)")]
    UnknownLease(String),
    /// The table could not be rebuilt with the member; nothing changed.
    #[error(transparent)]
    Reload(#[from] ReloadError),
}

impl RegisterError {
    /// HTTP status of the answer.
    pub fn status(&self) -> u16 {
        match self {
            RegisterError::UnknownTemplate(_) | RegisterError::UnknownLease(_) => 404,
            RegisterError::Full { .. } => 409,
            RegisterError::Reload(_) => 500,
            _ => 400,
        }
    }

    /// The request field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            RegisterError::UnknownTemplate(_) | RegisterError::NotRegistration(_) => "template",
            RegisterError::BadUrl(_) => "url",
            RegisterError::BadTtl { .. } => "ttl_ms",
            RegisterError::UnknownLease(_) => "id",
            RegisterError::Full { .. } | RegisterError::Reload(_) => "",
        }
    }
}

/// A lease as granted or renewed.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    /// Member id: heartbeat and deregister with it.
    pub id: String,
    /// Template.
    pub template: String,
    /// The member's URL (the template's path on the registered address).
    pub url: String,
    /// Lease length, ms.
    pub ttl_ms: u64,
    /// True when this call added the member (false: a renewal).
    pub created: bool,
}
