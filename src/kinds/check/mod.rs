//! The `check` kind: one attempt takes one sample of a metric or runs one probe, judges it
//! against warn/crit with `for: N` hysteresis, and raises or resolves alerts.
//!
//! `jobs::execute` is stateless, so a check keeps two things between runs: the judged level,
//! active alert and last alert time in the persisted state (written only when the level
//! changes or an alert is repeated after its cooldown, since flash wears out), and, in this
//! process, the open metric sources, the previous CPU counters and the count of samples
//! pending at a new level (in [`REGISTRY`]). Alerts and recoveries are records through
//! `Services::emit`; `on_alert`/`on_recover` run like command jobs (`Services::hook`).
//!
//! It must not decide when it runs (the scheduler does) nor write the state on every sample.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

pub mod config;

use super::Services;
use crate::metrics::{self, CpuReader, Roots, Sensor, TextSource};
use crate::proc::RegexText;
use crate::process::{self, CommandLine};
use crate::record::{Kind, Outcome, Record, RecordKind, Trigger};
pub use crate::state::Level;
use crate::state::{ActiveAlert, CheckState, HealthPart, Update};
use crate::time::epoch_ms;

pub use config::Direction;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuPart {
    Busy,
    Iowait,
    Steal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemPart {
    UsedPercent,
    AvailableBytes,
    SwapUsedPercent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PsiWindow {
    Avg10,
    Avg60,
    Avg300,
}

/// What a check reads or probes, resolved from the config.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Cpu {
        part: CpuPart,
        core: Option<u32>,
    },
    Mem(MemPart),
    /// 1, 5 or 15 minutes.
    Load(u8),
    Pressure {
        resource: &'static str,
        full: bool,
        window: PsiWindow,
    },
    Disk {
        path: PathBuf,
        inodes: bool,
    },
    /// The hottest sensor matching the name.
    Temperature {
        sensor: String,
    },
    Procs,
    ProcsRunning,
    /// 1 while a Mains or USB power supply is online, else 0.
    AcOnline,
    /// The lowest battery's capacity.
    BatteryPercent,
    DirSize {
        path: PathBuf,
        max_entries: u64,
    },
    FileAge {
        path: PathBuf,
    },
    FileSize {
        path: PathBuf,
    },
    ProcessRss {
        name: Option<String>,
        cmdline: Option<RegexText>,
    },
    /// CPU percent of the matching processes since the check's last run (1 s on its first).
    ProcessCpu {
        name: Option<String>,
        cmdline: Option<RegexText>,
    },
    Tcp {
        host: String,
        port: u16,
        send: Option<String>,
        expect: Option<String>,
    },
    Http {
        host: String,
        port: u16,
        path: String,
        status: Option<u16>,
    },
    Exec {
        command: CommandLine,
    },
    Process {
        name: Option<String>,
        cmdline: Option<RegexText>,
        min: u64,
        max: u64,
    },
}

impl Source {
    pub fn is_probe(&self) -> bool {
        matches!(self, Source::Tcp { .. } | Source::Http { .. } | Source::Exec { .. } | Source::Process { .. })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckSpec {
    /// The metric or probe name as written (`disk_used_percent`, `tcp`, ...).
    pub metric: String,
    pub source: Source,
    /// The unit values are shown in (`%`, `bytes`, `s`, `C`, ...); empty for plain numbers.
    pub unit: &'static str,
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    pub direction: Direction,
    pub for_samples: u32,
    pub cooldown: Duration,
    pub start_period: Duration,
    /// `record_every:`: also put every Nth sample in the run log; `None`: level changes only.
    pub record_every: Option<u32>,
    /// Longest a probe may take (the job's `timeout:`, 10 s by default).
    pub timeout: Duration,
    pub on_alert: Option<CommandLine>,
    pub on_recover: Option<CommandLine>,
    pub roots: Roots,
}

impl CheckSpec {
    /// The level of one value against warn/crit.
    pub fn level_of(&self, v: f64) -> (Level, Option<f64>) {
        let past = |t: f64| match self.direction {
            Direction::Above => v >= t,
            Direction::Below => v <= t,
        };
        match (self.crit, self.warn) {
            (Some(c), _) if past(c) => (Level::Crit, Some(c)),
            (_, Some(w)) if past(w) => (Level::Warn, Some(w)),
            _ => (Level::Ok, None),
        }
    }
}

/// One sample or probe result.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub value: Option<f64>,
    pub level: Level,
    /// The threshold passed, for warn and crit.
    pub threshold: Option<f64>,
    /// One line for people: the value, or why there is none.
    pub detail: String,
}

impl Reading {
    fn unknown(detail: String) -> Reading {
        Reading { value: None, level: Level::Unknown, threshold: None, detail }
    }
}

/// What a check remembers in this process between runs.
#[derive(Debug, Default)]
pub struct Memory {
    /// A level seen in the last samples but not yet for `for:` samples in a row.
    pub pending: Option<(Level, u32)>,
    /// Whether a probe's start period ended (it passed once, or the time ran out).
    pub started: bool,
    pub first_sample: Option<Instant>,
    /// Seeded from the persisted state once; after that this process counts.
    pub seeded: bool,
    /// Samples since the last one that went to the run log (for `record_every:`).
    pub unrecorded: u32,
}

/// Whether a sample goes to the run log (`Run`) or only to the check's live file (`Sample`):
/// a change of the judged level always does, and with `record_every: N` every Nth sample.
/// A check sampled every few seconds would otherwise drown the real runs in the ring.
pub fn sample_kind(spec: &CheckSpec, before: Option<&str>, after: Option<&str>, mem: &mut Memory) -> RecordKind {
    let due = spec.record_every.is_some_and(|n| mem.unrecorded + 1 >= n);
    if before != after || due {
        mem.unrecorded = 0;
        RecordKind::Run
    } else {
        mem.unrecorded += 1;
        RecordKind::Sample
    }
}

/// An alert raised or resolved by one judgement.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A new level (or the same one again after its cooldown).
    Alert { level: Level, repeat: bool },
    /// Back to ok; the alert that was active.
    Resolve(ActiveAlert),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub state: CheckState,
    pub events: Vec<Event>,
    /// Whether the persisted state must be written (a level change or a repeated alert).
    pub write: bool,
}

