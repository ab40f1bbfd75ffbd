//! Differential test: `runner calendar` (the real binary) against Python's croniter on
//! random cron expressions, start times and time zones, comparing the next 20 fire times.
//!
//! croniter runs in a venv under the target dir, created on first use and reused after
//! (tests/croniter_next.py is its side). Under CI a missing prerequisite (python3, venv,
//! pip) fails the test; elsewhere the test skips with a loud message.
//!
//! Knobs: RUNNER_CRONITER_CASES (default [`DEFAULT_CASES`]), RUNNER_CRONITER_SEED (default
//! fixed, so CI is reproducible; set it to explore), RUNNER_CRONITER_SHOW (how many
//! disagreements to print, default 20), RUNNER_CRONITER_SHOW_DST (how many cases that agree
//! only outside daylight-saving windows to print, default 0).
//!
//! Every place runner and croniter are allowed to differ is in [`DELIBERATE`], with its
//! reason; the generator and the comparison cite it by name. Nothing else is excluded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;

/// croniter and its dependencies, pinned so a new release cannot change the verdict.
const PIP_PINS: [&str; 3] = ["croniter==7.0.0", "python-dateutil==4.0.0", "tzdata==2026.6"];
const CRONITER_VERSION: &str = "7.0.0";
/// Measured in a debug build on 2 shared cores: 13 s with the venv in place, 17 s when the
/// test has to create it (pip from PyPI). About 1.7% of cases meet a daylight-saving window.
const DEFAULT_CASES: usize = 5000;
const DEFAULT_SEED: u64 = 0x5eed_c0de_2026;
const COUNT: usize = 20;

const ZONES: [&str; 5] = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo"];

/// The documented, deliberate differences between runner and croniter 7.0.0.
const DELIBERATE: [(&str, &str); 6] = [
    (
        "equal-range",
        "croniter deliberately reads a range whose ends are equal (`7-7`, `JAN-JAN`, `49-49/4`) as \
         the whole field; cronie, and runner, read it as that one value. Not generated.",
    ),
    (
        "full-day-field",
        "croniter treats a day-of-month or day-of-week field that lists every value (`1-31`, \
         `SUN-6`, `0,1-7`) like `*` for the OR rule, so `0 0 20 * 0-6` fires on the 20th only. \
         cronie, and runner, look at the text: only a field starting with `*` is unrestricted, so \
         that expression fires every day. Not generated when the other day field is restricted.",
    ),
    (
        "last-weekday-syntax",
        "runner (as Quartz) writes the last Friday of a month `5L`, croniter writes `L5`. \
         Generated as `5L` for runner and rewritten to `L5` for croniter; the schedules are compared.",
    ),
    (
        "nth-weekday-with-day-of-month",
        "croniter cannot OR `#` with a restricted day-of-month (`0 0 1,15 * 5#2` raises \
         'failed to find next date'); cronie has no `#` at all. Not generated: `#` and `L` in \
         day-of-week only with day-of-month `*`, and alone in their field (croniter refuses \
         `1,5#2`).",
    ),
    (
        "dst-fixed-time",
        "cronie, and runner, run a fixed-time job (minute and hour not starting with `*`) once \
         when its wall-clock time repeats at a fall-back, on the first pass, and once at the \
         first instant after a spring-forward gap that skips it. croniter fires such a job in both \
         passes of a repeated hour, and moves each skipped time forward by whole minutes, keeping \
         its seconds (02:22:30 in a 02:00-02:30 gap becomes 02:30:30). Compared outside \
         `dst_window` only.",
    ),
    (
        "dst-wildcard",
        "cronie, and runner, skip the times of a wildcard job (minute or hour starting with `*`) \
         that fall in a spring-forward gap. croniter skips them only when the hour field is \
         exactly `*`; for `*/2` hours, or `*/4` minutes with a listed hour, it moves them to the \
         end of the gap. (In repeated hours croniter and cronie agree: wildcard jobs fire in \
         both passes.) Compared outside `dst_window` only.",
    ),
];

/// splitmix64: small, seedable, good enough to pick cron fields.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.next() as usize % xs.len()]
    }
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];

/// One field's bounds and names (`names[v - lo]`).
#[derive(Clone, Copy)]
struct Spec {
    lo: i64,
    hi: i64,
    names: Option<&'static [&'static str]>,
}

const SECOND: Spec = Spec { lo: 0, hi: 59, names: None };
const MINUTE: Spec = Spec { lo: 0, hi: 59, names: None };
const HOUR: Spec = Spec { lo: 0, hi: 23, names: None };
const DOM: Spec = Spec { lo: 1, hi: 31, names: None };
const MONTH: Spec = Spec { lo: 1, hi: 12, names: Some(&MONTHS) };
const DOW: Spec = Spec { lo: 0, hi: 7, names: Some(&DAYS) };

