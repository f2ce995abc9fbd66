//! The fleet's one error type.

use switchyard_config::ConfigError;

use super::status::RefusalError;

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// etcd answered with an error, or could not be reached.
    #[error("etcd at {endpoint}: {source}")]
    Etcd {
        /// The endpoint.
        endpoint: String,
        /// What the client said (in the message, not a `source`: the
        /// client's own text already repeats its cause).
        source: etcd_client::Error,
    },
    /// etcd did not answer in time.
    #[error("etcd at {endpoint}: no answer within {ms} ms")]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// How long was waited.
        ms: u64,
    },
    /// A compare-and-swap lost: someone else changed the key first.
    #[error(
        "{key} was changed by someone else (now at revision {found}, read at revision {expected}): \
         the edit was refused, not merged; read it again and retry"
    )]
    Conflict {
        /// The key.
        key: String,
        /// The revision the write was based on.
        expected: i64,
        /// The key's revision now.
        found: i64,
    },
    /// There is no config document under the prefix.
    #[error("no config document at {0}: write one with `switchyard fleet apply FILE`")]
    NoConfig(String),
    /// The document under the prefix does not validate.
    #[error("the config at {key} is invalid: {source}")]
    Config {
        /// The key.
        key: String,
        /// Every problem, with its field path.
        #[source]
        source: ConfigError,
    },
    /// A value is unusable (what was asked, not what etcd holds).
    #[error("{0}")]
    Invalid(String),
    /// This instance refused the change it wrote (the old state serves).
    #[error("this instance refused the change at revision {revision}: {}", summary(.errors))]
    Refused {
        /// The revision of the change.
        revision: i64,
        /// Every problem.
        errors: Vec<RefusalError>,
    },
    /// This instance did not apply the change in time (etcd unreachable?).
    #[error("this instance has not applied revision {revision} after {ms} ms")]
    NotApplied {
        /// The revision of the change.
        revision: i64,
        /// How long was waited.
        ms: u64,
    },
}

fn summary(errors: &[RefusalError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.path, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}
