//! The command line through the real binary: `--help` for the program and every command
//! (content kept: examples, exit codes, defaults, environment variables, choices),
//! `--version`, usage errors with exit status 2 and a "did you mean", and the global
//! options wherever they are written, outranking the environment.

mod common;
use common::*;
use std::process::{Command, Output};

fn runner(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("RUNNER_CONFIG").output().unwrap()
}

/// Stdout of a command that must succeed with nothing on stderr.
fn ok(args: &[&str]) -> String {
    let o = runner(args);
    assert!(o.status.success() && stderr(&o).is_empty(), "runner {args:?}: {:?}\n{}", o.status, stderr(&o));
    stdout(&o)
}

/// Stderr of a usage error: exit 2, nothing on stdout.
fn usage_error(args: &[&str]) -> String {
    let o = runner(args);
    assert_eq!(o.status.code(), Some(2), "runner {args:?}: {}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).is_empty(), "runner {args:?}: {}", stdout(&o));
    stderr(&o)
}

const COMMANDS: &[&str] = &[
    "run",
    "once",
    "list",
    "status",
    "notify-test",
    "enqueue",
    "queue",
    "metrics",
    "health",
    "check",
    "calendar",
    "logs",
];

#[test]
fn the_program_help_lists_every_command_the_global_options_and_the_exit_codes() {
    let top = ok(&["--help"]);
    assert_eq!(top, ok(&["-h"]));
    assert_eq!(top, ok(&["help"]));
    assert!(
        top.starts_with("A static-config job scheduler and health supervisor\n\nUsage: runner [OPTIONS] <COMMAND>\n")
    );
    for c in COMMANDS {
        assert!(top.contains(&format!("\n  {c} ")), "{c} missing from:\n{top}");
    }
    assert!(
        top.contains("-c, --config <FILE>") && top.contains("[env: RUNNER_CONFIG] [default: /etc/supervisor.yaml]")
    );
    assert!(top.contains("--state-dir <DIR>") && top.contains("outranks RUNNER_STATE_DIR"), "{top}");
    assert!(top.contains("-V, --version"), "{top}");
    assert!(top.contains("\n  75       the job is already running (use --wait to wait for it), a check\n"), "{top}");
    assert!(top.ends_with("Other commands: 0 success, 1 failure (for example an invalid config), 2 usage error.\n"));
    assert_eq!(ok(&["--version"]), format!("runner {}\n", env!("CARGO_PKG_VERSION")));
    assert_eq!(ok(&["-V"]), ok(&["--version"]));
}

#[test]
fn every_command_has_help_with_its_usage_options_and_examples() {
    for c in COMMANDS {
        let h = ok(&[c, "--help"]);
        assert_eq!(h, ok(&[c, "-h"]), "{c}");
        assert_eq!(h, ok(&["help", c]), "{c}");
        assert!(h.contains(&format!("\nUsage: runner {c}")), "{c}:\n{h}");
        assert!(h.contains("-h, --help"), "{c}:\n{h}");
        assert!(h.contains("\n\nExamples:\n  "), "{c}:\n{h}");
        // Global options where they concern the command; `calendar` reads no config.
        assert_eq!(h.contains("Global options:\n  -c, --config <FILE>"), *c != "calendar", "{c}:\n{h}");
        assert_eq!(h.contains("--state-dir"), *c != "calendar", "{c}:\n{h}");
    }
    let once = ok(&["once", "--help"]);
    assert!(
        once.contains("Usage: runner once [OPTIONS] <JOB>\n\nArguments:\n  <JOB>  The job's name, as in the config")
    );
    assert!(once.contains("      --no-retry           Make one attempt"), "{once}");
    assert!(
        once.contains(
            "75 already running, or skipped (a check\nit depends on not ok, or a `when:` condition); 124 timeout;"
        ),
        "{once}"
    );
    assert!(once.contains("      --ignore-conditions  Run even if the job's `when:` conditions do not hold"), "{once}");
    let logs = ok(&["logs", "--help"]);
    assert!(logs.contains("  -n, --lines <N>  ") && logs.contains("  -f, --follow     "), "{logs}");
    assert!(logs.contains("[possible values: run, skip, alert, resolve, audit, daemon, hook]"), "{logs}");
    assert!(logs.contains("relative to now (-1h, -30m, +10m), or now, today, yesterday, tomorrow.\n"), "{logs}");
    let enqueue = ok(&["enqueue", "--help"]);
    assert!(enqueue.contains("Usage: runner enqueue [OPTIONS] <JOB> [FILE]"), "{enqueue}");
    assert!(
        enqueue.contains("[FILE]  The item's content: a file, or `-` for standard input [default: -]"),
        "{enqueue}"
    );
    let queue = ok(&["queue", "--help"]);
    assert!(queue.contains("--interval <DURATION>  How often --watch prints (`30s`, `1m`, ...) [default: 30s]"));
    let calendar = ok(&["calendar", "--help"]);
    assert!(calendar.contains("  -n, --count <N>    How many fire times to print [default: 5]\n"), "{calendar}");
    let health = ok(&["health", "--help"]);
    assert!(health.contains("Exit codes: 0 HEALTHY; 1 anything else"), "{health}");
}

#[test]
fn usage_errors_exit_2_and_name_the_fix() {
    let e = usage_error(&["lgs"]);
    assert!(e.starts_with("error: unknown command 'lgs'\n\n  tip: did you mean 'logs'?\n"), "{e}");
    assert!(e.contains("Usage: runner [OPTIONS] <COMMAND>") && e.contains("try 'runner --help'"), "{e}");
    let e = usage_error(&["logs", "--josn"]);
    assert!(e.contains("unknown option '--josn'") && e.contains("did you mean '--json'?"), "{e}");
    assert!(e.contains("Usage: runner logs [OPTIONS]") && e.contains("try 'runner logs --help'"), "{e}");
    let e = usage_error(&["--confg", "x", "check"]);
    assert!(e.contains("did you mean '--config'?"), "{e}");
    let e = usage_error(&["logs", "--kind", "runs"]);
    assert!(e.contains("invalid value 'runs' for '--kind <KIND>'"), "{e}");
    assert!(e.contains("did you mean 'run'? possible values: run, skip, alert, resolve, audit, daemon, hook"), "{e}");
    assert!(usage_error(&["once"]).contains("the argument <JOB> is required"));
    assert!(
        usage_error(&["queue", "q", "--interval", "5s"])
            .contains("'--interval <DURATION>' is only used with '--watch'")
    );
    assert!(usage_error(&["status", "extra"]).contains("unexpected argument 'extra'"));
    assert!(usage_error(&["status", "--json", "--json"]).contains("given more than once"));
    assert!(usage_error(&["list", "--json=yes"]).contains("'--json' takes no value"));
    assert!(usage_error(&["logs", "--job"]).contains("'--job <JOB>' needs a value"));
    let e = usage_error(&["calendar", "@daily", "--count", "x"]);
    assert!(e.contains("invalid value 'x' for '--count <N>': invalid digit"), "{e}");
    let e = usage_error(&["metrics", "--interval", "5"]);
    assert!(e.contains("invalid value '5' for '--interval <DURATION>'"), "{e}");
    assert!(usage_error(&["-n", "3"]).contains("unknown option '-n'"));
    // `runner` alone: the whole help, on stderr.
    let e = usage_error(&[]);
    assert!(e.starts_with("A static-config job scheduler") && e.contains("Commands:"), "{e}");
}

#[test]
fn options_take_every_usual_form() {
    let s = Scratch::new("cli-forms");
    let from = "--from=2026-01-01T00:00:00Z";
    let want = "2026-01-01T00:15:00+00:00\n2026-01-01T00:30:00+00:00\n";
    for args in [
        vec!["calendar", "*/15 * * * *", "-n", "2", from, "--tz", "UTC"],
        vec!["calendar", "-n2", "--tz=UTC", from, "--", "*/15 * * * *"],
        vec!["calendar", "*/15 * * * *", "--count=2", "--tz", "UTC", from],
        // `calendar` reads no config, but takes the global options as every command does.
        vec!["--config", "/nonexistent.yaml", "calendar", "*/15 * * * *", "-n", "2", "--tz", "UTC", from],
    ] {
        let o = Command::new(BIN).args(&args).current_dir(&s.dir).output().unwrap();
        assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), (want, ""), "{args:?}");
    }
}

