//! Writes the man pages and shell completions from the CLI definitions, for packaging:
//! `cargo run --example generate -- OUT_DIR`. Kept out of the binary so the daemon does not
//! carry the generators (about 170 KB).
//!
//! Pages: `runner.1` and one `runner-<command>.1` per command, whose synopsis reads
//! `runner <command> ...` and whose options include the global ones (under their own
//! heading). The help text after the options (examples, exit codes) is kept as written,
//! line by line, in a no-fill block; `tests/man.rs` renders every page with `groff -ww`.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

/// The text of `after_help` as roff: one output line per source line, nothing reflowed.
fn verbatim(w: &mut dyn Write, heading: &str, text: &str) -> std::io::Result<()> {
    writeln!(w, ".SH {heading}")?;
    writeln!(w, ".nf")?;
    for line in text.lines() {
        let mut l = line.replace('\\', "\\e").replace('-', "\\-").replace('\'', "\\(aq");
        if l.starts_with('.') {
            l.insert_str(0, "\\&");
        }
        writeln!(w, "{l}")?;
    }
    writeln!(w, ".fi")
}

fn page(cmd: clap::Command, see_also: &str) -> std::io::Result<Vec<u8>> {
    let after = cmd.get_after_help().map(|s| s.to_string());
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    man.render_options_section(&mut buf)?;
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut buf)?;
    }
    if let Some(text) = after {
        let heading = if text.starts_with("Exit codes") { "EXIT STATUS" } else { "NOTES" };
        verbatim(&mut buf, heading, &text)?;
    }
    writeln!(buf, ".SH SEE ALSO\n{see_also}")?;
    if cmd.get_version().is_some() {
        man.render_version_section(&mut buf)?;
    }
    Ok(buf)
}

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/packaging".into()));
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    // The pages have no `help` command of their own (`runner help X` is `runner X --help`);
    // building propagates the global flags into every command.
    let mut cmd = runner::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let subs: Vec<clap::Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned().collect();
    let refs: Vec<String> = subs.iter().map(|s| format!("\\fBrunner\\-{}\\fR(1)", s.get_name())).collect();
    std::fs::write(man.join("runner.1"), page(cmd.clone(), &refs.join(",\n"))?)?;
    for sub in subs {
        // A one-shot generator: leaking the few names is simpler than clap's `string` feature.
        let name: &'static str = Box::leak(format!("runner-{}", sub.get_name()).into_boxed_str());
        let bin: &'static str = Box::leak(format!("runner {}", sub.get_name()).into_boxed_str());
        let sub = sub.name(name).bin_name(bin);
        std::fs::write(man.join(format!("{name}.1")), page(sub, "\\fBrunner\\fR(1)")?)?;
    }
    let mut cmd = runner::cli::Cli::command();
    for (shell, file) in [(Shell::Bash, "runner.bash"), (Shell::Zsh, "_runner"), (Shell::Fish, "runner.fish")] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "runner", &mut buf);
        std::fs::write(completions.join(file), buf)?;
    }
    Ok(())
}
