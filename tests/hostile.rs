//! Issue 25, through the real binary as root with a second user (uid 1000): hostile entries
//! in spools, state and runtime dirs someone else controls, special files where runner reads,
//! a damaged ring. Each test is one recipe of the issue; the victim files must stay as they were.

mod common;
use common::*;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

const OTHER: u32 = 1000;

/// Runs `cmd` as uid/gid 1000 with no supplementary groups, as the second user of the recipes.
fn as_other(mut cmd: Command) -> Output {
    cmd.uid(OTHER).gid(OTHER); // std drops supplementary groups when root sets a uid
    cmd.output().unwrap()
}

/// A shell command as uid 1000.
fn sh_other(script: &str) {
    let mut c = Command::new("/bin/sh");
    c.args(["-ec", script]);
    let o = as_other(c);
    assert!(o.status.success(), "`{script}` as uid {OTHER}: {}", stderr(&o));
}

fn chown_r(p: &Path, uid: u32) {
    let st = Command::new("chown").args(["-R", &uid.to_string(), &p.display().to_string()]).status().unwrap();
    assert!(st.success());
}

/// A directory uid 1000 can enter, for the scratch dir of tests where it acts.
fn open_to_others(s: &Scratch) {
    std::fs::set_permissions(&s.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Root's precious things: `root-owned/important.conf` (mode 600) and `root-owned-dir` with
/// a file and a directory three days old.
fn root_victims(s: &Scratch) -> (PathBuf, PathBuf) {
    let conf = s.write("root-owned/important.conf", "secret=1\n");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dir = s.path("root-owned-dir");
    std::fs::create_dir_all(dir.join("old")).unwrap();
    std::fs::write(dir.join("keep.txt"), "root's\n").unwrap();
    std::fs::write(dir.join("old/inner"), "root's\n").unwrap();
    let three_days = SystemTime::now() - Duration::from_secs(3 * 86400);
    for p in [dir.join("keep.txt"), dir.join("old/inner"), dir.join("old")] {
        std::fs::File::open(&p).unwrap().set_modified(three_days).unwrap();
    }
    (conf, dir)
}

fn assert_victims_intact(conf: &Path, dir: &Path, log: &str) {
    assert_eq!(std::fs::read_to_string(conf).unwrap(), "secret=1\n", "important.conf was written: {log}");
    assert_eq!(std::fs::metadata(conf).unwrap().mode() & 0o7777, 0o600, "{log}");
    assert_eq!(std::fs::read_to_string(dir.join("keep.txt")).unwrap(), "root's\n", "{log}");
    assert_eq!(std::fs::read_to_string(dir.join("old/inner")).unwrap(), "root's\n", "{log}");
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    assert_eq!(names, ["keep.txt", "old"], "files were moved into root's directory: {log}");
}

fn queue_config(s: &Scratch, spool: &Path, log: &Path) -> PathBuf {
    let h = s.write("h.sh", &format!("#!/bin/sh\ncat \"$1\" >> {}\n", log.display()));
    std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  outbox:\n    queue_flush:\n      spool: {}\n      handler: [\"{}\"]\n      keep_done: 1h\n",
            spool.display(),
            h.display()
        ),
    )
}

fn enqueue_as_other(s: &Scratch, c: &Path, text: &str) {
    use std::io::Write;
    let mut cmd = s.runner(c);
    cmd.args(["enqueue", "outbox"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.uid(OTHER).gid(OTHER); // std drops supplementary groups when root sets a uid
    let mut child = cmd.spawn().unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "a producer who owns the spool cannot enqueue: {}", stderr(&o));
}

/// Item 1: the producer owns the spool and plants links; root follows none of them, and the
/// producer still enqueues and root still handles its item.
#[test]
fn spool_links_a_producer_planted_are_never_followed() {
    let s = Scratch::new("hostile-spool");
    open_to_others(&s);
    let (conf, victim_dir) = root_victims(&s);
    let spool = s.path("spool");
    let log = s.path("handled");
    let c = queue_config(&s, &spool, &log);
    let o = s.runner(&c).args(["once", "outbox"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    chown_r(&spool, OTHER);

    // `runner check` names the spool owned by someone who is neither root nor the job's user.
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("owned by uid 1000, neither root nor the job's user"), "{}", stderr(&o));

    let sp = spool.display();
    enqueue_as_other(&s, &c, "first\n");
    sh_other(&format!(
        "ln -s {conf} {sp}/.stats.tmp; mv {sp}/done {sp}/done.real; ln -s {dir} {sp}/done",
        conf = conf.display(),
        dir = victim_dir.display()
    ));
    let o = s.runner(&c).args(["once", "outbox"]).output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "a flush through a linked done/ succeeded: {err}");
    assert!(err.contains(&format!("{sp}/done is a symlink")), "{err}");
    assert_victims_intact(&conf, &victim_dir, &err);

    // new/ a link to root's directory: nothing of root's is moved into failed/.
    sh_other(&format!(
        "rm {sp}/done; mv {sp}/done.real {sp}/done; mv {sp}/new {sp}/new.real; ln -s {} {sp}/new",
        victim_dir.display()
    ));
    let o = s.runner(&c).args(["once", "outbox"]).output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains(&format!("{sp}/new is a symlink")), "{err}");
    assert_victims_intact(&conf, &victim_dir, &err);
    assert!(std::fs::read_dir(spool.join("failed")).unwrap().next().is_none(), "{err}");

    // Links as entries: in done/ (old, so retention judges it) and a fifo in new/.
    sh_other(&format!(
        "rm {sp}/new; mv {sp}/new.real {sp}/new; ln -s {dir} {sp}/done/old-link; touch -h -d '3 days ago' {sp}/done/old-link; mkfifo {sp}/new/1700000000000.fifo:0,0",
        dir = victim_dir.display()
    ));
    let o = s.runner(&c).args(["once", "outbox"]).output().unwrap();
    let err = stderr(&o);
    assert!(err.contains("1 done, 0 retried, 0 failed, 1 rejected"), "{err}");
    assert_eq!(lines(&log), ["first"], "root did not handle the producer's item: {err}");
    assert_victims_intact(&conf, &victim_dir, &err);
    assert!(std::fs::symlink_metadata(spool.join("done/old-link")).is_err(), "the old link was kept: {err}");
    assert!(!std::fs::symlink_metadata(spool.join(".stats")).unwrap().file_type().is_symlink());
    assert!(std::fs::symlink_metadata(spool.join(".stats.tmp")).is_err(), "{err}");

    // Writable by everyone: `runner check` says so.
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(stderr(&o).contains("is writable by everyone (mode 0777)"), "{}", stderr(&o));
    // Owned by the job's user (or root) and not writable by others: no warning.
    chown_r(&spool, 0);
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o750)).unwrap();
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

