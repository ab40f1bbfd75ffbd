//! The latest sample of each check, in `runtime_dir/checks/<job>.json`: runtime_dir is a
//! tmpfs, so writing it after every sample costs no flash, unlike the state file. `status`,
//! `health` and the textfile export read it for current values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::Record;
use crate::time::epoch_ms;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Live {
    pub value: Option<f64>,
    /// The judged level (what alerts follow), none before the first judgement.
    pub level: Option<String>,
    /// Whether this sample alone was ok.
    pub sample_ok: bool,
    pub message: String,
    /// When the sample ended.
    pub at_ms: i64,
    /// How long the sample (or probe) took.
    pub duration_ms: u64,
}

pub fn dir(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("checks")
}

/// Replaces the check's live file atomically (temp file, rename).
pub fn write(runtime_dir: &Path, r: &Record) -> std::io::Result<()> {
    let live = Live {
        value: r.value,
        level: r.level.clone(),
        sample_ok: r.outcome == crate::record::Outcome::Success,
        message: r.message.clone(),
        at_ms: epoch_ms(r.started_at + r.duration),
        duration_ms: r.duration.as_millis() as u64,
    };
    let d = dir(runtime_dir);
    let (tmp, path) = (d.join(format!(".{}.tmp", r.job)), d.join(format!("{}.json", r.job)));
    let bytes = serde_json::to_vec(&live).map_err(std::io::Error::other)?;
    crate::fsx::in_own_dirs(&[(runtime_dir, true), (&d, false)], || {
        crate::fsx::replace(&path, &tmp, &bytes, 0o644, false)
    })
}

/// Every check's live file; unreadable ones are left out.
pub fn read_all(runtime_dir: &Path) -> BTreeMap<String, Live> {
    let mut out = BTreeMap::new();
    let Ok(rd) = std::fs::read_dir(dir(runtime_dir)) else { return out };
    for e in rd.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(job) = name.strip_suffix(".json").filter(|n| !n.starts_with('.')) else { continue };
        if let Some(live) = crate::fsx::read(&e.path()).ok().and_then(|b| serde_json::from_slice(&b).ok()) {
            out.insert(job.to_string(), live);
        }
    }
    out
}
