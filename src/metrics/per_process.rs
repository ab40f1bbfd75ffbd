//! Processes matching a name or command line (`crate::proc::Matcher`, the orphan sweep's
//! matcher too; allocation does not matter here: a process check runs every few seconds at
//! most), and their CPU use between two scans. Must not judge values.

use std::collections::BTreeMap;

use regex_lite::Regex;

use super::Roots;
use crate::proc::{self, Matcher, Process};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Matched {
    pub count: u64,
    /// Resident set size summed over the matches.
    pub rss_bytes: u64,
    /// utime + stime summed over the matches, in clock ticks.
    pub cpu_ticks: u64,
}

/// One matching process's CPU time. Identified by pid and start time together, so a pid
/// reused between two scans is a different process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticks {
    pub pid: i32,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22).
    pub start: u64,
    /// utime + stime in clock ticks (fields 14 and 15).
    pub ticks: u64,
}

/// Processes whose name (`comm`, a glob) matches `name` and whose command line (arguments
/// joined by spaces) matches the regex `cmdline`, either being optional; see `crate::proc`
/// for what they mean. runner itself is never counted.
pub fn matching(roots: &Roots, name: Option<&str>, cmdline: Option<&Regex>) -> Result<Matched, String> {
    scan(roots, name, cmdline, None)
}

/// Like [`matching`], also listing each match's CPU time into `each` (cleared first).
pub fn scan(
    roots: &Roots,
    name: Option<&str>,
    cmdline: Option<&Regex>,
    mut each: Option<&mut Vec<Ticks>>,
) -> Result<Matched, String> {
    let all = proc::pids(&roots.proc).map_err(|e| format!("cannot list processes in {}: {e}", roots.proc.display()))?;
    let me = std::process::id() as i32;
    let page = proc::page_size();
    let matcher = Matcher { name, cmdline };
    let mut m = Matched::default();
    if let Some(v) = each.as_deref_mut() {
        v.clear();
    }
    for pid in all {
        if pid == me {
            continue;
        }
        // A process can exit while we look at it: skip it.
        let Ok(p) = Process::open(&roots.proc, pid) else { continue };
        let Ok(stat) = p.stat() else { continue };
        if !matcher.matches(&p, &stat, &mut None) {
            continue;
        }
        m.count += 1;
        m.rss_bytes += stat.rss * page;
        m.cpu_ticks += stat.utime + stat.stime;
        if let Some(v) = each.as_deref_mut() {
            v.push(Ticks { pid, start: stat.starttime, ticks: stat.utime + stat.stime });
        }
    }
    Ok(m)
}

/// Seconds since boot on the clock `/proc/PID/stat` start times count from (CLOCK_BOOTTIME,
/// which keeps counting through suspend).
pub fn boot_seconds() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// CPU use of the matching processes between consecutive scans, as `top` shows a process:
/// 100 is one core busy for the whole interval (a process with threads on two cores can
/// reach 200). Per process, so one that exits between scans takes its time with it instead
/// of making the sum go backwards, and one that started since the last scan counts all its
/// time. Pure: the scan's results, its time and the tick rate come in.
#[derive(Clone, Debug, Default)]
pub struct CpuUse {
    /// The previous scan: its time and each process's ticks.
    prev: Option<(f64, PerProcess)>,
}

/// Ticks by (pid, start time).
type PerProcess = BTreeMap<(i32, u64), u64>;

impl CpuUse {
    /// Feeds one scan made at `now` (seconds since boot); returns the percent since the
    /// previous scan, or none for the first one or when no time passed.
    pub fn update(&mut self, now: f64, procs: &[Ticks], hz: u64) -> Option<f64> {
        let current: PerProcess = procs.iter().map(|p| ((p.pid, p.start), p.ticks)).collect();
        let prev = self.prev.replace((now, current));
        let (then, before) = prev?;
        let elapsed = now - then;
        if elapsed <= 0.0 || hz == 0 {
            return None;
        }
        let mut ticks = 0u64;
        for p in procs {
            ticks += match before.get(&(p.pid, p.start)) {
                Some(t) => p.ticks.saturating_sub(*t),
                // Started after the previous scan: all of its time is in the interval.
                None if p.start as f64 / hz as f64 >= then => p.ticks,
                // Already running but not matching then (its command line changed): its
                // earlier time cannot be told apart, so it counts from the next scan.
                None => 0,
            };
        }
        Some(ticks as f64 / hz as f64 / elapsed * 100.0)
    }

    /// Whether a scan was fed yet.
    pub fn primed(&self) -> bool {
        self.prev.is_some()
    }
}

/// Clock ticks per second, the unit of `/proc/PID/stat` times.
pub fn ticks_per_second() -> u64 {
    proc::ticks_per_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pid: i32, start: u64, ticks: u64) -> Ticks {
        Ticks { pid, start, ticks }
    }

    #[test]
    fn cpu_use_is_per_process_over_the_interval() {
        let mut c = CpuUse::default();
        assert_eq!(c.update(100.0, &[t(1, 100, 50), t(2, 200, 10)], 100), None, "first scan");
        // Over 2 s: pid 1 used 200 ticks (2 s, 100 %), pid 2 used 100 (1 s, 50 %).
        let p = c.update(102.0, &[t(1, 100, 250), t(2, 200, 110)], 100).unwrap();
        assert!((p - 150.0).abs() < 1e-9, "{p}");
        // pid 2 exited, pid 3 started at 102.5 s (after the last scan) with 50 ticks; pid 2
        // reused by a process started at 103 s with 20 ticks.
        let p = c.update(104.0, &[t(1, 100, 250), t(3, 10_250, 50), t(2, 10_300, 20)], 100).unwrap();
        assert!((p - 35.0).abs() < 1e-9, "(0 + 50 + 20) ticks over 2 s: {p}");
        // A process that matches only now but started long ago adds nothing yet.
        let p = c.update(105.0, &[t(1, 100, 250), t(9, 5, 9_999)], 100).unwrap();
        assert_eq!(p, 0.0);
        assert_eq!(c.update(105.0, &[], 100), None, "no time passed");
    }
}
