//! What runner knows about each job between runs: last run, outcome, failures, a check's
//! judged level, a kind's health part, the last ring record folded in. Types, the pure
//! `State::apply` of a record and `State::update` of a typed change only; `sinks::state`
//! persists it (one small file per job) and the daemon keeps it in memory. Kinds read and
//! change it through `kinds::Services`, never by writing a file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::{Kind, Outcome, Record, RecordKind};
use crate::time::epoch_ms;

pub const STATE_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch: plain numbers keep the file small and unambiguous.

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Running {
    /// The run's main process, also its process group (runs start with setsid).
    pub pgid: u32,
    pub since_ms: i64,
    /// `daemon` or `once`.
    pub by: String,
    /// The runner process that started it, to tell a live run from a leftover.
    pub runner_pid: u32,
    /// Processes do not outlive a reboot: entries from another boot are simply dropped.
    pub boot_id: String,
    /// A daemon that found this group left by a crashed runner has recorded the run as
    /// `interrupted`; the entry stays until the group is gone, and is not recorded again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// The run's `RUNNER_RUN_ID` (`<runner pid>.<n>`), which its processes inherit: how a
    /// restarted daemon finds what escaped the group (`setsid`, a double fork) once the
    /// subreaper that held it is gone. Empty for entries of older versions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
}

/// Overall health levels, worst last; the overall health is the worst of its parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthLevel {
    #[default]
    Healthy,
    Degraded,
    Unhealthy,
    Critical,
}

impl HealthLevel {
    /// The level as `status` and `health` print it (and as it is serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthLevel::Healthy => "HEALTHY",
            HealthLevel::Degraded => "DEGRADED",
            HealthLevel::Unhealthy => "UNHEALTHY",
            HealthLevel::Critical => "CRITICAL",
        }
    }
}

/// A job's own part of the overall health, for kinds that judge health (a check's level, a
/// queue's score). Written when it changes, not on every sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthPart {
    pub level: HealthLevel,
    /// The kind's own word for it (`ok`, `warn`, `crit`, `unknown`, a queue's score, ...).
    pub status: String,
    pub value: Option<f64>,
    pub detail: String,
    pub since_ms: i64,
}

/// An alert a check raised and has not resolved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActiveAlert {
    pub level: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub raised_ms: i64,
    pub message: String,
}

/// A check's judged level between runs (`kinds::check`). Written when the level changes or
/// an alert is repeated after its cooldown, never on every sample.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckState {
    /// `ok`, `warn`, `crit`, `fail` or `unknown`; none before the first judgement.
    pub level: Option<String>,
    pub since_ms: i64,
    /// A level seen but not yet for `for:` samples in a row, as of the last write.
    pub pending: Option<String>,
    pub pending_count: u32,
    pub last_alert_ms: Option<i64>,
    pub alert: Option<ActiveAlert>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobState {
    pub last_start_ms: Option<i64>,
    pub last_end_ms: Option<i64>,
    pub last_outcome: Option<Outcome>,
    /// When the job last finished successfully (the textfile export's freshness signal).
    pub last_success_ms: Option<i64>,
    pub last_exit_code: Option<i32>,
    pub last_signal: Option<i32>,
    pub last_duration_ms: Option<u64>,
    /// CPU time and peak memory of the last run, where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_cpu_usec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_memory_peak_bytes: Option<u64>,
    pub consecutive_failures: u32,
    /// The scheduled instant the daemon last fired for (not when the run started), so a
    /// restart knows whether a fire was missed.
    pub last_fire_ms: Option<i64>,
    pub next_due_ms: Option<i64>,
    /// Process groups of a run, as a `state.json` written before the per-job files held
    /// them; read for the leftover check at the first start after an upgrade, never
    /// written. Running groups now live in `runtime_dir/jobs/<job>.running`.
    #[serde(skip_serializing)]
    pub running: Vec<Running>,
    /// The boot an `@reboot` job last ran in.
    pub reboot_boot_id: Option<String>,
    pub runs: u64,
    pub failures: u64,
    pub health: Option<HealthPart>,
    pub check: Option<CheckState>,
    /// The sequence number of the last ring record folded into this state: records of the
    /// job newer than it are applied again at load, so what the ring holds survives a
    /// state file that a crash or a power cut kept from the disk.
    pub ring_seq: Option<u64>,
    /// A due run waiting for its `when:` conditions (the daemon's; `status` shows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// The last run skipped because its conditions did not hold (after its wait, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_skip: Option<ConditionSkip>,
}

/// A due run waiting for `when:`: since when, until when at most, and what fails now.
/// Written when a wait starts, when the failing condition changes and when it ends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Waiting {
    pub since_ms: i64,
    pub until_ms: i64,
    /// The condition that fails, as written, with what was found.
    pub condition: String,
    /// The daemon that waits: a wait does not outlive it.
    pub runner_pid: u32,
}

