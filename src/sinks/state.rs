//! The persisted per-job state: last run, outcome, failures, running process group.
//!
//! One JSON file under `state_dir`, replaced atomically (temp file, fsync, rename, fsync of
//! the directory) and only when something changes: a run starting or ending, never on a
//! timer, since flash wears out. The daemon and `runner once` both write it, serialised by a
//! lock file, each changing only what it knows (read, modify, write under the lock).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::record::{Outcome, Record, RecordKind};
pub use crate::time::{epoch_ms, from_epoch_ms};

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

/// A check's judged level between runs (`jobs::check`). Written when the level changes or
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

impl State {
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
        if matches!(r.kind, RecordKind::Alert | RecordKind::Resolve) || r.job_kind == "check" {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    Fsync,
    PageCache,
}

#[derive(Debug)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

#[derive(Clone, Debug)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub fn new(dir: &Path) -> StateStore {
        StateStore { dir: dir.to_path_buf() }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The state as last written; an absent file is an empty state.
    pub fn load(&self) -> Result<State, StateError> {
        match std::fs::read(self.path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StateError(format!(
                    "{}: unreadable state ({e}); move it aside to start afresh (run history is lost, jobs are not)",
                    self.path().display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(StateError(format!("{}: {e}", self.path().display()))),
        }
    }

    /// Reads, changes and writes the state under the state lock, durably (fsync): for what
    /// must survive power loss, such as a finished run.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
        self.update_with(Durability::Fsync, f)
    }

    /// Like [`update`](Self::update) but without fsync: still atomic (a reader sees the old
    /// file or the new one), and it survives the daemon being killed, only not power loss.
    /// For facts a power loss makes moot, such as which process groups are running, so a
    /// run does not wait for the disk before it starts.
    pub fn update_volatile<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
        self.update_with(Durability::PageCache, f)
    }

    fn update_with<T>(&self, durability: Durability, f: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
        let io = |what: &str, e: &dyn std::fmt::Display| StateError(format!("{}: {what}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create the state directory", &e))?;
        let _lock =
            crate::lock::wait_file(&self.dir.join("state.lock")).map_err(|e| io("cannot lock state.lock", &e))?;
        let mut state = match self.load() {
            Ok(s) => s,
            Err(e) => {
                // Keep the damaged file for a person to look at; never write over it.
                let aside = self.dir.join(format!("state.json.corrupt-{}", epoch_ms(SystemTime::now())));
                log::error!("{e}; moved to {}", aside.display());
                std::fs::rename(self.path(), &aside).map_err(|e| io("cannot move the damaged state aside", &e))?;
                State::default()
            }
        };
        let before = state.clone();
        let out = f(&mut state);
        if state != before {
            self.write(&state, durability)?;
        }
        Ok(out)
    }

    fn write(&self, state: &State, durability: Durability) -> Result<(), StateError> {
        let io = |what: &str, e: &dyn std::fmt::Display| StateError(format!("{}: {what}: {e}", self.dir.display()));
        let tmp = self.dir.join("state.json.tmp");
        let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| io("cannot encode the state", &e))?;
        bytes.push(b'\n');
        let mut f = File::create(&tmp).map_err(|e| io("cannot write state.json.tmp", &e))?;
        f.write_all(&bytes).map_err(|e| io("cannot write state.json.tmp", &e))?;
        if durability == Durability::Fsync {
            f.sync_all().map_err(|e| io("cannot sync state.json.tmp", &e))?;
        }
        std::fs::rename(&tmp, self.path()).map_err(|e| io("cannot replace state.json", &e))?;
        if durability == Durability::Fsync {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io("cannot sync the state directory", &e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Trigger;
    use std::time::Duration;

    fn rec(outcome: Outcome) -> Record {
        Record {
            job: "j".into(),
            kind: crate::record::RecordKind::Run,
            job_kind: "command",
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

    #[test]
    fn update_round_trips_and_keeps_damaged_files() {
        let dir = std::env::temp_dir().join(format!("runner-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = StateStore::new(&dir);
        store.update(|s| s.apply(&rec(Outcome::Success))).unwrap();
        assert_eq!(store.load().unwrap().jobs["j"].runs, 1);
        std::fs::write(store.path(), b"{not json").unwrap();
        assert!(store.load().is_err());
        store.update(|s| s.apply(&rec(Outcome::Failure))).unwrap();
        assert_eq!(store.load().unwrap().jobs["j"].runs, 1);
        let kept = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("state.json.corrupt-"));
        assert_eq!(kept.count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
