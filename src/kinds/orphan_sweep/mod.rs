//! The `orphan_sweep` kind: find leftover processes that match the job's `match:`, are
//! orphaned, old enough and not registered, and end them (SIGTERM, then SIGKILL after the
//! grace), recording every decision as an audit record.
//!
//! This is the only code in runner that signals processes it did not start, so safety comes
//! before features:
//! - never PID 1, runner itself or its ancestors, kernel threads, registered processes or
//!   their descendants; nor runner's own work: any runner process (by /proc/PID/exe), what
//!   one started or adopted, and anything in the session or process group of a run (one the
//!   state records as running, or one a runner process started);
//! - every target is pinned by a pidfd opened *before* its identity (start time, stat field
//!   22, and command line) is checked again, and is signalled only through that pidfd, so a
//!   PID recycled after the scan is never hit. Without pidfd (kernels before 5.3) the start
//!   time is re-checked right before kill(2), and the audit says so;
//! - a configured registry that cannot be read ends nothing; `max_kills` caps a sweep.
//!
//! The scan reads /proc through `crate::proc`, which also decides what `name` and `cmdline`
//! mean; it keeps only what matched (plus the registry and runner's own ancestry), whatever
//! the number of processes on the box.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use tokio::sync::watch;

pub mod config;

use super::{Emit, OwnWork, Services};
pub use crate::proc::glob;
use crate::proc::{Matcher, Process, RegexText, Stat};
use crate::record::{Kind, Outcome, Record, RecordKind, Trigger};
use crate::time::format as fmt_dur;

/// How long to wait for a process to disappear after SIGKILL before calling it stuck
/// (uninterruptible sleep, a hung NFS mount).
const AFTER_KILL: Duration = Duration::from_secs(5);
/// The part of a command line kept for audit lines.
const CMDLINE_SHOWN: usize = 160;
/// `PF_KTHREAD` in stat's flags field.
const PF_KTHREAD: u32 = 0x0020_0000;

/// Which processes a sweep may end: every criterion given must hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// A glob (`*`, `?`) on the kernel's comm (see `crate::proc`).
    pub name: Option<String>,
    /// Searched in the command line, arguments joined by single spaces (see `crate::proc`).
    pub cmdline: Option<RegexText>,
    /// The effective uid, with the name it was given as.
    pub uid: Option<(String, u32)>,
    /// /proc/PID/exe, exactly (a replaced binary's ` (deleted)` suffix is ignored).
    pub exe: Option<PathBuf>,
}

impl Match {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.name {
            parts.push(format!("name {n:?}"));
        }
        if let Some(c) = &self.cmdline {
            parts.push(format!("cmdline /{}/", c.0.as_str()));
        }
        if let Some((u, id)) = &self.uid {
            parts.push(format!("user {u} ({id})"));
        }
        if let Some(e) = &self.exe {
            parts.push(format!("exe {}", e.display()));
        }
        parts.join(", ")
    }
}

/// A resolved `orphan_sweep:` block.
#[derive(Clone, Debug, PartialEq)]
pub struct OrphanSweep {
    pub matcher: Match,
    pub min_age: Duration,
    pub registry: Option<PathBuf>,
    pub kill_grace: Duration,
    pub tree: bool,
    pub max_kills: u32,
    pub dry_run: bool,
    pub adopters: Vec<String>,
    pub orphans_only: bool,
}

/// What the scan learnt about one process; enough to recognise it again.
#[derive(Clone, Debug)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    /// stat field 22, clock ticks after boot: with the pid, the process's identity.
    pub start_ticks: u64,
    pub age: Duration,
    /// Basename of argv[0], or comm when argv is empty.
    pub name: String,
    /// The command line for people, cut to a few words.
    pub cmdline: String,
    cmdline_hash: u64,
}

impl Proc {
    fn label(&self) -> String {
        format!("pid {} ({})", self.pid, self.name)
    }
}

#[derive(Clone, Debug)]
pub enum Decision {
    /// To be ended. `root` is the orphan whose tree it belongs to (its own pid for an orphan).
    End { proc: Proc, why: String, root: i32 },
    /// Matched, but kept.
    Skip { proc: Proc, why: String },
}

/// The outcome of a scan: every decision about a matching process.
#[derive(Debug, Default)]
pub struct Survey {
    pub decisions: Vec<Decision>,
    /// Processes looked at, for the run record.
    pub scanned: usize,
}

impl Survey {
    pub fn ends(&self) -> usize {
        self.decisions.iter().filter(|d| matches!(d, Decision::End { .. })).count()
    }
}

/// The facts a scan decides against, read once at its start.
struct Scan<'a> {
    spec: &'a OrphanSweep,
    ticks: u64,
    uptime: Duration,
    /// PID 1, runner and its ancestors.
    protected: Vec<i32>,
    /// Sorted.
    registry: Vec<i32>,
    /// Runner's own executable: any process running it is runner.
    own_exe: Option<Exe>,
    /// What the state and the lock files say runner runs.
    own: OwnWork,
}

/// An executable as /proc/PID/exe shows it: its path and the file it is.
#[derive(Debug, PartialEq)]
struct Exe {
    path: PathBuf,
    file: Option<(u64, u64)>,
}

fn exe_of(pid: &str) -> Option<Exe> {
    let (path, file) = crate::proc::exe_link(pid)?;
    let text = path.to_string_lossy();
    let path = PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text));
    Some(Exe { path, file })
}

