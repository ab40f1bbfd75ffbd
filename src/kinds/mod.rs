//! One home per job kind: each kind's folder owns its YAML block (`config.rs`: the serde
//! mirror and how it resolves), its run (one attempt), its dry run, its health part and what
//! its fires record. Each kind's spec implements [`KindImpl`] (its default interval, what
//! `timeout:` bounds, the settings it refuses, its dry run and `once` output, its health
//! rule and `status` report); [`JobKind`] hands each question to it (`each_kind!`),
//! resolves the blocks (`from_blocks`) and says what a reload resets (`after_reload`), so no
//! code above names a concrete kind (`tests/architecture.rs`). `JobKind`, its dispatch, one
//! attempt and the YAML blocks (here and in `config::raw::RawJob`) are generated from one
//! registry, `registry!`, one line per kind, the only place in this file a kind is named.
//! Adding a kind is a folder here (its `KindImpl`, `attempt` and `from_blocks`), its line in
//! `registry!`, and a [`crate::record::Kind`] variant.
//!
//! Kinds sit below config, sinks and jobs: they never see a `Job`, the state file or a sink.
//! What a run needs of its job and of the daemon comes through [`Services`], which `jobs`
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

/// The registry: one line per kind, and the only place a kind is named. Each line: the
/// kind's [`JobKind`] variant and what it holds, its folder, and its keys in a job's YAML
/// (`config::raw::RawJob`'s fields, in this order) with their types. The folder provides
/// `attempt(svc, spec, stop)` (one attempt) and `from_blocks(job, <its keys>, given)` (its
/// keys resolved: `None` when the job has none of them, else the key to place problems at
/// and the spec or the problems); its spec implements [`KindImpl`].
///
/// `registry!(m { ... })` hands the lines to the macro `m`, after the `{ ... }` it is given:
/// `job_kinds` below makes [`JobKind`] from them, `config::raw` its `RawJob` fields.
// Boxed but the command: unboxed, every job (most are commands) took the largest kind's
// 224 bytes, 2 MiB over 10,000 jobs; the YAML blocks likewise (a `RawJob` was 1.3 KB).
macro_rules! registry {
    ($then:ident { $($pass:tt)* }) => {
        $then! { { $($pass)* }
            Command($crate::process::CommandLine) in command { command: Option<$crate::process::Argv>, run: Option<String> };
            QueueFlush(Box<$crate::kinds::queue_flush::QueueFlush>) in queue_flush { queue_flush: Option<Box<$crate::kinds::queue_flush::config::Block>> };
            OrphanSweep(Box<$crate::kinds::orphan_sweep::OrphanSweep>) in orphan_sweep { orphan_sweep: Option<Box<$crate::kinds::orphan_sweep::config::Block>> };
            Check(Box<$crate::kinds::check::CheckSpec>) in check { check: Option<Box<$crate::kinds::check::config::Block>> };
        }
    };
}
pub(crate) use registry;

/// [`JobKind`], `each_kind!` (every kind's arm, the same expression: how `JobKind` hands a
/// question to the kind), one attempt, [`Blocks`] and resolving them, from the registry.
/// `$d` is a `$`, for `each_kind!`'s own arguments.
macro_rules! job_kinds {
    ({ $d:tt } $($variant:ident($spec:ty) in $module:ident { $($key:ident: $block:ty),+ };)+) => {
        /// What a job does.
        #[derive(Clone, Debug, PartialEq)]
        pub enum JobKind {
            $($variant($spec),)+
        }

        macro_rules! each_kind {
            ($d kind:expr, $d s:ident => $d e:expr) => {
                match $d kind {
                    $(JobKind::$variant($d s) => $d e,)+
                }
            };
        }

        impl JobKind {
            /// One attempt of the job: the kind's run.
            pub async fn attempt(&self, svc: &dyn Services, stop: watch::Receiver<bool>) -> Record {
                match self {
                    $(JobKind::$variant(spec) => $module::attempt(svc, spec, stop).await,)+
                }
            }

            /// Resolves the kind blocks a job has, in the registry's order: each with its
            /// field name, its kind or the problems in its block. A job with none or more
            /// than one is config's to refuse.
            pub fn from_blocks(
                job: &str,
                b: Blocks,
                given: Given<'_>,
            ) -> Vec<(&'static str, Result<JobKind, Vec<Problem>>)> {
                let mut kinds = Vec::new();
                $(if let Some((key, r)) = $module::from_blocks(job, $(b.$key,)+ &given) {
                    kinds.push((key, r.map(|s| JobKind::$variant(s.into()))));
                })+
                kinds
            }
        }

        /// The kind blocks of a job's YAML, as written (`config::raw::RawJob`'s).
        pub struct Blocks {
            $($(pub $key: $block,)+)+
        }
    };
}

