//! Reading `supervisor.yaml` and its drop-ins into a [`Plan`].
//!
//! Owns: file permissions, YAML parsing, error messages with file, line and column, and
//! applying defaults and overrides. It never starts a process or writes a file; `runner
//! check` is exactly `load`.

pub mod bounds;
pub mod conditions;
pub mod log;
pub mod plan;
pub mod raw;
pub mod source;
mod syntax;
mod trust;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use plan::*;
use raw::{RawConfig, RawDefaults, RawDropIn, RawJob, RawRetries};
use source::Outline;

use jiff::tz::TimeZone;

use self::log as ring;
use crate::kinds::{self, At, Problem};
use crate::suggest::edit_distance;
use crate::time as duration;
use crate::users;

pub const DEFAULT_CONFIG: &str = "/etc/supervisor.yaml";
pub const SCHEMA_VERSION: u32 = 1;

/// One problem in the configuration. `line` 0 means the problem is with the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// The most of one error message shown: a message quotes the value it refuses, and a value
/// may be megabytes long (a pasted blob, a hostile file); the line and column say where.
const MESSAGE_MAX: usize = 1024;

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file.display())?;
        } else {
            write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.col)?;
        }
        match self.message.char_indices().nth(MESSAGE_MAX) {
            None => f.write_str(&self.message),
            Some((at, _)) => {
                write!(f, "{}... ({} more bytes not shown)", &self.message[..at], self.message.len() - at)
            }
        }
    }
}

/// Every problem found, in file order; loading goes on past the first where it can, so
/// one `runner check` shows all of them.
#[derive(Clone, Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Settings that outrank the file: command-line flags, then environment variables.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub state_dir: Option<PathBuf>,
    pub runtime_dir: Option<PathBuf>,
    /// `RUNNER_JOURNAL_SOCKET`: journald's native socket, as for a unit with `LogNamespace=`.
    pub journal_socket: Option<PathBuf>,
    /// `RUNNER_SYSLOG_SOCKET`: the syslog daemon's socket, outranking `log: syslog_socket:`.
    pub syslog_socket: Option<PathBuf>,
}

impl Overrides {
    /// Flags first, then `RUNNER_STATE_DIR` / `RUNNER_RUNTIME_DIR`.
    pub fn from_flags_and_env(state_dir: Option<PathBuf>, runtime_dir: Option<PathBuf>) -> Overrides {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Overrides {
            state_dir: state_dir.or_else(|| env("RUNNER_STATE_DIR")),
            runtime_dir: runtime_dir.or_else(|| env("RUNNER_RUNTIME_DIR")),
            journal_socket: env("RUNNER_JOURNAL_SOCKET"),
            syslog_socket: env(crate::syslog::SOCKET_ENV),
        }
    }
}

/// The environment the config is resolved in; tests substitute their own.
#[derive(Clone, Debug)]
pub struct ResolveEnv {
    pub euid: u32,
    pub users: users::Db,
}

impl ResolveEnv {
    /// This process's ids and the user database, read again only if /etc/passwd or /etc/group
    /// changed since the last load (so a SIGHUP that changed neither reads neither).
    pub fn current() -> ResolveEnv {
        ResolveEnv { euid: nix::unistd::geteuid().as_raw(), users: users::Db::load_cached(Path::new("/")) }
    }

    /// The daemon's own entry, for a job without `user:`/`group:`: where HOME, USER and SHELL
    /// come from when the daemon's environment lacks them (resolved here, not at each fire).
    fn own_user(&self) -> Option<Arc<users::User>> {
        self.users.users.iter().find(|u| u.uid == self.euid).cloned().map(Arc::new)
    }
}

pub fn load(path: &Path, overrides: &Overrides) -> Result<Plan, ConfigErrors> {
    load_with(path, overrides, &ResolveEnv::current())
}

pub fn load_with(path: &Path, overrides: &Overrides, host: &ResolveEnv) -> Result<Plan, ConfigErrors> {
    let file_err =
        |msg: String| ConfigErrors(vec![ConfigError { file: path.to_path_buf(), line: 0, col: 0, message: msg }]);
    let bytes = trust::read(path, host.euid).map_err(file_err)?;
    let text = bounds::decode(bytes).map_err(|r| ConfigErrors(vec![refused(path, r)]))?;
    load_text(&text, path, overrides, host)
}

/// Resolves config text as if read from `path` (drop-ins are looked up beside it).
pub fn load_text(text: &str, path: &Path, overrides: &Overrides, host: &ResolveEnv) -> Result<Plan, ConfigErrors> {
    resolve(text, path, overrides, host, None)
}

/// Resolves the files a plan was read from (`Plan::files` and `Plan::texts`: the main file
/// first, then its drop-ins) as they were then, reading nothing from disk: what the daemon
/// last loaded, for `status`, `health` and `logs` when the file on disk is refused.
pub fn load_saved(files: &[(PathBuf, String)], overrides: &Overrides) -> Result<Plan, ConfigErrors> {
    let Some(((path, text), drop_ins)) = files.split_first() else {
        return Err(ConfigErrors(vec![ConfigError {
            file: PathBuf::from("-"),
            line: 0,
            col: 0,
            message: "the saved config holds no file".into(),
        }]));
    };
    resolve(text, path, overrides, &ResolveEnv::current(), Some(drop_ins))
}

/// Where `state_dir` and `runtime_dir` are when the config at `path` cannot be loaded: the
/// flags and environment, else what the file's own top-level `state_dir:`/`runtime_dir:`
/// lines say (read line by line, so a syntax error elsewhere does not hide them), else the
/// defaults.
pub fn dirs_without_plan(path: &Path, overrides: &Overrides) -> (PathBuf, PathBuf) {
    // Read as the config is (non-blocking, regular files only, within the config budget,
    // trusted as sshd's StrictModes trusts): a fifo or /dev/zero given as --config must not
    // hang `status` or fill memory, and a config runner refuses must not choose where
    // `status` reads (loading the plan says what is wrong).
    let text = trust::read(path, nix::unistd::geteuid().as_raw())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let outline = Outline::scan(&text);
    let peek = |key: &str| {
        let k = outline.find(&[key])?;
        let line = text.lines().nth(k.line.checked_sub(1)?)?;
        let v = line.get(k.value_col.checked_sub(1)?..)?;
        let v = v.split(" #").next()?.trim().trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| PathBuf::from(v))
    };
    let config_dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    resolve_dirs(nix::unistd::geteuid().as_raw(), overrides, peek("state_dir"), peek("runtime_dir"), &config_dir)
}

