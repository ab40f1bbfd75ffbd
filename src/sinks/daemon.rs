//! What the running daemon uses, as it alone knows it: its containment (the cgroup it made,
//! or why it has none) and, for each interval job, the instant its timetable fires it next.
//! In `runtime_dir/daemon.json` (a tmpfs: no flash), replaced at start and at each accepted
//! reload. `status` and `list` read it instead of working the answers out in their own
//! process, whose cgroup, environment and clock are not the daemon's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "daemon.json";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DaemonInfo {
    /// The daemon that wrote it: a file left by a dead one is not read as the live one's.
    pub pid: u32,
    /// When it was written (Unix ms): a fire recorded in the state after it is newer.
    pub written_ms: i64,
    /// `cgroup` or `subreaper`, and the line `runner status` prints (the cgroup's path).
    pub containment_mode: String,
    pub containment: String,
    /// Interval jobs' next fire as the daemon planned it (Unix ms); each later fire is
    /// a whole number of intervals after it while the daemon keeps its phase.
    pub due_ms: BTreeMap<String, i64>,
}

pub fn path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(FILE_NAME)
}

/// Replaces `runtime_dir/daemon.json` (temp file, rename; never through a planted link).
pub fn write(runtime_dir: &Path, info: &DaemonInfo) -> std::io::Result<()> {
    let json = serde_json::to_vec(info).map_err(std::io::Error::other)?;
    let tmp = runtime_dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    crate::fsx::replace(&path(runtime_dir), &tmp, &json, 0o644, false)
}

/// What the daemon with pid `pid` wrote; None if it wrote nothing or the file is another's.
pub fn read(runtime_dir: &Path, pid: u32) -> Option<DaemonInfo> {
    let bytes = crate::fsx::read(&path(runtime_dir)).ok()?;
    serde_json::from_slice::<DaemonInfo>(&bytes).ok().filter(|i| i.pid == pid)
}

/// The next fire of an interval job whose fire was planned at `due_ms`: that instant, or
/// the first one a whole number of `every`s after it that is not before `now_ms`.
pub fn next_on_phase(due_ms: i64, every_ms: i64, now_ms: i64) -> i64 {
    if due_ms >= now_ms || every_ms <= 0 {
        return due_ms;
    }
    let behind = now_ms - due_ms;
    let steps = (behind + every_ms - 1) / every_ms;
    due_ms + steps * every_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_fire_keeps_the_phase() {
        assert_eq!(next_on_phase(10_000, 3_000, 5_000), 10_000);
        assert_eq!(next_on_phase(10_000, 3_000, 10_000), 10_000);
        assert_eq!(next_on_phase(10_000, 3_000, 10_001), 13_000);
        assert_eq!(next_on_phase(10_000, 3_000, 16_000), 16_000);
        assert_eq!(next_on_phase(10_000, 3_000, 16_500), 19_000);
    }
}
