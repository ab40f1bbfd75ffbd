//! Descriptors: the readiness registration tokio asks an unsafe promise for, `flock`, and the
//! duplicate above stderr.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};

/// A type that owns exactly one descriptor, open from its construction to its drop, and
/// answers `as_fd` with that same one every time.
///
/// # Safety
/// Implement only for such types: [`Watched`] relies on it for tokio's registration contract.
pub unsafe trait OwnsFd: AsFd {}

// SAFETY: an OwnedFd is one open descriptor until dropped and never changes.
unsafe impl OwnsFd for OwnedFd {}
// SAFETY: nix's TimerFd wraps one OwnedFd it never replaces.
unsafe impl OwnsFd for nix::sys::timerfd::TimerFd {}
// SAFETY: nix's SignalFd wraps one OwnedFd it never replaces.
unsafe impl OwnsFd for nix::sys::signalfd::SignalFd {}

/// Adapts an [`OwnsFd`] to the `AsRawFd` tokio's AsyncFd takes.
struct Raw<T>(T);

impl<T: AsFd> AsRawFd for Raw<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A descriptor registered with tokio's reactor for readiness. Unlike `AsyncFd`, it hands out
/// no `&mut` to what it holds, so the descriptor cannot be swapped while registered.
pub struct Watched<T: OwnsFd>(AsyncFd<Raw<T>>);

impl<T: OwnsFd> Watched<T> {
    /// Registers `inner` for `interest`; must run inside a runtime with I/O enabled.
    pub fn new(inner: T, interest: Interest) -> io::Result<Watched<T>> {
        // SAFETY: `OwnsFd` promises the descriptor is open and the same for as long as `inner`
        // lives, and `Watched` owns `inner` and gives out only shared references to it, so the
        // descriptor stays open and unchanged until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(Raw(inner), interest) };
        fd.map(Watched).map_err(|e| e.into_parts().1)
    }

    pub fn get_ref(&self) -> &T {
        &self.0.get_ref().0
    }

    /// Waits until the descriptor may be readable; clear the guard when a read would block.
    pub async fn readable(&self) -> io::Result<Ready<'_, T>> {
        self.0.readable().await.map(Ready)
    }

    pub async fn writable(&self) -> io::Result<Ready<'_, T>> {
        self.0.writable().await.map(Ready)
    }
}

/// A readiness event of a [`Watched`] descriptor.
pub struct Ready<'a, T: OwnsFd>(AsyncFdReadyGuard<'a, Raw<T>>);

impl<T: OwnsFd> Ready<'_, T> {
    /// The event is used up: the next wait waits for a new one.
    pub fn clear_ready(&mut self) {
        self.0.clear_ready();
    }

    pub fn get_inner(&self) -> &T {
        &self.0.get_inner().0
    }
}

/// `flock(fd, LOCK_EX)`, retried on EINTR; blocks the thread until granted.
pub fn flock_exclusive(fd: BorrowedFd<'_>) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor the borrow keeps open; no memory is passed.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `flock(fd, LOCK_UN)`; cannot fail on an open descriptor.
pub fn flock_unlock(fd: BorrowedFd<'_>) {
    // SAFETY: as above.
    unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_UN) };
}

/// `fd` itself if above stderr, else a close-on-exec duplicate numbered 3 or more (and `fd`
/// closed), so that a child's dup onto 0-2 never overwrites one it still needs.
pub fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: duplicates a descriptor we own; no memory is passed.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Takes ownership of descriptor `n`, which this process was started with for it alone
/// (the exec helper's report pipe, named on its command line). Call once per number, at the
/// start of `main`, before anything could have opened or closed descriptors: None unless `n`
/// is above stderr and open.
pub fn claim_inherited(n: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    if n < 3 || unsafe { libc::fcntl(n, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: open (checked above), and by the calling convention nothing else in this
    // process knows the number: the parent passed it for this one owner.
    Some(unsafe { OwnedFd::from_raw_fd(n) })
}
