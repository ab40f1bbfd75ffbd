//! The daemon's own log lines: plain stderr on a terminal; when stderr is connected to
//! journald (`JOURNAL_STREAM`), entries sent by the native protocol with PRIORITY, CODE_FILE,
//! CODE_LINE and CODE_FUNC (the module), falling back to `<N>`-prefixed stderr lines
//! (sd-daemon(3)) if the journal socket cannot take them.

use std::io::Write;
use std::os::fd::AsFd;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// `RUNNER_LOG_LEVEL` (error, warn, info, debug, trace), info by default.
pub fn level_from_env() -> LevelFilter {
    std::env::var("RUNNER_LOG_LEVEL").ok().and_then(|v| v.parse().ok()).unwrap_or(LevelFilter::Info)
}

/// Whether stderr is the stream systemd named in `JOURNAL_STREAM` (`dev:ino`).
pub fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = v.split_once(':') else { return false };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr().as_fd()) else { return false };
    // `st_dev` and `st_ino` are narrower than u64 on some 32-bit targets: widen, never cut.
    #[allow(clippy::useless_conversion)]
    let (st_dev, st_ino) = (u64::from(st.st_dev), u64::from(st.st_ino));
    dev.parse::<u64>().ok() == Some(st_dev) && ino.parse::<u64>().ok() == Some(st_ino)
}

struct JournalStreamLogger {
    level: LevelFilter,
    /// `RUNNER_JOURNAL_SOCKET` or journald's default: the config is read after logging starts.
    journal: crate::journal::Journal,
}

impl Log for JournalStreamLogger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let prio = match r.level() {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        };
        use crate::journal::{field, field_fmt};
        let mut entry = Vec::with_capacity(256);
        field(&mut entry, "MESSAGE", r.args().to_string().as_bytes());
        field_fmt(&mut entry, "PRIORITY", format_args!("{prio}"));
        field(&mut entry, "SYSLOG_IDENTIFIER", b"runner");
        if let Some(file) = r.file() {
            field(&mut entry, "CODE_FILE", file.as_bytes());
        }
        if let Some(line) = r.line() {
            field_fmt(&mut entry, "CODE_LINE", format_args!("{line}"));
        }
        if let Some(module) = r.module_path() {
            field(&mut entry, "CODE_FUNC", module.as_bytes());
        }
        if !self.journal.send(&entry) {
            let _ = writeln!(std::io::stderr().lock(), "<{prio}>{}", r.args());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls are ignored.
pub fn init(level: LevelFilter) {
    if stderr_is_journal() {
        let socket = std::env::var_os("RUNNER_JOURNAL_SOCKET")
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| crate::journal::DEFAULT_SOCKET.into());
        let journal = crate::journal::Journal::new(&socket);
        if log::set_boxed_logger(Box::new(JournalStreamLogger { level, journal })).is_ok() {
            log::set_max_level(level);
        }
    } else if log::set_boxed_logger(Box::new(StderrLogger { level })).is_ok() {
        log::set_max_level(level);
    }
}

/// `HH:MM:SS [LEVEL] message` (UTC) on stderr, each line one write(2), so lines from the
/// daemon and its writer thread never interleave and a line costs one system call.
struct StderrLogger {
    level: LevelFilter,
}

impl Log for StderrLogger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
        let line = format!("{h:02}:{m:02}:{s:02} [{}] {}\n", r.level(), r.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}
