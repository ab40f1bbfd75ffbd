//! `runner logs` through the binary: filters, JSON, output tails, errors for foreign files,
//! config errors for the `log:` block, and `-f` following another process's writes across
//! wraps of a small ring.

mod common;

use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::*;

const JOBS: &str = "jobs:\n  good:\n    every: 1h\n    run: \"echo all well\"\n  bad:\n    every: 1h\n    run: \"echo broken >&2; exit 3\"\n";

#[test]
fn filters_json_and_output() {
    let s = Scratch::new("logs-filters");
    let c = s.write("supervisor.yaml", &format!("version: 1\n{JOBS}"));
    for job in ["good", "bad", "good"] {
        s.runner(&c).args(["once", job]).output().unwrap();
    }
    let run = |args: &[&str]| {
        let o = s.runner(&c).arg("logs").args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let all = run(&[]);
    assert_eq!(all.lines().count(), 3, "{all}");
    assert!(all.lines().next().unwrap().contains("#1 run good success (exit 0)"), "{all}");
    let failed = run(&["--failed", "--output"]);
    assert!(failed.starts_with(&all.lines().nth(1).unwrap().to_string()), "{failed}");
    assert!(failed.contains("    | broken"), "{failed}");
    assert_eq!(run(&["--job", "good"]).lines().count(), 2);
    assert_eq!(run(&["-n", "1"]).lines().collect::<Vec<_>>(), [all.lines().last().unwrap()]);
    assert_eq!(run(&["--kind", "skip"]), "");
    assert_eq!(run(&["--since", "-1h", "--until", "now"]).lines().count(), 3);
    assert_eq!(run(&["--since", "+1h"]), "");
    assert_eq!(run(&["--until", "yesterday"]), "");
    let json: Vec<serde_json::Value> =
        run(&["--json", "--job", "bad"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(json.len(), 1);
    assert_eq!((json[0]["outcome"].as_str(), json[0]["exit_code"].as_i64()), (Some("failure"), Some(3)));
    assert_eq!(json[0]["output"], "broken\n");
    assert_eq!(json[0]["seq"], 2);

    let o = s.runner(&c).args(["logs", "--since", "whenever"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("RFC 3339"), "{}", stderr(&o));
}

#[test]
fn a_foreign_or_corrupt_file_is_an_error_naming_the_offset() {
    let s = Scratch::new("logs-foreign");
    let p = s.write("notaring", &"hello\n".repeat(100));
    let o = std::process::Command::new(BIN).args(["logs", "--file"]).arg(&p).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("offset 0") && stderr(&o).contains("not a runner ring file"), "{}", stderr(&o));

    // A real ring with its header damaged.
    let c = s.write("supervisor.yaml", &format!("version: 1\n{JOBS}"));
    s.runner(&c).args(["once", "good"]).output().unwrap();
    let ring = s.path("state/runs.ring");
    let mut bytes = std::fs::read(&ring).unwrap();
    bytes[17] ^= 0xff;
    std::fs::write(&ring, &bytes).unwrap();
    let o = s.runner(&c).arg("logs").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("offset 24"), "{}", stderr(&o));
}

#[test]
fn log_settings_are_checked_with_line_and_column() {
    let s = Scratch::new("logs-config");
    let c = s.write("supervisor.yaml", &format!("version: 1\nlog:\n  ring_size: 1KiB\n  fsync: sometimes\n{JOBS}"));
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("supervisor.yaml:3:") && stderr(&o).contains("invalid fsync `sometimes`"),
        "{}",
        stderr(&o)
    );
    let c = s.write("supervisor.yaml", &format!("version: 1\nlog:\n  ring_size: 1KiB\n{JOBS}"));
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(stderr(&o).contains("supervisor.yaml:3:14: ring_size 1024 is out of range"), "{}", stderr(&o));
}

/// How many inotify watches process `pid` holds, from its fds' /proc fdinfo.
fn inotify_watches(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return 0 };
    fds.flatten()
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

/// `-f` in one process, `runner once` in others, a ring small enough that the runs wrap it
/// several times: the follower prints every record in order, or says how many it missed.
#[test]
fn follow_sees_other_processes_across_wraps() {
    let runs = 12;
    let s = Scratch::new("logs-follow");
    let c = s.write(
        "supervisor.yaml",
        "version: 1\nlog:\n  ring_size: 16KiB\n  ring_output_bytes: 4KiB\njobs:\n  chatty:\n    every: 1h\n    run: \"head -c 5000 /dev/zero | tr '\\\\0' x\"\n",
    );
    let mut f = s.runner(&c).args(["logs", "-f"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let out = f.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    // The file does not exist yet: the follower waits for it, with an inotify watch on the
    // deepest directory that exists (/proc/PID/fdinfo lists its watches).
    let follower = f.id();
    wait_for(Duration::from_secs(20), "the follower to watch for the ring file", || inotify_watches(follower) > 0);
    for _ in 0..runs {
        let o = s.runner(&c).args(["once", "chatty"]).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let mut seqs = Vec::new();
    while seqs.last() != Some(&runs) {
        let l = rx.recv_timeout(Duration::from_secs(20)).expect("the follower printed the last record");
        let seq: u64 = l.split_whitespace().nth(1).unwrap().trim_start_matches('#').parse().unwrap();
        seqs.push(seq);
    }
    let _ = f.kill();
    let _ = f.wait();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut f.stderr.take().unwrap(), &mut err).unwrap();
    let lost: u64 =
        err.lines().filter_map(|l| l.strip_prefix("runner logs: ")?.split(' ').next()?.parse::<u64>().ok()).sum();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert_eq!(seqs.len() as u64 + lost, runs, "seen {seqs:?}, lost {lost}: {err}");
    let kept = s.runner(&c).arg("logs").output().unwrap();
    assert!(stdout(&kept).lines().count() < runs as usize, "the ring wrapped: {}", stdout(&kept));
}
