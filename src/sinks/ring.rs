//! The run log: one preallocated file of fixed size (`runs.ring` under `state_dir`) that keeps
//! every record (run, skip, alert, resolve, audit, daemon event) end to end, wrapping around,
//! so a box keeps its recent history in bounded space and across power loss.
//!
//! Owns the on-disk format, appending (one `pwrite` of a whole record, no heap allocation),
//! recovery (a scan for records with a valid CRC-32C and increasing sequence numbers) and
//! reading (`scan`, `Follower`). It must not interpret records beyond encoding them: what a
//! record means is `record`'s business, how it is shown is `cli`'s.
//!
//! Format, all integers little-endian:
//! - header, 64 bytes at offset 0: magic `RUNRING\0`, u32 version, u32 header size, u64 file
//!   size, u32 CRC-32C of the bytes before it, zeros. Written once, when the file is created.
//! - records from offset 64, each starting on an 8-byte boundary (see `Rec` for the layout):
//!   u16 magic `RR`, u16 length, u32 CRC-32C over the record (its CRC field left out), u64
//!   sequence number, then the fixed fields and the variable ones (job, job kind, level,
//!   message, output tail). A record that does not fit before the end starts again at 64.
//!
//! Nothing in the file says where the newest record is: opening scans the whole data area,
//! and the newest record is the one with the highest sequence number (see [`scan`]). So a
//! write torn by power loss invalidates at most the record being written (and the oldest one
//! it was overwriting), a damaged record costs only itself (the scan resynchronises at the
//! next 8-byte boundary that holds a valid record, and reports the bytes it skipped), and the
//! header is never rewritten (no flash wear on a hot block): a ring whose header is damaged
//! is moved aside by the next writer.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

pub use crate::config::log::{
    DEFAULT_OUTPUT_BYTES, DEFAULT_SIZE, FILE_NAME, Fsync, MAX_OUTPUT, MAX_SIZE, MIN_SIZE, RingConfig,
};
use crate::lock;
use crate::record::{Outcome, Record, RecordKind, Trigger};

pub const MAGIC: [u8; 8] = *b"RUNRING\0";
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: u64 = 64;

const REC_MAGIC: [u8; 2] = *b"RR";
/// Bytes before the variable fields.
pub const REC_HEAD: usize = 96;
pub const MAX_JOB: usize = 255;
pub const MAX_JOB_KIND: usize = 32;
pub const MAX_LEVEL: usize = 32;
pub const MAX_MESSAGE: usize = 1024;
/// Largest record, padded: the size of the stack buffer an append encodes into.
pub const MAX_RECORD: usize =
    align8(REC_HEAD + MAX_JOB + MAX_JOB_KIND + MAX_LEVEL + MAX_MESSAGE + MAX_OUTPUT + USAGE_LEN);
/// The usage part after the output (byte 79 holds its length, 0 in records written before
/// it existed, which read as before): CPU µs and peak memory bytes, `u64::MAX` for none.
pub const USAGE_LEN: usize = 16;

const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Why a file is not a ring we can read, with the byte offset of the problem.
#[derive(Debug)]
pub enum RingError {
    Io(io::Error),
    /// `offset`: where in the file the problem is.
    Corrupt {
        offset: u64,
        what: String,
    },
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingError::Io(e) => write!(f, "{e}"),
            RingError::Corrupt { offset, what } => write!(f, "at offset {offset} (0x{offset:x}): {what}"),
        }
    }
}

impl std::error::Error for RingError {}

impl From<io::Error> for RingError {
    fn from(e: io::Error) -> RingError {
        RingError::Io(e)
    }
}

