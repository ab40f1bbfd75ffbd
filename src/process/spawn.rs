//! Starting a job's process, and the child type a run owns until it has reaped it.
//!
//! On x86_64 and aarch64 a job starts by `clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD |
//! CLONE_INTO_CGROUP)` on a stack mapped for the spawn: the child shares the daemon's memory
//! (so a start costs the same with 20 jobs or 10,000: no page tables are copied), is created
//! directly in the run's cgroup (no `cgroup.procs` write, whose migration waits an RCU grace
//! period under the kernel's global cgroup mutex), sets itself up with raw system calls and
//! execs the job: one exec per run. The daemon's thread is suspended until the child has
//! exec'd or exited, so a failed step is read from memory both share ([`ChildArgs`]).
//!
//! Elsewhere, when the kernel or a seccomp filter refuses that clone3 (ENOSYS, EPERM, EINVAL,
//! E2BIG: before Linux 5.7 there is no CLONE_INTO_CGROUP), or with `RUNNER_SPAWN=helper`, the
//! job starts as the runner binary's exec helper (`super::exec_helper`) through glibc's
//! `posix_spawn`; the helper joins the cgroup, sets up and execs the job. Decided at the first
//! start and kept.
//!
//! What the child may do: it runs on the daemon's memory with the spawning thread's TLS while
//! other threads may run, so it must not allocate, take a lock, or call a glibc wrapper that
//! acts process-wide (glibc's setuid/setgid/setgroups signal every thread of the *parent* to
//! change theirs too): everything it needs is built before the clone, and it makes raw system
//! calls only. Signals are blocked in the spawning thread around the clone, so no handler of
//! the daemon runs on the child's stack; the child puts every handled signal back to its
//! default before it unblocks them.
// The clone3 start is built for x86_64 and aarch64 only; elsewhere its helpers go unused.
#![cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU8, Ordering};

use nix::libc;
use nix::sys::signal::Signal;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;

use super::Step;
use crate::contain::{RunCgroup, SPAWNED, Usage};

/// `RUNNER_SPAWN=helper` starts every job through the exec helper, as where clone3 is refused.
pub const SPAWN_ENV: &str = "RUNNER_SPAWN";

/// What a job's process is made of, resolved by the caller.
pub(super) struct Job<'a> {
    pub argv: &'a [&'a OsStr],
    /// Final: later entries already replaced earlier ones of the same name.
    pub env: &'a [(OsString, OsString)],
    pub workdir: &'a OsStr,
    /// The workdir is the defaulted home: fall back to "/" as cron does.
    pub root_fallback: bool,
    pub umask: u32,
    pub nice: Option<i8>,
    /// Supplementary groups, gid, uid; None: keep the daemon's.
    pub ids: Option<(&'a [u32], u32, u32)>,
    pub cgroup: Option<&'a RunCgroup>,
    /// The runner binary, for the exec helper.
    pub helper: &'a Path,
}

pub(super) enum Started {
    /// The job runs.
    Job(RunChild),
    /// The exec helper runs; the descriptor carries its report (see `super::Pending`).
    Helper(RunChild, OwnedFd),
}

pub(super) enum Failed {
    /// A step of the child's set-up (None: the exec) failed with this errno; the child is reaped.
    Step(Option<Step>, i32),
    Other(String),
}

