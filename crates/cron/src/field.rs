//! One field of an expression: its items (`*`, values, names, ranges, steps, `L`, `W`, `#`)
//! to bits. Errors carry the byte offset of what is wrong; the caller makes it a column.

use crate::error::Problem;

/// Which field of a crontab line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Second,
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

pub(crate) const MONTHS: [&str; 12] =
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
pub(crate) const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Field {
    pub(crate) const FIVE: [Field; 5] = [Field::Minute, Field::Hour, Field::DayOfMonth, Field::Month, Field::DayOfWeek];
    pub(crate) const SIX: [Field; 6] =
        [Field::Second, Field::Minute, Field::Hour, Field::DayOfMonth, Field::Month, Field::DayOfWeek];

    /// As error messages and the docs name it.
    pub fn name(self) -> &'static str {
        match self {
            Field::Second => "second",
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// The values the field takes. Day of week runs to 7, which is Sunday as 0 is.
    pub fn range(self) -> (u32, u32) {
        match self {
            Field::Second | Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    /// The names the field takes, and the value of the first.
    pub(crate) fn names(self) -> (&'static [&'static str], u32) {
        match self {
            Field::Month => (&MONTHS, 1),
            Field::DayOfWeek => (&DAYS, 0),
            _ => (&[], 0),
        }
    }
}

/// What one field selects, before day-of-week 7 is folded into 0.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Bits {
    pub values: u64,
    /// `NW` (day of month).
    pub nearest: u64,
    /// `D#N` (day of week), by N.
    pub nth: [u64; 5],
    /// `DL` (day of week).
    pub last: u64,
    /// `L` (day of month).
    pub last_day: bool,
    /// `LW` (day of month).
    pub last_workday: bool,
}

/// A problem and the byte offset (in the whole expression) of the text it is about.
pub(crate) type Located = (usize, Problem);

/// Parses `text`, field `f` of an expression, which starts at byte `at` of it.
pub(crate) fn parse(f: Field, text: &str, at: usize) -> Result<Bits, Located> {
    let mut bits = Bits::default();
    if text == "?" {
        if !matches!(f, Field::DayOfMonth | Field::DayOfWeek) {
            return Err((at, Problem::QuestionMark { item: text.into() }));
        }
        bits.values = span(f.range().0, f.range().1, 1);
        return Ok(bits);
    }
    let mut item_at = at;
    for item in text.split(',') {
        parse_item(f, item, item_at, &mut bits)?;
        item_at += item.len() + 1;
    }
    Ok(bits)
}

/// One item of a list.
fn parse_item(f: Field, item: &str, at: usize, bits: &mut Bits) -> Result<(), Located> {
    if item.is_empty() {
        return Err((at, Problem::EmptyItem));
    }
    if item.contains('?') {
        return Err((at, Problem::QuestionMark { item: item.into() }));
    }
    let up = item.to_ascii_uppercase();
    // `5L`, `15W`: a number and the letter, where the letter means something in another field.
    let number_then = |c: char| up.strip_suffix(c).is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let modifier = || Err((at, Problem::Modifier { item: item.into() }));
    match f {
        Field::DayOfMonth if up == "L" => bits.last_day = true,
        Field::DayOfMonth if up == "LW" => bits.last_workday = true,
        Field::DayOfMonth if number_then('W') => bits.nearest |= 1 << value(f, &item[..item.len() - 1], at, item)?,
        Field::DayOfMonth if item.contains('#') || up.ends_with('L') => return modifier(),
        Field::DayOfWeek if item.contains('#') => {
            let (body, nth) = item.split_once('#').unwrap_or((item, ""));
            let n = match nth.parse::<usize>() {
                Ok(n @ 1..=5) => n,
                _ => return Err((at + body.len() + 1, Problem::Nth { item: item.into() })),
            };
            // `*#2` would be every 8th to 14th; write that in day-of-month.
            if body.starts_with('*') {
                return Err((at, Problem::Unexpected { item: item.into() }));
            }
            bits.nth[n - 1] |= range_or_step(f, body, at)?;
        }
        Field::DayOfWeek if up == "L" => return Err((at, Problem::BareL)),
        Field::DayOfWeek if up.strip_suffix('L').is_some_and(|d| DAYS.contains(&d)) => {
            return Err((at, Problem::NamedLast { item: item.into() }));
        }
        Field::DayOfWeek if number_then('L') => {
            bits.last |= 1 << value(f, &item[..item.len() - 1], at, item)?;
        }
        Field::DayOfWeek if number_then('W') => return modifier(),
        Field::DayOfMonth | Field::DayOfWeek => bits.values |= range_or_step(f, item, at)?,
        _ if item.contains('#') || number_then('L') || number_then('W') || matches!(up.as_str(), "L" | "W" | "LW") => {
            return modifier();
        }
        _ => bits.values |= range_or_step(f, item, at)?,
    }
    Ok(())
}

/// `*`, `a`, `a-b`, `*/n` or `a-b/n`, starting at byte `at`, as bits.
fn range_or_step(f: Field, item: &str, at: usize) -> Result<u64, Located> {
    let (lo, hi) = f.range();
    let (range, step) = match item.split_once('/') {
        None => (item, None),
        Some((range, step)) => {
            let step_at = at + range.len() + 1;
            if step.is_empty() || !step.bytes().all(|b| b.is_ascii_digit()) {
                return Err((step_at, Problem::Step { item: item.into() }));
            }
            match number(step) {
                0 => return Err((step_at, Problem::ZeroStep { item: item.into() })),
                n => (range, Some(n)),
            }
        }
    };
    if range == "*" {
        return Ok(span(lo, hi, step.unwrap_or(1)));
    }
    let Some((a, b)) = range.split_once('-') else {
        let v = value(f, range, at, item)?;
        if let Some(step) = step {
            return Err((at, Problem::SingleStep { from: v, step }));
        }
        return Ok(1 << v);
    };
    if a.is_empty() || b.is_empty() {
        return Err((at, Problem::Unexpected { item: item.into() }));
    }
    let start = value(f, a, at, item)?;
    let mut end = value(f, b, at + a.len() + 1, item)?;
    // cronie's get_range: a day-of-week range may end on Sunday written as 0 (`SAT-0`), and
    // a range that ends with the name `SUN` ends on 7 (`SUN-SUN` is the whole week, as
    // croniter reads it); `0-0` stays Sunday.
    // With a step, cronie keeps the 0 and the range never fires: refused, as before.
    let named = b.bytes().all(|c| c.is_ascii_alphabetic());
    if f == Field::DayOfWeek && end == 0 && (named || (start > 0 && step.is_none())) {
        end = 7;
    }
    if start > end {
        return Err((at, Problem::Backwards { start, end, step }));
    }
    Ok(span(start, end, step.unwrap_or(1)))
}

/// Bits `lo`, `lo + step`, ... up to `hi`.
fn span(lo: u32, hi: u32, step: u32) -> u64 {
    (lo..=hi).step_by(step as usize).fold(0, |m, v| m | 1 << v)
}

/// A decimal number; one too large for a `u32` is `u32::MAX`, out of every range.
fn number(digits: &str) -> u32 {
    digits.bytes().fold(0u32, |n, d| n.saturating_mul(10).saturating_add(u32::from(d - b'0')))
}

/// One value of field `f`, a number or a name, at byte `at`; `item` is the list item it is
/// part of, for the messages.
fn value(f: Field, text: &str, at: usize, item: &str) -> Result<u32, Located> {
    let (lo, hi) = f.range();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n = number(text);
        if n < lo || n > hi {
            return Err((at, Problem::OutOfRange { value: text.into() }));
        }
        return Ok(n);
    }
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphabetic()) {
        let (names, first) = f.names();
        let up = text.to_ascii_uppercase();
        return match names.iter().position(|n| *n == up) {
            Some(i) => Ok(i as u32 + first),
            None => Err((at, Problem::UnknownName { name: text.into() })),
        };
    }
    Err((at, Problem::Unexpected { item: item.into() }))
}
