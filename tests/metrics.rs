//! `runner metrics` against independent sources on this machine: df and df -i for disks,
//! psutil (in a venv under the target dir) for memory and load, a busy loop the test starts
//! for CPU, and fixture sysfs trees (plus the real /sys where it has sensors) for
//! temperatures.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{BIN, Scratch};

fn metrics(args: &[&str], env: &[(&str, &std::path::Path)]) -> serde_json::Value {
    let mut c = Command::new(BIN);
    c.arg("metrics").arg("--json").args(args).env("RUNNER_CONFIG", "/nonexistent/supervisor.yaml");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success() || !env.is_empty(), "runner metrics failed: {}", common::stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", common::stdout(&o)))
}

/// `df --output=pcent,ipcent PATH` as two integers (df rounds up).
fn df(path: &str) -> (f64, Option<f64>) {
    let o = Command::new("df").args(["--output=pcent,ipcent", path]).output().unwrap();
    assert!(o.status.success(), "df failed: {}", common::stderr(&o));
    let out = common::stdout(&o);
    let line = out.lines().nth(1).unwrap().to_string();
    let mut f = line.split_whitespace().map(|s| s.trim_end_matches('%').parse::<f64>().ok());
    (f.next().flatten().unwrap(), f.next().flatten())
}

#[test]
fn disk_and_inode_use_match_df() {
    let tmp = std::env::temp_dir();
    let paths = ["/", tmp.to_str().unwrap(), env!("CARGO_MANIFEST_DIR")];
    let mut args = vec![];
    for p in &paths {
        args.extend(["--path", p]);
    }
    args.extend(["--interval", "50ms"]);
    let v = metrics(&args, &[]);
    for (i, p) in paths.iter().enumerate() {
        let d = &v["disks"][i];
        assert_eq!(d["path"], *p);
        let ours = d["used_percent"].as_f64().unwrap();
        let (pcent, ipcent) = df(p);
        // df rounds up to a whole percent; allow one more for writes between the two reads.
        assert!(ours <= pcent + 0.01 && ours > pcent - 2.0, "{p}: runner {ours}%, df {pcent}%");
        if let Some(ip) = ipcent {
            let ours = d["inodes_used_percent"].as_f64().unwrap();
            assert!(ours <= ip + 0.01 && ours > ip - 2.0, "{p}: runner inodes {ours}%, df -i {ip}%");
        }
    }
}

/// The venv's python with psutil, created under the target dir on first use.
fn psutil_python() -> Result<PathBuf, String> {
    common::python_venv("psutil-venv", &["psutil==7.0.0"], |python| {
        Command::new(python).args(["-c", "import psutil"]).output().is_ok_and(|o| o.status.success())
    })
}

