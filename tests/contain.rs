//! Contained runs: what a job leaves behind with `setsid`, a double fork or `nohup` is ended
//! at the run's end and at its timeout, with a cgroup per run where cgroup v2 is writable and
//! with the subreaper alone (`RUNNER_CONTAINMENT=subreaper`); the record carries CPU time.

mod common;
use common::*;
use std::path::PathBuf;
use std::time::Duration;

const ESCAPEES: [&str; 3] = ["setsid", "dfork", "nohup"];

/// The escapees a run in `mode` must end. Under qemu-user 7.2, which refuses
/// `PR_SET_CHILD_SUBREAPER` (EINVAL), runner is no subreaper: in subreaper mode the `setsid`
/// child, outside the run's group and session, is re-parented past runner, which cannot see
/// it (it says so in its containment: `status_says_which_containment_the_daemon_uses`). The
/// other two are in the run's group and must still end.
fn must_end(mode: &str) -> &'static [&'static str] {
    if mode == "subreaper" && emulated() {
        eprintln!("the setsid child is not checked under emulation: qemu-user refuses PR_SET_CHILD_SUBREAPER");
        &ESCAPEES[1..]
    } else {
        &ESCAPEES
    }
}

/// A job that starts three processes that leave its process group one way or another, each
/// writing its pid to `<name>.pid`, then `tail` (its own end).
fn job(s: &Scratch, name: &str, extra: &str, tail: &str) -> String {
    let d = s.dir.display();
    let body = |what: &str| format!("bash -c 'echo $$ > {d}/{what}.pid; exec -a contain-{what} sleep 1000'");
    let script = format!(
        "setsid {} >/dev/null 2>&1 &\n( {} >/dev/null 2>&1 & ) \nnohup {} >/dev/null 2>&1 &\n\
         cat /proc/self/cgroup > {d}/cgroup\n\
         for i in $(seq 100); do [ -s {d}/setsid.pid ] && [ -s {d}/dfork.pid ] && [ -s {d}/nohup.pid ] && break; sleep 0.05; done\n\
         {tail}\n",
        body("setsid"),
        body("dfork"),
        body("nohup")
    );
    s.write(&format!("{name}.sh"), &script);
    format!("  {name}:\n    every: 1h\n    kill_grace: 500ms\n{extra}    command: [\"/bin/bash\", \"{d}/{name}.sh\"]\n")
}

fn pid_of(s: &Scratch, what: &str) -> i32 {
    let t = std::fs::read_to_string(s.path(&format!("{what}.pid"))).unwrap_or_default();
    t.trim().parse().unwrap_or_else(|_| panic!("{what} never started: {t:?}"))
}

/// Still running as the process the job started (not a reused pid).
fn still_ours(pid: i32, what: &str) -> bool {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    alive(pid) && cmd.starts_with(format!("contain-{what}").as_bytes())
}

/// Ends what a failed test left, by pid and only if it is still the process it started.
struct Cleanup<'a>(&'a Scratch);
impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for what in ESCAPEES {
            if let Ok(t) = std::fs::read_to_string(self.0.path(&format!("{what}.pid")))
                && let Ok(pid) = t.trim().parse::<i32>()
                && still_ours(pid, what)
            {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
            }
        }
    }
}

/// A writable cgroup v2 hierarchy (where this runs as root), or None after `skip_missing`.
fn cgroup2() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if !right.starts_with("cgroup2 ") {
            return None;
        }
        Some(PathBuf::from(left.split_whitespace().nth(4)?))
    });
    match mount {
        Some(m) if nix::unistd::access(&m, nix::unistd::AccessFlags::W_OK).is_ok() => Some(m),
        _ => {
            skip_missing("a writable cgroup2 mount (root, cgroup v2)");
            None
        }
    }
}

