//! `runner check`: a valid config passes with a summary; every kind of bad input is an
//! error naming the file, line and column, and what to do.

mod common;
use common::*;

fn check(s: &Scratch, text: &str) -> (i32, String, String) {
    let cfg = s.write("supervisor.yaml", text);
    let o = s.runner(&cfg).arg("check").output().unwrap();
    (o.status.code().unwrap(), stdout(&o), stderr(&o))
}

fn assert_error(text: &str, want_loc: &str, want_msg: &str) {
    let s = Scratch::new("check");
    let (code, _, err) = check(&s, text);
    assert_eq!(code, 1, "expected failure, stderr: {err}");
    let path = s.path("supervisor.yaml");
    let want = format!("{}:{want_loc}: ", path.display());
    assert!(err.contains(&want), "want location {want:?} in:\n{err}");
    assert!(err.contains(want_msg), "want {want_msg:?} in:\n{err}");
}

#[test]
fn shipped_config_is_valid() {
    let s = Scratch::new("shipped");
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/supervisor.yaml");
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok, 6 job(s) (5 enabled) from 1 file(s)"), "{}", stdout(&o));
}

#[test]
fn misspelt_field_names_the_closest() {
    assert_error(
        "version: 1\njobs:\n  backup:\n    schedule: \"0 3 * * *\"\n    timout: 5m\n    run: \"true\"\n",
        "5:5",
        "unknown field `timout` in job `backup`, did you mean `timeout`?",
    );
}

#[test]
fn bad_cron_points_at_the_value() {
    assert_error(
        "version: 1\njobs:\n  a:\n    schedule: \"*/0 * * * *\"\n    run: \"true\"\n",
        "4:15",
        "minute \"*/0\" has a step of 0; a step is 1 or more, like */5 (column 3 of \"*/0 * * * *\")",
    );
    assert_error("version: 1\njobs:\n  a:\n    schedule: \"* * * *\"\n    run: \"true\"\n", "4:15", "4 field(s)");
}

/// A bad field names the field, its range, the value and its column inside the expression;
/// the file, line and column point at the expression.
#[test]
fn a_bad_cron_field_names_field_range_value_and_column() {
    let job = |schedule: &str| format!("version: 1\njobs:\n  a:\n    schedule: \"{schedule}\"\n    run: \"true\"\n");
    let cases = [
        ("0 61 * * * *", "job `a`: minute 61 is out of range 0-59 (column 3 of \"0 61 * * * *\")"),
        ("0 9 * * FRY", "day-of-week \"FRY\": did you mean FRI? (column 9 of \"0 9 * * FRY\")"),
        (
            "0 22-2 * * *",
            "hour range 22-2 runs backwards; write 22-23,0-2 to wrap around (column 3 of \"0 22-2 * * *\")",
        ),
        ("0 1,,2 * * *", "hour list has an empty item; remove the extra comma (column 5 of \"0 1,,2 * * *\")"),
        ("*/0 * * * *", "minute \"*/0\" has a step of 0; a step is 1 or more, like */5 (column 3 of \"*/0 * * * *\")"),
        ("0 0 * 13 *", "month 13 is out of range 1-12 (column 7 of \"0 0 * 13 *\")"),
    ];
    for (schedule, want) in cases {
        assert_error(&job(schedule), "4:15", want);
    }
}

#[test]
fn empty_and_double_schedules_are_errors() {
    assert_error("version: 1\njobs:\n  a:\n    schedule: \"\"\n    run: \"true\"\n", "4:15", "empty schedule");
    assert_error(
        "version: 1\njobs:\n  a:\n    schedule: \"@daily\"\n    every: 5m\n    run: \"true\"\n",
        "5:12",
        "has both `schedule:` and `every:`",
    );
    assert_error("version: 1\njobs:\n  a:\n    run: \"true\"\n", "3:3", "job `a` has no schedule");
}

