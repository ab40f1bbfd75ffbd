//! `orphan_sweep` through the real binary, inside a fresh PID namespace so a sweep can only
//! ever see processes this test started: `unshare --pid --fork --mount-proc` runs this same
//! test binary as PID 1 of the namespace (SWEEP_ROLE=ns), which creates real orphans by double
//! fork (SWEEP_ROLE=orphan starts a SWEEP_ROLE=sleeper and exits), runs `runner once`, and
//! checks what survived. When PID 1 exits the kernel ends everything left in the namespace.
//!
//! Needs root and util-linux's `unshare`; under CI=true a missing one fails, elsewhere the
//! scenarios are skipped with a message. Every scenario runs in its own namespace, in
//! parallel. `cargo test --test orphan_sweep -- NAME` runs the scenarios whose name contains
//! NAME. SWEEP_TEST_PROCS (default 300) sizes the scan-memory scenario.
// Children are never waited on with `Child::wait`: PID 1's reaper thread collects every
// exit (its own children and the orphans it adopts) and `Ns::wait_reaped` reads them.
#![allow(clippy::zombie_processes)]

mod common;

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::counting_alloc::{Counting, measure};
use common::{Scratch, alive, wait_for};

// The counting allocator tracks live bytes and their peak, for the scan-memory scenario.
#[global_allocator]
static A: Counting = Counting;

// ---------------------------------------------------------------------------------------
// Roles this binary plays.

fn main() {
    match std::env::var("SWEEP_ROLE").as_deref() {
        Ok("sleeper") => sleeper(),
        Ok("orphan") => orphan_maker(),
        Ok("ns") => namespace_init(),
        _ => run_scenarios(),
    }
}

/// A long-lived process: `obey` dies on TERM, `ignore` ignores it; `depth` > 0 starts a
/// child sleeper first (named NAME-c), which does the same with depth - 1.
fn sleeper() {
    let args: Vec<String> = std::env::args().collect();
    // `match: name` is a glob on the kernel's comm: take argv[0] as comm, as an exec of a
    // binary by that name would have it (the kernel cuts it to 15 bytes).
    std::fs::write("/proc/self/comm", &args[0]).unwrap();
    let (mode, depth): (&str, u32) = (&args[1], args[2].parse().unwrap());
    if mode == "ignore" {
        // SAFETY: setting a signal disposition to SIG_IGN before any other thread exists.
        unsafe { nix::sys::signal::signal(nix::sys::signal::SIGTERM, nix::sys::signal::SigHandler::SigIgn) }.unwrap();
    }
    if depth > 0 {
        Command::new(std::env::current_exe().unwrap())
            .arg0(format!("{}-c", args[0]))
            .args([mode, &(depth - 1).to_string()])
            .env("SWEEP_ROLE", "sleeper")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
    }
    loop {
        nix::unistd::pause();
    }
}

/// The middle of a double fork: starts a sleeper, prints its pid and exits, so the sleeper
/// is orphaned and adopted by PID 1.
fn orphan_maker() {
    let args: Vec<String> = std::env::args().collect();
    let c = Command::new(std::env::current_exe().unwrap())
        .arg0(&args[1])
        .args([&args[2], &args[3]])
        .env("SWEEP_ROLE", "sleeper")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    println!("{}", c.id());
}

// ---------------------------------------------------------------------------------------
// The outer side: one namespace per scenario.

type Scenario = fn(&Ns);

const SCENARIOS: &[(&str, Scenario)] = &[
    ("term_respecting_orphans_exit_on_term_and_others_get_kill_after_the_grace", term_then_kill),
    ("registered_young_and_parented_processes_survive", survivors),
    ("tree_ends_descendants_but_not_registered_ones_or_theirs", tree),
    ("max_kills_ends_the_oldest_and_refuses_the_rest", max_kills),
    ("dry_runs_end_nothing", dry_runs),
    ("an_unreadable_registry_ends_nothing", unreadable_registry),
    ("a_process_that_exits_between_scan_and_signal_is_reported_not_an_error", exits_before_signal),
    ("a_pid_recycled_between_scan_and_signal_is_not_signalled", recycled_pid),
    ("pid_1_runner_and_its_ancestors_are_never_matched_for_ending", protected),
    ("the_scan_holds_memory_for_matches_not_for_every_process", scan_memory),
    ("timeout_bounds_the_whole_sweep_and_no_kill_follows_it", timeout_bounds_the_sweep),
    ("runners_own_work_survives_a_broad_sweep_with_orphans_only_false", own_work_broad),
    ("a_double_forked_child_of_a_running_job_survives_orphans_only_true", own_work_double_fork),
    ("a_match_of_everything_is_refused_unless_the_job_says_so", match_everything),
];

/// Scenarios that pause the sweep through `RUNNER_SWEEP_TEST_GATE`, which only a debug
/// build of runner has (this binary and runner are built with the same profile).
const GATED: &[&str] = &[
    "a_process_that_exits_between_scan_and_signal_is_reported_not_an_error",
    "a_pid_recycled_between_scan_and_signal_is_not_signalled",
];