const UNDECIDED: u8 = 0;
const DIRECT: u8 = 1;
const HELPER: u8 = 2;
static METHOD: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Starts the job's process with stdin from /dev/null and stdout and stderr to pipes.
pub(super) fn start(job: &Job<'_>) -> Result<Started, Failed> {
    let io_err = |what: &str, e: io::Error| Failed::Other(format!("cannot {what}: {}", errno_desc(&e)));
    let devnull = std::fs::File::open("/dev/null").map_err(|e| io_err("open /dev/null", e))?;
    let devnull = above_stdio(devnull.into()).map_err(|e| io_err("open /dev/null", e))?;
    let (out_r, out_w) = pipe_pair().map_err(|e| io_err("create a pipe", e))?;
    let (err_r, err_w) = pipe_pair().map_err(|e| io_err("create a pipe", e))?;
    let stdio = [devnull.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];

    let mut method = METHOD.load(Ordering::Relaxed);
    if method == UNDECIDED {
        let forced = std::env::var_os(SPAWN_ENV).is_some_and(|v| v == "helper");
        method = if forced || !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) { HELPER } else { DIRECT };
        METHOD.store(method, Ordering::Relaxed);
    }
    if method == DIRECT {
        match clone_job(job, stdio) {
            Ok((pid, pidfd)) => return RunChild::new(pid, pidfd, out_r, err_r).map(Started::Job),
            Err(Cloned::Refused(errno)) => {
                METHOD.store(HELPER, Ordering::Relaxed);
                log::info!(
                    "jobs start through the exec helper: clone3 into a cgroup is refused ({})",
                    nix::errno::Errno::from_raw(errno).desc()
                );
            }
            Err(Cloned::Failed(f)) => return Err(f),
        }
    }
    let (pid, report) = helper_job(job, stdio)?;
    let pidfd = match crate::proc::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) => {
            kill_and_reap(pid);
            return Err(Failed::Other(format!("cannot open a pidfd for the job: {}", e.desc())));
        }
    };
    RunChild::new(pid, pidfd, out_r, err_r).map(|c| Started::Helper(c, report))
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

fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: duplicates a descriptor we own; the new one is ours alone.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// The job's process, from its start until it is reaped: by [`RunChild::wait`], or, when
/// dropped before, SIGKILLed and reaped by a task of the runtime (no zombie is left).
pub(super) struct RunChild {
    pid: i32,
    /// None once reaped.
    pidfd: Option<AsyncFd<OwnedFd>>,
    pub stdout: Option<pipe::Receiver>,
    pub stderr: Option<pipe::Receiver>,
}

impl RunChild {
    fn new(pid: i32, pidfd: OwnedFd, out: OwnedFd, err: OwnedFd) -> Result<RunChild, Failed> {
        // Built before any fallible step so a failure below drops (kills and reaps) the child.
        let mut child = RunChild { pid, pidfd: None, stdout: None, stderr: None };
        let fail = |e: io::Error| Failed::Other(format!("cannot watch the job's process: {}", errno_desc(&e)));
        // SAFETY: the AsyncFd owns the descriptor, which so stays open while registered.
        match unsafe { AsyncFd::register_with_interest(pidfd, tokio::io::Interest::READABLE) } {
            Ok(fd) => child.pidfd = Some(fd),
            Err(e) => {
                kill_and_reap(pid);
                return Err(fail(e.into()));
            }
        }
        child.stdout = Some(pipe::Receiver::from_owned_fd(out).map_err(fail)?);
        child.stderr = Some(pipe::Receiver::from_owned_fd(err).map_err(fail)?);
        Ok(child)
    }

    pub fn id(&self) -> u32 {
        self.pid as u32
    }

    /// Waits, without blocking the thread, until the process has exited and reaps it; `usage`
    /// gets its rusage (its own and that of the children it reaped). Cancel-safe: the reap
    /// and its result happen in one poll.
    pub async fn wait(&mut self, usage: &mut Usage) -> io::Result<ExitStatus> {
        loop {
            let Some(fd) = &self.pidfd else { return Err(io::Error::from_raw_os_error(libc::ECHILD)) };
            let mut ready = fd.readable().await?;
            match reap(self.pid, libc::WNOHANG)? {
                Some((status, u)) => {
                    *usage = u;
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
            // SIGKILLed: it dies at once (unless stuck in the kernel, and then waiting here is
            // what the caller's thread can do best without a runtime).
            Err(_) => drop(reaper),
        }
    }
}

/// Reaps a SIGKILLed child when dropped: after its pidfd turned readable, or when the
/// runtime shuts down first (then without waiting).
struct ReapOnDrop(i32);

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        let flags = if tokio::runtime::Handle::try_current().is_ok() { libc::WNOHANG } else { 0 };
        if let Ok(Some(_)) = reap(self.0, flags) {
            unlist(self.0);
        }
    }
}

