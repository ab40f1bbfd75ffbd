//! Writes the man pages and shell completions from the CLI's one table
//! (`runner::cli::flags`, which the parser and `--help` read too), for packaging:
//! `cargo run --example generate -- OUT_DIR`. Kept out of the binary so the daemon does not
//! carry the generators.
//!
//! Pages (`man/pages.rs`): `runner.1` and one `runner-<command>.1` per command, whose
//! synopsis reads `runner <command> ...` and whose options include the global ones (under
//! their own heading). The help text after the options (examples, exit codes) is kept as
//! written, line by line, in a no-fill block; `tests/man.rs` renders every page with
//! `groff -ww`. Completions (`man/completions.rs`): bash, zsh and fish; `tests/completions.rs`
//! runs them.
//!
//! `supervisor.yaml.5`: every config key, its default and an example, from `man/config_page.rs`,
//! checked both ways against the parser's field lists (`runner::config::raw::sections`): a
//! key the parser takes without a line there, or a line for a key it does not take, is an error.

use std::path::PathBuf;

#[path = "man/completions.rs"]
mod completions;
#[path = "man/config_page.rs"]
mod config_page;
#[path = "man/pages.rs"]
mod pages;

use pages::roff;

/// `supervisor.yaml(5)`, or what in it disagrees with the parser.
fn config_page() -> Result<Vec<u8>, String> {
    use config_page::{KEYS, SECTIONS};
    let parser = runner::config::raw::sections();
    let mut problems = Vec::new();
    for (section, fields) in &parser {
        for f in fields.iter() {
            let doc = *section == "defaults" || KEYS.iter().any(|k| k.0 == *section && k.1 == *f);
            if !doc {
                problems
                    .push(format!("`{section}.{f}` is a key the parser takes; add it to examples/man/config_page.rs"));
            }
        }
    }
    for k in KEYS {
        if !parser.iter().any(|(s, fields)| *s == k.0 && fields.contains(&k.1)) {
            problems.push(format!("`{}.{}` is documented but the parser does not take it", k.0, k.1));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    let mut w = Vec::new();
    let mut out = |s: String| {
        w.extend_from_slice(s.as_bytes());
        w.push(b'\n');
    };
    out(format!(".TH SUPERVISOR.YAML 5 \"\" \"runner {}\"", env!("CARGO_PKG_VERSION")));
    out(".SH NAME".into());
    out("supervisor.yaml \\- the configuration of runner".into());
    out(".SH DESCRIPTION".into());
    out(roff(
        "runner reads one YAML file, /etc/supervisor.yaml by default (--config, RUNNER_CONFIG), and the drop-ins of its include_dir. runner check validates them and names the file, line and column of each problem. Durations are written 30s, 5m, 1h30m or 2d; sizes 512, 64KiB or 1MB.",
    ));
    out(".PP".into());
    out("A small example:".into());
    out(".PP".into());
    out(".nf".into());
    for l in [
        "version: 1",
        "jobs:",
        "  backup:",
        "    schedule: \"0 3 * * *\"",
        "    run: /usr/local/bin/backup",
        "    timeout: 2h",
        "    retries: {attempts: 3, backoff: 1m}",
        "  root-disk:",
        "    every: 30s",
        "    check: {metric: disk_used_percent, path: /, warn: 85, crit: 95}",
    ] {
        out(roff(l));
    }
    out(".fi".into());
    for (section, heading, intro) in SECTIONS {
        out(format!(".SH {heading}"));
        out(roff(intro));
        if *section == "defaults" {
            let fields = parser.iter().find(|(s, _)| *s == "defaults").map(|(_, f)| f.join(", ")).unwrap_or_default();
            out(".PP".into());
            out(format!("\\fB{}\\fR.", roff(&fields)));
            continue;
        }
        for (_, key, default, example, what) in KEYS.iter().filter(|k| k.0 == *section) {
            out(".TP".into());
            // A key without a default is one every file must give: "(required)", not "(default: required)".
            if *default == "required" {
                out(format!("\\fB{}\\fR (required)", roff(key)));
            } else {
                out(format!("\\fB{}\\fR (default: {})", roff(key), roff(default)));
            }
            out(roff(what));
            out(".br".into());
            out(format!("Example: \\fB{}: {}\\fR", roff(key), roff(example)));
        }
        if *section == "when" {
            out(".PP".into());
            out("For example, upload when on mains power with the uplink up, within 2 hours of each due time:".into());
            out(".PP".into());
            out(".nf".into());
            config_page::WHEN_EXAMPLE.iter().for_each(|l| out(roff(l)));
            out(".fi".into());
        }
        if *section == "notify" {
            out(".PP".into());
            out("For example, a nightly backup that reports its start, success and exit status:".into());
            out(".PP".into());
            out(".nf".into());
            config_page::NOTIFY_EXAMPLE.iter().for_each(|l| out(roff(l)));
            out(".fi".into());
        }
    }
    out(".SH SEE ALSO".into());
    out("\\fBrunner\\fR(1), \\fBrunner\\-check\\fR(1)".into());
    Ok(w)
}

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/packaging".into()));
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    std::fs::write(man.join("runner.1"), pages::program())?;
    for c in runner::cli::flags::COMMANDS {
        std::fs::write(man.join(format!("runner-{}.1", c.name)), pages::command(c))?;
    }
    let page = config_page().map_err(std::io::Error::other)?;
    std::fs::write(man.join("supervisor.yaml.5"), page)?;
    for (text, file) in
        [(completions::bash(), "runner.bash"), (completions::zsh(), "_runner"), (completions::fish(), "runner.fish")]
    {
        std::fs::write(completions.join(file), text)?;
    }
    Ok(())
}
