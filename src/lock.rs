//! Every advisory file lock runner takes: one per job and the daemon's pid file under
//! `runtime_dir`, a spool's `.lock`, the state file's `state.lock` and the ring file's
//! append lock. Other modules call these functions and never flock(2) themselves.
//!
//! flock(2) locks die with their holder, so a stale file or a recycled pid never fools a
//! reader: a lock that can be taken is not held, whatever the file says. The holder writes
//! who it is into the file for the messages of those who find it busy.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::fsx;
use crate::time::epoch_ms;

/// Who holds a lock, as the holder wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub since_ms: i64,
    pub by: String,
}

impl Holder {
    fn parse(text: &str) -> Option<Holder> {
        let mut it = text.split_whitespace();
        Some(Holder { pid: it.next()?.parse().ok()?, since_ms: it.next()?.parse().ok()?, by: it.next()?.to_string() })
    }
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Held {
    _lock: Flock<File>,
    pub path: PathBuf,
    /// Who held it last, as the file said when it was taken (None: nobody yet, or a holder
    /// that died half-way through writing its line).
    pub previous: Option<Holder>,
    /// The daemon's pid file goes when the daemon stops cleanly; job locks stay (a lock
    /// file removed under a waiter would let two holders in).
    remove_on_drop: bool,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // Still locked here: no other daemon can have taken this file.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

pub enum Try {
    Acquired(Held),
    Busy(Option<Holder>),
}

/// Opens (creating) a lock file without following a link planted at its name. A missing
/// directory is the caller's to make and check (`fsx::own_dir`, `fsx::in_own_dirs`): made
/// here, it would skip the ownership check that every directory runner writes in gets.
fn open(path: &Path) -> std::io::Result<File> {
    fsx::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))
}

/// Opens a job's lock file in `runtime_dir/jobs/`, which are made if missing and refused
/// unless they are runner's own (`fsx::own_dir`), checked once per process and again when
/// one was removed.
fn open_job(runtime_dir: &Path, job: &str) -> std::io::Result<(PathBuf, File)> {
    let path = job_lock_path(runtime_dir, job);
    let jobs = runtime_dir.join("jobs");
    let f = fsx::in_own_dirs(&[(runtime_dir, true), (&jobs, false)], || {
        fsx::options().create(true).truncate(false).read(true).write(true).mode(0o644).open(&path)
    })
    .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    Ok((path, f))
}

fn to_io((_, e): (File, Errno)) -> std::io::Error {
    std::io::Error::from(e)
}

/// One `pwrite` of the whole line at offset 0 (not a seek and a write per field); returns
/// the line it replaced, read with one `pread`. The file is cut only when the old line was
/// longer: a truncation to zero frees and reallocates the file's block on a disk (0.4 ms on
/// ext4, on the path of every job start), and the daemon's line is the same length each
/// time. Readers parse the first three words, so an old tail left for a moment is harmless.
fn stamp(lock: &mut Flock<File>, by: &str) -> std::io::Result<Option<Holder>> {
    use std::os::unix::fs::FileExt;
    let mut before = [0u8; 128];
    let n = lock.read_at(&mut before, 0)?;
    let previous = std::str::from_utf8(&before[..n]).ok().and_then(Holder::parse);
    let line = format!("{} {} {by}\n", crate::host::pid(), epoch_ms(SystemTime::now()));
    lock.write_all_at(line.as_bytes(), 0)?;
    if n > line.len() {
        lock.set_len(line.len() as u64)?;
    }
    Ok(previous)
}

/// Reads who holds the lock at `path`, if anyone does.
pub fn holder(path: &Path) -> Option<Holder> {
    let f = fsx::open_read(path).ok()?;
    match Flock::lock(f, FlockArg::LockSharedNonblock) {
        Ok(_free) => None,
        Err((mut f, Errno::EWOULDBLOCK)) => {
            let mut s = String::new();
            f.read_to_string(&mut s).ok()?;
            Holder::parse(&s)
        }
        Err(_) => None,
    }
}

pub fn job_lock_path(runtime_dir: &Path, job: &str) -> PathBuf {
    runtime_dir.join("jobs").join(format!("{job}.lock"))
}

/// Takes the lock at `path` without waiting and writes who holds it, or says who does.
fn try_lock(path: PathBuf, f: File, by: &str) -> std::io::Result<Try> {
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(mut l) => {
            let previous = stamp(&mut l, by)?;
            Ok(Try::Acquired(Held { _lock: l, path, previous, remove_on_drop: false }))
        }
        Err((mut f, Errno::EWOULDBLOCK)) => {
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
            Ok(Try::Busy(Holder::parse(&s)))
        }
        Err(e) => Err(to_io(e)),
    }
}

/// Takes a job's lock without waiting. `by` says who runs it (`daemon` or `once`).
pub fn try_job(runtime_dir: &Path, job: &str, by: &str) -> std::io::Result<Try> {
    let (path, f) = open_job(runtime_dir, job)?;
    try_lock(path, f, by)
}

/// Takes a job's lock, waiting for the current holder. Blocks the thread.
pub fn wait_job(runtime_dir: &Path, job: &str, by: &str) -> std::io::Result<Held> {
    let (path, f) = open_job(runtime_dir, job)?;
    let mut l = Flock::lock(f, FlockArg::LockExclusive).map_err(to_io)?;
    let previous = stamp(&mut l, by)?;
    Ok(Held { _lock: l, path, previous, remove_on_drop: false })
}