/// Judges one reading against the persisted state and this process's memory. Pure, so the
/// hysteresis, start period and cooldown rules are tested without clocks or files.
pub fn judge(
    spec: &CheckSpec,
    prev: &CheckState,
    mem: &mut Memory,
    r: &Reading,
    now_ms: i64,
    elapsed: Duration,
) -> Judgement {
    let probe = spec.source.is_probe();
    let cur = prev.level.as_deref().and_then(Level::parse);
    let mut state = prev.clone();
    let mut events = Vec::new();
    if !mem.seeded {
        mem.seeded = true;
        mem.pending = prev.pending.as_deref().and_then(Level::parse).map(|l| (l, prev.pending_count));
    }
    // Container semantics: failures during the start period do not count; a pass ends it.
    if probe && !mem.started {
        if r.level == Level::Ok || elapsed >= spec.start_period {
            mem.started = true;
        } else {
            return Judgement { state, events, write: false };
        }
    }
    // A first ok is taken at once, and a probe recovers on one pass (as Docker's health
    // checks do); every other change needs `for:` samples in a row.
    let needed = if r.level == Level::Ok && (cur.is_none() || probe) { 1 } else { spec.for_samples.max(1) };
    let mut new = cur;
    if cur == Some(r.level) {
        mem.pending = None;
    } else {
        let count = match mem.pending {
            Some((l, n)) if l == r.level => n + 1,
            _ => 1,
        };
        if count >= needed {
            new = Some(r.level);
            mem.pending = None;
        } else {
            mem.pending = Some((r.level, count));
        }
    }
    let mut write = false;
    if new != cur {
        let level = new.expect("a change is always to a level");
        state.level = Some(level.as_str().to_string());
        state.since_ms = now_ms;
        write = true;
        if level == Level::Ok {
            if let Some(a) = state.alert.take() {
                events.push(Event::Resolve(a));
            }
        } else {
            state.alert = Some(ActiveAlert {
                level: level.as_str().to_string(),
                value: r.value,
                threshold: r.threshold,
                raised_ms: now_ms,
                message: r.detail.clone(),
            });
            state.last_alert_ms = Some(now_ms);
            events.push(Event::Alert { level, repeat: false });
        }
    } else if let Some(level) = new.filter(|l| *l != Level::Ok) {
        let due = state.last_alert_ms.is_none_or(|t| now_ms.saturating_sub(t) >= spec.cooldown.as_millis() as i64);
        if due {
            if let Some(a) = state.alert.as_mut() {
                a.value = r.value;
                a.message = r.detail.clone();
            }
            state.last_alert_ms = Some(now_ms);
            events.push(Event::Alert { level, repeat: true });
            write = true;
        }
    }
    if write {
        state.pending = mem.pending.map(|(l, _)| l.as_str().to_string());
        state.pending_count = mem.pending.map(|(_, n)| n).unwrap_or(0);
    }
    Judgement { state, events, write }
}

/// `ac_online` or `battery_percent`, read afresh (a charger comes and goes).
fn power_reading(source: &Source, roots: &metrics::Roots) -> Result<f64, String> {
    let dir = roots.sys.join("class/power_supply");
    let p = metrics::power::power(roots).map_err(|e| format!("{}: {e}", dir.display()))?;
    let (value, what) = match source {
        Source::AcOnline => (p.ac_online.map(|on| if on { 1.0 } else { 0.0 }), "of type Mains or USB"),
        _ => (p.battery_percent, "of type Battery with a capacity"),
    };
    value.ok_or_else(|| format!("no power supply {what} under {}", dir.display()))
}

/// Open sources of one check, kept between its runs in this process.
#[derive(Debug, Default)]
enum Reader {
    #[default]
    None,
    // Boxed: two samples of per-core counters are some 8 KiB.
    Cpu(Box<CpuReader>),
    Mem(TextSource<metrics::MemInfo>),
    Load(TextSource<metrics::LoadAvg>),
    Pressure(TextSource<metrics::Pressure>),
    Sensors(Vec<Sensor>),
    Procs(metrics::ProcCounter),
    ProcCpu(metrics::per_process::CpuUse),
}

#[derive(Debug)]
struct Registered {
    spec: CheckSpec,
    reader: Reader,
    memory: Memory,
}

/// Per check, by job name: open sources, previous CPU counters and pending counts. One
/// process-wide table because `jobs::execute` keeps nothing between runs; an entry whose
/// spec changed (a reload) starts afresh.
static REGISTRY: Mutex<BTreeMap<String, Registered>> = Mutex::new(BTreeMap::new());

/// Drops the entries (and their open /proc and sysfs readers) of checks that are not in
/// `keep`: a reload that removed or disabled a check must not keep its descriptors for the
/// daemon's life.
pub fn forget_except(keep: &[&str]) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|name, _| keep.contains(&name.as_str()));
    // A check sampling right now has taken its entry out: it is dropped when it comes back.
    *KEPT.lock().unwrap_or_else(|e| e.into_inner()) = Some(keep.iter().map(|k| k.to_string()).collect());
}

