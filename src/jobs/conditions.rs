//! Judging a job's `when:` conditions, once (`runner once`, a run without `wait:`) or
//! again every `recheck:` until they hold or `wait:` is over (the daemon), and recording a
//! run skipped for them (ring, journal, and the job's state for `status`).
//!
//! Nothing here runs on the event loop that can block it: files (sysfs, /proc, statvfs of a
//! path that may be a hung mount, a path's existence) are read on a blocking thread, a
//! `reachable:` connect is tokio's, bounded by `when_timeout:` (a host name is resolved by
//! tokio on its blocking pool, so a slow resolver holds a blocking thread, not the loop).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::Ctx;
use crate::config::Job;
use crate::config::conditions::{Condition, Conditions, bytes};
use crate::metrics::{self, Roots, power};
use crate::record::{Record, Trigger};
use crate::state::{ConditionSkip, Update, Waiting};
use crate::time::{epoch_ms, format};

/// A blocking read of the local conditions still in progress, kept between rechecks so a
/// read stuck on a hung mount is waited for again, never started once more per recheck.
pub type Pending = Option<tokio::task::JoinHandle<Option<String>>>;

/// The first condition that fails, as written, with what was found; None when all hold.
/// The files are read on a blocking thread, given `when_timeout:` at most.
pub async fn judge(ctx: &Ctx, c: &Conditions, pending: &mut Pending) -> Option<String> {
    let local: Vec<Condition> = c.list.iter().filter(|c| is_local(c)).cloned().collect();
    if !local.is_empty() {
        let roots = c.roots.clone();
        let task = pending.get_or_insert_with(|| {
            tokio::task::spawn_blocking(move || local.iter().find_map(|c| judge_local(c, &roots)))
        });
        let failed = match tokio::time::timeout(c.timeout, task).await {
            Ok(done) => {
                *pending = None;
                done.unwrap_or_else(|e| Some(format!("the condition check failed: {e}")))
            }
            Err(_) => {
                Some(format!("reading the local conditions has taken over {} (a hung mount?)", format(c.timeout)))
            }
        };
        if failed.is_some() {
            return failed;
        }
    }
    for cond in &c.list {
        let failed = match cond {
            Condition::Check(dep) => judge_check(ctx, &dep.check),
            Condition::Reachable { host, port } => reachable(host, *port, c.timeout).await,
            _ => None,
        };
        if let Some(why) = failed {
            return Some(format!("{cond}: {why}"));
        }
    }
    None
}

fn is_local(c: &Condition) -> bool {
    !matches!(c, Condition::Check(_) | Condition::Reachable { .. })
}

/// A condition read from files; on a blocking thread.
fn judge_local(c: &Condition, roots: &Roots) -> Option<String> {
    let why = match c {
        Condition::AcPower(want) => match power::power(roots) {
            Err(e) => Some(format!("cannot read {}/class/power_supply: {e}", roots.sys.display())),
            // No Mains or USB supply listed: a board without a charger, on mains (as
            // systemd's ConditionACPower takes it).
            Ok(p) => match (p.ac_online.unwrap_or(true), *want) {
                (true, false) => Some(on_mains(p.ac_online)),
                (false, true) => Some("no Mains or USB power supply is online".to_string()),
                _ => None,
            },
        },
        Condition::BatteryMin(min) => match power::power(roots) {
            Err(e) => Some(format!("cannot read {}/class/power_supply: {e}", roots.sys.display())),
            Ok(p) => p.battery_percent.filter(|b| b < min).map(|b| format!("the battery is at {b}%")),
        },
        Condition::LoadBelow(max) => match load1(roots) {
            Err(e) => Some(e),
            Ok(l) if l >= *max => Some(format!("the one-minute load is {l:.2}")),
            Ok(_) => None,
        },
        Condition::NetworkOnline => match power::default_route(roots) {
            Err(e) => Some(format!("cannot read {}/net/route: {e}", roots.proc.display())),
            Ok(None) => Some("no default route (IPv4 or IPv6) is up".to_string()),
            Ok(Some(_)) => None,
        },
        Condition::FreeSpace { path, min } => match metrics::disk_usage(path) {
            Err(e) => Some(format!("cannot statvfs {}: {e}", path.display())),
            Ok(d) if d.avail_bytes < *min => Some(format!("{} free", bytes(d.avail_bytes))),
            Ok(_) => None,
        },
        Condition::PathExists(p) => match Path::new(p).try_exists() {
            Ok(true) => None,
            Ok(false) => Some("it does not exist".to_string()),
            Err(e) => Some(format!("cannot tell: {e}")),
        },
        Condition::Check(_) | Condition::Reachable { .. } => None,
    };
    why.map(|w| format!("{c}: {w}"))
}

fn on_mains(listed: Option<bool>) -> String {
    match listed {
        Some(_) => "a Mains or USB power supply is online".to_string(),
        None => "no Mains or USB power supply is listed, so the box runs on mains".to_string(),
    }
}

fn load1(roots: &Roots) -> Result<f64, String> {
    let mut src = metrics::loadavg(roots)?;
    src.sample().map(|l| l.load1).map_err(|e| format!("{}: {e}", src.path().display()))
}

