//! Each form of the syntax to its bits, and each mistake to its message.

use super::*;

fn ok(text: &str) -> Pattern {
    parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(p) => panic!("{text:?} parsed: {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn bits(values: &[u32]) -> u64 {
    values.iter().fold(0, |m, v| m | 1 << v)
}

#[test]
fn five_fields_are_minute_first_and_six_seconds_first() {
    let p = ok("5 4 3 2 1");
    assert_eq!(
        (p.seconds, p.minutes, p.hours, p.days, p.months, p.weekdays),
        (1, 1 << 5, 1 << 4, 1 << 3, 1 << 2, 1 << 1)
    );
    let p = ok("6 5 4 3 2 1");
    assert_eq!((p.seconds, p.minutes, p.hours), (1 << 6, 1 << 5, 1 << 4));
    assert_eq!(ok("* * * * *").minutes, (1 << 60) - 1);
    assert_eq!(ok("* * * * *").hours, (1 << 24) - 1);
    assert_eq!(ok("* * * * *").days, ((1u64 << 32) - 2) as u32);
    assert_eq!(ok("* * * * *").months, 0x1ffe);
    assert_eq!(ok("* * * * *").weekdays, 0x7f);
    assert_eq!(ok("  0\t0 * * *  ").minutes, 1, "white space around and between");
}

#[test]
fn ranges_steps_and_lists() {
    assert_eq!(ok("1-3,7 * * * *").minutes, bits(&[1, 2, 3, 7]));
    assert_eq!(ok("*/15 * * * *").minutes, bits(&[0, 15, 30, 45]));
    assert_eq!(ok("10-30/10 * * * *").minutes, bits(&[10, 20, 30]));
    assert_eq!(ok("* * */10 * *").days, bits(&[1, 11, 21, 31]) as u32);
    assert_eq!(ok("* * * */5 *").months, bits(&[1, 6, 11]) as u16);
    assert_eq!(ok("*/100 * * * *").minutes, 1, "a step past the end is the first value");
    assert_eq!(ok("7-7 * * * *").minutes, 1 << 7);
    assert_eq!(ok("05 * * * *").minutes, 1 << 5);
}

#[test]
fn names_in_their_fields_any_case() {
    assert_eq!(ok("0 0 * jan-Mar,DEC mon-fri").months, bits(&[1, 2, 3, 12]) as u16);
    assert_eq!(ok("0 0 * jan-Mar,DEC mon-fri").weekdays, bits(&[1, 2, 3, 4, 5]) as u8);
    assert_eq!(ok("0 0 * * MON-FRI/2").weekdays, bits(&[1, 3, 5]) as u8);
}

#[test]
fn sunday_is_0_and_7_and_may_end_a_range() {
    assert_eq!(ok("0 0 * * 7").weekdays, 1);
    assert_eq!(ok("0 0 * * 5-7").weekdays, bits(&[0, 5, 6]) as u8);
    assert_eq!(ok("0 0 * * FRI-SUN").weekdays, bits(&[0, 5, 6]) as u8);
    assert_eq!(ok("0 0 * * sat-0").weekdays, bits(&[0, 6]) as u8);
    assert_eq!(ok("0 0 * * 6-0").weekdays, bits(&[0, 6]) as u8);
    assert_eq!(ok("0 0 * * 0-0").weekdays, 1);
    assert_eq!(ok("0 0 * * SUN-SUN").weekdays, 0x7f, "SUN ending a range is 7");
    assert_eq!(ok("0 0 * * 0-SUN").weekdays, 0x7f);
    assert_eq!(ok("0 0 * * */2").weekdays, bits(&[0, 2, 4, 6]) as u8);
    assert_eq!(ok("0 0 * * 7L").last_weekday, 1);
    assert_eq!(ok("0 0 * * FRI-SUN/2").weekdays, bits(&[0, 5]) as u8);
    assert_eq!(ok("0 0 * * 4-0#2").nth[1], bits(&[0, 4, 5, 6]) as u8);
    assert_eq!(
        err("0 0 * * 6-0/1"),
        "day-of-week range 6-0/1 runs backwards (0 ends a range as Sunday only without a step); write 6-7/1 (column 9 of \"0 0 * * 6-0/1\")"
    );
}

#[test]
fn star_in_a_list_and_the_day_rule() {
    assert_eq!(ok("0 0 * * *,0").weekdays, 0x7f);
    assert_eq!(ok("*/30,5 * * * *").minutes, bits(&[0, 5, 30]));
    assert_eq!(ok("0 0 13 * *,0").rule, DayRule::Both);
    assert_eq!(ok("0 0 1,15 * MON").rule, DayRule::Either);
    assert_eq!(ok("0 0 */2 * 1").rule, DayRule::Both);
    assert_eq!(ok("0 0 * * MON").rule, DayRule::DayOfWeek);
    assert_eq!(ok("0 0 13 * *").rule, DayRule::DayOfMonth);
    assert_eq!(ok("0 0 ? * MON").rule, DayRule::DayOfWeek);
    assert_eq!(ok("0 0 13 * ?").rule, DayRule::DayOfMonth);
    assert_eq!(ok("0 0 ? * ?").days, ok("* * * * *").days);
}

#[test]
fn last_nearest_and_nth() {
    let p = ok("0 0 L * *");
    assert!(p.last_day && !p.last_workday && p.days == 0);
    let p = ok("0 0 LW * *");
    assert!(!p.last_day && p.last_workday);
    let p = ok("0 0 l,lw * *");
    assert!(p.last_day && p.last_workday);
    let p = ok("0 0 1,15W,31w * *");
    assert_eq!((p.days, p.nearest_weekday), (1 << 1, 1 << 15 | 1 << 31));
    assert_eq!(ok("0 0 * * 5L").last_weekday, 1 << 5);
    let p = ok("0 0 * * 1#2,FRI#5,1-3#1");
    assert_eq!(p.nth, [0b1110, 1 << 1, 0, 0, 1 << 5]);
    assert_eq!(p.weekdays, 0);
}

#[test]
fn macros_are_cronies() {
    assert_eq!(ok("@daily"), ok("0 0 * * *"));
    assert_eq!(ok("@MIDNIGHT"), ok("0 0 * * *"));
    assert_eq!(ok("@weekly"), ok("0 0 * * 0"));
    assert_eq!(ok("@yearly"), ok("@annually"));
    assert_eq!(ok("@monthly"), ok("0 0 1 * *"));
    assert_eq!(ok("@hourly"), ok("0 * * * *"));
    assert_eq!(parse("@reboot").unwrap_err().kind(), &ErrorKind::Reboot);
    assert!(err("@fortnightly").starts_with("unknown macro \"@fortnightly\"; use @yearly"));
    assert!(err("@dayly").starts_with("unknown macro \"@dayly\"; did you mean @daily?"));
}

#[test]
fn fixed_time_is_minute_and_hour_without_star() {
    assert!(ok("30 2 * * *").fixed_time);
    assert!(ok("*/10 30 2 * * *").fixed_time, "the seconds field does not count");
    assert!(ok("@daily").fixed_time);
    assert!(!ok("30 * * * *").fixed_time);
    assert!(!ok("*/15 2 * * *").fixed_time);
}

#[test]
fn field_errors_name_the_field_range_value_and_column() {
    assert_eq!(err("0 61 * * * *"), "minute 61 is out of range 0-59 (column 3 of \"0 61 * * * *\")");
    assert_eq!(err("0 0 * * FRY"), "day-of-week \"FRY\": did you mean FRI? (column 9 of \"0 0 * * FRY\")");
    assert_eq!(err("0 0 * * MONDAY"), "day-of-week \"MONDAY\": did you mean MON? (column 9 of \"0 0 * * MONDAY\")");
    assert_eq!(err("0 0 * Sept *"), "month \"Sept\": did you mean SEP? (column 7 of \"0 0 * Sept *\")");
    assert_eq!(err("* 24 * * *"), "hour 24 is out of range 0-23 (column 3 of \"* 24 * * *\")");
    assert_eq!(err("0 0 1-32 * *"), "day-of-month 32 is out of range 1-31 (column 7 of \"0 0 1-32 * *\")");
    assert_eq!(err("0 0 0 * *"), "day-of-month 0 is out of range 1-31 (column 5 of \"0 0 0 * *\")");
    assert_eq!(err("0 0 * 13 *"), "month 13 is out of range 1-12 (column 7 of \"0 0 * 13 *\")");
    assert_eq!(err("0 0 * * 8"), "day-of-week 8 is out of range 0-7 (column 9 of \"0 0 * * 8\")");
    assert_eq!(err("60 * * * * *"), "second 60 is out of range 0-59 (column 1 of \"60 * * * * *\")");
    assert_eq!(
        err("99999999999 * * * *"),
        "minute 99999999999 is out of range 0-59 (column 1 of \"99999999999 * * * *\")"
    );
    assert_eq!(
        err("*/0 * * * *"),
        "minute \"*/0\" has a step of 0; a step is 1 or more, like */5 (column 3 of \"*/0 * * * *\")"
    );
    assert_eq!(
        err("0 22-2 * * *"),
        "hour range 22-2 runs backwards; write 22-23,0-2 to wrap around (column 3 of \"0 22-2 * * *\")"
    );
    assert_eq!(
        err("0 0 * * FRI-MON"),
        "day-of-week range 5-1 runs backwards; write 5-6,0-1 to wrap around (column 9 of \"0 0 * * FRI-MON\")"
    );
    assert_eq!(
        err("0 0 * 12-1/2 *"),
        "month range 12-1 runs backwards; write the smaller value first (column 7 of \"0 0 * 12-1/2 *\")"
    );
    assert_eq!(
        err("1,,2 * * * *"),
        "minute list has an empty item; remove the extra comma (column 3 of \"1,,2 * * * *\")"
    );
    assert_eq!(err("0 1, * * *"), "hour list has an empty item; remove the extra comma (column 5 of \"0 1, * * *\")");
}

#[test]
fn columns_count_from_the_trimmed_text() {
    assert_eq!(err("  0 61 * * * *"), "minute 61 is out of range 0-59 (column 3 of \"0 61 * * * *\")");
    assert!(err("0  0   * * 1-9").ends_with("(column 14 of \"0  0   * * 1-9\")"), "{}", err("0  0   * * 1-9"));
}

#[test]
fn other_mistakes_say_what_to_write() {
    let cases = [
        ("0 0 * MON *", "month \"MON\" is a day name; month names are JAN-DEC (column 7"),
        ("0 0 * * JAN", "day-of-week \"JAN\" is a month name; day names are SUN-SAT"),
        ("0 0 * * XYZ", "day-of-week \"XYZ\" is not a day name; day names are SUN-SAT"),
        (
            "0 0 JAN * *",
            "day-of-month \"JAN\": names are only for the month (JAN-DEC) and day-of-week (SUN-SAT) fields",
        ),
        ("5/15 * * * *", "minute \"5/15\": a step needs a range; write 5-59/15 (from 5 on) or */15 (column 1"),
        ("*/x * * * *", "minute \"*/x\": the step after / must be a number, like */5 (column 3"),
        ("*/ * * * *", "minute \"*/\": the step after / must be a number"),
        ("0 3x * * *", "hour \"3x\" is not a value; write a number 0-23, a range like 0-2"),
        ("0 1- * * *", "hour \"1-\" is not a value"),
        ("0 1-2-3 * * *", "hour \"1-2-3\" is not a value"),
        ("? * * * *", "minute \"?\": ? is only for the day-of-month and day-of-week fields; write *"),
        ("0 0 ?,1 * *", "day-of-month \"?\": ? stands for the whole field"),
        ("0 0 * * ?/2", "day-of-week \"?/2\": ? stands for the whole field"),
        ("0 5L * * *", "hour \"5L\": L, W and # are for the day fields only"),
        ("0 0 * L *", "month \"L\": L, W and # are for the day fields only"),
        ("0 0 5L * *", "day-of-month \"5L\": L, W and #"),
        ("0 0 1#2 * *", "day-of-month \"1#2\": L, W and #"),
        ("0 0 * * 15W", "day-of-week \"15W\": L, W and #"),
        (
            "0 0 * * 1#6",
            "day-of-week \"1#6\": the week after # is out of range 1-5 (1#2 is the second Monday) (column 11",
        ),
        ("0 0 * * 1#", "the week after # is out of range 1-5"),
        ("0 0 * * 9#1", "day-of-week 9 is out of range 0-7"),
        ("0 0 32W * *", "day-of-month 32 is out of range 1-31 (column 5"),
        ("0 0 W * *", "day-of-month \"W\" is not a value"),
        ("0 0 * * L", "a bare `L` in the day-of-week field never fires; write `SAT` (or 6) for Saturdays, or `5L`"),
        ("0 0 * * 1,l", "a bare `L` in the day-of-week field never fires"),
        ("0 0 * * FRIL", "day-of-week \"FRIL\": L follows a number; write 5L for the last Friday (column 9"),
        ("0 0 * * sunl", "day-of-week \"sunl\": L follows a number; write 0L for the last Sunday"),
        ("0 0 * * 1-5L", "day-of-week \"1-5L\" is not a value"),
        ("0 0 1 * +MON", "day-of-week \"+MON\" is not a value"),
        ("0 0 * * *#2", "day-of-week \"*#2\" is not a value"),
        ("0 0 * * */2#1", "day-of-week \"*/2#1\" is not a value"),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(got.contains(want), "{text:?}:\n got {got}\nwant {want}");
    }
}

#[test]
fn whole_expression_errors() {
    assert!(err("").starts_with("empty schedule"));
    assert!(err("   ").starts_with("empty schedule"));
    assert_eq!(
        err("* * * *"),
        "invalid cron expression \"* * * *\": it has 4 field(s); write 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
    );
    assert!(err("0 0 0 1 1 * 2030").contains("it has 7 field(s)"));
}
