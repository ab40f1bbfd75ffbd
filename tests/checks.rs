//! Check jobs through the real binary: probes against listeners the test opens on
//! 127.0.0.1, for-N hysteresis, cooldown, recovery and start_period through a running daemon,
//! depends_on gating, config errors, unreadable sources, and the textfile export.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Daemon, Scratch, wait_for};

fn config(s: &Scratch, jobs: &str) -> std::path::PathBuf {
    s.write("supervisor.yaml", &format!("version: 1\njobs:\n{jobs}"))
}

fn once(s: &Scratch, cfg: &Path, job: &str) -> (i32, String) {
    let o = s.runner(cfg).args(["once", job]).output().unwrap();
    (o.status.code().unwrap_or(-1), format!("{}{}", common::stdout(&o), common::stderr(&o)))
}

fn status_json(s: &Scratch, cfg: &Path) -> serde_json::Value {
    let o = s.runner(cfg).args(["status", "--json"]).output().unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A server that answers each line `PING` with `+PONG`, as Redis does.
fn ping_pong() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for conn in l.incoming().take(2) {
            let mut c = conn.unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_ok() && line.trim() == "PING" {
                let _ = c.write_all(b"+PONG\r\n");
            } else {
                let _ = c.write_all(b"-ERR unknown\r\n");
            }
        }
    });
    (port, h)
}

#[test]
fn tcp_probe_with_send_and_expect() {
    let s = Scratch::new("tcp");
    let (port, server) = ping_pong();
    let cfg = config(
        &s,
        &format!(
            "  redis:\n    check: {{probe: tcp, port: {port}, send: \"PING\\r\\n\", expect: \"+PONG\"}}\n    timeout: 2s\n  redis-wrong:\n    check: {{probe: tcp, port: {port}, send: \"HELLO\\r\\n\", expect: \"+PONG\"}}\n    timeout: 2s\n"
        ),
    );
    let (code, out) = once(&s, &cfg, "redis");
    assert_eq!(code, 0, "{out}");
    let (code, out) = once(&s, &cfg, "redis-wrong");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("-ERR"), "the answer is shown: {out}");
    server.join().unwrap();
    // Nothing listens any more: a refused connection fails the probe.
    let (code, out) = once(&s, &cfg, "redis");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("refused"), "{out}");
    let st = status_json(&s, &cfg);
    let redis = st["checks"].as_array().unwrap().iter().find(|c| c["name"] == "redis").unwrap();
    assert_eq!(redis["level"], "fail");
    assert_eq!(st["health"], "UNHEALTHY");
}

#[test]
fn tcp_probe_times_out_on_a_silent_peer() {
    let s = Scratch::new("tcp-timeout");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // Accepts (the kernel does, from the backlog) but never answers.
    let cfg = config(
        &s,
        &format!("  silent:\n    check: {{probe: tcp, port: {port}, expect: \"+PONG\"}}\n    timeout: 500ms\n"),
    );
    let t0 = Instant::now();
    let (code, out) = once(&s, &cfg, "silent");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no answer within 500ms"), "{out}");
    assert!(t0.elapsed() >= Duration::from_millis(500));
    drop(l);
}

/// Answers every request with `status`, counting requests.
fn http_server(status: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n2 = n.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 1024];
            let got = c.read(&mut buf).unwrap_or(0);
            if buf[..got].starts_with(b"GET /health HTTP/1.0\r\n") {
                n2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = c.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").as_bytes());
        }
    });
    (port, n)
}

#[test]
fn http_probe_checks_the_status() {
    let s = Scratch::new("http");
    let (good, hits) = http_server("200 OK");
    let (bad, _) = http_server("503 Service Unavailable");
    let cfg = config(
        &s,
        &format!(
            "  up:\n    check: {{probe: http, url: \"http://127.0.0.1:{good}/health\"}}\n  down:\n    check: {{probe: http, url: \"http://127.0.0.1:{bad}/health\", status: 200}}\n"
        ),
    );
    let (code, out) = once(&s, &cfg, "up");
    assert_eq!(code, 0, "{out}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "one GET /health");
    let (code, out) = once(&s, &cfg, "down");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("answered 503, expected 200"), "{out}");
}

