//! wait4(2) with the resource usage, which nix's waitpid does not return.

use std::io;

/// What wait4 reports of a reaped child.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reaped {
    /// The raw wait status (`ExitStatus::from_raw` takes it).
    pub status: i32,
    /// User plus system CPU time, microseconds (its own and its reaped children's).
    pub cpu_usec: u64,
    /// Peak resident set, bytes.
    pub maxrss_bytes: u64,
}

/// wait4 on one pid: Some once it has exited (reaped), None if it still runs (with
/// `WNOHANG` in `flags`). Retries on EINTR.
pub fn wait4(pid: i32, flags: libc::c_int) -> io::Result<Option<Reaped>> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data; all-zero is a valid value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: out-parameters that live across the call.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut ru) };
        if r == pid {
            let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
            return Ok(Some(Reaped {
                status,
                cpu_usec: t(ru.ru_utime) + t(ru.ru_stime),
                maxrss_bytes: ru.ru_maxrss.max(0) as u64 * 1024,
            }));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
