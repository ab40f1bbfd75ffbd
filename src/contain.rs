//! Containment: what keeps a run's processes together so that none outlives the run, even one
//! that left the run's session with `setsid`.
//!
//! - The daemon and `runner once` call [`init`] once: runner becomes a child subreaper
//!   (`PR_SET_CHILD_SUBREAPER`), so whatever a job leaves behind is re-parented to runner, not
//!   to PID 1. Where a cgroup v2 hierarchy is writable it also makes its own subtree
//!   (`<own cgroup>/runner.<pid>.<start time>` without systemd, empty ones a killed runner
//!   left removed at start; its delegated unit cgroup under systemd, with
//!   runner itself moved into the `supervisor` leaf) and each run gets a cgroup in it
//!   ([`RunCgroup`]): `cgroup.kill` ends it exactly, `cgroup.events` says when it is empty,
//!   `cpu.stat` says what it used.
//! - Without a writable cgroup v2 (or with `RUNNER_CONTAINMENT=subreaper`) a run's processes
//!   are its process group plus the processes runner adopted that carry the run's
//!   `RUNNER_RUN_ID` in their environment or are in its session ([`adopted`]). They are
//!   reaped here by pid ([`reap`]), never with `waitpid(-1)`, and only when they are not the
//!   runs' own main processes ([`SPAWNED`]).
//!
//! What it must not do: reap a process the runtime spawned, signal a process that is not in a
//! run's cgroup or adopted with the run's mark, or leave a cgroup it made behind.

use std::collections::HashSet;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use nix::libc;
use nix::sys::signal::Signal;

use crate::proc;

/// The environment variable that forces the fallback: `subreaper`.
pub const FORCE_ENV: &str = "RUNNER_CONTAINMENT";
/// The mark every run's processes get in their environment: `<runner pid>.<run number>`.
pub const RUN_ID_ENV: &str = "RUNNER_RUN_ID";

/// How this runner process keeps runs together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A cgroup per run under this directory (runner's own subtree).
    Cgroup { base: PathBuf, made: bool },
    /// Subreaper only; `why` says why no cgroup is used.
    Subreaper { why: String },
}

impl Mode {
    /// One line for `runner status` and the log.
    pub fn describe(&self) -> String {
        match self {
            Mode::Cgroup { base, .. } => format!("cgroup ({})", base.display()),
            Mode::Subreaper { why } => format!("subreaper ({why})"),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Mode::Cgroup { .. } => "cgroup",
            Mode::Subreaper { .. } => "subreaper",
        }
    }
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Pids the runtime spawned and has not reaped yet: [`reap`] never touches them. Held across a
/// spawn, so no child is ever seen before it is listed.
pub static SPAWNED: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

/// Starts a helper program of the daemon's own (curl or wget for a ping), listed in
/// [`SPAWNED`] from before it exists until it is reaped, so the stray reaper never takes its
/// exit status (std's wait would then fail with ECHILD and a delivered ping be sent again).
pub fn output_of(cmd: &mut std::process::Command, stdin: &[u8]) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    let mut child = {
        let mut listed = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
        let child = cmd.spawn()?;
        listed.get_or_insert_with(Default::default).insert(child.id());
        child
    };
    let pid = child.id();
    if let Some(mut pipe) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its exit status.
        let _ = pipe.write_all(stdin);
    }
    let out = child.wait_with_output();
    if let Some(s) = SPAWNED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        s.remove(&pid);
    }
    out
}

/// The mode in use; None before [`init`] (library use, unit tests): runs are process groups.
pub fn mode() -> Option<&'static Mode> {
    MODE.get()
}

/// Becomes a subreaper and sets up the cgroup subtree if it can. Called once per process.
pub fn init() -> &'static Mode {
    MODE.get_or_init(|| {
        // Never refused by a Linux kernel (3.4 and later); qemu-user 7.2 refuses it (EINVAL).
        // Without it the fallback cannot adopt what leaves a run's group: say so where the
        // mode is shown, rather than claim a containment that is not there.
        let subreaper = nix::sys::prctl::set_child_subreaper(true);
        let fallback = |why: String| match subreaper {
            Ok(()) => Mode::Subreaper { why },
            Err(e) => Mode::Subreaper {
                why: format!(
                    "{why}; and not a child subreaper ({e}): what leaves a run's process group is not ended with the run"
                ),
            },
        };
        if std::env::var(FORCE_ENV).is_ok_and(|v| v == "subreaper") {
            return fallback(format!("{FORCE_ENV}=subreaper"));
        }
        match setup_cgroup() {
            Ok(mode) => mode,
            Err(why) => fallback(why),
        }
    })
}

