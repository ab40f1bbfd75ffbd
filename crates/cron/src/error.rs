//! What is wrong with an expression, and the message that says where and what to write.

use std::fmt;

use crate::MACROS;
use crate::field::{DAYS, Field, MONTHS};

/// An expression that does not parse. Its message names the field, the value, the field's
/// range and the column, and says what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The expression, trimmed (columns count from its first character).
    text: String,
    kind: ErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Empty,
    /// `@reboot` is a time of its own, not a cron schedule.
    Reboot,
    UnknownMacro,
    /// Neither 5 nor 6 fields.
    FieldCount(usize),
    /// A field is wrong at `column` (1-based, in characters).
    Field {
        field: Field,
        column: usize,
        problem: Problem,
    },
}

/// What is wrong in a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    OutOfRange {
        value: String,
    },
    UnknownName {
        name: String,
    },
    /// `1,,2`, `1,`, `,1`.
    EmptyItem,
    ZeroStep {
        item: String,
    },
    /// A step that is not a number (`*/x`, `*/`).
    Step {
        item: String,
    },
    /// `5/15`: a step needs a range (`*/15`, `5-59/15`).
    SingleStep {
        from: u32,
        step: u32,
    },
    Backwards {
        start: u32,
        end: u32,
        step: Option<u32>,
    },
    Unexpected {
        item: String,
    },
    /// `?` anywhere but as a whole day-of-month or day-of-week field.
    QuestionMark {
        item: String,
    },
    /// `L`, `W` or `#` where it means nothing.
    Modifier {
        item: String,
    },
    /// `#` without a week 1 to 5 after it.
    Nth {
        item: String,
    },
    /// `FRIL`: `L` after a day name.
    NamedLast {
        item: String,
    },
    /// `L` alone in the day-of-week field.
    BareL,
}

impl Error {
    pub(crate) fn new(text: &str, kind: ErrorKind) -> Error {
        Error { text: text.to_string(), kind }
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl std::error::Error for Error {}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.text;
        match &self.kind {
            ErrorKind::Empty => {
                f.write_str("empty schedule; write a cron expression like \"*/5 * * * *\" or a macro like \"@daily\"")
            }
            ErrorKind::Reboot => {
                f.write_str("\"@reboot\" runs once at boot, not at a time of day, so it has no fire times")
            }
            ErrorKind::UnknownMacro => {
                write!(f, "unknown macro \"{t}\"; ")?;
                let macros = MACROS.iter().map(|(m, _)| *m);
                if let Some(m) = closest(&t.to_ascii_lowercase(), macros, 2) {
                    write!(f, "did you mean {m}? The macros are ")?;
                } else {
                    f.write_str("use ")?;
                }
                f.write_str("@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @reboot")
            }
            ErrorKind::FieldCount(n) => write!(
                f,
                "invalid cron expression \"{t}\": it has {n} field(s); write 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
            ),
            ErrorKind::Field { field, column, problem } => {
                describe(f, *field, problem)?;
                write!(f, " (column {column} of \"{t}\")")
            }
        }
    }
}