#[test]
fn wrong_types_are_errors() {
    assert_error("version: 1\njobs:\n  a:\n    every: 5\n    run: \"true\"\n", "4:12", "has no unit");
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 5m\n    command: \"echo hi\"\n",
        "5:14",
        "`command` takes a list",
    );
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 5m\n    enabled: maybe\n    run: \"true\"\n",
        "5:14",
        "job `a`: `enabled:` takes `true` or `false`; found string \"maybe\"",
    );
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 5m\n    overlap: sikp\n    run: \"true\"\n",
        "5:14",
        "did you mean `skip`?",
    );
}

#[test]
fn duplicate_keys_point_at_the_second() {
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 5m\n    run: \"true\"\n  b:\n    every: 1m\n    run: \"true\"\n  a:\n    every: 1h\n    run: \"true\"\n",
        "9:3",
        "job `a` is defined twice (first at line 3)",
    );
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 5m\n    run: \"true\"\n    every: 1m\n",
        "6:5",
        "duplicate key `every` in job `a` (first at line 4)",
    );
}

#[test]
fn unknown_users_and_zones_are_errors() {
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 5m\n    user: no-such-user-here\n    run: \"true\"\n",
        "5:11",
        "unknown user `no-such-user-here` in job `a`",
    );
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 5m\n    timezone: Mars/Olympus\n    run: \"true\"\n",
        "5:15",
        "unknown time zone `Mars/Olympus`",
    );
}

#[test]
fn missing_or_wrong_version_is_an_error() {
    assert_error("jobs: {}\n", "1:1", "missing `version: 1`");
    assert_error("version: 7\njobs: {}\n", "1:10", "unsupported schema version 7");
}

#[test]
fn yaml_syntax_errors_have_a_location() {
    let s = Scratch::new("syntax");
    let (code, _, err) = check(&s, "version: 1\njobs:\n  a: [unclosed\n");
    assert_eq!(code, 1);
    let path = s.path("supervisor.yaml").display().to_string();
    assert!(err.starts_with(&format!("{path}:")), "{err}");
    let loc: Vec<&str> = err[path.len() + 1..].splitn(3, ':').collect();
    assert!(loc[0].parse::<usize>().unwrap() >= 3, "{err}");
}

/// A key without its colon is reported where it is, not at the next line, and under no job
/// that does not exist (libyaml notices only at the next line).
#[test]
fn a_missing_colon_is_reported_at_its_key() {
    let jobs = "version: 1\njobs:\n  backup:\n    every: 1h\n    run: \"true\"\n";
    // A job name without its colon, on line 6: not "7:10: job `every`".
    let text = format!("{jobs}  every\n    every: 5m\n    run: \"true\"\n");
    assert_error(&text, "6:8", "`every` has no `:` after it; write `every:`");
    let s = Scratch::new("check");
    let (_, _, err) = check(&s, &text);
    assert!(!err.contains("job `"), "names no job: {err}");
    // A setting without its colon, inside job `backup`, on line 5.
    assert_error(
        "version: 1\njobs:\n  backup:\n    every: 1h\n    run \"true\"\n",
        "5:5",
        "job `backup`: `run \"true\"` has no `:`",
    );
}

#[test]
fn world_writable_config_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::new("perm");
    let cfg = s.write("supervisor.yaml", "version: 1\njobs: {}\n");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("world-writable"), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("chmod go-w {}", cfg.display())), "{}", stderr(&o));
}

#[test]
fn non_root_owner_is_refused_when_root() {
    if !nix::unistd::geteuid().is_root() {
        assert!(std::env::var("CI").is_err(), "CI runs as root; this test needs it");
        return;
    }
    let s = Scratch::new("owner");
    let cfg = s.write("supervisor.yaml", "version: 1\njobs: {}\n");
    nix::unistd::chown(&cfg, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("chown root:"), "{}", stderr(&o));
}

