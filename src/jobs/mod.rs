//! What a job does when it fires, the same for the daemon and `runner once`: take the job's
//! lock, run attempts with retries and backoff, hand each record to the sinks, and run
//! `on_failure` after the last failed attempt.
//!
//! Each kind lives in its own file and only knows how to make one attempt; locking, retries
//! and recording are shared here. Nothing here decides *when* a job runs.

pub mod check;
pub mod command;
pub mod orphan_sweep;
pub mod queue_flush;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::config::{CommandLine, Job, JobKind};
use crate::lock::{self, Try};
use crate::process;
use crate::record::{Outcome, Record, RecordKind, Trigger};
use crate::sinks::Sinks;
use crate::sinks::state::Running;
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
}

#[derive(Clone, Copy, Debug)]
pub struct Request {
    pub trigger: Trigger,
    /// One attempt only, whatever `retries:` says (`runner once --no-retry`).
    pub no_retry: bool,
    /// Wait for the job's lock instead of recording a skip (`runner once --wait`).
    pub wait: bool,
}

/// Runs a job to its final outcome and returns the last record.
pub async fn execute(ctx: &Ctx, job: &Arc<Job>, req: Request, mut stop: watch::Receiver<bool>) -> Record {
    let kind = job.kind.name();
    let name = job.name.as_str();
    if let Some(reason) = blocked_by_dependency(ctx, job) {
        let r = Record::skipped(name, kind, req.trigger, reason);
        ctx.sinks.emit(&r);
        return r;
    }
    let _held = match lock::try_job(&ctx.runtime_dir, name, ctx.by) {
        Ok(Try::Acquired(h)) => h,
        Ok(Try::Busy(holder)) if req.wait => {
            if let Some(h) = &holder {
                log::info!("job {name} is running ({} pid {}); waiting for it to finish", h.by, h.pid);
            }
            let (dir, n, by) = (ctx.runtime_dir.clone(), name.to_string(), ctx.by);
            match tokio::task::spawn_blocking(move || lock::wait_job(&dir, &n, by)).await {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => return lock_failed(job, req, &e.to_string()),
                Err(e) => return lock_failed(job, req, &e.to_string()),
            }
        }
        Ok(Try::Busy(holder)) => {
            let r = Record::skipped(name, kind, req.trigger, already_running(holder.as_ref()));
            ctx.sinks.emit(&r);
            return r;
        }
        Err(e) => return lock_failed(job, req, &e.to_string()),
    };

    let attempts = if req.no_retry { 1 } else { job.retries.attempts };
    let mut attempt = 1;
    let last = loop {
        let mut r = match &job.kind {
            JobKind::Command(cmd) => command::attempt(ctx, job, cmd, stop.clone()).await,
            JobKind::QueueFlush(q) => queue_flush::attempt(ctx, job, q, stop.clone()).await,
            JobKind::OrphanSweep(spec) => orphan_sweep::attempt(ctx, job, spec, stop.clone()).await,
            JobKind::Check(spec) => check::attempt(ctx, job, spec, stop.clone()).await,
        };
        r.trigger = req.trigger;
        r.attempt = attempt;
        ctx.sinks.emit(&r);
        if !r.outcome.is_failure() || attempt >= attempts {
            break r;
        }
        let delay = backoff(job.retries.backoff, job.retries.max_backoff, attempt);
        log::info!("job {name}: attempt {attempt} of {attempts} failed; retrying in {} ms", delay.as_millis());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => break r,
        }
        attempt += 1;
    };
    if last.outcome.is_failure()
        && let Some(hook) = &job.on_failure
    {
        run_on_failure(ctx, job, hook, &last).await;
    }
    last
}

/// Why a job with `depends_on:` may not run now: a named check is not at level ok (or has
/// no level yet). Read from the persisted state, where checks keep their level.
fn blocked_by_dependency(ctx: &Ctx, job: &Job) -> Option<String> {
    if job.depends_on.is_empty() {
        return None;
    }
    let state = match ctx.sinks.state.load() {
        Ok(s) => s,
        Err(e) => return Some(format!("cannot read the state to judge depends_on: {e}")),
    };
    let mut blocking = Vec::new();
    for dep in &job.depends_on {
        let level = state.job(&dep.check).and_then(|j| j.check.as_ref()).and_then(|c| c.level.clone());
        match level.as_deref() {
            Some("ok") => {}
            Some(l) => blocking.push(format!("check `{}` is {l}", dep.check)),
            None => blocking.push(format!("check `{}` has no result yet", dep.check)),
        }
    }
    (!blocking.is_empty()).then(|| format!("depends_on: {}, not ok", blocking.join(", ")))
}

