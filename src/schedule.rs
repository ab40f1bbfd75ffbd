//! When a job is due: cron expressions (5 or 6 fields, crontab semantics), `@macros`,
//! `@reboot` and fixed intervals.
//!
//! Pure: every function takes the time it reasons about as an argument and never reads a
//! clock, so the daemon, `runner calendar` and the tests all ask the same questions.
//! It does not know about jobs, state or timers; the scheduler does.
//!
//! Semantics are Vixie cron's as cronie has them. croner parses the fields; this module keeps
//! what it parsed as bitmasks ([`CronExpr`] holds no croner `Cron`), searches them for the
//! next matching wall-clock time itself (held to croner's answers by a differential test),
//! and adds what croner does differently:
//! - Day of month and day of week: when both are restricted a day matches if either does,
//!   but a field that *starts* with `*` (`*`, `*/2`) counts as unrestricted, so `*/2` with
//!   `MON` means odd days that are Mondays (cronie's `DOM_STAR`/`DOW_STAR`). croner only
//!   treats a bare `*` that way.
//! - Names: `JAN`-`DEC` only in the month field, `SUN`-`SAT` only in the day-of-week field
//!   (croner replaces them anywhere in the line). `@midnight` is `@daily`, as in cronie.
//! - Daylight saving time, as cronie's main loop does it. A job is *fixed-time* when neither
//!   its minute nor its hour field starts with `*`, otherwise it is a *wildcard* job. A fixed
//!   time that a spring-forward gap skips fires once, at the first instant after the gap; a
//!   wildcard job just misses the times in the gap. A wall-clock time that a fall-back
//!   repeats fires once (the first time) for a fixed-time job and both times for a wildcard
//!   job. croner decides "fixed" differently (one value in each of second, minute and hour),
//!   so the mapping from wall clock to instants is done here, not by croner.
//!
//! - Lists: `*` (or `*/N`) may be one element of a list (`*,0`), and in the day-of-week
//!   field a range may end in 0 for Sunday (`SAT-0` is `SAT-7`), as cronie's `get_range`
//!   allows.
//! - An expression that never fires (`* * 31 2 *`) is refused, as is a bare `L` in the
//!   day-of-week field (croner's "last day of the week" never fires; Quartz reads Saturday).
//!
//! Extensions beyond cronie, from croner: `L` (last day of month, `5L` last Friday), `#`
//! (`1#2` second Monday), `W`, `?`, and a leading seconds field in 6-field expressions.
//! cronie syntax refused: `~` (a random value chosen at load), and a range end of 0
//! outside the day-of-week field (cronie reads hours `3-0` as 3-7).

use std::fmt;
use std::time::Duration;

#[cfg(test)]
use croner::parser::{CronParser, Seconds, Year};
#[cfg(test)]
use croner::{Cron, CronComponent};
use jiff::Zoned;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use runner_cron::DayRule;

/// A parsed cron expression, kept with the text the user wrote so errors and `list` can
/// show it back verbatim.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    /// What croner parsed, as bitmasks. Not croner's `Cron`: that keeps a byte for every
    /// year up to 9999 (about 10 KB a job) although runner allows no year field.
    fields: Fields,
    /// Neither the minute nor the hour field starts with `*`: cronie's test for a job at a
    /// fixed local time, which decides what happens at daylight-saving changes.
    fixed_time: bool,
}

impl fmt::Debug for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronExpr({:?})", self.text)
    }
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

#[cfg(test)]
/// cronie's macros, as 5-field expressions.
const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

#[cfg(test)]
const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
#[cfg(test)]
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

#[cfg(test)]
/// Which field of a crontab line, for names and error messages.
#[derive(Clone, Copy, PartialEq)]
enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

#[cfg(test)]
impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }
}

