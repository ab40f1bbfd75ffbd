//! The daemon: decides when each job fires and keeps at most the allowed runs going.
//!
//! Two layers. [`Timetable`] is pure: given the plan, the persisted state and the time (both
//! clocks passed in), it says when each job is next due and what a wake-up should fire; tests
//! drive it with exact times. [`run`] is the async shell around it: one timer for the earliest
//! due job, signals, reloads, sd_notify, and the tasks that run jobs. It sleeps until the next
//! due instant and does not poll.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::signals::{self, Sig};
use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{self, CatchUp, Job, JobName, Overlap, Overrides, Plan, Schedule};
use crate::host::{boot_id, build_time, machine_id};
use crate::jobs::{self, Ctx, Request};
use crate::lock::{self, Try};
use crate::record::{Kind, Outcome, Record, RecordKind, Trigger};
use crate::sd_notify::{self, Notifier};
use crate::sinks::Sinks;
use crate::sinks::running;
use crate::sinks::state::{State, Update};
use crate::state::Running;

/// When a job is next due. Cron and `@reboot` fires are wall-clock instants; `every:` fires
/// follow the monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    Wall(Timestamp),
    Mono(Instant),
    /// A calendar job waiting for the wall clock to pass the build time.
    Held,
    Never,
}

/// One fire decided by the timetable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fire {
    /// Index of the job in the timetable ([`Timetable::job`]).
    pub job: usize,
    pub trigger: Trigger,
    /// The instant this fire stands for, recorded as the job's last fire.
    pub at: Timestamp,
}
/// A fixed per-host, per-job delay in `[0, jitter)`, like systemd's FixedRandomDelay: the
/// same box always fires a job at the same offset, and a fleet spreads out.
pub fn jitter_offset(machine_id: &str, job: &str, jitter: Duration) -> Duration {
    let ms = jitter.as_millis() as u64;
    if ms == 0 {
        return Duration::ZERO;
    }
    // FNV-1a: stable across Rust releases, unlike std's hasher, so offsets survive upgrades.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in machine_id.bytes().chain([b'/']).chain(job.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    Duration::from_millis(h % ms)
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX)).unwrap_or(t)
}

/// The next cron fire strictly after `after` (jitter included), in the job's zone.
fn next_cron(job: &Job, expr: &crate::schedule::CronExpr, after: Timestamp, machine: &str) -> Due {
    let jitter = jitter_offset(machine, job.name.as_str(), job.jitter);
    // Fires are computed without jitter, so subtract it to find where "after" stands.
    let base = after.checked_sub(jiff::SignedDuration::try_from(jitter).unwrap_or_default()).unwrap_or(after);
    match expr.next_after(&base.to_zoned(job.zone.tz.clone())) {
        Some(z) => Due::Wall(add(z.timestamp(), jitter)),
        None => Due::Never,
    }
}

struct Planned {
    job: Arc<Job>,
    due: Due,
    /// Bumped whenever `due` changes; heap items with an older generation are stale.
    generation: u64,
}

/// The pure core: each job's next due time, and what to do at a wake-up.
///
/// Two min-heaps, one per clock, so the earliest due job is found in O(log n) however many
/// jobs there are; an entry that is re-planned leaves a stale heap item behind, recognised
/// by its generation and dropped when it reaches the top.
pub struct Timetable {
    pub machine_id: String,
    pub boot_id: String,
    /// Calendar jobs are held while the wall clock is before this.
    pub hold_until: Timestamp,
    entries: Vec<Planned>,
    by_name: BTreeMap<JobName, usize>,
    wall: BinaryHeap<Reverse<(Timestamp, u64, usize)>>,
    mono: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    generation: u64,
}