/// Reads the registry, scans /proc and decides, without signalling anything. An unreadable
/// registry is an error: nothing may be ended when what must be kept is unknown.
pub fn survey(spec: &OrphanSweep) -> Result<Survey, String> {
    survey_with(spec, OwnWork::default())
}

/// [`survey`], also keeping what the services say runner runs (`Services::own_work`).
pub fn survey_with(spec: &OrphanSweep, own: OwnWork) -> Result<Survey, String> {
    let registry = match &spec.registry {
        Some(p) => read_registry(p)?,
        None => Vec::new(),
    };
    let uptime = crate::proc::uptime().map_err(|e| format!("cannot read /proc/uptime: {e}"))?;
    let scan = Scan {
        spec,
        ticks: crate::proc::ticks_per_second().max(1),
        uptime,
        protected: own_ancestry(),
        registry,
        own_exe: exe_of("self"),
        own,
    };
    scan.run()
}

/// Registered pids: a directory of pid files (the first word of each), or one file of pids
/// separated by white space (`#` starts a comment). Anything unreadable or not a pid fails
/// the whole registry.
pub fn read_registry(path: &Path) -> Result<Vec<i32>, String> {
    let unreadable = |p: &Path, e: &dyn std::fmt::Display| format!("registry {} cannot be read: {e}", p.display());
    let meta = std::fs::metadata(path).map_err(|e| unreadable(path, &e))?;
    let mut pids = Vec::new();
    let mut parse = |p: &Path, text: &str, first_only: bool| -> Result<(), String> {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for word in line.split_whitespace() {
                match word.parse::<i32>() {
                    Ok(n) if n > 0 => pids.push(n),
                    _ => return Err(format!("registry {}: `{word}` is not a pid", p.display())),
                }
                if first_only {
                    return Ok(());
                }
            }
        }
        Ok(())
    };
    if meta.is_dir() {
        let rd = std::fs::read_dir(path).map_err(|e| unreadable(path, &e))?;
        for entry in rd {
            let entry = entry.map_err(|e| unreadable(path, &e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = entry.path();
            if p.is_dir() {
                continue;
            }
            let text = std::fs::read_to_string(&p).map_err(|e| unreadable(&p, &e))?;
            parse(&p, &text, true)?;
        }
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| unreadable(path, &e))?;
        parse(path, &text, false)?;
    }
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// PID 1, this process and every ancestor up to PID 1.
fn own_ancestry() -> Vec<i32> {
    let mut out = vec![1, std::process::id() as i32];
    let mut cur = std::process::id() as i32;
    for _ in 0..4096 {
        let Some(ppid) = crate::proc::stat(cur).ok().map(|s| s.ppid) else { break };
        if ppid <= 1 || out.contains(&ppid) {
            break;
        }
        out.push(ppid);
        cur = ppid;
    }
    out
}

impl Scan<'_> {
    fn run(&self) -> Result<Survey, String> {
        let mut survey = Survey::default();
        let all = crate::proc::pids(Path::new("/proc")).map_err(|e| format!("cannot list /proc: {e}"))?;
        for pid in all {
            let Ok(p) = Process::new(pid) else { continue };
            survey.scanned += 1;
            let Ok(st) = p.stat() else { continue };
            if is_kernel_or_dead(&st) {
                continue;
            }
            let Some(argv) = matches(&self.spec.matcher, &p, &st) else { continue };
            let proc = self.proc_info(&st, &argv);
            match self.verdict(&proc, &st) {
                Ok(why) => survey.decisions.push(Decision::End { root: proc.pid, proc, why }),
                Err(why) => survey.decisions.push(Decision::Skip { proc, why }),
            }
        }
        if self.spec.tree {
            self.add_descendants(&mut survey);
        }
        self.apply_budget(&mut survey);
        Ok(survey)
    }

    fn proc_info(&self, st: &Stat, argv: &[String]) -> Proc {
        let started = Duration::from_millis(st.starttime.saturating_mul(1000) / self.ticks);
        let name = match argv.first().map(|a| basename(a)) {
            Some(b) if !b.is_empty() => b.to_string(),
            _ => st.comm.to_string_lossy(),
        };
        let mut cmdline = argv.join(" ");
        if cmdline.len() > CMDLINE_SHOWN {
            let mut cut = CMDLINE_SHOWN;
            while !cmdline.is_char_boundary(cut) {
                cut -= 1;
            }
            cmdline.truncate(cut);
            cmdline.push_str("...");
        }
        Proc {
            pid: st.pid,
            ppid: st.ppid,
            start_ticks: st.starttime,
            age: self.uptime.saturating_sub(started),
            name,
            cmdline,
            cmdline_hash: hash_argv(argv),
        }
    }

    /// Why a matching process is to be ended, or why it is kept. Safety first, then the
    /// registry, then the orphan rule, then age.
    fn verdict(&self, p: &Proc, st: &Stat) -> Result<String, String> {
        if p.pid == 1 {
            return Err("protected: PID 1".into());
        }
        if p.pid == std::process::id() as i32 {
            return Err("protected: runner itself".into());
        }
        if self.protected.contains(&p.pid) {
            return Err("protected: an ancestor of runner".into());
        }
        if let Some(why) = self.runners_own(st) {
            return Err(why);
        }
        if let Some(r) = self.registered_ancestor(p.pid, p.ppid) {
            return Err(if r == p.pid {
                "registered".to_string()
            } else {
                format!("descendant of registered pid {r}")
            });
        }
        let orphan = self.orphan_rule(p)?;
        if p.age < self.spec.min_age {
            return Err(format!("too young: age {} < min_age {}", fmt_age(p.age), fmt_dur(self.spec.min_age)));
        }
        Ok(format!("{orphan}, age {} >= min_age {}", fmt_age(p.age), fmt_dur(self.spec.min_age)))
    }

    fn orphan_rule(&self, p: &Proc) -> Result<String, String> {
        if p.ppid == 1 {
            return Ok("orphaned: parent is PID 1".into());
        }
        let (pname, pcomm) =
            match Process::new(p.ppid).and_then(|pp| Ok((pp.stat()?, pp.cmdline().unwrap_or_default()))) {
                Ok((st, argv)) => {
                    (argv.first().map(|a| basename(a).to_string()).unwrap_or_default(), st.comm.to_string_lossy())
                }
                Err(_) => (String::new(), String::new()),
            };
        let shown = if pname.is_empty() { &pcomm } else { &pname };
        if let Some(a) = self.spec.adopters.iter().find(|a| crate::proc::name_matches(a, pcomm.as_bytes())) {
            return Ok(format!("orphaned: parent {} ({shown}) is adopter {a:?}", p.ppid));
        }
        if !self.spec.orphans_only {
            return Ok(format!("orphans_only is false (parent {} ({shown}))", p.ppid));
        }
        Err(format!("not orphaned: parent {} ({shown}) is alive", p.ppid))
    }

    /// Whether `pid` is a runner process: it runs runner's executable (the same file, or
    /// the same path for a binary replaced since), or holds a job lock or the pid file.
    fn is_runner(&self, pid: i32) -> bool {
        if self.own.holders.contains(&pid) {
            return true;
        }
        let (Some(own), Some(exe)) = (&self.own_exe, exe_of(&pid.to_string())) else { return false };
        exe.path == own.path || (exe.file.is_some() && exe.file == own.file)
    }

    /// The nearest of `pid` and its ancestors that is a runner process.
    fn runner_ancestor(&self, pid: i32) -> Option<i32> {
        let mut cur = pid;
        for _ in 0..4096 {
            if cur <= 1 {
                return None;
            }
            if self.is_runner(cur) {
                return Some(cur);
            }
            cur = crate::proc::stat(cur).ok()?.ppid;
        }
        None
    }

    /// Why a process is runner's own work, which no sweep ends: a runner process (another
    /// daemon, a `runner once`), a process started by one or adopted by one (a subreaper),
    /// or anything in the session or process group of a run: one the state records as
    /// running, or one whose leader a runner process started (a double-forked child of a
    /// running job, re-parented to PID 1, stays in its run's session).
    fn runners_own(&self, st: &Stat) -> Option<String> {
        if self.is_runner(st.pid) {
            return Some("protected: a runner process".into());
        }
        if let Some(r) = self.runner_ancestor(st.ppid) {
            return Some(format!("protected: started by runner process {r} (a run, or part of one)"));
        }
        for (what, id) in [("session", st.session), ("process group", st.pgrp)] {
            if id <= 1 || id == st.pid {
                continue;
            }
            if self.own.groups.contains(&id) {
                return Some(format!("protected: in the {what} of run {id}, which runner records as running"));
            }
            if let Some(r) = self.runner_ancestor(id) {
                return Some(format!("protected: in the {what} of run {id}, started by runner process {r}"));
            }
        }
        if self.own.groups.contains(&st.pid) {
            return Some("protected: a run that runner records as running".into());
        }
        // A process in a run's cgroup belongs to that run, whatever session it made itself.
        if crate::contain::in_run_cgroup(st.pid) {
            return Some("protected: in a run's cgroup".into());
        }
        None
    }

    /// The pid itself or its nearest ancestor that is registered.
    fn registered_ancestor(&self, pid: i32, ppid: i32) -> Option<i32> {
        if self.registry.is_empty() {
            return None;
        }
        if self.registry.binary_search(&pid).is_ok() {
            return Some(pid);
        }
        let mut cur = ppid;
        for _ in 0..4096 {
            if cur <= 1 {
                return None;
            }
            if self.registry.binary_search(&cur).is_ok() {
                return Some(cur);
            }
            cur = crate::proc::stat(cur).ok()?.ppid;
        }
        None
    }

    /// Adds the descendants of every orphan to be ended. /proc has no child lists here
    /// (CONFIG_PROC_CHILDREN is often off), so it re-reads /proc until the trees stop
    /// growing: O(depth) passes, memory O(tree).
    fn add_descendants(&self, survey: &mut Survey) {
        // (pid, root) of every member so far.
        let mut members: Vec<(i32, i32)> = survey
            .decisions
            .iter()
            .filter_map(|d| match d {
                Decision::End { proc, root, .. } => Some((proc.pid, *root)),
                Decision::Skip { .. } => None,
            })
            .collect();
        if members.is_empty() {
            return;
        }
        let mut kept: Vec<i32> = Vec::new();
        for _pass in 0..64 {
            let mut grew = false;
            let Ok(all) = crate::proc::pids(Path::new("/proc")) else { return };
            for pid in all {
                let Ok(p) = Process::new(pid) else { continue };
                let Ok(st) = p.stat() else { continue };
                if is_kernel_or_dead(&st) || members.iter().any(|m| m.0 == st.pid) || kept.contains(&st.pid) {
                    continue;
                }
                let Some(&(_, root)) = members.iter().find(|m| m.0 == st.ppid) else { continue };
                let argv = p.cmdline().unwrap_or_default();
                let proc = self.proc_info(&st, &argv);
                let keep = if self.protected.contains(&proc.pid) || proc.pid == 1 {
                    Some("protected: runner or an ancestor of runner".to_string())
                } else if let Some(why) = self.runners_own(&st) {
                    Some(why)
                } else if self.registry.binary_search(&proc.pid).is_ok() {
                    Some(format!("registered (in the tree of pid {root}); kept with its descendants"))
                } else {
                    None
                };
                match keep {
                    Some(why) => {
                        kept.push(proc.pid);
                        survey.decisions.push(Decision::Skip { proc, why });
                    }
                    None => {
                        members.push((proc.pid, root));
                        let why = format!("descendant of pid {root} (tree: true)");
                        survey.decisions.push(Decision::End { proc, why, root });
                        grew = true;
                    }
                }
            }
            if !grew {
                break;
            }
        }
    }

    /// Oldest orphans first, whole trees at a time, at most `max_kills` processes.
    fn apply_budget(&self, survey: &mut Survey) {
        let mut roots: Vec<(u64, i32)> = survey
            .decisions
            .iter()
            .filter_map(|d| match d {
                Decision::End { proc, root, .. } if proc.pid == *root => Some((proc.start_ticks, *root)),
                _ => None,
            })
            .collect();
        roots.sort_unstable();
        let size = |root: i32, ds: &[Decision]| {
            ds.iter().filter(|d| matches!(d, Decision::End { root: r, .. } if *r == root)).count() as u32
        };
        let max = self.spec.max_kills;
        let mut used = 0u32;
        for (_, root) in roots {
            let n = size(root, &survey.decisions);
            if used + n <= max {
                used += n;
                continue;
            }
            for d in survey.decisions.iter_mut() {
                if let Decision::End { proc, root: r, .. } = d
                    && *r == root
                {
                    let why = format!(
                        "refused: max_kills {max} reached ({used} already to end, this {} would add {n})",
                        if n > 1 { "tree" } else { "process" }
                    );
                    *d = Decision::Skip { proc: proc.clone(), why };
                }
            }
        }
        // Ends in the order they will be signalled: trees together, oldest first.
        survey.decisions.sort_by_key(|d| match d {
            Decision::Skip { .. } => (0, 0, 0),
            Decision::End { proc, root, .. } => (1, *root, proc.start_ticks),
        });
    }
}

