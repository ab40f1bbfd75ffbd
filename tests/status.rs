//! `runner status` as people read it: aligned columns, relative times beside absolute ones,
//! no time in the past for a stopped daemon, checks with their duration and next sample,
//! colour on a terminal only.

mod common;
use common::*;
use std::process::Command;

fn setup(s: &Scratch) -> std::path::PathBuf {
    let c = s.write(
        "supervisor.yaml",
        "version: 1\njobs:\n  disk:\n    check: { metric: disk_used_percent, path: / }\n  broken:\n    every: 1h\n    run: \"exit 3\"\n  nightly:\n    schedule: \"0 3 * * *\"\n    run: \"true\"\n",
    );
    for job in ["disk", "broken"] {
        s.runner(&c).args(["once", job]).output().unwrap();
    }
    c
}

#[test]
fn columns_line_up_and_times_say_how_far_away_they_are() {
    let s = Scratch::new("status-table");
    let c = setup(&s);
    let o = s.runner(&c).arg("status").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains('\x1b'), "no colour when piped: {out:?}");
    let lines: Vec<&str> = out.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("JOB ")).unwrap();
    let next_col = lines[header].find("NEXT").unwrap();
    let fails_end = lines[header].find("FAILS").unwrap() + "FAILS".len();
    let row =
        |name: &str| *lines.iter().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{out}"));
    for name in ["disk", "broken", "nightly"] {
        let r = row(name);
        // FAILS is right-aligned under its header, NEXT starts under its header.
        assert_ne!(r.as_bytes()[fails_end - 1], b' ', "{name}: FAILS not under its header:\n{out}");
        assert_ne!(r.as_bytes()[next_col], b' ', "{name}: NEXT not under its header:\n{out}");
        assert_eq!(r.as_bytes()[next_col - 1], b' ', "{name}: NEXT not under its header:\n{out}");
    }
    // The daemon is stopped: the interval job is due when it starts, never in the past.
    assert!(row("broken")[next_col..].starts_with("when the daemon starts"), "{out}");
    assert!(row("broken").contains(" ago)") || row("broken").contains("(now)"), "{out}");
    assert!(row("nightly")[next_col..].contains("(in "), "{out}");
    // A check shows how long its sample took and when the next one is due.
    let disk = row("disk");
    assert!(disk.contains(" ms "), "{out}");
    assert!(disk[next_col..].contains("(in "), "{out}");
    let check_row = lines.iter().skip(header + 4).find(|l| l.starts_with("disk ")).unwrap();
    assert!(check_row.contains("(now)") || check_row.contains(" ago)"), "{out}");
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let s = Scratch::new("status-colour");
    let c = setup(&s);
    if Command::new("script").arg("--version").output().is_err() {
        skip_missing("script(1) from util-linux, for a terminal");
        return;
    }
    let run_on_tty = |no_color: bool| {
        let mut cmd = s.runner(&c);
        cmd.env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let inner = format!("{BIN} status");
        let mut sc = Command::new("script");
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => sc.env(k, v),
                None => sc.env_remove(k),
            };
        }
        stdout(&sc.args(["-qec", &inner, "/dev/null"]).output().unwrap())
    };
    let coloured = run_on_tty(false);
    assert!(coloured.contains("\x1b[31mfailure"), "failure in red on a terminal: {coloured:?}");
    assert!(coloured.contains("\x1b[32mok"), "ok in green on a terminal: {coloured:?}");
    let plain = run_on_tty(true);
    assert!(plain.contains("failure"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
}

/// `FAILS` (and `failures`, `runs`, the textfile's `runner_job_runs_total`) count fires by
/// their last attempt, not every attempt: two fires of 3 failing attempts are 2 failures.
#[test]
fn fails_counts_failed_fires_not_attempts() {
    let s = Scratch::new("status-fires");
    let prom = s.path("export/runner.prom");
    let flag = s.path("flag");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\nexport: {{textfile: {}}}\njobs:\n  broken:\n    every: 1h\n    run: \"exit 3\"\n    retries: {{attempts: 3, backoff: 10ms, max_backoff: 10ms}}\n  \
             flaky:\n    every: 1h\n    run: \"test -e {f} && exit 0; touch {f}; exit 1\"\n    retries: {{attempts: 3, backoff: 10ms, max_backoff: 10ms}}\n",
            prom.display(),
            f = flag.display()
        ),
    );
    for job in ["broken", "broken", "flaky"] {
        s.runner(&c).args(["once", job]).output().unwrap();
    }
    let o = s.runner(&c).args(["status", "--json"]).output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let job = |n: &str| st["jobs"].as_array().unwrap().iter().find(|j| j["name"] == n).unwrap().clone();
    let (broken, flaky) = (job("broken"), job("flaky"));
    assert_eq!((broken["runs"].as_u64(), broken["failures"].as_u64()), (Some(2), Some(2)), "{broken}");
    assert_eq!(broken["consecutive_failures"], 2, "{broken}");
    assert_eq!((flaky["runs"].as_u64(), flaky["failures"].as_u64()), (Some(1), Some(0)), "{flaky}");
    let table = stdout(&s.runner(&c).arg("status").output().unwrap());
    let header = table.lines().find(|l| l.starts_with("JOB ")).unwrap();
    let fails_end = header.find("FAILS").unwrap() + "FAILS".len();
    let row = table.lines().find(|l| l.starts_with("broken ")).unwrap();
    assert_eq!(row[..fails_end].split_whitespace().last(), Some("2"), "{table}");
    let text = std::fs::read_to_string(&prom).unwrap();
    for (series, want) in [
        ("runner_job_runs_total{runner_job=\"broken\",outcome=\"failure\"} ", "2"),
        ("runner_job_runs_total{runner_job=\"broken\",outcome=\"success\"} ", "0"),
        ("runner_job_runs_total{runner_job=\"flaky\",outcome=\"success\"} ", "1"),
    ] {
        let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series}\n{text}"));
        assert_eq!(line[series.len()..].trim(), want, "{text}");
    }
    // The run log keeps every attempt.
    let logs = stdout(&s.runner(&c).args(["logs", "--json", "--job", "broken"]).output().unwrap());
    assert_eq!(logs.lines().count(), 6, "{logs}");
    assert_eq!(logs.matches("\"last_attempt\":false").count(), 4, "{logs}");
}

