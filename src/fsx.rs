//! No-follow file helpers for the directories runner writes (`state_dir`, `runtime_dir` and
//! their subdirectories): a link planted there is never followed. Files are opened with
//! `O_NOFOLLOW`, temporary files are created with `O_EXCL` (a stale one or a planted link
//! is unlinked, never written through), and a directory runner writes in must be runner's
//! own: a real directory owned by the daemon's user and writable by nobody else. Imports
//! nothing of the crate.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// The mode runner gives the directories it creates: others may read `status`, not write.
pub const DIR_MODE: u32 = 0o755;

/// `O_NONBLOCK` too: a fifo planted where runner opens a file must not block the open (or
/// a read); it makes no difference to a regular file, and every read checks for one.
const NOFOLLOW: i32 = nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK;

/// The most runner reads of one of its own state files (a job's state, a running or live
/// file, the loaded config): each is a few KiB; more is damage or a planted `/dev/zero`.
pub const STATE_FILE_MAX: u64 = 4 << 20;

/// Options that never follow a link in the last component and never block in the open.
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.custom_flags(NOFOLLOW);
    o
}

/// Opens `path` for reading without following a link.
pub fn open_read(path: &Path) -> io::Result<File> {
    options().read(true).open(path)
}

/// A small file of the kernel's (cgroupfs, `/proc`) read whole into a buffer of `capacity`
/// bytes to start with. Their size reads as 0, so `fs::read_to_string` starts with a
/// 32-byte read and grows from there (3 reads for a `cpu.stat`), and `File`'s own
/// `read_to_string` asks `statx` and `lseek` for a size first; read through `Take`, it is
/// one read a page of the file and one for its end.
pub fn read_kernel(path: &Path, capacity: usize) -> io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(capacity);
    File::open(path)?.take(u64::MAX).read_to_string(&mut text)?;
    Ok(text)
}

/// Reads a whole file of runner's own (at most [`STATE_FILE_MAX`]) without following a link.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_bounded(path, false, STATE_FILE_MAX)
}

/// Refuses an open file that is not a regular file (a fifo, a device, a directory): the
/// error names `path` and what it is.
pub fn check_regular(f: &File, path: &Path) -> io::Result<()> {
    let t = f.metadata()?.file_type();
    if t.is_file() {
        return Ok(());
    }
    use std::os::unix::fs::FileTypeExt;
    let what = if t.is_fifo() {
        "a fifo"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is {what}, not a regular file; remove it or name a regular file", path.display()),
    ))
}

/// Opens `path` for reading without blocking (a fifo) and checks it is a regular file;
/// `follow`: whether a link in the last component is followed (a config an admin linked).
pub fn open_regular(path: &Path, follow: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true).custom_flags(if follow { nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK } else { NOFOLLOW });
    let f = o.open(path)?;
    check_regular(&f, path)?;
    Ok(f)
}

/// Reads a regular file whole, as [`open_regular`] opens it, refusing one over `max` bytes
/// with an error that names the path and the bound (`/dev/zero` or a giant file never
/// fills memory).
pub fn read_bounded(path: &Path, follow: bool, max: u64) -> io::Result<Vec<u8>> {
    let f = open_regular(path, follow)?;
    let len = f.metadata()?.len();
    let too_big = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is over {} KiB, more than runner reads of it", path.display(), max >> 10),
        )
    };
    if len > max {
        return Err(too_big());
    }
    let mut out = Vec::with_capacity(len as usize);
    // One byte over the bound tells a file that grew since the fstat.
    io::Read::read_to_end(&mut io::Read::take(f, max + 1), &mut out)?;
    if out.len() as u64 > max {
        return Err(too_big());
    }
    Ok(out)
}