#[test]
fn memory_and_load_agree_with_psutil() {
    let python = match psutil_python() {
        Ok(p) => p,
        Err(e) => {
            common::skip_missing(&format!("psutil in a venv: {e}"));
            return;
        }
    };
    let script = "import json, os, psutil\nm = psutil.virtual_memory()\ns = psutil.swap_memory()\nprint(json.dumps({'percent': m.percent, 'available': m.available, 'total': m.total, 'swap': s.percent, 'load': os.getloadavg(), 'pids': len(psutil.pids())}))";
    let py = |_: ()| -> serde_json::Value {
        let o = Command::new(&python).args(["-c", script]).output().unwrap();
        assert!(o.status.success(), "{}", common::stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let before = py(());
    let ours = metrics(&["--interval", "50ms"], &[]);
    let after = py(());
    let between = |key: &str, v: f64, slack: f64| {
        let (a, b) = (before[key].as_f64().unwrap(), after[key].as_f64().unwrap());
        let (lo, hi) = (a.min(b) - slack, a.max(b) + slack);
        assert!(v >= lo && v <= hi, "{key}: runner {v}, psutil {a} then {b} (slack {slack})");
    };
    assert_eq!(ours["mem_total_bytes"].as_f64().unwrap(), before["total"].as_f64().unwrap());
    between("percent", ours["mem_used_percent"].as_f64().unwrap(), 1.0);
    between("available", ours["mem_available_bytes"].as_f64().unwrap(), 64.0 * 1024.0 * 1024.0);
    between("swap", ours["swap_used_percent"].as_f64().unwrap(), 1.0);
    for (i, k) in ["load1", "load5", "load15"].iter().enumerate() {
        let v = ours[k].as_f64().unwrap();
        let (a, b) = (before["load"][i].as_f64().unwrap(), after["load"][i].as_f64().unwrap());
        assert!(v >= a.min(b) - 0.5 && v <= a.max(b) + 0.5, "{k}: runner {v}, psutil {a} then {b}");
    }
    between("pids", ours["procs"].as_f64().unwrap(), 20.0);
}

#[test]
fn cpu_percent_sees_a_busy_loop() {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut loops: Vec<std::process::Child> = (0..cores)
        .map(|_| Command::new("sh").args(["-c", "while :; do :; done"]).stdout(Stdio::null()).spawn().unwrap())
        .collect();
    // Every loop is running: it has used CPU time already.
    for c in &loops {
        common::wait_for(std::time::Duration::from_secs(20), "a busy loop to run", || cpu_ticks(c.id()) > 0);
    }
    let v = metrics(&["--interval", "1s"], &[]);
    for c in &mut loops {
        let _ = c.kill();
        let _ = c.wait();
    }
    let busy = v["cpu_percent"].as_f64().unwrap();
    // One busy shell per core: the box is nearly all busy, whatever else runs.
    assert!(busy >= 70.0, "cpu_percent {busy} with {cores} busy loops");
    assert!(busy <= 100.0);
    let per_core: Vec<f64> = v["cpu_cores_percent"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(per_core.len(), cores);
    assert!(per_core.iter().all(|c| *c >= 30.0), "per core {per_core:?}");
}

fn sysfs_fixture(s: &Scratch) -> PathBuf {
    for (rel, text) in [
        ("sys/class/thermal/thermal_zone0/type", "cpu-thermal\n"),
        ("sys/class/thermal/thermal_zone0/temp", "47250\n"),
        ("sys/class/thermal/thermal_zone10/type", "gpu-thermal\n"),
        ("sys/class/thermal/thermal_zone10/temp", "-5000\n"),
        ("sys/class/hwmon/hwmon0/name", "coretemp\n"),
        ("sys/class/hwmon/hwmon0/temp1_input", "51000\n"),
        ("sys/class/hwmon/hwmon0/temp1_label", "Package id 0\n"),
        ("sys/class/hwmon/hwmon0/temp2_input", "49000\n"),
    ] {
        s.write(rel, text);
    }
    s.path("sys")
}

#[test]
fn temperatures_from_a_fixture_sysfs() {
    let s = Scratch::new("temps");
    let sys = sysfs_fixture(&s);
    let v = metrics(&["--interval", "10ms"], &[("RUNNER_SYS_ROOT", &sys)]);
    let temps: Vec<(String, f64)> = v["temperatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["celsius"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        temps,
        [
            ("cpu-thermal".to_string(), 47.25),
            ("gpu-thermal".to_string(), -5.0),
            ("coretemp Package id 0".to_string(), 51.0),
            ("coretemp temp2".to_string(), 49.0),
        ]
    );
}

#[test]
fn temperatures_from_the_real_sys_match_its_files() {
    let zones: Vec<(String, f64)> = std::fs::read_dir("/sys/class/thermal")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("thermal_zone"))
                .filter_map(|e| {
                    let t = std::fs::read_to_string(e.path().join("type")).ok()?;
                    let c = std::fs::read_to_string(e.path().join("temp")).ok()?.trim().parse::<f64>().ok()?;
                    Some((t.trim().to_string(), c / 1000.0))
                })
                .collect()
        })
        .unwrap_or_default();
    let v = metrics(&["--interval", "10ms"], &[]);
    let ours = v["temperatures"].as_array().unwrap();
    if zones.is_empty() {
        // This machine (a VM or container) has no thermal zones: nothing to compare, and
        // runner must not invent any.
        eprintln!("no thermal zones in /sys on this machine; compared only hwmon-free output");
        assert!(ours.iter().all(|t| !t["name"].as_str().unwrap().contains("thermal")));
        return;
    }
    for (name, c) in zones {
        let t = ours.iter().find(|t| t["name"] == name.as_str()).unwrap_or_else(|| panic!("zone {name} missing"));
        assert!((t["celsius"].as_f64().unwrap() - c).abs() < 5.0, "{name}: {t} vs {c}");
    }
}