fn hello_config(s: &Scratch) -> PathBuf {
    s.write("supervisor.yaml", "version: 1\njobs:\n  hello:\n    every: 1h\n    run: \"echo hi\"\n")
}

fn once_with_dirs(s: &Scratch, c: &Path, state: &Path, run: &Path) -> Output {
    let mut cmd = s.runner(c);
    cmd.env("RUNNER_STATE_DIR", state).env("RUNNER_RUNTIME_DIR", run).args(["once", "hello"]);
    cmd.output().unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    v.sort();
    v
}

/// Item 2: a state dir that is another user's link in a sticky world-writable directory, and
/// a runtime dir inside another user's directory, are refused before anything is written;
/// a tutorial dir under a sticky directory still works for the user who made it.
#[test]
fn state_and_runtime_dirs_where_another_user_steers_are_refused() {
    let s = Scratch::new("hostile-dirs");
    open_to_others(&s);
    let c = hello_config(&s);
    let victim = s.path("victim");
    std::fs::create_dir(&victim).unwrap();
    let public = s.path("public");
    std::fs::create_dir(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let state = public.join("STATE");
    sh_other(&format!("ln -s {} {}", victim.display(), state.display()));
    let o = once_with_dirs(&s, &c, &state, &s.path("run"));
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("is a symlink owned by uid 1000"), "{err}");
    assert_eq!(listing(&victim), Vec::<String>::new(), "root wrote through the link: {err}");

    // A runtime dir inside uid 1000's own directory: refused, nothing created there.
    let theirs = public.join("theirs");
    sh_other(&format!("mkdir {}", theirs.display()));
    let o = once_with_dirs(&s, &c, &s.path("state"), &theirs.join("run"));
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains(&format!("{} is owned by uid 1000", theirs.display())), "{err}");
    assert_eq!(listing(&theirs), Vec::<String>::new(), "{err}");

    // The README's tutorial: uid 1000 keeps its state in its own dir under a sticky one.
    let tutorial = public.join("runner-first");
    sh_other(&format!("mkdir {}", tutorial.display()));
    let mut cmd = s.runner(&c);
    cmd.env("RUNNER_STATE_DIR", tutorial.join("state")).env("RUNNER_RUNTIME_DIR", tutorial.join("run"));
    cmd.args(["once", "hello"]);
    let o = as_other(cmd);
    assert!(o.status.success(), "the tutorial as its owner: {}", stderr(&o));
    assert!(tutorial.join("state/runs.ring").exists());
    // ... and root refuses it, since uid 1000 could swap it for a link.
    let o = once_with_dirs(&s, &c, &tutorial.join("state"), &tutorial.join("run"));
    assert!(!o.status.success() && stderr(&o).contains("is owned by uid 1000"), "{}", stderr(&o));
}

