//! What a newcomer hit in a first hour (issue 28), through the real binary: a missing config
//! said to be missing, once, where it matters; NEXT of interval jobs the daemon's real time;
//! `status` showing the daemon's containment, not the caller's (issue 32 too).

mod common;
use common::*;
use std::time::Duration;

fn json(o: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

fn job<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    let jobs = if v.is_array() { v } else { &v["jobs"] };
    jobs.as_array().unwrap().iter().find(|j| j["name"] == name).unwrap_or_else(|| panic!("no job {name}: {v}"))
}

fn ms(t: &serde_json::Value) -> i64 {
    t.as_str().unwrap_or_else(|| panic!("not a time: {t}")).parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn wait_daemon_info(s: &Scratch) {
    wait_for(Duration::from_secs(30), "the daemon's daemon.json", || s.path("run/daemon.json").exists());
}

#[test]
fn a_missing_config_is_said_to_be_missing_once_and_only_where_it_matters() {
    let s = Scratch::new("newcomer-missing");
    let missing = s.path("nowhere/supervisor.yaml");
    // No daemon: status and health need the jobs, so they say the file is missing, once.
    for cmd in ["status", "health"] {
        let o = s.runner(&missing).arg(cmd).output().unwrap();
        let e = stderr(&o);
        assert!(!o.status.success(), "{cmd}: {e}");
        assert_eq!(e.matches("not found").count(), 1, "{cmd} says it once:\n{e}");
        assert!(e.contains(missing.to_str().unwrap()) && !e.contains("refused"), "{cmd}:\n{e}");
        assert_eq!(e.lines().count(), 1, "{cmd}:\n{e}");
    }
    // `logs` with no run log yet: says that, and nothing of the config it did not need.
    let o = s.runner(&missing).arg("logs").output().unwrap();
    let e = stderr(&o);
    assert!(!o.status.success() && e.contains("no run log at") && !e.contains("refused"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");

    // A daemon running on a config elsewhere, the caller naming a missing one.
    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  tick:\n    every: 1h\n    run: \"true\"\n");
    let d = Daemon::start(&s, &c);
    wait_daemon_info(&s);
    for cmd in ["status", "health"] {
        let o = s.runner(&missing).arg(cmd).output().unwrap();
        let e = stderr(&o);
        assert!(o.status.success(), "{cmd}: {e}\n{}", stdout(&o));
        assert_eq!(e.lines().count(), 1, "{cmd}: one line about the file:\n{e}");
        assert!(e.contains(&format!("there is no config at {}", missing.display())), "{cmd}:\n{e}");
        assert!(e.contains(c.to_str().unwrap()) && !e.contains("refused"), "{cmd}:\n{e}");
    }
    assert!(stdout(&s.runner(&missing).arg("status").output().unwrap()).contains("tick"));
    // The run log needs no config: nothing said about it.
    let o = s.runner(&missing).arg("logs").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "logs says nothing of a config it does not need");
    assert!(stdout(&o).contains("runner started"), "{}", stdout(&o));
    drop(d);
}

/// Interval jobs: NEXT is the daemon's real time from its start (status, list, --json), and
/// after a `runner once` still what the daemon will do: its next scheduled fire is then.
#[test]
fn next_of_interval_jobs_is_when_the_daemon_fires_them() {
    let s = Scratch::new("newcomer-next");
    let c = s.write(
        "supervisor.yaml",
        "version: 1\njobs:\n  hourly:\n    every: 1h\n    run: \"true\"\n  tick:\n    every: 4s\n    run: \"true\"\n",
    );
    let d = Daemon::start(&s, &c);
    wait_daemon_info(&s);
    let status = json(&s.runner(&c).args(["status", "--json"]).output().unwrap());
    let since = ms(&status["daemon"]["since"]);
    let hourly = ms(&job(&status, "hourly")["next_due"]);
    assert!((hourly - (since + 3_600_000)).abs() < 5_000, "hourly is due an hour after the start: {status}");
    let list = json(&s.runner(&c).args(["list", "--json"]).output().unwrap());
    assert_eq!(ms(&job(&list, "hourly")["next_due"]), hourly, "list agrees with status: {list}");
    let text = stdout(&s.runner(&c).arg("status").output().unwrap());
    let row = text.lines().find(|l| l.starts_with("hourly")).unwrap();
    assert!(row.contains(job(&status, "hourly")["next_due"].as_str().unwrap()) && row.contains("(in "), "{row}");
    let row = stdout(&s.runner(&c).arg("list").output().unwrap());
    assert!(!row.contains("after start"), "{row}");

    // A hand run between the daemon's fires does not move them; NEXT says when it fires.
    let o = s.runner(&c).args(["once", "tick"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Within one interval of the time `status` ran, which is somewhere between these two (it
    // takes most of a second on the emulated debug binary, so a fire can fall due meanwhile).
    let before = jiff::Timestamp::now().as_millisecond();
    let after = json(&s.runner(&c).args(["status", "--json"]).output().unwrap());
    let now = jiff::Timestamp::now().as_millisecond();
    let next = ms(&job(&after, "tick")["next_due"]);
    assert!(
        next >= before - 200 && next <= now + 4_200,
        "tick's NEXT {next} is within one interval of status's run, {before} to {now}"
    );
    let mut fired = None;
    wait_for(Duration::from_secs(20), "the daemon's next fire of tick", || {
        let o = s.runner(&c).args(["logs", "--json", "--job", "tick"]).output().unwrap();
        fired = stdout(&o)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["trigger"] == "schedule")
            .map(|r| r["realtime_us"].as_i64().unwrap() / 1000 - r["duration_ms"].as_i64().unwrap_or(0))
            .find(|&start| start >= next - 1_000);
        fired.is_some()
    });
    let fired = fired.unwrap();
    assert!(fired >= next - 50 && fired <= next + 3_000, "NEXT said {next}; the daemon fired at {fired}");
    drop(d);
}

fn daemon_containment(d: &Daemon) -> String {
    let log = d.log_text();
    let line = log.lines().find_map(|l| l.split_once("containment: ")).map(|(_, c)| c.to_string());
    line.unwrap_or_else(|| panic!("the daemon logs its containment:\n{log}"))
}

/// `status` prints what the daemon uses (the cgroup it made, with its real name), whatever
/// the caller's own cgroup and environment would give.
#[test]
fn status_shows_the_daemons_containment_not_the_callers() {
    let s = Scratch::new("newcomer-contain");
    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n");
    let o = s.runner(&c).args(["status", "--json"]).output().unwrap();
    assert!(json(&o)["containment"].is_null(), "no daemon, no containment: {}", stdout(&o));

    // The daemon in subreaper mode; the caller's environment does not say so.
    let mut d = Daemon::start_with(&s, &c, &[("RUNNER_CONTAINMENT", "subreaper")]);
    wait_daemon_info(&s);
    let v = json(&s.runner(&c).env_remove("RUNNER_CONTAINMENT").args(["status", "--json"]).output().unwrap());
    assert_eq!(v["containment"]["mode"], "subreaper", "{v}");
    assert_eq!(v["containment"]["detail"].as_str().unwrap(), daemon_containment(&d), "{v}");
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(30));
    let _ = std::fs::remove_file(s.path("run/daemon.json"));

    // The daemon as it chooses; the caller asking for subreaper in its own environment.
    let d = Daemon::start(&s, &c);
    wait_daemon_info(&s);
    let used = daemon_containment(&d);
    let o = s.runner(&c).env("RUNNER_CONTAINMENT", "subreaper").args(["status", "--json"]).output().unwrap();
    let v = json(&o);
    assert_eq!(v["containment"]["detail"].as_str().unwrap(), used, "{v}");
    let text = stdout(&s.runner(&c).env("RUNNER_CONTAINMENT", "subreaper").arg("status").output().unwrap());
    assert!(text.contains(&format!("containment: {used}\n")), "{text}");
    assert!(!text.contains("runner.PID"), "no placeholder: {text}");
    if let Some(path) = used.strip_prefix("cgroup (").and_then(|r| r.strip_suffix(')')) {
        assert_eq!(v["containment"]["mode"], "cgroup");
        let name = std::path::Path::new(path).file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("runner.{}.", d.child.id())), "the daemon's own cgroup: {path}");
        assert!(std::path::Path::new(path).is_dir(), "{path} exists while the daemon runs");
    } else {
        skip_missing("a writable cgroup2 mount (the cgroup half of the containment case)");
    }
    drop(d);
}

