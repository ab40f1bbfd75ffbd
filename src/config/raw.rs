//! The serde mirror of `supervisor.yaml`: what the file says, nothing resolved.
//!
//! Scalars whose syntax can be checked without looking at the machine (durations, cron
//! expressions, enums) are checked here, so serde_norway puts the line and column of the
//! offending value on the error. Anything that needs the machine (users, time zones,
//! paths) is the plan's job.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::time::Dur;
use crate::schedule::Schedule;

/// Settings a job may take from `defaults:`. One list, so a field added here exists in
/// both places with the same spelling.
macro_rules! with_job_settings {
    ($(#[$m:meta])* pub struct $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        pub struct $name {
            /// Longest a run may take before its process group is ended.
            pub timeout: Option<Dur>,
            /// Time between SIGTERM and SIGKILL when a run is ended.
            pub kill_grace: Option<Dur>,
            pub retries: Option<RawRetries>,
            pub overlap: Option<Overlap>,
            pub jitter: Option<Dur>,
            pub catch_up: Option<CatchUp>,
            pub timezone: Option<String>,
            pub user: Option<String>,
            pub group: Option<String>,
            pub workdir: Option<PathBuf>,
            pub env: Option<BTreeMap<String, EnvValue>>,
            pub nice: Option<i8>,
            pub umask: Option<Umask>,
            pub on_failure: Option<CommandLine>,
            $($extra)*
        }
    };
}

with_job_settings! {
    #[derive(Deserialize, Debug, Default, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct RawDefaults {}
}

with_job_settings! {
    #[derive(Deserialize, Debug, Default, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct RawJob {
        pub description: Option<String>,
        pub enabled: Option<bool>,
        pub schedule: Option<ScheduleText>,
        pub every: Option<Dur>,
        /// argv, run without a shell.
        pub command: Option<Argv>,
        /// A shell line, run with `/bin/sh -c`.
        pub run: Option<String>,
        /// Drain a spool of work items through a handler (`jobs::queue_flush`).
        pub queue_flush: Option<RawQueueFlush>,
        /// End orphaned processes that match (see `jobs::orphan_sweep`).
        pub orphan_sweep: Option<RawOrphanSweep>,
        /// A threshold check or probe (`jobs::check`).
        pub check: Option<RawCheck>,
        /// Checks that must be at level ok for this job to run: `{check-name: healthy}`.
        pub depends_on: Option<BTreeMap<String, DependCond>>,
    }
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    /// Where to write the `.prom` file (default `runtime_dir/runner.prom`).
    pub textfile: Option<PathBuf>,
}

/// What `depends_on:` asks of a check.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DependCond {
    Healthy,
}

/// A `check:` block: a metric or a probe, thresholds, and what to do on a level change.
/// Which fields apply depends on the metric; the plan refuses the ones that do not.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub metric: Option<String>,
    pub probe: Option<String>,
    pub path: Option<PathBuf>,
    pub sensor: Option<String>,
    pub core: Option<u32>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub send: Option<String>,
    pub expect: Option<String>,
    pub url: Option<String>,
    pub status: Option<u16>,
    pub command: Option<CommandLine>,
    pub name: Option<String>,
    pub cmdline: Option<RegexText>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub max_entries: Option<u64>,
    pub warn: Option<Threshold>,
    pub crit: Option<Threshold>,
    pub direction: Option<Direction>,
    /// Consecutive samples at a new level before the level changes.
    #[serde(rename = "for")]
    pub for_samples: Option<u32>,
    pub cooldown: Option<Dur>,
    pub start_period: Option<Dur>,
    pub on_alert: Option<CommandLine>,
    pub on_recover: Option<CommandLine>,
}

/// Which side of a threshold is bad.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The value is bad at or above the threshold (disk use, temperature).
    Above,
    /// The value is bad at or below the threshold (available memory).
    Below,
}

