//! Where records go. `Sinks::emit` is the one place a finished run, a skipped fire, an alert
//! or a daemon event is stored: the ring file (`ring.rs`), journald, syslog, the per-job state files
//! (`state.rs`), checks' live values (`live.rs`), the Prometheus textfile (`textfile.rs`)
//! and the daemon's own log line. `Sinks::update` is the one way to change the state.
//! In the daemon the state is kept in memory and `writer.rs`'s thread does every write, so
//! the event loop never waits for a lock or the disk; `runner once` writes synchronously.
//! A run's groups are kept in `runtime_dir` by `running.rs`.

pub mod daemon;
pub mod live;
pub mod loaded;
pub mod ring;
pub mod running;
pub mod state;
pub mod textfile;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::config::{LogSettings, Plan};
use crate::journal::Journal;
use crate::record::{Kind, Outcome, Record, RecordKind};
use crate::syslog::Syslog;
use ring::Ring;
use state::{State, StateError, StateStore, Update};
use writer::{Op, Shared, Writer};

#[derive(Clone, Debug)]
pub struct Sinks {
    pub state: StateStore,
    log: Option<Arc<LogSinks>>,
    /// Where checks' live files go (a tmpfs); none in unit tests.
    pub runtime_dir: Option<PathBuf>,
    /// The Prometheus textfile, rewritten after each run, when `export:` asks for it.
    pub textfile: Option<PathBuf>,
    /// The queue_flush jobs' statistics the textfile carries, handed in by the daemon.
    queues: Option<textfile::QueueSource>,
    /// The enabled jobs the textfile shows, handed in by the daemon (none until then).
    /// Shared: every fire clones the sinks, and this names every job (10,000 strings).
    shown: Arc<textfile::Shown>,
    /// The daemon's: the state in memory and its writer thread. Without it (`runner once`,
    /// tests) every record and change is written before `emit` or `update` returns.
    writer: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct LogSinks {
    settings: LogSettings,
    /// Opened at the first record, and again after a failure (a full disk, a removed file).
    ring: Mutex<Option<Ring>>,
    /// The job files, whose newest sequence number the ring never gives again.
    state: StateStore,
    journal: Journal,
    /// Made when the plan wants syslog (`log: syslog:`; by default where journald is not).
    syslog: Option<Syslog>,
    /// The daemon's stderr is the journal: a record journald took needs no log line too.
    stderr_is_journal: bool,
}

impl Sinks {
    /// The state files only (tests and tools that keep no run log).
    pub fn new(state: StateStore) -> Sinks {
        Sinks {
            state,
            log: None,
            runtime_dir: None,
            textfile: None,
            queues: None,
            shown: Default::default(),
            writer: None,
        }
    }

    /// Every sink the plan asks for: state, ring file and journald (the queues' source for
    /// the textfile is the caller's to set).
    pub fn for_plan(plan: &Plan) -> Sinks {
        Sinks {
            state: StateStore::with_work(&plan.state_dir, &plan.runtime_dir),
            log: Some(Arc::new(LogSinks {
                settings: plan.log.clone(),
                ring: Mutex::new(None),
                state: StateStore::with_work(&plan.state_dir, &plan.runtime_dir),
                journal: Journal::new(&plan.log.journal_socket),
                syslog: plan.log.syslog.wanted(&plan.log.journal_socket).then(|| Syslog::new(&plan.log.syslog)),
                stderr_is_journal: crate::logging::stderr_is_journal(),
            })),
            runtime_dir: Some(plan.runtime_dir.clone()),
            textfile: plan.textfile.clone(),
            queues: None,
            shown: Default::default(),
            writer: None,
        }
    }

    /// The ring file, whose records complete the state files at load.
    pub fn ring_path(&self) -> Option<&Path> {
        self.log.as_ref().map(|l| l.settings.ring.path.as_path())
    }

    /// The syslog sink's socket and the lines it dropped since start, when there are drops
    /// to report (`Syslog::drops_to_report`).
    pub fn syslog_dropped(&self) -> Option<(&Path, u64)> {
        let s = self.log.as_ref()?.syslog.as_ref()?;
        Some((s.path(), s.drops_to_report()?))
    }

