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
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

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

#[derive(Clone, Debug)]
pub struct Spool {
    pub root: PathBuf,
}

fn sync_dir(p: &Path) -> io::Result<()> {
    FSYNCS.fetch_add(1, Ordering::Relaxed);
    File::open(p)?.sync_all()
}

impl Spool {
    pub fn new(root: &Path) -> Spool {
        Spool { root: root.to_path_buf() }
    }

    pub fn dir(&self, d: Dir) -> PathBuf {
        self.root.join(d.as_str())
    }

    pub fn path(&self, d: Dir, item: &Item) -> PathBuf {
        self.dir(d).join(item.file_name())
    }

    /// Creates whatever is missing of the layout, mode 0750 (and, when the handler runs as
    /// another user, owned by its group with the setgid bit, so items written into it are
    /// readable by the handler and nobody else). Existing directories are left as they are.
    pub fn ensure(&self, group: Option<u32>) -> io::Result<()> {
        let mode = if group.is_some() { 0o2750 } else { 0o750 };
        let mut created = false;
        for d in std::iter::once(self.root.clone()).chain(Dir::ALL.iter().map(|d| self.dir(*d))) {
            match fs::DirBuilder::new().mode(0o700).create(&d) {
                Ok(()) => {
                    if let Some(gid) = group {
                        nix::unistd::chown(&d, None, Some(nix::unistd::Gid::from_raw(gid)))?;
                    }
                    // chmod after chown: chown clears the setgid bit.
                    fs::set_permissions(&d, fs::Permissions::from_mode(mode))?;
                    created = true;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !d.is_dir() {
                        return Err(io::Error::other(format!("{} exists but is not a directory", d.display())));
                    }
                }
                Err(e) => return Err(io::Error::new(e.kind(), format!("cannot create {}: {e}", d.display()))),
            }
        }
        if created {
            sync_dir(&self.root)?;
            if let Some(parent) = self.root.parent() {
                sync_dir(parent)?;
            }
        }
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
        let tmp = self.path(Dir::Tmp, &item);
        let result = (|| {
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o640).open(&tmp)?;
            io::copy(data, &mut f)?;
            f.flush()?;
            FSYNCS.fetch_add(1, Ordering::Relaxed);
            f.sync_all()?;
            fs::rename(&tmp, self.path(Dir::New, &item))?;
            sync_dir(&self.dir(Dir::New))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map(|()| item)
    }

    /// Renames an item between state directories (possibly renaming it), without syncing.
    pub fn rename(&self, from: Dir, item: &Item, to: Dir, to_item: &Item) -> io::Result<()> {
        fs::rename(self.path(from, item), self.path(to, to_item))
    }

    pub fn sync(&self, d: Dir) -> io::Result<()> {
        sync_dir(&self.dir(d))
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

    /// Moves items a crashed flusher left in `cur/` back to `new/`, as they were (the attempt
    /// did not finish, so it does not count). Returns how many. Call with the lock held.
    pub fn recover(&self) -> io::Result<usize> {
        let mut n = 0;
        for e in fs::read_dir(self.dir(Dir::Cur))? {
            let name = e?.file_name();
            let name = name.to_string_lossy();
            // Anything else in cur/ was put there by hand; new/ is where it gets judged.
            let dest = self.dir(Dir::New).join(&*name);
            fs::rename(self.dir(Dir::Cur).join(&*name), dest)?;
            n += 1;
        }
        if n > 0 {
            self.sync(Dir::New)?;
            self.sync(Dir::Cur)?;
        }
        Ok(n)
    }

    /// Up to `max` items in `new/` that are due at `now_ms`, oldest first, from their names
    /// alone (no item is opened). Entries that are not items (a foreign name, a directory, a
    /// symlink, ...) are returned in `foreign` with the reason.
    pub fn due(&self, now_ms: i64, max: usize, foreign: &mut Vec<(String, String)>) -> io::Result<Vec<Item>> {
        // A max-heap of the `max` oldest seen so far: O(n log max) and `max` items in memory,
        // however many are pending.
        let mut heap: std::collections::BinaryHeap<Item> = std::collections::BinaryHeap::with_capacity(max + 1);
        for e in fs::read_dir(self.dir(Dir::New))? {
            let e = e?;
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                foreign.push((e.file_name().to_string_lossy().into_owned(), "the name is not UTF-8".into()));
                continue;
            };
            let regular = e.file_type().map(|t| t.is_file()).unwrap_or(false);
            if !regular {
                foreign.push((name.to_string(), "not a regular file (a directory, symlink or device)".into()));
                continue;
            }
            let Some(item) = Item::parse(name) else {
                foreign.push((
                    name.to_string(),
                    "not an item name (<enqueued_ms>.<unique>:<attempts>,<due_ms>); add items with `runner enqueue`"
                        .into(),
                ));
                continue;
            };
            if item.t_ms > now_ms {
                continue;
            }
            heap.push(item);
            if heap.len() > max {
                heap.pop();
            }
        }
        let mut v = heap.into_vec();
        v.sort();
        Ok(v)
    }

    /// Moves something that cannot be handed to the handler out of `from` into `failed/`,
    /// under a fresh item name so retention and counts treat it like any dead letter, with
    /// the reason (and its old name) beside it.
    pub fn reject(&self, from: Dir, name: &str, reason: &str, now_ms: i64) -> io::Result<Item> {
        let item = Item::fresh(SystemTime::now()).with(0, now_ms);
        self.write_why(&item, &format!("rejected from {}/{name}: {reason}\n", from.as_str()))?;
        fs::rename(self.dir(from).join(name), self.path(Dir::Failed, &item))?;
        self.sync(Dir::Failed)?;
        self.sync(from)?;
        Ok(item)
    }

    /// Writes `failed/<name>.why` (through `tmp/`, synced) before the item itself moves there.
    pub fn write_why(&self, item: &Item, text: &str) -> io::Result<()> {
        let name = format!("{}.why", item.file_name());
        let tmp = self.dir(Dir::Tmp).join(&name);
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o640).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        FSYNCS.fetch_add(1, Ordering::Relaxed);
        f.sync_all()?;
        fs::rename(&tmp, self.dir(Dir::Failed).join(name))
    }