fn value(rng: &mut Rng, s: Spec, v: i64) -> String {
    match s.names {
        Some(names) if rng.percent(30) => names[(v - s.lo) as usize].to_string(),
        _ => v.to_string(),
    }
}

fn step(rng: &mut Rng, s: Spec) -> i64 {
    if rng.percent(70) { rng.int(1, 6.min(s.hi - s.lo)) } else { rng.int(1, s.hi - s.lo) }
}

/// A list element: a value, a range, a stepped range, or (rarely, as cronie allows) `*/N`;
/// with the values it covers.
fn element(rng: &mut Rng, s: Spec) -> (String, Vec<i64>) {
    match rng.int(0, 9) {
        0..=4 => {
            let v = rng.int(s.lo, s.hi);
            (value(rng, s, v), vec![v])
        }
        kind @ 5..=8 => {
            // Never `a-a`: (DELIBERATE: equal-range).
            let a = rng.int(s.lo, s.hi - 1);
            let b = rng.int(a + 1, s.hi);
            let range = format!("{}-{}", value(rng, s, a), value(rng, s, b));
            if kind == 8 {
                let n = step(rng, s);
                (format!("{range}/{n}"), (a..=b).step_by(n as usize).collect())
            } else {
                (range, (a..=b).collect())
            }
        }
        _ => {
            let n = step(rng, s);
            (format!("*/{n}"), (s.lo..=s.hi).step_by(n as usize).collect())
        }
    }
}

/// A field, and whether it covers every value of its range (Sunday counted once).
fn field(rng: &mut Rng, s: Spec, star_percent: u64) -> (String, bool) {
    if rng.percent(star_percent) {
        return ("*".into(), true);
    }
    let (text, values): (String, Vec<i64>) = if rng.percent(20) {
        let n = step(rng, s);
        (format!("*/{n}"), (s.lo..=s.hi).step_by(n as usize).collect())
    } else {
        let n = rng.pick(&[1, 1, 1, 2, 2, 3]);
        let parts: Vec<_> = (0..n).map(|_| element(rng, s)).collect();
        (
            parts.iter().map(|p| p.0.as_str()).collect::<Vec<_>>().join(","),
            parts.into_iter().flat_map(|p| p.1).collect(),
        )
    };
    let hi = if s.names == DOW.names { 6 } else { s.hi };
    let all = (s.lo..=hi).all(|v| values.contains(&v) || (hi == 6 && v == 0 && values.contains(&7)));
    (text, all)
}

/// An expression as runner reads it and as croniter reads it (they differ only where
/// [`DELIBERATE`] says so).
struct Expr {
    runner: String,
    croniter: String,
}