/// Scenarios that cannot run under qemu-user, and why (`RUNNER_EMULATED=1`).
const NOT_EMULATED: &[(&str, &str)] = &[
    ("term_respecting_orphans_exit_on_term_and_others_get_kill_after_the_grace", ORPHANS_EMULATED),
    ("registered_young_and_parented_processes_survive", ORPHANS_EMULATED),
    ("tree_ends_descendants_but_not_registered_ones_or_theirs", ORPHANS_EMULATED),
    ("max_kills_ends_the_oldest_and_refuses_the_rest", ORPHANS_EMULATED),
    ("dry_runs_end_nothing", ORPHANS_EMULATED),
    ("an_unreadable_registry_ends_nothing", ORPHANS_EMULATED),
    ("a_process_that_exits_between_scan_and_signal_is_reported_not_an_error", ORPHANS_EMULATED),
    ("a_pid_recycled_between_scan_and_signal_is_not_signalled", ORPHANS_EMULATED),
    ("timeout_bounds_the_whole_sweep_and_no_kill_follows_it", ORPHANS_EMULATED),
    ("runners_own_work_survives_a_broad_sweep_with_orphans_only_false", NO_SUBREAPER_EMULATED),
    ("a_double_forked_child_of_a_running_job_survives_orphans_only_true", NO_SUBREAPER_EMULATED),
];
const ORPHANS_EMULATED: &str = "its orphans are this test binary again, emulated: their /proc/PID/cmdline starts with \
     qemu's binfmt interpreter, not the argv[0] the sweep matches";
const NO_SUBREAPER_EMULATED: &str =
    "the double-forked child must be re-parented to the daemon, and qemu-user refuses PR_SET_CHILD_SUBREAPER";

fn run_scenarios() {
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let mut chosen: Vec<&(&str, Scenario)> = SCENARIOS
        .iter()
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    if !cfg!(debug_assertions) {
        let before = chosen.len();
        chosen.retain(|(n, _)| !GATED.contains(n));
        println!("skipping {} scenarios that need the test gate of a debug build of runner", before - chosen.len());
    }
    if common::emulated() {
        chosen.retain(|(n, _)| match NOT_EMULATED.iter().find(|(skip, _)| skip == n) {
            Some((_, why)) => {
                println!("{n}: skipped under emulation: {why}");
                false
            }
            None => true,
        });
    }
    if let Err(why) = namespaces_available() {
        if std::env::var("CI").as_deref() == Ok("true") {
            eprintln!("orphan_sweep tests need PID namespaces and CI=true: {why}");
            std::process::exit(1);
        }
        println!("skipping {} orphan_sweep scenarios: {why}", chosen.len());
        return;
    }
    println!("running {} orphan_sweep scenarios, each in its own PID namespace", chosen.len());
    let t0 = Instant::now();
    let handles: Vec<_> = chosen
        .iter()
        .map(|(name, _)| {
            let name = name.to_string();
            std::thread::spawn(move || {
                let started = Instant::now();
                let out = Command::new("unshare")
                    .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
                    .arg(std::env::current_exe().unwrap())
                    .arg("protect-marker-3f9")
                    .env("SWEEP_ROLE", "ns")
                    .env("SWEEP_SCENARIO", &name)
                    .output()
                    .unwrap();
                (name, out, started.elapsed())
            })
        })
        .collect();
    let mut failed = Vec::new();
    for h in handles {
        let (name, out, took) = h.join().unwrap();
        if out.status.success() {
            println!("test {name} ... ok ({:.1} s)", took.as_secs_f64());
        } else {
            println!("test {name} ... FAILED ({:?})", out.status);
            println!("---- stdout\n{}", String::from_utf8_lossy(&out.stdout));
            println!("---- stderr\n{}", String::from_utf8_lossy(&out.stderr));
            failed.push(name);
        }
    }
    println!("{} passed, {} failed in {:.1} s", chosen.len() - failed.len(), failed.len(), t0.elapsed().as_secs_f64());
    if !failed.is_empty() {
        std::process::exit(1);
    }
}

fn namespaces_available() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root (unshare --pid needs CAP_SYS_ADMIN)".into());
    }
    match Command::new("unshare").args(["--pid", "--fork", "--mount-proc", "true"]).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("unshare failed: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("cannot run unshare (util-linux): {e}")),
    }
}

// ---------------------------------------------------------------------------------------
// The inner side: PID 1 of the namespace.

/// What a scenario has: a scratch directory and the exit statuses PID 1 reaped.
struct Ns {
    s: Scratch,
    reaped: Arc<Mutex<HashMap<i32, i32>>>,
}

