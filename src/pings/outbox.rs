//! The outbox: one file per ping, `state_dir/outbox/<job>/<seq>.ping`, written to a
//! temporary name, synced, renamed and its directory synced, so a ping written is never
//! lost to kill -9 or a power cut; removed only after a receiver answered 2xx. Each job's
//! directory holds at most [`MAX_PINGS`] pings and [`MAX_BYTES`] bytes: the oldest go first.
//!
//! A file is `runner-ping 1\n<id>\n<url>\n` then the body.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fsx;

/// The most pings a job keeps waiting.
pub const MAX_PINGS: usize = 1_000;
/// The most bytes of pings a job keeps waiting.
pub const MAX_BYTES: u64 = 1 << 20;

/// The largest ping file read: a 10 KiB body, its id and a URL, with room to spare.
pub const MAX_FILE: u64 = 64 << 10;

const MAGIC: &str = "runner-ping 1\n";

/// A ping as kept in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// Unique per ping and the same on every try: the `X-Runner-Ping-Id` header.
    pub id: String,
    pub url: String,
    pub body: Vec<u8>,
}

impl Ping {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(MAGIC.len() + self.id.len() + self.url.len() + 2 + self.body.len());
        b.extend_from_slice(MAGIC.as_bytes());
        b.extend_from_slice(self.id.as_bytes());
        b.push(b'\n');
        b.extend_from_slice(self.url.as_bytes());
        b.push(b'\n');
        b.extend_from_slice(&self.body);
        b
    }

    fn decode(b: &[u8]) -> Option<Ping> {
        let rest = b.strip_prefix(MAGIC.as_bytes())?;
        let nl = rest.iter().position(|&c| c == b'\n')?;
        let (id, rest) = (&rest[..nl], &rest[nl + 1..]);
        let nl = rest.iter().position(|&c| c == b'\n')?;
        let (url, body) = (&rest[..nl], &rest[nl + 1..]);
        Some(Ping {
            id: String::from_utf8(id.to_vec()).ok()?,
            url: String::from_utf8(url.to_vec()).ok()?,
            body: body.to_vec(),
        })
    }
}

/// A job's waiting ping file.
#[derive(Debug, Clone)]
pub struct Waiting {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
}

/// The outbox of one `state_dir`; clones share the worker's wake-up.
#[derive(Clone, Debug)]
pub struct Outbox {
    dir: PathBuf,
    wake: Arc<tokio::sync::Notify>,
}

