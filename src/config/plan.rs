//! The validated, resolved configuration: what the scheduler and the jobs act on.
//!
//! A `Plan` cannot hold an invalid state: names are checked, users resolved, time zones
//! loaded, defaults applied. Building one reads the machine (users, tzdata) but changes
//! nothing on it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use jiff::tz::TimeZone;

pub use super::raw::{CatchUp, CommandLine, Overlap};
pub use crate::schedule::Schedule;

/// A job name that is safe to use in file names and journal fields.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobName(String);

impl JobName {
    pub fn new(s: &str) -> Result<JobName, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !s.starts_with('.');
        if ok {
            Ok(JobName(s.to_string()))
        } else {
            Err(format!("invalid job name `{s}`: use 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // pad, not write_str: tables use `{:<20}` on names.
        f.pad(&self.0)
    }
}

/// Where a job was defined, for `list` and for errors that span files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePos {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for SourcePos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A job's time zone: the name it was given (for display) and the loaded rules.
#[derive(Clone, Debug)]
pub struct Zone {
    pub name: String,
    pub tz: TimeZone,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retries {
    /// Tries in all, the first included; 1 means no retry.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries { attempts: 1, backoff: Duration::from_secs(10), max_backoff: Duration::from_secs(3600) }
    }
}

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

/// What a job does. Later kinds (checks, queue flushes, sweeps) are new variants; the
/// scheduler only ever sees a `Job`.
#[derive(Clone, Debug, PartialEq)]
pub enum JobKind {
    Command(CommandLine),
    QueueFlush(QueueFlush),
    OrphanSweep(crate::jobs::orphan_sweep::Spec),
    Check(Box<crate::jobs::check::CheckSpec>),
}

/// A resolved `queue_flush:` block: every default applied, the spool path absolute.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueFlush {
    pub spool: PathBuf,
    /// argv; the item's path is appended when an item is handled.
    pub handler: Vec<String>,
    pub max_items: usize,
    pub item_retries: Retries,
    pub item_timeout: Duration,
    pub keep_done: Duration,
    pub keep_failed: Duration,
    pub health_window: Duration,
}

impl QueueFlush {
    pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);
    pub const DEFAULT_MAX_ITEMS: usize = 10;
    pub const DEFAULT_RETRIES: Retries =
        Retries { attempts: 5, backoff: Duration::from_secs(60), max_backoff: Duration::from_secs(3600) };
    pub const DEFAULT_ITEM_TIMEOUT: Duration = Duration::from_secs(120);
    pub const DEFAULT_KEEP_DONE: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_KEEP_FAILED: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const DEFAULT_HEALTH_WINDOW: Duration = Duration::from_secs(24 * 3600);
}

impl JobKind {
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::Command(_) => "command",
            JobKind::QueueFlush(_) => "queue_flush",
            JobKind::OrphanSweep(_) => "orphan_sweep",
            JobKind::Check(_) => "check",
        }
    }

    /// The interval a kind runs at when the job gives no schedule; `None` makes a schedule
    /// mandatory (a command has no sensible default).
    pub fn default_every(&self) -> Option<Duration> {
        match self {
            JobKind::Command(_) => None,
            JobKind::QueueFlush(_) => Some(QueueFlush::DEFAULT_EVERY),
            // A sweep is destructive; rarely is enough (and `every:` under 1h is refused).
            JobKind::OrphanSweep(_) => Some(Duration::from_secs(6 * 3600)),
            JobKind::Check(_) => Some(Duration::from_secs(30)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub name: JobName,
    pub description: Option<String>,
    pub source: SourcePos,
    pub kind: JobKind,
    pub schedule: Schedule,
    pub zone: Zone,
    pub enabled: bool,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub retries: Retries,
    pub overlap: Overlap,
    pub jitter: Duration,
    pub catch_up: CatchUp,
    /// None: run as the daemon's own user.
    pub run_as: Option<RunAs>,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub nice: Option<i8>,
    pub umask: u32,
    pub on_failure: Option<CommandLine>,
    /// Checks that must be at level ok for this job to run (`depends_on: {check: healthy}`).
    pub depends_on: Vec<Dependency>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dependency {
    pub check: String,
    /// Where it was written, for the error when the check does not exist.
    pub at: SourcePos,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub config_path: PathBuf,
    /// The main file and every drop-in read, in order.
    pub files: Vec<PathBuf>,
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub max_parallel: usize,
    pub jobs: Vec<Job>,
    pub log: LogSettings,
    /// Where metrics read /proc and /sys.
    pub roots: crate::metrics::Roots,
    /// The Prometheus textfile to rewrite after each run, when `export:` is given.
    pub textfile: Option<PathBuf>,
}

/// Where records are kept besides the state: the ring file and journald (`log:`).
#[derive(Clone, Debug, PartialEq)]
pub struct LogSettings {
    pub ring: crate::sinks::ring::RingConfig,
    /// journald's native socket; records go there when it exists.
    pub journal_socket: PathBuf,
    /// Send each line of a run's output tail to the journal under the job's name.
    pub job_output_to_journal: bool,
}

impl Plan {
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name.as_str() == name)
    }

    pub fn job_names(&self) -> Vec<&str> {
        self.jobs.iter().map(|j| j.name.as_str()).collect()
    }
}
