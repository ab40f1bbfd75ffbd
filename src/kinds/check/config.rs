//! The `check:` block: its serde mirror and how it resolves into a [`CheckSpec`]: which metric or probe, which fields it
//! takes, its unit, default thresholds and direction. Reads nothing from the machine: a
//! missing path or sensor is found when the check runs (an `unknown` level with the reason).

use std::path::PathBuf;
use std::time::Duration;

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{CheckSpec, CpuPart, MemPart, PsiWindow, Source};
use crate::kinds::{OwnSettings, Problem};
use crate::metrics::Roots;
use crate::proc::RegexText;
use crate::process::CommandLine;
use crate::time as duration;
use crate::time::Dur;

/// A `check:` block: a metric or a probe, thresholds, and what to do on a level change.
/// Which fields apply depends on the metric; the plan refuses the ones that do not.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub metric: Option<String>,
    pub probe: Option<String>,
    pub path: Option<PathBuf>,
    pub sensor: Option<String>,
    pub core: Option<u32>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub send: Option<String>,
    pub expect: Option<String>,
    pub url: Option<String>,
    pub status: Option<u16>,
    pub command: Option<CommandLine>,
    pub name: Option<String>,
    pub cmdline: Option<RegexText>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub max_entries: Option<u64>,
    pub warn: Option<Threshold>,
    pub crit: Option<Threshold>,
    pub direction: Option<Direction>,
    /// Consecutive samples at a new level before the level changes.
    #[serde(rename = "for")]
    pub for_samples: Option<u32>,
    pub cooldown: Option<Dur>,
    pub start_period: Option<Dur>,
    /// Also put every Nth sample in the run log (a sample whose level changed always is).
    pub record_every: Option<u32>,
    pub on_alert: Option<CommandLine>,
    pub on_recover: Option<CommandLine>,
}

/// Which side of a threshold is bad.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The value is bad at or above the threshold (disk use, temperature).
    Above,
    /// The value is bad at or below the threshold (available memory).
    Below,
}

