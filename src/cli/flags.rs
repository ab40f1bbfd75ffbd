//! The one definition of the command line: every command, its arguments and options, their
//! help, defaults, environment variables, value choices and what a shell should complete.
//!
//! Everything else is generated from these tables: the parser and `--help` (`cli::parse`),
//! and the man pages and shell completions (`examples/generate.rs`), so they cannot drift.
//! Plain data only: no parsing, no printing here.

/// What a shell offers for a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Complete {
    /// Free text: nothing to offer.
    Nothing,
    /// A file name.
    File,
    /// A directory name.
    Dir,
    /// A job of the config (`runner list` prints them).
    Job,
}

/// An option (`--json`, `-n N`).
#[derive(Clone, Copy, Debug)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    /// The value's placeholder in help (`N`, `PATH`); `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
    /// The value taken when the option is not given (shown in help).
    pub default: Option<&'static str>,
    /// The environment variable read when the option is not given (shown in help).
    pub env: Option<&'static str>,
    /// The only values accepted; empty for any.
    pub choices: &'static [&'static str],
    /// May be given more than once (each value is kept).
    pub repeat: bool,
    /// Only meaningful with this other option (by its long name).
    pub requires: Option<&'static str>,
    /// Accepted but left out of help, man pages and completions.
    pub hidden: bool,
    pub complete: Complete,
}

impl Opt {
    const fn new(long: &'static str, value: Option<&'static str>, help: &'static str) -> Opt {
        Opt {
            long,
            short: None,
            value,
            help,
            default: None,
            env: None,
            choices: &[],
            repeat: false,
            requires: None,
            hidden: false,
            complete: Complete::Nothing,
        }
    }
    const fn short(mut self, c: char) -> Opt {
        self.short = Some(c);
        self
    }
    const fn default(mut self, v: &'static str) -> Opt {
        self.default = Some(v);
        self
    }
    const fn env(mut self, var: &'static str) -> Opt {
        self.env = Some(var);
        self
    }
    const fn choices(mut self, c: &'static [&'static str]) -> Opt {
        self.choices = c;
        self
    }
    const fn repeat(mut self) -> Opt {
        self.repeat = true;
        self
    }
    const fn requires(mut self, long: &'static str) -> Opt {
        self.requires = Some(long);
        self
    }
    const fn complete(mut self, c: Complete) -> Opt {
        self.complete = c;
        self
    }
}

/// A switch: present or not.
const fn switch(long: &'static str, help: &'static str) -> Opt {
    Opt::new(long, None, help)
}

/// An option that takes a value, shown as `--long <NAME>`.
const fn value(long: &'static str, name: &'static str, help: &'static str) -> Opt {
    Opt::new(long, Some(name), help)
}

/// A positional argument.
#[derive(Clone, Copy, Debug)]
pub struct Arg {
    pub name: &'static str,
    pub help: &'static str,
    /// Taken when the argument is left out; an argument without one is required.
    pub default: Option<&'static str>,
    pub complete: Complete,
}

const fn arg(name: &'static str, help: &'static str, complete: Complete) -> Arg {
    Arg { name, help, default: None, complete }
}

/// A command (`runner logs`).
#[derive(Debug)]
pub struct Cmd {
    pub name: &'static str,
    /// One line: the command list in `runner --help`, the man page's NAME.
    pub about: &'static str,
    pub args: &'static [Arg],
    pub opts: &'static [Opt],
    /// Printed after the options: examples, exit codes, notes. Kept line by line everywhere.
    pub after_help: &'static str,
    /// Whether the global options concern this command. They are accepted either way (so a
    /// shell alias with `--config` works for every command); a command that reads no config
    /// leaves them out of its help, man page and completions.
    pub globals: bool,
}

/// `-h, --help`: every command takes it.
pub const HELP: Opt = switch("help", "Print help").short('h');
/// `-V, --version`: before the command only.
pub const VERSION: Opt = switch("version", "Print version").short('V');

/// The heading of the options every command takes, apart from each command's own.
pub const GLOBAL: &str = "Global options";

