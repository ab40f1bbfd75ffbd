//! The `queue_flush` kind: one attempt drains up to `max_items` due items of a spool through
//! the handler, one supervised process per item (the same `process::run` as command jobs).
//!
//! Per run, with the spool's lock held (one flusher per spool, daemon and `once` alike):
//! items a crash left in `cur/` go back to `new/`; foreign entries in `new/` are parked in
//! `failed/` with the reason; the due items, oldest first, are claimed into `cur/` and handed
//! to the handler one at a time; each ends in `done/`, back in `new/` with its next attempt
//! time, or in `failed/` after its last attempt. Then retention, the history, and the
//! queue's health part of the job state.
//!
//! At-least-once: an item leaves `cur/` only after its handler finished, so a crash between
//! the handler's success and the rename hands it to the handler again. It must not retry
//! the flush itself (that is `jobs::execute`) nor touch the spool layout outside `spool.rs`.

pub mod config;
pub mod spool;

use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::Services;
use crate::lock::Try;
use crate::process::{self, CommandLine, Status};
use crate::record::{Kind, Outcome, Record, RecordKind, Trigger};
use crate::state::{HealthLevel, HealthPart, Update};
use crate::time::epoch_ms;
pub use config::QueueFlush;
use spool::{Dir, Item, Spool};

/// What one flush did, for the record and the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub done: u32,
    pub retried: u32,
    pub failed: u32,
    pub rejected: u32,
    pub recovered: u32,
    pub removed: u32,
}

/// The queue's health from its score: HEALTHY >= 80, DEGRADED 50-79, UNHEALTHY < 50.
pub fn level(score: u32) -> HealthLevel {
    match score {
        80.. => HealthLevel::Healthy,
        50..=79 => HealthLevel::Degraded,
        _ => HealthLevel::Unhealthy,
    }
}

pub fn level_word(l: HealthLevel) -> &'static str {
    match l {
        HealthLevel::Healthy => "HEALTHY",
        HealthLevel::Degraded => "DEGRADED",
        HealthLevel::Unhealthy => "UNHEALTHY",
        HealthLevel::Critical => "CRITICAL",
    }
}

/// A queue's statistics and score at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    pub counts: spool::Counts,
    pub score: u32,
    /// Items finished within the health window (the score's inputs).
    pub done: u64,
    pub failed: u64,
}

/// Reads a queue's statistics from the spool as it is now: the state directories' listings
/// (names only, no item opened) and the `.stats` history (one line per minute of the health
/// window at most). Writes nothing, so callers may run it as often as they like without
/// wearing flash; the score is the one the flusher stores as the queue's health part.
pub fn stats(spool_dir: &std::path::Path, window: Duration, now_ms: i64) -> std::io::Result<Stats> {
    let sp = Spool::new(spool_dir);
    let counts = sp.counts()?;
    let (done, failed) = sp.load_history().within(now_ms, window);
    Ok(Stats { counts, score: spool::score(done, failed), done, failed })
}

/// Statistics and health of a queue, as `runner queue` and `runner status` show them.
pub fn report(q: &QueueFlush) -> Result<serde_json::Value, String> {
    let now = epoch_ms(SystemTime::now());
    let Stats { counts, score, done, failed } = stats(&q.spool, q.health_window, now)
        .map_err(|e| format!("cannot read the spool {}: {e}", q.spool.display()))?;
    Ok(serde_json::json!({
        "spool": q.spool,
        "total": counts.total,
        "pending": counts.pending,
        "retrying": counts.retrying,
        "in_flight": counts.in_flight,
        "failed": counts.failed,
        "completed": counts.completed,
        "health": {
            "score": score,
            "level": level_word(level(score)),
            "window_s": q.health_window.as_secs(),
            "done_in_window": done,
            "failed_in_window": failed,
        },
    }))
}

/// The job's `queue_flush:` block resolved, with its key; `None` without one.
pub fn from_blocks(
    job: &str,
    block: Option<Box<config::Block>>,
    _: &super::Given<'_>,
) -> Option<(&'static str, Result<QueueFlush, Vec<super::Problem>>)> {
    Some(("queue_flush", config::resolve(job, *block?)))
}