/// A threshold as written: a number, or text with a unit (`1GB`, `10m`, `85%`) that the plan
/// reads in the metric's own unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    Number(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Threshold;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number, or a size or duration like `1GB` or `10m`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Threshold, E> {
                Ok(Threshold::Text(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Threshold, E> {
                Ok(Threshold::Number(v as f64))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub version: Option<u32>,
    pub state_dir: Option<PathBuf>,
    pub runtime_dir: Option<PathBuf>,
    pub max_parallel: Option<u32>,
    pub include_dir: Option<PathBuf>,
    /// Where /proc and /sys are (for tests and chroots); RUNNER_PROC_ROOT/RUNNER_SYS_ROOT outrank them.
    pub proc_root: Option<PathBuf>,
    pub sys_root: Option<PathBuf>,
    /// Metrics for Prometheus' node_exporter textfile collector.
    pub export: Option<RawExport>,
    pub defaults: Option<RawDefaults>,
    pub jobs: Option<Jobs>,
    pub log: Option<RawLog>,
}

/// `log:`: the ring file and journald.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// Size of the ring file when it is created (`256KiB`, `1MiB` or bytes).
    pub ring_size: Option<ByteSize>,
    /// How much of a run's output tail each ring record keeps.
    pub ring_output_bytes: Option<ByteSize>,
    /// `always`, `never`, `every N` (records) or a duration such as `30s`.
    pub fsync: Option<FsyncText>,
    pub journal_socket: Option<PathBuf>,
    pub job_output_to_journal: Option<bool>,
}

/// A size in bytes: a number, or a number with K/KiB, M/MiB, G/GiB (powers of 1024).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let mult: u64 = match unit.trim() {
            "" | "B" => 1,
            "K" | "k" | "KiB" | "KB" | "kB" => 1 << 10,
            "M" | "MiB" | "MB" => 1 << 20,
            "G" | "GiB" | "GB" => 1 << 30,
            _ => return Err(format!("invalid size `{s}`: write bytes or a number with KiB, MiB or GiB, like 256KiB")),
        };
        num.parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size `{s}`: write bytes or a number with KiB, MiB or GiB, like 256KiB"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size like 256KiB, or a number of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("size {v} is negative")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The ring's fsync policy, checked as it is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsyncText(pub crate::sinks::ring::Fsync);

impl<'de> Deserialize<'de> for FsyncText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::sinks::ring::Fsync::parse(&s).map(FsyncText).map_err(de::Error::custom)
    }
}

/// A file in the drop-in directory: jobs only, so a package cannot change global settings.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDropIn {
    pub version: Option<u32>,
    pub jobs: Option<Jobs>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    /// Tries in all, the first one included.
    pub attempts: Option<u32>,
    pub backoff: Option<Dur>,
    pub max_backoff: Option<Dur>,
}

/// The `queue_flush:` block; defaults are applied by `config::resolve_job`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawQueueFlush {
    /// The spool directory (tmp/ new/ cur/ done/ failed/ under it).
    pub spool: PathBuf,
    /// argv of the handler; the item's path is appended as the last argument.
    pub handler: Argv,
    pub max_items: Option<u32>,
    /// Same shape as a job's `retries:`, per item.
    pub item_retries: Option<RawRetries>,
    pub item_timeout: Option<Dur>,
    pub keep_done: Option<Dur>,
    pub keep_failed: Option<Dur>,
    pub health_window: Option<Dur>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// A fire while the job runs is recorded as skipped.
    #[default]
    Skip,
    /// A fire while the job runs waits and runs after it; at most one waits.
    Queue,
    /// A fire while the job runs ends the running one and starts anew.
    Replace,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    #[default]
    Skip,
    Once,
}

/// The schedule text, checked for syntax as it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleText(pub Schedule);

impl<'de> Deserialize<'de> for ScheduleText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Schedule::parse(&s).map(ScheduleText).map_err(de::Error::custom)
    }
}

