//! `runner run`: jobs fire on schedule in a real daemon; overlap policies; signals; restart
//! after a crash ends leftover process groups; reload with good and bad configs.
//! Real time on a noisy machine: order and lower bounds, generous upper bounds.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(30);

fn cfg(s: &Scratch, jobs: &str) -> std::path::PathBuf {
    s.write("supervisor.yaml", &format!("version: 1\njobs:\n{jobs}"))
}

fn epoch_secs_lines(p: &std::path::Path) -> Vec<u64> {
    lines(p).iter().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn per_second_cron_and_interval_jobs_fire() {
    let s = Scratch::new("d-fire");
    let (a, b) = (s.path("a"), s.path("b"));
    let c = cfg(
        &s,
        &format!(
            "  every-second:\n    schedule: \"* * * * * *\"\n    run: \"date +%s >> {}\"\n  interval:\n    every: 700ms\n    run: \"date +%s >> {}\"\n",
            a.display(),
            b.display()
        ),
    );
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "3 cron fires and 3 interval fires", || lines(&a).len() >= 3 && lines(&b).len() >= 3);
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
    let secs = epoch_secs_lines(&a);
    // One fire per second: never two in the same second.
    for w in secs.windows(2) {
        assert!(w[1] > w[0], "cron fired twice in a second: {secs:?}");
    }
    let log = d.log_text();
    assert!(log.contains("job every-second success"), "{log}");
}

#[test]
fn overlap_skip_records_skips() {
    let s = Scratch::new("d-skip");
    let out = s.path("out");
    let c = cfg(&s, &format!("  slow:\n    every: 300ms\n    run: \"echo run >> {}; sleep 1\"\n", out.display()));
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "a skip", || d.log_text().contains("job slow skipped"));
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    assert!(d.log_text().contains("still running from the previous fire"), "{}", d.log_text());
}

#[test]
fn overlap_queue_runs_back_to_back() {
    let s = Scratch::new("d-queue");
    let out = s.path("out");
    let c = cfg(
        &s,
        &format!(
            "  q:\n    every: 200ms\n    overlap: queue\n    run: \"echo start >> {0}; sleep 0.6; echo end >> {0}\"\n",
            out.display()
        ),
    );
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "three runs", || lines(&out).iter().filter(|l| *l == "end").count() >= 3);
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    let l = lines(&out);
    // Never two at once: starts and ends alternate.
    for (i, line) in l.iter().enumerate() {
        assert_eq!(line, if i % 2 == 0 { "start" } else { "end" }, "{l:?}");
    }
}

#[test]
fn overlap_replace_ends_the_running_run() {
    let s = Scratch::new("d-replace");
    let out = s.path("out");
    let c = cfg(
        &s,
        &format!(
            "  r:\n    every: 500ms\n    overlap: replace\n    kill_grace: 2s\n    run: \"trap 'echo term >> {0}; exit 0' TERM; echo start >> {0}; sleep 30 & wait\"\n",
            out.display()
        ),
    );
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "a replaced run", || lines(&out).iter().filter(|l| *l == "start").count() >= 2);
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    let l = lines(&out);
    assert_eq!(l[0], "start");
    assert_eq!(l[1], "term", "the first run must get TERM before the next starts: {l:?}");
    assert!(d.log_text().contains("job r stopped"), "{}", d.log_text());
}

#[test]
fn sigterm_ends_running_jobs_and_exits_0() {
    let s = Scratch::new("d-term");
    let out = s.path("out");
    let c = cfg(
        &s,
        &format!(
            "  long:\n    every: 100ms\n    kill_grace: 5s\n    run: \"trap 'echo got-term >> {0}; exit 0' TERM; echo $$ >> {0}; sleep 60 & wait\"\n",
            out.display()
        ),
    );
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the job to start", || !lines(&out).is_empty());
    let pid: i32 = lines(&out)[0].parse().unwrap();
    let t = Instant::now();
    d.signal(Signal::SIGTERM);
    let st = d.wait_exit(LONG);
    assert_eq!(st.code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(5), "TERM was honoured, so no need to wait the grace");
    assert!(lines(&out).contains(&"got-term".to_string()));
    assert!(!alive(pid));
}