/// The checks of the plan last loaded ([`forget_except`]); `None` before any reload.
static KEPT: Mutex<Option<Vec<String>>> = Mutex::new(None);

fn take_entry(name: &str, spec: &CheckSpec) -> Registered {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    match reg.remove(name) {
        Some(e) if e.spec == *spec => e,
        _ => Registered { spec: spec.clone(), reader: Reader::None, memory: Memory::default() },
    }
}

fn put_entry(name: &str, e: Registered) {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
    if kept.as_ref().is_none_or(|k| k.iter().any(|n| n == name)) {
        reg.insert(name.to_string(), e);
    }
}

/// The job's `check:` block resolved, with its key; `None` without one.
pub fn from_blocks(
    job: &str,
    block: Option<Box<config::Block>>,
    given: &super::Given<'_>,
) -> Option<(&'static str, Result<CheckSpec, Vec<super::Problem>>)> {
    Some(("check", config::resolve(job, *block?, given.roots, given.timeout)))
}

pub async fn attempt(svc: &dyn Services, spec: &CheckSpec, stop: watch::Receiver<bool>) -> Record {
    let name = svc.job();
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let mut entry = take_entry(name, spec);
    let reading = read(&mut entry, svc, spec, stop.clone()).await;
    let first = *entry.memory.first_sample.get_or_insert(t0);

    let prev = match svc.state() {
        Ok(s) => s.and_then(|j| j.check).unwrap_or_default(),
        Err(e) => {
            log::error!("check {name}: {e}");
            CheckState::default()
        }
    };
    let now_ms = epoch_ms(SystemTime::now());
    let j = judge(spec, &prev, &mut entry.memory, &reading, now_ms, first.elapsed());
    let kind = sample_kind(spec, prev.level.as_deref(), j.state.level.as_deref(), &mut entry.memory);
    let pending = entry.memory.pending;
    put_entry(name, entry);

    if j.write {
        let level = j.state.level.as_deref().and_then(Level::parse).unwrap_or(Level::Unknown);
        let part = HealthPart {
            level: level.health(),
            status: level.as_str().to_string(),
            value: reading.value,
            detail: reading.detail.clone(),
            since_ms: j.state.since_ms,
        };
        let result = svc.update(Update::Check { state: j.state.clone(), health: part });
        if let Err(e) = result {
            log::error!("check {name}: cannot record its level: {e}");
        }
    }
    for ev in &j.events {
        let (kind, level, threshold, message) = match ev {
            Event::Alert { level, repeat } => (
                RecordKind::Alert,
                *level,
                reading.threshold,
                format!("{}{}: {}", level.as_str(), if *repeat { " (still)" } else { "" }, reading.detail),
            ),
            Event::Resolve(a) => (
                RecordKind::Resolve,
                Level::Ok,
                a.threshold,
                format!("{} resolved (raised {}): {}", a.level, fmt_ms(a.raised_ms), reading.detail),
            ),
        };
        let mut r = base_record(name, started_at, t0.elapsed(), &reading);
        r.kind = kind;
        r.outcome = if kind == RecordKind::Alert { Outcome::Failure } else { Outcome::Success };
        r.level = Some(level.as_str().to_string());
        r.message = message;
        svc.emit(&r);
        let hook = if kind == RecordKind::Alert { &spec.on_alert } else { &spec.on_recover };
        if let Some(cmd) = hook {
            run_hook(svc, spec, cmd, level, &reading, threshold, stop.clone()).await;
        }
    }

    let judged = j.state.level.as_deref().and_then(Level::parse);
    let mut r = base_record(name, started_at, t0.elapsed(), &reading);
    r.kind = kind;
    r.outcome = if reading.level == Level::Ok { Outcome::Success } else { Outcome::Failure };
    r.level = judged.map(|l| l.as_str().to_string());
    r.message = match (judged, pending) {
        (Some(l), _) if l == reading.level => format!("{}: {}", l.as_str(), reading.detail),
        (l, Some((p, n))) => format!(
            "{} ({} sample {n} of {}), level {}",
            reading.detail,
            p.as_str(),
            spec.for_samples,
            l.map(Level::as_str).unwrap_or("pending")
        ),
        (l, None) => format!("{}, level {}", reading.detail, l.map(Level::as_str).unwrap_or("pending")),
    };
    r
}

fn base_record(job: &str, started_at: SystemTime, duration: Duration, reading: &Reading) -> Record {
    Record {
        kind: RecordKind::Run,
        job: job.to_string(),
        job_kind: Kind::Check,
        trigger: Trigger::Schedule,
        attempt: 1,
        last_attempt: true,
        started_at,
        duration,
        outcome: Outcome::Success,
        exit_code: None,
        signal: None,
        pid: None,
        output_tail: Vec::new(),
        message: String::new(),
        value: reading.value,
        level: Some(reading.level.as_str().to_string()),
        cpu_usec: None,
        memory_peak_bytes: None,
    }
}

fn fmt_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(crate::time::utc_text).unwrap_or_default()
}

impl super::KindImpl for CheckSpec {
    fn tag(&self) -> Kind {
        Kind::Check
    }

    fn default_every(&self) -> Option<Duration> {
        Some(Duration::from_secs(30))
    }

    // `timeout:` bounds one probe, inside the sample.
    fn timeout_bounds_whole_run(&self) -> bool {
        false
    }

    fn health_rule(&self) -> super::HealthRule {
        super::HealthRule::Level
    }