fn is_kernel_or_dead(st: &Stat) -> bool {
    st.flags & PF_KTHREAD != 0 || st.pid == 2 || st.ppid == 2 || st.state == 'Z' || st.state == 'X'
}

/// Whether the process matches; returns its argv (read only when needed or matched).
/// `name` and `cmdline` are `crate::proc::Matcher`'s, shared with process checks.
fn matches(m: &Match, p: &Process, st: &Stat) -> Option<Vec<String>> {
    let mut argv: Option<Vec<String>> = None;
    let shared = Matcher { name: m.name.as_deref(), cmdline: m.cmdline.as_ref().map(|r| &r.0) };
    if !shared.matches(p, st, &mut argv) {
        return None;
    }
    if let Some(want) = &m.exe {
        let exe = p.exe().ok()?;
        let s = exe.to_string_lossy();
        if Path::new(s.strip_suffix(" (deleted)").unwrap_or(&s)) != want {
            return None;
        }
    }
    if let Some((_, uid)) = m.uid
        && p.euid().ok()? != uid
    {
        return None;
    }
    match argv {
        Some(a) => Some(a),
        None => p.cmdline().ok(),
    }
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// FNV-1a over the arguments, NUL-separated: enough to notice a changed command line
/// without keeping it.
fn hash_argv(argv: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for a in argv {
        for &b in a.as_bytes().iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn fmt_age(d: Duration) -> String {
    fmt_dur(Duration::from_secs(d.as_secs()))
}

// ---------------------------------------------------------------------------------------
// Pinning and signalling.

/// How a target is held between the decision and the signal.
#[derive(Debug)]
pub enum Handle {
    /// Signals go to exactly the process that was verified.
    Pidfd(OwnedFd),
    /// No pidfd on this kernel: the start time is re-checked right before each kill(2).
    Plain,
}

/// Why a target was not (or no longer) signalled.
#[derive(Debug, PartialEq)]
pub enum Lost {
    /// It exited on its own; nothing to do.
    Exited,
    /// The pid now names another process, or the command line changed.
    Changed(String),
    Failed(String),
}

/// Pins a process and checks it is still the one the scan saw: pidfd first, then the
/// start time and command line, then that the pidfd's process is still alive (so what
/// /proc showed was that process, not a successor).
pub fn pin(p: &Proc) -> Result<Handle, Lost> {
    if p.pid <= 0 {
        return Err(Lost::Failed(format!("invalid pid {}", p.pid)));
    }
    let handle = match crate::proc::pidfd_open(p.pid) {
        Ok(fd) => Handle::Pidfd(fd),
        Err(Errno::ESRCH) => return Err(Lost::Exited),
        Err(Errno::ENOSYS) => Handle::Plain,
        Err(e) => return Err(Lost::Failed(format!("pidfd_open: {e}"))),
    };
    same_process(p)?;
    if let Handle::Pidfd(fd) = &handle
        && pidfd_exited(fd)
    {
        return Err(Lost::Exited);
    }
    Ok(handle)
}

/// Whether /proc/PID still shows the process that was scanned.
fn same_process(p: &Proc) -> Result<(), Lost> {
    let proc = Process::new(p.pid).map_err(|_| Lost::Exited)?;
    let st = proc.stat().map_err(|_| Lost::Exited)?;
    if st.starttime != p.start_ticks {
        return Err(Lost::Changed(format!(
            "pid {} now belongs to another process (start time {} ticks, {} when scanned): pid reused",
            p.pid, st.starttime, p.start_ticks
        )));
    }
    if st.state == 'Z' || st.state == 'X' {
        return Err(Lost::Exited);
    }
    let argv = proc.cmdline().map_err(|_| Lost::Exited)?;
    if hash_argv(&argv) != p.cmdline_hash {
        return Err(Lost::Changed(format!("pid {} changed its command line since the scan", p.pid)));
    }
    Ok(())
}

fn pidfd_exited(fd: &OwnedFd) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(nix::poll::poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Sends `sig` to exactly the pinned process.
pub fn send(p: &Proc, h: &Handle, sig: Signal) -> Result<(), Lost> {
    let r = match h {
        Handle::Pidfd(fd) => crate::proc::pidfd_send_signal(fd, sig),
        Handle::Plain => {
            same_process(p)?;
            if p.pid <= 0 {
                return Err(Lost::Exited);
            }
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.pid), sig)
        }
    };
    match r {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => Err(Lost::Exited),
        Err(e) => Err(Lost::Failed(format!("cannot send {}: {e}", sig_name(sig)))),
    }
}

fn sig_name(sig: Signal) -> &'static str {
    if sig == Signal::SIGKILL { "SIGKILL" } else { "SIGTERM" }
}

/// Waits up to `limit` for the process to exit; true when it did.
async fn wait_exit(p: &Proc, h: &mut Waiter, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    match h {
        Waiter::Pidfd(afd) => {
            matches!(tokio::time::timeout_at(deadline, afd.readable()).await, Ok(Ok(_)))
        }
        Waiter::Plain => loop {
            if same_process(p).is_err() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        },
    }
}

enum Waiter {
    Pidfd(runner_sys::fd::Watched<OwnedFd>),
    Plain,
}

impl Waiter {
    fn handle(&self) -> HandleRef<'_> {
        match self {
            Waiter::Pidfd(a) => HandleRef::Pidfd(a.get_ref()),
            Waiter::Plain => HandleRef::Plain,
        }
    }
}