impl Timetable {
    pub fn new(machine_id: String, boot_id: String) -> Timetable {
        Timetable {
            machine_id,
            boot_id,
            hold_until: Timestamp::UNIX_EPOCH,
            entries: Vec::new(),
            by_name: BTreeMap::new(),
            wall: BinaryHeap::new(),
            mono: BinaryHeap::new(),
            generation: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn job(&self, idx: usize) -> &Arc<Job> {
        &self.entries[idx].job
    }

    pub fn due(&self, idx: usize) -> Due {
        self.entries[idx].due
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    fn set_due(&mut self, idx: usize, due: Due) {
        self.generation += 1;
        let g = self.generation;
        let e = &mut self.entries[idx];
        e.due = due;
        e.generation = g;
        match due {
            Due::Wall(t) => self.wall.push(Reverse((t, g, idx))),
            Due::Mono(t) => self.mono.push(Reverse((t, g, idx))),
            Due::Held | Due::Never => {}
        }
    }

    fn insert(&mut self, job: Arc<Job>, due: Due) -> usize {
        let idx = self.entries.len();
        self.by_name.insert(job.name.clone(), idx);
        self.entries.push(Planned { job, due: Due::Never, generation: 0 });
        self.set_due(idx, due);
        idx
    }

    /// Keeps a job with the due time it already had (an unchanged job across a reload).
    pub fn keep(&mut self, job: Arc<Job>, due: Due) {
        self.insert(job, due);
    }

    /// Plans a job at daemon start (or when a reload adds or changes it). Returns a fire to
    /// do now, for `@reboot`, an overdue `every:` or a `catch_up: once` job.
    pub fn plan_job(&mut self, job: Arc<Job>, state: &State, now: Timestamp, mono: Instant) -> Option<Fire> {
        let js = state.job(job.name.as_str());
        let last_fire = js
            .and_then(|j| j.last_fire_ms.or(j.last_start_ms))
            .map(|ms| Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH));
        let mut fire = None;
        let due = if !job.enabled {
            Due::Never
        } else {
            match &job.schedule {
                Schedule::Reboot => {
                    if js.and_then(|j| j.reboot_boot_id.as_deref()) != Some(self.boot_id.as_str()) {
                        fire = Some((Trigger::Reboot, now));
                    }
                    Due::Never
                }
                Schedule::Every(every) => {
                    // The phase survives restarts: the first fire is `every` after the last one.
                    let wait = match last_fire {
                        Some(last) => {
                            let left = now.duration_until(add(last, *every));
                            if left.is_negative() { Duration::ZERO } else { left.unsigned_abs() }
                        }
                        None => *every,
                    };
                    Due::Mono(mono + wait)
                }
                Schedule::Cron(_) if now < self.hold_until => Due::Held,
                Schedule::Cron(expr) => {
                    if job.catch_up == CatchUp::Once
                        && let Some(last) = last_fire
                        && let Due::Wall(missed) = next_cron(&job, expr, last, &self.machine_id)
                        && missed <= now
                    {
                        // Covers every missed slot up to now, so a restart does not catch up again.
                        fire = Some((Trigger::CatchUp, now));
                    }
                    next_cron(&job, expr, now, &self.machine_id)
                }
            }
        };
        let idx = self.insert(job, due);
        fire.map(|(trigger, at)| Fire { job: idx, trigger, at })
    }

    /// Everything due at this wake-up, appended to `out`, with each job moved on to its
    /// next due time. A wall clock that jumped far ahead fires each job once, not once per
    /// missed slot. Allocation-free once `out` has grown to the largest burst.
    pub fn take_due(&mut self, now: Timestamp, mono: Instant, out: &mut Vec<Fire>) {
        while let Some(&Reverse((t, g, idx))) = self.wall.peek() {
            if self.entries[idx].generation != g {
                self.wall.pop();
                continue;
            }
            if t > now {
                break;
            }
            self.wall.pop();
            out.push(Fire { job: idx, trigger: Trigger::Schedule, at: t });
            let job = self.entries[idx].job.clone();
            let Schedule::Cron(expr) = &job.schedule else { unreachable!("only cron jobs have wall dues") };
            let next = next_cron(&job, expr, now.max(t), &self.machine_id);
            self.set_due(idx, next);
        }
        while let Some(&Reverse((t, g, idx))) = self.mono.peek() {
            if self.entries[idx].generation != g {
                self.mono.pop();
                continue;
            }
            if t > mono {
                break;
            }
            self.mono.pop();
            out.push(Fire { job: idx, trigger: Trigger::Schedule, at: now });
            let Schedule::Every(every) = self.entries[idx].job.schedule else {
                unreachable!("only interval jobs have mono dues")
            };
            // Anchored on the due instant, so the phase does not drift by wake-up lag; but
            // never in the past, so a stalled box does not fire a burst.
            let mut next = t + every;
            if next <= mono {
                next = mono + every;
            }
            self.set_due(idx, Due::Mono(next));
        }
    }

    /// Re-plans every cron job from a new wall time, after the clock was set: no burst of
    /// missed fires, no stall; a job with `catch_up: once` whose fire was jumped over runs
    /// once (appended to `out`).
    pub fn replan_wall(&mut self, now: Timestamp, out: &mut Vec<Fire>) {
        self.wall.clear();
        for idx in 0..self.entries.len() {
            let job = self.entries[idx].job.clone();
            let Schedule::Cron(expr) = &job.schedule else { continue };
            match self.entries[idx].due {
                Due::Wall(_) | Due::Held if now < self.hold_until => self.set_due(idx, Due::Held),
                Due::Wall(due) => {
                    if due <= now && job.catch_up == CatchUp::Once {
                        out.push(Fire { job: idx, trigger: Trigger::CatchUp, at: now });
                    }
                    let next = next_cron(&job, expr, now, &self.machine_id);
                    self.set_due(idx, next);
                }
                Due::Held => {
                    let next = next_cron(&job, expr, now, &self.machine_id);
                    self.set_due(idx, next);
                }
                Due::Mono(_) | Due::Never => {}
            }
        }
    }

    /// How long to sleep until the earliest due job, seen from `now`/`mono`.
    pub fn sleep_for(&mut self, now: Timestamp, mono: Instant) -> Option<Duration> {
        while let Some(&Reverse((_, g, idx))) = self.wall.peek() {
            if self.entries[idx].generation == g {
                break;
            }
            self.wall.pop();
        }
        while let Some(&Reverse((_, g, idx))) = self.mono.peek() {
            if self.entries[idx].generation == g {
                break;
            }
            self.mono.pop();
        }
        let wall = self.wall.peek().map(|Reverse((t, _, _))| {
            let left = now.duration_until(*t);
            if left.is_negative() { Duration::ZERO } else { left.unsigned_abs() }
        });
        let mono = self.mono.peek().map(|Reverse((t, _, _))| t.saturating_duration_since(mono));
        match (wall, mono) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The due time of a job as an epoch-ms value for the state file.
fn due_ms(due: Due, now: Timestamp, mono: Instant) -> Option<i64> {
    match due {
        Due::Wall(t) => Some(t.as_millisecond()),
        Due::Mono(t) => Some(add(now, t.saturating_duration_since(mono)).as_millisecond()),
        Due::Held | Due::Never => None,
    }
}

struct Slot {
    stop: watch::Sender<bool>,
    /// A fire waits for this run to end (overlap: queue or replace).
    queued: Option<Trigger>,
}

/// A due run waiting for its job's `when:` conditions (`jobs::conditions::wait`, in a task
/// of its own). It holds no slot under `max_parallel` and no job lock, so it blocks nothing.
struct Waiter {
    /// Tells the messages of a replaced wait from those of the one that replaced it.
    id: u64,
    job: Arc<Job>,
    trigger: Trigger,
    /// Some(why) ends the wait; the task records the skip with the reason.
    stop: watch::Sender<Option<String>>,
    /// A fire that came meanwhile, kept under `overlap: queue`.
    queued: Option<Trigger>,
}

struct Daemon {
    plan: Arc<Plan>,
    config_path: PathBuf,
    overrides: Overrides,
    ctx: Ctx,
    table: Timetable,
    running: BTreeMap<String, Slot>,
    /// Fires waiting for a free slot under `max_parallel`.
    waiting: VecDeque<(Arc<Job>, Trigger)>,
    /// The name of each job whose run ended (not its record: the channel's first block holds
    /// 32 messages, about 8 KiB of records).
    done_tx: mpsc::UnboundedSender<String>,
    /// Due runs waiting for their conditions, by job.
    waiters: BTreeMap<String, Waiter>,
    last_waiter: u64,
    /// A wait that ended: the job, the wait's id, and whether its conditions held.
    waited_tx: mpsc::UnboundedSender<(String, u64, bool)>,
    notifier: Notifier,
    /// Reloads that changed no file, not recorded since the last one that was: when it was
    /// recorded, and how many came since (5,000 SIGHUPs filled the ring with reload records
    /// and evicted the run history).
    quiet_reloads: (Option<Instant>, u64),
}

/// Within this long of a recorded reload that changed nothing, another such reload is only
/// counted; the next recorded reload says how many there were.
const RELOAD_RECORD_EVERY: Duration = Duration::from_secs(60);

impl Daemon {
    fn fire(&mut self, f: Fire) {
        let job = self.table.job(f.job).clone();
        let name = job.name.as_str();
        if f.trigger == Trigger::Reboot
            && let Err(e) = self.ctx.sinks.update(name, Update::Rebooted(self.table.boot_id.clone()))
        {
            log::error!("job {name}: cannot record the @reboot run: {e}");
        }
        let skip = |reason: &str| Record::skipped(name, job.kind.tag(), f.trigger, reason.to_string());
        if let Some(slot) = self.running.get_mut(name) {
            match job.overlap {
                Overlap::Skip => self.ctx.sinks.emit(&skip("still running from the previous fire")),
                Overlap::Queue if slot.queued.is_some() => self.ctx.sinks.emit(&skip("a run is already queued")),
                Overlap::Queue => slot.queued = Some(f.trigger),
                Overlap::Replace => {
                    log::info!("job {name}: replacing the running run");
                    slot.queued = Some(f.trigger);
                    let _ = slot.stop.send(true);
                }
            }
            return;
        }
        if let Some(w) = self.waiters.get_mut(name) {
            match job.overlap {
                Overlap::Skip => {
                    self.ctx.sinks.emit(&skip("still waiting for its `when:` conditions from the previous fire"))
                }
                Overlap::Queue if w.queued.is_some() => self.ctx.sinks.emit(&skip("a run is already queued")),
                Overlap::Queue => w.queued = Some(f.trigger),
                Overlap::Replace => {
                    let _ = w.stop.send(Some("replaced by a newer fire".into()));
                    self.waiters.remove(name);
                    self.begin(job, f.trigger);
                }
            }
            return;
        }
        if self.waiting.iter().any(|(j, _)| j.name == job.name) {
            self.ctx.sinks.emit(&skip("already waiting for a free slot (max_parallel)"));
            return;
        }
        self.begin(job, f.trigger);
    }

    /// Starts a due run: at once, or, for a job with `when:`, once its conditions hold
    /// (a task waits for them, up to `wait:`, and reports to `wait_ended`).
    fn begin(&mut self, job: Arc<Job>, trigger: Trigger) {
        if job.conditions.is_none() {
            return self.start_or_wait(job, trigger);
        }
        let (stop, stop_rx) = watch::channel(None);
        self.last_waiter += 1;
        let id = self.last_waiter;
        self.waiters.insert(job.name.to_string(), Waiter { id, job: job.clone(), trigger, stop, queued: None });
        let (ctx, ended) = (self.ctx.clone(), self.waited_tx.clone());
        tokio::spawn(async move {
            let w = jobs::conditions::wait(&ctx, &job, stop_rx).await;
            let held = matches!(w, jobs::conditions::Waited::Held);
            if !held {
                jobs::conditions::record_skip(&ctx, &job, trigger, &w);
            }
            let _ = ended.send((job.name.to_string(), id, held));
        });
    }

    /// A wait ended: the run starts if its conditions held; a fire queued meanwhile waits
    /// for its own turn. A wait this daemon ended itself (replaced, reloaded) is gone already.
    fn wait_ended(&mut self, name: &str, id: u64, held: bool) {
        if self.waiters.get(name).is_none_or(|w| w.id != id) {
            return;
        }
        let Some(w) = self.waiters.remove(name) else { return };
        if !held {
            if let Some(queued) = w.queued {
                self.begin(w.job, queued);
            }
            return;
        }
        self.start_or_wait(w.job, w.trigger);
        if let Some(queued) = w.queued {
            match self.running.get_mut(name) {
                Some(slot) => slot.queued = Some(queued),
                None => log::info!("job {name}: the fire queued while it waited is dropped (max_parallel)"),
            }
        }
    }

    /// After a reload: a wait for a job that is unchanged goes on; one for a job that
    /// changed or is gone ends, recorded as skipped.
    fn reload_waiters(&mut self) {
        let plan = self.plan.clone();
        self.waiters.retain(|name, w| {
            let same = plan.jobs.iter().any(|j| j.name.as_str() == name && **j == *w.job);
            if !same {
                let why = if plan.job(name).is_some() {
                    "the job changed in a reload"
                } else {
                    "the job was removed by a reload"
                };
                let _ = w.stop.send(Some(why.into()));
            }
            same
        });
    }

    fn start_or_wait(&mut self, job: Arc<Job>, trigger: Trigger) {
        if self.running.len() >= self.plan.max_parallel {
            log::info!(
                "job {}: waiting for a free slot ({} running, max_parallel {})",
                job.name,
                self.running.len(),
                self.plan.max_parallel
            );
            self.waiting.push_back((job, trigger));
            return;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        self.running.insert(job.name.to_string(), Slot { stop: stop_tx, queued: None });
        let ctx = self.ctx.clone();
        let done = self.done_tx.clone();
        tokio::spawn(async move {
            // A job's `when:` was judged before it got here (`begin`).
            let req = Request { trigger, no_retry: false, wait: false, conditions: false };
            jobs::execute(&ctx, &job, req, stop_rx).await;
            let _ = done.send(job.name.to_string());
        });
    }

    fn finished(&mut self, name: &str) {
        if let Some(slot) = self.running.remove(name)
            && let Some(trigger) = slot.queued
            && let Some(idx) = self.table.find(name)
        {
            let job = self.table.job(idx).clone();
            self.begin(job, trigger);
        }
        while self.running.len() < self.plan.max_parallel {
            let Some((job, trigger)) = self.waiting.pop_front() else { break };
            if self.running.contains_key(job.name.as_str()) {
                continue;
            }
            self.start_or_wait(job, trigger);
        }
    }

    /// Starts (or skips, or queues) every fire and records each in the state (in memory;
    /// the writer puts it in the job's file with the run's end).
    fn fire_all(&mut self, fires: &[Fire], now: Timestamp, mono: Instant) {
        if fires.is_empty() {
            return;
        }
        for f in fires {
            self.fire(*f);
            let job = self.table.job(f.job);
            // Checks fire every few seconds; recording each fire would rewrite their state
            // that often (flash wears out), and a check needs no phase kept across restarts.
            if job.kind.is_check() {
                continue;
            }
            let fired =
                Update::Fired { at_ms: f.at.as_millisecond(), next_due_ms: due_ms(self.table.due(f.job), now, mono) };
            if let Err(e) = self.ctx.sinks.update(job.name.as_str(), fired) {
                log::error!("job {}: cannot record the fire: {e}", job.name);
            }
        }
        // `systemctl status` shows what runs now, not what ran before this fire.
        self.notifier.status(&self.status_line());
    }

    /// Starts reading the config again on a blocking thread: a large file takes up to about
    /// 100 ms to load, and jobs keep firing meanwhile.
    fn start_reload(&mut self) -> tokio::task::JoinHandle<Result<Plan, config::ConfigErrors>> {
        self.notifier.reloading();
        let (path, overrides) = (self.config_path.clone(), self.overrides.clone());
        // The runtime_dir this daemon runs with (a changed one takes effect at a restart).
        let runtime_dir = self.plan.runtime_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut plan = config::load(&path, &overrides)?;
            // A loaded plan is taken: its copy is written here, off the event loop, as a
            // config may be 2 MiB.
            keep_loaded_copy(&runtime_dir, &mut plan);
            Ok(plan)
        })
    }

    /// Switches to the reloaded plan, or keeps the running one and says why.
    fn reload(&mut self, loaded: Result<Result<Plan, config::ConfigErrors>, tokio::task::JoinError>) {
        let loaded = loaded.unwrap_or_else(|e| {
            Err(config::ConfigErrors(vec![config::ConfigError {
                file: self.config_path.clone(),
                line: 0,
                col: 0,
                message: format!("the config could not be read: {e}"),
            }]))
        });
        match loaded {
            Err(errors) => {
                let m = format!("reload refused, the running config stays:\n{errors}");
                self.ctx.sinks.emit(&Record::daemon(Outcome::Failure, m));
            }
            Ok(plan) => {
                if plan.state_dir != self.plan.state_dir || plan.runtime_dir != self.plan.runtime_dir {
                    log::warn!("state_dir and runtime_dir changes take effect at the next restart");
                }
                // Writes check their directories once; a reload checks them again.
                crate::fsx::forget_own_dirs();
                crate::kinds::after_reload(plan.jobs.iter().filter(|j| j.enabled).map(|j| (j.name.as_str(), &j.kind)));
                let (now, mono) = (Timestamp::now(), Instant::now());
                let fresh = Timetable {
                    hold_until: self.table.hold_until,
                    ..Timetable::new(self.table.machine_id.clone(), self.table.boot_id.clone())
                };
                let old = std::mem::replace(&mut self.table, fresh);
                let mut fires = Vec::new();
                let table = &mut self.table;
                let planned = self.ctx.sinks.read(|state| {
                    for job in &plan.jobs {
                        match old.find(job.name.as_str()) {
                            // Unchanged jobs keep their next due time.
                            Some(i) if **old.job(i) == **job => table.keep(old.job(i).clone(), old.due(i)),
                            _ => fires.extend(table.plan_job(job.clone(), state, now, mono)),
                        }
                    }
                });
                if let Err(e) = planned {
                    log::error!("{e}");
                }
                let plan = Arc::new(plan);
                self.ctx.sinks.set_queues(jobs::queue_source(&plan));
                self.ctx.sinks.set_shown(jobs::shown(&plan));
                let mut m = format!("reloaded {}: {} job(s)", self.config_path.display(), plan.jobs.len());
                // The texts are dropped once saved (`sinks::loaded`): what was resolved is compared.
                let unchanged = plan.files == self.plan.files
                    && plan.jobs == self.plan.jobs
                    && plan.textfile == self.plan.textfile
                    && plan.max_parallel == self.plan.max_parallel;
                let (last, quiet) = self.quiet_reloads;
                if unchanged && last.is_some_and(|t| t.elapsed() < RELOAD_RECORD_EVERY) {
                    log::info!("{m} (nothing changed; recorded with the next reload record)");
                    self.quiet_reloads.1 += 1;
                } else {
                    if quiet > 0 {
                        m.push_str(&format!(" ({quiet} reload(s) that changed nothing since the last record)"));
                    }
                    self.ctx.sinks.emit(&Record::daemon(Outcome::Success, m));
                    self.quiet_reloads = (unchanged.then(Instant::now), 0);
                }
                self.plan = plan;
                self.reload_waiters();
                drop(old);
                self.record_daemon_info(now, mono);
                self.fire_all(&fires, now, mono);
            }
        }
        self.notifier.ready(&self.status_line());
    }

    fn status_line(&self) -> String {
        format!("{} job(s), {} running", self.table.len(), self.running.len())
    }

    /// Tells `status` what this daemon uses (`sinks::daemon`): its containment and when its
    /// timetable fires each interval job next. At start and at each accepted reload.
    fn record_daemon_info(&self, now: Timestamp, mono: Instant) {
        let (containment_mode, containment) = match crate::contain::mode() {
            Some(m) => (m.name().to_string(), m.describe()),
            None => ("none".to_string(), "process groups only".to_string()),
        };
        let due_ms = (0..self.table.len())
            .filter(|&i| matches!(self.table.due(i), Due::Mono(_)))
            .filter_map(|i| Some((self.table.job(i).name.to_string(), due_ms(self.table.due(i), now, mono)?)))
            .collect();
        let info = crate::sinks::daemon::DaemonInfo {
            pid: std::process::id(),
            written_ms: now.as_millisecond(),
            containment_mode,
            containment,
            due_ms,
        };
        if let Err(e) = crate::sinks::daemon::write(&self.plan.runtime_dir, &info) {
            log::error!("cannot write {}: {e}", crate::sinks::daemon::path(&self.plan.runtime_dir).display());
        }
    }
}

/// The process groups a previous runner left for one job, found at start and ended in the
/// background while other jobs fire.
struct Leftovers {
    job: String,
    /// The job's lock, held until they are gone: the job does not run again meanwhile, and
    /// only the holder writes its `.running` file. None when a live `runner once` holds it.
    held: Option<lock::Held>,
    groups: Vec<Running>,
    grace: Duration,
}

/// The record of a run whose runner died before recording its end.
fn interrupted_run(plan: &Plan, job: &str, r: &Running) -> Record {
    let kind = plan.job(job).map(|j| j.kind.tag()).unwrap_or(Kind::Command);
    let started = std::time::UNIX_EPOCH + Duration::from_millis(r.since_ms.max(0) as u64);
    let mut rec = Record::skipped(job, kind, Trigger::Schedule, String::new());
    rec.kind = RecordKind::Run;
    rec.outcome = Outcome::Interrupted;
    rec.attempt = 1;
    rec.started_at = started;
    rec.duration = std::time::SystemTime::now().duration_since(started).unwrap_or_default();
    rec.pid = Some(r.pgid);
    rec.message = format!(
        "the runner that ran it ({} pid {}) stopped before recording its end; process group {}",
        r.by, r.runner_pid, r.pgid
    );
    rec
}

/// Finds the process groups a previous daemon (or a `runner once` that died) left, from
/// `runtime_dir/jobs/<job>.running` (and, the first time after an upgrade, the old
/// `state.json`); records each run a crash interrupted (once: the entry is marked), keeps
/// the groups still alive recorded, and returns them to end. Checked against the boot, the
/// job locks and the leader's start time, so a recycled pid is never signalled. Waits for no
/// grace: the groups are ended by [`end_leftovers`] in the background.
fn find_leftovers(plan: &Plan, legacy: &State, boot: &str, sinks: &Sinks) -> Vec<Leftovers> {
    let grace_of = |name: &str| plan.job(name).map(|j| j.kill_grace).unwrap_or(Duration::from_secs(10));
    let mut recorded = running::read_all(&plan.runtime_dir);
    recorded.extend(
        legacy.jobs.iter().filter(|(_, js)| !js.running.is_empty()).map(|(n, js)| (n.clone(), js.running.clone())),
    );
    let mut out = Vec::new();
    for (name, groups) in recorded {
        // With the job's lock, nothing else runs the job; without it, a live `runner once`
        // does, and its groups are its own.
        let (live_once, held) = match lock::try_job(&plan.runtime_dir, &name, "daemon") {
            Ok(Try::Acquired(h)) => (None, Some(h)),
            Ok(Try::Busy(holder)) => (holder, None),
            Err(e) => {
                log::error!("job {name}: cannot check for leftover runs: {e}");
                continue;
            }
        };
        let mut alive = Vec::new();
        for mut r in groups {
            if live_once.as_ref().is_some_and(|h| h.pid == r.runner_pid) {
                continue;
            }
            if !r.interrupted {
                sinks.emit(&interrupted_run(plan, &name, &r));
                r.interrupted = true;
            }
            // The group, or what the run left outside it and carries its mark.
            if r.boot_id == boot
                && (crate::proc::group_is_from(r.pgid, r.since_ms)
                    || !crate::contain::marked_leftovers(&r.run_id, r.since_ms).is_empty())
            {
                alive.push(r);
            }
        }
        // What is still alive stays recorded (marked) until it is gone.
        if held.is_some()
            && let Err(e) = running::write(&plan.runtime_dir, &name, &alive)
        {
            log::error!("job {name}: cannot record its leftover groups: {e}");
        }
        if !alive.is_empty() {
            out.push(Leftovers { grace: grace_of(&name), job: name, held, groups: alive });
        }
    }
    out
}

/// Ends one job's leftover groups together (TERM, KILL after the grace), then clears them
/// from its `.running` file and lets go of its lock. Blocks for up to the grace: runs on a
/// blocking thread, never on the event loop. Returns what a `daemon` record says of it.
fn end_leftovers(runtime_dir: &Path, l: Leftovers) -> String {
    let started = std::time::Instant::now();
    let ended: Vec<(u32, bool, usize, u128)> = std::thread::scope(|s| {
        let handles: Vec<_> = l
            .groups
            .iter()
            .map(|r| {
                let (pgid, grace, job) = (r.pgid, l.grace, &l.job);
                s.spawn(move || {
                    log::warn!("job {job}: ending process group {pgid} left by a previous runner");
                    let outside = crate::contain::marked_leftovers(&r.run_id, r.since_ms);
                    let signalled = std::thread::scope(|s| {
                        s.spawn(|| crate::contain::end_marked(&outside, grace));
                        crate::process::end_group(pgid, grace)
                    });
                    (pgid, signalled, outside.len(), started.elapsed().as_millis())
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    if l.held.is_some()
        && let Err(e) = running::write(runtime_dir, &l.job, &[])
    {
        log::error!("job {}: cannot clear its leftover groups: {e}", l.job);
    }
    drop(l.held);
    let parts: Vec<String> = ended
        .iter()
        .map(|&(pgid, signalled, outside, ms)| match (signalled, outside) {
            (_, 1..) => format!("group {pgid} and {outside} process(es) it left outside it ended after {ms} ms"),
            (true, 0) => format!("group {pgid} ended after {ms} ms"),
            (false, 0) => format!("group {pgid} was gone"),
        })
        .collect();
    format!("leftovers of job {} ended: {}", l.job, parts.join(", "))
}

/// What the daemon found at start, before its event loop.
struct Found {
    state: State,
    boot: String,
    leftovers: Vec<Leftovers>,
}

/// `runner run`: the daemon. Returns its exit code.
/// `pidfile`: `--pidfile`, written once the daemon holds `runtime_dir/runner.pid`.
pub fn run(config_path: &Path, overrides: &Overrides, pidfile: Option<&Path>) -> ExitCode {
    let notifier = Notifier::from_env();
    let mut plan = match config::load(config_path, overrides) {
        Ok(p) => p,
        Err(errors) => {
            log::error!("invalid config, not starting:\n{errors}");
            return ExitCode::from(crate::exit::CONFIG);
        }
    };
    // Made if missing, and refused unless runner's own: a directory others can write could
    // hold a link to a file runner would then overwrite as root.
    for dir in [&plan.state_dir, &plan.runtime_dir] {
        if let Err(e) = crate::fsx::own_dir_once(dir, true) {
            eprintln!("runner: {e}");
            return ExitCode::FAILURE;
        }
    }
    let _pid_lock = match lock::try_daemon(&plan.runtime_dir) {
        Ok(Try::Acquired(h)) => h,
        Ok(Try::Busy(h)) => {
            let who = h.map(|h| format!(" (pid {})", h.pid)).unwrap_or_default();
            eprintln!(
                "runner: another daemon already runs for {}{who}; stop it first, or give this one its own --state-dir and --runtime-dir",
                plan.runtime_dir.display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("runner: cannot take the pid file in {}: {e}", plan.runtime_dir.display());
            return ExitCode::FAILURE;
        }
    };
    // Dropped (removed) when this returns: after the last record, before the pid lock.
    let _pidfile = match pidfile.map(crate::pidfile::create).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("runner: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime_dir = plan.runtime_dir.clone();
    keep_loaded_copy(&runtime_dir, &mut plan);
    // Before the runtime and the writer start threads.
    crate::heap::one_arena();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // A daemon waits on a few dozen descriptors; tokio's default sizes the event buffer
        // for 1024 (12 KiB kept for good).
        .max_io_events_per_tick(64)
        // A blocking thread (a reload's parse, a lock wait, a probe) ends 1 s after its
        // last task, not 10 s, so its stack does not outlive the work.
        .thread_keep_alive(std::time::Duration::from_secs(1))
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runner: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Before the event loop: loading takes `state.lock` and reads every job file and the
    // ring. Leftovers are found (and their interrupted runs recorded) here, and ended in the
    // background once jobs fire.
    let boot = boot_id().to_string();
    let mut sinks = jobs::sinks_for(&plan);
    let store = sinks.state.clone();
    let leftovers = match store.load_files(None) {
        Ok(legacy) => find_leftovers(&plan, &legacy, &boot, &sinks),
        Err(e) => {
            log::error!("{e}");
            find_leftovers(&plan, &State::default(), &boot, &sinks)
        }
    };
    if let Err(e) = store.migrate(sinks.ring_path()) {
        log::error!("{e}");
    }
    let state = match store.load_and_catch_up(sinks.ring_path()) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            State::default()
        }
    };
    let writer = match sinks.start_writer(state.clone()) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("runner: cannot start the state writer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let found = Found { state, boot, leftovers };
    let code = rt.block_on(daemon_main(plan, config_path, overrides, notifier, sinks, found));
    writer.close();
    log::info!("stopped");
    code
}

/// Writes the copy of what runs (`loaded.json`), which `status`, `health` and `logs` fall
/// back to once the file on disk is edited into an error; then drops the files' texts, which
/// the daemon has no other use for (1.4 MB for 10,000 jobs).
fn keep_loaded_copy(runtime_dir: &Path, plan: &mut Plan) {
    if let Err(e) = crate::sinks::loaded::write(runtime_dir, plan) {
        log::error!("cannot keep a copy of the config in {}: {e}", runtime_dir.display());
    }
    plan.texts = Vec::new();
}

/// How long after its last run ended the daemon settles (`settle`): the writer has written
/// the run's files by then (it coalesces for 2 s) and the run's blocking threads have ended
/// (1 s keep-alive).
const SETTLE_AFTER: Duration = Duration::from_secs(3);
/// The least sleep ahead for which settling pays: the pages it gives back, the next fire
/// maps again (minor faults); per-second jobs would pay that every fire.
const SETTLE_IDLE: Duration = Duration::from_secs(10);

/// Gives the kernel back the heap that start-up, a reload or a run freed but malloc kept
/// (on the writer thread, which trims after its own queue is done); `why`: after what.
fn settle(sinks: &Sinks, why: &str) {
    sinks.settle();
    log::debug!("settled {why}");
}

impl Daemon {
    /// The daemon's first moves: every job planned from the state, the start recorded and
    /// told to systemd, and what is due fired. Returns the fires' buffer, which the loop
    /// reuses.
    fn start(&mut self, state: &State) -> Vec<Fire> {
        let (now, mono) = (Timestamp::now(), Instant::now());
        let mut fires = Vec::new();
        for job in &self.plan.jobs {
            fires.extend(self.table.plan_job(job.clone(), state, now, mono));
        }
        self.record_daemon_info(now, mono);
        let m = format!("runner started: {} job(s) from {}", self.plan.jobs.len(), self.config_path.display());
        self.ctx.sinks.emit(&Record::daemon(Outcome::Success, m));
        if now < self.table.hold_until {
            log::warn!(
                "the wall clock ({now}) is before this build ({}); calendar jobs wait until it is set, interval jobs run",
                self.table.hold_until
            );
        }
        self.notifier.ready(&self.status_line());
        self.fire_all(&fires, now, mono);
        fires
    }

    /// The loop's alarm went off: the watchdog ping when it is due, settling when the daemon
    /// stayed idle, and the jobs now due.
    fn woken(
        &mut self,
        watchdog: Option<Duration>,
        next_ping: &mut Option<Instant>,
        settle_at: &mut Option<Instant>,
        fires: &mut Vec<Fire>,
    ) {
        let (now, mono) = (Timestamp::now(), Instant::now());
        if let (Some(w), Some(p)) = (watchdog, *next_ping)
            && p <= mono
        {
            self.notifier.watchdog();
            *next_ping = Some(mono + w);
        }
        if settle_at.is_some_and(|t| t <= mono) {
            *settle_at = None;
            // Only a daemon that will sleep a while gains: a job due soon would
            // fault back in what settling gave back.
            let idle = self.table.sleep_for(now, mono).is_none_or(|s| s >= SETTLE_IDLE);
            if self.running.is_empty() && idle {
                settle(&self.ctx.sinks, "after runs");
            }
        }
        fires.clear();
        self.table.take_due(now, mono, fires);
        self.fire_all(fires, now, mono);
    }
}

async fn daemon_main(
    plan: Plan,
    config_path: &Path,
    overrides: &Overrides,
    notifier: Notifier,
    sinks: Sinks,
    found: Found,
) -> ExitCode {
    let Found { state, boot, leftovers } = found;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let (waited_tx, mut waited_rx) = mpsc::unbounded_channel();
    // `notify:` pings: written by the runs, delivered by a task of their own.
    let outbox = crate::pings::Outbox::new(&plan.state_dir);
    tokio::spawn(crate::pings::worker::run(outbox.clone(), crate::pings::http::Client::find()));
    let ctx = Ctx { runtime_dir: plan.runtime_dir.clone(), sinks, by: "daemon", echo: false, pings: Some(outbox) };
    // Damage found in the run log is recorded now, not at the first run.
    ctx.sinks.open_ring();
    let mut d = Daemon {
        plan: Arc::new(plan),
        config_path: config_path.to_path_buf(),
        overrides: overrides.clone(),
        ctx,
        table: Timetable { hold_until: build_time(), ..Timetable::new(machine_id().to_string(), boot) },
        running: BTreeMap::new(),
        waiting: VecDeque::new(),
        done_tx,
        waiters: BTreeMap::new(),
        last_waiter: 0,
        waited_tx,
        notifier,
        quiet_reloads: (None, 0),
    };
    let Some((mut sigterm, mut sigint, mut sighup)) = listen_term_int_hup() else {
        log::error!("cannot open a signalfd for TERM, INT and HUP");
        return ExitCode::FAILURE;
    };

    let mut fires = d.start(&state);
    end_leftovers_in_background(&d, leftovers);
    let mut clock = watch_clock();
    // A reload in progress, and whether another SIGHUP came while it ran.
    let mut loading: Option<tokio::task::JoinHandle<Result<Plan, config::ConfigErrors>>> = None;
    let mut reload_again = false;
    let mut alarm = crate::clockwatch::Alarm::open();
    let watchdog = sd_notify::watchdog_interval().filter(|_| d.notifier.enabled());
    let mut next_ping = watchdog.map(|w| Instant::now() + w);
    // Start-up is done: what reading the config, the state and the ring paged in and freed
    // goes back.
    settle(&d.ctx.sinks, "after start");
    // When the last run ended, plus SETTLE_AFTER: the daemon settles then if it stays idle.
    let mut settle_at: Option<Instant> = None;
    loop {
        let (now, mono) = (Timestamp::now(), Instant::now());
        // No periodic tick: sleep to the earliest due job, or to the watchdog ping if sooner.
        let sleep = d.table.sleep_for(now, mono);
        let wake = [sleep.map(|s| mono + s), next_ping, settle_at].into_iter().flatten().min();
        tokio::select! {
            _ = alarm.until(wake) => d.woken(watchdog, &mut next_ping, &mut settle_at, &mut fires),
            Some((name, id, held)) = waited_rx.recv() => d.wait_ended(&name, id, held),
            Some(name) = done_rx.recv() => {
                d.finished(&name);
                d.notifier.status(&d.status_line());
                if d.running.is_empty() {
                    settle_at = Some(Instant::now() + SETTLE_AFTER);
                }
            }
            _ = async { match clock.as_mut() { Some(c) => c.changed().await, None => std::future::pending().await } } => {
                let (now, mono) = (Timestamp::now(), Instant::now());
                let m = format!("the wall clock was set; re-planning calendar jobs from {now}");
                d.ctx.sinks.emit(&Record::daemon(Outcome::Success, m));
                fires.clear();
                d.table.replan_wall(now, &mut fires);
                d.fire_all(&fires, now, mono);
            }
            // A reader that stopped reading has room again: send what waited (never blocks).
            _ = d.notifier.drain(), if d.notifier.pending() => {}
            _ = sighup.recv() => match loading {
                Some(_) => reload_again = true,
                None => loading = Some(d.start_reload()),
            },
            loaded = async { loading.as_mut().expect("guarded by is_some").await }, if loading.is_some() => {
                loading = None;
                d.reload(loaded);
                // What the parse and the old plan paged in and freed goes back.
                settle(&d.ctx.sinks, "after a reload");
                if std::mem::take(&mut reload_again) {
                    loading = Some(d.start_reload());
                }
            }
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }
    stop(d, done_rx, waited_rx).await
}

/// Leftovers are ended together, in the background, while jobs fire.
fn end_leftovers_in_background(d: &Daemon, leftovers: Vec<Leftovers>) {
    for l in leftovers {
        let (sinks, dir) = (d.ctx.sinks.clone(), d.plan.runtime_dir.clone());
        tokio::spawn(async move {
            match tokio::task::spawn_blocking(move || end_leftovers(&dir, l)).await {
                Ok(m) => sinks.emit(&Record::daemon(Outcome::Success, m)),
                Err(e) => log::error!("ending leftovers failed: {e}"),
            }
        });
    }
}

fn listen_term_int_hup() -> Option<(signals::Listener, signals::Listener, signals::Listener)> {
    Some((signals::listen(Sig::Term).ok()?, signals::listen(Sig::Int).ok()?, signals::listen(Sig::Hup).ok()?))
}

fn watch_clock() -> Option<crate::clockwatch::ClockWatch> {
    match crate::clockwatch::ClockWatch::new() {
        Ok(c) => Some(c),
        Err(e) => {
            log::warn!("cannot watch for wall clock changes ({e}); a clock set forward is noticed at the next wake-up");
            None
        }
    }
}

/// SIGTERM or SIGINT: every running job is asked to stop, and the daemon waits for them.
async fn stop(
    mut d: Daemon,
    mut done_rx: mpsc::UnboundedReceiver<String>,
    mut waited_rx: mpsc::UnboundedReceiver<(String, u64, bool)>,
) -> ExitCode {
    let (stopping, ending) = (Instant::now(), d.running.len());
    log::info!("stopping: ending {ending} running job(s)");
    d.notifier.stopping();
    d.waiting.clear();
    end_waits(&mut d, &mut waited_rx).await;
    for slot in d.running.values_mut() {
        slot.queued = None;
        let _ = slot.stop.send(true);
    }
    while !d.running.is_empty() {
        match done_rx.recv().await {
            Some(name) => {
                d.running.remove(&name);
            }
            None => break,
        }
    }
    // One last try for STOPPING=1 and the final status; never waits for the reader.
    d.notifier.status(&d.status_line());
    let mut r = Record::daemon(Outcome::Success, stop_message(ending, &d.ctx.sinks));
    r.duration = stopping.elapsed();
    d.ctx.sinks.emit(&r);
    ExitCode::SUCCESS
}

/// Ends every wait for conditions as the daemon stops, and waits until each has recorded
/// its skip.
async fn end_waits(d: &mut Daemon, waited_rx: &mut mpsc::UnboundedReceiver<(String, u64, bool)>) {
    for w in d.waiters.values() {
        let _ = w.stop.send(Some("the daemon stopped".into()));
    }
    while !d.waiters.is_empty() {
        match waited_rx.recv().await {
            Some((name, id, _)) if d.waiters.get(&name).is_some_and(|w| w.id == id) => {
                d.waiters.remove(&name);
            }
            Some(_) => {}
            None => break,
        }
    }
}

/// The daemon's last record: how many runs it ended, and the syslog lines dropped, if any.
fn stop_message(ending: usize, sinks: &Sinks) -> String {
    let mut m = format!("runner stopped: ended {ending} running job(s)");
    if let Some((path, n)) = sinks.syslog_dropped() {
        m.push_str(&format!("; syslog at {} did not take {n} record(s)", path.display()));
    }
    m
}

/// The next due time of a job as `status` shows it, from the state and the plan alone.
pub fn next_due_for_status(job: &Job, state: &State, now: Timestamp) -> Option<Timestamp> {
    if !job.enabled {
        return None;
    }
    let js = state.job(job.name.as_str());
    match &job.schedule {
        Schedule::Cron(expr) => match next_cron(job, expr, now, machine_id()) {
            Due::Wall(t) => Some(t),
            _ => None,
        },
        Schedule::Every(_) => js.and_then(|j| j.next_due_ms).map(|ms| Timestamp::from_millisecond(ms).unwrap_or(now)),
        Schedule::Reboot => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ResolveEnv, load_text};
    use crate::sinks::state::JobState;

    fn plan(jobs: &str) -> Plan {
        let host = ResolveEnv { euid: 0, users: Default::default() };
        let text = format!("version: 1\njobs:\n{jobs}");
        load_text(&text, Path::new("/nonexistent/test.yaml"), &Overrides::default(), &host).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn table(p: &Plan, state: &State, now: Timestamp, mono: Instant) -> (Timetable, Vec<Fire>) {
        let mut t = Timetable::new("machine".into(), "boot-1".into());
        let fires = p.jobs.iter().filter_map(|j| t.plan_job(j.clone(), state, now, mono)).collect();
        (t, fires)
    }

    fn with_last_fire(job: &str, at: Timestamp) -> State {
        let mut s = State::default();
        s.jobs.insert(job.into(), JobState { last_fire_ms: Some(at.as_millisecond()), ..Default::default() });
        s
    }

    #[test]
    fn cron_fires_exactly_once_per_slot() {
        let p = plan("  a:\n    schedule: \"*/5 * * * *\"\n    timezone: UTC\n    run: x\n");
        let mono = Instant::now();
        let now = ts("2026-01-01T00:01:00Z");
        let (mut t, fires) = table(&p, &State::default(), now, mono);
        assert!(fires.is_empty());
        assert_eq!(t.due(0), Due::Wall(ts("2026-01-01T00:05:00Z")));
        assert_eq!(t.sleep_for(now, mono), Some(Duration::from_secs(240)));
        let mut out = Vec::new();
        t.take_due(ts("2026-01-01T00:04:59.999Z"), mono, &mut out);
        assert!(out.is_empty());
        t.take_due(ts("2026-01-01T00:05:00Z"), mono, &mut out);
        assert_eq!(out, vec![Fire { job: 0, trigger: Trigger::Schedule, at: ts("2026-01-01T00:05:00Z") }]);
        assert_eq!(t.due(0), Due::Wall(ts("2026-01-01T00:10:00Z")));
    }

    #[test]
    fn a_forward_clock_jump_fires_once_not_a_burst() {
        let p = plan("  a:\n    schedule: \"* * * * *\"\n    timezone: UTC\n    run: x\n");
        let mono = Instant::now();
        // A box that booted in 1970 and then got the real time from NTP.
        let (mut t, _) = table(&p, &State::default(), ts("1970-01-01T00:00:30Z"), mono);
        let mut out = Vec::new();
        t.take_due(ts("2026-06-01T12:00:30Z"), mono, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(t.due(0), Due::Wall(ts("2026-06-01T12:01:00Z")));
    }

    #[test]
    fn a_clock_set_forward_skips_missed_fires_unless_catch_up() {
        let p = plan(
            "  a:\n    schedule: \"0 3 * * *\"\n    timezone: UTC\n    run: x\n  b:\n    schedule: \"0 3 * * *\"\n    timezone: UTC\n    catch_up: once\n    run: x\n",
        );
        let mono = Instant::now();
        let (mut t, _) = table(&p, &State::default(), ts("1970-01-01T00:00:00Z"), mono);
        let mut out = Vec::new();
        t.replan_wall(ts("2026-06-01T12:00:00Z"), &mut out);
        assert_eq!(out, vec![Fire { job: 1, trigger: Trigger::CatchUp, at: ts("2026-06-01T12:00:00Z") }]);
        assert_eq!(t.due(0), Due::Wall(ts("2026-06-02T03:00:00Z")));
        assert_eq!(t.due(1), Due::Wall(ts("2026-06-02T03:00:00Z")));
        out.clear();
        t.take_due(ts("2026-06-01T12:00:00Z"), mono, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_backward_clock_jump_replans_without_firing() {
        let p = plan("  a:\n    schedule: \"0 * * * *\"\n    timezone: UTC\n    run: x\n");
        let mono = Instant::now();
        let (mut t, _) = table(&p, &State::default(), ts("2026-06-01T12:30:00Z"), mono);
        assert_eq!(t.due(0), Due::Wall(ts("2026-06-01T13:00:00Z")));
        let mut out = Vec::new();
        t.replan_wall(ts("2026-06-01T08:10:00Z"), &mut out);
        assert!(out.is_empty());
        t.take_due(ts("2026-06-01T08:10:00Z"), mono, &mut out);
        assert!(out.is_empty());
        assert_eq!(t.due(0), Due::Wall(ts("2026-06-01T09:00:00Z")));
    }

    #[test]
    fn intervals_keep_their_phase_across_restarts_and_never_burst() {
        let p = plan("  a:\n    every: 10m\n    run: x\n");
        let mono = Instant::now();
        let now = ts("2026-01-01T00:00:00Z");
        // Last fired 4 minutes before the restart: due 6 minutes after it.
        let (t, fires) = table(&p, &with_last_fire("a", ts("2025-12-31T23:56:00Z")), now, mono);
        assert!(fires.is_empty());
        assert_eq!(t.due(0), Due::Mono(mono + Duration::from_secs(360)));
        // No state: `every` after start.
        let (mut t, _) = table(&p, &State::default(), now, mono);
        assert_eq!(t.due(0), Due::Mono(mono + Duration::from_secs(600)));
        // A wake-up an hour late fires once and moves on from now.
        let mut out = Vec::new();
        let late = mono + Duration::from_secs(4200);
        t.take_due(now, late, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(t.due(0), Due::Mono(late + Duration::from_secs(600)));
        // A punctual wake-up keeps the phase of the due instant, not of the wake-up.
        out.clear();
        t.take_due(now, late + Duration::from_millis(600_003), &mut out);
        assert_eq!(t.due(0), Due::Mono(late + Duration::from_secs(1200)));
    }

    #[test]
    fn catch_up_once_runs_one_missed_fire() {
        let p = plan(
            "  n:\n    schedule: \"0 3 * * *\"\n    timezone: UTC\n    catch_up: once\n    run: x\n  s:\n    schedule: \"0 3 * * *\"\n    timezone: UTC\n    run: x\n",
        );
        let mono = Instant::now();
        let mut state = with_last_fire("n", ts("2026-01-01T03:00:00Z"));
        state.jobs.insert("s".into(), state.jobs["n"].clone());
        let (_, fires) = table(&p, &state, ts("2026-01-05T12:00:00Z"), mono);
        assert_eq!(fires, vec![Fire { job: 0, trigger: Trigger::CatchUp, at: ts("2026-01-05T12:00:00Z") }]);
        // Nothing missed: no catch-up.
        let (_, fires) = table(&p, &state, ts("2026-01-02T02:00:00Z"), mono);
        assert!(fires.is_empty());
    }

    #[test]
    fn reboot_jobs_fire_once_per_boot() {
        let p = plan("  r:\n    schedule: \"@reboot\"\n    run: x\n");
        let mono = Instant::now();
        let now = ts("2026-01-01T00:00:00Z");
        let (_, fires) = table(&p, &State::default(), now, mono);
        assert_eq!(fires.len(), 1);
        let mut state = State::default();
        state.jobs.insert("r".into(), JobState { reboot_boot_id: Some("boot-1".into()), ..Default::default() });
        let (t, fires) = table(&p, &state, now, mono);
        assert!(fires.is_empty());
        assert_eq!(t.due(0), Due::Never);
    }

    #[test]
    fn jitter_is_a_fixed_offset_per_host_and_job() {
        let j = Duration::from_secs(300);
        let a = jitter_offset("host-a", "backup", j);
        assert_eq!(a, jitter_offset("host-a", "backup", j));
        assert!(a < j);
        let spread: std::collections::BTreeSet<_> =
            (0..50).map(|i| jitter_offset(&format!("host-{i}"), "backup", j)).collect();
        assert!(spread.len() > 40, "offsets should spread across hosts");

        let p = plan("  a:\n    schedule: \"0 * * * *\"\n    timezone: UTC\n    jitter: 5m\n    run: x\n");
        let mono = Instant::now();
        let (t, _) = table(&p, &State::default(), ts("2026-01-01T00:30:00Z"), mono);
        let off = jitter_offset("machine", "a", j);
        assert_eq!(t.due(0), Due::Wall(add(ts("2026-01-01T01:00:00Z"), off)));
    }

    #[test]
    fn calendar_jobs_wait_for_a_plausible_clock() {
        let p =
            plan("  c:\n    schedule: \"* * * * *\"\n    timezone: UTC\n    run: x\n  i:\n    every: 1m\n    run: x\n");
        let mono = Instant::now();
        let mut t = Timetable { hold_until: ts("2026-01-01T00:00:00Z"), ..Timetable::new("m".into(), "b".into()) };
        for j in &p.jobs {
            t.plan_job(j.clone(), &State::default(), ts("1970-01-01T00:00:10Z"), mono);
        }
        assert_eq!(t.due(0), Due::Held);
        assert_eq!(t.due(1), Due::Mono(mono + Duration::from_secs(60)));
        let mut out = Vec::new();
        t.replan_wall(ts("1999-01-01T00:00:00Z"), &mut out);
        assert_eq!(t.due(0), Due::Held);
        t.replan_wall(ts("2026-03-01T00:00:30Z"), &mut out);
        assert!(out.is_empty());
        assert_eq!(t.due(0), Due::Wall(ts("2026-03-01T00:01:00Z")));
    }

    #[test]
    fn disabled_jobs_are_never_due() {
        let p = plan("  a:\n    every: 1s\n    enabled: false\n    run: x\n");
        let (mut t, _) = table(&p, &State::default(), ts("2026-01-01T00:00:00Z"), Instant::now());
        assert_eq!(t.due(0), Due::Never);
        assert_eq!(t.sleep_for(ts("2026-01-01T00:00:00Z"), Instant::now()), None);
    }
}
