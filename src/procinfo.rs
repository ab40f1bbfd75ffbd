//! Facts about processes read from /proc, for decisions that must not hit the wrong process.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Boot time from /proc/stat's `btime`.
pub fn boot_time() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// When the process started, as wall time (stat field 22, ticks since boot).
pub fn start_time(pid: u32) -> Option<SystemTime> {
    let ticks = crate::proc::stat(pid as i32).ok()?.starttime;
    // The one answer `proc` uses for every /proc time: sysconf(_SC_CLK_TCK).
    Some(boot_time()? + Duration::from_millis(ticks * 1000 / crate::proc::ticks_per_second()))
}

/// The process group of a process (stat field 5).
pub fn pgrp(pid: u32) -> Option<u32> {
    u32::try_from(crate::proc::stat(pid as i32).ok()?.pgrp).ok()
}

/// Whether process group `pgid` still exists and is the one a run started at `since_ms`:
/// either its leader is alive and started within two seconds of then, or the leader is gone
/// and members remain (Linux does not reuse a pid while a group still bears it).
pub fn group_is_from(pgid: u32, since_ms: i64) -> bool {
    if pgid <= 1 {
        return false;
    }
    if let Some(start) = start_time(pgid) {
        let started_ms = crate::time::epoch_ms(start);
        return pgrp(pgid) == Some(pgid) && (started_ms - since_ms).abs() <= 2_000;
    }
    let Ok(pids) = crate::proc::pids(std::path::Path::new("/proc")) else { return false };
    pids.filter_map(|pid| u32::try_from(pid).ok()).any(|pid| pgrp(pid) == Some(pgid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_started_recently_and_is_found() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        let age = SystemTime::now().duration_since(start).unwrap_or_default();
        assert!(age < Duration::from_secs(3600), "{age:?}");
        assert!(pgrp(me).is_some());
        assert!(!group_is_from(1, 0));
    }
}
