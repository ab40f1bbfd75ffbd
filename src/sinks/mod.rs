//! Where records go. `Sinks::emit` is the one place a finished run, a skipped fire, an alert
//! or a daemon event is stored: the ring file (`ring.rs`), journald (`journald.rs`), the
//! per-job state (`state.rs`), checks' live values (`live.rs`), the Prometheus textfile
//! (`textfile.rs`) and the daemon's own log line.

pub mod live;
pub mod ring;
pub mod state;
pub mod textfile;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::{LogSettings, Plan};
use crate::journal::Journal;
use crate::record::{Kind, Outcome, Record, RecordKind};
use ring::Ring;
use state::StateStore;

#[derive(Clone, Debug)]
pub struct Sinks {
    pub state: StateStore,
    log: Option<Arc<LogSinks>>,
    /// Where checks' live files go (a tmpfs); none in unit tests.
    pub runtime_dir: Option<PathBuf>,
    /// The Prometheus textfile, rewritten after each run, when `export:` asks for it.
    pub textfile: Option<PathBuf>,
    /// The queue_flush jobs' statistics the textfile carries, handed in by the daemon.
    pub queues: Option<textfile::QueueSource>,
}

#[derive(Debug)]
struct LogSinks {
    settings: LogSettings,
    /// Opened at the first record, and again after a failure (a full disk, a removed file).
    ring: Mutex<Option<Ring>>,
    journal: Journal,
    /// The daemon's stderr is the journal: a record journald took needs no log line too.
    stderr_is_journal: bool,
}

impl Sinks {
    /// The state file only (tests and tools that keep no run log).
    pub fn new(state: StateStore) -> Sinks {
        Sinks { state, log: None, runtime_dir: None, textfile: None, queues: None }
    }

    /// Every sink the plan asks for: state, ring file and journald (the queues' source for
    /// the textfile is the caller's to set).
    pub fn for_plan(plan: &Plan) -> Sinks {
        Sinks {
            state: StateStore::new(&plan.state_dir),
            log: Some(Arc::new(LogSinks {
                settings: plan.log.clone(),
                ring: Mutex::new(None),
                journal: Journal::new(&plan.log.journal_socket),
                stderr_is_journal: crate::logging::stderr_is_journal(),
            })),
            runtime_dir: Some(plan.runtime_dir.clone()),
            textfile: plan.textfile.clone(),
            queues: None,
        }
    }

    /// Stores one record everywhere it belongs. A sink that fails is logged, never fatal:
    /// losing a log line must not stop jobs from running.
    pub fn emit(&self, r: &Record) {
        self.open_ring();
        let mut journaled = false;
        if let Some(log) = &self.log {
            let seq = log.append_to_ring(r);
            journaled = log.journal.record(r, seq.unwrap_or(0), log.settings.job_output_to_journal);
        }
        if !(journaled && self.log.as_ref().is_some_and(|l| l.stderr_is_journal)) {
            let line = r.summary();
            match (r.kind, r.outcome) {
                (RecordKind::Alert, _) => log::warn!("{line}"),
                // A check's every sample is routine; its alerts and resolves are the news.
                (RecordKind::Run, _) if r.job_kind == Kind::Check => log::debug!("{line}"),
                (_, Outcome::Success) => log::info!("{line}"),
                (_, Outcome::Skipped | Outcome::Stopped) => log::warn!("{line}"),
                _ => log::error!("{line}"),
            }
        }
        // Audit lines describe one decision inside a run; the run's own record updates the
        // state, once, so a sweep of many processes is not many writes to flash. Daemon
        // events are about no job.
        if matches!(r.kind, RecordKind::Audit | RecordKind::Daemon) {
            return;
        }
        // A check's samples go to a tmpfs file, not to the state on flash; the state changes
        // only when its level does (jobs::check writes that).
        if r.kind == RecordKind::Run && r.job_kind == Kind::Check {
            if let Some(dir) = &self.runtime_dir
                && let Err(e) = live::write(dir, r)
            {
                log::error!("cannot write the live value of check {}: {e}", r.job);
            }
        } else if let Err(e) = self.state.update(|s| s.apply(r)) {
            log::error!("cannot record the run of {}: {e}", r.job);
        }
        if r.kind == RecordKind::Run
            && let (Some(path), Some(dir)) = (&self.textfile, &self.runtime_dir)
        {
            let state = self.state.load().unwrap_or_default();
            let mut text = textfile::render(&state, &live::read_all(dir));
            if let Some(q) = &self.queues {
                text.push_str(&textfile::render_queues(&(q.0)(crate::time::epoch_ms(std::time::SystemTime::now()))));
            }
            if let Err(e) = textfile::write(path, &text) {
                log::error!("cannot write the textfile {}: {e}", path.display());
            }
        }
    }

    /// Opens the run log if it is not open yet, and records what opening found in it
    /// (damaged records skipped, a damaged header moved aside) as daemon events. The daemon
    /// calls it at start; any record opens it too.
    pub fn open_ring(&self) {
        let Some(log) = &self.log else { return };
        for event in log.open_ring() {
            self.emit(&event);
        }
    }
}

/// A daemon event about the run log.
fn ring_event(message: String) -> Record {
    let mut r = Record::skipped("runner", Kind::Daemon, crate::record::Trigger::Schedule, message);
    r.kind = RecordKind::Daemon;
    r.outcome = Outcome::Failure;
    r
}

impl LogSinks {
    /// Opens the ring when it is not open; returns the events to record about what opening found.
    fn open_ring(&self) -> Vec<Record> {
        let mut slot = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Vec::new();
        }
        let path = self.settings.ring.path.display();
        let mut ring = match Ring::open(&self.settings.ring) {
            Ok(ring) => ring,
            Err(e) => {
                log::error!("cannot open the run log {path}: {e}; move the file away to start a new one");
                return Vec::new();
            }
        };
        let found = ring.take_found();
        *slot = Some(ring);
        let mut events = Vec::new();
        if let Some((why, to)) = found.moved_aside {
            events.push(ring_event(format!(
                "run log {path} had a damaged header ({why}): moved it to {} (runner logs --file reads it) and started a new run log",
                to.display()
            )));
        }
        if !found.damage.is_empty() {
            events.push(ring_event(format!(
                "run log {path} is damaged: {}; the records around them are kept, the damaged bytes cleared",
                ring::describe_damage(&found.damage)
            )));
        }
        events
    }

    /// Appends to the ring and returns the record's sequence number (its run id).
    fn append_to_ring(&self, r: &Record) -> Option<u64> {
        let mut slot = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        // Not open: opening failed just now, and said why.
        let ring = slot.as_mut()?;
        match ring.append(r) {
            Ok(seq) => Some(seq),
            Err(e) => {
                log::error!("cannot append to the run log {}: {e}", self.settings.ring.path.display());
                *slot = None;
                None
            }
        }
    }
}