fn corrupt(offset: u64, what: impl Into<String>) -> RingError {
    RingError::Corrupt { offset, what: what.into() }
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The header of a new ring of `size` bytes.
pub fn header_for(size: u64) -> [u8; HEADER_SIZE as usize] {
    let mut h = [0u8; HEADER_SIZE as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    h[16..24].copy_from_slice(&size.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a header and returns the ring's size.
pub fn parse_header(h: &[u8]) -> Result<u64, RingError> {
    if h.len() < HEADER_SIZE as usize {
        return Err(corrupt(h.len() as u64, format!("file ends inside the {HEADER_SIZE}-byte header")));
    }
    if h[0..8] != MAGIC {
        return Err(corrupt(0, "not a runner ring file (no `RUNRING` magic)"));
    }
    let version = le32(h, 8);
    if version != VERSION {
        return Err(corrupt(8, format!("ring format version {version}; this runner reads version {VERSION}")));
    }
    if le32(h, 12) as u64 != HEADER_SIZE {
        return Err(corrupt(12, format!("header size {} instead of {HEADER_SIZE}", le32(h, 12))));
    }
    if crc32c::crc32c(&h[0..24]) != le32(h, 24) {
        return Err(corrupt(24, "header checksum does not match"));
    }
    if let Some(i) = h[28..HEADER_SIZE as usize].iter().position(|&b| b != 0) {
        return Err(corrupt(28 + i as u64, "reserved header bytes are not zero"));
    }
    let size = le64(h, 16);
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) || !size.is_multiple_of(8) {
        return Err(corrupt(16, format!("implausible ring size {size}")));
    }
    Ok(size)
}

/// Record kind, outcome and trigger as stored: fixed codes, never Rust's discriminants, so
/// reordering an enum cannot change what old files mean.
fn kind_code(k: RecordKind) -> u8 {
    match k {
        RecordKind::Run => 1,
        RecordKind::Skip => 2,
        RecordKind::Alert => 3,
        RecordKind::Resolve => 4,
        RecordKind::Audit => 5,
        RecordKind::Daemon => 6,
        // Never appended (`Sinks` keeps samples out of the ring); a code all the same.
        RecordKind::Sample => 7,
        RecordKind::Hook => 8,
    }
}
fn kind_from(c: u8) -> Option<RecordKind> {
    Some(match c {
        1 => RecordKind::Run,
        2 => RecordKind::Skip,
        3 => RecordKind::Alert,
        4 => RecordKind::Resolve,
        5 => RecordKind::Audit,
        6 => RecordKind::Daemon,
        7 => RecordKind::Sample,
        8 => RecordKind::Hook,
        _ => return None,
    })
}
fn outcome_code(o: Outcome) -> u8 {
    match o {
        Outcome::Success => 1,
        Outcome::Failure => 2,
        Outcome::Timeout => 3,
        Outcome::Killed => 4,
        Outcome::Stopped => 5,
        Outcome::SpawnFailed => 6,
        Outcome::Skipped => 7,
        Outcome::Interrupted => 8,
    }
}
fn outcome_from(c: u8) -> Option<Outcome> {
    Some(match c {
        1 => Outcome::Success,
        2 => Outcome::Failure,
        3 => Outcome::Timeout,
        4 => Outcome::Killed,
        5 => Outcome::Stopped,
        6 => Outcome::SpawnFailed,
        7 => Outcome::Skipped,
        8 => Outcome::Interrupted,
        _ => return None,
    })
}
fn trigger_code(t: Trigger) -> u8 {
    match t {
        Trigger::Schedule => 1,
        Trigger::Manual => 2,
        Trigger::CatchUp => 3,
        Trigger::Reboot => 4,
    }
}
fn trigger_from(c: u8) -> Option<Trigger> {
    Some(match c {
        1 => Trigger::Schedule,
        2 => Trigger::Manual,
        3 => Trigger::CatchUp,
        4 => Trigger::Reboot,
        _ => return None,
    })
}

const F_EXIT: u8 = 1;
const F_SIGNAL: u8 = 2;
const F_VALUE: u8 = 4;
const F_PID: u8 = 8;
const F_LEVEL: u8 = 16;
/// Another attempt of the same fire followed (so old records, without it, read as last).
const F_RETRIED: u8 = 32;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut_str(s: &str, max: usize) -> &[u8] {
    if s.len() <= max {
        return s.as_bytes();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s.as_bytes()[..end]
}

/// Timestamps and boot id of an append; taken by the caller so tests can fix them.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    pub realtime_us: i64,
    pub monotonic_us: u64,
    pub boot_id: [u8; 16],
}

impl Stamp {
    pub fn now(boot_id: [u8; 16]) -> Stamp {
        let realtime_us = match SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            Ok(d) => d.as_micros() as i64,
            Err(e) => -(e.duration().as_micros() as i64),
        };
        let monotonic_us = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1000)
            .unwrap_or(0);
        Stamp { realtime_us, monotonic_us, boot_id }
    }
}

/// Encodes one record into `buf` (at least `MAX_RECORD` bytes, zeroed) and returns its
/// unpadded length. Long fields are cut to their caps; the output keeps its *last* bytes.
pub fn encode(buf: &mut [u8], seq: u64, st: &Stamp, r: &Record, output_bytes: usize) -> usize {
    let job = cut_str(&r.job, MAX_JOB);
    let job_kind = cut_str(r.job_kind.as_str(), MAX_JOB_KIND);
    let level = r.level.as_deref().map(|l| cut_str(l, MAX_LEVEL)).unwrap_or(b"");
    let message = cut_str(&r.message, MAX_MESSAGE);
    let keep = output_bytes.min(MAX_OUTPUT).min(r.output_tail.len());
    let output = &r.output_tail[r.output_tail.len() - keep..];
    let cut = (r.output_tail.len() - keep) as u32;

    let mut flags = 0;
    if r.exit_code.is_some() {
        flags |= F_EXIT;
    }
    if r.signal.is_some() {
        flags |= F_SIGNAL;
    }
    if r.value.is_some() {
        flags |= F_VALUE;
    }
    if r.pid.is_some() {
        flags |= F_PID;
    }
    if r.level.is_some() {
        flags |= F_LEVEL;
    }
    if !r.last_attempt {
        flags |= F_RETRIED;
    }
    let usage = if r.cpu_usec.is_some() || r.memory_peak_bytes.is_some() { USAGE_LEN } else { 0 };
    let len = REC_HEAD + job.len() + job_kind.len() + level.len() + message.len() + output.len() + usage;
    buf[0..2].copy_from_slice(&REC_MAGIC);
    buf[2..4].copy_from_slice(&(len as u16).to_le_bytes());
    buf[8..16].copy_from_slice(&seq.to_le_bytes());
    buf[16..24].copy_from_slice(&st.realtime_us.to_le_bytes());
    buf[24..32].copy_from_slice(&st.monotonic_us.to_le_bytes());
    buf[32..48].copy_from_slice(&st.boot_id);
    buf[48] = kind_code(r.kind);
    buf[49] = outcome_code(r.outcome);
    buf[50] = trigger_code(r.trigger);
    buf[51] = flags;
    buf[52..56].copy_from_slice(&r.exit_code.unwrap_or(0).to_le_bytes());
    buf[56..60].copy_from_slice(&r.signal.unwrap_or(0).to_le_bytes());
    buf[60..64].copy_from_slice(&r.attempt.to_le_bytes());
    buf[64..72].copy_from_slice(&(r.duration.as_micros().min(u64::MAX as u128) as u64).to_le_bytes());
    buf[72..76].copy_from_slice(&r.pid.unwrap_or(0).to_le_bytes());
    buf[76] = job.len() as u8;
    buf[77] = job_kind.len() as u8;
    buf[78] = level.len() as u8;
    buf[79] = usage as u8;
    buf[80..82].copy_from_slice(&(message.len() as u16).to_le_bytes());
    buf[82..84].copy_from_slice(&(output.len() as u16).to_le_bytes());
    buf[84..88].copy_from_slice(&cut.to_le_bytes());
    buf[88..96].copy_from_slice(&r.value.unwrap_or(0.0).to_le_bytes());
    let mut at = REC_HEAD;
    for part in [job, job_kind, level, message, output] {
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    if usage > 0 {
        buf[at..at + 8].copy_from_slice(&r.cpu_usec.unwrap_or(u64::MAX).to_le_bytes());
        buf[at + 8..at + 16].copy_from_slice(&r.memory_peak_bytes.unwrap_or(u64::MAX).to_le_bytes());
    }
    let crc = record_crc(&buf[..len]);
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    len
}

fn record_crc(rec: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&rec[0..4]), &rec[8..])
}