    /// Counts every state from the directory listings; a spool not created yet is empty.
    /// Listings are streamed, not collected, and no item is opened: the textfile export
    /// calls this after every run, so its cost is one readdir pass per state directory.
    pub fn counts(&self) -> io::Result<Counts> {
        let mut c = Counts::default();
        let list = |d: Dir| -> io::Result<Option<fs::ReadDir>> {
            match fs::read_dir(self.dir(d)) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && !self.root.exists() => Ok(None),
                r => r.map(Some),
            }
        };
        for d in [Dir::New, Dir::Cur] {
            for e in list(d)?.into_iter().flatten() {
                let name = e?.file_name();
                match Item::parse(&name.to_string_lossy()) {
                    Some(i) if i.attempts > 0 => c.retrying += 1,
                    _ => c.pending += 1,
                }
                if d == Dir::Cur {
                    c.in_flight += 1;
                }
            }
        }
        for (d, n) in [(Dir::Done, &mut c.completed), (Dir::Failed, &mut c.failed)] {
            for e in list(d)?.into_iter().flatten() {
                if !e?.file_name().to_string_lossy().ends_with(".why") {
                    *n += 1;
                }
            }
        }
        c.total = c.pending + c.retrying + c.failed + c.completed;
        Ok(c)
    }

    /// Removes items from `done/` or `failed/` that finished more than `keep` before `now_ms`
    /// (with their `.why`). Returns how many items were removed.
    pub fn retain(&self, d: Dir, keep: Duration, now_ms: i64) -> io::Result<usize> {
        let cutoff = now_ms - keep.as_millis() as i64;
        let mut n = 0;
        for e in fs::read_dir(self.dir(d))? {
            let name = e?.file_name();
            let name = name.to_string_lossy();
            let item_name = name.strip_suffix(".why").unwrap_or(&name);
            let finished = match Item::parse(item_name) {
                Some(i) => i.t_ms,
                // Not ours: judge it by its modification time.
                None => fs::symlink_metadata(self.dir(d).join(&*name))
                    .and_then(|m| m.modified())
                    .map(epoch_ms)
                    .unwrap_or(i64::MAX),
            };
            if finished < cutoff {
                let p = self.dir(d).join(&*name);
                let gone = if p.is_dir() { fs::remove_dir_all(&p) } else { fs::remove_file(&p) };
                if let Err(e) = gone {
                    log::warn!("cannot remove {}: {e}", p.display());
                } else if !name.ends_with(".why") {
                    n += 1;
                }
            }
        }
        if n > 0 {
            self.sync(d)?;
        }
        Ok(n)
    }

    fn stats_path(&self) -> PathBuf {
        self.root.join(".stats")
    }

    /// The history of finished items; an absent or damaged file is an empty history (it only
    /// feeds the score, and a damaged one must not stop the queue).
    pub fn load_history(&self) -> History {
        let mut h = History::default();
        let Ok(text) = fs::read_to_string(self.stats_path()) else { return h };
        for line in text.lines() {
            let mut it = line.split_whitespace().map(|x| x.parse::<i64>());
            if let (Some(Ok(m)), Some(Ok(d)), Some(Ok(f))) = (it.next(), it.next(), it.next()) {
                h.minutes.insert(m, (d.max(0) as u64, f.max(0) as u64));
            }
        }
        h
    }

    /// Replaces the history atomically, dropping minutes older than `window`. `durable`
    /// syncs it; without, it still survives the daemon being killed.
    pub fn save_history(&self, h: &mut History, now_ms: i64, window: Duration, durable: bool) -> io::Result<()> {
        h.prune(now_ms, window);
        let mut text = String::with_capacity(h.minutes.len() * 24);
        for (m, (d, f)) in &h.minutes {
            text.push_str(&format!("{m} {d} {f}\n"));
        }
        let tmp = self.root.join(".stats.tmp");
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o640).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        if durable {
            FSYNCS.fetch_add(1, Ordering::Relaxed);
            f.sync_all()?;
        }
        fs::rename(&tmp, self.stats_path())?;
        if durable {
            sync_dir(&self.root)?;
        }
        Ok(())
    }
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
