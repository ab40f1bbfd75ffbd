//! Notice when the wall clock is set (NTP's first sync on a box that booted in 1970, or a
//! person's `date -s`), without polling: a realtime timerfd armed with
//! `TFD_TIMER_CANCEL_ON_SET` fails its read with ECANCELED when the clock jumps. Beside it,
//! [`Alarm`], the monotonic timerfd the daemon loop sleeps on until the next due instant.

use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use runner_sys::fd::Watched;
use tokio::io::Interest;

pub struct ClockWatch {
    fd: Watched<TimerFd>,
}

impl ClockWatch {
    pub fn new() -> std::io::Result<ClockWatch> {
        let t = TimerFd::new(ClockId::CLOCK_REALTIME, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        arm(&t)?;
        let fd = Watched::new(t, Interest::READABLE)?;
        Ok(ClockWatch { fd })
    }

    /// Returns when the wall clock has been set since the last call.
    pub async fn changed(&mut self) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            let mut buf = [0u8; 8];
            match nix::unistd::read(guard.get_inner().as_fd(), &mut buf) {
                Err(Errno::ECANCELED) => {
                    let _ = arm(guard.get_inner());
                    return;
                }
                // The far-future alarm went off (a box up for decades): re-arm, keep waiting.
                Ok(_) => {
                    let _ = arm(guard.get_inner());
                }
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Err(_) => {
                    guard.clear_ready();
                    let _ = arm(guard.get_inner());
                }
            }
        }
    }
}

/// An absolute alarm far in the future: only its cancellation matters.
fn arm(t: &TimerFd) -> nix::Result<()> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME)?;
    let far = TimeSpec::new(now.tv_sec().saturating_add(10 * 365 * 86_400), 0);
    t.set(Expiration::OneShot(far), TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET)
}

/// The daemon loop's alarm for the next due instant: a monotonic timerfd armed to the
/// nanosecond. tokio's timer counts whole milliseconds and rounds up twice (its wheel, then
/// the millisecond timeout of `epoll_wait`), so a fire woke up to 2 ms after its due
/// instant (issue 14); this one wakes within the kernel's timer slack.
pub struct Alarm {
    /// None when no timerfd could be made: tokio's timer then, late by up to 2 ms.
    fd: Option<Watched<TimerFd>>,
}

impl Alarm {
    pub fn open() -> Alarm {
        let t = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC);
        let fd = t.ok().and_then(|t| Watched::new(t, Interest::READABLE).ok());
        if fd.is_none() {
            log::warn!("cannot make a timerfd; jobs fire up to 2 ms after their due instant");
        }
        Alarm { fd }
    }

    /// Returns at `at` (at once if it has passed); `None` waits forever, with the timer
    /// disarmed so an old setting cannot wake an idle daemon. Arming replaces any earlier
    /// setting and its pending expiry, so a call that was dropped leaves nothing behind.
    pub async fn until(&mut self, at: Option<tokio::time::Instant>) {
        let Some(fd) = &self.fd else {
            match at {
                Some(at) => return tokio::time::sleep_until(at).await,
                None => return std::future::pending().await,
            }
        };
        let Some(at) = at else {
            let _ = fd.get_ref().unset();
            return std::future::pending().await;
        };
        let left = at.saturating_duration_since(tokio::time::Instant::now());
        // A zero expiry would disarm the timer instead of firing it.
        let left = left.max(std::time::Duration::from_nanos(1));
        if fd.get_ref().set(Expiration::OneShot(TimeSpec::from_duration(left)), TimerSetTimeFlags::empty()).is_err() {
            return tokio::time::sleep_until(at).await;
        }
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return tokio::time::sleep_until(at).await;
            };
            let mut buf = [0u8; 8];
            match nix::unistd::read(guard.get_inner().as_fd(), &mut buf) {
                Ok(_) => return,
                Err(Errno::EAGAIN) => guard.clear_ready(),
                Err(_) => return tokio::time::sleep_until(at).await,
            }
        }
    }
}