/// A check's level from the state, as `depends_on` reads it.
fn judge_check(ctx: &Ctx, check: &str) -> Option<String> {
    let level = ctx.sinks.read(|s| s.job(check).and_then(|j| j.check.as_ref()).and_then(|c| c.level.clone()));
    match level {
        Ok(Some(l)) if l == "ok" => None,
        Ok(Some(l)) => Some(format!("the check is {l}")),
        Ok(None) => Some("the check has no result yet".to_string()),
        Err(e) => Some(format!("cannot read the state: {e}")),
    }
}

/// A TCP connect within `timeout`, closed at once.
async fn reachable(host: &str, port: u16, timeout: Duration) -> Option<String> {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("connect failed: {e}")),
        Err(_) => Some(format!("no connection within {}", format(timeout))),
    }
}

/// How a wait for the conditions ended.
#[derive(Debug)]
pub enum Waited {
    Held,
    /// They did not hold by the end of `wait:` (at once without one): what failed last.
    Failed {
        condition: String,
        waited: Duration,
    },
    /// The daemon ended the wait (`why`: a newer fire replaced it, a reload changed the job,
    /// the daemon stops).
    Stopped {
        condition: String,
        waited: Duration,
        why: String,
    },
}

/// Judges the conditions until they hold, `wait:` is over or `stop` says why to give up
/// (`Some(reason)`). While it waits, the job's state says what it waits for.
pub async fn wait(ctx: &Ctx, job: &Job, mut stop: watch::Receiver<Option<String>>) -> Waited {
    let Some(c) = job.conditions.as_deref() else { return Waited::Held };
    let name = job.name.as_str();
    let start = Instant::now();
    let since_ms = epoch_ms(SystemTime::now());
    let deadline = start + c.wait;
    let mut last: Option<String> = None;
    let mut pending = None;
    let result = loop {
        let judged = judge(ctx, c, &mut pending).await;
        // Ended while it judged (the daemon stops, a newer fire): that wins, even over
        // conditions that now hold, so the end is recorded.
        if let Some(why) = stop.borrow().clone() {
            let condition = judged.or(last.take()).unwrap_or_else(|| "the conditions held".to_string());
            break Waited::Stopped { condition, waited: start.elapsed(), why };
        }
        let Some(failing) = judged else { break Waited::Held };
        let now = Instant::now();
        if now >= deadline {
            break Waited::Failed { condition: failing, waited: now - start };
        }
        if last.as_deref() != Some(failing.as_str()) {
            log::info!("job {name}: waiting up to {} for {failing}", format(c.wait));
            let w = Waiting {
                since_ms,
                until_ms: since_ms + c.wait.as_millis() as i64,
                condition: failing.clone(),
                runner_pid: crate::host::pid(),
            };
            if let Err(e) = ctx.sinks.update(name, Update::Waiting(Some(w))) {
                log::error!("job {name}: cannot record the wait: {e}");
            }
        }
        let nap = c.recheck.min(deadline - now);
        last = Some(failing);
        tokio::select! {
            _ = tokio::time::sleep(nap) => {}
            r = stop.wait_for(Option::is_some) => {
                let why = r.map(|w| w.clone().unwrap_or_default()).unwrap_or_else(|_| "the daemon stops".to_string());
                break Waited::Stopped { condition: last.take().unwrap_or_default(), waited: start.elapsed(), why };
            }
        }
    };
    if matches!(result, Waited::Held) && last.is_some() {
        log::info!("job {name}: its conditions hold after {}", format(start.elapsed()));
        if let Err(e) = ctx.sinks.update(name, Update::Waiting(None)) {
            log::error!("job {name}: cannot record the end of the wait: {e}");
        }
    }
    result
}

/// Records a run skipped for its conditions: a skip record (ring, journal) that says which
/// condition failed and how long it waited, and the job's state for `status`. Returns it.
pub fn record_skip(ctx: &Ctx, job: &Job, trigger: Trigger, w: &Waited) -> Record {
    let (condition, waited, why) = match w {
        Waited::Held => unreachable!("a run whose conditions hold is not skipped"),
        Waited::Failed { condition, waited } => (condition, *waited, None),
        Waited::Stopped { condition, waited, why } => (condition, *waited, Some(why.as_str())),
    };
    let message = match (why, waited.is_zero()) {
        (Some(why), _) => format!("when: {condition}; {why} after waiting {}", format(waited)),
        (None, true) => format!("when: {condition}"),
        (None, false) => format!("when: {condition}; still failing after waiting {}", format(waited)),
    };
    let mut r = Record::skipped(job.name.as_str(), job.kind.tag(), trigger, message);
    r.started_at = SystemTime::now().checked_sub(waited).unwrap_or(r.started_at);
    r.duration = waited;
    ctx.sinks.emit(&r);
    let skip = ConditionSkip {
        at_ms: epoch_ms(SystemTime::now()),
        waited_ms: waited.as_millis() as u64,
        condition: condition.clone(),
    };
    if let Err(e) = ctx.sinks.update(job.name.as_str(), Update::ConditionSkipped(skip)) {
        log::error!("job {}: cannot record the skip: {e}", job.name);
    }
    r
}