fn expression(rng: &mut Rng, transition_hour: Option<i64>) -> Expr {
    if rng.percent(4) {
        let m = rng.pick(&["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]);
        return Expr { runner: m.into(), croniter: m.into() };
    }
    let seconds = rng.percent(20).then(|| field(rng, SECOND, 30).0);
    let minute = field(rng, MINUTE, 25).0;
    // Near a daylight-saving change, often aim the hour field at it.
    let hour = match transition_hour {
        Some(h) if rng.percent(60) => match rng.int(0, 3) {
            0 => h.to_string(),
            1 => format!("{}-{}", (h - 1).max(0), (h + 1).min(23)),
            2 => format!("{},{}", h, rng.int(0, 23)),
            _ if h < 23 => format!("{h}-23/{}", rng.int(1, 4)),
            _ => format!("*/{}", rng.int(1, 4)),
        },
        _ => field(rng, HOUR, 35).0,
    };
    let month = field(rng, MONTH, 60).0;
    let (mut dom, mut dow);
    loop {
        let (dom_all, dow_all);
        (dom, dom_all) = field(rng, DOM, 55);
        (dow, dow_all) = field(rng, DOW, 55);
        let restricted = |f: &str| !f.starts_with('*');
        // (DELIBERATE: full-day-field): both restricted, one of them listing every value.
        if !(restricted(&dom) && restricted(&dow) && (dom_all || dow_all)) {
            break;
        }
    }
    let mut dow_croniter = dow.clone();
    if rng.percent(6) {
        // (DELIBERATE: nth-weekday-with-day-of-month): alone in their field, day-of-month `*`.
        dom = "*".into();
        let d = rng.int(0, 6);
        if rng.percent(50) {
            dow = format!("{d}#{}", rng.int(1, 5));
            dow_croniter = dow.clone();
        } else {
            // (DELIBERATE: last-weekday-syntax)
            dow = format!("{d}L");
            dow_croniter = format!("L{d}");
        }
    } else if rng.percent(3) {
        dom = "L".into();
    }
    let head = match &seconds {
        Some(s) => format!("{s} {minute} {hour}"),
        None => format!("{minute} {hour}"),
    };
    Expr { runner: format!("{head} {dom} {month} {dow}"), croniter: format!("{head} {dom} {month} {dow_croniter}") }
}

struct Case {
    expr: Expr,
    from: jiff::Timestamp,
    tz: &'static str,
}

fn case(rng: &mut Rng) -> Case {
    let tz_name = rng.pick(&ZONES);
    let tz = jiff::tz::TimeZone::get(tz_name).expect("zone in the system tzdata");
    let year_start = |y: i16| jiff::civil::date(y, 1, 1).at(0, 0, 0, 0).to_zoned(tz.clone()).unwrap().timestamp();
    let (from, transition_hour) = if tz_name != "UTC" && rng.percent(60) {
        // Just before a transition in a random year (Sao Paulo stopped DST in 2019).
        let year = rng.int(2001, if tz_name == "America/Sao_Paulo" { 2018 } else { 2037 }) as i16;
        let mut transitions = tz.following(year_start(year));
        let mut t = transitions.next().expect("a DST zone has transitions").timestamp();
        if rng.percent(50) {
            t = transitions.next().expect("two transitions a year").timestamp();
        }
        let hour = t.to_zoned(tz.clone()).hour() as i64;
        let before = jiff::SignedDuration::from_secs(rng.int(0, 36 * 3600));
        (t.checked_sub(before).unwrap(), Some(hour))
    } else {
        let lo = year_start(2000).as_second();
        let hi = year_start(2038).as_second();
        (jiff::Timestamp::from_second(rng.int(lo, hi)).unwrap(), None)
    };
    // Half the starts on a whole minute, where "strictly after" matters most.
    let from = if rng.percent(50) {
        from.checked_sub(jiff::SignedDuration::from_secs(from.as_second() % 60)).unwrap()
    } else {
        from
    };
    Case { expr: expression(rng, transition_hour), from, tz: tz_name }
}

/// Fire times, or the tool's error.
type Answer = Result<Vec<String>, String>;

fn run_runner(c: &Case) -> Answer {
    let o = Command::new(common::BIN)
        .args(["calendar", &c.expr.runner, "--count", &COUNT.to_string(), "--tz", c.tz])
        .arg("--from")
        .arg(c.from.to_string())
        .output()
        .expect("runner runs");
    if o.status.success() {
        Ok(common::stdout(&o).lines().map(str::to_string).collect())
    } else {
        Err(common::stderr(&o).trim().to_string())
    }
}

fn run_runner_all(cases: &[Case]) -> Vec<Answer> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 4);
    let chunk = cases.len().div_ceil(workers).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> =
            cases.chunks(chunk).map(|part| s.spawn(move || part.iter().map(run_runner).collect::<Vec<_>>())).collect();
        handles.into_iter().flat_map(|h| h.join().expect("runner worker")).collect()
    })
}

fn run_croniter_all(python: &Path, cases: &[Case]) -> Vec<Answer> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/croniter_next.py");
    let mut child = Command::new(python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the venv's python runs");
    let mut input = String::new();
    for c in cases {
        let line = serde_json::json!({"expr": c.expr.croniter, "from": c.from.to_string(), "tz": c.tz, "count": COUNT});
        input.push_str(&line.to_string());
        input.push('\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().expect("feeding croniter_next.py");
    assert!(out.status.success(), "croniter_next.py failed: {:?}", out.status);
    let answers: Vec<Answer> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("croniter_next.py writes JSON");
            match v.get("times") {
                Some(t) => Ok(t.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()),
                None => Err(v["error"].as_str().unwrap_or("?").to_string()),
            }
        })
        .collect();
    assert_eq!(answers.len(), cases.len(), "croniter_next.py answered every case");
    answers
}

/// Whether a fire time is one the daylight-saving rules treat specially in `tz`: its wall
/// clock is repeated or skipped (croniter may print a skipped one), or it lies in the first
/// minute after a gap (runner puts a skipped fixed time at the gap's end; croniter moves it
/// forward by whole minutes, keeping its seconds). (DELIBERATE: dst-fixed-time, dst-wildcard)
fn dst_window(tz: &jiff::tz::TimeZone, rfc3339: &str) -> bool {
    use jiff::tz::AmbiguousOffset;
    let t: jiff::Timestamp = rfc3339.parse().unwrap();
    let dt: jiff::civil::DateTime = rfc3339[..19].parse().unwrap();
    if !matches!(tz.to_ambiguous_zoned(dt).offset(), AmbiguousOffset::Unambiguous { .. }) {
        return true;
    }
    let second = jiff::SignedDuration::from_secs(1);
    let Some(change) = tz.preceding(t.checked_add(second).unwrap()).next() else { return false };
    let gap_ended = change.offset() > tz.to_offset(change.timestamp().checked_sub(second).unwrap());
    gap_ended && t.duration_since(change.timestamp()) < jiff::SignedDuration::from_secs(60)
}

