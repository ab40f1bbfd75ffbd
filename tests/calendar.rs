//! `runner calendar`: the next fire times of a cron expression, with crontab (Vixie/cronie)
//! semantics, in a time zone, including what happens at daylight-saving changes.

mod common;
use common::*;

use std::process::Command;

/// Runs `runner calendar EXPR --from FROM --tz TZ --count N` and returns its lines.
fn calendar(expr: &str, from: &str, tz: &str, count: usize) -> Vec<String> {
    let o = Command::new(BIN)
        .args(["calendar", expr, "--from", from, "--tz", tz, "--count", &count.to_string()])
        .output()
        .unwrap();
    assert!(o.status.success(), "runner calendar '{expr}' failed: {}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    stdout(&o).lines().map(str::to_string).collect()
}

/// The error `runner calendar` prints for these arguments, checking it exits 2 and prints
/// nothing on stdout.
fn calendar_error(args: &[&str]) -> String {
    let o = Command::new(BIN).arg("calendar").args(args).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    stderr(&o)
}

// 2026-01-01 is a Thursday.
const NEW_YEAR: &str = "2026-01-01T00:00:00Z";

/// Just the dates of the fire times, for day-matching rules.
fn dates(expr: &str, count: usize) -> Vec<String> {
    calendar(expr, NEW_YEAR, "UTC", count).iter().map(|s| s[..10].to_string()).collect()
}

#[test]
fn five_fields_are_minute_hour_dom_month_dow() {
    assert_eq!(
        calendar("*/15 9-10 * * *", "2026-01-01T09:20:00Z", "UTC", 4),
        [
            "2026-01-01T09:30:00+00:00",
            "2026-01-01T09:45:00+00:00",
            "2026-01-01T10:00:00+00:00",
            "2026-01-01T10:15:00+00:00"
        ]
    );
    assert_eq!(
        calendar("5,10-12 3 1 2 *", NEW_YEAR, "UTC", 5),
        [
            "2026-02-01T03:05:00+00:00",
            "2026-02-01T03:10:00+00:00",
            "2026-02-01T03:11:00+00:00",
            "2026-02-01T03:12:00+00:00",
            "2027-02-01T03:05:00+00:00"
        ]
    );
}

#[test]
fn six_fields_have_seconds_first() {
    assert_eq!(
        calendar("*/20 0 12 * * *", NEW_YEAR, "UTC", 4),
        [
            "2026-01-01T12:00:00+00:00",
            "2026-01-01T12:00:20+00:00",
            "2026-01-01T12:00:40+00:00",
            "2026-01-02T12:00:00+00:00"
        ]
    );
    assert_eq!(calendar("30 * * * * *", "2026-01-01T00:00:30Z", "UTC", 1), ["2026-01-01T00:01:30+00:00"]);
}

#[test]
fn macros() {
    let from = "2026-01-01T10:10:00Z";
    let first = |m: &str| calendar(m, from, "UTC", 1).remove(0);
    assert_eq!(first("@hourly"), "2026-01-01T11:00:00+00:00");
    assert_eq!(first("@daily"), "2026-01-02T00:00:00+00:00");
    assert_eq!(first("@midnight"), "2026-01-02T00:00:00+00:00");
    assert_eq!(first("@weekly"), "2026-01-04T00:00:00+00:00");
    assert_eq!(first("@monthly"), "2026-02-01T00:00:00+00:00");
    assert_eq!(first("@yearly"), "2027-01-01T00:00:00+00:00");
    assert_eq!(first("@annually"), "2027-01-01T00:00:00+00:00");
}

#[test]
fn names_for_months_and_weekdays() {
    assert_eq!(dates("0 9 * JAN-MAR MON-FRI", 3), ["2026-01-01", "2026-01-02", "2026-01-05"]);
    assert_eq!(dates("0 9 1 apr,Oct *", 3), ["2026-04-01", "2026-10-01", "2027-04-01"]);
    assert_eq!(dates("0 0 * * sat,SUN", 3), ["2026-01-03", "2026-01-04", "2026-01-10"]);
}

#[test]
fn zero_and_seven_are_both_sunday() {
    let sundays = ["2026-01-04", "2026-01-11"];
    assert_eq!(dates("0 0 * * 0", 2), sundays);
    assert_eq!(dates("0 0 * * 7", 2), sundays);
    assert_eq!(dates("0 0 * * 5-7", 4), ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-09"]);
    assert_eq!(dates("0 0 * * FRI-SUN", 4), ["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-09"]);
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    // The 13th, and every Friday.
    assert_eq!(dates("0 0 13 * FRI", 4), ["2026-01-02", "2026-01-09", "2026-01-13", "2026-01-16"]);
    // Every value listed is still a restriction: the 20th, or any day of the week.
    assert_eq!(dates("0 0 20 * 0-6", 3), ["2026-01-02", "2026-01-03", "2026-01-04"]);
}

#[test]
fn a_day_field_starting_with_star_is_unrestricted() {
    // Only one field restricted: that one decides.
    assert_eq!(dates("0 0 * * FRI", 2), ["2026-01-02", "2026-01-09"]);
    assert_eq!(dates("0 0 13 * *", 2), ["2026-01-13", "2026-02-13"]);
    // `*/2` starts with `*`, so as in cronie it does not count for the OR rule and both
    // fields must match: odd days that are Fridays.
    assert_eq!(dates("0 0 */2 * FRI", 3), ["2026-01-09", "2026-01-23", "2026-02-13"]);
    // `*/5` is Sunday and Friday: the 13th when it is one of them.
    assert_eq!(dates("0 0 13 * */5", 3), ["2026-02-13", "2026-03-13", "2026-09-13"]);
}

#[test]
fn last_day_and_nth_weekday_extensions() {
    assert_eq!(dates("0 0 L * *", 3), ["2026-01-31", "2026-02-28", "2026-03-31"]);
    assert_eq!(dates("0 0 * * 5L", 2), ["2026-01-30", "2026-02-27"]);
    assert_eq!(dates("0 0 * * MON#2", 2), ["2026-01-12", "2026-02-09"]);
}

#[test]
fn count_and_from() {
    assert_eq!(calendar("@hourly", NEW_YEAR, "UTC", 0), Vec::<String>::new());
    assert_eq!(calendar("@hourly", NEW_YEAR, "UTC", 7).len(), 7);
    // Strictly after --from, also when --from is itself a fire time.
    assert_eq!(calendar("0 * * * *", "2026-01-01T05:00:00Z", "UTC", 1), ["2026-01-01T06:00:00+00:00"]);
    assert_eq!(calendar("0 * * * *", "2026-01-01T04:59:59.999Z", "UTC", 1), ["2026-01-01T05:00:00+00:00"]);
    // --from with an offset names the same instant.
    assert_eq!(calendar("0 * * * *", "2026-01-01T06:30:00+01:00", "UTC", 1), ["2026-01-01T06:00:00+00:00"]);
    // The default count is 5.
    let o = Command::new(BIN).args(["calendar", "@daily", "--from", NEW_YEAR, "--tz", "UTC"]).output().unwrap();
    assert_eq!(stdout(&o).lines().count(), 5);
}

/// Times past 2038-01-19T03:14:07Z (the last second of a 32-bit time_t) and 2106 (of an
/// unsigned one) are civil times like any other: the schedule is computed in 64 bits on
/// every target. `.ci/run` runs this file on armv7 (32-bit time_t in glibc's ABI) under
/// qemu-user too.
#[test]
fn fire_times_past_2038_and_2106() {
    assert_eq!(
        calendar("*/1 * * * * *", "2038-01-19T03:14:05Z", "UTC", 4),
        [
            "2038-01-19T03:14:06+00:00",
            "2038-01-19T03:14:07+00:00",
            "2038-01-19T03:14:08+00:00",
            "2038-01-19T03:14:09+00:00"
        ]
    );
    // Daylight saving past 2038 comes from the zone's rule, not its table of transitions.
    assert_eq!(
        calendar("0 12 1 1,7 *", "2040-01-01T00:00:00Z", "Europe/Berlin", 2),
        ["2040-01-01T12:00:00+01:00", "2040-07-01T12:00:00+02:00"]
    );
    assert_eq!(calendar("0 0 29 2 *", "2100-01-01T00:00:00Z", "UTC", 1), ["2104-02-29T00:00:00+00:00"]);
    assert_eq!(calendar("@yearly", "2106-02-07T06:28:15Z", "UTC", 1), ["2107-01-01T00:00:00+00:00"]);
}

#[test]
fn tz_reads_the_expression_in_that_zone() {
    assert_eq!(calendar("0 9 * * *", NEW_YEAR, "Europe/Berlin", 1), ["2026-01-01T09:00:00+01:00"]);
    assert_eq!(calendar("0 9 * * *", "2026-07-01T00:00:00Z", "Europe/Berlin", 1), ["2026-07-01T09:00:00+02:00"]);
    assert_eq!(calendar("0 9 * * *", NEW_YEAR, "America/New_York", 1), ["2026-01-01T09:00:00-05:00"]);
    // Already 11:00 there at midnight UTC.
    assert_eq!(calendar("0 9 * * *", NEW_YEAR, "Australia/Lord_Howe", 1), ["2026-01-02T09:00:00+11:00"]);
}

#[test]
fn bad_expressions_are_clear_errors() {
    let err = calendar_error(&["*/0 * * * *"]);
    assert_eq!(
        err,
        "runner calendar: minute \"*/0\" has a step of 0; a step is 1 or more, like */5 (column 3 of \"*/0 * * * *\")\n"
    );
    let err = calendar_error(&["* * * *"]);
    assert!(err.contains("it has 4 field(s); write 5 (minute hour day-of-month month day-of-week) or 6"), "{err}");
    assert!(calendar_error(&["0 0 * * * * 2030"]).contains("7 field(s)"));
    assert_eq!(
        calendar_error(&["61 * * * *"]),
        "runner calendar: minute 61 is out of range 0-59 (column 1 of \"61 * * * *\")\n"
    );
    let err = calendar_error(&["0 0 * MON *"]);
    assert!(err.contains("month \"MON\" is a day name; month names are JAN-DEC (column 7"), "{err}");
    let err = calendar_error(&["0 0 * * FRY"]);
    assert!(err.contains("day-of-week \"FRY\": did you mean FRI? (column 9 of \"0 0 * * FRY\")"), "{err}");
    assert!(calendar_error(&["@fortnightly"]).contains("unknown macro \"@fortnightly\"; use @yearly"));
    assert!(calendar_error(&[""]).contains("empty schedule"));
}

#[test]
fn an_expression_that_never_fires_is_an_error_not_an_empty_list() {
    let err = calendar_error(&["* * 31 2 *", "--from", NEW_YEAR, "--tz", "UTC"]);
    assert!(err.starts_with("runner calendar: invalid cron expression \"* * 31 2 *\": it never fires"), "{err}");
    let err = calendar_error(&["0 0 * * L"]);
    assert!(err.contains("write `SAT` (or 6) for Saturdays, or `5L`"), "{err}");
}

#[test]
fn cronie_lists_sunday_range_ends_and_star_elements() {
    assert_eq!(dates("0 0 * * sat-0", 3), ["2026-01-03", "2026-01-04", "2026-01-10"]);
    assert_eq!(dates("0 0 * * *,0", 2), ["2026-01-02", "2026-01-03"]);
}

#[test]
fn reboot_has_no_calendar() {
    let err = calendar_error(&["@reboot"]);
    assert_eq!(err, "runner calendar: \"@reboot\" runs once at boot, not at a time of day, so it has no fire times\n");
}

#[test]
fn bad_from_and_tz_are_clear_errors() {
    let err = calendar_error(&["@daily", "--from", "yesterday"]);
    assert!(err.contains("invalid --from `yesterday`") && err.contains("write RFC 3339 like"), "{err}");
    let err = calendar_error(&["@daily", "--tz", "Mars/Olympus"]);
    assert!(err.contains("unknown time zone `Mars/Olympus`; use an IANA name"), "{err}");
}

// Daylight saving, as cronie does it. A job is fixed-time when neither its minute nor its
// hour field starts with `*`; otherwise it is a wildcard job.
//
// Europe/Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC, so 02:00-02:59 never
// happens. 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC, so 02:00-02:59 happens twice.

const BERLIN: &str = "Europe/Berlin";

#[test]
fn spring_forward_a_skipped_fixed_time_fires_once_right_after_the_gap() {
    assert_eq!(
        calendar("30 2 * * *", "2026-03-27T12:00:00Z", BERLIN, 4),
        [
            "2026-03-28T02:30:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00"
        ]
    );
    // Several skipped times of one job, and its own time at the gap's end, are one run.
    assert_eq!(
        calendar("0,30 2,3 * * *", "2026-03-28T23:00:00Z", BERLIN, 3),
        ["2026-03-29T03:00:00+02:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:00:00+02:00"]
    );
}

#[test]
fn spring_forward_wildcard_jobs_run_by_the_new_time() {
    assert_eq!(
        calendar("30 * * * *", "2026-03-28T23:45:00Z", BERLIN, 3),
        ["2026-03-29T01:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-29T04:30:00+02:00"]
    );
    // A `*` minute makes a job wildcard too (cronie's MIN_STAR): its 02:xx times are gone.
    assert_eq!(
        calendar("*/20 2 * * *", "2026-03-28T23:45:00Z", BERLIN, 2),
        ["2026-03-30T02:00:00+02:00", "2026-03-30T02:20:00+02:00"]
    );
}

#[test]
fn fall_back_a_repeated_fixed_time_fires_once() {
    assert_eq!(
        calendar("30 2 * * *", "2026-10-24T12:00:00Z", BERLIN, 2),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
    assert_eq!(
        calendar("0,30 2 * * *", "2026-10-24T12:00:00Z", BERLIN, 3),
        ["2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:00:00+01:00"]
    );
}

#[test]
fn fall_back_wildcard_jobs_fire_in_both_passes() {
    assert_eq!(
        calendar("30 * * * *", "2026-10-24T23:00:00Z", BERLIN, 4),
        [
            "2026-10-25T01:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:30:00+01:00"
        ]
    );
    // Asked from inside the first pass: the rest of it, then the second pass.
    assert_eq!(
        calendar("*/30 2 * * *", "2026-10-25T00:40:00Z", BERLIN, 3),
        ["2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00", "2026-10-26T02:00:00+01:00"]
    );
}

#[test]
fn new_york_repeats_its_one_oclock_hour() {
    // 2026-11-01 02:00 EDT -> 01:00 EST; 2026-03-08 02:00 EST -> 03:00 EDT.
    let ny = "America/New_York";
    assert_eq!(
        calendar("30 1 * * *", "2026-10-31T12:00:00Z", ny, 2),
        ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
    );
    assert_eq!(
        calendar("30 * * * *", "2026-11-01T04:00:00Z", ny, 3),
        ["2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00"]
    );
    assert_eq!(calendar("30 2 * * *", "2026-03-07T12:00:00Z", ny, 1), ["2026-03-08T03:00:00-04:00"]);
}
