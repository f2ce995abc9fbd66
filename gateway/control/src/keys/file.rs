//! The key state file: JSON, `{"version": 1, "keys": [...]}`, key hashes
//! only. Written atomically (a temporary file in the same directory,
//! synced, then renamed over the old one), so a crash leaves the old file
//! or the new one, never half of one; readable by its owner only.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{KeyError, KeyRecord};

/// The format this build writes and reads.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    version: u32,
    keys: Vec<KeyRecord>,
}

fn error(file: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::File {
        file: file.to_path_buf(),
        reason: reason.into(),
    }
}

/// The records in `file`; none when it does not exist yet.
pub(super) fn load(file: &Path) -> Result<Vec<KeyRecord>, KeyError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(error(file, format!("cannot read it: {e}"))),
    };
    let state: StateFile = serde_json::from_str(&text)
        .map_err(|e| error(file, format!("is not a valid key state file: {e}")))?;
    if state.version != VERSION {
        return Err(error(
            file,
            format!("has version {}, this build reads {VERSION}", state.version),
        ));
    }
    for (i, r) in state.keys.iter().enumerate() {
        if parse_hash(&r.hash).is_none() {
            return Err(error(
                file,
                format!("keys[{i}].hash is not `sha256:` and 64 hex digits"),
            ));
        }
        if state.keys[..i].iter().any(|o| o.id == r.id) {
            return Err(error(
                file,
                format!("keys[{i}].id `{}` is duplicated", r.id),
            ));
        }
    }
    Ok(state.keys)
}

/// Replaces `file` with `records`, atomically.
pub(super) fn save(file: &Path, records: &[KeyRecord]) -> Result<(), KeyError> {
    let state = StateFile {
        version: VERSION,
        keys: records.to_vec(),
    };
    let mut text = serde_json::to_vec_pretty(&state).map_err(|e| error(file, e.to_string()))?;
    text.push(b'\n');
    let name = file
        .file_name()
        .ok_or_else(|| error(file, "is not a file path"))?;
    let tmp = file.with_file_name(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        error(file, format!("cannot write it: {e}"))
    })
}

/// The digest in `sha256:<64 hex digits>`.
pub(super) fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// `sha256:<hex>` of `digest`.
pub(super) fn format_hash(digest: &[u8; 32]) -> String {
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
