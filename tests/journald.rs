//! Records in a real journald: each test starts `systemd-journald` in a journal namespace of
//! its own (its socket is /run/systemd/journal.<ns>/socket), so tests and other users of the
//! machine never see each other's entries, and queries it with `journalctl --namespace`.
//! Needs root and the `systemd` package (.ci/run installs it); under CI=true a missing
//! prerequisite fails the test, elsewhere it is skipped with a note.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;

const JOURNALD: &str = "/lib/systemd/systemd-journald";

/// A journald of our own, stopped by its pid and its files removed on drop.
struct Journald {
    child: Child,
    ns: String,
}

impl Journald {
    fn start(tag: &str) -> Option<Journald> {
        let root = nix::unistd::geteuid().is_root();
        if !Path::new(JOURNALD).exists() || !root || Command::new("journalctl").arg("--version").output().is_err() {
            skip_missing(&format!("root, {JOURNALD} and journalctl (apt-get install systemd)"));
            return None;
        }
        let ns = format!("rt{tag}{}", std::process::id());
        let child = Command::new(JOURNALD)
            .arg(&ns)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let j = Journald { child, ns };
        wait_for(Duration::from_secs(20), "journald's socket", || j.socket().exists());
        Some(j)
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/run/systemd/journal.{}/socket", self.ns))
    }

