//! A job starts without a fork of the daemon: traced with strace, every process the daemon
//! creates is a `posix_spawn` (clone with CLONE_VM|CLONE_VFORK, whose cost does not grow with
//! the daemon's memory), never a fork that copies its page tables.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[test]
fn fires_start_jobs_with_vfork_not_fork() {
    let s = Scratch::new("job-start");
    let fires = s.path("fires");
    let c = s.write(
        "supervisor.yaml",
        &format!("version: 1\njobs:\n  tick:\n    every: 200ms\n    run: \"echo x >> {}\"\n", fires.display()),
    );
    let trace = s.path("trace");
    let log = s.path("daemon.log");
    let Some(cmd) = traced(&s, &c, &["-f", "-qq", "-e", "trace=clone,clone3,fork,vfork"], &trace, &["run"]) else {
        return;
    };
    let (mut tracer, pid) = start_traced_daemon(cmd, &s, &log);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(Duration::from_secs(30), "five fires", || lines(&fires).len() >= 5);
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert!(tracer.wait().unwrap().success(), "{}", log_text());

    let text = std::fs::read_to_string(&trace).unwrap();
    // Threads (CLONE_THREAD) are not processes; the rest are the job starts.
    let starts: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.contains("clone") || l.contains("fork(")) && !l.contains("CLONE_THREAD") && !l.contains("resumed>")
        })
        .collect();
    assert!(starts.len() >= 5, "strace saw {} process starts for 5 fires:\n{text}", starts.len());
    let forks: Vec<&&str> = starts.iter().filter(|l| !(l.contains("CLONE_VM") && l.contains("CLONE_VFORK"))).collect();
    assert!(forks.is_empty(), "job starts that forked the daemon: {forks:#?}");
}

/// Ignored signals stay ignored across exec, and both the helper's Rust start-up (SIGPIPE)
/// and glibc's posix_spawn (its internal signals 32 and 33) ignore some: a job must still
/// start with them at their default, or `producer | head` in a job sees EPIPE errors where
/// under cron the producer quietly dies.
#[test]
fn a_job_starts_with_sigpipe_and_the_spawn_signals_at_their_default() {
    let s = Scratch::new("job-start-signals");
    let mask = s.path("mask");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  sig:\n    every: 1h\n    run: \"grep SigIgn /proc/$$/status > {}; yes | head -n 1\"\n",
            mask.display()
        ),
    );
    let o = s.runner(&c).args(["once", "sig"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Broken pipe"), "`yes` saw EPIPE instead of SIGPIPE:\n{}", stderr(&o));
    let text = std::fs::read_to_string(&mask).unwrap();
    let hex = text.trim().trim_start_matches("SigIgn:").trim();
    let ignored = u64::from_str_radix(hex, 16).unwrap();
    for sig in [13, 32, 33] {
        assert_eq!(ignored & (1 << (sig - 1)), 0, "signal {sig} is ignored in the job (SigIgn {hex})");
    }
}
