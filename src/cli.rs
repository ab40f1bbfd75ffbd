//! The command line: one definition per subcommand and flag, help text beside it.
//!
//! A thin layer: it parses arguments, loads the plan and calls into the library. It owns
//! exit codes and what is printed for people; it does not schedule, run or record anything
//! itself.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{self, Overrides, Plan};
use crate::schedule::CronExpr;

/// Exit codes of `runner once`, shown in `--help` and README.
pub const EXIT_CODES: &str = "\
Exit codes of `runner once`:
  0        the job succeeded
  1-123    the job's own exit status when it failed
  75       the job is already running (use --wait to wait for it)
  124      the job timed out (as timeout(1))
  125      runner's own error: usage, config, unknown job
  126      the command cannot be executed
  127      the command was not found
  128+N    the job was killed by signal N
Other commands: 0 success, 1 failure (for example an invalid config), 2 usage error.";

pub mod exit {
    pub const ALREADY_RUNNING: u8 = 75;
    /// EX_CONFIG: a service manager can stop restarting on an invalid config.
    pub const CONFIG: u8 = 78;
    pub const TIMEOUT: u8 = 124;
    pub const RUNNER_ERROR: u8 = 125;
    pub const CANNOT_EXECUTE: u8 = 126;
    pub const NOT_FOUND: u8 = 127;
}

#[derive(Parser, Debug)]
#[command(name = "runner", version, about = "A static-config job scheduler and health supervisor", after_help = EXIT_CODES)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, short = 'c', global = true, env = "RUNNER_CONFIG", default_value = config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Where state lives (default /var/lib/runner as root, else $XDG_STATE_HOME/runner);
    /// outranks RUNNER_STATE_DIR and the file's `state_dir`.
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    /// Where locks and the pid file live (default /run/runner as root, else
    /// $XDG_RUNTIME_DIR/runner); outranks RUNNER_RUNTIME_DIR and the file's `runtime_dir`.
    #[arg(long, global = true)]
    pub runtime_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the configuration and its drop-ins, and print a one-line summary.
    #[command(after_help = "Examples:\n  runner check\n  runner check --config ./supervisor.yaml")]
    Check,
    /// Print the next fire times of a cron expression, like `systemd-analyze calendar`.
    #[command(
        after_help = "Examples:\n  runner calendar '*/15 * * * *' --count 4\n  runner calendar '0 2 * * MON-FRI' --from 2026-03-29T00:00:00Z --tz Europe/Berlin"
    )]
    Calendar {
        /// A cron expression (5 fields, or 6 with seconds first) or a macro like @daily.
        expr: String,
        /// How many fire times to print.
        #[arg(long, short = 'n', default_value_t = 5)]
        count: usize,
        /// Print fire times strictly after this instant (RFC 3339, default now).
        #[arg(long)]
        from: Option<String>,
        /// The time zone to evaluate in (IANA name, default local time).
        #[arg(long)]
        tz: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(2),
            };
        }
    };
    let overrides = Overrides::from_flags_and_env(cli.state_dir.clone(), cli.runtime_dir.clone());
    match cli.command {
        Command::Check => cmd_check(&cli.config, &overrides),
        Command::Calendar { expr, count, from, tz } => cmd_calendar(&expr, count, from.as_deref(), tz.as_deref()),
    }
}

fn load_plan(path: &Path, overrides: &Overrides) -> Result<Plan, config::ConfigErrors> {
    config::load(path, overrides)
}

fn cmd_check(path: &Path, overrides: &Overrides) -> ExitCode {
    match load_plan(path, overrides) {
        Ok(plan) => {
            let enabled = plan.jobs.iter().filter(|j| j.enabled).count();
            println!(
                "{}: ok, {} job(s) ({} enabled) from {} file(s)",
                plan.config_path.display(),
                plan.jobs.len(),
                enabled,
                plan.files.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn cmd_calendar(expr: &str, count: usize, from: Option<&str>, tz: Option<&str>) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("runner calendar: {msg}");
        ExitCode::from(2)
    };
    let cron = match CronExpr::parse(expr) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let tz = match tz {
        None => jiff::tz::TimeZone::system(),
        Some(name) => match jiff::tz::db().get(name) {
            Ok(tz) => tz,
            Err(_) => {
                return fail(format!("unknown time zone `{name}`; use an IANA name like `Europe/Berlin` or `UTC`"));
            }
        },
    };
    let from = match from {
        None => jiff::Timestamp::now(),
        Some(s) => match s.parse::<jiff::Timestamp>() {
            Ok(t) => t,
            Err(e) => return fail(format!("invalid --from `{s}`: {e}; write RFC 3339 like 2026-03-29T00:00:00Z")),
        },
    };
    let start = from.to_zoned(tz.clone());
    let mut out = std::io::stdout().lock();
    for t in crate::schedule::upcoming(&cron, &start, &tz, count) {
        let _ = writeln!(out, "{}", t.strftime("%Y-%m-%dT%H:%M:%S%:z"));
    }
    ExitCode::SUCCESS
}
