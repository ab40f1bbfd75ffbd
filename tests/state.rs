//! The state through the real binary: what the ring holds survives a SIGKILL of the daemon
//! and a power cut (the tmpfs copies gone, a job file in `state_dir` as an early write left
//! it); a run's state write goes to `runtime_dir` unsynced, never to `state_dir` (the
//! ring's fdatasync is the one durable flush per run).

mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn cfg(s: &Scratch, jobs: &str) -> std::path::PathBuf {
    s.write("supervisor.yaml", &format!("version: 1\njobs:\n{jobs}"))
}

/// The run records of `job` in the ring, as `runner logs --json` reads them.
fn ring_runs(s: &Scratch, c: &Path, job: &str) -> Vec<serde_json::Value> {
    let o = s.runner(c).args(["logs", "--json", "--job", job]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "run")
        .collect()
}

/// Every record in the ring, of any job and kind (the daemon's own, skipped fires).
fn ring_records(s: &Scratch, c: &Path) -> usize {
    let o = s.runner(c).args(["logs", "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().count()
}

fn status_of(s: &Scratch, c: &Path, job: &str) -> serde_json::Value {
    let o = s.runner(c).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    v["jobs"].as_array().unwrap().iter().find(|j| j["name"] == job).unwrap().clone()
}

#[test]
fn status_after_a_sigkill_reports_every_run_the_ring_holds() {
    let s = Scratch::new("st-kill");
    let out = s.path("out");
    let c = cfg(&s, &format!("  tick:\n    every: 100ms\n    run: \"echo x >> {}; exit 3\"\n", out.display()));
    let mut d = Daemon::start(&s, &c);
    let job_file = s.path("state/jobs/tick.json");
    wait_for(LONG, "the first run in the job file", || job_file.exists());
    // What the file held after one or two runs: what a power cut could leave of a job file,
    // since its later rewrites are not fsynced.
    let stale = std::fs::read(&job_file).unwrap();
    let stale_runs = serde_json::from_slice::<serde_json::Value>(&stale).unwrap()["runs"].as_u64().unwrap() as usize;
    // Under load the first look at the file can come late; the ring must hold runs the stale
    // file does not, or the restart below has nothing to catch up.
    wait_for(LONG, "six runs, two beyond the stale file", || {
        lines(&out).len() >= 6 && ring_runs(&s, &c, "tick").len() >= stale_runs + 2
    });
    d.child.kill().unwrap();
    d.child.wait().unwrap();

    let runs = ring_runs(&s, &c, "tick");
    assert!(runs.len() >= 5, "{runs:?}");
    let check = |what: &str| {
        let st = status_of(&s, &c, "tick");
        assert_eq!(st["runs"], runs.len(), "{what}: every run the ring holds is counted: {st}");
        assert_eq!(st["consecutive_failures"], runs.len(), "{what}: {st}");
        assert_eq!(st["last_outcome"], "failure", "{what}: {st}");
        assert_eq!(st["last_exit_code"], 3, "{what}: {st}");
    };
    check("after the SIGKILL");
    // A power cut: the job files' copies in runtime_dir (a tmpfs) are gone, and the copy in
    // state_dir is what the daemon wrote at the job's first run.
    let power_cut = || {
        let _ = std::fs::remove_dir_all(s.path("run/state"));
        std::fs::write(&job_file, &stale).unwrap();
    };
    power_cut();
    check("after a power cut, with the job file as an early write left it");
    std::fs::remove_file(&job_file).unwrap();
    check("with no job file at all");

    // The next daemon writes what the ring held back into the job file.
    power_cut();
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "startup", || d.log_text().contains("runner started"));
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
    assert!(d.log_text().contains("record(s) from the run log were not in the job files"), "{}", d.log_text());
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&job_file).unwrap()).unwrap();
    assert!(file["runs"].as_u64().unwrap() >= runs.len() as u64, "{file}");
}

