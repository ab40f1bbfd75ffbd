//! `runner status` as people read it: aligned columns, relative times beside absolute ones,
//! no time in the past for a stopped daemon, checks with their duration and next sample,
//! colour on a terminal only.

mod common;
use common::*;
use std::process::Command;

fn setup(s: &Scratch) -> std::path::PathBuf {
    let c = s.write(
        "supervisor.yaml",
        "version: 1\njobs:\n  disk:\n    check: { metric: disk_used_percent, path: / }\n  broken:\n    every: 1h\n    run: \"exit 3\"\n  nightly:\n    schedule: \"0 3 * * *\"\n    run: \"true\"\n",
    );
    for job in ["disk", "broken"] {
        s.runner(&c).args(["once", job]).output().unwrap();
    }
    c
}

#[test]
fn columns_line_up_and_times_say_how_far_away_they_are() {
    let s = Scratch::new("status-table");
    let c = setup(&s);
    let o = s.runner(&c).arg("status").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains('\x1b'), "no colour when piped: {out:?}");
    let lines: Vec<&str> = out.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("JOB ")).unwrap();
    let next_col = lines[header].find("NEXT").unwrap();
    let fails_end = lines[header].find("FAILS").unwrap() + "FAILS".len();
    let row =
        |name: &str| *lines.iter().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{out}"));
    for name in ["disk", "broken", "nightly"] {
        let r = row(name);
        // FAILS is right-aligned under its header, NEXT starts under its header.
        assert_ne!(r.as_bytes()[fails_end - 1], b' ', "{name}: FAILS not under its header:\n{out}");
        assert_ne!(r.as_bytes()[next_col], b' ', "{name}: NEXT not under its header:\n{out}");
        assert_eq!(r.as_bytes()[next_col - 1], b' ', "{name}: NEXT not under its header:\n{out}");
    }
    // The daemon is stopped: the interval job is due when it starts, never in the past.
    assert!(row("broken")[next_col..].starts_with("when the daemon starts"), "{out}");
    assert!(row("broken").contains(" ago)") || row("broken").contains("(now)"), "{out}");
    assert!(row("nightly")[next_col..].contains("(in "), "{out}");
    // A check shows how long its sample took and when the next one is due.
    let disk = row("disk");
    assert!(disk.contains(" ms "), "{out}");
    assert!(disk[next_col..].contains("(in "), "{out}");
    let check_row = lines.iter().skip(header + 4).find(|l| l.starts_with("disk ")).unwrap();
    assert!(check_row.contains("(now)") || check_row.contains(" ago)"), "{out}");
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let s = Scratch::new("status-colour");
    let c = setup(&s);
    if Command::new("script").arg("--version").output().is_err() {
        skip_missing("script(1) from util-linux, for a terminal");
        return;
    }
    let run_on_tty = |no_color: bool| {
        let mut cmd = s.runner(&c);
        cmd.env_remove("NO_COLOR");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let inner = format!("{BIN} status");
        let mut sc = Command::new("script");
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => sc.env(k, v),
                None => sc.env_remove(k),
            };
        }
        stdout(&sc.args(["-qec", &inner, "/dev/null"]).output().unwrap())
    };
    let coloured = run_on_tty(false);
    assert!(coloured.contains("\x1b[31mfailure"), "failure in red on a terminal: {coloured:?}");
    assert!(coloured.contains("\x1b[32mok"), "ok in green on a terminal: {coloured:?}");
    let plain = run_on_tty(true);
    assert!(plain.contains("failure"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
}
