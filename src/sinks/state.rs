//! The persisted per-job state: one small JSON file per job, `state_dir/jobs/<job>.json`, so
//! a run rewrites only what changed and the bytes a fire writes do not grow with the number
//! of jobs.
//!
//! A job file is replaced atomically (temp file, rename) without fsync: the ring is what
//! makes a run durable. Each file remembers the sequence number of the last ring record it
//! folded in (`JobState::ring_seq`); [`StateStore::load`] applies the job's newer records
//! from the ring again, so a file that a crash or a power cut kept from the disk loses
//! nothing the ring held. Writers (the daemon's writer thread, `runner once`) change the
//! files by read-modify-write of typed [`Update`]s under `state.lock`, each applying only
//! its own changes to what is on disk, so neither loses the other's. A `state.json` from
//! before the per-job files is read as a base and split into job files once ([`migrate`]).
//!
//! Each job file has two copies when the store has a work directory (`runtime_dir/state`,
//! a tmpfs): the work copy, always the newest, which every writer writes, and the copy in
//! `state_dir/jobs`, which survives a reboot. A rename in `state_dir` costs the flash a new
//! inode, a directory block, bitmaps and a journal commit (about 37 KB a run on ext4
//! mounted `commit=1`, issue 29), for what the ring already holds. So the daemon's writer
//! ([`StateStore::lazy`]) writes the work copy alone and brings `state_dir` up to it with
//! [`checkpoint`] (a job's first file at once, then at most every few minutes, and durably
//! at a clean stop); `runner once` writes both. A power cut loses at most the few
//! minutes of what the ring cannot rebuild (a check's level, a queue's health part, a
//! wait), never a run the ring held.
//!
//! [`migrate`]: StateStore::migrate
//! [`checkpoint`]: StateStore::checkpoint

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::ring;
use crate::record::{Kind, Record, RecordKind};
pub use crate::state::*;
use crate::time::{epoch_ms, from_epoch_ms};

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
    /// Where the newest copy of each job file lives (`runtime_dir/state`); none: `dir` alone.
    work: Option<PathBuf>,
    /// Writes go to the work copy only (the daemon's writer, which checkpoints); otherwise
    /// to both copies.
    lazy: bool,
}

/// What [`StateStore::apply`] did: per update, whether it changed something; the touched
/// jobs as they now are on disk.
#[derive(Debug, Default)]
pub struct Applied {
    pub changed: Vec<bool>,
    pub jobs: State,
}

impl StateStore {
    pub fn new(dir: &Path) -> StateStore {
        StateStore { dir: dir.to_path_buf(), work: None, lazy: false }
    }

    /// A store whose newest job files are kept in `runtime_dir/state` too (a tmpfs).
    pub fn with_work(dir: &Path, runtime_dir: &Path) -> StateStore {
        StateStore { dir: dir.to_path_buf(), work: Some(runtime_dir.join("state")), lazy: false }
    }

    /// The daemon writer's mode: a change is written to the work copy alone, and reaches
    /// `state_dir` at the next [`checkpoint`](Self::checkpoint). Without a work directory
    /// nothing changes.
    pub fn lazy(mut self) -> StateStore {
        self.lazy = self.work.is_some();
        self
    }

    /// The work copy of one job's file, when the store keeps one.
    pub fn work_path(&self, job: &str) -> Option<PathBuf> {
        self.work.as_ref().map(|w| w.join(format!("{job}.json")))
    }

    pub fn jobs_dir(&self) -> PathBuf {
        self.dir.join("jobs")
    }

    /// The file that holds one job's state.
    pub fn job_path(&self, job: &str) -> PathBuf {
        self.jobs_dir().join(format!("{job}.json"))
    }

    /// The single state file of earlier versions.
    pub fn legacy_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    fn io(&self, what: &str, e: &dyn std::fmt::Display) -> StateError {
        StateError(format!("{}: {what}: {e}", self.dir.display()))
    }