/// wait4 on one pid: Some once it has exited (reaped), None if it still runs (WNOHANG).
fn reap(pid: i32, flags: libc::c_int) -> io::Result<Option<(ExitStatus, Usage)>> {
    loop {
        let mut status = 0;
        // SAFETY: plain out-parameters for wait4.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r == pid {
            let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
            let usage =
                Usage { cpu_usec: t(ru.ru_utime) + t(ru.ru_stime), maxrss_bytes: ru.ru_maxrss.max(0) as u64 * 1024 };
            return Ok(Some((ExitStatus::from_raw(status), usage)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// Ends a start that failed once its process existed: SIGKILL, reap, unlist.
fn kill_and_reap(pid: i32) {
    // SAFETY: our own unreaped child, listed in SPAWNED so nothing else reaps it.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = reap(pid, 0);
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
    Refused(i32),
    Failed(Failed),
}

/// A NUL-terminated array of pointers into `strings`, which must outlive it.
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

fn cstring(bytes: &[u8], what: &OsStr) -> Result<CString, Failed> {
    CString::new(bytes).map_err(|_| {
        Failed::Other(format!(
            "cannot run {}: an argument or environment value holds a NUL byte",
            what.to_string_lossy()
        ))
    })
}

/// The job's environment as execve takes it: `NAME=value` strings.
fn env_strings(env: &[(OsString, OsString)], program: &OsStr) -> Result<Vec<CString>, Failed> {
    env.iter().map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat(), program)).collect()
}

/// Where execvp would look for `program`, in order: itself if it names a path, else each
/// entry of the job's PATH (glibc's default when it has none; an empty entry is the working
/// directory).
fn candidates(program: &[u8], env: &[(OsString, OsString)]) -> Vec<Vec<u8>> {
    if program.contains(&b'/') {
        return vec![program.to_vec()];
    }
    let path = env.iter().rev().find(|(k, _)| k == "PATH").map_or(&b"/bin:/usr/bin"[..], |(_, v)| v.as_bytes());
    path.split(|b| *b == b':')
        .map(|dir| {
            if dir.is_empty() {
                program.to_vec()
            } else {
                let mut p = dir.to_vec();
                p.push(b'/');
                p.extend_from_slice(program);
                p
            }
        })
        .collect()
}

/// What the child reads, and where it reports a failed step. The parent reads `failed` only
/// after clone3 returned, when the child has exec'd or exited.
#[repr(C)]
struct ChildArgs {
    candidates: *const *const libc::c_char,
    argv: *const *const libc::c_char,
    /// `/bin/sh`, a slot for the candidate, then argv[1..]: execvp's ENOEXEC fallback.
    sh_argv: *mut *const libc::c_char,
    envp: *const *const libc::c_char,
    workdir: *const libc::c_char,
    groups: *const libc::gid_t,
    n_groups: usize,
    gid: libc::gid_t,
    uid: libc::uid_t,
    change_ids: bool,
    set_nice: bool,
    root_fallback: bool,
    nice: libc::c_int,
    umask: libc::mode_t,
    parent: libc::pid_t,
    stdio: [libc::c_int; 3],
    /// RLIMIT_NOFILE: how far the pre-5.11 close-on-exec loop goes.
    nofile: libc::c_int,
    sigrtmin: libc::c_int,
    failed: bool,
    step: u8,
    errno: libc::c_int,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn clone_job(job: &Job<'_>, stdio: [libc::c_int; 3]) -> Result<(i32, OwnedFd), Cloned> {
    let fail = |e: Failed| Cloned::Failed(e);
    let program = job.argv.first().copied().unwrap_or(OsStr::new(""));
    let argv: Vec<CString> =
        job.argv.iter().map(|a| cstring(a.as_bytes(), program)).collect::<Result<_, _>>().map_err(fail)?;
    let envp = env_strings(job.env, program).map_err(fail)?;
    let paths: Vec<CString> = candidates(program.as_bytes(), job.env)
        .iter()
        .map(|p| cstring(p, program))
        .collect::<Result<_, _>>()
        .map_err(fail)?;
    let workdir = cstring(job.workdir.as_bytes(), job.workdir).map_err(fail)?;
    let argv_p = pointers(&argv);
    let envp_p = pointers(&envp);
    let paths_p = pointers(&paths);
    let mut sh_argv: Vec<*const libc::c_char> = vec![c"/bin/sh".as_ptr(), std::ptr::null()];
    sh_argv.extend(argv_p.iter().skip(1));
    let groups: &[u32] = job.ids.map_or(&[], |(g, _, _)| g);
    let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft.min(i32::MAX as u64) as libc::c_int);
    let mut args = ChildArgs {
        candidates: paths_p.as_ptr(),
        argv: argv_p.as_ptr(),
        sh_argv: sh_argv.as_mut_ptr(),
        envp: envp_p.as_ptr(),
        workdir: workdir.as_ptr(),
        groups: groups.as_ptr(),
        n_groups: groups.len(),
        gid: job.ids.map_or(0, |(_, g, _)| g),
        uid: job.ids.map_or(0, |(_, _, u)| u),
        change_ids: job.ids.is_some(),
        set_nice: job.nice.is_some(),
        root_fallback: job.root_fallback,
        nice: job.nice.map_or(0, libc::c_int::from),
        umask: job.umask as libc::mode_t,
        parent: crate::host::pid() as libc::pid_t,
        stdio,
        nofile,
        sigrtmin: libc::SIGRTMIN(),
        failed: false,
        step: 0,
        errno: 0,
    };
    let cgroup_fd = match job.cgroup {
        Some(cg) => Some(
            nix::fcntl::open(
                cg.dir(),
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| fail(Failed::Other(format!("cannot open the run's cgroup: {}", e.desc()))))?,
        ),
        None => None,
    };

    const STACK: usize = 64 * 1024;
    // SAFETY: a fresh private mapping, unmapped below once the child no longer uses it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        let e = io::Error::last_os_error();
        return Err(fail(Failed::Other(format!("cannot map a stack for the job's start: {}", errno_desc(&e)))));
    }
    let mut pidfd: libc::c_int = -1;
    let mut cl = CloneArgs {
        flags: CLONE_VM | CLONE_VFORK | CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack as u64,
        stack_size: STACK as u64,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = &cgroup_fd {
        cl.flags |= CLONE_INTO_CGROUP;
        cl.cgroup = fd.as_raw_fd() as u64;
    }
    let ret = {
        // Listed before anything can see it as our child, so no scan for adopted processes
        // reaps it.
        let mut listed = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
        let all: u64 = !0;
        let mut old: u64 = 0;
        // SAFETY: the raw call (glibc's pthread_sigmask keeps its own signals unblocked),
        // on this thread only, restored below.
        unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &all, &mut old, 8) };
        // SAFETY: `cl` and `args` and everything they point to live until clone3 returns, and
        // with CLONE_VFORK it returns only when the child has exec'd or exited.
        let ret = unsafe { clone3(&cl, &mut args) };
        // SAFETY: as above.
        unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &old, std::ptr::null_mut::<u64>(), 8) };
        if ret > 0 {
            listed.get_or_insert_with(Default::default).insert(ret as u32);
        }
        ret
    };
    // SAFETY: our mapping; the child has left it (it exec'd or exited).
    unsafe { libc::munmap(stack, STACK) };
    drop(cgroup_fd);
    if ret < 0 {
        let errno = -ret as i32;
        return Err(match errno {
            libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::E2BIG => Cloned::Refused(errno),
            _ => Cloned::Failed(Failed::Other(format!(
                "cannot start the job's process: {}",
                nix::errno::Errno::from_raw(errno).desc()
            ))),
        });
    }
    let pid = ret as i32;
    // SAFETY: CLONE_PIDFD stored the new descriptor (close-on-exec) here.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // SAFETY: the child is gone from our memory; volatile since it wrote behind the compiler.
    let failed = unsafe { std::ptr::read_volatile(&args.failed) };
    if failed {
        let (step, errno) = unsafe { (std::ptr::read_volatile(&args.step), std::ptr::read_volatile(&args.errno)) };
        // It exits right after the report.
        let _ = reap(pid, 0);
        unlist(pid);
        drop(pidfd);
        return Err(Cloned::Failed(Failed::Step(Step::from_u8(step), errno)));
    }
    drop((argv, envp, paths, workdir));
    Ok((pid, pidfd))
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn clone_job(_: &Job<'_>, _: [libc::c_int; 3]) -> Result<(i32, OwnedFd), Cloned> {
    Err(Cloned::Refused(libc::ENOSYS))
}

