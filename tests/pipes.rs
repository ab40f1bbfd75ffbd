//! Every command ends quietly when its reader goes away (`runner status | head -1`), as `ls`
//! and `journalctl` do: no panic, nothing on stderr, killed by SIGPIPE or exit 0.

mod common;
use common::*;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

/// Runs `runner ARGS` with stdout a pipe whose read end is already closed, so its first write
/// fails with EPIPE whatever the timing.
fn with_closed_stdout(s: &Scratch, c: &std::path::Path, args: &[&str]) -> std::process::Output {
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    drop(read);
    s.runner(c).args(args).stdin(Stdio::null()).stdout(Stdio::from(write)).stderr(Stdio::piped()).output().unwrap()
}

#[test]
fn every_command_ends_quietly_on_a_closed_pipe() {
    let s = Scratch::new("pipes");
    let out = s.path("ran");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  hello:\n    every: 1h\n    run: \"echo hello; echo more; touch {}\"\n  disk:\n    check: {{ metric: disk_used_percent, path: / }}\n  outbox:\n    queue_flush: {{ spool: {}, handler: [\"/bin/true\"] }}\n",
            out.display(),
            s.path("spool").display()
        ),
    );
    // A run first, so status and logs have rows to print.
    let o = s.runner(&c).args(["once", "hello"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let cases: &[&[&str]] = &[
        &["status"],
        &["status", "--json"],
        &["list"],
        &["list", "--json"],
        &["check"],
        &["health"],
        &["health", "--json"],
        &["logs"],
        &["logs", "--json"],
        &["calendar", "* * * * *", "-n", "100"],
        &["metrics", "--interval", "10ms"],
        &["metrics", "--json", "--interval", "10ms"],
        &["once", "hello"],
        &["once", "hello", "--dry-run"],
        &["once", "disk"],
        &["queue", "outbox"],
        &["--help"],
        &["status", "--help"],
    ];
    for args in cases {
        let o = with_closed_stdout(&s, &c, args);
        let quiet = o.status.code() == Some(0) || o.status.signal() == Some(libc_sigpipe());
        assert!(quiet, "runner {args:?} on a closed pipe: {:?}; stderr: {}", o.status, stderr(&o));
        let err = stderr(&o);
        // `once` logs the run on stderr as it always does; nothing else may say anything. Under
        // qemu-user, which refuses clone3, `once` also says once that jobs start through the
        // exec helper.
        let helper = |l: &str| emulated() && l.contains("[INFO] jobs start through the exec helper");
        let expected = err.lines().all(|l| args[0] == "once" && (l.contains("[INFO] job ") || helper(l)));
        assert!(expected, "runner {args:?} said something on a closed pipe: {err}");
    }
    assert!(out.exists(), "the job ran");
}

fn libc_sigpipe() -> i32 {
    nix::sys::signal::Signal::SIGPIPE as i32
}
