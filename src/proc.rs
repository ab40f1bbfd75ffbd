//! /proc/PID: the one reader of a process's files, runner's own `/proc/self` included
//! (`stat`, command line, effective uid, executable, cgroup, environment, children; whether
//! a group has a live member), the pidfd calls, and the one process matcher that process
//! checks, `runner metrics --process` and orphan sweeps share. No other module names a
//! /proc/PID path (`tests/architecture.rs`).
//!
//! `stat` is read into a fixed stack buffer and parsed by hand: the command name between
//! the parentheses may hold spaces and `)`, so the fields after it are counted from the
//! last `)`. Everything else here may allocate (command lines, directory listings): its
//! callers run every few seconds at most. Must not decide what to do with a process.
//!
//! What a match means, in one place ([`Matcher`]):
//! - `name` is a glob (`*`, `?`) on the kernel's `comm` (`/proc/PID/comm`, the first 15
//!   bytes of the executable's file name unless the process renamed itself), as `pgrep NAME`
//!   looks at it. A 15-byte comm also matches a longer name it is the start of.
//! - `cmdline` is a regular expression searched in the arguments (`/proc/PID/cmdline`,
//!   NUL-separated) joined by single spaces, as `pgrep -f` looks at them.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use serde::{Deserialize, Deserializer, de};

/// Bytes of `/proc/PID/stat` read: 52 fields of at most 20 digits and a 64-byte comm fit.
const STAT_BUF: usize = 1280;
/// Bytes of comm kept (the kernel's is 15; some kernel threads show up to 63).
const COMM_MAX: usize = 64;

/// The command name from `stat`, kept without allocating.
#[derive(Clone, Copy)]
pub struct Comm {
    buf: [u8; COMM_MAX],
    len: u8,
}

impl Comm {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// For people: invalid UTF-8 is replaced.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.as_bytes()).into_owned()
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

/// The fields of `/proc/PID/stat` runner uses (field numbers as in proc(5)).
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    /// Field 1.
    pub pid: i32,
    /// Field 2, without its parentheses.
    pub comm: Comm,
    /// Field 3: `R`, `S`, `D`, `Z`, `X`, ...
    pub state: char,
    /// Field 4.
    pub ppid: i32,
    /// Field 5: the process group.
    pub pgrp: i32,
    /// Field 6.
    pub session: i32,
    /// Field 9: `PF_*` flags.
    pub flags: u32,
    /// Fields 14 and 15, clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Field 22: clock ticks after boot. With the pid, the process's identity.
    pub starttime: u64,
    /// Field 24: resident set size in pages.
    pub rss: u64,
}

/// Splits a `/proc/PID/stat` line into the pid, the command name and the fields after it
/// (field 3 first), counting from the last `)`.
fn split_stat(buf: &[u8]) -> Option<(i32, &[u8], impl Iterator<Item = &[u8]>)> {
    let open = buf.iter().position(|&b| b == b'(')?;
    let close = buf.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = parse_i64(trim(&buf[..open]))? as i32;
    let rest = buf[close + 1..].split(|b| b.is_ascii_whitespace()).filter(|s| !s.is_empty());
    Some((pid, &buf[open + 1..close], rest))
}

/// Parses one `/proc/PID/stat` line.
pub fn parse_stat(buf: &[u8]) -> Option<Stat> {
    let (pid, name, mut it) = split_stat(buf)?;
    let mut comm = Comm { buf: [0; COMM_MAX], len: name.len().min(COMM_MAX) as u8 };
    comm.buf[..comm.len as usize].copy_from_slice(&name[..comm.len as usize]);
    // `f[0]` is field 3.
    let mut f: [&[u8]; 22] = [&[]; 22];
    for slot in f.iter_mut() {
        *slot = it.next()?;
    }
    let n = |i: usize| parse_i64(f[i - 3]);
    Some(Stat {
        pid,
        comm,
        state: *f[0].first()? as char,
        ppid: n(4)? as i32,
        pgrp: n(5)? as i32,
        session: n(6)? as i32,
        flags: n(9)? as u32,
        utime: n(14)? as u64,
        stime: n(15)? as u64,
        starttime: n(22)? as u64,
        rss: n(24)?.max(0) as u64,
    })
}