enum HandleRef<'a> {
    Pidfd(&'a OwnedFd),
    Plain,
}

fn send_ref(p: &Proc, h: HandleRef<'_>, sig: Signal) -> Result<(), Lost> {
    let r = match h {
        HandleRef::Pidfd(fd) => crate::proc::pidfd_send_signal(fd, sig),
        HandleRef::Plain => return send(p, &Handle::Plain, sig),
    };
    match r {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => Err(Lost::Exited),
        Err(e) => Err(Lost::Failed(format!("cannot send {}: {e}", sig_name(sig)))),
    }
}

// ---------------------------------------------------------------------------------------
// The attempt.

/// Writes audit records for one sweep.
#[derive(Clone)]
struct Auditor {
    emit: Emit,
    job: String,
}

impl Auditor {
    fn emit(&self, outcome: Outcome, pid: Option<i32>, message: String) {
        let mut r = Record::skipped(&self.job, Kind::OrphanSweep, Trigger::Schedule, message);
        r.kind = RecordKind::Audit;
        r.outcome = outcome;
        r.attempt = 1;
        r.pid = pid.map(|p| p as u32);
        (self.emit)(&r);
    }
}

/// Counts for the run record.
#[derive(Default, Debug)]
struct Tally {
    on_term: u32,
    on_kill: u32,
    gone_before: u32,
    changed: u32,
    failed: u32,
    stopped: u32,
}

