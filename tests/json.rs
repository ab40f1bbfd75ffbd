//! Every `--json` through the binary, with a daemon running (so its start, next due times,
//! a check's samples and a queue's health are all there): times are RFC 3339 with an offset,
//! never epoch numbers, and every key printed is one docs/json.md lists.

mod common;
use common::*;
use std::time::Duration;

/// docs/json.md, where the keys are documented, and the JSON sections of the pages under docs/
/// that document a feature's own keys (docs/conditions.md, docs/notify.md).
fn json_section() -> String {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap();
    assert!(page.starts_with("# JSON output"), "docs/json.md is the JSON output page");
    let mut text = page;
    for page in ["conditions.md", "notify.md"] {
        let doc = std::fs::read_to_string(format!("{}/docs/{page}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let start = doc.find("## JSON output").unwrap_or_else(|| panic!("a JSON output section in docs/{page}"));
        let end = doc[start + 3..].find("\n## ").map_or(doc.len(), |i| start + 3 + i);
        text.push_str(&doc[start..end]);
    }
    text
}

/// Raw clocks and durations, in the units their names say: numbers by design.
const NUMBERS: &[&str] = &[
    "realtime_us",
    "monotonic_us",
    "total_us",
    "duration_ms",
    "last_duration_ms",
    "window_s",
    "wait_ms",
    "recheck_ms",
    "waited_ms",
];

fn walk(cmd: &str, v: &serde_json::Value, section: &str, seen: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                let word =
                    |t: &str| t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == k.as_str());
                assert!(word(section), "{cmd}: key `{k}` is not in docs/json.md");
                let timeish = ["_ms", "_us", "_s", "_at"].iter().any(|s| k.ends_with(s));
                assert!(!timeish || NUMBERS.contains(&k.as_str()), "{cmd}: `{k}` is a time as a number: {x}");
                if let Some(t) =
                    x.as_str().filter(|t| t.len() >= 19 && t.as_bytes()[4] == b'-' && t.as_bytes()[10] == b'T')
                {
                    assert!(t.parse::<jiff::Timestamp>().is_ok(), "{cmd}: `{k}` is not RFC 3339: {t}");
                    seen.push(k.clone());
                }
                walk(cmd, x, section, seen);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk(cmd, x, section, seen)),
        _ => {}
    }
}

#[test]
fn every_json_output_has_rfc3339_times_and_documented_keys() {
    let s = Scratch::new("json");
    let spool = s.path("spool");
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  disk:\n    every: 200ms\n    check: {{metric: disk_used_percent, path: /, warn: 0.001, crit: 100}}\n  \
             hello:\n    every: 300ms\n    run: \"sleep 0.2\"\n  q:\n    every: 1h\n    queue_flush: {{spool: {}, handler: [/bin/cat]}}\n  \
             gated:\n    every: 200ms\n    run: 'true'\n    when: {{path_exists: /nonexistent/ready}}\n    wait: 1h\n    recheck: 100ms\n",
            spool.display()
        ),
    );
    let mut enq = s.runner(&c).args(["enqueue", "q", "-"]).stdin(std::process::Stdio::piped()).spawn().unwrap();
    drop(enq.stdin.take());
    assert!(enq.wait().unwrap().success());
    assert!(s.runner(&c).args(["once", "q"]).status().unwrap().success());
    // A run skipped for its conditions (`condition_skip`); the daemon's run of it waits.
    assert_eq!(s.runner(&c).args(["once", "gated"]).status().unwrap().code(), Some(75));
    let mut d = Daemon::start(&s, &c);
    wait_for(Duration::from_secs(10), "a warn alert and a run", || {
        let o = s.runner(&c).args(["status", "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["alerts"].as_array().is_some_and(|a| !a.is_empty())
            && v["jobs"]
                .as_array()
                .is_some_and(|j| j.iter().any(|j| j["name"] == "hello" && !j["last_start"].is_null()))
            && v["jobs"].as_array().is_some_and(|j| j.iter().any(|j| j["waiting"].is_object()))
    });
    let section = json_section();
    let mut seen = Vec::new();
    for args in [
        &["list", "--json"][..],
        &["status", "--json"],
        &["health", "--json"],
        &["queue", "q", "--json"],
        &["metrics", "--json", "--path", "/"],
        &["logs", "--json"],
    ] {
        let o = s.runner(&c).args(args).output().unwrap();
        let out = stdout(&o);
        assert!(!out.is_empty(), "{args:?}: {}", stderr(&o));
        let docs: Vec<serde_json::Value> = if args[0] == "logs" {
            out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
        } else {
            vec![serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))]
        };
        for v in &docs {
            walk(&args.join(" "), v, &section, &mut seen);
        }
    }
    d.signal(nix::sys::signal::Signal::SIGTERM);
    d.wait_exit(Duration::from_secs(10));
    // The times were there to be checked, not all null.
    for k in ["since", "sampled", "raised", "last_start", "next_due", "time", "until", "at"] {
        assert!(seen.iter().any(|s| s == k), "no `{k}` time was printed: {seen:?}");
    }
}
