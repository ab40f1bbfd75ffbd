//! Starting a job's process, and the child type a run owns until it has reaped it.
//!
//! One way to start a job, two ways to make its process. A job starts by
//! `clone3(CLONE_PIDFD | CLONE_INTO_CGROUP)` without `CLONE_VM` (`runner_sys::spawn::clone_into`):
//! a fork that is created directly in the run's cgroup (no `cgroup.procs` write, whose
//! migration waits an RCU grace period under the kernel's global cgroup mutex). Where the
//! kernel or a seccomp filter refuses that clone3 (ENOSYS, EPERM, EINVAL, E2BIG: qemu-user,
//! before Linux 5.7 there is no CLONE_INTO_CGROUP), or with `RUNNER_SPAWN=helper`, the process
//! is the runner binary's exec helper (`super::exec_helper`), started through posix_spawn;
//! it joins the cgroup. Decided at the first start and kept.
//!
//! Either way the same code (`runner_sys::spawn`) sets the process up (signals, session,
//! umask, nice, ids, death signal, working directory, descriptors) and execs the job, in
//! the child: the daemon's thread goes on at once, so a `chdir` into a hung NFS or FUSE
//! mount, or a `PATH` entry on one, holds that job's start only. A failed step comes back on
//! a report pipe (`super::Pending`).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU8, Ordering};

use nix::libc;
use nix::sys::signal::Signal;
use runner_sys::fd::{Watched, above_stdio};
use runner_sys::spawn::Prepared;
use tokio::net::unix::pipe;

use crate::contain::{RunCgroup, SPAWNED, Usage};

/// `RUNNER_SPAWN=helper` starts every job through the exec helper, as where clone3 is refused.
pub const SPAWN_ENV: &str = "RUNNER_SPAWN";

/// What a job's process is made of, resolved by the caller.
pub(super) struct Job<'a> {
    /// What the child sets up and runs, as the system crate takes it.
    pub sys: runner_sys::spawn::Job<'a>,
    pub cgroup: Option<&'a RunCgroup>,
    /// The runner binary, for the exec helper.
    pub helper: &'a Path,
}

/// The process exists; the descriptor carries its set-up's report (see `super::Pending`).
pub(super) struct Started(pub RunChild, pub OwnedFd);

const UNDECIDED: u8 = 0;
const DIRECT: u8 = 1;
const HELPER: u8 = 2;
static METHOD: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Starts the job's process with stdin from /dev/null and stdout and stderr to pipes.
pub(super) fn start(job: &Job<'_>) -> Result<Started, String> {
    let io_err = |what: &str, e: io::Error| format!("cannot {what}: {}", errno_desc(&e));
    let devnull = std::fs::File::open("/dev/null").map_err(|e| io_err("open /dev/null", e))?;
    let devnull = above_stdio(devnull.into()).map_err(|e| io_err("open /dev/null", e))?;
    let (out_r, out_w) = pipe_pair().map_err(|e| io_err("create a pipe", e))?;
    let (err_r, err_w) = pipe_pair().map_err(|e| io_err("create a pipe", e))?;
    let stdio = [devnull.as_fd(), out_w.as_fd(), err_w.as_fd()];
    // The read end is the daemon's; the write end goes to the child, close-on-exec (the
    // clone) or inherited (the helper, which marks it close-on-exec itself).
    let (report_rx, report_tx) = pipe_pair().map_err(|e| io_err("create a pipe", e))?;

    let mut method = METHOD.load(Ordering::Relaxed);
    if method == UNDECIDED {
        let forced = std::env::var_os(SPAWN_ENV).is_some_and(|v| v == "helper");
        method = if forced { HELPER } else { DIRECT };
        METHOD.store(method, Ordering::Relaxed);
    }
    if method == DIRECT {
        match clone_job(job, stdio, &report_tx) {
            Ok((pid, pidfd)) => return RunChild::new(pid, pidfd, out_r, err_r).map(|c| Started(c, report_rx)),
            Err(Cloned::Refused(errno)) => {
                METHOD.store(HELPER, Ordering::Relaxed);
                log::info!("jobs start through the exec helper: clone3 into a cgroup is refused ({})", errno.desc());
            }
            Err(Cloned::Failed(f)) => return Err(f),
        }
    }
    let pid = helper_job(job, stdio, report_tx)?;
    let pidfd = match crate::proc::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            kill_and_reap(pid);
            return Err(format!("cannot open a pidfd for the job: {}", e.desc()));
        }
    };
    RunChild::new(pid, pidfd, out_r, err_r).map(|c| Started(c, report_rx))
}

