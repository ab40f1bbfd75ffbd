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
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::conditions::{RawFreeSpace, RawWhen};
pub use crate::process::{Argv, CommandLine, EnvValue};
pub use crate::retry::RawRetries;
use crate::schedule::Schedule;
use crate::time::Dur;

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
            /// Conditions a due run waits for (`config::conditions`); boxed, as most jobs
            /// have none.
            pub when: Option<Box<RawWhen>>,
            /// How long a due run may wait for `when:`.
            pub wait: Option<Dur>,
            /// How often a waiting run checks `when:` again.
            pub recheck: Option<Dur>,
            /// How long a `when.reachable` connect may take.
            pub when_timeout: Option<Dur>,
            /// Pings for the run's start, success or failure (`crate::pings`); boxed, as
            /// most jobs have none.
            pub notify: Option<Box<crate::pings::RawNotify>>,
            $($extra)*
        }
    };
}

with_job_settings! {
    #[derive(Deserialize, Debug, Default, Clone)]
    #[serde(deny_unknown_fields)]
    pub struct RawDefaults {}
}

/// The most jobs in the config and its drop-ins together. A box runs a few dozen, a
/// generated config (a check per disk, service or sensor) thousands; a resolved job keeps
/// about 600 bytes of heap (`tests/plan_memory.rs`), so this bounds a plan to a few MiB.
pub const MAX_JOBS: usize = 10_000;

/// The most bytes of `defaults:` copied into jobs, summed over jobs: every job gets its own
/// copy, so 100 KiB of `defaults.env` in a file of 10,000 jobs would be 1 GB of plan.
pub const MAX_COPIED_BYTES: usize = 8 << 20;

/// About how many bytes of `defaults:` each job copies: its texts, plus a little per value.
pub fn copied_bytes(d: &RawDefaults) -> usize {
    let path = |p: &Option<PathBuf>| p.as_ref().map_or(0, |p| p.as_os_str().len());
    let text = |t: &Option<String>| t.as_ref().map_or(0, String::len);
    let env = d.env.iter().flatten().map(|(k, v)| k.len() + v.0.len() + 16).sum::<usize>();
    let on_failure = match &d.on_failure {
        Some(CommandLine::Argv(a)) => a.iter().map(|s| s.len() + 16).sum(),
        Some(CommandLine::Shell(s)) => s.len(),
        None => 0,
    };
    64 + env
        + on_failure
        + super::conditions::copied_bytes(d.when.as_deref())
        + d.notify.as_ref().map_or(0, |n| n.url.len() + 32)
        + path(&d.workdir)
        + text(&d.timezone)
        + text(&d.user)
        + text(&d.group)
}

/// `RawJob`: the job settings, then its own keys, with every kind's keys (the kinds'
/// registry, `kinds::registry!`) between `every:` and `depends_on:`.
macro_rules! raw_job {
    ({ { $($before:tt)* } { $($after:tt)* } }
     $($variant:ident($spec:ty) in $module:ident { $($key:ident: $block:ty),+ };)+) => {
        with_job_settings! {
            #[derive(Deserialize, Debug, Default, Clone)]
            #[serde(deny_unknown_fields)]
            pub struct RawJob {
                $($before)*
                $($(pub $key: $block,)+)+
                $($after)*
            }
        }

        impl RawJob {
            /// The job's kind blocks, taken out.
            pub fn take_blocks(&mut self) -> crate::kinds::Blocks {
                crate::kinds::Blocks { $($($key: self.$key.take(),)+)+ }
            }
        }
    };
}

crate::kinds::registry!(raw_job {
    {
        pub description: Option<String>,
        pub enabled: Option<bool>,
        pub schedule: Option<ScheduleText>,
        pub every: Option<Dur>,
    }
    {
        /// Checks that must be at level ok for this job to run: `{check-name: healthy}`.
        pub depends_on: Option<BTreeMap<String, DependCond>>,
    }
});

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
    /// `auto` (when journald's socket is not there), `on` or `off`.
    pub syslog: Option<SyslogModeText>,
    pub syslog_socket: Option<PathBuf>,
    pub syslog_format: Option<SyslogFormatText>,
    pub syslog_facility: Option<SyslogFacilityText>,
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
pub struct FsyncText(pub crate::config::log::Fsync);

