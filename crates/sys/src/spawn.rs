//! A job's process: everything it needs prepared by the daemon, then set up and exec'd by
//! the child itself, so nothing the job's start may wait on (a `chdir` into a hung NFS or
//! FUSE mount, a `PATH` entry on one) ever holds the daemon's thread.
//!
//! Two ways into the same child code ([`child`]):
//! - [`clone_into`]: `clone3(CLONE_PIDFD | CLONE_INTO_CGROUP)` without `CLONE_VM`, as fork:
//!   the child gets a copy of the daemon's memory, is created directly in the run's cgroup,
//!   and the daemon goes on at once. The child is then a copy of a multi-threaded process,
//!   so until it execs it may make only async-signal-safe calls: raw system calls on values
//!   [`Prepared`] built before the clone; no allocation, no lock, no glibc wrapper.
//! - [`exec`]: the same steps in the calling process, for the exec helper (a fresh,
//!   single-threaded runner process the daemon started with [`posix_spawn`] where clone3
//!   is refused).
//!
//! A failed step is written to the report descriptor as 5 bytes (the [`Step`], 0 for the
//! exec itself, then the errno, little-endian) and the child exits 127; a successful exec
//! closes the descriptor (close-on-exec) unwritten.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

/// Steps of the child's set-up, as the report names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Step {
    Setsid = 1,
    DeathSignal,
    ParentGone,
    Nice,
    Groups,
    Gid,
    Uid,
    Chdir,
    Cgroup,
    Stdio,
}

impl Step {
    /// The step a report's first byte names; None for 0 (the exec) or an unknown byte.
    pub fn from_u8(b: u8) -> Option<Step> {
        [
            Step::Setsid,
            Step::DeathSignal,
            Step::ParentGone,
            Step::Nice,
            Step::Groups,
            Step::Gid,
            Step::Uid,
            Step::Chdir,
            Step::Cgroup,
            Step::Stdio,
        ]
        .into_iter()
        .find(|s| *s as u8 == b)
    }
}

/// A report of a failed step (None: the exec) and its errno, as the child writes it.
pub fn encode_report(step: Option<Step>, errno: i32) -> [u8; 5] {
    let mut b = [0u8; 5];
    b[0] = step.map_or(0, |s| s as u8);
    b[1..].copy_from_slice(&errno.to_le_bytes());
    b
}

/// What the job's process becomes, resolved by the caller.
pub struct Job<'a> {
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
    /// The daemon's pid: the child checks it is still its parent after PR_SET_PDEATHSIG.
    pub parent: i32,
}

/// An argument, variable or directory holds a NUL byte.
#[derive(Debug)]
pub struct NulByte;

/// Everything the child reads, built before it exists: NUL-terminated strings and the
/// null-terminated pointer arrays execve takes, which point into them (so this type is
/// neither Send nor Clone, and its strings never move once built).
pub struct Prepared {
    _strings: Vec<CString>,
    candidates: Vec<*const libc::c_char>,
    argv: Vec<*const libc::c_char>,
    /// `/bin/sh`, a slot for the candidate, then argv[1..]: execvp's ENOEXEC fallback.
    sh_argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    workdir: CString,
    groups: Vec<libc::gid_t>,
    ids: Option<(libc::gid_t, libc::uid_t)>,
    nice: Option<libc::c_int>,
    root_fallback: bool,
    umask: libc::mode_t,
    parent: libc::pid_t,
    /// RLIMIT_NOFILE: how far the pre-5.11 close-on-exec loop goes.
    nofile: libc::c_int,
    sigrtmin: libc::c_int,
}

