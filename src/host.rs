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
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map(|s| s.trim().to_string()).unwrap_or_default()
    })
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