/// Pauses at a named stage while `RUNNER_SWEEP_TEST_GATE` names a directory: a test seam
/// that lets the safety tests act between the scan and the signals (recycle a pid, end a
/// process). `<dir>/<stage>.reached` is created, then the sweep waits for `<dir>/<stage>.go`
/// (at most 60 s). Unset, it costs one getenv. Debug builds only (the tests run the debug
/// binary): a release binary has no gate and never reads the variable.
#[cfg(debug_assertions)]
async fn test_gate(stage: &str) {
    let Some(dir) = std::env::var_os("RUNNER_SWEEP_TEST_GATE").map(PathBuf::from) else { return };
    let _ = std::fs::write(dir.join(format!("{stage}.reached")), b"");
    let go = dir.join(format!("{stage}.go"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
async fn test_gate(_stage: &str) {}

/// The job's `orphan_sweep:` block resolved, with its key; `None` without one.
pub fn from_blocks(
    job: &str,
    block: Option<Box<config::Block>>,
    given: &super::Given<'_>,
) -> Option<(&'static str, Result<OrphanSweep, Vec<super::Problem>>)> {
    let at = config::Context {
        every: given.every,
        schedule: given.schedule,
        user: given.user,
        kill_grace: given.kill_grace,
        users: given.users,
    };
    Some(("orphan_sweep", config::resolve(job, *block?, at)))
}

pub async fn attempt(svc: &dyn Services, spec: &OrphanSweep, stop: watch::Receiver<bool>) -> Record {
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let audit = Auditor { emit: svc.emitter(), job: svc.job().to_string() };
    let finish = |outcome: Outcome, message: String| {
        let mut r = Record::skipped(svc.job(), Kind::OrphanSweep, Trigger::Schedule, message);
        r.kind = RecordKind::Run;
        r.outcome = outcome;
        r.attempt = 1;
        r.started_at = started_at;
        r.duration = t0.elapsed();
        if outcome == Outcome::Failure {
            r.exit_code = Some(1);
        }
        r
    };

    let own = match svc.own_work() {
        Ok(own) => own,
        Err(e) => {
            let msg = format!("sweep aborted, nothing ended: what runner runs is unknown: {e}");
            audit.emit(Outcome::Failure, None, msg.clone());
            return finish(Outcome::Failure, msg);
        }
    };
    let s = spec.clone();
    let survey = match tokio::task::spawn_blocking(move || survey_with(&s, own)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let msg = format!("sweep aborted, nothing ended: {e}");
            audit.emit(Outcome::Failure, None, msg.clone());
            return finish(Outcome::Failure, msg);
        }
        Err(e) => {
            let msg = format!("sweep aborted, nothing ended: the scan failed: {e}");
            audit.emit(Outcome::Failure, None, msg.clone());
            return finish(Outcome::Failure, msg);
        }
    };
    test_gate("scanned").await;

    let skipped = survey.decisions.len() - survey.ends();
    let ends = audit_decisions(&audit, survey.decisions, spec.dry_run);
    let head = format!(
        "scanned {} processes, matched {} ({}): {} to end, {skipped} kept",
        survey.scanned,
        ends.len() + skipped,
        spec.matcher.describe(),
        ends.len()
    );
    if spec.dry_run {
        return finish(Outcome::Success, format!("dry run, nothing ended; {head}"));
    }

    let mut t = Tally::default();
    let mut pinned = Vec::new();
    for p in ends {
        match pin(&p) {
            Ok(h) => pinned.push((p, h)),
            Err(lost) => note_lost(&audit, &p, lost, "before it was signalled", &mut t),
        }
    }
    test_gate("pinned").await;

    let mut set = tokio::task::JoinSet::new();
    for (p, h) in pinned {
        let fallback = matches!(h, Handle::Plain);
        let note = if fallback { " (no pidfd on this kernel: start time re-checked just before kill(2))" } else { "" };
        match send(&p, &h, Signal::SIGTERM) {
            Ok(()) => audit.emit(Outcome::Success, Some(p.pid), format!("TERM sent to {}{note}", p.label())),
            Err(lost) => {
                note_lost(&audit, &p, lost, "before TERM", &mut t);
                continue;
            }
        }
        let waiter = match h {
            Handle::Pidfd(fd) => match runner_sys::fd::Watched::new(fd, tokio::io::Interest::READABLE) {
                Ok(a) => Waiter::Pidfd(a),
                Err(e) => {
                    audit.emit(Outcome::Failure, Some(p.pid), format!("failed to watch {}: {e}", p.label()));
                    t.failed += 1;
                    continue;
                }
            },
            Handle::Plain => Waiter::Plain,
        };
        set.spawn(end_one(p, waiter, audit.clone(), spec.kill_grace, note, stop.clone()));
    }
    while let Some(r) = set.join_next().await {
        match r {
            Ok(End::OnTerm) => t.on_term += 1,
            Ok(End::OnKill) => t.on_kill += 1,
            Ok(End::Stopped) => t.stopped += 1,
            Ok(End::Failed) | Err(_) => t.failed += 1,
        }
    }
    let msg = format!(
        "{head}; ended {} ({} on TERM, {} on KILL), {} exited by themselves, {} changed identity (not signalled), {} failed{}",
        t.on_term + t.on_kill,
        t.on_term,
        t.on_kill,
        t.gone_before,
        t.changed,
        t.failed,
        if t.stopped > 0 { format!(", {} left at TERM as runner stopped", t.stopped) } else { String::new() }
    );
    let outcome = if t.failed > 0 { Outcome::Failure } else { Outcome::Success };
    finish(outcome, msg)
}

/// Audits each decision of a survey; returns the processes to end.
fn audit_decisions(audit: &Auditor, decisions: Vec<Decision>, dry_run: bool) -> Vec<Proc> {
    let mut ends = Vec::new();
    for d in decisions {
        match d {
            Decision::Skip { proc, why } => {
                audit.emit(Outcome::Skipped, Some(proc.pid), format!("skipped {}: {why}", proc.label()))
            }
            Decision::End { proc, why, .. } => {
                let verb = if dry_run { "would end" } else { "matched" };
                audit.emit(
                    Outcome::Success,
                    Some(proc.pid),
                    format!("{verb} {}: {why}; cmdline: {}", proc.label(), proc.cmdline),
                );
                ends.push(proc);
            }
        }
    }
    ends
}

/// Waits up to `grace` for a TERMed process to exit, then KILLs it and waits again; stops
/// waiting (no KILL) when `stop` turns true. Audits every step.
async fn end_one(
    p: Proc,
    waiter: Waiter,
    audit: Auditor,
    grace: Duration,
    note: &'static str,
    mut stop: watch::Receiver<bool>,
) -> End {
    let mut w = waiter;
    let sent = Instant::now();
    let exited = tokio::select! {
        e = wait_exit(&p, &mut w, grace) => e,
        _ = stop.wait_for(|s| *s) => {
            audit.emit(Outcome::Stopped, Some(p.pid), format!("sweep stopped (its timeout, or runner stopping): no KILL for {}", p.label()));
            return End::Stopped;
        }
    };
    if exited {
        let ms = sent.elapsed().as_millis();
        audit.emit(Outcome::Success, Some(p.pid), format!("{} exited {ms} ms after TERM", p.label()));
        return End::OnTerm;
    }
    match send_ref(&p, w.handle(), Signal::SIGKILL) {
        Ok(()) => audit.emit(
            Outcome::Success,
            Some(p.pid),
            format!("KILL sent to {} after {} grace{note}", p.label(), fmt_dur(grace)),
        ),
        Err(Lost::Exited) => {
            let ms = sent.elapsed().as_millis();
            audit.emit(Outcome::Success, Some(p.pid), format!("{} exited {ms} ms after TERM", p.label()));
            return End::OnTerm;
        }
        Err(Lost::Changed(why)) | Err(Lost::Failed(why)) => {
            audit.emit(Outcome::Failure, Some(p.pid), format!("failed to end {}: {why}", p.label()));
            return End::Failed;
        }
    }
    let killed = Instant::now();
    if wait_exit(&p, &mut w, AFTER_KILL).await {
        let ms = killed.elapsed().as_millis();
        audit.emit(Outcome::Success, Some(p.pid), format!("{} exited {ms} ms after KILL", p.label()));
        End::OnKill
    } else {
        audit.emit(
            Outcome::Failure,
            Some(p.pid),
            format!(
                "failed to end {}: still there {} after KILL (uninterruptible sleep?)",
                p.label(),
                fmt_dur(AFTER_KILL)
            ),
        );
        End::Failed
    }
}

enum End {
    OnTerm,
    OnKill,
    Stopped,
    Failed,
}

fn note_lost(audit: &Auditor, p: &Proc, lost: Lost, when: &str, t: &mut Tally) {
    match lost {
        Lost::Exited => {
            t.gone_before += 1;
            audit.emit(Outcome::Success, Some(p.pid), format!("{} exited {when}; nothing sent", p.label()));
        }
        Lost::Changed(why) => {
            t.changed += 1;
            audit.emit(Outcome::Skipped, Some(p.pid), format!("not signalled: {why}"));
        }
        Lost::Failed(why) => {
            t.failed += 1;
            audit.emit(Outcome::Failure, Some(p.pid), format!("failed to end {}: {why}", p.label()));
        }
    }
}

impl super::KindImpl for OrphanSweep {
    fn tag(&self) -> Kind {
        Kind::OrphanSweep
    }

    // A sweep is destructive; rarely is enough (and `every:` under 1h is refused).
    fn default_every(&self) -> Option<Duration> {
        Some(Duration::from_secs(6 * 3600))
    }

    // `timeout:` bounds the whole sweep.
    fn timeout_bounds_whole_run(&self) -> bool {
        true
    }

    fn health_rule(&self) -> super::HealthRule {
        super::HealthRule::OwnPart
    }

    fn dry_run(&self, _who: &str) -> super::DryRun<'_> {
        match dry_run_lines(self) {
            Ok(mut lines) => {
                lines.push("dry run: nothing was ended".into());
                super::DryRun::Lines { lines, ok: true }
            }
            Err(e) => super::DryRun::Lines {
                lines: vec![format!("sweep aborted, nothing would be ended: {e}"), "dry run: nothing was ended".into()],
                ok: false,
            },
        }
    }

    // A sweep only reads /proc and signals.
    fn starts_processes(&self) -> bool {
        false
    }
}

/// `runner once <sweep> --dry-run`: what would be ended and why, one line each; ends nothing.
pub fn dry_run_lines(spec: &OrphanSweep) -> Result<Vec<String>, String> {
    let s = survey(spec)?;
    let mut out = Vec::new();
    for d in &s.decisions {
        out.push(match d {
            Decision::End { proc, why, .. } => {
                format!("would end {}: {why}; cmdline: {}", proc.label(), proc.cmdline)
            }
            Decision::Skip { proc, why } => format!("would keep {}: {why}", proc.label()),
        });
    }
    out.push(format!(
        "scanned {} processes; {} would be ended (TERM, then KILL after {}), {} kept",
        s.scanned,
        s.ends(),
        fmt_dur(spec.kill_grace),
        s.decisions.len() - s.ends()
    ));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(jobs: &str) -> Result<crate::config::Plan, String> {
        let env = crate::config::ResolveEnv { euid: 0, users: Default::default() };
        let text = format!("version: 1\njobs:\n{jobs}");
        crate::config::load_text(&text, Path::new("/x/s.yaml"), &Default::default(), &env).map_err(|e| e.to_string())
    }

    #[test]
    fn config_defaults_and_refusals() {
        let plan = load("  s:\n    orphan_sweep:\n      match: { name: \"ci-*\" }\n").unwrap();
        let j = &plan.jobs[0];
        assert_eq!(j.schedule, crate::config::Schedule::Every(Duration::from_secs(6 * 3600)));
        let crate::config::JobKind::OrphanSweep(spec) = &j.kind else { panic!("not a sweep") };
        assert_eq!(
            (spec.min_age, spec.max_kills, spec.orphans_only, spec.tree),
            (Duration::from_secs(7200), 20, true, false)
        );

        let e = load("  s:\n    every: 10m\n    orphan_sweep:\n      match: { name: x }\n").unwrap_err();
        assert!(e.starts_with("/x/s.yaml:4:12: ") && e.contains("too eager"), "{e}");
        assert!(
            load("  s:\n    every: 10m\n    orphan_sweep:\n      match: { name: x }\n      allow_frequent: true\n")
                .is_ok()
        );
        let e =
            load("  s:\n    schedule: \"0,30 9 * * *\"\n    orphan_sweep:\n      match: { name: x }\n").unwrap_err();
        assert!(e.starts_with("/x/s.yaml:4:15: ") && e.contains("30m apart"), "{e}");
        assert!(load("  s:\n    schedule: \"0 * * * *\"\n    orphan_sweep:\n      match: { name: x }\n").is_ok());
        let e = load("  s:\n    orphan_sweep:\n      min_age: 1h\n").unwrap_err();
        assert!(e.starts_with("/x/s.yaml:4:5: ") && e.contains("needs a `match:`"), "{e}");
        let e = load("  s:\n    orphan_sweep:\n      match:\n        exe: bin/w\n      max_kills: 0\n").unwrap_err();
        assert!(e.contains("/x/s.yaml:6:14: ") && e.contains("absolute path"), "{e}");
        assert!(e.contains("/x/s.yaml:7:18: ") && e.contains("max_kills must be at least 1"), "{e}");
        let e = load("  s:\n    orphan_sweep:\n      match: { cmdline: \"(\" }\n").unwrap_err();
        assert!(e.starts_with("/x/s.yaml:5:") && e.contains("invalid regular expression"), "{e}");
        for m in ["name: \"*\"", "name: \"?*\"", "cmdline: \".*\"", "cmdline: \"\"", "{ name: \"*\", user: 0 }"] {
            let m = if m.starts_with('{') { m.to_string() } else { format!("{{ {m} }}") };
            let e = load(&format!("  s:\n    orphan_sweep:\n      match: {m}\n")).unwrap_err();
            assert!(
                e.starts_with("/x/s.yaml:5:")
                    && e.contains("covers every process")
                    && e.contains("match_everything: true"),
                "{m}: {e}"
            );
            assert!(
                load(&format!("  s:\n    orphan_sweep:\n      match: {m}\n      match_everything: true\n")).is_ok(),
                "{m}"
            );
        }
        for narrow in [
            "{ name: \"*\", user: 65534 }",
            "{ cmdline: \".*\", exe: /usr/bin/w }",
            "{ name: \"ci-*\", cmdline: \".*\" }",
        ] {
            assert!(load(&format!("  s:\n    orphan_sweep:\n      match: {narrow}\n")).is_ok(), "{narrow}");
        }
        let e = load("  s:\n    run: x\n    orphan_sweep:\n      match: { name: x }\n").unwrap_err();
        assert!(e.contains("a job does one thing"), "{e}");
    }

    #[test]
    fn glob_matches_like_a_shell() {
        assert!(glob(b"ci-*", b"ci-worker", false));
        assert!(glob(b"ci-*", b"ci-", false));
        assert!(!glob(b"ci-*", b"xci-worker", false));
        assert!(glob(b"*worker", b"ci-worker", false));
        assert!(glob(b"c?-w*r", b"ci-worker", false));
        assert!(!glob(b"c?-w*x", b"ci-worker", false));
        assert!(glob(b"a*b*c", b"aXbYbZc", false));
        assert!(!glob(b"worker", b"worker2", false));
    }

    #[test]
    fn a_cut_comm_matches_the_start_of_a_longer_name() {
        // comm "ci-worker-long-" is the kernel's cut of "ci-worker-long-name".
        assert!(glob(b"ci-worker-long-name", b"ci-worker-long-", true));
        assert!(!glob(b"ci-worker-long-name", b"ci-worker-long-", false));
        assert!(!glob(b"ci-other-long-name", b"ci-worker-long-", true));
        assert!(glob(b"*-name", b"ci-worker-long-", true));
    }

    #[test]
    fn registry_reads_a_file_or_a_directory_and_refuses_garbage() {
        let d = std::env::temp_dir().join(format!("sweep-reg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("dir")).unwrap();
        std::fs::write(d.join("file"), "12 7\n# a comment\n99 # trailing\n").unwrap();
        assert_eq!(read_registry(&d.join("file")).unwrap(), vec![7, 12, 99]);
        std::fs::write(d.join("dir/a.pid"), "42\n").unwrap();
        std::fs::write(d.join("dir/b.pid"), "43 extra words\n").unwrap();
        std::fs::write(d.join("dir/.hidden"), "junk").unwrap();
        assert_eq!(read_registry(&d.join("dir")).unwrap(), vec![42, 43]);
        std::fs::write(d.join("bad"), "12 x13\n").unwrap();
        assert!(read_registry(&d.join("bad")).unwrap_err().contains("`x13` is not a pid"));
        assert!(read_registry(&d.join("missing")).unwrap_err().contains("cannot be read"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn plain_handle_refuses_a_process_whose_start_time_changed() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id() as i32;
        // spawn returns once the child's exec has replaced its memory, a moment before the
        // kernel sets the new command line up: read it as the scan of a settled process would.
        let argv = loop {
            let argv = Process::new(pid).unwrap().cmdline().unwrap();
            if argv.first().is_some_and(|a| a == "sleep") {
                break argv;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let st = Process::new(pid).unwrap().stat().unwrap();
        let real = Proc {
            pid,
            ppid: st.ppid,
            start_ticks: st.starttime,
            age: Duration::ZERO,
            name: "sleep".into(),
            cmdline: String::new(),
            cmdline_hash: hash_argv(&argv),
        };
        let other = Proc { start_ticks: st.starttime + 1, ..real.clone() };
        assert!(matches!(send(&other, &Handle::Plain, Signal::SIGTERM), Err(Lost::Changed(_))));
        assert!(matches!(pin(&other), Err(Lost::Changed(_))));
        assert!(Process::new(pid).unwrap().stat().is_ok_and(|st| st.state != 'Z' && st.state != 'X'));
        let h = pin(&real).unwrap();
        assert!(matches!(h, Handle::Pidfd(_)));
        send(&real, &h, Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert_eq!(send(&real, &h, Signal::SIGKILL), Err(Lost::Exited));
    }
}
