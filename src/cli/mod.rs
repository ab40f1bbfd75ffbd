//! The command line: dispatch of each command and what it prints. Its definition (every
//! command and option, with help) is `flags`; `parse` reads arguments against it.
//!
//! A thin layer: it parses arguments, loads the plan and calls into the library. It owns
//! exit codes and what is printed for people; it does not schedule, run or record anything
//! itself.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{self, Overrides, Plan};
use crate::config::{CommandLine, Job, Schedule};
use crate::jobs::{self, Ctx, Request};
use crate::record::{Outcome, Record, Trigger};
use crate::schedule::CronExpr;
use crate::sinks::state::StateStore;

pub use flags::EXIT_CODES;

pub use crate::exit;

/// `println!` for what people read: on a closed pipe (`runner status | head -1`) the process
/// ends as `ls` does, by SIGPIPE and without a word, instead of panicking.
macro_rules! outln {
    () => { $crate::cli::out_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::cli::out_line(format_args!($($arg)*)) };
}

pub mod flags;
pub mod logs;
pub mod parse;

/// One line to stdout; see [`outln!`].
pub fn out_line(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        quiet_exit_on(&e);
    }
}

/// Ends the process by SIGPIPE (as `ls` and `journalctl` end) when `e` says the reader went
/// away; other write errors are said once on stderr, and the command exits 1.
pub fn quiet_exit_on(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        runner_sys::signal::default_sigpipe();
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGPIPE);
        std::process::exit(141);
    }
    eprintln!("runner: cannot write to stdout: {e}");
    std::process::exit(1);
}

/// What the command line asks for, once parsed (`parse`) and its values converted.
#[derive(Debug)]
pub struct Cli {
    pub config: PathBuf,
    pub state_dir: Option<PathBuf>,
    pub runtime_dir: Option<PathBuf>,
    pub command: Command,
}

/// One variant per entry of `flags::COMMANDS`.
#[derive(Debug)]
pub enum Command {
    Run { pidfile: Option<PathBuf> },
    Once { job: String, dry_run: bool, no_retry: bool, wait: bool, ignore_conditions: bool },
    List { json: bool },
    Status { json: bool },
    Enqueue { job: String, file: PathBuf },
    NotifyTest { job: String },
    Queue { job: String, json: bool, watch: bool, interval: String },
    Metrics { json: bool, paths: Vec<PathBuf>, interval: std::time::Duration, processes: Vec<String> },
    Health { json: bool },
    Check,
    Calendar { expr: String, count: usize, from: Option<String>, tz: Option<String> },
    Logs(LogsArgs),
}

#[derive(Debug)]
pub struct LogsArgs {
    pub lines: Option<usize>,
    pub follow: bool,
    pub job: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub failed: bool,
    pub json: bool,
    pub output: bool,
    pub file: Option<PathBuf>,
}

impl Cli {
    /// Parses `args` (without the program name); `Err` is what to print and the exit status.
    pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, (String, ExitCode)> {
        match parse::parse(args) {
            Ok(parse::Parsed::Run(m)) => Cli::from_matches(&m).map_err(|u| (u.to_string(), ExitCode::from(2))),
            Ok(parse::Parsed::Help(cmd)) => Err((parse::help(cmd), ExitCode::SUCCESS)),
            Ok(parse::Parsed::Version) => {
                Err((format!("{} {}\n", flags::NAME, env!("CARGO_PKG_VERSION")), ExitCode::SUCCESS))
            }
            // `runner` alone: the whole help, as a usage error.
            Err(u) if u.cmd.is_none() && u.message == parse::NO_COMMAND => Err((parse::help(None), ExitCode::from(2))),
            Err(u) => Err((u.to_string(), ExitCode::from(2))),
        }
    }

    fn from_matches(m: &parse::Matches) -> Result<Cli, parse::Usage> {
        let path = |long| m.os(long).map(PathBuf::from);
        let command = match m.cmd.name {
            "run" => Command::Run { pidfile: path("pidfile") },
            "once" => Command::Once {
                job: m.arg_text(0)?,
                dry_run: m.flag("dry-run"),
                no_retry: m.flag("no-retry"),
                wait: m.flag("wait"),
                ignore_conditions: m.flag("ignore-conditions"),
            },
            "list" => Command::List { json: m.flag("json") },
            "status" => Command::Status { json: m.flag("json") },
            "notify-test" => Command::NotifyTest { job: m.arg_text(0)? },
            "enqueue" => Command::Enqueue { job: m.arg_text(0)?, file: PathBuf::from(m.arg(1)) },
            "queue" => Command::Queue {
                job: m.arg_text(0)?,
                json: m.flag("json"),
                watch: m.flag("watch"),
                interval: m.text("interval")?.unwrap_or_default(),
            },
            "metrics" => Command::Metrics {
                json: m.flag("json"),
                paths: m.all("path").into_iter().map(PathBuf::from).collect(),
                interval: m.parsed("interval", crate::time::parse)?.unwrap_or_default(),
                processes: m.all("process").into_iter().map(|p| p.to_string_lossy().into_owned()).collect(),
            },
            "health" => Command::Health { json: m.flag("json") },
            "check" => Command::Check,
            "calendar" => Command::Calendar {
                expr: m.arg_text(0)?,
                count: m.parsed("count", |s| s.parse::<usize>().map_err(|e| e.to_string()))?.unwrap_or(5),
                from: m.text("from")?,
                tz: m.text("tz")?,
            },
            "logs" => Command::Logs(LogsArgs {
                lines: m.parsed("lines", |s| s.parse::<usize>().map_err(|e| e.to_string()))?,
                follow: m.flag("follow"),
                job: m.text("job")?,
                kind: m.text("kind")?,
                since: m.text("since")?,
                until: m.text("until")?,
                failed: m.flag("failed"),
                json: m.flag("json"),
                output: m.flag("output"),
                file: path("file"),
            }),
            other => unreachable!("bug: command `{other}` is in flags::COMMANDS but not handled here"),
        };
        Ok(Cli {
            config: path("config").unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG)),
            state_dir: path("state-dir"),
            runtime_dir: path("runtime-dir"),
            command,
        })
    }
}

pub fn main() -> ExitCode {
    // The daemon's idle stack is every frame above its event loop's: this one stays small,
    // and parsing and the other commands (whose locals take ~20 KB) run in frames of their
    // own, given back when the daemon settles.
    let (cli, overrides) = match parse_cli() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cli.command {
        Command::Run { pidfile } => daemon(&cli.config, &overrides, pidfile.as_deref()),
        _ => dispatch(cli, overrides),
    }
}

#[inline(never)]
fn daemon(config: &Path, overrides: &Overrides, pidfile: Option<&Path>) -> ExitCode {
    if let Err(code) = block_signals() {
        return code;
    }
    let mode = crate::contain::init();
    log::info!("containment: {}", mode.describe());
    let code = crate::scheduler::run(config, overrides, pidfile);
    crate::contain::finish();
    code
}

