//! Records and the daemon's own lines sent to journald by its native protocol (one datagram
//! per entry to `/run/systemd/journal/socket`; a sealed memfd for entries too big for a
//! datagram), so `journalctl RUNNER_JOB=backup PRIORITY=3` finds failed runs.
//!
//! Owns the wire format, the field names and priorities, and the rate limit on job output
//! lines. Without journald (no socket), it says so once at debug level and does nothing: the
//! ring keeps every record anyway. It must not block: the socket is non-blocking and an entry
//! the journal cannot take right now is dropped, never waited for.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::record::{Outcome, Record, RecordKind};

pub const DEFAULT_SOCKET: &str = "/run/systemd/journal/socket";

/// Output lines sent per run at most (the last ones), when `job_output_to_journal` is on.
pub const LINES_PER_RUN: usize = 100;
/// Output lines sent across all jobs per `LINE_WINDOW` at most, like journald's own
/// `RateLimitBurst=`, so one chatty job cannot flood a small box's journal.
pub const LINE_BURST: u32 = 500;
pub const LINE_WINDOW: Duration = Duration::from_secs(30);

/// Appends one field: `KEY=value\n`, or the binary form (`KEY\n`, u64 length, value, `\n`)
/// when the value holds a newline.
pub fn field(buf: &mut Vec<u8>, key: &str, value: &[u8]) {
    buf.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

/// A field whose value is formatted in place (numbers: never a newline).
pub fn field_fmt(buf: &mut Vec<u8>, key: &str, value: std::fmt::Arguments) {
    buf.extend_from_slice(key.as_bytes());
    buf.push(b'=');
    let _ = buf.write_fmt(value);
    buf.push(b'\n');
}

/// syslog priority of a record: success 6, failure 3, timeout 3, alert warn 4, alert crit 2,
/// resolve 5.
pub fn priority(r: &Record) -> u8 {
    match r.kind {
        RecordKind::Alert => match r.level.as_deref() {
            Some("crit" | "critical") => 2,
            Some("warn" | "warning") => 4,
            _ => 3,
        },
        RecordKind::Resolve => 5,
        _ => match r.outcome {
            Outcome::Success => 6,
            Outcome::Skipped | Outcome::Interrupted => 4,
            Outcome::Stopped => 5,
            Outcome::Failure | Outcome::Timeout | Outcome::Killed | Outcome::SpawnFailed => 3,
        },
    }
}

/// The record's fields as one native-protocol entry, in `buf` (cleared first).
pub fn encode_record(buf: &mut Vec<u8>, r: &Record, seq: u64) {
    buf.clear();
    field(buf, "MESSAGE", r.summary().as_bytes());
    field_fmt(buf, "PRIORITY", format_args!("{}", priority(r)));
    field(buf, "SYSLOG_IDENTIFIER", b"runner");
    field(buf, "RUNNER_JOB", r.job.as_bytes());
    field(buf, "RUNNER_JOB_KIND", r.job_kind.as_str().as_bytes());
    field(buf, "RUNNER_KIND", r.kind.as_str().as_bytes());
    field(buf, "RUNNER_OUTCOME", r.outcome.as_str().as_bytes());
    // A daemon event is no fire of a job: it has no trigger and no attempt.
    if r.kind != RecordKind::Daemon {
        field(buf, "RUNNER_TRIGGER", r.trigger.as_str().as_bytes());
        field_fmt(buf, "RUNNER_ATTEMPT", format_args!("{}", r.attempt));
    }
    // As systemd's EXIT_CODE/EXIT_STATUS: how it ended, and the status or signal number.
    match (r.exit_code, r.signal) {
        (Some(c), _) => {
            field(buf, "RUNNER_EXIT_CODE", b"exited");
            field_fmt(buf, "RUNNER_EXIT_STATUS", format_args!("{c}"));
        }
        (None, Some(s)) => {
            field(buf, "RUNNER_EXIT_CODE", b"killed");
            field_fmt(buf, "RUNNER_EXIT_STATUS", format_args!("{s}"));
        }
        (None, None) => {}
    }
    field_fmt(buf, "RUNNER_DURATION_MS", format_args!("{}", r.duration.as_millis()));
    if let Some(cpu) = r.cpu_usec {
        field_fmt(buf, "RUNNER_CPU_USEC", format_args!("{cpu}"));
    }
    if let Some(peak) = r.memory_peak_bytes {
        field_fmt(buf, "RUNNER_MEMORY_PEAK_BYTES", format_args!("{peak}"));
    }
    field_fmt(buf, "RUNNER_SEQ", format_args!("{seq}"));
    if let Some(pid) = r.pid {
        field_fmt(buf, "RUNNER_PID", format_args!("{pid}"));
    }
    if let Some(v) = r.value {
        field_fmt(buf, "RUNNER_VALUE", format_args!("{v}"));
    }
    if let Some(l) = &r.level {
        field(buf, "RUNNER_LEVEL", l.as_bytes());
    }
    if !r.output_tail.is_empty() {
        field(buf, "RUNNER_OUTPUT", &r.output_tail);
    }
}

/// A connection to one journal socket. Cheap to keep; the socket is made on first use.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    sock: Option<UnixDatagram>,
    buf: Vec<u8>,
    said_absent: bool,
    window_start: Instant,
    lines_in_window: u32,
}

