//! A maildir-style spool of work items on disk: layout, item names, moves between states,
//! counts, retention and the small history of finished items that the queue's health is
//! computed from.
//!
//! Layout under the spool directory:
//! - `tmp/`: items being written by a producer; never read by the flusher.
//! - `new/`: pending items, waiting for their first attempt or for their retry to be due.
//! - `cur/`: items a flusher has claimed and is handing to the handler.
//! - `done/`: handled items, kept for `keep_done`.
//! - `failed/`: dead letters (last attempt failed, or not an item at all), kept for
//!   `keep_failed`, each with a `<name>.why` file saying why.
//! - `.lock`: held (flock) by the one flusher working on the spool.
//! - `.stats`: finished items per minute, for the health score; outlives retention.
//!
//! An item's name is `<enqueued_ms>.<unique>:<attempts>,<t_ms>`, where `t_ms` is when its next
//! attempt is due while it waits in `new/` and when it finished once in `done/` or `failed/`.
//! Everything a flush needs travels in the name, so it survives every rename and a run never
//! opens an item it does not hand to the handler. Every state change is one rename on the same
//! filesystem followed by an fsync of the directories involved: after a crash or power loss an
//! item is in exactly one directory.
//!
//! This module does not run handlers or decide retries; `kinds::queue_flush` does.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use nix::dir::Type;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use crate::lock::{self, Try};
use crate::time::epoch_ms;

/// fsync calls made by this process on spool files and directories; the benchmark divides it
/// by the items handled.
pub static FSYNCS: AtomicU64 = AtomicU64::new(0);

/// The states an item can be in, one directory each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Tmp,
    New,
    Cur,
    Done,
    Failed,
}

impl Dir {
    pub const ALL: [Dir; 5] = [Dir::Tmp, Dir::New, Dir::Cur, Dir::Done, Dir::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Dir::Tmp => "tmp",
            Dir::New => "new",
            Dir::Cur => "cur",
            Dir::Done => "done",
            Dir::Failed => "failed",
        }
    }
}

/// A parsed item name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    /// When it was enqueued: the sort key for "oldest first".
    pub enqueued_ms: i64,
    /// `<enqueued_ms>.<unique>`: the item's identity, the same in every directory.
    pub base: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// In `new/`: when the next attempt is due. In `done/` and `failed/`: when it finished.
    pub t_ms: i64,
}

impl Item {
    pub fn parse(name: &str) -> Option<Item> {
        let (base, tail) = name.rsplit_once(':')?;
        let (a, t) = tail.split_once(',')?;
        let (ms, unique) = base.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(a) || !digits(t) || unique.is_empty() || base.contains(['/', ':']) {
            return None;
        }
        Some(Item {
            enqueued_ms: ms.parse().ok()?,
            base: base.to_string(),
            attempts: a.parse().ok()?,
            t_ms: t.parse().ok()?,
        })
    }

    pub fn file_name(&self) -> String {
        format!("{}:{},{}", self.base, self.attempts, self.t_ms)
    }

    /// A fresh item: no attempt yet, due at once.
    pub fn fresh(now: SystemTime) -> Item {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let ms = epoch_ms(now).max(0);
        let nanos = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        Item { enqueued_ms: ms, base: format!("{ms}.{}_{nanos}_{seq}", std::process::id()), attempts: 0, t_ms: 0 }
    }

    pub fn with(&self, attempts: u32, t_ms: i64) -> Item {
        Item { attempts, t_ms, ..self.clone() }
    }
}

/// How many items are in each state, from the names alone.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// In `new/` (or in flight in `cur/`) with no attempt made yet.
    pub pending: u64,
    /// In `new/` (or in flight) after at least one failed attempt.
    pub retrying: u64,
    /// Claimed by a flusher right now (also counted as pending or retrying).
    pub in_flight: u64,
    pub failed: u64,
    pub completed: u64,
    pub total: u64,
}

/// Finished items per minute, the health score's history. Bounded by the health window:
/// at most one entry per minute of it, whatever the throughput.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Minute (epoch ms / 60000) -> (done, failed).
    pub minutes: BTreeMap<i64, (u64, u64)>,
}