#[test]
fn a_runs_state_write_is_not_fsynced_only_the_ring_is() {
    let s = Scratch::new("st-fsync");
    let out = s.path("out");
    let c = cfg(&s, &format!("  tick:\n    every: 200ms\n    run: \"echo x >> {}\"\n", out.display()));
    // The ring and the job file exist before the trace: their creation is synced once.
    assert!(s.runner(&c).args(["once", "tick"]).output().unwrap().status.success());
    let trace = s.path("trace");
    let log = std::fs::File::create(s.path("daemon.log")).unwrap();
    let options = ["-f", "-qq", "-y", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2"];
    let Some(mut strace) = traced(&s, &c, &options, &trace, &["run"]) else { return };
    // Counted before the daemon starts: counted after, the runs it made meanwhile (slow
    // `runner logs` under load) would be in the trace but not in `runs`.
    let before = ring_runs(&s, &c, "tick").len();
    let records_before = ring_records(&s, &c);
    let mut child =
        strace.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(log).spawn().unwrap();
    // Five of the daemon's runs recorded in the ring: a run's record lands after its
    // process has written its line, so the output alone would kill the daemon too early.
    wait_for(LONG, "five daemon runs in the ring", || ring_runs(&s, &c, "tick").len() >= before + 5);
    // SIGKILL: only the steady state is traced, not the fsync of a clean stop.
    let pid = std::fs::read_to_string(s.path("run/runner.pid")).unwrap();
    let pid: i32 = pid.split_whitespace().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    // A killed daemon cannot remove its cgroup subtree: the test does.
    remove_daemon_cgroups(pid as u32);
    let traced = std::fs::read_to_string(&trace).unwrap();
    if traced.contains("PTRACE_TRACEME") || traced.contains("Operation not permitted") {
        return skip_missing("ptrace permission for strace");
    }
    let runs = ring_runs(&s, &c, "tick").len() - before;
    // Besides runs, the daemon's start and any fire skipped under load (the previous run
    // still going) are records too, each flushed like a run.
    let records = ring_records(&s, &c) - records_before;
    let calls = |name: &str| traced.lines().filter(|l| l.contains(&format!(" {name}("))).collect::<Vec<_>>();
    let (fsyncs, fdatasyncs) = (calls("fsync"), calls("fdatasync"));
    let renames_to = |to: &str| traced.lines().filter(|l| l.contains("rename") && l.contains(to)).count();
    // The job's copy in state_dir was made by `once`; the daemon's runs go to runtime_dir.
    let (state_writes, state_dir_writes) = (renames_to("run/state/tick.json"), renames_to("state/jobs/tick.json"));
    println!(
        "{runs} runs, {records} records: {} fsync, {} fdatasync, {state_writes} job file writes",
        fsyncs.len(),
        fdatasyncs.len()
    );
    assert!(runs >= 5, "{runs} runs");
    assert!(fsyncs.is_empty(), "no fsync while runs go on: {fsyncs:?}");
    assert!(fdatasyncs.iter().all(|l| l.contains("runs.ring")), "only the ring is flushed: {fdatasyncs:?}");
    assert!(
        fdatasyncs.len() <= records,
        "at most one durable flush per record: {} for {records} records ({runs} runs)",
        fdatasyncs.len()
    );
    assert!(
        state_writes >= runs - 1,
        "each run's state is written (to runtime_dir, a tmpfs): {state_writes} for {runs} runs"
    );
    assert!(state_writes <= runs + 1, "one job file write per run: {state_writes} for {runs} runs");
    assert_eq!(state_dir_writes, 0, "no job file rewrite in state_dir while runs go on (issue 29)");
}

/// The daemon checks its directories once, not at every write; one removed under it (an
/// admin's `rm -rf`, a tmpfs cleaner) is made again, as runner's own, by the next write
/// that finds it missing, and the runs after it are still recorded.
#[test]
fn directories_removed_under_a_running_daemon_are_made_again() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new("st-rmdir");
    let out = s.path("out");
    let c = cfg(
        &s,
        &format!(
            "  tick:\n    every: 200ms\n    run: \"echo x >> {}\"\n  disk:\n    every: 200ms\n    check: {{metric: disk_used_percent, path: /, warn: 99, crit: 100}}\n",
            out.display()
        ),
    );
    let mut d = Daemon::start(&s, &c);
    let (job_file, live, lock) =
        (s.path("state/jobs/tick.json"), s.path("run/checks/disk.json"), s.path("run/jobs/tick.lock"));
    wait_for(LONG, "a run and a sample", || job_file.exists() && live.exists() && lock.exists());
    for dir in ["state", "run/jobs", "run/checks"] {
        // The daemon may write a new file into it while it is being emptied (ENOTEMPTY), as an
        // admin's `rm -rf` may race it too: retry until it is gone.
        wait_for(LONG, &format!("{dir} removed"), || match std::fs::remove_dir_all(s.path(dir)) {
            Ok(()) => true,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        });
    }
    let removed_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    wait_for(LONG, "the job file, lock and live file made again", || {
        job_file.exists() && live.exists() && lock.exists()
    });
    for dir in ["state", "state/jobs", "run/jobs", "run/checks"] {
        let m = std::fs::symlink_metadata(s.path(dir)).unwrap();
        assert!(m.is_dir() && m.mode() & 0o022 == 0, "{dir}: mode {:o}", m.mode());
    }
    let file = || -> serde_json::Value { serde_json::from_slice(&std::fs::read(&job_file).unwrap()).unwrap() };
    // The first run in it may be one that was running during the removal (over half a second
    // long under emulation): wait for one that started after.
    wait_for(LONG, "a run after the removal in the job file made again", || {
        file()["runs"].as_u64().is_some_and(|n| n >= 1)
            && file()["last_start_ms"].as_u64().is_some_and(|t| t >= removed_ms - 250)
    });
    assert_eq!(status_of(&s, &c, "tick")["last_outcome"], "success");
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success(), "{}", d.log_text());
    let log = d.log_text();
    assert!(!log.contains("cannot"), "no write failed: {log}");
}