impl<'de> Deserialize<'de> for FsyncText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::config::log::Fsync::parse(&s).map(FsyncText).map_err(de::Error::custom)
    }
}

/// `log: syslog:`, checked as it is read: `auto`, `on` or `off` (YAML's true and false too).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyslogModeText(pub crate::syslog::Mode);

impl<'de> Deserialize<'de> for SyslogModeText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SyslogModeText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("auto, on or off")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SyslogModeText, E> {
                Ok(SyslogModeText(if v { crate::syslog::Mode::On } else { crate::syslog::Mode::Off }))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SyslogModeText, E> {
                crate::syslog::Mode::parse(v)
                    .map(SyslogModeText)
                    .ok_or_else(|| E::custom(format!("syslog: `{v}` is not a choice; give auto, on or off")))
            }
        }
        d.deserialize_any(V)
    }
}

/// `log: syslog_format:`: `rfc3164` or `rfc5424`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyslogFormatText(pub crate::syslog::Format);

impl<'de> Deserialize<'de> for SyslogFormatText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::syslog::Format::parse(&s).map(SyslogFormatText).ok_or_else(|| {
            de::Error::custom(format!("syslog_format: `{s}` is not a choice; give rfc3164 (the default) or rfc5424"))
        })
    }
}

/// `log: syslog_facility:`: a facility's name (`daemon`, `local0` ... `local7`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyslogFacilityText(pub u8);

impl<'de> Deserialize<'de> for SyslogFacilityText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::syslog::facility(&s).map(SyslogFacilityText).ok_or_else(|| {
            let names: Vec<&str> = crate::syslog::FACILITIES.iter().map(|(n, _)| *n).collect();
            de::Error::custom(format!("syslog_facility: `{s}` is not a facility; give one of {}", names.join(", ")))
        })
    }
}

/// A file in the drop-in directory: jobs only, so a package cannot change global settings.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct RawDropIn {
    pub version: Option<u32>,
    pub jobs: Option<Jobs>,
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
                let mut seen = std::collections::HashSet::new();
                while let Some(name) = map.next_key::<String>()? {
                    let job = map.next_value::<RawJob>()?;
                    if !seen.insert(name.clone()) {
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

/// Every key the parser accepts, by section, taken from the serde definitions themselves
/// (each struct's field list, which `deny_unknown_fields` checks against): the
/// `supervisor.yaml(5)` page is generated against it (`examples/generate.rs`) and
/// `tests/man.rs` checks the page, so neither can drift from the parser.
pub fn sections() -> Vec<(&'static str, &'static [&'static str])> {
    use crate::kinds::check::config::Block as RawCheck;
    use crate::kinds::orphan_sweep::config::{Block as RawOrphanSweep, RawMatch};
    use crate::kinds::queue_flush::config::Block as RawQueueFlush;
    vec![
        ("top", fields::<RawConfig>()),
        ("log", fields::<RawLog>()),
        ("export", fields::<RawExport>()),
        ("job", fields::<RawJob>()),
        ("defaults", fields::<RawDefaults>()),
        ("retries", fields::<RawRetries>()),
        ("check", fields::<RawCheck>()),
        ("queue_flush", fields::<RawQueueFlush>()),
        ("orphan_sweep", fields::<RawOrphanSweep>()),
        ("match", fields::<RawMatch>()),
        ("when", fields::<RawWhen>()),
        ("free_space", fields::<RawFreeSpace>()),
        ("notify", fields::<crate::pings::RawNotify>()),
    ]
}

/// The field names a derived `Deserialize` passes to `deserialize_struct`.
fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    struct Probe(Option<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(de::Error::custom("fields taken"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
            unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let mut p = Probe(None);
    let _ = T::deserialize(&mut p);
    p.0.expect("a config section is a struct with derived Deserialize")
}

#[cfg(test)]
mod section_tests {
    #[test]
    fn sections_list_the_parsers_fields() {
        let s = super::sections();
        let check = s.iter().find(|(n, _)| *n == "check").unwrap().1;
        assert!(check.contains(&"for") && check.contains(&"record_every"), "{check:?}");
        let job = s.iter().find(|(n, _)| *n == "job").unwrap().1;
        assert!(job.contains(&"timeout") && job.contains(&"depends_on"), "{job:?}");
    }
}