    /// Sets the queues' source for the textfile (at start and on a reload).
    pub fn set_queues(&mut self, q: Option<textfile::QueueSource>) {
        if let Some(w) = &self.writer {
            *w.queues.lock().unwrap_or_else(|e| e.into_inner()) = q.clone();
        }
        self.queues = q;
    }

    /// Sets the jobs the textfile shows from its first write (at start and on a reload).
    pub fn set_shown(&mut self, s: textfile::Shown) {
        let s = Arc::new(s);
        if let Some(w) = &self.writer {
            *w.shown.lock().unwrap_or_else(|e| e.into_inner()) = s.clone();
        }
        self.shown = s;
    }

    /// The daemon's mode: `state` (as loaded at start) is kept in memory and changed there;
    /// a writer thread does the writes. Close the returned writer at a clean stop.
    pub fn start_writer(&mut self, state: State) -> std::io::Result<Writer> {
        // Job files to runtime_dir alone; the writer checkpoints them to state_dir.
        self.state = self.state.clone().lazy();
        let (w, shared) = Writer::spawn(self.clone(), state)?;
        self.writer = Some(shared);
        Ok(w)
    }

    /// Stores one record everywhere it belongs. A sink that fails is logged, never fatal:
    /// losing a log line must not stop jobs from running. In the daemon this changes the
    /// state in memory and enqueues the rest, in order, for the writer.
    pub fn emit(&self, r: &Record) {
        if let Some(w) = &self.writer {
            if State::changed_by(r) {
                w.state.lock().unwrap_or_else(|e| e.into_inner()).apply(r);
            }
            w.send(Op::Record(Box::new(r.clone())));
            return;
        }
        let seq = self.log_record(r);
        self.live(r);
        // Audit lines describe one decision inside a run; the run's own record updates the
        // state, once, so a sweep of many processes is not many writes to flash.
        if State::changed_by(r) {
            let ran = vec![(r.job.clone(), Update::Ran { seq, record: Box::new(r.clone()) })];
            if let Err(e) = self.state.apply(ran, self.ring_path()) {
                log::error!("cannot record the run of {}: {e}", r.job);
            }
        }
        // The daemon's own events are no job's, but a start or a reload writes the textfile,
        // so every job's series are there before its first run.
        if matches!(r.kind, RecordKind::Run | RecordKind::Sample | RecordKind::Daemon) && self.textfile.is_some() {
            let state = self.state.load(self.ring_path()).unwrap_or_default();
            self.write_textfile(&state, self.queues.as_ref(), &self.shown);
        }
    }

    /// Reads the state: the daemon's memory, or the files and the ring.
    pub fn read<T>(&self, f: impl FnOnce(&State) -> T) -> Result<T, StateError> {
        match &self.writer {
            Some(w) => Ok(f(&w.state.lock().unwrap_or_else(|e| e.into_inner()))),
            None => self.state.load(self.ring_path()).map(|s| f(&s)),
        }
    }

    /// Changes one job's state; true when something changed. In the daemon: in memory,
    /// written by the writer (coalesced); otherwise written before this returns.
    pub fn update(&self, job: &str, u: Update) -> Result<bool, StateError> {
        match &self.writer {
            Some(w) => {
                let changed = w.state.lock().unwrap_or_else(|e| e.into_inner()).update(job, u.clone());
                if changed {
                    w.send(Op::Update(job.to_string(), Box::new(u)));
                }
                Ok(changed)
            }
            None => self.state.apply(vec![(job.to_string(), u)], self.ring_path()).map(|a| a.changed[0]),
        }
    }

    /// Takes in what another process (`runner once`) wrote for `job`: called by a run that
    /// has just taken the job's lock. Nothing to do outside the daemon.
    pub async fn refresh(&self, job: &str) {
        if let Some(w) = &self.writer {
            let (tx, rx) = tokio::sync::oneshot::channel();
            w.send(Op::Refresh(job.to_string(), tx));
            let _ = rx.await;
        }
    }

    /// Waits until every record so far is in the ring and every state change in the job
    /// files (not fsynced): a run calls it before it lets go of the job's lock, so the next
    /// holder (`runner once`) reads it all.
    pub async fn flushed(&self) {
        if let Some(w) = &self.writer {
            let (tx, rx) = tokio::sync::oneshot::channel();
            w.send(Op::Flush(tx));
            let _ = rx.await;
        }
    }

