//! The `command` kind: one attempt is one supervised process.

use std::sync::Arc;

use tokio::sync::watch;

use super::Ctx;
use crate::config::{CommandLine, Job};
use crate::process::{self, Finished, Status};
use crate::record::{Outcome, Record, RecordKind, Trigger};

pub async fn attempt(ctx: &Ctx, job: &Arc<Job>, cmd: &CommandLine, stop: watch::Receiver<bool>) -> Record {
    let env = super::job_env(job, &[]);
    let spec = super::process_spec(job, cmd, &env, job.timeout, ctx.echo);
    let f = process::run(&spec, super::record_start(ctx, job), stop).await;
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
            format!("timed out after {}", crate::time::format(job.timeout.unwrap_or_default())),
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