#[test]
fn exec_and_process_probes() {
    let s = Scratch::new("exec");
    let mut sleeper = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let cfg = config(
        &s,
        "  ok:\n    check: {probe: exec, command: \"exit 0\"}\n  bad:\n    check: {probe: exec, command: [\"/bin/sh\", \"-c\", \"echo broken; exit 3\"]}\n  sleeper:\n    check: {probe: process, name: sleep, min: 1}\n  none:\n    check: {probe: process, cmdline: \"no-such-program-xyz\"}\n",
    );
    assert_eq!(once(&s, &cfg, "ok").0, 0);
    let (code, out) = once(&s, &cfg, "bad");
    assert_eq!(code, 1);
    assert!(out.contains("exit 3: broken"), "{out}");
    assert_eq!(once(&s, &cfg, "sleeper").0, 0);
    let (code, out) = once(&s, &cfg, "none");
    assert_eq!(code, 1);
    assert!(out.contains("0 processes with `no-such-program-xyz`, expected at least 1"), "{out}");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn process_cpu_percent_sees_a_busy_loop_by_its_command_line() {
    let s = Scratch::new("proc-cpu-check");
    // `$0` of each shell is a token no other process on the machine has.
    let token = format!(
        "runner-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
    );
    let spawn = |script: &str, tag: &str| {
        std::process::Command::new("sh")
            .args(["-c", script, &format!("{token}-{tag}")])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut busy = spawn("while :; do :; done", "busy");
    let mut idle = spawn("read x", "idle");
    let cfg = config(
        &s,
        &format!(
            "  busy:\n    every: 500ms\n    check: {{metric: process_cpu_percent, cmdline: {token}-busy, warn: 10, crit: \"1000%\"}}\n  idle:\n    every: 500ms\n    check: {{metric: process_cpu_percent, cmdline: {token}-idle, warn: 10}}\n  gone:\n    every: 500ms\n    check: {{metric: process_cpu_percent, cmdline: {token}-gone, warn: 10}}\n"
        ),
    );
    let mut d = Daemon::start(&s, &cfg);
    let check = |st: &serde_json::Value, name: &str| {
        st["checks"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap_or_default()
    };
    let mut st = serde_json::Value::Null;
    wait_for(Duration::from_secs(20), "busy at warn, idle ok, gone unknown", || {
        st = status_json(&s, &cfg);
        check(&st, "busy")["level"] == "warn"
            && check(&st, "idle")["level"] == "ok"
            && check(&st, "gone")["level"] == "unknown"
    });
    // A few more samples, each over the time since the previous one (the daemon logs each).
    let samples = |name: &str| d.log_text().lines().filter(|l| l.contains(&format!("job {name} "))).count();
    let seen = samples("busy");
    wait_for(Duration::from_secs(20), "two more samples", || samples("busy") >= seen + 2);
    let st = status_json(&s, &cfg);
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
    for c in [&mut busy, &mut idle] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let (b, i, g) = (check(&st, "busy"), check(&st, "idle"), check(&st, "gone"));
    let busy_cpu = b["value"].as_f64().unwrap();
    assert!((10.0..=102.0).contains(&busy_cpu), "one single-threaded loop: {b}");
    assert!(b["detail"].as_str().unwrap().contains(">= warn 10.0%"), "{b}");
    assert!(i["value"].as_f64().unwrap() < 5.0, "{i}");
    assert!(g["detail"].as_str().unwrap().contains("no process matches"), "{g}");
    assert_eq!(st["health"], "DEGRADED", "a warn and an unknown: {st}");
}

/// Lines the hooks appended: `<event> <level> <value> <threshold> <ms since epoch>`.
fn hook_lines(p: &Path) -> Vec<(String, String, u128)> {
    common::lines(p)
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].to_string(), f[f.len() - 1].parse().unwrap())
        })
        .collect()
}