/// Options every command takes, before or after its name.
pub const GLOBALS: &[Opt] = &[
    value("config", "FILE", "The configuration file")
        .short('c')
        .env("RUNNER_CONFIG")
        .default(crate::config::DEFAULT_CONFIG)
        .complete(Complete::File),
    value(
        "state-dir",
        "DIR",
        "Where state lives (default /var/lib/runner as root, else $XDG_STATE_HOME/runner); outranks RUNNER_STATE_DIR and the file's `state_dir`",
    )
    .complete(Complete::Dir),
    value(
        "runtime-dir",
        "DIR",
        "Where locks and the pid file live (default /run/runner as root, else $XDG_RUNTIME_DIR/runner); outranks RUNNER_RUNTIME_DIR and the file's `runtime_dir`",
    )
    .complete(Complete::Dir),
];

pub const NAME: &str = "runner";
pub const ABOUT: &str = "A static-config job scheduler and health supervisor";

/// Exit codes of `runner once`, shown in `--help` and docs/commands.md.
pub const EXIT_CODES: &str = "\
Exit codes of `runner once`:
  0        the job succeeded
  1-123    the job's own exit status when it failed
  75       the job is already running (use --wait to wait for it), a check
           it depends on is not ok, or a `when:` condition fails (see
           --ignore-conditions)
  124      the job timed out (as timeout(1))
  125      runner's own error: usage, config, unknown job
  126      the command cannot be executed
  127      the command was not found
  128+N    the job was killed by signal N
Other commands: 0 success, 1 failure (for example an invalid config), 2 usage error.";

/// The kinds of record `logs --kind` selects (`record::Kind`'s names).
pub const LOG_KINDS: &[&str] = &["run", "skip", "alert", "resolve", "audit", "daemon", "hook"];