fn namespace_init() {
    assert_eq!(std::process::id(), 1, "SWEEP_ROLE=ns must be PID 1 of a new PID namespace");
    let name = std::env::var("SWEEP_SCENARIO").unwrap();
    let (_, f) = SCENARIOS.iter().find(|(n, _)| *n == name).unwrap();
    let reaped = Arc::new(Mutex::new(HashMap::new()));
    // PID 1 adopts every orphan: reap them all, keeping statuses for the ones we wait on.
    let r = reaped.clone();
    std::thread::spawn(move || {
        use nix::sys::wait::{WaitStatus, waitpid};
        loop {
            match waitpid(nix::unistd::Pid::from_raw(-1), None) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    r.lock().unwrap().insert(pid.as_raw(), code);
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) => {
                    r.lock().unwrap().insert(pid.as_raw(), 128 + sig as i32);
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    let ns = Ns { s: Scratch::new(&name.chars().take(20).collect::<String>()), reaped };
    f(&ns);
    println!("scenario {name} passed");
}

/// The output of one `runner` run.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn audit(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.contains(" audit: ")).collect()
    }
    fn has(&self, pid: i32, what: &str) -> bool {
        let needle = format!("pid {pid} ");
        self.audit().iter().any(|l| l.contains(what) && (l.contains(&needle) || l.ends_with(&format!("pid {pid}"))))
    }
    fn show(&self) -> String {
        format!("exit {}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

impl Ns {
    fn config(&self, jobs: &str) -> PathBuf {
        self.s.write("supervisor.yaml", &format!("version: 1\njobs:\n{jobs}"))
    }

    /// Starts `runner` with output in files; waits with [`Ns::finish`].
    fn start_runner(&self, cfg: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, PathBuf) {
        let n = Instant::now().elapsed().as_nanos() ^ u128::from(rand_u32());
        let base = self.s.path(&format!("out-{n}"));
        let child = self
            .s
            .runner(cfg)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(base.with_extension("stdout")).unwrap())
            .stderr(std::fs::File::create(base.with_extension("stderr")).unwrap())
            .spawn()
            .unwrap();
        (child.id() as i32, base)
    }

    fn finish(&self, (pid, base): (i32, PathBuf)) -> Out {
        let code = self.wait_reaped(pid, Duration::from_secs(60));
        Out {
            code,
            stdout: std::fs::read_to_string(base.with_extension("stdout")).unwrap(),
            stderr: std::fs::read_to_string(base.with_extension("stderr")).unwrap(),
        }
    }

    fn runner(&self, cfg: &Path, args: &[&str]) -> Out {
        self.finish(self.start_runner(cfg, args, &[]))
    }

    fn wait_reaped(&self, pid: i32, limit: Duration) -> i32 {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(c) = self.reaped.lock().unwrap().remove(&pid) {
                return c;
            }
            assert!(Instant::now() < deadline, "pid {pid} did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A real orphan by double fork, named `name` (argv[0]); waits until PID 1 adopted it
    /// and it is set up (TERM ignored for `ignore`, its descendants started).
    fn orphan(&self, name: &str, mode: &str, depth: u32) -> i32 {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([name, mode, &depth.to_string()])
            .env("SWEEP_ROLE", "orphan")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut out.stdout.unwrap(), &mut text).unwrap();
        let pid: i32 = text.trim().parse().unwrap();
        wait_for(Duration::from_secs(10), "the orphan to be adopted and ready", || {
            ppid(pid) == Some(1) && ready(pid, name, mode)
        });
        let (mut cur, mut cur_name) = (pid, name.to_string());
        for _ in 0..depth {
            wait_for(Duration::from_secs(10), "a child sleeper", || children(cur).len() == 1);
            let c = children(cur)[0];
            cur_name.push_str("-c");
            wait_for(Duration::from_secs(10), "a child sleeper to be ready", || ready(c, &cur_name, mode));
            cur = c;
        }
        pid
    }

    /// A sleeper that is a direct child of PID 1 (so orphaned by the rule), started now.
    fn direct(&self, name: &str, mode: &str) -> i32 {
        let c = Command::new(std::env::current_exe().unwrap())
            .arg0(name)
            .args([mode, "0"])
            .env("SWEEP_ROLE", "sleeper")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = c.id() as i32;
        wait_for(Duration::from_secs(10), "the sleeper to be ready", || ready(pid, name, mode));
        pid
    }

    /// Ends a process this test started and waits until it is reaped.
    fn kill(&self, pid: i32) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
        self.wait_reaped(pid, Duration::from_secs(10));
    }
}

fn rand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(s[s.rfind(')')? + 2..].split_whitespace().map(str::to_string).collect())
}

fn ppid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(p) = e.file_name().to_string_lossy().parse::<i32>()
            && ppid(p) == Some(pid)
            && alive(p)
        {
            out.push(p);
        }
    }
    out
}

/// The sleeper has exec'd (its argv[0] is `name`), taken `name` as its comm and, for
/// `ignore`, ignores TERM.
fn ready(pid: i32, name: &str, mode: &str) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    if cmdline.split(|&b| b == 0).next() != Some(name.as_bytes()) {
        return false;
    }
    let Ok(comm) = std::fs::read(format!("/proc/{pid}/comm")) else { return false };
    if comm.strip_suffix(b"\n").unwrap_or(&comm) != &name.as_bytes()[..name.len().min(15)] {
        return false;
    }
    let ign = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    mode != "ignore" || ign & (1 << 14) != 0
}

fn gone(pid: i32) -> bool {
    !alive(pid)
}

