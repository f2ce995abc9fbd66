//! Cordons that survive a restart: the ids an operator cordoned, in a
//! small JSON file next to the config (`<config>.cordons.json`), written
//! atomically (a temporary file in the same directory, synced, renamed over
//! the old one), so a crash leaves the old list or the new, never half.
//! Its own file: other control state (tenant keys) keeps its own.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The cordon file of the config at `config`.
pub fn path_for(config: &Path) -> PathBuf {
    let mut name = config
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".cordons.json");
    config.with_file_name(name)
}

/// The ids cordoned in `file`; none when it does not exist. An unreadable
/// or corrupt file is an error for the caller to report: starting with
/// every replica in rotation is safer than refusing to start.
pub fn load(file: &Path) -> Result<BTreeSet<String>, String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(format!("{}: {e}", file.display())),
    };
    #[derive(serde::Deserialize)]
    struct Saved {
        cordoned: BTreeSet<String>,
    }
    serde_json::from_str::<Saved>(&text)
        .map(|s| s.cordoned)
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// Writes `ids` to `file` atomically.
pub fn save(file: &Path, ids: &BTreeSet<String>) -> std::io::Result<()> {
    let body = serde_json::to_vec_pretty(&serde_json::json!({ "cordoned": ids }))?;
    let mut tmp_name = file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = file.with_file_name(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&body)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_file_sits_next_to_the_config_and_round_trips() {
        let dir = std::env::temp_dir().join(format!("sy-cordons-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = path_for(&dir.join("gw.yaml"));
        assert_eq!(file, dir.join("gw.yaml.cordons.json"));
        assert!(load(&file).unwrap().is_empty(), "no file: nothing cordoned");
        let ids: BTreeSet<String> = ["a".to_owned(), "pool@10.0.0.1:80".to_owned()].into();
        save(&file, &ids).unwrap();
        assert_eq!(load(&file).unwrap(), ids);
        assert!(!dir.join("gw.yaml.cordons.json.tmp").exists());
        std::fs::write(&file, "{ not json").unwrap();
        assert!(load(&file).unwrap_err().contains("gw.yaml.cordons.json"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