#[test]
fn for_n_cooldown_and_recovery_through_the_daemon() {
    let s = Scratch::new("hysteresis");
    let data = s.path("data");
    std::fs::write(&data, b"small").unwrap();
    let hooks = s.path("hooks");
    let hook = |ev: &str| {
        format!(
            "'echo {ev} $RUNNER_LEVEL $RUNNER_VALUE $RUNNER_THRESHOLD $(($(date +%s%N)/1000000)) >> {}'",
            hooks.display()
        )
    };
    let cfg = config(
        &s,
        &format!(
            "  size:\n    every: 200ms\n    check:\n      metric: file_size\n      path: {}\n      warn: 100\n      crit: 1000\n      for: 3\n      cooldown: 2s\n      on_alert: {}\n      on_recover: {}\n",
            data.display(),
            hook("ALERT"),
            hook("RECOVER")
        ),
    );
    let mut d = Daemon::start(&s, &cfg);
    let live = s.path("run/checks/size.json");
    wait_for(Duration::from_secs(10), "the first sample", || live.exists());
    std::fs::write(&data, vec![b'x'; 5000]).unwrap();
    let big_at = Instant::now();
    wait_for(Duration::from_secs(10), "the crit alert", || !common::lines(&hooks).is_empty());
    // for: 3 samples 200 ms apart: not before the third sample after the change.
    assert!(big_at.elapsed() >= Duration::from_millis(400), "alerted after {:?}", big_at.elapsed());
    wait_for(Duration::from_secs(10), "the repeated alert", || common::lines(&hooks).len() >= 2);
    std::fs::write(&data, b"small").unwrap();
    let small_at = Instant::now();
    wait_for(Duration::from_secs(10), "the recovery", || {
        common::lines(&hooks).iter().any(|l| l.starts_with("RECOVER"))
    });
    assert!(small_at.elapsed() >= Duration::from_millis(400), "recovered after {:?}", small_at.elapsed());
    let st = status_json(&s, &cfg);
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));

    let lines = hook_lines(&hooks);
    let events: Vec<(&str, &str)> = lines.iter().map(|(e, l, _)| (e.as_str(), l.as_str())).collect();
    let recover = events.iter().position(|e| *e == ("RECOVER", "ok")).unwrap();
    assert!(recover >= 2, "{events:?}");
    assert!(events[..recover].iter().all(|e| *e == ("ALERT", "crit")), "{events:?}");
    // The repeat waits out the cooldown. The stamps are taken by the hooks, which start a few
    // ms after each decision, so allow that much either way.
    assert!(lines[1].2 - lines[0].2 >= 1900, "repeated after {} ms", lines[1].2 - lines[0].2);
    assert!(common::lines(&hooks)[0].contains(" 5000 1000 "), "value and threshold: {:?}", common::lines(&hooks)[0]);
    let log = d.log_text();
    let alert = log.find("check size alert crit").expect("alert logged");
    let resolve = log.find("check size crit resolved").expect("resolve logged");
    assert!(alert < resolve);
    let check = st["checks"].as_array().unwrap().iter().find(|c| c["name"] == "size").unwrap().clone();
    assert_eq!(check["level"], "ok", "{check}");
    assert_eq!(st["alerts"].as_array().unwrap().len(), 0);
}

#[test]
fn start_period_holds_probe_failures_until_it_ends() {
    let s = Scratch::new("start-period");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    // The hook has the job's timeout; under emulation the exec helper that starts it is the
    // debug binary started again by qemu-user, which alone took over 1 s.
    let timeout = if common::emulated() { "20s" } else { "1s" };
    let cfg = config(
        &s,
        &format!(
            "  svc:\n    every: 200ms\n    timeout: {timeout}\n    check:\n      probe: tcp\n      port: {port}\n      start_period: 2s\n      on_alert: 'date +%s%N >> {}'\n",
            s.path("alerts").display()
        ),
    );
    let t0 = Instant::now();
    let mut d = Daemon::start(&s, &cfg);
    wait_for(Duration::from_secs(15), "the alert", || s.path("alerts").exists());
    assert!(t0.elapsed() >= Duration::from_secs(2), "alerted {:?} after start, inside the start period", t0.elapsed());
    // A listener appears: one pass recovers the probe.
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    wait_for(Duration::from_secs(10), "recovery", || d.log_text().contains("check svc fail resolved"));
    drop(l);
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
}

#[test]
fn a_passing_probe_ends_the_start_period_early() {
    let s = Scratch::new("start-early");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let cfg = config(
        &s,
        &format!(
            "  svc:\n    every: 200ms\n    timeout: 1s\n    check: {{probe: tcp, port: {port}, start_period: 1h}}\n"
        ),
    );
    let mut d = Daemon::start(&s, &cfg);
    wait_for(Duration::from_secs(10), "a first pass", || s.path("run/checks/svc.json").exists());
    drop(l);
    // Inside the hour-long start period, but it ended with the pass: failures now count.
    wait_for(Duration::from_secs(10), "the alert", || d.log_text().contains("check svc alert fail"));
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
}