impl Prepared {
    pub fn new(job: &Job<'_>) -> Result<Prepared, NulByte> {
        let cstring = |b: &[u8]| CString::new(b).map_err(|_| NulByte);
        let program = job.argv.first().copied().unwrap_or(OsStr::new(""));
        let argv: Vec<CString> = job.argv.iter().map(|a| cstring(a.as_bytes())).collect::<Result<_, _>>()?;
        let envp: Vec<CString> = job
            .env
            .iter()
            .map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<Result<_, _>>()?;
        let paths: Vec<CString> =
            candidates(program.as_bytes(), job.env).iter().map(|p| cstring(p)).collect::<Result<_, _>>()?;
        let pointers =
            |s: &[CString]| s.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>();
        let (argv_p, envp_p, paths_p) = (pointers(&argv), pointers(&envp), pointers(&paths));
        let mut sh_argv: Vec<*const libc::c_char> = vec![c"/bin/sh".as_ptr(), std::ptr::null()];
        sh_argv.extend(argv_p.iter().skip(1));
        let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| libc::c_int::try_from(soft).unwrap_or(libc::c_int::MAX));
        let mut strings = argv;
        strings.extend(envp);
        strings.extend(paths);
        Ok(Prepared {
            _strings: strings,
            candidates: paths_p,
            argv: argv_p,
            sh_argv,
            envp: envp_p,
            workdir: cstring(job.workdir.as_bytes())?,
            groups: job.ids.map_or(Vec::new(), |(g, _, _)| g.to_vec()),
            ids: job.ids.map(|(_, g, u)| (g, u)),
            nice: job.nice.map(libc::c_int::from),
            root_fallback: job.root_fallback,
            umask: job.umask as libc::mode_t,
            parent: job.parent,
            nofile,
            sigrtmin: libc::SIGRTMIN(),
        })
    }
}