registry!(job_kinds { $ });

/// What a kind answers about its jobs beyond one attempt; each kind's folder implements it
/// for its spec, and [`JobKind`] hands every question to it. The defaults are the answers of
/// a kind that has nothing to say (no report, no warnings, nothing refused); none of them is
/// a safety answer.
pub trait KindImpl {
    /// The kind as records carry it.
    fn tag(&self) -> Kind;

    /// The interval the kind runs at when the job gives no schedule; `None` makes a
    /// schedule mandatory.
    fn default_every(&self) -> Option<Duration>;

    /// Whether `timeout:` is enforced around the whole attempt by the caller (the kind's run
    /// then sees it as a stop), rather than inside the kind.
    fn timeout_bounds_whole_run(&self) -> bool;

    /// How the kind's jobs count in the overall health.
    fn health_rule(&self) -> HealthRule;

    /// `runner once --dry-run`, after the job's line; `who`: whom the job runs as, in words.
    fn dry_run(&self, who: &str) -> DryRun<'_>;

    /// A check: its fires are samples judged to a level (see [`JobKind::is_check`]).
    fn is_check(&self) -> bool {
        false
    }

    /// Whether a run starts processes (so `once` sets up containment first).
    fn starts_processes(&self) -> bool {
        true
    }

    /// The kind's report for `status`, read without writing.
    fn status_report(&self) -> Option<serde_json::Value> {
        None
    }

    /// What `runner check` warns about beyond the config; `uid`: whom the job runs as.
    fn warnings(&self, _uid: u32) -> Vec<String> {
        Vec::new()
    }

    /// What `runner once` prints after a run that was not skipped; `job`: the job's name.
    fn once_lines(&self, _job: &str, _r: &Record) -> Vec<String> {
        Vec::new()
    }

    /// The job's own settings the kind refuses, as problems at the job's keys.
    fn refused(&self, _job: &str, _own: OwnSettings) -> Vec<Problem> {
        Vec::new()
    }

    /// The spool the kind's jobs drain, if they drain one (`runner queue`, `enqueue`).
    fn queue(&self) -> Option<&queue_flush::QueueFlush> {
        None
    }

    /// A sampled value as people read it.
    fn fmt_value(&self, v: f64) -> String {
        format!("{v}")
    }
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        self.tag().as_str()
    }

    /// The kind as records carry it.
    pub fn tag(&self) -> Kind {
        each_kind!(self, k => k.tag())
    }

    /// The interval a kind runs at when the job gives no schedule; `None` makes a schedule
    /// mandatory (a command has no sensible default).
    pub fn default_every(&self) -> Option<Duration> {
        each_kind!(self, k => k.default_every())
    }

    /// Whether `timeout:` is enforced around the whole attempt by the caller (the kind's run
    /// then sees it as a stop), rather than inside the kind.
    pub fn timeout_bounds_whole_run(&self) -> bool {
        each_kind!(self, k => k.timeout_bounds_whole_run())
    }

    /// A check: its fires are samples judged to a level. `depends_on` and `when.checks` name
    /// checks; a check takes no `retries:` or `on_failure:`, nor `defaults:`' `when:` or
    /// `notify:`; its fires are not recorded in the state (they come every few seconds), and
    /// its series in the textfile are not runs.
    pub fn is_check(&self) -> bool {
        each_kind!(self, k => k.is_check())
    }

    /// Whether a run starts processes (so `once` sets up containment first); a sweep only
    /// looks at /proc and signals.
    pub fn starts_processes(&self) -> bool {
        each_kind!(self, k => k.starts_processes())
    }

    /// The spool a queue_flush job drains (`runner queue`, `enqueue`, the textfile's rows).
    pub fn queue(&self) -> Option<&queue_flush::QueueFlush> {
        each_kind!(self, k => k.queue())
    }

    /// A sampled value as people read it: in the check's unit, else as the number.
    pub fn fmt_value(&self, v: f64) -> String {
        each_kind!(self, k => k.fmt_value(v))
    }

    /// How the kind's jobs count in the overall health (`health::assess`).
    pub fn health_rule(&self) -> HealthRule {
        each_kind!(self, k => k.health_rule())
    }

    /// The kind's report for `status` (a queue's counts and score), read without writing;
    /// `None` for kinds that have none.
    pub fn status_report(&self) -> Option<serde_json::Value> {
        each_kind!(self, k => k.status_report())
    }

    /// What `runner check` warns about beyond the config (a spool runner's user cannot use);
    /// `uid`: whom the job runs as.
    pub fn warnings(&self, uid: u32) -> Vec<String> {
        each_kind!(self, k => k.warnings(uid))
    }

    /// `runner once --dry-run`, after the job's line; `who`: whom the job runs as, in words.
    pub fn dry_run(&self, who: &str) -> DryRun<'_> {
        each_kind!(self, k => k.dry_run(who))
    }

    /// What `runner once` prints after a run that was not skipped (a check's value, level
    /// and what the level does); `job`: the job's name.
    pub fn once_lines(&self, job: &str, r: &Record) -> Vec<String> {
        each_kind!(self, k => k.once_lines(job, r))
    }

    /// The job's own settings the kind refuses (a check's `retries:`, `on_failure:`, a
    /// metric's `timeout:`), as problems at the job's keys.
    pub fn refused(&self, job: &str, own: OwnSettings) -> Vec<Problem> {
        each_kind!(self, k => k.refused(job, own))
    }
}