/// A threshold as written: a number, or text with a unit (`1GB`, `10m`, `85%`) that the plan
/// reads in the metric's own unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or a size or duration like `1GB` or `10m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Threshold, E> {
                Ok(Threshold::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

/// Every metric a check can read, for errors and the README.
pub const METRICS: &[&str] = &[
    "cpu_percent",
    "cpu_iowait_percent",
    "cpu_steal_percent",
    "mem_used_percent",
    "mem_available_bytes",
    "swap_used_percent",
    "load1",
    "load5",
    "load15",
    "procs",
    "procs_running",
    "disk_used_percent",
    "inode_used_percent",
    "temperature",
    "ac_online",
    "battery_percent",
    "dir_size",
    "file_age",
    "file_size",
    "process_rss_bytes",
    "process_cpu_percent",
    "pressure_<cpu|memory|io>_<some|full>_<avg10|avg60|avg300>",
];

pub const PROBES: &[&str] = &["tcp", "http", "exec", "process"];

/// Problems found, each with the `check:` field it is about.
pub type Problems = Vec<(&'static str, String)>;

const DEFAULT_DIR_MAX_ENTRIES: u64 = 100_000;
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a metric or probe name resolves to: the source, its unit, its default `warn:` and
/// `crit:`, and which side of a threshold is bad.
type Sourced = (Source, &'static str, (Option<f64>, Option<f64>), Direction);

/// The `check:` block resolved, each problem at its field of the block.
pub fn resolve(job: &str, c: Block, roots: &Roots, job_timeout: Option<Duration>) -> Result<CheckSpec, Vec<Problem>> {
    resolve_block(job, c, roots, job_timeout)
        .map_err(|problems| problems.into_iter().map(|(field, message)| Problem::block(&[field], message)).collect())
}

/// A check judges with `for:` and acts with `on_alert:`; retries and on_failure would
/// double-count samples and fire a hook on every one, so only the job's own are refused
/// (those from `defaults:` are meant for commands).
pub fn refused(job: &str, spec: &CheckSpec, own: OwnSettings) -> Vec<Problem> {
    let mut out = Vec::new();
    if own.retries {
        out.push(Problem::job(
            "retries",
            format!("check `{job}` takes no `retries:`; use `check.for: N` for N samples in a row"),
        ));
    }
    // A metric check reads the kernel and is never slow; only probes wait on something.
    if !spec.source.is_probe() && own.timeout {
        out.push(Problem::job(
            "timeout",
            format!("check `{job}` reads a metric, which `timeout:` does not bound; remove it (it bounds probes: tcp, http, exec, process)"),
        ));
    }
    if own.on_failure {
        out.push(Problem::job(
            "on_failure",
            format!("check `{job}` takes no `on_failure:`; use `check.on_alert:` (and `on_recover:`)"),
        ));
    }
    out
}

fn resolve_block(job: &str, c: Block, roots: &Roots, job_timeout: Option<Duration>) -> Result<CheckSpec, Problems> {
    let mut errs: Problems = Vec::new();
    let (name, is_probe) = match (&c.metric, &c.probe) {
        (Some(m), None) => (m.clone(), false),
        (None, Some(p)) => (p.clone(), true),
        (Some(_), Some(_)) => {
            return Err(vec![("probe", format!("check `{job}` has both `metric:` and `probe:`; keep one"))]);
        }
        (None, None) => {
            return Err(vec![(
                "metric",
                format!(
                    "check `{job}` names no `metric:` (like disk_used_percent) or `probe:` (tcp, http, exec, process)"
                ),
            )]);
        }
    };
    // Fields each metric takes; any other field given is refused so a typo'd combination
    // does not silently do nothing.
    let mut used: Vec<&'static str> = vec![];
    let (source, unit, defaults, direction) = self::source(job, &c, &name, is_probe, &mut used, &mut errs)?;
    let probe = source.is_probe();
    refuse_unused(job, &c, &name, probe, &mut used, &mut errs);
    let (warn, crit, direction) = if probe {
        // A probe passes or fails.
        (None, None, c.direction.unwrap_or(direction))
    } else {
        thresholds(job, &c, &name, unit, defaults, direction, &mut errs)
    };
    if c.for_samples == Some(0) {
        errs.push(("for", format!("check `{job}`: `for:` counts samples in a row; it must be at least 1")));
    }
    if c.record_every == Some(0) {
        errs.push((
            "record_every",
            format!("check `{job}`: `record_every:` counts samples; it must be at least 1 (leave it out to record level changes only)"),
        ));
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(CheckSpec {
        metric: name,
        source,
        unit,
        warn,
        crit,
        direction,
        for_samples: c.for_samples.unwrap_or(1),
        cooldown: c.cooldown.map(|d| d.0).unwrap_or(Duration::from_secs(300)),
        start_period: c.start_period.map(|d| d.0).unwrap_or_default(),
        record_every: c.record_every,
        timeout: job_timeout.unwrap_or(DEFAULT_PROBE_TIMEOUT),
        on_alert: c.on_alert,
        on_recover: c.on_recover,
        roots: roots.clone(),
    })
}

/// The source `name` reads: a metric (only when written as `metric:`), else a probe (a
/// probe's name is taken under `metric:` too), else an unknown name with a hint. The fields
/// the source takes go into `used`.
fn source(
    job: &str,
    c: &Block,
    name: &str,
    is_probe: bool,
    used: &mut Vec<&'static str>,
    errs: &mut Problems,
) -> Result<Sourced, Problems> {
    if !is_probe && let Some(s) = metric_source(job, c, name, used, errs)? {
        return Ok(s);
    }
    if let Some(s) = probe_source(job, c, name, used, errs)? {
        return Ok(s);
    }
    Err(unknown_source(job, name, is_probe))
}

/// `path:`, which must be absolute, for a metric that reads one.
fn need_path(job: &str, c: &Block, name: &str, errs: &mut Problems, used: &mut Vec<&'static str>) -> PathBuf {
    used.push("path");
    match &c.path {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => {
            errs.push(("path", format!("check `{job}`: path `{}` must be absolute", p.display())));
            p.clone()
        }
        None => {
            errs.push(("metric", format!("check `{job}`: metric `{name}` needs `path:`")));
            PathBuf::new()
        }
    }
}

/// A metric's source; `None` when `name` is no metric.
fn metric_source(
    job: &str,
    c: &Block,
    name: &str,
    used: &mut Vec<&'static str>,
    errs: &mut Problems,
) -> Result<Option<Sourced>, Problems> {
    let sourced = match name {
        "cpu_percent" | "cpu_iowait_percent" | "cpu_steal_percent" => {
            used.push("core");
            let part = match name {
                "cpu_percent" => CpuPart::Busy,
                "cpu_iowait_percent" => CpuPart::Iowait,
                _ => CpuPart::Steal,
            };
            let d = if part == CpuPart::Busy { (Some(80.0), Some(95.0)) } else { (None, None) };
            (Source::Cpu { part, core: c.core }, "%", d, Direction::Above)
        }
        "mem_used_percent" => (Source::Mem(MemPart::UsedPercent), "%", (Some(80.0), Some(95.0)), Direction::Above),
        "swap_used_percent" => (Source::Mem(MemPart::SwapUsedPercent), "%", (Some(80.0), Some(95.0)), Direction::Above),
        "mem_available_bytes" => (Source::Mem(MemPart::AvailableBytes), "bytes", (None, None), Direction::Below),
        "load1" | "load5" | "load15" => {
            let n = name[4..].parse().unwrap_or(1);
            (Source::Load(n), "", (None, None), Direction::Above)
        }
        "procs" => (Source::Procs, "", (None, None), Direction::Above),
        // 1 while a Mains or USB supply is online, 0 on battery: `warn: 0` (below) alerts
        // when the mains goes.
        "ac_online" => (Source::AcOnline, "", (None, None), Direction::Below),
        "battery_percent" => (Source::BatteryPercent, "%", (None, None), Direction::Below),
        "procs_running" => (Source::ProcsRunning, "", (None, None), Direction::Above),
        "disk_used_percent" | "inode_used_percent" => {
            let path = need_path(job, c, name, errs, used);
            let inodes = name.starts_with("inode");
            (Source::Disk { path, inodes }, "%", (Some(85.0), Some(95.0)), Direction::Above)
        }
        "temperature" => {
            used.push("sensor");
            let sensor = c.sensor.clone().unwrap_or_else(|| {
                    errs.push(("metric", format!("check `{job}`: metric `temperature` needs `sensor:` (a thermal zone type or hwmon chip or label; `runner metrics` lists them)")));
                    String::new()
                });
            (Source::Temperature { sensor }, "C", (None, None), Direction::Above)
        }
        "dir_size" => {
            let path = need_path(job, c, name, errs, used);
            used.push("max_entries");
            let max_entries = c.max_entries.unwrap_or(DEFAULT_DIR_MAX_ENTRIES).max(1);
            (Source::DirSize { path, max_entries }, "bytes", (Some(1e9), Some(5e9)), Direction::Above)
        }
        "file_age" => {
            let path = need_path(job, c, name, errs, used);
            (Source::FileAge { path }, "s", (None, None), Direction::Above)
        }
        "file_size" => {
            let path = need_path(job, c, name, errs, used);
            (Source::FileSize { path }, "bytes", (None, None), Direction::Above)
        }
        "process_rss_bytes" => {
            used.extend(["name", "cmdline"]);
            if c.name.is_none() && c.cmdline.is_none() {
                errs.push(("metric", format!("check `{job}`: metric `process_rss_bytes` needs `name:` or `cmdline:`")));
            }
            (
                Source::ProcessRss { name: c.name.clone(), cmdline: c.cmdline.clone() },
                "bytes",
                (None, None),
                Direction::Above,
            )
        }
        "process_cpu_percent" => {
            used.extend(["name", "cmdline"]);
            if c.name.is_none() && c.cmdline.is_none() {
                errs.push((
                    "metric",
                    format!("check `{job}`: metric `process_cpu_percent` needs `name:` or `cmdline:`"),
                ));
            }
            (
                Source::ProcessCpu { name: c.name.clone(), cmdline: c.cmdline.clone() },
                "%",
                (None, None),
                Direction::Above,
            )
        }
        p if p.starts_with("pressure_") => match parse_pressure(p) {
            Some((resource, full, window)) => {
                (Source::Pressure { resource, full, window }, "%", (None, None), Direction::Above)
            }
            None => {
                return Err(vec![(
                    "metric",
                    format!(
                        "check `{job}`: unknown metric `{p}`; pressure metrics are named pressure_<cpu|memory|io>_<some|full>_<avg10|avg60|avg300>"
                    ),
                )]);
            }
        },
        _ => return Ok(None),
    };
    Ok(Some(sourced))
}

/// A probe's source; `None` when `name` is no probe.
fn probe_source(
    job: &str,
    c: &Block,
    name: &str,
    used: &mut Vec<&'static str>,
    errs: &mut Problems,
) -> Result<Option<Sourced>, Problems> {
    let sourced = match name {
        "tcp" => {
            used.extend(["host", "port", "send", "expect"]);
            let Some(port) = c.port else {
                return Err(vec![("metric", format!("check `{job}`: a tcp probe needs `port:`"))]);
            };
            let host = c.host.clone().unwrap_or_else(|| "127.0.0.1".into());
            (
                Source::Tcp { host, port, send: c.send.clone(), expect: c.expect.clone() },
                "ms",
                (None, None),
                Direction::Above,
            )
        }
        "http" => {
            used.extend(["url", "status"]);
            let Some(url) = &c.url else {
                return Err(vec![(
                    "metric",
                    format!("check `{job}`: an http probe needs `url:`, like http://127.0.0.1:8080/health"),
                )]);
            };
            match parse_url(url) {
                Ok((host, port, path)) => {
                    (Source::Http { host, port, path, status: c.status }, "", (None, None), Direction::Above)
                }
                Err(e) => return Err(vec![("url", format!("check `{job}`: {e}"))]),
            }
        }
        "exec" => {
            used.push("command");
            let Some(command) = c.command.clone() else {
                return Err(vec![(
                    "metric",
                    format!("check `{job}`: an exec probe needs `command:` (a list or a shell line)"),
                )]);
            };
            (Source::Exec { command }, "", (None, None), Direction::Above)
        }
        "process" => {
            used.extend(["name", "cmdline", "min", "max"]);
            if c.name.is_none() && c.cmdline.is_none() {
                errs.push(("metric", format!("check `{job}`: a process probe needs `name:` or `cmdline:`")));
            }
            let min = c.min.unwrap_or(1);
            let max = c.max.unwrap_or(u64::MAX);
            if max < min {
                errs.push(("max", format!("check `{job}`: max ({max}) is below min ({min})")));
            }
            (
                Source::Process { name: c.name.clone(), cmdline: c.cmdline.clone(), min, max },
                "",
                (None, None),
                Direction::Above,
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(sourced))
}

/// A name that is neither metric nor probe (or a metric written as `probe:`): the closest
/// name, or which key it belongs under.
fn unknown_source(job: &str, other: &str, is_probe: bool) -> Problems {
    let lookup = |name: &str| {
        let n = name.to_string();
        PROBES.iter().chain(METRICS).find(|m| **m == n).copied()
    };
    let (field, kind, list) = if is_probe { ("probe", "probe", PROBES) } else { ("metric", "metric", METRICS) };
    let best = list
        .iter()
        .map(|m| (crate::suggest::edit_distance(other, m), *m))
        .filter(|(d, m)| *d <= (m.len().max(other.len()) / 3).max(1) + 1)
        .min();
    let hint = match (best, lookup(other)) {
        (_, Some(m)) if PROBES.contains(&m) => format!("; `{m}` is a probe: write `probe: {m}`"),
        (_, Some(m)) => format!("; `{m}` is a metric: write `metric: {m}`"),
        (Some((_, m)), None) => format!(", did you mean `{m}`?"),
        (None, None) => format!("; one of {}", list.join(", ")),
    };
    vec![(field, format!("unknown {kind} `{other}` in check `{job}`{hint}"))]
}

/// Refuses the fields given that the source does not take (a probe takes no thresholds, a
/// metric no `start_period`), so a typo'd combination does not silently do nothing.
fn refuse_unused(job: &str, c: &Block, name: &str, probe: bool, used: &mut Vec<&'static str>, errs: &mut Problems) {
    if probe {
        for f in ["warn", "crit", "direction"] {
            let given = match f {
                "warn" => c.warn.is_some(),
                "crit" => c.crit.is_some(),
                _ => c.direction.is_some(),
            };
            if given {
                errs.push((f, format!("check `{job}`: a {name} probe passes or fails; `{f}` does not apply (use `for:` for consecutive failures)")));
            }
        }
    } else {
        used.extend(["warn", "crit", "direction"]);
        if c.start_period.is_some() {
            errs.push((
                "start_period",
                format!("check `{job}`: `start_period` applies to probes (tcp, http, exec, process) only"),
            ));
        }
    }
    let given: [(&'static str, bool); 14] = [
        ("path", c.path.is_some()),
        ("sensor", c.sensor.is_some()),
        ("core", c.core.is_some()),
        ("host", c.host.is_some()),
        ("port", c.port.is_some()),
        ("send", c.send.is_some()),
        ("expect", c.expect.is_some()),
        ("url", c.url.is_some()),
        ("status", c.status.is_some()),
        ("command", c.command.is_some()),
        ("name", c.name.is_some()),
        ("cmdline", c.cmdline.is_some()),
        ("min", c.min.is_some() || c.max.is_some()),
        ("max_entries", c.max_entries.is_some()),
    ];
    for (f, is_given) in given {
        if is_given && !used.contains(&f) {
            errs.push((
                f,
                format!("check `{job}`: `{f}` does not apply to {} `{name}`", if probe { "probe" } else { "metric" }),
            ));
        }
    }
}

/// A metric's `warn:` and `crit:` in its unit (the metric's defaults where not given) and
/// its direction.
fn thresholds(
    job: &str,
    c: &Block,
    name: &str,
    unit: &'static str,
    defaults: (Option<f64>, Option<f64>),
    direction: Direction,
    errs: &mut Problems,
) -> (Option<f64>, Option<f64>, Direction) {
    let mut threshold = |field: &'static str, t: &Option<Threshold>, default: Option<f64>| -> Option<f64> {
        match t {
            None => default,
            Some(t) => match parse_threshold(t, unit) {
                Ok(v) => Some(v),
                Err(e) => {
                    errs.push((field, format!("check `{job}`: {field}: {e}")));
                    None
                }
            },
        }
    };
    let warn = threshold("warn", &c.warn, defaults.0);
    let crit = threshold("crit", &c.crit, defaults.1);
    let direction = c.direction.unwrap_or(direction);
    if warn.is_none() && crit.is_none() && c.warn.is_none() && c.crit.is_none() {
        errs.push((
            "metric",
            format!("check `{job}`: metric `{name}` has no default thresholds; add `warn:` and/or `crit:`"),
        ));
    }
    if let (Some(w), Some(cr)) = (warn, crit) {
        let wrong = match direction {
            Direction::Above => w > cr,
            Direction::Below => w < cr,
        };
        if wrong {
            let (rel, dir) = if direction == Direction::Above { ("above", "above") } else { ("below", "below") };
            errs.push((
                "warn",
                format!("check `{job}`: warn ({w}) is {rel} crit ({cr}) while `direction: {dir}`; swap them or change the direction"),
            ));
        }
    }
    (warn, crit, direction)
}

fn parse_pressure(name: &str) -> Option<(&'static str, bool, PsiWindow)> {
    let mut parts = name.strip_prefix("pressure_")?.split('_');
    let resource = match parts.next()? {
        "cpu" => "cpu",
        "memory" => "memory",
        "io" => "io",
        _ => return None,
    };
    let full = match parts.next()? {
        "some" => false,
        "full" => true,
        _ => return None,
    };
    let window = match parts.next()? {
        "avg10" => PsiWindow::Avg10,
        "avg60" => PsiWindow::Avg60,
        "avg300" => PsiWindow::Avg300,
        _ => return None,
    };
    parts.next().is_none().then_some((resource, full, window))
}

/// `http://host[:port][/path]`: plain HTTP only (runner carries no TLS client).
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(format!(
            "url `{url}` is not plain http://; runner has no TLS client, so probe a local plain-HTTP port or use a tcp probe"
        ));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| format!("url `{url}`: port `{p}` is not a number from 1 to 65535"))?)
        }
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("url `{url}` has no host"));
    }
    Ok((host.to_string(), port, path))
}

