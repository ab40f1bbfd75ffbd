//! `runner::process` against real processes: exit codes, spawn failures, timeouts and stops that
//! end a whole process tree, bounded capture, leftovers, environment, privileges and nice.
//! Times are only checked as lower bounds and generous upper bounds: the test machine is noisy.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::Scratch;
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use runner::config::{CommandLine, RunAs};
use runner::process::{self, Finished, SpawnErrorKind, Spec, Status};
use tokio::sync::watch;

/// Every run of these tests goes through here: jobs start through the runner binary's exec
/// helper, which this test binary is not.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    process::set_exec_helper(common::BIN.into());
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn run(spec: &Spec<'_>) -> Finished {
    let (_stop, stop) = watch::channel(false);
    block_on(process::run(spec, |_, _| {}, stop))
}

fn sh(line: &str) -> CommandLine {
    CommandLine::Shell(line.to_string())
}

fn argv(args: &[&str]) -> CommandLine {
    CommandLine::Argv(args.iter().map(|s| s.to_string()).collect())
}

fn stdout(f: &Finished) -> String {
    String::from_utf8_lossy(&f.stdout_tail).into_owned()
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Live (not zombie) processes whose process group is `pgid`.
fn live_members(pgid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some(close) = stat.rfind(')') else { continue };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if fields.len() > 2 && fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push(stat);
        }
    }
    found
}

/// Whether a pid is gone or a zombie (dead, waiting for its parent, maybe init, to reap it).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat[stat.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
        Err(_) => true,
    }
}

