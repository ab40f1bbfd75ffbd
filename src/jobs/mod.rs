//! What a job does when it fires, the same for the daemon and `runner once`: take the job's
//! lock, run attempts with retries and backoff, hand each record to the sinks, and run
//! `on_failure` after the last failed attempt.
//!
//! Each kind (`kinds/`) only knows how to make one attempt, through [`JobServices`], this
//! module's window onto the job and the sinks; locking, retries, the whole-run `timeout:`
//! of flushes and sweeps, and recording are here. Nothing here decides *when* a job runs.

pub mod conditions;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::config::{CommandLine, Job, Plan, RunAs};
use crate::kinds::queue_flush;
use crate::kinds::{Emit, HookFuture, Services};
use crate::lock::{self, Try};
use crate::pings::Event;
use crate::process;
use crate::record::{Outcome, Record, RecordKind, Trigger};
use crate::retry::backoff;
use crate::sinks::textfile::{QueueRow, QueueSource, Shown};
use crate::sinks::{Sinks, running};
use crate::state::{JobState, Running, Update};
use crate::time::epoch_ms;

/// What every run needs besides the job itself.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub runtime_dir: PathBuf,
    pub sinks: Sinks,
    /// `daemon` or `once`: written into locks and the state, shown by `status`.
    pub by: &'static str,
    /// Copy the job's output to our own stdout/stderr (`runner once`).
    pub echo: bool,
    /// Where `notify:` pings are written for delivery (`crate::pings`).
    pub pings: Option<crate::pings::Outbox>,
}

#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub trigger: Trigger,
    /// One attempt only, whatever `retries:` says (`runner once --no-retry`).
    pub no_retry: bool,
    /// Wait for the job's lock instead of recording a skip (`runner once --wait`).
    pub wait: bool,
    /// Judge the job's `when:` once before the run and skip it if they fail (`runner
    /// once`); false when the daemon has waited for them already, or with
    /// `--ignore-conditions`.
    pub conditions: bool,
}

/// Runs a job to its final outcome and returns the last record.
pub async fn execute(ctx: &Ctx, job: &Arc<Job>, req: Request, mut stop: watch::Receiver<bool>) -> Record {
    let kind = job.kind.tag();
    let name = job.name.as_str();
    if let Some(reason) = blocked_by_dependency(ctx, job) {
        let r = Record::skipped(name, kind, req.trigger, reason);
        ctx.sinks.emit(&r);
        return r;
    }
    if req.conditions
        && let Some(c) = job.conditions.as_deref()
        && let Some(condition) = conditions::judge(ctx, c, &mut None).await
    {
        let failed = conditions::Waited::Failed { condition, waited: Duration::ZERO };
        return conditions::record_skip(ctx, job, req.trigger, &failed);
    }
    let held = match lock::try_job(&ctx.runtime_dir, name, ctx.by) {
        Ok(Try::Acquired(h)) => h,
        Ok(Try::Busy(holder)) if req.wait => {
            if let Some(h) = &holder {
                log::info!("job {name} is running ({} pid {}); waiting for it to finish", h.by, h.pid);
            }
            let (dir, n, by) = (ctx.runtime_dir.clone(), name.to_string(), ctx.by);
            match tokio::task::spawn_blocking(move || lock::wait_job(&dir, &n, by)).await {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => return lock_failed(ctx, job, req, &e.to_string()),
                Err(e) => return lock_failed(ctx, job, req, &e.to_string()),
            }
        }
        Ok(Try::Busy(holder)) => {
            let r = Record::skipped(name, kind, req.trigger, already_running(holder.as_ref()));
            ctx.sinks.emit(&r);
            return r;
        }
        Err(e) => return lock_failed(ctx, job, req, &e.to_string()),
    };
    // Whatever `runner once` changed while it held the lock, the daemon's memory takes in.
    // When this very process held it last, nobody else can have written the job since: its
    // memory is what it wrote, so the start skips the writer's round trip and the file read.
    let ours = held.previous.as_ref().is_some_and(|h| h.pid == crate::host::pid() && h.by == ctx.by);
    if !ours {
        ctx.sinks.refresh(name).await;
    }

    ping(ctx, job, Event::Start, None, &[]).await;
    let attempts = if req.no_retry { 1 } else { job.retries.attempts };
    let mut attempt = 1;
    let last = loop {
        let mut r = attempt_once(ctx, job, stop.clone()).await;
        r.trigger = req.trigger;
        r.attempt = attempt;
        // A stop already asked for ends the fire here, so this attempt is its last too.
        r.last_attempt = !r.outcome.is_failure() || attempt >= attempts || *stop.borrow();
        // The fire's ping is on flash before its record: a run the log shows ended has its
        // ping kept, whenever the daemon dies.
        if r.last_attempt {
            end_ping(ctx, job, &r).await;
        }
        ctx.sinks.emit(&r);
        if r.last_attempt {
            break r;
        }
        let delay = backoff(job.retries.backoff, job.retries.max_backoff, attempt);
        log::info!("job {name}: attempt {attempt} of {attempts} failed; retrying in {} ms", delay.as_millis());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            // Stopped during the backoff: the record said a retry would follow, so this
            // failed fire is in the ring as a failed attempt but not counted as a failure.
            _ = stop.wait_for(|s| *s) => break r,
        }
        attempt += 1;
    };
    if last.outcome.is_failure()
        && let Some(hook) = &job.on_failure
    {
        run_on_failure(ctx, job, hook, &last, stop.clone()).await;
    }
    // Nothing of the run is left running (`process::run` ends whole groups); and before the
    // lock goes, its records and state are written for the next holder to read.
    if let Err(e) = running::write(&ctx.runtime_dir, name, &[]) {
        log::error!("job {name}: cannot clear its running groups: {e}");
    }
    ctx.sinks.flushed().await;
    last
}