/// The length of the valid record at the start of `b`, if there is one: magic, a plausible
/// length whose fields add up, and a matching CRC.
fn valid_len(b: &[u8]) -> Option<usize> {
    if b.len() < REC_HEAD || b[0..2] != REC_MAGIC {
        return None;
    }
    let len = le16(b, 2) as usize;
    if !(REC_HEAD..=MAX_RECORD).contains(&len) || len > b.len() {
        return None;
    }
    let fields =
        b[76] as usize + b[77] as usize + b[78] as usize + le16(b, 80) as usize + le16(b, 82) as usize + b[79] as usize;
    if REC_HEAD + fields != len {
        return None;
    }
    (record_crc(&b[..len]) == le32(b, 4)).then_some(len)
}

/// Where a valid record lies in the data area (offsets relative to the header's end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub offset: u32,
    pub len: u16,
    pub seq: u64,
}

/// Bytes of the data area that held no readable record where one belonged: a damaged record
/// (a flipped bit, a torn write), skipped by the reader, which goes on with the next record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Offset in the file.
    pub offset: u64,
    pub len: u64,
}

/// `296 bytes at offset 4160 (0x1040), 8 bytes at offset 9000 (0x2328)`: damage for people.
pub fn describe_damage(damage: &[Damage]) -> String {
    let total: u64 = damage.iter().map(|d| d.len).sum();
    let places: Vec<String> =
        damage.iter().map(|d| format!("{} bytes at offset {} (0x{:x})", d.len, d.offset, d.offset)).collect();
    format!(
        "skipped {total} damaged bytes in {} place{}: {}",
        damage.len(),
        if damage.len() == 1 { "" } else { "s" },
        places.join(", ")
    )
}

/// What a scan of the data area found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The records that make up the log, oldest first.
    pub slots: Vec<Slot>,
    /// Damaged places, in file order.
    pub damage: Vec<Damage>,
}

/// The records that make up the log (see [`scan`]).
pub fn scan_data(data: &[u8]) -> Vec<Slot> {
    scan(data).slots
}

/// Whether bytes at `at` look like a damaged record: two of magic, the expected sequence
/// number and a plausible length that fits in `room` bytes (a single flipped bit spoils at
/// most one of them). Returns its padded length when that part is intact.
fn damaged_record_at(b: &[u8], seq: Option<u64>, room: usize, exact: bool) -> Option<Option<usize>> {
    if b.len() < 16 {
        return None;
    }
    let magic = b[0..2] == REC_MAGIC;
    let seq_ok = seq.is_some_and(|s| le64(b, 8) == s);
    let len = le16(b, 2) as usize;
    let len_ok = (REC_HEAD..=MAX_RECORD).contains(&len)
        && if exact { align8(len) == room } else { len <= room }
        && b.len() >= REC_HEAD
        && REC_HEAD + b[76] as usize + b[77] as usize + b[78] as usize + le16(b, 80) as usize + le16(b, 82) as usize
            == len;
    ((magic as u8 + seq_ok as u8 + len_ok as u8) >= 2).then_some(len_ok.then_some(align8(len)))
}

/// Scans the data area: every valid record, which of them make up the log, and the damage.
///
/// The log is the newest record and, going down by sequence number, every older one up to
/// the first gap that overwriting explains. A gap between two records that follow each other
/// in the file (only unreadable bytes between them) is damage, not overwriting: the records on
/// both sides stay. Unreadable bytes are damage unless the ring's own life explains them:
/// zeros never written, the rest of a record partly overwritten after the newest one, the
/// tail of a lap too short for the next record, and leftovers of an older lap around records
/// no longer part of the log.
pub fn scan(data: &[u8]) -> Scan {
    let mut found: Vec<Slot> = Vec::new();
    let mut pos = 0usize;
    while pos + REC_HEAD <= data.len() {
        match valid_len(&data[pos..]) {
            Some(len) => {
                found.push(Slot { offset: pos as u32, len: len as u16, seq: le64(data, pos + 8) });
                pos += align8(len);
            }
            None => pos += 8,
        }
    }
    let n = found.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by_key(|&i| found[i].seq);
    let end_of = |i: usize| found[i].offset as usize + align8(found[i].len as usize);
    // Unreadable bytes from the end of `x` to the start of `y`, going round the end.
    let between = |x: usize, y: usize| {
        let (from, to) = (end_of(x), found[y].offset as usize);
        if to >= from { to - from } else { data.len().saturating_sub(from) + to }
    };
    let mut start = n;
    while start > 0 {
        if start < n {
            let (x, y) = (order[start - 1], order[start]);
            let keep = match found[x].seq.checked_add(1) {
                Some(next) if next == found[y].seq => true,
                // Only unreadable bytes between them in the file, room enough for the missing
                // ones: those were damaged. Without the room the older record is a leftover
                // of an earlier lap (at the end of the area, which a lap that wrapped early
                // did not reach), and the gap is overwriting.
                Some(next) if next < found[y].seq => {
                    (x + 1) % n == y && (found[y].seq - next) as usize * align8(REC_HEAD) <= between(x, y)
                }
                _ => false,
            };
            if !keep {
                break;
            }
        }
        start -= 1;
    }
    let mut retained = vec![false; n];
    for &i in &order[start..] {
        retained[i] = true;
    }
    let newest = order.last().copied();
    let mut damage = Vec::new();
    let mut report = |from: usize, to: usize| {
        if to > from {
            damage.push(Damage { offset: HEADER_SIZE + from as u64, len: (to - from) as u64 });
        }
    };
    for gap in 0..=n {
        let prev = gap.checked_sub(1);
        let next = (gap < n).then_some(gap);
        let s = prev.map_or(0, end_of);
        let e = next.map_or(data.len(), |i| found[i].offset as usize);
        if s >= e || data[s..e].iter().all(|&b| b == 0) {
            continue;
        }
        if n == 0 {
            // Nothing readable at all: report what is not zeros.
            let first = data.iter().position(|&b| b != 0).unwrap_or(0) & !7;
            let last = data.iter().rposition(|&b| b != 0).map_or(0, |i| align8(i + 1)).min(data.len());
            report(first, last);
            continue;
        }
        let mut reported = false;
        // The record after a kept one, damaged in place.
        if let Some(p) = prev.filter(|&p| retained[p])
            && let Some(len) = damaged_record_at(&data[s..e], found[p].seq.checked_add(1), e - s, false)
        {
            report(s, len.map_or(e, |l| (s + l).min(e)));
            reported = true;
        }
        // After the newest record: the rest of one partly overwritten, then the oldest kept
        // one, which may be damaged.
        let successor = next.or(Some(0)).filter(|&i| retained[i]);
        if !reported
            && prev == newest
            && let Some(succ) = successor
        {
            let want = found[succ].seq.checked_sub(1);
            let exact = next.is_some();
            if let Some(at) = (s..e)
                .step_by(8)
                .find(|&at| damaged_record_at(&data[at..e.min(at + REC_HEAD.max(16))], want, e - at, exact).is_some())
            {
                report(at, e);
                reported = true;
            }
        }
        if reported || prev == newest {
            continue;
        }
        let damaged = match (prev, next) {
            // Offset 0 holds a record once anything wrapped; before that, zeros.
            (None, _) => true,
            (Some(p), _) if !retained[p] => false,
            (Some(_), Some(q)) if !retained[q] => false,
            (Some(p), Some(q)) => found[p].seq.checked_add(1) != Some(found[q].seq),
            // The tail of a lap: fine when the next record went to the start.
            (Some(p), None) => found[p].seq.checked_add(1) != Some(found[0].seq),
        };
        if damaged {
            report(s, e);
        }
    }
    let slots = order[start..].iter().map(|&i| found[i]).collect();
    Scan { slots, damage }
}