    /// The writer thread gives back the pages of its stack below its idle frames, then the
    /// heap's free pages (the daemon settles: it will sleep a while); without a writer, this
    /// thread trims the heap.
    pub fn settle(&self) {
        match &self.writer {
            Some(w) => w.send(Op::Settle),
            None => crate::heap::trim(),
        }
    }

    /// The ring, journald, syslog and the daemon's log line; returns the ring's sequence number.
    /// A check's routine sample gets the (debug) log line only: its home is the live file.
    fn log_record(&self, r: &Record) -> Option<u64> {
        // Opened here, where appends happen (the daemon's writer thread), so the event loop
        // never waits on the ring's lock while the writer holds it through an fdatasync.
        // What opening found is recorded too: at once without a writer, just after this
        // record with one.
        self.open_ring();
        let mut journaled = false;
        let mut seq = None;
        if let Some(log) = self.log.as_ref().filter(|_| r.kind != RecordKind::Sample) {
            seq = log.append_to_ring(r);
            journaled = log.journal.record(r, seq.unwrap_or(0), log.settings.job_output_to_journal);
            if let Some(s) = &log.syslog {
                s.record(r, seq.unwrap_or(0));
            }
        }
        if !(journaled && self.log.as_ref().is_some_and(|l| l.stderr_is_journal)) {
            let line = r.summary();
            match (r.kind, r.outcome) {
                (RecordKind::Alert, _) => log::warn!("{line}"),
                // A check's every sample is routine; its alerts and resolves are the news.
                (RecordKind::Run | RecordKind::Sample, _) if r.job_kind == Kind::Check => log::debug!("{line}"),
                (_, Outcome::Success) => log::info!("{line}"),
                (_, Outcome::Skipped | Outcome::Stopped) => log::warn!("{line}"),
                _ => log::error!("{line}"),
            }
        }
        seq
    }

    /// A check's samples (recorded or not) go to a tmpfs file, not to the state on flash;
    /// the state changes only when its level does (the check kind's `Update::Check`).
    fn live(&self, r: &Record) {
        if matches!(r.kind, RecordKind::Run | RecordKind::Sample)
            && r.job_kind == Kind::Check
            && let Some(dir) = &self.runtime_dir
            && let Err(e) = live::write(dir, r)
        {
            log::error!("cannot write the live value of check {}: {e}", r.job);
        }
    }

    fn write_textfile(&self, state: &State, queues: Option<&textfile::QueueSource>, shown: &textfile::Shown) {
        let (Some(path), Some(dir)) = (&self.textfile, &self.runtime_dir) else { return };
        let mut text = textfile::render(state, &live::read_all(dir), shown);
        if let Some(q) = queues {
            text.push_str(&textfile::render_queues(&(q.0)(crate::time::epoch_ms(std::time::SystemTime::now()))));
        }
        if let Err(e) = textfile::write(path, &text) {
            log::error!("cannot write the textfile {}: {e}", path.display());
        }
    }

    /// Opens the run log if it is not open yet, and records what opening found in it
    /// (damaged records skipped, a damaged header moved aside) as daemon events. The daemon
    /// calls it at start, before its writer runs; any record's append opens it too.
    pub fn open_ring(&self) {
        let Some(log) = &self.log else { return };
        for event in log.open_ring() {
            self.emit(&event);
        }
    }
}

/// A daemon event about the run log.
fn ring_event(message: String) -> Record {
    Record::daemon(Outcome::Failure, message)
}

impl LogSinks {
    /// Opens the ring when it is not open; returns the events to record about what opening found.
    fn open_ring(&self) -> Vec<Record> {
        let mut slot = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return Vec::new();
        }
        let path = self.settings.ring.path.display();
        // Run ids never repeat while the state dir survives: a ring started anew (its header
        // damaged, the file cut or removed) goes on above what the job files hold.
        let floor = self.state.newest_ring_seq();
        let mut ring = match Ring::open_above(&self.settings.ring, floor) {
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
        if let Some((len, size)) = found.truncated {
            events.push(ring_event(format!(
                "run log {path} was cut to {len} of its {size} bytes: the records that were beyond lost; it was given its size back"
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