/// The daemon and `runner once` read their signals from a signalfd (crate::signals): the
/// signals are blocked before any thread starts, so every thread inherits the mask. Other
/// commands keep the default actions (Ctrl-C ends `logs --follow`).
fn block_signals() -> Result<(), ExitCode> {
    crate::signals::block().map_err(|e| {
        eprintln!("runner: cannot block TERM, INT, HUP and CHLD for the signalfd: {e}");
        ExitCode::from(exit::RUNNER_ERROR)
    })
}

#[inline(never)]
fn parse_cli() -> Result<(Cli, Overrides), ExitCode> {
    let cli = match Cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err((text, code)) => {
            if code == ExitCode::SUCCESS {
                let mut out = std::io::stdout().lock();
                if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                    quiet_exit_on(&e);
                }
            } else {
                eprint!("{text}");
                if !text.ends_with('\n') {
                    eprintln!();
                }
            }
            return Err(code);
        }
    };
    let overrides = Overrides::from_flags_and_env(cli.state_dir.clone(), cli.runtime_dir.clone());
    crate::logging::init(crate::logging::level_from_env());
    Ok((cli, overrides))
}

/// Every command but `run`.
#[inline(never)]
fn dispatch(cli: Cli, overrides: Overrides) -> ExitCode {
    if let Command::Once { dry_run: false, .. } = cli.command
        && let Err(code) = block_signals()
    {
        return code;
    }
    match cli.command {
        Command::Run { .. } => unreachable!("cli::main runs the daemon itself"),
        Command::Once { job, dry_run, no_retry, wait, ignore_conditions } => {
            let how = OnceHow { no_retry, wait, conditions: !ignore_conditions };
            cmd_once(&cli.config, &overrides, &job, dry_run, how)
        }
        Command::List { json } => cmd_list(&cli.config, &overrides, json),
        Command::Status { json } => cmd_status(&cli.config, &overrides, json),
        Command::Check => cmd_check(&cli.config, &overrides),
        Command::Health { json } => cmd_health(&cli.config, &overrides, json),
        Command::Metrics { json, paths, interval, processes } => {
            cmd_metrics(&cli.config, &overrides, json, paths, interval, &processes)
        }
        Command::Enqueue { job, file } => cmd_enqueue(&cli.config, &overrides, &job, &file),
        Command::NotifyTest { job } => cmd_notify_test(&cli.config, &overrides, &job),
        Command::Queue { job, json, watch, interval } => {
            cmd_queue(&cli.config, &overrides, &job, json, watch.then_some(interval.as_str()))
        }
        Command::Calendar { expr, count, from, tz } => cmd_calendar(&expr, count, from.as_deref(), tz.as_deref()),
        Command::Logs(args) => logs::cmd_logs(&cli.config, &overrides, &args),
    }
}