pub async fn attempt(svc: &dyn Services, q: &QueueFlush, stop: watch::Receiver<bool>) -> Record {
    let started_at = SystemTime::now();
    let t0 = tokio::time::Instant::now();
    let mut r = Record::skipped(svc.job(), Kind::QueueFlush, Trigger::Schedule, String::new());
    r.kind = RecordKind::Run;
    r.started_at = started_at;
    let result = flush(svc, q, stop).await;
    r.duration = t0.elapsed();
    match result {
        Ok(Flushed::Busy(msg)) => {
            r.kind = RecordKind::Skip;
            r.message = msg;
        }
        Ok(Flushed::Ran { tally, spawn_failed, stopped }) => {
            r.message = format!(
                "{} done, {} retried, {} failed{}{}",
                tally.done,
                tally.retried,
                tally.failed,
                if tally.rejected > 0 { format!(", {} rejected (not items)", tally.rejected) } else { String::new() },
                if tally.recovered > 0 {
                    format!(", {} recovered from an interrupted flush", tally.recovered)
                } else {
                    String::new()
                },
            );
            r.outcome = if let Some((code, msg)) = spawn_failed {
                r.exit_code = Some(code);
                r.message = format!("{}; handler cannot start: {msg}", r.message);
                Outcome::SpawnFailed
            } else if stopped {
                Outcome::Stopped
            } else if tally.failed + tally.rejected > 0 {
                // A dead letter is what an operator must hear about (on_failure, failures).
                Outcome::Failure
            } else {
                Outcome::Success
            };
        }
        Err(e) => {
            r.outcome = Outcome::Failure;
            r.message = e;
        }
    }
    r
}

enum Flushed {
    /// Another flusher holds the spool.
    Busy(String),
    Ran {
        tally: Tally,
        /// The handler could not be started: (exit code as a shell reports it, message).
        spawn_failed: Option<(i32, String)>,
        stopped: bool,
    },
}

async fn flush(svc: &dyn Services, q: &QueueFlush, mut stop: watch::Receiver<bool>) -> Result<Flushed, String> {
    let mut sp = Spool::new(&q.spool);
    let io = |what: &str, e: std::io::Error| format!("spool {}: {what}: {e}", q.spool.display());
    sp.ensure(svc.run_as().map(|u| u.gid)).map_err(|e| io("cannot create it", e))?;
    let _lock = match sp.try_lock(svc.by()).map_err(|e| io("cannot take its lock", e))? {
        Try::Acquired(h) => h,
        Try::Busy(h) => {
            let who = h.map(|h| format!(" ({} pid {})", h.by, h.pid)).unwrap_or_default();
            return Ok(Flushed::Busy(format!("spool {} is being flushed by another flusher{who}", q.spool.display())));
        }
    };
    let mut tally =
        Tally { recovered: sp.recover().map_err(|e| io("cannot recover cur/", e))? as u32, ..Tally::default() };
    let claimed = claim(svc, q, &sp, &mut tally)?;
    let mut history = sp.load_history();
    let mut spawn_failed = None;
    let mut stopped = false;
    let mut left = claimed.iter();
    for item in left.by_ref() {
        if *stop.borrow_and_update() {
            stopped = true;
            sp.rename(Dir::Cur, item, Dir::New, item).map_err(|e| io("cannot return an item", e))?;
            break;
        }
        // Opening is not reading: it catches an item the handler could never read (or a link
        // or fifo swapped in since the listing), without spending the item's attempts on it.
        if let Err(e) = sp.open_item(Dir::Cur, item) {
            let reason = format!("cannot open it: {e}");
            match sp.reject(Dir::Cur, &item.file_name(), &reason, epoch_ms(SystemTime::now())) {
                Ok(to) => {
                    log::warn!("job {}: item {} moved to failed/{}: {reason}", svc.job(), item.base, to.file_name())
                }
                Err(e) => log::error!("job {}: cannot move item {} to failed/: {e}", svc.job(), item.base),
            }
            tally.rejected += 1;
            continue;
        }
        let f = handle(svc, q, &sp, item, stop.clone()).await;
        let end = epoch_ms(SystemTime::now());
        let attempts = item.attempts + 1;
        match f.status {
            Status::Exited(0) => {
                sp.change(Dir::Cur, item, Dir::Done, &item.with(attempts, end)).map_err(|e| io("cannot finish", e))?;
                history.add(end, true);
                tally.done += 1;
            }
            Status::SpawnFailed { kind, message } => {
                // Not the item's fault: it goes back as it was, and so does the rest.
                sp.rename(Dir::Cur, item, Dir::New, item).map_err(|e| io("cannot return an item", e))?;
                spawn_failed = Some((kind.exit_code(), message));
                break;
            }
            Status::Stopped { .. } => {
                sp.rename(Dir::Cur, item, Dir::New, item).map_err(|e| io("cannot return an item", e))?;
                stopped = true;
                break;
            }
            status => {
                let what = describe(&status, q.item_timeout);
                if attempts >= q.item_retries.attempts {
                    park(svc, q, &sp, item, [&f.stdout_tail, &f.stderr_tail], &what, end)?;
                    history.add(end, false);
                    tally.failed += 1;
                } else {
                    requeue(svc, q, &sp, item, &what, end)?;
                    tally.retried += 1;
                }
            }
        }
        // Kept without fsync per item: survives the daemon being killed; synced at the end.
        if let Err(e) = sp.save_history(&mut history, end, q.health_window, false) {
            log::warn!("job {}: cannot write the queue history: {e}", svc.job());
        }
    }
    // Whatever was claimed but not handled (stop, spawn failure) goes back untouched.
    let mut returned = false;
    for item in left {
        sp.rename(Dir::Cur, item, Dir::New, item).map_err(|e| io("cannot return an item", e))?;
        returned = true;
    }
    if returned || stopped || spawn_failed.is_some() {
        sp.sync(Dir::New).map_err(|e| io("cannot sync new/", e))?;
        sp.sync(Dir::Cur).map_err(|e| io("cannot sync cur/", e))?;
    }

    let now = epoch_ms(SystemTime::now());
    for (d, keep) in [(Dir::Done, q.keep_done), (Dir::Failed, q.keep_failed)] {
        match sp.retain(d, keep, now) {
            Ok(n) => tally.removed += n as u32,
            Err(e) => log::warn!("job {}: retention of {}/: {e}", svc.job(), d.as_str()),
        }
    }
    if let Err(e) = sp.save_history(&mut history, now, q.health_window, true) {
        log::warn!("job {}: cannot write the queue history: {e}", svc.job());
    }
    store_health(svc, q, &history, now);
    Ok(Flushed::Ran { tally, spawn_failed, stopped })
}