const CLONE_VM: u64 = 0x100;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7).
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// clone3; returns the child's pid or -errno. The child starts on `cl.stack` and calls
/// [`child_main`] with `args`, never returning here.
#[cfg(target_arch = "x86_64")]
unsafe fn clone3(cl: &CloneArgs, args: &mut ChildArgs) -> i64 {
    let ret: i64;
    // SAFETY: the caller's contract. In the child every register but rax, rcx and r11 still
    // holds what it held at the syscall, and rsp is the top of the new stack (16-aligned, so
    // the call leaves it as a function entry expects).
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, rdx",
            "call r8",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") cl as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("rdx") args as *mut ChildArgs,
            in("r8") child_main as unsafe extern "C" fn(*mut ChildArgs) -> !,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn clone3(cl: &CloneArgs, args: &mut ChildArgs) -> i64 {
    let ret: i64;
    // SAFETY: as on x86_64: x0 is 0 in the child, which runs on the new stack with every
    // other register as it was.
    unsafe {
        std::arch::asm!(
            "svc #0",
            "cbnz x0, 2f",
            "mov x29, xzr",
            "mov x30, xzr",
            "mov x0, x2",
            "blr x3",
            "brk #1",
            "2:",
            inlateout("x0") cl as *const CloneArgs => ret,
            in("x1") std::mem::size_of::<CloneArgs>(),
            in("x2") args as *mut ChildArgs,
            in("x3") child_main as unsafe extern "C" fn(*mut ChildArgs) -> !,
            in("x8") libc::SYS_clone3,
        );
    }
    ret
}

/// A raw system call: the result, or the errno.
///
/// # Safety
/// As for the call made.
unsafe fn sys(n: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> Result<libc::c_long, libc::c_int> {
    // SAFETY: the caller's. errno is the spawning thread's, which is suspended and does not
    // look at it after clone3.
    unsafe {
        let r = libc::syscall(n, a, b, c, d);
        if r < 0 { Err(*libc::__errno_location()) } else { Ok(r) }
    }
}

/// The child, on its own stack and the daemon's memory: set up, then exec the job.
///
/// # Safety
/// Only from [`clone3`]'s child, with `a` valid.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe extern "C" fn child_main(a: *mut ChildArgs) -> ! {
    // SAFETY: the parent keeps `*a` alive until we exec or exit.
    let a = unsafe { &mut *a };
    // SAFETY: raw system calls on values the parent prepared.
    let (step, errno) = match unsafe { child_setup(a) } {
        Err(e) => e,
        Ok(()) => (0, unsafe { child_exec(a) }),
    };
    a.step = step;
    a.errno = errno;
    a.failed = true;
    loop {
        // SAFETY: ends this process (the child) only.
        unsafe { libc::syscall(libc::SYS_exit_group, 127) };
    }
}

/// The same steps, in the same order, as `super::ChildSetup::apply`, then stdio, descriptors
/// and signals. Err: the step and its errno.
unsafe fn child_setup(a: &ChildArgs) -> Result<(), (u8, libc::c_int)> {
    let step = |s: Step| move |e| (s as u8, e);
    // SAFETY (every call below): raw system calls on our own values; see the module comment.
    unsafe {
        // Handlers of the daemon must not run in the child, and a job starts with every signal at
        // its default: SIGPIPE (Rust's runtime ignores it) and glibc's own 32..SIGRTMIN too.
        let dfl = [0usize; 8];
        for sig in 1..65 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old = [0usize; 8];
            if sys(libc::SYS_rt_sigaction, sig as usize, 0, old.as_mut_ptr() as usize, 8).is_err() {
                continue;
            }
            let reset = (old[0] != libc::SIG_IGN || sig == libc::SIGPIPE || (32..a.sigrtmin).contains(&sig))
                && old[0] != libc::SIG_DFL;
            if reset {
                let _ = sys(libc::SYS_rt_sigaction, sig as usize, dfl.as_ptr() as usize, 0, 8);
            }
        }
        sys(libc::SYS_setsid, 0, 0, 0, 0).map_err(step(Step::Setsid))?;
        let _ = sys(libc::SYS_umask, a.umask as usize, 0, 0, 0);
        if a.set_nice {
            sys(libc::SYS_setpriority, libc::PRIO_PROCESS as usize, 0, a.nice as usize, 0).map_err(step(Step::Nice))?;
        }
        if a.change_ids {
            sys(libc::SYS_setgroups, a.n_groups, a.groups as usize, 0, 0).map_err(step(Step::Groups))?;
            let (g, u) = (a.gid as usize, a.uid as usize);
            sys(libc::SYS_setresgid, g, g, g, 0).map_err(step(Step::Gid))?;
            sys(libc::SYS_setresuid, u, u, u, 0).map_err(step(Step::Uid))?;
        }
        // After the change of ids: the kernel clears the death signal when they change.
        sys(libc::SYS_prctl, libc::PR_SET_PDEATHSIG as usize, libc::SIGKILL as usize, 0, 0)
            .map_err(step(Step::DeathSignal))?;
        // A parent gone before prctl never sends the death signal: we were re-parented.
        if sys(libc::SYS_getppid, 0, 0, 0, 0) != Ok(a.parent as libc::c_long) {
            return Err((Step::ParentGone as u8, libc::ESRCH));
        }
        if let Err(e) = sys(libc::SYS_chdir, a.workdir as usize, 0, 0, 0)
            && !(a.root_fallback && sys(libc::SYS_chdir, c"/".as_ptr() as usize, 0, 0, 0).is_ok())
        {
            return Err((Step::Chdir as u8, e));
        }
        for (to, from) in a.stdio.iter().enumerate() {
            // dup3 clears close-on-exec on the copy; the sources are all above 2.
            sys(libc::SYS_dup3, *from as usize, to, 0, 0).map_err(step(Step::Stdio))?;
        }
        if sys(libc::SYS_close_range, 3, u32::MAX as usize, libc::CLOSE_RANGE_CLOEXEC as usize, 0).is_err() {
            // Before Linux 5.11: every number up to the limit (no /proc read: no allocation).
            for fd in 3..a.nofile {
                let _ = sys(libc::SYS_fcntl, fd as usize, libc::F_SETFD as usize, libc::FD_CLOEXEC as usize, 0);
            }
        }
        let none: u64 = 0;
        let _ = sys(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK as usize, &none as *const u64 as usize, 0, 8);
    }
    Ok(())
}

