//! One instance's status, as it publishes it under `P/instances/<id>`
//! (bound to its lease: it vanishes when the instance dies) and as
//! `GET /admin/fleet` and `switchyard fleet status` show it.

use serde::{Deserialize, Serialize};

/// One problem of a refused change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalError {
    /// The field path (`models[0].versions`), or the etcd key of a
    /// control value (`control/weights/chat`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// A change this instance refused; the previous state kept serving.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The etcd revision of the refused change.
    pub revision: i64,
    /// Every problem.
    pub errors: Vec<RefusalError>,
}

/// What `P/instances/<id>` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Instance id (`--instance-id`, default host name and PID).
    pub id: String,
    /// The gateway's version.
    pub version: String,
    /// Unix milliseconds.
    pub started_at: u64,
    /// Data-plane address.
    pub data_addr: String,
    /// Admin address.
    pub admin_addr: String,
    /// The store revision up to which every change under the prefix has
    /// been applied (or refused).
    pub revision: i64,
    /// SHA-256 (hex) of the config document it serves.
    pub hash: String,
    /// The last change it refused, if any.
    pub last_refusal: Option<Refusal>,
    /// Whether it lost etcd (serving the last good state meanwhile).
    pub degraded: bool,
    /// Why, while degraded.
    pub degraded_reason: Option<String>,
}

impl InstanceStatus {
    /// Whether it serves revision `revision` of a change: applied it, or
    /// refused it (then `Err` with the refusal).
    pub fn confirms(&self, revision: i64) -> Option<Result<(), &Refusal>> {
        if self.revision < revision {
            return None;
        }
        Some(match &self.last_refusal {
            Some(r) if r.revision >= revision => Err(r),
            _ => Ok(()),
        })
    }
}

/// SHA-256 (hex) of a config document.
pub fn doc_hash(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(revision: i64, refused_at: Option<i64>) -> InstanceStatus {
        InstanceStatus {
            id: "i".into(),
            version: "0".into(),
            started_at: 0,
            data_addr: String::new(),
            admin_addr: String::new(),
            revision,
            hash: doc_hash(""),
            last_refusal: refused_at.map(|revision| Refusal {
                revision,
                errors: vec![],
            }),
            degraded: false,
            degraded_reason: None,
        }
    }

    #[test]
    fn a_status_confirms_a_revision_it_reached_unless_it_refused_it() {
        assert!(status(4, None).confirms(5).is_none(), "not there yet");
        assert!(matches!(status(5, None).confirms(5), Some(Ok(()))));
        assert!(matches!(status(6, Some(4)).confirms(5), Some(Ok(()))));
        assert!(matches!(status(6, Some(5)).confirms(5), Some(Err(_))));
        assert_eq!(
            doc_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
