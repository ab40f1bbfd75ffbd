//! Spawning and supervising one run of a job: the process, its process group, its output and
//! its end. `runner once` and the daemon both come through [`run`].
//!
//! What a run owns, and how it ends:
//! - The child calls setsid, so its pid is also its process group and session id. Every signal
//!   this module sends goes to that group, so grandchildren are ended with the job.
//! - stdin is /dev/null; stdout and stderr are pipes of which only the last `capture_limit`
//!   bytes are kept (plus byte counts). Memory per run is two read buffers and two tails,
//!   however much the job writes.
//! - At the timeout, or when `stop` turns true, the group gets SIGTERM, and SIGKILL once
//!   `kill_grace` has passed.
//! - After the main process exits, whatever is left in its group (a background `cmd &`, a helper
//!   that forked) gets SIGTERM at once and SIGKILL after `kill_grace`, as systemd does for a
//!   finished oneshot service. That is what lets the pipes reach EOF, and nothing outlives the
//!   run. A process that left the group with its own setsid escapes this; its output is read
//!   for at most [`DRAIN_LIMIT`] after the group is gone, then the pipes are closed.
//! - The child sets PR_SET_PDEATHSIG (SIGKILL) so that a job never outlives a daemon that died
//!   without ending it (graceful shutdown goes through `stop` instead). Linux sends that signal
//!   when the *thread* that forked exits, so `run` must be polled on a thread that lives as long
//!   as the daemon: the current-thread runtime's own thread, never a `spawn_blocking` one.
//! - Dropping the `run` future before it completes sends SIGKILL to the group; the run's
//!   [`spawn::RunChild`] then reaps the main process, so no zombie is left either way.
//! - A job starts by a vfork-style `clone3` created straight in the run's cgroup, which sets
//!   the process up with raw system calls and execs the job's program (see `spawn.rs`): no
//!   copy of the daemon's page tables (a start costs the same with 20 jobs or 10,000), no
//!   migration into the cgroup (a `cgroup.procs` write waits an RCU grace period under the
//!   kernel's global cgroup mutex: milliseconds a start, see the README's fire delay) and no
//!   second exec. Where clone3 is refused, or with `RUNNER_SPAWN=helper`, it starts as the
//!   runner binary's exec helper ([`exec_helper`]) by `posix_spawn`, which joins the cgroup,
//!   sets up and execs the job in place.
//! - Privileges are dropped as cron does: nice (while still root, since lowering it needs
//!   root), then setgroups with the groups `config::plan` resolved, setgid, setuid, then
//!   PR_SET_PDEATHSIG (the kernel clears it when the ids change), then chdir as the target
//!   user, so a directory that user cannot enter is an error, not a leak. Every descriptor but
//!   stdin, stdout and stderr is closed at the exec, and the job starts with no signal blocked
//!   and SIGPIPE and glibc's internal signals at their default.
//!
//! What it must not do: reap processes it did not spawn (a `waitpid(-1)` would steal the exit
//! status of the runs' own main processes), signal anything but the group it created (or the one
//! [`end_group`] is handed), resolve users through NSS (the groups come resolved from
//! /etc/group), or decide what a status means for retries, alerts and records.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::libc;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::users;

mod spawn;

use spawn::RunChild;
pub use spawn::SPAWN_ENV;

/// Who a job runs as, resolved from the user database at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups as initgroups(3) would set them.
    pub groups: Vec<u32>,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// A non-empty argv.
