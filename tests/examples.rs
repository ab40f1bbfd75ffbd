//! The configs in `examples/configs/` (and `etc/supervisor.yaml`) are what people copy:
//! `runner check` must accept each one, and each must hold the jobs README promises.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs").join(name)
}

/// `runner check` on the file, then `runner list --json` for its jobs.
fn checked(s: &Scratch, path: &Path) -> serde_json::Value {
    let o = s.runner(path).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "runner check {}: {}", path.display(), stderr(&o));
    assert!(stdout(&o).contains(": ok, "), "{}", stdout(&o));
    let o = s.runner(path).args(["list", "--json"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn job<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list.as_array().unwrap().iter().find(|j| j["name"] == name).unwrap_or_else(|| panic!("no job {name}: {list}"))
}

#[test]
fn every_example_config_passes_runner_check() {
    let s = Scratch::new("examples-all");
    let mut n = 0;
    for e in std::fs::read_dir(example("")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") && !p.ends_with("queue-pusher.yaml") {
            checked(&s, &p);
            n += 1;
        }
    }
    assert!(n >= 5, "only {n} examples");
}

#[test]
fn first_job_is_what_the_quick_start_runs() {
    let s = Scratch::new("examples-first");
    let list = checked(&s, &example("first-job.yaml"));
    assert_eq!(job(&list, "hello")["schedule"], "every 10s");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("examples/configs/first-job.yaml"), "README's first job section names the file");
}

#[test]
fn queue_pusher_flushes_ten_items_every_five_minutes_with_five_tries() {
    let s = Scratch::new("examples-queue");
    let text = std::fs::read_to_string(example("queue-pusher.yaml")).unwrap();
    for want in ["every: 5m", "max_items: 10", "attempts: 5", "keep_done: 24h", "spool: /var/spool/runner/outbox"] {
        assert!(text.contains(want), "queue-pusher.yaml lacks `{want}`");
    }
    // The spool's parent must exist for `runner check` (the example says to create it); the
    // test does not create /var/spool/runner on the host, so it checks the file with the
    // spool moved under its scratch directory when the host has none.
    let path = if Path::new("/var/spool/runner").is_dir() {
        example("queue-pusher.yaml")
    } else {
        std::fs::create_dir_all(s.path("spool")).unwrap();
        let spool = format!("spool: {}/outbox", s.path("spool").display());
        s.write("queue-pusher.yaml", &text.replace("spool: /var/spool/runner/outbox", &spool))
    };
    let list = checked(&s, &path);
    assert_eq!(job(&list, "outbox")["kind"], "queue_flush");
    assert_eq!(job(&list, "outbox")["schedule"], "every 5m");
}