/// Nothing of the group is alive now, and `kill(-pgid, 0)` reports ESRCH once init has reaped
/// the zombies of the orphans (here, pid 1 reaps lazily, in seconds).
fn assert_group_gone(pgid: u32) {
    assert_eq!(live_members(pgid), Vec::<String>::new(), "live processes left in group {pgid}");
    let t = Instant::now();
    loop {
        match killpg(Pid::from_raw(pgid as i32), None) {
            Err(Errno::ESRCH) => return,
            _ if t.elapsed() > Duration::from_secs(60) => panic!("group {pgid} still exists after 60 s"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn exit_codes_and_signals_of_the_main_process() {
    let cmd = sh("exit 7");
    let f = run(&Spec::new(&cmd));
    assert_eq!(f.status, Status::Exited(7));
    assert_eq!(f.leftover_signal, None);

    let cmd = argv(&["true"]);
    assert_eq!(run(&Spec::new(&cmd)).status, Status::Exited(0));

    let cmd = sh("kill -USR1 $$");
    assert_eq!(run(&Spec::new(&cmd)).status, Status::Signaled(10));
}

#[test]
fn the_job_leads_its_own_session_with_stdin_from_dev_null() {
    let cmd = sh("echo $$; cut -d' ' -f5,6 /proc/self/stat; readlink /proc/self/fd/0");
    let (_stop, stop) = watch::channel(false);
    let mut seen = None;
    let f = block_on(process::run(&Spec::new(&cmd), |pid, _| seen = Some(pid), stop));
    let pid = f.pid.unwrap();
    assert_eq!(seen, Some(pid));
    assert_eq!(stdout(&f), format!("{pid}\n{pid} {pid}\n/dev/null\n"));
}

#[test]
fn spawn_failures_are_reported_with_shell_exit_codes() {
    let scratch = Scratch::new("spawn-failures");
    let cmd = argv(&["/nonexistent/prog"]);
    let f = run(&Spec::new(&cmd));
    assert!(matches!(&f.status, Status::SpawnFailed { kind: SpawnErrorKind::NotFound, .. }), "{:?}", f.status);
    assert_eq!(f.pid, None);

    // Looked up in the job's PATH, not the daemon's.
    let cmd = argv(&["true"]);
    let env = [("PATH".to_string(), scratch.dir.display().to_string())];
    let f = run(&Spec { env: &env, ..Spec::new(&cmd) });
    assert!(matches!(&f.status, Status::SpawnFailed { kind: SpawnErrorKind::NotFound, .. }), "{:?}", f.status);

    let script = scratch.write("not-executable.sh", "#!/bin/sh\necho hi\n");
    let cmd = argv(&[script.to_str().unwrap()]);
    let f = run(&Spec::new(&cmd));
    match &f.status {
        Status::SpawnFailed { kind, message } => {
            assert_eq!(*kind, SpawnErrorKind::NotExecutable);
            assert_eq!(kind.exit_code(), 126);
            assert!(message.contains("not-executable.sh") && message.contains("Permission denied"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    let cmd = argv(&["true"]);
    let missing = scratch.path("no-such-dir");
    let f = run(&Spec { workdir: Some(&missing), ..Spec::new(&cmd) });
    match &f.status {
        Status::SpawnFailed { kind: SpawnErrorKind::Other, message } => {
            assert!(message.starts_with("cannot change directory to") && message.contains("no-such-dir"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn timeout_ends_the_whole_tree_even_what_ignores_sigterm() {
    // The timeout must only come after the shell has set its trap; 2 s is ample for that.
    let cmd = sh("trap '' TERM; sleep 1000 & echo $!; wait; wait");
    let spec =
        Spec { timeout: Some(Duration::from_secs(2)), kill_grace: Duration::from_millis(500), ..Spec::new(&cmd) };
    let f = run(&spec);
    assert_eq!(f.status, Status::TimedOut { signal: 9 });
    assert!(f.duration >= Duration::from_millis(2500), "{:?}", f.duration);
    assert!(f.duration < Duration::from_secs(30), "{:?}", f.duration);
    let grandchild: u32 = stdout(&f).trim().parse().unwrap();
    assert!(dead(grandchild));
    assert_group_gone(f.pid.unwrap());
}

#[test]
fn timeout_reports_sigterm_when_that_was_enough() {
    let cmd = argv(&["sleep", "1000"]);
    let spec =
        Spec { timeout: Some(Duration::from_millis(200)), kill_grace: Duration::from_secs(60), ..Spec::new(&cmd) };
    let f = run(&spec);
    assert_eq!(f.status, Status::TimedOut { signal: 15 });
    assert!(f.duration >= Duration::from_millis(200) && f.duration < Duration::from_secs(30), "{:?}", f.duration);
    assert_group_gone(f.pid.unwrap());
}

#[test]
fn stop_ends_the_run_and_escalates_after_the_grace() {
    let cmd = argv(&["sleep", "1000"]);
    let spec = Spec { kill_grace: Duration::from_secs(60), ..Spec::new(&cmd) };
    let (tx, stop) = watch::channel(false);
    let f = block_on(async {
        let stopper = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tx.send(true).unwrap();
        };
        tokio::join!(process::run(&spec, |_, _| {}, stop), stopper).0
    });
    assert_eq!(f.status, Status::Stopped { signal: 15 });
    assert!(f.duration >= Duration::from_millis(200) && f.duration < Duration::from_secs(30), "{:?}", f.duration);

    // A tree deaf to SIGTERM, stopped only once it says it is ready.
    let scratch = Scratch::new("stop");
    let cmd = sh("trap '' TERM; sleep 1000 & echo $! >pid; mv pid ready; wait; wait");
    let spec = Spec { workdir: Some(&scratch.dir), kill_grace: Duration::from_millis(300), ..Spec::new(&cmd) };
    let (tx, stop) = watch::channel(false);
    let f = block_on(async {
        let stopper = async {
            while !scratch.path("ready").exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            tx.send(true).unwrap();
        };
        tokio::join!(process::run(&spec, |_, _| {}, stop), stopper).0
    });
    assert_eq!(f.status, Status::Stopped { signal: 9 });
    assert!(f.duration >= Duration::from_millis(300) && f.duration < Duration::from_secs(30), "{:?}", f.duration);
    let grandchild: u32 = std::fs::read_to_string(scratch.path("ready")).unwrap().trim().parse().unwrap();
    assert!(dead(grandchild));
    assert_group_gone(f.pid.unwrap());

    // Already stopping when the run begins: it still starts (and is recorded), then is ended.
    let cmd = argv(&["sleep", "1000"]);
    let (_tx, stop) = watch::channel(true);
    let mut seen = None;
    let f = block_on(process::run(&Spec::new(&cmd), |pid, _| seen = Some(pid), stop));
    assert_eq!(f.status, Status::Stopped { signal: 15 });
    assert_eq!(seen, f.pid);
}

#[test]
fn capture_keeps_exactly_the_last_bytes_and_counts_all() {
    let scratch = Scratch::new("capture");
    let data: Vec<u8> = (0..20_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(scratch.path("data"), &data).unwrap();
    let cmd = sh("cat data; cat data data >&2");
    let spec = Spec { workdir: Some(&scratch.dir), capture_limit: 1000, ..Spec::new(&cmd) };
    let f = run(&spec);
    assert_eq!(f.status, Status::Exited(0));
    assert_eq!(f.stdout_bytes, 20_000);
    assert_eq!(f.stderr_bytes, 40_000);
    assert_eq!(f.stdout_tail, data[19_000..]);
    assert_eq!(f.stderr_tail, data[19_000..]);

    let f = run(&Spec { capture_limit: 0, ..spec });
    assert_eq!((f.stdout_tail.len(), f.stdout_bytes), (0, 20_000));
}

#[test]
fn an_output_flood_does_not_grow_our_memory() {
    if common::skip_emulated(
        "VmRSS of an emulated process is qemu-user's, whose translation cache grows with the code it runs",
    ) {
        return;
    }
    // RSS is per process, and the other tests running in parallel threads move it by megabytes
    // (a malloc arena per thread), so the measurement runs in a copy of this binary of its own.
    const ALONE: &str = "RUNNER_TEST_FLOOD_ALONE";
    if std::env::var_os(ALONE).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "an_output_flood_does_not_grow_our_memory", "--nocapture", "--test-threads=1"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
        return;
    }
    let cmd = sh("head -c 100000000 /dev/zero; head -c 100000000 /dev/zero >&2");
    let spec = Spec::new(&cmd);
    let before = vm_rss_kib();
    let (_stop, stop) = watch::channel(false);
    let (f, peak) = block_on(async {
        let done = std::cell::Cell::new(false);
        let sampler = async {
            let mut peak = 0;
            while !done.get() {
                peak = peak.max(vm_rss_kib());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        };
        let job = async {
            let f = process::run(&spec, |_, _| {}, stop).await;
            done.set(true);
            f
        };
        tokio::join!(job, sampler)
    });
    assert_eq!(f.status, Status::Exited(0));
    assert_eq!((f.stdout_bytes, f.stderr_bytes), (100_000_000, 100_000_000));
    assert_eq!(f.stdout_tail, vec![0; process::CAPTURE_LIMIT]);
    let grown = peak.max(vm_rss_kib()).saturating_sub(before);
    assert!(grown < 4 * 1024, "RSS grew by {grown} KiB while the job wrote 200 MB");
}

#[test]
fn leftovers_in_the_group_are_ended_after_the_main_process_exits() {
    // The background sleep holds stdout open: without ending it the run would never see EOF.
    let cmd = sh("sleep 1000 & echo started");
    let f = run(&Spec { kill_grace: Duration::from_secs(60), ..Spec::new(&cmd) });
    assert_eq!(f.status, Status::Exited(0));
    assert_eq!(f.leftover_signal, Some(15));
    assert_eq!(stdout(&f), "started\n");
    assert!(f.duration < Duration::from_secs(30), "{:?}", f.duration);
    assert_group_gone(f.pid.unwrap());

    // Detached from the pipes and deaf to SIGTERM: found through the group and killed.
    let cmd = sh("trap '' TERM; sleep 1000 >/dev/null 2>&1 & echo $!; exit 3");
    let f = run(&Spec { kill_grace: Duration::from_millis(300), ..Spec::new(&cmd) });
    assert_eq!(f.status, Status::Exited(3));
    assert_eq!(f.leftover_signal, Some(9));
    assert!(f.duration >= Duration::from_millis(300) && f.duration < Duration::from_secs(30), "{:?}", f.duration);
    assert!(dead(stdout(&f).trim().parse().unwrap()));
    assert_group_gone(f.pid.unwrap());
}

#[test]
fn a_process_that_left_the_group_cannot_hold_the_run_open() {
    // setsid(1) execs in place here (a background job of sh is no group leader), so the pid
    // written is the escaped process and its own group.
    // The main process waits until the escape is done, or its exit could end the escapee first.
    let scratch = Scratch::new("escape");
    let cmd = sh("setsid sh -c 'echo $$ >pid; exec sleep 1000' & while [ ! -s pid ]; do sleep 0.02; done; cat pid");
    let f = run(&Spec { workdir: Some(&scratch.dir), ..Spec::new(&cmd) });
    let escaped: u32 = stdout(&f).trim().parse().unwrap();
    let _ = killpg(Pid::from_raw(escaped as i32), Signal::SIGKILL);
    assert_eq!(f.status, Status::Exited(0));
    assert!(f.duration >= process::DRAIN_LIMIT && f.duration < Duration::from_secs(30), "{:?}", f.duration);
    let t = Instant::now();
    while !dead(escaped) {
        assert!(t.elapsed() < Duration::from_secs(30), "the escaped process survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn env_is_the_clean_base_plus_the_job_env() {
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some(), "cargo sets it for tests");
    let cmd = argv(&["env"]);
    let env = [("FOO".to_string(), "bar baz".to_string()), ("PATH".to_string(), "/usr/bin:/bin".to_string())];
    let f = run(&Spec { env: &env, ..Spec::new(&cmd) });
    assert_eq!(f.status, Status::Exited(0));
    let out = stdout(&f);
    let vars: Vec<(&str, &str)> = out.lines().map(|l| l.split_once('=').unwrap()).collect();
    let names: BTreeSet<&str> =
        vars.iter().map(|(k, _)| *k).filter(|k| *k != "TZ" && *k != "LANG" && !k.starts_with("LC_")).collect();
    let allowed = BTreeSet::from(["PATH", "HOME", "USER", "LOGNAME", "SHELL", "FOO"]);
    assert!(names.is_subset(&allowed), "unexpected variables in {names:?}");
    for needed in ["PATH", "HOME", "SHELL", "FOO"] {
        assert!(names.contains(needed), "{needed} missing from {names:?}");
    }
    assert!(vars.contains(&("FOO", "bar baz")));
    assert!(vars.contains(&("PATH", "/usr/bin:/bin")), "spec.env comes last: {vars:?}");

    let cmd = sh("echo $PATH");
    assert_eq!(stdout(&run(&Spec::new(&cmd))), format!("{}\n", process::SAFE_PATH));
}

#[test]
fn workdir_and_umask_apply() {
    let scratch = Scratch::new("workdir");
    let cmd = sh("touch made; mkdir dir; pwd");
    let f = run(&Spec { workdir: Some(&scratch.dir), umask: 0o027, ..Spec::new(&cmd) });
    assert_eq!(f.status, Status::Exited(0));
    assert_eq!(PathBuf::from(stdout(&f).trim()).canonicalize().unwrap(), scratch.dir.canonicalize().unwrap());
    let mode = |p: &str| std::fs::metadata(scratch.path(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("made"), 0o640);
    assert_eq!(mode("dir"), 0o750);
}

fn nobody() -> RunAs {
    RunAs {
        user: "nobody".into(),
        uid: 65534,
        gid: 65534,
        groups: vec![65534, 4242],
        home: "/nonexistent".into(),
        shell: "/usr/sbin/nologin".into(),
    }
}

#[test]
fn run_as_another_user_sets_ids_groups_and_environment() {
    if !is_root() {
        common::skip_missing("root to switch users");
        return;
    }
    let who = nobody();
    let cmd = sh("id -u; id -g; id -G; echo $HOME $USER $LOGNAME $SHELL; pwd");
    let f = run(&Spec { run_as: Some(&who), ..Spec::new(&cmd) });
    assert_eq!(f.status, Status::Exited(0), "{}", String::from_utf8_lossy(&f.stderr_tail));
    let out = stdout(&f);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0..2], ["65534", "65534"]);
    assert_eq!(lines[2].split(' ').collect::<BTreeSet<_>>(), BTreeSet::from(["65534", "4242"]));
    // The home does not exist, so the job starts in "/" as cron's would.
    assert_eq!(lines[3..], ["/nonexistent nobody nobody /usr/sbin/nologin", "/"]);

    // The directory is entered as the user, so one only root may enter is refused.
    let scratch = Scratch::new("run-as");
    let private = scratch.path("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let f = run(&Spec { run_as: Some(&who), workdir: Some(&private), ..Spec::new(&cmd) });
    match &f.status {
        Status::SpawnFailed { kind: SpawnErrorKind::Other, message } => {
            assert!(message.contains("cannot change directory"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nice_applies() {
    let cmd = argv(&["nice"]);
    let f = run(&Spec { nice: Some(7), ..Spec::new(&cmd) });
    assert_eq!(stdout(&f), "7\n");
    if is_root() {
        let f = run(&Spec { nice: Some(-3), run_as: Some(&nobody()), ..Spec::new(&cmd) });
        assert_eq!(stdout(&f), "-3\n", "nice is set before privileges are dropped");
    }
}

#[test]
fn a_job_inherits_only_its_stdio() {
    // A descriptor of ours without close-on-exec, as a library might leave one.
    let leaked = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty()).unwrap();
    let cmd = argv(&["ls", "/proc/self/fd"]);
    let f = run(&Spec::new(&cmd));
    drop(leaked);
    assert_eq!(f.status, Status::Exited(0));
    // 3 is ls's own listing of the directory.
    assert_eq!(stdout(&f).split_whitespace().collect::<Vec<_>>(), ["0", "1", "2", "3"]);
}

#[test]
fn the_job_dies_with_the_thread_that_started_it() {
    dies_with_its_thread(None);
}

#[test]
fn a_job_run_as_another_user_dies_with_the_thread_that_started_it_too() {
    // The kernel clears the death signal when the ids change, so it must be set after.
    if !is_root() {
        common::skip_missing("root to switch users");
        return;
    }
    dies_with_its_thread(Some(nobody()));
}

fn dies_with_its_thread(who: Option<RunAs>) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let cmd = argv(&["sleep", "1000"]);
        let spec = Spec { run_as: who.as_ref(), ..Spec::new(&cmd) };
        let (_stop, stop) = watch::channel(false);
        block_on(async {
            // Runs until the job has been spawned (its pid reported), not for a fixed time.
            let spawned = tokio::sync::Notify::new();
            let on_spawn = |pid, _: &str| {
                tx.send(pid).unwrap();
                spawned.notify_one();
            };
            let mut run = Box::pin(process::run(&spec, on_spawn, stop));
            tokio::select! {
                f = &mut run => panic!("sleep 1000 ended early: {f:?}"),
                _ = spawned.notified() => {}
            }
            // Forgotten, not dropped: dropping would kill the group; this is the daemon dying.
            std::mem::forget(run);
        });
    })
    .join()
    .unwrap();
    let pid = Pid::from_raw(rx.recv().unwrap() as i32);
    let t = Instant::now();
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)).unwrap() {
            WaitStatus::StillAlive if t.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(20))
            }
            WaitStatus::StillAlive => {
                let _ = killpg(pid, Signal::SIGKILL);
                panic!("the job outlived the thread that started it");
            }
            status => {
                assert_eq!(status, WaitStatus::Signaled(pid, Signal::SIGKILL, false));
                break;
            }
        }
    }
}

/// A run dropped half-way (a cancelled task) SIGKILLs its job and reaps it: no zombie is left
/// behind, while the runtime goes on.
#[test]
fn a_dropped_run_leaves_no_zombie() {
    let cmd = argv(&["sleep", "1000"]);
    let (_stop, stop) = watch::channel(false);
    let spec = Spec::new(&cmd);
    block_on(async {
        let spawned = tokio::sync::Notify::new();
        let pid = std::cell::Cell::new(0);
        let on_spawn = |p, _: &str| {
            pid.set(p);
            spawned.notify_one();
        };
        let mut run = Box::pin(process::run(&spec, on_spawn, stop));
        tokio::select! {
            f = &mut run => panic!("sleep 1000 ended early: {f:?}"),
            _ = spawned.notified() => {}
        }
        drop(run);
        let proc_dir = format!("/proc/{}", pid.get());
        let t = Instant::now();
        // Gone from /proc only once reaped: a zombie keeps its entry.
        while std::path::Path::new(&proc_dir).exists() {
            assert!(t.elapsed() < Duration::from_secs(30), "pid {} was not reaped after the drop", pid.get());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

#[test]
fn end_group_ends_a_leftover_group() {
    let mut child = std::process::Command::new("setsid")
        .args(["sh", "-c", "trap '' TERM; sleep 1000 & wait"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // setsid(1) forks when it is a group leader already; it is not here, so the pid is the sid.
    let pgid = child.id();
    let t = Instant::now();
    while live_members(pgid).len() < 2 {
        assert!(t.elapsed() < Duration::from_secs(30), "the group never formed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(process::end_group(pgid, Duration::from_millis(300)));
    child.wait().unwrap();
    assert_group_gone(pgid);
    assert!(!process::end_group(pgid, Duration::from_millis(300)));
    assert!(!process::end_group(0, Duration::ZERO));
    assert!(!process::end_group(1, Duration::ZERO));
}