#[test]
fn drop_ins_add_jobs_and_clashes_name_both_files() {
    let s = Scratch::new("dropin");
    let cfg = s.write("supervisor.yaml", "version: 1\njobs:\n  a:\n    every: 5m\n    run: \"true\"\n");
    s.write("supervisor.d/10-pkg.yaml", "jobs:\n  b:\n    every: 1m\n    run: \"true\"\n");
    s.write("supervisor.d/ignored.txt", "not yaml at all: [");
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 job(s)"), "{}", stdout(&o));

    let clash = s.write(
        "supervisor.d/20-other.yaml",
        "jobs:\n  x:\n    every: 1m\n    run: \"true\"\n  a:\n    every: 1m\n    run: \"true\"\n",
    );
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{}:5:3: job `a` is already defined at {}:3:3", clash.display(), cfg.display())),
        "{err}"
    );
}

#[test]
fn several_errors_are_reported_together() {
    let s = Scratch::new("several");
    let (code, _, err) = check(
        &s,
        "version: 1\njobs:\n  a:\n    every: 5m\n    user: nobody-xyz\n    run: \"true\"\n  b:\n    run: \"true\"\n",
    );
    assert_eq!(code, 1);
    assert!(err.contains("unknown user `nobody-xyz`"), "{err}");
    assert!(err.contains("job `b` has no schedule"), "{err}");
}

#[test]
fn settings_a_kind_ignores_are_refused() {
    // A metric check reads the kernel: `timeout:` bounds nothing there.
    assert_error(
        "version: 1\njobs:\n  disk:\n    check: {metric: disk_used_percent, path: /}\n    timeout: 5s\n",
        "5:14",
        "reads a metric, which `timeout:` does not bound",
    );
    // Probes take it.
    let s = Scratch::new("check-probe-timeout");
    let (code, _, err) =
        check(&s, "version: 1\njobs:\n  web:\n    check: {probe: tcp, host: 127.0.0.1, port: 9}\n    timeout: 5s\n");
    assert_eq!(code, 0, "{err}");
    // A sweep signals as runner: `user:` would mean nothing.
    assert_error(
        "version: 1\njobs:\n  sweep:\n    user: root\n    orphan_sweep:\n      match: {name: worker}\n",
        "4:11",
        "`user:` does not apply to orphan_sweep",
    );
}

#[test]
fn a_cron_expression_that_never_fires_is_refused() {
    assert_error(
        "version: 1\njobs:\n  a:\n    schedule: \"* * 31 2 *\"\n    run: \"true\"\n",
        "4:15",
        "invalid cron expression \"* * 31 2 *\": it never fires",
    );
}

#[test]
fn a_bare_l_for_the_day_of_week_is_refused_with_what_to_write() {
    assert_error(
        "version: 1\njobs:\n  a:\n    schedule: \"0 0 * * L\"\n    run: \"true\"\n",
        "4:15",
        "write `SAT` (or 6) for Saturdays, or `5L` for the last Friday of the month",
    );
}

#[test]
fn cronie_list_forms_are_accepted() {
    let s = Scratch::new("cronie-lists");
    let (code, out, err) = check(
        &s,
        "version: 1\njobs:\n  a:\n    schedule: \"0 0 * * sat-0\"\n    run: \"true\"\n  b:\n    schedule: \"0 0 * * *,0\"\n    run: \"true\"\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok, 2 job(s)"), "{out}");
}

#[test]
fn intervals_jitter_and_backoff_have_bounds() {
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 5ms\n    run: \"true\"\n",
        "4:12",
        "`every: 5ms` is shorter than 10ms",
    );
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 1m\n    jitter: 1m\n    run: \"true\"\n",
        "5:13",
        "job `a`: jitter 1m is not shorter than the interval (1m); use less than 1m",
    );
    assert_error(
        "version: 1\njobs:\n  a:\n    schedule: \"@weekly\"\n    jitter: 2d\n    run: \"true\"\n",
        "5:13",
        "job `a`: jitter 2d is longer than a day; use at most 1d",
    );
    assert_error(
        "version: 1\njobs:\n  a:\n    every: 1h\n    retries: { attempts: 1, backoff: 30s }\n    run: \"true\"\n",
        "5:14",
        "retries.backoff has no effect with a single attempt; set retries.attempts to 2 or more",
    );
}

