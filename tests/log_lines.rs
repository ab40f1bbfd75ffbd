//! The daemon's own log lines on stderr are one write(2) each: traced with strace, every
//! line `runner once` prints is exactly one write to descriptor 2, so lines never
//! interleave with the writer thread's and a line costs one system call.

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn each_log_line_is_one_write() {
    if Command::new("strace").arg("-V").stdout(Stdio::null()).status().is_err() {
        skip_missing("strace (apt-get install strace)");
        return;
    }
    let s = Scratch::new("log-lines");
    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  quiet:\n    every: 1h\n    run: \"true\"\n");
    let trace = s.path("trace");
    let template = s.runner(&c);
    let mut cmd = Command::new("strace");
    // Only runner's own writes: the job is a child, and -f is not given.
    cmd.args(["-qq", "-e", "trace=write,writev", "-e", "signal=none", "-o"])
        .arg(&trace)
        .arg(BIN)
        .args(["once", "quiet"]);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stderr(&out).lines().map(str::to_string).filter(|l| l.contains(" [")).collect();
    assert!(!lines.is_empty(), "runner once logged nothing: {}", stderr(&out));
    let text = std::fs::read_to_string(&trace).unwrap();
    let writes: Vec<&str> = text.lines().filter(|l| l.starts_with("write(2,") || l.starts_with("writev(2,")).collect();
    assert_eq!(writes.len(), lines.len(), "log lines {lines:?} took writes {writes:#?}");
}
