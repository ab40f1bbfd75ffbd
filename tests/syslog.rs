//! The syslog sink against a real BusyBox `syslogd`. BusyBox syslogd always listens on
//! `/dev/log`, so each test starts it in a mount namespace of its own (`unshare -m`, private
//! propagation) with a tmpfs on `/dev` and the few device nodes a run needs, and runs runner in
//! that namespace too: nothing is written to the machine's own `/dev/log`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{BIN, Daemon, Scratch, skip_missing, wait_for};

/// Mounts a private /dev, starts `busybox syslogd -n $SYSLOGD_ARGS` (its pid in
/// `$SYSLOGD_PID`), waits for its /dev/log; then runs the rest of the script.
const PRIVATE_DEV: &str = r#"
set -e
mount -t tmpfs -o mode=755,size=64k tmpfs /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/random c 1 8
mknod -m 666 /dev/urandom c 1 9
"$BUSYBOX" syslogd -n $SYSLOGD_ARGS &
echo $! > "$SYSLOGD_PID"
i=0
while [ ! -S /dev/log ]; do
    i=$((i + 1))
    [ "$i" -lt 1000 ] || { echo "syslogd made no /dev/log" >&2; exit 97; }
    sleep 0.01
done
"#;

fn busybox() -> Option<PathBuf> {
    let root = nix::unistd::geteuid().is_root();
    let unshare = Command::new("unshare").arg("--version").output().is_ok_and(|o| o.status.success());
    let found = ["/bin/busybox", "/usr/bin/busybox"].into_iter().map(PathBuf::from).find(|p| p.exists());
    if !root || !unshare || found.is_none() {
        skip_missing("root, unshare and BusyBox (apt-get install busybox-static util-linux)");
        return None;
    }
    found
}

/// The syslogd a test started (pid from `$SYSLOGD_PID`), ended on drop.
struct Syslogd(PathBuf);

impl Drop for Syslogd {
    fn drop(&mut self) {
        if let Some(pid) = std::fs::read_to_string(&self.0).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
    }
}

/// `unshare -m [-i] sh -c PRIVATE_DEV+rest`, with runner's environment as the harness gives it,
/// but `RUNNER_SYSLOG_SOCKET` unset: the default /dev/log is the private one.
fn in_namespace(s: &Scratch, config: &Path, busybox: &Path, syslogd_args: &str, rest: &str) -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "-i", "sh", "-c"])
        .arg(format!("{PRIVATE_DEV}\n{rest}"))
        .arg("sh")
        .env("BUSYBOX", busybox)
        .env("SYSLOGD_ARGS", syslogd_args)
        .env("SYSLOGD_PID", s.path("syslogd.pid"))
        .env("RUNNER", BIN)
        .env("RUNNER_CONFIG", config)
        .env("RUNNER_STATE_DIR", s.path("state"))
        .env("RUNNER_RUNTIME_DIR", s.path("run"))
        .env("RUNNER_JOURNAL_SOCKET", s.path("no-journal-socket"))
        .env_remove("RUNNER_SYSLOG_SOCKET")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("JOURNAL_STREAM")
        .env_remove("WATCHDOG_USEC");
    c
}

