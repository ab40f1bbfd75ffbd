//! The persisted per-job state: last run, outcome, failures, running process group.
//!
//! One JSON file under `state_dir`, replaced atomically (temp file, fsync, rename, fsync of
//! the directory) and only when something changes: a run starting or ending, never on a
//! timer, since flash wears out. The daemon and `runner once` both write it, serialised by a
//! lock file, each changing only what it knows (read, modify, write under the lock).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use crate::state::*;
use crate::time::epoch_ms;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    Fsync,
    PageCache,
}

#[derive(Debug)]
pub struct StateError(pub String);

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

#[derive(Clone, Debug)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub fn new(dir: &Path) -> StateStore {
        StateStore { dir: dir.to_path_buf() }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// The state as last written; an absent file is an empty state.
    pub fn load(&self) -> Result<State, StateError> {
        match std::fs::read(self.path()) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StateError(format!(
                    "{}: unreadable state ({e}); move it aside to start afresh (run history is lost, jobs are not)",
                    self.path().display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(StateError(format!("{}: {e}", self.path().display()))),
        }
    }

    /// Reads, changes and writes the state under the state lock, durably (fsync): for what
    /// must survive power loss, such as a finished run.
    pub fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
        self.update_with(Durability::Fsync, f)
    }

    /// Like [`update`](Self::update) but without fsync: still atomic (a reader sees the old
    /// file or the new one), and it survives the daemon being killed, only not power loss.
    /// For facts a power loss makes moot, such as which process groups are running, so a
    /// run does not wait for the disk before it starts.
    pub fn update_volatile<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
        self.update_with(Durability::PageCache, f)
    }

    fn update_with<T>(&self, durability: Durability, f: impl FnOnce(&mut State) -> T) -> Result<T, StateError> {
        let io = |what: &str, e: &dyn std::fmt::Display| StateError(format!("{}: {what}: {e}", self.dir.display()));
        std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create the state directory", &e))?;
        let _lock =
            crate::lock::wait_file(&self.dir.join("state.lock")).map_err(|e| io("cannot lock state.lock", &e))?;
        let mut state = match self.load() {
            Ok(s) => s,
            Err(e) => {
                // Keep the damaged file for a person to look at; never write over it.
                let aside = self.dir.join(format!("state.json.corrupt-{}", epoch_ms(SystemTime::now())));
                log::error!("{e}; moved to {}", aside.display());
                std::fs::rename(self.path(), &aside).map_err(|e| io("cannot move the damaged state aside", &e))?;
                State::default()
            }
        };
        let before = state.clone();
        let out = f(&mut state);
        if state != before {
            self.write(&state, durability)?;
        }
        Ok(out)
    }

    fn write(&self, state: &State, durability: Durability) -> Result<(), StateError> {
        let io = |what: &str, e: &dyn std::fmt::Display| StateError(format!("{}: {what}: {e}", self.dir.display()));
        let tmp = self.dir.join("state.json.tmp");
        let mut bytes = serde_json::to_vec_pretty(state).map_err(|e| io("cannot encode the state", &e))?;
        bytes.push(b'\n');
        let mut f = File::create(&tmp).map_err(|e| io("cannot write state.json.tmp", &e))?;
        f.write_all(&bytes).map_err(|e| io("cannot write state.json.tmp", &e))?;
        if durability == Durability::Fsync {
            f.sync_all().map_err(|e| io("cannot sync state.json.tmp", &e))?;
        }
        std::fs::rename(&tmp, self.path()).map_err(|e| io("cannot replace state.json", &e))?;
        if durability == Durability::Fsync {
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io("cannot sync the state directory", &e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;
    use crate::state::tests::rec;

    #[test]
    fn update_round_trips_and_keeps_damaged_files() {
        let dir = std::env::temp_dir().join(format!("runner-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = StateStore::new(&dir);
        store.update(|s| s.apply(&rec(Outcome::Success))).unwrap();
        assert_eq!(store.load().unwrap().jobs["j"].runs, 1);
        std::fs::write(store.path(), b"{not json").unwrap();
        assert!(store.load().is_err());
        store.update(|s| s.apply(&rec(Outcome::Failure))).unwrap();
        assert_eq!(store.load().unwrap().jobs["j"].runs, 1);
        let kept = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("state.json.corrupt-"));
        assert_eq!(kept.count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