/// A sweep job; `extra` lines go inside `orphan_sweep:`.
fn sweep_job(name: &str, pattern: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    every: 6h\n    orphan_sweep:\n      match: {{ name: \"{pattern}\" }}\n      min_age: 2s\n      kill_grace: 1s\n{extra}"
    )
}

/// A process's start and the clock runner judges age by, as runner reads them: the start
/// time in clock ticks (/proc/PID/stat) and the uptime (/proc/uptime), both in ms.
fn start_ms(pid: i32) -> u64 {
    let ticks = runner::proc::ticks_per_second().max(1);
    let st = runner::proc::stat(pid).unwrap();
    st.starttime * 1000 / ticks
}

fn uptime_ms() -> u64 {
    runner::proc::uptime().unwrap().as_millis() as u64
}

/// Waits until every one of `pids` is old enough for `min_age: 2s`, by runner's own
/// reckoning (uptime minus start time), with a little to spare.
fn age_past_min(pids: &[i32]) {
    let newest = pids.iter().map(|&p| start_ms(p)).max().unwrap();
    wait_for(Duration::from_secs(30), "the processes to be older than min_age", || uptime_ms() >= newest + 2100);
}

/// Waits until the clock has moved past the clock tick `pid` started in, so whatever
/// starts next has a later start time, even at 100 ticks a second.
fn wait_next_tick(pid: i32) {
    let start = start_ms(pid);
    let tick = 1000 / runner::proc::ticks_per_second().max(1);
    wait_for(Duration::from_secs(10), "the next clock tick", || uptime_ms() >= start + tick);
}

// ---------------------------------------------------------------------------------------
// Scenarios.

fn term_then_kill(ns: &Ns) {
    let obey = ns.orphan("tk-worker-obey", "obey", 0);
    let ignore = ns.orphan("tk-worker-ignore", "ignore", 0);
    age_past_min(&[obey, ignore]);
    let cfg = ns.config(&sweep_job("sweep", "tk-worker-*", ""));
    let t0 = Instant::now();
    let o = ns.runner(&cfg, &["once", "sweep"]);
    let took = t0.elapsed();
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(gone(obey) && gone(ignore), "{}", o.show());
    assert!(o.has(obey, "matched pid") && o.has(obey, "orphaned: parent is PID 1"), "{}", o.show());
    assert!(o.has(obey, "TERM sent") && o.has(obey, "ms after TERM"), "{}", o.show());
    assert!(!o.has(obey, "KILL sent"), "{}", o.show());
    assert!(o.has(ignore, "TERM sent") && o.has(ignore, "KILL sent") && o.has(ignore, "ms after KILL"), "{}", o.show());
    // KILL comes only after the whole grace.
    assert!(took >= Duration::from_secs(1), "{took:?}\n{}", o.show());
    let order: Vec<usize> = ["TERM sent to pid", "KILL sent to pid"]
        .iter()
        .map(|w| o.stderr.find(&format!("{w} {ignore}")).unwrap())
        .collect();
    assert!(order[0] < order[1], "{}", o.show());
    assert!(o.stderr.contains("ended 2 (1 on TERM, 1 on KILL)"), "{}", o.show());
}

fn timeout_bounds_the_sweep(ns: &Ns) {
    let stubborn = ns.orphan("to-worker-ignore", "ignore", 0);
    age_past_min(&[stubborn]);
    let cfg = ns.config(
        "  sweep:\n    every: 6h\n    timeout: 1s\n    orphan_sweep:\n      match: { name: \"to-worker-*\" }\n      min_age: 2s\n      kill_grace: 1m\n",
    );
    let t0 = Instant::now();
    let o = ns.runner(&cfg, &["once", "sweep"]);
    let took = t0.elapsed();
    assert_eq!(o.code, 124, "a sweep stopped by its timeout exits as timeout(1): {}", o.show());
    assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(30), "{took:?}\n{}", o.show());
    assert!(o.has(stubborn, "TERM sent"), "{}", o.show());
    assert!(!o.has(stubborn, "KILL sent") && o.has(stubborn, "no KILL for"), "{}", o.show());
    assert!(!gone(stubborn), "the grace was cut short, not the process: {}", o.show());
    assert!(o.stderr.contains("timed out after 1s"), "{}", o.show());
}

