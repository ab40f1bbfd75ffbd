//! Figures for the daemon, printed, not asserted: `cargo bench --bench daemon`.
//!
//! - stripped binary size
//! - time from exec to READY=1
//! - private memory (smaps_rollup `Anonymous`), PSS and RSS at idle with 20 jobs due far away,
//!   beside issue 14's goals (256 KiB, 2.5 MiB), and where the private memory is, by kind of
//!   mapping (heap, main stack, thread stacks and other anonymous maps, the binary's
//!   relocated data, the shared libraries' data)
//! - RSS and private memory with a job every 15 s, 1 s after a run and once the daemon
//!   settled (3 s after it: freed heap given back), and what the fire after
//!   settling costs: its minor faults beside a fire that did not follow a settle, and its delay
//! - idle wakeups (context switches of all threads) per minute between due times
//! - fire delay after the due instant, p50/p99 over 100 fires
//! - per run of a cron job, with 20 and with 1,000 jobs that have run: durable flushes
//!   (fsync + fdatasync calls) and bytes written to `state_dir` (flash) and `runtime_dir`
//!   (tmpfs), counted with `strace -f -y` on the daemon (skipped without strace)
//! - fire delay after the due instant, p50/p99 over 100 fires, in 3 runs (min/median/max),
//!   and again with RUNNER_CONTAINMENT=subreaper (no cgroup), each both ways a job starts:
//!   clone3 into its cgroup and RUNNER_SPAWN=helper (the exec helper, which joins the cgroup
//!   by a `cgroup.procs` write; how every job started before). The four are interleaved, run
//!   by run, so they are compared at like loads, with a fifth: the floor, the same five shell
//!   jobs started at each second by a bare loop in the bench itself, with no runner
//! - at 20 and at 10,000 configured jobs (the most a config may have; 5 per-second jobs
//!   firing, the rest due once a year): exec to READY=1, RSS and private memory
//!   (`smaps_rollup` `Anonymous`, as at idle: Private_Clean would count the page cache of a
//!   freshly built binary) once it fires, and the cost of a fire:
//!   the daemon's CPU (user+system) per fire, the CPU of the fired jobs (reaped children) per
//!   fire, and the daemon's system calls per fire (strace -c -f on the daemon's threads only,
//!   in a second window, since tracing slows it)
//! - the load average before and after, since every figure moves with it
//!
//! - bytes at the disk per run and per day (issue 29), `state_dir` alone on a loop device:
//!   ext4 with 4 KiB blocks mounted `commit=1` and with the default, f2fs where the kernel
//!   mounts it; the shipped config (RUNNER_BENCH_DISK_SECS, default 120) and a per-second job
//!   with `fsync: always` and `fsync: 5m` (RUNNER_BENCH_DISK_TICK_SECS, default 30), beside
//!   the bytes runner wrote there (strace). Needs root, losetup and mkfs.ext4.
//!
//! `RUNNER_BENCH_ONLY=fire_delay` prints the fire delay part alone (RUNNER_BENCH_ROUNDS runs,
//! default 3); `RUNNER_BENCH_ONLY=disk` the disk figures alone.
//!
//! Durations come from RUNNER_BENCH_IDLE_SECS (default 20), RUNNER_BENCH_FIRES (100) and
//! RUNNER_BENCH_COST_SECS (10, per window), RUNNER_BENCH_SETTLE_FIRES (3 runs of a 15 s job), RUNNER_BENCH_STATE_RUNS (10 runs per job count for the
//! flush figures). RUNNER_BENCH_BIN runs another build of runner (to
//! compare with an older one).
//!
//! With 20 jobs the fire's system calls are also printed by name (issue 14's goal: fewer per
//! fire, no mkdir of the state directories).

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn bin() -> String {
    std::env::var("RUNNER_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_runner").to_string())
}

fn loadavg() -> String {
    let s = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// utime+stime and cutime+cstime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<u64> = s[s.rfind(')').unwrap_or(0) + 1..].split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // After the command: state is field 3, so utime (14) is index 11 here.
    (f[11] + f[12], f[13] + f[14])
}

fn lines_of(p: &Path) -> usize {
    std::fs::read_to_string(p).map(|t| t.lines().count()).unwrap_or(0)
}

struct Cost {
    jobs: usize,
    ready_ms: f64,
    rss_mib: f64,
    private_mib: f64,
    daemon_ms_per_fire: f64,
    jobs_ms_per_fire: f64,
    syscalls_per_fire: Option<f64>,
}

