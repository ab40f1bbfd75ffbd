//! One way to start a job: traced with strace, every process the daemon creates is a clone3
//! with CLONE_PIDFD, created in its run's cgroup (CLONE_INTO_CGROUP, no `cgroup.procs`
//! write), and never shares the daemon's memory or suspends its thread (no CLONE_VM, no
//! CLONE_VFORK: the child sets itself up on a copy, while the event loop goes on). Every
//! step of its set-up holds both that way and through the exec helper
//! (`RUNNER_SPAWN=helper`, what a kernel without clone3 gets).

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[test]
fn fires_start_jobs_by_clone3_into_their_cgroup_without_sharing_memory() {
    let s = Scratch::new("job-start");
    let fires = s.path("fires");
    let c = s.write(
        "supervisor.yaml",
        &format!("version: 1\njobs:\n  tick:\n    every: 200ms\n    run: \"echo x >> {}\"\n", fires.display()),
    );
    let trace = s.path("trace");
    let log = s.path("daemon.log");
    let Some(cmd) = traced(&s, &c, &["-f", "-qq", "-e", "trace=clone,clone3,fork,vfork"], &trace, &["run"]) else {
        return;
    };
    let (mut tracer, pid) = start_traced_daemon(cmd, &s, &log);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(Duration::from_secs(30), "five fires", || lines(&fires).len() >= 5);
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert!(tracer.wait().unwrap().success(), "{}", log_text());

    let text = std::fs::read_to_string(&trace).unwrap();
    // Threads (CLONE_THREAD) are not processes; the rest are the job starts.
    let starts: Vec<&str> = text
        .lines()
        .filter(|l| {
            (l.contains("clone") || l.contains("fork(")) && !l.contains("CLONE_THREAD") && !l.contains("resumed>")
        })
        .collect();
    assert!(starts.len() >= 5, "strace saw {} process starts for 5 fires:\n{text}", starts.len());
    let shared: Vec<&&str> = starts.iter().filter(|l| l.contains("CLONE_VM") || l.contains("CLONE_VFORK")).collect();
    assert!(shared.is_empty(), "job starts that share the daemon's memory or suspend it: {shared:#?}");
    let other: Vec<&&str> = starts.iter().filter(|l| !(l.contains("clone3(") && l.contains("CLONE_PIDFD"))).collect();
    assert!(other.is_empty(), "job starts that are not clone3 with a pidfd: {other:#?}");
    if cgroup2_writable() {
        let outside: Vec<&&str> = starts.iter().filter(|l| !l.contains("CLONE_INTO_CGROUP")).collect();
        assert!(outside.is_empty(), "job starts outside their run's cgroup: {outside:#?}");
    }
}

/// Ignored signals stay ignored across exec, and both the helper's Rust start-up (SIGPIPE)
/// and glibc's posix_spawn (its internal signals 32 and 33) ignore some: a job must still
/// start with them at their default, or `producer | head` in a job sees EPIPE errors where
/// under cron the producer quietly dies.
#[test]
fn a_job_starts_with_sigpipe_and_the_spawn_signals_at_their_default() {
    let s = Scratch::new("job-start-signals");
    let mask = s.path("mask");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  sig:\n    every: 1h\n    run: \"grep SigIgn /proc/$$/status > {}; yes | head -n 1\"\n",
            mask.display()
        ),
    );
    let o = s.runner(&c).args(["once", "sig"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Broken pipe"), "`yes` saw EPIPE instead of SIGPIPE:\n{}", stderr(&o));
    let text = std::fs::read_to_string(&mask).unwrap();
    let hex = text.trim().trim_start_matches("SigIgn:").trim();
    // Under emulation the host's 32 to 35 are qemu-user's; the guest's 32 and 33 are host
    // signals above them, which the whole mask being clear covers.
    let ignored = runner_signal_mask(u64::from_str_radix(hex, 16).unwrap());
    for sig in [13, 32, 33] {
        assert_eq!(ignored & (1 << (sig - 1)), 0, "signal {sig} is ignored in the job (SigIgn {hex})");
    }
    if emulated() {
        assert_eq!(ignored, 0, "signals are ignored in the job (SigIgn {hex})");
    }
}

/// The two ways a job starts: `RUNNER_SPAWN` unset (clone3 and the job's exec) and `helper`.
const SPAWNS: [&str; 2] = ["", "helper"];

/// A writable cgroup v2 mount (so runs get a cgroup each), or None after `skip_missing`.
fn cgroup2_writable() -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right.starts_with("cgroup2 ").then(|| left.split_whitespace().nth(4).map(str::to_string))?
    });
    let ok = mount.is_some_and(|m| nix::unistd::access(m.as_str(), nix::unistd::AccessFlags::W_OK).is_ok());
    if !ok {
        skip_missing("a writable cgroup2 mount (root, cgroup v2)");
    }
    ok
}