fn survivors(ns: &Ns) {
    let registered = ns.orphan("sv-worker-reg", "obey", 1);
    let reg_child = children(registered)[0];
    // A match whose parent is alive (a non-matching holder) is not an orphan.
    let holder = ns.orphan("sv-holder", "obey", 1);
    let parented = children(holder)[0];
    let old = ns.orphan("sv-worker-old", "obey", 0);
    age_past_min(&[registered, reg_child, holder, parented, old]);
    let young = ns.orphan("sv-worker-young", "obey", 0);
    let reg = ns.s.write("registry", &format!("# kept\n{registered}\n"));
    let cfg = ns.config(&sweep_job("sweep", "sv-worker-*", &format!("      registry: {}\n", reg.display())));
    let o = ns.runner(&cfg, &["once", "sweep"]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(gone(old), "{}", o.show());
    for (pid, why) in [(registered, "registered"), (reg_child, "descendant of registered pid"), (young, "too young")] {
        assert!(alive(pid), "pid {pid} ({why}) was ended\n{}", o.show());
        assert!(o.has(pid, &format!("skipped pid {pid}")) && o.has(pid, why), "pid {pid}: {why}\n{}", o.show());
    }
    // The holder's child (sv-holder-c) matches a second job, but its parent is alive.
    let cfg2 = ns.config(&sweep_job("sweep2", "sv-holder-c", ""));
    let o = ns.runner(&cfg2, &["once", "sweep2"]);
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(alive(parented) && alive(holder), "{}", o.show());
    assert!(o.has(parented, &format!("not orphaned: parent {holder}")), "{}", o.show());
}

fn tree(ns: &Ns) {
    let t = ns.orphan("tr-worker-t", "obey", 2);
    let t1 = children(t)[0];
    let t2 = children(t1)[0];
    let u = ns.orphan("tr-worker-u", "ignore", 2);
    let u1 = children(u)[0];
    let u2 = children(u1)[0];
    age_past_min(&[t, t1, t2, u, u1, u2]);
    let reg = ns.s.path("registry.d");
    std::fs::create_dir_all(&reg).unwrap();
    std::fs::write(reg.join("u1.pid"), format!("{u1}\n")).unwrap();
    let cfg = ns.config(&sweep_job(
        "sweep",
        "tr-worker-?",
        &format!("      tree: true\n      registry: {}\n", reg.display()),
    ));
    let o = ns.runner(&cfg, &["once", "sweep"]);
    assert_eq!(o.code, 0, "{}", o.show());
    for p in [t, t1, t2, u] {
        assert!(gone(p), "pid {p} survived\n{}", o.show());
    }
    assert!(o.has(t2, &format!("descendant of pid {t}")), "{}", o.show());
    assert!(o.has(u, "KILL sent"), "{}", o.show());
    for p in [u1, u2] {
        assert!(alive(p), "registered pid {u1} or its child {p} was ended\n{}", o.show());
    }
    assert!(o.has(u1, "registered (in the tree of pid"), "{}", o.show());
}

fn max_kills(ns: &Ns) {
    let pids: Vec<i32> = (0..4)
        .map(|i| {
            let p = ns.orphan(&format!("mk-worker-{i}"), "obey", 0);
            // Distinct start times, so "the oldest" is well defined.
            wait_next_tick(p);
            p
        })
        .collect();
    age_past_min(&pids);
    let cfg = ns.config(&sweep_job("sweep", "mk-worker-*", "      max_kills: 2\n"));
    let o = ns.runner(&cfg, &["once", "sweep"]);
    assert_eq!(o.code, 0, "{}", o.show());
    // The oldest two go; the others are refused and recorded.
    assert!(gone(pids[0]) && gone(pids[1]), "{}", o.show());
    for &p in &pids[2..] {
        assert!(alive(p), "pid {p} beyond max_kills was ended\n{}", o.show());
        assert!(o.has(p, "refused: max_kills 2 reached"), "{}", o.show());
    }
}

fn dry_runs(ns: &Ns) {
    let a = ns.orphan("dr-worker-a", "obey", 0);
    let b = ns.orphan("dr-worker-b", "ignore", 0);
    age_past_min(&[a, b]);
    let cfg = ns.config(&format!(
        "{}{}",
        sweep_job("sweep", "dr-worker-*", ""),
        sweep_job("dry", "dr-worker-*", "      dry_run: true\n")
    ));
    let o = ns.runner(&cfg, &["once", "sweep", "--dry-run"]);
    assert_eq!(o.code, 0, "{}", o.show());
    for p in [a, b] {
        assert!(o.stdout.contains(&format!("would end pid {p} (dr-worker-")), "{}", o.show());
        assert!(alive(p), "{}", o.show());
    }
    assert!(o.stdout.contains("orphaned: parent is PID 1"), "{}", o.show());
    assert!(o.stdout.contains("dry run: nothing was ended"), "{}", o.show());
    // A `dry_run: true` job does the same when it fires, and records it.
    let o = ns.runner(&cfg, &["once", "dry"]);
    assert_eq!(o.code, 0, "{}", o.show());
    for p in [a, b] {
        assert!(o.has(p, "would end pid"), "{}", o.show());
        assert!(alive(p), "{}", o.show());
    }
    assert!(!o.stderr.contains("TERM sent"), "{}", o.show());
    assert!(o.stderr.contains("dry run, nothing ended"), "{}", o.show());
}

fn unreadable_registry(ns: &Ns) {
    let a = ns.orphan("ur-worker", "obey", 0);
    age_past_min(&[a]);
    let garbage = ns.s.write("garbage", "123 not-a-pid\n");
    for reg in [ns.s.path("no-such-registry"), garbage] {
        let cfg = ns.config(&sweep_job("sweep", "ur-worker", &format!("      registry: {}\n", reg.display())));
        let o = ns.runner(&cfg, &["once", "sweep"]);
        assert_eq!(o.code, 1, "{}", o.show());
        assert!(o.stderr.contains("sweep aborted, nothing ended: registry"), "{}", o.show());
        assert!(!o.stderr.contains("TERM sent"), "{}", o.show());
        assert!(alive(a), "{}", o.show());
        let o = ns.runner(&cfg, &["once", "sweep", "--dry-run"]);
        assert_eq!(o.code, 1, "{}", o.show());
        assert!(o.stdout.contains("nothing would be ended"), "{}", o.show());
    }
}

/// Runs a sweep that pauses at `stage`, does `act` there, and lets it go on.
fn with_gate(ns: &Ns, cfg: &Path, stage: &str, act: impl FnOnce()) -> Out {
    let gate = ns.s.path(&format!("gate-{stage}"));
    std::fs::create_dir_all(&gate).unwrap();
    for other in ["scanned", "pinned"] {
        if other != stage {
            std::fs::write(gate.join(format!("{other}.go")), "").unwrap();
        }
    }
    let run = ns.start_runner(cfg, &["once", "sweep"], &[("RUNNER_SWEEP_TEST_GATE", gate.to_str().unwrap())]);
    wait_for(Duration::from_secs(30), "the sweep to reach the gate", || gate.join(format!("{stage}.reached")).exists());
    act();
    std::fs::write(gate.join(format!("{stage}.go")), "").unwrap();
    ns.finish(run)
}

fn exits_before_signal(ns: &Ns) {
    for stage in ["scanned", "pinned"] {
        let a = ns.orphan(&format!("eb-worker-{stage}"), "obey", 0);
        age_past_min(&[a]);
        let cfg = ns.config(&sweep_job("sweep", &format!("eb-worker-{stage}"), ""));
        let o = with_gate(ns, &cfg, stage, || ns.kill(a));
        assert_eq!(o.code, 0, "a vanished process is not an error\n{}", o.show());
        assert!(o.has(a, "matched pid"), "{}", o.show());
        let said = if stage == "scanned" { "exited before it was signalled" } else { "exited before TERM" };
        assert!(o.has(a, said), "{stage}: {}", o.show());
        assert!(!o.has(a, "TERM sent"), "{}", o.show());
        assert!(o.stderr.contains("1 exited by themselves"), "{}", o.show());
    }
}

/// Ends `victim` and starts a matching impostor that gets the same pid, by writing this
/// namespace's ns_last_pid (per namespace; nothing host-wide changes).
fn recycle(ns: &Ns, victim: i32, name: &str) -> i32 {
    // A later start time than the victim's, even at 100 ticks a second.
    wait_next_tick(victim);
    ns.kill(victim);
    std::fs::write("/proc/sys/kernel/ns_last_pid", (victim - 1).to_string()).unwrap();
    let impostor = ns.direct(name, "obey");
    assert_eq!(impostor, victim, "the pid was not reused; the scenario proves nothing");
    impostor
}

fn recycled_pid(ns: &Ns) {
    for stage in ["scanned", "pinned"] {
        let name = format!("rp-worker-{stage}");
        let a = ns.orphan(&name, "obey", 0);
        age_past_min(&[a]);
        let cfg = ns.config(&sweep_job("sweep", &name, ""));
        let mut impostor = 0;
        let o = with_gate(ns, &cfg, stage, || impostor = recycle(ns, a, &name));
        assert!(alive(impostor), "{stage}: the process that reused pid {a} was ended\n{}", o.show());
        assert!(!o.has(a, "TERM sent"), "{stage}: {}", o.show());
        assert_eq!(o.code, 0, "{}", o.show());
        if stage == "scanned" {
            // Pinned after the reuse: the start time gives it away.
            assert!(o.has(a, "pid reused"), "{}", o.show());
        } else {
            // Pinned before: the pidfd still names the old process, which is gone.
            assert!(o.has(a, "exited before TERM"), "{}", o.show());
        }
        ns.kill(impostor);
    }
}

fn protected(ns: &Ns) {
    // PID 1 (this process) carries the marker in its arguments; so will runner (through
    // --config) and the shell that starts it (an orphan by the rule, since PID 1 is its parent).
    let dir = ns.s.path("protect-marker-3f9");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = ns.s.write(
        "protect-marker-3f9/supervisor.yaml",
        "version: 1\njobs:\n  sweep:\n    orphan_sweep:\n      match: { cmdline: \"protect-marker-3f9\" }\n      min_age: 0s\n      orphans_only: false\n",
    );
    let base = ns.s.path("protected");
    let sh = Command::new("/bin/sh")
        .args(["-c", "\"$0\" --config \"$1\" once sweep; echo \"exit $?\"", common::BIN, cfg.to_str().unwrap()])
        .env("RUNNER_STATE_DIR", ns.s.path("state"))
        .env("RUNNER_RUNTIME_DIR", ns.s.path("run"))
        .stdout(std::fs::File::create(base.with_extension("stdout")).unwrap())
        .stderr(std::fs::File::create(base.with_extension("stderr")).unwrap())
        .spawn()
        .unwrap();
    let shell = sh.id() as i32;
    let code = ns.wait_reaped(shell, Duration::from_secs(60));
    let o = Out {
        code,
        stdout: std::fs::read_to_string(base.with_extension("stdout")).unwrap(),
        stderr: std::fs::read_to_string(base.with_extension("stderr")).unwrap(),
    };
    assert!(o.stdout.contains("exit 0"), "{}", o.show());
    assert!(o.has(1, "protected: PID 1"), "{}", o.show());
    assert!(o.has(shell, "protected: an ancestor of runner"), "{}", o.show());
    assert!(o.audit().iter().any(|l| l.contains("protected: runner itself")), "{}", o.show());
    assert!(!o.stderr.contains("TERM sent"), "{}", o.show());
}

/// The scan keeps what matched, not what it read: its peak heap with many more
/// non-matching processes stays within a fixed buffer of the peak with few.
fn scan_memory(_ns: &Ns) {
    use runner::kinds::orphan_sweep::{Match, OrphanSweep, survey};
    let n: usize = std::env::var("SWEEP_TEST_PROCS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    // `sleep`, not this binary: a scan in this process takes whatever runs its own executable
    // for runner, and keeps it.
    for i in 0..5 {
        let c = Command::new("sleep").arg0(format!("sm-worker-{i}")).arg("600").stdin(Stdio::null()).spawn().unwrap();
        let pid = c.id() as i32;
        wait_for(Duration::from_secs(10), "the sleeper to exec", || {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"sm-worker-"))
        });
    }
    let spec = OrphanSweep {
        matcher: Match {
            name: None,
            cmdline: Some(runner::proc::RegexText(regex_lite::Regex::new("^sm-worker-").unwrap())),
            uid: None,
            exe: None,
        },
        min_age: Duration::ZERO,
        registry: None,
        kill_grace: Duration::from_secs(1),
        tree: false,
        max_kills: 20,
        dry_run: true,
        adopters: vec![],
        orphans_only: true,
    };
    let peak = |procs: usize| {
        let s = survey(&spec).unwrap();
        assert_eq!(s.ends(), 5);
        assert!(s.scanned > procs, "{} < {procs}", s.scanned);
        drop(s);
        let (s, counts) = measure(|| survey(&spec).unwrap());
        std::hint::black_box(&s);
        counts.peak_above_start
    };
    let mut sleepers = Vec::new();
    let few = peak(1);
    for _ in 0..n {
        sleepers.push(Command::new("sleep").arg("600").stdin(Stdio::null()).spawn().unwrap().id());
    }
    let many = peak(n);
    println!("scan peak heap: {few} bytes with 5 matches among few processes, {many} among {n} more");
    // The one buffer that may grow with the size of /proc is the directory listing's getdents
    // buffer (libc's opendir sizes it once, at most 32 KiB; rustix's, which procfs used,
    // capped at 1024 dirents of 24 bytes plus one step of 32): the fixed buffer.
    let fixed = (1024 + 32) * 24;
    assert!(
        many <= few + fixed,
        "peak grew from {few} to {many} bytes with {n} more non-matching processes (allowed: {fixed} for the getdents buffer)"
    );
    for p in sleepers {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p as i32), nix::sys::signal::SIGKILL);
    }
}

