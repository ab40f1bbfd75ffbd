//! packaging/runner.init, the init script for BusyBox init and sysvinit, driven as such a box
//! drives it: by BusyBox `sh` with BusyBox's `start-stop-daemon` (and nothing else on PATH),
//! around the real daemon and its `--pidfile`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{BIN, Scratch, skip_emulated, skip_missing, stderr, stdout, wait_for};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/runner.init");

/// A directory of BusyBox applet links, the script's whole PATH.
fn applets(s: &Scratch) -> Option<PathBuf> {
    let Some(bb) = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(Path::new).find(|p| p.exists()) else {
        skip_missing("BusyBox (apt-get install busybox-static)");
        return None;
    };
    let dir = s.path("bin");
    std::fs::create_dir_all(&dir).unwrap();
    for applet in ["sh", "start-stop-daemon", "cat", "rm", "sleep"] {
        std::os::unix::fs::symlink(bb, dir.join(applet)).unwrap();
    }
    Some(dir)
}

struct Init<'a> {
    s: &'a Scratch,
    bin: PathBuf,
    config: PathBuf,
}

impl Init<'_> {
    fn pidfile(&self) -> PathBuf {
        self.s.path("runner.pid")
    }

    fn run(&self, action: &str) -> Output {
        Command::new(self.bin.join("sh"))
            .arg(SCRIPT)
            .arg(action)
            .env_clear()
            .env("PATH", &self.bin)
            .env("DAEMON", BIN)
            .env("CONFIG", &self.config)
            .env("PIDFILE", self.pidfile())
            .env("RUNNER_DEFAULTS", self.s.path("no-defaults"))
            .env("STOP_TIMEOUT", "30")
            // A BusyBox box has no /lib/lsb/init-functions; this Debian host may.
            .env("USE_LSB", "no")
            // As the test harness gives every daemon: the scratch dir's state, no journald,
            // no syslog.
            .env("RUNNER_STATE_DIR", self.s.path("state"))
            .env("RUNNER_RUNTIME_DIR", self.s.path("run"))
            .env("RUNNER_JOURNAL_SOCKET", self.s.path("no-journal-socket"))
            .env("RUNNER_SYSLOG_SOCKET", self.s.path("no-syslog-socket"))
            .output()
            .unwrap()
    }

    /// Runs `action`, failing the test unless it exits `code`.
    fn expect(&self, action: &str, code: i32) -> String {
        let o = self.run(action);
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(code), "`{action}` exited {:?}:\n{out}", o.status);
        out
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(self.pidfile()).unwrap().trim().parse().unwrap()
    }
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
}

/// The `sleep 300` processes the long job started (their pids in `longs`) that still run.
fn live_sleeps(longs: &Path) -> Vec<i32> {
    let text = std::fs::read_to_string(longs).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|p| alive(*p))
        .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c == b"sleep\x00300\x00"))
        .collect()
}