impl History {
    pub fn add(&mut self, at_ms: i64, done: bool) {
        let e = self.minutes.entry(at_ms.div_euclid(60_000)).or_default();
        if done {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }

    /// (done, failed) within `window` before `now_ms`, to the minute.
    pub fn within(&self, now_ms: i64, window: Duration) -> (u64, u64) {
        let from = (now_ms - window.as_millis() as i64).div_euclid(60_000);
        self.minutes.range(from..).fold((0, 0), |(d, f), (_, (a, b))| (d + a, f + b))
    }

    fn prune(&mut self, now_ms: i64, window: Duration) {
        let from = (now_ms - window.as_millis() as i64).div_euclid(60_000);
        self.minutes = self.minutes.split_off(&from);
    }
}

/// The score: the percentage of finished items that were done rather than failed; 100 when
/// none finished.
pub fn score(done: u64, failed: u64) -> u32 {
    match done + failed {
        0 => 100,
        n => ((done * 100 + n / 2) / n) as u32,
    }
}

/// Where a spool's directories are opened: each one through its parent's descriptor, never
/// following a link, so a producer who owns the spool cannot steer root's renames, writes
/// and deletions out of it by swapping a directory or an entry for a link.
const DIR_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_NOFOLLOW).union(OFlag::O_CLOEXEC);

/// The most of `.stats` read: a line per minute of the health window at most (a day is
/// about 35 KiB); anything larger is damage and reads as an empty history.
const STATS_MAX: u64 = 1 << 20;

/// How deep retention follows a foreign directory tree it removes (through descriptors).
const TREE_DEPTH: u32 = 16;

/// The spool's directory descriptors, opened once by [`Spool::ensure`].
#[derive(Debug)]
struct Fds {
    root: OwnedFd,
    dirs: [OwnedFd; 5],
}

/// A descriptor kept by the spool or opened for one call.
enum Fd<'a> {
    Kept(BorrowedFd<'a>),
    Fresh(OwnedFd),
}

impl AsFd for Fd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Fd::Kept(b) => *b,
            Fd::Fresh(o) => o.as_fd(),
        }
    }
}

#[derive(Debug)]
pub struct Spool {
    pub root: PathBuf,
    fds: Option<Fds>,
}

fn errno(e: nix::Error) -> io::Error {
    io::Error::from(e)
}

fn sync_fd(fd: impl AsFd) -> io::Result<()> {
    FSYNCS.fetch_add(1, Ordering::Relaxed);
    nix::unistd::fsync(fd).map_err(errno)
}

/// Opens the directory `name` in `at` without following a link; the error says what is in
/// the way and the fix.
fn open_dir_at(at: impl AsFd, name: &str, shown: &Path) -> io::Result<OwnedFd> {
    openat(at.as_fd(), name, DIR_FLAGS, Mode::empty()).map_err(|e| match e {
        // O_DIRECTORY wins over O_NOFOLLOW for a link to a directory: ask what it is.
        Errno::ENOTDIR if is_link_at(at.as_fd(), name) => refused_dir(Errno::ELOOP, shown),
        e => refused_dir(e, shown),
    })
}

fn is_link_at(at: BorrowedFd<'_>, name: &str) -> bool {
    fstatat(at, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits())
}

fn refused_dir(e: nix::Error, shown: &Path) -> io::Error {
    match e {
        Errno::ELOOP => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is a symlink: runner never works through a link in a spool; remove it (`rm {}`) and runner makes the directory",
                shown.display(),
                shown.display()
            ),
        ),
        Errno::ENOTDIR => io::Error::other(format!("{} exists but is not a directory", shown.display())),
        e => io::Error::new(io::Error::from(e).kind(), format!("cannot open {}: {e}", shown.display())),
    }
}