/// A threshold in the metric's unit: percent, bytes (`1GB` = 10^9, `1GiB`/`1G` = 2^30),
/// seconds (`10m`), or a plain number.
fn parse_threshold(t: &Threshold, unit: &str) -> Result<f64, String> {
    let text = match t {
        Threshold::Number(n) => return Ok(*n),
        Threshold::Text(s) => s.trim(),
    };
    match unit {
        "%" => text
            .strip_suffix('%')
            .unwrap_or(text)
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{text}` is not a percentage; write a number like 85")),
        "s" => duration::parse(text).map(|d| d.as_secs_f64()),
        "bytes" => {
            let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
            let (num, suffix) = text.split_at(split);
            let n: f64 = num.parse().map_err(|_| format!("`{text}` is not a size; write it like 500MB or 2GiB"))?;
            let mult = match suffix.trim() {
                "" | "B" => 1.0,
                "KB" | "kB" => 1e3,
                "MB" => 1e6,
                "GB" => 1e9,
                "TB" => 1e12,
                "K" | "KiB" => 1024.0,
                "M" | "MiB" => 1024.0 * 1024.0,
                "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
                "T" | "TiB" => 1024.0f64.powi(4),
                other => {
                    return Err(format!(
                        "unknown size unit `{other}` in `{text}`; use B, KB, MB, GB, TB or KiB, MiB, GiB, TiB"
                    ));
                }
            };
            Ok(n * mult)
        }
        _ => text.parse::<f64>().map_err(|_| format!("`{text}` is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_in_units() {
        let t = |s: &str| Threshold::Text(s.into());
        assert_eq!(parse_threshold(&t("1GB"), "bytes").unwrap(), 1e9);
        assert_eq!(parse_threshold(&t("2GiB"), "bytes").unwrap(), 2.0 * 1024.0 * 1024.0 * 1024.0);
        assert_eq!(parse_threshold(&t("10m"), "s").unwrap(), 600.0);
        assert_eq!(parse_threshold(&t("85%"), "%").unwrap(), 85.0);
        assert!(parse_threshold(&t("1XB"), "bytes").is_err());
    }

    #[test]
    fn urls_are_plain_http() {
        assert_eq!(parse_url("http://127.0.0.1:8080/health").unwrap(), ("127.0.0.1".into(), 8080, "/health".into()));
        assert_eq!(parse_url("http://localhost").unwrap(), ("localhost".into(), 80, "/".into()));
        assert_eq!(parse_url("http://[::1]:9/x").unwrap(), ("::1".into(), 9, "/x".into()));
        assert!(parse_url("https://x/").unwrap_err().contains("TLS"));
    }

    #[test]
    fn pressure_names() {
        assert_eq!(parse_pressure("pressure_io_full_avg60"), Some(("io", true, PsiWindow::Avg60)));
        assert_eq!(parse_pressure("pressure_disk_some_avg10"), None);
    }
}