/// State and process group (fields 3 and 5) only, for a scan of every process.
pub fn state_and_pgrp(buf: &[u8]) -> Option<(char, i32)> {
    let (_, _, mut it) = split_stat(buf)?;
    let state = *it.next()?.first()? as char;
    let _ppid = it.next()?;
    Some((state, parse_i64(it.next()?)? as i32))
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end]
}

fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// Reads a whole small file into `buf`; returns the bytes read.
fn read_into(mut f: File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn stat_from(f: File) -> io::Result<Stat> {
    let mut buf = [0u8; STAT_BUF];
    let n = read_into(f, &mut buf)?;
    parse_stat(&buf[..n]).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/PID/stat"))
}

/// `/proc/PID/stat` of `pid`, under the real /proc.
pub fn stat(pid: i32) -> io::Result<Stat> {
    stat_from(File::open(format!("/proc/{pid}/stat"))?)
}

/// An open `/proc/PID` directory: what is read through it belongs to that process, even if
/// the pid is reused meanwhile (reads then fail).
#[derive(Debug)]
pub struct Process {
    dir: OwnedFd,
}

impl Process {
    /// Opens `<root>/<pid>` (`root` is `/proc`, or a copy of it in tests).
    pub fn open(root: &Path, pid: i32) -> io::Result<Process> {
        let fd = nix::fcntl::open(
            &root.join(pid.to_string()),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Process { dir: fd })
    }

    /// Opens `/proc/<pid>`.
    pub fn new(pid: i32) -> io::Result<Process> {
        Process::open(Path::new("/proc"), pid)
    }

    fn file(&self, name: &str) -> io::Result<File> {
        let fd = openat(self.dir.as_fd(), name, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
        Ok(File::from(fd))
    }

    pub fn stat(&self) -> io::Result<Stat> {
        stat_from(self.file("stat")?)
    }

    /// The arguments: `cmdline` split at NULs, empty ones dropped. Fails on invalid UTF-8.
    pub fn cmdline(&self) -> io::Result<Vec<String>> {
        let mut s = String::new();
        self.file("cmdline")?.read_to_string(&mut s)?;
        Ok(s.split('\0').filter(|a| !a.is_empty()).map(str::to_string).collect())
    }

    /// The effective uid (the second number of `Uid:` in `status`).
    pub fn euid(&self) -> io::Result<u32> {
        let mut s = String::new();
        self.file("status")?.read_to_string(&mut s)?;
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Uid: line in /proc/PID/status"))
    }

    /// `/proc/PID/exe`, as the kernel shows it (with ` (deleted)` for a replaced binary).
    pub fn exe(&self) -> io::Result<PathBuf> {
        let target: OsString = readlinkat(self.dir.as_fd(), "exe")?;
        Ok(PathBuf::from(target))
    }
}

/// This process's executable, as a path to exec (the exec helper is runner itself).
pub const SELF_EXE: &str = "/proc/self/exe";

/// `/proc/PID/exe` of `pid`: the link's target as the kernel shows it, and the device and
/// inode of the file it leads to (`None` when it cannot be followed).
pub fn exe_link(pid: &str) -> Option<(PathBuf, Option<(u64, u64)>)> {
    use std::os::unix::fs::MetadataExt;
    let link = PathBuf::from(format!("/proc/{pid}/exe"));
    let path = std::fs::read_link(&link).ok()?;
    Some((path, std::fs::metadata(&link).ok().map(|m| (m.dev(), m.ino()))))
}

/// Whether `pid` runs the same executable file as this process (device and inode); `None`
/// when either cannot be read.
pub fn runs_own_executable(pid: i32) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let theirs = std::fs::metadata(format!("/proc/{pid}/exe")).ok()?;
    let ours = std::fs::metadata(SELF_EXE).ok()?;
    Some(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
}

/// `/proc/PID/cgroup` of `pid`.
pub fn cgroup(pid: i32) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
}

/// This process's `/proc/self/cgroup`; the error names the file.
pub fn own_cgroup() -> Result<String, String> {
    std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))
}