/// Removes the subtree runner made (at a clean exit); runs' cgroups are gone already.
pub fn finish() {
    if let Some(Mode::Cgroup { base, made: true }) = MODE.get() {
        let own = own_cgroup_dir().ok();
        // Back where we came from, so the subtree can go.
        if let Some(parent) = base.parent()
            && own.as_deref().is_some_and(|o| o.starts_with(base))
        {
            let _ = std::fs::write(parent.join("cgroup.procs"), "0");
        }
        let _ = std::fs::remove_dir(base.join("supervisor"));
        let _ = std::fs::remove_dir(base);
    }
}

fn cgroup2_mount() -> Result<PathBuf, String> {
    let text = proc::own_mountinfo()?;
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        if right.split_whitespace().next() == Some("cgroup2") {
            let fields: Vec<&str> = left.split_whitespace().collect();
            if fields.len() > 4 && fields[3] == "/" {
                return Ok(PathBuf::from(fields[4]));
            }
        }
    }
    Err("no cgroup2 mount".into())
}

fn own_cgroup_dir() -> Result<PathBuf, String> {
    let mount = cgroup2_mount()?;
    let text = proc::own_cgroup()?;
    let rel = text.lines().find_map(|l| l.strip_prefix("0::")).ok_or("no cgroup v2 line in /proc/self/cgroup")?;
    Ok(mount.join(rel.trim_start_matches('/')))
}

fn setup_cgroup() -> Result<Mode, String> {
    let own = own_cgroup_dir()?;
    // Under systemd with Delegate=yes the unit's cgroup is ours: move into a leaf beside the
    // runs. Elsewhere make a subtree of our own below where we were started.
    let delegated = std::env::var_os("INVOCATION_ID").is_some()
        && own.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".service"));
    let (base, made) = if delegated {
        (own.clone(), false)
    } else {
        remove_stale(&own);
        // The pid alone may repeat across pid namespaces that share the hierarchy.
        let start = proc::stat(std::process::id() as i32).map_or(0, |st| st.starttime);
        (own.join(format!("runner.{}.{start}", std::process::id())), true)
    };
    if !made {
        // A daemon restarted after a crash: its unit's cgroup may still hold its runs.
        end_runs(&base);
    }
    if made && let Err(e) = std::fs::create_dir(&base) {
        return Err(format!("cannot create {}: {e}", base.display()));
    }
    let fail = |what: String| {
        if made {
            let _ = std::fs::remove_dir(base.join("supervisor"));
            let _ = std::fs::remove_dir(&base);
        }
        Err(what)
    };
    if !base.join("cgroup.kill").exists() {
        return fail(format!("{} has no cgroup.kill (Linux 5.14)", base.display()));
    }
    let leaf = base.join("supervisor");
    if let Err(e) = std::fs::create_dir(&leaf).or_else(|e| if leaf.is_dir() { Ok(()) } else { Err(e) }) {
        return fail(format!("cannot create {}: {e}", leaf.display()));
    }
    if let Err(e) = std::fs::write(leaf.join("cgroup.procs"), "0") {
        return fail(format!("cannot move runner into {}: {e}", leaf.display()));
    }
    Ok(Mode::Cgroup { base, made })
}

/// Ends and removes the subtrees of runners that were killed before [`finish`]: those whose
/// `supervisor` leaf holds no runner and that are older than a couple of seconds (a runner
/// between making its subtree and moving into it). What is left in their runs' cgroups was
/// started by runner for a run whose runner is gone: it gets `cgroup.kill`, as a restarted
/// daemon ends the process groups its predecessor recorded.
fn remove_stale(parent: &Path) {
    let Ok(dir) = std::fs::read_dir(parent) else { return };
    for e in dir.flatten() {
        if !e.file_name().to_string_lossy().starts_with("runner.") {
            continue;
        }
        let sub = e.path();
        let young = std::fs::metadata(&sub)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() < std::time::Duration::from_secs(2));
        let leaf = sub.join("supervisor");
        let busy = std::fs::read_to_string(leaf.join("cgroup.procs")).is_ok_and(|t| !t.trim().is_empty());
        if young || busy {
            continue;
        }
        end_runs(&sub);
        let _ = std::fs::remove_dir(sub.join("supervisor"));
        let _ = std::fs::remove_dir(&sub);
    }
}