/// With the file on disk edited into an error while the daemon runs the old one, `status`,
/// `health`, `health --json` and `logs` show what runs (from the copy the daemon keeps in
/// runtime_dir, found through the file's own `runtime_dir:` line), with one line on stderr
/// saying the file is refused and where; `logs` finds the ring without any config.
#[test]
fn a_refused_config_on_disk_still_shows_what_the_daemon_runs() {
    let s = Scratch::new("status-refused");
    let good = format!(
        "version: 1\nstate_dir: {}\nruntime_dir: {}\njobs:\n  hello:\n    every: 300ms\n    run: \"echo hi\"\n",
        s.path("state").display(),
        s.path("run").display()
    );
    let c = s.write("supervisor.yaml", &good);
    let mut d = Daemon::start(&s, &c);
    wait_for(std::time::Duration::from_secs(10), "the first run", || s.path("state/jobs/hello.json").exists());
    // An accepted reload adds a job: the copy the commands fall back to is the new one.
    let good = format!("{good}  later:\n    every: 1h\n    run: \"true\"\n");
    std::fs::write(&c, &good).unwrap();
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(std::time::Duration::from_secs(10), "the reload", || d.log_text().contains("reloaded"));
    std::fs::write(&c, good.replace("  hello:\n", "  hello\n")).unwrap();
    // Only the config: state and runtime dirs come from the (refused) file.
    let cli = |args: &[&str]| {
        s.runner(&c).env_remove("RUNNER_STATE_DIR").env_remove("RUNNER_RUNTIME_DIR").args(args).output().unwrap()
    };
    let check = s.runner(&c).arg("check").output().unwrap();
    assert_ne!(check.status.code(), Some(0), "the file on disk is refused");
    for args in [&["status"][..], &["health"], &["health", "--json"], &["logs"]] {
        let o = cli(args);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(0), "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line on stderr: {err}");
        assert!(err.contains("refused") && err.contains(&format!("{}:", c.display())), "{args:?}: {err}");
        if args[0] == "health" {
            // The level alone when all is well (no parts: a command job has none).
            assert!(out.contains("HEALTHY"), "{args:?}: {out}");
        } else {
            assert!(out.contains("hello"), "{args:?}: {out}");
        }
        if args == ["status"] {
            assert!(out.contains("later"), "the reloaded config: {out}");
        }
        if args == ["health", "--json"] {
            let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
            assert_eq!(v["daemon_running"], true, "{out}");
        }
    }
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(std::time::Duration::from_secs(10));
    // No config file at all: the ring under the state dir the flags name.
    std::fs::remove_file(&c).unwrap();
    let o = s.runner(&c).arg("logs").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("run hello success"), "{}", stdout(&o));
}

/// While a job runs, its row is the run in progress: `running (once)`, the run's own start
/// and its time so far, not the previous run's start and duration.
#[test]
fn a_running_jobs_row_shows_the_running_runs_start() {
    let s = Scratch::new("status-running");
    let flag = s.path("slow");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  job:\n    every: 1h\n    run: \"test -e {} && sleep 3; true\"\n",
            flag.display()
        ),
    );
    assert!(s.runner(&c).args(["once", "job"]).status().unwrap().success());
    let before: serde_json::Value =
        serde_json::from_slice(&s.runner(&c).args(["status", "--json"]).output().unwrap().stdout).unwrap();
    let first_start = before["jobs"][0]["last_start"].as_str().unwrap().to_string();
    // A second later, so the two starts differ in the printed second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(&flag, "").unwrap();
    let mut slow = s.runner(&c).args(["once", "job"]).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (json, table) = loop {
        let j: serde_json::Value =
            serde_json::from_slice(&s.runner(&c).args(["status", "--json"]).output().unwrap().stdout).unwrap();
        if j["jobs"][0]["running"].is_object() {
            break (j, stdout(&s.runner(&c).arg("status").output().unwrap()));
        }
        assert!(std::time::Instant::now() < deadline, "the run never showed as running: {j}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(slow.wait().unwrap().success());
    let since = json["jobs"][0]["running"]["since"].as_str().unwrap();
    assert_ne!(since, first_start, "{json}");
    let row = table.lines().find(|l| l.starts_with("job ")).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("running (once)"), "{table}");
    assert!(row.contains(since), "the row shows the running run's start {since}:\n{table}");
    assert!(!row.contains(&first_start), "not the previous run's start {first_start}:\n{table}");
    assert!(!row.contains(" ms "), "the duration is the running run's time so far, in seconds:\n{table}");
}
