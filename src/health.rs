//! The overall health of the box as runner judges it: the worst of its parts. A check at
//! warn is DEGRADED, at crit CRITICAL; a failing probe UNHEALTHY; a check whose source cannot
//! be read DEGRADED (its level is `unknown`); a command job whose last run failed DEGRADED;
//! and any job's own `JobState.health` part (a queue's level). Pure: plan and state in,
//! summary out; `status` and `health` print it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::Plan;
use crate::kinds::HealthRule;
use crate::sinks::live::Live;
use crate::sinks::state::{ActiveAlert, HealthLevel, State};

#[derive(Clone, Debug, Serialize)]
pub struct Part {
    pub job: String,
    pub kind: &'static str,
    pub level: HealthLevel,
    /// The kind's own word: a check's level (`ok`, `warn`, ..., `pending` before its first
    /// result), `failed` for a command, a queue's status.
    pub status: String,
    pub value: Option<f64>,
    pub detail: String,
    pub since_ms: Option<i64>,
    /// When the value was sampled (checks).
    pub sampled_ms: Option<i64>,
    pub alert: Option<ActiveAlert>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub level: HealthLevel,
    pub parts: Vec<Part>,
}

pub fn level_name(l: HealthLevel) -> &'static str {
    l.as_str()
}

pub fn assess(plan: &Plan, state: &State, live: &BTreeMap<String, Live>) -> Summary {
    let mut parts = Vec::new();
    for job in plan.jobs.iter().filter(|j| j.enabled) {
        let name = job.name.as_str();
        let js = state.job(name).cloned().unwrap_or_default();
        match job.kind.health_rule() {
            HealthRule::Level => {
                let cs = js.check.clone().unwrap_or_default();
                let lv = live.get(name);
                let hp = js.health.clone().unwrap_or_default();
                let (level, status) = match cs.level.as_deref() {
                    Some(l) => (hp.level, l.to_string()),
                    None => (HealthLevel::Healthy, "pending".to_string()),
                };
                parts.push(Part {
                    job: name.to_string(),
                    kind: job.kind.name(),
                    level,
                    status,
                    value: lv.map(|l| l.value).unwrap_or(hp.value),
                    detail: lv.map(|l| l.message.clone()).unwrap_or(hp.detail),
                    since_ms: cs.level.as_ref().map(|_| cs.since_ms),
                    sampled_ms: lv.map(|l| l.at_ms),
                    alert: cs.alert,
                });
            }
            rule @ (HealthRule::LastRun | HealthRule::OwnPart) => {
                if let Some(hp) = &js.health {
                    parts.push(Part {
                        job: name.to_string(),
                        kind: job.kind.name(),
                        level: hp.level,
                        status: hp.status.clone(),
                        value: hp.value,
                        detail: hp.detail.clone(),
                        since_ms: Some(hp.since_ms),
                        sampled_ms: None,
                        alert: None,
                    });
                }
                if rule == HealthRule::LastRun && js.last_outcome.is_some_and(|o| o.is_failure()) {
                    let o = js.last_outcome.map(|o| o.as_str()).unwrap_or_default();
                    parts.push(Part {
                        job: name.to_string(),
                        kind: job.kind.name(),
                        level: HealthLevel::Degraded,
                        status: "failed".into(),
                        value: None,
                        detail: format!(
                            "last run: {o}{}",
                            js.last_exit_code.map(|c| format!(" (exit {c})")).unwrap_or_default()
                        ),
                        since_ms: js.last_end_ms,
                        sampled_ms: None,
                        alert: None,
                    });
                }
            }
        }
    }
    let level = parts.iter().map(|p| p.level).max().unwrap_or_default();
    Summary { level, parts }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, ResolveEnv, load_text};
    use crate::record::Outcome;
    use crate::sinks::state::{CheckState, HealthPart};
    use std::path::Path;

    fn plan() -> Plan {
        let host = ResolveEnv { euid: 0, users: Default::default() };
        let text = "version: 1\njobs:\n  disk:\n    check: {metric: disk_used_percent, path: /}\n  web:\n    check: {probe: tcp, port: 80}\n  backup:\n    every: 1h\n    run: x\n  q:\n    every: 1h\n    run: y\n";
        load_text(text, Path::new("/x/t.yaml"), &Overrides::default(), &host).unwrap()
    }

    fn with_level(s: &mut State, job: &str, level: &str, h: HealthLevel) {
        let js = s.jobs.entry(job.into()).or_default();
        js.check = Some(CheckState { level: Some(level.into()), ..Default::default() });
        js.health = Some(HealthPart { level: h, status: level.into(), ..Default::default() });
    }

    #[test]
    fn the_worst_part_wins() {
        let p = plan();
        let mut s = State::default();
        assert_eq!(assess(&p, &s, &BTreeMap::new()).level, HealthLevel::Healthy);
        s.jobs.entry("backup".into()).or_default().last_outcome = Some(Outcome::Failure);
        assert_eq!(assess(&p, &s, &BTreeMap::new()).level, HealthLevel::Degraded);
        with_level(&mut s, "web", "fail", HealthLevel::Unhealthy);
        assert_eq!(assess(&p, &s, &BTreeMap::new()).level, HealthLevel::Unhealthy);
        with_level(&mut s, "disk", "crit", HealthLevel::Critical);
        assert_eq!(assess(&p, &s, &BTreeMap::new()).level, HealthLevel::Critical);
    }

    #[test]
    fn a_queue_part_counts_and_pending_checks_do_not() {
        let p = plan();
        let mut s = State::default();
        s.jobs.entry("q".into()).or_default().health =
            Some(HealthPart { level: HealthLevel::Unhealthy, status: "backlog".into(), ..Default::default() });
        let sum = assess(&p, &s, &BTreeMap::new());
        assert_eq!(sum.level, HealthLevel::Unhealthy);
        assert!(sum.parts.iter().any(|x| x.job == "disk" && x.status == "pending" && x.level == HealthLevel::Healthy));
    }
}