/// `load_text`, with the drop-ins from `saved` instead of the include directory.
fn resolve(
    text: &str,
    path: &Path,
    overrides: &Overrides,
    host: &ResolveEnv,
    saved: Option<&[(PathBuf, String)]>,
) -> Result<Plan, ConfigErrors> {
    bounds::check(text).map_err(|r| ConfigErrors(vec![refused(path, r)]))?;
    let outline = Outline::scan(text);
    if let Some(e) = duplicate_key_error(path, &outline) {
        return Err(ConfigErrors(vec![e]));
    }
    let raw: RawConfig = match serde_norway::from_str::<Option<RawConfig>>(text) {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => return Err(ConfigErrors(vec![yaml_error(path, text, &outline, &e)])),
    };
    let mut got = Gathered {
        files: vec![path.to_path_buf()],
        texts: vec![text.to_string()],
        jobs: Vec::new(),
        job_index: HashMap::new(),
        jobs_read: 0,
        errors: Vec::new(),
    };
    got.errors.extend(version_error(path, &outline, raw.version, true));

    let config_dir = path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."));
    let under_config = |p: Option<PathBuf>| p.map(|p| if p.is_relative() { config_dir.join(p) } else { p });
    let roots = crate::metrics::Roots::resolve(under_config(raw.proc_root.clone()), under_config(raw.sys_root.clone()));
    let defaults = raw.defaults.clone().unwrap_or_default();
    let load = LoadCtx {
        main: path,
        host,
        defaults: &defaults,
        roots: &roots,
        zones: RefCell::new(HashMap::new()),
        own_user: host.own_user(),
        // Every job gets a copy of `defaults:`; bound what the copies cost (and their errors).
        copied: raw::copied_bytes(&defaults),
        defaults_at: outline.find(&["defaults"]).map_or((1, 1), |k| (k.line, k.col)),
    };
    let raw_jobs = raw.jobs.map(|j| j.0).unwrap_or_default();
    load.main_jobs(&outline, raw_jobs, &mut got)?;

    let include_dir = match &raw.include_dir {
        Some(d) if d.is_relative() => config_dir.join(d),
        Some(d) => d.clone(),
        None => config_dir.join("supervisor.d"),
    };
    load.drop_ins(&include_dir, saved, &mut got);

    let max_parallel = max_parallel(path, &outline, raw.max_parallel, &mut got.errors);
    let raw_log = raw.log.unwrap_or_default();
    let (ring_size, ring_output) = log_sizes(path, &outline, &raw_log, &mut got.errors);
    check_dependencies(&got.jobs, &got.job_index, &mut got.errors);
    if !got.errors.is_empty() {
        return Err(ConfigErrors(got.errors));
    }
    let (state_dir, runtime_dir) = resolve_dirs(host.euid, overrides, raw.state_dir, raw.runtime_dir, &config_dir);
    let log = log_settings(raw_log, overrides, &state_dir, ring_size, ring_output);
    let textfile = raw.export.map(|e| under_config(e.textfile).unwrap_or_else(|| runtime_dir.join("runner.prom")));
    Ok(Plan {
        config_path: path.to_path_buf(),
        files: got.files,
        texts: got.texts,
        state_dir,
        runtime_dir,
        max_parallel,
        jobs: got.jobs,
        log,
        roots,
        textfile,
    })
}

/// The files and jobs of one load as they are read, with every problem found so far (in
/// file order).
struct Gathered {
    files: Vec<PathBuf>,
    texts: Vec<String>,
    jobs: Vec<Arc<Job>>,
    /// Each job's place in `jobs`, by name.
    job_index: HashMap<String, usize>,
    /// Jobs read across the files so far, resolved or not.
    jobs_read: usize,
    errors: Vec<ConfigError>,
}

/// What every file of one load shares while its jobs resolve.
struct LoadCtx<'a> {
    /// The main config file.
    main: &'a Path,
    host: &'a ResolveEnv,
    defaults: &'a RawDefaults,
    roots: &'a crate::metrics::Roots,
    /// The time zones of the load, each read once however many jobs name it.
    zones: RefCell<HashMap<String, Option<TimeZone>>>,
    /// `ResolveEnv::own_user`, shared by every job of the load.
    own_user: Option<Arc<users::User>>,
    /// What one job's copy of `defaults:` costs, and where `defaults:` is.
    copied: usize,
    defaults_at: (usize, usize),
}

