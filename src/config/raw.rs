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

use super::duration::Dur;
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
    pub cmdline: Option<String>,
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