// ---------------------------------------------------------------------------------------
// Runner's own work.

/// Live processes with `needle` as one whole argument (not a shell line or an exec helper's
/// arguments that mention it: those are the job still starting).
fn with_cmdline(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(p) = e.file_name().to_string_lossy().parse::<i32>()
            && alive(p)
            && let Ok(c) = std::fs::read(format!("/proc/{p}/cmdline"))
            && c.split(|b| *b == 0).any(|arg| arg == needle.as_bytes())
        {
            out.push(p);
        }
    }
    out
}

/// Waits for exactly one live process with `needle` as one of its arguments.
fn one_with_cmdline(needle: &str) -> i32 {
    wait_for(Duration::from_secs(20), needle, || with_cmdline(needle).len() == 1);
    with_cmdline(needle)[0]
}

fn session_of(pid: i32) -> i32 {
    runner::proc::stat(pid).unwrap().session
}

/// A config in `<mark>/` (so runner's own command line, `--config <path>`, carries the
/// mark) with a daemon job `hold` that runs at start: a sleeper that first double-forks
/// another (`<mark>-dbl`, re-parented to PID 1 but still in the run's session), then
/// becomes `<mark>-job`; and a sweep of everything carrying the mark, orphaned or not.
fn own_work_config(ns: &Ns, mark: &str, file: &str, sweep_extra: &str) -> PathBuf {
    let bin = std::env::current_exe().unwrap();
    let bin = bin.display();
    ns.s.write(
        &format!("{mark}/{file}"),
        &format!(
            "version: 1\njobs:\n  hold:\n    schedule: \"@reboot\"\n    env: {{ SWEEP_ROLE: sleeper }}\n    run: \"( '{bin}' obey 0 {mark}-dbl & ) ; exec '{bin}' obey 0 {mark}-job\"\n  slow:\n    every: 6h\n    env: {{ SWEEP_ROLE: sleeper }}\n    run: \"exec '{bin}' obey 0 {mark}-once-job\"\n  sweep:\n    every: 6h\n    orphan_sweep:\n      match: {{ cmdline: \"{mark}\" }}\n      min_age: 0s\n{sweep_extra}"
        ),
    )
}

