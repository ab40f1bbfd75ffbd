//! pidfd_open(2) and pidfd_send_signal(2): nix has no wrappers.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// A descriptor that names exactly this process, never a successor.
pub fn open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no memory
    // is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` to the process `fd` names.
pub fn send_signal(fd: BorrowedFd<'_>, sig: nix::sys::signal::Signal) -> Result<(), Errno> {
    // SAFETY: a descriptor the borrow keeps open, a signal number, no siginfo (null) and no
    // flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if rc < 0 { Err(Errno::last()) } else { Ok(()) }
}
