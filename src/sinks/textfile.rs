//! A node_exporter textfile-collector file (`export: {textfile: PATH}`), rewritten
//! atomically after each run and at each daemon event: per job the last success time, last
//! duration, run and failure counts; per check its value, level and whether an alert is
//! active; per queue its items by state and health score. HELP and TYPE precede every
//! family, as `promtool check metrics` requires.
//!
//! Which jobs it shows is handed over ([`Shown`], from the plan's enabled jobs), and each of
//! them has every one of its series from the first write, 0 (a level: unknown; a value: NaN)
//! until there is something to show, so an alert on "no success for a day" can fire for a job
//! that never succeeded. Labels are `runner_job` and `check`, names no Prometheus target label
//! uses (`job` would arrive as `exported_job`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use super::live::Live;
use super::state::State;

/// The label of job and queue series.
pub const JOB_LABEL: &str = "runner_job";
/// The label of check series.
pub const CHECK_LABEL: &str = "check";

/// Label values escaped as the exposition format says: backslash, double quote, newline.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// Level codes: 0 ok, 1 warn, 2 crit, 3 fail, 4 unknown.
pub fn level_code(level: &str) -> Option<u8> {
    crate::state::Level::parse(level).map(|l| l.code())
}

/// The enabled jobs the file shows, as the daemon hands them over (the sink reads no plan):
/// `jobs` get the `runner_job_*` families, `checks` the `runner_check_*` ones (a check's
/// samples are not runs: they are not counted in the state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shown {
    pub jobs: Vec<String>,
    pub checks: Vec<String>,
}

pub fn render(state: &State, live: &BTreeMap<String, Live>, shown: &Shown) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {}", num(v));
        }
    };
    let none = super::state::JobState::default();
    let jobs: Vec<(&String, &super::state::JobState)> =
        shown.jobs.iter().map(|j| (j, state.job(j).unwrap_or(&none))).collect();
    let job_label = |j: &str| format!("{JOB_LABEL}=\"{}\"", label(j));
    let seconds = |ms: Option<i64>| ms.unwrap_or(0) as f64 / 1000.0;
    family(
        "runner_job_last_success_timestamp_seconds",
        "gauge",
        "Unix time the job last finished successfully; 0 if it never did.",
        jobs.iter().map(|(j, s)| (job_label(j), seconds(s.last_success_ms))).collect(),
    );
    family(
        "runner_job_last_duration_seconds",
        "gauge",
        "How long the job's last run took; 0 before its first run.",
        jobs.iter().map(|(j, s)| (job_label(j), seconds(s.last_duration_ms.map(|d| d as i64)))).collect(),
    );
    family(
        "runner_job_runs_total",
        "counter",
        "Runs of the job by outcome class (success or failure) since the state was created.",
        jobs.iter()
            .flat_map(|(j, s)| {
                [
                    (format!("{},outcome=\"success\"", job_label(j)), s.runs.saturating_sub(s.failures) as f64),
                    (format!("{},outcome=\"failure\"", job_label(j)), s.failures as f64),
                ]
            })
            .collect(),
    );
    family(
        "runner_job_consecutive_failures",
        "gauge",
        "Failed runs of the job since its last success.",
        jobs.iter().map(|(j, s)| (job_label(j), f64::from(s.consecutive_failures))).collect(),
    );
    let check_label = |c: &str| format!("{CHECK_LABEL}=\"{}\"", label(c));
    let persisted = |c: &str| state.job(c).and_then(|j| j.check.as_ref());
    family(
        "runner_check_value",
        "gauge",
        "The check's latest sample in its metric's unit (percent, bytes, seconds, degrees Celsius); NaN before the first sample or while its source is unreadable.",
        shown.checks.iter().map(|c| (check_label(c), live.get(c).and_then(|l| l.value).unwrap_or(f64::NAN))).collect(),
    );
    family(
        "runner_check_level",
        "gauge",
        "The check's judged level: 0 ok, 1 warn, 2 crit, 3 fail, 4 unknown (also before the first sample).",
        shown
            .checks
            .iter()
            .map(|c| {
                let level = live.get(c).and_then(|l| l.level.clone()).or_else(|| persisted(c)?.level.clone());
                (check_label(c), f64::from(level.and_then(|l| level_code(&l)).unwrap_or(4)))
            })
            .collect(),
    );
    family(
        "runner_check_alert_active",
        "gauge",
        "1 while the check has an unresolved alert, else 0.",
        shown
            .checks
            .iter()
            .map(|c| (check_label(c), if persisted(c).is_some_and(|s| s.alert.is_some()) { 1.0 } else { 0.0 }))
            .collect(),
    );
    out
}

/// One queue's row in the file, as the daemon hands it over (the sink reads no spool).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueRow {
    pub job: String,
    pub pending: u64,
    pub retrying: u64,
    pub failed: u64,
    pub completed: u64,
    pub total: u64,
    pub score: u32,
}

/// Where the queues' rows come from at render time: a function the daemon gives the sinks
/// (it reads the spools' listings and `.stats`; nothing written). A queue that cannot be read
/// is left out rather than the whole file left stale.
#[derive(Clone)]
pub struct QueueSource(pub std::sync::Arc<dyn Fn(i64) -> Vec<QueueRow> + Send + Sync>);

impl std::fmt::Debug for QueueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QueueSource")
    }
}

/// The queues' families.
pub fn render_queues(stats: &[QueueRow]) -> String {
    let mut out = String::new();
    if stats.is_empty() {
        return out;
    }
    let job_label = |j: &str| format!("{JOB_LABEL}=\"{}\"", label(j));
    let mut family = |name: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {}", num(v));
        }
    };
    family(
        "runner_queue_items",
        "Items in the queue's spool by state: pending (not tried yet), retrying (waiting after a failed attempt), failed (dead letters kept for keep_failed), completed (done, kept for keep_done).",
        stats
            .iter()
            .flat_map(|s| {
                [("pending", s.pending), ("retrying", s.retrying), ("failed", s.failed), ("completed", s.completed)]
                    .map(|(state, n)| (format!("{},state=\"{state}\"", job_label(&s.job)), n as f64))
            })
            .collect(),
    );
    family(
        "runner_queue_total_items",
        "Items in the queue's spool in any state (the sum of runner_queue_items).",
        stats.iter().map(|s| (job_label(&s.job), s.total as f64)).collect(),
    );
    family(
        "runner_queue_health_score",
        "Percentage of the items finished within the health window that were done rather than failed (100 when none finished); below 80 DEGRADED, below 50 UNHEALTHY.",
        stats.iter().map(|s| (job_label(&s.job), f64::from(s.score))).collect(),
    );
    out
}

/// Writes the file atomically: a scraper sees the old file or the new one, never half.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // node_exporter reads only `*.prom`, so the temp file is never scraped.
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    crate::fsx::replace(path, &tmp, text.as_bytes(), 0o644, false)
}