#[test]
fn depends_on_gates_a_job_on_a_check() {
    let s = Scratch::new("depends");
    let data = s.path("data");
    std::fs::write(&data, vec![b'x'; 500]).unwrap();
    let marker = s.path("ran");
    let cfg = config(
        &s,
        &format!(
            "  size:\n    check: {{metric: file_size, path: {}, warn: 100}}\n  work:\n    every: 1h\n    run: 'echo ran >> {}'\n    depends_on: {{size: healthy}}\n",
            data.display(),
            marker.display()
        ),
    );
    // No result yet: the job waits for the check.
    let (code, out) = once(&s, &cfg, "work");
    assert_eq!(code, 75, "{out}");
    assert!(out.contains("check `size` has no result yet"), "{out}");
    assert_eq!(once(&s, &cfg, "size").0, 1);
    let (code, out) = once(&s, &cfg, "work");
    assert_eq!(code, 75);
    assert!(out.contains("depends_on: check `size` is warn, not ok"), "{out}");
    assert!(!marker.exists());
    std::fs::write(&data, b"x").unwrap();
    assert_eq!(once(&s, &cfg, "size").0, 0);
    assert_eq!(once(&s, &cfg, "work").0, 0);
    assert_eq!(common::lines(&marker), ["ran"]);
}

#[test]
fn config_errors_name_the_fix() {
    let s = Scratch::new("check-config");
    let cases: &[(&str, &str)] = &[
        ("  a:\n    check: {metric: disk_usd_percent, path: /}\n", "did you mean `disk_used_percent`?"),
        ("  a:\n    check: {metric: disk_used_percent, path: var}\n", "path `var` must be absolute"),
        ("  a:\n    check: {metric: disk_used_percent}\n", "needs `path:`"),
        ("  a:\n    check: {metric: load1}\n", "no default thresholds"),
        ("  a:\n    check: {metric: cpu_percent, warn: 90, crit: 80}\n", "warn (90) is above crit (80)"),
        ("  a:\n    check: {metric: cpu_percent, port: 80}\n", "`port` does not apply to metric `cpu_percent`"),
        ("  a:\n    check: {probe: http, url: \"https://x/\"}\n", "no TLS client"),
        ("  a:\n    check: {probe: disk_used_percent, path: /}\n", "is a metric: write `metric: disk_used_percent`"),
        ("  a:\n    check: {probe: tcp, port: 1, warn: 3}\n", "`warn` does not apply"),
        ("  a:\n    check: {metric: cpu_percent}\n    retries: {attempts: 3}\n", "use `check.for: N`"),
        (
            "  w:\n    every: 1m\n    run: x\n    depends_on: {nope: healthy}\n",
            "depends on `nope`, which does not exist",
        ),
        (
            "  c:\n    every: 1m\n    run: x\n  w:\n    every: 1m\n    run: x\n    depends_on: {c: healthy}\n",
            "which is a command job, not a check",
        ),
        ("  a:\n    check: {metric: cpu_percent, for: 0}\n", "at least 1"),
        ("  a:\n    check: {metric: dir_size, path: /x, warn: 2XB}\n", "unknown size unit `XB`"),
        ("  a:\n    check: {metric: process_cpu_percent, warn: 50}\n", "needs `name:` or `cmdline:`"),
        ("  a:\n    check: {metric: process_cpu_percent, name: x}\n", "no default thresholds"),
    ];
    for (jobs, want) in cases {
        let cfg = config(&s, jobs);
        let o = s.runner(&cfg).arg("check").output().unwrap();
        let err = common::stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{jobs}: {err}");
        assert!(err.contains(want), "{jobs}: expected {want:?} in:\n{err}");
        assert!(err.contains("supervisor.yaml:"), "located: {err}");
    }
}