/// execvp's search, as glibc does it: each candidate in turn, a file without `#!` that the
/// kernel refuses (ENOEXEC) through /bin/sh, and past "not here" errors to the next one.
/// Returns only on failure, with the errno execvp would leave.
unsafe fn child_exec(a: &ChildArgs) -> libc::c_int {
    let mut got_eacces = false;
    let mut errno = libc::ENOENT;
    let mut i = 0;
    // SAFETY: null-terminated arrays of NUL-terminated strings the parent keeps alive; the
    // one write goes to sh_argv's slot 1, which exists (argv has at least the program).
    unsafe {
        loop {
            let path = *a.candidates.add(i);
            if path.is_null() {
                break;
            }
            i += 1;
            let exec = |file: *const libc::c_char, argv| {
                sys(libc::SYS_execve, file as usize, argv as usize, a.envp as usize, 0)
            };
            let Err(mut e) = exec(path, a.argv) else { continue };
            if e == libc::ENOEXEC {
                *a.sh_argv.add(1) = path;
                if let Err(sh) = exec(*a.sh_argv, a.sh_argv as *const _) {
                    e = sh;
                }
            }
            errno = e;
            match e {
                libc::EACCES => got_eacces = true,
                libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return e,
            }
        }
    }
    if got_eacces { libc::EACCES } else { errno }
}