impl LoadCtx<'_> {
    fn file<'b>(&'b self, file: &'b Path, outline: &'b Outline<'b>) -> FileCtx<'b> {
        FileCtx {
            file,
            shared_file: Arc::from(file),
            zones: &self.zones,
            outline,
            host: self.host,
            defaults: self.defaults,
            roots: self.roots,
            own_user: self.own_user.clone(),
        }
    }

    /// The main file's jobs. Too many jobs, or `defaults:` copied into them too often, ends
    /// the load: nothing after is read.
    fn main_jobs(
        &self,
        outline: &Outline<'_>,
        raw_jobs: Vec<(String, RawJob)>,
        got: &mut Gathered,
    ) -> Result<(), ConfigErrors> {
        let path = self.main;
        let ctx = self.file(path, outline);
        got.jobs_read = raw_jobs.len();
        if let Some((name, _)) = raw_jobs.get(raw::MAX_JOBS) {
            let (line, col) = ctx.at(name, None);
            return Err(ConfigErrors(vec![ConfigError {
                file: path.to_path_buf(),
                line,
                col,
                message: format!(
                    "more than {} jobs, the most runner takes across the config and its drop-ins, to bound what a config costs: remove jobs or merge them",
                    raw::MAX_JOBS
                ),
            }]));
        }
        got.jobs.reserve_exact(raw_jobs.len());
        if self.copied.saturating_mul(got.jobs_read) > raw::MAX_COPIED_BYTES {
            return Err(ConfigErrors(vec![defaults_too_large(path, self.defaults_at, self.copied, got.jobs_read)]));
        }
        for (name, job) in raw_jobs {
            match ctx.resolve_job(&name, job) {
                Ok(j) => got.jobs.push(Arc::new(j)),
                Err(mut e) => got.errors.append(&mut e),
            }
        }
        got.job_index = got.jobs.iter().enumerate().map(|(i, j)| (j.name.as_str().to_string(), i)).collect();
        Ok(())
    }

    /// The drop-ins, from `include_dir` or else as `saved`, in order; a job name may be
    /// defined once across all files.
    fn drop_ins(&self, include_dir: &Path, saved: Option<&[(PathBuf, String)]>, got: &mut Gathered) {
        let euid = self.host.euid;
        let drop_ins: Vec<(PathBuf, Result<Vec<u8>, String>)> = match saved {
            Some(saved) => saved.iter().map(|(p, t)| (p.clone(), Ok(t.clone().into_bytes()))).collect(),
            None => trust::drop_in_files(include_dir, euid)
                .unwrap_or_else(|msg| {
                    got.errors.push(ConfigError { file: include_dir.to_path_buf(), line: 0, col: 0, message: msg });
                    Vec::new()
                })
                .into_iter()
                .map(|p| {
                    let read = trust::read(&p, euid);
                    (p, read)
                })
                .collect(),
        };
        for (drop_in, read) in drop_ins {
            if self.drop_in(include_dir, drop_in, read, got).is_break() {
                break;
            }
        }
    }

    /// One drop-in; `Break` when it brings too many jobs, which ends the reading of drop-ins.
    fn drop_in(
        &self,
        include_dir: &Path,
        drop_in: PathBuf,
        read: Result<Vec<u8>, String>,
        got: &mut Gathered,
    ) -> ControlFlow<()> {
        let text = match read {
            Ok(bytes) => bounds::decode(bytes).and_then(|t| bounds::check(&t).map(|()| t)),
            Err(msg) => {
                got.errors.push(ConfigError { file: drop_in.clone(), line: 0, col: 0, message: msg });
                return ControlFlow::Continue(());
            }
        };
        let text = match text {
            Ok(t) => t,
            Err(r) => {
                got.errors.push(refused(&drop_in, r));
                return ControlFlow::Continue(());
            }
        };
        got.files.push(drop_in.clone());
        got.texts.push(text.clone());
        let outline = Outline::scan(&text);
        if let Some(e) = duplicate_key_error(&drop_in, &outline) {
            got.errors.push(e);
            return ControlFlow::Continue(());
        }
        let raw: RawDropIn = match serde_norway::from_str::<Option<RawDropIn>>(&text) {
            Ok(r) => r.unwrap_or_default(),
            Err(e) => {
                got.errors.push(yaml_error(&drop_in, &text, &outline, &e));
                return ControlFlow::Continue(());
            }
        };
        got.errors.extend(version_error(&drop_in, &outline, raw.version, false));
        let ctx = self.file(&drop_in, &outline);
        let raw_jobs = raw.jobs.map(|j| j.0).unwrap_or_default();
        got.jobs_read += raw_jobs.len();
        if got.jobs_read > raw::MAX_JOBS {
            got.errors.push(ConfigError {
                file: drop_in.clone(),
                line: 0,
                col: 0,
                message: format!(
                    "this file brings the jobs to {}, more than the {} runner takes across the config and its drop-ins; remove jobs or merge them",
                    got.jobs_read,
                    raw::MAX_JOBS
                ),
            });
            return ControlFlow::Break(());
        }
        if self.copied.saturating_mul(got.jobs_read) > raw::MAX_COPIED_BYTES {
            got.errors.push(defaults_too_large(self.main, self.defaults_at, self.copied, got.jobs_read));
            return ControlFlow::Break(());
        }
        for (name, job) in raw_jobs {
            match ctx.resolve_job(&name, job) {
                Ok(j) => {
                    if let Some(&first) = got.job_index.get(j.name.as_str()) {
                        let first = &got.jobs[first];
                        got.errors.push(ConfigError {
                            file: drop_in.clone(),
                            line: j.source.line,
                            col: j.source.col,
                            message: format!(
                                "job `{}` is already defined at {}; job names must be unique across the config and {}",
                                j.name,
                                first.source,
                                include_dir.display()
                            ),
                        });
                    } else {
                        got.job_index.insert(j.name.as_str().to_string(), got.jobs.len());
                        got.jobs.push(Arc::new(j));
                    }
                }
                Err(mut e) => got.errors.append(&mut e),
            }
        }
        ControlFlow::Continue(())
    }
}

/// A file's `version:` other than the one this runner reads; the main file must give it
/// (`required`), a drop-in may leave it out.
fn version_error(file: &Path, outline: &Outline<'_>, version: Option<u32>, required: bool) -> Option<ConfigError> {
    match version {
        Some(SCHEMA_VERSION) => None,
        Some(v) => {
            let at = outline.find(&["version"]).map(|k| (k.line, k.value_col)).unwrap_or((1, 1));
            Some(ConfigError {
                file: file.to_path_buf(),
                line: at.0,
                col: at.1,
                message: format!("unsupported schema version {v}: this runner reads `version: {SCHEMA_VERSION}`"),
            })
        }
        None if required => Some(ConfigError {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
            message: format!(
                "missing `version: {SCHEMA_VERSION}` at the top of the file; add it so later formats can be told apart"
            ),
        }),
        None => None,
    }
}

/// `max_parallel:`, 4 when not given.
fn max_parallel(path: &Path, outline: &Outline<'_>, given: Option<u32>, errors: &mut Vec<ConfigError>) -> usize {
    match given {
        Some(0) => {
            let at = outline.find(&["max_parallel"]).map(|k| (k.line, k.value_col)).unwrap_or((0, 0));
            errors.push(ConfigError {
                file: path.to_path_buf(),
                line: at.0,
                col: at.1,
                message: "max_parallel must be at least 1".into(),
            });
            1
        }
        Some(n) => n as usize,
        None => 4,
    }
}

/// The ring's size and the output a record keeps, checked against their bounds.
fn log_sizes(path: &Path, outline: &Outline<'_>, raw_log: &raw::RawLog, errors: &mut Vec<ConfigError>) -> (u64, u64) {
    let log_err = |field: &str, message: String| {
        let at = outline.find(&["log", field]).map(|k| (k.line, k.value_col)).unwrap_or((0, 0));
        ConfigError { file: path.to_path_buf(), line: at.0, col: at.1, message }
    };
    let ring_size = raw_log.ring_size.map_or(ring::DEFAULT_SIZE, |s| s.0);
    if !(ring::MIN_SIZE..=ring::MAX_SIZE).contains(&ring_size) {
        errors.push(log_err(
            "ring_size",
            format!("ring_size {ring_size} is out of range: give 16KiB to 1GiB, like ring_size: 256KiB"),
        ));
    }
    let ring_output = raw_log.ring_output_bytes.map_or(ring::DEFAULT_OUTPUT_BYTES as u64, |s| s.0);
    if ring_output > ring::MAX_OUTPUT as u64 {
        errors.push(log_err(
            "ring_output_bytes",
            format!(
                "ring_output_bytes {ring_output} is above the ring's cap of {}; journald keeps the full tail",
                ring::MAX_OUTPUT
            ),
        ));
    }
    (ring_size, ring_output)
}