pub const COMMANDS: &[Cmd] = &[
    Cmd {
        name: "run",
        about: "Run the scheduler daemon in the foreground",
        args: &[],
        opts: &[value(
            "pidfile",
            "PATH",
            "Also write the daemon's pid to PATH (for an init script's start-stop-daemon), locked while it runs and removed at a clean stop",
        )
        .complete(Complete::File)],
        after_help: "Examples:\n  runner run\n  runner run --config etc/supervisor.yaml\n  runner run --pidfile /var/run/runner.pid\n\nSIGHUP reloads the config (an invalid one is refused and the old one keeps running);\nSIGTERM or SIGINT stop it after ending running jobs. Exits 78 on an invalid config at start.",
        globals: true,
    },
    Cmd {
        name: "once",
        about: "Run one job now, in the foreground, as the daemon would",
        args: &[arg("JOB", "The job's name, as in the config", Complete::Job)],
        opts: &[
            switch("dry-run", "Print what would run, as whom, where and with what timeout; run nothing"),
            switch("no-retry", "Make one attempt, whatever the job's `retries:` says"),
            switch("wait", "If the job is already running, wait for it to finish instead of exiting 75"),
            switch("ignore-conditions", "Run even if the job's `when:` conditions do not hold (without it: exit 75 naming the one that fails)"),
        ],
        after_help: "Examples:\n  runner once backup\n  runner once backup --dry-run\n  runner once backup --no-retry --wait\n  runner once uploader --ignore-conditions\n\n\
Exit codes: 0 success; 1-123 the job's own status; 75 already running, or skipped (a check\n\
it depends on not ok, or a `when:` condition); 124 timeout; 125 runner's own error (usage,\n\
config, unknown job); 126 cannot execute; 127 not found; 128+N killed by signal N.",
        globals: true,
    },
    Cmd {
        name: "list",
        about: "List the jobs: kind, schedule, time zone, source file and next due time",
        args: &[],
        opts: &[switch("json", "Print a JSON array, one object per job (keys: docs/json.md)")],
        after_help: "Examples:\n  runner list\n  runner list --json",
        globals: true,
    },
    Cmd {
        name: "status",
        about: "Show each job's last run, outcome and next due time, and whether the daemon runs",
        args: &[],
        opts: &[switch(
            "json",
            "Print one JSON object: daemon, health, checks, alerts, jobs (keys: docs/json.md)",
        )],
        after_help: "Examples:\n  runner status\n  runner status --json",
        globals: true,
    },
    Cmd {
        name: "notify-test",
        about: "Send one ping to a job's `notify:` URL now, past the outbox, and say what came back",
        args: &[arg("JOB", "A job with `notify:`", Complete::Job)],
        opts: &[],
        after_help: "Examples:\n  runner notify-test backup\n\nSends a success ping with a test body. Exit 0 when the receiver answered 2xx, 1 otherwise.",
        globals: true,
    },
    Cmd {
        name: "enqueue",
        about: "Add a work item to a queue_flush job's spool, atomically (tmp/ then new/)",
        args: &[
            arg("JOB", "The queue_flush job whose spool gets the item", Complete::Job),
            Arg {
                name: "FILE",
                help: "The item's content: a file, or `-` for standard input",
                default: Some("-"),
                complete: Complete::File,
            },
        ],
        opts: &[],
        after_help: "Examples:\n  echo '{\"id\": 7}' | runner enqueue outbox\n  runner enqueue outbox /tmp/upload-7.json\n\nPrints the item's name. The spool is created if it is missing.",
        globals: true,
    },
    Cmd {
        name: "queue",
        about: "Show a queue's statistics and health: total, pending, retrying, failed, completed, score",
        args: &[arg("JOB", "The queue_flush job", Complete::Job)],
        opts: &[
            switch("json", "Print one JSON object per report (keys: docs/json.md)"),
            switch("watch", "Print again every --interval until interrupted"),
            value("interval", "DURATION", "How often --watch prints (`30s`, `1m`, ...)").default("30s").requires("watch"),
        ],
        after_help: "Examples:\n  runner queue outbox\n  runner queue outbox --json\n  runner queue outbox --watch --interval 5s",
        globals: true,
    },
    Cmd {
        name: "metrics",
        about: "Print one sample of the box's metrics: CPU, memory, load, processes, disks, temperatures and pressure, read straight from /proc and /sys",
        args: &[],
        opts: &[
            switch("json", "Print one JSON object with every value read (keys: docs/json.md)"),
            value("path", "P", "A mount path to report disk and inode use for (repeatable; default /)")
                .repeat()
                .complete(Complete::Dir),
            value("interval", "DURATION", "How long to measure CPU use over").default("1s"),
            value(
                "process",
                "NAME",
                "Also report the processes with this name (as `pgrep` matches it): how many, their summed RSS and CPU percent over the interval (repeatable)",
            )
            .repeat(),
        ],
        after_help: "Examples:\n  runner metrics\n  runner metrics --json --path / --path /var\n  runner metrics --interval 250ms\n  runner metrics --process nginx --json\n\nRUNNER_PROC_ROOT and RUNNER_SYS_ROOT (or the config's proc_root/sys_root) read a different tree.",
        globals: true,
    },
    Cmd {
        name: "health",
        about: "Print the overall health (HEALTHY, DEGRADED, UNHEALTHY or CRITICAL); exit 0 only when HEALTHY and the daemon runs, for scripts and container health checks",
        args: &[],
        opts: &[switch("json", "Print one JSON object: level, daemon_running, parts (keys: docs/json.md)")],
        after_help: "Examples:\n  runner health\n  runner health --json\n\nExit codes: 0 HEALTHY; 1 anything else, or the daemon is not running (its state is then stale).",
        globals: true,
    },
    Cmd {
        name: "check",
        about: "Validate the configuration and its drop-ins, and print a one-line summary",
        args: &[],
        opts: &[],
        after_help: "Examples:\n  runner check\n  runner check --config ./supervisor.yaml",
        globals: true,
    },
    Cmd {
        name: "calendar",
        about: "Print the next fire times of a cron expression, like `systemd-analyze calendar`",
        args: &[arg("EXPR", "A cron expression (5 fields, or 6 with seconds first) or a macro like @daily", Complete::Nothing)],
        opts: &[
            value("count", "N", "How many fire times to print").short('n').default("5"),
            value("from", "TIME", "Print fire times strictly after this instant (RFC 3339, default now)"),
            value("tz", "ZONE", "The time zone to evaluate in (IANA name, default local time)"),
        ],
        after_help: "Examples:\n  runner calendar '*/15 * * * *' --count 4\n  runner calendar '0 2 * * MON-FRI' --from 2026-03-29T00:00:00Z --tz Europe/Berlin",
        // It reads no config, state or runtime dir.
        globals: false,
    },
    Cmd {
        name: "logs",
        about: "Show the run log (the ring file under state_dir), like journalctl or logread",
        args: &[],
        opts: &[
            value("lines", "N", "Show only the last N matching records (with -f: 10 unless given)").short('n'),
            switch("follow", "Keep printing new records as they are written (inotify; no polling)").short('f'),
            value("job", "JOB", "Only this job's records").complete(Complete::Job),
            value("kind", "KIND", "Only records of this kind").choices(LOG_KINDS),
            value("since", "TIME", "Only records written at or after this time"),
            value("until", "TIME", "Only records written at or before this time"),
            switch("failed", "Only runs that count as failures (failure, timeout, killed, spawn_failed)"),
            switch("json", "One JSON object per line, with every field"),
            switch("output", "Print the output tail kept with each record"),
            value("file", "FILE", "Read this ring file instead of the one under state_dir (no config needed)")
                .complete(Complete::File),
        ],
        after_help: "Examples:\n  runner logs -n 20\n  runner logs -f --job backup\n  runner logs --failed --since -1h\n  runner logs --since today --json\n\n\
Times: RFC 3339 (2026-03-29T10:00:00Z), a local date or time (2026-03-29, 2026-03-29 10:00),\n\
relative to now (-1h, -30m, +10m), or now, today, yesterday, tomorrow.",
        globals: true,
    },
];