/// Starts a daemon on `cfg` with its own state and runtime directories (`<tag>-state`,
/// `<tag>-run`), its config given by `--config` so its command line carries the mark.
fn start_daemon(ns: &Ns, cfg: &Path, tag: &str) -> (i32, PathBuf) {
    let (st, rt) = (ns.s.path(&format!("{tag}-state")), ns.s.path(&format!("{tag}-run")));
    ns.start_runner(
        cfg,
        &["--config", cfg.to_str().unwrap(), "run"],
        &[("RUNNER_STATE_DIR", st.to_str().unwrap()), ("RUNNER_RUNTIME_DIR", rt.to_str().unwrap())],
    )
}

/// `runner once sweep` on `cfg` with the state and runtime directories of daemon `tag`.
fn sweep_as(ns: &Ns, cfg: &Path, tag: &str) -> Out {
    let (st, rt) = (ns.s.path(&format!("{tag}-state")), ns.s.path(&format!("{tag}-run")));
    ns.finish(ns.start_runner(
        cfg,
        &["--config", cfg.to_str().unwrap(), "once", "sweep"],
        &[("RUNNER_STATE_DIR", st.to_str().unwrap()), ("RUNNER_RUNTIME_DIR", rt.to_str().unwrap())],
    ))
}

/// The repro: a sweep with `orphans_only: false` and a match that covers runner's own
/// processes ended the daemon's running job, a second daemon and a `runner once`. Now all of
/// them, and what they run, are kept, while a real orphan with the same mark is ended.
fn own_work_broad(ns: &Ns) {
    let mark = "ow-mark-5d2";
    let cfg = own_work_config(ns, mark, "a.yaml", "      orphans_only: false\n");
    let daemon_a = start_daemon(ns, &cfg, "a");
    let job = one_with_cmdline(&format!("{mark}-job"));
    let dbl = one_with_cmdline(&format!("{mark}-dbl"));
    // Re-parented to the daemon, a subreaper.
    wait_for(Duration::from_secs(10), "the double-forked child to be re-parented", || ppid(dbl) == Some(daemon_a.0));
    assert_eq!(session_of(dbl), job, "the double-forked child stays in the run's session");
    let cfg_b = ns.s.write(&format!("{mark}/b.yaml"), "version: 1\njobs:\n  idle:\n    every: 6h\n    run: \"true\"\n");
    let daemon_b = start_daemon(ns, &cfg_b, "b");
    let once = ns.start_runner(
        &cfg,
        &["--config", cfg.to_str().unwrap(), "once", "slow"],
        &[
            ("RUNNER_STATE_DIR", ns.s.path("c-state").to_str().unwrap()),
            ("RUNNER_RUNTIME_DIR", ns.s.path("c-run").to_str().unwrap()),
        ],
    );
    let once_job = one_with_cmdline(&format!("{mark}-once-job"));
    let decoy = ns.orphan(&format!("{mark}-decoy"), "obey", 0);
    let o = sweep_as(ns, &cfg, "a");
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(gone(decoy), "a real orphan with the mark is still ended: {}", o.show());
    for (pid, what, why) in [
        (daemon_a.0, "the daemon", "protected: a runner process"),
        (daemon_b.0, "a second daemon", "protected: a runner process"),
        (once.0, "runner once", "protected: a runner process"),
        (job, "the daemon's running job", "protected: started by runner process"),
        (once_job, "runner once's running job", "protected: started by runner process"),
        (dbl, "a double-forked child of the daemon's job", "protected: started by runner process"),
    ] {
        assert!(alive(pid), "{what} (pid {pid}) was ended\n{}", o.show());
        assert!(o.has(pid, why), "{what} (pid {pid}): {why}\n{}", o.show());
    }
    assert!(!o.has(job, "TERM sent") && !o.has(dbl, "TERM sent"), "{}", o.show());
    // Runs die with their runner (PR_SET_PDEATHSIG); whatever is left ends with PID 1.
    for p in [daemon_a.0, daemon_b.0, once.0] {
        ns.kill(p);
    }
}