/// A daemon a test kills (SIGKILL: it cannot clean up) leaves no cgroup on the host: the
/// test's `Daemon` removes the `runner.<pid>.<n>/` subtree and its `supervisor` leaf.
#[test]
fn a_killed_daemons_cgroups_do_not_outlive_the_test() {
    let s = Scratch::new("newcomer-cgroups");
    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n");
    let d = Daemon::start(&s, &c);
    wait_daemon_info(&s);
    let used = daemon_containment(&d);
    let Some(path) = used.strip_prefix("cgroup (").and_then(|r| r.strip_suffix(')')).map(std::path::PathBuf::from)
    else {
        return skip_missing("a writable cgroup2 mount");
    };
    assert!(path.join("supervisor").is_dir(), "{}", path.display());
    drop(d);
    assert!(!path.exists(), "{} is left after the daemon's SIGKILL", path.display());
}

/// A refused config is said once by the daemon, at start and at a refused reload, and every
/// line it writes ends in a newline.
#[test]
fn the_daemon_says_a_refused_config_once_in_whole_lines() {
    let s = Scratch::new("newcomer-refused");
    let bad = "version: 1\njobs:\n  rd:\n    every: 30s\n    check: disk\n";
    let c = s.write("supervisor.yaml", bad);
    let o = s.runner(&c).arg("run").output().unwrap();
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.matches("found string \"disk\"").count(), 1, "said once:\n{e}");
    assert!(e.ends_with('\n'), "every line ends in a newline: {e:?}");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));

    s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n");
    let mut d = Daemon::start(&s, &c);
    wait_daemon_info(&s);
    s.write("supervisor.yaml", bad);
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(Duration::from_secs(30), "the refused reload", || d.log_text().contains("reload refused"));
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(30));
    let log = d.log_text();
    assert_eq!(log.matches("found string \"disk\"").count(), 1, "said once:\n{log}");
    assert!(log.ends_with('\n'), "{log:?}");
    let refused = log.lines().position(|l| l.contains("reload refused")).unwrap();
    assert!(log.lines().nth(refused + 1).unwrap().contains("supervisor.yaml:5:12: job `rd`"), "{log}");
}