#[test]
fn an_unreadable_source_is_unknown_not_a_panic() {
    let s = Scratch::new("unknown");
    std::fs::create_dir_all(s.path("emptyproc")).unwrap();
    std::fs::create_dir_all(s.path("emptysys")).unwrap();
    let cfg = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\nproc_root: {}\nsys_root: {}\njobs:\n  cpu:\n    check: {{metric: cpu_percent}}\n  temp:\n    check: {{metric: temperature, sensor: cpu-thermal, crit: 80}}\n  disk:\n    check: {{metric: disk_used_percent, path: /no/such/mount}}\n",
            s.path("emptyproc").display(),
            s.path("emptysys").display()
        ),
    );
    for (job, want) in [
        ("cpu", "stat"),
        ("temp", "no temperature sensor named `cpu-thermal`"),
        ("disk", "cannot statvfs /no/such/mount"),
    ] {
        let (code, out) = once(&s, &cfg, job);
        assert_eq!(code, 1, "{job}: {out}");
        assert!(out.contains(want), "{job}: {out}");
        assert!(!out.contains("panicked"), "{out}");
    }
    let st = status_json(&s, &cfg);
    for c in st["checks"].as_array().unwrap() {
        assert_eq!(c["level"], "unknown", "{c}");
        assert_eq!(c["health"], "DEGRADED");
    }
    assert_eq!(st["health"], "DEGRADED");
}

#[test]
fn health_exits_0_only_when_healthy_and_the_daemon_runs() {
    let s = Scratch::new("health");
    let data = s.path("data");
    std::fs::write(&data, b"x").unwrap();
    let cfg = config(
        &s,
        &format!(
            "  size:\n    every: 200ms\n    check: {{metric: file_size, path: {}, warn: 100, crit: 1000}}\n",
            data.display()
        ),
    );
    let health = || s.runner(&cfg).arg("health").output().unwrap();
    let o = health();
    assert_eq!(o.status.code(), Some(1), "no daemon: {}", common::stdout(&o));
    assert!(common::stdout(&o).contains("daemon not running"));
    let mut d = Daemon::start(&s, &cfg);
    wait_for(Duration::from_secs(10), "HEALTHY", || health().status.success());
    assert_eq!(common::stdout(&health()).trim(), "HEALTHY");
    std::fs::write(&data, vec![b'x'; 500]).unwrap();
    wait_for(Duration::from_secs(10), "DEGRADED", || common::stdout(&health()).starts_with("DEGRADED"));
    assert_eq!(health().status.code(), Some(1));
    std::fs::write(&data, vec![b'x'; 5000]).unwrap();
    wait_for(Duration::from_secs(10), "CRITICAL", || common::stdout(&health()).starts_with("CRITICAL"));
    let text = common::stdout(&s.runner(&cfg).arg("status").output().unwrap());
    assert!(text.contains("health: CRITICAL (size crit)"), "{text}");
    assert!(text.contains("active alerts:"), "{text}");
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
}