#[test]
fn orphan_cleanup_runs_every_six_hours_and_starts_as_a_dry_run() {
    let s = Scratch::new("examples-sweep");
    let list = checked(&s, &example("orphan-cleanup.yaml"));
    assert_eq!(job(&list, "sweep-ci")["kind"], "orphan_sweep");
    assert_eq!(job(&list, "sweep-ci")["schedule"], "every 6h");
    let text = std::fs::read_to_string(example("orphan-cleanup.yaml")).unwrap();
    for want in ["min_age: 2h", "registry: ", "dry_run: true"] {
        assert!(text.contains(want), "orphan-cleanup.yaml lacks `{want}`");
    }
    // The dry run scans for real and ends nothing.
    let o = s.runner(&example("orphan-cleanup.yaml")).args(["once", "sweep-ci", "--dry-run"]).output().unwrap();
    assert!(stdout(&o).contains("dry run: nothing was ended"), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn health_monitor_checks_cpu_memory_disk_and_a_directory_every_30s() {
    let s = Scratch::new("examples-health");
    let list = checked(&s, &example("health-monitor.yaml"));
    for name in ["cpu", "memory", "root-disk", "data-dir"] {
        assert_eq!(job(&list, name)["kind"], "check", "{name}");
        assert_eq!(job(&list, name)["schedule"], "every 30s", "{name}");
    }
    let text = std::fs::read_to_string(example("health-monitor.yaml")).unwrap();
    for want in ["warn: 80", "crit: 95", "warn: 85", "warn: 1GB", "crit: 5GB", "cooldown: 5m"] {
        assert!(text.contains(want), "health-monitor.yaml lacks `{want}`");
    }
}

#[test]
fn readiness_probes_gate_a_job_with_depends_on() {
    let s = Scratch::new("examples-ready");
    let list = checked(&s, &example("readiness.yaml"));
    assert_eq!(job(&list, "redis")["kind"], "check");
    let text = std::fs::read_to_string(example("readiness.yaml")).unwrap();
    for want in ["probe: tcp", "send: \"PING\\r\\n\"", "expect: \"+PONG\"", "depends_on: { redis: healthy"] {
        assert!(text.contains(want), "readiness.yaml lacks `{want}`");
    }
    // Nothing listens (or something else does) on the test's port: the gated job is skipped.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let c = s.write("ready.yaml", &text.replace("port: 6379", &format!("port: {port}")));
    let o = s.runner(&c).args(["once", "redis"]).output().unwrap();
    assert_ne!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = s.runner(&c).args(["once", "warm-cache"]).output().unwrap();
    assert_eq!(o.status.code(), Some(75), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn hardened_deployment_runs_jobs_as_nobody_with_a_tight_umask() {
    let s = Scratch::new("examples-hardened");
    let list = checked(&s, &example("hardened.yaml"));
    assert_eq!(list.as_array().unwrap().len(), 3);
    let o = s.runner(&example("hardened.yaml")).args(["once", "rotate-tmp", "--dry-run"]).output().unwrap();
    assert!(stdout(&o).contains("as:       nobody"), "{}", stdout(&o));
}

/// queue-pusher.yaml on a fresh box: `check` says the spool's parent is missing and the line
/// that makes it; README gives the same line beside the example; after it, `check` passes.
/// (/var/spool/runner is moved under the scratch directory: the host is not changed.)
#[test]
fn queue_pusher_on_a_fresh_box_takes_the_line_readme_gives() {
    let s = Scratch::new("examples-fresh-spool");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let item =
        readme.split("\n- ").find(|i| i.starts_with("`queue-pusher.yaml`")).expect("README lists queue-pusher.yaml");
    let line = item.split('`').find(|w| w.starts_with("mkdir -p ")).expect("README gives the mkdir line beside it");
    assert_eq!(line, "mkdir -p /var/spool/runner");
    let root = s.path("fresh");
    let here = |t: &str| t.replace("/var/spool/runner", &format!("{}/var/spool/runner", root.display()));
    let text = std::fs::read_to_string(example("queue-pusher.yaml")).unwrap();
    let c = s.write("queue-pusher.yaml", &here(&text));
    let o = s.runner(&c).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("create it ({})", here(line))), "check names the line: {}", stderr(&o));
    let made = std::process::Command::new("sh").args(["-c", &here(line)]).status().unwrap();
    assert!(made.success());
    checked(&s, &c);
}

#[test]
fn solar_uploader_waits_for_power_battery_network_and_the_collector() {
    let s = Scratch::new("examples-solar");
    let path = example("solar-uploader.yaml");
    let list = checked(&s, &path);
    let when = &job(&list, "upload")["when"];
    let conditions: Vec<&str> = when["conditions"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(
        conditions,
        [
            "ac_power: true",
            "battery_min: 40",
            "network: online",
            "reachable: 203.0.113.10:443",
            "free_space: /var/lib/uploader min 100.0 MiB"
        ]
    );
    assert_eq!(when["wait_ms"], 110 * 60 * 1000);
    assert_eq!(job(&list, "compact-db")["when"]["conditions"][1], "load_below: 0.5");
    assert_eq!(job(&list, "battery")["kind"], "check");
    // On a fixture power supply: the charger offline, then a low battery, each named.
    s.write("sys/class/power_supply/solar/type", "USB\n");
    s.write("sys/class/power_supply/solar/online", "0\n");
    s.write("sys/class/power_supply/battery/type", "Battery\n");
    s.write("sys/class/power_supply/battery/capacity", "20\n");
    let once =
        |s: &Scratch| s.runner(&path).args(["once", "upload"]).env("RUNNER_SYS_ROOT", s.path("sys")).output().unwrap();
    let o = once(&s);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("skipped: when: ac_power: true: no Mains or USB power supply is online"),
        "{}",
        stderr(&o)
    );
    s.write("sys/class/power_supply/solar/online", "1\n");
    let o = once(&s);
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert!(stderr(&o).contains("skipped: when: battery_min: 40: the battery is at 20%"), "{}", stderr(&o));
}