/// The ping for a fire's last attempt. A run the daemon stopped ends with none: it neither
/// passed nor failed, and a receiver with a grace time reports it if it matters.
async fn end_ping(ctx: &Ctx, job: &Job, r: &Record) {
    if r.outcome == Outcome::Success {
        ping(ctx, job, Event::Success, r.exit_code, &r.output_tail).await;
    } else if r.outcome.is_failure() {
        ping(ctx, job, Event::Failure, r.exit_code, &r.output_tail).await;
    }
}

/// Writes a `notify:` ping for `event` to the outbox, if the job asks for one; on a blocking
/// thread, as it syncs a file and its directory. A full outbox drops its oldest pings and
/// says so in the run log.
async fn ping(ctx: &Ctx, job: &Job, event: Event, exit_code: Option<i32>, output: &[u8]) {
    let (Some(outbox), Some(n)) = (&ctx.pings, job.notify.as_deref()) else { return };
    if !n.wants(event) {
        return;
    }
    let url = n.url_for(event, exit_code);
    let (outbox, name, body) = (outbox.clone(), job.name.to_string(), crate::pings::body_of(output).to_vec());
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let name2 = name.clone();
    match tokio::task::spawn_blocking(move || outbox.enqueue(&name2, &url, &body, now_ms)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(dropped)) => {
            let m = format!(
                "job {name}: its ping outbox is full ({} pings or {} bytes); dropped the {dropped} oldest",
                crate::pings::outbox::MAX_PINGS,
                crate::pings::outbox::MAX_BYTES
            );
            log::warn!("{m}");
            ctx.sinks.emit(&Record::daemon(Outcome::Failure, m));
        }
        Ok(Err(e)) => log::error!("job {name}: cannot write a ping to the outbox: {e}"),
        Err(e) => log::error!("job {name}: writing a ping failed: {e}"),
    }
}

/// Why a job with `depends_on:` may not run now: a named check is not at level ok (or has
/// no level yet). Read from the state, where checks keep their level.
fn blocked_by_dependency(ctx: &Ctx, job: &Job) -> Option<String> {
    if job.depends_on.is_empty() {
        return None;
    }
    let blocking = ctx.sinks.read(|state| {
        let mut blocking = Vec::new();
        for dep in &job.depends_on {
            let level = state.job(&dep.check).and_then(|j| j.check.as_ref()).and_then(|c| c.level.as_deref());
            match level {
                Some("ok") => {}
                Some(l) => blocking.push(format!("check `{}` is {l}", dep.check)),
                None => blocking.push(format!("check `{}` has no result yet", dep.check)),
            }
        }
        blocking
    });
    match blocking {
        Ok(b) => (!b.is_empty()).then(|| format!("depends_on: {}, not ok", b.join(", "))),
        Err(e) => Some(format!("cannot read the state to judge depends_on: {e}")),
    }
}