/// Creates `name` in `dir` with `O_EXCL` and no link followed; whatever is there already (a
/// crash's leftover or a planted link) is unlinked first, never opened.
fn create_new_at(dir: impl AsFd, name: &str, mode: u32) -> io::Result<File> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for _ in 0..3 {
        match openat(dir.as_fd(), name, flags, Mode::from_bits_truncate(mode)) {
            Ok(fd) => return Ok(File::from(fd)),
            Err(Errno::EEXIST) => match unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => continue,
                Err(e) => return Err(errno(e)),
            },
            Err(e) => return Err(errno(e)),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{name} keeps reappearing")))
}

/// The type of `name` in `dir` from its directory entry, or from `fstatat` without following
/// a link when the filesystem does not say.
fn entry_type(dir: impl AsFd, name: &CStr, t: Option<Type>) -> Option<Type> {
    if t.is_some() {
        return t;
    }
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
    Some(match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => Type::File,
        SFlag::S_IFDIR => Type::Directory,
        SFlag::S_IFLNK => Type::Symlink,
        SFlag::S_IFIFO => Type::Fifo,
        SFlag::S_IFSOCK => Type::Socket,
        SFlag::S_IFCHR => Type::CharacterDevice,
        _ => Type::BlockDevice,
    })
}

/// Calls `f` with each entry of the directory open at `dir` (but `.` and `..`), streamed.
fn each_entry(dir: impl AsFd, mut f: impl FnMut(&CStr, Option<Type>) -> io::Result<()>) -> io::Result<()> {
    let mut list = nix::dir::Dir::from_fd(openat(dir, ".", DIR_FLAGS, Mode::empty()).map_err(errno)?).map_err(errno)?;
    for e in list.iter() {
        let e = e.map_err(errno)?;
        let name = e.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        f(name, e.file_type())?;
    }
    Ok(())
}