/// `log:` as the plan holds it; the overrides outrank the file's sockets.
fn log_settings(
    raw_log: raw::RawLog,
    overrides: &Overrides,
    state_dir: &Path,
    ring_size: u64,
    ring_output: u64,
) -> LogSettings {
    LogSettings {
        ring: ring::RingConfig {
            path: state_dir.join(ring::FILE_NAME),
            size: ring_size,
            output_bytes: ring_output as usize,
            fsync: raw_log.fsync.map_or(ring::Fsync::Always, |f| f.0),
        },
        journal_socket: overrides
            .journal_socket
            .clone()
            .or(raw_log.journal_socket)
            .unwrap_or_else(|| PathBuf::from(crate::journal::DEFAULT_SOCKET)),
        job_output_to_journal: raw_log.job_output_to_journal.unwrap_or(false),
        syslog: crate::syslog::Settings {
            mode: raw_log.syslog.map_or(crate::syslog::Mode::Auto, |m| m.0),
            socket: overrides
                .syslog_socket
                .clone()
                .or(raw_log.syslog_socket)
                .unwrap_or_else(|| PathBuf::from(crate::syslog::DEFAULT_SOCKET)),
            format: raw_log.syslog_format.map_or(crate::syslog::Format::Rfc3164, |f| f.0),
            facility: raw_log.syslog_facility.map_or(3, |f| f.0),
        },
    }
}

/// `depends_on` (and `when.checks`) names checks that may live in any file, so it is
/// checked once all are read.
fn check_dependencies(jobs: &[Arc<Job>], job_index: &HashMap<String, usize>, errors: &mut Vec<ConfigError>) {
    for job in jobs {
        let when_checks = job.conditions.iter().flat_map(|c| c.checks());
        for dep in job.depends_on.iter().chain(when_checks) {
            let problem = match job_index.get(dep.check.as_str()).map(|&i| &jobs[i]) {
                Some(j) if j.kind.is_check() => continue,
                Some(j) => format!(
                    "job `{}` depends on `{}`, which is a {} job, not a check; depends_on names checks",
                    job.name,
                    dep.check,
                    j.kind.name()
                ),
                None => {
                    let checks: Vec<&str> =
                        jobs.iter().filter(|j| j.kind.is_check()).map(|j| j.name.as_str()).collect();
                    let best = checks.iter().map(|c| (edit_distance(&dep.check, c), *c)).filter(|(d, _)| *d <= 2).min();
                    match best {
                        Some((_, c)) => format!(
                            "job `{}` depends on `{}`, which does not exist, did you mean `{c}`?",
                            job.name, dep.check
                        ),
                        None => format!(
                            "job `{}` depends on `{}`, which does not exist; checks defined: {}",
                            job.name,
                            dep.check,
                            if checks.is_empty() { "none".to_string() } else { checks.join(", ") }
                        ),
                    }
                }
            };
            errors.push(ConfigError {
                file: dep.at.file.to_path_buf(),
                line: dep.at.line,
                col: dep.at.col,
                message: problem,
            });
        }
    }
}

/// Precedence: override (flag or environment) > file > built-in default.
fn resolve_dirs(
    euid: u32,
    overrides: &Overrides,
    file_state: Option<PathBuf>,
    file_runtime: Option<PathBuf>,
    config_dir: &Path,
) -> (PathBuf, PathBuf) {
    let rel = |p: PathBuf| if p.is_relative() { config_dir.join(p) } else { p };
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let state_dir = overrides.state_dir.clone().or(file_state.map(rel)).unwrap_or_else(|| {
        if euid == 0 {
            PathBuf::from("/var/lib/runner")
        } else {
            env("XDG_STATE_HOME")
                .or_else(|| env("HOME").map(|h| h.join(".local/state")))
                .unwrap_or_else(|| PathBuf::from("/tmp"))
                .join("runner")
        }
    });
    let runtime_dir = overrides.runtime_dir.clone().or(file_runtime.map(rel)).unwrap_or_else(|| {
        if euid == 0 {
            PathBuf::from("/run/runner")
        } else {
            env("XDG_RUNTIME_DIR").map(|d| d.join("runner")).unwrap_or_else(|| state_dir.join("run"))
        }
    });
    (state_dir, runtime_dir)
}

fn defaults_too_large(file: &Path, (line, col): (usize, usize), copied: usize, jobs: usize) -> ConfigError {
    ConfigError {
        file: file.to_path_buf(),
        line,
        col,
        message: format!(
            "`defaults:` holds {copied} bytes, copied into each of {jobs} jobs: more than the {} bytes runner allows in all; move large values (env, on_failure) into the jobs that use them",
            raw::MAX_COPIED_BYTES
        ),
    }
}

/// A file refused by its size, encoding or shape (`bounds`).
fn refused(file: &Path, r: bounds::Refusal) -> ConfigError {
    ConfigError { file: file.to_path_buf(), line: r.line, col: r.col, message: r.message }
}
fn duplicate_key_error(file: &Path, outline: &Outline) -> Option<ConfigError> {
    let (first, second) = outline.first_duplicate()?;
    let path = outline.path(&second);
    let key = path.last().map(String::as_str).unwrap_or("");
    let message = if path.len() == 2 && path[0] == "jobs" {
        format!("job `{key}` is defined twice (first at line {}); rename or remove one", first.line)
    } else {
        let within = match outline.job_at_line(second.line) {
            Some(job) if path.len() > 2 => format!(" in job `{job}`"),
            _ => String::new(),
        };
        format!("duplicate key `{key}`{within} (first at line {}); remove one", first.line)
    };
    Some(ConfigError { file: file.to_path_buf(), line: second.line, col: second.col, message })
}

/// Turns a serde_norway error into ours: its location, and a message that names the job
/// and, for a misspelt field or value, the closest valid one.
/// `L column C` at the start of `s`, as libyaml writes a place.
fn line_col(s: &str) -> Option<(usize, usize)> {
    let (l, rest) = s.split_once(" column ")?;
    let c: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((l.parse().ok()?, c.parse().ok()?))
}

