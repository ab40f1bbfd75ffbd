//! The daemon's writer: one thread that does every write a record or a state change causes,
//! so the event loop only changes the state in memory and enqueues. In order, per batch of
//! what is queued: the ring append (and its fdatasync, with `fsync: always`), journald, the
//! log line, a check's live file; then typed changes are kept, coalesced, and written to
//! the job files' work copies in `runtime_dir` (a tmpfs, no fsync) when a run ends
//! ([`Op::Flush`]), after `COALESCE` otherwise; their copies in `state_dir` are brought up
//! to them at a job's first write, every `CHECKPOINT` and at a clean stop (with fsync);
//! the textfile is rendered once per batch with a run.
//! A blocking `flock` (ring, `state.lock`) or `fdatasync` runs here, never on the event loop.

use std::collections::BTreeSet;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Sinks;
use super::state::{State, Update};
use super::textfile::{QueueSource, Shown};
use crate::record::{Record, RecordKind};

/// How long a state change that no run end flushes may wait to be written (a long run's
/// fire, a skipped fire's time), so that several land in one write.
const COALESCE: Duration = Duration::from_secs(2);

/// How long a job file's copy in `state_dir` may lag its work copy in `runtime_dir`: what
/// a power cut can lose of what the ring cannot rebuild (a check's level, a queue's health
/// part). Each checkpoint costs the flash a rename per changed job (about 9 blocks with
/// ext4's journal commit), so it is kept rare: with a run every second, under 0.1 block a
/// run.
const CHECKPOINT: Duration = Duration::from_secs(300);

pub(super) enum Op {
    Record(Box<Record>),
    Update(String, Box<Update>),
    /// Re-read a job's file into memory (`runner once` may have changed it), then answer.
    Refresh(String, oneshot::Sender<()>),
    /// Write every pending change now (no fsync), then answer.
    Flush(oneshot::Sender<()>),
    /// Write and fsync every pending change, then end the thread.
    Stop,
    /// Give back the stack pages below the writer's idle frames: a start's or a run's
    /// writes (serialising, the textfile) went deeper than waiting for the next op does.
    Settle,
}

/// What the event loop and the writer share: the state in memory, the queues' source for
/// the textfile (set again on a reload) and the way in.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) queues: Mutex<Option<QueueSource>>,
    pub(super) shown: Mutex<Arc<Shown>>,
    pub(super) tx: Mutex<Sender<Op>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl Shared {
    pub(super) fn send(&self, op: Op) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        if tx.send(op).is_err() {
            log::error!("the state writer has stopped; a record or state change is lost");
        }
    }
}

