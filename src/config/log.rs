//! The `log:` settings as the plan holds them: where the run log (ring file) is, how big,
//! how much output a record keeps, when it reaches the disk. The ring's format and I/O are
//! `sinks::ring`'s; these are the choices a config makes.

use std::path::PathBuf;
use std::time::Duration;

/// The default file name under `state_dir`.
pub const FILE_NAME: &str = "runs.ring";
pub const DEFAULT_SIZE: u64 = 256 * 1024;
pub const DEFAULT_OUTPUT_BYTES: usize = 512;
/// Smallest ring: room for a few records of the largest size.
pub const MIN_SIZE: u64 = 16 * 1024;
pub const MAX_SIZE: u64 = 1 << 30;
/// Largest output tail a record may carry (`ring_output_bytes` is capped to it).
pub const MAX_OUTPUT: usize = 4096;

/// When appends reach the disk (`log: fsync:` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// `fdatasync` after every record: nothing acknowledged is lost; one flash page write per
    /// record.
    Always,
    /// After every N records (and when the ring is closed).
    EveryRecords(u32),
    /// At the first append at least this long after the last sync (and when closed).
    Interval(Duration),
    /// Leave it to the kernel's writeback (about 30 s on Linux).
    Never,
}

impl Fsync {
    /// `always`, `never`, `every 10` (records) or a duration like `30s`.
    pub fn parse(s: &str) -> Result<Fsync, String> {
        let s = s.trim();
        match s {
            "always" => return Ok(Fsync::Always),
            "never" => return Ok(Fsync::Never),
            _ => {}
        }
        if let Some(n) = s.strip_prefix("every ") {
            let n = n.trim().trim_end_matches("records").trim();
            return match n.parse::<u32>() {
                Ok(n) if n > 0 => Ok(Fsync::EveryRecords(n)),
                _ => Err(format!("invalid fsync `{s}`: write `every N` with N at least 1, like `every 10`")),
            };
        }
        match crate::time::parse(s) {
            Ok(d) if !d.is_zero() => Ok(Fsync::Interval(d)),
            _ => Err(format!(
                "invalid fsync `{s}`: write `always`, `never`, `every N` (records) or a duration like `30s`"
            )),
        }
    }
}

/// How the ring is set up: path, size for a new file, output cap, fsync.
#[derive(Clone, Debug, PartialEq)]
pub struct RingConfig {
    pub path: PathBuf,
    /// Size of a new file; an existing file keeps the size it was made with.
    pub size: u64,
    pub output_bytes: usize,
    pub fsync: Fsync,
}

impl RingConfig {}