/// Parks the items of `new/` that are no items (foreign names) in `failed/`, then claims up
/// to `max_items` due items: renames into `cur/`, then one sync of each directory.
fn claim(svc: &dyn Services, q: &QueueFlush, sp: &Spool, tally: &mut Tally) -> Result<Vec<Item>, String> {
    let io = |what: &str, e: std::io::Error| format!("spool {}: {what}: {e}", q.spool.display());
    let now = epoch_ms(SystemTime::now());
    let mut foreign = Vec::new();
    let items = sp.due(now, q.max_items, &mut foreign).map_err(|e| io("cannot list new/", e))?;
    for (name, reason) in &foreign {
        match sp.reject(Dir::New, name, reason, now) {
            Ok(item) => {
                log::warn!("job {}: new/{name} moved to failed/{}: {reason}", svc.job(), item.file_name());
                tally.rejected += 1;
            }
            Err(e) => log::error!("job {}: cannot move new/{name} to failed/: {e}", svc.job()),
        }
    }
    let mut claimed = Vec::with_capacity(items.len());
    for item in items {
        match sp.rename(Dir::New, &item, Dir::Cur, &item) {
            Ok(()) => claimed.push(item),
            // Gone since the listing (removed by hand): nothing to do.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("cannot claim an item", e)),
        }
    }
    if !claimed.is_empty() {
        sp.sync(Dir::Cur).map_err(|e| io("cannot sync cur/", e))?;
        sp.sync(Dir::New).map_err(|e| io("cannot sync new/", e))?;
    }
    Ok(claimed)
}

/// An item whose last attempt failed: a dead letter in `failed/`, with why beside it.
fn park(
    svc: &dyn Services,
    q: &QueueFlush,
    sp: &Spool,
    item: &Item,
    // The handler's output tails: stdout, stderr.
    tails: [&[u8]; 2],
    what: &str,
    end: i64,
) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("spool {}: {what}: {e}", q.spool.display());
    let attempts = item.attempts + 1;
    let done = item.with(attempts, end);
    let mut why = format!("attempt {attempts} of {}: handler {what}\n", q.item_retries.attempts);
    for tail in tails {
        why.push_str(&String::from_utf8_lossy(tail));
    }
    sp.write_why(&done, &why).map_err(|e| io("cannot write the reason", e))?;
    sp.change(Dir::Cur, item, Dir::Failed, &done).map_err(|e| io("cannot park a dead letter", e))?;
    log::warn!("job {}: item {} failed for good ({what}); parked in failed/", svc.job(), item.base);
    Ok(())
}

/// An item with attempts left: back to `new/`, due after its backoff.
fn requeue(svc: &dyn Services, q: &QueueFlush, sp: &Spool, item: &Item, what: &str, end: i64) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("spool {}: {what}: {e}", q.spool.display());
    let attempts = item.attempts + 1;
    let delay = crate::retry::backoff(q.item_retries.backoff, q.item_retries.max_backoff, attempts);
    let next = item.with(attempts, end + delay.as_millis() as i64);
    sp.change(Dir::Cur, item, Dir::New, &next).map_err(|e| io("cannot requeue", e))?;
    log::info!(
        "job {}: item {} attempt {attempts} of {}: handler {what}; next in {} ms",
        svc.job(),
        item.base,
        q.item_retries.attempts,
        delay.as_millis()
    );
    Ok(())
}