fn cmd_metrics(
    path: &Path,
    overrides: &Overrides,
    json: bool,
    mut paths: Vec<PathBuf>,
    interval: std::time::Duration,
    processes: &[String],
) -> ExitCode {
    use crate::metrics::per_process::{self, CpuUse};
    use crate::metrics::{Options, Sampler};
    // The config only matters for proc_root/sys_root; without one the environment decides.
    let roots = match path.exists() {
        true => {
            load_plan(path, overrides).map(|p| p.roots).unwrap_or_else(|_| crate::metrics::Roots::resolve(None, None))
        }
        false => crate::metrics::Roots::resolve(None, None),
    };
    if paths.is_empty() {
        paths.push(PathBuf::from("/"));
    }
    let (mut sampler, problems) = Sampler::open(&roots, &Options::everything(paths));
    for p in &problems {
        eprintln!("runner metrics: {p}");
    }
    let hz = per_process::ticks_per_second();
    let mut cpu = vec![CpuUse::default(); processes.len()];
    let mut found = vec![Err(String::new()); processes.len()];
    let mut each = Vec::new();
    let mut scan = |cpu: &mut [CpuUse], found: &mut [Result<(per_process::Matched, Option<f64>), String>]| {
        for (i, name) in processes.iter().enumerate() {
            found[i] = per_process::scan(&roots, Some(name), None, Some(&mut each))
                .map(|m| (m, cpu[i].update(per_process::boot_seconds(), &each, hz)));
        }
    };
    let mut s = sampler.new_sample();
    sampler.sample(&mut s);
    scan(&mut cpu, &mut found);
    std::thread::sleep(interval);
    sampler.sample(&mut s);
    scan(&mut cpu, &mut found);
    let mut process_rows = Vec::new();
    for (name, f) in processes.iter().zip(&found) {
        match f {
            Ok((m, p)) => process_rows.push(serde_json::json!({
                "name": name,
                "count": m.count,
                "rss_bytes": m.rss_bytes,
                "cpu_percent": p.filter(|_| m.count > 0).map(|p| (p * 100.0).round() / 100.0),
            })),
            Err(e) => eprintln!("runner metrics: --process {name}: {e}"),
        }
    }
    for (p, d) in sampler.disks.iter().zip(&s.disks) {
        if d.is_none() {
            eprintln!(
                "runner metrics: cannot statvfs {}: {}",
                p.display(),
                crate::metrics::disk_usage(p).err().map(|e| e.to_string()).unwrap_or_default()
            );
        }
    }
    if json {
        let mut v = sampler.to_json(&s);
        if !processes.is_empty() {
            v["processes"] = serde_json::Value::Array(process_rows);
        }
        outln!("{v}");
    } else {
        print_metrics(&sampler, &s);
        for p in &process_rows {
            let cpu = p["cpu_percent"].as_f64().map(|c| format!("{c:5.1} %")).unwrap_or_else(|| "    - %".into());
            outln!(
                "process      {cpu}  CPU, {} MiB RSS, {} matching  {}",
                p["rss_bytes"].as_u64().unwrap_or(0) >> 20,
                p["count"],
                p["name"].as_str().unwrap_or_default()
            );
        }
    }
    let all_read = problems.is_empty() && s.disks.iter().all(Option::is_some) && found.iter().all(Result::is_ok);
    if all_read { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn print_metrics(sampler: &crate::metrics::Sampler, s: &crate::metrics::Sample) {
    if let Some(c) = s.cpu {
        outln!(
            "cpu          {:5.1} %  (iowait {:.1} %, steal {:.1} %, {} cores)",
            c.busy,
            c.iowait,
            c.steal,
            s.cores.len()
        );
    }
    if let Some(m) = s.mem {
        outln!(
            "memory       {:5.1} %  used, {} MiB available of {} MiB; swap {:.1} % used",
            m.used_percent(),
            m.available >> 20,
            m.total >> 20,
            m.swap_used_percent()
        );
    }
    if let Some(l) = s.load {
        outln!(
            "load         {:.2} {:.2} {:.2}  ({} running, {} threads)",
            l.load1,
            l.load5,
            l.load15,
            l.running,
            l.total
        );
    }
    if let Some(n) = s.procs {
        outln!("processes    {n}");
    }
    for (p, d) in sampler.disks.iter().zip(&s.disks) {
        match d {
            Some(d) => outln!(
                "disk         {:5.1} %  used, inodes {:.1} %  {}",
                d.used_percent,
                d.inodes_used_percent,
                p.display()
            ),
            None => outln!("disk             -    {} (unreadable)", p.display()),
        }
    }
    for (sensor, t) in sampler.sensors.iter().zip(&s.temperatures) {
        match t {
            Some(t) => outln!("temperature  {t:5.1} C  {}", sensor.name),
            None => outln!("temperature      -    {} (unreadable)", sensor.name),
        }
    }
    for (name, p) in crate::metrics::PRESSURE.iter().zip(&s.pressure) {
        if let Some(p) = p {
            let full = p.full.map(|f| format!(", full avg10 {:.2}", f.avg10)).unwrap_or_default();
            outln!("pressure     {name}: some avg10 {:.2} avg60 {:.2}{full}", p.some.avg10, p.some.avg60);
        }
    }
}

fn load_plan(path: &Path, overrides: &Overrides) -> Result<Plan, config::ConfigErrors> {
    config::load(path, overrides)
}

fn cmd_check(path: &Path, overrides: &Overrides) -> ExitCode {
    match load_plan(path, overrides) {
        Ok(plan) => {
            let enabled = plan.jobs.iter().filter(|j| j.enabled).count();
            let notifying = plan.jobs.iter().filter_map(|j| j.notify.as_deref().map(|n| (j.name.as_str(), n)));
            match crate::pings::check_client(notifying) {
                Some(Err(e)) => {
                    eprintln!("{}: {e}", plan.config_path.display());
                    return ExitCode::FAILURE;
                }
                Some(Ok(m)) => outln!("{m}"),
                None => {}
            }
            outln!(
                "{}: ok, {} job(s) ({} enabled) from {} file(s)",
                plan.config_path.display(),
                plan.jobs.len(),
                enabled,
                plan.files.len()
            );
            for job in &plan.jobs {
                let uid = job.run_as.as_ref().map_or_else(|| nix::unistd::geteuid().as_raw(), |u| u.uid);
                for w in job.kind.warnings(uid) {
                    eprintln!("warning: job `{}`: {w}", job.name);
                }
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            if let Some(pid) = reloading_daemon() {
                // The daemon reads the file itself, refuses it and records why (the run log,
                // the journal): a refused `systemctl reload` is not only in systemctl's output.
                match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGHUP) {
                    Ok(()) => eprintln!("the running daemon (pid {pid}) keeps its config and records the refusal"),
                    Err(e) => eprintln!("could not tell the running daemon (pid {pid}): {e}"),
                }
            }
            ExitCode::FAILURE
        }
    }
}

/// The daemon whose reload this `check` is: systemd runs `ExecReload=` commands with the
/// unit's `$MAINPID` (and `$INVOCATION_ID`) set. The pid is taken only when that process runs
/// this same binary (the same file, by device and inode), so a stray `MAINPID` in a shell
/// never signals another process.
fn reloading_daemon() -> Option<i32> {
    std::env::var_os("INVOCATION_ID")?;
    let pid: i32 = std::env::var("MAINPID").ok()?.trim().parse().ok().filter(|p| *p > 1)?;
    let same = crate::proc::runs_own_executable(pid)?;
    (same && pid as u32 != crate::host::pid()).then_some(pid)
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
        None => crate::time::local_zone(),
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
        let _ = writeln!(out, "{}", crate::time::offset_text(t.timestamp(), &tz, false));
    }
    ExitCode::SUCCESS
}

/// The first of `errors` on one line, with how many more there are.
pub(crate) fn first_error(errors: &config::ConfigErrors) -> String {
    let first = errors.0.first().map(|e| e.to_string()).unwrap_or_default();
    let first = first.lines().next().unwrap_or_default();
    match errors.0.len() {
        0 | 1 => first.to_string(),
        n => format!("{first} (and {} more; `runner check` lists them)", n - 1),
    }
}

/// The plan for the commands that report on what runs (`status`, `health`, `logs`): the file
/// on disk, or, when it is refused, what the daemon last loaded (`sinks::loaded`), with one
/// line on stderr saying so and where the file is wrong. The file's errors when there is no
/// copy to fall back to.
pub(crate) fn plan_or_loaded(path: &Path, overrides: &Overrides) -> Result<Plan, config::ConfigErrors> {
    let errors = match load_plan(path, overrides) {
        Ok(plan) => return Ok(plan),
        Err(errors) => errors,
    };
    let Some((plan, loaded)) = loaded_plan(path, overrides) else { return Err(errors) };
    if config_missing(path) {
        eprintln!(
            "runner: there is no config at {}; showing what the daemon loaded from {} at {}",
            path.display(),
            plan.config_path.display(),
            loaded.loaded_at
        );
    } else {
        eprintln!(
            "runner: the config on disk is refused: {}; showing what the daemon loaded at {}",
            first_error(&errors),
            loaded.loaded_at
        );
    }
    Ok(plan)
}

/// What the daemon whose runtime directory the flags, the environment or the defaults name
/// last loaded (`sinks::loaded`), resolved again.
pub(crate) fn loaded_plan(path: &Path, overrides: &Overrides) -> Option<(Plan, crate::sinks::loaded::Loaded)> {
    let (_, runtime_dir) = config::dirs_without_plan(path, overrides);
    let loaded = crate::sinks::loaded::read(&runtime_dir).ok()?;
    let plan = config::load_saved(&loaded.files(), overrides).ok()?;
    Some((plan, loaded))
}

/// Nothing at all is at `path` (not even a dangling link): a missing config, which is not a
/// refused one.
pub(crate) fn config_missing(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Loads the plan for commands that act on it; config errors exit with `code`.
fn plan_or_exit(path: &Path, overrides: &Overrides, code: u8) -> Result<Plan, ExitCode> {
    load_plan(path, overrides).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::from(code)
    })
}

fn unknown_job(plan: &Plan, name: &str) -> ExitCode {
    let names = plan.job_names().join(", ");
    eprintln!("runner: unknown job `{name}`; jobs in {}: {names}", plan.config_path.display());
    ExitCode::from(exit::RUNNER_ERROR)
}

fn describe_command(cmd: &CommandLine) -> String {
    crate::kinds::describe_command(cmd)
}

/// What `once` exits with for a final record (see [`EXIT_CODES`]).
pub fn once_exit_code(r: &Record) -> u8 {
    match r.outcome {
        Outcome::Success => 0,
        Outcome::Skipped => exit::ALREADY_RUNNING,
        Outcome::Timeout => exit::TIMEOUT,
        Outcome::Failure => r.exit_code.map(|c| c.clamp(1, 255) as u8).unwrap_or(1),
        Outcome::Interrupted => 1,
        Outcome::Killed | Outcome::Stopped => 128u8.saturating_add(r.signal.unwrap_or(0) as u8),
        Outcome::SpawnFailed => r.exit_code.map(|c| c as u8).unwrap_or(exit::CANNOT_EXECUTE),
    }
}

