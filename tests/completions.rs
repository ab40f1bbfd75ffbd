//! The shell completions `examples/generate.rs` writes, run in the shells themselves: bash's
//! completion function is called with COMP_WORDS as bash would (commands, options, the global
//! options only where they concern the command, value choices, job names read through the
//! real binary from the config the line names); fish's through `complete -C`; zsh's file
//! must parse (`zsh -n`) and
//! name the jobs of the config on the line.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the generator wrote for this test.
fn generate(s: &Scratch) -> PathBuf {
    generate_packaging_files(s).join("completions")
}

/// What bash offers for `line` (the cursor at its end), in a shell that sourced `runner.bash`.
fn bash_complete(script: &Path, dir: &Path, line: &str) -> Vec<String> {
    // The program as typed is the binary under test, so job names come from it.
    let line = line.replacen("runner", BIN, 1);
    let prog = format!(
        "source {}\nread -ra COMP_WORDS <<< \"$LINE\"\n[[ $LINE == *' ' ]] && COMP_WORDS+=('')\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n_runner\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display()
    );
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &prog])
        .env("LINE", &line)
        .env_remove("RUNNER_CONFIG")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success() && stderr(&o).is_empty(), "bash on {line:?}: {}", stderr(&o));
    let mut v: Vec<String> = stdout(&o).lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn bash_completes_commands_options_values_and_jobs() {
    if !have("bash") {
        skip_missing("bash");
        return;
    }
    let s = Scratch::new("complete-bash");
    let script = generate(&s).join("runner.bash");
    let cfg = s.write("jobs.yaml", "version: 1\njobs:\n  backup:\n    every: 1h\n    run: \"true\"\n  beacon:\n    every: 1m\n    run: \"true\"\n  clean:\n    every: 1h\n    run: \"true\"\n");
    let c = |line: &str| bash_complete(&script, &s.dir, line);
    assert_eq!(c("runner lo"), ["logs"]);
    assert_eq!(c("runner c"), ["calendar", "check"]);
    assert_eq!(c("runner --config /x q"), ["queue"], "a global option's value is not the command");
    assert_eq!(c("runner logs --k"), ["--kind"]);
    assert_eq!(c("runner logs --kind "), ["alert", "audit", "daemon", "hook", "resolve", "run", "skip"]);
    assert_eq!(c("runner logs --kind a"), ["alert", "audit"]);
    assert_eq!(c("runner --"), ["--config", "--help", "--runtime-dir", "--state-dir", "--version"]);
    let calendar = c("runner calendar --");
    assert_eq!(calendar, ["--count", "--from", "--help", "--tz"], "calendar reads no config");
    assert!(c("runner status --").contains(&"--state-dir".to_string()));
    assert_eq!(c("runner help lo"), ["logs"]);
    // Job names from the config named on the line, through the real binary.
    let cfg = cfg.to_str().unwrap();
    assert_eq!(c(&format!("runner --config {cfg} once b")), ["backup", "beacon"]);
    assert_eq!(c(&format!("runner once --dry-run -c {cfg} cl")), ["clean"]);
    assert_eq!(c(&format!("runner -c {cfg} once backup ")), Vec::<String>::new(), "once takes one job");
    // Files where a value is a file.
    s.write("item-7.json", "{}");
    assert_eq!(c(&format!("runner -c {cfg} enqueue backup item")), ["item-7.json"]);
    assert_eq!(c("runner logs --file item"), ["item-7.json"]);
}

#[test]
fn zsh_and_fish_completions_parse_and_fish_completes() {
    let s = Scratch::new("complete-shells");
    let dir = generate(&s);
    for (shell, file) in [("zsh", "_runner"), ("fish", "runner.fish")] {
        if !have(shell) {
            skip_missing(&format!("{shell} (.ci/run installs it)"));
            continue;
        }
        let o = Command::new(shell).arg("-n").arg(dir.join(file)).output().unwrap();
        assert!(o.status.success() && stderr(&o).is_empty(), "{shell} -n {file}: {}", stderr(&o));
    }
    if have("zsh") {
        // Job names through the real binary, from the config the line names; compsys's
        // `_describe` and `compdef` stand in as printers.
        let cfg = s.write("jobs.yaml", "version: 1\njobs:\n  backup:\n    every: 1h\n    run: \"true\"\n");
        let prog = format!(
            "compdef() {{ :; }}; _describe() {{ print -l ${{(P)argv[-1]}}; }}; source {}; BUFFER='{BIN} --config {} once '; _runner_jobs",
            dir.join("_runner").display(),
            cfg.display()
        );
        let o = Command::new("zsh").args(["-f", "-c", &prog]).output().unwrap();
        assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("backup\n", ""), "zsh job names");
    }
    if !have("fish") {
        return;
    }
    let complete = |line: &str| {
        let prog = format!("source {}; complete -C '{line}'", dir.join("runner.fish").display());
        let o = Command::new("fish").args(["--no-config", "-c", &prog]).output().unwrap();
        assert!(o.status.success(), "fish on {line:?}: {}", stderr(&o));
        stdout(&o).lines().map(|l| l.split('\t').next().unwrap_or("").to_string()).collect::<Vec<_>>()
    };
    assert!(complete("runner lo").contains(&"logs".to_string()), "{:?}", complete("runner lo"));
    let kinds = complete("runner logs --kind ");
    assert!(kinds.contains(&"alert".to_string()) && kinds.contains(&"daemon".to_string()), "{kinds:?}");
    let cal = complete("runner calendar --");
    assert!(cal.contains(&"--count".to_string()) && !cal.contains(&"--state-dir".to_string()), "{cal:?}");
    assert!(complete("runner status --").contains(&"--state-dir".to_string()));
}