    /// What runner knows: the job files, and each job's records the ring (at `ring`) holds
    /// beyond them. Takes no lock and writes nothing (`status`, `health`, `list`, daemon
    /// start).
    pub fn load(&self, ring: Option<&Path>) -> Result<State, StateError> {
        let entries = read_ring(ring);
        let mut state = self.load_files(entries.last().map(|e| e.seq))?;
        for (job, u) in replay(&state, &entries, None) {
            state.update(&job, u);
        }
        Ok(state)
    }

    /// The daemon's start: like [`load`](Self::load), and the records the ring held beyond
    /// the files (a crash or a power cut before they were written) are written to them.
    pub fn load_and_catch_up(&self, ring: Option<&Path>) -> Result<State, StateError> {
        let entries = read_ring(ring);
        let mut state = self.load_files(entries.last().map(|e| e.seq))?;
        let behind = replay(&state, &entries, None);
        if !behind.is_empty() {
            log::info!("state: {} record(s) from the run log were not in the job files; applying them", behind.len());
            self.apply(behind.clone(), None)?;
        }
        for (job, u) in behind {
            state.update(&job, u);
        }
        Ok(state)
    }

    /// The files alone: a `state.json` not yet migrated as the base (its jobs taken as
    /// up to date with the ring's newest record, `ring_tail`), the job files over it.
    pub fn load_files(&self, ring_tail: Option<u64>) -> Result<State, StateError> {
        let mut state = self.load_legacy(ring_tail)?;
        let mut names = BTreeSet::new();
        for dir in std::iter::once(self.jobs_dir()).chain(self.work.clone()) {
            let list = match std::fs::read_dir(&dir) {
                Ok(d) => d,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.io(&format!("cannot list {}", dir.display()), &e)),
            };
            for e in list {
                let e = e.map_err(|e| self.io(&format!("cannot list {}", dir.display()), &e))?;
                let name = e.file_name();
                let Some(job) = name.to_str().and_then(|n| n.strip_suffix(".json")) else { continue };
                if !job.starts_with('.') {
                    names.insert(job.to_string());
                }
            }
        }
        for job in names {
            if let Some(js) = self.read_job(&job)? {
                state.jobs.insert(job, js);
            }
        }
        Ok(state)
    }

    /// The newest ring sequence number any job file (or an unmigrated `state.json`) holds;
    /// 0 when none does or they cannot be read.
    pub fn newest_ring_seq(&self) -> u64 {
        self.load_files(None).map_or(0, |s| s.jobs.values().filter_map(|j| j.ring_seq).max().unwrap_or(0))
    }

    fn load_legacy(&self, ring_tail: Option<u64>) -> Result<State, StateError> {
        let path = self.legacy_path();
        let mut state: State = match crate::fsx::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| unreadable(&path, &e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => return Err(StateError(format!("{}: {e}", path.display()))),
        };
        // That file was written, durably, after each record reached the ring.
        for js in state.jobs.values_mut() {
            js.ring_seq = js.ring_seq.or(ring_tail);
        }
        Ok(state)
    }

    /// One job's file: its work copy when there is one (every writer writes it, so it is
    /// the newest), else the copy in `state_dir`; none when absent or empty (a file a power
    /// cut emptied: the ring replay restores what it held).
    pub fn read_job(&self, job: &str) -> Result<Option<JobState>, StateError> {
        let (path, bytes) = self.read_newest(job)?;
        match bytes {
            Some(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| unreadable(&path, &e)),
            None => Ok(None),
        }
    }

    /// The bytes of a job's newest copy and where they were read; none when neither exists.
    fn read_newest(&self, job: &str) -> Result<(PathBuf, Option<Vec<u8>>), StateError> {
        for path in self.work_path(job).into_iter().chain([self.job_path(job)]) {
            match crate::fsx::read(&path) {
                Ok(bytes) => return Ok((path, Some(bytes))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StateError(format!("{}: {e}", path.display()))),
            }
        }
        Ok((self.job_path(job), None))
    }

    /// One job's file as a writer reads it: a damaged file is moved aside for a person to
    /// look at (never written over) and the job starts afresh from the ring.
    fn read_job_for_update(&self, job: &str) -> Result<Option<JobState>, StateError> {
        match self.read_job(job) {
            Ok(js) => Ok(js),
            Err(e) => {
                // The copy that was read: the work copy when there is one.
                let path = match self.work_path(job) {
                    Some(w) if std::fs::symlink_metadata(&w).is_ok() => w,
                    _ => self.job_path(job),
                };
                let aside = path.with_extension(format!("json.corrupt-{}", epoch_ms(SystemTime::now())));
                log::error!("{e}; moved to {}", aside.display());
                std::fs::rename(&path, &aside).map_err(|e| self.io("cannot move a damaged job state aside", &e))?;
                Ok(None)
            }
        }
    }

    fn lock(&self) -> Result<crate::lock::Held, StateError> {
        let jobs = self.jobs_dir();
        let dirs = [(self.dir.as_path(), true), (jobs.as_path(), false)];
        for (d, follow) in dirs {
            crate::fsx::own_dir_once(d, follow).map_err(|e| self.io("cannot use the state directory", &e))?;
        }
        let path = self.dir.join("state.lock");
        crate::fsx::in_own_dirs(&dirs, || crate::lock::wait_file(&path))
            .map_err(|e| self.io("cannot lock state.lock", &e))
    }

    /// Reads, changes and writes the jobs the updates name, under `state.lock`, without
    /// fsync. With `ring`, each touched job's records the ring holds beyond its file are
    /// folded in first (a daemon that crashed before writing them). A `Ran` update the file
    /// already holds (by ring sequence) changes nothing, so applying one twice is harmless.
    pub fn apply(&self, updates: Vec<(String, Update)>, ring: Option<&Path>) -> Result<Applied, StateError> {
        let _lock = self.lock()?;
        let mut out = Applied::default();
        let names: BTreeSet<String> = updates.iter().map(|(j, _)| j.clone()).collect();
        for job in &names {
            if let Some(js) = self.read_job_for_update(job)? {
                out.jobs.jobs.insert(job.clone(), js);
            }
        }
        let mut dirty = BTreeSet::new();
        if ring.is_some() {
            for (job, u) in replay(&out.jobs, &read_ring(ring), Some(&names)) {
                if out.jobs.update(&job, u) {
                    dirty.insert(job);
                }
            }
        }
        for (job, u) in updates {
            let changed = out.jobs.update(&job, u);
            if changed {
                dirty.insert(job);
            }
            out.changed.push(changed);
        }
        for job in &dirty {
            self.write_job(job, &out.jobs.jobs[job], false)?;
        }
        Ok(out)
    }

    fn write_job(&self, job: &str, js: &JobState, durable: bool) -> Result<(), StateError> {
        let mut bytes = serde_json::to_vec(js).map_err(|e| self.io("cannot encode the state", &e))?;
        bytes.push(b'\n');
        if let Some(work) = &self.work {
            let (path, tmp) = (work.join(format!("{job}.json")), work.join(format!(".{job}.tmp")));
            let runtime = work.parent().unwrap_or(work);
            // A tmpfs: no fsync, and removed under a running daemon it is made again.
            crate::fsx::in_own_dirs(&[(runtime, true), (work, false)], || {
                crate::fsx::replace(&path, &tmp, &bytes, 0o644, false)
            })
            .map_err(|e| self.io("cannot write a job's state to the runtime directory", &e))?;
            if self.lazy {
                return Ok(());
            }
        }
        self.write_durable_copy(job, &bytes, durable)
    }

    /// Writes a job's copy in `state_dir/jobs`.
    fn write_durable_copy(&self, job: &str, bytes: &[u8], durable: bool) -> Result<(), StateError> {
        let tmp = self.jobs_dir().join(format!(".{job}.tmp"));
        let (jobs, path) = (self.jobs_dir(), self.job_path(job));
        // jobs/ removed under a running daemon is made again, and the run still recorded.
        crate::fsx::in_own_dirs(&[(&self.dir, true), (&jobs, false)], || {
            crate::fsx::replace(&path, &tmp, bytes, 0o644, durable)
        })
        .map_err(|e| self.io("cannot write a job's state", &e))
    }

    /// Whether a job has no copy in `state_dir` (never written there, or removed): the
    /// daemon's writer checkpoints such a job at once. A look at the directory, no write.
    pub fn missing_in_state_dir(&self, job: &str) -> bool {
        std::fs::symlink_metadata(self.job_path(job)).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    }

    /// Brings the named jobs' copies in `state_dir` up to their work copies (a copy already
    /// the same is not written again), under `state.lock`; with `durable`, fsynced with the
    /// directory (a clean stop). Without a work directory the files are already there, and
    /// `durable` fsyncs them.
    pub fn checkpoint<'a>(&self, jobs: impl IntoIterator<Item = &'a String>, durable: bool) -> Result<(), StateError> {
        let _lock = self.lock()?;
        for job in jobs {
            let newest = self.work_path(job).map(|w| crate::fsx::read(&w));
            match newest {
                Some(Ok(bytes)) => {
                    if crate::fsx::read(&self.job_path(job)).ok().as_deref() != Some(bytes.as_slice()) {
                        self.write_durable_copy(job, &bytes, durable)?;
                    } else if durable {
                        self.sync_copy(job)?;
                    }
                }
                Some(Err(e)) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(self.io("cannot read a job's state in the runtime directory", &e));
                }
                _ if durable => self.sync_copy(job)?,
                _ => {}
            }
        }
        if !durable {
            return Ok(());
        }
        match File::open(self.jobs_dir()).and_then(|d| d.sync_all()) {
            // No job has run yet: nothing to make durable (a clean stop logged an error).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r.map_err(|e| self.io("cannot sync jobs/", &e)),
        }
    }

    /// Flushes one job's copy in `state_dir` to the disk, if there is one.
    fn sync_copy(&self, job: &str) -> Result<(), StateError> {
        match crate::fsx::open_read(&self.job_path(job)) {
            Ok(f) => f.sync_all().map_err(|e| self.io("cannot sync a job's state", &e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("cannot sync a job's state", &e)),
        }
    }

    /// Splits a `state.json` of an earlier version into job files (durably, once), then
    /// removes it. A job file already there wins. A damaged `state.json` is moved aside.
    pub fn migrate(&self, ring: Option<&Path>) -> Result<(), StateError> {
        if !self.legacy_path().exists() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let legacy = match self.load_legacy(read_ring(ring).last().map(|e| e.seq)) {
            Ok(s) => s,
            Err(e) => {
                let aside = self.dir.join(format!("state.json.corrupt-{}", epoch_ms(SystemTime::now())));
                log::error!("{e}; moved to {}", aside.display());
                return std::fs::rename(self.legacy_path(), &aside)
                    .map_err(|e| self.io("cannot move the damaged state aside", &e));
            }
        };
        for (job, js) in &legacy.jobs {
            if matches!(self.read_newest(job), Ok((_, None))) {
                self.write_job(job, js, true)?;
            }
        }
        File::open(self.jobs_dir()).and_then(|d| d.sync_all()).map_err(|e| self.io("cannot sync jobs/", &e))?;
        std::fs::remove_file(self.legacy_path()).map_err(|e| self.io("cannot remove the migrated state.json", &e))?;
        log::info!(
            "state: {} moved to one file per job in {}",
            self.legacy_path().display(),
            self.jobs_dir().display()
        );
        Ok(())
    }
}