#[cfg(test)]
/// Replaces month and weekday names with numbers in the one field that takes them, so
/// croner (which replaces names anywhere in the line) never sees a name. `L` and `W` pass
/// through for croner to judge. A `SUN` that ends a range is 7, so `FRI-SUN` is 5-7.
fn replace_names(field: &str, which: Field) -> Result<String, String> {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic()) {
        out.push_str(&rest[..start]);
        let len = rest[start..].find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len() - start);
        let word = rest[start..start + len].to_ascii_uppercase();
        let names: &[&str] = match which {
            Field::Month => &MONTHS,
            Field::DayOfWeek => &DAYS,
            _ => &[],
        };
        let base = if which == Field::Month { 1 } else { 0 };
        match names.iter().position(|n| *n == word) {
            Some(0) if which == Field::DayOfWeek && out.ends_with('-') => out.push('7'),
            Some(i) => out.push_str(&(i + base).to_string()),
            // croner reads a bare `L` here as "last day of the week" and never fires; Quartz
            // reads it as Saturday. Neither is cron's, so it is refused.
            None if which == Field::DayOfWeek && word == "L" && !out.ends_with(|c: char| c.is_ascii_digit()) => {
                return Err("a bare `L` in the day-of-week field never fires; write `SAT` (or 6) for Saturdays, or `5L` for the last Friday of the month".into());
            }
            None if matches!(word.as_str(), "L" | "W" | "LW") => out.push_str(&word),
            None => {
                let hint = match which {
                    Field::Month => "; month names are JAN-DEC",
                    Field::DayOfWeek => "; day names are SUN-SAT",
                    _ => "; names are only for the month (JAN-DEC) and day-of-week (SUN-SAT) fields",
                };
                return Err(format!(
                    "unknown name `{}` in the {} field{hint}",
                    &rest[start..start + len],
                    which.name()
                ));
            }
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
/// What cronie takes in a list that croner does not: `*` (or `*/N`) as one element of a
/// list (`*,0`), and, in the day-of-week field, a range that ends in 0 for Sunday
/// (`6-0` is `6-7`). Runs after [`replace_names`], on numbers only.
fn cronie_lists(field: &str, which: Field) -> String {
    let (lo, hi) = match which {
        Field::Second | Field::Minute => (0, 59),
        Field::Hour => (0, 23),
        Field::DayOfMonth => (1, 31),
        Field::Month => (1, 12),
        Field::DayOfWeek => (0, 6),
    };
    let several = field.contains(',');
    field
        .split(',')
        .map(|elem| {
            if several && (elem == "*" || elem.starts_with("*/")) {
                return format!("{lo}-{hi}{}", &elem[1..]);
            }
            if which == Field::DayOfWeek
                && let Some((a, "0")) = elem.split_once('-')
                && a.parse::<u32>().is_ok_and(|a| a > 0)
            {
                return format!("{a}-7");
            }
            elem.to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
// croner's bit flags per field value (`croner/src/component.rs`, not exported). The
// differential test below fails if they ever mean something else.
const ALL_BIT: u8 = 1;
#[cfg(test)]
const NTH_BITS: [u8; 5] = [1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5];
#[cfg(test)]
const LAST_BIT: u8 = 1 << 6;
#[cfg(test)]
const CLOSEST_WEEKDAY_BIT: u8 = 1 << 7;

/// A parsed expression as bitmasks, 40 bytes: bit N of a field is set when value N
/// matches. What runner-cron parsed (crates/cron), less what only parsing needs; this only
/// answers "when next".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fields {
    seconds: u64,
    minutes: u64,
    hours: u32,
    /// Days of the month, bits 1 to 31.
    days: u32,
    /// `NW`: bit N set for the weekday nearest day N, within its month.
    nearest_weekday: u32,
    /// Months, bits 1 to 12.
    months: u16,
    /// Weekdays (bit 0 Sunday) that match in every week.
    weekdays: u8,
    /// `D#N`: `nth[N - 1]` has bit D set for the Nth weekday D of the month.
    nth: [u8; 5],
    /// `DL`: bit D set for the last weekday D of the month.
    last_weekday: u8,
    /// `L`: the month's last day.
    last_day: bool,
    /// `LW`: the month's last weekday (Monday to Friday).
    last_workday: bool,
    rule: DayRule,
}

impl Fields {
    #[cfg(test)]
    fn from_croner(cron: &Cron) -> Fields {
        let p = &cron.pattern;
        let bits = |c: &CronComponent, lo: u16, hi: u16, bit: u8| -> u64 {
            (lo..=hi).filter(|&v| c.is_bit_set(v, bit).unwrap_or(false)).fold(0, |m, v| m | 1 << v)
        };
        // croner has already moved a Sunday written as 7 to 0.
        let weekdays = |bit: u8| bits(&p.days_of_week, 0, 6, bit) as u8;
        let (last, closest) = (p.days.is_feature_enabled(LAST_BIT), p.days.is_feature_enabled(CLOSEST_WEEKDAY_BIT));
        let rule = if p.is_dow_wildcard() {
            DayRule::DayOfMonth
        } else if p.is_dom_wildcard() {
            DayRule::DayOfWeek
        } else if p.matches_dom_and_dow() {
            DayRule::Both
        } else {
            DayRule::Either
        };
        Fields {
            seconds: bits(&p.seconds, 0, 59, ALL_BIT),
            minutes: bits(&p.minutes, 0, 59, ALL_BIT),
            hours: bits(&p.hours, 0, 23, ALL_BIT) as u32,
            days: bits(&p.days, 1, 31, ALL_BIT) as u32,
            nearest_weekday: bits(&p.days, 1, 31, CLOSEST_WEEKDAY_BIT) as u32,
            months: bits(&p.months, 1, 12, ALL_BIT) as u16,
            weekdays: weekdays(ALL_BIT),
            nth: NTH_BITS.map(weekdays),
            last_weekday: weekdays(LAST_BIT),
            last_day: last && !closest,
            last_workday: last && closest,
            rule,
        }
    }

    fn from_pattern(p: &runner_cron::Pattern) -> Fields {
        Fields {
            seconds: p.seconds,
            minutes: p.minutes,
            hours: p.hours,
            days: p.days,
            nearest_weekday: p.nearest_weekday,
            months: p.months,
            weekdays: p.weekdays,
            nth: p.nth,
            last_weekday: p.last_weekday,
            last_day: p.last_day,
            last_workday: p.last_workday,
            rule: p.rule,
        }
    }

    /// The days of `month` that match, as bits 1 to 31: croner's `day_match`, for a whole
    /// month at once.
    fn days_of(&self, year: i16, month: i8) -> u32 {
        let Ok(first) = Date::new(year, month, 1) else {
            return 0;
        };
        let len = first.days_in_month() as u32;
        let wd1 = first.weekday().to_sunday_zero_offset() as u32;
        let weekday = |day: u32| (wd1 + day - 1) % 7;
        let in_month = ((1u64 << (len + 1)) - 2) as u32;

        let mut dom = self.days & in_month;
        if self.last_day {
            dom |= 1 << len;
        }
        if self.last_workday {
            // Saturday and Sunday step back to Friday.
            dom |= 1
                << match weekday(len) {
                    6 => len - 1,
                    0 => len - 2,
                    _ => len,
                };
        }
        let mut w = self.nearest_weekday & in_month;
        while w != 0 {
            let day = w.trailing_zeros();
            w &= w - 1;
            // Never out of the month: a Saturday 1st goes to Monday 3rd, a Sunday last day
            // back to Friday.
            dom |= 1
                << match weekday(day) {
                    6 if day > 1 => day - 1,
                    6 => day + 2,
                    0 if day < len => day + 1,
                    0 => day - 2,
                    _ => day,
                };
        }
        if self.rule == DayRule::DayOfMonth {
            return dom;
        }
        let mut dow = 0u32;
        for day in 1..=len {
            let bit = 1u8 << weekday(day);
            let nth = self.nth[((day - 1) / 7) as usize];
            if (self.weekdays | nth) & bit != 0 || (self.last_weekday & bit != 0 && day + 7 > len) {
                dow |= 1 << day;
            }
        }
        match self.rule {
            DayRule::DayOfMonth => dom,
            DayRule::DayOfWeek => dow,
            DayRule::Either => dom | dow,
            DayRule::Both => dom & dow,
        }
    }

    /// The first matching time of day at or after `h:m:s`, if that day has one.
    fn time_from(&self, (h, m, s): (u32, u32, u32)) -> Option<(u32, u32, u32)> {
        fn next(mask: u64, from: u32) -> Option<u32> {
            let rest = if from >= 64 { 0 } else { mask & (!0u64 << from) };
            (rest != 0).then(|| rest.trailing_zeros())
        }
        let first = |mask: u64| mask.trailing_zeros();
        if self.hours & (1 << h) != 0 {
            if self.minutes & (1 << m) != 0
                && let Some(s) = next(self.seconds, s)
            {
                return Some((h, m, s));
            }
            if let Some(m) = next(self.minutes, m + 1) {
                return Some((h, m, first(self.seconds)));
            }
        }
        next(self.hours as u64, h + 1).map(|h| (h, first(self.minutes), first(self.seconds)))
    }

    /// The first matching wall-clock second at or after `from`, looking at most 401 years
    /// ahead: the Gregorian calendar repeats every 400 years (146,097 days, exactly 20,871
    /// weeks), so a pattern with no match in that span has none at all. Allocates nothing.
    fn next_from(&self, from: DateTime) -> Option<DateTime> {
        let (mut year, mut month, mut day) = (from.year(), from.month(), from.day() as u32);
        let mut time = (from.hour() as u32, from.minute() as u32, from.second() as u32);
        let last_year = year.saturating_add(401);
        loop {
            if self.months & (1 << month) != 0 {
                let mut days = self.days_of(year, month) & !((1u32 << day) - 1);
                while days != 0 {
                    let d = days.trailing_zeros();
                    days &= days - 1;
                    let from = if d == day { time } else { (0, 0, 0) };
                    if let Some((h, m, s)) = self.time_from(from) {
                        return DateTime::new(year, month, d as i8, h as i8, m as i8, s as i8, 0).ok();
                    }
                }
            }
            (day, time) = (1, (0, 0, 0));
            month += 1;
            if month > 12 {
                month = 1;
                year += 1;
                if year > last_year || year > 9999 {
                    return None;
                }
            }
        }
    }
}

/// Where the check for expressions that never fire (`* * 31 2 *`) starts: any instant
/// does, since [`Fields::next_from`] looks a whole 400-year Gregorian cycle ahead; a fixed
/// one, since schedule never reads the clock.
const NEVER_FIRES_FROM: DateTime = jiff::civil::datetime(2000, 1, 1, 0, 0, 0, 0);

#[cfg(test)]
/// The year field croner is given. `Fields` keeps no years, and croner's `*` sets a flag for
/// each of 5,000 years one at a time: most of what a parse cost (40 % of `runner check`
/// of 10,000 cron jobs, by perf).
const ONE_YEAR: &str = "2000";

impl CronExpr {
    #[cfg(test)]
    /// croner's parse of `text`, with cronie's rules applied around it (see the module
    /// comment), and `years` as croner's year field (runner's expressions have none): the
    /// trimmed text, croner's pattern and whether the job is fixed-time.
    fn parse_croner<'t>(text: &'t str, years: &str) -> Result<(&'t str, Cron, bool), String> {
        let t = text.trim();
        if t.is_empty() {
            return Err(
                "empty schedule; write a cron expression like \"*/5 * * * *\" or a macro like \"@daily\"".into()
            );
        }
        let expanded = if t.starts_with('@') {
            if t.eq_ignore_ascii_case("@reboot") {
                return Err("\"@reboot\" runs once at boot, not at a time of day, so it has no fire times".into());
            }
            match MACROS.iter().find(|(m, _)| m.eq_ignore_ascii_case(t)) {
                Some((_, e)) => *e,
                None => {
                    return Err(format!(
                        "unknown macro \"{t}\"; use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @reboot"
                    ));
                }
            }
        } else {
            t
        };
        let invalid = |msg: String| format!("invalid cron expression \"{t}\": {msg}");
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let kinds: &[Field] = match fields.len() {
            5 => &[Field::Minute, Field::Hour, Field::DayOfMonth, Field::Month, Field::DayOfWeek],
            6 => &[Field::Second, Field::Minute, Field::Hour, Field::DayOfMonth, Field::Month, Field::DayOfWeek],
            n => {
                return Err(invalid(format!(
                    "it has {n} field(s); write 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
                )));
            }
        };
        let fields: Vec<String> =
            fields.iter().zip(kinds).map(|(f, k)| replace_names(f, *k)).collect::<Result<_, _>>().map_err(invalid)?;
        let field =
            |k: Field| fields[kinds.iter().position(|x| *x == k).expect("every layout has this field")].as_str();
        let starred = |k: Field| field(k).starts_with('*') || field(k).starts_with('?');
        let fixed_time = !starred(Field::Minute) && !starred(Field::Hour);
        // croner ORs the two day fields unless one is a bare `*`; cronie ANDs them as soon as
        // either starts with `*`. With one of them all-`*` the AND is just the other field.
        let dom_and_dow = starred(Field::DayOfMonth) || starred(Field::DayOfWeek);
        let parser =
            CronParser::builder().seconds(Seconds::Optional).year(Year::Optional).dom_and_dow(dom_and_dow).build();
        // Always all seven fields, so croner reads the year we give it, never one of ours.
        let mut fields: Vec<String> = fields.iter().zip(kinds).map(|(f, k)| cronie_lists(f, *k)).collect();
        if fields.len() == 5 {
            fields.insert(0, "0".into());
        }
        fields.push(years.into());
        let cron = parser.parse(&fields.join(" ")).map_err(|e| invalid(describe_error(&e)))?;
        Ok((t, cron, fixed_time))
    }

    /// Parses a crontab line's time fields: 5 fields (minute first) or 6 (seconds first), or
    /// one of the `@yearly`-style macros. `@reboot` is not a time and is handled by
    /// [`Schedule::parse`].
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let pattern = runner_cron::parse(text).map_err(|e| e.to_string())?;
        let (t, fields, fixed_time) = (text.trim(), Fields::from_pattern(&pattern), pattern.fixed_time);
        if fields.next_from(NEVER_FIRES_FROM).is_none() {
            return Err(format!(
                "invalid cron expression \"{t}\": it never fires: no date matches its day-of-month, month and day-of-week fields (February has no 30th or 31st, April, June, September and November no 31st); fix the day or the month"
            ));
        }
        Ok(CronExpr { text: t.to_string(), fields, fixed_time })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first wall-clock second that matches, at or after `from` (`inclusive`) or
    /// strictly after it, on a clock without gaps or repeats; [`CronExpr::next_after`] maps
    /// the answer to the job's zone.
    fn next_civil(&self, from: DateTime, inclusive: bool) -> Option<DateTime> {
        let whole = from.with().subsec_nanosecond(0).build().ok()?;
        let start = if inclusive && whole == from {
            whole
        } else {
            whole.checked_add(jiff::SignedDuration::from_secs(1)).ok()?
        };
        self.fields.next_from(start)
    }

    /// The first fire time strictly after `after`, in `after`'s time zone, with cronie's
    /// handling of daylight-saving changes (see the module comment).
    pub fn next_after(&self, after: &Zoned) -> Option<Zoned> {
        let tz = after.time_zone();
        let now = after.timestamp();
        let civil = after.datetime().with().subsec_nanosecond(0).build().ok()?;
        if !self.fixed_time
            && let AmbiguousOffset::Fold { before, .. } = tz.to_ambiguous_zoned(civil).offset()
            && after.offset() == before
        {
            // On the first pass of a repeated range a wildcard job has the rest of this
            // pass ahead, then the second pass, which starts at an earlier wall-clock
            // time than `civil`.
            let change = tz.following(now).next()?.timestamp();
            let m = self.next_civil(civil, false)?;
            let first = before.to_timestamp(m).ok()?;
            if first < change {
                return Some(first.to_zoned(tz.clone()));
            }
            return self.scan(tz, now, change.to_zoned(tz.clone()).datetime(), true);
        }
        self.scan(tz, now, civil, false)
    }

    /// Walks the wall-clock matches from `from` in order and returns the first instant after
    /// `now` that one of them fires at in `tz`. Valid when no instant after `now` belongs to
    /// a wall-clock time before `from`.
    fn scan(&self, tz: &TimeZone, now: jiff::Timestamp, mut from: DateTime, mut inclusive: bool) -> Option<Zoned> {
        loop {
            let m = self.next_civil(from, inclusive)?;
            let fires = match tz.to_ambiguous_zoned(m).offset() {
                AmbiguousOffset::Unambiguous { offset } => Some(offset.to_timestamp(m).ok()?),
                // A fixed time the clock skips fires at the first instant after the gap: the
                // change itself. A wildcard job just misses it.
                AmbiguousOffset::Gap { after, .. } if self.fixed_time => {
                    Some(tz.following(after.to_timestamp(m).ok()?).next()?.timestamp())
                }
                AmbiguousOffset::Gap { .. } => None,
                // A repeated wall-clock time: a fixed-time job fires on the first pass only, a
                // wildcard job on both.
                AmbiguousOffset::Fold { before, after } => {
                    let first = before.to_timestamp(m).ok()?;
                    let second = after.to_timestamp(m).ok()?;
                    if first > now {
                        Some(first)
                    } else if !self.fixed_time {
                        Some(second)
                    } else {
                        None
                    }
                }
            };
            match fires {
                Some(t) if t > now => return Some(t.to_zoned(tz.clone())),
                _ => {
                    from = m;
                    inclusive = false;
                }
            }
        }
    }
}

#[cfg(test)]
fn describe_error(e: &croner::errors::CronError) -> String {
    let s = e.to_string();
    let s = s.strip_prefix("Component error: ").or_else(|| s.strip_prefix("component error: ")).unwrap_or(&s);
    // croner's messages start with a capital and end with a period; ours are clauses.
    let s = s.trim_end_matches('.');
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().collect::<String>() + c.as_str(),
        None => s.to_string(),
    }
}

/// How a job is scheduled. The time zone a cron expression is read in is the job's.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    Cron(CronExpr),
    /// Once per boot, not once per daemon start.
    Reboot,
    Every(Duration),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        if text.trim().eq_ignore_ascii_case("@reboot") {
            return Ok(Schedule::Reboot);
        }
        CronExpr::parse(text).map(Schedule::Cron)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron(c) => f.write_str(c.as_str()),
            Schedule::Reboot => f.write_str("@reboot"),
            Schedule::Every(d) => write!(f, "every {}", crate::time::format(*d)),
        }
    }
}

