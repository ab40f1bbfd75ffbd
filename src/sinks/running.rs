//! The process groups a run has started, in `runtime_dir/jobs/<job>.running` (a tmpfs),
//! beside the job's lock: written when a process starts, before it can outlive a daemon
//! crash, so a restarted daemon can end what is left (`scheduler::end_leftovers`). No
//! fsync and no flash: after a power loss nothing runs. Only the holder of the job's lock
//! writes the file; the run removes it when it ends.

use std::path::{Path, PathBuf};

use crate::state::Running;

pub fn path(runtime_dir: &Path, job: &str) -> PathBuf {
    runtime_dir.join("jobs").join(format!("{job}.running"))
}

/// The groups recorded for a job; none when there is no file or it cannot be read.
pub fn read(runtime_dir: &Path, job: &str) -> Vec<Running> {
    crate::fsx::read(&path(runtime_dir, job)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Replaces the job's list (atomically: a reader sees the old list or the new one); an
/// empty list removes the file.
pub fn write(runtime_dir: &Path, job: &str, groups: &[Running]) -> std::io::Result<()> {
    let p = path(runtime_dir, job);
    if groups.is_empty() {
        return match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let dir = runtime_dir.join("jobs");
    let tmp = dir.join(format!(".{job}.running.tmp"));
    let bytes = serde_json::to_vec(groups).map_err(std::io::Error::other)?;
    crate::fsx::in_own_dirs(&[(runtime_dir, true), (&dir, false)], || {
        crate::fsx::replace(&p, &tmp, &bytes, 0o644, false)
    })
}

/// Adds a started group.
pub fn add(runtime_dir: &Path, job: &str, group: Running) -> std::io::Result<()> {
    let mut groups = read(runtime_dir, job);
    groups.push(group);
    write(runtime_dir, job, &groups)
}

/// Drops a group that ended.
pub fn remove(runtime_dir: &Path, job: &str, pgid: u32) -> std::io::Result<()> {
    let mut groups = read(runtime_dir, job);
    let before = groups.len();
    groups.retain(|g| g.pgid != pgid);
    if groups.len() == before {
        return Ok(());
    }
    write(runtime_dir, job, &groups)
}

/// Every job with a `.running` file, and its groups.
pub fn read_all(runtime_dir: &Path) -> Vec<(String, Vec<Running>)> {
    let Ok(dir) = std::fs::read_dir(runtime_dir.join("jobs")) else { return Vec::new() };
    dir.filter_map(|e| {
        let name = e.ok()?.file_name();
        let job = name.to_str()?.strip_suffix(".running")?;
        (!job.starts_with('.')).then(|| (job.to_string(), read(runtime_dir, job)))
    })
    .collect()
}