/// A run that could not take its job's lock (a link planted at it, say): recorded, so it is
/// never silent.
fn lock_failed(ctx: &Ctx, job: &Job, req: Request, err: &str) -> Record {
    let mut r = Record::skipped(job.name.as_str(), job.kind.tag(), req.trigger, String::new());
    r.kind = RecordKind::Run;
    r.outcome = Outcome::SpawnFailed;
    r.message = format!("cannot take the job lock: {err}");
    ctx.sinks.emit(&r);
    r
}

pub fn already_running(holder: Option<&lock::Holder>) -> String {
    match holder {
        Some(h) => {
            let since = jiff::Timestamp::from_millisecond(h.since_ms).map(crate::time::utc_text).unwrap_or_default();
            format!("already running (started by {} pid {} at {since})", h.by, h.pid)
        }
        None => "already running".to_string(),
    }
}

async fn run_on_failure(ctx: &Ctx, job: &Job, hook: &CommandLine, last: &Record, stop: watch::Receiver<bool>) {
    let env = [
        ("RUNNER_OUTCOME", last.outcome.as_str().to_string()),
        // As systemd's EXIT_CODE/EXIT_STATUS and the journal fields: how it ended, and the
        // status or signal number alone.
        ("RUNNER_EXIT_CODE", exit_code_word(last).to_string()),
        ("RUNNER_EXIT_STATUS", last.exit_code.or(last.signal).map(|n| n.to_string()).unwrap_or_default()),
        ("RUNNER_OUTPUT", String::from_utf8_lossy(&last.output_tail).into_owned()),
    ];
    run_hook(ctx, job, hook, &env, "on_failure", stop).await;
}

/// `exited` or `killed`, as systemd's `EXIT_CODE` and the journal field say it; empty when
/// no process ended (it could not be started). `RUNNER_OUTCOME` says whether it timed out.
fn exit_code_word(r: &Record) -> &'static str {
    match (r.exit_code, r.signal) {
        (Some(_), _) => "exited",
        (None, Some(_)) => "killed",
        _ => "",
    }
}

/// The environment every process of a job gets: the job's `env:`, `RUNNER_JOB`, then `extra`.
fn job_env(job: &Job, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = job.env.clone();
    env.push(("RUNNER_JOB".into(), job.name.to_string()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// How a process of this job runs: the job's user, directory, umask, nice and kill grace.
/// The timeout is the caller's: a command's, a handler's or a hook's.
fn process_spec<'a>(
    job: &'a Job,
    command: &'a CommandLine,
    env: &'a [(String, String)],
    timeout: Option<Duration>,
    echo: bool,
) -> process::Spec<'a> {
    process::Spec {
        command,
        run_as: job.run_as.as_deref(),
        own_user: job.own_user.as_deref(),
        workdir: job.workdir.as_deref(),
        env,
        umask: job.umask,
        nice: job.nice,
        timeout,
        kill_grace: job.kill_grace,
        capture_limit: process::CAPTURE_LIMIT,
        echo,
    }
}

/// One attempt of the job's kind. For a flush or a sweep, `timeout:` bounds the whole run:
/// when it passes, the kind sees a stop (the handler or signal wait in progress ends, the rest
/// waits for the next run) and the record says it timed out.
async fn attempt_once(ctx: &Ctx, job: &Arc<Job>, mut stop: watch::Receiver<bool>) -> Record {
    let svc = JobServices { ctx, job };
    let limit = job.timeout.filter(|_| job.kind.timeout_bounds_whole_run());
    let Some(limit) = limit else {
        return job.kind.attempt(&svc, stop).await;
    };
    let (tx, rx) = watch::channel(*stop.borrow());
    let run = job.kind.attempt(&svc, rx);
    tokio::pin!(run);
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    let mut timed_out = false;
    let mut stopping = *stop.borrow();
    let mut r = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = &mut deadline, if !timed_out => {
                timed_out = true;
                log::warn!("job {}: timeout {} reached; stopping the {}", job.name, crate::time::format(limit), job.kind.name());
                let _ = tx.send(true);
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                let _ = tx.send(true);
            }
        }
    };
    if timed_out && !stopping && r.kind == RecordKind::Run {
        r.outcome = Outcome::Timeout;
        r.message = format!("timed out after {}: {}", crate::time::format(limit), r.message);
    }
    r
}

