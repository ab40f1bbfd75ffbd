//! Where records go. `Sinks::emit` is the one place a finished run, or a skipped fire, is
//! stored: today the state file and the log; the ring file and journald plug in here.

pub mod live;
pub mod state;
pub mod textfile;

use std::path::{Path, PathBuf};

use crate::record::{Outcome, Record, RecordKind};
use state::StateStore;

#[derive(Clone, Debug)]
pub struct Sinks {
    pub state: StateStore,
    /// Where checks' live files go (a tmpfs); none in unit tests.
    pub runtime_dir: Option<PathBuf>,
    /// The Prometheus textfile, rewritten after each run, when `export:` asks for it.
    pub textfile: Option<PathBuf>,
}

impl Sinks {
    pub fn new(state: StateStore) -> Sinks {
        Sinks { state, runtime_dir: None, textfile: None }
    }

    /// Adds the volatile sinks under `runtime_dir`: checks' live values and the textfile.
    pub fn with_runtime(mut self, runtime_dir: &Path, textfile: Option<PathBuf>) -> Sinks {
        self.runtime_dir = Some(runtime_dir.to_path_buf());
        self.textfile = textfile;
        self
    }

    /// Stores one record everywhere it belongs. A sink that fails is logged, never fatal:
    /// losing a log line must not stop jobs from running.
    pub fn emit(&self, r: &Record) {
        let line = r.summary();
        match (r.kind, r.outcome) {
            (RecordKind::Alert, _) => log::warn!("{line}"),
            // A check's every sample is routine; its alerts and resolves are the news.
            (RecordKind::Run, _) if r.job_kind == "check" => log::debug!("{line}"),
            (_, Outcome::Success) => log::info!("{line}"),
            (_, Outcome::Skipped | Outcome::Stopped) => log::warn!("{line}"),
            _ => log::error!("{line}"),
        }
        let is_check_run = r.kind == RecordKind::Run && r.job_kind == "check";
        if is_check_run {
            if let Some(dir) = &self.runtime_dir
                && let Err(e) = live::write(dir, r)
            {
                log::error!("cannot write the live value of check {}: {e}", r.job);
            }
        } else if let Err(e) = self.state.update(|s| s.apply(r)) {
            log::error!("cannot record the run of {}: {e}", r.job);
        }
        if r.kind == RecordKind::Run
            && let (Some(path), Some(dir)) = (&self.textfile, &self.runtime_dir)
        {
            let state = self.state.load().unwrap_or_default();
            if let Err(e) = textfile::write(path, &textfile::render(&state, &live::read_all(dir))) {
                log::error!("cannot write the textfile {}: {e}", path.display());
            }
        }
    }
}
