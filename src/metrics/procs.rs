//! Processes matching a name or command line, through the procfs crate (allocation does
//! not matter here: a process check runs every few seconds at most).

use super::Roots;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Matched {
    pub count: u64,
    /// Resident set size summed over the matches.
    pub rss_bytes: u64,
    /// utime + stime summed over the matches, in clock ticks.
    pub cpu_ticks: u64,
}

/// Processes whose name (`comm`, as `pgrep` matches it: the first 15 bytes) equals `name`
/// and whose command line contains `cmdline`, either being optional. runner itself is never
/// counted.
pub fn matching(roots: &Roots, name: Option<&str>, cmdline: Option<&str>) -> Result<Matched, String> {
    let all = procfs::process::all_processes_with_root(&roots.proc)
        .map_err(|e| format!("cannot list processes in {}: {e}", roots.proc.display()))?;
    let me = std::process::id() as i32;
    let page = procfs::page_size();
    let want_comm = name.map(|n| &n.as_bytes()[..n.len().min(15)]);
    let mut m = Matched::default();
    for p in all {
        // A process can exit while we look at it: skip it.
        let Ok(p) = p else { continue };
        if p.pid == me {
            continue;
        }
        let Ok(stat) = p.stat() else { continue };
        if let Some(want) = want_comm
            && stat.comm.as_bytes() != want
        {
            continue;
        }
        if let Some(pat) = cmdline {
            let Ok(args) = p.cmdline() else { continue };
            if !args.join(" ").contains(pat) {
                continue;
            }
        }
        m.count += 1;
        m.rss_bytes += stat.rss * page;
        m.cpu_ticks += stat.utime + stat.stime;
    }
    Ok(m)
}