fn text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The daemon's records, start, a good and a bad reload and stop, in RFC 3164 with facility
/// daemon, as `busybox syslogd -O FILE` writes them; run ids as `runner logs` shows them.
#[test]
fn daemon_records_reach_busybox_syslogd() {
    let Some(bb) = busybox() else { return };
    let s = Scratch::new("syslog-daemon");
    let jobs = "jobs:\n  fails:\n    every: 1s\n    run: \"exit 3\"\n  works:\n    every: 1s\n    run: \"true\"\n";
    let c = s.write("supervisor.yaml", &format!("version: 1\n{jobs}"));
    let messages = s.path("messages");
    let log = s.path("daemon.log");
    let child = in_namespace(&s, &c, &bb, &format!("-O {}", messages.display()), "exec \"$RUNNER\" run")
        .env("RUNNER_LOG_LEVEL", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _syslogd = Syslogd(s.path("syslogd.pid"));
    // unshare and sh exec: the child is the daemon.
    let mut d = Daemon { child, log };
    let pid = d.child.id();
    let tag = format!("runner[{pid}]: ");
    let limit = Duration::from_secs(30);
    wait_for(limit, "a failed and a good run in syslog", || {
        let t = text(&messages);
        t.contains("job fails failure") && t.contains("job works success")
    });
    let t = text(&messages);
    let started = format!("daemon.info {tag}runner started: 2 job(s) from {}", c.display());
    assert!(t.contains(&started), "no `{started}` in:\n{t}\ndaemon:\n{}", d.log_text());
    let failed = t.lines().find(|l| l.contains("job fails failure")).unwrap();
    assert!(failed.contains(&format!("daemon.err {tag}job fails failure (exit 3) after ")), "{failed}");
    let good = t.lines().find(|l| l.contains("job works success")).unwrap();
    assert!(good.contains(&format!("daemon.info {tag}job works success")), "{good}");
    // The run id is the ring's sequence number, as `runner logs --json` gives it.
    let run_id: u64 = failed.rsplit_once(" run_id=").expect("a run id").1.trim().parse().unwrap();
    let o = s.runner(&c).args(["logs", "--json", "--job", "fails"]).output().unwrap();
    let seqs: Vec<serde_json::Value> = common::stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"].clone())
        .collect();
    assert!(seqs.contains(&serde_json::json!(run_id)), "run_id {run_id} not among {seqs:?}");

    // A bad reload is refused, on one line, with file, line and column.
    s.write("supervisor.yaml", "version: 1\njobs:\n  fails:\n    every: never\n    run: \"exit 3\"\n");
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(limit, "the refused reload in syslog", || text(&messages).contains("reload refused"));
    let t = text(&messages);
    let refused = t.lines().find(|l| l.contains("reload refused")).unwrap();
    let want = format!("daemon.err {tag}reload refused, the running config stays: {}:4:", c.display());
    assert!(refused.contains(&want), "no `{want}` in `{refused}`");
    // A good one is taken.
    s.write("supervisor.yaml", &format!("version: 1\n{jobs}  third:\n    every: 1h\n    run: \"true\"\n"));
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(limit, "the reload in syslog", || text(&messages).contains("reloaded"));
    let t = text(&messages);
    assert!(t.contains(&format!("daemon.info {tag}reloaded {}: 3 job(s)", c.display())), "{t}");

    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(limit).success(), "{}", d.log_text());
    let t = text(&messages);
    let stopped = t.lines().find(|l| l.contains("runner stopped")).unwrap_or_else(|| panic!("no stop in:\n{t}"));
    assert!(stopped.contains(&format!("daemon.info {tag}runner stopped: ended ")), "{stopped}");
    assert!(!stopped.contains("did not take"), "syslogd took every record: {stopped}");
}

/// RFC 5424 with structured data and facility local3, read back with `busybox logread`
/// (syslogd's shared-memory buffer, in an IPC namespace of the test's own); `syslog: off` sends
/// nothing.
#[test]
fn rfc5424_with_structured_data_in_logread() {
    let Some(bb) = busybox() else { return };
    let s = Scratch::new("syslog-5424");
    let c = s.write(
        "supervisor.yaml",
        "version: 1\nlog:\n  syslog_format: rfc5424\n  syslog_facility: local3\njobs:\n  fails:\n    every: 1h\n    run: \"echo oops; exit 3\"\n",
    );
    let off =
        s.write("off.yaml", "version: 1\nlog:\n  syslog: off\njobs:\n  quiet:\n    every: 1h\n    run: \"exit 4\"\n");
    let script = "\"$RUNNER\" once fails >/dev/null 2>&1 || true\n\
        RUNNER_CONFIG=\"$OFF\" \"$RUNNER\" once quiet >/dev/null 2>&1 || true\n\
        sleep 0.2\n\
        \"$BUSYBOX\" logread\n\
        kill \"$(cat \"$SYSLOGD_PID\")\"\n";
    let o = in_namespace(&s, &c, &bb, "-C64", script).env("OFF", &off).output().unwrap();
    let _syslogd = Syslogd(s.path("syslogd.pid"));
    let out = common::stdout(&o);
    assert!(o.status.success(), "{}\n{out}", common::stderr(&o));
    let line = out.lines().find(|l| l.contains("job fails")).unwrap_or_else(|| panic!("no record in:\n{out}"));
    // local3 (19) and err: syslogd names them; the rest is the RFC 5424 line as sent.
    let (_, rest) = line.split_once(" local3.err 1 ").unwrap_or_else(|| panic!("not local3.err RFC 5424: {line}"));
    let fields: Vec<&str> = rest.splitn(5, ' ').collect();
    // RFC 3339 with microseconds and a numeric offset (section 6.2.3).
    let ts = fields[0];
    assert!(ts.parse::<jiff::Timestamp>().is_ok() && ts.len() == "2026-01-01T00:00:00.000000+00:00".len(), "{ts}");
    assert_eq!(fields[2], "runner");
    assert!(fields[3].parse::<u32>().is_ok(), "procid {}", fields[3]);
    let sd = fields[4];
    assert!(
        sd.starts_with("run [runner@32473 job=\"fails\" job_kind=\"command\" kind=\"run\" outcome=\"failure\""),
        "{sd}"
    );
    for p in [" exit_code=\"exited\"", " exit_status=\"3\"", " run_id=\"1\"", " duration_ms=\""] {
        assert!(sd.contains(p), "no {p} in {sd}");
    }
    assert!(sd.contains("] job fails failure (exit 3) after "), "{sd}");
    assert!(sd.ends_with(" ms, manual"), "{sd}");
    assert!(!out.contains("quiet"), "syslog: off sent a record:\n{out}");
}