/// Runs `cmd` to its end within `limit`; a hang is killed and fails the test.
fn finishes(mut cmd: Command, limit: Duration, what: &str) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            panic!("{what} hung for {limit:?}");
        }
    }
}

/// The largest resident set (KiB) of the children this test process has waited for.
fn children_max_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap().max_rss()
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// Item 3: a fifo given as the config, `/dev/zero` as the config, a fifo as the ring and
/// `TZ` naming `/dev/zero` or a 10 MB file: every command ends with an error naming the
/// file, within seconds and a few MB.
#[test]
fn special_files_neither_hang_nor_fill_memory() {
    let s = Scratch::new("hostile-special");
    let limit = Duration::from_secs(20);
    let fifo = s.path("f.yaml");
    mkfifo(&fifo);
    for cmd in ["status", "health", "logs"] {
        let mut c = s.runner(&fifo);
        c.args([cmd, "--config", &fifo.display().to_string()]);
        let o = finishes(c, limit, &format!("runner {cmd} --config FIFO"));
        assert!(!o.status.success(), "{cmd}: {}", stderr(&o));
        assert!(stderr(&o).contains("not a regular file"), "{cmd}: {}", stderr(&o));
    }
    let mut c = s.runner(Path::new("/dev/zero"));
    c.args(["status", "--config", "/dev/zero"]);
    let o = finishes(c, limit, "runner status --config /dev/zero");
    assert!(!o.status.success() && stderr(&o).contains("not a regular file"), "{}", stderr(&o));

    // A fifo where the ring belongs: every command ends, and so does the daemon at TERM.
    let cfg = hello_config(&s);
    std::fs::create_dir_all(s.path("state")).unwrap();
    let ring = s.path("state/runs.ring");
    mkfifo(&ring);
    for args in [&["once", "hello"][..], &["status"], &["logs"], &["health"]] {
        let mut c = s.runner(&cfg);
        c.args(args);
        let o = finishes(c, limit, &format!("runner {args:?} with a fifo ring"));
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert!(out.contains("runs.ring is a fifo, not a regular file"), "{args:?}: {out}");
    }
    let mut d = Daemon::start(&s, &cfg);
    std::thread::sleep(Duration::from_millis(1500));
    if d.child.try_wait().unwrap().is_none() {
        d.signal(nix::sys::signal::Signal::SIGTERM);
    }
    d.wait_exit(Duration::from_secs(15));
    assert!(d.log_text().contains("runs.ring is a fifo"), "{}", d.log_text());
    std::fs::remove_file(&ring).unwrap();

    // TZ naming /dev/zero or a 10 MB file: UTC with a warning, in a few MB.
    let big = s.path("big.tzif");
    let mut tzif = std::fs::read("/usr/share/zoneinfo/UTC").unwrap();
    tzif.resize(10 << 20, 0);
    std::fs::write(&big, tzif).unwrap();
    for (tz, why) in [("/dev/zero", "not a regular file"), (big.to_str().unwrap(), "over 256 KiB")] {
        let mut c = s.runner(&cfg);
        c.env("TZ", tz).arg("status");
        let o = finishes(c, limit, &format!("TZ={tz} runner status"));
        assert!(o.status.success(), "TZ={tz}: {}", stderr(&o));
        assert!(stderr(&o).contains("cannot use the local time zone") && stderr(&o).contains(why), "{}", stderr(&o));
    }
    // Before: 1 GB for `status --config /dev/zero`, 1.6 GB for TZ=/dev/zero.
    let rss = children_max_rss_kib();
    assert!(rss < 100 * 1024, "a child reached {rss} KiB");
}

