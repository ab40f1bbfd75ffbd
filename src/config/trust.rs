//! Whether a config file may be believed, as sshd's StrictModes and cron decide it: the file,
//! and every directory on the way to it, can be changed by root (or the daemon's own user)
//! only. A file is opened first and its descriptor `fstat`ed, so what is judged is what is
//! read; a symlink is judged by its target and every directory on the way to the target.
//!
//! A directory others may write is refused, group-writable included, with one exception: a
//! directory with the sticky bit owned by root (like /tmp) is accepted *above* a file or a
//! directory runner names, since there nobody can rename or remove what they do not own. It is
//! never accepted as the drop-in directory itself, where anyone could add a file.
//! Reads only; never writes or creates anything.

use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Whether `uid` may own what runner trusts.
fn trusted_owner(uid: u32, euid: u32) -> bool {
    uid == 0 || uid == euid
}

fn chown_fix(euid: u32) -> &'static str {
    if euid == 0 { "root:" } else { "$USER" }
}

/// Who besides the owner may write, as words and the chmod that fixes it.
fn writers(mode: u32) -> Option<(&'static str, &'static str)> {
    match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => Some(("group- and world-writable", "go-w")),
        (true, false) => Some(("group-writable", "g-w")),
        (false, true) => Some(("world-writable", "o-w")),
        (false, false) => None,
    }
}

/// Refuses a directory that someone other than root or `euid` could change. `sticky_ok`: the
/// directory only leads to a named entry (it is not the one whose entries are all read).
fn check_dir(dir: &Path, meta: &Metadata, euid: u32, sticky_ok: bool, what: &str) -> Result<(), String> {
    if !trusted_owner(meta.uid(), euid) {
        return Err(format!(
            "refusing {what}: directory {} is owned by uid {}, who could replace what runner reads there; fix with `chown {} {}`",
            dir.display(),
            meta.uid(),
            chown_fix(euid),
            dir.display()
        ));
    }
    let mode = meta.mode();
    if let Some((who, fix)) = writers(mode) {
        if sticky_ok && mode & 0o1000 != 0 && meta.uid() == 0 {
            return Ok(());
        }
        return Err(format!(
            "refusing {what}: directory {} is {who} (mode {:04o}), so others could replace what runner reads there; fix with `chmod {fix} {}`",
            dir.display(),
            mode & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// Checks every directory from `/` down to `dir` (a path without symlinks), `dir` included.
/// `last_sticky_ok` applies to `dir` itself; its ancestors always lead to a named entry.
fn check_dirs(dir: &Path, euid: u32, last_sticky_ok: bool, what: &str) -> Result<(), String> {
    let mut at = PathBuf::new();
    let n = dir.components().count();
    for (i, c) in dir.components().enumerate() {
        at.push(c);
        let meta = std::fs::symlink_metadata(&at).map_err(|e| format!("cannot check {}: {e}", at.display()))?;
        check_dir(&at, &meta, euid, i + 1 < n || last_sticky_ok, what)?;
    }
    Ok(())
}

/// A link named by runner must itself belong to root or the daemon's user (in a sticky
/// directory another user's link would otherwise choose what is read).
fn check_link(path: &Path, euid: u32, what: &str) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() && !trusted_owner(m.uid(), euid) => Err(format!(
            "refusing {what}: the symlink {} is owned by uid {}; fix with `chown -h {} {}`",
            path.display(),
            m.uid(),
            chown_fix(euid),
            path.display()
        )),
        _ => Ok(()),
    }
}

/// Reads a config file (the main one or a drop-in) if runner may trust it; otherwise the
/// reason and the fix.
pub fn read(path: &Path, euid: u32) -> Result<Vec<u8>, String> {
    let what = format!("the config file {}", path.display());
    let real = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            "config file not found; create it (see etc/supervisor.yaml for an example) or pass --config PATH"
                .to_string()
        }
        _ => format!("cannot read the config file: {e}"),
    })?;
    check_link(path, euid, &what)?;
    // Every link on the way, not only the one named: a root link to another user's link
    // would let that user choose the file (and see its first line in the parse error).
    crate::fsx::walk_links(path, euid, "the config file")?;
    if let Some(dir) = real.parent() {
        check_dirs(dir, euid, true, &what)?;
    }
    // O_NONBLOCK: a FIFO put in its place must not hang the daemon; it is refused below.
    let f = File::options()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(&real)
        .map_err(|e| format!("cannot read the config file: {e}"))?;
    let meta = f.metadata().map_err(|e| format!("cannot read the config file: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file; pass the path of a YAML file with --config".into());
    }
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let shown = if is_link { real.display().to_string() } else { path.display().to_string() };
    if let Some((who, fix)) = writers(meta.mode()) {
        return Err(format!("refusing a {who} config file: others could add jobs; fix with `chmod {fix} {shown}`"));
    }
    if !trusted_owner(meta.uid(), euid) {
        let as_whom = if euid == 0 { "root".to_string() } else { format!("uid {euid}") };
        return Err(format!(
            "refusing a config file owned by uid {} while running as {as_whom}: its owner could run commands as {as_whom}; fix with `chown {} {shown}`",
            meta.uid(),
            chown_fix(euid),
        ));
    }
    // Bounded: a file over the limit is refused from its size, and at most one byte past
    // it is read (`bounds` turns the bytes into text).
    if meta.len() > super::bounds::MAX_FILE_BYTES as u64 {
        return Err(super::bounds::too_large(meta.len()).message);
    }
    let mut bytes = Vec::new();
    f.take(super::bounds::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the config file: {e}"))?;
    Ok(bytes)
}

/// The drop-in files in `dir` (`*.yaml`, `*.yml`, not hidden), sorted; none if `dir` does
/// not exist. An error if `dir` could be changed by others: then nothing in it is read.
pub fn drop_in_files(dir: &Path, euid: u32) -> Result<Vec<PathBuf>, String> {
    let real = match std::fs::canonicalize(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read the drop-in directory: {e}")),
    };
    let what = format!("the drop-in directory {}", dir.display());
    check_link(dir, euid, &what)?;
    check_dirs(&real, euid, false, &what)?;
    let rd = std::fs::read_dir(&real).map_err(|e| format!("cannot read the drop-in directory: {e}"))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| dir.join(e.file_name()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    Ok(files)
}
