//! The daemon's own log lines: plain stderr on a terminal, `<N>`-prefixed lines when stderr
//! is connected to journald (sd-daemon(3)), so the journal keeps each line's priority.

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
    dev.parse::<u64>().ok() == Some(st.st_dev) && ino.parse::<u64>().ok() == Some(st.st_ino)
}

struct JournalStreamLogger {
    level: LevelFilter,
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
        let _ = writeln!(std::io::stderr().lock(), "<{prio}>{}", r.args());
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls are ignored.
pub fn init(level: LevelFilter) {
    if stderr_is_journal() {
        if log::set_boxed_logger(Box::new(JournalStreamLogger { level })).is_ok() {
            log::set_max_level(level);
        }
    } else {
        let config = simplelog::ConfigBuilder::new()
            .set_time_level(LevelFilter::Trace)
            .set_target_level(LevelFilter::Off)
            .set_thread_level(LevelFilter::Off)
            .build();
        let _ = simplelog::WriteLogger::init(level, config, std::io::stderr());
    }
}