    fn dry_run(&self, _who: &str) -> super::DryRun<'_> {
        super::DryRun::Lines { lines: dry_run_lines(self), ok: true }
    }

    fn is_check(&self) -> bool {
        true
    }

    fn once_lines(&self, job: &str, r: &Record) -> Vec<String> {
        once_lines(job, self, r)
    }

    fn refused(&self, job: &str, own: super::OwnSettings) -> Vec<super::Problem> {
        config::refused(job, self, own)
    }

    fn fmt_value(&self, v: f64) -> String {
        fmt_value(v, self.unit)
    }
}

/// `runner once --dry-run` of a check, after the job's line.
pub fn dry_run_lines(spec: &CheckSpec) -> Vec<String> {
    vec![
        format!(
            "would check: {} (warn {}, crit {}, for {})",
            spec.metric,
            spec.warn.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            spec.crit.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            spec.for_samples
        ),
        "dry run: nothing was sampled".into(),
    ]
}

/// What `runner once <check>` prints: the value, the level (the sample's and the judged one)
/// and what that level does.
pub fn once_lines(job: &str, spec: &CheckSpec, r: &Record) -> Vec<String> {
    let mut out = Vec::new();
    let value = r.value.map(|v| fmt_value(v, spec.unit)).unwrap_or_else(|| "-".into());
    let limits = match (spec.warn, spec.crit) {
        (None, None) => String::new(),
        (w, c) => {
            let f = |t: Option<f64>| t.map(|t| fmt_value(t, spec.unit)).unwrap_or("-".into());
            format!(", warn {}, crit {}", f(w), f(c))
        }
    };
    out.push(format!("check:    {job} ({}{limits})", spec.metric));
    out.push(format!("value:    {value}"));
    out.push(format!("sample:   {}", r.message));
    let level = r.level.as_deref().and_then(Level::parse);
    let Some(level) = level else {
        out.push(format!("level:    pending (the first level is taken after {} sample(s) in a row)", spec.for_samples));
        out.push("effect:   none yet: no alert, and jobs that depend on it are skipped until it is ok".into());
        return out;
    };
    let health = level.health().as_str();
    out.push(format!("level:    {} (overall health counts it as {health})", level.as_str()));
    let effect = if level == Level::Ok {
        "none: no alert is active, and jobs that depend on it run".to_string()
    } else {
        let hook = spec
            .on_alert
            .as_ref()
            .map(|c| format!(", runs on_alert ({})", super::describe_command(c)))
            .unwrap_or_default();
        format!(
            "an alert{hook}, repeated every {} while it lasts; jobs that depend on it are skipped",
            crate::time::format(spec.cooldown)
        )
    };
    out.push(format!("effect:   {effect}"));
    out
}

/// A value as people read it, in the check's unit.
pub fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "%" => format!("{v:.1}%"),
        "C" => format!("{v:.1}C"),
        "s" => format!("{v:.0}s"),
        "bytes" => format!("{v:.0} bytes"),
        "ms" => format!("{v:.0} ms"),
        _ if v.fract() == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.2}"),
    }
}

fn judged_reading(spec: &CheckSpec, v: f64, what: &str) -> Reading {
    let (level, threshold) = spec.level_of(v);
    let mut detail = format!("{what} {}", fmt_value(v, spec.unit));
    if let Some(t) = threshold {
        let op = if spec.direction == Direction::Above { ">=" } else { "<=" };
        detail.push_str(&format!(" {op} {} {}", level.as_str(), fmt_value(t, spec.unit)));
    }
    Reading { value: Some(v), level, threshold, detail }
}

