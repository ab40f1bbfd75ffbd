//! `when:` conditions and `wait:` through the real binary: a fixture sysfs power supply
//! (Mains online and offline, a battery's capacity) changed while a run waits, the real
//! /proc (load, default routes) and statvfs, a `reachable:` listener on 127.0.0.1 opened
//! after a while, `runner once` (exit 75 naming the condition, `--ignore-conditions`),
//! `status`, the ring, overlap and reload.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Daemon, Scratch, wait_for};

/// Generous: 2 noisy cores shared by many test processes.
const LONG: Duration = Duration::from_secs(30);

/// A sysfs tree with one Mains supply `AC` and one battery `BAT0`.
fn power_tree(s: &Scratch, ac_online: bool, capacity: u32) -> PathBuf {
    let sys = s.path("sys");
    s.write("sys/class/power_supply/AC/type", "Mains\n");
    s.write("sys/class/power_supply/BAT0/type", "Battery\n");
    s.write("sys/class/power_supply/BAT0/status", "Discharging\n");
    set_power(&sys, ac_online, capacity);
    sys
}

fn set_power(sys: &Path, ac_online: bool, capacity: u32) {
    let ps = sys.join("class/power_supply");
    std::fs::write(ps.join("AC/online"), if ac_online { "1\n" } else { "0\n" }).unwrap();
    std::fs::write(ps.join("BAT0/capacity"), format!("{capacity}\n")).unwrap();
}

fn config(s: &Scratch, top: &str, jobs: &str) -> PathBuf {
    s.write("supervisor.yaml", &format!("version: 1\n{top}jobs:\n{jobs}"))
}

fn once(s: &Scratch, cfg: &Path, args: &[&str]) -> (i32, String) {
    let o = s.runner(cfg).arg("once").args(args).output().unwrap();
    (o.status.code().unwrap_or(-1), format!("{}{}", common::stdout(&o), common::stderr(&o)))
}

fn status_json(s: &Scratch, cfg: &Path) -> serde_json::Value {
    let o = s.runner(cfg).args(["status", "--json"]).output().unwrap();
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", common::stdout(&o)))
}

fn job_status(s: &Scratch, cfg: &Path, job: &str) -> serde_json::Value {
    let st = status_json(s, cfg);
    st["jobs"].as_array().unwrap().iter().find(|j| j["name"] == job).cloned().unwrap()
}

