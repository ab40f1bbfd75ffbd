//! The `command` kind: one attempt is one supervised process (`command:` argv or `run:`
//! shell line); `timeout:` bounds that process.

use tokio::sync::watch;

use super::{DryRun, Given, HealthRule, KindImpl, Problem, Services};
use crate::process::{self, Argv, CommandLine, Finished, Status};
use crate::record::{Kind, Outcome, Record, RecordKind, Trigger};

pub async fn attempt(svc: &dyn Services, cmd: &CommandLine, stop: watch::Receiver<bool>) -> Record {
    let env = svc.env(&[]);
    let spec = svc.process(cmd, &env, svc.timeout(), svc.echo());
    let f = process::run(&spec, svc.started(), stop).await;
    record(svc.job(), svc.timeout(), f)
}

impl KindImpl for CommandLine {
    fn tag(&self) -> Kind {
        Kind::Command
    }

    // A command has no sensible default interval.
    fn default_every(&self) -> Option<std::time::Duration> {
        None
    }

    // `timeout:` bounds the process, inside the attempt.
    fn timeout_bounds_whole_run(&self) -> bool {
        false
    }

    fn health_rule(&self) -> HealthRule {
        HealthRule::LastRun
    }

    fn dry_run(&self, _who: &str) -> DryRun<'_> {
        DryRun::Process(self)
    }
}

/// The `command:` or `run:` a job has, with the field it is under; `None` without either.
pub fn from_blocks(
    job: &str,
    command: Option<Argv>,
    run: Option<String>,
    _: &Given<'_>,
) -> Option<(&'static str, Result<CommandLine, Vec<Problem>>)> {
    Some(match (command, run) {
        (Some(argv), None) => ("command", Ok(CommandLine::Argv(argv.0))),
        (None, Some(line)) if !line.trim().is_empty() => ("run", Ok(CommandLine::Shell(line))),
        (None, Some(_)) => (
            "run",
            Err(vec![Problem::job(
                "run",
                format!("job `{job}` has an empty `run:` line; write the shell command to run"),
            )]),
        ),
        (Some(_), Some(_)) => (
            "command",
            Err(vec![Problem::job(
                "run",
                format!(
                    "job `{job}` has both `command:` and `run:`; keep one (`command:` is an argv list, `run:` a shell line)"
                ),
            )]),
        ),
        (None, None) => return None,
    })
}

/// The record of one finished command process.
pub fn record(job: &str, timeout: Option<std::time::Duration>, f: Finished) -> Record {
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
            format!("timed out after {}", crate::time::format(timeout.unwrap_or_default())),
        ),
        Status::Stopped { signal } => (Outcome::Stopped, None, Some(signal), "ended by runner".into()),
        Status::SpawnFailed { kind, message } => (Outcome::SpawnFailed, Some(kind.exit_code()), None, message),
    };
    Record {
        job: job.to_string(),
        kind: RecordKind::Run,
        job_kind: Kind::Command,
        trigger: Trigger::Schedule,
        attempt: 1,
        last_attempt: true,
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
        cpu_usec: f.cpu_usec,
        memory_peak_bytes: f.memory_peak_bytes,
    }
}