#[test]
fn start_reload_status_stop_and_a_stale_pid_file() {
    if skip_emulated(
        "start-stop-daemon -x matches the pid file's /proc/PID/exe to $DAEMON, and that of the emulated runner is qemu-aarch64-static",
    ) {
        return;
    }
    let s = Scratch::new("init-script");
    let Some(bin) = applets(&s) else { return };
    let (ticks, longs, added) = (s.path("ticks"), s.path("longs"), s.path("added"));
    let jobs = format!(
        "jobs:\n  tick:\n    every: 1s\n    run: \"echo tick >> {}\"\n  long:\n    every: 1s\n    run: \"echo $$ >> {}; exec sleep 300\"\n",
        ticks.display(),
        longs.display()
    );
    let config = s.write("supervisor.yaml", &format!("version: 1\n{jobs}"));
    let init = Init { s: &s, bin, config: config.clone() };
    let limit = Duration::from_secs(30);

    init.expect("status", 3);
    let out = init.expect("start", 0);
    let pid = init.pid();
    assert!(out.contains(&format!("runner (pid {pid})")), "{out}");
    assert!(alive(pid));
    wait_for(limit, "a tick and the long job", || lines(&ticks) >= 1 && !live_sleeps(&longs).is_empty());
    let out = init.expect("status", 0);
    assert!(out.contains(&format!("runner is running (pid {pid})")), "{out}");
    init.expect("start", 0);
    assert_eq!(init.pid(), pid, "a second start leaves the running daemon be");

    // A bad config: the script says why and the daemon keeps the old one, and runs it.
    s.write("supervisor.yaml", &format!("version: 1\n{jobs}  broken:\n    every: never\n    run: \"true\"\n"));
    let out = init.expect("reload", 1);
    assert!(out.contains(&format!("{}:10:", config.display())) && out.contains("the running config stays"), "{out}");
    let before = lines(&ticks);
    wait_for(limit, "ticks after a refused reload", || lines(&ticks) > before);
    init.expect("status", 0);
    assert_eq!(init.pid(), pid);
    // A good one: its new job fires.
    let extra = format!("  added:\n    every: 1s\n    run: \"echo added >> {}\"\n", added.display());
    s.write("supervisor.yaml", &format!("version: 1\n{jobs}{extra}"));
    init.expect("reload", 0);
    wait_for(limit, "the job the reload added", || lines(&added) >= 1);
    assert_eq!(init.pid(), pid);

    // stop ends the running job, and the daemon, and removes the pid file.
    let sleeps = live_sleeps(&longs);
    assert_eq!(sleeps.len(), 1, "{sleeps:?}");
    init.expect("stop", 0);
    assert!(!alive(pid), "the daemon outlived stop");
    assert!(!alive(sleeps[0]), "the running job outlived stop");
    assert!(!init.pidfile().exists());
    init.expect("status", 3);
    init.expect("stop", 0);

    // kill -9 leaves the pid file behind: status says so, and the next start is not stopped
    // by it.
    init.expect("start", 0);
    let killed = init.pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(killed), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_for(limit, "the killed daemon to go", || !alive(killed));
    assert!(init.pidfile().exists());
    let out = init.expect("status", 1);
    assert!(out.contains("not running, but"), "{out}");
    let out = init.expect("start", 0);
    let again = init.pid();
    assert_ne!(again, killed, "{out}");
    assert!(alive(again));
    init.expect("status", 0);
    init.expect("stop", 0);
    assert!(!alive(again));
    // The job the killed daemon left running was ended by the next start (its leftovers).
    wait_for(limit, "no job left running", || live_sleeps(&longs).is_empty());
}

/// The script refuses to start on a config `runner check` refuses, and says why.
#[test]
fn start_refuses_a_bad_config() {
    let s = Scratch::new("init-script-bad");
    let Some(bin) = applets(&s) else { return };
    let config = s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: never\n    run: \"true\"\n");
    let init = Init { s: &s, bin, config: config.clone() };
    let out = init.expect("start", 6);
    assert!(out.contains(&format!("{}:4:", config.display())), "{out}");
    assert!(!init.pidfile().exists());
    init.expect("status", 3);
}

/// `--pidfile` directly: refused in a directory others may write, refused to a second daemon
/// while the first holds it, removed at a clean stop.
#[test]
fn pidfile_is_held_and_refused_where_others_could_replace_it() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("pidfile");
    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 1h\n    run: \"true\"\n");
    let open = s.path("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = s.runner(&c).arg("run").arg("--pidfile").arg(open.join("runner.pid")).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is writable by others (mode 0777)") && stderr(&o).contains("chmod go-w"),
        "{}",
        stderr(&o)
    );
    assert!(!open.join("runner.pid").exists());

    let pidfile = s.path("runner.pid");
    let log = s.path("daemon.log");
    let child = s
        .runner(&c)
        .arg("run")
        .arg("--pidfile")
        .arg(&pidfile)
        .stdin(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut d = common::Daemon { child, log };
    let pid = d.child.id().to_string();
    wait_for(Duration::from_secs(30), "the pid file", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|t| t.trim() == pid)
    });
    let o = s
        .runner(&c)
        .env("RUNNER_STATE_DIR", s.path("state2"))
        .env("RUNNER_RUNTIME_DIR", s.path("run2"))
        .arg("run")
        .arg("--pidfile")
        .arg(&pidfile)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("held by a running runner (pid {pid})")), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), pid, "the second daemon left it be");
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(30)).success(), "{}", d.log_text());
    assert!(!pidfile.exists(), "a clean stop removes it");
}