/// Makes `dir` if it is missing (parents too, with [`DIR_MODE`]) and checks that runner may
/// write in it: a directory (`follow`: the configured `state_dir`/`runtime_dir` may be a link
/// an admin made; the subdirectories runner makes may not), owned by this process's user,
/// writable by nobody else. The error names the path, its owner and mode, and the fix.
pub fn own_dir(dir: &Path, follow: bool) -> io::Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let refuse = |why: String| Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
    // Before anything is made: nothing is created where another user steers.
    if follow && let Err(why) = walk_trusted(dir, euid, "runner's directory") {
        return refuse(why);
    }
    match std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        // A link (or a file) in the way: the check below says what it is.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))),
    }
    let meta = if follow { std::fs::metadata(dir) } else { std::fs::symlink_metadata(dir) }
        .map_err(|e| io::Error::new(e.kind(), format!("cannot check {}: {e}", dir.display())))?;
    if meta.file_type().is_symlink() {
        return refuse(format!(
            "refusing {}: it is a symlink where runner keeps its own directory; fix with `rm {}` (runner makes the directory)",
            dir.display(),
            dir.display()
        ));
    }
    if !meta.is_dir() {
        return refuse(format!("refusing {}: not a directory; remove it or choose another path", dir.display()));
    }
    let mode = meta.mode() & 0o7777;
    if meta.uid() != euid {
        return refuse(format!(
            "refusing {}: owned by uid {} (mode {mode:04o}), not by runner's uid {euid}, so its owner could plant links in it; fix with `chown {euid} {}` or choose another directory",
            dir.display(),
            meta.uid(),
            dir.display()
        ));
    }
    if mode & 0o022 != 0 {
        return refuse(format!(
            "refusing {}: owned by uid {} but writable by {} (mode {mode:04o}), who could plant links in it; fix with `chmod go-w {}`",
            dir.display(),
            meta.uid(),
            if mode & 0o002 != 0 { "everyone" } else { "its group" },
            dir.display()
        ));
    }
    Ok(())
}

/// Whether `uid` may own a directory on the way to one runner writes in.
fn trusted_owner(uid: u32, euid: u32) -> bool {
    uid == 0 || uid == euid
}

/// The most symlinks followed while walking a path, as the kernel's own limit.
const MAX_HOPS: u32 = 40;

/// Walks `dir` from `/` as sshd's StrictModes does, resolving each link itself: every link
/// on the way must belong to root or `euid` (another user's link, even in a sticky directory,
/// would choose where root writes), and every directory above `dir` must belong to root or
/// `euid` and be writable by nobody else, unless it is root's and sticky (like `/tmp`: there
/// nobody can rename or remove what they do not own). `dir` itself is judged by the caller
/// ([`own_dir`], or the config's trust check). A component that does not exist yet ends the
/// walk (runner makes it). `what` names it in the error (`runner's directory`).
pub fn walk_trusted(dir: &Path, euid: u32, what: &str) -> Result<(), String> {
    walk(dir, euid, what, true)
}

/// [`walk_trusted`] for the links alone: each link on the way to `path`, and in the links'
/// targets, must belong to root or `euid` (the config's trust check judges the directories
/// itself, with its own wording).
pub fn walk_links(path: &Path, euid: u32, what: &str) -> Result<(), String> {
    walk(path, euid, what, false)
}

fn walk(dir: &Path, euid: u32, what: &str, dirs: bool) -> Result<(), String> {
    let cwd;
    let mut todo: Vec<std::ffi::OsString> = if dir.is_absolute() {
        dir.components().skip(1).map(|c| c.as_os_str().to_owned()).collect()
    } else {
        cwd = std::env::current_dir().map_err(|e| format!("cannot check {}: {e}", dir.display()))?;
        cwd.join(dir).components().skip(1).map(|c| c.as_os_str().to_owned()).collect()
    };
    todo.reverse();
    let mut at = std::path::PathBuf::from("/");
    let mut hops = 0;
    let refuse = |at: &Path, why: String| format!("refusing {} as {what}: {} {why}", dir.display(), at.display());
    while let Some(c) = todo.pop() {
        if c == ".." {
            at.pop();
            continue;
        }
        if c == "." {
            continue;
        }
        let next = at.join(&c);
        let meta = match std::fs::symlink_metadata(&next) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(format!("cannot check {}: {e}", next.display())),
            Ok(m) => m,
        };
        if meta.file_type().is_symlink() {
            if !trusted_owner(meta.uid(), euid) {
                return Err(refuse(
                    &next,
                    format!(
                        "is a symlink owned by uid {}, who could point it anywhere; fix with `chown -h {euid} {}` or name the real directory",
                        meta.uid(),
                        next.display()
                    ),
                ));
            }
            hops += 1;
            let target =
                std::fs::read_link(&next).map_err(|e| format!("cannot read the link {}: {e}", next.display()))?;
            if hops > MAX_HOPS {
                return Err(format!("cannot check {}: too many levels of symbolic links", dir.display()));
            }
            if target.is_absolute() {
                at = std::path::PathBuf::from("/");
            }
            todo.extend(target.components().rev().filter_map(|c| match c {
                std::path::Component::RootDir => None,
                c => Some(c.as_os_str().to_owned()),
            }));
            continue;
        }
        // The directory itself is [`own_dir`]'s to judge (it says the fix); only those above.
        if todo.is_empty() || !dirs {
            at = next;
            if todo.is_empty() {
                return Ok(());
            }
            continue;
        }
        let mode = meta.mode() & 0o7777;
        if !trusted_owner(meta.uid(), euid) {
            return Err(refuse(
                &next,
                format!(
                    "is owned by uid {}, who could move runner's directory aside and put a link there; fix with `chown {euid} {}` or choose another directory",
                    meta.uid(),
                    next.display()
                ),
            ));
        }
        if mode & 0o022 != 0 && !(mode & 0o1000 != 0 && meta.uid() == 0) {
            return Err(refuse(
                &next,
                format!(
                    "is writable by others (mode {mode:04o}) without the sticky bit, so they could swap runner's directory for a link; fix with `chmod go-w {}`",
                    next.display()
                ),
            ));
        }
        at = next;
    }
    Ok(())
}

