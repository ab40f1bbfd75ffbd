//! Where records go. `Sinks::emit` is the one place a finished run, or a skipped fire, is
//! stored: today the state file and the log; the ring file and journald plug in here.

pub mod state;

use crate::record::{Outcome, Record, RecordKind};
use state::StateStore;

#[derive(Clone, Debug)]
pub struct Sinks {
    pub state: StateStore,
}

impl Sinks {
    pub fn new(state: StateStore) -> Sinks {
        Sinks { state }
    }

    /// Stores one record everywhere it belongs. A sink that fails is logged, never fatal:
    /// losing a log line must not stop jobs from running.
    pub fn emit(&self, r: &Record) {
        let line = r.summary();
        match r.outcome {
            Outcome::Success => log::info!("{line}"),
            Outcome::Skipped | Outcome::Stopped => log::warn!("{line}"),
            _ => log::error!("{line}"),
        }
        // Audit lines describe one decision inside a run; the run's own record updates the
        // state, once, so a sweep of many processes is not many writes to flash.
        if r.kind == RecordKind::Audit {
            return;
        }
        if let Err(e) = self.state.update(|s| s.apply(r)) {
            log::error!("cannot record the run of {}: {e}", r.job);
        }
    }
}
