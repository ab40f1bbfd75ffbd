//! The daemon's delivery task: each job's pings in order, the oldest first, a task per job;
//! a job whose receiver fails waits (1-1.5 s at first, doubling, at most 5 minutes, with
//! jitter) while the other jobs' pings go on. It runs beside the event loop on the same thread but only
//! awaits: file work is on blocking threads and every send has a time limit, so it never
//! delays a fire.

use std::collections::{HashMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

use super::http::{self, Client};
use super::outbox::{Outbox, Waiting};

/// The longest wait between tries.
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// How often the outbox is looked at while pings wait: pings that `runner once` wrote while
/// the daemon ran wake nobody here.
const RESCAN: Duration = Duration::from_secs(30);

/// The same with the outbox empty: the daemon must not wake for nothing (a run of its own
/// wakes the worker at once).
const IDLE_RESCAN: Duration = Duration::from_secs(300);

/// The wait before try `failures + 1`: 1 s doubling to [`MAX_DELAY`], plus up to half again
/// (`r` in 0..1) so that many boxes back online do not all ping at once.
pub fn delay(failures: u32, r: f64) -> Duration {
    let base = Duration::from_secs(1u64 << failures.saturating_sub(1).min(16));
    let d = base.mul_f64(1.0 + r / 2.0);
    if d > MAX_DELAY { MAX_DELAY.mul_f64(1.0 - r / 10.0) } else { d }
}

/// A small xorshift generator for the jitter: no crate for it.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        Jitter(t ^ (u64::from(std::process::id()) << 32) | 1)
    }

    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a job's delivery task ended with: the job, whether it delivered any ping, and the
/// error that stopped it (None: its pings are all out).
type Ended = (String, bool, Option<io::Error>);

/// Delivers the outbox until the daemon stops: a task per job with pings waiting, so a
/// receiver that hangs holds back only its own job's pings.
pub async fn run(outbox: Outbox, client: Option<Client>) {
    // Per job: failures in a row, and when to try again.
    let mut backoff: HashMap<String, (u32, Instant)> = HashMap::new();
    let mut jitter = Jitter::new();
    let mut busy: tokio::task::JoinSet<Ended> = tokio::task::JoinSet::new();
    let mut active: HashSet<String> = HashSet::new();
    loop {
        let ob = outbox.clone();
        let pending = match tokio::task::spawn_blocking(move || ob.pending()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                log::error!("cannot read the ping outbox {}: {e}", outbox.dir().display());
                Vec::new()
            }
            Err(e) => {
                log::error!("reading the ping outbox failed: {e}");
                Vec::new()
            }
        };
        backoff.retain(|job, _| active.contains(job) || pending.iter().any(|(j, _)| j == job));
        let rescan = if pending.is_empty() { IDLE_RESCAN } else { RESCAN };
        let mut wake: Option<Instant> = None;
        for (job, entries) in pending {
            if active.contains(&job) {
                continue;
            }
            if let Some(&(_, at)) = backoff.get(&job)
                && at > Instant::now()
            {
                wake = Some(wake.map_or(at, |w| w.min(at)));
                continue;
            }
            active.insert(job.clone());
            busy.spawn(deliver_all(job, entries, client.clone()));
        }
        let sleep = wake.map_or(rescan, |w| w.saturating_duration_since(Instant::now()).min(rescan));
        tokio::select! {
            _ = outbox.wake().notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            Some(ended) = busy.join_next(), if !busy.is_empty() => {
                match ended {
                    Ok((job, delivered, err)) => {
                        active.remove(&job);
                        ended_job(&mut backoff, &mut jitter, job, delivered, err);
                    }
                    // A task that panicked: its job is tried again at the next scan.
                    Err(e) => {
                        log::error!("a ping delivery task failed: {e}");
                        active.clear();
                    }
                }
            }
        }
    }
}

/// Records how a job's delivery ended: its backoff cleared, or one more failure in a row.
fn ended_job(
    backoff: &mut HashMap<String, (u32, Instant)>,
    jitter: &mut Jitter,
    job: String,
    delivered: bool,
    err: Option<io::Error>,
) {
    let Some(err) = err else {
        backoff.remove(&job);
        return;
    };
    let before = if delivered { 0 } else { backoff.get(&job).map_or(0, |b| b.0) };
    let failures = before + 1;
    let d = delay(failures, jitter.next());
    // One line at the 1st, 2nd, 4th, 8th... failure in a row, not one per try.
    if failures.is_power_of_two() {
        log::warn!("job {job}: a ping failed ({err}); {failures} tries so far, next in {} ms", d.as_millis());
    }
    backoff.insert(job, (failures, Instant::now() + d));
}

/// Sends a job's waiting pings in order until one fails.
async fn deliver_all(job: String, entries: Vec<Waiting>, client: Option<Client>) -> Ended {
    let mut delivered = false;
    for e in entries {
        if let Err(err) = deliver(e, client.as_ref()).await {
            return (job, delivered, Some(err));
        }
        delivered = true;
    }
    (job, delivered, None)
}

/// Sends one waiting ping and removes its file after a 2xx. A file gone meanwhile (dropped
/// by the bound) counts as done; a damaged one is removed with an error logged.
async fn deliver(e: Waiting, client: Option<&Client>) -> io::Result<()> {
    let read = {
        let e = e.clone();
        tokio::task::spawn_blocking(move || Outbox::read(&e)).await.map_err(io::Error::other)?
    };
    let ping = match read {
        Ok(Some(p)) => p,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
        Ok(None) => {
            log::error!("{} is not a ping file; removing it", e.path.display());
            return tokio::task::spawn_blocking(move || Outbox::remove(&e)).await.map_err(io::Error::other)?;
        }
    };
    http::send(&ping, client).await?;
    tokio::task::spawn_blocking(move || Outbox::remove(&e)).await.map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_within_two_seconds_double_and_stop_at_five_minutes() {
        for r in [0.0, 0.5, 0.999] {
            let first = delay(1, r);
            assert!(first >= Duration::from_secs(1) && first < Duration::from_secs(2), "{first:?}");
            assert!(delay(2, r) >= Duration::from_secs(2) && delay(2, r) < Duration::from_secs(3));
            assert!(delay(30, r) <= MAX_DELAY && delay(30, r) >= MAX_DELAY.mul_f64(0.9));
        }
        let mut j = Jitter::new();
        let xs: Vec<f64> = (0..100).map(|_| j.next()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.iter().any(|&x| x > 0.5) && xs.iter().any(|&x| x < 0.5));
    }
}
