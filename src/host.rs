//! Facts about this host and this binary that do not change while the process lives: the
//! boot id, the machine id, the build time. A leaf: it imports nothing of the crate.

use jiff::Timestamp;

/// This process's id, asked of the kernel once: a fire asked six times (the lock's holder
/// line, the run's id and start, the reaping of strays). runner never forks without an exec,
/// so the id cannot change under it.
pub fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// When this binary was built. A wall clock earlier than this is wrong (a box without a
/// battery-backed clock that has not synced yet), so calendar jobs wait for it.
pub fn build_time() -> Timestamp {
    let secs: i64 = env!("RUNNER_BUILD_EPOCH").parse().unwrap_or(0);
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// This host's machine id (the hostname where there is none), read once per process.
pub fn machine_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        for p in ["/etc/machine-id", "/var/lib/dbus/machine-id"] {
            if let Ok(s) = std::fs::read_to_string(p)
                && !s.trim().is_empty()
            {
                return s.trim().to_string();
            }
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default()
    })
}

/// This boot's id, read once per process: it cannot change while the process lives, and
/// every run start, ring record and `list` row asks for it.
pub fn boot_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| BOOT_ID_SOURCES.iter().find_map(|p| read_boot_id(std::path::Path::new(p))).unwrap_or_default())
}

/// Where the boot id is read, first that answers. The journal's `_BOOT_ID` is what journald
/// (and `sd_id128_get_boot()`) reads at `/proc/sys/kernel/random/boot_id` in the system's
/// mount namespace, where a container manager bind-mounts the container's own id over the
/// kernel's (systemd-nspawn does, a new one at each boot of the container). runner's unit
/// runs in a mount namespace of its own, which systemd 252 builds without that mount (nspawn
/// backs it with a file it has already unlinked, which cannot be bind-mounted again; fixed
/// upstream in 2026), so there the second path shows the host's id and `@reboot` would
/// follow the host's boots, not the container's (docs/systemd.md). PID 1's root is the system's namespace: read through it, the
/// id is the journal's. Reading it needs what `ptrace` read access to PID 1 needs (root; the
/// unit keeps CAP_SYS_PTRACE); without it, or where PID 1's root has no such file, the
/// process's own view is the fallback, the same id everywhere but in such a container.
const BOOT_ID_SOURCES: [&str; 2] = ["/proc/1/root/proc/sys/kernel/random/boot_id", "/proc/sys/kernel/random/boot_id"];

/// A boot id file: a small regular file (never a link in the last component) holding a
/// UUID; anything else is not taken.
fn read_boot_id(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.file_type().is_file() {
        return None;
    }
    let mut text = String::with_capacity(40);
    f.take(64).read_to_string(&mut text).ok()?;
    let text = text.trim();
    parse_uuid(text).is_some().then(|| text.to_string())
}

/// This boot's id as 16 bytes (the ring stores it so); zeros when unknown.
pub fn boot_id_bytes() -> [u8; 16] {
    parse_uuid(boot_id()).unwrap_or([0; 16])
}

pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut hi: Option<u8> = None;
    for c in s.trim().chars().filter(|c| *c != '-') {
        let v = c.to_digit(16)? as u8;
        match hi.take() {
            None => hi = Some(v),
            Some(h) => {
                *out.get_mut(n)? = h << 4 | v;
                n += 1;
            }
        }
    }
    (n == 16 && hi.is_none()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_id_file_is_a_regular_file_holding_a_uuid() {
        let dir = std::env::temp_dir().join(format!("runner-bootid-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, "0f3c2a4e-5b6d-4e7f-8091-a2b3c4d5e6f7\n").unwrap();
        assert_eq!(read_boot_id(&good).as_deref(), Some("0f3c2a4e-5b6d-4e7f-8091-a2b3c4d5e6f7"));
        std::fs::write(dir.join("bad"), "not a boot id\n").unwrap();
        assert_eq!(read_boot_id(&dir.join("bad")), None);
        std::os::unix::fs::symlink(&good, dir.join("link")).unwrap();
        assert_eq!(read_boot_id(&dir.join("link")), None, "a link is not followed");
        assert_eq!(read_boot_id(&dir), None, "a directory is not a boot id");
        assert_eq!(read_boot_id(&dir.join("missing")), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_boot_id_is_the_systems() {
        // Outside a container both sources agree; the first that answers is taken.
        let own = read_boot_id(std::path::Path::new(BOOT_ID_SOURCES[1])).expect("this kernel has a boot id");
        let system = read_boot_id(std::path::Path::new(BOOT_ID_SOURCES[0]));
        assert_eq!(boot_id(), system.as_deref().unwrap_or(&own));
        assert!(parse_uuid(boot_id()).is_some());
    }
}