/// The repro: with `orphans_only: true` a sweep ended a double-forked child of its own
/// running job (re-parented to PID 1, so orphaned by the rule). Kept now: it is in the run's
/// session; and after the daemon is killed, what the state still records as running is kept
/// too.
fn own_work_double_fork(ns: &Ns) {
    let mark = "df-mark-8a4";
    let cfg = own_work_config(ns, mark, "a.yaml", "");
    let daemon = start_daemon(ns, &cfg, "a");
    let job = one_with_cmdline(&format!("{mark}-job"));
    let dbl = one_with_cmdline(&format!("{mark}-dbl"));
    wait_for(Duration::from_secs(10), "the double-forked child to be re-parented", || ppid(dbl) == Some(daemon.0));
    let decoy = ns.orphan(&format!("{mark}-decoy"), "obey", 0);
    let o = sweep_as(ns, &cfg, "a");
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(gone(decoy), "{}", o.show());
    assert!(alive(dbl) && o.has(dbl, "protected: started by runner process"), "{}", o.show());
    assert!(alive(job) && o.has(job, "protected: started by runner process"), "{}", o.show());

    // The daemon dies and its run's leader with it (PR_SET_PDEATHSIG); the double-forked
    // child is left, orphaned by the rule, in a session whose leader is gone. The state still
    // records the run: the next daemon ends what is left of it, not a sweep.
    ns.kill(daemon.0);
    wait_for(Duration::from_secs(10), "the run's leader to die with the daemon", || gone(job));
    let o = sweep_as(ns, &cfg, "a");
    assert_eq!(o.code, 0, "{}", o.show());
    assert!(alive(dbl) && o.has(dbl, "which runner records as running"), "{}", o.show());
    ns.kill(dbl);
}

fn match_everything(ns: &Ns) {
    for m in ["name: \"*\"", "cmdline: \".*\"", "cmdline: \"\""] {
        let cfg = ns.config(&format!("  sweep:\n    orphan_sweep:\n      match: {{ {m} }}\n"));
        let o = ns.runner(&cfg, &["check"]);
        assert_ne!(o.code, 0, "{m}: {}", o.show());
        assert!(
            o.stderr.contains("covers every process") && o.stderr.contains("match_everything: true"),
            "{}",
            o.show()
        );
        let cfg =
            ns.config(&format!("  sweep:\n    orphan_sweep:\n      match: {{ {m} }}\n      match_everything: true\n"));
        let o = ns.runner(&cfg, &["check"]);
        assert_eq!(o.code, 0, "{m}: {}", o.show());
    }
}