/// Ends and removes the `run.<n>` cgroups in `dir`, left by a runner that is gone.
fn end_runs(dir: &Path) {
    let Ok(runs) = std::fs::read_dir(dir) else { return };
    for r in runs.flatten().filter(|r| r.file_name().to_string_lossy().starts_with("run.")) {
        let run = RunCgroup { dir: r.path() };
        if run.populated() {
            log::warn!("ending what is left in {}, a run of a runner that is gone", run.dir.display());
            run.kill();
            for _ in 0..100 {
                if !run.populated() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        // Dropping it removes it.
    }
}

/// One run's cgroup; removed when dropped (after ending what is left in it).
#[derive(Debug)]
pub struct RunCgroup {
    pub dir: PathBuf,
}

impl RunCgroup {
    /// A new, empty cgroup for run number `n` in runner's subtree, if cgroups are in use.
    pub fn create(n: u64) -> io::Result<Option<RunCgroup>> {
        let Some(Mode::Cgroup { base, .. }) = MODE.get() else { return Ok(None) };
        let dir = base.join(format!("run.{n}"));
        std::fs::create_dir(&dir)?;
        Ok(Some(RunCgroup { dir }))
    }

    /// The cgroup's directory: what a start opens for clone3's CLONE_INTO_CGROUP.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// SIGKILLs everything in it, forks in flight included.
    pub fn kill(&self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
    }

    /// Whether any process is in it (`populated` of `cgroup.events`); an unreadable file
    /// counts as populated.
    pub fn populated(&self) -> bool {
        match crate::fsx::read_kernel(&self.dir.join("cgroup.events"), 512) {
            Ok(t) => t.lines().any(|l| l == "populated 1"),
            Err(_) => self.dir.exists(),
        }
    }

    pub fn pids(&self) -> Vec<i32> {
        crate::fsx::read_kernel(&self.procs_file(), 512)
            .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// CPU time of every process that ran in it, `usage_usec` of `cpu.stat`.
    pub fn cpu_usec(&self) -> Option<u64> {
        let t = crate::fsx::read_kernel(&self.dir.join("cpu.stat"), 512).ok()?;
        t.lines().find_map(|l| l.strip_prefix("usage_usec ")?.trim().parse().ok())
    }

    /// `memory.peak`, where the memory controller is enabled.
    pub fn memory_peak(&self) -> Option<u64> {
        crate::fsx::read_kernel(&self.dir.join("memory.peak"), 512).ok()?.trim().parse().ok()
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        // rmdir fails (EBUSY) while a process is in it: what is left is killed then, and
        // rmdir tried again while the killed processes exit. An empty cgroup, the common
        // case, goes at the first try, without a read of `cgroup.events` first.
        let mut killed = false;
        for _ in 0..50 {
            match std::fs::remove_dir(&self.dir) {
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    if !std::mem::replace(&mut killed, true) {
                        self.kill();
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2))
                }
                _ => return,
            }
        }
        log::warn!("cannot remove cgroup {}: still busy", self.dir.display());
    }
}

/// Whether `pid` is in a run's cgroup of *some* runner (the path holds `/runner.` or a
/// `.service` and then `/run.`), for orphan sweeps.
pub fn in_run_cgroup(pid: i32) -> bool {
    let Ok(text) = proc::cgroup(pid) else { return false };
    text.lines().filter_map(|l| l.strip_prefix("0::")).any(|p| {
        p.rsplit('/').next().is_some_and(|leaf| {
            leaf.strip_prefix("run.").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    })
}

/// What [`reap`] learnt of the processes it waited for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_usec: u64,
    pub maxrss_bytes: u64,
}

/// Adopted (re-parented to us), not a run's main process, and of this run: in its session
/// `sid` or marked with its `run_id`. Returns the live ones; zombies among them are reaped
/// here and their usage added to `usage`.
pub fn adopted(run_id: &str, sid: i32, usage: &mut Usage) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mark = format!("{RUN_ID_ENV}={run_id}");
    let mut live = Vec::new();
    let pids = our_children();
    let spawned = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
    for pid in pids {
        let Ok(st) = proc::stat(pid) else { continue };
        if st.ppid != me || spawned.as_ref().is_some_and(|s| s.contains(&(pid as u32))) {
            continue;
        }
        if st.state == 'Z' {
            if st.session == sid || marked(pid, &mark) {
                // A zombie's environ is empty: the session or, failing that, the run that
                // saw it alive, decides. An unattributed one is reaped by `reap_strays`.
                reap_one(pid, usage);
            }
            continue;
        }
        if st.session == sid || marked(pid, &mark) {
            live.push(pid);
        }
    }
    live
}

/// The live processes marked with run `run_id` that started after the run did (`since_ms`,
/// less two seconds for clock steps), each as a pidfd opened before its mark was checked
/// again, so none is another process by now: what a crashed daemon's run left outside its
/// group (a `setsid`, a double fork), re-parented to init once the subreaper died. A scan of
/// every process: call it at start-up, on a blocking thread.
pub fn marked_leftovers(run_id: &str, since_ms: i64) -> Vec<std::os::fd::OwnedFd> {
    if run_id.is_empty() {
        return Vec::new();
    }
    let mark = format!("{RUN_ID_ENV}={run_id}");
    let me = std::process::id() as i32;
    let Ok(pids) = proc::pids(Path::new("/proc")) else { return Vec::new() };
    let Some(boot) = proc::boot_time() else { return Vec::new() };
    let started_ms = |ticks: u64| crate::time::epoch_ms(proc::started_at(boot, ticks));
    let candidate = |pid: i32| {
        proc::stat(pid)
            .is_ok_and(|st| st.state != 'Z' && st.state != 'X' && started_ms(st.starttime) >= since_ms - 2_000)
    };
    pids.filter(|&pid| pid > 1 && pid != me && candidate(pid) && marked(pid, &mark))
        .filter_map(|pid| {
            let fd = proc::pidfd_open(pid).ok()?;
            marked(pid, &mark).then_some(fd)
        })
        .collect()
}

/// Ends what [`marked_leftovers`] found: SIGTERM, up to `grace` for each to exit, then
/// SIGKILL, all through their pidfds. Blocking, for up to the grace and a little more.
pub fn end_marked(fds: &[std::os::fd::OwnedFd], grace: std::time::Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout};
    let exited = |fd: &std::os::fd::OwnedFd| {
        let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        matches!(nix::poll::poll(&mut p, PollTimeout::ZERO), Ok(n) if n > 0)
    };
    for fd in fds {
        let _ = proc::pidfd_send_signal(fd, Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + grace;
    while fds.iter().any(|fd| !exited(fd)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for fd in fds.iter().filter(|fd| !exited(fd)) {
        let _ = proc::pidfd_send_signal(fd, Signal::SIGKILL);
    }
}

/// Our children (spawned or adopted, zombies included): each thread's
/// `/proc/self/task/<tid>/children` (a handful of reads), or a scan of every process where the
/// kernel lacks that file (`CONFIG_PROC_CHILDREN`); callers check the parent pid anyway.
fn our_children() -> Vec<i32> {
    let mut out = Vec::new();
    let listed = proc::own_children(&mut out);
    if !listed && let Ok(pids) = proc::pids(Path::new("/proc")) {
        out.extend(pids);
    }
    out
}

fn marked(pid: i32, mark: &str) -> bool {
    let Ok(buf) = proc::environ(pid) else { return false };
    buf.split(|b| *b == 0).any(|v| v == mark.as_bytes())
}

fn reap_one(pid: i32, usage: &mut Usage) {
    if let Ok(Some(r)) = runner_sys::wait::wait4(pid, libc::WNOHANG) {
        usage.cpu_usec += r.cpu_usec;
        usage.maxrss_bytes = usage.maxrss_bytes.max(r.maxrss_bytes);
    }
}

/// Reaps every adopted zombie that is not a run's main process (call on SIGCHLD): nothing runner
/// adopted stays a zombie, whichever run it came from.
pub fn reap_strays() {
    let me = crate::host::pid() as i32;
    let pids = our_children();
    let spawned = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
    let mut ignored = Usage::default();
    for pid in pids {
        let Ok(st) = proc::stat(pid) else { continue };
        if st.ppid == me && st.state == 'Z' && !spawned.as_ref().is_some_and(|s| s.contains(&(pid as u32))) {
            reap_one(pid, &mut ignored);
        }
    }
}

/// Sends `sig` to each pid through a pidfd opened first, so a pid reused meanwhile is never
/// signalled (the pids come from a cgroup or from our own children, which cannot be reused
/// before we reap them).
pub fn signal_each(pids: &[i32], sig: Signal) {
    for &pid in pids {
        if pid <= 1 {
            continue;
        }
        if let Ok(fd) = proc::pidfd_open(pid) {
            let _ = fd.as_fd();
            let _ = proc::pidfd_send_signal(&fd, sig);
        }
    }
}