fn yaml_error(file: &Path, text: &str, outline: &Outline, e: &serde_norway::Error) -> ConfigError {
    let (line, mut col) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let mut msg = e.to_string();
    // A key without its colon: libyaml notices only at the next line (`could not find
    // expected ':' ..., while scanning a simple key at line L column C`); the place to fix is
    // the key it started at, line L, just after its text; and that key is no job's setting
    // when it sits at a job name's indentation (a job that does not exist yet).
    if let Some(i) = msg.find(", while scanning a simple key at line ")
        && let Some((l, c)) = line_col(&msg[i + ", while scanning a simple key at line ".len()..])
        && let Some(content) = text.lines().nth(l.saturating_sub(1)).and_then(|t| t.get(c.saturating_sub(1)..))
    {
        let key = content.split(" #").next().unwrap_or(content).trim_end();
        let job = outline
            .keys()
            .filter(|k| k.line < l && k.col < c)
            .filter_map(|k| Some(outline.path(&k)).filter(|p| p.len() == 2 && p[0] == "jobs"))
            .last();
        let message = if key.contains(char::is_whitespace) {
            format!("`{key}` has no `:` (a setting is written `key: value`, with a space after the colon)")
        } else {
            format!("`{key}` has no `:` after it; write `{key}:`")
        };
        let message = match job {
            Some(p) => format!("job `{}`: {message}", p[1]),
            None => message,
        };
        let col = if key.contains(char::is_whitespace) { c } else { c + key.chars().count() };
        return ConfigError { file: file.to_path_buf(), line: l, col, message };
    }
    // An unclosed quote, a broken indentation, a tab: where the problem starts, in words.
    if let Some((line, col, message)) = syntax::locate(text, outline, &msg, line) {
        return ConfigError { file: file.to_path_buf(), line, col, message };
    }
    // A bad value is reported at its key; point at the value, where the fix goes (a bad
    // key stays where it is).
    let mut key = None;
    if !msg.contains("unknown field")
        && let Some(k) = outline.keys().find(|k| k.line == line && (k.col == col || k.value_col == col))
    {
        col = k.value_col;
        key = outline.path(&k).last().cloned();
    }
    // serde_norway appends " at line L column C"; we print the location in front instead.
    if let Some(i) = msg.rfind(" at line ") {
        msg.truncate(i);
    }
    // It also prefixes the path of the value (`jobs.backup.retries: ...`).
    let mut path_prefix = None;
    if let Some((p, rest)) = msg.split_once(": ")
        && !p.contains(' ')
        && p.contains('.')
    {
        path_prefix = Some(p.to_string());
        msg = rest.to_string();
    }
    let job = path_prefix
        .as_deref()
        .and_then(|p| p.strip_prefix("jobs."))
        .map(|p| p.split('.').next().unwrap_or(p).to_string())
        .or_else(|| (line > 0).then(|| outline.job_at_line(line).map(str::to_string)).flatten());
    let mut message = improve_unknown(&msg);
    if let Some(words) = syntax::expected_in_words(&message, key.as_deref()) {
        message = words;
    }
    if let Some(job) = job {
        if let Some(i) = message.find(", did you mean") {
            message.insert_str(i, &format!(" in job `{job}`"));
        } else if message.starts_with("unknown field")
            || message.starts_with("unknown variant")
            || message.starts_with("missing field")
        {
            let cut = message.find(", expected").unwrap_or(message.len());
            message.insert_str(cut, &format!(" in job `{job}`"));
        } else {
            message = format!("job `{job}`: {message}");
        }
    }
    ConfigError { file: file.to_path_buf(), line, col, message }
}

/// "unknown field `timout`, expected one of `timeout`, ..." becomes
/// "unknown field `timout`, did you mean `timeout`? (valid: ...)".
fn improve_unknown(msg: &str) -> String {
    let kind = if msg.starts_with("unknown field `") {
        "field"
    } else if msg.starts_with("unknown variant `") {
        "value"
    } else {
        return msg.to_string();
    };
    let got = msg.split('`').nth(1).unwrap_or("");
    let valid: Vec<&str> = match msg.split_once(", expected ") {
        Some((_, rest)) => rest.split('`').skip(1).step_by(2).collect(),
        None => Vec::new(),
    };
    let best = valid
        .iter()
        .map(|v| (edit_distance(got, v), *v))
        .filter(|(d, v)| *d <= (v.len().max(got.len()) / 3).max(1) + 1)
        .min();
    let list = valid.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
    match best {
        Some((_, v)) => format!("unknown {kind} `{got}`, did you mean `{v}`?"),
        None if valid.is_empty() => format!("unknown {kind} `{got}`"),
        None => format!("unknown {kind} `{got}`, expected one of {list}"),
    }
}

/// Resolution of one file's jobs.
struct FileCtx<'a> {
    file: &'a Path,
    /// `file`, for the jobs' `SourcePos`.
    shared_file: Arc<Path>,
    /// The time zones of the load, each read once however many jobs name it.
    zones: &'a RefCell<HashMap<String, Option<TimeZone>>>,
    outline: &'a Outline<'a>,
    host: &'a ResolveEnv,
    defaults: &'a RawDefaults,
    roots: &'a crate::metrics::Roots,
    /// `ResolveEnv::own_user`, shared by every job of the load.
    own_user: Option<Arc<users::User>>,
}