/// The sequence numbers in the ring (runs and daemon events), as `runner logs --json` reads them.
fn ring_seqs(s: &Scratch, c: &Path) -> Vec<u64> {
    let o = s.runner(c).args(["logs", "--json"]).output().unwrap();
    stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["kind"] != "damage")
        .filter_map(|v| v["seq"].as_u64())
        .collect()
}

/// `hello`'s run count and last start as `runner status --json` says them.
fn hello_runs(s: &Scratch, c: &Path) -> u64 {
    let o = s.runner(c).args(["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o)));
    let jobs = v["jobs"].as_array().unwrap();
    jobs.iter().find(|j| j["name"] == "hello").unwrap()["runs"].as_u64().unwrap()
}

/// One `runner once hello`; checks that every record it wrote (the run, and any event
/// about the ring) got a number above every number given before, and that the job state
/// counted the run. Returns its stderr.
fn run_once(s: &Scratch, c: &Path, seen: &mut u64, runs: &mut u64, when: &str) -> String {
    let before = ring_seqs(s, c);
    let o = s.runner(c).args(["once", "hello"]).output().unwrap();
    assert!(o.status.success(), "{when}: {}", stderr(&o));
    let new: Vec<u64> = ring_seqs(s, c).into_iter().filter(|q| !before.contains(q)).collect();
    assert!(!new.is_empty(), "{when}: no record: {}", stderr(&o));
    assert!(new.iter().all(|q| q > seen), "{when}: run ids {new:?} given again (had up to {seen}): {}", stderr(&o));
    *seen = *new.iter().max().unwrap();
    *runs += 1;
    assert_eq!(hello_runs(s, c), *runs, "{when}: the job state stopped following runs");
    stderr(&o)
}

/// Item 4: a ring with its header zeroed, cut to 0, 100 bytes or half, or its newest record
/// damaged, never gives a run id again, the job state follows new runs, and a cut is reported.
#[test]
fn a_damaged_ring_never_reuses_run_ids() {
    use std::os::unix::fs::FileExt;
    let s = Scratch::new("hostile-ring");
    let c = hello_config(&s);
    let ring = s.path("state/runs.ring");
    let (mut seen, mut runs) = (0, 0);
    for _ in 0..6 {
        run_once(&s, &c, &mut seen, &mut runs, "before any damage");
    }
    // dd if=/dev/zero of=runs.ring bs=64 count=1 conv=notrunc
    std::fs::OpenOptions::new().write(true).open(&ring).unwrap().write_all_at(&[0u8; 64], 0).unwrap();
    let err = run_once(&s, &c, &mut seen, &mut runs, "header zeroed");
    assert!(
        err.contains("damaged header")
            || stdout(&s.runner(&c).args(["logs"]).output().unwrap()).contains("damaged header"),
        "{err}"
    );
    for cut in [0u64, 100] {
        for _ in 0..2 {
            run_once(&s, &c, &mut seen, &mut runs, "before the cut");
        }
        std::fs::OpenOptions::new().write(true).open(&ring).unwrap().set_len(cut).unwrap();
        run_once(&s, &c, &mut seen, &mut runs, &format!("cut to {cut} bytes"));
    }
    // The newest record damaged in place: its number is not given again, even with the job
    // files gone (they would say it too).
    let newest = seen;
    let image = std::fs::read(&ring).unwrap();
    let at = (64..image.len() - 16)
        .step_by(8)
        .find(|&p| image[p..p + 2] == *b"RR" && u64::from_le_bytes(image[p + 8..p + 16].try_into().unwrap()) == newest)
        .expect("the newest record");
    // Its length field and a byte of its body: no longer a record a scan reads.
    let ringf = std::fs::OpenOptions::new().write(true).open(&ring).unwrap();
    ringf.write_all_at(&[0xff, 0xff], at as u64 + 2).unwrap();
    ringf.write_all_at(&[0xff; 8], at as u64 + 40).unwrap();
    // The job state in both its copies: state_dir's and runtime_dir's (a tmpfs).
    std::fs::remove_dir_all(s.path("state/jobs")).unwrap();
    std::fs::remove_dir_all(s.path("run/state")).unwrap();
    runs = 0;
    run_once(&s, &c, &mut seen, &mut runs, "newest record damaged");
    assert!(seen > newest);

    // Cut to half: `logs` says what was lost, and the next writer reports the cut.
    for _ in 0..6 {
        run_once(&s, &c, &mut seen, &mut runs, "before the half cut");
    }
    let size = std::fs::metadata(&ring).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&ring).unwrap().set_len(size / 2).unwrap();
    let o = s.runner(&c).args(["logs"]).output().unwrap();
    assert!(stderr(&o).contains("damaged"), "logs said nothing of the cut: {}", stderr(&o));
    run_once(&s, &c, &mut seen, &mut runs, "cut to half");
    let o = s.runner(&c).args(["logs"]).output().unwrap();
    assert!(stdout(&o).contains(&format!("was cut to {} of its {size} bytes", size / 2)), "{}", stdout(&o));
}

/// Item 5: sweeps that match everything are refused from the pattern itself, not from a
/// few sample names; narrow ones still pass.
#[test]
fn match_everything_sweeps_are_refused_by_pattern() {
    let s = Scratch::new("hostile-sweep");
    let check = |m: &str| {
        let c = s.write(
            "supervisor.yaml",
            &format!("version: 1\njobs:\n  sweep:\n    every: 1h\n    orphan_sweep:\n      match: {{ {m} }}\n"),
        );
        s.runner(&c).arg("check").output().unwrap()
    };
    for m in ["user: root", "name: \"??*\"", "cmdline: \"..\"", r#"cmdline: "\\w""#, "cmdline: \"ab|.\"", "name: \"*\""]
    {
        let o = check(m);
        assert!(!o.status.success(), "{m} passed the check: {}", stdout(&o));
        assert!(stderr(&o).contains("covers every process"), "{m}: {}", stderr(&o));
    }
    for m in ["name: \"ci-*\"", "user: \"1000\"", "cmdline: \"^/usr/bin/sleep\"", "user: root, name: \"ci-*\""] {
        let o = check(m);
        assert!(o.status.success(), "{m} was refused: {}", stderr(&o));
    }
}

/// Item 6: `WATCHDOG_USEC=1` asks for a ping every 0 us; the daemon pings at its floor
/// (50 ms) with a warning, still runs its jobs, and stops at TERM.
#[test]
fn a_tiny_watchdog_interval_is_clamped_with_a_warning() {
    use std::os::unix::net::UnixDatagram;
    let s = Scratch::new("hostile-watchdog");
    let ticks = s.path("ticks");
    let c = s.write(
        "supervisor.yaml",
        &format!("version: 1\njobs:\n  tick:\n    every: 200ms\n    run: \"echo >> {}\"\n", ticks.display()),
    );
    let sock_path = s.path("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut d = Daemon::start_with(&s, &c, &[("NOTIFY_SOCKET", sock_path.to_str().unwrap()), ("WATCHDOG_USEC", "1")]);
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = std::time::Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_secs(2) {
        if let Ok(n) = sock.recv(&mut buf) {
            pings += String::from_utf8_lossy(&buf[..n]).matches("WATCHDOG=1").count();
        }
    }
    let spent = start.elapsed();
    // At the 50 ms floor: about 40 in 2 s (a datagram may carry one ping for several).
    let most = (spent.as_millis() / 50 + 5) as usize;
    assert!(pings >= 5 && pings <= most, "{pings} pings in {spent:?}; log:\n{}", d.log_text());
    wait_for(Duration::from_secs(20), "the tick job to run", || lines(&ticks).len() >= 3);
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let t = std::time::Instant::now();
    d.wait_exit(Duration::from_secs(15));
    assert!(t.elapsed() < Duration::from_secs(10), "stopping took {:?}", t.elapsed());
    let log = d.log_text();
    assert!(log.contains("WATCHDOG_USEC=1 asks for a ping every 0 us; pinging every 50 ms instead"), "{log}");

    // The recipe: a socket that does not exist.
    let mut d = Daemon::start_with(&s, &c, &[("NOTIFY_SOCKET", "/nonexistent"), ("WATCHDOG_USEC", "1")]);
    let before = lines(&ticks).len();
    wait_for(Duration::from_secs(20), "the tick job to run", || lines(&ticks).len() >= before + 3);
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let t = std::time::Instant::now();
    d.wait_exit(Duration::from_secs(15));
    assert!(t.elapsed() < Duration::from_secs(10), "stopping took {:?}", t.elapsed());
}

fn pid_in(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Item 7: an `on_failure` and an `on_alert` hook stuck in `sleep 300` are recorded as
/// running while they run, end at SIGTERM within the kill grace (not after 300 s), and how
/// they ended is a `hook` record.
#[test]
fn hooks_stop_like_runs_and_are_tracked_and_recorded() {
    let s = Scratch::new("hostile-hooks");
    let (fpid, apid) = (s.path("failure.pid"), s.path("alert.pid"));
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  fail:\n    every: 300ms\n    timeout: 10m\n    kill_grace: 2s\n    run: \"exit 3\"\n    on_failure: \"echo $$ > {}; exec sleep 300\"\n  probe:\n    every: 300ms\n    timeout: 10m\n    kill_grace: 2s\n    check:\n      probe: exec\n      command: \"exit 2\"\n      cooldown: 1h\n      on_alert: \"echo $$ > {}; exec sleep 300\"\n",
            fpid.display(),
            apid.display()
        ),
    );
    let mut d = Daemon::start(&s, &c);
    wait_for(Duration::from_secs(30), "both hooks to start", || pid_in(&fpid).is_some() && pid_in(&apid).is_some());
    let (f, a) = (pid_in(&fpid).unwrap(), pid_in(&apid).unwrap());
    for (job, pid) in [("fail", f), ("probe", a)] {
        let running = s.path(&format!("run/jobs/{job}.running"));
        wait_for(Duration::from_secs(10), &format!("{job}'s hook group to be recorded as running"), || {
            std::fs::read_to_string(&running).is_ok_and(|t| t.contains(&format!("\"pgid\":{pid}")))
        });
    }
    d.signal(nix::sys::signal::Signal::SIGTERM);
    let t = std::time::Instant::now();
    d.wait_exit(Duration::from_secs(60));
    assert!(t.elapsed() < Duration::from_secs(20), "stopping waited {:?} for the hooks", t.elapsed());
    wait_for(Duration::from_secs(10), "the hooks to be gone", || !alive(f) && !alive(a));
    let o = s.runner(&c).args(["logs", "--kind", "hook"]).output().unwrap();
    let text = stdout(&o);
    for (job, what) in [("fail", "on_failure"), ("probe", "on_alert")] {
        let line = format!("hook {job} stopped (signal 15) after ");
        assert!(
            text.lines().any(|l| l.contains(&line) && l.contains(&format!("{what} hook: ended by runner"))),
            "{text}"
        );
    }
}

/// Item 11: `checks::for_n_cooldown_and_recovery_through_the_daemon` saw `level: crit` in
/// `status` after the on_recover hook ran: the product raced (the daemon's writer wrote the
/// new level a moment after the hook started). What a hook reacts to is on disk before it
/// starts: `runner status` run by the hook itself sees the level it reacts to.
#[test]
fn a_hook_sees_the_state_its_event_left() {
    let s = Scratch::new("hostile-hook-state");
    let data = s.path("data");
    std::fs::write(&data, vec![b'x'; 5000]).unwrap();
    let cfg = s.path("supervisor.yaml");
    let status = |tag: &str| {
        format!(
            "'{BIN} --config {} --state-dir {} --runtime-dir {} status --json > {}'",
            cfg.display(),
            s.path("state").display(),
            s.path("run").display(),
            s.path(tag).display()
        )
    };
    s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  size:\n    every: 200ms\n    check:\n      metric: file_size\n      path: {}\n      warn: 100\n      crit: 1000\n      on_alert: {}\n      on_recover: {}\n",
            data.display(),
            status("at-alert"),
            status("at-recover")
        ),
    );
    let level = |tag: &str| -> Option<String> {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(s.path(tag)).ok()?).ok()?;
        let c = v["checks"].as_array()?.iter().find(|c| c["name"] == "size")?.clone();
        Some(c["level"].as_str()?.to_string())
    };
    let mut d = Daemon::start(&s, &cfg);
    wait_for(Duration::from_secs(20), "the alert hook's status", || level("at-alert").is_some());
    std::fs::write(&data, b"small").unwrap();
    wait_for(Duration::from_secs(20), "the recover hook's status", || level("at-recover").is_some());
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(15));
    assert_eq!(level("at-alert").as_deref(), Some("crit"), "{}", d.log_text());
    assert_eq!(level("at-recover").as_deref(), Some("ok"), "{}", d.log_text());
}