/// Every sink the plan asks for, with the jobs and the queues' statistics for the textfile.
pub fn sinks_for(plan: &Plan) -> Sinks {
    let mut s = Sinks::for_plan(plan);
    s.set_queues(queue_source(plan));
    s.set_shown(shown(plan));
    s
}

/// The enabled jobs the textfile shows from its first write (set again on a reload): checks
/// apart, as their series are not runs.
pub fn shown(plan: &Plan) -> Shown {
    let mut s = Shown::default();
    for j in plan.jobs.iter().filter(|j| j.enabled) {
        if j.kind.is_check() {
            s.checks.push(j.name.to_string());
        } else {
            s.jobs.push(j.name.to_string());
        }
    }
    s
}

/// The queue_flush jobs' rows for the textfile, read from their spools when asked (set again
/// on a reload); `None` without queues.
pub fn queue_source(plan: &Plan) -> Option<QueueSource> {
    let queues: Vec<(String, PathBuf, Duration)> = plan
        .jobs
        .iter()
        .filter(|j| j.enabled)
        .filter_map(|j| j.kind.queue().map(|q| (j.name.to_string(), q.spool.clone(), q.health_window)))
        .collect();
    if queues.is_empty() {
        return None;
    }
    Some(QueueSource(Arc::new(move |now_ms| {
        queues
            .iter()
            .filter_map(|(job, spool, window)| match queue_flush::stats(spool, *window, now_ms) {
                Ok(s) => Some(QueueRow {
                    job: job.clone(),
                    pending: s.counts.pending,
                    retrying: s.counts.retrying,
                    failed: s.counts.failed,
                    completed: s.counts.completed,
                    total: s.counts.total,
                    score: s.score,
                }),
                Err(e) => {
                    log::debug!("textfile: queue {job}: cannot read the spool {}: {e}", spool.display());
                    None
                }
            })
            .collect()
    })))
}

/// What a kind sees of its job and of the daemon.
pub struct JobServices<'a> {
    pub ctx: &'a Ctx,
    pub job: &'a Arc<Job>,
}

impl Services for JobServices<'_> {
    fn job(&self) -> &str {
        self.job.name.as_str()
    }

    fn by(&self) -> &'static str {
        self.ctx.by
    }

    fn echo(&self) -> bool {
        self.ctx.echo
    }

    fn timeout(&self) -> Option<Duration> {
        self.job.timeout
    }

    fn run_as(&self) -> Option<&RunAs> {
        self.job.run_as.as_deref()
    }

    fn env(&self, extra: &[(&str, String)]) -> Vec<(String, String)> {
        job_env(self.job, extra)
    }

    fn process<'a>(
        &'a self,
        command: &'a CommandLine,
        env: &'a [(String, String)],
        timeout: Option<Duration>,
        echo: bool,
    ) -> process::Spec<'a> {
        process_spec(self.job, command, env, timeout, echo)
    }

    /// Records the run's process group in `runtime_dir` ([`group_recorder`]).
    fn started(&self) -> crate::kinds::Started {
        group_recorder(self.ctx, self.job.name.as_str())
    }

    fn emitter(&self) -> Emit {
        let sinks = self.ctx.sinks.clone();
        Arc::new(move |r: &Record| sinks.emit(r))
    }

    fn emit(&self, r: &Record) {
        self.ctx.sinks.emit(r);
    }

    fn state(&self) -> Result<Option<JobState>, String> {
        let name = self.job.name.as_str();
        self.ctx.sinks.read(|s| s.job(name).cloned()).map_err(|e| e.to_string())
    }

    fn update(&self, u: Update) -> Result<bool, String> {
        let name = self.job.name.as_str();
        // A group that ended is dropped where its start was recorded, in runtime_dir.
        if let Update::GroupEnded(pgid) = u {
            return running::remove(&self.ctx.runtime_dir, name, pgid).map(|()| true).map_err(|e| e.to_string());
        }
        self.ctx.sinks.update(name, u).map_err(|e| e.to_string())
    }

    fn own_work(&self) -> Result<crate::kinds::OwnWork, String> {
        let boot = crate::host::boot_id().to_string();
        let mut own = crate::kinds::OwnWork::default();
        // Runs' process groups are kept in runtime_dir (`sinks::running`), by this daemon and
        // by `runner once` alike.
        for (_, groups) in running::read_all(&self.ctx.runtime_dir) {
            own.groups.extend(groups.iter().filter(|r| r.boot_id == boot).map(|r| r.pgid as i32));
        }
        let locks = std::fs::read_dir(self.ctx.runtime_dir.join("jobs")).into_iter().flatten().flatten();
        let held = locks.filter_map(|e| lock::holder(&e.path())).chain(lock::daemon(&self.ctx.runtime_dir));
        own.holders.extend(held.map(|h| h.pid as i32));
        Ok(own)
    }

    fn hook<'a>(
        &'a self,
        command: &'a CommandLine,
        extra_env: &'a [(&'a str, String)],
        what: &'a str,
        stop: watch::Receiver<bool>,
    ) -> HookFuture<'a> {
        Box::pin(run_hook(self.ctx, self.job, command, extra_env, what, stop))
    }
}