/// A non-empty argv.
#[derive(Debug, Clone, PartialEq)]
pub struct Argv(pub Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Argv;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of program and arguments, like [\"/usr/bin/backup\", \"--all\"]")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Argv, E> {
                Err(E::custom(format!(
                    "`command` takes a list, not a string: write command: [\"{}\"] or use `run: \"{}\"` for a shell line",
                    v.split_whitespace().next().unwrap_or(""),
                    v
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Argv, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                if v.is_empty() || v[0].is_empty() {
                    return Err(de::Error::custom("empty command: name the program to run, like [\"/bin/true\"]"));
                }
                Ok(Argv(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A command given either as argv (a list) or as a shell line (a string).
#[derive(Debug, Clone, PartialEq)]
pub enum CommandLine {
    Argv(Vec<String>),
    Shell(String),
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CommandLine;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a shell line (a string) or a list of program and arguments")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CommandLine, E> {
                if v.trim().is_empty() {
                    return Err(E::custom("empty command: write a shell line or a list like [\"/bin/true\"]"));
                }
                Ok(CommandLine::Shell(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<CommandLine, A::Error> {
                Argv::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(|a| CommandLine::Argv(a.0))
            }
        }
        d.deserialize_any(V)
    }
}

/// An environment value; YAML numbers and booleans are taken as their text.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvValue(pub String);

impl<'de> Deserialize<'de> for EnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = EnvValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<EnvValue, E> {
                Ok(EnvValue(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A umask, written as a quoted octal string such as "022". A bare number is refused:
/// YAML reads 022 as twenty-two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Umask(pub u32);

impl<'de> Deserialize<'de> for Umask {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Umask;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an octal string like \"022\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Umask, E> {
                match u32::from_str_radix(v, 8) {
                    Ok(m) if m <= 0o777 && !v.is_empty() => Ok(Umask(m)),
                    _ => Err(E::custom(format!(
                        "invalid umask \"{v}\": write an octal value from \"000\" to \"777\", like \"022\""
                    ))),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Umask, E> {
                Err(E::custom(format!("umask {v} is a number; quote it as an octal string, like umask: \"0{v}\"")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Umask, E> {
                self.visit_u64(v.unsigned_abs())
            }
        }
        d.deserialize_any(V)
    }
}

/// The `jobs:` mapping, in file order.
#[derive(Debug, Default)]
pub struct Jobs(pub Vec<(String, RawJob)>);

impl<'de> Deserialize<'de> for Jobs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Jobs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from job name to job")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Jobs, E> {
                Ok(Jobs::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Jobs, A::Error> {
                let mut jobs: Vec<(String, RawJob)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    let job = map.next_value::<RawJob>()?;
                    if jobs.iter().any(|(n, _)| *n == name) {
                        return Err(de::Error::custom(format!("job `{name}` is defined twice; rename or remove one")));
                    }
                    jobs.push((name, job));
                }
                Ok(Jobs(jobs))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `orphan_sweep:` block of a job, as written.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RawOrphanSweep {
    /// Which processes may be ended: every given criterion must hold.
    #[serde(rename = "match")]
    pub matcher: Option<RawSweepMatch>,
    /// Processes younger than this are kept (default 2h).
    pub min_age: Option<Dur>,
    /// A directory of pid files, or a file of pids: those processes and their descendants are kept.
    pub registry: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL (default: the job's `kill_grace`).
    pub kill_grace: Option<Dur>,
    /// Also end the descendants of each orphan.
    pub tree: Option<bool>,
    /// Most processes ended in one sweep (default 20); the rest are refused and recorded.
    pub max_kills: Option<u32>,
    /// Decide and record, but end nothing.
    pub dry_run: Option<bool>,
    /// Names of processes that adopt orphans (subreapers); a child of one counts as orphaned.
    pub adopters: Option<Vec<String>>,
    /// `false` sweeps every match, orphaned or not (default true).
    pub orphans_only: Option<bool>,
    /// Allow a schedule more frequent than hourly.
    pub allow_frequent: Option<bool>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSweepMatch {
    /// A glob (`*`, `?`) on the basename of argv[0] and on the kernel's comm.
    pub name: Option<String>,
    /// A regular expression searched in the command line (arguments joined by spaces).
    pub cmdline: Option<RegexText>,
    /// The effective user, by name or uid.
    pub user: Option<EnvValue>,
    /// The executable's absolute path, as /proc/PID/exe shows it.
    pub exe: Option<PathBuf>,
}

/// A regular expression, compiled as it is read so a syntax error carries its line and column.
#[derive(Debug, Clone)]
pub struct RegexText(pub regex_lite::Regex);

impl PartialEq for RegexText {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl<'de> Deserialize<'de> for RegexText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        regex_lite::Regex::new(&s).map(RegexText).map_err(|e| {
            de::Error::custom(format!("invalid regular expression {s:?}: {e}; escape special characters with `\\`"))
        })
    }
}