/// A run skipped for its conditions: when, after how long a wait, and which one failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConditionSkip {
    pub at_ms: i64,
    pub waited_ms: u64,
    pub condition: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub version: u32,
    pub jobs: BTreeMap<String, JobState>,
}

impl Default for State {
    fn default() -> Self {
        State { version: STATE_VERSION, jobs: BTreeMap::new() }
    }
}

/// A typed change to one job's state, as the kinds make them (through `kinds::Services`).
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// A check's judged level changed, or an alert was repeated: its state and health part.
    Check { state: CheckState, health: HealthPart },
    /// A kind's health part (a queue's score); stored only when its level changes.
    Health(HealthPart),
    /// One process group of a run ended before the run did (a queue item's handler).
    /// Running groups are kept in `runtime_dir`, not here: this only drops a group that a
    /// `state.json` from before the per-job files listed.
    GroupEnded(u32),
    /// The daemon fired the job for the instant `at_ms` (a skipped fire too); `next_due_ms`
    /// is when it is due next, for `status`.
    Fired { at_ms: i64, next_due_ms: Option<i64> },
    /// An `@reboot` job ran in this boot.
    Rebooted(String),
    /// A record, with the sequence number the ring gave it (none when the ring could not
    /// take it). Folded in once: a record at or below the job's `ring_seq` is already in.
    Ran { seq: Option<u64>, record: Box<Record> },
    /// A due run started waiting for its conditions, or what it waits for changed (Some),
    /// or the wait ended (None).
    Waiting(Option<Waiting>),
    /// A run was skipped for its conditions.
    ConditionSkipped(ConditionSkip),
}

impl State {
    /// Applies a typed update to `job`'s state; true when something changed.
    pub fn update(&mut self, job: &str, u: Update) -> bool {
        match u {
            Update::Check { state, health } => {
                let js = self.jobs.entry(job.to_string()).or_default();
                js.check = Some(state);
                js.health = Some(health);
                true
            }
            Update::Health(part) => {
                let js = self.jobs.entry(job.to_string()).or_default();
                if js.health.as_ref().map(|h| h.level) == Some(part.level) {
                    return false;
                }
                js.health = Some(part);
                true
            }
            Update::GroupEnded(pgid) => match self.jobs.get_mut(job) {
                Some(js) => {
                    let before = js.running.len();
                    js.running.retain(|r| r.pgid != pgid);
                    js.running.len() != before
                }
                None => false,
            },
            Update::Fired { at_ms, next_due_ms } => {
                let js = self.jobs.entry(job.to_string()).or_default();
                let before = (js.last_fire_ms, js.next_due_ms);
                js.last_fire_ms = Some(at_ms);
                js.next_due_ms = next_due_ms;
                before != (js.last_fire_ms, js.next_due_ms)
            }
            Update::Rebooted(boot) => {
                let js = self.jobs.entry(job.to_string()).or_default();
                if js.reboot_boot_id.as_deref() == Some(boot.as_str()) {
                    return false;
                }
                js.reboot_boot_id = Some(boot);
                true
            }
            Update::Waiting(w) => {
                let js = self.jobs.entry(job.to_string()).or_default();
                let changed = js.waiting != w;
                js.waiting = w;
                changed
            }
            Update::ConditionSkipped(skip) => {
                let js = self.jobs.entry(job.to_string()).or_default();
                js.waiting = None;
                js.condition_skip = Some(skip);
                true
            }
            Update::Ran { seq, record } => {
                if let (Some(seq), Some(have)) = (seq, self.jobs.get(job).and_then(|j| j.ring_seq))
                    && seq <= have
                {
                    return false;
                }
                if !self.apply(&record) {
                    return false;
                }
                if let Some(seq) = seq {
                    self.jobs.entry(job.to_string()).or_default().ring_seq = Some(seq);
                }
                true
            }
        }
    }

    /// Whether a record changes the state at all: finished runs do; skips, alerts, audit
    /// lines and a check's samples (kept in its live file) do not.
    pub fn changed_by(r: &Record) -> bool {
        !(r.outcome == Outcome::Skipped
            || matches!(
                r.kind,
                RecordKind::Alert | RecordKind::Resolve | RecordKind::Audit | RecordKind::Daemon | RecordKind::Hook
            )
            || r.job_kind == Kind::Check)
    }

    pub fn job(&self, name: &str) -> Option<&JobState> {
        self.jobs.get(name)
    }