impl Outbox {
    pub fn new(state_dir: &Path) -> Outbox {
        Outbox { dir: state_dir.join("outbox"), wake: Arc::new(tokio::sync::Notify::new()) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn wake(&self) -> &tokio::sync::Notify {
        &self.wake
    }

    /// Writes a ping for `job` durably, dropping the oldest beyond the bounds; returns how
    /// many were dropped. Blocking (a create, fsync, rename and directory fsync): call it off
    /// the event loop.
    pub fn enqueue(&self, job: &str, url: &str, body: &[u8], now_ms: i64) -> io::Result<usize> {
        let dir = self.dir.join(job);
        fsx::own_dir(&self.dir, false)?;
        fsx::own_dir(&dir, false)?;
        let mut entries = list(&dir)?;
        let seq = entries.last().map_or(1, |e| e.seq + 1);
        // The sequence number restarts at 1 in an empty outbox, so a start ping delivered
        // before its run's end ping is written, in the same millisecond, would share its id:
        // the writer's pid and a count of its own make each id unique.
        static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{job}-{now_ms}-{}.{n}-{seq}", crate::host::pid());
        let ping = Ping { id, url: url.to_string(), body: body.to_vec() };
        let bytes = ping.encode();
        let mut total: u64 = entries.iter().map(|e| e.bytes).sum::<u64>() + bytes.len() as u64;
        let mut dropped = 0;
        while !entries.is_empty() && (entries.len() + 1 > MAX_PINGS || total > MAX_BYTES) {
            let oldest = entries.remove(0);
            match std::fs::remove_file(&oldest.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            total -= oldest.bytes;
            dropped += 1;
        }
        let path = dir.join(file_name(seq));
        let tmp = dir.join(format!(".{seq:020}.tmp"));
        fsx::replace(&path, &tmp, &bytes, 0o600, true)?;
        sync_dir(&dir)?;
        self.wake.notify_one();
        Ok(dropped)
    }

    /// Every job with waiting pings, by name, with its pings oldest first.
    pub fn pending(&self) -> io::Result<Vec<(String, Vec<Waiting>)>> {
        let mut out = Vec::new();
        for ent in read_dir_if_any(&self.dir)? {
            let ent = ent?;
            if !ent.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = ent.file_name().to_str().map(str::to_string) else { continue };
            let entries = list(&ent.path())?;
            if !entries.is_empty() {
                out.push((name, entries));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Reads a waiting ping, at most [`MAX_FILE`] bytes of it; None for a damaged file
    /// (logged by the caller and removed), a too large one included.
    pub fn read(e: &Waiting) -> io::Result<Option<Ping>> {
        use std::io::Read;
        let f = fsx::open_read(&e.path)?;
        if !f.metadata()?.is_file() {
            return Ok(None);
        }
        let mut b = Vec::new();
        f.take(MAX_FILE + 1).read_to_end(&mut b)?;
        if b.len() as u64 > MAX_FILE {
            return Ok(None);
        }
        Ok(Ping::decode(&b))
    }

    /// Removes a delivered ping, durably.
    pub fn remove(e: &Waiting) -> io::Result<()> {
        match std::fs::remove_file(&e.path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        match e.path.parent() {
            Some(d) => sync_dir(d),
            None => Ok(()),
        }
    }
}

fn file_name(seq: u64) -> String {
    format!("{seq:020}.ping")
}

/// A job's ping files, oldest first (leftover temporary files are not pings).
fn list(dir: &Path) -> io::Result<Vec<Waiting>> {
    let mut out = Vec::new();
    for ent in read_dir_if_any(dir)? {
        let ent = ent?;
        let name = ent.file_name();
        let Some(seq) = name.to_str().and_then(|n| n.strip_suffix(".ping")).and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let md = ent.metadata()?;
        if md.is_file() {
            out.push(Waiting { seq, path: ent.path(), bytes: md.len() });
        }
    }
    out.sort_by_key(|e| e.seq);
    Ok(out)
}

/// A directory's entries; none when it does not exist (no ping was ever written there).
fn read_dir_if_any(dir: &Path) -> io::Result<impl Iterator<Item = io::Result<std::fs::DirEntry>>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => Ok(Some(rd).into_iter().flatten()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None.into_iter().flatten()),
        Err(e) => Err(e),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_keep_their_order_and_the_oldest_go_first() {
        let tmp = std::env::temp_dir().join(format!("runner-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let o = Outbox::new(&tmp);
        let mut dropped = 0;
        for i in 0..MAX_PINGS + 5 {
            dropped += o.enqueue("j", "http://h/x", format!("{i}").as_bytes(), 7).unwrap();
        }
        assert_eq!(dropped, 5);
        let p = o.pending().unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].1.len(), MAX_PINGS);
        let first = Outbox::read(&p[0].1[0]).unwrap().unwrap();
        assert_eq!(first.body, b"5");
        assert!(first.id.starts_with("j-7-") && first.id.ends_with("-6"), "{}", first.id);
        // A large body: 1 MiB holds about 100 pings of 10 KiB.
        let big = vec![b'x'; 10 << 10];
        for _ in 0..200 {
            o.enqueue("big", "http://h/x", &big, 7).unwrap();
        }
        let total: u64 = o.pending().unwrap()[0].1.iter().map(|e| e.bytes).sum();
        assert!(total <= MAX_BYTES, "{total}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