    /// Entries matching `filters` (journalctl matches like `RUNNER_JOB=x`), polled until
    /// `want` of them are there or the deadline passes.
    fn entries(&self, filters: &[&str], want: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let o = Command::new("journalctl")
                .arg(format!("--namespace={}", self.ns))
                .args(["-o", "json", "--no-pager"])
                .args(filters)
                .output()
                .unwrap();
            let got: Vec<serde_json::Value> =
                String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
            if got.len() >= want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(format!("/run/systemd/journal.{}", self.ns));
        for dir in ["/var/log/journal", "/run/log/journal"] {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().ends_with(&format!(".{}", self.ns)) {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
    }
}

fn s(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

#[test]
fn run_records_carry_every_field_and_priority() {
    let Some(j) = Journald::start("rec") else { return };
    let sc = Scratch::new("journald-records");
    let c = sc.write(
        "supervisor.yaml",
        "version: 1\nlog:\n  job_output_to_journal: true\njobs:\n  good:\n    every: 1h\n    run: \"echo first; echo second\"\n  bad:\n    every: 1h\n    run: \"echo oops >&2; exit 3\"\n",
    );
    let sock = j.socket();
    for job in ["good", "bad"] {
        let o = sc.runner(&c).args(["once", job]).env("RUNNER_JOURNAL_SOCKET", &sock).output().unwrap();
        assert_eq!(o.status.code(), Some(if job == "good" { 0 } else { 3 }), "{}", stderr(&o));
    }
    let good = j.entries(&["RUNNER_JOB=good", "SYSLOG_IDENTIFIER=runner"], 1);
    assert_eq!(good.len(), 1, "{good:?}");
    let g = &good[0];
    for key in [
        "MESSAGE",
        "PRIORITY",
        "RUNNER_JOB",
        "RUNNER_KIND",
        "RUNNER_OUTCOME",
        "RUNNER_EXIT_STATUS",
        "RUNNER_DURATION_MS",
        "RUNNER_SEQ",
    ] {
        assert!(g[key].is_string(), "{key} missing in {g}");
    }
    assert_eq!(
        (s(g, "PRIORITY"), s(g, "RUNNER_OUTCOME"), s(g, "RUNNER_KIND")),
        ("6".into(), "success".into(), "run".into())
    );
    assert_eq!(s(g, "RUNNER_EXIT_STATUS"), "0");
    assert_eq!(s(g, "RUNNER_OUTPUT"), "first\nsecond\n");

    let bad = j.entries(&["RUNNER_JOB=bad", "SYSLOG_IDENTIFIER=runner"], 1);
    let b = &bad[0];
    assert_eq!(
        (s(b, "PRIORITY"), s(b, "RUNNER_OUTCOME"), s(b, "RUNNER_EXIT_STATUS")),
        ("3".into(), "failure".into(), "3".into())
    );
    assert!(s(b, "MESSAGE").contains("job bad failure (exit 3)"), "{b}");

    // The run id is the ring's sequence number: `runner logs --json` shows the same record.
    let logs = sc.runner(&c).args(["logs", "--json", "--job", "bad"]).output().unwrap();
    let rec: serde_json::Value = serde_json::from_str(stdout(&logs).lines().last().unwrap()).unwrap();
    assert_eq!(rec["seq"].to_string(), s(b, "RUNNER_SEQ"));

    // job_output_to_journal: the job's own lines under its own name.
    let lines = j.entries(&["SYSLOG_IDENTIFIER=good"], 2);
    let msgs: Vec<String> = lines.iter().map(|e| s(e, "MESSAGE")).collect();
    assert_eq!(msgs, ["first", "second"]);
}

#[test]
fn entries_too_big_for_a_datagram_go_by_memfd() {
    if skip_emulated(
        "qemu-user 7.2 drops a sendmsg with no data bytes (the memfd's SCM_RIGHTS datagram, as journald wants it) and returns 0",
    ) {
        return;
    }
    let Some(j) = Journald::start("big") else { return };
    let journal = runner::journal::Journal::new(&j.socket());
    let big = "x".repeat(600 * 1024);
    let mut entry = Vec::new();
    runner::journal::field(&mut entry, "MESSAGE", big.as_bytes());
    runner::journal::field(&mut entry, "RUNNER_JOB", b"huge");
    assert!(journal.send(&entry), "journald refused a {} byte entry", entry.len());
    let got = j.entries(&["RUNNER_JOB=huge"], 1);
    assert_eq!(got.len(), 1);
    // journalctl shows fields above its data threshold as null unless asked with --all.
    let o = Command::new("journalctl")
        .arg(format!("--namespace={}", j.ns))
        .args(["-o", "json", "--all", "--no-pager", "RUNNER_JOB=huge"])
        .output()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["MESSAGE"].as_str().map(str::len), Some(big.len()));
}

#[test]
fn daemon_lines_use_the_native_protocol_when_stderr_is_the_journal() {
    use std::os::unix::fs::MetadataExt;
    let Some(j) = Journald::start("lines") else { return };
    let sc = Scratch::new("journald-lines");
    let c = sc.write(
        "supervisor.yaml",
        "version: 1\njobs:\n  hooked:\n    every: 1h\n    run: \"exit 4\"\n    on_failure: \"true\"\n",
    );
    let err_path = sc.path("stderr");
    let f = std::fs::File::create(&err_path).unwrap();
    let meta = f.metadata().unwrap();
    let o = sc
        .runner(&c)
        .args(["once", "hooked"])
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env("RUNNER_JOURNAL_SOCKET", j.socket())
        .stderr(f)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4));
    let got = j.entries(&["SYSLOG_IDENTIFIER=runner", "CODE_FILE=src/jobs/mod.rs"], 1);
    let line = got.iter().find(|e| s(e, "MESSAGE").contains("on_failure ran")).unwrap_or_else(|| panic!("{got:?}"));
    assert_eq!(s(line, "PRIORITY"), "6");
    assert!(s(line, "CODE_LINE").parse::<u32>().unwrap() > 0);
    // The record went to the journal with its fields, so stderr does not repeat it.
    let text = std::fs::read_to_string(&err_path).unwrap();
    assert!(!text.contains("job hooked failure"), "{text}");
    let rec = j.entries(&["RUNNER_JOB=hooked", "RUNNER_KIND=run"], 1);
    assert_eq!(s(&rec[0], "PRIORITY"), "3");
}

