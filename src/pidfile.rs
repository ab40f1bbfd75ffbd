//! `runner run --pidfile PATH`: the daemon's pid where an init script looks for it (BusyBox
//! or Debian `start-stop-daemon -p PATH`), beside the locked `runtime_dir/runner.pid` that
//! keeps one daemon per state. Written once the daemon holds that lock, locked itself for the
//! daemon's lifetime (a second daemon given the same path is refused, not let overwrite it),
//! and removed at a clean stop. After a crash or `kill -9` it stays behind, stale: the next
//! start takes it over, as its lock died with the old process.
//!
//! runner runs as root and init scripts put this file in /run or /var/run, so the path is
//! judged as a config file is: no directory on the way to it may be writable by others
//! (a root-owned sticky directory like /tmp excepted), and the file itself, opened without
//! following a link, must be a regular file of runner's own user with one link. Otherwise
//! another user could point the init script's `stop` at a process of their choosing.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;

/// The pid file, held (locked) until dropped; dropping it removes the file.
#[derive(Debug)]
pub struct PidFile {
    lock: Flock<File>,
    path: PathBuf,
}

/// Refuses a directory that someone other than root or `euid` could change.
fn check_dir(dir: &Path, euid: u32) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot check {}: {e}", dir.display()))?;
    let owner = meta.uid();
    if owner != 0 && owner != euid {
        return Err(format!(
            "directory {} is owned by uid {owner}, who could replace the pid file; fix with `chown root: {}` or choose another --pidfile",
            dir.display(),
            dir.display()
        ));
    }
    let mode = meta.mode();
    let sticky_root = mode & 0o1000 != 0 && owner == 0;
    if mode & 0o022 != 0 && !sticky_root {
        return Err(format!(
            "directory {} is writable by others (mode {:04o}), who could replace the pid file; fix with `chmod go-w {}` or choose another --pidfile",
            dir.display(),
            mode & 0o7777,
            dir.display()
        ));
    }
    Ok(())
}

/// Every directory from `/` down to the one `path` is in, links resolved.
fn check_dirs(path: &Path, euid: u32) -> Result<(), String> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let real = std::fs::canonicalize(parent).map_err(|e| format!("cannot use directory {}: {e}", parent.display()))?;
    let mut at = PathBuf::new();
    for c in real.components() {
        at.push(c);
        check_dir(&at, euid)?;
    }
    Ok(())
}

/// Writes this process's pid to `path` and holds it; the error names the path and the fix.
pub fn create(path: &Path) -> Result<PidFile, String> {
    let shown = path.display();
    let euid = nix::unistd::geteuid().as_raw();
    check_dirs(path, euid).map_err(|e| format!("refusing the pid file {shown}: {e}"))?;
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot open the pid file {shown}: {e}; is it a symlink? remove it"))?;
    let meta = f.metadata().map_err(|e| format!("cannot check the pid file {shown}: {e}"))?;
    if !meta.is_file() || meta.nlink() != 1 || meta.uid() != euid {
        return Err(format!(
            "refusing the pid file {shown}: not a regular file of uid {euid} with one link (owner uid {}, {} links); remove it",
            meta.uid(),
            meta.nlink()
        ));
    }
    let lock = match crate::lock::try_hold(f) {
        Ok(Ok(l)) => l,
        Ok(Err(f)) => {
            let mut text = [0u8; 32];
            let n = f.read_at(&mut text, 0).unwrap_or(0);
            let pid = String::from_utf8_lossy(&text[..n]).trim().to_string();
            return Err(format!(
                "the pid file {shown} is held by a running runner (pid {pid}); stop it first, or give this one another --pidfile"
            ));
        }
        Err(e) => return Err(format!("cannot lock the pid file {shown}: {e}")),
    };
    // A stale file of a killed daemon may hold a longer pid: cut, then write.
    let line = format!("{}\n", crate::host::pid());
    lock.set_len(0)
        .and_then(|()| lock.write_all_at(line.as_bytes(), 0))
        .map_err(|e| format!("cannot write the pid file {shown}: {e}"))?;
    Ok(PidFile { lock, path: path.to_path_buf() })
}

impl Drop for PidFile {
    /// Removes the file, if it is still the one written (not replaced by hand meanwhile),
    /// before the lock goes with the descriptor.
    fn drop(&mut self) {
        let same = |m: &std::fs::Metadata, mine: &std::fs::Metadata| m.dev() == mine.dev() && m.ino() == mine.ino();
        if let (Ok(m), Ok(mine)) = (std::fs::symlink_metadata(&self.path), self.lock.metadata())
            && same(&m, &mine)
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            log::warn!("cannot remove the pid file {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_locked_and_removed() {
        let dir = std::env::temp_dir().join(format!("runner-pidfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runner.pid");
        // A stale file with a longer pid, as after kill -9.
        std::fs::write(&path, "99999999\n").unwrap();
        let held = create(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        let busy = create(&path).unwrap_err();
        assert!(busy.contains("held by a running runner"), "{busy}");
        drop(held);
        assert!(!path.exists());
        // A link in its place is refused, never written through.
        std::os::unix::fs::symlink(dir.join("elsewhere"), &path).unwrap();
        assert!(create(&path).is_err());
        assert!(!dir.join("elsewhere").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