fn chmod(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

const ONE_JOB: &str = "version: 1\njobs:\n  a:\n    every: 5m\n    run: \"true\"\n";
const DROP_IN: &str = "jobs:\n  b:\n    every: 1m\n    run: \"true\"\n";

#[test]
fn group_writable_config_is_refused() {
    let s = Scratch::new("perm-group");
    let cfg = s.write("supervisor.yaml", ONE_JOB);
    chmod(&cfg, 0o664);
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("chmod g-w {}", cfg.display())), "{}", stderr(&o));
}

#[test]
fn writable_drop_in_directory_is_refused_and_nothing_in_it_read() {
    for (mode, fix) in [(0o777, "go-w"), (0o775, "g-w"), (0o1777, "go-w"), (0o757, "o-w")] {
        let s = Scratch::new("dropin-dir-perm");
        let cfg = s.write("supervisor.yaml", ONE_JOB);
        s.write("supervisor.d/10-b.yaml", DROP_IN);
        let dir = s.path("supervisor.d");
        chmod(&dir, mode);
        let o = s.runner(&cfg).arg("check").output().unwrap();
        assert_eq!(o.status.code(), Some(1), "mode {mode:o}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(err.contains(&format!("{}: refusing the drop-in directory", dir.display())), "{err}");
        assert!(err.contains(&format!("`chmod {fix} {}`", dir.display())), "{err}");
        chmod(&dir, 0o755);
        let o = s.runner(&cfg).arg("check").output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("2 job(s)"), "{}", stdout(&o));
    }
}

#[test]
fn writable_directory_above_the_config_is_refused() {
    let s = Scratch::new("parent-perm");
    let cfg = s.write("etc/runner/supervisor.yaml", ONE_JOB);
    let etc = s.path("etc");
    chmod(&etc, 0o775);
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("directory {} is group-writable (mode 0775)", etc.display())), "{err}");
    assert!(err.contains(&format!("`chmod g-w {}`", etc.display())), "{err}");
    chmod(&etc, 0o755);
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn sticky_root_owned_directory_above_the_config_is_accepted() {
    // Like /tmp: others may add entries but not rename or remove root's.
    let s = Scratch::new("sticky");
    let cfg = s.write("tmp/cfg/supervisor.yaml", ONE_JOB);
    chmod(&s.path("tmp"), 0o1777);
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Without the sticky bit it is refused.
    chmod(&s.path("tmp"), 0o777);
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("world-writable (mode 0777)"), "{}", stderr(&o));
}

#[test]
fn drop_in_symlink_is_judged_by_its_target_and_the_way_to_it() {
    let s = Scratch::new("dropin-link");
    let cfg = s.write("supervisor.yaml", ONE_JOB);
    std::fs::create_dir_all(s.path("supervisor.d")).unwrap();
    let target = s.write("elsewhere/open/b.yaml", DROP_IN);
    let link = s.path("supervisor.d/10-b.yaml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("2 job(s)"), "{}", stdout(&o));

    let open = s.path("elsewhere/open");
    chmod(&open, 0o777);
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("{}: refusing the config file", link.display())), "{err}");
    assert!(err.contains(&format!("`chmod go-w {}`", open.display())), "{err}");

    chmod(&open, 0o755);
    chmod(&target, 0o666);
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("chmod go-w {}", target.display())), "{}", stderr(&o));
}

