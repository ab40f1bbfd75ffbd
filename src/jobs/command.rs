//! The `command` kind: one attempt is one supervised process.

use std::sync::Arc;

use tokio::sync::watch;

use super::Ctx;
use crate::config::{CommandLine, Job};
use crate::process::{self, Finished, Status};
use crate::record::{Outcome, Record, RecordKind, Trigger};
use crate::sinks::state::{Running, epoch_ms};

pub async fn attempt(ctx: &Ctx, job: &Arc<Job>, cmd: &CommandLine, stop: watch::Receiver<bool>) -> Record {
    let mut env = job.env.clone();
    env.push(("RUNNER_JOB".into(), job.name.to_string()));
    let spec = process::Spec {
        command: cmd,
        run_as: job.run_as.as_ref(),
        workdir: job.workdir.as_deref(),
        env: &env,
        umask: job.umask,
        nice: job.nice,
        timeout: job.timeout,
        kill_grace: job.kill_grace,
        capture_limit: process::CAPTURE_LIMIT,
        echo: ctx.echo,
    };
    let name = job.name.to_string();
    let by = ctx.by.to_string();
    let store = ctx.sinks.state.clone();
    let started = move |pgid: u32| {
        // Kept in the state so a daemon restarted after a crash can end what is left.
        let running = Running {
            pgid,
            since_ms: epoch_ms(std::time::SystemTime::now()),
            by,
            runner_pid: std::process::id(),
            boot_id: crate::scheduler::boot_id(),
        };
        if let Err(e) = store.update_volatile(|s| s.jobs.entry(name).or_default().running.push(running)) {
            log::error!("cannot record a run start: {e}");
        }
    };
    let f = process::run(&spec, started, stop).await;
    record(job, f)
}

pub fn record(job: &Job, f: Finished) -> Record {
    let mut tail = f.stdout_tail;
    tail.extend_from_slice(&f.stderr_tail);
    let (outcome, exit_code, signal, message) = match f.status {
        Status::Exited(0) => (Outcome::Success, Some(0), None, String::new()),
        Status::Exited(c) => (Outcome::Failure, Some(c), None, String::new()),
        Status::Signaled(s) => (Outcome::Killed, None, Some(s), String::new()),
        Status::TimedOut { signal } => (
            Outcome::Timeout,
            None,
            Some(signal),
            format!("timed out after {}", crate::config::duration::format(job.timeout.unwrap_or_default())),
        ),
        Status::Stopped { signal } => (Outcome::Stopped, None, Some(signal), "ended by runner".into()),
        Status::SpawnFailed { kind, message } => (Outcome::SpawnFailed, Some(kind.exit_code()), None, message),
    };
    Record {
        job: job.name.to_string(),
        kind: RecordKind::Run,
        job_kind: job.kind.name(),
        trigger: Trigger::Schedule,
        attempt: 1,
        started_at: f.started_at,
        duration: f.duration,
        outcome,
        exit_code,
        signal,
        pid: f.pid,
        output_tail: tail,
        message,
        value: None,
        level: None,
    }
}