/// How `once` runs the job: `--no-retry`, `--wait`, and whether `when:` is judged
/// (not with `--ignore-conditions`).
#[derive(Clone, Copy)]
struct OnceHow {
    no_retry: bool,
    wait: bool,
    conditions: bool,
}

fn cmd_once(path: &Path, overrides: &Overrides, name: &str, dry_run: bool, how: OnceHow) -> ExitCode {
    let plan = match plan_or_exit(path, overrides, exit::RUNNER_ERROR) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(job) = plan.job(name) else { return unknown_job(&plan, name) };
    if dry_run {
        return print_dry_run(job, how.no_retry);
    }
    // Checked before the job starts, as the daemon does: a run that cannot be recorded (or
    // locked) where another user steers must not run at all.
    for dir in [&plan.state_dir, &plan.runtime_dir] {
        if let Err(e) = crate::fsx::own_dir_once(dir, true) {
            eprintln!("runner: {e}");
            return ExitCode::from(exit::RUNNER_ERROR);
        }
    }
    let job = Arc::new(job.clone());
    // A sweep starts no process: it neither needs containment nor ends a dead runner's runs
    // before it looks at them.
    if !job.kind.starts_processes() {
        return once_contained(&plan, job, name, how);
    }
    crate::contain::init();
    let code = once_contained(&plan, job, name, how);
    crate::contain::finish();
    code
}

fn once_contained(plan: &Plan, job: Arc<Job>, name: &str, how: OnceHow) -> ExitCode {
    // Pings are written, for the daemon to deliver.
    let pings = Some(crate::pings::Outbox::new(&plan.state_dir));
    let ctx =
        Ctx { runtime_dir: plan.runtime_dir.clone(), sinks: jobs::sinks_for(plan), by: "once", echo: true, pings };
    // A state.json of an earlier version becomes job files before the first write.
    if let Err(e) = ctx.sinks.state.migrate(ctx.sinks.ring_path()) {
        eprintln!("runner: {e}");
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runner: cannot start the runtime: {e}");
            return ExitCode::from(exit::RUNNER_ERROR);
        }
    };
    let record = rt.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // Ctrl-C or a TERM ends the job's whole process group, as the daemon would.
        tokio::spawn(async move {
            use crate::signals::{Sig, listen};
            let (Ok(mut int), Ok(mut term)) = (listen(Sig::Int), listen(Sig::Term)) else {
                return;
            };
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            let _ = stop_tx.send(true);
        });
        let req =
            Request { trigger: Trigger::Manual, no_retry: how.no_retry, wait: how.wait, conditions: how.conditions };
        jobs::execute(&ctx, &job, req, stop_rx).await
    });
    if record.outcome != Outcome::Skipped {
        for line in job.kind.once_lines(job.name.as_str(), &record) {
            outln!("{line}");
        }
    }
    if record.outcome == Outcome::Skipped {
        if record.message.starts_with("already") {
            eprintln!("runner: job {name} is {}", record.message);
        } else {
            eprintln!("runner: job {name} skipped: {}", record.message);
        }
    }
    ExitCode::from(once_exit_code(&record))
}

fn print_dry_run(job: &Job, no_retry: bool) -> ExitCode {
    let who = match &job.run_as {
        Some(r) => format!("{} (uid {}, gid {})", r.user, r.uid, r.gid),
        None => format!("the runner's own user (uid {})", nix::unistd::geteuid()),
    };
    outln!("job:      {} ({}, defined at {})", job.name, job.kind.name(), job.source);
    let cmd = match job.kind.dry_run(&who) {
        crate::kinds::DryRun::Process(cmd) => cmd,
        crate::kinds::DryRun::Lines { lines, ok } => {
            for l in lines {
                outln!("{l}");
            }
            return if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE };
        }
    };
    outln!("would run: {}", describe_command(cmd));
    outln!("as:       {who}");
    outln!(
        "in:       {}",
        job.workdir.as_ref().map(|w| w.display().to_string()).unwrap_or_else(|| "the user's home directory".into())
    );
    outln!("timeout:  {}", job.timeout.map(crate::time::format).unwrap_or_else(|| "none".into()));
    outln!("kill_grace: {}", crate::time::format(job.kill_grace));
    let attempts = if no_retry { 1 } else { job.retries.attempts };
    outln!("attempts: {attempts}");
    for (k, v) in &job.env {
        outln!("env:      {k}={v}");
    }
    if let Some(c) = job.conditions.as_deref() {
        let list: Vec<String> = c.list.iter().map(ToString::to_string).collect();
        outln!(
            "when:     {} (once judges them now; the daemon waits up to {}, rechecking every {})",
            list.join(", "),
            crate::time::format(c.wait),
            crate::time::format(c.recheck)
        );
    }
    outln!("dry run: nothing was started");
    ExitCode::SUCCESS
}

fn fmt_ms(ms: Option<i64>) -> String {
    ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok()).map(fmt_ts).unwrap_or_else(|| "-".into())
}

fn fmt_ts(t: jiff::Timestamp) -> String {
    crate::time::offset_text(t, &crate::time::local_zone(), false)
}

fn cmd_list(path: &Path, overrides: &Overrides, json: bool) -> ExitCode {
    let plan = match plan_or_exit(path, overrides, 1) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let state =
        StateStore::with_work(&plan.state_dir, &plan.runtime_dir).load(Some(&plan.log.ring.path)).unwrap_or_default();
    let now = jiff::Timestamp::now();
    let daemon = crate::lock::daemon(&plan.runtime_dir);
    let info = daemon.as_ref().and_then(|h| crate::sinks::daemon::read(&plan.runtime_dir, h.pid));
    let live = crate::sinks::live::read_all(&plan.runtime_dir);
    let rows: Vec<serde_json::Value> = plan
        .jobs
        .iter()
        .map(|j| {
            let lv = live.get(j.name.as_str());
            let next = next_due(j, &state, lv, daemon.is_some(), info.as_ref(), now);
            serde_json::json!({
                "name": j.name.as_str(),
                "kind": j.kind.name(),
                "schedule": j.schedule.to_string(),
                "timezone": j.zone.name,
                "enabled": j.enabled,
                "source": j.source.to_string(),
                "next_due": next.map(fmt_ts),
                "when": j.conditions.as_deref().map(|c| serde_json::json!({
                    "conditions": c.list.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "wait_ms": c.wait.as_millis() as u64,
                    "recheck_ms": c.recheck.as_millis() as u64,
                })),
            })
        })
        .collect();
    if json {
        outln!("{}", serde_json::Value::Array(rows));
        return ExitCode::SUCCESS;
    }
    outln!("{:<20} {:<12} {:<22} {:<14} {:<26} SOURCE", "JOB", "KIND", "SCHEDULE", "TZ", "NEXT");
    for (j, row) in plan.jobs.iter().zip(&rows) {
        let next = if !j.enabled {
            "disabled".to_string()
        } else {
            row["next_due"]
                .as_str()
                .unwrap_or(match j.schedule {
                    Schedule::Reboot => "at boot",
                    _ => "when the daemon starts",
                })
                .to_string()
        };
        outln!(
            "{:<20} {:<12} {:<22} {:<14} {:<26} {}",
            j.name,
            j.kind.name(),
            j.schedule.to_string(),
            j.zone.name,
            next,
            j.source
        );
    }
    ExitCode::SUCCESS
}