fn unreadable(path: &Path, e: &dyn std::fmt::Display) -> StateError {
    StateError(format!(
        "{}: unreadable state ({e}); move it aside to start afresh (run history is lost, jobs are not)",
        path.display()
    ))
}

/// The ring's records, oldest first; none when there is no ring (or it cannot be read: the
/// files alone are then what is known).
pub fn read_ring(ring: Option<&Path>) -> Vec<ring::Entry> {
    let Some(path) = ring else { return Vec::new() };
    match ring::read_path(path) {
        Ok(v) => v,
        Err(ring::RingError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            log::warn!("cannot read the run log {} to complete the state: {e}", path.display());
            Vec::new()
        }
    }
}

/// The updates that bring `state` up to what the ring holds: each record of a job (of the
/// `only` jobs, if given) newer than the job's `ring_seq`, oldest first.
pub fn replay(state: &State, entries: &[ring::Entry], only: Option<&BTreeSet<String>>) -> Vec<(String, Update)> {
    entries
        .iter()
        .filter(|e| only.is_none_or(|o| o.contains(&e.job)))
        .filter(|e| state.jobs.get(&e.job).and_then(|j| j.ring_seq).is_none_or(|have| e.seq > have))
        .filter_map(|e| {
            let r = entry_record(e)?;
            State::changed_by(&r).then(|| (e.job.clone(), Update::Ran { seq: Some(e.seq), record: Box::new(r) }))
        })
        .collect()
}