/// The fallback: the runner binary's exec helper, by glibc's posix_spawn (CLONE_VM|CLONE_VFORK
/// too), which joins the run's cgroup, sets up and execs the job. Returns its pid and the
/// read end of its report pipe.
fn helper_job(job: &Job<'_>, stdio: [libc::c_int; 3]) -> Result<(i32, OwnedFd), Failed> {
    let other = |what: &str, e: nix::errno::Errno| Failed::Other(format!("cannot {what}: {}", e.desc()));
    let program = job.argv.first().copied().unwrap_or(OsStr::new(""));
    // The read end is the daemon's (close-on-exec); the write end is the helper's only extra
    // descriptor, inheritable just for this spawn.
    let (report_rx, report_tx) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| other("create a pipe", e))?;
    let report_tx = above_stdio(report_tx).map_err(|e| Failed::Other(format!("cannot create a pipe: {e}")))?;
    nix::fcntl::fcntl(&report_tx, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()))
        .map_err(|e| other("set up the report pipe", e))?;
    let ids = match job.ids {
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
        format!("{:o}", job.umask).into(),
        job.nice.map_or("-".to_string(), |n| n.to_string()).into(),
        ids.into(),
        if job.root_fallback { "1" } else { "0" }.into(),
        job.workdir.into(),
        job.cgroup.map_or_else(|| OsString::from("-"), |c| c.procs_file().into_os_string()),
        "--".into(),
    ];
    args.extend(job.argv.iter().map(|a| a.to_os_string()));
    let argv: Vec<CString> = args.iter().map(|a| cstring(a.as_bytes(), program)).collect::<Result<_, _>>()?;
    let envp = env_strings(job.env, program)?;
    let (argv_p, envp_p) = (pointers(&argv), pointers(&envp));

    let mut pid: libc::pid_t = 0;
    // SAFETY: posix_spawn's attribute and file-action objects, initialised, used and
    // destroyed here; the strings outlive the call.
    let r = unsafe {
        let mut attr: libc::posix_spawnattr_t = std::mem::zeroed();
        let mut acts: libc::posix_spawn_file_actions_t = std::mem::zeroed();
        libc::posix_spawnattr_init(&mut attr);
        libc::posix_spawn_file_actions_init(&mut acts);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        let mut dfl: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut dfl);
        libc::sigaddset(&mut dfl, libc::SIGPIPE);
        libc::posix_spawnattr_setsigmask(&mut attr, &empty);
        libc::posix_spawnattr_setsigdefault(&mut attr, &dfl);
        libc::posix_spawnattr_setflags(&mut attr, (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as _);
        for (to, from) in stdio.iter().enumerate() {
            libc::posix_spawn_file_actions_adddup2(&mut acts, *from, to as libc::c_int);
        }
        let r = {
            let mut listed = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
            let r =
                libc::posix_spawn(&mut pid, argv[0].as_ptr(), &acts, &attr, argv_p.as_ptr() as _, envp_p.as_ptr() as _);
            if r == 0 {
                listed.get_or_insert_with(Default::default).insert(pid as u32);
            }
            r
        };
        libc::posix_spawn_file_actions_destroy(&mut acts);
        libc::posix_spawnattr_destroy(&mut attr);
        r
    };
    drop(report_tx);
    if r != 0 {
        return Err(Failed::Other(format!(
            "cannot start the exec helper {}: {}",
            job.helper.display(),
            nix::errno::Errno::from_raw(r).desc()
        )));
    }
    Ok((pid, report_rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_execvp() {
        let env = |p: &str| vec![(OsString::from("PATH"), OsString::from(p))];
        let s = |v: Vec<Vec<u8>>| v.into_iter().map(|p| String::from_utf8(p).unwrap()).collect::<Vec<_>>();
        assert_eq!(s(candidates(b"./x", &env("/bin"))), ["./x"]);
        assert_eq!(s(candidates(b"ls", &env("/a:/b/"))), ["/a/ls", "/b//ls"]);
        assert_eq!(s(candidates(b"ls", &env(":/a:"))), ["ls", "/a/ls", "ls"]);
        assert_eq!(s(candidates(b"ls", &[])), ["/bin/ls", "/usr/bin/ls"]);
    }
}