/// The plan and the persisted state, for the commands that report on them; errors exit 1.
fn plan_and_state(path: &Path, overrides: &Overrides) -> Result<(Plan, crate::sinks::state::State), ExitCode> {
    let plan = plan_or_loaded(path, overrides).map_err(|errors| {
        eprintln!("{errors}");
        ExitCode::FAILURE
    })?;
    match StateStore::with_work(&plan.state_dir, &plan.runtime_dir).load(Some(&plan.log.ring.path)) {
        Ok(mut state) => {
            current_queue_health(&plan, &mut state);
            Ok((plan, state))
        }
        Err(e) => {
            eprintln!("runner: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// A queue's stored health part is as of its last level change; what people read is the
/// score now, from the spool's history (read only). Queues that never ran keep no part.
fn current_queue_health(plan: &Plan, state: &mut crate::sinks::state::State) {
    let now = crate::time::epoch_ms(std::time::SystemTime::now());
    for j in plan.jobs.iter().filter(|j| j.enabled) {
        let Some(q) = j.kind.queue() else { continue };
        let Some(stored) = state.jobs.get_mut(j.name.as_str()).and_then(|js| js.health.as_mut()) else { continue };
        let mut part = crate::kinds::queue_flush::current_health(q, now);
        if part.level == stored.level {
            part.since_ms = stored.since_ms;
        }
        *stored = part;
    }
}

fn cmd_health(path: &Path, overrides: &Overrides, json: bool) -> ExitCode {
    let (plan, state) = match plan_and_state(path, overrides) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let running = crate::lock::daemon(&plan.runtime_dir).is_some();
    let sum = crate::health::assess(&plan, &state, &crate::sinks::live::read_all(&plan.runtime_dir));
    let level = crate::health::level_name(sum.level);
    if json {
        let parts: Vec<serde_json::Value> = sum.parts.iter().map(part_json).collect();
        outln!("{}", serde_json::json!({"level": level, "daemon_running": running, "parts": parts}));
    } else {
        if running {
            outln!("{level}");
        } else {
            // One answer, as the exit status gives it: not known while nothing samples.
            outln!("UNKNOWN: daemon not running (last known: {level})");
        }
        for p in sum.parts.iter().filter(|p| p.level != crate::sinks::state::HealthLevel::Healthy) {
            outln!("  {} {}: {} {}", crate::health::level_name(p.level), p.job, p.status, p.detail);
        }
    }
    if running && sum.level == crate::sinks::state::HealthLevel::Healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One part of the overall health for `--json`: times as RFC 3339, like every other time in
/// runner's JSON (docs/json.md).
fn part_json(p: &crate::health::Part) -> serde_json::Value {
    serde_json::json!({
        "job": p.job,
        "kind": p.kind,
        "level": crate::health::level_name(p.level),
        "status": p.status,
        "value": p.value,
        "detail": p.detail,
        "since": p.since_ms.map(|m| fmt_ms(Some(m))),
        "sampled": p.sampled_ms.map(|m| fmt_ms(Some(m))),
        "alert": p.alert.as_ref().map(|a| serde_json::json!({
            "level": a.level,
            "value": a.value,
            "threshold": a.threshold,
            "raised": fmt_ms(Some(a.raised_ms)),
            "message": a.message,
        })),
    })
}

fn fmt_value(v: Option<f64>, job: &Job) -> String {
    match v {
        Some(v) => job.kind.fmt_value(v),
        None => "-".into(),
    }
}

/// What `status` knows of the daemon while it prints: whether it runs (its pid file's
/// holder) and what it recorded of itself.
struct DaemonSeen {
    holder: Option<crate::lock::Holder>,
    info: Option<crate::sinks::daemon::DaemonInfo>,
}

fn cmd_status(path: &Path, overrides: &Overrides, json: bool) -> ExitCode {
    let (plan, state) = match plan_and_state(path, overrides) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let holder = crate::lock::daemon(&plan.runtime_dir);
    let info = holder.as_ref().and_then(|h| crate::sinks::daemon::read(&plan.runtime_dir, h.pid));
    let seen = DaemonSeen { holder, info };
    let daemon = &seen.holder;
    let now = jiff::Timestamp::now();
    let live = crate::sinks::live::read_all(&plan.runtime_dir);
    let jobs: Vec<serde_json::Value> =
        plan.jobs.iter().map(|j| job_status_json(j, &plan, &state, &live, &seen, now)).collect();
    let pings = pings_json(&plan.state_dir);
    let clock_held = now < crate::host::build_time();
    let containment = containment_json(daemon.is_some(), seen.info.as_ref());
    let health = crate::health::assess(&plan, &state, &crate::sinks::live::read_all(&plan.runtime_dir));
    if json {
        print_status_json(daemon.as_ref(), clock_held, containment, &health, jobs, pings);
        return ExitCode::SUCCESS;
    }
    match daemon {
        Some(h) => outln!("daemon: running (pid {}, since {})", h.pid, fmt_ms(Some(h.since_ms))),
        None => outln!("daemon: not running"),
    }
    outln!("containment: {}", containment_text(daemon.is_some(), &containment));
    if clock_held {
        outln!(
            "clock:  {} is before this build ({}); calendar jobs are held until the clock is set",
            fmt_ts(now),
            fmt_ts(crate::host::build_time())
        );
    }
    let color = Color::for_stdout();
    job_rows(&jobs, daemon.is_some(), now, color);
    print_conditions(&jobs, now);
    for p in &pings {
        outln!("pings {}: {} waiting ({} bytes)", p["job"].as_str().unwrap_or_default(), p["pending"], p["bytes"]);
    }
    for row in jobs.iter().filter(|r| !r["queue"].is_null()) {
        outln!("queue {}: {}", row["name"].as_str().unwrap_or_default(), queue_line(&row["queue"]));
    }
    print_health_text(&plan, &health, now, color);
    ExitCode::SUCCESS
}

/// One job's row of `status`, as `--json` gives it and the table reads it.
fn job_status_json(
    j: &Job,
    plan: &Plan,
    state: &crate::sinks::state::State,
    live: &std::collections::BTreeMap<String, crate::sinks::live::Live>,
    seen: &DaemonSeen,
    now: jiff::Timestamp,
) -> serde_json::Value {
    let daemon = &seen.holder;
    let js = state.job(j.name.as_str()).cloned().unwrap_or_default();
    let running = crate::lock::holder(&crate::lock::job_lock_path(&plan.runtime_dir, j.name.as_str()));
    // Checks' runs are kept in their live file (tmpfs), not the state.
    let lv = live.get(j.name.as_str());
    serde_json::json!({
        "name": j.name.as_str(),
        "enabled": j.enabled,
        "last_start": js.last_start_ms.or(lv.map(|l| l.at_ms)).map(|m| fmt_ms(Some(m))),
        "last_outcome": js.last_outcome.map(|o| o.as_str()).or(lv.map(|l| if l.sample_ok { "success" } else { "failure" })),
        "last_exit_code": js.last_exit_code,
        "last_signal": js.last_signal,
        "last_duration_ms": js.last_duration_ms.or(lv.map(|l| l.duration_ms)),
        "last_cpu_usec": js.last_cpu_usec,
        "last_memory_peak_bytes": js.last_memory_peak_bytes,
        "consecutive_failures": js.consecutive_failures,
        "runs": js.runs,
        "failures": js.failures,
        "next_due": next_due(j, state, lv, daemon.is_some(), seen.info.as_ref(), now).map(fmt_ts),
        "running": running.map(|h| serde_json::json!({"by": h.by, "pid": h.pid, "since": fmt_ms(Some(h.since_ms))})),
        "health": js.health.as_ref().map(|h| serde_json::json!({"level": h.level, "status": h.status, "detail": h.detail})),
        "queue": queue_report(j),
        "waiting": waiting_json(&js, daemon.as_ref()),
        "condition_skip": js.condition_skip.as_ref().map(|c| serde_json::json!({
            "at": fmt_ms(Some(c.at_ms)), "waited_ms": c.waited_ms, "condition": c.condition,
        })),
    })
}

/// `status --json`.
fn print_status_json(
    daemon: Option<&crate::lock::Holder>,
    clock_held: bool,
    containment: serde_json::Value,
    health: &crate::health::Summary,
    jobs: Vec<serde_json::Value>,
    pings: Vec<serde_json::Value>,
) {
    let checks: Vec<serde_json::Value> = health
        .parts
        .iter()
        .filter(|p| p.kind == "check")
        .map(|p| {
            serde_json::json!({
                "name": p.job,
                "level": p.status,
                "health": crate::health::level_name(p.level),
                "value": p.value,
                "detail": p.detail,
                "since": p.since_ms.map(|m| fmt_ms(Some(m))),
                "sampled": p.sampled_ms.map(|m| fmt_ms(Some(m))),
            })
        })
        .collect();
    let alerts: Vec<serde_json::Value> = health
        .parts
        .iter()
        .filter_map(|p| p.alert.as_ref().map(|a| (p, a)))
        .map(|(p, a)| {
            serde_json::json!({
                "check": p.job,
                "level": a.level,
                "value": a.value,
                "threshold": a.threshold,
                "raised": fmt_ms(Some(a.raised_ms)),
                "message": a.message,
            })
        })
        .collect();
    let out = serde_json::json!({
        "daemon": {"running": daemon.is_some(), "pid": daemon.map(|h| h.pid), "since": daemon.map(|h| fmt_ms(Some(h.since_ms)))},
        "clock_held": clock_held,
        "containment": containment,
        "health": crate::health::level_name(health.level),
        "health_parts": health.parts.iter().map(part_json).collect::<Vec<_>>(),
        "checks": checks,
        "alerts": alerts,
        "jobs": jobs,
        "pings": pings,
    });
    outln!("{out}");
}

/// The end of `status` as text: the checks' table, the active alerts and the overall
/// health with what is not healthy.
fn print_health_text(plan: &Plan, health: &crate::health::Summary, now: jiff::Timestamp, color: Color) {
    let checks: Vec<&crate::health::Part> = health.parts.iter().filter(|p| p.kind == "check").collect();
    if !checks.is_empty() {
        outln!();
        outln!("{:<20} {:<8} {:>14} {:<36} DETAIL", "CHECK", "LEVEL", "VALUE", "SINCE");
        for p in &checks {
            let value = plan.job(&p.job).map(|j| fmt_value(p.value, j)).unwrap_or_default();
            let since = p.since_ms.map(|m| with_relative(&fmt_ms(Some(m)), now)).unwrap_or_else(|| "-".into());
            let level = color.paint(&format!("{:<8}", p.status), outcome_style(&p.status));
            outln!("{:<20} {} {:>14} {:<36} {}", p.job, level, value, since, p.detail);
        }
    }
    let alerts: Vec<_> = health.parts.iter().filter_map(|p| p.alert.as_ref().map(|a| (p, a))).collect();
    if !alerts.is_empty() {
        outln!();
        outln!("active alerts:");
        for (p, a) in alerts {
            outln!("  {} {} since {}: {}", p.job, a.level, fmt_ms(Some(a.raised_ms)), a.message);
        }
    }
    outln!();
    let bad: Vec<String> = health
        .parts
        .iter()
        .filter(|p| p.level != crate::sinks::state::HealthLevel::Healthy)
        .map(|p| format!("{} {}", p.job, p.status))
        .collect();
    let name = crate::health::level_name(health.level);
    let painted = color.paint(name, outcome_style(name));
    if bad.is_empty() {
        outln!("health: {painted}");
    } else {
        outln!("health: {painted} ({})", bad.join(", "));
    }
}

/// The `notify:` pings waiting in the outbox, per job.
fn pings_json(state_dir: &Path) -> Vec<serde_json::Value> {
    let waiting = crate::pings::waiting(state_dir).unwrap_or_else(|e| {
        log::warn!("cannot read the ping outbox: {e}");
        Vec::new()
    });
    waiting
        .into_iter()
        .map(|(job, count, bytes)| serde_json::json!({"job": job, "pending": count, "bytes": bytes}))
        .collect()
}

/// A due run waiting for its `when:` conditions, while the daemon that waits runs.
fn waiting_json(js: &crate::state::JobState, daemon: Option<&crate::lock::Holder>) -> serde_json::Value {
    match (&js.waiting, daemon) {
        (Some(w), Some(d)) if w.runner_pid == d.pid => serde_json::json!({
            "since": fmt_ms(Some(w.since_ms)),
            "until": fmt_ms(Some(w.until_ms)),
            "condition": w.condition,
        }),
        _ => serde_json::Value::Null,
    }
}

/// Under the jobs: what each waiting job waits for, and a last run skipped for its
/// conditions when nothing ran after it.
fn print_conditions(jobs: &[serde_json::Value], now: jiff::Timestamp) {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    for row in jobs {
        let name = s(&row["name"]);
        let w = &row["waiting"];
        if w.is_object() {
            let since = with_relative(&s(&w["since"]), now);
            let until = with_relative(&s(&w["until"]), now);
            outln!("{name} waits for {} (since {since}, at most until {until})", s(&w["condition"]));
            continue;
        }
        let skip = &row["condition_skip"];
        let after_last_run = match (skip["at"].as_str(), row["last_start"].as_str()) {
            (Some(at), Some(last)) => at.parse::<jiff::Timestamp>().ok() > last.parse::<jiff::Timestamp>().ok(),
            (Some(_), None) => true,
            _ => false,
        };
        if after_last_run {
            let waited = std::time::Duration::from_millis(skip["waited_ms"].as_u64().unwrap_or(0));
            outln!(
                "{name} skipped {}, after waiting {}: when: {}",
                with_relative(&s(&skip["at"]), now),
                crate::time::format(waited),
                s(&skip["condition"])
            );
        }
    }
}

/// When a job is next due, as `status` shows it: never in the past while the daemon is
/// stopped (it is then due when the daemon starts, `None`), and for a check (whose samples
/// stay out of the state) its last sample plus its interval.
fn next_due(
    j: &Job,
    state: &crate::sinks::state::State,
    live: Option<&crate::sinks::live::Live>,
    daemon_running: bool,
    info: Option<&crate::sinks::daemon::DaemonInfo>,
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    if let Some(t) = info.and_then(|i| on_daemons_phase(j, state, live, i, now)) {
        return Some(t);
    }
    let next = match &j.schedule {
        Schedule::Every(every) if j.enabled && j.kind.is_check() => live
            .and_then(|l| jiff::Timestamp::from_millisecond(l.at_ms).ok())
            .and_then(|t| t.checked_add(jiff::SignedDuration::try_from(*every).ok()?).ok())
            .or_else(|| crate::scheduler::next_due_for_status(j, state, now)),
        _ => crate::scheduler::next_due_for_status(j, state, now),
    };
    next.filter(|t| daemon_running || *t >= now)
}

/// The daemon's containment as it recorded it (`sinks::daemon`): this process's own cgroup
/// and environment are not the daemon's. Null while no daemon runs.
fn containment_json(running: bool, info: Option<&crate::sinks::daemon::DaemonInfo>) -> serde_json::Value {
    match info.filter(|_| running) {
        Some(i) => serde_json::json!({"mode": i.containment_mode, "detail": i.containment}),
        None => serde_json::Value::Null,
    }
}

fn containment_text(running: bool, json: &serde_json::Value) -> String {
    match (running, json["detail"].as_str()) {
        (true, Some(d)) => d.to_string(),
        (true, None) => "not recorded by this daemon".into(),
        (false, _) => "- (the daemon is not running)".into(),
    }
}

/// When a running daemon fires an interval job next: the instant it planned at its start or
/// last reload, or, when the job fired since, what that fire left (a check's last sample plus
/// its interval), moved on by whole intervals past `now`, as the daemon keeps the phase.
fn on_daemons_phase(
    j: &Job,
    state: &crate::sinks::state::State,
    live: Option<&crate::sinks::live::Live>,
    info: &crate::sinks::daemon::DaemonInfo,
    now: jiff::Timestamp,
) -> Option<jiff::Timestamp> {
    let Schedule::Every(every) = j.schedule else { return None };
    if !j.enabled {
        return None;
    }
    let every_ms = i64::try_from(every.as_millis()).ok()?;
    let mut anchor = *info.due_ms.get(j.name.as_str())?;
    let js = state.job(j.name.as_str());
    if let Some(js) = js.filter(|js| js.last_fire_ms.is_some_and(|f| f >= info.written_ms))
        && let Some(next) = js.next_due_ms
    {
        anchor = next;
    }
    if let Some(l) = live.filter(|l| l.at_ms >= info.written_ms) {
        anchor = anchor.max(l.at_ms + every_ms);
    }
    let next = crate::sinks::daemon::next_on_phase(anchor, every_ms, now.as_millisecond());
    jiff::Timestamp::from_millisecond(next).ok()
}

/// `2026-03-29T10:00:00+02:00 (in 28s)` / `(3m ago)`: the absolute time people can search
/// for, and the relative one they scan for.
/// `status`'s job table, one row a job from its `--json` object.
fn job_rows(jobs: &[serde_json::Value], daemon_running: bool, now: jiff::Timestamp, color: Color) {
    outln!("{:<20} {:<36} {:<13} {:>9} {:>5}  NEXT", "JOB", "LAST RUN", "OUTCOME", "DURATION", "FAILS");
    for row in jobs {
        let s = |k: &str| row[k].as_str().map(str::to_string);
        let mut outcome = s("last_outcome").unwrap_or_else(|| "-".into());
        if let Some(c) = row["last_exit_code"].as_i64().filter(|c| *c != 0) {
            outcome.push_str(&format!(" ({c})"));
        }
        let mut dur = row["last_duration_ms"].as_u64().map(|d| format!("{d} ms")).unwrap_or_else(|| "-".into());
        let mut last = s("last_start").map(|t| with_relative(&t, now)).unwrap_or_else(|| "never".into());
        // A running job's row is the run in progress: its start and its time so far, not the
        // previous run's (which `--json` keeps in `last_*`).
        if row["running"].is_object() {
            outcome = format!("running ({})", row["running"]["by"].as_str().unwrap_or(""));
            if let Some(since) = row["running"]["since"].as_str() {
                last = with_relative(since, now);
                dur = running_for(since, now);
            }
        } else if row["waiting"].is_object() {
            outcome = "waiting".into();
        }
        let next = if row["enabled"] == false {
            "disabled".into()
        } else {
            match s("next_due") {
                Some(t) => with_relative(&t, now),
                None if !daemon_running => "when the daemon starts".into(),
                None => "-".into(),
            }
        };
        outln!(
            "{:<20} {:<36} {} {:>9} {:>5}  {}",
            s("name").unwrap_or_default(),
            last,
            color.paint(&format!("{outcome:<13}"), outcome_style(&outcome)),
            dur,
            row["consecutive_failures"].as_u64().unwrap_or(0).to_string(),
            next
        );
    }
}

/// How long a run that started at `since` (as `status` prints times, to the second) has run:
/// whole seconds, as the start is known to the second.
fn running_for(since: &str, now: jiff::Timestamp) -> String {
    match since.parse::<jiff::Timestamp>() {
        Ok(t) => format!("{} s", (now.as_second() - t.as_second()).max(0)),
        Err(_) => "-".into(),
    }
}

fn with_relative(rfc3339: &str, now: jiff::Timestamp) -> String {
    let Ok(t) = rfc3339.parse::<jiff::Timestamp>() else { return rfc3339.to_string() };
    let secs = t.as_second() - now.as_second();
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    let amount = match d.as_secs() {
        0 => return format!("{rfc3339} (now)"),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => {
            format!("{}h{}", s / 3600, if s % 3600 >= 60 { format!("{}m", s % 3600 / 60) } else { String::new() })
        }
        s => format!("{}d", s / 86400),
    };
    if secs > 0 { format!("{rfc3339} (in {amount})") } else { format!("{rfc3339} ({amount} ago)") }
}

/// Colour on a terminal only: none when stdout is a pipe or a file, or when `NO_COLOR` is set
/// (to anything, as no-color.org says).
#[derive(Clone, Copy)]
pub struct Color(bool);

#[derive(Clone, Copy)]
pub enum Style {
    Good,
    Warn,
    Bad,
    Plain,
}

impl Color {
    pub fn for_stdout() -> Color {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Color(!no_color && std::io::stdout().is_terminal())
    }

    /// `text` in the style's colour; the text itself (with its padding) is unchanged, so
    /// columns stay aligned.
    pub fn paint(self, text: &str, style: Style) -> String {
        let code = match style {
            Style::Good => "32",
            Style::Warn => "33",
            Style::Bad => "31",
            Style::Plain => return text.to_string(),
        };
        if self.0 { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }
}

/// The colour of an outcome or a level as `status` and `logs` print it.
pub fn outcome_style(word: &str) -> Style {
    match word.split([' ', ':']).next().unwrap_or("") {
        "success" | "ok" | "resolve" | "HEALTHY" => Style::Good,
        "warn" | "skipped" | "unknown" | "pending" | "DEGRADED" | "running" => Style::Warn,
        "failure" | "timeout" | "killed" | "spawn_failed" | "crit" | "fail" | "stopped" | "alert" | "UNHEALTHY"
        | "CRITICAL" => Style::Bad,
        _ => Style::Plain,
    }
}

/// A queue_flush job's statistics for `status` (null for other kinds, an error text when the
/// spool cannot be read).
fn queue_report(j: &Job) -> serde_json::Value {
    j.kind.status_report().unwrap_or(serde_json::Value::Null)
}

fn queue_line(v: &serde_json::Value) -> String {
    if let Some(e) = v["error"].as_str() {
        return e.to_string();
    }
    format!(
        "{} total, {} pending, {} retrying, {} failed, {} completed; health {} {} ({} done, {} failed in the last {})",
        v["total"],
        v["pending"],
        v["retrying"],
        v["failed"],
        v["completed"],
        v["health"]["score"],
        v["health"]["level"].as_str().unwrap_or_default(),
        v["health"]["done_in_window"],
        v["health"]["failed_in_window"],
        crate::time::format(std::time::Duration::from_secs(v["health"]["window_s"].as_u64().unwrap_or(0))),
    )
}

/// The queue_flush spec of `name`, or the exit code after saying what is wrong.
fn queue_job(plan: &Plan, name: &str) -> Result<(Job, crate::config::QueueFlush), ExitCode> {
    let Some(job) = plan.job(name) else { return Err(unknown_job(plan, name)) };
    match job.kind.queue() {
        Some(q) => Ok((job.clone(), q.clone())),
        None => {
            let other = &job.kind;
            let queues: Vec<&str> =
                plan.jobs.iter().filter(|j| j.kind.queue().is_some()).map(|j| j.name.as_str()).collect();
            eprintln!(
                "runner: job `{name}` is a {} job, not a queue; queue_flush jobs: {}",
                other.name(),
                if queues.is_empty() { "none".to_string() } else { queues.join(", ") }
            );
            Err(ExitCode::from(exit::RUNNER_ERROR))
        }
    }
}

fn cmd_notify_test(path: &Path, overrides: &Overrides, name: &str) -> ExitCode {
    let plan = match plan_or_exit(path, overrides, exit::RUNNER_ERROR) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let Some(job) = plan.job(name) else {
        eprintln!("runner: no job `{name}` in {}; `runner list` shows the jobs", plan.config_path.display());
        return ExitCode::from(exit::RUNNER_ERROR);
    };
    let Some(n) = job.notify.as_deref() else {
        eprintln!("runner: job `{name}` has no `notify:`; give it `notify: {{url: ...}}` first");
        return ExitCode::from(exit::RUNNER_ERROR);
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runner: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(crate::pings::send_test(name, n)) {
        Ok(url) => {
            outln!("sent a test ping to {url}: delivered");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("runner: the test ping to {} failed: {e}", n.url);
            ExitCode::FAILURE
        }
    }
}

fn cmd_enqueue(path: &Path, overrides: &Overrides, name: &str, file: &Path) -> ExitCode {
    let plan = match plan_or_exit(path, overrides, exit::RUNNER_ERROR) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (job, q) = match queue_job(&plan, name) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut sp = crate::kinds::queue_flush::spool::Spool::new(&q.spool);
    if let Err(e) = sp.ensure(job.run_as.as_ref().map(|u| u.gid)) {
        eprintln!("runner: cannot create the spool {}: {e}", q.spool.display());
        return ExitCode::FAILURE;
    }
    let result = if file == Path::new("-") {
        sp.enqueue(&mut std::io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(mut f) => sp.enqueue(&mut f),
            Err(e) => {
                eprintln!("runner: cannot read {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    match result {
        Ok(item) => {
            outln!("{}", item.file_name());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("runner: cannot enqueue into {}: {e}", q.spool.display());
            ExitCode::FAILURE
        }
    }
}

fn cmd_queue(path: &Path, overrides: &Overrides, name: &str, json: bool, watch: Option<&str>) -> ExitCode {
    let plan = match plan_or_exit(path, overrides, 1) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (_, q) = match queue_job(&plan, name) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let interval = match watch.map(crate::time::parse) {
        None => None,
        Some(Ok(d)) if !d.is_zero() => Some(d),
        Some(Ok(_)) => {
            eprintln!("runner queue: --interval must be longer than 0s");
            return ExitCode::from(2);
        }
        Some(Err(e)) => {
            eprintln!("runner queue: --interval: {e}");
            return ExitCode::from(2);
        }
    };
    loop {
        match crate::kinds::queue_flush::report(&q) {
            Ok(v) if json => outln!("{v}"),
            Ok(v) => {
                if interval.is_some() {
                    outln!("{}", fmt_ts(jiff::Timestamp::now()));
                }
                outln!("queue:     {name} ({})", q.spool.display());
                for k in ["total", "pending", "retrying", "failed", "completed"] {
                    outln!("{:<10} {}", format!("{k}:"), v[k]);
                }
                outln!(
                    "health:    {} {} ({} done, {} failed in the last {})",
                    v["health"]["score"],
                    v["health"]["level"].as_str().unwrap_or_default(),
                    v["health"]["done_in_window"],
                    v["health"]["failed_in_window"],
                    crate::time::format(q.health_window)
                );
            }
            Err(e) => {
                eprintln!("runner: {e}");
                if interval.is_none() {
                    return ExitCode::FAILURE;
                }
            }
        }
        let Some(every) = interval else { return ExitCode::SUCCESS };
        let _ = std::io::stdout().flush();
        std::thread::sleep(every);
    }
}