#[test]
fn textfile_export_is_valid_and_written_after_runs() {
    let s = Scratch::new("textfile");
    let prom = s.path("export/runner.prom");
    let cfg = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\nexport: {{textfile: {}}}\njobs:\n  disk:\n    every: 200ms\n    check: {{metric: disk_used_percent, path: /, warn: 99, crit: 100}}\n  \"quoted.job\":\n    every: 300ms\n    run: \"true\"\n  failing:\n    every: 300ms\n    run: \"exit 2\"\n",
            prom.display()
        ),
    );
    let mut d = Daemon::start(&s, &cfg);
    // Every job is in the file from the daemon's start; wait for a run of each.
    wait_for(Duration::from_secs(10), "the textfile after a run of every job", || {
        let t = std::fs::read_to_string(&prom).unwrap_or_default();
        sample(&t, "runner_check_level{check=\"disk\"}") == Some(0.0)
            && sample(&t, "runner_job_runs_total{runner_job=\"failing\",outcome=\"failure\"}").is_some_and(|n| n >= 1.0)
            && sample(&t, "runner_job_last_success_timestamp_seconds{runner_job=\"quoted.job\"}")
                .is_some_and(|t| t > 0.0)
    });
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
    let text = std::fs::read_to_string(&prom).unwrap();
    let problems = common::validate_exposition(&text);
    assert!(problems.is_empty(), "{problems:?}\n{text}");
    if let Some(said) = common::promtool_check(&text) {
        assert!(said.is_empty(), "{said}\n{text}");
    }
    assert!(sample(&text, "runner_job_runs_total{runner_job=\"failing\",outcome=\"failure\"}") >= Some(1.0), "{text}");
    assert_eq!(sample(&text, "runner_job_last_success_timestamp_seconds{runner_job=\"failing\"}"), Some(0.0), "{text}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let success = sample(&text, "runner_job_last_success_timestamp_seconds{runner_job=\"quoted.job\"}").unwrap();
    assert!(success > now - 60.0 && success <= now, "{text}");
    assert_eq!(sample(&text, "runner_check_level{check=\"disk\"}"), Some(0.0), "{text}");
    assert!(sample(&text, "runner_check_value{check=\"disk\"}").is_some_and(|v| (0.0..=100.0).contains(&v)), "{text}");
    // Atomic replacement leaves no temp files beside it.
    let names: Vec<String> = std::fs::read_dir(s.path("export"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["runner.prom"]);
    // The validators themselves catch a broken file.
    assert!(!common::validate_exposition("x_total{a=\"1\"} 1\n").is_empty());
    assert!(!common::validate_exposition("# HELP a b\n# TYPE a counter\na 1\n").is_empty());
    if let Some(said) = common::promtool_check("# HELP x_total b\n# TYPE x_total counter\nx_total{a=\"1\" 1\n") {
        assert!(!said.is_empty(), "promtool accepted an unclosed label set");
    }
}

/// The value of one sample line (`name{labels} value`) in a textfile, if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_enabled_job_has_its_series_from_the_first_write() {
    let s = Scratch::new("textfile-zero");
    let prom = s.path("export/runner.prom");
    // Nothing fires while the test runs (intervals fire `every` after the start).
    let jobs = "  never:\n    every: 1h\n    run: \"true\"\n  fails:\n    every: 1h\n    run: \"exit 2\"\n  off:\n    every: 1h\n    enabled: false\n    run: \"true\"\n  disk:\n    every: 1h\n    check: {metric: disk_used_percent, path: /, warn: 99, crit: 100}\n";
    let text = format!("version: 1\nexport: {{textfile: {}}}\njobs:\n{jobs}", prom.display());
    let cfg = s.write("supervisor.yaml", &text);
    let mut d = Daemon::start(&s, &cfg);
    // The daemon's start writes the file: every enabled job is there before any run.
    wait_for(Duration::from_secs(20), "the textfile at the daemon's start", || prom.exists());
    let first = std::fs::read_to_string(&prom).unwrap();
    let problems = common::validate_exposition(&first);
    assert!(problems.is_empty(), "{problems:?}\n{first}");
    if let Some(said) = common::promtool_check(&first) {
        assert!(said.is_empty(), "{said}\n{first}");
    }
    for job in ["never", "fails"] {
        for (family, want) in [
            ("runner_job_last_success_timestamp_seconds{runner_job=\"JOB\"}", 0.0),
            ("runner_job_last_duration_seconds{runner_job=\"JOB\"}", 0.0),
            ("runner_job_runs_total{runner_job=\"JOB\",outcome=\"success\"}", 0.0),
            ("runner_job_runs_total{runner_job=\"JOB\",outcome=\"failure\"}", 0.0),
            ("runner_job_consecutive_failures{runner_job=\"JOB\"}", 0.0),
        ] {
            let series = family.replace("JOB", job);
            assert_eq!(sample(&first, &series), Some(want), "{series}\n{first}");
        }
    }
    // A check with no sample yet: unknown, no value, no alert; it has no run series.
    assert_eq!(sample(&first, "runner_check_level{check=\"disk\"}"), Some(4.0), "{first}");
    assert!(first.contains("runner_check_value{check=\"disk\"} NaN\n"), "{first}");
    assert_eq!(sample(&first, "runner_check_alert_active{check=\"disk\"}"), Some(0.0), "{first}");
    assert!(!first.contains("runner_job=\"disk\""), "{first}");
    assert!(!first.contains("\"off\""), "a disabled job is not shown\n{first}");
    assert!(!first.lines().any(|l| l.contains("{job=") || l.contains(",job=")), "no `job` label\n{first}");

    // A run by hand counts; the job that never ran stays at 0.
    assert_eq!(once(&s, &cfg, "fails").0, 2);
    let after = std::fs::read_to_string(&prom).unwrap();
    assert_eq!(sample(&after, "runner_job_runs_total{runner_job=\"fails\",outcome=\"failure\"}"), Some(1.0));
    assert_eq!(sample(&after, "runner_job_consecutive_failures{runner_job=\"fails\"}"), Some(1.0));
    assert_eq!(sample(&after, "runner_job_last_success_timestamp_seconds{runner_job=\"fails\"}"), Some(0.0));
    assert_eq!(sample(&after, "runner_job_last_success_timestamp_seconds{runner_job=\"never\"}"), Some(0.0));

    // A reload writes the file with the new plan's jobs, before any of them runs.
    s.write("supervisor.yaml", &format!("{text}  later:\n    every: 1h\n    run: \"true\"\n"));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(Duration::from_secs(20), "the new job in the textfile", || {
        let t = std::fs::read_to_string(&prom).unwrap_or_default();
        sample(&t, "runner_job_last_success_timestamp_seconds{runner_job=\"later\"}") == Some(0.0)
    });
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn check_levels_reach_the_state_only_on_changes() {
    let s = Scratch::new("wear");
    let cfg =
        config(&s, "  disk:\n    every: 100ms\n    check: {metric: disk_used_percent, path: /, warn: 99, crit: 100}\n");
    let mut d = Daemon::start(&s, &cfg);
    let live = s.path("run/checks/disk.json");
    wait_for(Duration::from_secs(10), "the first sample", || live.exists());
    let state = s.path("state/jobs/disk.json");
    wait_for(Duration::from_secs(10), "the level in the state", || {
        std::fs::read_to_string(&state).is_ok_and(|t| t.contains("\"ok\""))
    });
    let before = std::fs::metadata(&state).unwrap().modified().unwrap();
    let live_before = std::fs::metadata(&live).unwrap().modified().unwrap();
    // Ten more samples, by the daemon's own log line for each, instead of a fixed wait.
    let samples = || d.log_text().lines().filter(|l| l.contains("job disk ")).count();
    let seen = samples();
    wait_for(Duration::from_secs(30), "ten more samples", || samples() >= seen + 10);
    let after = std::fs::metadata(&state).unwrap().modified().unwrap();
    let live_after = std::fs::metadata(&live).unwrap().modified().unwrap();
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
    assert!(live_after > live_before, "samples go on (the live file is rewritten)");
    assert_eq!(before, after, "the state file is not rewritten while the level stays ok");
}

/// A check every 100 ms puts a run record in the ring when its level changes (its first
/// level), and with `record_every: 3` every third sample too; the live file gets them all.
#[test]
fn check_samples_reach_the_run_log_on_level_changes_and_every_n() {
    let s = Scratch::new("sample-records");
    let cfg = config(
        &s,
        "  quiet:\n    every: 100ms\n    check: {metric: disk_used_percent, path: /, warn: 99, crit: 100}\n  \
         third:\n    every: 100ms\n    check: {metric: disk_used_percent, path: /, warn: 99, crit: 100, record_every: 3}\n",
    );
    let mut d = Daemon::start(&s, &cfg);
    // A sample's line, not a fire skipped while the last sample was still being recorded (a
    // slow box, an emulated one: `skipped: still running from the previous fire`).
    let samples = |log: &str, job: &str| {
        log.lines().filter(|l| l.contains(&format!("job {job} ")) && !l.contains(&format!("job {job} skipped"))).count()
    };
    wait_for(Duration::from_secs(30), "twelve samples of each", || {
        let log = d.log_text();
        samples(&log, "quiet") >= 12 && samples(&log, "third") >= 12
    });
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
    let log = d.log_text();
    let (quiet, third) = (samples(&log, "quiet"), samples(&log, "third"));
    let runs = |job: &str| {
        let o = s.runner(&cfg).args(["logs", "--json", "--job", job]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", common::stderr(&o));
        common::stdout(&o).lines().filter(|l| l.contains("\"kind\":\"run\"")).count()
    };
    assert_eq!(runs("quiet"), 1, "only the first level of {quiet} samples is in the ring");
    let n = runs("third");
    // The first sample (a level change), then every third one after it.
    assert!((third / 3..=third / 3 + 1).contains(&n), "{n} records of {third} samples with record_every: 3");
    let live: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path("run/checks/quiet.json")).unwrap()).unwrap();
    assert!(live.get("value").is_some(), "{live}");
}