fn run_case(mode: &str, end: &str) {
    let s = Scratch::new(&format!("contain-{mode}-{end}"));
    let _c = Cleanup(&s);
    let (extra, tail, want_code) = match end {
        "end" => ("", "exit 0", 0),
        _ => ("    timeout: 1s\n", "sleep 100", 124),
    };
    let c = s.write("supervisor.yaml", &format!("version: 1\njobs:\n{}", job(&s, "leaver", extra, tail)));
    let mut cmd = s.runner(&c);
    if mode == "subreaper" {
        cmd.env("RUNNER_CONTAINMENT", "subreaper");
    } else {
        cmd.env_remove("RUNNER_CONTAINMENT");
    }
    let o = cmd.args(["once", "leaver"]).output().unwrap();
    assert_eq!(o.status.code(), Some(want_code), "{}", stderr(&o));
    for &what in must_end(mode) {
        let pid = pid_of(&s, what);
        assert!(!still_ours(pid, what), "{mode}/{end}: the {what} child {pid} outlived the run");
    }
    let cg = std::fs::read_to_string(s.path("cgroup")).unwrap();
    let line = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("").to_string();
    if mode == "cgroup" {
        assert!(line.contains("/runner.") && line.contains("/run."), "not in a run's cgroup: {cg}");
        let mount = cgroup2().unwrap();
        let dir = mount.join(line.trim_start_matches('/'));
        assert!(!dir.exists(), "the run's cgroup {} was left behind", dir.display());
        assert!(!dir.parent().unwrap().exists(), "runner's subtree was left behind");
    } else {
        assert!(!line.contains("/run."), "the fallback used a cgroup: {cg}");
    }
    let st = s.runner(&c).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    let job = &v["jobs"][0];
    assert!(job["last_cpu_usec"].is_u64(), "no CPU time in the status: {job}");
    // bash, seq and three sleeps' start-up: more than nothing, in both modes (the cgroup's
    // cpu.stat, or the rusage of the main process and of what runner reaped).
    assert!(job["last_cpu_usec"].as_u64().unwrap() > 0, "{job}");
    assert!(job["last_memory_peak_bytes"].as_u64().unwrap_or(0) > 0, "{job}");
}

fn cgroup_case(end: &str) {
    if cgroup2().is_none() {
        return;
    }
    run_case("cgroup", end);
}

#[test]
fn cgroup_mode_ends_escaped_children_at_the_end_of_the_run() {
    cgroup_case("end");
}

#[test]
fn cgroup_mode_ends_escaped_children_at_the_timeout() {
    cgroup_case("timeout");
}

#[test]
fn subreaper_mode_ends_escaped_children_at_the_end_of_the_run() {
    run_case("subreaper", "end");
}

#[test]
fn subreaper_mode_ends_escaped_children_at_the_timeout() {
    run_case("subreaper", "timeout");
}

