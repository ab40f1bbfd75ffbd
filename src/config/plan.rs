//! The validated, resolved configuration: what the scheduler and the jobs act on.
//!
//! A `Plan` cannot hold an invalid state: names are checked, users resolved, time zones
//! loaded, defaults applied. Building one reads the machine (users, tzdata) but changes
//! nothing on it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;

pub use super::raw::{CatchUp, Overlap};
pub use crate::kinds::JobKind;
pub use crate::kinds::queue_flush::QueueFlush;
pub use crate::process::{CommandLine, RunAs};
pub use crate::retry::Retries;
pub use crate::schedule::Schedule;

/// A job name that is safe to use in file names and journal fields.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
/// Shared, not copied, by the tables that find a job by its name (`scheduler::Timetable`).
pub struct JobName(Arc<str>);

impl JobName {
    pub fn new(s: &str) -> Result<JobName, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && !s.starts_with('.');
        if ok {
            Ok(JobName(Arc::from(s)))
        } else {
            Err(format!("invalid job name `{s}`: use 1 to 64 letters, digits, `-`, `_` or `.`, not starting with `.`"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for JobName {
    fn borrow(&self) -> &str {
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
    /// One allocation per file, shared by its jobs.
    pub file: Arc<Path>,
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
    // Boxed: most jobs run as the daemon's user, and inline it was 104 bytes in each.
    pub run_as: Option<Box<RunAs>>,
    /// Without `run_as`: the daemon's own entry in /etc/passwd, resolved at load, for the
    /// HOME, USER and SHELL its environment lacks. One copy shared by all jobs.
    pub own_user: Option<std::sync::Arc<crate::users::User>>,
    pub workdir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    pub nice: Option<i8>,
    pub umask: u32,
    pub on_failure: Option<CommandLine>,
    /// Checks that must be at level ok for this job to run (`depends_on: {check: healthy}`).
    pub depends_on: Vec<Dependency>,
    /// `when:` and how a due run waits for it; boxed, as most jobs have none.
    pub conditions: Option<Box<super::conditions::Conditions>>,
    /// `notify:`: where the run's pings go; boxed, as most jobs have none.
    pub notify: Option<Box<crate::pings::Notify>>,
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
    /// What each of `files` held when it was read: the daemon keeps a copy
    /// (`sinks::loaded`) for the commands that report on it to fall back to, then empties
    /// this (a generated config's text is megabytes it would otherwise hold for good).
    pub texts: Vec<String>,
    pub state_dir: PathBuf,
    pub runtime_dir: PathBuf,
    pub max_parallel: usize,
    /// Shared, not copied, with the daemon's timetable and the runs it starts.
    pub jobs: Vec<Arc<Job>>,
    pub log: LogSettings,
    /// Where metrics read /proc and /sys.
    pub roots: crate::metrics::Roots,
    /// The Prometheus textfile to rewrite after each run, when `export:` is given.
    pub textfile: Option<PathBuf>,
}

/// Where records are kept besides the state: the ring file and journald (`log:`).
#[derive(Clone, Debug, PartialEq)]
pub struct LogSettings {
    pub ring: super::log::RingConfig,
    /// journald's native socket; records go there when it exists.
    pub journal_socket: PathBuf,
    /// Send each line of a run's output tail to the journal under the job's name.
    pub job_output_to_journal: bool,
    /// `syslog*`: records to a syslog daemon, where there is no journald.
    pub syslog: crate::syslog::Settings,
}

impl Plan {
    pub fn job(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name.as_str() == name).map(|j| &**j)
    }

    pub fn job_names(&self) -> Vec<&str> {
        self.jobs.iter().map(|j| j.name.as_str()).collect()
    }
}