/// One sample or probe. Never panics on a bad source: it becomes an unknown (or failed)
/// reading with the reason.
async fn read(
    entry: &mut Registered,
    svc: &dyn Services,
    spec: &CheckSpec,
    mut stop: watch::Receiver<bool>,
) -> Reading {
    let roots = &spec.roots;
    let m = spec.metric.as_str();
    let value: Result<f64, String> = match &spec.source {
        Source::Cpu { part, core } => match read_cpu(entry, roots, *part, *core, &mut stop).await {
            Ok(v) => v,
            Err(r) => return r,
        },
        Source::Mem(part) => {
            if !matches!(entry.reader, Reader::Mem(_)) {
                match metrics::meminfo(roots) {
                    Ok(s) => entry.reader = Reader::Mem(s),
                    Err(e) => return Reading::unknown(e),
                }
            }
            let Reader::Mem(s) = &mut entry.reader else { unreachable!("set just above") };
            s.sample().map_err(|e| format!("{}: {e}", s.path().display())).map(|mi| match part {
                MemPart::UsedPercent => mi.used_percent(),
                MemPart::AvailableBytes => mi.available as f64,
                MemPart::SwapUsedPercent => mi.swap_used_percent(),
            })
        }
        Source::Load(which) => {
            if !matches!(entry.reader, Reader::Load(_)) {
                match metrics::loadavg(roots) {
                    Ok(s) => entry.reader = Reader::Load(s),
                    Err(e) => return Reading::unknown(e),
                }
            }
            let Reader::Load(s) = &mut entry.reader else { unreachable!("set just above") };
            s.sample().map_err(|e| format!("{}: {e}", s.path().display())).map(|l| match which {
                1 => l.load1,
                5 => l.load5,
                _ => l.load15,
            })
        }
        Source::ProcsRunning => {
            if !matches!(entry.reader, Reader::Load(_)) {
                match metrics::loadavg(roots) {
                    Ok(s) => entry.reader = Reader::Load(s),
                    Err(e) => return Reading::unknown(e),
                }
            }
            let Reader::Load(s) = &mut entry.reader else { unreachable!("set just above") };
            s.sample().map_err(|e| format!("{}: {e}", s.path().display())).map(|l| l.running as f64)
        }
        Source::Pressure { resource, full, window } => {
            if !matches!(entry.reader, Reader::Pressure(_)) {
                match metrics::pressure(roots, resource) {
                    Ok(s) => entry.reader = Reader::Pressure(s),
                    Err(e) => return Reading::unknown(format!("{e} (the kernel needs CONFIG_PSI and psi=1)")),
                }
            }
            let Reader::Pressure(s) = &mut entry.reader else { unreachable!("set just above") };
            s.sample().map_err(|e| format!("{}: {e}", s.path().display())).and_then(|p| {
                let line = if *full { p.full.ok_or("this kernel has no `full` line here")? } else { p.some };
                Ok(match window {
                    PsiWindow::Avg10 => line.avg10,
                    PsiWindow::Avg60 => line.avg60,
                    PsiWindow::Avg300 => line.avg300,
                })
            })
        }
        Source::Temperature { sensor } => match read_temperature(entry, roots, sensor) {
            Ok(v) => v,
            Err(r) => return r,
        },
        Source::AcOnline | Source::BatteryPercent => power_reading(&spec.source, roots),
        Source::Procs => {
            if !matches!(entry.reader, Reader::Procs(_)) {
                match metrics::ProcCounter::open(roots) {
                    Ok(p) => entry.reader = Reader::Procs(p),
                    Err(e) => return Reading::unknown(e),
                }
            }
            let Reader::Procs(p) = &mut entry.reader else { unreachable!("set just above") };
            p.count().map(|n| n as f64).map_err(|e| format!("{}: {e}", roots.proc.display()))
        }
        Source::Disk { path, inodes } => metrics::disk_usage(path)
            .map(|d| if *inodes { d.inodes_used_percent } else { d.used_percent })
            .map_err(|e| format!("cannot statvfs {}: {e}", path.display())),
        Source::DirSize { path, max_entries } => match read_dir_size(spec, path, *max_entries, m).await {
            Ok(v) => v,
            Err(r) => return r,
        },
        Source::FileAge { path } | Source::FileSize { path } => match read_file_age(spec, path) {
            Ok(v) => v,
            Err(r) => return r,
        },
        Source::ProcessRss { name, cmdline } => {
            let (r, n, c) = (roots.clone(), name.clone(), cmdline.clone());
            match tokio::task::spawn_blocking(move || {
                metrics::per_process::matching(&r, n.as_deref(), c.as_ref().map(|c| &c.0))
            })
            .await
            {
                Ok(Ok(found)) if found.count == 0 => Err("no process matches".to_string()),
                Ok(Ok(found)) => Ok(found.rss_bytes as f64),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(e.to_string()),
            }
        }
        Source::ProcessCpu { name, cmdline } => read_process_cpu(entry, roots, name, cmdline, &mut stop).await,
        Source::Tcp { .. } | Source::Http { .. } | Source::Exec { .. } | Source::Process { .. } => {
            return probe(svc, spec, stop).await;
        }
    };
    match value {
        Ok(v) => judged_reading(spec, v, m),
        Err(e) => Reading::unknown(e),
    }
}

/// The CPU busy, iowait or steal percent since the last run (over one second now at the first);
/// Err: the reading to give as it is.
async fn read_cpu(
    entry: &mut Registered,
    roots: &metrics::Roots,
    part: CpuPart,
    core: Option<u32>,
    stop: &mut watch::Receiver<bool>,
) -> Result<Result<f64, String>, Reading> {
    if !matches!(entry.reader, Reader::Cpu(_)) {
        match CpuReader::open(roots) {
            Ok(c) => entry.reader = Reader::Cpu(Box::new(c)),
            Err(e) => return Err(Reading::unknown(e)),
        }
    }
    let Reader::Cpu(c) = &mut entry.reader else { unreachable!("set just above") };
    let first = c.samples() == 0;
    let mut res = c.sample().map_err(|e| format!("/proc/stat: {e}"));
    if first && res.is_ok() {
        // No earlier run to measure from: measure over one second now.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        res = c.sample().map_err(|e| format!("/proc/stat: {e}"));
    }
    Ok(res.and_then(|_| {
        let p = match core {
            Some(i) => c.core_percent(i as usize).ok_or_else(|| format!("no core {i} in /proc/stat")),
            None => c.percent().ok_or_else(|| "the CPU counters did not move".to_string()),
        }?;
        Ok(match part {
            CpuPart::Busy => p.busy,
            CpuPart::Iowait => p.iowait,
            CpuPart::Steal => p.steal,
        })
    }))
}

/// The bytes under a directory (a bounded walk on a blocking thread); Err: the reading to
/// give as it is (a partial walk).
async fn read_dir_size(
    spec: &CheckSpec,
    path: &std::path::Path,
    max_entries: u64,
    m: &str,
) -> Result<Result<f64, String>, Reading> {
    let (p, max) = (path.to_path_buf(), max_entries);
    Ok(match tokio::task::spawn_blocking(move || metrics::fs::dir_size(&p, max)).await {
        Ok(Ok(d)) if d.complete => Ok(d.bytes as f64),
        Ok(Ok(d)) => {
            // A partial walk is a lower bound: enough to say warn or crit, not ok.
            let r = judged_reading(spec, d.bytes as f64, m);
            if r.level != Level::Ok {
                return Err(Reading {
                    detail: format!("{} (at least; stopped after {} entries)", r.detail, d.entries),
                    ..r
                });
            }
            return Err(Reading {
                value: Some(d.bytes as f64),
                ..Reading::unknown(format!(
                    "{} has more than {} entries; walked {} bytes so far; raise max_entries",
                    path.display(),
                    max,
                    d.bytes
                ))
            });
        }
        Ok(Err(e)) => Err(format!("cannot read {}: {e}", path.display())),
        Err(e) => Err(format!("directory walk failed: {e}")),
    })
}

