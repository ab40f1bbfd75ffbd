//! runner's cron expression parser: the text of a crontab schedule to the bitmasks runner's
//! `schedule` module searches, and an error that names the field, its range, the value and
//! its column when the text is wrong.
//!
//! The syntax is Vixie cron's as cronie reads it, plus the Quartz extensions runner has always
//! taken (see docs/cron.md):
//! - 5 fields (minute hour day-of-month month day-of-week) or 6 (a seconds field first);
//! - in every field `*`, a value, a range `a-b`, a step `*/n` or `a-b/n`, and lists of these
//!   (`*` may be one item of a list, as cronie allows: `*,0`);
//! - month names `JAN`-`DEC` and day names `SUN`-`SAT`, in their own field only, any case; 0
//!   and 7 are Sunday, and a day-of-week range may end in Sunday (`SAT-0`, `FRI-SUN`);
//! - day of month: `L` (the last day), `LW` (the last weekday), `15W` (the weekday nearest
//!   the 15th, within its month), `?` (same as `*`);
//! - day of week: `5L` (the last Friday), `1#2` (the second Monday), `?` (same as `*`);
//! - the macros `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`,
//!   `@hourly`. `@reboot` is not a time, and is refused here ([`ErrorKind::Reboot`]).
//!
//! It knows nothing of dates: whether an expression ever fires (`* * 31 2 *`) is for the
//! caller's calendar to decide.

#![forbid(unsafe_code)]

mod error;
mod field;

pub use error::{Error, ErrorKind, Problem};
pub use field::Field;

/// How the day-of-month and day-of-week fields combine, decided from their text as cronie
/// does (`DOM_STAR`, `DOW_STAR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayRule {
    /// The day-of-week field is `*`: the day of month alone decides.
    DayOfMonth,
    /// The day-of-month field is `*` (and day of week is not): the weekday alone decides.
    DayOfWeek,
    /// Both fields are restricted: a day matches if either does (cron's OR).
    Either,
    /// One of them starts with `*` (`*/2`, `*,0`) without being `*`: cronie counts it as
    /// unrestricted for the OR rule, so both must match.
    Both,
}

/// A parsed expression: bit N of a field is set when value N matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    /// Bit 0 only for a 5-field expression.
    pub seconds: u64,
    pub minutes: u64,
    pub hours: u32,
    /// Days of the month, bits 1 to 31.
    pub days: u32,
    /// `NW`: bit N set for the weekday nearest day N, within its month.
    pub nearest_weekday: u32,
    /// Months, bits 1 to 12.
    pub months: u16,
    /// Weekdays (bit 0 Sunday) that match in every week; a 7 is folded into bit 0.
    pub weekdays: u8,
    /// `D#N`: `nth[N - 1]` has bit D set for the Nth weekday D of the month.
    pub nth: [u8; 5],
    /// `DL`: bit D set for the last weekday D of the month.
    pub last_weekday: u8,
    /// `L` in the day-of-month field: the month's last day.
    pub last_day: bool,
    /// `LW` in the day-of-month field: the month's last Monday-to-Friday day.
    pub last_workday: bool,
    pub rule: DayRule,
    /// Neither the minute nor the hour field starts with `*`: cronie's test for a job at a
    /// fixed local time, which decides what it does at daylight-saving changes.
    pub fixed_time: bool,
}

/// cronie's macros, as 5-field expressions.
pub const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Parses a schedule: 5 or 6 fields, or a macro. Leading and trailing white space is
/// ignored; error columns count from the first character after it.
pub fn parse(text: &str) -> Result<Pattern, Error> {
    let t = text.trim();
    let fail = |kind: ErrorKind| Err(Error::new(t, kind));
    if t.is_empty() {
        return fail(ErrorKind::Empty);
    }
    if t.starts_with('@') {
        if t.eq_ignore_ascii_case("@reboot") {
            return fail(ErrorKind::Reboot);
        }
        return match MACROS.iter().find(|(m, _)| m.eq_ignore_ascii_case(t)) {
            Some((_, expansion)) => parse(expansion),
            None => fail(ErrorKind::UnknownMacro),
        };
    }
    let mut words = [("", 0usize); 6];
    let mut count = 0;
    for (word, at) in split_fields(t) {
        if count < words.len() {
            words[count] = (word, at);
        }
        count += 1;
    }
    let layout: &[Field] = match count {
        5 => &Field::FIVE,
        6 => &Field::SIX,
        n => return fail(ErrorKind::FieldCount(n)),
    };
    let mut parsed = [field::Bits::default(); 6];
    for (i, field) in layout.iter().enumerate() {
        let (word, at) = words[i];
        parsed[i] = field::parse(*field, word, at).map_err(|(at, problem)| {
            Error::new(t, ErrorKind::Field { field: *field, column: column(t, at), problem })
        })?;
    }
    // `Field`'s order is the 6-field layout's; a 5-field line has no `Second`.
    let skip = 6 - count;
    let bits = |f: Field| &parsed[f as usize - skip];
    let text_of = |f: Field| words[f as usize - skip].0;
    Ok(assemble(count == 6, bits, text_of))
}

/// The pattern from the parsed fields: folds Sunday-as-7, and decides the day rule and
/// fixed time from the fields' text.
fn assemble<'a>(
    with_seconds: bool,
    bits: impl Fn(Field) -> &'a field::Bits,
    text_of: impl Fn(Field) -> &'a str,
) -> Pattern {
    let fold = |mask: u64| ((mask & 0x7f) | (mask >> 7 & 1)) as u8;
    let dow = bits(Field::DayOfWeek);
    let dom = bits(Field::DayOfMonth);
    let bare_star = |f: Field| matches!(text_of(f), "*" | "?");
    let starts_star = |f: Field| text_of(f).starts_with(['*', '?']);
    let rule = if bare_star(Field::DayOfWeek) {
        DayRule::DayOfMonth
    } else if bare_star(Field::DayOfMonth) {
        DayRule::DayOfWeek
    } else if starts_star(Field::DayOfMonth) || starts_star(Field::DayOfWeek) {
        DayRule::Both
    } else {
        DayRule::Either
    };
    Pattern {
        seconds: if with_seconds { bits(Field::Second).values } else { 1 },
        minutes: bits(Field::Minute).values,
        hours: bits(Field::Hour).values as u32,
        days: dom.values as u32,
        nearest_weekday: dom.nearest as u32,
        months: bits(Field::Month).values as u16,
        weekdays: fold(dow.values),
        nth: dow.nth.map(fold),
        last_weekday: fold(dow.last),
        last_day: dom.last_day,
        last_workday: dom.last_workday,
        rule,
        fixed_time: !starts_star(Field::Minute) && !starts_star(Field::Hour),
    }
}

/// The white-space separated fields of `t`, each with its byte offset in `t` (the distance
/// between the two slices' starts, as the unstable `str::substr_range` computes it).
fn split_fields(t: &str) -> impl Iterator<Item = (&str, usize)> {
    t.split_whitespace().map(move |w| (w, w.as_ptr() as usize - t.as_ptr() as usize))
}

/// The 1-based column of byte offset `at` in `t`, in characters.
fn column(t: &str, at: usize) -> usize {
    t.get(..at).map_or(at, |s| s.chars().count()) + 1
}

#[cfg(test)]
mod tests;