/// Removes `name` from `dir`: a file or link is unlinked (a link itself, never its target),
/// a directory emptied through descriptors first, at most [`TREE_DEPTH`] levels deep.
fn remove_at(dir: BorrowedFd<'_>, name: &CStr, t: Option<Type>, depth: u32) -> io::Result<()> {
    if entry_type(dir, name, t) != Some(Type::Directory) {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(errno);
    }
    if depth == 0 {
        return Err(io::Error::other("a directory tree too deep to remove"));
    }
    let sub = openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(errno)?;
    let mut names = Vec::new();
    each_entry(&sub, |n, t| {
        names.push((n.to_owned(), t));
        Ok(())
    })?;
    for (n, t) in names {
        remove_at(sub.as_fd(), n.as_c_str(), t, depth - 1)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(errno)
}

impl Spool {
    pub fn new(root: &Path) -> Spool {
        Spool { root: root.to_path_buf(), fds: None }
    }

    pub fn dir(&self, d: Dir) -> PathBuf {
        self.root.join(d.as_str())
    }

    pub fn path(&self, d: Dir, item: &Item) -> PathBuf {
        self.dir(d).join(item.file_name())
    }

    /// The spool directory itself: the configured path, its last component not followed.
    fn root_fd(&self) -> io::Result<Fd<'_>> {
        if let Some(f) = &self.fds {
            return Ok(Fd::Kept(f.root.as_fd()));
        }
        nix::fcntl::open(&self.root, DIR_FLAGS, Mode::empty()).map(Fd::Fresh).map_err(|e| match e {
            Errno::ENOTDIR if fs::symlink_metadata(&self.root).is_ok_and(|m| m.file_type().is_symlink()) => {
                refused_dir(Errno::ELOOP, &self.root)
            }
            e => refused_dir(e, &self.root),
        })
    }

    /// A state directory, opened through the spool's descriptor.
    fn dir_fd(&self, d: Dir) -> io::Result<Fd<'_>> {
        if let Some(f) = &self.fds {
            return Ok(Fd::Kept(f.dirs[d as usize].as_fd()));
        }
        open_dir_at(self.root_fd()?, d.as_str(), &self.dir(d)).map(Fd::Fresh)
    }

    /// Creates whatever is missing of the layout, mode 0750 (and, when the handler runs as
    /// another user, owned by its group with the setgid bit, so items written into it are
    /// readable by the handler and nobody else), and keeps each directory's descriptor for
    /// the calls that follow. Existing directories are left as they are; a link or a file
    /// where a directory belongs is refused, never followed.
    pub fn ensure(&mut self, group: Option<u32>) -> io::Result<()> {
        self.fds = None;
        let mode = Mode::from_bits_truncate(if group.is_some() { 0o2750 } else { 0o750 });
        let settle = |fd: &OwnedFd| -> io::Result<()> {
            if let Some(gid) = group {
                nix::unistd::fchown(fd, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(errno)?;
            }
            // chmod after chown: chown clears the setgid bit.
            nix::sys::stat::fchmod(fd, mode).map_err(errno)
        };
        let mut created = false;
        match fs::DirBuilder::new().mode(0o700).create(&self.root) {
            Ok(()) => created = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot create {}: {e}", self.root.display()))),
        }
        let Fd::Fresh(root) = self.root_fd()? else { unreachable!("no descriptors are kept yet") };
        if created {
            settle(&root)?;
        }
        let mut dirs = Vec::with_capacity(Dir::ALL.len());
        for d in Dir::ALL {
            let made = match mkdirat(&root, d.as_str(), Mode::from_bits_truncate(0o700)) {
                Ok(()) => true,
                Err(Errno::EEXIST) => false,
                Err(e) => {
                    return Err(io::Error::new(
                        errno(e).kind(),
                        format!("cannot create {}: {e}", self.dir(d).display()),
                    ));
                }
            };
            let fd = open_dir_at(&root, d.as_str(), &self.dir(d))?;
            if made {
                settle(&fd)?;
                created = true;
            }
            dirs.push(fd);
        }
        if created {
            sync_fd(&root)?;
            if let Some(parent) = self.root.parent() {
                sync_fd(File::open(parent)?)?;
            }
        }
        let dirs: [OwnedFd; 5] = dirs.try_into().expect("one descriptor per state directory");
        self.fds = Some(Fds { root, dirs });
        Ok(())
    }

    pub fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// The flusher's lock: one flusher per spool, whichever job or process it is.
    pub fn try_lock(&self, by: &str) -> io::Result<Try> {
        lock::try_file(&self.lock_path(), by)
    }

    /// Adds an item atomically: written and synced in `tmp/`, then renamed into `new/`.
    pub fn enqueue(&self, data: &mut dyn Read) -> io::Result<Item> {
        let item = Item::fresh(SystemTime::now());
        let name = item.file_name();
        let (tmp, new) = (self.dir_fd(Dir::Tmp)?, self.dir_fd(Dir::New)?);
        let result = (|| {
            let mut f = create_new_at(&tmp, &name, 0o640)?;
            io::copy(data, &mut f)?;
            f.flush()?;
            FSYNCS.fetch_add(1, Ordering::Relaxed);
            f.sync_all()?;
            renameat(&tmp, name.as_str(), &new, name.as_str()).map_err(errno)?;
            sync_fd(&new)
        })();
        if result.is_err() {
            let _ = unlinkat(&tmp, name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result.map(|()| item)
    }

    /// Renames an entry between state directories through their descriptors (a link is
    /// moved as a link), without syncing.
    fn rename_name(&self, from: Dir, name: &str, to: Dir, to_name: &str) -> io::Result<()> {
        renameat(self.dir_fd(from)?, name, self.dir_fd(to)?, to_name).map_err(errno)
    }

    /// Renames an item between state directories (possibly renaming it), without syncing.
    pub fn rename(&self, from: Dir, item: &Item, to: Dir, to_item: &Item) -> io::Result<()> {
        self.rename_name(from, &item.file_name(), to, &to_item.file_name())
    }

    pub fn sync(&self, d: Dir) -> io::Result<()> {
        sync_fd(self.dir_fd(d)?)
    }

    /// A finished state change of one item: rename, then sync the directory it went to and
    /// the one it left, in that order, so it is never lost and never in two places.
    pub fn change(&self, from: Dir, item: &Item, to: Dir, to_item: &Item) -> io::Result<()> {
        self.rename(from, item, to, to_item)?;
        self.sync(to)?;
        if from != to {
            self.sync(from)?;
        }
        Ok(())
    }

    /// Opens an item for reading as the handler will, without following a link or blocking
    /// on a fifo, and checks it is a regular file.
    pub fn open_item(&self, d: Dir, item: &Item) -> io::Result<File> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = openat(self.dir_fd(d)?, item.file_name().as_str(), flags, Mode::empty()).map_err(|e| match e {
            Errno::ELOOP => io::Error::other("it is a symlink"),
            e => errno(e),
        })?;
        let st = fstat(&fd).map_err(errno)?;
        if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
            return Err(io::Error::other("not a regular file"));
        }
        Ok(File::from(fd))
    }

    /// Moves items a crashed flusher left in `cur/` back to `new/`, as they were (the attempt
    /// did not finish, so it does not count). Returns how many. Call with the lock held.
    pub fn recover(&self) -> io::Result<usize> {
        let (cur, new) = (self.dir_fd(Dir::Cur)?, self.dir_fd(Dir::New)?);
        let mut names = Vec::new();
        each_entry(&cur, |name, _| {
            names.push(name.to_owned());
            Ok(())
        })?;
        // Anything else in cur/ was put there by hand; new/ is where it gets judged.
        for name in &names {
            renameat(&cur, name.as_c_str(), &new, name.as_c_str()).map_err(errno)?;
        }
        if !names.is_empty() {
            sync_fd(&new)?;
            sync_fd(&cur)?;
        }
        Ok(names.len())
    }

    /// Up to `max` items in `new/` that are due at `now_ms`, oldest first, from their names
    /// alone (no item is opened). Entries that are not items (a foreign name, a directory, a
    /// symlink, ...) are returned in `foreign` with the reason.
    pub fn due(&self, now_ms: i64, max: usize, foreign: &mut Vec<(String, String)>) -> io::Result<Vec<Item>> {
        // A max-heap of the `max` oldest seen so far: O(n log max) and `max` items in memory,
        // however many are pending.
        let mut heap: std::collections::BinaryHeap<Item> = std::collections::BinaryHeap::with_capacity(max + 1);
        let new = self.dir_fd(Dir::New)?;
        each_entry(&new, |raw, t| {
            let Ok(name) = raw.to_str() else {
                foreign.push((raw.to_string_lossy().into_owned(), "the name is not UTF-8".into()));
                return Ok(());
            };
            if entry_type(&new, raw, t) != Some(Type::File) {
                foreign.push((name.to_string(), "not a regular file (a directory, symlink or device)".into()));
                return Ok(());
            }
            let Some(item) = Item::parse(name) else {
                foreign.push((
                    name.to_string(),
                    "not an item name (<enqueued_ms>.<unique>:<attempts>,<due_ms>); add items with `runner enqueue`"
                        .into(),
                ));
                return Ok(());
            };
            if item.t_ms <= now_ms {
                heap.push(item);
                if heap.len() > max {
                    heap.pop();
                }
            }
            Ok(())
        })?;
        let mut v = heap.into_vec();
        v.sort();
        Ok(v)
    }

    /// Moves something that cannot be handed to the handler out of `from` into `failed/`,
    /// under a fresh item name so retention and counts treat it like any dead letter, with
    /// the reason (and its old name) beside it. A link is moved as a link, never followed.
    pub fn reject(&self, from: Dir, name: &str, reason: &str, now_ms: i64) -> io::Result<Item> {
        let item = Item::fresh(SystemTime::now()).with(0, now_ms);
        self.write_why(&item, &format!("rejected from {}/{name}: {reason}\n", from.as_str()))?;
        self.rename_name(from, name, Dir::Failed, &item.file_name())?;
        self.sync(Dir::Failed)?;
        self.sync(from)?;
        Ok(item)
    }

    /// Writes `failed/<name>.why` (through `tmp/`, synced) before the item itself moves there.
    pub fn write_why(&self, item: &Item, text: &str) -> io::Result<()> {
        let name = format!("{}.why", item.file_name());
        let tmp = self.dir_fd(Dir::Tmp)?;
        let mut f = create_new_at(&tmp, &name, 0o640)?;
        f.write_all(text.as_bytes())?;
        FSYNCS.fetch_add(1, Ordering::Relaxed);
        f.sync_all()?;
        renameat(&tmp, name.as_str(), self.dir_fd(Dir::Failed)?, name.as_str()).map_err(errno)
    }

    /// Counts every state from the directory listings; a spool not created yet is empty.
    /// Listings are streamed, not collected, and no item is opened: the textfile export
    /// calls this after every run, so its cost is one readdir pass per state directory.
    pub fn counts(&self) -> io::Result<Counts> {
        let mut c = Counts::default();
        let root = match self.root_fd() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(c),
            r => r?,
        };
        let at = |d: Dir| open_dir_at(&root, d.as_str(), &self.dir(d));
        for d in [Dir::New, Dir::Cur] {
            each_entry(at(d)?, |name, _| {
                match Item::parse(&name.to_string_lossy()) {
                    Some(i) if i.attempts > 0 => c.retrying += 1,
                    _ => c.pending += 1,
                }
                if d == Dir::Cur {
                    c.in_flight += 1;
                }
                Ok(())
            })?;
        }
        for (d, n) in [(Dir::Done, &mut c.completed), (Dir::Failed, &mut c.failed)] {
            each_entry(at(d)?, |name, _| {
                if !name.to_bytes().ends_with(b".why") {
                    *n += 1;
                }
                Ok(())
            })?;
        }
        c.total = c.pending + c.retrying + c.failed + c.completed;
        Ok(c)
    }

    /// Removes items from `done/` or `failed/` that finished more than `keep` before `now_ms`
    /// (with their `.why`). Returns how many items were removed. Everything is removed through
    /// the directory's descriptor: a link is unlinked, never followed, and a foreign directory
    /// is emptied through descriptors too.
    pub fn retain(&self, d: Dir, keep: Duration, now_ms: i64) -> io::Result<usize> {
        let cutoff = now_ms - keep.as_millis() as i64;
        let dir = self.dir_fd(d)?;
        let mut old = Vec::new();
        each_entry(&dir, |raw, t| {
            let name = raw.to_string_lossy();
            let item_name = name.strip_suffix(".why").unwrap_or(&name);
            let finished = match Item::parse(item_name) {
                Some(i) => i.t_ms,
                // Not ours: judge it by its modification time (of a link, not its target).
                None => fstatat(&dir, raw, AtFlags::AT_SYMLINK_NOFOLLOW)
                    // `time_t` is 32 bits on armv7 glibc: widen before scaling.
                    .map(|st| {
                        #[allow(clippy::useless_conversion)]
                        let secs = i64::from(st.st_mtime);
                        secs.saturating_mul(1000)
                    })
                    .unwrap_or(i64::MAX),
            };
            if finished < cutoff {
                old.push((raw.to_owned(), t));
            }
            Ok(())
        })?;
        let mut n = 0;
        for (name, t) in old {
            if let Err(e) = remove_at(dir.as_fd(), name.as_c_str(), t, TREE_DEPTH) {
                log::warn!("cannot remove {}/{}: {e}", self.dir(d).display(), name.to_string_lossy());
            } else if !name.to_bytes().ends_with(b".why") {
                n += 1;
            }
        }
        if n > 0 {
            sync_fd(&dir)?;
        }
        Ok(n)
    }

    /// The history of finished items; an absent or damaged file (or something else than a
    /// regular file, or one over [`STATS_MAX`]) is an empty history (it only feeds the score,
    /// and a damaged one must not stop the queue).
    pub fn load_history(&self) -> History {
        let mut h = History::default();
        let Some(text) = self.read_stats() else { return h };
        for line in text.lines() {
            let mut it = line.split_whitespace().map(|x| x.parse::<i64>());
            if let (Some(Ok(m)), Some(Ok(d)), Some(Ok(f))) = (it.next(), it.next(), it.next()) {
                h.minutes.insert(m, (d.max(0) as u64, f.max(0) as u64));
            }
        }
        h
    }

    fn read_stats(&self) -> Option<String> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = openat(self.root_fd().ok()?, ".stats", flags, Mode::empty()).ok()?;
        let st = fstat(&fd).ok()?;
        if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() || st.st_size as u64 > STATS_MAX {
            return None;
        }
        let mut text = String::new();
        File::from(fd).take(STATS_MAX).read_to_string(&mut text).ok()?;
        Some(text)
    }

    /// Replaces the history atomically, dropping minutes older than `window`. `durable`
    /// syncs it; without, it still survives the daemon being killed. The temporary file is
    /// created new (a planted `.stats.tmp` link is unlinked, never written through).
    pub fn save_history(&self, h: &mut History, now_ms: i64, window: Duration, durable: bool) -> io::Result<()> {
        h.prune(now_ms, window);
        let mut text = String::with_capacity(h.minutes.len() * 24);
        for (m, (d, f)) in &h.minutes {
            text.push_str(&format!("{m} {d} {f}\n"));
        }
        let root = self.root_fd()?;
        let mut f = create_new_at(&root, ".stats.tmp", 0o640)?;
        f.write_all(text.as_bytes())?;
        if durable {
            FSYNCS.fetch_add(1, Ordering::Relaxed);
            f.sync_all()?;
        }
        renameat(&root, ".stats.tmp", &root, ".stats").map_err(errno)?;
        if durable {
            sync_fd(&root)?;
        }
        Ok(())
    }
}