/// A file's age or size; Err: the reading to give as it is (a heartbeat file that is not there).
fn read_file_age(spec: &CheckSpec, path: &std::path::Path) -> Result<Result<f64, String>, Reading> {
    Ok(match metrics::fs::file_age(path, SystemTime::now()) {
        Ok((age, size)) => Ok(if matches!(spec.source, Source::FileAge { .. }) { age } else { size as f64 }),
        // A heartbeat file that is not there is as bad as a stale one.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && matches!(spec.source, Source::FileAge { .. }) => {
            let threshold = spec.crit.or(spec.warn);
            let level = if spec.crit.is_some() { Level::Crit } else { Level::Warn };
            return Err(Reading {
                value: None,
                level,
                threshold,
                detail: format!("{} does not exist", path.display()),
            });
        }
        Err(e) => Err(format!("cannot stat {}: {e}", path.display())),
    })
}

/// The hottest of the sensors named `sensor`; Err: the reading to give as it is.
fn read_temperature(
    entry: &mut Registered,
    roots: &metrics::Roots,
    sensor: &str,
) -> Result<Result<f64, String>, Reading> {
    if !matches!(&entry.reader, Reader::Sensors(v) if !v.is_empty()) {
        let found = metrics::sensors::discover(roots, Some(sensor));
        if found.is_empty() {
            return Err(Reading::unknown(format!(
                "no temperature sensor named `{sensor}` under {}/class/thermal or {}/class/hwmon (`runner metrics` lists them)",
                roots.sys.display(),
                roots.sys.display()
            )));
        }
        entry.reader = Reader::Sensors(found);
    }
    let Reader::Sensors(v) = &mut entry.reader else { unreachable!("set just above") };
    let mut hottest: Option<f64> = None;
    let mut err = None;
    for s in v.iter_mut() {
        match s.read() {
            Ok(t) => hottest = Some(hottest.map_or(t, |h| h.max(t))),
            Err(e) => err = Some(format!("{}: {e}", s.path().display())),
        }
    }
    Ok(hottest.ok_or_else(|| err.unwrap_or_default()))
}

/// The CPU percent of the matching processes since the last run (over one second now at the
/// first).
async fn read_process_cpu(
    entry: &mut Registered,
    roots: &metrics::Roots,
    name: &Option<String>,
    cmdline: &Option<crate::proc::RegexText>,
    stop: &mut watch::Receiver<bool>,
) -> Result<f64, String> {
    if !matches!(entry.reader, Reader::ProcCpu(_)) {
        entry.reader = Reader::ProcCpu(metrics::per_process::CpuUse::default());
    }
    let Reader::ProcCpu(cpu) = &mut entry.reader else { unreachable!("set just above") };
    let scan = || {
        let (r, n, c) = (roots.clone(), name.clone(), cmdline.clone());
        tokio::task::spawn_blocking(move || {
            let mut each = Vec::new();
            let m = metrics::per_process::scan(&r, n.as_deref(), c.as_ref().map(|c| &c.0), Some(&mut each));
            (metrics::per_process::boot_seconds(), m.map(|m| (m, each)))
        })
    };
    let hz = metrics::per_process::ticks_per_second();
    let mut result = scan().await.map_err(|e| e.to_string());
    if !cpu.primed()
        && let Ok((at, Ok((_, each)))) = &result
    {
        // No earlier run to measure from: measure over one second now.
        cpu.update(*at, each, hz);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
        result = scan().await.map_err(|e| e.to_string());
    }
    match result {
        Ok((at, Ok((found, each)))) => {
            let p = cpu.update(at, &each, hz);
            match (found.count, p) {
                (0, _) => Err("no process matches".to_string()),
                (_, Some(p)) => Ok(p),
                (_, None) => Err("no time passed between two scans".to_string()),
            }
        }
        Ok((_, Err(e))) | Err(e) => Err(e),
    }
}

fn pass(value: f64, detail: String) -> Reading {
    Reading { value: Some(value), level: Level::Ok, threshold: None, detail }
}

fn fail(value: Option<f64>, detail: String) -> Reading {
    Reading { value, level: Level::Fail, threshold: None, detail }
}