/// What a reload must reset in the kinds: the state kept between runs of jobs the new plan
/// no longer has (or has disabled). `enabled`: the new plan's enabled jobs.
pub fn after_reload<'a>(enabled: impl Iterator<Item = (&'a str, &'a JobKind)>) {
    let checks: Vec<&str> = enabled.filter(|(_, k)| k.is_check()).map(|(name, _)| name).collect();
    check::forget_except(&checks);
}

/// What a kind's block may read of its job while it resolves.
pub struct Given<'a> {
    pub every: Option<Duration>,
    pub schedule: Option<&'a crate::schedule::Schedule>,
    /// The job's own `user:`.
    pub user: Option<&'a str>,
    /// The job's (or the defaults') `kill_grace:` and `timeout:` (zero: none).
    pub kill_grace: Option<Duration>,
    pub timeout: Option<Duration>,
    pub users: &'a crate::users::Db,
    pub roots: &'a crate::metrics::Roots,
}

/// Which of the settings a kind may refuse the job gave itself (not through `defaults:`).
#[derive(Clone, Copy, Debug, Default)]
pub struct OwnSettings {
    pub retries: bool,
    pub timeout: bool,
    pub on_failure: bool,
}

/// How a kind's jobs count in the overall health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthRule {
    /// The judged level (a check): pending until the first, then the level's health.
    Level,
    /// The job's own part, if any, and DEGRADED while its last run failed (a command).
    LastRun,
    /// The job's own part only, written by its runs (a queue's score).
    OwnPart,
}

/// A kind's `once --dry-run`.
pub enum DryRun<'a> {
    /// The kind runs this as the job's process: the job's user, directory, timeout,
    /// attempts, environment and conditions are what to show.
    Process(&'a CommandLine),
    /// The kind's own lines, its closing line included; `ok` false: the dry run found the
    /// job cannot go on.
    Lines { lines: Vec<String>, ok: bool },
}

/// A command line as `once --dry-run` shows it: argv quoted, a shell line with its shell.
pub fn describe_command(cmd: &CommandLine) -> String {
    match cmd {
        CommandLine::Argv(v) => v.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" "),
        CommandLine::Shell(line) => format!("/bin/sh -c {line:?}"),
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

/// Runner's own running work, as the state and the lock files record it (see `Services::own_work`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OwnWork {
    /// Process groups, which are also sessions: runs start with setsid.
    pub groups: Vec<i32>,
    /// Processes holding a job lock or the daemon's pid file.
    pub holders: Vec<i32>,
}

/// A boxed future borrowed from the services (hooks).
pub type HookFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What a job's process start is reported to: its process group and run id.
pub type Started = Box<dyn FnOnce(u32, &str) + Send + 'static>;

/// What a kind's run may use of its job and of the daemon. `jobs` implements it; tests may
/// implement it too. Every method is cheap and never blocks the event loop.
pub trait Services: Sync {
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