#[test]
fn status_says_which_containment_the_daemon_uses() {
    let s = Scratch::new("contain-status");
    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n");
    let status = |env: Option<&str>| {
        let mut cmd = s.runner(&c);
        match env {
            Some(v) => cmd.env("RUNNER_CONTAINMENT", v),
            None => cmd.env_remove("RUNNER_CONTAINMENT"),
        };
        let o = cmd.args(["status", "--json"]).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let info = s.path("run/daemon.json");
    let d = Daemon::start_with(&s, &c, &[("RUNNER_CONTAINMENT", "subreaper")]);
    wait_for(Duration::from_secs(30), "daemon.json", || info.exists());
    let st = status(None);
    assert_eq!(st["containment"]["mode"], "subreaper");
    // Where runner cannot be a subreaper (qemu-user refuses the prctl) it says so.
    let detail = st["containment"]["detail"].as_str().unwrap_or("").to_string();
    assert_eq!(detail.contains("not a child subreaper"), emulated(), "{detail}");
    drop(d);
    let _ = std::fs::remove_file(&info);
    if cgroup2().is_some() {
        let _d = Daemon::start(&s, &c);
        wait_for(Duration::from_secs(30), "daemon.json", || info.exists());
        assert_eq!(status(Some("subreaper"))["containment"]["mode"], "cgroup");
    }
}

/// A process that left its run's session is still in the run's cgroup: after its daemon was
/// killed (so no runner is its ancestor and no recorded group covers it) a sweep of it with
/// `orphans_only` keeps it, and the next runner ends it with the dead run's cgroup.
#[test]
fn a_sweep_keeps_a_process_in_a_runs_cgroup_and_the_next_runner_ends_it() {
    let Some(mount) = cgroup2() else { return };
    let s = Scratch::new("contain-sweep");
    let _c = Cleanup(&s);
    let d = s.dir.display();
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  hold:\n    schedule: \"@reboot\"\n    command: [\"/bin/bash\", \"-c\", \"setsid bash -c 'echo $$ > {d}/setsid.pid; exec -a contain-setsid sleep 1000' >/dev/null 2>&1 & exec sleep 1000\"]\n  sweep:\n    every: 6h\n    orphan_sweep:\n      match: {{ cmdline: \"^contain-setsid\" }}\n      min_age: 0s\n  other:\n    every: 6h\n    run: \"true\"\n"
        ),
    );
    let mut daemon = Daemon::start(&s, &c);
    wait_for(Duration::from_secs(10), "the setsid'd child", || {
        s.path("setsid.pid").exists()
            && std::fs::read_to_string(s.path("setsid.pid")).is_ok_and(|t| t.trim().parse::<i32>().is_ok())
    });
    let pid = pid_of(&s, "setsid");
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap().to_string();
    let run_dir = mount.join(rel.trim_start_matches('/'));
    daemon.signal(nix::sys::signal::Signal::SIGKILL);
    daemon.wait_exit(Duration::from_secs(5));
    wait_for(Duration::from_secs(5), "the child to be re-parented away from the dead daemon", || {
        runner::proc::stat(pid).is_ok_and(|st| st.ppid != daemon.child.id() as i32)
    });
    let o = s.runner(&c).args(["once", "sweep"]).output().unwrap();
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(still_ours(pid, "setsid"), "the sweep ended a process of a run: {said}");
    assert!(said.contains("protected: in a run's cgroup"), "{said}");
    // The next runner ends the dead daemon's run and removes its subtree, once it is 2 s old.
    std::thread::sleep(Duration::from_secs(2));
    let o = s.runner(&c).args(["once", "other"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(Duration::from_secs(5), "the dead run's process to be ended", || !still_ours(pid, "setsid"));
    assert!(!run_dir.exists() && !run_dir.parent().unwrap().exists(), "{} left behind", run_dir.display());
}

/// A daemon stopped with SIGTERM ends its running job's escaped children too, in both modes.
fn sigterm_case(mode: &str) {
    let s = Scratch::new(&format!("contain-term-{mode}"));
    let _c = Cleanup(&s);
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n{}",
            job(&s, "leaver", "    schedule: \"@reboot\"\n", "sleep 100").replace("    every: 1h\n", "")
        ),
    );
    let env: &[(&str, &str)] = if mode == "subreaper" { &[("RUNNER_CONTAINMENT", "subreaper")] } else { &[] };
    let mut d = Daemon::start_with(&s, &c, env);
    wait_for(Duration::from_secs(10), "the escaped children", || {
        ESCAPEES.iter().all(|w| {
            std::fs::read_to_string(s.path(&format!("{w}.pid"))).is_ok_and(|t| t.trim().parse::<i32>().is_ok())
        })
    });
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(10)).success(), "{}", d.log_text());
    for &what in must_end(mode) {
        let pid = pid_of(&s, what);
        assert!(!still_ours(pid, what), "{mode}: the {what} child {pid} outlived the daemon's stop");
    }
}

#[test]
fn sigterm_ends_escaped_children_in_cgroup_mode() {
    if cgroup2().is_some() {
        sigterm_case("cgroup");
    }
}

#[test]
fn sigterm_ends_escaped_children_in_subreaper_mode() {
    sigterm_case("subreaper");
}