/// What `runner once` decided for a check while it held the job's lock (an alert, its
/// cooldown) the daemon's next run takes in: the daemon re-reads the job only when another
/// process held its lock last, and here one did, so it does not alert a second time.
#[test]
fn the_daemon_takes_in_an_alert_runner_once_raised() {
    let s = Scratch::new("once-alert");
    let data = s.path("data");
    std::fs::write(&data, b"small").unwrap();
    let hooks = s.path("hooks");
    let cfg = config(
        &s,
        &format!(
            "  size:\n    every: 1s\n    check:\n      metric: file_size\n      path: {}\n      warn: 100\n      crit: 1000\n      cooldown: 1h\n      on_alert: 'echo ALERT >> {}'\n",
            data.display(),
            hooks.display()
        ),
    );
    let mut d = Daemon::start(&s, &cfg);
    // A routine sample goes to the live file only (not the ring): its time tells them apart.
    let live = s.path("run/checks/size.json");
    let sampled_at = || -> i64 {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&live).unwrap_or_default()).unwrap_or_default();
        v["at_ms"].as_i64().unwrap_or(0)
    };
    wait_for(Duration::from_secs(10), "the daemon's first sample", || sampled_at() > 0);
    std::fs::write(&data, vec![b'x'; 5000]).unwrap();
    let (code, out) = once(&s, &cfg, "size");
    assert_eq!(code, 1, "crit: {out}");
    wait_for(Duration::from_secs(10), "once's alert", || !common::lines(&hooks).is_empty());
    // Once writes the live file too; two more samples after it are the daemon's.
    let mut seen = vec![sampled_at()];
    wait_for(Duration::from_secs(10), "two daemon samples after once's", || {
        let t = sampled_at();
        if t > *seen.last().unwrap() {
            seen.push(t);
        }
        seen.len() >= 3
    });
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
    assert_eq!(common::lines(&hooks), vec!["ALERT"], "one alert, once's, within the cooldown: {}", d.log_text());
}