/// This process's `/proc/self/mountinfo`; the error names the file.
pub fn own_mountinfo() -> Result<String, String> {
    std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("/proc/self/mountinfo: {e}"))
}

/// `/proc/PID/environ` of `pid`: NUL-separated `KEY=value`s (empty for a zombie).
pub fn environ(pid: i32) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    File::open(format!("/proc/{pid}/environ"))?.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Adds this process's children (spawned or adopted, zombies included) from each thread's
/// `/proc/self/task/<tid>/children` to `out`; false when no thread's could be read (a kernel
/// without `CONFIG_PROC_CHILDREN`).
pub fn own_children(out: &mut Vec<i32>) -> bool {
    let mut listed = false;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(text) = crate::fsx::read_kernel(&t.path().join("children"), 512) {
                listed = true;
                out.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    listed
}

/// Whether a process of group `pgid` is alive, zombies (`Z`) and dead ones (`X`) not
/// counted; `None` when /proc cannot be listed.
pub fn group_has_live_member(pgid: i32) -> Option<bool> {
    let dir = std::fs::read_dir("/proc").ok()?;
    let mut text = String::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        if !name.as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            continue;
        }
        text.clear();
        let mut path = entry.path();
        path.push("stat");
        if File::open(&path).and_then(|mut f| f.read_to_string(&mut text)).is_err() {
            continue;
        }
        if let Some((state, pgrp)) = state_and_pgrp(text.as_bytes())
            && pgrp == pgid
            && state != 'Z'
            && state != 'X'
        {
            return Some(true);
        }
    }
    Some(false)
}

/// Boot time from /proc/stat's `btime`.
pub fn boot_time() -> Option<SystemTime> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let secs: u64 = stat.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// When the process started, as wall time (stat field 22, ticks since boot).
fn start_time(pid: u32) -> Option<SystemTime> {
    Some(started_at(boot_time()?, stat(pid as i32).ok()?.starttime))
}

/// The wall time of `ticks` since `boot` (a [`Stat`]'s `starttime`); callers that judge many
/// processes read [`boot_time`] once.
pub fn started_at(boot: SystemTime, ticks: u64) -> SystemTime {
    // The one answer used for every /proc time: sysconf(_SC_CLK_TCK).
    boot + Duration::from_millis(ticks * 1000 / ticks_per_second())
}

/// The process group of a process (stat field 5).
fn pgrp(pid: u32) -> Option<u32> {
    u32::try_from(stat(pid as i32).ok()?.pgrp).ok()
}

/// Whether process group `pgid` still exists and is the one a run started at `since_ms`
/// (before signalling a group left by an earlier daemon): either its leader is alive and
/// started within two seconds of then, or the leader is gone and members remain (Linux does
/// not reuse a pid while a group still bears it).
pub fn group_is_from(pgid: u32, since_ms: i64) -> bool {
    if pgid <= 1 {
        return false;
    }
    if let Some(start) = start_time(pgid) {
        let started_ms = crate::time::epoch_ms(start);
        return pgrp(pgid) == Some(pgid) && (started_ms - since_ms).abs() <= 2_000;
    }
    let Ok(pids) = pids(Path::new("/proc")) else { return false };
    pids.filter_map(|pid| u32::try_from(pid).ok()).any(|pid| pgrp(pid) == Some(pgid))
}