#[test]
fn a_clean_stop_removes_the_pid_file_and_a_second_daemon_leaves_it() {
    let s = Scratch::new("d-pidfile");
    let out = s.path("out");
    let c = cfg(&s, &format!("  tick:\n    every: 100ms\n    run: \"echo x >> {}\"\n", out.display()));
    let pid_file = s.path("run/runner.pid");
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the first run", || !lines(&out).is_empty());
    assert!(pid_file.exists());
    // A refused second daemon must not take the first one's pid file with it.
    let mut d2 = Daemon::start(&s, &c);
    assert_eq!(d2.wait_exit(LONG).code(), Some(1));
    assert!(pid_file.exists(), "a refused daemon removed the running one's pid file");
    d.signal(Signal::SIGTERM);
    assert_eq!(d.wait_exit(LONG).code(), Some(0));
    assert!(!pid_file.exists(), "runner.pid is left after a clean stop");
}

#[test]
fn restart_after_sigkill_ends_the_leftover_group() {
    let s = Scratch::new("d-crash");
    let out = s.path("out");
    // The grandchild ignores TERM and would outlive a crashed daemon.
    let job = |schedule: &str| {
        format!(
            "  stuck:\n    {schedule}\n    kill_grace: 500ms\n    run: \"sh -c 'trap \\\"\\\" TERM; echo $$ >> {0}; exec sleep 300' & wait\"\n",
            out.display()
        )
    };
    // The process-group path alone: in cgroup mode any runner that starts (another test's
    // too) ends a killed runner's runs once its subtree is 2 s old, and under load that can
    // come first, leaving this daemon nothing to end.
    let subreaper = [("RUNNER_CONTAINMENT", "subreaper")];
    let c2 = cfg(&s, &job("every: 200ms"));
    let mut d = Daemon::start_with(&s, &c2, &subreaper);
    wait_for(LONG, "the grandchild to start", || !lines(&out).is_empty());
    let grandchild: i32 = lines(&out)[0].parse().unwrap();
    d.signal(Signal::SIGKILL);
    d.wait_exit(LONG);
    // The daemon is reaped, so whatever its death sent is queued by now: wait until the
    // grandchild has acted on it (dead, or asleep again with nothing pending).
    wait_for(LONG, "the grandchild to settle", || !alive(grandchild) || settled(grandchild));
    assert!(alive(grandchild), "the TERM-ignoring grandchild should survive the daemon's SIGKILL");

    // Restart with the job no longer due soon: the restart alone must end the leftover.
    let c = cfg(&s, &job("schedule: \"0 0 1 1 *\""));
    let mut d2 = Daemon::start_with(&s, &c, &subreaper);
    wait_for(LONG, "the leftover to be ended", || !alive(grandchild));
    d2.signal(Signal::SIGTERM);
    d2.wait_exit(LONG);
    assert!(d2.log_text().contains("left by a previous runner"), "{}", d2.log_text());
}

#[test]
fn invalid_config_at_start_exits_78() {
    let s = Scratch::new("d-bad");
    let c = cfg(&s, "  a:\n    every: 5\n    run: \"true\"\n");
    let mut d = Daemon::start(&s, &c);
    let st = d.wait_exit(LONG);
    assert_eq!(st.code(), Some(78));
    assert!(d.log_text().contains(":4:12: "), "{}", d.log_text());
}

#[test]
fn second_daemon_refuses_and_once_sees_the_daemon_run() {
    let s = Scratch::new("d-two");
    let out = s.path("out");
    let c = cfg(&s, &format!("  long:\n    every: 100ms\n    run: \"echo x >> {}; sleep 3\"\n", out.display()));
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the job to start", || !lines(&out).is_empty());
    let mut d2 = Daemon::start(&s, &c);
    assert_eq!(d2.wait_exit(LONG).code(), Some(1));
    assert!(d2.log_text().contains("another daemon already runs"), "{}", d2.log_text());

    let o = s.runner(&c).args(["once", "long"]).output().unwrap();
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("started by daemon pid {}", d.child.id())), "{}", stderr(&o));

    let st = s.runner(&c).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["daemon"]["running"], true);
    assert_eq!(v["daemon"]["pid"], d.child.id());
    assert_eq!(v["jobs"][0]["running"]["by"], "daemon");
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
}