#[derive(Debug, Clone, PartialEq)]
pub struct Argv(pub Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Argv;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of program and arguments, like [\"/usr/bin/backup\", \"--all\"]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Argv, E> {
                Err(E::custom(format!(
                    "`command` takes a list, not a string: write command: [\"{}\"] or use `run: \"{}\"` for a shell line",
                    v.split_whitespace().next().unwrap_or(""),
                    v
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Argv, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                if v.is_empty() || v[0].is_empty() {
                    return Err(de::Error::custom("empty command: name the program to run, like [\"/bin/true\"]"));
                }
                Ok(Argv(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A command given either as argv (a list) or as a shell line (a string).
#[derive(Debug, Clone, PartialEq)]
pub enum CommandLine {
    Argv(Vec<String>),
    Shell(String),
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a shell line (a string) or a list of program and arguments")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandLine, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("empty command: write a shell line or a list like [\"/bin/true\"]"));
                }
                Ok(CommandLine::Shell(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<CommandLine, A::Error> {
                Argv::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(|a| CommandLine::Argv(a.0))
            }
        }
        d.deserialize_any(V)
    }
}

/// An environment value; YAML numbers and booleans are taken as their text.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvValue(pub String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Bytes of each stream's tail kept per run unless a job asks for another bound.
pub const CAPTURE_LIMIT: usize = 8192;
/// The PATH every job starts with, as cron gives it: no current directory, no user entries.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long output is still read once the group is gone: only a process that escaped the group
/// can hold the pipes then, and it must not keep a finished run open.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// How long SIGKILLed processes get to die before the run gives up on them (one stuck in an
/// uninterruptible sleep, on a dead NFS server say) and reports anyway.
const KILL_SETTLE: Duration = Duration::from_secs(5);

const READ_CHUNK: usize = 16 * 1024;
/// Ceiling of the back-off while waiting for a signalled group to empty. Nothing tells us when
/// processes that are not our children die, so this is the one place that polls.
const POLL_MAX: Duration = Duration::from_millis(200);

/// Everything one run needs; borrowed from the job so a run allocates only what the child needs.
#[derive(Clone, Copy, Debug)]
pub struct Spec<'a> {
    /// `Shell(line)` runs as `["/bin/sh", "-c", line]`; a bare `Argv` program name is looked up
    /// in the job's PATH (after `env`), as execvp does.
    pub command: &'a CommandLine,
    /// None: the daemon's own user, without any change of ids or groups.
    pub run_as: Option<&'a RunAs>,
    /// Without `run_as`: the daemon's own user entry (resolved at config load), for the HOME,
    /// USER and SHELL the daemon's environment lacks. A run never reads the user database.
    pub own_user: Option<&'a users::User>,
    /// None: the user's home (as cron does), or "/" if that cannot be entered.
    pub workdir: Option<&'a Path>,
    /// Added last, over the base environment (see [`base_env`]).
    pub env: &'a [(String, String)],
    pub umask: u32,
    /// An absolute nice value (-20..=19), as systemd's `Nice=`, not an increment.
    pub nice: Option<i8>,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    /// Bytes of tail kept per stream.
    pub capture_limit: usize,
    /// Also copy the output to our own stdout/stderr as it arrives (for `runner once`). The copy
    /// is a blocking write: fine for a terminal, not for the daemon.
    pub echo: bool,
}

impl<'a> Spec<'a> {
    /// The defaults `config::plan` uses: umask 022, a 10 s kill grace, 8 KiB tails, no timeout.
    pub fn new(command: &'a CommandLine) -> Spec<'a> {
        Spec {
            command,
            run_as: None,
            own_user: None,
            workdir: None,
            env: &[],
            umask: 0o022,
            nice: None,
            timeout: None,
            kill_grace: Duration::from_secs(10),
            capture_limit: CAPTURE_LIMIT,
            echo: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpawnErrorKind {
    /// The program (or its `#!` interpreter) does not exist.
    NotFound,
    /// It exists but cannot be executed: no x bit, a directory, an unknown format.
    NotExecutable,
    /// Anything else, including a failure to drop privileges or enter the working directory.
    Other,
}

impl SpawnErrorKind {
    /// The exit status a shell reports for the same failure.
    pub fn exit_code(self) -> i32 {
        match self {
            SpawnErrorKind::NotFound => 127,
            SpawnErrorKind::NotExecutable | SpawnErrorKind::Other => 126,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The main process exited with this code. -1 if its status was lost (something else reaped
    /// it, which is a bug in the daemon; logged).
    Exited(i32),
    /// The main process was killed by a signal we did not send.
    Signaled(i32),
    /// We ended it after `timeout`: SIGTERM (15), or SIGKILL (9) if the grace ran out for any
    /// process of the group.
    TimedOut {
        signal: i32,
    },
    /// Ended because `stop` turned true; `signal` as for `TimedOut`.
    Stopped {
        signal: i32,
    },
    SpawnFailed {
        kind: SpawnErrorKind,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub status: Status,
    pub started_at: SystemTime,
    /// Until the run was over, ending leftover processes included.
    pub duration: Duration,
    /// Also the process group and session id. None if the spawn failed.
    pub pid: Option<u32>,
    /// At most `capture_limit` bytes each: the last ones written.
    pub stdout_tail: Vec<u8>,
    pub stderr_tail: Vec<u8>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// Processes were left in the group after the main process exited on its own, and were
    /// ended with this signal: 15, or 9 if the grace ran out. None if nothing was left (and
    /// always None for `TimedOut`/`Stopped`, whose `signal` covers the whole group).
    pub leftover_signal: Option<i32>,
    /// CPU time of the run's processes: its cgroup's `cpu.stat`, or the rusage of the adopted
    /// processes runner reaped (the main process's own is the runtime's). None without
    /// containment.
    pub cpu_usec: Option<u64>,
    /// The largest `ru_maxrss` of the processes runner reaped (or the cgroup's `memory.peak`).
    pub memory_peak_bytes: Option<u64>,
}

/// Spawns the job and supervises it to the end; never fails, a spawn failure is a [`Status`].
///
/// `started` is called with the pid (= pgid) and the run id its processes carry in
/// `RUNNER_RUN_ID` (contained runs only) as soon as the child exists, so the caller can
/// record them before anything else happens. When `stop` changes to true (or already is), the run
/// is ended like a timeout and reported as [`Status::Stopped`]; a dropped sender means "never".
pub async fn run(spec: &Spec<'_>, started: impl FnOnce(u32, &str), mut stop: watch::Receiver<bool>) -> Finished {
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let failed = |status| Finished {
        status,
        started_at,
        duration: t0.elapsed(),
        pid: None,
        stdout_tail: Vec::new(),
        stderr_tail: Vec::new(),
        stdout_bytes: 0,
        stderr_bytes: 0,
        leftover_signal: None,
        cpu_usec: None,
        memory_peak_bytes: None,
    };
    let run_no = RUN_NO.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let cgroup = match crate::contain::RunCgroup::create(run_no) {
        Ok(c) => c,
        Err(e) => {
            let message = format!("cannot create the run's cgroup: {e}");
            return failed(Status::SpawnFailed { kind: SpawnErrorKind::Other, message });
        }
    };
    let run_id = format!("{}.{run_no}", crate::host::pid());
    let contained = crate::contain::mode().is_some();
    if contained && !REAPER.swap(true, std::sync::atomic::Ordering::Relaxed) {
        // Whatever runner adopted and no run claims is reaped on SIGCHLD, by pid.
        if let Ok(mut sigchld) = crate::signals::listen(crate::signals::Sig::Chld) {
            tokio::spawn(async move {
                loop {
                    sigchld.recv().await;
                    crate::contain::reap_strays();
                }
            });
        }
    }
    let mut main_usage = crate::contain::Usage::default();
    let timeout_at = spec.timeout.map(|t| t0 + t);
    let mut child = match spawn(spec, cgroup.as_ref(), contained.then_some(run_id.as_str())) {
        Ok(pending) => match pending.report(&mut stop, timeout_at, &mut main_usage).await {
            Ok(child) => child,
            Err(status) => return failed(status),
        },
        Err((kind, message)) => return failed(Status::SpawnFailed { kind, message }),
    };
    let pid = child.id();
    let mut guard = GroupGuard { pgid: Pid::from_raw(pid as i32), armed: true };
    started(pid, if contained { run_id.as_str() } else { "" });

    let out = Capture::new(child.stdout.take(), spec.capture_limit, spec.echo.then_some(Echo::Stdout));
    let err = Capture::new(child.stderr.take(), spec.capture_limit, spec.echo.then_some(Echo::Stderr));
    let mut run = Supervised {
        kill_grace: spec.kill_grace,
        child,
        pgid: guard.pgid,
        cgroup,
        run_id: contained.then_some(run_id),
        out,
        err,
        timeout_at,
        ending: None,
        leftover_signal: None,
        exit: None,
        kill_at: None,
        settle_until: None,
        group_done: false,
        drain_until: None,
        poll_every: Duration::from_millis(5),
        stop_open: true,
        usage: crate::contain::Usage::default(),
        main_usage,
    };
    if *stop.borrow_and_update() {
        run.begin_ending(Ending::Stop);
    }
    while !run.over() {
        let event = run.next_event(&mut stop).await;
        run.handle(event, &mut stop);
    }
    guard.armed = false;
    run.finish(started_at, t0, pid)
}

/// A run from its process's start to its end: the one state [`run`]'s loop changes, event by
/// event. Its phases: the main process runs (`exit` None, `ending` None); it is being ended
/// (`ending`: why, and the last signal sent to the whole group; `kill_at` the SIGKILL due);
/// it exited and what it left is ended (`leftover_signal`) or polled until gone
/// (`group_done`); then the pipes drain, at most until `drain_until`.
struct Supervised {
    kill_grace: Duration,
    child: RunChild,
    pgid: Pid,
    cgroup: Option<crate::contain::RunCgroup>,
    /// The run's `RUNNER_RUN_ID` when contained without a cgroup (adopted processes carry it).
    run_id: Option<String>,
    out: Capture<tokio::net::unix::pipe::Receiver>,
    err: Capture<tokio::net::unix::pipe::Receiver>,
    timeout_at: Option<Instant>,
    /// Why we signalled the whole group, and the last signal sent to it.
    ending: Option<(Ending, i32)>,
    leftover_signal: Option<i32>,
    exit: Option<io::Result<ExitStatus>>,
    kill_at: Option<Instant>,
    settle_until: Option<Instant>,
    /// Nothing of the group is alive any more, or it outlived SIGKILL by KILL_SETTLE.
    group_done: bool,
    drain_until: Option<Instant>,
    poll_every: Duration,
    stop_open: bool,
    /// Of the adopted processes reaped on the way.
    usage: crate::contain::Usage,
    /// Of the main process.
    main_usage: crate::contain::Usage,
}

impl Supervised {
    /// Everything of the run outside its group: the rest of its cgroup, or what runner
    /// adopted from it. Zombies among the adopted are reaped on the way.
    fn others(&mut self) -> Vec<i32> {
        match (&self.cgroup, &self.run_id) {
            (Some(cg), _) => cg.pids(),
            (None, Some(id)) => crate::contain::adopted(id, self.pgid.as_raw(), &mut self.usage),
            (None, None) => Vec::new(),
        }
    }

    fn signal_all(&mut self, sig: Signal) {
        let _ = killpg(self.pgid, sig);
        match (&self.cgroup, sig) {
            (Some(cg), Signal::SIGKILL) => cg.kill(),
            _ => crate::contain::signal_each(&self.others(), sig),
        }
    }

    /// Polled on the event loop while the run's processes end, so no scan of every process:
    /// a cgroup's `populated` covers its group too (a zombie has left its cgroup), and a
    /// contained run's zombies are runner's own children, reaped at once (the main process
    /// here, the rest by the stray reaper), so a group that exists is alive. Only an
    /// uncontained run (library use) scans `/proc` for zombies init has not reaped yet.
    fn alive_all(&mut self) -> bool {
        match (&self.cgroup, &self.run_id) {
            (Some(cg), _) => cg.populated(),
            (None, Some(_)) => killpg(self.pgid, None) != Err(Errno::ESRCH) || !self.others().is_empty(),
            (None, None) => group_alive(self.pgid),
        }
    }

    fn begin_ending(&mut self, why: Ending) {
        self.signal_all(Signal::SIGTERM);
        self.ending = Some((why, libc::SIGTERM));
        self.kill_at = Some(Instant::now() + self.kill_grace);
    }

    /// The main process is reaped, its group empty (or given up on) and both pipes at their
    /// end; past the group's end, the drain limit starts.
    fn over(&mut self) -> bool {
        if self.exit.is_some() && self.group_done {
            if self.out.eof && self.err.eof {
                return true;
            }
            self.drain_until.get_or_insert_with(|| Instant::now() + DRAIN_LIMIT);
        }
        false
    }

    async fn next_event(&mut self, stop: &mut watch::Receiver<bool>) -> Event {
        let running = self.exit.is_none() && self.ending.is_none();
        let Supervised { child, out, err, main_usage, exit, group_done, stop_open, .. } = self;
        let (exit, group_done, stop_open) = (exit.is_some(), *group_done, *stop_open);
        tokio::select! {
            status = child.wait(main_usage), if !exit => Event::Exited(status),
            n = out.read(), if !out.eof => Event::Out(n),
            n = err.read(), if !err.eof => Event::Err(n),
            _ = sleep_until(self.timeout_at), if running && self.timeout_at.is_some() => Event::Timeout,
            changed = stop.changed(), if running && stop_open => Event::Stop(changed.is_ok()),
            _ = sleep_until(self.kill_at), if self.kill_at.is_some() && !group_done => Event::Kill,
            _ = tokio::time::sleep(self.poll_every), if exit && !group_done => Event::Poll,
            _ = sleep_until(self.settle_until), if self.settle_until.is_some() && !group_done => Event::GiveUp,
            _ = sleep_until(self.drain_until), if self.drain_until.is_some() => Event::DrainOver,
        }
    }

    fn handle(&mut self, event: Event, stop: &mut watch::Receiver<bool>) {
        match event {
            Event::Exited(status) => self.exited(status),
            Event::Out(n) => self.out.take(n),
            Event::Err(n) => self.err.take(n),
            Event::Timeout => self.begin_ending(Ending::Timeout),
            Event::Stop(true) => {
                if *stop.borrow_and_update() {
                    self.begin_ending(Ending::Stop);
                }
            }
            Event::Stop(false) => self.stop_open = false,
            Event::Kill => {
                self.signal_all(Signal::SIGKILL);
                self.kill_at = None;
                match &mut self.ending {
                    Some((_, signal)) => *signal = libc::SIGKILL,
                    None => self.leftover_signal = Some(libc::SIGKILL),
                }
                self.settle_until = Some(Instant::now() + KILL_SETTLE);
                self.poll_every = Duration::from_millis(5);
            }
            Event::Poll => {
                // What ended after the TERM may have left children of its own to us: they
                // get the signal the rest got.
                if !matches!(self.leftover_signal.or(self.ending.map(|e| e.1)), Some(libc::SIGKILL)) {
                    crate::contain::signal_each(&self.others(), Signal::SIGTERM);
                } else if self.cgroup.is_none() {
                    crate::contain::signal_each(&self.others(), Signal::SIGKILL);
                }
                self.group_done = !self.alive_all();
                self.poll_every = (self.poll_every * 2).min(POLL_MAX);
            }
            Event::GiveUp => {
                log::warn!("processes of group {} are still alive {KILL_SETTLE:?} after SIGKILL", self.pgid);
                self.group_done = true;
            }
            Event::DrainOver => {
                self.out.close();
                self.err.close();
            }
        }
    }

    fn exited(&mut self, status: io::Result<ExitStatus>) {
        self.exit = Some(status);
        if self.ending.is_some() {
            self.group_done = !self.alive_all();
            return;
        }
        // The main process is reaped, so the group (and the cgroup) now holds only what it
        // left behind; zombies of background children already dead do not count as left
        // behind.
        if self.alive_all() {
            self.signal_all(Signal::SIGTERM);
            self.leftover_signal = Some(libc::SIGTERM);
            self.kill_at = Some(Instant::now() + self.kill_grace);
        } else {
            self.group_done = true;
        }
    }

    fn finish(mut self, started_at: SystemTime, t0: Instant, pid: u32) -> Finished {
        if self.run_id.is_some() {
            // Reap what is left of the adopted (zombies now).
            let _ = self.others();
        }
        let cpu_usec = match &self.cgroup {
            Some(cg) => cg.cpu_usec(),
            None => Some(self.usage.cpu_usec + self.main_usage.cpu_usec),
        };
        let peak = self.usage.maxrss_bytes.max(self.main_usage.maxrss_bytes);
        let memory_peak_bytes = self.cgroup.as_ref().and_then(|cg| cg.memory_peak()).or((peak > 0).then_some(peak));
        drop(self.cgroup.take());

        let status = match (self.ending, self.exit.take()) {
            (Some((Ending::Timeout, signal)), _) => Status::TimedOut { signal },
            (Some((Ending::Stop, signal)), _) => Status::Stopped { signal },
            (None, Some(Ok(st))) => match (st.code(), st.signal()) {
                (Some(code), _) => Status::Exited(code),
                (None, Some(signal)) => Status::Signaled(signal),
                (None, None) => unreachable!("a reaped child either exited or was killed by a signal: {st:?}"),
            },
            (None, Some(Err(e))) => {
                log::error!("lost the exit status of pid {pid}: {e}");
                Status::Exited(-1)
            }
            (None, None) => unreachable!("the loop only ends once the main process has been reaped"),
        };
        Finished {
            status,
            started_at,
            duration: t0.elapsed(),
            pid: Some(pid),
            stdout_bytes: self.out.total,
            stderr_bytes: self.err.total,
            stdout_tail: std::mem::replace(&mut self.out.tail, Tail::new(0)).into_vec(),
            stderr_tail: std::mem::replace(&mut self.err.tail, Tail::new(0)).into_vec(),
            leftover_signal: self.leftover_signal,
            cpu_usec,
            memory_peak_bytes,
        }
    }
}

/// The SIGCHLD task of [`crate::contain::reap_strays`] runs (one per process).
static REAPER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Numbers runs within this process: their cgroup's name and their `RUNNER_RUN_ID`.
static RUN_NO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Ends a process group left by a previous daemon (its pgid found in the state file at
/// restart): SIGTERM, up to `grace` for it to empty, then SIGKILL. Returns whether any live
/// process was in it.
///
/// Blocking: it sleeps up to `grace` (and a few seconds more for SIGKILLed processes to die) on
/// the calling thread, so call it at start-up before the
/// scheduler loop (or through `spawn_blocking`). It refuses pgid 0 and 1 (which `kill` reads as
/// "our own group" and "every process") and our own group.
///
/// A pgid alone does not prove the group is the one we started: after a reboot or a pid
/// wrap-around it may belong to anything. The caller should only pass groups recorded during
/// the current boot (compare /proc/sys/kernel/random/boot_id).
pub fn end_group(pgid: u32, grace: Duration) -> bool {
    let Ok(raw) = i32::try_from(pgid) else { return false };
    if raw <= 1 || Pid::from_raw(raw) == nix::unistd::getpgrp() {
        return false;
    }
    let pgid = Pid::from_raw(raw);
    if !group_alive(pgid) || killpg(pgid, Signal::SIGTERM).is_err() {
        return false;
    }
    let mut deadline = std::time::Instant::now() + grace;
    let mut killed = false;
    let mut pause = Duration::from_millis(5);
    while group_alive(pgid) {
        let now = std::time::Instant::now();
        if now >= deadline {
            if killed {
                log::warn!("processes of group {pgid} are still alive {KILL_SETTLE:?} after SIGKILL");
                break;
            }
            let _ = killpg(pgid, Signal::SIGKILL);
            killed = true;
            deadline = now + KILL_SETTLE;
            pause = Duration::from_millis(5);
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(now)));
        pause = (pause * 2).min(POLL_MAX);
    }
    true
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    Timeout,
    Stop,
}

enum Event {
    Exited(io::Result<ExitStatus>),
    Out(io::Result<usize>),
    Err(io::Result<usize>),
    Timeout,
    /// `true`: the value changed; `false`: the sender is gone.
    Stop(bool),
    Kill,
    Poll,
    GiveUp,
    DrainOver,
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// SIGKILLs the group if `run` is dropped half-way, so a cancelled run leaves nothing behind.
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = killpg(self.pgid, Signal::SIGKILL);
        }
    }
}

/// Whether any process of the group is alive. Zombies do not count: they keep the group id
/// until their parent reaps them, and for orphans that is init, which may take seconds (or
/// never happen, in a container whose pid 1 does not reap).
fn group_alive(pgid: Pid) -> bool {
    match killpg(pgid, None) {
        Err(Errno::ESRCH) => return false,
        Err(_) => return true,
        Ok(()) => {}
    }
    // /proc unreadable: alive, so the group is not taken for gone.
    crate::proc::group_has_live_member(pgid.as_raw()).unwrap_or(true)
}

#[derive(Clone, Copy, Debug)]
enum Echo {
    Stdout,
    Stderr,
}

/// One output stream: the pipe, a reused read buffer and the bounded tail.
struct Capture<R> {
    src: Option<R>,
    buf: Vec<u8>,
    tail: Tail,
    total: u64,
    eof: bool,
    echo: Option<Echo>,
}

impl<R: tokio::io::AsyncRead + Unpin> Capture<R> {
    fn new(src: Option<R>, limit: usize, echo: Option<Echo>) -> Capture<R> {
        let eof = src.is_none();
        let buf = if eof { Vec::new() } else { vec![0; READ_CHUNK] };
        Capture { src, buf, tail: Tail::new(limit), total: 0, eof, echo }
    }

    async fn read(&mut self) -> io::Result<usize> {
        match &mut self.src {
            Some(src) => src.read(&mut self.buf).await,
            None => Ok(0),
        }
    }

    fn take(&mut self, n: io::Result<usize>) {
        match n {
            Ok(n) if n > 0 => {
                let data = &self.buf[..n];
                self.tail.push(data);
                self.total += n as u64;
                // A closed or broken stdout of ours must not fail the job, so errors are dropped.
                match self.echo {
                    Some(Echo::Stdout) => {
                        let mut o = io::stdout().lock();
                        let _ = o.write_all(data).and_then(|()| o.flush());
                    }
                    Some(Echo::Stderr) => {
                        let _ = io::stderr().lock().write_all(data);
                    }
                    None => {}
                }
            }
            _ => self.close(),
        }
    }

    fn close(&mut self) {
        self.src = None;
        self.buf = Vec::new();
        self.eof = true;
    }
}

/// The last `limit` bytes written, in a ring that never grows past `limit`.
#[derive(Debug)]
struct Tail {
    buf: Vec<u8>,
    limit: usize,
    /// Once `buf` is full: where the oldest byte is, and the next one goes.
    start: usize,
}

impl Tail {
    fn new(limit: usize) -> Tail {
        Tail { buf: Vec::new(), limit, start: 0 }
    }

    fn push(&mut self, mut data: &[u8]) {
        if data.len() >= self.limit {
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - self.limit..]);
            self.start = 0;
            return;
        }
        let room = self.limit - self.buf.len();
        if room > 0 {
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        while !data.is_empty() {
            let n = (self.limit - self.start).min(data.len());
            self.buf[self.start..self.start + n].copy_from_slice(&data[..n]);
            self.start = (self.start + n) % self.limit;
            data = &data[n..];
        }
    }

    fn into_vec(mut self) -> Vec<u8> {
        self.buf.rotate_left(self.start);
        self.buf
    }
}

use runner_sys::spawn::Step;

/// argv[1] that turns the runner binary into the exec helper (see [`exec_helper`]).
pub const EXEC_HELPER_ARG: &str = "--exec-helper";

static HELPER: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The binary started as the exec helper: this one (`/proc/self/exe`, so an upgrade that
/// replaced the file mid-run changes nothing), unless a program that embeds this library and
/// is not `runner` (tests) names the runner binary here, before its first run.
pub fn set_exec_helper(runner_binary: PathBuf) {
    let _ = HELPER.set(runner_binary);
}

/// `runner --exec-helper FD PARENT UMASK NICE IDS FALLBACK WORKDIR CGROUP_PROCS -- PROGRAM ARGS...`: the
/// hidden mode a job's process starts in where clone3 is refused (or with `RUNNER_SPAWN=helper`;
/// see `spawn.rs`). The daemon starts it with posix_spawn, with the job's environment and
/// stdio already in place. Here, in a fresh single-threaded process: join the run's cgroup,
/// then the set-up and exec every job's process goes through (`runner_sys::spawn::exec`:
/// setsid, umask, nice, ids, PR_SET_PDEATHSIG, chdir, descriptors, execvp's search), which
/// keeps this pid (and so the session and group). A failed step is written to FD and the
/// helper exits 127.
pub fn exec_helper(mut args: impl Iterator<Item = OsString>) -> ! {
    let mut next = || args.next().unwrap_or_default();
    let num = |s: OsString| s.to_str().and_then(|s| s.parse::<i64>().ok());
    let Some(report) = num(next()).and_then(|fd| i32::try_from(fd).ok()).and_then(runner_sys::fd::claim_inherited)
    else {
        eprintln!("runner: {EXEC_HELPER_ARG} is started by runner itself, to run a job");
        std::process::exit(2);
    };
    let parent = num(next()).unwrap_or(0) as i32;
    let umask = next().to_str().and_then(|s| u32::from_str_radix(s, 8).ok()).unwrap_or(0o022);
    let nice = num(next()).and_then(|n| i8::try_from(n).ok());
    let ids: Option<(Vec<u32>, u32, u32)> = next().to_str().and_then(|s| {
        let mut parts = s.split(':');
        let uid = parts.next()?.parse().ok()?;
        let gid = parts.next()?.parse().ok()?;
        let groups =
            parts.next()?.split(',').filter(|g| !g.is_empty()).map(|g| g.parse().ok()).collect::<Option<_>>()?;
        Some((groups, gid, uid))
    });
    let root_fallback = next() == "1";
    let workdir = next();
    let cgroup_procs = Some(next()).filter(|c| c != "-");
    let _dashes = next();
    let argv: Vec<OsString> = std::iter::from_fn(|| args.next()).collect();
    let argv: Vec<&OsStr> = argv.iter().map(OsString::as_os_str).collect();
    let fail = |step: Option<Step>, errno: i32| -> ! {
        runner_sys::spawn::report(std::os::fd::AsFd::as_fd(&report), step, errno);
        std::process::exit(127);
    };
    // Joined first, so everything the job starts is in it.
    if let Some(procs) = cgroup_procs
        && let Err(e) = std::fs::OpenOptions::new().write(true).open(procs).and_then(|mut f| f.write_all(b"0"))
    {
        fail(Some(Step::Cgroup), e.raw_os_error().unwrap_or(libc::EIO));
    }
    if argv.is_empty() {
        fail(None, libc::ENOENT);
    }
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let job = runner_sys::spawn::Job {
        argv: &argv,
        env: &env,
        workdir: &workdir,
        root_fallback,
        umask,
        nice,
        ids: ids.as_ref().map(|(g, gid, uid)| (g.as_slice(), *gid, *uid)),
        parent,
    };
    match runner_sys::spawn::Prepared::new(&job) {
        Ok(mut prepared) => runner_sys::spawn::exec(&mut prepared, report),
        Err(_) => fail(None, libc::EINVAL),
    }
}

/// A job's process started, not yet known to have become the job.
struct Pending {
    child: RunChild,
    report: OwnedFd,
    program: OsString,
    workdir: OsString,
    run_as_user: String,
    nice: Option<i8>,
}

impl Pending {
    /// Waits (without blocking the thread) for the process's exec: the report pipe closes
    /// unread when it succeeded, or carries the failed step. A start that is still setting up
    /// when `stop` turns true or `timeout_at` passes (its `chdir` hangs on a dead mount) is
    /// SIGKILLed and reaped: Err with the status that says why.
    async fn report(
        self,
        stop: &mut watch::Receiver<bool>,
        timeout_at: Option<Instant>,
        usage: &mut crate::contain::Usage,
    ) -> Result<RunChild, Status> {
        let Pending { mut child, report, program, workdir, run_as_user, nice } = self;
        let read = read_report(report);
        tokio::pin!(read);
        let mut stop_open = true;
        let ending = loop {
            tokio::select! {
                got = &mut read => match got {
                    None => return Ok(child),
                    Some((step, e)) => {
                        let (kind, message) = describe_spawn_error(step, &e, &program, &run_as_user, nice, &workdir);
                        // It exits right after its report; reap it.
                        let _ = child.wait(usage).await;
                        return Err(Status::SpawnFailed { kind, message });
                    }
                },
                _ = sleep_until(timeout_at), if timeout_at.is_some() => break Status::TimedOut { signal: libc::SIGKILL },
                changed = stop.changed(), if stop_open => match changed {
                    Ok(()) if *stop.borrow_and_update() => break Status::Stopped { signal: libc::SIGKILL },
                    Ok(()) => {}
                    Err(_) => stop_open = false,
                },
            }
        };
        // Its signals stay blocked until its set-up is done: only SIGKILL ends it now.
        child.kill();
        if tokio::time::timeout(KILL_SETTLE, child.wait(usage)).await.is_err() {
            log::warn!("the start of pid {} is stuck in the kernel {KILL_SETTLE:?} after SIGKILL", child.id());
        }
        Err(ending)
    }
}

/// The report of a start: None when the pipe closed unwritten (the exec succeeded), else the
/// failed step (None: the exec) and its errno.
async fn read_report(report: OwnedFd) -> Option<(Option<Step>, io::Error)> {
    let mut b = [0u8; 5];
    let mut got = 0;
    if let Ok(mut rx) = tokio::net::unix::pipe::Receiver::from_owned_fd(report) {
        while got < b.len() {
            match rx.read(&mut b[got..]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    }
    if got < b.len() {
        return None;
    }
    Some((Step::from_u8(b[0]), io::Error::from_raw_os_error(i32::from_le_bytes([b[1], b[2], b[3], b[4]]))))
}

fn spawn(
    spec: &Spec<'_>,
    cgroup: Option<&crate::contain::RunCgroup>,
    run_id: Option<&str>,
) -> Result<Pending, (SpawnErrorKind, String)> {
    let other = |m: String| (SpawnErrorKind::Other, m);
    let argv: Vec<&OsStr> = match spec.command {
        CommandLine::Argv(v) => v.iter().map(OsStr::new).collect(),
        CommandLine::Shell(line) => vec![OsStr::new("/bin/sh"), OsStr::new("-c"), OsStr::new(line)],
    };
    let Some(program) = argv.first().copied() else { return Err(other("the command is empty".into())) };

    let daemon_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let mut env = base_env(spec.run_as, &daemon_env, || spec.own_user.cloned());
    let home = env.iter().find(|(k, _)| k == "HOME").map(|(_, v)| v.clone());
    let (workdir, root_fallback) = match (spec.workdir, home) {
        (Some(dir), _) => (dir.as_os_str().to_os_string(), false),
        (None, Some(home)) => (home, true),
        (None, None) => (OsString::from("/"), false),
    };
    if workdir.as_bytes().contains(&0) {
        return Err(other(format!("the working directory {:?} contains a NUL byte", workdir)));
    }
    // The job's own entries, then the run's mark, replace the base's of the same name.
    let extra = spec.env.iter().map(|(k, v)| (OsStr::new(k), OsStr::new(v)));
    for (k, v) in extra.chain(run_id.map(|id| (OsStr::new(crate::contain::RUN_ID_ENV), OsStr::new(id)))) {
        match env.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = v.to_os_string(),
            None => env.push((k.to_os_string(), v.to_os_string())),
        }
    }

    // Running as ourselves needs no change of ids, and an unprivileged daemon could not make one.
    let euid = nix::unistd::geteuid().as_raw();
    let ids = spec.run_as.filter(|r| euid == 0 || r.uid != euid).map(|r| (r.groups.as_slice(), r.gid, r.uid));
    let helper = HELPER.get().map_or(Path::new(crate::proc::SELF_EXE), PathBuf::as_path);
    let sys = runner_sys::spawn::Job {
        argv: &argv,
        env: &env,
        workdir: &workdir,
        root_fallback,
        umask: spec.umask,
        nice: spec.nice,
        ids,
        parent: crate::host::pid() as i32,
    };
    let job = spawn::Job { sys, cgroup, helper };
    let run_as_user = spec.run_as.map_or(String::new(), |r| r.user.clone());
    match spawn::start(&job) {
        Ok(spawn::Started(child, report)) => {
            Ok(Pending { child, report, program: program.to_os_string(), workdir, run_as_user, nice: spec.nice })
        }
        Err(m) => Err(other(m)),
    }
}

fn describe_spawn_error(
    step: Option<Step>,
    e: &io::Error,
    program: &OsStr,
    user: &str,
    nice: Option<i8>,
    workdir: &OsStr,
) -> (SpawnErrorKind, String) {
    let errno = e.raw_os_error().map(Errno::from_raw);
    let why = errno.map_or_else(|| e.to_string(), |n| n.desc().to_string());
    let message = match step {
        None => {
            let kind = match errno {
                Some(Errno::ENOENT | Errno::ENOTDIR) => SpawnErrorKind::NotFound,
                Some(Errno::EACCES | Errno::EPERM | Errno::ENOEXEC | Errno::EISDIR) => SpawnErrorKind::NotExecutable,
                _ => SpawnErrorKind::Other,
            };
            return (kind, format!("cannot run {}: {why}", program.to_string_lossy()));
        }
        Some(Step::Setsid) => format!("cannot start a new session: {why}"),
        Some(Step::DeathSignal) => format!("cannot set the parent-death signal: {why}"),
        Some(Step::ParentGone) => "the daemon exited while the job was starting".to_string(),
        Some(Step::Nice) => format!("cannot set nice {}: {why}", nice.unwrap_or(0)),
        Some(Step::Groups) => format!("cannot set the supplementary groups of user {user}: {why}"),
        Some(Step::Gid) => format!("cannot set the group id of user {user}: {why}"),
        Some(Step::Uid) => format!("cannot switch to user {user}: {why}"),
        Some(Step::Chdir) => format!("cannot change directory to {}: {why}", workdir.to_string_lossy()),
        Some(Step::Cgroup) => format!("cannot join the run's cgroup: {why}"),
        Some(Step::Stdio) => format!("cannot set up the job's stdin, stdout and stderr: {why}"),
    };
    (SpawnErrorKind::Other, message)
}

/// The environment every job starts from, before `spec.env`: cleared, then a safe PATH, who the
/// job runs as (HOME, USER, LOGNAME, SHELL), and TZ, LANG and LC_* from the daemon's own
/// environment. For the daemon's own user, missing values come from `own_user` (the user db).
fn base_env(
    run_as: Option<&RunAs>,
    daemon_env: &[(OsString, OsString)],
    own_user: impl FnOnce() -> Option<users::User>,
) -> Vec<(OsString, OsString)> {
    let get = |k: &str| daemon_env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (home, user, shell) = match run_as {
        Some(r) => (Some(r.home.clone().into_os_string()), Some(OsString::from(&r.user)), r.shell.clone().into()),
        None => {
            let (home, user, shell) = (get("HOME"), get("USER").or_else(|| get("LOGNAME")), get("SHELL"));
            let db = if home.is_none() || user.is_none() || shell.is_none() { own_user() } else { None };
            let db = db.as_ref();
            (
                home.or_else(|| db.map(|u| u.home.clone().into_os_string())),
                user.or_else(|| db.map(|u| OsString::from(&u.name))),
                shell.or_else(|| db.map(|u| u.shell.clone().into_os_string())).unwrap_or_else(|| "/bin/sh".into()),
            )
        }
    };
    let mut env = vec![("PATH".into(), SAFE_PATH.into())];
    env.push(("HOME".into(), home.unwrap_or_else(|| "/".into())));
    if let Some(user) = user {
        env.push(("USER".into(), user.clone()));
        env.push(("LOGNAME".into(), user));
    }
    env.push(("SHELL".into(), shell));
    for (k, v) in daemon_env {
        let name = k.as_bytes();
        if name == b"TZ" || name == b"LANG" || name.starts_with(b"LC_") {
            env.push((k.clone(), v.clone()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// The daemon may `tokio::spawn` runs, which needs a `Send` future.
    #[test]
    fn run_is_send_when_the_callback_is() {
        fn assert_send<T: Send>(_: &T) {}
        let cmd = CommandLine::Shell("true".into());
        let spec = Spec::new(&cmd);
        let (_tx, rx) = watch::channel(false);
        let fut = run(&spec, |_, _| {}, rx);
        assert_send(&fut);
    }

    #[test]
    fn tail_keeps_exactly_the_last_bytes_whatever_the_chunking() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for limit in [1, 7, 100, 4096] {
            for chunk in [1, 3, 99, 100, 101, 5000] {
                let mut tail = Tail::new(limit);
                for c in data.chunks(chunk) {
                    tail.push(c);
                    assert!(tail.buf.len() <= limit);
                }
                assert_eq!(tail.into_vec(), data[data.len() - limit..], "limit {limit}, chunk {chunk}");
            }
        }
        let mut short = Tail::new(100);
        short.push(b"abc");
        short.push(b"de");
        assert_eq!(short.into_vec(), b"abcde");
    }

    #[test]
    fn tail_of_zero_keeps_nothing() {
        let mut tail = Tail::new(0);
        tail.push(b"abc");
        tail.push(b"");
        assert!(tail.into_vec().is_empty());
    }

    fn env_of(v: &[(OsString, OsString)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned())).collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        p.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    #[test]
    fn base_env_for_another_user_comes_from_run_as_and_passes_only_locale_and_zone() {
        let r = RunAs {
            user: "ci".into(),
            uid: 1001,
            gid: 1001,
            groups: vec![1001],
            home: PathBuf::from("/home/ci"),
            shell: PathBuf::from("/bin/bash"),
        };
        let daemon = pairs(&[("HOME", "/root"), ("TZ", "UTC"), ("LC_TIME", "C"), ("SECRET", "x"), ("LANG", "C.UTF-8")]);
        let env = base_env(Some(&r), &daemon, || panic!("run_as needs no lookup"));
        let want = [
            ("PATH", SAFE_PATH),
            ("HOME", "/home/ci"),
            ("USER", "ci"),
            ("LOGNAME", "ci"),
            ("SHELL", "/bin/bash"),
            ("TZ", "UTC"),
            ("LC_TIME", "C"),
            ("LANG", "C.UTF-8"),
        ];
        assert_eq!(env_of(&env), want.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn base_env_for_the_own_user_prefers_the_daemon_env_then_the_user_db() {
        let full = pairs(&[("HOME", "/srv"), ("LOGNAME", "svc"), ("SHELL", "/bin/dash")]);
        let env = env_of(&base_env(None, &full, || panic!("nothing is missing")));
        assert_eq!(
            &env[1..5],
            &pairs_s(&[("HOME", "/srv"), ("USER", "svc"), ("LOGNAME", "svc"), ("SHELL", "/bin/dash")])
        );

        let db_user = users::User {
            name: "svc".into(),
            uid: 999,
            gid: 999,
            home: "/var/lib/svc".into(),
            shell: "/usr/sbin/nologin".into(),
        };
        let env = env_of(&base_env(None, &[], || Some(db_user)));
        assert_eq!(
            &env[1..5],
            &pairs_s(&[("HOME", "/var/lib/svc"), ("USER", "svc"), ("LOGNAME", "svc"), ("SHELL", "/usr/sbin/nologin")])
        );

        let env = env_of(&base_env(None, &[], || None));
        assert_eq!(&env[1..], &pairs_s(&[("HOME", "/"), ("SHELL", "/bin/sh")]));
    }

    fn pairs_s(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn exec_errors_map_to_shell_exit_codes_and_setup_errors_name_the_step() {
        let cmd = CommandLine::Argv(vec!["x".into()]);
        let spec = Spec::new(&cmd);
        let kind = |errno: i32| {
            describe_spawn_error(
                None,
                &io::Error::from_raw_os_error(errno),
                OsStr::new("x"),
                "",
                spec.nice,
                OsStr::new("/"),
            )
            .0
        };
        assert_eq!(kind(libc::ENOENT), SpawnErrorKind::NotFound);
        assert_eq!(kind(libc::EACCES), SpawnErrorKind::NotExecutable);
        assert_eq!(kind(libc::ENOEXEC), SpawnErrorKind::NotExecutable);
        assert_eq!(kind(libc::E2BIG), SpawnErrorKind::Other);
        assert_eq!(SpawnErrorKind::NotFound.exit_code(), 127);
        assert_eq!(SpawnErrorKind::NotExecutable.exit_code(), 126);

        let e = io::Error::from_raw_os_error(libc::ENOENT);
        let (kind, msg) =
            describe_spawn_error(Some(Step::Chdir), &e, OsStr::new("x"), "", None, OsStr::new("/srv/gone"));
        assert_eq!(kind, SpawnErrorKind::Other);
        assert_eq!(msg, "cannot change directory to /srv/gone: No such file or directory");
        for b in 1..=10 {
            assert_eq!(Step::from_u8(b).map(|s| s as u8), Some(b));
        }
        assert_eq!(Step::from_u8(0), None);
    }
}