/// One record as read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub seq: u64,
    /// Offset of the record in the file.
    pub offset: u64,
    /// When the record was written (microseconds since the Unix epoch).
    pub realtime_us: i64,
    /// CLOCK_MONOTONIC at the write, microseconds; comparable only within `boot_id`.
    pub monotonic_us: u64,
    pub boot_id: [u8; 16],
    pub kind: RecordKind,
    pub outcome: Outcome,
    pub trigger: Trigger,
    pub attempt: u32,
    /// No further attempt of its fire followed (see `Record::last_attempt`).
    pub last_attempt: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub pid: Option<u32>,
    pub duration_us: u64,
    pub value: Option<f64>,
    pub level: Option<String>,
    pub job: String,
    pub job_kind: String,
    pub message: String,
    pub output: Vec<u8>,
    /// Bytes of the run's output tail left out of the ring (journald has the full tail).
    pub output_cut: u32,
    pub cpu_usec: Option<u64>,
    pub memory_peak_bytes: Option<u64>,
}

/// Decodes a record that `valid_len` accepted; `offset` is its place in the file, for errors.
pub fn decode(b: &[u8], offset: u64) -> Result<Entry, RingError> {
    let len = valid_len(b).ok_or_else(|| corrupt(offset, "no valid record here"))?;
    let b = &b[..len];
    let kind = kind_from(b[48]).ok_or_else(|| corrupt(offset + 48, format!("unknown record kind {}", b[48])))?;
    let outcome = outcome_from(b[49]).ok_or_else(|| corrupt(offset + 49, format!("unknown outcome {}", b[49])))?;
    let trigger = trigger_from(b[50]).ok_or_else(|| corrupt(offset + 50, format!("unknown trigger {}", b[50])))?;
    let flags = b[51];
    let mut at = REC_HEAD;
    let mut take = |n: usize| {
        let s = &b[at..at + n];
        at += n;
        s
    };
    let text = |s: &[u8]| String::from_utf8_lossy(s).into_owned();
    let job = text(take(b[76] as usize));
    let job_kind = text(take(b[77] as usize));
    let level = text(take(b[78] as usize));
    let message = text(take(le16(b, 80) as usize));
    let output = take(le16(b, 82) as usize).to_vec();
    let usage = take(b[79] as usize);
    let usage_at = |i: usize| {
        usage
            .get(i * 8..i * 8 + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
            .filter(|v| *v != u64::MAX)
    };
    Ok(Entry {
        seq: le64(b, 8),
        offset,
        realtime_us: le64(b, 16) as i64,
        monotonic_us: le64(b, 24),
        boot_id: b[32..48].try_into().expect("16 bytes"),
        kind,
        outcome,
        trigger,
        attempt: le32(b, 60),
        last_attempt: flags & F_RETRIED == 0,
        exit_code: (flags & F_EXIT != 0).then(|| le32(b, 52) as i32),
        signal: (flags & F_SIGNAL != 0).then(|| le32(b, 56) as i32),
        pid: (flags & F_PID != 0).then(|| le32(b, 72)),
        duration_us: le64(b, 64),
        value: (flags & F_VALUE != 0).then(|| f64::from_le_bytes(b[88..96].try_into().expect("8 bytes"))),
        level: (flags & F_LEVEL != 0).then_some(level),
        job,
        job_kind,
        message,
        output,
        output_cut: le32(b, 84),
        cpu_usec: usage_at(0),
        memory_peak_bytes: usage_at(1),
    })
}

/// Reads a whole ring image (header and data) and returns its records, oldest first.
/// A file shorter than its header says (cut by hand or by a full disk) is read as far as it
/// goes. Garbage never panics: it is an error naming the offset, or it is skipped.
pub fn read_image(image: &[u8]) -> Result<Vec<Entry>, RingError> {
    let size = parse_header(image)?;
    Ok(read_data(image, size).entries)
}

/// What a reader got from a ring file: its records, oldest first, and what it had to skip.
#[derive(Debug, Default)]
pub struct Log {
    pub entries: Vec<Entry>,
    /// Damaged places skipped, in file order.
    pub damage: Vec<Damage>,
    /// The header is damaged (why, at which offset): the records were read by the file's
    /// length instead of the size it gives.
    pub bad_header: Option<RingError>,
}

fn read_data(image: &[u8], size: u64) -> Log {
    let end = (size as usize).min(image.len());
    // A file cut short of its size (by hand, a full disk, a bad card) lost what was there:
    // said as damage, never read as a shorter, whole log.
    let cut = (end < size as usize).then(|| {
        let from = (end as u64).max(HEADER_SIZE);
        Damage { offset: from, len: size - from }
    });
    if end <= HEADER_SIZE as usize {
        return Log { damage: cut.into_iter().collect(), ..Log::default() };
    }
    let data = &image[HEADER_SIZE as usize..end];
    let found = scan(data);
    let mut log = Log { damage: found.damage, ..Log::default() };
    log.damage.extend(cut);
    for s in found.slots {
        let at = HEADER_SIZE + s.offset as u64;
        match decode(&data[s.offset as usize..], at) {
            Ok(e) => log.entries.push(e),
            // A record with a valid CRC this runner cannot read (a newer format): skipped too.
            Err(_) => log.damage.push(Damage { offset: at, len: align8(s.len as usize) as u64 }),
        }
    }
    log.damage.sort_unstable_by_key(|d| d.offset);
    log
}

/// The highest sequence number that a record header in `data` shows above `newest` (the
/// newest readable record) though the record does not read: a damaged newest record. Only
/// numbers whose room fits in a quarter of the ring count (what [`Ring::rescan`] may skip
/// without hiding older records), so a flipped high bit does not throw run ids far ahead.
fn damaged_seq(data: &[u8], newest: u64) -> u64 {
    let reach = newest.saturating_add((data.len() / 4 / align8(REC_HEAD)) as u64);
    let mut top = 0;
    let mut pos = 0;
    while pos + 16 <= data.len() {
        if data[pos..pos + 2] == REC_MAGIC {
            let seq = le64(data, pos + 8);
            if seq > newest && seq <= reach {
                top = top.max(seq);
            }
        }
        pos += 8;
    }
    top
}

/// Whether a header that does not parse is a ring's, damaged (so its records can be read
/// and the file moved aside), rather than another program's file: the magic is off by at
/// most two bits, or the file is too short or zeros where the magic goes.
pub fn damaged_not_foreign(head: &[u8]) -> bool {
    if head.len() < MAGIC.len() || head[..MAGIC.len()].iter().all(|&b| b == 0) {
        return true;
    }
    head[..MAGIC.len()].iter().zip(MAGIC).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>() <= 2
}

/// Reads a ring image whose header may be damaged: then the records are read up to the end
/// of the image (at most `MAX_SIZE`), and `bad_header` says why. A foreign file is an error.
pub fn read_log_image(image: &[u8]) -> Result<Log, RingError> {
    match parse_header(image) {
        Ok(size) => Ok(read_data(image, size)),
        Err(e) if damaged_not_foreign(image) => {
            let mut log = read_data(image, (image.len() as u64).min(MAX_SIZE) & !7);
            log.bad_header = Some(e);
            Ok(log)
        }
        Err(e) => Err(e),
    }
}

/// The file's bytes up to the ring's size (or, with a damaged header and `lenient`, up to
/// its length).
fn read_file_image(f: &File, lenient: bool) -> Result<Vec<u8>, RingError> {
    let len = f.metadata()?.len();
    let mut head = [0u8; HEADER_SIZE as usize];
    let n = read_full_at(f, &mut head, 0)?;
    let size = match parse_header(&head[..n]) {
        Ok(size) => size,
        Err(_) if lenient && damaged_not_foreign(&head[..n]) => len.min(MAX_SIZE),
        Err(e) => return Err(e),
    };
    let mut image = vec![0u8; size.min(len) as usize];
    let n = read_full_at(f, &mut image, 0)?;
    image.truncate(n);
    Ok(image)
}

fn read_full_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads the records of the ring at `path` without taking its lock: a record being written
/// at the same moment is simply not seen yet. Reads twice when the two reads disagree (a
/// writer was busy), so a record torn by the read itself never hides the ones before it.
pub fn read_path(path: &Path) -> Result<Vec<Entry>, RingError> {
    let log = read_log(path)?;
    match log.bad_header {
        Some(e) => Err(e),
        None => Ok(log.entries),
    }
}

/// Like [`read_path`], and also says what was skipped: damaged records, a damaged header.
pub fn read_log(path: &Path) -> Result<Log, RingError> {
    // No link followed, no fifo waited on: a planted one is an error naming the file.
    let f = crate::fsx::open_regular(path, false)?;
    let shape = |l: &Log| {
        (l.entries.first().map(|e| e.seq), l.entries.last().map(|e| e.seq), l.entries.len(), l.damage.clone())
    };
    let mut prev = read_log_image(&read_file_image(&f, true)?)?;
    for _ in 0..4 {
        let again = read_log_image(&read_file_image(&f, true)?)?;
        if shape(&again) == shape(&prev) {
            return Ok(again);
        }
        prev = again;
    }
    Ok(prev)
}

/// What a follower got since its last look.
#[derive(Debug, Default)]
pub struct Batch {
    pub entries: Vec<Entry>,
    /// Records the writer overwrote before this reader saw them (it was lapped).
    pub lost: u64,
    /// Damaged places not reported by an earlier poll.
    pub damage: Vec<Damage>,
    /// The header is damaged (reported at the first poll that saw it).
    pub bad_header: Option<RingError>,
}

/// Reads new records as they come, by sequence number: a follower that falls a whole ring
/// behind learns how many records it missed instead of seeing them out of order.
#[derive(Debug, Default)]
pub struct Follower {
    pub last_seq: Option<u64>,
    /// Damage already reported, so each place is said once.
    seen_damage: Vec<Damage>,
    seen_bad_header: bool,
}

impl Follower {
    pub fn poll(&mut self, path: &Path) -> Result<Batch, RingError> {
        let log = read_log(path)?;
        let all = log.entries;
        let mut batch = Batch::default();
        for d in log.damage {
            if !self.seen_damage.contains(&d) {
                self.seen_damage.push(d);
                batch.damage.push(d);
            }
        }
        if log.bad_header.is_some() && !self.seen_bad_header {
            self.seen_bad_header = true;
            batch.bad_header = log.bad_header;
        }
        let new: Vec<Entry> = match self.last_seq {
            None => all,
            Some(last) => {
                // A writer that restarted on a new, empty file starts again from 1.
                if all.last().is_some_and(|e| e.seq < last) {
                    all
                } else {
                    all.into_iter().filter(|e| e.seq > last).collect()
                }
            }
        };
        if let (Some(last), Some(first)) = (self.last_seq, new.first())
            && first.seq > last + 1
        {
            batch.lost = first.seq - last - 1;
        }
        if let Some(e) = new.last() {
            self.last_seq = Some(e.seq);
        }
        batch.entries = new;
        Ok(batch)
    }
}

/// The writer: one open file, the position after the newest record and the next sequence
/// number. Appends take an exclusive `flock` on the file for the duration of one `pwrite`, so
/// the daemon and `runner once` never interleave; readers take no lock.
#[derive(Debug)]
pub struct Ring {
    file: File,
    data_size: u64,
    /// Offset of the next record, relative to the data area.
    head: u64,
    next_seq: u64,
    boot_id: [u8; 16],
    output_bytes: usize,
    fsync: Fsync,
    unsynced: u32,
    last_sync: Instant,
    found: Found,
    /// No sequence number at or below this is given again: the newest of the job files, of
    /// a ring moved aside and of a record seen damaged (a run id never repeats while the
    /// state dir survives).
    floor: u64,
}

/// What opening a ring for writing found and did, for the caller to record.
#[derive(Debug, Default)]
pub struct Found {
    /// Damaged places in the data area; the records around them are kept, and these bytes
    /// were zeroed so the damage is reported once.
    pub damage: Vec<Damage>,
    /// The file had a damaged header: why, and where it was moved to before a new ring was
    /// started in its place.
    pub moved_aside: Option<(String, PathBuf)>,
    /// The file was shorter than its header says: (its length, the ring's size). It was
    /// given its size back; the records that were in the cut part are lost.
    pub truncated: Option<(u64, u64)>,
}

impl Ring {
    /// Opens the ring at `cfg.path`, creating and preallocating it when absent, and finds the
    /// newest record. A file that is not a ring is an error naming the offset, never
    /// overwritten. A ring with a damaged header is moved aside (`<name>.damaged-<UTC time>`)
    /// and a new one started, so recording never stops; what was found is in [`Ring::found`].
    pub fn open(cfg: &RingConfig) -> Result<Ring, RingError> {
        Ring::open_above(cfg, 0)
    }

    /// [`open`](Self::open), giving no sequence number at or below `floor` (the newest a
    /// job file holds), nor at or below any record of a ring it moves aside.
    pub fn open_above(cfg: &RingConfig, mut floor: u64) -> Result<Ring, RingError> {
        let mut moved_aside = None;
        // Another opener may move a damaged file at the same moment: then open again.
        for _ in 0..8 {
            let file = match crate::fsx::options().read(true).write(true).open(&cfg.path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => create(&cfg.path, cfg.size)?,
                Err(e) => return Err(e.into()),
            };
            crate::fsx::check_regular(&file, &cfg.path)?;
            let lock = lock::exclusive(&file)?;
            let mut head = [0u8; HEADER_SIZE as usize];
            let n = read_full_at(&file, &mut head, 0)?;
            if let Err(e) = parse_header(&head[..n]) {
                if !damaged_not_foreign(&head[..n]) {
                    return Err(e);
                }
                if !same_file(&file, &cfg.path) {
                    continue;
                }
                // Its readable records still hold run ids: the new ring goes on above them.
                if let Ok(log) = read_file_image(&file, true).and_then(|i| read_log_image(&i)) {
                    floor = floor.max(log.entries.iter().map(|e| e.seq).max().unwrap_or(0));
                }
                let to = move_aside(&cfg.path)?;
                drop(lock);
                moved_aside = Some((e.to_string(), to));
                continue;
            }
            let mut ring = Ring {
                file,
                data_size: 0,
                head: 0,
                next_seq: 1,
                boot_id: crate::host::boot_id_bytes(),
                output_bytes: cfg.output_bytes.min(MAX_OUTPUT),
                fsync: cfg.fsync,
                unsynced: 0,
                last_sync: Instant::now(),
                found: Found { damage: Vec::new(), moved_aside: moved_aside.take(), truncated: None },
                floor,
            };
            let (size, damage) = ring.rescan()?;
            ring.found.damage = damage;
            let len = ring.file.metadata()?.len();
            if len < size {
                // Cut short (by hand, a full disk at creation): said, and the data area given
                // back its size.
                ring.found.truncated = Some((len, size));
                ring.file.set_len(size)?;
            }
            for d in &ring.found.damage {
                ring.file.write_all_at(&vec![0u8; d.len as usize], d.offset)?;
            }
            if !ring.found.damage.is_empty() {
                ring.file.sync_data()?;
            }
            drop(lock);
            return Ok(ring);
        }
        Err(RingError::Io(io::Error::other("the ring file kept changing while it was opened")))
    }

    /// What opening found (damage, a header moved aside); taken once.
    pub fn take_found(&mut self) -> Found {
        std::mem::take(&mut self.found)
    }

    /// The ring's total size, as its header says.
    pub fn size(&self) -> u64 {
        self.data_size + HEADER_SIZE
    }

    /// The sequence number the next append will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Finds the newest record again; returns the ring's size and the damage seen.
    fn rescan(&mut self) -> Result<(u64, Vec<Damage>), RingError> {
        let image = read_file_image(&self.file, false)?;
        let size = parse_header(&image)?;
        let data = &image[HEADER_SIZE as usize..];
        let Scan { slots, damage } = scan(data);
        self.data_size = size - HEADER_SIZE;
        let newest = slots.last().map_or(0, |s| s.seq);
        // A record too damaged to read may still show its number: never give it again.
        self.floor = self.floor.max(damaged_seq(data, newest));
        match slots.last() {
            Some(s) => {
                self.head = s.offset as u64 + align8(s.len as usize) as u64;
                self.next_seq = s.seq + 1;
            }
            None => {
                self.head = 0;
                self.next_seq = self.next_seq.max(1);
            }
        }
        let want = self.next_seq.max(self.floor.saturating_add(1));
        if !slots.is_empty() && want > self.next_seq {
            // Numbers skipped need room before the next record, as records lost to damage
            // leave it: a reader takes a gap without room for an earlier lap and would hide
            // every older record. At most a quarter of the ring is given up.
            let room = (want - self.next_seq).saturating_mul(align8(REC_HEAD) as u64);
            self.head += room.min(self.data_size / 4);
        }
        self.next_seq = want;
        Ok((size, damage))
    }

    /// Whether another writer appended since our last look: its first record went either at
    /// our head or, if it wrapped, at the start of the data area.
    fn others_appended(&self) -> io::Result<bool> {
        let mut probe = [0u8; 16];
        for at in [self.head, 0] {
            if at + 16 > self.data_size {
                continue;
            }
            let n = read_full_at(&self.file, &mut probe, HEADER_SIZE + at)?;
            if n == 16 && probe[0..2] == REC_MAGIC && le64(&probe, 8) >= self.next_seq {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Appends one record with the current time; returns its sequence number. No heap
    /// allocation: the record is encoded into a buffer on the stack.
    pub fn append(&mut self, r: &Record) -> Result<u64, RingError> {
        self.append_stamped(r, &Stamp::now(self.boot_id))
    }

    pub fn append_stamped(&mut self, r: &Record, st: &Stamp) -> Result<u64, RingError> {
        let mut buf = [0u8; MAX_RECORD];
        let _lock = lock::exclusive(&self.file)?;
        if self.others_appended()? {
            self.rescan()?;
        }
        let seq = self.next_seq;
        let len = encode(&mut buf, seq, st, r, self.output_bytes);
        let padded = align8(len) as u64;
        if self.head + padded > self.data_size {
            self.head = 0;
        }
        self.file.write_all_at(&buf[..padded as usize], HEADER_SIZE + self.head)?;
        self.head += padded;
        self.next_seq += 1;
        self.unsynced += 1;
        let due = match self.fsync {
            Fsync::Always => true,
            Fsync::EveryRecords(n) => self.unsynced >= n,
            Fsync::Interval(d) => self.last_sync.elapsed() >= d,
            Fsync::Never => false,
        };
        if due {
            self.sync()?;
        }
        Ok(seq)
    }

    /// Flushes appended records to the disk.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.unsynced > 0 {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        self.last_sync = Instant::now();
        Ok(())
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.fsync != Fsync::Never {
            let _ = self.sync();
        }
    }
}

/// Writes zeros over the whole file once. fallocate leaves ext4's extents unwritten, and an
/// append into an unwritten block converts it: a change of the file's metadata, which
/// `fdatasync` must then commit to the journal. Written once here, every later append
/// rewrites a block in place and `fdatasync` writes that block alone (issue 29).
fn write_zeros(f: &File, size: u64) -> io::Result<()> {
    // On the heap: the writer thread's stack is small.
    let zeros = vec![0u8; 64 * 1024];
    let mut at = 0;
    while at < size {
        let n = (size - at).min(zeros.len() as u64);
        f.write_all_at(&zeros[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

/// Creates a preallocated ring: written in full under a temporary name, synced, then linked
/// into place, so a reader or a second writer never sees a half-made file, and two
/// processes creating it at once end up sharing one.
fn create(path: &Path, size: u64) -> Result<File, RingError> {
    let size = size.clamp(MIN_SIZE, MAX_SIZE) & !7;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    // A leftover of a crash (or a planted link) under the temporary name is unlinked, not
    // written through.
    let _ = std::fs::remove_file(&tmp);
    let f = crate::fsx::options().read(true).write(true).create_new(true).mode(0o640).open(&tmp)?;
    let made = (|| -> io::Result<()> {
        // Real blocks now, so a later append cannot fail for space or fragment the file.
        // `off_t` is 32 bits on armv7 glibc; MAX_SIZE fits it, and a size that did not would
        // be refused here rather than cut.
        let len = nix::libc::off_t::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        nix::fcntl::posix_fallocate(&f, 0, len).or_else(|e| {
            // Filesystems without fallocate (some FUSE, old tmpfs): writing zeros also works.
            if e == nix::errno::Errno::EOPNOTSUPP || e == nix::errno::Errno::EINVAL {
                f.set_len(size)
            } else {
                Err(e.into())
            }
        })?;
        write_zeros(&f, size)?;
        f.write_all_at(&header_for(size), 0)?;
        f.sync_all()?;
        Ok(())
    })();
    let linked = made.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent()
                && let Ok(d) = File::open(dir)
            {
                let _ = d.sync_all();
            }
            Ok(f)
        }
        // Someone else made it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Ok(crate::fsx::options().read(true).write(true).open(path)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `path` still names the open file `f` (no one moved it meanwhile).
fn same_file(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Moves a damaged ring to `<name>.damaged-<UTC time>` (never over another file) and returns
/// the new name. The caller holds the file's lock, so no writer appends meanwhile.
fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let stamp = crate::time::utc_text(jiff::Timestamp::now()).replace(['-', ':'], "");
    let base = format!("{}.damaged-{stamp}", path.display());
    for n in 0..100 {
        let to = PathBuf::from(if n == 0 { base.clone() } else { format!("{base}.{n}") });
        match std::fs::hard_link(path, &to) {
            Ok(()) => {
                std::fs::remove_file(path)?;
                if let Some(dir) = path.parent()
                    && let Ok(d) = File::open(dir)
                {
                    let _ = d.sync_all();
                }
                return Ok(to);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("{base}: too many damaged rings moved aside this second")))
}

/// Bytes one record takes in the file (padded), for documentation and the benchmark.
pub fn record_size(r: &Record, output_bytes: usize) -> usize {
    let mut buf = [0u8; MAX_RECORD];
    align8(encode(&mut buf, 0, &Stamp { realtime_us: 0, monotonic_us: 0, boot_id: [0; 16] }, r, output_bytes))
}

/// Formats a boot id the way journald does (32 hex digits).
pub fn boot_id_hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rec(job: &str, out: &[u8]) -> Record {
        let mut r = Record::skipped(job, crate::record::Kind::Command, Trigger::Schedule, String::new());
        r.kind = RecordKind::Run;
        r.outcome = Outcome::Failure;
        r.exit_code = Some(3);
        r.output_tail = out.to_vec();
        r.duration = Duration::from_millis(1234);
        r
    }

    #[test]
    fn encode_then_decode_keeps_every_field() {
        let mut r = rec("backup", b"hello\nworld\n");
        r.value = Some(42.5);
        r.level = Some("warn".into());
        r.signal = Some(9);
        r.pid = Some(77);
        r.message = "m\u{e9}ssage".into();
        let mut buf = [0u8; MAX_RECORD];
        let st = Stamp { realtime_us: 1_700_000_000_000_000, monotonic_us: 5, boot_id: [7; 16] };
        let len = encode(&mut buf, 9, &st, &r, 512);
        let e = decode(&buf[..len], 64).unwrap();
        assert_eq!((e.seq, e.realtime_us, e.monotonic_us, e.boot_id), (9, st.realtime_us, 5, [7; 16]));
        assert_eq!((e.job.as_str(), e.job_kind.as_str(), e.message.as_str()), ("backup", "command", "m\u{e9}ssage"));
        assert_eq!((e.exit_code, e.signal, e.pid, e.value), (Some(3), Some(9), Some(77), Some(42.5)));
        assert_eq!(e.level.as_deref(), Some("warn"));
        assert_eq!((e.outcome, e.kind, e.duration_us), (Outcome::Failure, RecordKind::Run, 1_234_000));
        assert_eq!(e.output, b"hello\nworld\n");
        assert_eq!((e.cpu_usec, e.memory_peak_bytes), (None, None));
        r.cpu_usec = Some(1234);
        let len = encode(&mut buf, 10, &st, &r, 512);
        let e = decode(&buf[..len], 64).unwrap();
        assert_eq!((e.cpu_usec, e.memory_peak_bytes, e.output.as_slice()), (Some(1234), None, &b"hello\nworld\n"[..]));
    }

    #[test]
    fn output_keeps_its_last_bytes_and_counts_the_cut() {
        let out: Vec<u8> = (0..2000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut buf = [0u8; MAX_RECORD];
        let st = Stamp { realtime_us: 0, monotonic_us: 0, boot_id: [0; 16] };
        let len = encode(&mut buf, 1, &st, &rec("j", &out), 100);
        let e = decode(&buf[..len], 0).unwrap();
        assert_eq!(e.output, &out[1900..]);
        assert_eq!(e.output_cut, 1900);
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let s = "\u{e9}".repeat(MAX_MESSAGE);
        assert_eq!(cut_str(&s, 5).len(), 4);
        assert!(std::str::from_utf8(cut_str(&s, MAX_MESSAGE)).is_ok());
    }

    #[test]
    fn fsync_policies_parse() {
        assert_eq!(Fsync::parse("always"), Ok(Fsync::Always));
        assert_eq!(Fsync::parse("every 10"), Ok(Fsync::EveryRecords(10)));
        assert_eq!(Fsync::parse("30s"), Ok(Fsync::Interval(Duration::from_secs(30))));
        assert!(Fsync::parse("every 0").is_err());
        assert!(Fsync::parse("sometimes").is_err());
    }

    #[test]
    fn uuid_parses_and_rejects_garbage() {
        let id = crate::host::parse_uuid("0123456789abcdef-0123-4567-89ab-cdef01234567").is_none();
        assert!(id, "too long must be refused");
        let id = crate::host::parse_uuid("01234567-89ab-cdef-0123-456789abcdef\n").unwrap();
        assert_eq!(boot_id_hex(&id), "0123456789abcdef0123456789abcdef");
        assert!(crate::host::parse_uuid("zz").is_none());
    }

    /// Builds a data area: records placed at the given offsets with their sequence numbers.
    fn area(size: usize, placed: &[(usize, u64, usize)]) -> Vec<u8> {
        let mut data = vec![0u8; size];
        let st = Stamp { realtime_us: 0, monotonic_us: 0, boot_id: [0; 16] };
        for &(at, seq, out) in placed {
            let mut buf = [0u8; MAX_RECORD];
            let len = encode(&mut buf, seq, &st, &rec("j", &vec![b'x'; out]), 4096);
            data[at..at + len].copy_from_slice(&buf[..len]);
        }
        data
    }

    #[test]
    fn a_stale_record_at_the_end_of_the_area_is_an_old_lap_not_damage() {
        // The lap that wrote 20 and 21 wrapped early (a big record did not fit), so record 5,
        // written two laps ago at the very end, is still readable there. 6 to 19 are gone by
        // overwriting, which 5 and 20 being neighbours in the file does not change: 14
        // records cannot have fitted in the bytes between them.
        let small = align8(REC_HEAD + 1 + 7 + 8);
        let data = area(4096, &[(0, 20, 8), (small, 21, 8), (4096 - small, 5, 8)]);
        let seqs: Vec<u64> = scan(&data).slots.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [20, 21]);
        // One damaged record between two others in the file is still a gap of damage.
        let mut data = area(4096, &[(0, 1, 8), (small, 2, 8), (2 * small, 3, 8)]);
        data[small + 20] ^= 1;
        let seqs: Vec<u64> = scan(&data).slots.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [1, 3]);
    }

    #[test]
    fn header_errors_name_the_offset() {
        let mut h = header_for(DEFAULT_SIZE).to_vec();
        assert_eq!(parse_header(&h).unwrap(), DEFAULT_SIZE);
        h[8] = 9;
        assert!(parse_header(&h).unwrap_err().to_string().contains("offset 8"));
        assert!(parse_header(b"#!/bin/sh\n").unwrap_err().to_string().contains("offset 10"));
        let mut h = vec![0u8; 64];
        h[0] = b'x';
        assert!(parse_header(&h).unwrap_err().to_string().contains("offset 0"));
    }
}
