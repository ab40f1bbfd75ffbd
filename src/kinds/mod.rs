//! One home per job kind: each kind's folder owns its YAML block (`config.rs`: the serde
//! mirror and how it resolves), its run (one attempt), its dry run, its health part and what
//! its fires record. Adding a kind is a folder here, a [`JobKind`] variant and a
//! [`crate::record::Kind`] variant; nothing above changes but the match arms below.
//!
//! Kinds sit below config, sinks and jobs: they never see a `Job`, the state file or a sink.
//! What a run needs of its job and of the daemon comes through [`Host`], which `jobs`
//! implements; that keeps locking, retries and recording in one place above.

pub mod check;
pub mod command;
pub mod orphan_sweep;
pub mod queue_flush;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::process::{self, CommandLine};
use crate::record::{Kind, Record};
use crate::state::{JobState, Update};

/// What a job does.
#[derive(Clone, Debug, PartialEq)]
pub enum JobKind {
    Command(CommandLine),
    // Boxed, like `Check`: unboxed, every job (most are commands) took the largest kind's
    // 224 bytes, 2 MiB over 10,000 jobs.
    QueueFlush(Box<queue_flush::Spec>),
    OrphanSweep(Box<orphan_sweep::Spec>),
    Check(Box<check::Spec>),
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        self.tag().as_str()
    }

    /// The kind as records carry it.
    pub fn tag(&self) -> Kind {
        match self {
            JobKind::Command(_) => Kind::Command,
            JobKind::QueueFlush(_) => Kind::QueueFlush,
            JobKind::OrphanSweep(_) => Kind::OrphanSweep,
            JobKind::Check(_) => Kind::Check,
        }
    }

    /// The interval a kind runs at when the job gives no schedule; `None` makes a schedule
    /// mandatory (a command has no sensible default).
    pub fn default_every(&self) -> Option<Duration> {
        match self {
            JobKind::Command(_) => None,
            JobKind::QueueFlush(_) => Some(queue_flush::Spec::DEFAULT_EVERY),
            // A sweep is destructive; rarely is enough (and `every:` under 1h is refused).
            JobKind::OrphanSweep(_) => Some(Duration::from_secs(6 * 3600)),
            JobKind::Check(_) => Some(Duration::from_secs(30)),
        }
    }

    /// Whether `timeout:` is enforced around the whole attempt by the caller (the kind's run
    /// then sees it as a stop), rather than inside the kind.
    pub fn timeout_bounds_whole_run(&self) -> bool {
        matches!(self, JobKind::QueueFlush(_) | JobKind::OrphanSweep(_))
    }

    /// One attempt of the job: the kind's run.
    pub async fn attempt(&self, host: &dyn Host, stop: watch::Receiver<bool>) -> Record {
        match self {
            JobKind::Command(cmd) => command::attempt(host, cmd, stop).await,
            JobKind::QueueFlush(q) => queue_flush::attempt(host, q, stop).await,
            JobKind::OrphanSweep(spec) => orphan_sweep::attempt(host, spec, stop).await,
            JobKind::Check(spec) => check::attempt(host, spec, stop).await,
        }
    }
}

/// Where in the job's YAML a problem found while resolving a kind's block is, so config can
/// put a line and column on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// A key path inside the kind's block; empty for the block itself.
    Block(Vec<&'static str>),
    /// A key of the job itself (`user`, `every`, `schedule`).
    Job(&'static str),
}

/// One problem in a kind's block: where, and the message naming the fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub at: At,
    pub message: String,
}

impl Problem {
    pub fn block(path: &[&'static str], message: String) -> Problem {
        Problem { at: At::Block(path.to_vec()), message }
    }

    pub fn job(key: &'static str, message: String) -> Problem {
        Problem { at: At::Job(key), message }
    }
}

/// Where a kind's records go; owned, so a task a run spawns can keep it.
pub type Emit = Arc<dyn Fn(&Record) + Send + Sync>;

/// Runner's own running work, as the state and the lock files record it (see `Host::own_work`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnWork {
    /// Process groups, which are also sessions: runs start with setsid.
    pub groups: Vec<i32>,
    /// Processes holding a job lock or the daemon's pid file.
    pub holders: Vec<i32>,
}

/// A boxed future borrowed from the host (hooks).
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What a job's process start is reported to: its process group and run id.
pub type Started = Box<dyn FnOnce(u32, &str) + Send + 'static>;

/// What a kind's run may use of its job and of the daemon. `jobs` implements it; tests may
/// implement it too. Every method is cheap and never blocks the event loop.
pub trait Host: Sync {
    /// The job's name.
    fn job(&self) -> &str;
    /// `daemon` or `once`: written into locks, shown by `status`.
    fn by(&self) -> &'static str;
    /// Copy the output of the job's processes to our own stdout/stderr (`runner once`).
    fn echo(&self) -> bool;
    /// The job's `timeout:`.
    fn timeout(&self) -> Option<Duration>;
    /// Who the job's processes run as; `None`: the daemon's own user.
    fn run_as(&self) -> Option<&process::RunAs>;
    /// The environment every process of the job gets (`env:`, `RUNNER_JOB`), then `extra`.
    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)>;
    /// How a process of this job runs: its user, directory, umask, nice and kill grace; the
    /// timeout is the caller's (a command's, a handler's, a probe's).
    fn process<'a>(
        &'a self,
        command: &'a CommandLine,
        env: &'a [(String, String)],
        timeout: Option<Duration>,
        echo: bool,
    ) -> process::Spec<'a>;
    /// Called with the process group and run id of a started process, so a daemon restarted
    /// after a crash can end what is left.
    fn started(&self) -> Started;
    /// Stores a record (audit lines, alerts) everywhere records go.
    fn emit(&self, r: &Record) {
        (self.emitter())(r)
    }
    fn emitter(&self) -> Emit;
    /// What is known of this job between runs.
    fn state(&self) -> Result<Option<JobState>, String>;
    /// Changes this job's state; true when something changed.
    fn update(&self, u: Update) -> Result<bool, String>;
    /// What runner is running right now, which an orphan sweep never ends (beside what it
    /// sees in /proc itself): the process groups (= sessions) of runs the state records as
    /// running, of every job, this boot, and the pids holding job locks or the daemon's pid
    /// file. An error (the state cannot be read) ends nothing. No default: an answer of
    /// "nothing is runner's own" would let a sweep end runner's own work.
    fn own_work(&self) -> Result<OwnWork, String>;
    /// Runs a hook (`on_alert`, `on_recover`) to its end, its timeout capped, ended like a
    /// run when `stop` turns true, its process group recorded as running meanwhile.
    fn hook<'a>(
        &'a self,
        command: &'a CommandLine,
        extra_env: &'a [(&'a str, String)],
        what: &'a str,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> HookFuture<'a>;
}