/// The small mismatches: the man page's required keys, the exit codes in --help and in
/// docs/commands.md, a suggestion only for a near miss, and `health` without a daemon as one
/// answer.
#[test]
fn help_man_page_docs_and_health_say_the_same_thing() {
    let s = Scratch::new("newcomer-small");
    let man = generate_packaging_files(&s).join("man");
    let page = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("supervisor.yaml.5"))
        .expect("supervisor.yaml(5) generated");
    let bytes = std::fs::read(&page).unwrap();
    let text = if page.extension().is_some_and(|e| e == "gz") {
        let o = std::process::Command::new("gzip").args(["-dc"]).arg(&page).output().unwrap();
        stdout(&o)
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    assert!(text.contains("\\fBversion\\fR (required)"), "supervisor.yaml(5) on version");
    assert!(!text.contains("(default: required)"), "a required key has no default");

    // Every exit code --help lists is in docs/commands.md's table with the same meaning.
    let help = stdout(&std::process::Command::new(BIN).arg("--help").output().unwrap());
    let start = help.find("Exit codes of `runner once`:").expect("--help lists the exit codes");
    let mut codes: Vec<(String, String)> = Vec::new();
    for line in help[start..].lines().skip(1).take_while(|l| l.starts_with("  ")) {
        let (code, meaning) = (line[..11].trim(), line[11..].trim());
        match codes.last_mut() {
            Some(last) if code.is_empty() => last.1 = format!("{} {meaning}", last.1),
            _ => codes.push((code.to_string(), meaning.to_string())),
        }
    }
    assert!(codes.len() >= 8, "{codes:?}");
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/commands.md")).unwrap();
    for (code, meaning) in &codes {
        let row = docs
            .lines()
            .find(|l| l.starts_with(&format!("| {code} |")))
            .unwrap_or_else(|| panic!("docs/commands.md has no row for exit code {code}"));
        // Code spans are the page's markup; --help may quote the same names with them too.
        assert_eq!(row.replace('`', ""), format!("| {code} | {meaning} |").replace('`', ""), "exit code {code}");
    }
    assert!(codes.iter().any(|(c, m)| c == "75" && m.contains("a check it depends on is not ok")), "{codes:?}");

    // A suggestion only for a near miss.
    let o = std::process::Command::new(BIN).arg("bogus").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("did you mean"), "{}", stderr(&o));
    let o = std::process::Command::new(BIN).arg("stauts").output().unwrap();
    assert!(stderr(&o).contains("did you mean 'status'?"), "{}", stderr(&o));

    // health with no daemon: one answer, as its exit status gives it.
    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n");
    let o = s.runner(&c).arg("health").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "UNKNOWN: daemon not running (last known: HEALTHY)\n");
}