/// Compares two lists of fire times, ignoring the ones in a daylight-saving window. Both
/// lists are cut at the earlier of their last times, so a time one list dropped does not
/// make the other one look longer.
fn agree(tz_name: &str, ours: &[String], theirs: &[String]) -> (bool, bool) {
    if ours == theirs {
        return (true, false);
    }
    let tz = jiff::tz::TimeZone::get(tz_name).unwrap();
    let key = |s: &String| s.parse::<jiff::Timestamp>().unwrap();
    let horizon = match (ours.last(), theirs.last()) {
        (Some(a), Some(b)) => key(a).min(key(b)),
        _ => return (false, false),
    };
    let keep = |v: &[String]| -> Vec<String> {
        v.iter().filter(|s| key(s) <= horizon && !dst_window(&tz, s)).cloned().collect()
    };
    (keep(ours) == keep(theirs), true)
}

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The venv's python with croniter installed, creating the venv if needed.
fn croniter_python() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/croniter_next.py");
    common::python_venv("croniter-venv", &PIP_PINS, |python| {
        Command::new(python)
            .arg(&script)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == CRONITER_VERSION)
    })
}

#[test]
fn runner_agrees_with_croniter() {
    let python = match croniter_python() {
        Ok(p) => p,
        Err(e) => {
            common::skip_missing(&format!("croniter in a venv: {e}"));
            return;
        }
    };
    let n = env_num("RUNNER_CRONITER_CASES", DEFAULT_CASES as u64) as usize;
    let seed = env_num("RUNNER_CRONITER_SEED", DEFAULT_SEED);
    let show = env_num("RUNNER_CRONITER_SHOW", 20) as usize;
    let show_dst = env_num("RUNNER_CRONITER_SHOW_DST", 0) as usize;
    let mut rng = Rng(seed);
    let cases: Vec<Case> = (0..n).map(|_| case(&mut rng)).collect();

    let started = std::time::Instant::now();
    let theirs = run_croniter_all(&python, &cases);
    let croniter_time = started.elapsed();
    let ours = run_runner_all(&cases);
    let total_time = started.elapsed();

    let (mut same, mut dst_excused, mut both_refused) = (0, 0, 0);
    let mut bad = Vec::new();
    for ((c, o), t) in cases.iter().zip(&ours).zip(&theirs) {
        match (o, t) {
            (Ok(o), Ok(t)) => match agree(c.tz, o, t) {
                (true, false) => same += 1,
                (true, true) => {
                    dst_excused += 1;
                    if dst_excused <= show_dst {
                        eprintln!(
                            "equal outside daylight-saving windows: runner calendar '{}' --from {} --tz {} (croniter: '{}')\n  runner:   {o:?}\n  croniter: {t:?}",
                            c.expr.runner, c.from, c.tz, c.expr.croniter
                        );
                    }
                }
                _ => bad.push((c, format!("runner:   {o:?}\ncroniter: {t:?}"))),
            },
            // An expression that never fires: runner refuses it, croniter gives up.
            (Err(o), Err(e)) if o.contains("it never fires") && e.contains("failed to find next date") => {
                both_refused += 1
            }
            (o, t) => bad.push((c, format!("runner:   {o:?}\ncroniter: {t:?}"))),
        }
    }
    eprintln!(
        "croniter comparison: {n} cases (seed {seed:#x}), {same} identical, {dst_excused} equal outside \
         daylight-saving windows, {both_refused} never fire; {} differ. croniter {:.1?}, total {:.1?}",
        bad.len(),
        croniter_time,
        total_time
    );
    eprintln!("deliberate differences, excluded as documented in this file:");
    for (name, why) in DELIBERATE {
        eprintln!("  {name}: {why}");
    }
    for (c, what) in bad.iter().take(show) {
        eprintln!(
            "\nrunner calendar '{}' --from {} --tz {} --count {COUNT}   (croniter: '{}')\n{what}",
            c.expr.runner, c.from, c.tz, c.expr.croniter
        );
    }
    assert!(bad.is_empty(), "{} of {n} cases differ from croniter (seed {seed:#x}); see above", bad.len());
}