/// The job's process is in its run's cgroup when it starts: with clone3 no `cgroup.procs` is
/// written per run (the helper writes one per run, which shows the trace would see it).
#[test]
fn a_job_is_created_in_its_runs_cgroup() {
    if !cgroup2_writable() {
        return;
    }
    for spawn in SPAWNS {
        let s = Scratch::new(&format!("job-start-cgroup{spawn}"));
        let out = s.path("cgroups");
        let c = s.write(
            "supervisor.yaml",
            &format!(
                "version: 1\njobs:\n  cg:\n    every: 200ms\n    run: \"cat /proc/$$/cgroup >> {}\"\n",
                out.display()
            ),
        );
        let trace = s.path("trace");
        let log = s.path("daemon.log");
        let Some(mut cmd) = traced(&s, &c, &["-f", "-qq", "-e", "trace=openat,clone3"], &trace, &["run"]) else {
            return;
        };
        cmd.env("RUNNER_SPAWN", spawn);
        let (mut tracer, pid) = start_traced_daemon(cmd, &s, &log);
        let fires = || lines(&out).iter().filter(|l| l.starts_with("0::")).count();
        wait_for(Duration::from_secs(30), "three fires", || fires() >= 3);
        kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
        assert!(tracer.wait().unwrap().success(), "{}", std::fs::read_to_string(&log).unwrap_or_default());

        let seen = lines(&out);
        let unified: Vec<&String> = seen.iter().filter(|l| l.starts_with("0::")).collect();
        for l in unified {
            let leaf = l.rsplit('/').next().unwrap();
            assert!(leaf.starts_with("run."), "{spawn}: the job ran in {l}, not its run's cgroup");
        }
        let text = std::fs::read_to_string(&trace).unwrap();
        let joins = text
            .lines()
            .filter(|l| l.contains("/run.") && l.contains("cgroup.procs") && l.contains("O_WRONLY"))
            .count();
        if spawn.is_empty() {
            assert_eq!(joins, 0, "a run's cgroup.procs was written:\n{text}");
            assert!(text.contains("CLONE_INTO_CGROUP"), "no clone3 into a cgroup:\n{text}");
        } else {
            assert!(joins >= 3, "{spawn}: the helper wrote cgroup.procs {joins} times for 3 runs:\n{text}");
        }
    }
}