/// With the subreaper alone, what a run left outside its group (`setsid`, a double fork) is
/// re-parented to init when the daemon is killed: the next daemon finds it by the run's mark
/// and ends it, and a second crash inside the grace does not lose it (issue 25, item 9).
#[test]
fn subreaper_leftovers_outside_the_group_are_ended_after_two_crashes() {
    let s = Scratch::new("contain-crash");
    // Names no other test's sweep matches (`^contain-setsid`), ended by pid if the test fails.
    struct Ended<'a>(&'a Scratch);
    impl Drop for Ended<'_> {
        fn drop(&mut self) {
            for what in ["xsetsid", "xdfork"] {
                if let Ok(t) = std::fs::read_to_string(self.0.path(&format!("{what}.pid")))
                    && let Ok(pid) = t.trim().parse::<i32>()
                    && still_ours(pid, what)
                {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
                }
            }
        }
    }
    let _c = Ended(&s);
    let d = s.dir.display();
    // Escapees that ignore TERM (an ignored signal stays ignored across exec), so the
    // leftovers outlive the second daemon's grace; later runs leave nothing (the marker).
    let body =
        |what: &str| format!("bash -c 'trap \"\" TERM; echo $$ > {d}/{what}.pid; exec -a contain-{what} sleep 1000'");
    s.write(
        "leaver.sh",
        &format!(
            "[ -e {d}/once ] && exec sleep 100\ntouch {d}/once\nsetsid {} >/dev/null 2>&1 &\n( {} >/dev/null 2>&1 & )\nexec sleep 100\n",
            body("xsetsid"),
            body("xdfork")
        ),
    );
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  leaver:\n    schedule: \"@reboot\"\n    kill_grace: 3s\n    command: [\"/bin/bash\", \"{d}/leaver.sh\"]\n"
        ),
    );
    let env = [("RUNNER_CONTAINMENT", "subreaper")];
    let both = || {
        ["xsetsid", "xdfork"].iter().all(|w| {
            std::fs::read_to_string(s.path(&format!("{w}.pid"))).is_ok_and(|t| t.trim().parse::<i32>().is_ok())
        })
    };
    let mut d1 = Daemon::start_with(&s, &c, &env);
    wait_for(Duration::from_secs(10), "the escaped children", both);
    let (setsid, dfork) = (pid_of(&s, "xsetsid"), pid_of(&s, "xdfork"));
    // Each wrote its pid before its exec: wait for the exec.
    wait_for(Duration::from_secs(10), "the escapees' exec", || {
        still_ours(setsid, "xsetsid") && still_ours(dfork, "xdfork")
    });
    d1.signal(nix::sys::signal::Signal::SIGKILL);
    d1.wait_exit(Duration::from_secs(10));
    assert!(still_ours(setsid, "xsetsid") && still_ours(dfork, "xdfork"), "the escapees outlive their daemon");

    // The second daemon starts ending them (TERM, ignored) and is killed inside the grace.
    let mut d2 = Daemon::start_with(&s, &c, &env);
    wait_for(Duration::from_secs(10), "the second daemon's start", || d2.log_text().contains("runner started"));
    std::thread::sleep(Duration::from_millis(500));
    d2.signal(nix::sys::signal::Signal::SIGKILL);
    d2.wait_exit(Duration::from_secs(10));
    assert!(still_ours(setsid, "xsetsid") && still_ours(dfork, "xdfork"), "TERM is ignored: both wait for KILL");
    let running = std::fs::read_to_string(s.path("run/jobs/leaver.running")).unwrap_or_default();
    assert!(running.contains("\"run_id\""), "the run stays recorded with its mark: {running}");

    let mut d3 = Daemon::start_with(&s, &c, &env);
    wait_for(Duration::from_secs(20), "the escapees' end", || {
        !still_ours(setsid, "xsetsid") && !still_ours(dfork, "xdfork")
    });
    wait_for(Duration::from_secs(10), "the leftovers record", || {
        let o = s.runner(&c).args(["logs", "--kind", "daemon"]).output().unwrap();
        stdout(&o).contains("2 process(es) it left outside it ended")
    });
    d3.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d3.wait_exit(Duration::from_secs(10)).success(), "{}", d3.log_text());
}
