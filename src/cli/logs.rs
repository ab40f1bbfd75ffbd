//! `runner logs`: the ring file for people, like `journalctl` or OpenWrt's `logread`:
//! filters, time expressions, text and JSON, and `-f`, which waits on inotify for the writer
//! and reads by sequence number, so it survives the ring wrapping and says when it was lapped.
//!
//! Reads only; never takes the ring's lock, so it can never hold up a writer.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::{Color, LogsArgs, outcome_style};
use crate::config::{self, Overrides};
use crate::record::RecordKind;
use crate::sinks::ring::{self, Entry, Follower, RingError};

/// A time for `--since`/`--until`: RFC 3339, a local date or date and time, a signed offset
/// from now (`-1h`, `+30m`), or `now`, `today`, `yesterday`, `tomorrow` (local midnight).
pub fn parse_time(s: &str, now: Timestamp, tz: &TimeZone) -> Result<Timestamp, String> {
    let t = s.trim();
    let midnight = |days: i64| -> Result<Timestamp, String> {
        let d = now.to_zoned(tz.clone()).date().checked_add(days.days()).map_err(|e| e.to_string())?;
        d.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| e.to_string())
    };
    match t {
        "now" => return Ok(now),
        "today" => return midnight(0),
        "yesterday" => return midnight(-1),
        "tomorrow" => return midnight(1),
        _ => {}
    }
    if let Some(rest) = t.strip_prefix('-').or_else(|| t.strip_prefix('+')) {
        let d = crate::time::parse(rest)
            .map_err(|e| format!("invalid time `{s}`: {e}; write an offset like -1h or -30m"))?;
        let d = jiff::SignedDuration::try_from(d).map_err(|e| e.to_string())?;
        let d = if t.starts_with('-') { -d } else { d };
        return now.checked_add(d).map_err(|e| format!("invalid time `{s}`: {e}"));
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = t
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| t.parse::<jiff::civil::Date>().map(|d| d.to_datetime(jiff::civil::Time::midnight())));
    match civil {
        Ok(dt) => dt.to_zoned(tz.clone()).map(|z| z.timestamp()).map_err(|e| e.to_string()),
        Err(_) => Err(format!(
            "invalid time `{s}`: write RFC 3339 (2026-03-29T10:00:00Z), a local date or time (2026-03-29 10:00), an offset (-1h), or today/yesterday/now"
        )),
    }
}

/// What to show.
#[derive(Debug, Default)]
pub struct Filter {
    pub job: Option<String>,
    pub kind: Option<String>,
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub failed: bool,
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        self.job.as_ref().is_none_or(|j| *j == e.job)
            && self.kind.as_ref().is_none_or(|k| k == e.kind.as_str())
            && self.since_us.is_none_or(|t| e.realtime_us >= t)
            && self.until_us.is_none_or(|t| e.realtime_us <= t)
            && (!self.failed || e.outcome.is_failure())
    }
}

fn time_text(us: i64, tz: &TimeZone) -> String {
    Timestamp::from_microsecond(us)
        .map(|t| crate::time::offset_text(t, tz, true))
        .unwrap_or_else(|_| format!("@{us}us"))
}