fn errno_desc(e: &io::Error) -> &'static str {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)).desc()
}

/// A pipe, both ends close-on-exec and above stderr, so the child's dup onto 0-2 never
/// overwrites one it still needs (a daemon started with stdio closed gets 0-2 from open).
fn pipe_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// The job's process, from its start until it is reaped: by [`RunChild::wait`], or, when
/// dropped before, SIGKILLed and reaped by a task of the runtime (no zombie is left).
pub(super) struct RunChild {
    pid: i32,
    /// None once reaped.
    pidfd: Option<Watched<OwnedFd>>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
}

impl RunChild {
    fn new(pid: i32, pidfd: OwnedFd, out: OwnedFd, err: OwnedFd) -> Result<RunChild, String> {
        // Built before any fallible step so a failure below drops (kills and reaps) the child.
        let mut child = RunChild { pid, pidfd: None, stdout: None, stderr: None };
        let fail = |e: io::Error| format!("cannot watch the job's process: {}", errno_desc(&e));
        match Watched::new(pidfd, tokio::io::Interest::READABLE) {
            Ok(fd) => child.pidfd = Some(fd),
            Err(e) => {
                kill_and_reap(pid);
                return Err(fail(e));
            }
        }
        child.stdout = Some(pipe::Receiver::from_owned_fd(out).map_err(fail)?);
        child.stderr = Some(pipe::Receiver::from_owned_fd(err).map_err(fail)?);
        Ok(child)
    }

    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// SIGKILLs the process (not yet reaped) through its pidfd.
    pub fn kill(&self) {
        if let Some(fd) = &self.pidfd {
            let _ = crate::proc::pidfd_send_signal(fd.get_ref(), Signal::SIGKILL);
        }
    }

    /// Waits, without blocking the thread, until the process has exited and reaps it; `usage`
    /// gets its rusage (its own and that of the children it reaped). Cancel-safe: the reap
    /// and its result happen in one poll.
    pub async fn wait(&mut self, usage: &mut Usage) -> io::Result<ExitStatus> {
        loop {
            let Some(fd) = &self.pidfd else { return Err(io::Error::from_raw_os_error(libc::ECHILD)) };
            let mut ready = fd.readable().await?;
            match runner_sys::wait::wait4(self.pid, libc::WNOHANG)? {
                Some(r) => {
                    *usage = Usage { cpu_usec: r.cpu_usec, maxrss_bytes: r.maxrss_bytes };
                    let status = ExitStatus::from_raw(r.status);
                    self.pidfd = None;
                    unlist(self.pid);
                    return Ok(status);
                }
                None => ready.clear_ready(),
            }
        }
    }
}

impl Drop for RunChild {
    fn drop(&mut self) {
        let Some(fd) = self.pidfd.take() else { return };
        let _ = crate::proc::pidfd_send_signal(fd.get_ref(), Signal::SIGKILL);
        let pid = self.pid;
        let reaper = ReapOnDrop(pid);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    let _ = fd.readable().await;
                    drop(reaper);
                });
            }
            // SIGKILLed: it dies at once, unless stuck in the kernel (see ReapOnDrop).
            Err(_) => drop(reaper),
        }
    }
}

/// Reaps a SIGKILLed child when dropped: after its pidfd turned readable, or when the
/// runtime shuts down first (then without waiting).
struct ReapOnDrop(i32);

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        // Without a runtime (it shut down first), waits a bounded while: a process stuck in
        // the kernel (a lookup on a hung mount) dies only when that returns, and must not hold
        // the daemon's exit; it is then re-parented, its death signal pending.
        let tries = if tokio::runtime::Handle::try_current().is_ok() { 1 } else { 200 };
        for _ in 0..tries {
            match runner_sys::wait::wait4(self.0, libc::WNOHANG) {
                Ok(Some(_)) => return unlist(self.0),
                Ok(None) if tries > 1 => std::thread::sleep(std::time::Duration::from_millis(5)),
                _ => return,
            }
        }
    }
}

/// Ends a start that failed once its process existed: SIGKILL, reap, unlist.
fn kill_and_reap(pid: i32) {
    // Our own unreaped child, listed in SPAWNED so nothing else reaps it: the pid is its.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    let _ = runner_sys::wait::wait4(pid, 0);
    unlist(pid);
}