/// The daemon blocks TERM, INT, HUP and CHLD for its signalfd: an exec probe and an
/// `on_alert` hook it starts see none blocked and none ignored, as a command job does
/// (tests/job_start.rs), by either way of starting a process.
#[test]
fn exec_probes_and_hooks_start_with_no_signal_blocked_or_ignored() {
    for spawn in ["clone3", "helper"] {
        let s = Scratch::new(&format!("check-sigmask-{spawn}"));
        let (probe, hook) = (s.path("probe.txt"), s.path("hook.txt"));
        // Read by the shell's own builtins: a forked `grep` could see the shell's mask while
        // dash blocks every signal around its fork.
        let save = |to: &Path| {
            format!(
                "while read -r k v; do case $k in SigBlk:|SigIgn:) echo $k $v;; esac; done < /proc/$$/status > {}.tmp; mv {0}.tmp {0}",
                to.display()
            )
        };
        let cfg = config(
            &s,
            &format!(
                "  sig:\n    every: 300ms\n    check:\n      probe: exec\n      command: \"{}; exit 3\"\n      cooldown: 1h\n      on_alert: \"{}\"\n",
                save(&probe),
                save(&hook)
            ),
        );
        let mut d = Daemon::start_with(&s, &cfg, &[("RUNNER_SPAWN", spawn)]);
        wait_for(Duration::from_secs(10), "the probe and the hook", || probe.exists() && hook.exists());
        // The daemon's own threads have them blocked: the mask the children were spared.
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
        let blocked = status.lines().find_map(|l| l.strip_prefix("SigBlk:")).unwrap().trim().to_string();
        let mask = u64::from_str_radix(&blocked, 16).unwrap();
        use nix::sys::signal::Signal::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
        for sig in [SIGTERM, SIGINT, SIGHUP, SIGCHLD] {
            assert!(mask & (1 << (sig as u32 - 1)) != 0, "{spawn}: the daemon does not block {sig}: {blocked}");
        }
        d.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(d.wait_exit(Duration::from_secs(10)).success(), "{spawn}: {}", d.log_text());
        for (what, file) in [("probe", &probe), ("hook", &hook)] {
            let mut text = std::fs::read_to_string(file).unwrap();
            if let Some(ign) = text.lines().find_map(|l| l.strip_prefix("SigIgn: ")).map(str::to_string) {
                // Under emulation, without the host signals qemu-user keeps for itself.
                let mask = u64::from_str_radix(&ign, 16).map(common::runner_signal_mask).unwrap_or(u64::MAX);
                text = text.replace(&format!("SigIgn: {ign}"), &format!("SigIgn: {mask:016x}"));
            }
            assert_eq!(text, "SigBlk: 0000000000000000\nSigIgn: 0000000000000000\n", "{spawn}: the {what}'s signals");
        }
    }
}