/// What `runner check` says about a spool others could steer: writable by anyone but its
/// owner and group, or owned by neither root nor the job's user (`job_uid`). A spool that
/// does not exist yet says nothing (runner makes it, root's own).
pub fn warnings(root: &Path, job_uid: u32) -> Vec<String> {
    let Ok(meta) = fs::symlink_metadata(root) else { return Vec::new() };
    let mut out = Vec::new();
    if meta.file_type().is_symlink() {
        out.push(format!(
            "spool {} is a symlink; runner refuses to work through it: point `spool:` at the real directory",
            root.display()
        ));
        return out;
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 {
        out.push(format!(
            "spool {} is writable by everyone (mode {mode:04o}), so anyone can plant entries root will handle; fix with `chmod o-w {}`",
            root.display(),
            root.display()
        ));
    }
    if meta.uid() != 0 && meta.uid() != job_uid {
        out.push(format!(
            "spool {} is owned by uid {}, neither root nor the job's user (uid {job_uid}); fix with `chown {job_uid} {}`",
            root.display(),
            meta.uid(),
            root.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_refuse_foreign_ones() {
        let i = Item::parse("1700000000000.42_7_0:3,1700000060000").unwrap();
        assert_eq!((i.enqueued_ms, i.attempts, i.t_ms), (1_700_000_000_000, 3, 1_700_000_060_000));
        assert_eq!(i.file_name(), "1700000000000.42_7_0:3,1700000060000");
        for bad in ["", "x", "notes.txt", "17.a:1", "17.a:x,1", ".17:0,0", "17.:0,0", "abc.d:0,0", "17.a:0,-1"] {
            assert!(Item::parse(bad).is_none(), "{bad}");
        }
        let f = Item::fresh(SystemTime::now());
        assert_eq!(Item::parse(&f.file_name()), Some(f));
    }

    #[test]
    fn score_is_the_done_share_and_100_when_nothing_finished() {
        assert_eq!(score(0, 0), 100);
        assert_eq!(score(7, 3), 70);
        assert_eq!(score(0, 4), 0);
        assert_eq!(score(2, 1), 67);
    }

    #[test]
    fn history_counts_only_the_window() {
        let mut h = History::default();
        let now = 100 * 60_000;
        h.add(now - 30 * 60_000, true);
        h.add(now - 5 * 60_000, false);
        h.add(now, true);
        assert_eq!(h.within(now, Duration::from_secs(10 * 60)), (1, 1));
        assert_eq!(h.within(now, Duration::from_secs(3600)), (2, 1));
        h.prune(now, Duration::from_secs(10 * 60));
        assert_eq!(h.minutes.len(), 2);
    }
}