impl super::KindImpl for QueueFlush {
    fn tag(&self) -> Kind {
        Kind::QueueFlush
    }

    fn queue(&self) -> Option<&QueueFlush> {
        Some(self)
    }

    fn default_every(&self) -> Option<Duration> {
        Some(QueueFlush::DEFAULT_EVERY)
    }

    // `timeout:` bounds the whole flush; `item_timeout:` each handler.
    fn timeout_bounds_whole_run(&self) -> bool {
        true
    }

    // A queue's score is its own part, written by its flushes.
    fn health_rule(&self) -> super::HealthRule {
        super::HealthRule::OwnPart
    }

    fn dry_run(&self, who: &str) -> super::DryRun<'_> {
        super::DryRun::Lines { lines: dry_run_lines(self, who), ok: true }
    }

    fn status_report(&self) -> Option<serde_json::Value> {
        Some(report(self).unwrap_or_else(|e| serde_json::json!({"spool": self.spool, "error": e})))
    }

    fn warnings(&self, uid: u32) -> Vec<String> {
        spool::warnings(&self.spool, uid)
    }
}

/// `runner once --dry-run` of a flush, after the job's line; `who`: whom it runs as.
pub fn dry_run_lines(q: &QueueFlush, who: &str) -> Vec<String> {
    vec![
        format!("spool:    {}", q.spool.display()),
        format!(
            "would run: {} ITEM for up to {} due item(s)",
            super::describe_command(&CommandLine::Argv(q.handler.clone())),
            q.max_items
        ),
        format!("as:       {who}"),
        format!("item_timeout: {}", crate::time::format(q.item_timeout)),
        format!("item attempts: {}", q.item_retries.attempts),
        "dry run: nothing was started".into(),
    ]
}

/// One handler run for one item, its process group recorded in the state while it runs so
/// a restarted daemon can end it (as for command jobs).
async fn handle(
    svc: &dyn Services,
    q: &QueueFlush,
    sp: &Spool,
    item: &Item,
    stop: watch::Receiver<bool>,
) -> process::Finished {
    let path = sp.path(Dir::Cur, item);
    let mut argv = q.handler.clone();
    argv.push(path.to_string_lossy().into_owned());
    let command = CommandLine::Argv(argv);
    let env = svc.env(&[("RUNNER_ITEM", item.base.clone()), ("RUNNER_ITEM_ATTEMPT", (item.attempts + 1).to_string())]);
    let spec = svc.process(&command, &env, Some(q.item_timeout), svc.echo());
    let f = process::run(&spec, svc.started(), stop).await;
    if let Some(pid) = f.pid {
        let _ = svc.update(Update::GroupEnded(pid));
    }
    f
}

fn describe(s: &Status, timeout: Duration) -> String {
    match s {
        Status::Exited(c) => format!("exited {c}"),
        Status::Signaled(sig) => format!("was killed by signal {sig}"),
        Status::TimedOut { .. } => format!("timed out after {}", crate::time::format(timeout)),
        Status::Stopped { .. } => "was stopped".into(),
        Status::SpawnFailed { message, .. } => format!("cannot start: {message}"),
    }
}

/// The queue's health part from its finished-items history: the score, its level and what
/// it is made of. `since_ms` is `now`; a caller that keeps a part keeps its `since_ms` while
/// the level holds.
pub fn health_part(q: &QueueFlush, history: &spool::History, now: i64) -> HealthPart {
    let (done, failed) = history.within(now, q.health_window);
    let score = spool::score(done, failed);
    let window = crate::time::format(q.health_window);
    HealthPart {
        level: level(score),
        status: score.to_string(),
        value: Some(f64::from(score)),
        detail: format!("queue score {score} ({done} done, {failed} failed in {window})"),
        since_ms: now,
    }
}

/// The queue's health part as it is now, read from the spool (nothing written): what
/// `status` and `health` show, since the state keeps the part only as of its last level change.
pub fn current_health(q: &QueueFlush, now: i64) -> HealthPart {
    health_part(q, &Spool::new(&q.spool).load_history(), now)
}

/// Writes the queue's level into the job's health part when it changes, so the overall
/// health (`runner status`, `runner health`) sees it without reading the spool.
fn store_health(svc: &dyn Services, q: &QueueFlush, history: &spool::History, now: i64) {
    let part = health_part(q, history, now);
    let (lvl, score) = (part.level, part.status.clone());
    match svc.update(Update::Health(part)) {
        Ok(true) => log::info!("job {}: queue health is now {} (score {score})", svc.job(), level_word(lvl)),
        Ok(false) => {}
        Err(e) => log::error!("job {}: cannot store the queue health: {e}", svc.job()),
    }
}
