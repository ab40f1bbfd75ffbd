//! The signals the daemon and `runner once` act on (TERM, INT, HUP, CHLD), read from one
//! signalfd through the runtime's reactor and fanned out to whoever listens.
//!
//! Why not `tokio::signal`: its registry (64 slots of 352 bytes, made at the first call)
//! and its self-pipe stay for the life of the process, about 22 KiB of private memory on a
//! daemon that holds a few hundred. A signalfd needs the signals blocked in every thread,
//! so [`block`] runs on the main thread before the runtime or any other thread starts, and
//! every child runner starts clears its mask again (src/process/spawn.rs: clone3's child and
//! posix_spawn's attributes). Coalescing is as with a handler: of several pending deliveries
//! of one signal, one is read.
//!
//! What it must not do: import anything of the crate (a leaf), or act on a signal itself.

use std::io;
use std::sync::OnceLock;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use runner_sys::fd::Watched;
use tokio::sync::watch;

/// One of the signals read here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sig {
    Term,
    Int,
    Hup,
    Chld,
}

const SIGNALS: [Signal; 4] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGCHLD];

fn set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in SIGNALS {
        s.add(sig);
    }
    s
}

/// Blocks the four signals on the calling thread. Call it on the main thread before any
/// other thread starts (the runtime's, the writer's): threads inherit the mask, and a signal
/// a thread left unblocked would take its default action (TERM, INT, HUP end the process)
/// instead of reaching the signalfd. Until [`listen`] is first called they stay pending.
pub fn block() -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set()), None).map_err(io::Error::from)
}

/// One counter per signal, bumped by the reader; a listener wakes when its counter moves.
static HUB: OnceLock<[watch::Sender<u64>; 4]> = OnceLock::new();

/// Waits for one signal; made by [`listen`].
pub struct Listener(watch::Receiver<u64>);

impl Listener {
    /// Returns when the signal came after the last return (or after `listen`); several
    /// deliveries in between are one. Never returns if the reader ended.
    pub async fn recv(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A listener for `sig`. The first call opens the signalfd and spawns its reader on the
/// current runtime (so it must run inside one, and the process has one runtime); a signal
/// that came between [`block`] and this call is pending still and is seen.
pub fn listen(sig: Sig) -> io::Result<Listener> {
    let hub = match HUB.get() {
        Some(h) => h,
        None => {
            let fd = SignalFd::with_flags(&set(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
            let fd = Watched::new(fd, tokio::io::Interest::READABLE)?;
            let hub = HUB.get_or_init(|| std::array::from_fn(|_| watch::Sender::new(0)));
            tokio::spawn(read(fd, hub));
            hub
        }
    };
    Ok(Listener(hub[sig as usize].subscribe()))
}

async fn read(fd: Watched<SignalFd>, hub: &'static [watch::Sender<u64>; 4]) {
    loop {
        let Ok(mut ready) = fd.readable().await else { return };
        loop {
            match ready.get_inner().read_signal() {
                Ok(Some(info)) => {
                    if let Some(i) = SIGNALS.iter().position(|s| *s as u32 == info.ssi_signo) {
                        hub[i].send_modify(|n| *n += 1);
                    }
                }
                Ok(None) => {
                    ready.clear_ready();
                    break;
                }
                Err(nix::errno::Errno::EINTR) => {}
                // Not expected of a signalfd; the listeners then wait for good.
                Err(_) => return,
            }
        }
    }
}
