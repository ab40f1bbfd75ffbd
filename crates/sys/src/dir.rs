//! getdents64(2): a directory's entries read into a caller's buffer, no allocation.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Reads the next `struct linux_dirent64` records of the directory `fd` into `buf`: the
/// number of bytes filled, 0 at the end.
pub fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf, which we borrow mutably; the
    // borrow keeps the descriptor open.
    let got = unsafe { libc::syscall(libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
    if got < 0 { Err(io::Error::last_os_error()) } else { Ok(got as usize) }
}
