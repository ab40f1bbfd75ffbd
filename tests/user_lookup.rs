//! Users and groups are resolved when the config is loaded, not when a job fires: traced with
//! strace, the daemon opens /etc/passwd and /etc/group at start and then neither for fires
//! (its environment lacking HOME, USER and SHELL, which a run used to look up each time) nor
//! for a SIGHUP that changed neither file.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Successful opens of `path` in an strace log.
fn opens(trace: &std::path::Path, path: &str) -> usize {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    text.lines().filter(|l| l.contains(&format!("\"{path}\"")) && !l.contains("= -1")).count()
}

#[test]
fn fires_and_an_unchanged_reload_do_not_read_the_user_database() {
    let s = Scratch::new("user-lookup");
    let fires = s.path("fires");
    let c = s.write(
        "supervisor.yaml",
        &format!("version: 1\njobs:\n  tick:\n    every: 200ms\n    run: \"echo x >> {}\"\n", fires.display()),
    );
    let trace = s.path("trace");
    let log = s.path("daemon.log");
    let Some(mut cmd) = traced(&s, &c, &["-f", "-qq", "-e", "trace=open,openat,openat2"], &trace, &["run"]) else {
        return;
    };
    // Without these the own user's entry is needed for every run's environment.
    for k in ["HOME", "USER", "LOGNAME", "SHELL"] {
        cmd.env_remove(k);
    }
    let (mut tracer, pid) = start_traced_daemon(cmd, &s, &log);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    let at_start = (opens(&trace, "/etc/passwd"), opens(&trace, "/etc/group"));
    assert!(at_start.0 >= 1 && at_start.1 >= 1, "strace saw no load of the user database: {at_start:?}");
    let before = lines(&fires).len();
    wait_for(Duration::from_secs(30), "five fires", || lines(&fires).len() >= before + 5);
    kill(Pid::from_raw(pid), Signal::SIGHUP).unwrap();
    wait_for(Duration::from_secs(30), "the reload", || log_text().contains("reloaded "));
    let after_reload = lines(&fires).len();
    wait_for(Duration::from_secs(30), "fires after the reload", || lines(&fires).len() >= after_reload + 3);
    let seen = (opens(&trace, "/etc/passwd"), opens(&trace, "/etc/group"));

    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    let status = tracer.wait().unwrap();
    assert!(status.success(), "{}", log_text());
    assert_eq!(seen, at_start, "fires or the reload opened the user database again; log:\n{}", log_text());
}