/// 5 per-second jobs among `jobs` in all; one window for CPU, one under strace for syscalls.
fn fire_cost(dir: &Path, jobs: usize, secs: u64) -> Cost {
    let out = dir.join(format!("cost-{jobs}"));
    let _ = std::fs::remove_file(&out);
    let mut cfg = String::with_capacity(jobs * 64);
    for i in 0..5 {
        cfg.push_str(&format!(
            "  tick{i}:\n    schedule: \"* * * * * *\"\n    command: [\"/bin/sh\", \"-c\", \"echo >> {}\"]\n",
            out.display()
        ));
    }
    for i in 5..jobs {
        cfg.push_str(&format!("  far{i}:\n    schedule: \"0 0 1 1 *\"\n    run: \"true\"\n"));
    }
    let config = write_config(dir, &cfg);
    let _ = std::fs::remove_dir_all(dir.join("state"));
    let sock_path = dir.join(format!("notify-{jobs}.sock"));
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let t = Instant::now();
    let child = start(dir, &config, Some(&sock_path));
    let mut buf = [0u8; 512];
    loop {
        let n = sock.recv(&mut buf).expect("READY=1 within 60 s");
        if buf[..n].starts_with(b"READY=1") {
            break;
        }
    }
    let ready_ms = t.elapsed().as_secs_f64() * 1000.0;
    let pid = child.id();
    let t = Instant::now();
    while lines_of(&out) < 10 {
        assert!(t.elapsed() < Duration::from_secs(120), "the {jobs}-job daemon did not fire");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rss = status_field(pid, None, "VmRSS:") as f64 / 1024.0;
    let private = rollup(pid, "Anonymous:") as f64 / 1024.0;
    let hz = 100.0; // USER_HZ on Linux
    let (c0, j0, f0) = (cpu_ticks(pid).0, cpu_ticks(pid).1, lines_of(&out));
    std::thread::sleep(Duration::from_secs(secs));
    let (c1, j1, f1) = (cpu_ticks(pid).0, cpu_ticks(pid).1, lines_of(&out));
    let fires = (f1 - f0).max(1) as f64;
    let daemon_ms = (c1 - c0) as f64 * 1000.0 / hz / fires;
    let jobs_ms = (j1 - j0) as f64 * 1000.0 / hz / fires;

    // Syscalls of the daemon's own threads (not followed into the jobs).
    let tasks: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.flatten().map(|t| t.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let summary = dir.join(format!("strace-{jobs}"));
    let mut st = Command::new("strace");
    st.args(["-c", "-o"]).arg(&summary);
    for t in &tasks {
        st.args(["-p", t]);
    }
    let syscalls = match st.stdout(Stdio::null()).stderr(Stdio::null()).spawn() {
        Ok(mut tracer) => {
            std::thread::sleep(Duration::from_millis(500));
            let f0 = lines_of(&out);
            std::thread::sleep(Duration::from_secs(secs));
            let f1 = lines_of(&out);
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(tracer.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = tracer.wait();
            let text = std::fs::read_to_string(&summary).unwrap_or_default();
            // The "total" line: % time, seconds, usecs/call, calls, errors, "total".
            text.lines()
                .find(|l| l.trim_end().ends_with("total"))
                .and_then(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.get(3).and_then(|c| c.parse::<f64>().ok())
                })
                .map(|calls| calls / (f1 - f0).max(1) as f64)
        }
        Err(_) => None,
    };
    stop(child);
    drop(sock);
    Cost {
        jobs,
        ready_ms,
        rss_mib: rss,
        private_mib: private,
        daemon_ms_per_fire: daemon_ms,
        jobs_ms_per_fire: jobs_ms,
        syscalls_per_fire: syscalls,
    }
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("runner-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The runtime directory of a bench daemon on `dir`: on a tmpfs, as `/run` is on the boxes
/// runner ships for (on this builder `/run` is on the root disk, where a job's lock and
/// `.running` writes cost a fire 0.4 and 1.5 ms of ext4 block work), so /dev/shm when it is
/// one, else beside the state.
fn runtime_dir(dir: &Path) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let on_tmpfs = nix::sys::statfs::statfs(shm).is_ok_and(|f| f.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC);
    if on_tmpfs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        shm.join(format!("{name}-{}", std::process::id())).join("run")
    } else {
        dir.join("run")
    }
}

fn write_config(dir: &Path, jobs: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("supervisor.yaml");
    std::fs::write(&p, format!("version: 1\nmax_parallel: 8\njobs:\n{jobs}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

/// The environment and descriptors of a bench daemon on `config`, its state and runtime
/// directories under `dir`, quiet; `c` runs `runner run` itself or a tracer in front of it.
fn daemon_env<'a>(c: &'a mut Command, dir: &Path, config: &Path) -> &'a mut Command {
    c.env("RUNNER_CONFIG", config)
        .env("RUNNER_STATE_DIR", dir.join("state"))
        .env("RUNNER_RUNTIME_DIR", runtime_dir(dir))
        .env("RUNNER_LOG_LEVEL", "warn")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

fn start(dir: &Path, config: &Path, notify: Option<&Path>) -> Child {
    let mut c = Command::new(bin());
    daemon_env(c.arg("run"), dir, config);
    if let Some(n) = notify {
        c.env("NOTIFY_SOCKET", n);
    }
    c.spawn().unwrap()
}

fn stop(mut child: Child) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
}

fn status_field(pid: u32, task: Option<&str>, key: &str) -> u64 {
    let path = match task {
        Some(t) => format!("/proc/{pid}/task/{t}/status"),
        None => format!("/proc/{pid}/status"),
    };
    let s = std::fs::read_to_string(path).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        .unwrap_or(0)
}

/// A field of /proc/PID/smaps_rollup, in KiB.
fn rollup(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

/// Private (anonymous) KiB by kind of mapping, from /proc/PID/smaps, largest first.
fn anon_by_kind(pid: u32) -> Vec<(&'static str, u64)> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let exe = exe.to_string_lossy().into_owned();
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut kinds: Vec<(&'static str, u64)> = Vec::new();
    let mut kind = "";
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.first().is_some_and(|r| r.contains('-') && !r.ends_with(':')) {
            let name = f.get(5).copied().unwrap_or("");
            kind = match name {
                "[heap]" => "heap",
                "[stack]" => "main stack",
                "" => "anonymous maps (thread stacks and their guards, TLS, malloc arenas)",
                n if n == exe || n.starts_with(&format!("{exe} ")) => {
                    "the binary's data, .bss and relocated read-only data (PIE)"
                }
                n if n.starts_with('/') => "shared libraries' data and relocations",
                _ => "other",
            };
        } else if let Some(v) = l.strip_prefix("Anonymous:") {
            let kib: u64 = v.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
            match kinds.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += kib,
                None => kinds.push((kind, kib)),
            }
        }
    }
    kinds.retain(|(_, n)| *n > 0);
    kinds.sort_by_key(|k| std::cmp::Reverse(k.1));
    kinds
}

fn context_switches(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|t| t.ok())
        .map(|t| {
            let t = t.file_name().to_string_lossy().into_owned();
            status_field(pid, Some(&t), "voluntary_ctxt_switches:")
                + status_field(pid, Some(&t), "nonvoluntary_ctxt_switches:")
        })
        .sum()
}

/// What a daemon wrote for each run of one per-second cron job beside `jobs - 1` jobs that
/// have run (their job files exist), from an strace of its write and sync calls.
struct WriteFigures {
    runs: u64,
    flushes: u64,
    state_bytes: u64,
    runtime_bytes: u64,
    state_writes: u64,
}

fn writes_per_run(dir: &Path, jobs: usize, runs: u64) -> Option<WriteFigures> {
    Command::new("strace").arg("-V").output().ok()?;
    let dir = dir.join(format!("writes-{jobs}"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let mut text = format!(
        "  tick:\n    schedule: \"* * * * * *\"\n    command: [\"/bin/sh\", \"-c\", \"echo x >> {}\"]\n",
        out.display()
    );
    for i in 1..jobs {
        text.push_str(&format!("  far{i}:\n    schedule: \"0 0 1 1 *\"\n    run: \"true\"\n"));
    }
    let config = write_config(&dir, &text);
    let runner = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env("RUNNER_CONFIG", &config)
            .env("RUNNER_STATE_DIR", dir.join("state"))
            .env("RUNNER_RUNTIME_DIR", runtime_dir(&dir))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    };
    // One real run makes the ring and a job file; the other jobs get a copy of it, as if
    // each had run.
    assert!(runner(&["once", "tick"]).success());
    let jobs_dir = dir.join("state/jobs");
    let one = std::fs::read(jobs_dir.join("tick.json")).unwrap();
    for i in 1..jobs {
        std::fs::write(jobs_dir.join(format!("far{i}.json")), &one).unwrap();
    }
    let trace = dir.join("trace");
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,write,pwrite64,writev,rename,renameat2", "-o"]).arg(&trace);
    daemon_env(c.arg(bin()).arg("run"), &dir, &config);
    let mut child = c.spawn().unwrap();
    let count = || std::fs::read_to_string(&out).unwrap_or_default().lines().count() as u64;
    let deadline = Instant::now() + Duration::from_secs(runs + 60);
    while count() < 1 + runs {
        assert!(Instant::now() < deadline, "runs did not arrive");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the last run's record and state land, then SIGKILL: the steady state, not a stop.
    std::thread::sleep(Duration::from_millis(300));
    let pid = std::fs::read_to_string(runtime_dir(&dir).join("runner.pid")).unwrap();
    let pid: i32 = pid.split_whitespace().next().unwrap().parse().unwrap();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    let _ = child.wait();
    let runs = count() - 1;
    let (state, run) = (format!("{}/", dir.join("state").display()), format!("{}/", runtime_dir(&dir).display()));
    let mut f = WriteFigures { runs, flushes: 0, state_bytes: 0, runtime_bytes: 0, state_writes: 0 };
    for l in std::fs::read_to_string(&trace).unwrap().lines() {
        let call = l.split_whitespace().nth(1).unwrap_or("");
        if call.starts_with("fsync(") || call.starts_with("fdatasync(") {
            f.flushes += 1;
        } else if call.starts_with("rename") && l.contains(&format!("{state}jobs/")) {
            f.state_writes += 1;
        } else if call.starts_with("write") || call.starts_with("pwrite64(") {
            let bytes: u64 = l.rsplit("= ").next().and_then(|n| n.trim().parse().ok()).unwrap_or(0);
            let target = l.split_once('<').map(|(_, t)| t).unwrap_or("");
            if target.starts_with(&state) {
                f.state_bytes += bytes;
            } else if target.starts_with(&run) && !target.starts_with(&format!("{run}.loaded.json.")) {
                // Not the copy of the config written once at start (`.loaded.json.<pid>.tmp`,
                // then renamed): with 1,000 jobs its 58 KB over 10 runs looked like 5.8 KB a run.
                f.runtime_bytes += bytes;
            }
        }
    }
    Some(f)
}

/// The system calls of `strace -c`'s summary (what `fire_cost` wrote), per fire, by name,
/// most first; the fires are those its total was divided by.
fn syscalls_by_name(summary: &Path, cost: Option<&Cost>) -> Option<String> {
    let text = std::fs::read_to_string(summary).ok()?;
    let mut rows: Vec<(String, f64)> = text
        .lines()
        .filter_map(|l| {
            // % time, seconds, usecs/call, calls, [errors,] syscall.
            let f: Vec<&str> = l.split_whitespace().collect();
            let calls = f.get(3)?.parse::<f64>().ok()?;
            let name = *f.last()?;
            (f.len() >= 5 && name != "total").then(|| (name.to_string(), calls))
        })
        .collect();
    let total: f64 = rows.iter().map(|r| r.1).sum();
    let fires = total / cost?.syscalls_per_fire.filter(|n| *n > 0.0)?;
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(rows.iter().map(|(n, c)| format!("{n} {:.1}", c / fires)).collect::<Vec<_>>().join(", "))
}

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// p50 and p99 of the delay from the due second to the job's own `date`, over `fires` fires
/// of five per-second jobs; `containment` sets RUNNER_CONTAINMENT, `helper` RUNNER_SPAWN.
/// `direct`: the job is `date` itself, not `/bin/sh -c 'date >> file'`; its output is read
/// back from the run log, so the figure is runner's start without a shell's (sh's own start
/// and its fork of `date`, about 1 ms of CPU a job on this machine).
fn fire_delay(dir: &Path, run: usize, fires: u64, containment: Option<&str>, helper: bool, direct: bool) -> (f64, f64) {
    let jobs = 5;
    let out = dir.join(format!("fires-{run}"));
    let mut per_second = String::new();
    for i in 0..jobs {
        let command = if direct {
            "[\"/bin/date\", \"+%s.%N\"]".to_string()
        } else {
            format!("[\"/bin/sh\", \"-c\", \"date +%s.%N >> {}\"]", out.display())
        };
        per_second.push_str(&format!("  tick{i}:\n    schedule: \"* * * * * *\"\n    command: {command}\n"));
    }
    let config = write_config(dir, &per_second);
    let _ = std::fs::remove_dir_all(dir.join("state"));
    let mut c = Command::new(bin());
    daemon_env(c.arg("run"), dir, &config);
    if let Some(m) = containment {
        c.env("RUNNER_CONTAINMENT", m);
    }
    c.env("RUNNER_SPAWN", if helper { "helper" } else { "" });
    let child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(fires / jobs + 30);
    let times = || -> Vec<String> {
        if !direct {
            return std::fs::read_to_string(&out).unwrap_or_default().lines().map(str::to_string).collect();
        }
        let mut logs = Command::new(bin());
        let o = daemon_env(logs.args(["logs", "--json"]), dir, &config).stdout(Stdio::piped()).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["kind"] == "run")
            .filter_map(|r| r["output"].as_str().map(|o| o.trim().to_string()))
            .collect()
    };
    while times().len() < (fires + jobs) as usize {
        assert!(Instant::now() < deadline, "fires did not arrive");
        std::thread::sleep(Duration::from_millis(if direct { 1000 } else { 200 }));
    }
    stop(child);
    delay_percentiles(times().iter().map(String::as_str), jobs, fires)
}

/// p50 and p99 of the delays after the second of `fires` stamps (`date +%s.%N` lines), the
/// first second's `jobs` skipped: it may start mid-way.
fn delay_percentiles<'a>(stamps: impl Iterator<Item = &'a str>, jobs: u64, fires: u64) -> (f64, f64) {
    let mut delays: Vec<f64> = stamps
        .skip(jobs as usize)
        .take(fires as usize)
        .filter_map(|l| l.parse::<f64>().ok())
        .map(|t| (t - t.floor()) * 1000.0)
        .collect();
    delays.sort_by(f64::total_cmp);
    (percentile(&delays, 0.5), percentile(&delays, 0.99))
}

/// The floor under the fire delay: p50 and p99 of the same five `/bin/sh -c 'date >> file'`
/// jobs started at each second by a bare loop in this process (sleep to the second, then
/// five spawns one after another, as the daemon starts a fire's jobs), with no lock, cgroup,
/// pipe or record. What is left above it is runner's; the floor itself is the jobs' own
/// start on this machine.
fn floor_delay(dir: &Path, run: usize, fires: u64) -> (f64, f64) {
    let jobs = 5;
    let out = dir.join(format!("floor-{run}"));
    let _ = std::fs::remove_file(&out);
    let command = format!("date +%s.%N >> {}", out.display());
    // One second more than the fires need, since the first second is skipped as in
    // `fire_delay`.
    for _ in 0..fires / jobs + 1 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        std::thread::sleep(Duration::from_secs(1) - Duration::from_nanos(now.subsec_nanos() as u64));
        let children: Vec<Child> =
            (0..jobs).map(|_| Command::new("/bin/sh").args(["-c", &command]).spawn().unwrap()).collect();
        for mut c in children {
            let _ = c.wait();
        }
    }
    delay_percentiles(std::fs::read_to_string(&out).unwrap_or_default().lines(), jobs, fires)
}

/// The minor page faults of all of a process's threads so far (/proc/PID/stat field 10).
fn minor_faults(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace().nth(7).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Memory before and after the daemon settles once a run ended, and what the next fire
/// costs for it.
struct Settled {
    fires: usize,
    /// RSS and private KiB 1 s after a run ended (before settling): the steady state a
    /// daemon that did not settle would keep.
    before: (u64, u64),
    /// The same 4.5 s after the run ended (it settles 3 s after).
    after: (u64, u64),
    /// Minor faults of the fire after settling, and of one that did not follow a settle.
    faults_settled: Vec<u64>,
    faults_unsettled: Vec<u64>,
    /// Delay from the due second to the job's exec, ms, for fires after settling.
    delay_settled: Vec<f64>,
}

/// 19 jobs due far away and one every 15 s (so the daemon settles between its runs), and
/// the same job beside a second one 5 s after it (which keeps it from settling): memory before
/// and after settling, steady state over `fires` runs, and the faults and delay of a fire.
fn settling(dir: &Path, fires: usize) -> Settled {
    let mut r = Settled {
        fires,
        before: (0, 0),
        after: (0, 0),
        faults_settled: Vec::new(),
        faults_unsettled: Vec::new(),
        delay_settled: Vec::new(),
    };
    for settles in [true, false] {
        let out = dir.join(format!("settle-{settles}"));
        let mut jobs = String::new();
        for i in 0..19 {
            jobs.push_str(&format!("  far{i}:\n    schedule: \"0 0 1 1 *\"\n    run: \"true\"\n"));
        }
        jobs.push_str(&format!(
            "  tick:\n    schedule: \"*/15 * * * * *\"\n    command: [\"/bin/sh\", \"-c\", \"date +%s.%N >> {}\"]\n",
            out.display()
        ));
        if !settles {
            // 5 s after the 15 s job: neither run is followed by 10 s of nothing due.
            jobs.push_str("  tock:\n    schedule: \"5-59/15 * * * * *\"\n    run: \"true\"\n");
        }
        let config = write_config(dir, &jobs);
        let child = start(dir, &config, None);
        let pid = child.id();
        let runs = || std::fs::read_to_string(&out).unwrap_or_default().lines().count();
        let deadline = Instant::now() + Duration::from_secs(15 * fires as u64 + 60);
        let wait_runs = |n: usize| {
            while runs() < n {
                assert!(Instant::now() < deadline, "the 15 s job did not run");
                std::thread::sleep(Duration::from_millis(50));
            }
        };
        wait_runs(1);
        for k in 1..=fires {
            std::thread::sleep(Duration::from_secs(1));
            if settles {
                r.before = (status_field(pid, None, "VmRSS:"), rollup(pid, "Anonymous:"));
                std::thread::sleep(Duration::from_millis(3500));
                r.after = (status_field(pid, None, "VmRSS:"), rollup(pid, "Anonymous:"));
            } else {
                // Past the second job's run, 5 s after the first.
                std::thread::sleep(Duration::from_millis(6000));
            }
            // Settled (or not) by now; the next fire of the 15 s job is the next one.
            let f0 = minor_faults(pid);
            wait_runs(k + 1);
            std::thread::sleep(Duration::from_millis(500));
            let faults = minor_faults(pid) - f0;
            if settles {
                r.faults_settled.push(faults);
            } else {
                r.faults_unsettled.push(faults);
            }
        }
        stop(child);
        if settles {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            r.delay_settled =
                text.lines().skip(1).filter_map(|l| l.parse::<f64>().ok()).map(|t| (t - t.floor()) * 1000.0).collect();
        }
    }
    r
}

/// The containment a daemon here picks by itself, as `runner status --json` reports it.
fn picked_containment(dir: &Path) -> String {
    let config = write_config(dir, "  far:\n    schedule: \"0 0 1 1 *\"\n    run: \"true\"\n");
    let child = start(dir, &config, None);
    std::thread::sleep(Duration::from_millis(500));
    let mut c = Command::new(bin());
    let out = daemon_env(c.args(["status", "--json"]), dir, &config).stdout(Stdio::piped()).output();
    stop(child);
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["containment"]["mode"].as_str().unwrap_or("unknown").to_string()
}

/// `RUNNER_BENCH_ONLY=fire_delay`: the fire delay part alone (the floor, clone3 into a cgroup,
/// the exec helper, each `RUNNER_BENCH_ROUNDS` times, interleaved), for a before/after
/// comparison that fits a short window.
fn fire_delay_only(dir: &Path) {
    let fires = env_u64("RUNNER_BENCH_FIRES", 100);
    let rounds = env_u64("RUNNER_BENCH_ROUNDS", 3) as usize;
    let load_before = loadavg();
    let (mut floor, mut direct, mut helper) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        floor.push(floor_delay(dir, round, fires));
        direct.push(fire_delay(dir, 5 * round, fires, None, false, false));
        helper.push(fire_delay(dir, 5 * round + 1, fires, None, true, false));
    }
    let containment = picked_containment(dir);
    let spread = |v: &[(f64, f64)], p99: bool| {
        let mut v: Vec<f64> = v.iter().map(|d| if p99 { d.1 } else { d.0 }).collect();
        v.sort_by(f64::total_cmp);
        format!("{:.2} / {:.2} / {:.2}", v[0], v[v.len() / 2], v[v.len() - 1])
    };
    println!(
        "fire delay, five per-second jobs, {fires} fires a run, min / median / max of {rounds} runs; load average {load_before} before, {} after",
        loadavg()
    );
    println!("| start | p50 | p99 |");
    println!("|---|---|---|");
    println!("| runner default ({containment}) | {} ms | {} ms |", spread(&direct, false), spread(&direct, true));
    println!("| RUNNER_SPAWN=helper ({containment}) | {} ms | {} ms |", spread(&helper, false), spread(&helper, true));
    println!("| the floor (bare loop, no runner) | {} ms | {} ms |", spread(&floor, false), spread(&floor, true));
}

fn main() {
    let dir = scratch();
    if std::env::var("RUNNER_BENCH_ONLY").is_ok_and(|v| v == "fire_delay") {
        return fire_delay_only(&dir);
    }
    if std::env::var("RUNNER_BENCH_ONLY").is_ok_and(|v| v == "disk") {
        disk_figures(&dir);
        return std::fs::remove_dir_all(&dir).unwrap_or_default();
    }
    let size = std::fs::metadata(bin()).unwrap().len();
    let load_before = loadavg();

    // exec -> READY=1
    let mut far = String::new();
    for i in 0..20 {
        far.push_str(&format!("  far{i}:\n    schedule: \"0 0 1 1 *\"\n    run: \"true\"\n"));
    }
    let config = write_config(&dir, &far);
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut ready = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let child = start(&dir, &config, Some(&sock_path));
        let mut buf = [0u8; 512];
        loop {
            let n = sock.recv(&mut buf).expect("READY=1 within 10 s");
            if buf[..n].starts_with(b"READY=1") {
                break;
            }
        }
        ready.push(t.elapsed().as_secs_f64() * 1000.0);
        stop(child);
    }
    ready.sort_by(f64::total_cmp);

    // Idle: RSS and wakeups with 20 jobs due far away.
    let child = start(&dir, &config, None);
    std::thread::sleep(Duration::from_secs(2));
    let pid = child.id();
    let rss = status_field(pid, None, "VmRSS:");
    let (private, by_kind) = (rollup(pid, "Anonymous:"), anon_by_kind(pid));
    let pss = rollup(pid, "Pss:");
    let idle_secs = env_u64("RUNNER_BENCH_IDLE_SECS", 20);
    let before = context_switches(pid);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let wakeups = context_switches(pid) - before;
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count();
    stop(child);

    // Fire delay: per-second cron jobs note when their process started; 3 runs with the
    // containment runner picks (a cgroup per run where it can), 3 forced to the subreaper,
    // each with both starts. Interleaved, so a change of load hits all four alike.
    let fires = env_u64("RUNNER_BENCH_FIRES", 100);
    let (mut delay_runs, mut subreaper_runs, mut helper_runs, mut helper_subreaper_runs, mut direct_runs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut floor_runs = Vec::new();
    for round in 0..3 {
        floor_runs.push(floor_delay(&dir, round, fires));
        delay_runs.push(fire_delay(&dir, 5 * round, fires, None, false, false));
        helper_runs.push(fire_delay(&dir, 5 * round + 1, fires, None, true, false));
        subreaper_runs.push(fire_delay(&dir, 5 * round + 2, fires, Some("subreaper"), false, false));
        helper_subreaper_runs.push(fire_delay(&dir, 5 * round + 3, fires, Some("subreaper"), true, false));
        direct_runs.push(fire_delay(&dir, 5 * round + 4, fires, None, false, true));
    }
    let containment = picked_containment(&dir);

    let settle = settling(&dir, env_u64("RUNNER_BENCH_SETTLE_FIRES", 3) as usize);

    let cost_secs = env_u64("RUNNER_BENCH_COST_SECS", 10);
    let costs: Vec<Cost> = [20, 10_000].iter().map(|&n| fire_cost(&dir, n, cost_secs)).collect();

    // Writes per run, with few and with many jobs that have run.
    let state_runs = env_u64("RUNNER_BENCH_STATE_RUNS", 10);
    let writes: Vec<(usize, Option<WriteFigures>)> =
        [20, 1000].into_iter().map(|n| (n, writes_per_run(&dir, n, state_runs))).collect();

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    println!(
        "runner daemon figures ({now}, {} threads at idle; load average {load_before} before, {} after)",
        threads,
        loadavg()
    );
    println!("| figure | value |");
    println!("|---|---|");
    println!("| binary size (release, stripped) | {:.2} MB |", size as f64 / 1e6);
    println!(
        "| exec to READY=1, min / median / max of 20 | {:.1} ms / {:.1} ms / {:.1} ms |",
        ready[0],
        percentile(&ready, 0.5),
        ready[ready.len() - 1]
    );
    println!("| private memory at idle, 20 jobs (smaps_rollup Anonymous; goal 256 KiB) | {private} KiB |");
    for (kind, kib) in &by_kind {
        println!("| - of which {kind} | {kib} KiB |");
    }
    println!("| RSS at idle, 20 jobs (goal 2.5 MiB) | {:.2} MiB |", rss as f64 / 1024.0);
    println!("| PSS at idle, 20 jobs (smaps_rollup Pss: shared pages divided among their users) | {pss} KiB |");
    let median = |v: &[u64]| {
        let mut v = v.to_vec();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    println!(
        "| after {} runs of a 15 s job (19 more far away): RSS / private 1 s after a run (steady state unsettled) | {:.2} MiB / {} KiB |",
        settle.fires,
        settle.before.0 as f64 / 1024.0,
        settle.before.1
    );
    println!(
        "| the same 4.5 s after the run (settled 3 s after it) | {:.2} MiB / {} KiB |",
        settle.after.0 as f64 / 1024.0,
        settle.after.1
    );
    println!(
        "| minor faults of a fire, median of {}: after settling / without (a second job due 5 s after each) | {} / {} |",
        settle.fires,
        median(&settle.faults_settled),
        median(&settle.faults_unsettled)
    );
    println!(
        "| fire delay to job exec after settling, each fire | {} ms |",
        settle.delay_settled.iter().map(|d| format!("{d:.1}")).collect::<Vec<_>>().join(" / ")
    );
    println!(
        "| wakeups at idle | {} in {idle_secs} s ({:.1} per minute) |",
        wakeups,
        wakeups as f64 * 60.0 / idle_secs as f64
    );
    let spread = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        format!("{:.2} / {:.2} / {:.2}", v[0], v[v.len() / 2], v[v.len() - 1])
    };
    println!(
        "| fire delay to job exec, p50 of {fires}, min / median / max of 3 runs | {} ms |",
        spread(delay_runs.iter().map(|d| d.0).collect())
    );
    for (jobs, f) in &writes {
        let Some(f) = f else {
            println!("| per run, {jobs} jobs | skipped: needs strace |");
            continue;
        };
        let per = |v: u64| v as f64 / f.runs as f64;
        println!(
            "| per run of a cron job, {jobs} jobs that have run ({} runs) | {:.2} durable flushes (fsync + fdatasync); {:.0} bytes written to state_dir in {:.2} job file rewrites; {:.0} bytes to runtime_dir (tmpfs) |",
            f.runs,
            per(f.flushes),
            per(f.state_bytes),
            per(f.state_writes),
            per(f.runtime_bytes)
        );
    }
    println!(
        "| fire delay to job exec, p99 of {fires}, min / median / max of 3 runs | {} ms |",
        spread(delay_runs.iter().map(|d| d.1).collect())
    );
    println!(
        "| the same forced to RUNNER_CONTAINMENT=subreaper (the above ran with {containment}), p50 / p99 | {} ms / {} ms |",
        spread(subreaper_runs.iter().map(|d| d.0).collect()),
        spread(subreaper_runs.iter().map(|d| d.1).collect())
    );
    println!(
        "| the same two with RUNNER_SPAWN=helper (the exec helper joins the cgroup), p50 / p99, {containment} | {} ms / {} ms |",
        spread(helper_runs.iter().map(|d| d.0).collect()),
        spread(helper_runs.iter().map(|d| d.1).collect())
    );
    println!(
        "| - and subreaper, p50 / p99 | {} ms / {} ms |",
        spread(helper_subreaper_runs.iter().map(|d| d.0).collect()),
        spread(helper_subreaper_runs.iter().map(|d| d.1).collect())
    );
    println!(
        "| the jobs `date` itself, no shell (its output read from the run log), {containment}, p50 / p99 | {} ms / {} ms |",
        spread(direct_runs.iter().map(|d| d.0).collect()),
        spread(direct_runs.iter().map(|d| d.1).collect())
    );
    println!(
        "| the floor: the same five shell jobs started by a bare loop at each second (no runner), p50 / p99 | {} ms / {} ms |",
        spread(floor_runs.iter().map(|d| d.0).collect()),
        spread(floor_runs.iter().map(|d| d.1).collect())
    );
    for c in &costs {
        println!(
            "| {} jobs configured: exec to READY=1 / RSS / private memory (smaps_rollup Anonymous) | {:.0} ms / {:.1} MiB / {:.1} MiB |",
            c.jobs, c.ready_ms, c.rss_mib, c.private_mib
        );
    }
    for c in &costs {
        println!(
            "| one fire with {} jobs configured (RSS {:.1} MiB): daemon CPU / job CPU / daemon syscalls | {:.2} ms / {:.2} ms / {} |",
            c.jobs,
            c.rss_mib,
            c.daemon_ms_per_fire,
            c.jobs_ms_per_fire,
            c.syscalls_per_fire.map_or("not measured (no strace)".to_string(), |n| format!("{n:.0}"))
        );
    }
    if let Some(names) = syscalls_by_name(&dir.join("strace-20"), costs.iter().find(|c| c.jobs == 20)) {
        println!("| daemon syscalls per fire by name, 20 jobs | {names} |");
    }
    disk_figures(&dir);
    if let Some(shm) = runtime_dir(&dir).parent().filter(|p| p.starts_with("/dev/shm")) {
        let _ = std::fs::remove_dir_all(shm);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file system image on a loop device, mounted for the disk figures; unmounted and
/// detached on drop, also when a figure panics.
struct LoopMount {
    dev: String,
    at: PathBuf,
}

impl LoopMount {
    /// `fs` is `ext4` (4 KiB blocks, inode tables and journal written at mkfs, so no lazy
    /// init writes into the figures) or `f2fs`; none when it cannot be set up.
    fn new(dir: &Path, fs: &str, options: &str) -> Option<LoopMount> {
        let image = dir.join(format!("{fs}.img"));
        std::fs::File::create(&image).ok()?.set_len(256 << 20).ok()?;
        let mkfs = match fs {
            "ext4" => Command::new("mkfs.ext4")
                .args(["-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0"])
                .arg(&image)
                .output(),
            _ => Command::new("mkfs.f2fs").args(["-q", "-f"]).arg(&image).output(),
        };
        if !mkfs.ok()?.status.success() {
            return None;
        }
        let o = Command::new("losetup").args(["-f", "--show"]).arg(&image).output().ok()?;
        let dev = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !o.status.success() || dev.is_empty() {
            return None;
        }
        let at = dir.join(format!("mnt-{fs}-{options}"));
        std::fs::create_dir_all(&at).unwrap();
        let m = LoopMount { dev, at };
        let mounted = Command::new("mount").args(["-t", fs, "-o", options]).arg(&m.dev).arg(&m.at).status();
        mounted.is_ok_and(|s| s.success()).then_some(m)
    }

    fn sectors_written(&self) -> u64 {
        let name = Path::new(&self.dev).file_name().unwrap().to_string_lossy().into_owned();
        let stat = std::fs::read_to_string(format!("/sys/block/{name}/stat")).unwrap_or_default();
        stat.split_whitespace().nth(6).and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.at).status();
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// What one window of a daemon cost `state_dir`: records it appended, bytes the device wrote,
/// bytes the daemon wrote into the directory (strace; none without it), seconds.
struct DiskFigures {
    records: u64,
    disk_bytes: u64,
    program_bytes: Option<u64>,
    secs: f64,
}

/// The records in the ring (every kind: runs, samples recorded, the daemon's own).
fn ring_records(config: &Path, state: &Path) -> u64 {
    let o = Command::new(bin())
        .args(["logs", "--json", "--file"])
        .arg(state.join("runs.ring"))
        .env("RUNNER_CONFIG", config)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).lines().count() as u64
}

/// Runs the daemon on `config` with `state_dir` on `m` for `secs` after a warm-up (the ring
/// made, each job's first file), under strace when there is one.
fn disk_window(dir: &Path, m: &LoopMount, config: &Path, secs: u64) -> DiskFigures {
    let state = m.at.join("state");
    let trace = dir.join(format!("disk-trace-{}", m.at.file_name().unwrap().to_string_lossy()));
    let traced = Command::new("strace").arg("-V").output().is_ok();
    let mut c = Command::new(if traced { "strace".to_string() } else { bin() });
    if traced {
        c.args(["-f", "-qq", "-y", "-e", "trace=write,pwrite64,writev", "-o"]).arg(&trace).arg(bin());
    }
    c.arg("run")
        .env("RUNNER_CONFIG", config)
        .env("RUNNER_STATE_DIR", &state)
        .env("RUNNER_RUNTIME_DIR", runtime_dir(&m.at))
        .env("RUNNER_JOURNAL_SOCKET", dir.join("no-journal"))
        .env("RUNNER_SYSLOG_SOCKET", dir.join("no-syslog"))
        .env("RUNNER_LOG_LEVEL", "warn")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(8));
    let (s0, r0) = (m.sectors_written(), ring_records(config, &state));
    let written0 = std::fs::read_to_string(&trace).map(|t| t.lines().count()).unwrap_or(0);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (s1, r1) = (m.sectors_written(), ring_records(config, &state));
    let elapsed = t.elapsed().as_secs_f64();
    let program_bytes = traced.then(|| {
        let text = std::fs::read_to_string(&trace).unwrap_or_default();
        let prefix = format!("<{}/", state.display());
        text.lines()
            .skip(written0)
            .filter(|l| l.contains(&prefix))
            .filter_map(|l| l.rsplit("= ").next().and_then(|n| n.trim().parse::<u64>().ok()))
            .sum()
    });
    // The daemon by its pid file: TERM to strace detaches it and leaves the daemon running,
    // holding the mount.
    let pid = std::fs::read_to_string(runtime_dir(&m.at).join("runner.pid")).unwrap_or_default();
    if let Some(pid) = pid.split_whitespace().next().and_then(|p| p.parse::<i32>().ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    let mut child = child;
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(runtime_dir(&m.at));
    DiskFigures { records: r1 - r0, disk_bytes: (s1 - s0) * 512, program_bytes, secs: elapsed }
}

/// Whether the kernel mounts f2fs and mkfs.f2fs is installed.
fn f2fs_usable() -> bool {
    let listed = std::fs::read_to_string("/proc/filesystems").is_ok_and(|t| t.lines().any(|l| l.ends_with("\tf2fs")));
    listed && Command::new("mkfs.f2fs").arg("-V").output().is_ok()
}

/// Bytes at the disk per run and per day (issue 29): the shipped config and a per-second job
/// (`fsync: always` and `fsync: 5m`), with `state_dir` alone on a loop device of ext4 (4 KiB
/// blocks, `commit=1` and the default `commit=5`) and of f2fs where the kernel mounts it,
/// beside the bytes the daemon wrote there. Needs root, losetup and mkfs.ext4.
fn disk_figures(dir: &Path) {
    let secs = env_u64("RUNNER_BENCH_DISK_SECS", 120);
    let tick_secs = env_u64("RUNNER_BENCH_DISK_TICK_SECS", 30);
    println!("\n| bytes at the disk, `state_dir` alone on a loop device | a run | a day | written by runner a run |");
    println!("|---|---|---|---|");
    if !nix::unistd::geteuid().is_root() || Command::new("losetup").arg("-V").output().is_err() {
        println!("| skipped: needs root, losetup and mkfs.ext4 | | | |");
        return;
    }
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/supervisor.yaml");
    let tick = |fsync: &str| {
        let p = dir.join(format!("tick-{}.yaml", fsync.replace(' ', "")));
        let text = format!(
            "version: 1\nlog:\n  fsync: {fsync}\njobs:\n  tick:\n    schedule: \"* * * * * *\"\n    run: \"true\"\n"
        );
        std::fs::write(&p, text).unwrap();
        p
    };
    let mut mounts = vec![("ext4", "commit=1"), ("ext4", "defaults")];
    if f2fs_usable() {
        mounts.push(("f2fs", "defaults"));
    }
    let cases = [
        ("shipped config (etc/supervisor.yaml)", shipped, secs),
        ("a per-second `true` job, fsync: always", tick("always"), tick_secs),
        ("a per-second `true` job, fsync: 5m", tick("5m"), tick_secs),
    ];
    for (fs, options) in mounts {
        for (what, config, window) in &cases {
            let Some(m) = LoopMount::new(dir, fs, options) else {
                println!("| {fs} {options}: could not be set up | | | |");
                break;
            };
            let f = disk_window(dir, &m, config, *window);
            let per_run = f.disk_bytes as f64 / f.records.max(1) as f64;
            let per_day = f.disk_bytes as f64 / f.secs * 86_400.0;
            let program =
                f.program_bytes.map_or("no strace".into(), |b| format!("{:.0} B", b as f64 / f.records.max(1) as f64));
            println!(
                "| {fs} ({options}), {what}: {} records in {:.0} s | {per_run:.0} B ({:.2} blocks) | {:.1} MB | {program} |",
                f.records,
                f.secs,
                per_run / 4096.0,
                per_day / 1e6
            );
        }
    }
    if !f2fs_usable() {
        println!(
            "| f2fs: not measured (the kernel does not list it in /proc/filesystems, or mkfs.f2fs is missing) | | | |"
        );
    }
}