#[test]
fn sighup_applies_a_good_config_and_refuses_a_bad_one() {
    let s = Scratch::new("d-hup");
    let (a, b) = (s.path("a"), s.path("b"));
    let good = format!("version: 1\njobs:\n  a:\n    every: 200ms\n    run: \"echo x >> {}\"\n", a.display());
    let c = s.write("supervisor.yaml", &good);
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "job a", || !lines(&a).is_empty());

    s.write("supervisor.yaml", &format!("{good}  b:\n    every: 200ms\n    run: \"echo y >> {}\"\n", b.display()));
    d.signal(Signal::SIGHUP);
    wait_for(LONG, "job b after reload", || !lines(&b).is_empty());

    s.write("supervisor.yaml", &format!("{good}  b:\n    every: 2\n    run: \"true\"\n"));
    d.signal(Signal::SIGHUP);
    wait_for(LONG, "the refusal", || d.log_text().contains("reload refused"));
    assert!(d.log_text().contains(":7:12: "), "{}", d.log_text());
    let (na, nb) = (lines(&a).len(), lines(&b).len());
    wait_for(LONG, "both jobs to keep firing", || lines(&a).len() > na + 1 && lines(&b).len() > nb + 1);
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
}

#[test]
fn reboot_jobs_run_once_per_boot_and_catch_up_runs_missed_fires() {
    let s = Scratch::new("d-reboot");
    let (r, m) = (s.path("r"), s.path("m"));
    let c = cfg(
        &s,
        &format!(
            "  at-boot:\n    schedule: \"@reboot\"\n    run: \"echo x >> {}\"\n  nightly:\n    schedule: \"0 3 * * *\"\n    catch_up: once\n    run: \"echo x >> {}\"\n",
            r.display(),
            m.display()
        ),
    );
    // The nightly job last fired two days ago: one catch-up run, not two.
    let two_days_ago =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 2 * 86_400_000;
    std::fs::create_dir_all(s.path("state")).unwrap();
    std::fs::write(
        s.path("state/state.json"),
        format!("{{\"version\":1,\"jobs\":{{\"nightly\":{{\"last_fire_ms\":{two_days_ago}}}}}}}"),
    )
    .unwrap();
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the reboot and catch-up runs", || lines(&r).len() == 1 && lines(&m).len() == 1);
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    let mut d = Daemon::start(&s, &c);
    // Startup fires are decided before this line and started right after it, before the
    // daemon reads signals: by the time it handles TERM, any such run has started.
    wait_for(LONG, "startup", || d.log_text().contains("runner started"));
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    assert!(d.log_text().contains("stopping: ending 0 running job(s)"), "{}", d.log_text());
    assert_eq!(lines(&r).len(), 1, "@reboot runs once per boot, not per daemon start");
    assert_eq!(lines(&m).len(), 1, "caught up already");
    assert!(d.log_text().contains("runner started"));
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap()
}

#[test]
fn an_output_flood_keeps_the_daemon_memory_flat() {
    let s = Scratch::new("d-flood");
    let done = s.path("done");
    let c = cfg(
        &s,
        &format!(
            "  flood:\n    every: 200ms\n    run: \"head -c 100000000 /dev/zero; yes | head -c 20000000 >&2; touch {}\"\n",
            done.display()
        ),
    );
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "startup", || d.log_text().contains("runner started"));
    let before = rss_kib(d.child.id());
    let mut peak = before;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done.exists() {
        assert!(Instant::now() < deadline, "the flood did not finish");
        peak = peak.max(rss_kib(d.child.id()));
        std::thread::sleep(Duration::from_millis(10));
    }
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    println!("daemon RSS before {before} KiB, peak during 120 MB of output {peak} KiB");
    assert!(peak < before + 4096, "RSS grew from {before} KiB to {peak} KiB");
}

#[test]
fn max_parallel_limits_concurrent_runs() {
    let s = Scratch::new("d-parallel");
    let out = s.path("out");
    let mut jobs = String::from("max_parallel: 2\njobs:\n");
    for i in 0..4 {
        jobs.push_str(&format!(
            "  j{i}:\n    every: 200ms\n    run: \"echo start >> {0}; sleep 0.5; echo end >> {0}\"\n",
            out.display()
        ));
    }
    let c = s.write("supervisor.yaml", &format!("version: 1\n{jobs}"));
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "eight runs", || lines(&out).iter().filter(|l| *l == "end").count() >= 8);
    d.signal(Signal::SIGTERM);
    d.wait_exit(LONG);
    let mut running = 0i32;
    let mut most = 0;
    for l in lines(&out) {
        running += if l == "start" { 1 } else { -1 };
        most = most.max(running);
    }
    assert_eq!(most, 2, "at most two at once, and two did run together");
}