/// One line for people (plus the output tail, indented, with `--output`); outcomes, alerts
/// and levels in colour when `color` says so (a terminal without `NO_COLOR`, as `status`).
pub fn format_text(e: &Entry, tz: &TimeZone, with_output: bool, color: Color) -> String {
    let kind = match e.kind {
        RecordKind::Alert | RecordKind::Resolve => color.paint(e.kind.as_str(), outcome_style(e.kind.as_str())),
        k => k.as_str().to_string(),
    };
    let outcome = color.paint(e.outcome.as_str(), outcome_style(e.outcome.as_str()));
    let mut s = format!("{} #{} {kind} {} {outcome}", time_text(e.realtime_us, tz), e.seq, e.job);
    match (e.exit_code, e.signal) {
        (Some(c), _) => s.push_str(&format!(" (exit {c})")),
        (None, Some(sig)) => s.push_str(&format!(" (signal {sig})")),
        _ => {}
    }
    if e.duration_us > 0 || e.kind == crate::record::RecordKind::Run {
        s.push_str(&format!(" after {} ms", e.duration_us / 1000));
    }
    if e.attempt > 1 {
        s.push_str(&format!(", attempt {}", e.attempt));
    }
    if e.trigger != crate::record::Trigger::Schedule {
        s.push_str(&format!(", {}", e.trigger.as_str()));
    }
    // A check's message already says its level and value, rounded, in the metric's unit
    // (`ok: disk_used_percent 16.1%`); other records get them here.
    let said = e.job_kind == "check" && !e.message.is_empty();
    if let Some(l) = e.level.as_deref().filter(|_| !said) {
        s.push_str(&format!(", level {}", color.paint(l, outcome_style(l))));
    }
    if let Some(v) = e.value.filter(|_| !said) {
        s.push_str(&format!(", value {}", format_value(v)));
    }
    if said {
        // The level the message starts with (`ok: ...`, `crit (still): ...`) in its colour.
        let level = e.message.split([' ', ':']).next().unwrap_or("");
        let painted = color.paint(level, outcome_style(level));
        s.push_str(&format!(": {painted}{}", &e.message[level.len()..]));
    } else if !e.message.is_empty() {
        s.push_str(&format!(": {}", e.message));
    }
    if with_output && !e.output.is_empty() {
        if e.output_cut > 0 {
            s.push_str(&format!("\n    | ({} earlier bytes not kept in the ring)", e.output_cut));
        }
        let text = String::from_utf8_lossy(&e.output);
        for line in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
            s.push_str("\n    | ");
            s.push_str(line);
        }
    }
    s
}

pub fn to_json(e: &Entry, tz: &TimeZone) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "time": time_text(e.realtime_us, tz),
        "realtime_us": e.realtime_us,
        "monotonic_us": e.monotonic_us,
        "boot_id": ring::boot_id_hex(&e.boot_id),
        "kind": e.kind.as_str(),
        "job": e.job,
        "job_kind": e.job_kind,
        "outcome": e.outcome.as_str(),
        "trigger": e.trigger.as_str(),
        "attempt": e.attempt,
        "last_attempt": e.last_attempt,
        "exit_code": e.exit_code,
        "signal": e.signal,
        "pid": e.pid,
        "duration_ms": e.duration_us / 1000,
        "value": e.value,
        "level": e.level,
        "cpu_usec": e.cpu_usec,
        "memory_peak_bytes": e.memory_peak_bytes,
        "message": e.message,
        "output": String::from_utf8_lossy(&e.output),
        "output_cut": e.output_cut,
    })
}