/// The directories [`own_dir`] accepted in this process, so a write checks its directory
/// once, not at every fire (a mkdir, three stats and a geteuid each time). A directory
/// removed later is noticed by the write that fails with ENOENT ([`in_own_dirs`]).
static OWN: std::sync::Mutex<Vec<(std::path::PathBuf, bool)>> = std::sync::Mutex::new(Vec::new());

fn own_list() -> std::sync::MutexGuard<'static, Vec<(std::path::PathBuf, bool)>> {
    OWN.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`own_dir`] once per process and directory: later calls cost no system call.
pub fn own_dir_once(dir: &Path, follow: bool) -> io::Result<()> {
    if own_list().iter().any(|(d, f)| *f == follow && d == dir) {
        return Ok(());
    }
    own_dir(dir, follow)?;
    own_list().push((dir.to_path_buf(), follow));
    Ok(())
}

/// Forgets which directories were checked, so each is made and checked again at its next
/// use (a reload: an admin may have fixed or changed one since).
pub fn forget_own_dirs() {
    own_list().clear();
}

/// Runs `op`, which writes in `dirs` (each with `follow` as [`own_dir`] takes it, parents
/// first), after checking them once per process; when `op` fails with ENOENT because a
/// directory was removed under the running process, the directories are made and checked
/// again and `op` is tried once more.
pub fn in_own_dirs<T>(dirs: &[(&Path, bool)], mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    for &(d, follow) in dirs {
        own_dir_once(d, follow)?;
    }
    match op() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            own_list().retain(|(known, _)| !dirs.iter().any(|(d, _)| d == known));
            for &(d, follow) in dirs {
                own_dir_once(d, follow)?;
            }
            op()
        }
        r => r,
    }
}

/// Creates a new temporary file `tmp` (`O_EXCL`, no link followed) with `mode`. Whatever is
/// at `tmp` already (a crash's leftover or a planted link) is unlinked first, not opened.
pub fn create_new(tmp: &Path, mode: u32) -> io::Result<File> {
    for _ in 0..3 {
        match options().write(true).create_new(true).mode(mode).open(tmp) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match std::fs::remove_file(tmp) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => continue,
            },
            r => return r,
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, format!("{} keeps reappearing", tmp.display())))
}

/// Replaces `path` with `bytes` atomically through `tmp` (created as [`create_new`] does),
/// without fsync unless `durable`. A link at `path` is replaced, never written through.
pub fn replace(path: &Path, tmp: &Path, bytes: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let mut f = create_new(tmp, mode)?;
    let written = f.write_all(bytes).and_then(|()| if durable { f.sync_all() } else { Ok(()) });
    if let Err(e) = written {
        let _ = std::fs::remove_file(tmp);
        return Err(e);
    }
    std::fs::rename(tmp, path)
}
