//! File-system facts for checks: a bounded directory-size walk, and a file's age and size.
//! These allocate (directory entries, paths); they run only as often as their check.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirSize {
    /// Apparent size of the regular files found (as `du -sb` counts file contents).
    pub bytes: u64,
    pub entries: u64,
    /// False when the walk stopped at the entry limit: `bytes` is then a lower bound.
    pub complete: bool,
}

/// Sums file sizes under `root` without following symbolic links or leaving its file
/// system, stopping after `max_entries` entries so a huge tree cannot stall the daemon.
/// Unreadable subdirectories are skipped; an unreadable root is an error.
pub fn dir_size(root: &Path, max_entries: u64) -> io::Result<DirSize> {
    let meta = std::fs::symlink_metadata(root)?;
    if !meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a directory"));
    }
    let dev = meta.dev();
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut out = DirSize { bytes: 0, entries: 0, complete: true };
    let mut first = true;
    while let Some(dir) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if first => return Err(e),
            Err(_) => continue,
        };
        first = false;
        for e in rd {
            let Ok(e) = e else { continue };
            out.entries += 1;
            if out.entries > max_entries {
                out.entries = max_entries;
                out.complete = false;
                return Ok(out);
            }
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                if m.dev() == dev {
                    stack.push(e.path());
                }
            } else if m.is_file() {
                out.bytes += m.len();
            }
        }
    }
    Ok(out)
}

/// Seconds since `path` was last modified (0 for a time in the future), and its size.
pub fn file_age(path: &Path, now: SystemTime) -> io::Result<(f64, u64)> {
    let m = std::fs::metadata(path)?;
    let age = now.duration_since(m.modified()?).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    Ok((age, m.len()))
}