pub fn cmd_logs(config_path: &Path, overrides: &Overrides, a: &LogsArgs) -> ExitCode {
    let path = match &a.file {
        Some(p) => p.clone(),
        // No config: the run log needs none (it is under the state directory), so nothing is
        // said about the file unless the log cannot be found without it.
        None if super::config_missing(config_path) => match ring_without_config(config_path, overrides) {
            Ok(ring) => ring,
            Err(code) => return code,
        },
        None => match super::plan_or_loaded(config_path, overrides) {
            Ok(plan) => plan.log.ring.path,
            Err(errors) => {
                // No config to read: the ring where the flags or the defaults put state_dir.
                let (state_dir, _) = config::dirs_without_plan(config_path, overrides);
                let ring = state_dir.join(crate::sinks::ring::FILE_NAME);
                if !ring.exists() {
                    eprintln!(
                        "{errors}\nrunner logs: no run log at {}; fix the config, or give --file PATH",
                        ring.display()
                    );
                    return ExitCode::FAILURE;
                }
                eprintln!(
                    "runner logs: the config is refused: {}; reading {}",
                    super::first_error(&errors),
                    ring.display()
                );
                ring
            }
        },
    };
    let tz = crate::time::local_zone();
    let now = Timestamp::now();
    let mut filter = Filter { job: a.job.clone(), kind: a.kind.clone(), failed: a.failed, ..Filter::default() };
    for (text, slot) in [(&a.since, &mut filter.since_us), (&a.until, &mut filter.until_us)] {
        if let Some(t) = text {
            match parse_time(t, now, &tz) {
                Ok(ts) => *slot = Some(ts.as_microsecond()),
                Err(e) => {
                    eprintln!("runner logs: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let limit = a.lines.or(a.follow.then_some(10));
    let result =
        if a.follow { follow(&path, &filter, limit, a, &tz) } else { print_once(&path, &filter, limit, a, &tz) };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Ring(e)) => {
            eprintln!("runner logs: {}: {e}", path.display());
            ExitCode::FAILURE
        }
        Err(Failure::Closed) => ExitCode::SUCCESS,
    }
}

/// The ring of the daemon that runs for these directories (what it loaded names its state
/// directory), or the one under the state directory the flags, environment or defaults give.
fn ring_without_config(config_path: &Path, overrides: &Overrides) -> Result<std::path::PathBuf, ExitCode> {
    if let Some((plan, _)) = super::loaded_plan(config_path, overrides) {
        return Ok(plan.log.ring.path);
    }
    let (state_dir, _) = config::dirs_without_plan(config_path, overrides);
    let ring = state_dir.join(crate::sinks::ring::FILE_NAME);
    if ring.exists() {
        return Ok(ring);
    }
    if overrides.state_dir.is_some() {
        eprintln!("runner logs: no run log at {}: nothing has run with this state directory yet", ring.display());
    } else {
        eprintln!(
            "runner logs: no run log at {}, and no config at {} to name another state directory; give --state-dir DIR (what the daemon was given), --config FILE or --file RING",
            ring.display(),
            config_path.display()
        );
    }
    Err(ExitCode::FAILURE)
}

enum Failure {
    Ring(RingError),
    /// Our stdout went away (`| head`): a normal end.
    Closed,
}

impl From<RingError> for Failure {
    fn from(e: RingError) -> Failure {
        Failure::Ring(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe { Failure::Closed } else { Failure::Ring(RingError::Io(e)) }
    }
}

fn print(entries: &[Entry], filter: &Filter, limit: Option<usize>, a: &LogsArgs, tz: &TimeZone) -> io::Result<()> {
    let shown: Vec<&Entry> = entries.iter().filter(|e| filter.matches(e)).collect();
    let skip = limit.map_or(0, |n| shown.len().saturating_sub(n));
    let mut out = io::stdout().lock();
    for e in &shown[skip..] {
        if a.json {
            writeln!(out, "{}", to_json(e, tz))?;
        } else {
            writeln!(out, "{}", format_text(e, tz, a.output, Color::for_stdout()))?;
        }
    }
    out.flush()
}

/// One JSON line per damaged place, shaped like a record line enough for line-by-line
/// consumers: `{"kind": "damage", "offset": N, "bytes": N, "message": "..."}`.
pub fn damage_json(offset: u64, bytes: u64, message: &str) -> serde_json::Value {
    serde_json::json!({ "kind": "damage", "offset": offset, "bytes": bytes, "message": message })
}

/// Says what the reader had to skip: always on stderr, and with `--json` as `damage` lines on
/// stdout too (left out when `--kind` asks for one kind of record).
fn report_damage(
    path: &Path,
    damage: &[ring::Damage],
    bad_header: Option<&RingError>,
    filter: &Filter,
    a: &LogsArgs,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let json = a.json && filter.kind.is_none();
    if let Some(e) = bad_header {
        let what = format!("damaged header ({e}); records read by the file's length");
        eprintln!("runner logs: {}: {what}", path.display());
        if json {
            writeln!(out, "{}", damage_json(0, ring::HEADER_SIZE, &what))?;
        }
    }
    if !damage.is_empty() {
        eprintln!("runner logs: {}: {}", path.display(), ring::describe_damage(damage));
        if json {
            for d in damage {
                let what = format!("{} damaged bytes skipped at offset {}", d.len, d.offset);
                writeln!(out, "{}", damage_json(d.offset, d.len, &what))?;
            }
        }
    }
    out.flush()
}

fn print_once(path: &Path, filter: &Filter, limit: Option<usize>, a: &LogsArgs, tz: &TimeZone) -> Result<(), Failure> {
    match ring::read_log(path) {
        Ok(log) => {
            report_damage(path, &log.damage, log.bad_header.as_ref(), filter, a)?;
            Ok(print(&log.entries, filter, limit, a, tz)?)
        }
        Err(RingError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {
            eprintln!("runner logs: no run log at {} yet; it is created with the first record", path.display());
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// `-f`: print the last records, then new ones as inotify reports writes. The file may not
/// exist yet (waits for it in its directory) and may be replaced (follows the new one).
fn follow(path: &Path, filter: &Filter, limit: Option<usize>, a: &LogsArgs, tz: &TimeZone) -> Result<(), Failure> {
    let ino = Inotify::init(InitFlags::IN_CLOEXEC).map_err(io::Error::from)?;
    let mut follower = Follower::default();
    let mut first = true;
    loop {
        wait_for_file(&ino, path)?;
        let watch = ino
            .add_watch(
                path,
                AddWatchFlags::IN_MODIFY
                    | AddWatchFlags::IN_CLOSE_WRITE
                    | AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_MOVE_SELF,
            )
            .map_err(io::Error::from)?;
        let mut gone = false;
        while !gone {
            let batch = follower.poll(path)?;
            report_damage(path, &batch.damage, batch.bad_header.as_ref(), filter, a)?;
            if batch.lost > 0 {
                eprintln!("runner logs: {} record(s) were overwritten before they could be read", batch.lost);
            }
            print(&batch.entries, filter, if first { limit } else { None }, a, tz)?;
            first = false;
            for ev in ino.read_events().map_err(io::Error::from)? {
                if ev.wd == watch && ev.mask.intersects(AddWatchFlags::IN_DELETE_SELF | AddWatchFlags::IN_MOVE_SELF) {
                    gone = true;
                }
            }
        }
        let _ = ino.rm_watch(watch);
    }
}

/// Blocks until `path` exists, watching the deepest of its directories that exists (the
/// state directory itself may not be there before the first record).
fn wait_for_file(ino: &Inotify, path: &Path) -> io::Result<()> {
    let deepest = || -> PathBuf {
        let mut d = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        while !d.exists() && d.pop() {}
        d
    };
    while !path.exists() {
        let dir = deepest();
        let w = ino.add_watch(&dir, AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)?;
        // Re-check after the watch is in place: what appeared before it would not wake us.
        if !path.exists() && deepest() == dir {
            ino.read_events()?;
        }
        let _ = ino.rm_watch(w);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let now: Timestamp = "2026-03-29T12:00:00Z".parse().unwrap();
        let p = |s: &str| parse_time(s, now, &tz).unwrap().to_string();
        assert_eq!(p("-1h"), "2026-03-29T11:00:00Z");
        assert_eq!(p("+30m"), "2026-03-29T12:30:00Z");
        assert_eq!(p("now"), "2026-03-29T12:00:00Z");
        assert_eq!(p("today"), "2026-03-28T23:00:00Z");
        assert_eq!(p("yesterday"), "2026-03-27T23:00:00Z");
        assert_eq!(p("2026-03-01T00:00:00+01:00"), "2026-02-28T23:00:00Z");
        assert_eq!(p("2026-03-01 10:00"), "2026-03-01T09:00:00Z");
        assert_eq!(p("2026-03-01"), "2026-02-28T23:00:00Z");
        assert!(parse_time("soon", now, &tz).unwrap_err().contains("RFC 3339"));
        assert!(parse_time("-1 fortnight", now, &tz).is_err());
    }
}

/// A sample for people: at most six significant digits, no trailing zeros.
fn format_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    // 3 - floor(log10(|v|)), clamped to 0..=6, by comparison: `log10` was the binary's only
    // libm symbol, and linking libm.so maps it into every runner process (300 KiB of RSS).
    let a = v.abs();
    let decimals = [1000.0, 100.0, 10.0, 1.0, 0.1, 0.01].iter().take_while(|&&b| a < b).count();
    let s = format!("{v:.decimals$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod value_tests {
    use super::format_value;

    #[test]
    fn values_keep_four_significant_digits() {
        assert_eq!(format_value(34.13253807321395), "34.13");
        assert_eq!(format_value(16.0759), "16.08");
        assert_eq!(format_value(5000.0), "5000");
        assert_eq!(format_value(0.000123456789), "0.000123");
        assert_eq!(format_value(1234567890.0), "1234567890");
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(-2.5), "-2.5");
        assert_eq!(format_value(999.99), "1000");
        assert_eq!(format_value(0.001), "0.001");
        assert_eq!(format_value(0.0000001), "0");
        // Powers of ten and the values just below them fall in the right decade.
        assert_eq!(format_value(1000.0), "1000");
        assert_eq!(format_value(0.00099999), "0.001");
        assert_eq!(format_value(-42.123456), "-42.12");
    }
}