/// Session, group, ids, umask, nice, working directory, descriptors and signals, read by the
/// job itself from /proc, the same either way a job starts. The status lines are read by the
/// shell's builtins: the shell blocks every signal around each fork, so a child reading them
/// could see that instead of what the job started with.
#[test]
fn every_set_up_step_holds_in_the_job_either_way() {
    let root = nix::unistd::geteuid().is_root();
    let user = if root { "    user: nobody\n" } else { "" };
    let mut seen = Vec::new();
    for spawn in SPAWNS {
        let s = Scratch::new(&format!("job-start-setup{spawn}"));
        let c = s.write(
            "supervisor.yaml",
            &format!(
                "version: 1\njobs:\n  setup:\n    every: 1h\n{user}    workdir: /usr\n    umask: \"027\"\n    nice: 5\n    \
                 run: \"echo $$; cut -d' ' -f5,6,19 /proc/$$/stat; while read -r k v; do case $k in Uid:|Gid:|Groups:|SigBlk:|SigIgn:) echo $k $v;; esac; done < /proc/$$/status; \
                 umask; readlink /proc/$$/cwd; ls /proc/$$/fd\"\n"
            ),
        );
        let o = s.runner(&c).args(["once", "setup"]).env("RUNNER_SPAWN", spawn).output().unwrap();
        assert!(o.status.success(), "{spawn}: {}", stderr(&o));
        let text = stdout(&o);
        let l: Vec<&str> = text.lines().collect();
        let pid = l[0];
        assert_eq!(l[1], format!("{pid} {pid} 5"), "{spawn}: pgid, session and nice:\n{text}");
        let field = |name: &str| {
            l.iter()
                .find_map(|x| x.strip_prefix(&format!("{name}:")))
                .unwrap_or_else(|| panic!("{spawn}: no {name}:\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
        };
        assert_eq!(field("SigBlk"), ["0000000000000000"], "{spawn}: blocked signals");
        let ign = field("SigIgn").concat();
        assert_eq!(runner_signal_mask(u64::from_str_radix(&ign, 16).unwrap()), 0, "{spawn}: ignored signals {ign}");
        if root {
            let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
            let (uid, gid) = (nobody.uid.to_string(), nobody.gid.to_string());
            assert_eq!(field("Uid"), [uid.as_str(); 4], "{spawn}");
            assert_eq!(field("Gid"), [gid.as_str(); 4], "{spawn}");
            assert!(!field("Groups").contains(&"0"), "{spawn}: root's group kept: {:?}", field("Groups"));
        }
        let after = &l[l.iter().position(|x| x.starts_with("SigIgn")).unwrap() + 1..];
        assert_eq!(after, ["0027", "/usr", "0", "1", "2"], "{spawn}: umask, cwd and descriptors:\n{text}");
        seen.push(text.replace(pid, "PID"));
    }
    assert_eq!(seen[0], seen[1], "the two ways differ");
}

/// A missing program, one without the x bit and a script without `#!` (run by /bin/sh, as
/// execvp does), looked up in the job's PATH: the same outcome and message either way.
#[test]
fn exec_failures_read_the_same_either_way() {
    if skip_emulated("qemu-user refuses clone3, so the clone3 way is the exec helper and says so on stderr") {
        return;
    }
    let mut seen = Vec::new();
    for spawn in SPAWNS {
        let s = Scratch::new(&format!("job-start-exec{spawn}"));
        let bin = s.path("bin");
        s.write("bin/no-x", "#!/bin/sh\necho hi\n");
        let plain = s.write("bin/plain", "echo plain script ran with $1\n");
        std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let c = s.write(
            "supervisor.yaml",
            &format!(
                "version: 1\njobs:\n  missing:\n    every: 1h\n    command: [\"/nonexistent/prog\"]\n  \
                 no-x:\n    every: 1h\n    command: [\"{0}/no-x\"]\n  \
                 plain:\n    every: 1h\n    command: [\"plain\", \"arg\"]\n    env:\n      PATH: \"/nonexistent:{0}\"\n  \
                 nowhere:\n    every: 1h\n    command: [\"plain\"]\n",
                bin.display()
            ),
        );
        let once = |job: &str| {
            let o = s.runner(&c).args(["once", job]).env("RUNNER_SPAWN", spawn).output().unwrap();
            (o.status.code(), stdout(&o), stderr(&o).split_once(' ').map(|x| x.1.to_string()).unwrap_or_default())
        };
        let (code, _, err) = once("missing");
        assert_eq!(code, Some(127), "{spawn}: {err}");
        assert!(err.contains("cannot run /nonexistent/prog: No such file or directory"), "{spawn}: {err}");
        let (code, _, err) = once("no-x");
        assert_eq!(code, Some(126), "{spawn}: {err}");
        assert!(err.contains("no-x: Permission denied"), "{spawn}: {err}");
        let (code, out, err) = once("plain");
        assert_eq!((code, out.as_str()), (Some(0), "plain script ran with arg\n"), "{spawn}: {err}");
        let (code, _, err) = once("nowhere");
        assert_eq!(code, Some(127), "{spawn}: the daemon's PATH was searched: {err}");
        seen.push(
            ["missing", "no-x", "plain", "nowhere"]
                .map(once)
                .map(|(c, o, e)| format!("{c:?} {o} {}", e.replace(&s.dir.display().to_string(), "DIR")))
                .map(|t| t.replace(|c: char| c.is_ascii_digit(), "")),
        );
    }
    assert_eq!(seen[0], seen[1], "the two ways differ");
}

/// PR_SET_PDEATHSIG is set either way: a SIGKILLed daemon takes its running job with it
/// (subreaper mode, so no cgroup clean-up does it instead). tests/process.rs has the same as
/// another user, whose ids change before the death signal is set.
#[test]
fn a_job_dies_with_a_sigkilled_daemon_either_way() {
    for spawn in SPAWNS {
        let s = Scratch::new(&format!("job-start-pdeath{spawn}"));
        let pidfile = s.path("pid");
        let c = s.write(
            "supervisor.yaml",
            &format!(
                "version: 1\njobs:\n  long:\n    every: 200ms\n    run: \"echo $$ >> {}; exec sleep 300\"\n",
                pidfile.display()
            ),
        );
        let mut d = Daemon::start_with(&s, &c, &[("RUNNER_CONTAINMENT", "subreaper"), ("RUNNER_SPAWN", spawn)]);
        wait_for(Duration::from_secs(30), "the job to start", || !lines(&pidfile).is_empty());
        let job: i32 = lines(&pidfile)[0].parse().unwrap();
        d.signal(Signal::SIGKILL);
        d.wait_exit(Duration::from_secs(30));
        wait_for(Duration::from_secs(30), "the job to die with the daemon", || !alive(job));
    }
}

/// While a run's leftovers take their grace to end, the poll that waits for them reads the
/// run's cgroup or runner's own children, not `/proc/<pid>/stat` of every process on the box
/// at each tick on the event loop (issue 25, item 8). Before: about 900 such reads for this
/// one run, on a box of 80 processes.
#[test]
fn waiting_for_a_runs_leftovers_does_not_scan_every_process() {
    for mode in ["cgroup", "subreaper"] {
        let s = Scratch::new(&format!("linger-{mode}"));
        let c = s.write(
            "supervisor.yaml",
            "version: 1\njobs:\n  linger:\n    every: 1h\n    kill_grace: 1500ms\n    run: \"bash -c 'trap \\\"\\\" TERM; sleep 3' & sleep 0.2; exit 0\"\n",
        );
        let trace = s.path("trace");
        let Some(mut cmd) = traced(&s, &c, &["-f", "-qq", "-e", "trace=openat"], &trace, &["once", "linger"]) else {
            return;
        };
        if mode == "subreaper" {
            cmd.env("RUNNER_CONTAINMENT", "subreaper");
        }
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
        let processes = std::fs::read_dir("/proc")
            .unwrap()
            .filter(|e| {
                e.as_ref().is_ok_and(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
            })
            .count();
        let text = std::fs::read_to_string(&trace).unwrap();
        let reads = text
            .lines()
            .filter(|l| {
                l.split('"')
                    .nth(1)
                    .and_then(|p| p.strip_prefix("/proc/"))
                    .and_then(|p| p.strip_suffix("/stat"))
                    .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
            })
            .count();
        // The grace is polled about a dozen times: a scan at each would read about 12 x
        // `processes` stat files.
        assert!(reads < 4 * processes, "{mode}: {reads} reads of /proc/<pid>/stat, {processes} processes");
    }
}
