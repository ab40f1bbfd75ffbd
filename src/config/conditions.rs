//! `when:`, `wait:`, `recheck:` and `when_timeout:`: the conditions a due run waits for, as
//! written (`RawWhen`) and resolved (`Conditions`). Syntax and ranges are checked here; the
//! names under `checks:` are checked against the plan's checks with `depends_on`'s
//! (`config::load`). Reads nothing from the machine: `jobs::conditions` judges them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::plan::{Dependency, SourcePos};
use super::raw::ByteSize;
use crate::metrics::Roots;
use crate::time::{Dur, format};

/// `when:` as written; every condition given must hold.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RawWhen {
    /// true: a Mains or USB power supply is online; false: none is (on battery).
    pub ac_power: Option<bool>,
    /// The lowest battery's `capacity`, in percent, at least this.
    pub battery_min: Option<f64>,
    /// The one-minute load average below this.
    pub load_below: Option<f64>,
    /// `online`: a default route (IPv4 or IPv6) that is up.
    pub network: Option<Network>,
    /// `host:port` accepts a TCP connection within `when_timeout:`.
    pub reachable: Option<String>,
    /// `{path: /data, min: 500MB}`: free space (for unprivileged users) at least `min`.
    pub free_space: Option<RawFreeSpace>,
    /// This path exists (a file a mount or another job leaves).
    pub path_exists: Option<PathBuf>,
    /// `{check-name: ok}`: these checks are at level ok.
    pub checks: Option<BTreeMap<String, CheckLevel>>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Online,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckLevel {
    Ok,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawFreeSpace {
    pub path: PathBuf,
    pub min: ByteSize,
}

/// The defaults of `wait:` (none: a run whose conditions fail is skipped at once),
/// `recheck:` and `when_timeout:`.
pub const DEFAULT_WAIT: Duration = Duration::ZERO;
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Shorter rechecks only keep the daemon busy (tests use 100 ms).
pub const MIN_RECHECK: Duration = Duration::from_millis(50);

/// One condition, resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    AcPower(bool),
    BatteryMin(f64),
    LoadBelow(f64),
    NetworkOnline,
    Reachable { host: String, port: u16 },
    FreeSpace { path: PathBuf, min: u64 },
    PathExists(PathBuf),
    Check(Dependency),
}

impl Condition {
    /// The condition as it is written in the config, for records and `status`.
    pub fn key(&self) -> &'static str {
        match self {
            Condition::AcPower(_) => "ac_power",
            Condition::BatteryMin(_) => "battery_min",
            Condition::LoadBelow(_) => "load_below",
            Condition::NetworkOnline => "network",
            Condition::Reachable { .. } => "reachable",
            Condition::FreeSpace { .. } => "free_space",
            Condition::PathExists(_) => "path_exists",
            Condition::Check(_) => "checks",
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::AcPower(b) => write!(f, "ac_power: {b}"),
            Condition::BatteryMin(p) => write!(f, "battery_min: {p}"),
            Condition::LoadBelow(l) => write!(f, "load_below: {l}"),
            Condition::NetworkOnline => write!(f, "network: online"),
            Condition::Reachable { host, port } if host.contains(':') => write!(f, "reachable: [{host}]:{port}"),
            Condition::Reachable { host, port } => write!(f, "reachable: {host}:{port}"),
            Condition::FreeSpace { path, min } => write!(f, "free_space: {} min {}", path.display(), bytes(*min)),
            Condition::PathExists(p) => write!(f, "path_exists: {}", p.display()),
            Condition::Check(d) => write!(f, "checks: {} ok", d.check),
        }
    }
}

/// A job's conditions and how it waits for them.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditions {
    pub list: Vec<Condition>,
    /// How long a due run may wait for them; zero: skipped at once.
    pub wait: Duration,
    pub recheck: Duration,
    /// What one `reachable:` connect may take.
    pub timeout: Duration,
    /// Where /proc and /sys are read.
    pub roots: Roots,
}

impl Conditions {
    /// The `checks:` conditions, for the load's check that they name checks.
    pub fn checks(&self) -> impl Iterator<Item = &Dependency> {
        self.list.iter().filter_map(|c| match c {
            Condition::Check(d) => Some(d),
            _ => None,
        })
    }
}

/// The settings as the job (or `defaults:`) gives them.
pub struct Given<'a> {
    pub when: Option<&'a RawWhen>,
    pub wait: Option<Dur>,
    pub recheck: Option<Dur>,
    pub timeout: Option<Dur>,
    /// Whether `wait:`, `recheck:` or `when_timeout:` are the job's own (not from `defaults:`):
    /// without `when:` they do nothing, which is an error only when the job wrote them.
    pub own_settings: Option<&'static str>,
}