/// The pids listed in `root` (`/proc`), in directory order.
pub fn pids(root: &Path) -> io::Result<impl Iterator<Item = i32>> {
    Ok(std::fs::read_dir(root)?.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()))
}

/// Clock ticks per second, the unit of `stat`'s times (`sysconf(_SC_CLK_TCK)`; 100 on Linux).
pub fn ticks_per_second() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// Bytes per page, the unit of `stat`'s rss.
pub fn page_size() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE) {
        Ok(Some(p)) if p > 0 => p as u64,
        _ => 4096,
    }
}

/// Time since boot from `/proc/uptime` (its first number).
pub fn uptime() -> io::Result<Duration> {
    let mut buf = [0u8; 128];
    let n = read_into(File::open("/proc/uptime")?, &mut buf)?;
    let text = std::str::from_utf8(&buf[..n]).unwrap_or("");
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/uptime"))
}

// ---------------------------------------------------------------------------------------
// pidfd: nix has no wrappers; runner_sys makes the two raw system calls.

/// pidfd_open(2): a descriptor that names exactly this process, never a successor.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    runner_sys::pidfd::open(pid)
}

/// pidfd_send_signal(2): `sig` to the process `fd` names.
pub fn pidfd_send_signal(fd: &OwnedFd, sig: Signal) -> Result<(), Errno> {
    runner_sys::pidfd::send_signal(fd.as_fd(), sig)
}

// ---------------------------------------------------------------------------------------
// Matching.

/// `name` and `cmdline`, with the meaning in this module's header; either may be absent and
/// every one given must hold.
#[derive(Clone, Copy, Debug, Default)]
pub struct Matcher<'a> {
    pub name: Option<&'a str>,
    pub cmdline: Option<&'a regex_lite::Regex>,
}

impl Matcher<'_> {
    /// Whether the process `p`, whose stat is `st`, matches. Reads the command line into
    /// `argv` when `cmdline` is given (and leaves it there for the caller); a process whose
    /// command line cannot be read does not match.
    pub fn matches(&self, p: &Process, st: &Stat, argv: &mut Option<Vec<String>>) -> bool {
        if let Some(pat) = self.name
            && !name_matches(pat, st.comm.as_bytes())
        {
            return false;
        }
        if let Some(re) = self.cmdline {
            if argv.is_none() {
                match p.cmdline() {
                    Ok(a) => *argv = Some(a),
                    Err(_) => return false,
                }
            }
            let Some(a) = argv.as_ref() else { return false };
            if !re.is_match(&a.join(" ")) {
                return false;
            }
        }
        true
    }
}

/// Whether the glob `pattern` matches `comm`. comm is cut at 15 bytes by the kernel, so a
/// full-length comm may be the start of a longer name: it matches when some continuation
/// of it would.
pub fn name_matches(pattern: &str, comm: &[u8]) -> bool {
    glob(pattern.as_bytes(), comm, comm.len() >= 15)
}