/// The process is reaped: adopted-process scans may take a reused pid as theirs now.
fn unlist(pid: i32) {
    if let Some(s) = SPAWNED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        s.remove(&(pid as u32));
    }
}

enum Cloned {
    /// clone3 (or CLONE_INTO_CGROUP) is not available here: use the exec helper from now on.
    Refused(nix::errno::Errno),
    Failed(String),
}

fn nul_byte(what: &OsStr) -> String {
    format!("cannot run {}: an argument or environment value holds a NUL byte", what.to_string_lossy())
}

/// The job's process by clone3 into its cgroup: its pid and pidfd.
fn clone_job(
    job: &Job<'_>,
    stdio: [std::os::fd::BorrowedFd<'_>; 3],
    report: &OwnedFd,
) -> Result<(i32, OwnedFd), Cloned> {
    let program = job.sys.argv.first().copied().unwrap_or(OsStr::new(""));
    let mut prepared = Prepared::new(&job.sys).map_err(|_| Cloned::Failed(nul_byte(program)))?;
    let cgroup_fd = match job.cgroup {
        Some(cg) => Some(
            nix::fcntl::open(
                cg.dir(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| Cloned::Failed(format!("cannot open the run's cgroup: {}", e.desc())))?,
        ),
        None => None,
    };
    // Listed before anything can see it as our child, so no scan for adopted processes
    // reaps it.
    let mut listed = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
    let cloned =
        runner_sys::spawn::clone_into(&mut prepared, cgroup_fd.as_ref().map(|fd| fd.as_fd()), stdio, report.as_fd());
    match cloned {
        Ok((pid, pidfd)) => {
            listed.get_or_insert_with(Default::default).insert(pid as u32);
            Ok((pid, pidfd))
        }
        Err(
            e @ (nix::errno::Errno::ENOSYS
            | nix::errno::Errno::EPERM
            | nix::errno::Errno::EINVAL
            | nix::errno::Errno::E2BIG),
        ) => Err(Cloned::Refused(e)),
        Err(e) => Err(Cloned::Failed(format!("cannot start the job's process: {}", e.desc()))),
    }
}

/// The fallback: the runner binary's exec helper, by posix_spawn, which joins the run's
/// cgroup, sets up and execs the job (`super::exec_helper`). Returns its pid.
fn helper_job(job: &Job<'_>, stdio: [std::os::fd::BorrowedFd<'_>; 3], report_tx: OwnedFd) -> Result<i32, String> {
    let program = job.sys.argv.first().copied().unwrap_or(OsStr::new(""));
    // The write end is the helper's only extra descriptor, inheritable just for this spawn.
    nix::fcntl::fcntl(&report_tx, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
        .map_err(|e| format!("cannot set up the report pipe: {}", e.desc()))?;
    let ids = match job.sys.ids {
        Some((groups, gid, uid)) => {
            let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
            format!("{uid}:{gid}:{}", groups.join(","))
        }
        None => "-".into(),
    };
    let mut args: Vec<OsString> = vec![
        job.helper.into(),
        super::EXEC_HELPER_ARG.into(),
        report_tx.as_raw_fd().to_string().into(),
        crate::host::pid().to_string().into(),
        format!("{:o}", job.sys.umask).into(),
        job.sys.nice.map_or("-".to_string(), |n| n.to_string()).into(),
        ids.into(),
        if job.sys.root_fallback { "1" } else { "0" }.into(),
        job.sys.workdir.into(),
        job.cgroup.map_or_else(|| OsString::from("-"), |c| c.procs_file().into_os_string()),
        "--".into(),
    ];
    args.extend(job.sys.argv.iter().map(|a| a.to_os_string()));
    let cstring = |b: &[u8]| CString::new(b).map_err(|_| nul_byte(program));
    let argv: Vec<CString> = args.iter().map(|a| cstring(a.as_bytes())).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = job
        .sys
        .env
        .iter()
        .map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
        .collect::<Result<_, _>>()?;
    let spawned = {
        let mut listed = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
        let r = runner_sys::spawn::posix_spawn(&argv[0], &argv, &envp, stdio);
        if let Ok(pid) = r {
            listed.get_or_insert_with(Default::default).insert(pid as u32);
        }
        r
    };
    drop(report_tx);
    spawned.map_err(|e| format!("cannot start the exec helper {}: {}", job.helper.display(), e.desc()))
}