/// The message for `problem` in field `field`, without its place.
fn describe(f: &mut fmt::Formatter<'_>, field: Field, problem: &Problem) -> fmt::Result {
    let name = field.name();
    let (lo, hi) = field.range();
    // The highest value before the field wraps: Saturday, not Sunday-as-7.
    let top = if field == Field::DayOfWeek { 6 } else { hi };
    match problem {
        Problem::OutOfRange { value } => write!(f, "{name} {value} is out of range {lo}-{hi}"),
        Problem::UnknownName { name: word } => unknown_name(f, field, word),
        Problem::EmptyItem => write!(f, "{name} list has an empty item; remove the extra comma"),
        Problem::ZeroStep { item } => write!(f, "{name} \"{item}\" has a step of 0; a step is 1 or more, like */5"),
        Problem::Step { item } => write!(f, "{name} \"{item}\": the step after / must be a number, like */5"),
        Problem::SingleStep { from, step } => write!(
            f,
            "{name} \"{from}/{step}\": a step needs a range; write {from}-{top}/{step} (from {from} on) or */{step}"
        ),
        Problem::Backwards { start, end, step: None } => {
            let from = if *start == top { start.to_string() } else { format!("{start}-{top}") };
            let to = if *end == lo { lo.to_string() } else { format!("{lo}-{end}") };
            write!(f, "{name} range {start}-{end} runs backwards; write {from},{to} to wrap around")
        }
        Problem::Backwards { start, end: 0, step: Some(step) } if field == Field::DayOfWeek => write!(
            f,
            "{name} range {start}-0/{step} runs backwards (0 ends a range as Sunday only without a step); write {start}-7/{step}"
        ),
        Problem::Backwards { start, end, step: Some(_) } => {
            write!(f, "{name} range {start}-{end} runs backwards; write the smaller value first")
        }
        Problem::Unexpected { item } => {
            let names = match field {
                Field::Month => ", a name JAN-DEC",
                Field::DayOfWeek => ", a name SUN-SAT",
                _ => "",
            };
            write!(
                f,
                "{name} \"{item}\" is not a value; write a number {lo}-{hi}{names}, a range like {lo}-{}, a step like */2 or a list like {lo},{}",
                lo + 2,
                lo + 2
            )
        }
        Problem::QuestionMark { item } if matches!(field, Field::DayOfMonth | Field::DayOfWeek) => {
            write!(f, "{name} \"{item}\": ? stands for the whole field (it means *); write ? alone, or *")
        }
        Problem::QuestionMark { item } => {
            write!(f, "{name} \"{item}\": ? is only for the day-of-month and day-of-week fields; write *")
        }
        Problem::Modifier { item } => write!(
            f,
            "{name} \"{item}\": L, W and # are for the day fields only: L (last day), LW (last weekday) and 15W (weekday nearest the 15th) in day-of-month, 5L (last Friday) and 1#2 (second Monday) in day-of-week"
        ),
        Problem::Nth { item } => {
            write!(f, "{name} \"{item}\": the week after # is out of range 1-5 (1#2 is the second Monday)")
        }
        Problem::NamedLast { item } => {
            let day = DAYS.iter().position(|d| item[..3].eq_ignore_ascii_case(d)).unwrap_or(5);
            write!(f, "{name} \"{item}\": L follows a number; write {day}L for the last {}", DAY_NAMES[day])
        }
        Problem::BareL => f.write_str(
            "a bare `L` in the day-of-week field never fires; write `SAT` (or 6) for Saturdays, or `5L` for the last Friday of the month",
        ),
    }
}

const DAY_NAMES: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// A name the field does not know: a near miss of one it does, a name of the other field,
/// or a field that takes no names.
fn unknown_name(f: &mut fmt::Formatter<'_>, field: Field, word: &str) -> fmt::Result {
    let name = field.name();
    let up = word.to_ascii_uppercase();
    let (own, other, kind, other_kind) = match field {
        Field::Month => (&MONTHS[..], &DAYS[..], "month", "day"),
        Field::DayOfWeek => (&DAYS[..], &MONTHS[..], "day", "month"),
        _ => {
            return write!(
                f,
                "{name} \"{word}\": names are only for the month (JAN-DEC) and day-of-week (SUN-SAT) fields"
            );
        }
    };
    let range = format!("{}-{}", own[0], own[own.len() - 1]);
    // A longer spelling (`MONDAY`, `SEPT`) is what was meant; so is one edit away (`FRY`).
    let longer = own.iter().find(|n| up.len() > 3 && up.starts_with(**n)).copied();
    if let Some(meant) = longer.or_else(|| closest(&up, own.iter().copied(), 1)) {
        return write!(f, "{name} \"{word}\": did you mean {meant}?");
    }
    if other.contains(&up.as_str()) {
        return write!(f, "{name} \"{word}\" is a {other_kind} name; {kind} names are {range}");
    }
    write!(f, "{name} \"{word}\" is not a {kind} name; {kind} names are {range}")
}

/// The candidate nearest `got`, if it is at most `max` edits away (a swap of two letters is
/// one edit, so `FIR` is `FRI`).
fn closest<'a>(got: &str, candidates: impl Iterator<Item = &'a str>, max: usize) -> Option<&'a str> {
    candidates
        .map(|c| (distance(got.as_bytes(), c.as_bytes()), c))
        .filter(|(d, _)| *d <= max)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours, on bytes (names are ASCII).
fn distance(a: &[u8], b: &[u8]) -> usize {
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}
