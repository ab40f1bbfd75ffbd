//! A link planted in the state or runtime directory is never followed: each file the daemon
//! writes there, planted as a symlink to a victim file, leaves the victim as it was. And the
//! directories are used only when they are runner's own.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const PRECIOUS: &str = "precious\n";

/// A tick every 200 ms, a check every 200 ms and the textfile export, with `plant` (relative
/// to the scratch dir) a symlink to `victim`; the daemon runs for 3 s.
fn daemon_with_link_at(name: &str, plant: &str) -> (Scratch, String) {
    let s = Scratch::new(name);
    let victim = s.write("victim", PRECIOUS);
    let ticks = s.path("ticks");
    let cfg = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\nexport: {{}}\njobs:\n  tick:\n    every: 200ms\n    run: \"echo >> {}\"\n  disk:\n    every: 200ms\n    check: {{metric: disk_used_percent, path: /, warn: 99, crit: 100}}\n",
            ticks.display()
        ),
    );
    let link = s.path(plant);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let mut d = Daemon::start(&s, &cfg);
    std::thread::sleep(Duration::from_secs(3));
    if d.child.try_wait().unwrap().is_none() {
        d.signal(nix::sys::signal::Signal::SIGTERM);
    }
    d.wait_exit(Duration::from_secs(15));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS, "the victim was written; log:\n{}", d.log_text());
    let log = d.log_text();
    (s, log)
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

#[test]
fn job_lock_link_is_not_followed() {
    let (s, log) = daemon_with_link_at("link-lock", "run/jobs/tick.lock");
    // The job cannot take its lock; the error names the file, and the other job runs on.
    assert!(log.contains(&s.path("run/jobs/tick.lock").display().to_string()), "{log}");
    assert!(s.path("run/checks/disk.json").exists(), "{log}");
}

#[test]
fn pid_file_link_is_not_followed() {
    let (_s, log) = daemon_with_link_at("link-pid", "run/runner.pid");
    assert!(log.contains("cannot take the pid file"), "{log}");
}

#[test]
fn running_file_and_its_temp_links_are_not_followed() {
    let (s, log) = daemon_with_link_at("link-running-tmp", "run/jobs/.tick.running.tmp");
    assert!(!lines(&s.path("ticks")).is_empty(), "tick never ran: {log}");
    let (s, log) = daemon_with_link_at("link-running", "run/jobs/tick.running");
    assert!(!lines(&s.path("ticks")).is_empty(), "tick never ran: {log}");
    assert!(!is_link(&s.path("run/jobs/tick.running")));
}

#[test]
fn job_state_file_and_its_temp_links_are_not_followed() {
    let (s, _) = daemon_with_link_at("link-state-tmp", "state/jobs/.tick.tmp");
    assert!(std::fs::read_to_string(s.path("state/jobs/tick.json")).unwrap().contains("\"runs\""));
    let (s, _) = daemon_with_link_at("link-state", "state/jobs/tick.json");
    assert!(!is_link(&s.path("state/jobs/tick.json")));
    assert!(std::fs::read_to_string(s.path("state/jobs/tick.json")).unwrap().contains("\"runs\""));
}

#[test]
fn state_lock_link_is_not_followed() {
    let (s, log) = daemon_with_link_at("link-state-lock", "state/state.lock");
    assert!(log.contains(&s.path("state/state.lock").display().to_string()), "{log}");
}

#[test]
fn ring_link_is_not_followed() {
    let (s, log) = daemon_with_link_at("link-ring", "state/runs.ring");
    // Opening it fails (ELOOP) rather than reading or writing the victim.
    assert!(log.contains("runs.ring") && log.contains("symbolic links"), "{log}");
    assert!(is_link(&s.path("state/runs.ring")));
}

#[test]
fn live_check_file_and_its_temp_links_are_not_followed() {
    let (s, log) = daemon_with_link_at("link-live-tmp", "run/checks/.disk.tmp");
    assert!(std::fs::read_to_string(s.path("run/checks/disk.json")).unwrap().contains("\"value\""), "{log}");
    let (s, log) = daemon_with_link_at("link-live", "run/checks/disk.json");
    assert!(!is_link(&s.path("run/checks/disk.json")), "{log}");
}

#[test]
fn textfile_link_is_replaced_not_followed() {
    let (s, log) = daemon_with_link_at("link-prom", "run/runner.prom");
    let prom = s.path("run/runner.prom");
    assert!(!is_link(&prom), "{log}");
    assert!(std::fs::read_to_string(&prom).unwrap().contains("runner_job_"), "{log}");
}