/// Item 10: a config named through root's link to another user's link is refused without
/// echoing the target's first line; a UTF-8 byte order mark is not a second document.
#[test]
fn config_links_of_another_user_are_refused_and_a_bom_is_read() {
    let s = Scratch::new("hostile-config-link");
    open_to_others(&s);
    let secret = s.write("secret", "SECRET-LINE: [unclosed\n");
    let public = s.path("public");
    std::fs::create_dir(&public).unwrap();
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let theirs = public.join("theirs.yaml");
    sh_other(&format!("ln -s {} {}", secret.display(), theirs.display()));
    let ours = s.path("supervisor.yaml");
    std::os::unix::fs::symlink(&theirs, &ours).unwrap();
    let o = s.runner(&ours).args(["check", "--config", &ours.display().to_string()]).output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains(&format!("{} is a symlink owned by uid 1000", theirs.display())), "{err}");
    assert!(!err.contains("SECRET-LINE"), "the target's content was echoed: {err}");

    let bom = s.path("bom.yaml");
    std::fs::write(&bom, "\u{feff}version: 1\njobs:\n  hello:\n    every: 1h\n    run: \"true\"\n").unwrap();
    let o = s.runner(&bom).args(["check", "--config", &bom.display().to_string()]).output().unwrap();
    assert!(o.status.success(), "a BOM: {}", stderr(&o));
}

fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Item 8: checks a reload removed give back their open /proc readers: the daemon's
/// descriptors come back to where they were after checks come and go five times.
#[test]
fn a_reload_that_removes_checks_gives_back_their_descriptors() {
    let s = Scratch::new("hostile-reload-fds");
    let tick = "version: 1\njobs:\n  tick:\n    every: 1h\n    run: \"true\"\n";
    let mut many = tick.to_string();
    for i in 0..20 {
        many.push_str(&format!("  load{i}:\n    every: 200ms\n    check: {{metric: load1, warn: 1000}}\n"));
    }
    let c = s.write("supervisor.yaml", tick);
    let mut d = Daemon::start(&s, &c);
    let pid = d.child.id();
    wait_for(Duration::from_secs(20), "the daemon to start", || d.log_text().contains("runner started"));
    std::thread::sleep(Duration::from_millis(500));
    let base = fds_of(pid);
    for round in 0..5 {
        s.write("supervisor.yaml", &many);
        d.signal(nix::sys::signal::Signal::SIGHUP);
        wait_for(Duration::from_secs(20), "the checks to sample", || {
            (0..20).all(|i| s.path(&format!("run/checks/load{i}.json")).exists())
        });
        std::thread::sleep(Duration::from_millis(600));
        let with = fds_of(pid);
        assert!(with >= base + 20, "round {round}: 20 load checks hold {with} fds, {base} without");
        s.write("supervisor.yaml", tick);
        d.signal(nix::sys::signal::Signal::SIGHUP);
        wait_for(Duration::from_secs(20), "the reload", || d.log_text().matches("reloaded").count() >= 2 * round + 2);
        std::thread::sleep(Duration::from_millis(600));
        for i in 0..20 {
            let _ = std::fs::remove_file(s.path(&format!("run/checks/load{i}.json")));
        }
    }
    let after = fds_of(pid);
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(15));
    assert!(after <= base + 2, "{after} fds after five reloads, {base} before");
}