impl Journal {
    pub fn new(path: &Path) -> Journal {
        Journal {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner {
                sock: None,
                // Grown to the largest entry sent, not sized up front for the worst one.
                buf: Vec::new(),
                said_absent: false,
                window_start: Instant::now(),
                lines_in_window: 0,
            }),
        }
    }

    /// Sends one record; true if the journal took it.
    pub fn record(&self, r: &Record, seq: u64, job_output: bool) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *g;
        let mut buf = std::mem::take(&mut inner.buf);
        encode_record(&mut buf, r, seq);
        let sent = self.send_locked(inner, &buf);
        if sent && job_output && !r.output_tail.is_empty() {
            self.output_lines(inner, &mut buf, r, seq);
        }
        inner.buf = buf;
        sent
    }

    /// Each line of the run's output tail as its own entry under the job's name, the last
    /// `LINES_PER_RUN` of them, within the global burst.
    fn output_lines(&self, inner: &mut Inner, buf: &mut Vec<u8>, r: &Record, seq: u64) {
        if inner.window_start.elapsed() >= LINE_WINDOW {
            inner.window_start = Instant::now();
            inner.lines_in_window = 0;
        }
        let text = r.output_tail.strip_suffix(b"\n").unwrap_or(&r.output_tail);
        let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        let skip = lines.len().saturating_sub(LINES_PER_RUN);
        let mut dropped = skip;
        for line in &lines[skip..] {
            if inner.lines_in_window >= LINE_BURST {
                dropped += 1;
                continue;
            }
            inner.lines_in_window += 1;
            buf.clear();
            field(buf, "MESSAGE", line);
            field(buf, "PRIORITY", b"6");
            field(buf, "SYSLOG_IDENTIFIER", r.job.as_bytes());
            field(buf, "RUNNER_JOB", r.job.as_bytes());
            field_fmt(buf, "RUNNER_SEQ", format_args!("{seq}"));
            self.send_locked(inner, buf);
        }
        if dropped > 0 {
            buf.clear();
            field_fmt(buf, "MESSAGE", format_args!("{dropped} output line(s) of job {} not sent (rate limit)", r.job));
            field(buf, "PRIORITY", b"5");
            field(buf, "SYSLOG_IDENTIFIER", b"runner");
            field(buf, "RUNNER_JOB", r.job.as_bytes());
            self.send_locked(inner, buf);
        }
    }

    /// Sends a ready-made entry (the daemon's own log lines).
    pub fn send(&self, entry: &[u8]) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.send_locked(&mut g, entry)
    }

    fn send_locked(&self, inner: &mut Inner, entry: &[u8]) -> bool {
        if inner.sock.is_none() {
            match UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s)) {
                Ok(s) => inner.sock = Some(s),
                Err(_) => return false,
            }
        }
        let sock = inner.sock.as_ref().expect("set just above");
        match send_entry(sock, &self.path, entry) {
            Ok(()) => {
                inner.said_absent = false;
                true
            }
            Err(e) => {
                if !inner.said_absent {
                    inner.said_absent = true;
                    // Not through `log`: the daemon's logger may be this very journal.
                    if log::log_enabled!(log::Level::Debug) {
                        let _ = writeln!(
                            io::stderr(),
                            "journald at {} not reachable ({e}); records go to the ring only",
                            self.path.display()
                        );
                    }
                }
                false
            }
        }
    }
}

fn send_entry(sock: &UnixDatagram, path: &Path, entry: &[u8]) -> io::Result<()> {
    match sock.send_to(entry, path) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(nix::libc::EMSGSIZE) || e.raw_os_error() == Some(nix::libc::ENOBUFS) => {
            send_memfd(sock, path, entry)
        }
        Err(e) => Err(e),
    }
}

/// An entry too big for one datagram: written to a sealed memfd whose descriptor is passed
/// instead (what sd_journal_sendv does).
fn send_memfd(sock: &UnixDatagram, path: &Path, entry: &[u8]) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, SealFlag, fcntl};
    use nix::sys::memfd::{MFdFlags, memfd_create};
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    let fd = memfd_create(c"runner-journal", MFdFlags::MFD_ALLOW_SEALING | MFdFlags::MFD_CLOEXEC)?;
    let mut f = File::from(fd);
    f.write_all(entry)?;
    fcntl(&f, FcntlArg::F_ADD_SEALS(SealFlag::all()))?;
    let addr = UnixAddr::new(path)?;
    let fds = [f.as_raw_fd()];
    sendmsg(sock.as_raw_fd(), &[], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), Some(&addr))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Trigger;

    #[test]
    fn fields_use_the_binary_form_only_for_newlines() {
        let mut b = Vec::new();
        field(&mut b, "A", b"one line");
        field(&mut b, "B", b"two\nlines");
        let mut want = b"A=one line\nB\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert_eq!(b, want);
    }

    #[test]
    fn priorities_follow_outcome_and_level() {
        let mut r = Record::skipped("j", crate::record::Kind::Command, Trigger::Schedule, String::new());
        r.kind = RecordKind::Run;
        for (o, p) in [(Outcome::Success, 6), (Outcome::Failure, 3), (Outcome::Timeout, 3)] {
            r.outcome = o;
            assert_eq!(priority(&r), p, "{o:?}");
        }
        r.kind = RecordKind::Alert;
        r.level = Some("warn".into());
        assert_eq!(priority(&r), 4);
        r.level = Some("crit".into());
        assert_eq!(priority(&r), 2);
        r.kind = RecordKind::Resolve;
        assert_eq!(priority(&r), 5);
    }
}
