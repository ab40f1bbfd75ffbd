//! What the daemon last loaded: the text of each config file it read (the main file, then its
//! drop-ins), in `runtime_dir/loaded.json` (a tmpfs: no flash), replaced atomically at start
//! and at each accepted reload. `status`, `health` and `logs` resolve it again
//! (`config::load_saved`) when the file on disk is refused, so they still show what runs.
//! Written owner-only: a config's commands may hold secrets.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Plan;

pub const FILE_NAME: &str = "loaded.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Loaded {
    /// When the daemon loaded it (RFC 3339, UTC).
    pub loaded_at: String,
    pub files: Vec<LoadedFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoadedFile {
    pub path: PathBuf,
    pub text: String,
}

impl Loaded {
    /// The files as `config::load_saved` takes them.
    pub fn files(&self) -> Vec<(PathBuf, String)> {
        self.files.iter().map(|f| (f.path.clone(), f.text.clone())).collect()
    }
}

pub fn path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(FILE_NAME)
}

/// Replaces `runtime_dir/loaded.json` with what `plan` was read from (temp file, rename).
pub fn write(runtime_dir: &Path, plan: &Plan) -> std::io::Result<()> {
    let loaded = Loaded {
        loaded_at: crate::time::utc_text(jiff::Timestamp::now()),
        files: plan
            .files
            .iter()
            .zip(&plan.texts)
            .map(|(path, text)| LoadedFile { path: path.clone(), text: text.clone() })
            .collect(),
    };
    let json = serde_json::to_vec(&loaded).map_err(std::io::Error::other)?;
    let to = path(runtime_dir);
    let tmp = runtime_dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    // Never through a link planted in the runtime directory (`fsx`): O_EXCL temp, rename.
    crate::fsx::replace(&to, &tmp, &json, 0o600, false)
}

/// What the daemon whose runtime directory is `runtime_dir` last loaded.
pub fn read(runtime_dir: &Path) -> Result<Loaded, String> {
    let p = path(runtime_dir);
    let bytes = crate::fsx::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", p.display()))
}
