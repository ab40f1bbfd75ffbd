//! The one record every job produces: a finished run, or a fire that was skipped.
//!
//! Jobs build records; sinks store them. A record is plain data with no behaviour beyond
//! describing itself, so every sink sees exactly the same facts.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// How a run ended, from the operator's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// The program ran and exited non-zero.
    Failure,
    Timeout,
    /// Killed by a signal runner did not send.
    Killed,
    /// Ended by runner: replaced by a newer run, or the daemon stopping.
    Stopped,
    /// The program could not be started (missing, not executable, bad user or directory).
    SpawnFailed,
    /// The fire did not start a run (already running, disabled, ...).
    Skipped,
    /// The runner watching the run died (a crash, kill -9, power cut) before its end was
    /// recorded; the next daemon records it so. Not a failure of the job.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Timeout => "timeout",
            Outcome::Killed => "killed",
            Outcome::Stopped => "stopped",
            Outcome::SpawnFailed => "spawn_failed",
            Outcome::Skipped => "skipped",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// Whether this counts against the job (retries, consecutive failures, on_failure).
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Success | Outcome::Skipped | Outcome::Stopped | Outcome::Interrupted)
    }
}

/// Why a run started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Schedule,
    /// `runner once`.
    Manual,
    /// A fire missed while the daemon was down (`catch_up: once`).
    CatchUp,
    Reboot,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::CatchUp => "catch_up",
            Trigger::Reboot => "reboot",
        }
    }
}

/// What a record is about. Runs and skips come from every job; the other kinds belong to
/// the job kinds that raise them (alerts from checks, audit lines from sweeps) and to the
/// daemon itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Run,
    /// A check's routine sample (its judged level did not change): it goes to the check's
    /// live file only, never to the ring, journald or the state. See `kinds::check::sample_kind`.
    Sample,
    Skip,
    Alert,
    Resolve,
    Audit,
    Daemon,
    /// A hook (`on_failure`, `on_alert`, `on_recover`) that ran: how it ended. Not a run of
    /// its job: it changes no state.
    Hook,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Run => "run",
            RecordKind::Sample => "sample",
            RecordKind::Skip => "skip",
            RecordKind::Alert => "alert",
            RecordKind::Resolve => "resolve",
            RecordKind::Audit => "audit",
            RecordKind::Daemon => "daemon",
            RecordKind::Hook => "hook",
        }
    }
}

/// The kind of job a record is about. Every job kind has a variant (adding a kind adds one,
/// beside its `kinds::JobKind` variant); `Daemon` is for the daemon's own events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Command,
    QueueFlush,
    OrphanSweep,
    Check,
    Daemon,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Command => "command",
            Kind::QueueFlush => "queue_flush",
            Kind::OrphanSweep => "orphan_sweep",
            Kind::Check => "check",
            Kind::Daemon => "daemon",
        }
    }

    /// The kind a record's `job_kind` text names (as the ring stores it).
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Command, Kind::QueueFlush, Kind::OrphanSweep, Kind::Check, Kind::Daemon]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The job name of the daemon's own records (their kind, `daemon`, tells them from a job's).
pub const DAEMON_JOB: &str = "runner";

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub kind: RecordKind,
    pub job: String,
    pub job_kind: Kind,
    pub trigger: Trigger,
    /// 1 for the first try; retries count up.
    pub attempt: u32,
    /// No further attempt of this fire follows: it succeeded, or it was the last one
    /// `retries:` allows (or the daemon stopped before the next). The state counts a fire's
    /// outcome once, from its last attempt (`state::State::apply`).
    pub last_attempt: bool,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub pid: Option<u32>,
    /// The last bytes of stdout then stderr, for logs and `on_failure`.
    pub output_tail: Vec<u8>,
    /// One line for people: why it was skipped, why it could not start, ...
    pub message: String,
    /// What a check measured, for kinds that measure something.
    pub value: Option<f64>,
    /// A check's level (`ok`, `warn`, `crit`, `fail`, `unknown`); an alert's severity.
    pub level: Option<String>,
    /// CPU time the run's processes used (its cgroup's `cpu.stat`, or the rusage of what
    /// runner reaped), microseconds; None where not measured.
    pub cpu_usec: Option<u64>,
    /// The largest `ru_maxrss` of the run's reaped processes (or its cgroup's `memory.peak`).
    pub memory_peak_bytes: Option<u64>,
}

impl Record {
    /// A fire that did not become a run.
    pub fn skipped(job: &str, job_kind: Kind, trigger: Trigger, reason: String) -> Record {
        Record {
            kind: RecordKind::Skip,
            job: job.to_string(),
            job_kind,
            trigger,
            attempt: 0,
            last_attempt: true,
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            outcome: Outcome::Skipped,
            exit_code: None,
            signal: None,
            pid: None,
            output_tail: Vec::new(),
            message: reason,
            value: None,
            level: None,
            cpu_usec: None,
            memory_peak_bytes: None,
        }
    }

    /// One of the daemon's own events (its start, a reload, its stop), under the job name
    /// `runner` and the kind `daemon`, with the daemon's pid; `message` says what happened.
    pub fn daemon(outcome: Outcome, message: String) -> Record {
        Record {
            kind: RecordKind::Daemon,
            job_kind: Kind::Daemon,
            outcome,
            pid: Some(std::process::id()),
            ..Record::skipped(DAEMON_JOB, Kind::Daemon, Trigger::Schedule, message)
        }
    }

    /// `exit 3`, `signal 9`, or empty: the status part of a log line.
    pub fn status_text(&self) -> String {
        match (self.exit_code, self.signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) => format!("signal {s}"),
            _ => String::new(),
        }
    }

    /// The one-line summary every sink shows.
    pub fn summary(&self) -> String {
        match self.kind {
            RecordKind::Audit => return format!("job {} audit: {}", self.job, self.message),
            RecordKind::Alert => return format!("check {} alert {}", self.job, self.message),
            RecordKind::Resolve => return format!("check {} {}", self.job, self.message),
            RecordKind::Daemon => return self.message.clone(),
            _ => {}
        }
        let mut s = format!("job {} {}", self.job, self.outcome.as_str());
        let status = self.status_text();
        if !status.is_empty() {
            s.push_str(&format!(" ({status})"));
        }
        if self.outcome != Outcome::Skipped {
            s.push_str(&format!(" after {} ms", self.duration.as_millis()));
        }
        if self.attempt > 1 {
            s.push_str(&format!(", attempt {}", self.attempt));
        }
        if self.trigger != Trigger::Schedule {
            s.push_str(&format!(", {}", self.trigger.as_str()));
        }
        if !self.message.is_empty() {
            s.push_str(&format!(": {}", self.message));
        }
        s
    }
}