/// `*` and `?` globbing. With `cut`, `s` may be the start of a longer string (a comm cut
/// at 15 bytes): it matches when some continuation of it would.
pub fn glob(p: &[u8], s: &[u8], cut: bool) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    if cut {
        return true;
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// A regular expression, compiled as it is read so a syntax error carries its line and column.
#[derive(Debug, Clone)]
pub struct RegexText(pub regex_lite::Regex);

impl PartialEq for RegexText {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl<'de> Deserialize<'de> for RegexText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex_lite::Regex::new(&s).map(RegexText).map_err(|e| {
            de::Error::custom(format!("invalid regular expression {s:?}: {e}; escape special characters with `\\`"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_started_recently_and_is_found() {
        let me = std::process::id();
        let start = start_time(me).unwrap();
        let age = std::time::SystemTime::now().duration_since(start).unwrap_or_default();
        assert!(age < Duration::from_secs(3600), "{age:?}");
        assert!(pgrp(me).is_some());
        assert!(!group_is_from(1, 0));
    }

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line = b"4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 120 0 0 0 7 3 0 0 20 0 1 0 98765 1234567 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.pid, 4242);
        assert_eq!(st.comm.as_bytes(), b"a) b (c)");
        assert_eq!((st.state, st.ppid, st.pgrp, st.session), ('S', 1, 4242, 4242));
        assert_eq!((st.flags, st.utime, st.stime, st.starttime, st.rss), (4194560, 7, 3, 98765, 321));
        assert!(parse_stat(b"12 (x) S 1 2").is_none(), "too few fields");
        assert!(parse_stat(b"garbage").is_none());
        assert_eq!(state_and_pgrp(line), Some(('S', 4242)));
        // The command name may hold spaces and parentheses: fields count from the last ')'.
        assert_eq!(state_and_pgrp(b"42 (sleep) S 1 42 42 0 -1"), Some(('S', 42)));
        assert_eq!(state_and_pgrp(b"7 (a) b (c) Z 1 99 7 0"), Some(('Z', 99)));
        assert_eq!(state_and_pgrp(b"7 (x"), None);
    }

    #[test]
    fn own_stat_and_cmdline_are_read() {
        let me = std::process::id() as i32;
        let st = stat(me).unwrap();
        assert_eq!(st.pid, me);
        assert_eq!(st.ppid, nix::unistd::getppid().as_raw());
        // qemu-user (`RUNNER_EMULATED=1`, docs/targets.md) answers a process's opens of its
        // own /proc/PID/stat by path itself: pid, comm, ppid, a starttime of its own reckoning,
        // zeros elsewhere. A read through the /proc/PID directory is the kernel's.
        let emulated = std::env::var("RUNNER_EMULATED").as_deref() == Ok("1");
        if !emulated {
            assert_eq!(st.pgrp, nix::unistd::getpgrp().as_raw());
        }
        let p = Process::new(me).unwrap();
        assert_eq!(p.stat().unwrap().pgrp, nix::unistd::getpgrp().as_raw());
        if !emulated {
            assert_eq!(p.stat().unwrap().starttime, st.starttime);
        }
        assert!(!p.cmdline().unwrap().is_empty());
        assert_eq!(p.euid().unwrap(), nix::unistd::geteuid().as_raw());
        if !emulated {
            // Under qemu-user the kernel's exe is the qemu binary (current_exe asks qemu).
            assert_eq!(p.exe().unwrap(), std::env::current_exe().unwrap());
        }
        assert!(pids(Path::new("/proc")).unwrap().any(|p| p == me));
        assert!(uptime().unwrap() > Duration::ZERO);
    }

    #[test]
    fn name_is_a_glob_on_comm_and_cmdline_a_regex_on_the_joined_arguments() {
        let me = std::process::id() as i32;
        let p = Process::new(me).unwrap();
        let st = p.stat().unwrap();
        let comm = st.comm.to_string_lossy();
        let mut argv = None;
        assert!(Matcher { name: Some(&comm), cmdline: None }.matches(&p, &st, &mut argv));
        assert!(argv.is_none(), "the command line is read only for `cmdline`");
        let any = regex_lite::Regex::new(".").unwrap();
        assert!(Matcher { name: Some("*"), cmdline: Some(&any) }.matches(&p, &st, &mut argv));
        assert!(argv.is_some());
        let none = regex_lite::Regex::new("^no-such-program-xyz$").unwrap();
        assert!(!Matcher { name: None, cmdline: Some(&none) }.matches(&p, &st, &mut None));
        assert!(!Matcher { name: Some("no-such-program"), cmdline: None }.matches(&p, &st, &mut None));
        assert!(name_matches("ci-worker-long-name", b"ci-worker-long-"));
        assert!(!name_matches("ci-worker", b"ci-worker-long-"));
        assert!(name_matches("sleep", b"sleep") && !name_matches("slee", b"sleep"));
    }
}
