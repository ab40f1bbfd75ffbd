//! When a job is due: cron expressions (5 or 6 fields, crontab semantics), `@macros`,
//! `@reboot` and fixed intervals.
//!
//! Pure: every function takes the time it reasons about as an argument and never reads a
//! clock, so the daemon, `runner calendar` and the tests all ask the same questions.
//! It does not know about jobs, state or timers; the scheduler does.

use std::fmt;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Zoned;
use jiff::tz::TimeZone;

/// A parsed cron expression, kept with the text the user wrote so errors and `list` can
/// show it back verbatim.
#[derive(Clone)]
pub struct CronExpr {
    text: String,
    // Boxed: a parsed pattern is 300-odd bytes and most schedules are compared, not evaluated.
    cron: Box<Cron>,
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

impl CronExpr {
    /// Parses a crontab line's time fields: 5 fields (minute first) or 6 (seconds first), or
    /// one of the `@yearly`-style macros. `@reboot` is not a time and is handled by
    /// [`Schedule::parse`].
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let t = text.trim();
        if t.is_empty() {
            return Err(
                "empty schedule; write a cron expression like \"*/5 * * * *\" or a macro like \"@daily\"".into()
            );
        }
        let fields = t.split_whitespace().count();
        if !t.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "invalid cron expression \"{t}\": it has {fields} field(s); write 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
            ));
        }
        let parser = CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build();
        let cron = parser.parse(t).map_err(|e| format!("invalid cron expression \"{t}\": {}", describe_error(&e)))?;
        Ok(CronExpr { text: t.to_string(), cron: Box::new(cron) })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first fire time strictly after `after`, in `after`'s time zone.
    pub fn next_after(&self, after: &Zoned) -> Option<Zoned> {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

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
            Schedule::Every(d) => write!(f, "every {}", crate::config::duration::format(*d)),
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

    #[test]
    fn reboot_is_ours() {
        assert_eq!(Schedule::parse("@reboot").unwrap(), Schedule::Reboot);
        assert!(matches!(Schedule::parse("@daily").unwrap(), Schedule::Cron(_)));
    }
}