#[test]
fn the_config_flag_works_before_or_after_the_command_and_outranks_the_environment() {
    let s = Scratch::new("cli-config");
    let good = s.write("good.yaml", "version: 1\njobs:\n  a:\n    every: 5m\n    run: \"true\"\n");
    let other = s.write(
        "other.yaml",
        "version: 1\njobs:\n  a:\n    every: 5m\n    run: \"true\"\n  b:\n    every: 5m\n    run: \"true\"\n",
    );
    let check = |env: Option<&std::path::Path>, args: &[&str]| {
        let mut c = s.runner(&good);
        c.env_remove("RUNNER_CONFIG");
        if let Some(e) = env {
            c.env("RUNNER_CONFIG", e);
        }
        let o = c.args(args).output().unwrap();
        (o.status.code(), stdout(&o))
    };
    let (g, o) = (good.to_str().unwrap(), other.to_str().unwrap());
    let one = (Some(0), format!("{g}: ok, 1 job(s) (1 enabled) from 1 file(s)\n"));
    let two = (Some(0), format!("{o}: ok, 2 job(s) (2 enabled) from 1 file(s)\n"));
    assert_eq!(check(Some(&good), &["check"]), one);
    assert_eq!(check(None, &["--config", g, "check"]), one);
    assert_eq!(check(None, &["check", "-c", g]), one);
    assert_eq!(check(None, &[&format!("--config={g}"), "check"]), one);
    assert_eq!(check(Some(&good), &["check", "--config", o]), two, "the flag outranks RUNNER_CONFIG");
    // An empty RUNNER_CONFIG is no RUNNER_CONFIG: the default file is read.
    let o = s.runner(&good).env("RUNNER_CONFIG", "").arg("check").output().unwrap();
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(said.contains("/etc/supervisor.yaml") && !said.contains("good.yaml"), "{said}");
}