/// Takes the lock at any `path` without waiting (a queue's spool lock, say).
pub fn try_file(path: &Path, by: &str) -> std::io::Result<Try> {
    try_lock(path.to_path_buf(), open(path)?, by)
}

/// Takes the lock at `path`, waiting for the current holder, without writing who holds it
/// (the state file's `state.lock`: written on every state change, so kept empty). Blocks
/// the thread.
pub fn wait_file(path: &Path) -> std::io::Result<Held> {
    let f = open(path)?;
    let l = Flock::lock(f, FlockArg::LockExclusive).map_err(to_io)?;
    Ok(Held { _lock: l, path: path.to_path_buf(), previous: None, remove_on_drop: false })
}

/// An exclusive lock on a file's open file description (the ring file during one append);
/// released when dropped. It owns a duplicate of the caller's descriptor, so the caller can
/// go on using its file mutably, and the unlock at drop reaches the file that was locked even
/// if the caller's descriptor number was closed and reused meanwhile (a bare number would
/// unlock whatever it named by then). The duplicate costs a dup(2) and a close(2).
#[derive(Debug)]
pub struct OnFd(OwnedFd);

/// Takes an exclusive lock on `f`, waiting for the holder. Blocks the thread.
pub fn exclusive(f: &File) -> std::io::Result<OnFd> {
    let fd = f.as_fd().try_clone_to_owned()?;
    runner_sys::fd::flock_exclusive(fd.as_fd())?;
    Ok(OnFd(fd))
}

impl Drop for OnFd {
    fn drop(&mut self) {
        runner_sys::fd::flock_unlock(self.0.as_fd());
    }
}

pub fn pid_file_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("runner.pid")
}

/// The daemon's pid file, held for its lifetime: one daemon per state and runtime dir.
/// The file is removed when the returned lock is dropped (a clean stop); a lock taken on a
/// file a stopping daemon has just unlinked is retried on the new one.
pub fn try_daemon(runtime_dir: &Path) -> std::io::Result<Try> {
    use std::os::unix::fs::MetadataExt;
    fsx::own_dir(runtime_dir, true)?;
    let path = pid_file_path(runtime_dir);
    loop {
        match try_lock(path.clone(), open(&path)?, "daemon")? {
            Try::Acquired(mut held) => {
                let mine = held._lock.metadata()?;
                match std::fs::metadata(&path) {
                    Ok(m) if m.dev() == mine.dev() && m.ino() == mine.ino() => {
                        held.remove_on_drop = true;
                        return Ok(Try::Acquired(held));
                    }
                    _ => continue,
                }
            }
            busy => return Ok(busy),
        }
    }
}

/// Locks `f` exclusively without waiting and keeps it locked while the result lives (the
/// `--pidfile` file); `Ok(Err(f))` when another process holds it.
pub fn try_hold(f: File) -> std::io::Result<Result<Flock<File>, File>> {
    match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(Ok(l)),
        Err((f, Errno::EWOULDBLOCK)) => Ok(Err(f)),
        Err(e) => Err(to_io(e)),
    }
}

/// The running daemon, if any.
pub fn daemon(runtime_dir: &Path) -> Option<Holder> {
    holder(&pid_file_path(runtime_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_names_its_holder_and_frees_on_drop() {
        let dir = std::env::temp_dir().join(format!("runner-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let Try::Acquired(held) = try_job(&dir, "j", "once").unwrap() else { panic!("fresh lock busy") };
        match try_job(&dir, "j", "daemon").unwrap() {
            Try::Busy(Some(h)) => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.by, "once");
            }
            _ => panic!("second lock should be busy with a holder"),
        }
        assert_eq!(holder(&held.path).map(|h| h.by), Some("once".to_string()));
        drop(held);
        assert!(holder(&job_lock_path(&dir, "j")).is_none());
        // A longer line before: cut to the new one, whose words are all a reader sees.
        std::fs::write(
            job_lock_path(&dir, "j"),
            format!("{} 1 once-with-a-long-name-{}\n", std::process::id(), "x".repeat(60)),
        )
        .unwrap();
        let Try::Acquired(again) = try_job(&dir, "j", "daemon").unwrap() else { panic!("free lock busy") };
        let text = std::fs::read_to_string(job_lock_path(&dir, "j")).unwrap();
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.ends_with(" daemon\n"), "{text:?}");
        let previous = again.previous.as_ref().expect("the last holder's line");
        assert_eq!(previous.pid, std::process::id());
        assert!(previous.by.starts_with("once-with-a-long-name-"), "{previous:?}");
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A lock in a missing directory is an error (ENOENT) for the caller's `in_own_dirs`,
    /// which makes the directory and checks it; the lock never makes it unchecked.
    #[test]
    fn a_lock_file_is_never_made_in_a_missing_directory() {
        let dir = std::env::temp_dir().join(format!("runner-lock-missing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let e = wait_file(&dir.join("state.lock")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        assert!(matches!(try_file(&dir.join(".lock"), "once"), Err(e) if e.kind() == std::io::ErrorKind::NotFound));
        assert!(!dir.exists(), "the lock made its directory");
    }
}