/// The command named `name`.
pub fn command(name: &str) -> Option<&'static Cmd> {
    COMMANDS.iter().find(|c| c.name == name)
}

impl Cmd {
    /// The options shown for this command, in order: its own, `--help`, then (under
    /// [`GLOBAL`]) the global ones if they concern it.
    pub fn shown_opts(&self) -> impl Iterator<Item = &'static Opt> + use<'_> {
        self.opts.iter().chain(std::iter::once(&HELP)).filter(|o| !o.hidden)
    }

    /// The global options shown for this command.
    pub fn shown_globals(&self) -> &'static [Opt] {
        if self.globals { GLOBALS } else { &[] }
    }

    /// `runner logs [OPTIONS] <JOB> [FILE]`.
    pub fn usage(&self) -> String {
        let mut u = format!("{NAME} {}", self.name);
        if self.shown_opts().count() > 0 {
            u.push_str(" [OPTIONS]");
        }
        for a in self.args {
            match a.default {
                Some(_) => u.push_str(&format!(" [{}]", a.name)),
                None => u.push_str(&format!(" <{}>", a.name)),
            }
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_requirements_exist() {
        let all = || GLOBALS.iter().chain([&HELP, &VERSION]);
        for c in COMMANDS {
            assert_eq!(COMMANDS.iter().filter(|d| d.name == c.name).count(), 1, "{}", c.name);
            let opts: Vec<&Opt> = c.opts.iter().chain(all()).collect();
            for o in &opts {
                let same = opts.iter().filter(|p| p.long == o.long).count();
                assert_eq!(same, 1, "--{} twice in {}", o.long, c.name);
                if let Some(s) = o.short {
                    assert_eq!(opts.iter().filter(|p| p.short == Some(s)).count(), 1, "-{s} twice in {}", c.name);
                }
                if let Some(r) = o.requires {
                    assert!(c.opts.iter().any(|p| p.long == r), "--{} requires --{r}, not in {}", o.long, c.name);
                }
                assert!(o.choices.is_empty() || o.value.is_some(), "--{}: choices for a switch", o.long);
            }
            // A required argument after an optional one could never be given alone.
            let first_optional = c.args.iter().position(|a| a.default.is_some()).unwrap_or(c.args.len());
            assert!(c.args[first_optional..].iter().all(|a| a.default.is_some()), "{}", c.name);
        }
    }
}
