//! sd_notify(3), written out: a datagram to `$NOTIFY_SOCKET`, a filesystem path or an
//! abstract socket (`@name`, which the `sd-notify` crate gets wrong). Without the variable
//! every call is a no-op, so the daemon calls it unconditionally.
//!
//! A send never blocks: the socket is non-blocking (every send is as with `MSG_DONTWAIT`), so
//! a service manager that stops reading (its queue holds about 10 datagrams) cannot stop the
//! daemon. What cannot go now waits here: the latest `STATUS=` only (an older one is replaced,
//! never queued), and `READY=1`, `RELOADING=1`, `STOPPING=1` and `WATCHDOG=1` in order (one
//! watchdog ping stands for any number). The daemon's loop awaits [`Notifier::drain`] while
//! something waits; it resolves when the socket turns writable again and the backlog went.
//!
//! The socket is connected to the address when it can be, so the kernel reports it writable
//! only once the reader's queue has room; a socket that cannot be connected (no listener yet)
//! falls back to unconnected sends, whose backlog is retried at the next message.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use runner_sys::fd::Watched;
use tokio::io::Interest;

/// More than this many lifecycle messages waiting means the reader is gone for good: the
/// oldest are dropped.
const BACKLOG_MAX: usize = 16;

struct Target {
    sock: UnixDatagram,
    addr: SocketAddr,
    connected: bool,
    /// Registered with the runtime on the first wait for writability (the notifier is made
    /// before the runtime).
    wait: Option<Watched<OwnedFd>>,
}

pub struct Notifier {
    target: Option<Target>,
    /// Lifecycle messages not yet sent, oldest first.
    backlog: VecDeque<String>,
    /// The latest STATUS= not yet sent; it goes after the backlog.
    status: Option<String>,
}

enum Sent {
    Done,
    /// The reader's queue is full: keep the message.
    Later,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let target = std::env::var("NOTIFY_SOCKET").ok().and_then(|path| {
            let addr = match path.strip_prefix('@') {
                Some(abs) => SocketAddr::from_abstract_name(abs.as_bytes()).ok()?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            let sock = UnixDatagram::unbound().ok()?;
            sock.set_nonblocking(true).ok()?;
            let connected = sock.connect_addr(&addr).is_ok();
            Some(Target { sock, addr, connected, wait: None })
        });
        Notifier { target, backlog: VecDeque::new(), status: None }
    }

    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// Something is waiting for the reader to make room.
    pub fn pending(&self) -> bool {
        !self.backlog.is_empty() || self.status.is_some()
    }

    pub fn ready(&mut self, status: &str) {
        // READY=1 carries the status: a STATUS= still waiting is older.
        self.status = None;
        self.lifecycle(format!("READY=1\nSTATUS={status}"));
    }

    pub fn status(&mut self, status: &str) {
        if self.target.is_none() {
            return;
        }
        self.status = Some(format!("STATUS={status}"));
        self.flush();
    }

    pub fn reloading(&mut self) {
        let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
            .map(|t| t.tv_sec() as u64 * 1_000_000 + t.tv_nsec() as u64 / 1_000)
            .unwrap_or(0);
        self.lifecycle(format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }

    pub fn stopping(&mut self) {
        self.lifecycle("STOPPING=1".to_string());
    }

    pub fn watchdog(&mut self) {
        if self.backlog.iter().any(|m| m == "WATCHDOG=1") {
            return;
        }
        self.lifecycle("WATCHDOG=1".to_string());
    }

    fn lifecycle(&mut self, msg: String) {
        if self.target.is_none() {
            return;
        }
        if self.backlog.len() >= BACKLOG_MAX {
            let dropped = self.backlog.pop_front();
            log::debug!("sd_notify: the reader is not reading; dropped {dropped:?}");
        }
        self.backlog.push_back(msg);
        self.flush();
    }

    /// Sends what waits, in order, until the reader's queue is full. Never blocks.
    pub fn flush(&mut self) {
        let Some(t) = &mut self.target else {
            self.backlog.clear();
            self.status = None;
            return;
        };
        while let Some(msg) = self.backlog.front() {
            match send(t, msg) {
                Sent::Done => {
                    self.backlog.pop_front();
                }
                Sent::Later => return,
            }
        }
        if let Some(msg) = &self.status {
            match send(t, msg) {
                Sent::Done => self.status = None,
                Sent::Later => {}
            }
        }
    }

    /// Resolves once nothing waits any more: when the socket reports room, what waits is sent.
    /// Pending forever when nothing waits or the socket cannot say when it has room (then the
    /// next message retries the backlog).
    pub async fn drain(&mut self) {
        loop {
            if !self.pending() {
                return;
            }
            let Some(t) = self.target.as_mut().filter(|t| t.connected) else {
                return std::future::pending().await;
            };
            if t.wait.is_none() {
                let fd = t.sock.as_fd().try_clone_to_owned();
                match fd.and_then(|fd| Watched::new(fd, Interest::WRITABLE)) {
                    Ok(w) => t.wait = Some(w),
                    Err(e) => {
                        log::debug!("sd_notify: cannot wait for the socket: {e}");
                        t.connected = false;
                        continue;
                    }
                }
            }
            let Some(w) = &t.wait else { unreachable!("registered just above") };
            match w.writable().await {
                Ok(mut guard) => {
                    guard.clear_ready();
                }
                Err(e) => {
                    log::debug!("sd_notify: cannot wait for the socket: {e}");
                    return std::future::pending().await;
                }
            }
            self.flush();
        }
    }
}

fn send(t: &mut Target, msg: &str) -> Sent {
    let attempt = |t: &Target| {
        if t.connected { t.sock.send(msg.as_bytes()) } else { t.sock.send_to_addr(msg.as_bytes(), &t.addr) }
    };
    let mut result = attempt(t);
    if t.connected && matches!(&result, Err(e) if e.raw_os_error() == Some(nix::libc::ECONNREFUSED)) {
        // The reader's socket was replaced (the manager re-executed): connect to the new one.
        t.connected = t.sock.connect_addr(&t.addr).is_ok();
        t.wait = None;
        result = attempt(t);
    }
    match result {
        Ok(_) => Sent::Done,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Sent::Later,
        Err(e) => {
            log::debug!("sd_notify failed (fd {}): {e}", t.sock.as_raw_fd());
            Sent::Done
        }
    }
}

/// The shortest ping interval: an environment asking for less (`WATCHDOG_USEC=1`) would
/// spin the daemon's loop on its one core and starve the jobs it exists to run.
pub const WATCHDOG_FLOOR: Duration = Duration::from_millis(50);

/// Half of `$WATCHDOG_USEC` when the watchdog is on for this process, as sd_watchdog_enabled(3)
/// recommends pinging at, but never below [`WATCHDOG_FLOOR`] (with a warning saying so).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    if usec == 0 {
        return None;
    }
    let half = Duration::from_micros(usec / 2);
    if half < WATCHDOG_FLOOR {
        log::warn!(
            "WATCHDOG_USEC={usec} asks for a ping every {} us; pinging every {} ms instead (set WatchdogSec= to 1s or more)",
            usec / 2,
            WATCHDOG_FLOOR.as_millis()
        );
        return Some(WATCHDOG_FLOOR);
    }
    Some(half)
}
