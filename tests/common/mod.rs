//! Helpers shared by the black-box tests: a scratch directory, config files, and running
//! the real binary.
#![allow(dead_code)]

pub mod counting_alloc;
pub mod generated;
pub mod records;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_runner");

/// A scratch directory under the target dir, removed on drop unless the test failed.
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("scratch");
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = base.join(format!("{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Writes a file with mode 0644, as a config must be to pass the permission checks.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// `runner` with state and runtime dirs inside the scratch dir and this config.
    pub fn runner(&self, config: &Path) -> Command {
        let mut c = Command::new(BIN);
        c.env("RUNNER_CONFIG", config)
            .env("RUNNER_STATE_DIR", self.path("state"))
            .env("RUNNER_RUNTIME_DIR", self.path("run"))
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            // Never the machine's own journal: tests that want one start their own.
            .env("RUNNER_JOURNAL_SOCKET", self.path("no-journal-socket"))
            // Nor the machine's /dev/log: tests/syslog.rs gives one its own syslogd.
            .env("RUNNER_SYSLOG_SOCKET", self.path("no-syslog-socket"));
        c
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A daemon started by a test, stderr kept in a file; killed on drop if still running.
pub struct Daemon {
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn start(s: &Scratch, config: &Path) -> Daemon {
        Daemon::start_with(s, config, &[])
    }

    pub fn start_with(s: &Scratch, config: &Path, env: &[(&str, &str)]) -> Daemon {
        let log = s.path(&format!(
            "daemon-{}.log",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let f = std::fs::File::create(&log).unwrap();
        let child = s
            .runner(config)
            .arg("run")
            .env("RUNNER_LOG_LEVEL", "debug")
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(f)
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// Waits for the daemon's exit, failing the test after `limit`.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        // Ten times as long under emulation, as in `wait_for`.
        let limit = if emulated() { limit * 10 } else { limit };
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "daemon did not exit within {limit:?}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        remove_daemon_cgroups(self.child.id());
    }
}

/// This process's own cgroup v2 directory, where a daemon it starts makes its subtree.
fn own_cgroup2() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        if right.starts_with("cgroup2 ") { left.split_whitespace().nth(4).map(PathBuf::from) } else { None }
    })?;
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(mount.join(rel.trim_start_matches('/')))
}

/// Removes the cgroups a daemon with pid `pid` made and could not remove itself (it was
/// killed): `runner.<pid>.<start>/` below this process's cgroup, with its `supervisor` leaf
/// and any emptied run cgroups. What still holds a process after 2 s is left.
pub fn remove_daemon_cgroups(pid: u32) {
    let Some(own) = own_cgroup2() else { return };
    let Ok(entries) = std::fs::read_dir(&own) else { return };
    let prefix = format!("runner.{pid}.");
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        let dir = e.path();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            if let Ok(subs) = std::fs::read_dir(&dir) {
                for sub in subs.flatten().filter(|s| s.file_type().is_ok_and(|t| t.is_dir())) {
                    let _ = std::fs::remove_dir(sub.path());
                }
            }
            if std::fs::remove_dir(&dir).is_ok() || !dir.exists() || std::time::Instant::now() > deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// Polls `cond` every 20 ms until it holds, failing with `what` after `limit` (ten times
/// that under emulation, where the debug binary starts and runs 5 to 20 times slower: the
/// limit only ends a test that would hang, it is no timing assertion).
pub fn wait_for(limit: std::time::Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let limit = if emulated() { limit * 10 } else { limit };
    let deadline = std::time::Instant::now() + limit;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 2..].starts_with('Z'),
        Err(_) => false,
    }
}

/// A strict reading of the Prometheus text format (0.0.4): every sample's family has HELP
/// and TYPE before it, once; names and labels are well formed; values parse; no family is
/// split. Runs everywhere; `promtool_check` adds Prometheus's own parser and linter where
/// promtool is installed.
pub fn validate_exposition(text: &str) -> Vec<String> {
    let name_ok = |n: &str| {
        let mut c = n.chars();
        c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    };
    let mut problems = Vec::new();
    let mut help = std::collections::BTreeSet::new();
    let mut types = std::collections::BTreeMap::new();
    let mut done = std::collections::BTreeSet::new();
    let mut current: Option<String> = None;
    assert!(text.ends_with('\n'), "the file ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            if !help.insert(name.to_string()) {
                problems.push(format!("second HELP for {name}"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut f = rest.split(' ');
            let (name, kind) = (f.next().unwrap(), f.next().unwrap_or(""));
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                problems.push(format!("bad TYPE {kind}"));
            }
            if types.insert(name.to_string(), kind.to_string()).is_some() {
                problems.push(format!("second TYPE for {name}"));
            }
            if let Some(c) = current.replace(name.to_string()) {
                done.insert(c);
            }
            if done.contains(name) {
                problems.push(format!("{name} split"));
            }
        } else if line.starts_with('#') || line.is_empty() {
            problems.push(format!("stray line {line:?}"));
        } else {
            let (head, value) = line.rsplit_once(' ').unwrap();
            let name = head.split('{').next().unwrap();
            if !name_ok(name) {
                problems.push(format!("bad name {name}"));
            }
            if current.as_deref() != Some(name) || !help.contains(name) {
                problems.push(format!("{name} sample without its HELP/TYPE just before"));
            }
            if types.get(name).map(String::as_str) == Some("counter") && !name.ends_with("_total") {
                problems.push(format!("counter {name} does not end in _total"));
            }
            if let Some(labels) = head.strip_prefix(name) {
                let inner = labels.strip_prefix('{').and_then(|l| l.strip_suffix('}'));
                match inner {
                    Some(inner) => {
                        for pair in inner.split("\",").filter(|p| !p.is_empty()) {
                            let (k, v) = pair.split_once("=\"").unwrap_or(("", ""));
                            if !name_ok(k) || k.starts_with("__") {
                                problems.push(format!("bad label name {k:?} in {line}"));
                            }
                            if v.trim_end_matches('"').contains('\n') {
                                problems.push("raw newline in label".into());
                            }
                        }
                    }
                    None if labels.is_empty() => {}
                    None => problems.push(format!("bad labels in {line}")),
                }
            }
            if value.parse::<f64>().is_err() && !["NaN", "+Inf", "-Inf"].contains(&value) {
                problems.push(format!("bad value {value}"));
            }
        }
    }
    problems
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The calling test (or part of it) cannot run because `missing` is missing: under CI=true
/// that fails the test; elsewhere the caller returns early and the skip is reported where
/// the default `cargo test` output shows it. libtest captures `print!`/`eprint!` of passing
/// tests, but not writes to the stderr handle itself, so the note goes there: once at the
/// skip, beside the test's own line, and again after the binary's `test result:` summary
/// (an `atexit` hook), so a run that skipped something never looks like a full pass.
pub fn skip_missing(missing: &str) {
    use std::io::Write;
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    assert!(!in_ci(), "{test} needs {missing}; under CI=true a missing prerequisite is a failure");
    let note = format!("{test}: SKIPPED, needs {missing} (under CI=true this fails)");
    static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    extern "C" fn recap() {
        // try_lock: a thread still holding it at exit must not hang the exit.
        let Ok(notes) = SKIPPED.try_lock() else { return };
        let mut text = format!("\n{} skipped for a missing prerequisite:\n", notes.len());
        for n in notes.iter() {
            text.push_str(&format!("    {n}\n"));
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
    let mut notes = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    if notes.contains(&note) {
        return;
    }
    let _ = std::io::stderr().write_all(format!("\n{note}\n").as_bytes());
    if notes.is_empty() {
        // SAFETY: `recap` is a plain function that only locks a static and writes to stderr,
        // which stays valid while exit handlers run.
        unsafe { nix::libc::atexit(recap) };
    }
    notes.push(note);
}

/// True when the tests run under qemu-user (`.ci/run` sets `RUNNER_EMULATED=1` for its
/// aarch64 and armv7 runs, and only there).
pub fn emulated() -> bool {
    std::env::var("RUNNER_EMULATED").is_ok_and(|v| v == "1")
}

/// Host signals 32 to 35 (bits 31 to 34 of a `SigIgn:` mask): qemu-user keeps them for itself
/// and maps the guest's realtime signals above them, so an emulated runner can neither name
/// nor reset them, and a host program it execs (a job's shell) may find some of them ignored
/// (a bare aarch64 program that resets all 64 of its signals leaves them untouched).
pub const QEMU_OWN_SIGNALS: u64 = 0xf << 31;

/// A process's `SigIgn:` or `SigBlk:` mask without what runner cannot touch: natively all of
/// it, under emulation all but [`QEMU_OWN_SIGNALS`].
pub fn runner_signal_mask(mask: u64) -> u64 {
    if emulated() { mask & !QEMU_OWN_SIGNALS } else { mask }
}

/// Call first in a test that cannot run under qemu-user for `reason` (ptrace, namespaces,
/// clone3, `/proc/PID/exe` naming qemu, tight timing): under emulation it prints
/// `skipped under emulation: REASON` where the default `cargo test` output shows it (the
/// stderr handle, not libtest's captured `eprintln!`) and returns true, so the caller
/// returns; natively it returns false and the test runs in full.
pub fn skip_emulated(reason: &str) -> bool {
    use std::io::Write;
    if !emulated() {
        return false;
    }
    let test = std::thread::current().name().unwrap_or("a test").to_string();
    let _ = std::io::stderr().write_all(format!("\n{test}: skipped under emulation: {reason}\n").as_bytes());
    true
}

/// A process that still exists, is asleep and has no signal pending: anything sent to it
/// so far has been acted on (a fatal one would have ended it, an ignored one is dropped at
/// sending). Lets a test assert that something did not happen to a process without a sleep.
pub fn settled(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return false };
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("");
    field("State:").starts_with('S')
        && field("SigPnd:").trim_matches('0').is_empty()
        && field("ShdPnd:").trim_matches('0').is_empty()
}

/// `promtool check metrics < text`: its complaints (parse errors and lint problems, empty
/// when it accepts the text), or none when promtool is not installed, which fails under
/// CI=true (`.ci/run` installs Debian's `prometheus` package for it).
pub fn promtool_check(text: &str) -> Option<String> {
    use std::io::Write;
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // .ci/run installs it.
            skip_missing("promtool for its check of the exposition (apt-get install prometheus)");
            return None;
        }
        Err(e) => panic!("cannot run promtool: {e}"),
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    let said = format!("{}{}", stdout(&o), stderr(&o));
    Some(if o.status.success() { String::new() } else { format!("promtool exit {:?}: {said}", o.status.code()) })
}

/// A Python venv under the target dir with `pins` installed, created on first use and
/// rebuilt when `works` says the existing one is not right. Errors name what to install.
pub fn python_venv(name: &str, pins: &[&str], works: impl Fn(&Path) -> bool) -> Result<PathBuf, String> {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    if works(&python) {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let o = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .map_err(|e| format!("cannot run python3 ({e}); install python3 and python3-venv"))?;
    if !o.status.success() {
        return Err(format!(
            "`python3 -m venv {}` failed (install python3-venv): {}",
            venv.display(),
            stderr(&o).trim()
        ));
    }
    let o = Command::new(&python)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet"])
        .args(pins)
        .output()
        .map_err(|e| format!("cannot run the venv's pip: {e}"))?;
    if !o.status.success() {
        return Err(format!("`pip install {}` failed: {}", pins.join(" "), stderr(&o).trim()));
    }
    if works(&python) { Ok(python) } else { Err(format!("{} is not usable from {}", pins.join(" "), venv.display())) }
}

/// `strace OPTIONS -o TRACE runner ARGS` with the environment `s.runner(config)` gives runner,
/// or `None` (a skip outside CI, a failure under CI=true) when strace is missing.
pub fn traced(s: &Scratch, config: &Path, options: &[&str], trace: &Path, args: &[&str]) -> Option<Command> {
    if skip_emulated("strace of an emulated process traces qemu-user's system calls, not runner's") {
        return None;
    }
    if Command::new("strace").arg("-V").stdout(std::process::Stdio::null()).status().is_err() {
        skip_missing("strace (apt-get install strace)");
        return None;
    }
    let mut cmd = Command::new("strace");
    cmd.args(options).arg("-o").arg(trace).arg(BIN).args(args);
    for (k, v) in s.runner(config).get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    Some(cmd)
}

/// Starts `cmd` (a daemon under [`traced`]) with its stderr in `log`, waits until runner says
/// it started, and returns the tracer and the daemon's pid (from its pid file, not strace's).
pub fn start_traced_daemon(mut cmd: Command, s: &Scratch, log: &Path) -> (std::process::Child, i32) {
    let tracer = cmd
        .env("RUNNER_LOG_LEVEL", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    wait_for(std::time::Duration::from_secs(30), "startup", || {
        std::fs::read_to_string(log).unwrap_or_default().contains("runner started")
    });
    let pid = std::fs::read_to_string(s.path("run/runner.pid")).unwrap();
    (tracer, pid.split_whitespace().next().unwrap().parse().unwrap())
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

/// Runs `examples/generate` (built by `cargo test` with the other examples; else through
/// `cargo run`) into the scratch dir, which then holds `man/` and `completions/`.
pub fn generate_packaging_files(s: &Scratch) -> &Path {
    let bin = Path::new(BIN).parent().unwrap().join("examples/generate");
    let o = if bin.exists() {
        Command::new(&bin).arg(&s.dir).output().unwrap()
    } else {
        Command::new(env!("CARGO"))
            .args(["run", "--quiet", "--example", "generate", "--"])
            .arg(&s.dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    };
    assert!(o.status.success(), "generate: {}", stderr(&o));
    &s.dir
}

/// Runs an outside tool (dpkg, systemd-nspawn, ...) without input: whether it succeeded, and
/// its stdout then stderr.
pub fn tool_output(cmd: &mut Command) -> (bool, String) {
    let o = cmd.stdin(std::process::Stdio::null()).output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// [`tool_output`] of a tool that must succeed: its output, or a panic that shows it.
pub fn run_tool(cmd: &mut Command) -> String {
    let (ok, text) = tool_output(cmd);
    assert!(ok, "{cmd:?} failed:\n{text}");
    text
}

/// Root and every tool in `tools` on the PATH; otherwise [`skip_missing`] names all that is
/// missing (with `hint`, where to get it) and this returns false.
pub fn root_and_tools(tools: &[&str], hint: &str) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("root");
    }
    missing.extend(tools.iter().copied().filter(|t| !have(t)));
    if missing.is_empty() {
        return true;
    }
    skip_missing(&format!("{} ({hint})", missing.join(", ")));
    false
}
