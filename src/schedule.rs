//! When a job is due: cron expressions (5 or 6 fields, crontab semantics), `@macros`,
//! `@reboot` and fixed intervals.
//!
//! Pure: every function takes the time it reasons about as an argument and never reads a
//! clock, so the daemon, `runner calendar` and the tests all ask the same questions.
//! It does not know about jobs, state or timers; the scheduler does.
//!
//! Semantics are Vixie cron's as cronie has them. runner-cron (crates/cron) reads the text into
//! bitmasks; this module searches them for the next matching wall-clock time and maps it to
//! the job's zone. docs/cron.md lists the syntax and its messages.
//! - Day of month and day of week: when both are restricted a day matches if either does,
//!   but a field that *starts* with `*` (`*`, `*/2`) counts as unrestricted, so `*/2` with
//!   `MON` means odd days that are Mondays (cronie's `DOM_STAR`/`DOW_STAR`).
//! - Daylight saving time, as cronie's main loop does it. A job is *fixed-time* when neither
//!   its minute nor its hour field starts with `*`, otherwise it is a *wildcard* job. A fixed
//!   time that a spring-forward gap skips fires once, at the first instant after the gap; a
//!   wildcard job just misses the times in the gap. A wall-clock time that a fall-back
//!   repeats fires once (the first time) for a fixed-time job and both times for a wildcard
//!   job.
//! - An expression that never fires (`* * 31 2 *`) is refused here, where the calendar is.
//!
//! Extensions beyond cronie (Quartz's): `L` (last day of month, `5L` last Friday), `#`
//! (`1#2` second Monday), `W`, `?`, and a leading seconds field in 6-field expressions.
//! cronie syntax refused: `~` (a random value chosen at load), and a range end of 0
//! outside the day-of-week field (cronie reads hours `3-0` as 3-7).

use std::fmt;
use std::time::Duration;

use jiff::Zoned;
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use runner_cron::DayRule;

/// A parsed cron expression, kept with the text the user wrote so errors and `list` can
/// show it back verbatim.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    /// What runner-cron parsed, as bitmasks (croner's `Cron`, before, kept a byte for every
    /// year up to 9999, about 10 KB a job).
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

    /// The days of `month` that match, as bits 1 to 31, for a whole month at once.
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

impl CronExpr {
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
