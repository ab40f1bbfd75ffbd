//! What runner knows about each job between runs: last run, outcome, failures, running
//! process groups, a check's judged level, a kind's health part. Types and the pure
//! `State::apply` only; `sinks::state` persists it. Kinds read and change it through
//! `kinds::Host`, never by writing the file.

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
    pub consecutive_failures: u32,
    /// The scheduled instant the daemon last fired for (not when the run started), so a
    /// restart knows whether a fire was missed.
    pub last_fire_ms: Option<i64>,
    pub next_due_ms: Option<i64>,
    pub running: Vec<Running>,
    /// The boot an `@reboot` job last ran in.
    pub reboot_boot_id: Option<String>,
    pub runs: u64,
    pub failures: u64,
    pub health: Option<HealthPart>,
    pub check: Option<CheckState>,
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

/// A typed change to one job's state, as the kinds make them (through `kinds::Host`).
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// A check's judged level changed, or an alert was repeated: its state and health part.
    Check { state: CheckState, health: HealthPart },
    /// A kind's health part (a queue's score); stored only when its level changes.
    Health(HealthPart),
    /// One process group of a run ended before the run did (a queue item's handler).
    GroupEnded(u32),
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
        }
    }

    pub fn job(&self, name: &str) -> Option<&JobState> {
        self.jobs.get(name)
    }

    /// Folds a finished run into its job's state.
    pub fn apply(&mut self, r: &Record) {
        let js = self.jobs.entry(r.job.clone()).or_default();
        if r.outcome == Outcome::Skipped {
            return;
        }
        // Alerts are not runs; a check's runs change only its volatile live file, and its
        // level is written by the check itself when it changes (flash wears out).
        if matches!(r.kind, RecordKind::Alert | RecordKind::Resolve) || r.job_kind == Kind::Check {
            return;
        }
        let start = epoch_ms(r.started_at);
        js.last_start_ms = Some(start);
        js.last_end_ms = Some(start + r.duration.as_millis() as i64);
        js.last_outcome = Some(r.outcome);
        js.last_exit_code = r.exit_code;
        js.last_signal = r.signal;
        js.last_duration_ms = Some(r.duration.as_millis() as u64);
        js.runs += 1;
        if r.outcome.is_failure() {
            js.consecutive_failures += 1;
            js.failures += 1;
        } else if r.outcome == Outcome::Success {
            js.consecutive_failures = 0;
            js.last_success_ms = js.last_end_ms;
        }
        if let Some(pid) = r.pid {
            js.running.retain(|x| x.pgid != pid);
        }
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
}