/// The running writer thread; [`close`](Writer::close) flushes, fsyncs and joins it.
pub struct Writer {
    thread: Option<std::thread::JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Writer {
    pub(super) fn spawn(sinks: Sinks, state: State) -> std::io::Result<(Writer, Arc<Shared>)> {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            queues: Mutex::new(sinks.queues.clone()),
            shown: Mutex::new(sinks.shown.clone()),
            tx: Mutex::new(tx),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("runner-writer".into())
            .stack_size(256 * 1024)
            .spawn(move || run(&sinks, &s, &rx))?;
        Ok((Writer { thread: Some(thread), shared: shared.clone() }, shared))
    }

    /// Writes what is pending, fsyncs the job files written since start, and ends the thread.
    pub fn close(mut self) {
        self.shared.send(Op::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Pending {
    /// Typed changes not yet in the job files, in order.
    changes: Vec<(String, Update)>,
    since: Option<Instant>,
    /// Job files written since start, for the fsync at a clean stop.
    written: BTreeSet<String>,
    /// Jobs whose work copy is newer than their copy in `state_dir`, and since when.
    unsaved: BTreeSet<String>,
    unsaved_since: Option<Instant>,
}

impl Pending {
    /// How long the writer may sleep before a coalesced write or a checkpoint is due; none
    /// when neither waits.
    fn wait(&self) -> Option<Duration> {
        let coalesce = self.since.map(|t| COALESCE.saturating_sub(t.elapsed()));
        let checkpoint = self.unsaved_since.map(|t| CHECKPOINT.saturating_sub(t.elapsed()));
        match (coalesce, checkpoint) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn run(sinks: &Sinks, shared: &Shared, rx: &Receiver<Op>) {
    let mut p = Pending {
        changes: Vec::new(),
        since: None,
        written: BTreeSet::new(),
        unsaved: BTreeSet::new(),
        unsaved_since: None,
    };
    loop {
        let first = match p.wait() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(d) => rx.recv_timeout(d),
        };
        let op = match first {
            Ok(op) => op,
            Err(RecvTimeoutError::Timeout) => {
                if p.since.is_some_and(|t| t.elapsed() >= COALESCE) {
                    flush(sinks, &mut p);
                }
                if p.unsaved_since.is_some_and(|t| t.elapsed() >= CHECKPOINT) {
                    checkpoint(sinks, &mut p);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => Op::Stop,
        };
        let Batch { answer, textfile, stop, settle } = take_batch(sinks, shared, &mut p, rx, op);
        if !answer.is_empty() || stop {
            flush(sinks, &mut p);
        }
        if textfile {
            export(sinks, shared);
        }
        for tx in answer {
            let _ = tx.send(());
        }
        if settle {
            crate::heap::trim();
        }
        if stop {
            if let Err(e) = sinks.state.checkpoint(&p.written, true) {
                log::error!("cannot sync the state at stop: {e}");
            }
            return;
        }
    }
}

/// What one wake-up of the writer was asked to do.
struct Batch {
    answer: Vec<oneshot::Sender<()>>,
    textfile: bool,
    stop: bool,
    settle: bool,
}

/// Takes `op` and every op queued behind it. Out of line, as are [`flush`], [`refresh`] and
/// [`export`]: the records' and state's work has deep frames, and inlined into [`run`] they
/// would stay on the idle thread's stack, which settling cannot give back (16 KiB of private
/// memory at idle, against 4 in a frame of its own).
#[inline(never)]
fn take_batch(sinks: &Sinks, shared: &Shared, p: &mut Pending, rx: &Receiver<Op>, op: Op) -> Batch {
    let mut b = Batch { answer: Vec::new(), textfile: false, stop: false, settle: false };
    let mut next = Some(op);
    while let Some(op) = next.take() {
        match op {
            Op::Record(r) => {
                let seq = sinks.log_record(&r);
                sinks.live(&r);
                b.textfile |= matches!(r.kind, RecordKind::Run | RecordKind::Sample | RecordKind::Daemon);
                if State::changed_by(&r) {
                    p.changes.push((r.job.clone(), Update::Ran { seq, record: r }));
                    p.since.get_or_insert_with(Instant::now);
                }
            }
            Op::Update(job, u) => {
                p.changes.push((job, *u));
                p.since.get_or_insert_with(Instant::now);
            }
            Op::Refresh(job, tx) => {
                refresh(sinks, shared, p, &job);
                let _ = tx.send(());
            }
            Op::Flush(tx) => b.answer.push(tx),
            Op::Stop => b.stop = true,
            Op::Settle => b.settle = true,
        }
        next = rx.try_recv().ok();
    }
    b
}

/// The textfile export of what the state now holds.
#[inline(never)]
fn export(sinks: &Sinks, shared: &Shared) {
    let queues = shared.queues.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let shown = shared.shown.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    sinks.write_textfile(&state, queues.as_ref(), &shown);
}

#[inline(never)]
fn flush(sinks: &Sinks, p: &mut Pending) {
    p.since = None;
    if p.changes.is_empty() {
        return;
    }
    let changes = std::mem::take(&mut p.changes);
    let jobs: BTreeSet<String> = changes.iter().map(|(j, _)| j.clone()).collect();
    if let Err(e) = sinks.state.apply(changes, None) {
        log::error!("cannot write the state of {}: {e}", jobs.into_iter().collect::<Vec<_>>().join(", "));
        return;
    }
    // A job with no copy in state_dir yet (its first run, or the directory was removed) gets
    // one now, so what the ring cannot rebuild never waits a whole CHECKPOINT for its first
    // copy; the others wait for the next checkpoint.
    let first: Vec<String> = jobs.iter().filter(|j| sinks.state.missing_in_state_dir(j)).cloned().collect();
    if !first.is_empty()
        && let Err(e) = sinks.state.checkpoint(&first, false)
    {
        log::error!("cannot copy the state to the state directory: {e}");
    }
    for job in jobs {
        if !first.contains(&job) {
            p.unsaved.insert(job.clone());
        }
        p.written.insert(job);
    }
    if !p.unsaved.is_empty() {
        p.unsaved_since.get_or_insert_with(Instant::now);
    }
}

/// Brings the copies in `state_dir` up to the work copies (no fsync): at most every
/// `CHECKPOINT`.
#[inline(never)]
fn checkpoint(sinks: &Sinks, p: &mut Pending) {
    p.unsaved_since = None;
    let jobs = std::mem::take(&mut p.unsaved);
    if let Err(e) = sinks.state.checkpoint(&jobs, false) {
        log::error!("cannot copy the state to the state directory: {e}");
    }
}

/// The job as its file holds it (with what `runner once` wrote) plus the changes not yet
/// written, into memory. The fire time the loop may have set meanwhile is kept.
#[inline(never)]
fn refresh(sinks: &Sinks, shared: &Shared, p: &Pending, job: &str) {
    let on_disk = match sinks.state.read_job(job) {
        Ok(js) => js,
        Err(e) => {
            log::error!("{e}");
            return;
        }
    };
    let mut merged = State::default();
    if let Some(js) = on_disk {
        merged.jobs.insert(job.to_string(), js);
    }
    for (j, u) in p.changes.iter().filter(|(j, _)| j == job) {
        merged.update(j, u.clone());
    }
    let Some(mut js) = merged.jobs.remove(job) else { return };
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(mem) = state.jobs.get(job)
        && mem.last_fire_ms > js.last_fire_ms
    {
        js.last_fire_ms = mem.last_fire_ms;
        js.next_due_ms = mem.next_due_ms;
    }
    state.jobs.insert(job.to_string(), js);
}