/// Runs a hook (`on_failure`, `on_alert`, `on_recover`) as a run is run: its timeout is the
/// job's, capped at 5 minutes (1 minute without one), so a stuck hook cannot hold up the job
/// for long; a stop (SIGTERM, a reload's end of the job) ends its group with the kill grace;
/// its group is recorded as running while it runs, so a daemon restarted after a crash ends
/// what is left; and how it ended is a `hook` record.
async fn run_hook(
    ctx: &Ctx,
    job: &Job,
    hook: &CommandLine,
    extra_env: &[(&str, String)],
    what: &str,
    stop: watch::Receiver<bool>,
) {
    // What the hook reacts to is on disk before it starts: in the daemon, state changes are
    // written by the writer thread a moment later, so an on_recover hook (or whatever it
    // tells) that asked `runner status` could still read the level it recovered from.
    ctx.sinks.flushed().await;
    let env = job_env(job, extra_env);
    let timeout = job.timeout.unwrap_or(Duration::from_secs(60)).min(Duration::from_secs(300));
    let spec = process_spec(job, hook, &env, Some(timeout), ctx.echo);
    let started_at = SystemTime::now();
    let f = process::run(&spec, group_recorder(ctx, job.name.as_str()), stop).await;
    if let Some(pgid) = f.pid
        && let Err(e) = running::remove(&ctx.runtime_dir, job.name.as_str(), pgid)
    {
        log::error!("job {}: cannot record the end of its {what} hook: {e}", job.name);
    }
    let mut r = crate::kinds::command::record(job.name.as_str(), Some(timeout), f);
    r.kind = RecordKind::Hook;
    r.job_kind = job.kind.tag();
    r.started_at = started_at;
    r.message = if r.message.is_empty() { format!("{what} hook") } else { format!("{what} hook: {}", r.message) };
    match r.outcome {
        Outcome::Success => log::info!("job {}: {what} ran", job.name),
        _ => log::error!("job {}: {what} did not succeed: {}", job.name, r.summary()),
    }
    ctx.sinks.emit(&r);
}

/// Records a process group of the job in `runtime_dir` (a tmpfs) when it starts, so a
/// daemon restarted after a crash can end what is left. No fsync: after a power loss
/// nothing is left.
fn group_recorder(ctx: &Ctx, job: &str) -> crate::kinds::Started {
    let name = job.to_string();
    let by = ctx.by.to_string();
    let dir = ctx.runtime_dir.clone();
    Box::new(move |pgid: u32, run_id: &str| {
        let running = Running {
            pgid,
            since_ms: epoch_ms(SystemTime::now()),
            by,
            runner_pid: crate::host::pid(),
            boot_id: crate::host::boot_id().to_string(),
            interrupted: false,
            run_id: run_id.to_string(),
        };
        if let Err(e) = running::add(&dir, &name, running) {
            log::error!("job {name}: cannot record a run start in {}: {e}", dir.display());
        }
    })
}