fn lock_failed(job: &Job, req: Request, err: &str) -> Record {
    let mut r = Record::skipped(job.name.as_str(), job.kind.name(), req.trigger, String::new());
    r.kind = RecordKind::Run;
    r.outcome = Outcome::SpawnFailed;
    r.message = format!("cannot take the job lock: {err}");
    r
}

pub fn already_running(holder: Option<&lock::Holder>) -> String {
    match holder {
        Some(h) => {
            let since = jiff::Timestamp::from_millisecond(h.since_ms)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default();
            format!("already running (started by {} pid {} at {since})", h.by, h.pid)
        }
        None => "already running".to_string(),
    }
}

/// Exponential backoff with "equal jitter": half fixed, half random, so retries from many
/// boxes after a shared outage spread out but never come sooner than half the step.
pub fn backoff(base: Duration, max: Duration, failed_attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(failed_attempt.saturating_sub(1)).unwrap_or(u32::MAX));
    let step = exp.min(max);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let frac = f64::from(nanos % 1_000_000) / 1_000_000.0;
    step / 2 + step.div_f64(2.0).mul_f64(frac)
}

async fn run_on_failure(ctx: &Ctx, job: &Job, hook: &CommandLine, last: &Record) {
    let env = [
        ("RUNNER_OUTCOME", last.outcome.as_str().to_string()),
        ("RUNNER_EXIT_STATUS", last.status_text()),
        ("RUNNER_OUTPUT", String::from_utf8_lossy(&last.output_tail).into_owned()),
    ];
    run_hook(ctx, job, hook, &env, "on_failure").await;
}

/// The environment every process of a job gets: the job's `env:`, `RUNNER_JOB`, then `extra`.
pub(crate) fn job_env(job: &Job, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut env = job.env.clone();
    env.push(("RUNNER_JOB".into(), job.name.to_string()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    env
}

/// How a process of this job runs: the job's user, directory, umask, nice and kill grace.
/// The timeout is the caller's: a command's, a handler's or a hook's.
pub(crate) fn process_spec<'a>(
    job: &'a Job,
    command: &'a CommandLine,
    env: &'a [(String, String)],
    timeout: Option<Duration>,
    echo: bool,
) -> process::Spec<'a> {
    process::Spec {
        command,
        run_as: job.run_as.as_ref(),
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

/// A `started` callback that records the run's process group in the job's state, so a daemon
/// restarted after a crash can end what is left. No fsync: after a power loss nothing is left.
pub(crate) fn record_start(ctx: &Ctx, job: &Job) -> impl FnOnce(u32) + Send + 'static {
    let name = job.name.to_string();
    let by = ctx.by.to_string();
    let store = ctx.sinks.state.clone();
    move |pgid: u32| {
        let running = Running {
            pgid,
            since_ms: epoch_ms(SystemTime::now()),
            by,
            runner_pid: std::process::id(),
            boot_id: crate::host::boot_id().to_string(),
        };
        if let Err(e) = store.update_volatile(|s| s.jobs.entry(name).or_default().running.push(running)) {
            log::error!("cannot record a run start: {e}");
        }
    }
}

/// Runs a hook (`on_failure`, `on_alert`, `on_recover`) to completion and logs how it went.
/// Its timeout is the job's, capped at 5 minutes (1 minute without one), so a stuck hook
/// cannot hold up the job for long.
pub(crate) async fn run_hook(ctx: &Ctx, job: &Job, hook: &CommandLine, extra_env: &[(&str, String)], what: &str) {
    let env = job_env(job, extra_env);
    let timeout = job.timeout.unwrap_or(Duration::from_secs(60)).min(Duration::from_secs(300));
    let spec = process_spec(job, hook, &env, Some(timeout), ctx.echo);
    let (_tx, rx) = watch::channel(false);
    match process::run(&spec, |_| {}, rx).await.status {
        process::Status::Exited(0) => log::info!("job {}: {what} ran", job.name),
        other => log::error!("job {}: {what} did not succeed: {other:?}", job.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds() {
        let b = Duration::from_secs(10);
        let max = Duration::from_secs(60);
        for (attempt, full) in [(1, 10), (2, 20), (3, 40), (4, 60), (30, 60)] {
            let d = backoff(b, max, attempt);
            let full = Duration::from_secs(full);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} outside [{:?}, {full:?}]", full / 2);
        }
    }
}