/// No syslog daemon at the socket: each record is dropped at once (the daemon does not wait),
/// said once, and counted in the stop record; the ring has every record.
#[test]
fn a_missing_socket_drops_and_counts() {
    let s = Scratch::new("syslog-missing");
    let c =
        s.write("supervisor.yaml", "version: 1\nlog:\n  syslog: on\njobs:\n  a:\n    every: 1s\n    run: \"true\"\n");
    let mut d = Daemon::start(&s, &c);
    wait_for(Duration::from_secs(30), "two runs in the ring", || {
        let o = s.runner(&c).args(["logs", "--job", "a"]).output().unwrap();
        common::stdout(&o).lines().count() >= 2
    });
    d.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(d.wait_exit(Duration::from_secs(30)).success());
    let log = d.log_text();
    let sock = s.path("no-syslog-socket");
    let said = format!("syslog at {} does not take records", sock.display());
    assert_eq!(log.matches(&said).count(), 1, "said once:\n{log}");
    let stop = log.lines().find(|l| l.contains("runner stopped")).unwrap();
    let n: u64 = stop
        .split_once(" did not take ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in `{stop}`"));
    // The start, and at least two runs.
    assert!(n >= 3, "{stop}");
}

/// A wrong value names the file, line and column and the choices.
#[test]
fn bad_syslog_settings_name_the_fix() {
    let s = Scratch::new("syslog-check");
    for (key, value, want) in [
        ("syslog", "sometimes", "give auto, on or off"),
        ("syslog_format", "rfc9999", "give rfc3164 (the default) or rfc5424"),
        ("syslog_facility", "local9", "give one of kern, user, mail, daemon"),
    ] {
        let c = s.write("supervisor.yaml", &format!("version: 1\nlog:\n  {key}: {value}\njobs: {{}}\n"));
        let o = s.runner(&c).arg("check").output().unwrap();
        let err = common::stderr(&o);
        assert!(!o.status.success(), "{key}: {value} was taken");
        assert!(err.contains(&format!("{}:3:", c.display())) && err.contains(want), "{err}");
    }
    let c = s.write("supervisor.yaml", "version: 1\nlog:\n  syslog: off\n  syslog_format: rfc5424\n  syslog_facility: local7\n  syslog_socket: /var/run/log\njobs: {}\n");
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", common::stderr(&o));
}

/// `auto` looks for journald's socket: there, records go to the journal only; `syslog: on`
/// sends them to both. (Both sockets are the test's own, read directly.)
#[test]
fn auto_leaves_syslog_alone_where_journald_listens() {
    use std::os::unix::net::UnixDatagram;
    let s = Scratch::new("syslog-auto");
    let journal = UnixDatagram::bind(s.path("journal.sock")).unwrap();
    let syslog = UnixDatagram::bind(s.path("syslog.sock")).unwrap();
    for sock in [&journal, &syslog] {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    let once = |log: &str| {
        let c =
            s.write("supervisor.yaml", &format!("version: 1\n{log}jobs:\n  a:\n    every: 1h\n    run: \"true\"\n"));
        let o = s
            .runner(&c)
            .args(["once", "a"])
            .env("RUNNER_JOURNAL_SOCKET", s.path("journal.sock"))
            .env("RUNNER_SYSLOG_SOCKET", s.path("syslog.sock"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", common::stderr(&o));
    };
    let mut buf = vec![0u8; 65536];
    once("");
    let n = journal.recv(&mut buf).expect("journald's entry");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("RUNNER_JOB=a\n"));
    syslog.set_nonblocking(true).unwrap();
    assert!(syslog.recv(&mut buf).is_err(), "auto sent to syslog beside journald");

    syslog.set_nonblocking(false).unwrap();
    once("log:\n  syslog: on\n");
    let n = syslog.recv(&mut buf).expect("the syslog line");
    let line = String::from_utf8_lossy(&buf[..n]).into_owned();
    // daemon (3) * 8 + info (6).
    assert!(line.starts_with("<30>"), "{line}");
    assert!(
        line.contains(" runner[") && line.contains("]: job a success (exit 0) after ") && line.contains(" run_id="),
        "{line}"
    );
    assert!(journal.recv(&mut buf).is_ok(), "journald has it too");
}