#[test]
fn state_dir_precedence_is_flag_then_environment_then_file() {
    let s = Scratch::new("d-precedence");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\nstate_dir: {}\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n",
            s.path("from-file").display()
        ),
    );
    let once = |envs: &[(&str, String)], args: &[String]| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.env("RUNNER_CONFIG", &c).env("RUNNER_RUNTIME_DIR", s.path("run")).env_remove("RUNNER_STATE_DIR");
        cmd.env("RUNNER_SYSLOG_SOCKET", s.path("no-syslog-socket"));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let o = cmd.args(args).args(["once", "a"]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    once(&[], &[]);
    assert!(s.path("from-file/jobs/a.json").exists(), "the file's state_dir is used when nothing outranks it");
    once(&[("RUNNER_STATE_DIR", s.path("from-env").display().to_string())], &[]);
    assert!(s.path("from-env/jobs/a.json").exists(), "the environment outranks the file");
    once(
        &[("RUNNER_STATE_DIR", s.path("from-env2").display().to_string())],
        &["--state-dir".into(), s.path("from-flag").display().to_string()],
    );
    assert!(s.path("from-flag/jobs/a.json").exists(), "the flag outranks the environment");
    assert!(!s.path("from-env2").exists());
}

#[test]
fn jitter_spreads_jobs_by_a_fixed_offset_within_the_window() {
    let s = Scratch::new("d-jitter");
    let mut jobs = String::new();
    for i in 0..6 {
        jobs.push_str(&format!(
            "  j{i}:\n    schedule: \"0 0 1 1 *\"\n    timezone: UTC\n    jitter: 1h\n    run: \"true\"\n"
        ));
    }
    let c = cfg(&s, &jobs);
    let next = || -> Vec<String> {
        let o = s.runner(&c).args(["list", "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array().unwrap().iter().map(|j| j["next_due"].as_str().unwrap().to_string()).collect()
    };
    let first = next();
    assert_eq!(first, next(), "the offsets are fixed per host and job");
    let mut distinct = first.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 5, "jobs should spread out: {first:?}");
    for t in &first {
        let t: jiff::Timestamp = t.parse().unwrap();
        let z = t.to_zoned(jiff::tz::TimeZone::UTC);
        assert_eq!((z.month(), z.day(), z.hour()), (1, 1, 0), "within the hour after the slot: {z}");
    }
}

#[test]
fn start_reload_and_stop_are_daemon_records_in_the_ring() {
    let s = Scratch::new("d-records");
    let good = "version: 1\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n";
    let c = s.write("supervisor.yaml", good);
    // A run of the job first: its record is in the ring beside the daemon's, and in the state.
    assert!(s.runner(&c).args(["once", "a"]).output().unwrap().status.success());
    let mut d = Daemon::start(&s, &c);
    let pid = d.child.id();
    wait_for(LONG, "startup", || d.log_text().contains("runner started"));
    d.signal(Signal::SIGHUP);
    wait_for(LONG, "the reload", || d.log_text().contains("reloaded"));
    s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 2\n    run: \"true\"\n");
    d.signal(Signal::SIGHUP);
    wait_for(LONG, "the refusal", || d.log_text().contains("reload refused"));
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
    s.write("supervisor.yaml", good);

    let o = s.runner(&c).args(["logs", "--kind", "daemon", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let recs: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<(String, String)> = recs
        .iter()
        .map(|r| (r["outcome"].as_str().unwrap().to_string(), r["message"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], ("success".into(), format!("runner started: 1 job(s) from {}", c.display())));
    assert_eq!(got[1], ("success".into(), format!("reloaded {}: 1 job(s)", c.display())));
    assert_eq!(got[2].0, "failure");
    assert!(got[2].1.starts_with("reload refused, the running config stays:\n"), "{got:?}");
    assert!(got[2].1.contains(":4:12: "), "the refusal names the place: {got:?}");
    assert_eq!(got[3], ("success".into(), "runner stopped: ended 0 running job(s)".into()));
    for r in &recs {
        assert_eq!(
            (r["kind"].as_str(), r["job"].as_str(), r["job_kind"].as_str()),
            (Some("daemon"), Some("runner"), Some("daemon"))
        );
        assert_eq!(r["pid"].as_u64(), Some(u64::from(pid)), "{r}");
    }
    // The text form, and nothing of a job's: the daemon's events change no job's state.
    let text = stdout(&s.runner(&c).args(["logs", "--kind", "daemon"]).output().unwrap());
    assert!(
        text.lines().next().is_some_and(|l| l.contains(" daemon runner success: runner started: 1 job(s)")),
        "{text}"
    );
    // The state is one file per job: `a` has one, the daemon's events made none.
    assert!(s.path("state/jobs/a.json").exists(), "job a has no state file");
    assert!(!s.path("state/jobs/runner.json").exists(), "the daemon's events changed a job's state");
}

/// Milliseconds since the epoch, as `date +%s%3N` prints them.
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn jobs_keep_firing_while_a_reload_parses_a_large_config() {
    let s = Scratch::new("d-reload-big");
    let ticks = s.path("ticks");
    let tick = format!("  tick:\n    every: 50ms\n    run: \"date +%s%3N >> {}\"\n", ticks.display());
    let c = cfg(&s, &tick);
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the first ticks", || lines(&ticks).len() >= 2);
    // Nearly 1 MiB: 999 more cron jobs with long commands, the largest config runner reads.
    let cmd = "x".repeat(900);
    let more: String = (0..999)
        .map(|i| format!("  job{i:04}:\n    schedule: \"*/5 * * * MON-FRI\"\n    run: \"echo {cmd}\"\n"))
        .collect();
    std::fs::write(&c, format!("version: 1\njobs:\n{tick}{more}")).unwrap();
    let sent = now_ms();
    d.signal(Signal::SIGHUP);
    wait_for(LONG, "the reload", || d.log_text().contains("reloaded"));
    let done = now_ms();
    let during: Vec<u64> =
        lines(&ticks).iter().filter_map(|l| l.trim().parse().ok()).filter(|t| *t > sent && *t < done).collect();
    // Parsing nearly 1 MiB takes a debug build far longer than a tick's 50 ms, so a parse on
    // the event loop would leave no tick inside the window.
    assert!(done - sent >= 150, "the reload took {} ms: too quick to tell", done - sent);
    assert!(!during.is_empty(), "no job fired during the {} ms the reload took", done - sent);
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

/// A reload parses the config on a blocking thread; that thread ends soon after (tokio keeps
/// an idle one 10 s by default, with its stack), so an idle daemon is back to its event loop
/// and its writer thread.
#[test]
fn a_reload_leaves_no_thread_behind() {
    if skip_emulated("qemu-user adds threads of its own to /proc/PID/task") {
        return;
    }
    let s = Scratch::new("d-threads");
    let c = cfg(&s, "  far:\n    schedule: \"0 0 1 1 *\"\n    run: \"true\"\n");
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "startup", || d.log_text().contains("runner started"));
    let pid = d.child.id();
    // A blocking thread of the start (the pings outbox scan, the state's first read) ends
    // within tokio's keep-alive (1 s); then the idle daemon is its event loop and its writer.
    wait_for(Duration::from_secs(8), "the start's blocking threads to end", || threads(pid) == 2);
    let idle = threads(pid);
    assert_eq!(idle, 2, "the event loop and the writer");
    d.signal(Signal::SIGHUP);
    wait_for(LONG, "the reload", || d.log_text().contains("reloaded"));
    wait_for(Duration::from_secs(8), "the parse thread to end", || threads(pid) == idle);
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
}

/// How many "settled <why>" debug lines the log holds.
fn settle_lines(log: &str, why: &str) -> usize {
    let tag = format!("settled {why}");
    log.lines().filter(|l| l.ends_with(&tag)).count()
}

/// Settling gives the heap that start-up, a reload or a run freed back to the kernel, and
/// the daemon goes on working: jobs run after it, a reload applies and its new job runs, and
/// it stops cleanly.
#[test]
fn settling_trims_and_the_daemon_keeps_working() {
    let s = Scratch::new("d-settle");
    let (tick, tock) = (s.path("tick.out"), s.path("tock.out"));
    let job = |name: &str, out: &std::path::Path| {
        format!("  {name}:\n    every: 16s\n    run: \"date +%s >> {}\"\n", out.display())
    };
    let c = cfg(&s, &job("tick", &tick));
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "startup", || settle_lines(&d.log_text(), "after start") > 0);
    wait_for(LONG, "a first run", || !lines(&tick).is_empty());
    // The run ends and the daemon will sleep about 16 s: it settles 3 s after the run.
    wait_for(LONG, "settling after the run", || settle_lines(&d.log_text(), "after runs") > 0);
    cfg(&s, &format!("{}{}", job("tick", &tick), job("tock", &tock)));
    d.signal(Signal::SIGHUP);
    wait_for(LONG, "the reload", || settle_lines(&d.log_text(), "after a reload") > 0);
    wait_for(LONG, "the new job's run", || !lines(&tock).is_empty());
    wait_for(LONG, "a second run of the first job", || lines(&tick).len() >= 2);
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success(), "{}", d.log_text());
    let log = d.log_text();
    assert!(!log.contains("panicked") && !log.contains("[ERROR]"), "{log}");
}