#[test]
fn textfile_temp_link_is_not_followed() {
    // The temporary name holds the daemon's pid: planted once the daemon runs.
    let s = Scratch::new("link-prom-tmp");
    let victim = s.write("victim", PRECIOUS);
    let cfg =
        s.write("supervisor.yaml", "version: 1\nexport: {}\njobs:\n  tick:\n    every: 200ms\n    run: \"true\"\n");
    let mut d = Daemon::start(&s, &cfg);
    let prom = s.path("run/runner.prom");
    wait_for(Duration::from_secs(10), "the textfile", || prom.exists());
    let tmp = s.path(&format!("run/.runner.prom.{}.tmp", d.child.id()));
    std::os::unix::fs::symlink(&victim, &tmp).unwrap();
    let runs = |t: &str| t.matches("runner_job_runs_total").count();
    let before = std::fs::read_to_string(&prom).unwrap();
    wait_for(Duration::from_secs(10), "a rewrite of the textfile", || {
        std::fs::read_to_string(&prom).is_ok_and(|t| t != before && runs(&t) > 0)
    });
    std::thread::sleep(Duration::from_millis(600));
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(15));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS, "{}", d.log_text());
    assert!(!is_link(&prom));
}

#[test]
fn once_does_not_follow_a_planted_job_lock() {
    let s = Scratch::new("link-once");
    let victim = s.write("victim", PRECIOUS);
    let cfg = s.write("supervisor.yaml", "version: 1\njobs:\n  tick:\n    every: 1h\n    run: \"true\"\n");
    std::fs::create_dir_all(s.path("run/jobs")).unwrap();
    std::os::unix::fs::symlink(&victim, s.path("run/jobs/tick.lock")).unwrap();
    let o = s.runner(&cfg).args(["once", "tick"]).output().unwrap();
    assert!(!o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), PRECIOUS);
}

fn start_refused(s: &Scratch, what: &[&str]) {
    let cfg = s.write("supervisor.yaml", "version: 1\njobs:\n  tick:\n    every: 1h\n    run: \"true\"\n");
    let o = s.runner(&cfg).arg("run").output().unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    for w in what {
        assert!(err.contains(w), "want {w:?} in {err}");
    }
}

#[test]
fn runtime_dir_others_can_write_is_refused() {
    let s = Scratch::new("rt-mode");
    let rt = s.path("run");
    std::fs::create_dir_all(&rt).unwrap();
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o777)).unwrap();
    let shown = rt.display().to_string();
    start_refused(&s, &[&shown, "owned by uid 0", "mode 0777", &format!("chmod go-w {shown}")]);
    std::fs::set_permissions(&rt, std::fs::Permissions::from_mode(0o775)).unwrap();
    start_refused(&s, &["writable by its group (mode 0775)"]);
}

#[test]
fn state_dir_owned_by_another_user_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        assert!(std::env::var("CI").is_err(), "CI runs as root; this test needs it");
        return;
    }
    let s = Scratch::new("state-owner");
    let st = s.path("state");
    std::fs::create_dir_all(&st).unwrap();
    nix::unistd::chown(&st, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let shown = st.display().to_string();
    start_refused(&s, &[&shown, "owned by uid 65534 (mode 0755)", &format!("chown 0 {shown}")]);
}

#[test]
fn a_jobs_directory_that_is_a_link_is_refused() {
    let s = Scratch::new("jobs-link");
    let victim_dir = s.path("elsewhere");
    std::fs::create_dir_all(&victim_dir).unwrap();
    std::fs::create_dir_all(s.path("run")).unwrap();
    std::os::unix::fs::symlink(&victim_dir, s.path("run/jobs")).unwrap();
    let cfg = s.write("supervisor.yaml", "version: 1\njobs:\n  tick:\n    every: 1h\n    run: \"true\"\n");
    let o = s.runner(&cfg).args(["once", "tick"]).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is a symlink"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0, "something was written through the link");
}

#[test]
fn directories_runner_makes_are_its_own() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new("made-dirs");
    let cfg = s.write("supervisor.yaml", "version: 1\njobs:\n  tick:\n    every: 1h\n    run: \"true\"\n");
    let o = s.runner(&cfg).args(["once", "tick"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for d in ["run", "run/jobs", "state", "state/jobs"] {
        let m = std::fs::symlink_metadata(s.path(d)).unwrap();
        assert!(m.is_dir(), "{d}");
        assert_eq!(m.mode() & 0o022, 0, "{d} mode {:o}", m.mode());
    }
}