async fn probe(svc: &dyn Services, spec: &CheckSpec, stop: watch::Receiver<bool>) -> Reading {
    let t0 = Instant::now();
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
    match &spec.source {
        Source::Tcp { host, port, send, expect } => {
            let io = tcp_exchange(host, *port, send.as_deref(), expect.as_deref());
            match tokio::time::timeout(spec.timeout, io).await {
                Ok(Ok(())) => pass(ms(t0), format!("{host}:{port} answered in {:.1} ms", ms(t0))),
                Ok(Err(e)) => fail(None, format!("{host}:{port}: {e}")),
                Err(_) => fail(None, format!("{host}:{port}: no answer within {}", crate::time::format(spec.timeout))),
            }
        }
        Source::Http { host, port, path, status } => {
            let io = http_status(host, *port, path);
            let url = format!("http://{host}:{port}{path}");
            match tokio::time::timeout(spec.timeout, io).await {
                Ok(Ok(code)) => {
                    let good = match status {
                        Some(s) => code == *s,
                        None => (200..400).contains(&code),
                    };
                    let want = status.map(|s| s.to_string()).unwrap_or_else(|| "2xx or 3xx".into());
                    if good {
                        pass(f64::from(code), format!("{url} answered {code} in {:.1} ms", ms(t0)))
                    } else {
                        fail(Some(f64::from(code)), format!("{url} answered {code}, expected {want}"))
                    }
                }
                Ok(Err(e)) => fail(None, format!("{url}: {e}")),
                Err(_) => fail(None, format!("{url}: no answer within {}", crate::time::format(spec.timeout))),
            }
        }
        Source::Exec { command } => {
            let env = svc.env(&[("RUNNER_CHECK", svc.job().to_string())]);
            // A probe's output is only shown as its detail: a short tail, never echoed.
            let p = process::Spec { capture_limit: 1024, ..svc.process(command, &env, Some(spec.timeout), false) };
            // Tracked as a run's group is, so a daemon restarted after a crash ends it.
            let f = process::run(&p, svc.started(), stop).await;
            if let Some(pgid) = f.pid {
                let _ = svc.update(crate::state::Update::GroupEnded(pgid));
            }
            let mut out = f.stdout_tail;
            out.extend_from_slice(&f.stderr_tail);
            let out = String::from_utf8_lossy(&out).trim().replace('\n', " ");
            let tail = if out.is_empty() { String::new() } else { format!(": {out}") };
            match f.status {
                process::Status::Exited(0) => pass(0.0, format!("exit 0{tail}")),
                process::Status::Exited(c) => fail(Some(f64::from(c)), format!("exit {c}{tail}")),
                other => fail(None, format!("{other:?}{tail}")),
            }
        }
        Source::Process { name, cmdline, min, max } => {
            let (r, n, c) = (spec.roots.clone(), name.clone(), cmdline.clone());
            let what = match (name, cmdline) {
                (Some(n), Some(c)) => format!("processes named {n} with `{}`", c.0.as_str()),
                (Some(n), None) => format!("processes named {n}"),
                (None, Some(c)) => format!("processes with `{}`", c.0.as_str()),
                (None, None) => "processes".into(),
            };
            match tokio::task::spawn_blocking(move || {
                metrics::per_process::matching(&r, n.as_deref(), c.as_ref().map(|c| &c.0))
            })
            .await
            {
                Ok(Ok(m)) if (*min..=*max).contains(&m.count) => pass(m.count as f64, format!("{} {what}", m.count)),
                Ok(Ok(m)) => {
                    let range = if *max == u64::MAX { format!("at least {min}") } else { format!("{min} to {max}") };
                    fail(Some(m.count as f64), format!("{} {what}, expected {range}", m.count))
                }
                Ok(Err(e)) => Reading::unknown(e),
                Err(e) => Reading::unknown(e.to_string()),
            }
        }
        _ => unreachable!("probe() is only called for probes"),
    }
}

/// A tcp probe's exchange: connect, send `send`, read until `expect` shows (within 64 KiB).
async fn tcp_exchange(host: &str, port: u16, send: Option<&str>, expect: Option<&str>) -> Result<(), String> {
    let mut s = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| format!("connect: {e}"))?;
    if let Some(data) = send {
        s.write_all(data.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    }
    if let Some(want) = expect {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !contains(&got, want.as_bytes()) {
            let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "connection closed before `{}` (got {:?})",
                    want.escape_default(),
                    String::from_utf8_lossy(&got)
                ));
            }
            got.extend_from_slice(&buf[..n]);
            // Bounded: a chatty peer cannot grow this without end.
            if got.len() > 64 * 1024 {
                return Err(format!("no `{}` in the first 64 KiB", want.escape_default()));
            }
        }
    }
    Ok(())
}