#[test]
fn a_missing_proc_root_is_reported_not_a_panic() {
    let s = Scratch::new("noproc");
    std::fs::create_dir_all(s.path("empty")).unwrap();
    let o = Command::new(BIN)
        .args(["metrics", "--interval", "10ms"])
        .env("RUNNER_CONFIG", "/nonexistent/supervisor.yaml")
        .env("RUNNER_PROC_ROOT", s.path("empty"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", common::stderr(&o));
    let err = common::stderr(&o);
    assert!(err.contains("stat") && err.contains("meminfo") && err.contains("loadavg"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// utime + stime of a process, in clock ticks (100 per second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = s[s.rfind(')').unwrap() + 2..].split(' ').collect();
    // Fields 14 and 15 of the line; `f` starts at field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A shell under a name of its own (a symlink: `comm` is the name it was executed by), so
/// `--process` matches only what this test started. Its stdin is a pipe the test holds open.
fn named_shell(s: &Scratch, name: &str, script: &str) -> std::process::Child {
    let link = s.path(name);
    std::os::unix::fs::symlink("/bin/sh", &link).unwrap();
    Command::new(&link).args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap()
}

#[test]
fn process_cpu_and_rss_of_a_busy_loop_by_name() {
    let s = Scratch::new("proc-cpu");
    let (busy_name, idle_name) = (format!("rbusy{}", std::process::id()), format!("ridle{}", std::process::id()));
    let mut busy = named_shell(&s, &busy_name, "while :; do :; done");
    let mut idle = named_shell(&s, &idle_name, "read x");
    // The loop is running (it has used CPU time) and the idle shell blocks in its read.
    common::wait_for(std::time::Duration::from_secs(20), "the busy loop to run", || cpu_ticks(busy.id()) > 0);
    common::wait_for(
        std::time::Duration::from_secs(20),
        "the idle shell to wait",
        || common::settled(idle.id() as i32),
    );
    // The test's own figure, from the same kernel counters over a window holding runner's.
    let (t0, a) = (std::time::Instant::now(), cpu_ticks(busy.id()));
    let v = metrics(
        &["--interval", "2s", "--process", &busy_name, "--process", &idle_name, "--process", "no-such-prog"],
        &[],
    );
    let own = (cpu_ticks(busy.id()) - a) as f64 / 100.0 / t0.elapsed().as_secs_f64() * 100.0;
    for c in [&mut busy, &mut idle] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let rows = v["processes"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{v}");
    let (b, i, none) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!((b["name"].as_str(), b["count"].as_u64()), (Some(busy_name.as_str()), Some(1)), "{b}");
    let cpu = b["cpu_percent"].as_f64().unwrap();
    // One core at most for a single-threaded loop; on a shared machine it gets what it gets,
    // and runner's interval sits inside the test's window, so they agree within a margin.
    assert!(cpu <= 102.0, "{cpu}");
    assert!((cpu - own).abs() <= 15.0, "runner {cpu} %, measured here {own:.1} %");
    assert!(own >= 20.0, "the busy loop got {own:.1} % of a core: too loaded to tell it from idle");
    let rss = b["rss_bytes"].as_u64().unwrap();
    assert!(rss > 100 << 10 && rss < 64 << 20, "a shell's RSS: {rss}");
    assert_eq!(i["count"], 1, "{i}");
    assert!(i["cpu_percent"].as_f64().unwrap() < 5.0, "an idle shell: {i}");
    assert_eq!(none["count"], 0, "{none}");
    assert!(none["cpu_percent"].is_null(), "no process, no figure: {none}");
    // Text output has a line per process.
    let mut busy = named_shell(&s, &format!("{busy_name}b"), "while :; do :; done");
    let o = Command::new(BIN)
        .args(["metrics", "--interval", "300ms", "--process", &format!("{busy_name}b")])
        .env("RUNNER_CONFIG", "/nonexistent/supervisor.yaml")
        .output()
        .unwrap();
    let _ = busy.kill();
    let _ = busy.wait();
    let text = common::stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.starts_with("process") && l.contains("1 matching") && l.ends_with(&format!("{busy_name}b"))),
        "{text}"
    );
}