    /// Folds a finished run into its job's state; false (and nothing changed) for a record
    /// that is not one ([`changed_by`](Self::changed_by)).
    pub fn apply(&mut self, r: &Record) -> bool {
        // Alerts are not runs; a check's runs change only its volatile live file, and its
        // level is written by the check itself when it changes (flash wears out).
        if !State::changed_by(r) {
            return false;
        }
        let js = self.jobs.entry(r.job.clone()).or_default();
        let start = epoch_ms(r.started_at);
        js.last_start_ms = Some(start);
        js.last_end_ms = Some(start + r.duration.as_millis() as i64);
        js.last_outcome = Some(r.outcome);
        js.last_exit_code = r.exit_code;
        js.last_signal = r.signal;
        js.last_duration_ms = Some(r.duration.as_millis() as u64);
        js.last_cpu_usec = r.cpu_usec;
        js.last_memory_peak_bytes = r.memory_peak_bytes;
        // Runs and failures count fires, not attempts: an attempt that is retried only
        // shows as the last outcome until the next one ends.
        if r.last_attempt {
            js.runs += 1;
            if r.outcome.is_failure() {
                js.consecutive_failures += 1;
                js.failures += 1;
            }
        }
        if r.outcome == Outcome::Success {
            js.consecutive_failures = 0;
            js.last_success_ms = js.last_end_ms;
        }
        if let Some(pid) = r.pid {
            js.running.retain(|x| x.pgid != pid);
        }
        true
    }
}

/// A check's level. Metrics are ok, warn, crit or unknown (source unreadable); probes are
/// ok or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Crit,
    Fail,
    Unknown,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Crit => "crit",
            Level::Fail => "fail",
            Level::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "ok" => Level::Ok,
            "warn" => Level::Warn,
            "crit" => Level::Crit,
            "fail" => Level::Fail,
            "unknown" => Level::Unknown,
            _ => return None,
        })
    }

    /// This level's part of the overall health: warn DEGRADED, crit CRITICAL, a failing
    /// probe UNHEALTHY, an unreadable source DEGRADED.
    pub fn health(self) -> HealthLevel {
        match self {
            Level::Ok => HealthLevel::Healthy,
            Level::Warn | Level::Unknown => HealthLevel::Degraded,
            Level::Fail => HealthLevel::Unhealthy,
            Level::Crit => HealthLevel::Critical,
        }
    }

    /// A numeric code for the textfile export: 0 ok, 1 warn, 2 crit, 3 fail, 4 unknown.
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::Trigger;
    use crate::time::from_epoch_ms;
    use std::time::Duration;

    pub(crate) fn rec(outcome: Outcome) -> Record {
        Record {
            job: "j".into(),
            kind: crate::record::RecordKind::Run,
            job_kind: Kind::Command,
            trigger: Trigger::Schedule,
            attempt: 1,
            last_attempt: true,
            started_at: from_epoch_ms(1_000),
            duration: Duration::from_millis(250),
            outcome,
            exit_code: Some(if outcome == Outcome::Success { 0 } else { 1 }),
            signal: None,
            pid: Some(42),
            output_tail: vec![],
            message: String::new(),
            value: None,
            level: None,
            cpu_usec: None,
            memory_peak_bytes: None,
        }
    }

    #[test]
    fn failures_count_until_a_success() {
        let mut s = State::default();
        s.apply(&rec(Outcome::Failure));
        s.apply(&rec(Outcome::Timeout));
        assert_eq!(s.jobs["j"].consecutive_failures, 2);
        s.apply(&rec(Outcome::Success));
        let j = &s.jobs["j"];
        assert_eq!((j.consecutive_failures, j.failures, j.runs), (0, 2, 3));
        assert_eq!(j.last_end_ms, Some(1_250));
    }

    #[test]
    fn a_retried_attempt_is_not_a_failed_fire() {
        let mut s = State::default();
        let retried = Record { last_attempt: false, ..rec(Outcome::Failure) };
        s.apply(&retried);
        s.apply(&retried);
        s.apply(&rec(Outcome::Failure));
        s.apply(&retried);
        s.apply(&rec(Outcome::Success));
        let j = &s.jobs["j"];
        assert_eq!((j.runs, j.failures, j.consecutive_failures), (2, 1, 0));
        assert_eq!(j.last_outcome, Some(Outcome::Success));
    }

    #[test]
    fn a_record_is_folded_in_once_by_its_ring_sequence() {
        let mut s = State::default();
        let ran = |seq| Update::Ran { seq: Some(seq), record: Box::new(rec(Outcome::Failure)) };
        assert!(s.update("j", ran(7)));
        assert!(!s.update("j", ran(7)), "the same record again");
        assert!(!s.update("j", ran(6)), "an older record");
        assert!(s.update("j", ran(9)));
        assert_eq!((s.jobs["j"].runs, s.jobs["j"].ring_seq), (2, Some(9)));
        // A skip changes nothing, not even the sequence number it carried.
        let skip = Record { outcome: Outcome::Skipped, kind: RecordKind::Skip, ..rec(Outcome::Skipped) };
        assert!(!s.update("j", Update::Ran { seq: Some(10), record: Box::new(skip) }));
        assert_eq!(s.jobs["j"].ring_seq, Some(9));
    }
}