/// An http probe's request: the status code of a `GET` (HTTP/1.0, the first line read only).
async fn http_status(host: &str, port: u16, path: &str) -> Result<u16, String> {
    let mut s = tokio::net::TcpStream::connect((host, port)).await.map_err(|e| format!("connect: {e}"))?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: runner\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = s.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line).trim().to_string();
    let code = line
        .strip_prefix("HTTP/")
        .and_then(|r| r.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP response: {line:?}"))?;
    Ok::<u16, String>(code)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

async fn run_hook(
    svc: &dyn Services,
    spec: &CheckSpec,
    cmd: &CommandLine,
    level: Level,
    reading: &Reading,
    threshold: Option<f64>,
    stop: watch::Receiver<bool>,
) {
    let env = [
        ("RUNNER_CHECK", svc.job().to_string()),
        ("RUNNER_LEVEL", level.as_str().to_string()),
        ("RUNNER_VALUE", reading.value.map(|v| format!("{v}")).unwrap_or_default()),
        ("RUNNER_THRESHOLD", threshold.map(|v| format!("{v}")).unwrap_or_default()),
        ("RUNNER_METRIC", spec.metric.clone()),
        ("RUNNER_MESSAGE", reading.detail.clone()),
    ];
    let what = if level == Level::Ok { "on_recover" } else { "on_alert" };
    svc.hook(cmd, &env, what, stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(for_samples: u32, probe: bool) -> CheckSpec {
        CheckSpec {
            metric: "disk_used_percent".into(),
            source: if probe {
                Source::Tcp { host: "127.0.0.1".into(), port: 1, send: None, expect: None }
            } else {
                Source::Disk { path: "/".into(), inodes: false }
            },
            unit: "%",
            warn: Some(85.0),
            crit: Some(95.0),
            direction: Direction::Above,
            for_samples,
            cooldown: Duration::from_secs(300),
            start_period: Duration::from_secs(30),
            record_every: None,
            timeout: Duration::from_secs(1),
            on_alert: None,
            on_recover: None,
            roots: Roots::default(),
        }
    }

    #[test]
    fn only_level_changes_and_every_nth_sample_reach_the_run_log() {
        let mut m = Memory::default();
        let s = spec(1, false);
        let kinds: Vec<RecordKind> = [(None, Some("ok")), (Some("ok"), Some("ok")), (Some("ok"), Some("warn"))]
            .iter()
            .map(|(b, a)| sample_kind(&s, *b, *a, &mut m))
            .collect();
        assert_eq!(kinds, [RecordKind::Run, RecordKind::Sample, RecordKind::Run]);
        let every3 = CheckSpec { record_every: Some(3), ..spec(1, false) };
        let mut m = Memory::default();
        let kinds: Vec<RecordKind> = (0..7).map(|_| sample_kind(&every3, Some("ok"), Some("ok"), &mut m)).collect();
        use RecordKind::{Run, Sample};
        assert_eq!(kinds, [Sample, Sample, Run, Sample, Sample, Run, Sample]);
    }

    fn at(s: &CheckSpec, v: f64) -> Reading {
        judged_reading(s, v, "x")
    }

    /// Feeds values one per minute; returns the judged levels and all events.
    fn feed(s: &CheckSpec, values: &[f64]) -> (Vec<Option<String>>, Vec<Event>) {
        let mut st = CheckState::default();
        let mut mem = Memory::default();
        let (mut levels, mut events) = (Vec::new(), Vec::new());
        for (i, v) in values.iter().enumerate() {
            let j = judge(s, &st, &mut mem, &at(s, *v), i as i64 * 60_000, Duration::from_secs(3600));
            st = j.state;
            levels.push(st.level.clone());
            events.extend(j.events);
        }
        (levels, events)
    }

    #[test]
    fn levels_follow_thresholds_in_either_direction() {
        let mut s = spec(1, false);
        assert_eq!(s.level_of(84.9).0, Level::Ok);
        assert_eq!(s.level_of(85.0), (Level::Warn, Some(85.0)));
        assert_eq!(s.level_of(99.0), (Level::Crit, Some(95.0)));
        s.direction = Direction::Below;
        s.warn = Some(20.0);
        s.crit = Some(10.0);
        assert_eq!(s.level_of(50.0).0, Level::Ok);
        assert_eq!(s.level_of(15.0).0, Level::Warn);
        assert_eq!(s.level_of(5.0).0, Level::Crit);
    }

    #[test]
    fn a_level_changes_after_for_samples_in_a_row() {
        let s = spec(3, false);
        let (levels, events) = feed(&s, &[50.0, 90.0, 90.0, 50.0, 90.0, 90.0, 90.0]);
        let ok = Some("ok".to_string());
        assert_eq!(levels[..6], [ok.clone(), ok.clone(), ok.clone(), ok.clone(), ok.clone(), ok]);
        assert_eq!(levels[6].as_deref(), Some("warn"));
        assert_eq!(events, [Event::Alert { level: Level::Warn, repeat: false }]);
    }

    #[test]
    fn alerts_repeat_after_the_cooldown_and_resolve_once() {
        let s = spec(1, false);
        // One sample a minute, cooldown five minutes.
        let (_, events) = feed(&s, &[96.0, 96.0, 96.0, 96.0, 96.0, 96.0, 96.0, 50.0, 50.0]);
        let alerts: Vec<bool> = events
            .iter()
            .filter_map(|e| match e {
                Event::Alert { repeat, .. } => Some(*repeat),
                _ => None,
            })
            .collect();
        assert_eq!(alerts, [false, true], "raised at 0 min, repeated at 5 min: {events:?}");
        assert!(matches!(events.last(), Some(Event::Resolve(a)) if a.level == "crit"));
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Resolve(_))).count(), 1);
    }

    #[test]
    fn probe_failures_in_the_start_period_do_not_count() {
        let s = spec(2, true);
        let mut st = CheckState::default();
        let mut mem = Memory::default();
        let bad = fail(None, "refused".into());
        let good = pass(1.0, "ok".into());
        for t in [0, 10, 20] {
            let j = judge(&s, &st, &mut mem, &bad, t * 1000, Duration::from_secs(t as u64));
            assert!(!j.write && j.events.is_empty());
            st = j.state;
        }
        assert_eq!(st.level, None);
        // A pass ends the start period early; then failures count, `for: 2` of them.
        st = judge(&s, &st, &mut mem, &good, 21_000, Duration::from_secs(21)).state;
        assert_eq!(st.level.as_deref(), Some("ok"));
        st = judge(&s, &st, &mut mem, &bad, 22_000, Duration::from_secs(22)).state;
        assert_eq!(st.level.as_deref(), Some("ok"));
        let j = judge(&s, &st, &mut mem, &bad, 23_000, Duration::from_secs(23));
        assert_eq!(j.state.level.as_deref(), Some("fail"));
        // One pass recovers a probe.
        let j = judge(&s, &j.state, &mut mem, &good, 24_000, Duration::from_secs(24));
        assert_eq!(j.state.level.as_deref(), Some("ok"));
        assert!(matches!(j.events[..], [Event::Resolve(_)]));
    }

    #[test]
    fn the_state_is_written_only_on_changes_and_repeats() {
        let s = spec(1, false);
        let mut st = CheckState::default();
        let mut mem = Memory::default();
        let mut writes = 0;
        for i in 0..100 {
            let j = judge(&s, &st, &mut mem, &at(&s, 40.0 + (i % 3) as f64), i * 30_000, Duration::from_secs(3600));
            writes += usize::from(j.write);
            st = j.state;
        }
        assert_eq!(writes, 1, "only the first level is written while the value stays ok");
    }
}
