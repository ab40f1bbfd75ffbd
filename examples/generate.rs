//! Writes the man pages and shell completions from the CLI definitions, for packaging:
//! `cargo run --example generate -- OUT_DIR`. Kept out of the binary so the daemon does not
//! carry the generators (about 170 KB).

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "target/packaging".into()));
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let cmd = runner::cli::Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(man.join("runner.1"), buf)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // A one-shot generator: leaking the few names is simpler than clap's `string` feature.
        let name: &'static str = Box::leak(format!("runner-{}", sub.get_name()).into_boxed_str());
        let mut buf = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name)).render(&mut buf)?;
        std::fs::write(man.join(format!("{name}.1")), buf)?;
    }
    for (shell, file) in [(Shell::Bash, "runner.bash"), (Shell::Zsh, "_runner"), (Shell::Fish, "runner.fish")] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "runner", &mut buf);
        std::fs::write(completions.join(file), buf)?;
    }
    Ok(())
}