impl FileCtx<'_> {
    /// The zone `name` names (`local`: the system's), read once per load: 10,000 jobs in
    /// one zone share its rules and cost one lookup.
    fn zone(&self, name: &str) -> Option<TimeZone> {
        if let Some(tz) = self.zones.borrow().get(name) {
            return tz.clone();
        }
        let tz = match name {
            "local" => Some(crate::time::local_zone()),
            n => jiff::tz::db().get(n).ok(),
        };
        self.zones.borrow_mut().insert(name.to_string(), tz.clone());
        tz
    }

    /// Line and column of a job's field value, falling back to the job, then the file.
    fn at(&self, job: &str, field: Option<&str>) -> (usize, usize) {
        if let Some(f) = field
            && let Some(k) = self.outline.find(&["jobs", job, f])
        {
            return (k.line, k.value_col);
        }
        if let Some(f) = field
            && let Some(k) = self.outline.find(&["defaults", f])
        {
            return (k.line, k.value_col);
        }
        self.outline.find(&["jobs", job]).map(|k| (k.line, k.col)).unwrap_or((1, 1))
    }

    fn err(&self, job: &str, field: Option<&str>, message: String) -> ConfigError {
        let (line, col) = self.at(job, field);
        ConfigError { file: self.file.to_path_buf(), line, col, message }
    }

    /// A kind's resolved block, its problems placed at their line and column: a key path
    /// inside the block falls back outwards to the nearest key the file has.
    fn placed<T>(
        &self,
        job: &str,
        block: &str,
        r: Result<T, Vec<Problem>>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<T> {
        let problems = match r {
            Ok(spec) => return Some(spec),
            Err(p) => p,
        };
        for p in problems {
            let e = match &p.at {
                At::Job(key) => self.err(job, Some(key), p.message),
                At::Block(path) => {
                    let found = (1..=path.len()).rev().find_map(|n| {
                        let mut full = vec!["jobs", job, block];
                        full.extend_from_slice(&path[..n]);
                        self.outline.find(&full)
                    });
                    match found {
                        Some(k) => ConfigError {
                            file: self.file.to_path_buf(),
                            line: k.line,
                            col: k.value_col,
                            message: p.message,
                        },
                        None => self.err(job, Some(block), p.message),
                    }
                }
            };
            errors.push(e);
        }
        None
    }

    fn resolve_job(&self, name: &str, mut j: RawJob) -> Result<Job, Vec<ConfigError>> {
        let d = self.defaults;
        let mut errors = Vec::new();
        let job_name = match JobName::new(name) {
            Ok(n) => n,
            Err(m) => return Err(vec![self.err(name, None, m)]),
        };
        let conditions = self.resolve_conditions(name, &j, &mut errors);
        let kind = self.resolve_kind(name, &mut j, &mut errors);
        let schedule = self.resolve_schedule(name, j.schedule.take(), j.every, kind.as_ref(), &mut errors);
        let zone = self.resolve_zone(name, j.timezone.as_ref().or(d.timezone.as_ref()), &mut errors);

        let user = j.user.clone().or_else(|| d.user.clone());
        let group = j.group.clone().or_else(|| d.group.clone());
        let run_as = self.resolve_user(name, user.as_deref(), group.as_deref(), &mut errors).map(Box::new);
        let retries = self.resolve_retries(name, j.retries.clone().or_else(|| d.retries.clone()), &mut errors);
        let jitter = self.resolve_jitter(name, j.jitter.or(d.jitter), schedule.as_ref(), &mut errors);
        let (workdir, env, nice) = self.resolve_process(name, &j, &mut errors);

        let source = {
            let (line, col) = self.at(name, None);
            SourcePos { file: self.shared_file.clone(), line, col }
        };
        let is_check = kind.as_ref().is_some_and(JobKind::is_check);
        self.refused_by_kind(name, kind.as_ref(), &j, &mut errors);
        let depends_on = self.resolve_depends(name, j.depends_on.take());
        let notify = self.resolve_notify(name, j.notify.as_deref(), is_check, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let (Some(kind), Some(schedule), Some(zone)) = (kind, schedule, zone) else {
            unreachable!("every None above pushed an error");
        };
        Ok(Job {
            name: job_name,
            description: j.description,
            source,
            kind,
            schedule,
            zone,
            enabled: j.enabled.unwrap_or(true),
            timeout: j.timeout.or(d.timeout).map(|t| t.0).filter(|t| !t.is_zero()),
            kill_grace: j.kill_grace.or(d.kill_grace).map(|t| t.0).unwrap_or(Duration::from_secs(10)),
            retries: if is_check { Retries::default() } else { retries },
            overlap: j.overlap.or(d.overlap).unwrap_or_default(),
            jitter,
            catch_up: j.catch_up.or(d.catch_up).unwrap_or_default(),
            own_user: if run_as.is_none() { self.own_user.clone() } else { None },
            run_as,
            workdir,
            env,
            nice,
            umask: j.umask.or(d.umask).map(|u| u.0).unwrap_or(0o022),
            on_failure: if is_check { None } else { j.on_failure.or_else(|| d.on_failure.clone()) },
            depends_on,
            conditions,
            notify,
        })
    }

    /// The job's kind, from the kind blocks it has (taken out of `j`), each kind resolving
    /// its own block. A job has exactly one kind.
    fn resolve_kind(&self, name: &str, j: &mut RawJob, errors: &mut Vec<ConfigError>) -> Option<JobKind> {
        let d = self.defaults;
        let blocks = j.take_blocks();
        let given = kinds::Given {
            every: j.every.map(|e| e.0),
            schedule: j.schedule.as_ref().map(|s| &s.0),
            user: j.user.as_deref(),
            kill_grace: j.kill_grace.or(d.kill_grace).map(|g| g.0),
            timeout: j.timeout.or(d.timeout).map(|t| t.0).filter(|t| !t.is_zero()),
            users: &self.host.users,
            roots: self.roots,
        };
        // Every kind block the job has, by field name.
        let mut kinds: Vec<(&'static str, Option<JobKind>)> = JobKind::from_blocks(name, blocks, given)
            .into_iter()
            .map(|(block, r)| (block, self.placed(name, block, r, errors)))
            .collect();
        match kinds.len() {
            0 => {
                errors.push(self.err(
                    name,
                    None,
                    format!(
                        "job `{name}` has nothing to do; add `command: [program, args...]`, `run: \"shell line\"`, or a `check:`, `queue_flush:` or `orphan_sweep:` block"
                    ),
                ));
                None
            }
            1 => kinds.pop().and_then(|(_, k)| k),
            _ => {
                let names: Vec<String> = kinds.iter().map(|(n, _)| format!("`{n}:`")).collect();
                errors.push(self.err(
                    name,
                    Some(kinds[1].0),
                    format!("job `{name}` has {}; a job does one thing, keep one", names.join(" and ")),
                ));
                None
            }
        }
    }

    /// `schedule:` or `every:`, else the kind's default interval (a command has none).
    fn resolve_schedule(
        &self,
        name: &str,
        schedule: Option<raw::ScheduleText>,
        every: Option<crate::time::Dur>,
        kind: Option<&JobKind>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Schedule> {
        match (schedule, every) {
            (Some(s), None) => Some(s.0),
            // Sub-second intervals are kept (the tests' jobs run every 30 ms); below 10 ms a
            // job would only keep the daemon busy.
            (None, Some(e)) if e.0 < Duration::from_millis(10) => {
                errors.push(self.err(
                    name,
                    Some("every"),
                    format!(
                        "job `{name}`: `every: {}` is shorter than 10ms, the shortest interval runner keeps; write `every: 1s` or longer",
                        duration::format(e.0)
                    ),
                ));
                None
            }
            (None, Some(e)) => Some(Schedule::Every(e.0)),
            (Some(_), Some(_)) => {
                errors.push(self.err(
                    name,
                    Some("every"),
                    format!("job `{name}` has both `schedule:` and `every:`; a job has one schedule, keep one"),
                ));
                None
            }
            (None, None) => match kind.and_then(JobKind::default_every) {
                Some(every) => Some(Schedule::Every(every)),
                None if kind.is_none() => None,
                None => {
                    errors.push(self.err(
                        name,
                        None,
                        format!("job `{name}` has no schedule; add `schedule: \"*/5 * * * *\"` (cron) or `every: 5m`"),
                    ));
                    None
                }
            },
        }
    }

    /// `timezone:`, the system's (`local`) when not given.
    fn resolve_zone(&self, name: &str, tz_name: Option<&String>, errors: &mut Vec<ConfigError>) -> Option<Zone> {
        let n = tz_name.cloned().unwrap_or_else(|| "local".into());
        match self.zone(&n) {
            Some(tz) => Some(Zone { name: n, tz }),
            None => {
                errors.push(self.err(
                    name,
                    Some("timezone"),
                    format!("unknown time zone `{n}` in job `{name}`; use an IANA name like `Europe/Berlin` or `UTC` (see /usr/share/zoneinfo)"),
                ));
                None
            }
        }
    }

    /// `retries:`, the job's own or else `defaults:`'s.
    fn resolve_retries(&self, name: &str, given: Option<RawRetries>, errors: &mut Vec<ConfigError>) -> Retries {
        let r = given.unwrap_or_default();
        let def = Retries::default();
        let attempts = r.attempts.unwrap_or(def.attempts);
        if attempts == 0 {
            errors.push(self.err(
                name,
                Some("retries"),
                format!("job `{name}`: retries.attempts counts every try, the first included; it must be at least 1"),
            ));
        }
        let backoff = r.backoff.map(|b| b.0).unwrap_or(def.backoff);
        let max_backoff = r.max_backoff.map(|b| b.0).unwrap_or(def.max_backoff.max(backoff));
        if max_backoff < backoff {
            errors.push(self.err(
                name,
                Some("retries"),
                format!(
                    "job `{name}`: retries.max_backoff ({}) is shorter than retries.backoff ({})",
                    duration::format(max_backoff),
                    duration::format(backoff)
                ),
            ));
        }
        if attempts <= 1 && (r.backoff.is_some() || r.max_backoff.is_some()) {
            errors.push(self.err(
                name,
                Some("retries"),
                format!("job `{name}`: retries.backoff has no effect with a single attempt; set retries.attempts to 2 or more, or remove the backoff"),
            ));
        }
        Retries { attempts: attempts.max(1), backoff, max_backoff }
    }

    /// `jitter:`, a fixed per-host offset in [0, jitter): at most a day, and for `every:`
    /// jobs less than the interval, or it only delays the first run.
    fn resolve_jitter(
        &self,
        name: &str,
        given: Option<crate::time::Dur>,
        schedule: Option<&Schedule>,
        errors: &mut Vec<ConfigError>,
    ) -> Duration {
        let jitter = given.map(|t| t.0).unwrap_or_default();
        let jitter_cap = match schedule {
            Some(Schedule::Every(every)) if *every < Duration::from_secs(86_400) => Some(("the interval", *every)),
            _ => None,
        };
        if let Some((what, cap)) = jitter_cap.filter(|(_, cap)| jitter >= *cap) {
            errors.push(self.err(
                name,
                Some("jitter"),
                format!(
                    "job `{name}`: jitter {} is not shorter than {what} ({}); use less than {}",
                    duration::format(jitter),
                    duration::format(cap),
                    duration::format(cap)
                ),
            ));
        } else if jitter > Duration::from_secs(86_400) {
            errors.push(self.err(
                name,
                Some("jitter"),
                format!("job `{name}`: jitter {} is longer than a day; use at most 1d", duration::format(jitter)),
            ));
        }
        jitter
    }

    /// What the job's processes start with: `workdir:`, `env:` (the defaults' under the
    /// job's own) and `nice:`.
    fn resolve_process(
        &self,
        name: &str,
        j: &RawJob,
        errors: &mut Vec<ConfigError>,
    ) -> (Option<PathBuf>, Vec<(String, String)>, Option<i8>) {
        let d = self.defaults;
        let workdir = j.workdir.clone().or_else(|| d.workdir.clone());
        if let Some(w) = &workdir
            && !w.is_absolute()
        {
            errors.push(self.err(
                name,
                Some("workdir"),
                format!("job `{name}`: workdir `{}` must be an absolute path", w.display()),
            ));
        }
        // The defaults the job does not override, then the job's own.
        let own_env = j.env.clone().unwrap_or_default();
        let mut env: Vec<(String, String)> = d
            .env
            .iter()
            .flatten()
            .filter(|(k, _)| !own_env.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        env.extend(own_env.into_iter().map(|(k, v)| (k, v.0)));
        for (k, _) in &env {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                errors.push(self.err(
                    name,
                    Some("env"),
                    format!("job `{name}`: invalid environment variable name `{k}`"),
                ));
            }
        }
        let nice = j.nice.or(d.nice);
        if let Some(n) = nice
            && !(-20..=19).contains(&n)
        {
            errors.push(self.err(name, Some("nice"), format!("job `{name}`: nice {n} is out of range; use -20 to 19")));
        }
        (workdir, env, nice)
    }

    /// The job's own settings its kind refuses.
    fn refused_by_kind(&self, name: &str, kind: Option<&JobKind>, j: &RawJob, errors: &mut Vec<ConfigError>) {
        let Some(kind) = kind else { return };
        let own = kinds::OwnSettings {
            retries: j.retries.is_some(),
            timeout: j.timeout.is_some(),
            on_failure: j.on_failure.is_some(),
        };
        let problems = kind.refused(name, own);
        if !problems.is_empty() {
            self.placed::<()>(name, "", Err(problems), errors);
        }
    }

    /// `depends_on:`, each placed at its own key (they are checked once every file is read).
    fn resolve_depends(&self, name: &str, given: Option<BTreeMap<String, raw::DependCond>>) -> Vec<Dependency> {
        given
            .unwrap_or_default()
            .into_keys()
            .map(|check| {
                let (line, col) = self
                    .outline
                    .find(&["jobs", name, "depends_on", &check])
                    .map(|k| (k.line, k.col))
                    .unwrap_or_else(|| self.at(name, Some("depends_on")));
                Dependency { check, at: SourcePos { file: self.shared_file.clone(), line, col } }
            })
            .collect()
    }

    /// `notify:`, the job's own or else `defaults:`'s. A check samples every few seconds, so
    /// `defaults.notify` skips checks (a ping per sample); a check's own is kept.
    fn resolve_notify(
        &self,
        name: &str,
        own: Option<&crate::pings::RawNotify>,
        is_check: bool,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Box<crate::pings::Notify>> {
        let raw = own.or(self.defaults.notify.as_deref().filter(|_| !is_check))?;
        match crate::pings::Notify::resolve(raw) {
            Ok(n) => Some(Box::new(n)),
            Err(m) => {
                let key = if raw.on.as_ref().is_some_and(Vec::is_empty) { "on" } else { "url" };
                let (line, col) = self
                    .outline
                    .find(&["jobs", name, "notify", key])
                    .or_else(|| self.outline.find(&["defaults", "notify", key]))
                    .map(|k| (k.line, k.value_col))
                    .unwrap_or_else(|| self.at(name, Some("notify")));
                errors.push(ConfigError {
                    file: self.file.to_path_buf(),
                    line,
                    col,
                    message: format!("job `{name}`: {m}"),
                });
                None
            }
        }
    }

    /// `when:` and its settings, the job's own or else `defaults:`'s (a job's `when:`
    /// replaces the defaults' whole).
    fn resolve_conditions(
        &self,
        name: &str,
        j: &RawJob,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Box<conditions::Conditions>> {
        let d = self.defaults;
        let own =
            [("wait", j.wait.is_some()), ("recheck", j.recheck.is_some()), ("when_timeout", j.when_timeout.is_some())];
        // `defaults.when` is for the jobs that do the work: a check gated by it would stop
        // watching the very state it is there to report (the battery while on battery).
        let default_when = d.when.as_deref().filter(|_| j.check.is_none());
        let given = conditions::Given {
            when: j.when.as_deref().or(default_when),
            wait: j.wait.or(d.wait),
            recheck: j.recheck.or(d.recheck),
            timeout: j.when_timeout.or(d.when_timeout),
            own_settings: own.iter().find(|(_, given)| *given).map(|(k, _)| *k),
        };
        let check_at = |check: &str| {
            let (line, col) = self
                .outline
                .find(&["jobs", name, "when", "checks", check])
                .or_else(|| self.outline.find(&["defaults", "when", "checks", check]))
                .map(|k| (k.line, k.col))
                .unwrap_or_else(|| self.at(name, Some("when")));
            SourcePos { file: self.shared_file.clone(), line, col }
        };
        match conditions::resolve(name, given, self.roots, check_at) {
            Ok(c) => c.map(Box::new),
            Err(problems) => {
                errors.extend(problems.into_iter().map(|(key, m)| self.err(name, Some(key), m)));
                None
            }
        }
    }

    fn resolve_user(
        &self,
        job: &str,
        user: Option<&str>,
        group: Option<&str>,
        errors: &mut Vec<ConfigError>,
    ) -> Option<RunAs> {
        let db = &self.host.users;
        let u = match user {
            None => None,
            Some(spec) => match db.user(spec) {
                Some(u) => Some(u.clone()),
                None => {
                    errors.push(self.err(
                        job,
                        Some("user"),
                        format!("unknown user `{spec}` in job `{job}`; create it (useradd --system {spec}) or pick one from /etc/passwd"),
                    ));
                    return None;
                }
            },
        };
        let g = match group {
            None => None,
            Some(spec) => match db.group(spec) {
                Some(g) => Some(g.gid),
                None => {
                    errors.push(self.err(
                        job,
                        Some("group"),
                        format!("unknown group `{spec}` in job `{job}`; create it (groupadd --system {spec}) or pick one from /etc/group"),
                    ));
                    return None;
                }
            },
        };
        let run_as = match (u, g) {
            (None, None) => return None,
            (Some(u), g) => {
                let gid = g.unwrap_or(u.gid);
                RunAs {
                    groups: db.supplementary_gids(&u, gid),
                    user: u.name,
                    uid: u.uid,
                    gid,
                    home: u.home,
                    shell: u.shell,
                }
            }
            (None, Some(gid)) => {
                // Only the group changes: the job keeps the daemon's user.
                let me = db.users.iter().find(|x| x.uid == self.host.euid).cloned();
                let (name, home, shell) = me
                    .map(|m| (m.name, m.home, m.shell))
                    .unwrap_or_else(|| (self.host.euid.to_string(), PathBuf::from("/"), PathBuf::from("/bin/sh")));
                RunAs { user: name, uid: self.host.euid, gid, groups: vec![gid], home, shell }
            }
        };
        if self.host.euid != 0 && run_as.uid != self.host.euid {
            errors.push(self.err(
                job,
                Some("user"),
                format!(
                    "job `{job}` runs as `{}`, but runner runs as uid {} and cannot switch users; run runner as root or remove `user:`",
                    run_as.user, self.host.euid
                ),
            ));
            return None;
        }
        // Without root a process can take no other group: the job would silently run in
        // runner's own.
        if self.host.euid != 0
            && let Some(gid) = g
            && gid != nix::unistd::getegid().as_raw()
        {
            errors.push(self.err(
                job,
                Some("group"),
                format!(
                    "job `{job}` runs in group `{}`, but runner runs as uid {} and cannot switch groups; run runner as root or remove `group:`",
                    group.unwrap_or_default(),
                    self.host.euid
                ),
            ));
            return None;
        }
        Some(run_as)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_field() {
        let m = improve_unknown("unknown field `timout`, expected one of `timeout`, `kill_grace`, `retries`");
        assert_eq!(m, "unknown field `timout`, did you mean `timeout`?");
        let m = improve_unknown("unknown variant `sikp`, expected one of `skip`, `queue`, `replace`");
        assert_eq!(m, "unknown value `sikp`, did you mean `skip`?");
        let m = improve_unknown("unknown field `zzzzzzzz`, expected `a` or `b`");
        assert!(m.contains("expected one of `a`, `b`"), "{m}");
    }
}