/// A record as the state needs it, from the ring's copy: it ended when it was written.
fn entry_record(e: &ring::Entry) -> Option<Record> {
    let job_kind = Kind::parse(&e.job_kind)?;
    if e.kind == RecordKind::Audit {
        return None;
    }
    let duration = Duration::from_micros(e.duration_us);
    Some(Record {
        kind: e.kind,
        job: e.job.clone(),
        job_kind,
        trigger: e.trigger,
        attempt: e.attempt,
        last_attempt: e.last_attempt,
        started_at: from_epoch_ms(e.realtime_us / 1000 - duration.as_millis() as i64),
        duration,
        outcome: e.outcome,
        exit_code: e.exit_code,
        signal: e.signal,
        pid: e.pid,
        output_tail: Vec::new(),
        message: String::new(),
        value: e.value,
        level: e.level.clone(),
        cpu_usec: e.cpu_usec,
        memory_peak_bytes: e.memory_peak_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Outcome;
    use crate::state::tests::rec;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("runner-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn ran(seq: u64, o: Outcome) -> (String, Update) {
        ("j".into(), Update::Ran { seq: Some(seq), record: Box::new(rec(o)) })
    }

    #[test]
    fn apply_round_trips_and_keeps_damaged_files() {
        let dir = scratch("rt");
        let store = StateStore::new(&dir);
        store.apply(vec![ran(1, Outcome::Success)], None).unwrap();
        assert_eq!(store.load(None).unwrap().jobs["j"].runs, 1);
        std::fs::write(store.job_path("j"), b"{not json").unwrap();
        assert!(store.load(None).is_err());
        store.apply(vec![ran(2, Outcome::Failure)], None).unwrap();
        assert_eq!(store.load(None).unwrap().jobs["j"].runs, 1);
        let kept = std::fs::read_dir(store.jobs_dir())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("j.json.corrupt-"));
        assert_eq!(kept.count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_legacy_state_file_is_split_into_job_files_once() {
        let dir = scratch("migrate");
        let store = StateStore::new(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            store.legacy_path(),
            r#"{"version":1,"jobs":{"a":{"runs":3,"running":[{"pgid":9,"since_ms":1,"by":"daemon","runner_pid":2,"boot_id":"b"}]},"b":{"last_fire_ms":5}}}"#,
        )
        .unwrap();
        let before = store.load(None).unwrap();
        assert_eq!((before.jobs["a"].runs, before.jobs["a"].running.len()), (3, 1), "read before the migration");
        store.migrate(None).unwrap();
        assert!(!store.legacy_path().exists());
        let after = store.load(None).unwrap();
        assert_eq!(after.jobs["a"].runs, 3);
        assert_eq!(after.jobs["b"].last_fire_ms, Some(5));
        assert!(after.jobs["a"].running.is_empty(), "running groups are not carried into job files");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