#[test]
fn drop_in_owned_by_another_user_is_refused_when_root() {
    if !nix::unistd::geteuid().is_root() {
        assert!(std::env::var("CI").is_err(), "CI runs as root; this test needs it");
        return;
    }
    let s = Scratch::new("dropin-owner");
    let cfg = s.write("supervisor.yaml", ONE_JOB);
    let d = s.write("supervisor.d/10-b.yaml", DROP_IN);
    nix::unistd::chown(&d, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains(&format!("fix with `chown root: {}`", d.display())), "{}", stderr(&o));
    // A drop-in directory owned by another user is refused too.
    nix::unistd::chown(&d, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    let dir = s.path("supervisor.d");
    nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let o = s.runner(&cfg).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is owned by uid 65534"), "{}", stderr(&o));
}

#[test]
fn daemon_refuses_an_untrusted_config_at_start_and_at_reload() {
    let s = Scratch::new("daemon-trust");
    let tick = s.path("tick");
    let cfg = s.write(
        "supervisor.yaml",
        &format!("version: 1\njobs:\n  a:\n    every: 200ms\n    run: \"echo >> {}\"\n", tick.display()),
    );
    let dir = s.path("supervisor.d");
    std::fs::create_dir_all(&dir).unwrap();
    chmod(&dir, 0o777);
    let o = s.runner(&cfg).arg("run").output().unwrap();
    assert_eq!(o.status.code(), Some(78), "{}", stderr(&o));
    assert!(stderr(&o).contains("refusing the drop-in directory"), "{}", stderr(&o));

    chmod(&dir, 0o755);
    let mut d = Daemon::start(&s, &cfg);
    wait_for(std::time::Duration::from_secs(10), "job a", || !lines(&tick).is_empty());
    // Someone opens the directory and adds a job; the reload is refused.
    chmod(&dir, 0o777);
    let marker = s.path("ran");
    s.write(
        "supervisor.d/10-evil.yaml",
        &format!("jobs:\n  evil:\n    every: 1s\n    run: \"touch {}\"\n", marker.display()),
    );
    d.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(std::time::Duration::from_secs(10), "the refused reload", || d.log_text().contains("reload refused"));
    assert!(d.log_text().contains("refusing the drop-in directory"), "{}", d.log_text());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(!marker.exists(), "a job from an untrusted directory ran");
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(std::time::Duration::from_secs(10));
}

/// YAML syntax errors are reported where the problem starts, in the job they are in: an
/// unclosed quote at its opening quote (libyaml notices at the end of the file, in another
/// job), a line that broke the indentation at that line with one column, a tab as a tab.
#[test]
fn syntax_errors_point_where_the_problem_starts() {
    let quote = "version: 1\njobs:\n  minute:\n    schedule: \"0 * * * * *\"\n    command: [\"/bin/echo\", \"a new minute]\n  root-disk:\n    every: 30s\n    check:\n      metric: disk_used_percent\n      path: /\n";
    assert_error(quote, "5:28", "job `minute`: the \" opened here is never closed");
    let single = "version: 1\njobs:\n  a:\n    every: 10s\n    run: 'echo hi\n  b:\n    every: 1m\n    run: x\n";
    assert_error(single, "5:10", "job `a`: the ' opened here is never closed");
    let indent = "version: 1\njobs:\n  hello:\n    every: 10s\n    run: \"echo hi\"\n   timeout: 5s\n  other:\n    every: 1m\n    run: x\n";
    assert_error(
        indent,
        "6:4",
        "job `hello`: `timeout` is indented 3 space(s), which lines it up with no key above it; indent it as one of `run:` (4), `hello:` (2)",
    );
    let under = "version: 1\njobs:\n  hello:\n    every: 10s\n    run: x\n timeout: 5s\n";
    assert_error(under, "6:2", "job `hello`: `timeout` is indented 1 space(s)");
    let tab = "version: 1\njobs:\n  hello:\n\tevery: 10s\n    run: x\n";
    assert_error(tab, "4:1", "job `hello`: a tab; YAML indents with spaces only");
    let tab_later =
        "version: 1\njobs:\n  hello:\n    every: 10s\n    run: x\n    retries:\n      attempts: 3\n\t  backoff: 1m\n";
    assert_error(tab_later, "8:1", "job `hello`: a tab;");
    for text in [quote, indent, tab] {
        let s = Scratch::new("check-syntax");
        let c = s.write("supervisor.yaml", text);
        let o = s.runner(&c).arg("check").output().unwrap();
        let e = stderr(&o);
        assert!(!e.contains(" at line ") && !e.contains("cannot start any token"), "libyaml's words leak:\n{e}");
    }
}

/// What a value should be, in words with an example, never a parser's type name.
#[test]
fn expected_types_are_said_in_words() {
    let disk = "version: 1\njobs:\n  rd:\n    every: 30s\n    check: disk\n";
    assert_error(
        disk,
        "5:12",
        "job `rd`: `check:` takes a block of settings, for example `check: {metric: disk_used_percent, path: /}`",
    );
    let n = "version: 1\njobs:\n  a:\n    every: 5m\n    run: x\n    retries:\n      attempts: lots\n";
    assert_error(n, "7:17", "`attempts:` takes a whole number, for example `3`; found string \"lots\"");
    for text in [disk, n] {
        let s = Scratch::new("check-words");
        let c = s.write("supervisor.yaml", text);
        let e = stderr(&s.runner(&c).arg("check").output().unwrap());
        for leak in ["struct ", "u32", "usize", "invalid type"] {
            assert!(!e.contains(leak), "`{leak}` leaks:\n{e}");
        }
    }
}

/// `runner check` as the unit's `ExecReload=` (systemd sets `$MAINPID` and `$INVOCATION_ID`):
/// a refused edit is told to the daemon, which keeps its config and records the refusal in
/// its run log, so a failed `systemctl reload` leaves a daemon record. A `$MAINPID` that is
/// not runner is never signalled.
#[test]
fn check_as_exec_reload_tells_the_daemon_of_a_refused_edit() {
    let s = Scratch::new("check-execreload");
    let tick = s.path("tick");
    let cfg = s.write(
        "supervisor.yaml",
        &format!("version: 1\njobs:\n  a:\n    every: 200ms\n    run: \"echo >> {}\"\n", tick.display()),
    );
    let mut d = Daemon::start(&s, &cfg);
    wait_for(std::time::Duration::from_secs(10), "job a", || !lines(&tick).is_empty());
    std::fs::write(&cfg, "version: 1\njobs:\n  a:\n    every: soon\n    run: \"true\"\n").unwrap();

    // Not runner: a sleep under the name MAINPID keeps running.
    let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let o = s
        .runner(&cfg)
        .arg("check")
        .env("MAINPID", other.id().to_string())
        .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!stderr(&o).contains("records the refusal"), "{}", stderr(&o));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(other.try_wait().unwrap().is_none(), "a process that is not runner was signalled");
    other.kill().unwrap();
    other.wait().unwrap();
    // Outside a unit (no INVOCATION_ID) nothing is signalled either.
    let o = s.runner(&cfg).arg("check").env("MAINPID", d.child.id().to_string()).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(!stderr(&o).contains("records the refusal"), "{}", stderr(&o));
    assert!(!d.log_text().contains("reload refused"), "{}", d.log_text());

    let o = s
        .runner(&cfg)
        .arg("check")
        .env("MAINPID", d.child.id().to_string())
        .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("the running daemon (pid {}) keeps its config", d.child.id())),
        "{}",
        stderr(&o)
    );
    wait_for(std::time::Duration::from_secs(10), "the refused reload", || d.log_text().contains("reload refused"));
    let logs = stdout(&s.runner(&cfg).args(["logs", "--json", "--job", "runner"]).output().unwrap());
    assert!(
        logs.lines().any(|l| l.contains("\"outcome\":\"failure\"") && l.contains("reload refused")),
        "a daemon record of the refusal: {logs}"
    );
    // The old config still runs.
    let n = lines(&tick).len();
    wait_for(std::time::Duration::from_secs(10), "job a after the refusal", || lines(&tick).len() > n);
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(std::time::Duration::from_secs(10));
}