/// The next `count` fire times strictly after `from`, in `tz`: what `runner calendar` prints.
pub fn upcoming(expr: &CronExpr, from: &Zoned, tz: &TimeZone, count: usize) -> Vec<Zoned> {
    let mut out = Vec::with_capacity(count);
    let mut t = from.with_time_zone(tz.clone());
    while out.len() < count {
        match expr.next_after(&t) {
            Some(n) => {
                t = n.clone();
                out.push(n);
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Zoned {
        s.parse().unwrap()
    }

    #[test]
    fn five_fields_are_minute_first() {
        let e = CronExpr::parse("*/15 * * * *").unwrap();
        let n = e.next_after(&at("2026-01-01T00:07:00+00:00[UTC]")).unwrap();
        assert_eq!(n.to_string(), "2026-01-01T00:15:00+00:00[UTC]");
    }

    #[test]
    fn six_fields_are_seconds_first() {
        let e = CronExpr::parse("*/10 * * * * *").unwrap();
        let n = e.next_after(&at("2026-01-01T00:00:01+00:00[UTC]")).unwrap();
        assert_eq!(n.to_string(), "2026-01-01T00:00:10+00:00[UTC]");
    }

    #[test]
    fn wrong_field_counts_are_refused() {
        assert!(CronExpr::parse("* * * *").unwrap_err().contains("4 field(s)"));
        assert!(CronExpr::parse("0 0 0 1 1 * 2030").is_err());
        assert!(CronExpr::parse("").is_err());
    }

    /// The next `n` fire times after `from` in `tz`, as RFC 3339 with offset.
    fn fires(expr: &str, from: &str, tz: &str, n: usize) -> Vec<String> {
        let tz = TimeZone::get(tz).unwrap();
        let from = from.parse::<jiff::Timestamp>().unwrap().to_zoned(tz.clone());
        let e = CronExpr::parse(expr).unwrap();
        upcoming(&e, &from, &tz, n).iter().map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()).collect()
    }

    fn days(expr: &str, n: usize) -> Vec<String> {
        // 2026-01-01 is a Thursday.
        fires(expr, "2025-12-31T12:00:00Z", "UTC", n).iter().map(|s| s[..10].to_string()).collect()
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        assert_eq!(days("0 0 1,15 * MON", 4), ["2026-01-01", "2026-01-05", "2026-01-12", "2026-01-15"]);
        assert_eq!(days("0 0 1-31 * MON", 2), ["2026-01-01", "2026-01-02"]);
    }

    #[test]
    fn a_day_field_starting_with_star_means_both() {
        // cronie's DOM_STAR/DOW_STAR: `*/2` is not a restriction for the OR rule, so the two
        // fields are ANDed: odd days that are Mondays. croner alone would OR them.
        assert_eq!(days("0 0 */2 * 1", 3), ["2026-01-05", "2026-01-19", "2026-02-09"]);
        assert_eq!(days("0 0 1,15 * */7", 3), ["2026-02-01", "2026-02-15", "2026-03-01"]);
        assert_eq!(days("0 0 * * MON", 2), ["2026-01-05", "2026-01-12"]);
        assert_eq!(days("0 0 13 * *", 2), ["2026-01-13", "2026-02-13"]);
    }

    #[test]
    fn zero_and_seven_are_sunday() {
        assert_eq!(days("0 0 * * 0", 1), ["2026-01-04"]);
        assert_eq!(days("0 0 * * 7", 1), ["2026-01-04"]);
        assert_eq!(days("0 0 * * 5-7", 4), ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-09"]);
        assert_eq!(days("0 0 * * FRI-SUN", 4), ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-09"]);
        assert_eq!(days("0 0 * * */2", 4), ["2026-01-01", "2026-01-03", "2026-01-04", "2026-01-06"]);
    }

    #[test]
    fn names_only_in_their_fields() {
        assert_eq!(days("0 0 1 jan-Mar,DEC mon-fri", 2), ["2026-01-01", "2026-01-02"]);
        assert_eq!(days("0 0 * FEB SUN", 1), ["2026-02-01"]);
        let e = CronExpr::parse("0 0 * MON *").unwrap_err();
        assert_eq!(e, "month \"MON\" is a day name; month names are JAN-DEC (column 7 of \"0 0 * MON *\")");
        let e = CronExpr::parse("0 0 JAN * *").unwrap_err();
        assert!(e.contains("names are only for the month (JAN-DEC) and day-of-week (SUN-SAT) fields"), "{e}");
        assert!(CronExpr::parse("0 0 * * MONDAY").unwrap_err().contains("\"MONDAY\": did you mean MON?"));
    }

    #[test]
    fn macros_are_cronies() {
        let from = "2026-01-01T10:10:00Z";
        assert_eq!(fires("@hourly", from, "UTC", 1), ["2026-01-01T11:00:00+00:00"]);
        assert_eq!(fires("@daily", from, "UTC", 1), ["2026-01-02T00:00:00+00:00"]);
        assert_eq!(fires("@midnight", from, "UTC", 1), ["2026-01-02T00:00:00+00:00"]);
        assert_eq!(fires("@weekly", from, "UTC", 1), ["2026-01-04T00:00:00+00:00"]);
        assert_eq!(fires("@monthly", from, "UTC", 1), ["2026-02-01T00:00:00+00:00"]);
        assert_eq!(fires("@yearly", from, "UTC", 1), ["2027-01-01T00:00:00+00:00"]);
        assert_eq!(fires("@ANNUALLY", from, "UTC", 1), ["2027-01-01T00:00:00+00:00"]);
        assert!(CronExpr::parse("@fortnightly").unwrap_err().contains("unknown macro \"@fortnightly\""));
        assert!(CronExpr::parse("@reboot").unwrap_err().contains("runs once at boot"));
    }

    #[test]
    fn fixed_time_is_minute_and_hour_without_star() {
        let fixed = |e: &str| CronExpr::parse(e).unwrap().fixed_time;
        assert!(fixed("30 2 * * *"));
        assert!(fixed("0,30 1-3 * * *"));
        assert!(fixed("*/10 30 2 * * *"), "the seconds field does not count");
        assert!(fixed("@daily"));
        assert!(!fixed("30 * * * *"));
        assert!(!fixed("*/15 2 * * *"));
        assert!(!fixed("@hourly"));
    }

    // Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC);
    // 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
    const BERLIN: &str = "Europe/Berlin";

    #[test]
    fn a_fixed_time_in_the_gap_fires_once_right_after_it() {
        assert_eq!(
            fires("30 2 * * *", "2026-03-28T12:00:00Z", BERLIN, 2),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
        );
        // Several skipped times, and a regular time at the gap's end, make one run.
        assert_eq!(
            fires("0,30 2,3 * * *", "2026-03-28T23:00:00Z", BERLIN, 3),
            ["2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:00:00+02:00"]
        );
    }

    #[test]
    fn a_wildcard_job_misses_the_gap() {
        assert_eq!(
            fires("30 * * * *", "2026-03-29T00:00:00Z", BERLIN, 2),
            ["2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00"]
        );
        assert_eq!(fires("*/20 2 * * *", "2026-03-28T23:00:00Z", BERLIN, 1), ["2026-03-30T02:00:00+02:00"]);
    }

    #[test]
    fn a_repeated_fixed_time_fires_once() {
        assert_eq!(
            fires("30 2 * * *", "2026-10-24T12:00:00Z", BERLIN, 2),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
        // Asked from inside the second pass, it does not fire again.
        assert_eq!(fires("45 2 * * *", "2026-10-25T01:15:00Z", BERLIN, 1), ["2026-10-26T02:45:00+01:00"]);
    }

    #[test]
    fn a_wildcard_job_fires_in_both_passes() {
        assert_eq!(
            fires("30 * * * *", "2026-10-24T23:00:00Z", BERLIN, 4),
            [
                "2026-10-25T01:30:00+02:00",
                "2026-10-25T02:30:00+02:00",
                "2026-10-25T02:30:00+01:00",
                "2026-10-25T03:30:00+01:00"
            ]
        );
        // Starting inside the first pass: the rest of it, then the whole second pass.
        assert_eq!(
            fires("*/20 * * * *", "2026-10-25T00:30:00Z", BERLIN, 5),
            [
                "2026-10-25T02:40:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T02:20:00+01:00",
                "2026-10-25T02:40:00+01:00",
                "2026-10-25T03:00:00+01:00"
            ]
        );
        // Starting in the first pass after the job's last time there.
        assert_eq!(
            fires("10 * * * *", "2026-10-25T00:30:00Z", BERLIN, 2),
            ["2026-10-25T02:10:00+01:00", "2026-10-25T03:10:00+01:00"]
        );
    }

    #[test]
    fn half_hour_changes_work_too() {
        // Australia/Lord_Howe: 2026-10-04 02:00 -> 02:30 (+10:30 -> +11);
        // 2026-04-05 02:00 -> 01:30 (+11 -> +10:30).
        let lh = "Australia/Lord_Howe";
        assert_eq!(fires("15 2 * * *", "2026-10-03T00:00:00Z", lh, 1), ["2026-10-04T02:30:00+11:00"]);
        assert_eq!(
            fires("45 * * * *", "2026-04-04T13:00:00Z", lh, 3),
            ["2026-04-05T00:45:00+11:00", "2026-04-05T01:45:00+11:00", "2026-04-05T01:45:00+10:30"]
        );
    }

    #[test]
    fn seconds_and_sub_seconds() {
        assert_eq!(
            fires("*/20 * * * * *", "2026-01-01T00:00:20.5Z", "UTC", 2),
            ["2026-01-01T00:00:40+00:00", "2026-01-01T00:01:00+00:00"]
        );
    }

    #[test]
    fn reboot_is_ours() {
        assert_eq!(Schedule::parse("@reboot").unwrap(), Schedule::Reboot);
        assert!(matches!(Schedule::parse("@daily").unwrap(), Schedule::Cron(_)));
    }

    #[test]
    fn expressions_that_never_fire_are_refused() {
        for e in ["* * 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 FEB *"] {
            let err = CronExpr::parse(e).unwrap_err();
            assert!(err.contains("it never fires"), "{e}: {err}");
        }
        // Leap days and a 31st in some month of a list do fire.
        assert_eq!(days("0 0 29 2 *", 2), ["2028-02-29", "2032-02-29"]);
        assert!(CronExpr::parse("0 0 31 2,3 *").is_ok());
        // Leap days that are Sundays (`*/7` starts with `*`, so both fields must match).
        assert!(CronExpr::parse("0 0 29 2 */7").is_ok());
    }

    #[test]
    fn a_bare_l_in_the_day_of_week_field_is_refused() {
        let err = CronExpr::parse("0 0 * * L").unwrap_err();
        assert!(err.contains("write `SAT` (or 6) for Saturdays, or `5L`"), "{err}");
        assert!(CronExpr::parse("0 0 * * 1,L").is_err());
        assert_eq!(days("0 0 * * 5L", 1), ["2026-01-30"]);
        assert_eq!(days("0 0 L * *", 1), ["2026-01-31"]);
    }

    #[test]
    fn cronie_lists_and_sunday_range_ends() {
        // `sat-0` is `sat-7`: Saturday and Sunday.
        assert_eq!(days("0 0 * * sat-0", 3), ["2026-01-03", "2026-01-04", "2026-01-10"]);
        assert_eq!(days("0 0 * * 6-0", 3), ["2026-01-03", "2026-01-04", "2026-01-10"]);
        assert_eq!(days("0 0 * * 0-0", 2), ["2026-01-04", "2026-01-11"]);
        // `*` as one element of a list is every value, and still counts as a star for the
        // day-of-month/day-of-week rule (it starts the field).
        assert_eq!(days("0 0 * * *,0", 2), ["2026-01-01", "2026-01-02"]);
        assert_eq!(days("0 0 13 * *,0", 2), ["2026-01-13", "2026-02-13"]);
        assert_eq!(fires("*/30,5 0 * * *", "2026-01-01T00:00:00Z", "UTC", 3).len(), 3);
        assert_eq!(
            fires("*/30,5 0 * * *", "2026-01-01T00:00:00Z", "UTC", 3),
            ["2026-01-01T00:05:00+00:00", "2026-01-01T00:30:00+00:00", "2026-01-02T00:00:00+00:00"]
        );
        // cronie turns a range end of 0 into 7 in every field (`3-0` hours is 3-7); runner
        // only in the day-of-week field, where 0 is Sunday.
        assert!(CronExpr::parse("0 3-0 * * *").is_err());
    }

    #[test]
    fn the_never_fires_check_is_quick() {
        let t = std::time::Instant::now();
        for _ in 0..100 {
            assert!(CronExpr::parse("0 0 31 2 *").is_err());
        }
        let per = t.elapsed() / 100;
        // A debug build; a release build is about ten times faster.
        assert!(per < std::time::Duration::from_millis(200), "{per:?} per refusal");
    }

    /// A fixed-seed generator (xorshift64*), so a failure is reproducible.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u32) -> u32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as u32 % n
        }
        fn range(&mut self, lo: u32, hi: u32) -> u32 {
            lo + self.below(hi - lo + 1)
        }
        fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
            of[self.below(of.len() as u32) as usize]
        }
    }

    /// One element of a list in a field of values `lo..=hi`: a value, a range, a step.
    fn element(r: &mut Rng, lo: u32, hi: u32) -> String {
        let a = r.range(lo, hi);
        let b = r.range(a, hi);
        match r.below(5) {
            0 => format!("*/{}", r.range(1, hi - lo + 1)),
            1 => format!("{a}-{b}"),
            2 => format!("{a}-{b}/{}", r.range(1, 7)),
            _ => a.to_string(),
        }
    }

    fn list(r: &mut Rng, lo: u32, hi: u32, special: &mut dyn FnMut(&mut Rng) -> Option<String>) -> String {
        if r.below(4) == 0 {
            return "*".into();
        }
        let n = r.range(1, 3);
        (0..n).map(|_| special(r).unwrap_or_else(|| element(r, lo, hi))).collect::<Vec<_>>().join(",")
    }

    fn expression(r: &mut Rng) -> String {
        let mut none = |_: &mut Rng| None;
        let second = list(r, 0, 59, &mut none);
        let minute = list(r, 0, 59, &mut none);
        let hour = list(r, 0, 23, &mut none);
        let dom = match r.below(8) {
            0 => "L".to_string(),
            1 => "LW".to_string(),
            2 => "?".to_string(),
            _ => list(r, 1, 31, &mut |r: &mut Rng| match r.below(4) {
                0 => Some(format!("{}W", r.range(1, 31))),
                _ => None,
            }),
        };
        let month = match r.below(6) {
            0 => r.pick(&["JAN-MAR", "feb", "*/3", "APR,JUN,SEP,NOV", "2"]).to_string(),
            _ => list(r, 1, 12, &mut none),
        };
        let dow = match r.below(10) {
            0 => r.pick(&["MON-FRI", "SAT-0", "sun", "7", "?", "5-7"]).to_string(),
            _ => list(r, 0, 7, &mut |r: &mut Rng| match r.below(4) {
                0 => Some(format!("{}L", r.range(0, 7))),
                1 => Some(format!("{}#{}", r.range(0, 7), r.range(1, 5))),
                _ => None,
            }),
        };
        if r.below(2) == 0 {
            format!("{second} {minute} {hour} {dom} {month} {dow}")
        } else {
            format!("{minute} {hour} {dom} {month} {dow}")
        }
    }

    /// The bitmask search answers what croner's own search answers, on croner's parse of
    /// the same text with the same options, in UTC (where the wall clock has no gaps), for
    /// generated expressions with lists, steps, ranges, names, `L`, `LW`, `W`, `#` and `5L`.
    #[test]
    fn the_bitmask_search_agrees_with_croner() {
        let mut r = Rng(0x5eed_c0ff_ee15_600d);
        let (mut expressions, mut compared, mut refused) = (0, 0, 0);
        let mut features = [0usize; 5];
        while expressions < 3000 {
            let text = expression(&mut r);
            let (Ok(ours), Ok((_, cron, _))) = (CronExpr::parse(&text), CronExpr::parse_croner(&text, "*")) else {
                refused += 1;
                continue;
            };
            expressions += 1;
            for (i, mark) in ["L", "W", "#", "L,", "-"].iter().enumerate() {
                features[i] += text.contains(mark) as usize;
            }
            for _ in 0..2 {
                let (y, mo, d) = (r.range(1970, 2100) as i16, r.range(1, 12) as i8, r.range(1, 28) as i8);
                let mut from =
                    jiff::civil::datetime(y, mo, d, r.below(24) as i8, r.below(60) as i8, r.below(60) as i8, 0);
                let mut inclusive = r.below(2) == 0;
                for _ in 0..3 {
                    let theirs =
                        from.to_zoned(TimeZone::UTC).ok().and_then(|z| cron.find_next_occurrence(&z, inclusive).ok());
                    let Some(theirs) = theirs.map(|z| z.datetime()) else {
                        break;
                    };
                    let mine = ours.next_civil(from, inclusive);
                    assert_eq!(mine, Some(theirs), "{text:?} from {from} (inclusive: {inclusive})");
                    compared += 1;
                    (from, inclusive) = (theirs, false);
                }
            }
        }
        assert!(compared > 15_000, "{compared} answers compared");
        assert!(features.iter().all(|&n| n > 100), "too few expressions with L, W, #, lists, ranges: {features:?}");
        assert!(refused < expressions, "{refused} generated expressions refused");
    }

    /// One field's text, loosely: mostly what a user would write, sometimes a mistake
    /// (values out of range, backwards ranges, a step of 0, empty items, names in the
    /// wrong field or misspelt, `?`, `L`, `W` and `#` anywhere).
    fn rough_field(r: &mut Rng, lo: u32, hi: u32) -> String {
        let value = |r: &mut Rng| match r.below(30) {
            0 => r.pick(&["MON", "sat", "Sun", "FRY", "JAN", "dec", "Jul", "L", "W", "?", ""]).to_string(),
            1 => (hi + 1 + r.below(3)).to_string(),
            2 => lo.saturating_sub(1).to_string(),
            _ => r.range(lo, hi).to_string(),
        };
        let item = |r: &mut Rng| {
            let (mut a, mut b) = (value(r), value(r));
            // Mostly from low to high; a sixth of ranges run backwards.
            if let (Ok(x), Ok(y)) = (a.parse::<u32>(), b.parse::<u32>())
                && x > y
                && r.below(6) != 0
            {
                std::mem::swap(&mut a, &mut b);
            }
            let mut s = match r.below(8) {
                0 => "*".to_string(),
                1 | 2 => format!("{a}-{b}"),
                3 => format!("*/{}", r.below(8)),
                4 => format!("{a}-{b}/{}", r.below(5)),
                _ => a,
            };
            match r.below(40) {
                0 => s.push('L'),
                1 => s.push('W'),
                2 => s.push_str(&format!("#{}", r.below(7))),
                3 => s.push_str("/2"),
                _ => {}
            }
            s
        };
        if r.below(5) == 0 {
            return r
                .pick(&["*", "?", "L", "LW", "*,0", "sat-0", "6-0", "SUN-SUN", "0-SUN", "0-0", "5L", "1#2", "L,LW"])
                .into();
        }
        (0..r.range(1, 3)).map(|_| item(r)).collect::<Vec<_>>().join(",")
    }

    fn rough_expression(r: &mut Rng) -> String {
        let mut fields = vec![
            rough_field(r, 0, 59),
            rough_field(r, 0, 23),
            rough_field(r, 1, 31),
            rough_field(r, 1, 12),
            rough_field(r, 0, 7),
        ];
        if r.below(3) == 0 {
            fields.insert(0, rough_field(r, 0, 59));
        }
        fields.join(" ")
    }

    type Parsed = Option<(Fields, bool)>;

    /// Where runner-cron deliberately answers differently from croner 4.0.3 (and from
    /// runner before it), and only there: each reason checks what each side must have said.
    fn deliberate(text: &str, ours: Parsed, theirs: Parsed) -> Option<&'static str> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let (dom, dow) = (fields[fields.len() - 3].to_ascii_uppercase(), fields[fields.len() - 1].to_ascii_uppercase());
        // What croner reads: empty items dropped, `?` as `*` in the day fields.
        let n = fields.len();
        let normal: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let f = f.split(',').filter(|i| !i.is_empty()).collect::<Vec<_>>().join(",");
                if i + 3 == n || i + 1 == n { f.replace('?', "*") } else { f }
            })
            .collect();
        let normal = normal.join(" ");
        let read = |t: &str| runner_cron::parse(t).ok().map(|p| (Fields::from_pattern(&p), p.fixed_time));
        // Dropping an empty item can change how the field starts (`,*` to `*`), so the day
        // rule is croner's.
        let again = read(&normal).map(|(mut f, fixed)| {
            if let Some((t, _)) = theirs {
                f.rule = t.rule;
            }
            (f, fixed)
        });
        if ours.is_none() && normal != text && (again == theirs || deliberate(&normal, again, theirs).is_some()) {
            return Some(
                "an empty list item, or ? inside a day field: croner skips the item and reads ? as *; runner-cron refuses both",
            );
        }
        if ours.is_none() && theirs.is_none() {
            return None;
        }
        let stepped_to_0 =
            |i: &str| i.contains(['/', '#']) && i.split(['-', '/', '#']).nth(1).is_some_and(|e| e == "0" || e == "SUN");
        if ours.is_some() && theirs.is_none() && dow.split(',').any(stepped_to_0) {
            return Some(
                "a day-of-week range ending in 0 with a step or # (6-0/2, 4-0#2): croner refuses it, runner-cron reads 0 as 7 as in 6-0",
            );
        }
        if ours.is_none() && dow.split(',').any(|i| i.contains("#L") || (i.contains('#') && i.starts_with('*'))) {
            return Some(
                "#L or *#n: croner reads 5#L as 5L and */2#1 as the first of every other weekday; runner-cron refuses both",
            );
        }
        let (Some((mut a, _)), Some((b, _))) = (ours, theirs) else {
            return None;
        };
        if dom.split(',').any(|i| i == "L") && dom.split(',').any(|i| i == "LW") && a.last_day && !b.last_day {
            a.last_day = false;
            return (a == b).then_some("L and LW in one list: croner keeps only LW, runner-cron both");
        }
        None
    }

    /// runner-cron's masks are croner's (as `schedule` used them) on generated expressions:
    /// well-formed ones with every feature (the generator of the search test above) and
    /// rough ones with mistakes. Both must accept or refuse alike, except where
    /// [`deliberate`] says why not. Prints what it compared, for the commit message.
    #[test]
    fn runner_cron_agrees_with_croner() {
        let mut r = Rng(0x5eed_c0ff_ee31_0031);
        let mut counts = std::collections::BTreeMap::<&str, (usize, String)>::new();
        let (mut same_masks, mut both_refuse) = (0, 0);
        let mut wrong = Vec::new();
        let total = 200_000;
        for i in 0..total {
            let text = if i % 2 == 0 { expression(&mut r) } else { rough_expression(&mut r) };
            let ours = runner_cron::parse(&text).ok().map(|p| (Fields::from_pattern(&p), p.fixed_time));
            let theirs =
                CronExpr::parse_croner(&text, ONE_YEAR).ok().map(|(_, c, fixed)| (Fields::from_croner(&c), fixed));
            match (ours, theirs) {
                (Some(a), Some(b)) if a == b => same_masks += 1,
                (None, None) => both_refuse += 1,
                (a, b) => match deliberate(&text, a, b) {
                    Some(why) => counts.entry(why).or_insert((0, text.clone())).0 += 1,
                    None => wrong.push(format!("{text:?}: runner-cron {a:?}, croner {b:?}")),
                },
            }
        }
        println!("{total} expressions: {same_masks} accepted by both with equal masks, {both_refuse} refused by both");
        for (why, (n, example)) in &counts {
            println!("  {n} differ deliberately ({why}), e.g. {example:?}");
        }
        println!("  {} differ otherwise", wrong.len());
        assert!(
            wrong.is_empty(),
            "{} differences, the first:\n{}",
            wrong.len(),
            wrong[..wrong.len().min(30)].join("\n")
        );
        assert!(
            same_masks > total / 3 && both_refuse > total / 10,
            "{same_masks} agreed, {both_refuse} refused by both"
        );
    }

    /// A job's schedule costs its text and a few dozen bytes, not croner's table of years.
    #[test]
    fn a_cron_schedule_is_a_few_dozen_bytes() {
        assert!(std::mem::size_of::<Fields>() <= 48, "{}", std::mem::size_of::<Fields>());
        assert!(std::mem::size_of::<CronExpr>() <= 80, "{}", std::mem::size_of::<CronExpr>());
    }
}