fn records(s: &Scratch, cfg: &Path, job: &str) -> Vec<serde_json::Value> {
    let o = s.runner(cfg).args(["logs", "--json", "--job", job]).output().unwrap();
    common::stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn skips(s: &Scratch, cfg: &Path, job: &str) -> Vec<String> {
    records(s, cfg, job)
        .into_iter()
        .filter(|r| r["outcome"] == "skipped")
        .map(|r| r["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// What a waiting job's status says it waits for, if it waits.
fn waits_for(s: &Scratch, cfg: &Path, job: &str) -> Option<String> {
    job_status(s, cfg, job)["waiting"]["condition"].as_str().map(str::to_string)
}

fn stop(mut d: Daemon) -> String {
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(LONG);
    d.log_text()
}

#[test]
fn a_run_waits_for_mains_then_battery_while_other_jobs_run() {
    let s = Scratch::new("cond-power");
    let sys = power_tree(&s, false, 20);
    let (marker, other) = (s.path("uploaded"), s.path("other"));
    let cfg = config(
        &s,
        &format!("sys_root: {}\nmax_parallel: 1\n", sys.display()),
        &format!(
            "  upload:\n    schedule: \"@reboot\"\n    run: 'echo up >> {}'\n    when: {{ac_power: true, battery_min: 30}}\n    wait: 5m\n    recheck: 100ms\n  \
             other:\n    every: 200ms\n    run: 'echo x >> {}'\n",
            marker.display(),
            other.display()
        ),
    );
    let d = Daemon::start(&s, &cfg);
    wait_for(LONG, "the upload to wait for mains", || {
        waits_for(&s, &cfg, "upload").is_some_and(|c| c.contains("ac_power: true"))
    });
    let text = common::stdout(&s.runner(&cfg).arg("status").output().unwrap());
    assert!(text.contains("upload waits for ac_power: true: no Mains or USB power supply is online"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("upload ") && l.contains("waiting")), "{text}");
    // max_parallel 1, and the other job still runs: a wait holds no slot.
    let before = common::lines(&other).len();
    wait_for(LONG, "the other job to run meanwhile", || common::lines(&other).len() >= before + 3);

    set_power(&sys, true, 20);
    wait_for(LONG, "the upload to wait for the battery", || {
        waits_for(&s, &cfg, "upload").is_some_and(|c| c.contains("battery_min: 30: the battery is at 20%"))
    });
    assert!(!marker.exists(), "ran before its conditions held");
    set_power(&sys, true, 31);
    wait_for(LONG, "the upload to run", || marker.exists());
    wait_for(LONG, "the wait to leave the status", || waits_for(&s, &cfg, "upload").is_none());
    let log = stop(d);
    assert_eq!(common::lines(&marker), ["up"]);
    let recs = records(&s, &cfg, "upload");
    assert!(recs.iter().any(|r| r["kind"] == "run" && r["outcome"] == "success"), "{recs:?}");
    assert!(skips(&s, &cfg, "upload").is_empty(), "{recs:?}");
    assert!(log.contains("its conditions hold after"), "{log}");
}

#[test]
fn a_wait_that_runs_out_is_skipped_with_the_condition_and_its_length() {
    let s = Scratch::new("cond-timeout");
    let sys = power_tree(&s, false, 80);
    let marker = s.path("ran");
    let cfg = config(
        &s,
        &format!("sys_root: {}\n", sys.display()),
        &format!(
            "  upload:\n    schedule: \"@reboot\"\n    run: 'echo up >> {}'\n    when: {{ac_power: true}}\n    wait: 1s\n    recheck: 100ms\n",
            marker.display()
        ),
    );
    let d = Daemon::start(&s, &cfg);
    wait_for(LONG, "the skip", || !skips(&s, &cfg, "upload").is_empty());
    stop(d);
    assert!(!marker.exists());
    let skip = records(&s, &cfg, "upload").into_iter().find(|r| r["outcome"] == "skipped").unwrap();
    let msg = skip["message"].as_str().unwrap();
    assert!(
        msg.starts_with("when: ac_power: true: no Mains or USB power supply is online; still failing after waiting "),
        "{msg}"
    );
    assert!(skip["duration_ms"].as_u64().unwrap_or(0) >= 1000, "{skip}");
    let st = job_status(&s, &cfg, "upload");
    assert!(st["waiting"].is_null(), "{st}");
    assert!(st["condition_skip"]["condition"].as_str().unwrap().contains("ac_power"), "{st}");
    assert!(st["condition_skip"]["waited_ms"].as_u64().unwrap() >= 1000, "{st}");
    let text = common::stdout(&s.runner(&cfg).arg("status").output().unwrap());
    assert!(text.contains("upload skipped ") && text.contains("when: ac_power: true"), "{text}");
}

#[test]
fn reachable_waits_for_a_listener_opened_later() {
    let s = Scratch::new("cond-reach");
    // A port nobody listens on yet.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let marker = s.path("ran");
    let cfg = config(
        &s,
        "",
        &format!(
            "  push:\n    schedule: \"@reboot\"\n    run: 'echo up >> {}'\n    when: {{reachable: \"127.0.0.1:{port}\"}}\n    when_timeout: 1s\n    wait: 5m\n    recheck: 100ms\n",
            marker.display()
        ),
    );
    let d = Daemon::start(&s, &cfg);
    wait_for(LONG, "the push to wait for the listener", || {
        waits_for(&s, &cfg, "push").is_some_and(|c| c.contains(&format!("reachable: 127.0.0.1:{port}: connect failed")))
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(!marker.exists());
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    wait_for(LONG, "the push to run", || marker.exists());
    drop(l);
    stop(d);
    assert_eq!(common::lines(&marker), ["up"]);
}

#[test]
fn once_names_the_failing_condition_and_exits_75_from_real_proc_and_fixtures() {
    let s = Scratch::new("cond-once");
    let marker = s.path("ran");
    let run = |when: &str| format!("    every: 1h\n    run: 'echo ran >> {}'\n    when: {when}\n", marker.display());
    let (big, free) = (s.path("big"), s.path("free"));
    std::fs::create_dir_all(&big).unwrap();
    let cfg = config(
        &s,
        "",
        &format!(
            "  light:\n{}  heavy:\n{}  space:\n{}  huge:\n{}  ready:\n{}  size:\n    check: {{metric: file_size, path: {}, warn: 100}}\n  gated:\n{}",
            run("{load_below: 1000000}"),
            run("{load_below: 0.000001}"),
            run(&format!("{{free_space: {{path: {}, min: 1KB}}}}", big.display())),
            run(&format!("{{free_space: {{path: {}, min: 1000000GB}}}}", big.display())),
            run(&format!("{{path_exists: {}}}", free.display())),
            s.path("supervisor.yaml").display(),
            run("{checks: {size: ok}}"),
        ),
    );
    // The real /proc/loadavg: no box has a load of a million.
    let (code, out) = once(&s, &cfg, &["light"]);
    assert_eq!((code, common::lines(&marker).len()), (0, 1), "{out}");
    let (code, out) = once(&s, &cfg, &["heavy"]);
    // A load of exactly 0.00 would pass a bound of 0.000001; a test box is never that idle,
    // but say so if it is.
    let load: f64 = std::fs::read_to_string("/proc/loadavg").unwrap().split(' ').next().unwrap().parse().unwrap();
    if load > 0.0 {
        assert_eq!(code, 75, "{out}");
        assert!(out.contains("job heavy skipped: when: load_below: 0.000001: the one-minute load is "), "{out}");
    }
    assert_eq!(once(&s, &cfg, &["space"]).0, 0);
    let (code, out) = once(&s, &cfg, &["huge"]);
    assert_eq!(code, 75, "{out}");
    assert!(
        out.contains(&format!("when: free_space: {} min 976.6 TiB: ", big.display())) && out.contains(" free"),
        "{out}"
    );
    let (code, out) = once(&s, &cfg, &["ready"]);
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("path_exists: ") && out.contains("it does not exist"), "{out}");
    std::fs::write(&free, "").unwrap();
    assert_eq!(once(&s, &cfg, &["ready"]).0, 0);
    let (code, out) = once(&s, &cfg, &["gated", "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("when:     checks: size ok (once judges them now; the daemon waits up to 0s"), "{out}");
    // checks: as depends_on reads it.
    let (code, out) = once(&s, &cfg, &["gated"]);
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("when: checks: size ok: the check has no result yet"), "{out}");
    assert_eq!(once(&s, &cfg, &["size"]).0, 1);
    let (code, out) = once(&s, &cfg, &["gated"]);
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("the check is warn"), "{out}");
    let ran_before = common::lines(&marker).len();
    let (code, out) = once(&s, &cfg, &["gated", "--ignore-conditions"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(common::lines(&marker).len(), ran_before + 1);
    // Skips by once are in the ring too.
    assert!(skips(&s, &cfg, "huge").iter().any(|m| m.contains("free_space")));
}

#[test]
fn network_online_follows_the_default_routes_real_and_fixture() {
    let s = Scratch::new("cond-net");
    let job = "  up:\n    every: 1h\n    run: 'true'\n    when: {network: online}\n";
    // The real /proc/net: the runner must agree with what the test reads itself.
    let cfg = config(&s, "", job);
    let v4 = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    let has_v4 = v4.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 7 && f[1] == "00000000" && f[7] == "00000000" && f[0] != "lo"
    });
    let has_v6 = v6.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let flags = u32::from_str_radix(f.get(8).unwrap_or(&"0"), 16).unwrap_or(0);
        f.len() > 9 && f[0].bytes().all(|b| b == b'0') && f[1] == "00" && f[9] != "lo" && flags & 0x200 == 0
    });
    let (code, out) = once(&s, &cfg, &["up"]);
    if has_v4 || has_v6 {
        assert_eq!(code, 0, "{out}");
    } else {
        assert_eq!(code, 75, "{out}");
        assert!(out.contains("no default route"), "{out}");
    }
    // A fixture /proc: a LAN route only, and IPv6's "unreachable" default on lo.
    s.write(
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
    );
    s.write(
        "proc/net/ipv6_route",
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n",
    );
    let cfg = config(&s, &format!("proc_root: {}\n", s.path("proc").display()), job);
    let (code, out) = once(&s, &cfg, &["up"]);
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("when: network: online: no default route (IPv4 or IPv6) is up"), "{out}");
    s.write(
        "proc/net/route",
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\neth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
    );
    assert_eq!(once(&s, &cfg, &["up"]).0, 0);
}

#[test]
fn a_reload_keeps_the_wait_of_an_unchanged_job_and_ends_a_changed_ones() {
    let s = Scratch::new("cond-reload");
    let sys = power_tree(&s, false, 80);
    let marker = s.path("ran");
    let top = format!("sys_root: {}\n", sys.display());
    let job = format!(
        "  upload:\n    schedule: \"@reboot\"\n    run: 'echo up >> {}'\n    when: {{ac_power: true}}\n    wait: 5m\n    recheck: 100ms\n",
        marker.display()
    );
    let cfg = config(&s, &top, &job);
    let d = Daemon::start(&s, &cfg);
    wait_for(LONG, "the wait", || waits_for(&s, &cfg, "upload").is_some());
    let since = job_status(&s, &cfg, "upload")["waiting"]["since"].clone();
    // Another job added; `upload` unchanged.
    config(&s, &top, &format!("{job}  more:\n    every: 1h\n    run: 'true'\n"));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(LONG, "the reload", || {
        records(&s, &cfg, "runner").iter().any(|r| r["message"].as_str().unwrap_or("").starts_with("reloaded"))
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(job_status(&s, &cfg, "upload")["waiting"]["since"], since, "the same wait goes on");
    assert!(skips(&s, &cfg, "upload").is_empty());
    set_power(&sys, true, 80);
    wait_for(LONG, "the run after the reload", || marker.exists());
    stop(d);
    assert_eq!(common::lines(&marker), ["up"]);

    // A changed job's wait ends, recorded.
    let s = Scratch::new("cond-reload-changed");
    let sys = power_tree(&s, false, 80);
    let top = format!("sys_root: {}\n", sys.display());
    let cfg = config(&s, &top, &job);
    let d = Daemon::start(&s, &cfg);
    wait_for(LONG, "the wait", || waits_for(&s, &cfg, "upload").is_some());
    config(&s, &top, &job.replace("echo up", "echo changed"));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(LONG, "the skip of the changed job's wait", || {
        skips(&s, &cfg, "upload").iter().any(|m| m.contains("the job changed in a reload after waiting"))
    });
    stop(d);
}

#[test]
fn overlap_decides_what_a_new_due_time_does_to_a_waiting_run() {
    let s = Scratch::new("cond-overlap");
    let sys = power_tree(&s, false, 80);
    let job = |name: &str, overlap: &str| {
        format!(
            "  {name}:\n    every: 300ms\n    run: 'echo x >> {}'\n    overlap: {overlap}\n    when: {{ac_power: true}}\n    wait: 5m\n    recheck: 100ms\n",
            s.path(name).display()
        )
    };
    let jobs = format!("{}{}{}", job("keep", "skip"), job("fresh", "replace"), job("later", "queue"));
    let cfg = config(&s, &format!("sys_root: {}\n", sys.display()), &jobs);
    let d = Daemon::start(&s, &cfg);
    wait_for(LONG, "skips of each", || {
        skips(&s, &cfg, "keep").len() >= 2
            && skips(&s, &cfg, "fresh").len() >= 2
            && !skips(&s, &cfg, "later").is_empty()
    });
    // Under `skip` the first wait goes on through the new due times.
    wait_for(LONG, "the wait in the status", || waits_for(&s, &cfg, "keep").is_some());
    let since = job_status(&s, &cfg, "keep")["waiting"]["since"].clone();
    wait_for(LONG, "more skips", || skips(&s, &cfg, "keep").len() >= 4);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(job_status(&s, &cfg, "keep")["waiting"]["since"], since);
    // Under `queue` one due time is kept and runs after the first: two runs at once when the
    // power comes, before the next due time could add a third.
    let later = skips(&s, &cfg, "later");
    assert!(later.iter().all(|m| m == "a run is already queued"), "{later:?}");
    set_power(&sys, true, 80);
    wait_for(LONG, "the waiting and the queued run", || common::lines(&s.path("later")).len() >= 2);
    set_power(&sys, false, 80);
    wait_for(LONG, "a new wait after the power went", || {
        waits_for(&s, &cfg, "keep").is_some_and(|_| job_status(&s, &cfg, "keep")["waiting"]["since"] != since)
    });
    stop(d);
    let keep = skips(&s, &cfg, "keep");
    let allowed = |m: &String| {
        // (or still running: once the power came, it ran)
        m.contains("still waiting for its `when:` conditions from the previous fire")
            || m.contains("the daemon stopped")
            || m == "still running from the previous fire"
    };
    assert!(keep.iter().all(allowed), "{keep:?}");
    let fresh = skips(&s, &cfg, "fresh");
    assert!(
        fresh.iter().any(|m| m.contains("ac_power: true") && m.contains("replaced by a newer fire after waiting")),
        "{fresh:?}"
    );
    // The daemon's stop ends the waits, recorded.
    assert!(keep.last().unwrap().contains("the daemon stopped after waiting"), "{keep:?}");
}

#[test]
fn check_metrics_read_the_power_supplies() {
    let s = Scratch::new("cond-metrics");
    let sys = power_tree(&s, false, 20);
    let cfg = config(
        &s,
        &format!("sys_root: {}\n", sys.display()),
        "  mains:\n    check: {metric: ac_online, warn: 0}\n  battery:\n    check: {metric: battery_percent, warn: 30, crit: 10}\n",
    );
    let (code, out) = once(&s, &cfg, &["mains"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("level:    warn"), "{out}");
    let (_, out) = once(&s, &cfg, &["battery"]);
    assert!(out.lines().any(|l| l.starts_with("value:") && l.contains("20")), "{out}");
    assert!(out.contains("level:    warn"), "{out}");
    set_power(&sys, true, 90);
    assert_eq!(once(&s, &cfg, &["mains"]).0, 0);
    assert_eq!(once(&s, &cfg, &["battery"]).0, 0);
    // No supply listed: unknown, with the reason.
    std::fs::remove_dir_all(sys.join("class/power_supply")).unwrap();
    let (_, out) = once(&s, &cfg, &["mains"]);
    assert!(out.contains("no power supply of type Mains or USB"), "{out}");
}

#[test]
fn config_errors_name_the_fix() {
    let s = Scratch::new("cond-config");
    let cases: &[(&str, &str)] = &[
        ("    wait: 1m\n", "`wait:` has no effect without `when:`"),
        ("    when: {reachable: nohost}\n", "when.reachable `nohost` is not host:port"),
        ("    when: {battery_min: 150}\n", "battery_min 150 is not a percentage"),
        ("    when: {checks: {nosuch: ok}}\n", "depends on `nosuch`, which does not exist"),
        ("    when: {ac_power: true}\n    recheck: 1ms\n", "recheck 1ms is shorter than 50ms"),
        ("    when: {network: up}\n", "unknown value `up`"),
        ("    when: {}\n", "`when:` lists no condition"),
        ("    when: {ac_powr: true}\n", "did you mean `ac_power`?"),
        ("    when: {free_space: {path: data, min: 1MB}}\n", "free_space.path `data` must be an absolute path"),
    ];
    for (extra, want) in cases {
        let cfg = config(&s, "", &format!("  j:\n    every: 1h\n    run: 'true'\n{extra}"));
        let o = s.runner(&cfg).arg("check").output().unwrap();
        let err = common::stderr(&o);
        assert_ne!(o.status.code(), Some(0), "{extra}");
        assert!(err.contains(want), "{extra}: want {want:?} in:\n{err}");
        assert!(err.contains("supervisor.yaml:"), "{err}");
    }
    // defaults: when: applies to every job; a job's own replaces it.
    let cfg = config(
        &s,
        "defaults:\n  when: {path_exists: /nonexistent/ready}\n",
        "  a:\n    every: 1h\n    run: 'true'\n  b:\n    every: 1h\n    run: 'true'\n    when: {load_below: 1000000}\n  \
         c:\n    check: {metric: load1, warn: 1000000}\n",
    );
    assert_eq!(once(&s, &cfg, &["a"]).0, 75);
    assert_eq!(once(&s, &cfg, &["b"]).0, 0);
    // Not a check: it would stop watching what it reports.
    let (code, out) = once(&s, &cfg, &["c"]);
    assert_eq!(code, 0, "{out}");
}
