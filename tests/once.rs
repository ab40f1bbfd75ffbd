//! `runner once`: runs a job in the foreground through the daemon's code path, with the
//! documented exit codes, locks shared with the daemon, retries and on_failure.

mod common;
use common::*;
use std::time::{Duration, Instant};

fn cfg(s: &Scratch, jobs: &str) -> std::path::PathBuf {
    s.write("supervisor.yaml", &format!("version: 1\njobs:\n{jobs}"))
}

fn once(s: &Scratch, cfg: &std::path::Path, args: &[&str]) -> std::process::Output {
    s.runner(cfg).arg("once").args(args).output().unwrap()
}

#[test]
fn success_streams_output_and_is_recorded() {
    let s = Scratch::new("once-ok");
    let c = cfg(&s, "  hello:\n    every: 1h\n    command: [\"/bin/echo\", \"hello from the job\"]\n");
    let o = once(&s, &c, &["hello"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("hello from the job"), "{}", stdout(&o));
    let st = s.runner(&c).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["jobs"][0]["last_outcome"], "success");
    assert_eq!(v["jobs"][0]["runs"], 1);
    assert_eq!(v["daemon"]["running"], false);
}

#[test]
fn exit_codes_follow_the_table() {
    let s = Scratch::new("once-codes");
    std::fs::write(s.path("not-exec"), "#!/bin/sh\nexit 0\n").unwrap();
    let c = cfg(
        &s,
        &format!(
            "  fails:
    every: 1h
    run: \"exit 3\"
  missing:
    every: 1h
    command: [\"/nonexistent/program\"]
  noexec:
    every: 1h
    command: [\"{}\"]
  slow:
    every: 1h
    timeout: 300ms
    kill_grace: 200ms
    command: [\"/bin/sleep\", \"30\"]
  killed:
    every: 1h
    run: \"kill -9 $$\"
",
            s.path("not-exec").display()
        ),
    );
    for (job, want) in [("fails", 3), ("missing", 127), ("noexec", 126), ("slow", 124), ("killed", 137)] {
        let o = once(&s, &c, &[job]);
        assert_eq!(o.status.code(), Some(want), "job {job}: {}", stderr(&o));
    }
    let o = once(&s, &c, &["nope"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("unknown job `nope`"), "{}", stderr(&o));
    assert!(stderr(&o).contains("fails, missing, noexec, slow, killed"), "{}", stderr(&o));
}

#[test]
fn config_errors_exit_125() {
    let s = Scratch::new("once-badcfg");
    let c = cfg(&s, "  a:\n    every: 5\n    run: \"true\"\n");
    let o = once(&s, &c, &["a"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains(":4:12: "), "{}", stderr(&o));
}

#[test]
fn dry_run_runs_nothing() {
    let s = Scratch::new("once-dry");
    let marker = s.path("marker");
    let c = cfg(
        &s,
        &format!(
            "  touch:\n    every: 1h\n    timeout: 5m\n    command: [\"/usr/bin/touch\", \"{}\"]\n",
            marker.display()
        ),
    );
    let o = once(&s, &c, &["touch", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("/usr/bin/touch"), "{out}");
    assert!(out.contains("timeout:  5m"), "{out}");
    assert!(!marker.exists());
}

#[test]
fn already_running_exits_75_and_wait_waits() {
    let s = Scratch::new("once-busy");
    let log = s.path("log");
    // The second `once` must start while the first run sleeps: the emulated debug binary takes
    // most of a second to start, so the sleep is longer there.
    let secs = if emulated() { "8" } else { "1.5" };
    let c = cfg(
        &s,
        &format!(
            "  slow:\n    every: 1h\n    run: \"echo start >> {0}; sleep {secs}; echo end >> {0}\"\n",
            log.display()
        ),
    );
    let mut first = s.runner(&c).args(["once", "slow"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("start") {
        assert!(Instant::now() < deadline, "first run never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = once(&s, &c, &["slow"]);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("started by once pid {}", first.id())), "{}", stderr(&o));

    let o = once(&s, &c, &["slow", "--wait"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(first.wait().unwrap().success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "start\nend\nstart\nend\n", "the waiting run must start after the first ended");
}

#[test]
fn retries_back_off_then_succeed() {
    let s = Scratch::new("once-retry");
    let count = s.path("count");
    let c = cfg(
        &s,
        &format!(
            "  flaky:\n    every: 1h\n    retries: {{ attempts: 3, backoff: 200ms, max_backoff: 1s }}\n    run: \"echo x >> {0}; [ $(wc -l < {0}) -ge 3 ]\"\n",
            count.display()
        ),
    );
    let t = Instant::now();
    let o = once(&s, &c, &["flaky"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Two waits: at least half of 200 ms, then half of 400 ms.
    assert!(t.elapsed() >= Duration::from_millis(300), "{:?}", t.elapsed());
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 3);
    let st = s.runner(&c).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    // One fire, whatever its attempts: one successful run, no failure (the ring keeps all 3).
    assert_eq!((v["jobs"][0]["runs"].as_u64(), v["jobs"][0]["failures"].as_u64()), (Some(1), Some(0)));
    assert_eq!(v["jobs"][0]["consecutive_failures"], 0);

    std::fs::remove_file(&count).unwrap();
    let o = once(&s, &c, &["flaky", "--no-retry"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
}

#[test]
fn on_failure_gets_the_outcome_in_its_environment() {
    let s = Scratch::new("once-onfail");
    let out = s.path("alert");
    let c = cfg(
        &s,
        &format!(
            "  broken:\n    every: 1h\n    run: \"echo disk on fire; exit 4\"\n    on_failure: \"echo $RUNNER_JOB $RUNNER_OUTCOME $RUNNER_EXIT_CODE $RUNNER_EXIT_STATUS $RUNNER_OUTPUT > {}\"\n",
            out.display()
        ),
    );
    let o = once(&s, &c, &["broken"]);
    assert_eq!(o.status.code(), Some(4));
    let text = std::fs::read_to_string(&out).unwrap();
    // The status is the number alone, as the journal's RUNNER_EXIT_STATUS and systemd's
    // EXIT_STATUS are; RUNNER_EXIT_CODE says how it ended.
    assert_eq!(text.trim(), "broken failure exited 4 disk on fire");
}

#[test]
fn on_failure_of_a_killed_job_hears_killed_and_the_signal_number() {
    let s = Scratch::new("once-onfail-kill");
    let out = s.path("alert");
    let c = cfg(
        &s,
        &format!(
            "  doomed:\n    every: 1h\n    run: \"kill -9 $$\"\n    on_failure: \"echo $RUNNER_OUTCOME $RUNNER_EXIT_CODE $RUNNER_EXIT_STATUS > {}\"\n",
            out.display()
        ),
    );
    let o = once(&s, &c, &["doomed"]);
    assert_eq!(o.status.code(), Some(128 + 9), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.trim(), "killed killed 9");
}

#[test]
fn env_and_workdir_apply() {
    let s = Scratch::new("once-env");
    let c = cfg(
        &s,
        &format!(
            "  show:\n    every: 1h\n    workdir: {}\n    env: {{ GREETING: hi, PORT: 8080 }}\n    run: \"echo $GREETING $PORT $RUNNER_JOB; pwd\"\n",
            s.dir.display()
        ),
    );
    let o = once(&s, &c, &["show"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), format!("hi 8080 show\n{}\n", s.dir.display()));
}

#[test]
fn timeout_ends_the_whole_tree_even_a_grandchild_ignoring_term() {
    let s = Scratch::new("once-tree");
    let pids = s.path("pids");
    let c = cfg(
        &s,
        &format!(
            "  tree:\n    every: 1h\n    timeout: 500ms\n    kill_grace: 500ms\n    run: \"sh -c 'trap \\\"\\\" TERM; echo $$ >> {0}; exec sleep 300' & echo $$ >> {0}; wait\"\n",
            pids.display()
        ),
    );
    let t = Instant::now();
    let o = once(&s, &c, &["tree"]);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    // TERM at 500 ms, KILL 500 ms later for the grandchild that ignores TERM.
    assert!(t.elapsed() >= Duration::from_millis(900), "{:?}", t.elapsed());
    let pids: Vec<i32> = lines(&pids).iter().map(|l| l.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(!alive(pid), "pid {pid} outlived the timeout");
    }
}

#[test]
fn runs_as_another_user_with_their_environment() {
    if !nix::unistd::geteuid().is_root() {
        assert!(std::env::var("CI").is_err(), "CI runs as root; this test needs it");
        return;
    }
    let s = Scratch::new("once-user");
    let c = cfg(
        &s,
        "  who:\n    every: 1h\n    user: nobody\n    workdir: /\n    umask: \"077\"\n    run: \"id -u; id -g; echo $USER $LOGNAME $HOME; umask\"\n",
    );
    let o = once(&s, &c, &["who"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "65534", "{out}");
    assert_eq!(l[2], "nobody nobody /nonexistent", "{out}");
    assert_eq!(l[3], "0077", "{out}");
}

#[test]
fn once_on_a_check_prints_the_value_the_level_and_what_it_does() {
    let s = Scratch::new("once-check");
    let c = cfg(
        &s,
        "  full:\n    check: { metric: disk_used_percent, path: /, warn: 0, crit: 100, on_alert: \"true\", cooldown: 5m }\n  fine:\n    check: { metric: disk_used_percent, path: /, warn: 99.9, crit: 100 }\n",
    );
    let o = once(&s, &c, &["full"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("check:    full (disk_used_percent, warn 0.0%, crit 100.0%)"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("value:    ") && l.ends_with('%')), "{out}");
    assert!(out.contains("level:    warn (overall health counts it as DEGRADED)"), "{out}");
    assert!(out.contains("effect:   an alert, runs on_alert (/bin/sh -c \"true\"), repeated every 5m"), "{out}");

    let o = once(&s, &c, &["fine"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("level:    ok (overall health counts it as HEALTHY)"), "{out}");
    assert!(out.contains("effect:   none"), "{out}");
}