/// Item 10: an error quoting a huge value shows a bounded part of it.
#[test]
fn errors_cut_the_values_they_quote() {
    let s = Scratch::new("hostile-long-value");
    let long = "u".repeat(1 << 20);
    let c = s.write(
        "supervisor.yaml",
        &format!("version: 1\njobs:\n  hello:\n    every: 1h\n    user: {long}\n    run: \"true\"\n"),
    );
    let o = s.runner(&c).arg("check").output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.len() < 16 << 10, "{} bytes of error", err.len());
    assert!(err.contains("more bytes not shown"), "{}", &err[..err.len().min(2000)]);
}

/// Item 10: `group: root` in a runner that is not root is an error, not ignored.
#[test]
fn a_group_a_non_root_runner_cannot_take_is_refused() {
    let s = Scratch::new("hostile-group");
    open_to_others(&s);
    let c =
        s.write("supervisor.yaml", "version: 1\njobs:\n  hello:\n    every: 1h\n    group: root\n    run: \"true\"\n");
    let mut cmd = s.runner(&c);
    cmd.arg("check");
    let o = as_other(cmd);
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("runs in group `root`, but runner runs as uid 1000 and cannot switch groups"),
        "{}",
        stderr(&o)
    );
    // As root it is fine.
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Item 10: a burst of SIGHUPs that change nothing is one reload record (and a count in the
/// next), not hundreds evicting the run history.
#[test]
fn a_burst_of_sighups_is_coalesced_in_the_ring() {
    let s = Scratch::new("hostile-sighups");
    let ticks = s.path("ticks");
    let text = format!("version: 1\njobs:\n  tick:\n    every: 300ms\n    run: \"echo >> {}\"\n", ticks.display());
    let c = s.write("supervisor.yaml", &text);
    let mut d = Daemon::start(&s, &c);
    wait_for(Duration::from_secs(20), "a tick", || !lines(&ticks).is_empty());
    for _ in 0..300 {
        d.signal(nix::sys::signal::Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(3));
    }
    let loaded = || d.log_text().matches("reloaded ").count();
    wait_for(Duration::from_secs(30), "the reloads", || loaded() >= 5);
    std::thread::sleep(Duration::from_millis(500));
    s.write("supervisor.yaml", &format!("{text}  other:\n    every: 1h\n    run: \"true\"\n"));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(Duration::from_secs(30), "the real reload", || d.log_text().contains(": 2 job(s)"));
    std::thread::sleep(Duration::from_millis(500));
    let in_log = loaded();
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(15));
    let o = s.runner(&c).args(["logs", "--kind", "daemon"]).output().unwrap();
    let text = stdout(&o);
    let records: Vec<&str> = text.lines().filter(|l| l.contains("reloaded ")).collect();
    assert_eq!(records.len(), 2, "{in_log} reloads in the log, recorded:\n{text}");
    assert!(records[1].contains("2 job(s) (") && records[1].contains("reload(s) that changed nothing"), "{text}");
}