#[test]
fn daemon_start_reload_and_stop_are_journal_records() {
    let Some(j) = Journald::start("daemon") else { return };
    let sc = Scratch::new("journald-daemon");
    let c = sc.write("supervisor.yaml", "version: 1\njobs:\n  idle:\n    every: 1h\n    run: \"true\"\n");
    let sock = j.socket();
    let mut d = Daemon::start_with(&sc, &c, &[("RUNNER_JOURNAL_SOCKET", sock.to_str().unwrap())]);
    let pid = d.child.id().to_string();
    let long = Duration::from_secs(30);
    wait_for(long, "startup", || d.log_text().contains("runner started"));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(long, "the reload", || d.log_text().contains("reloaded"));
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(long).success(), "{}", d.log_text());

    let got = j.entries(&["RUNNER_KIND=daemon"], 3);
    let msgs: Vec<String> = got.iter().map(|e| s(e, "MESSAGE")).collect();
    assert_eq!(msgs.len(), 3, "{got:?}");
    assert_eq!(msgs[0], format!("runner started: 1 job(s) from {}", c.display()));
    assert_eq!(msgs[1], format!("reloaded {}: 1 job(s)", c.display()));
    assert_eq!(msgs[2], "runner stopped: ended 0 running job(s)");
    // The same records as the ring's, under the same run ids.
    let o = sc.runner(&c).args(["logs", "--kind", "daemon", "--json"]).output().unwrap();
    let seqs: Vec<String> =
        stdout(&o).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].to_string()).collect();
    assert_eq!(got.iter().map(|e| s(e, "RUNNER_SEQ")).collect::<Vec<_>>(), seqs);
    for e in &got {
        assert_eq!(
            [s(e, "SYSLOG_IDENTIFIER"), s(e, "RUNNER_JOB"), s(e, "RUNNER_JOB_KIND"), s(e, "RUNNER_OUTCOME")],
            ["runner", "runner", "daemon", "success"],
            "{e}"
        );
        assert_eq!((s(e, "PRIORITY"), s(e, "RUNNER_PID")), ("6".to_string(), pid.clone()), "{e}");
        assert!(e["RUNNER_DURATION_MS"].is_string() && e.get("RUNNER_TRIGGER").is_none(), "{e}");
    }
}

#[test]
fn without_journald_the_ring_still_records() {
    let sc = Scratch::new("journald-absent");
    let c = sc.write("supervisor.yaml", "version: 1\njobs:\n  solo:\n    every: 1h\n    run: \"true\"\n");
    let o = sc.runner(&c).args(["once", "solo"]).env("RUNNER_LOG_LEVEL", "debug").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("not reachable").count(), 1, "{err}");
    let logs = sc.runner(&c).args(["logs"]).output().unwrap();
    assert!(stdout(&logs).contains("run solo success"), "{}", stdout(&logs));
}

/// A run skipped for its `when:` conditions, after its `wait:`: a journal record that names
/// the condition, with how long it waited.
#[test]
fn a_run_skipped_for_its_conditions_is_a_journal_record() {
    let Some(j) = Journald::start("cond") else { return };
    let sc = Scratch::new("journald-conditions");
    let c = sc.write(
        "supervisor.yaml",
        "version: 1\njobs:\n  gated:\n    schedule: \"@reboot\"\n    run: 'true'\n    when: {path_exists: /nonexistent/ready}\n    wait: 600ms\n    recheck: 100ms\n",
    );
    let sock = j.socket();
    let mut d = Daemon::start_with(&sc, &c, &[("RUNNER_JOURNAL_SOCKET", sock.to_str().unwrap())]);
    let got = j.entries(&["RUNNER_JOB=gated", "RUNNER_OUTCOME=skipped"], 1);
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(30));
    assert_eq!(got.len(), 1, "{got:?}");
    let e = &got[0];
    assert!(
        s(e, "MESSAGE")
            .contains("when: path_exists: /nonexistent/ready: it does not exist; still failing after waiting"),
        "{e}"
    );
    assert!(s(e, "RUNNER_DURATION_MS").parse::<u64>().unwrap() >= 600, "{e}");
}