/// Where execvp would look for `program`, in order: itself if it names a path, else each
/// entry of the job's PATH (glibc's default when it has none; an empty entry is the working
/// directory).
pub fn candidates(program: &[u8], env: &[(OsString, OsString)]) -> Vec<Vec<u8>> {
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

// 32-bit Arm's setgroups/setresgid/setresuid take 16-bit ids; the 32 variants take 32-bit ones.
#[cfg(not(target_arch = "arm"))]
use libc::{SYS_setgroups as SYS_SETGROUPS, SYS_setresgid as SYS_SETRESGID, SYS_setresuid as SYS_SETRESUID};
#[cfg(target_arch = "arm")]
use libc::{SYS_setgroups32 as SYS_SETGROUPS, SYS_setresgid32 as SYS_SETRESGID, SYS_setresuid32 as SYS_SETRESUID};

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

/// Starts the job's process as a copy of this one (in `cgroup` when given) that sets itself
/// up, puts `stdio` on 0-2 and execs the job, reporting a failed step on `report`. Returns at
/// once with its pid and pidfd, or clone3's errno (ENOSYS, EPERM, EINVAL, E2BIG: refused
/// here; use the exec helper). The caller keeps the write end of `report` only until this
/// returns, and lists the pid as its child before anything could reap it (hold that lock
/// across the call).
pub fn clone_into(
    prepared: &mut Prepared,
    cgroup: Option<BorrowedFd<'_>>,
    stdio: [BorrowedFd<'_>; 3],
    report: BorrowedFd<'_>,
) -> Result<(i32, OwnedFd), Errno> {
    let mut pidfd: libc::c_int = -1;
    let mut cl = CloneArgs {
        flags: CLONE_PIDFD,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        // No stack: the child runs on its copy of this thread's stack, as after fork.
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: 0,
    };
    if let Some(fd) = cgroup {
        cl.flags |= CLONE_INTO_CGROUP;
        cl.cgroup = fd.as_raw_fd() as u64;
    }
    let stdio = stdio.map(|fd| fd.as_raw_fd());
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: the raw call (glibc's pthread_sigmask keeps its own signals unblocked), on this
    // thread only, restored below: no handler of the daemon runs in the child before it has
    // put every handled signal back to its default.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &all, &mut old, 8) };
    // SAFETY: clone3 without CLONE_VM or a stack is fork: the child has a copy of this
    // address space, so nothing it does touches the daemon's memory. `cl` and `pidfd` live
    // across the call. In the child (ret 0) only `child` runs, and it never returns: raw
    // system calls on the copy of `prepared` and `stdio`, which were built before the clone,
    // then execve or exit_group. No lock another thread may have held is taken, nothing is
    // allocated, no glibc state is used but errno, which is this thread's own.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, &mut cl as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if ret == 0 {
        child(prepared, Some(stdio), report.as_raw_fd());
    }
    let errno = Errno::last();
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &old, std::ptr::null_mut::<u64>(), 8) };
    if ret < 0 {
        return Err(errno);
    }
    // SAFETY: CLONE_PIDFD stored a new close-on-exec descriptor here, ours alone.
    Ok((ret as i32, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// Sets this process up and execs the job, as [`clone_into`]'s child does, with stdio
/// already in place: the exec helper, a single-threaded process of its own. A failed step
/// goes to `report` and the process exits 127.
pub fn exec(prepared: &mut Prepared, report: OwnedFd) -> ! {
    child(prepared, None, report.as_raw_fd())
}

/// Writes a report for a step the caller took before [`exec`] (joining the cgroup).
pub fn report(fd: BorrowedFd<'_>, step: Option<Step>, errno: i32) {
    let _ = nix::unistd::write(fd, &encode_report(step, errno));
}

/// A raw system call: the result, or the errno.
///
/// # Safety
/// As for the call made.
unsafe fn sys(n: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> Result<libc::c_long, libc::c_int> {
    // SAFETY: the caller's. errno is this thread's.
    unsafe {
        let r = libc::syscall(n, a, b, c, d);
        if r < 0 { Err(*errno_location()) } else { Ok(r) }
    }
}

use libc::__errno_location as errno_location;

/// The child: set up, then exec the job; on failure report and exit. Async-signal-safe
/// throughout (see the module comment).
fn child(a: &mut Prepared, stdio: Option<[RawFd; 3]>, report: RawFd) -> ! {
    let (step, errno) = match setup(a, stdio) {
        Err(e) => e,
        Ok(()) => (0, exec_job(a)),
    };
    let b = encode_report(Step::from_u8(step), errno);
    // SAFETY: writes a live stack buffer to the report descriptor, then ends this process
    // (the child) only.
    unsafe {
        let _ = sys(libc::SYS_write, report as usize, b.as_ptr() as usize, b.len(), 0);
        loop {
            libc::syscall(libc::SYS_exit_group, 127);
        }
    }
}

/// The set-up in order: signals, session, umask, nice, ids, death signal, working
/// directory, stdio, descriptors. Err: the step and its errno.
fn setup(a: &Prepared, stdio: Option<[RawFd; 3]>) -> Result<(), (u8, libc::c_int)> {
    let step = |s: Step| move |e| (s as u8, e);
    // SAFETY (every call below): raw system calls on this process's own values (pointers
    // into `a`, which lives across them, or stack buffers); see the module comment.
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
        if let Some(nice) = a.nice {
            sys(libc::SYS_setpriority, libc::PRIO_PROCESS as usize, 0, nice as usize, 0).map_err(step(Step::Nice))?;
        }
        if let Some((gid, uid)) = a.ids {
            sys(SYS_SETGROUPS, a.groups.len(), a.groups.as_ptr() as usize, 0, 0).map_err(step(Step::Groups))?;
            let (g, u) = (gid as usize, uid as usize);
            sys(SYS_SETRESGID, g, g, g, 0).map_err(step(Step::Gid))?;
            sys(SYS_SETRESUID, u, u, u, 0).map_err(step(Step::Uid))?;
        }
        // After the change of ids: the kernel clears the death signal when they change.
        sys(libc::SYS_prctl, libc::PR_SET_PDEATHSIG as usize, libc::SIGKILL as usize, 0, 0)
            .map_err(step(Step::DeathSignal))?;
        // A parent gone before prctl never sends the death signal: we were re-parented.
        if sys(libc::SYS_getppid, 0, 0, 0, 0) != Ok(a.parent as libc::c_long) {
            return Err((Step::ParentGone as u8, libc::ESRCH));
        }
        if let Err(e) = sys(libc::SYS_chdir, a.workdir.as_ptr() as usize, 0, 0, 0)
            && !(a.root_fallback && sys(libc::SYS_chdir, c"/".as_ptr() as usize, 0, 0, 0).is_ok())
        {
            return Err((Step::Chdir as u8, e));
        }
        for (to, from) in stdio.iter().flatten().enumerate() {
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
fn exec_job(a: &mut Prepared) -> libc::c_int {
    let mut got_eacces = false;
    let mut errno = libc::ENOENT;
    for i in 0..a.candidates.len() - 1 {
        let path = a.candidates[i];
        let exec = |file: *const libc::c_char, argv: *const *const libc::c_char, envp: *const *const libc::c_char| {
            // SAFETY: null-terminated arrays of NUL-terminated strings `a` owns, alive across
            // the call; execve returns only on failure.
            unsafe { sys(libc::SYS_execve, file as usize, argv as usize, envp as usize, 0) }
        };
        let Err(mut e) = exec(path, a.argv.as_ptr(), a.envp.as_ptr()) else { continue };
        if e == libc::ENOEXEC {
            // Slot 1 exists: sh_argv is /bin/sh, the slot, argv[1..] and the null.
            a.sh_argv[1] = path;
            if let Err(sh) = exec(a.sh_argv[0], a.sh_argv.as_ptr(), a.envp.as_ptr()) {
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
    if got_eacces { libc::EACCES } else { errno }
}

/// posix_spawn(3) of `path` with `argv` and `envp`, `stdio` on 0-2, every signal unblocked
/// and SIGPIPE at its default: the pid. Descriptors without close-on-exec are inherited
/// (the exec helper's report pipe). The caller lists the pid as its child before anything
/// could reap it (hold that lock across the call).
pub fn posix_spawn(path: &CStr, argv: &[CString], envp: &[CString], stdio: [BorrowedFd<'_>; 3]) -> Result<i32, Errno> {
    let pointers =
        |s: &[CString]| s.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect::<Vec<_>>();
    let (argv_p, envp_p) = (pointers(argv), pointers(envp));
    let mut pid: libc::pid_t = 0;
    // SAFETY: posix_spawn's attribute and file-action objects, initialised, used and
    // destroyed here; the strings and pointer arrays outlive the call; the descriptors are
    // borrowed across it.
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
            libc::posix_spawn_file_actions_adddup2(&mut acts, from.as_raw_fd(), to as libc::c_int);
        }
        let r = libc::posix_spawn(&mut pid, path.as_ptr(), &acts, &attr, argv_p.as_ptr() as _, envp_p.as_ptr() as _);
        libc::posix_spawn_file_actions_destroy(&mut acts);
        libc::posix_spawnattr_destroy(&mut attr);
        r
    };
    if r != 0 { Err(Errno::from_raw(r)) } else { Ok(pid) }
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
        assert_eq!(s(candidates(b"ls", &[])), ["/bin/ls", "/usr/bin/ls"]);
        assert_eq!(s(candidates(b"ls", &env(":/a:"))), ["ls", "/a/ls", "ls"]);
    }

    #[test]
    fn reports_round_trip() {
        let b = encode_report(Some(Step::Chdir), libc::ENOENT);
        assert_eq!(Step::from_u8(b[0]), Some(Step::Chdir));
        assert_eq!(i32::from_le_bytes([b[1], b[2], b[3], b[4]]), libc::ENOENT);
        assert_eq!(Step::from_u8(encode_report(None, 1)[0]), None);
    }
}