/// Item 10: a config runner refuses does not choose where `status` reads: its `runtime_dir:`
/// pointing at a saved plan its owner wrote is not shown as what runs.
#[test]
fn a_refused_config_does_not_choose_where_status_reads() {
    let s = Scratch::new("hostile-refused-dirs");
    let evil_run = s.path("evil-run");
    std::fs::create_dir_all(&evil_run).unwrap();
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\nstate_dir: {}\nruntime_dir: {}\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n",
            s.path("evil-state").display(),
            evil_run.display()
        ),
    );
    let saved = serde_json::json!({"loaded_at": "2026-01-01T00:00:00Z", "files": [{"path": c, "text": "version: 1\njobs:\n  planted-job:\n    every: 1h\n    run: \"true\"\n"}]});
    std::fs::write(evil_run.join("loaded.json"), saved.to_string()).unwrap();
    nix::unistd::chown(&c, Some(nix::unistd::Uid::from_raw(OTHER)), None).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["status", "--config", &c.display().to_string()])
        .env_remove("RUNNER_STATE_DIR")
        .env_remove("RUNNER_RUNTIME_DIR");
    let o = cmd.output().unwrap();
    let out = format!("{}{}", stdout(&o), stderr(&o));
    assert!(out.contains("refusing a config file owned by uid 1000"), "{out}");
    assert!(!out.contains("planted-job"), "status showed the plan saved where the refused config pointed: {out}");
}