/// Resolves the conditions; problems are (key, message), the key a job-level field.
/// `check_at` places a `checks:` entry in the file.
pub fn resolve(
    job: &str,
    g: Given,
    roots: &Roots,
    check_at: impl Fn(&str) -> SourcePos,
) -> Result<Option<Conditions>, Vec<(&'static str, String)>> {
    let mut errs = Vec::new();
    let Some(w) = g.when else {
        if let Some(key) = g.own_settings {
            errs.push((
                key,
                format!(
                    "job `{job}`: `{key}:` has no effect without `when:`; add the conditions to wait for, or remove it"
                ),
            ));
            return Err(errs);
        }
        return Ok(None);
    };
    let mut list = Vec::new();
    if let Some(b) = w.ac_power {
        list.push(Condition::AcPower(b));
    }
    if let Some(p) = w.battery_min {
        if !(0.0..=100.0).contains(&p) {
            errs.push((
                "when",
                format!("job `{job}`: when.battery_min {p} is not a percentage; give 0 to 100, like battery_min: 30"),
            ));
        }
        list.push(Condition::BatteryMin(p));
    }
    if let Some(l) = w.load_below {
        if !(l > 0.0 && l.is_finite()) {
            errs.push((
                "when",
                format!("job `{job}`: when.load_below {l} can never hold; give a positive load, like load_below: 1.5"),
            ));
        }
        list.push(Condition::LoadBelow(l));
    }
    if w.network.is_some() {
        list.push(Condition::NetworkOnline);
    }
    if let Some(r) = &w.reachable {
        match host_port(r) {
            Some((host, port)) => list.push(Condition::Reachable { host, port }),
            None => errs.push(("when", format!("job `{job}`: when.reachable `{r}` is not host:port; write it like `10.0.0.1:443`, `[fd00::1]:443` or `uplink.example.org:443`"))),
        }
    }
    if let Some(fs) = &w.free_space {
        if !fs.path.is_absolute() {
            errs.push((
                "when",
                format!("job `{job}`: when.free_space.path `{}` must be an absolute path", fs.path.display()),
            ));
        }
        list.push(Condition::FreeSpace { path: fs.path.clone(), min: fs.min.0 });
    }
    if let Some(p) = &w.path_exists {
        if !p.is_absolute() {
            errs.push(("when", format!("job `{job}`: when.path_exists `{}` must be an absolute path", p.display())));
        }
        list.push(Condition::PathExists(p.clone()));
    }
    for name in w.checks.iter().flat_map(|c| c.keys()) {
        list.push(Condition::Check(Dependency { check: name.clone(), at: check_at(name) }));
    }
    let wait = g.wait.map_or(DEFAULT_WAIT, |d| d.0);
    let recheck = g.recheck.map_or(DEFAULT_RECHECK, |d| d.0);
    let timeout = g.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0);
    if recheck < MIN_RECHECK {
        errs.push((
            "recheck",
            format!(
                "job `{job}`: recheck {} is shorter than {}; write recheck: 30s or so",
                format(recheck),
                format(MIN_RECHECK)
            ),
        ));
    }
    if timeout.is_zero() {
        errs.push((
            "when_timeout",
            format!("job `{job}`: when_timeout 0 gives a connect no time; write when_timeout: 3s or so"),
        ));
    }
    if list.is_empty() {
        errs.push(("when", format!("job `{job}`: `when:` lists no condition; add one (ac_power, battery_min, load_below, network, reachable, free_space, path_exists, checks) or remove it")));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(Some(Conditions { list, wait, recheck, timeout, roots: roots.clone() }))
}

/// `100.0 MiB`: a size as records and `status` show it.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if unit == "bytes" { format!("{n} bytes") } else { format!("{v:.1} {unit}") }
}

/// `host:port`, `[v6]:port`: the host as written (a name is resolved off the event loop
/// when the condition is judged) and the port.
pub fn host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.trim().rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    (!host.is_empty() && !host.contains(char::is_whitespace)).then(|| (host.to_string(), port))
}

/// About how many bytes of `defaults.when` each job copies.
pub fn copied_bytes(w: Option<&RawWhen>) -> usize {
    let Some(w) = w else { return 0 };
    let path = |p: &Option<PathBuf>| p.as_ref().map_or(0, |p| p.as_os_str().len());
    64 + w.reachable.as_ref().map_or(0, String::len)
        + w.free_space.as_ref().map_or(0, |f| f.path.as_os_str().len())
        + path(&w.path_exists)
        + w.checks.iter().flatten().map(|(k, _)| k.len() + 48).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn host_port_forms() {
        assert_eq!(host_port("127.0.0.1:80"), Some(("127.0.0.1".into(), 80)));
        assert_eq!(host_port("[::1]:443"), Some(("::1".into(), 443)));
        assert_eq!(host_port("uplink.example.org:8883"), Some(("uplink.example.org".into(), 8883)));
        assert_eq!(host_port("::1:443"), None);
        assert_eq!(host_port("host"), None);
        assert_eq!(host_port("host:0"), None);
        assert_eq!(host_port(":80"), None);
    }
}
