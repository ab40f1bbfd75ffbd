//! `queue_flush` jobs through the real binary: real spool directories, real handler scripts,
//! real daemons (killed with SIGKILL at random points). Real time on a noisy machine: order
//! and lower bounds, generous upper bounds.

mod common;
use common::*;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);
const STATES: [&str; 4] = ["new", "cur", "done", "failed"];

/// A config with one queue job `q` (plus `extra` jobs) draining `spool` through `handler`.
fn cfg(s: &Scratch, spool: &Path, handler: &Path, settings: &str, extra: &str) -> PathBuf {
    s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  q:\n{settings}    queue_flush:\n      spool: {}\n      handler: [\"{}\"]\n{extra}",
            spool.display(),
            handler.display()
        ),
    )
}

fn script(s: &Scratch, name: &str, body: &str) -> PathBuf {
    let p = s.write(name, body);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn enqueue(s: &Scratch, c: &Path, job: &str, content: &str) -> String {
    use std::io::Write;
    let mut child = s
        .runner(c)
        .args(["enqueue", job])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(content.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "enqueue failed: {}", stderr(&o));
    let name = stdout(&o).trim().to_string();
    name.rsplit_once(':').unwrap().0.to_string()
}

/// Item names (without `.why` files) per state directory.
fn names(spool: &Path, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(spool.join(dir))
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.retain(|n| !n.ends_with(".why"));
    v.sort();
    v
}

fn base(name: &str) -> &str {
    name.rsplit_once(':').map(|x| x.0).unwrap_or(name)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Waits until every item in `dir` finished more than `keep` ago, by the finish time its
/// name carries (`...:<attempts>,<t_ms>`), which is what retention judges.
/// Retention times in the tests are this many seconds per native second: 10 under emulation.
fn retention_scale() -> u64 {
    if emulated() { 10 } else { 1 }
}

fn wait_older_than(spool: &Path, dir: &str, keep: Duration) {
    let finished: Vec<i64> = names(spool, dir).iter().map(|n| n.rsplit_once(',').unwrap().1.parse().unwrap()).collect();
    let newest = *finished.iter().max().expect("an item to wait for");
    wait_for(LONG, &format!("the items in {dir}/ to be older than {keep:?}"), || {
        now_ms() > newest + keep.as_millis() as i64
    });
}

/// Every item's state directories, by base name.
fn where_are(spool: &Path) -> BTreeMap<String, Vec<&'static str>> {
    let mut m: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    for d in STATES {
        for n in names(spool, d) {
            m.entry(base(&n).to_string()).or_default().push(d);
        }
    }
    m
}

fn once(s: &Scratch, c: &Path, job: &str) -> std::process::Output {
    s.runner(c).args(["once", job]).output().unwrap()
}

fn queue_json(s: &Scratch, c: &Path, job: &str) -> serde_json::Value {
    let o = s.runner(c).args(["queue", job, "--json"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn check_places_spool_errors_at_their_line() {
    let s = Scratch::new("qf-check");
    let h = script(&s, "h.sh", "#!/bin/sh\nexit 0\n");
    let c = cfg(&s, Path::new("/nonexistent-runner-test/sub/outbox"), &h, "", "");
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("supervisor.yaml:5:14: "), "{err}");
    assert!(err.contains("/nonexistent-runner-test/sub") && err.contains("does not exist"), "{err}");

    let c = cfg(&s, Path::new("relative/outbox"), &h, "", "      max_items: 0\n");
    let err = stderr(&s.runner(&c).arg("check").output().unwrap());
    assert!(err.contains(":5:14: ") && err.contains("absolute path"), "{err}");
    assert!(err.contains(":7:18: ") && err.contains("max_items must be at least 1"), "{err}");

    let c = s.write("supervisor.yaml", "version: 1\njobs:\n  q:\n    queue_flush:\n      spool: /tmp/x\n");
    let err = stderr(&s.runner(&c).arg("check").output().unwrap());
    assert!(err.contains("missing field `handler`"), "{err}");

    // A good one: the spool's parent exists, the spool itself need not; default every 5m.
    let c = cfg(&s, &s.path("spool"), &h, "", "");
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let list = stdout(&s.runner(&c).args(["list", "--json"]).output().unwrap());
    assert!(list.contains("\"kind\":\"queue_flush\"") && list.contains("\"schedule\":\"every 5m\""), "{list}");
}

#[test]
fn items_go_to_the_handler_oldest_first_max_items_per_run() {
    let s = Scratch::new("qf-order");
    let spool = s.path("spool");
    let log = s.path("log");
    let h = script(
        &s,
        "h.sh",
        &format!("#!/bin/sh\necho \"$RUNNER_ITEM $RUNNER_ITEM_ATTEMPT $(cat \"$1\") $1\" >> {}\n", log.display()),
    );
    let c = cfg(&s, &spool, &h, "", "      max_items: 2\n");
    let items: Vec<String> = (0..3).map(|i| enqueue(&s, &c, "q", &format!("payload-{i}"))).collect();
    // Created by the first enqueue, private to the daemon's user.
    let mode = std::fs::metadata(&spool).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750);
    assert_eq!(names(&spool, "new").len(), 3);

    let o = once(&s, &c, "q");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 done, 0 retried, 0 failed"), "{}", stderr(&o));
    let l = lines(&log);
    assert_eq!(l.len(), 2, "{l:?}");
    for (i, line) in l.iter().enumerate() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[0], items[i]);
        assert_eq!(f[1], "1");
        assert_eq!(f[2], format!("payload-{i}"));
        assert!(f[3].starts_with(&format!("{}/cur/{}:0,0", spool.display(), items[i])), "{line}");
    }
    assert_eq!(names(&spool, "new").len(), 1);
    assert!(once(&s, &c, "q").status.success());
    assert_eq!(lines(&log).len(), 3);
    assert!(lines(&log)[2].starts_with(&items[2]));
    let done: Vec<String> = names(&spool, "done").iter().map(|n| base(n).to_string()).collect();
    assert_eq!(done, items);
    assert!(names(&spool, "new").is_empty() && names(&spool, "cur").is_empty());

    // A file argument works as well as stdin.
    let f = s.write("payload", "from a file");
    let o = s.runner(&c).args(["enqueue", "q"]).arg(&f).output().unwrap();
    assert!(o.status.success());
    let n = stdout(&o).trim().to_string();
    assert_eq!(std::fs::read_to_string(spool.join("new").join(&n)).unwrap(), "from a file");
}

#[test]
fn retries_back_off_then_the_item_is_a_dead_letter() {
    let s = Scratch::new("qf-retry");
    let spool = s.path("spool");
    let log = s.path("log");
    let h = script(&s, "h.sh", &format!("#!/bin/sh\ndate +%s%3N >> {}\necho nope >&2\nexit 4\n", log.display()));
    let c = cfg(
        &s,
        &spool,
        &h,
        "    every: 100ms\n",
        "      item_retries: { attempts: 4, backoff: 400ms, max_backoff: 800ms }\n",
    );
    enqueue(&s, &c, "q", "x");
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "a dead letter", || names(&spool, "failed").len() == 1);
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());

    let t: Vec<i64> = lines(&log).iter().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(t.len(), 4, "four attempts in all: {t:?}");
    // Equal jitter: each wait is at least half its step (400, 800, 800 ms).
    for (i, min) in [200, 400, 400].iter().enumerate() {
        let gap = t[i + 1] - t[i];
        assert!(gap >= *min, "wait {} was {gap} ms, below {min}: {t:?}", i + 1);
        assert!(gap < 20_000, "wait {} was {gap} ms: {t:?}", i + 1);
    }
    let failed = &names(&spool, "failed")[0];
    assert!(failed.contains(":4,"), "the name carries the attempts: {failed}");
    let why = std::fs::read_to_string(spool.join("failed").join(format!("{failed}.why"))).unwrap();
    assert!(why.contains("attempt 4 of 4: handler exited 4") && why.contains("nope"), "{why}");
    assert!(names(&spool, "new").is_empty() && names(&spool, "done").is_empty());
    let log = d.log_text();
    assert!(log.contains("attempt 1 of 4: handler exited 4"), "{log}");
    assert!(log.contains("job q failure") && log.contains("0 done, 0 retried, 1 failed"), "{log}");
}

#[test]
fn retention_removes_only_old_items() {
    let s = Scratch::new("qf-keep");
    let spool = s.path("spool");
    let h = script(&s, "h.sh", "#!/bin/sh\ngrep -q bad \"$1\" && exit 1\nexit 0\n");
    // keep_failed - keep_done is how long c stays after b has gone: one second of margin, ten
    // under emulation, where an `enqueue` and a `once` take seconds.
    let k = retention_scale();
    let c = cfg(
        &s,
        &spool,
        &h,
        "",
        &format!("      item_retries: {{ attempts: 1 }}\n      keep_done: {}s\n      keep_failed: {}s\n", 2 * k, 3 * k),
    );
    let a = enqueue(&s, &c, "q", "good a");
    let b = enqueue(&s, &c, "q", "bad b");
    once(&s, &c, "q");
    assert_eq!(names(&spool, "done").len(), 1);
    assert_eq!(names(&spool, "failed").len(), 1);
    wait_older_than(&spool, "done", Duration::from_secs(2 * k));
    let c2 = enqueue(&s, &c, "q", "good c");
    once(&s, &c, "q");
    // a finished over keep_done ago: gone; c just now: kept; b (with a) is within keep_failed.
    let done: Vec<String> = names(&spool, "done").iter().map(|n| base(n).to_string()).collect();
    assert_eq!(done, vec![c2.clone()]);
    assert!(!done.contains(&a));
    let failed: Vec<String> = names(&spool, "failed").iter().map(|n| base(n).to_string()).collect();
    assert_eq!(failed, vec![b.clone()]);
    wait_older_than(&spool, "failed", Duration::from_secs(3 * k));
    once(&s, &c, "q");
    assert!(names(&spool, "failed").is_empty(), "b is older than keep_failed now");
    let left: Vec<String> = std::fs::read_dir(spool.join("failed"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    assert!(left.is_empty(), "its .why went with it: {left:?}");
    assert_eq!(names(&spool, "done").len(), 1, "c is younger than keep_done");
}

#[test]
fn stats_and_score_for_mixed_outcomes_outlive_retention() {
    let s = Scratch::new("qf-stats");
    let (spool, spool_b) = (s.path("spool"), s.path("spool-b"));
    let h = script(&s, "h.sh", "#!/bin/sh\ngrep -q bad \"$1\" && exit 1\nexit 0\n");
    // The seven done items must outlive the flush that did them: it takes seconds under
    // emulation, where each handler starts through the emulated exec helper.
    let k = retention_scale();
    let extra = format!(
        "      max_items: 100\n      item_retries: {{ attempts: 1 }}\n      keep_done: {k}s\n  b:\n    queue_flush:\n      spool: {}\n      handler: [\"{}\"]\n      item_retries: {{ attempts: 3, backoff: 1h }}\n",
        spool_b.display(),
        h.display()
    );
    let c = cfg(&s, &spool, &h, "", &extra);
    for i in 0..10 {
        enqueue(&s, &c, "q", if i < 7 { "good" } else { "bad" });
    }
    once(&s, &c, "q");
    let v = queue_json(&s, &c, "q");
    assert_eq!((v["completed"].as_u64(), v["failed"].as_u64(), v["total"].as_u64()), (Some(7), Some(3), Some(10)));
    assert_eq!(v["health"]["score"], 70);
    assert_eq!(v["health"]["level"], "DEGRADED");
    let st: serde_json::Value =
        serde_json::from_str(&stdout(&s.runner(&c).args(["status", "--json"]).output().unwrap())).unwrap();
    let q = st["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "q").unwrap().clone();
    assert_eq!(q["health"]["level"], "DEGRADED");
    assert_eq!(q["queue"]["health"]["score"], 70);

    // Done items leave with retention; the score remembers them.
    wait_older_than(&spool, "done", Duration::from_secs(k));
    for _ in 0..4 {
        enqueue(&s, &c, "q", "bad");
    }
    once(&s, &c, "q");
    let v = queue_json(&s, &c, "q");
    assert_eq!(v["completed"], 0);
    assert_eq!(v["failed"], 7);
    assert_eq!(v["health"]["score"], 50, "7 done, 7 failed: {v}");
    for _ in 0..4 {
        enqueue(&s, &c, "q", "bad");
    }
    once(&s, &c, "q");
    let v = queue_json(&s, &c, "q");
    assert_eq!(v["health"]["score"], 39, "7 done, 11 failed: {v}");
    assert_eq!(v["health"]["level"], "UNHEALTHY");
    let status = stdout(&s.runner(&c).arg("status").output().unwrap());
    assert!(
        status.contains("queue q: 11 total, 0 pending, 0 retrying, 11 failed, 0 completed; health 39 UNHEALTHY"),
        "{status}"
    );
    let st: serde_json::Value =
        serde_json::from_str(&stdout(&s.runner(&c).args(["status", "--json"]).output().unwrap())).unwrap();
    let q = st["jobs"].as_array().unwrap().iter().find(|j| j["name"] == "q").unwrap().clone();
    assert_eq!(q["health"]["level"], "UNHEALTHY");

    // Pending and retrying, and a queue where nothing finished yet scores 100.
    enqueue(&s, &c, "b", "bad");
    enqueue(&s, &c, "b", "bad");
    once(&s, &c, "b");
    enqueue(&s, &c, "b", "good");
    let v = queue_json(&s, &c, "b");
    assert_eq!((v["pending"].as_u64(), v["retrying"].as_u64(), v["total"].as_u64()), (Some(1), Some(2), Some(3)));
    assert_eq!(v["health"]["score"], 100);
    let text = stdout(&s.runner(&c).args(["queue", "b"]).output().unwrap());
    assert!(text.contains("retrying:  2") && text.contains("health:    100 HEALTHY"), "{text}");
}

#[test]
fn foreign_and_unusable_entries_are_parked_with_the_reason() {
    let s = Scratch::new("qf-foreign");
    let spool = s.path("spool");
    let log = s.path("log");
    let h = script(&s, "h.sh", &format!("#!/bin/sh\ncat \"$1\" >> {}\n", log.display()));
    let c = cfg(&s, &spool, &h, "", "");
    enqueue(&s, &c, "q", "real\n");
    let new = spool.join("new");
    std::fs::write(new.join("notes.txt"), "not an item").unwrap();
    std::fs::create_dir(new.join("1700000000000.dir:0,0")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", new.join("1700000000001.link:0,0")).unwrap();
    let o = once(&s, &c, "q");
    assert_eq!(o.status.code(), Some(1), "parking is reported as a failure: {}", stderr(&o));
    assert!(stderr(&o).contains("1 done, 0 retried, 0 failed, 3 rejected"), "{}", stderr(&o));
    assert_eq!(lines(&log), vec!["real"]);
    assert!(names(&spool, "new").is_empty());
    let failed = names(&spool, "failed");
    assert_eq!(failed.len(), 3, "{failed:?}");
    let mut whys = String::new();
    for f in &failed {
        whys.push_str(&std::fs::read_to_string(spool.join("failed").join(format!("{f}.why"))).unwrap());
    }
    assert!(whys.contains("new/notes.txt: not an item name"), "{whys}");
    assert!(whys.contains("new/1700000000000.dir:0,0: not a regular file"), "{whys}");
    assert!(whys.contains("new/1700000000001.link:0,0: not a regular file"), "{whys}");
    // The link was moved, not followed.
    assert!(std::fs::read_to_string("/etc/passwd").is_ok());
}

/// xorshift64*: reproducible from the seed the test prints.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn assert_each_in_one_state(spool: &Path, enqueued: &[String], when: &str) {
    let m = where_are(spool);
    for b in enqueued {
        match m.get(b) {
            Some(dirs) if dirs.len() == 1 => {}
            Some(dirs) => panic!("{when}: item {b} is in {dirs:?}"),
            None => panic!("{when}: item {b} was lost"),
        }
    }
    assert_eq!(m.len(), enqueued.len(), "{when}: unexpected entries: {m:?}");
    assert!(names(spool, "failed").is_empty(), "{when}: a handler that succeeds made a dead letter");
}

#[test]
fn sigkill_during_flushes_never_loses_an_item() {
    let kills: usize = std::env::var("RUNNER_QUEUE_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("seed {seed}, {kills} kills");
    let mut rng = Rng(seed);
    let s = Scratch::new("qf-kill");
    let spool = s.path("spool");
    let log = s.path("log");
    // A few random ms per item, so kills land before, during and after handlers.
    let h = script(
        &s,
        "h.sh",
        &format!(
            "#!/bin/bash\nsleep 0.00$((RANDOM % 9 + 1))\necho \"$RUNNER_ITEM\" >> {}\nsleep 0.00$((RANDOM % 5))\n",
            log.display()
        ),
    );
    let c = cfg(&s, &spool, &h, "    every: 30ms\n", "      max_items: 4\n");
    let mut enqueued = Vec::new();
    for i in 0..40 {
        enqueued.push(enqueue(&s, &c, "q", &format!("item {i}")));
    }
    let mut mid_flush = 0;
    for k in 0..kills {
        if names(&spool, "new").len() < 20 {
            for i in 0..20 {
                enqueued.push(enqueue(&s, &c, "q", &format!("more {k} {i}")));
            }
        }
        let d = Daemon::start(&s, &c);
        std::thread::sleep(Duration::from_millis(10 + rng.next(200)));
        d.signal(Signal::SIGKILL);
        let mut d = d;
        d.wait_exit(LONG);
        mid_flush += usize::from(!names(&spool, "cur").is_empty());
        assert_each_in_one_state(&spool, &enqueued, &format!("after kill {k}"));
    }
    // A last daemon drains everything: each item done exactly once, handled at least once.
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "all items done", || names(&spool, "done").len() == enqueued.len());
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
    assert_each_in_one_state(&spool, &enqueued, "at the end");
    let handled = lines(&log);
    for b in &enqueued {
        assert!(handled.contains(b), "item {b} was never handed to the handler");
    }
    let repeats = handled.len() - enqueued.len();
    eprintln!(
        "{} items, {mid_flush} of {kills} kills left items in cur/, {repeats} handled twice (at-least-once)",
        enqueued.len()
    );
}

#[test]
fn two_flushers_on_one_spool_never_handle_the_same_item() {
    let s = Scratch::new("qf-two");
    let spool = s.path("spool");
    let log = s.path("log");
    let h = script(
        &s,
        "h.sh",
        &format!(
            "#!/bin/sh\necho \"start $RUNNER_ITEM\" >> {0}\nsleep 0.02\necho \"end $RUNNER_ITEM\" >> {0}\n",
            log.display()
        ),
    );
    let c = cfg(&s, &spool, &h, "    every: 40ms\n", "      max_items: 3\n");
    let mut items = Vec::new();
    for i in 0..30 {
        items.push(enqueue(&s, &c, "q", &format!("{i}")));
    }
    // Two daemons with their own state and runtime dirs: only the spool's lock keeps them apart.
    let mk = |n: &str| {
        let log = s.path(&format!("daemon-{n}.log"));
        let child = std::process::Command::new(BIN)
            .arg("run")
            .env("RUNNER_CONFIG", &c)
            .env("RUNNER_STATE_DIR", s.path(&format!("state-{n}")))
            .env("RUNNER_RUNTIME_DIR", s.path(&format!("run-{n}")))
            .env("RUNNER_LOG_LEVEL", "debug")
            .env("RUNNER_SYSLOG_SOCKET", s.path("no-syslog-socket"))
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Daemon { child, log }
    };
    let (mut a, mut b) = (mk("a"), mk("b"));
    let t0 = Instant::now();
    wait_for(LONG, "all items done", || names(&spool, "done").len() == items.len());
    // Once more with `runner once` racing the daemons.
    for i in 0..10 {
        items.push(enqueue(&s, &c, "q", &format!("late {i}")));
    }
    let o = s.runner(&c).env("RUNNER_RUNTIME_DIR", s.path("run-once")).args(["once", "q"]).output().unwrap();
    assert!(matches!(o.status.code(), Some(0) | Some(75)), "{}", stderr(&o));
    wait_for(LONG, "late items done", || names(&spool, "done").len() == items.len());
    for d in [&a, &b] {
        d.signal(Signal::SIGTERM);
    }
    a.wait_exit(LONG);
    b.wait_exit(LONG);
    let l = lines(&log);
    assert_eq!(l.len(), 2 * items.len(), "each item handled once: {l:?}");
    // Never two handlers at once: every start is followed by the end of the same item.
    for pair in l.chunks(2) {
        let item = pair[0].strip_prefix("start ").expect("a start");
        assert_eq!(pair[1], format!("end {item}"), "{l:?}");
    }
    let busy = a.log_text().matches("being flushed by another flusher").count()
        + b.log_text().matches("being flushed by another flusher").count();
    eprintln!("{} items in {:?}; {busy} flushes found the spool busy", items.len(), t0.elapsed());
}

#[test]
fn stopping_the_daemon_mid_item_puts_it_back_untouched() {
    let s = Scratch::new("qf-stop");
    let spool = s.path("spool");
    let h = script(&s, "h.sh", "#!/bin/sh\nsleep 30\n");
    let c = cfg(&s, &spool, &h, "    every: 100ms\n", "");
    let item = enqueue(&s, &c, "q", "slow");
    let mut d = Daemon::start(&s, &c);
    wait_for(LONG, "the item in flight", || names(&spool, "cur").len() == 1);
    let t = Instant::now();
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
    assert!(t.elapsed() < Duration::from_secs(20), "the handler was ended, not waited for");
    assert_eq!(names(&spool, "new"), vec![format!("{item}:0,0")], "no attempt counted");
    assert!(names(&spool, "cur").is_empty() && names(&spool, "failed").is_empty());
}

/// The value of one sample line (`name{labels} value`) in a textfile, if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn queue_stats_are_exported_in_the_textfile_as_they_are_now() {
    let s = Scratch::new("qf-export");
    let (spool, spool_b) = (s.path("spool"), s.path("spool-b"));
    let prom = s.path("export/runner.prom");
    let h = script(&s, "h.sh", "#!/bin/sh\ngrep -q good \"$1\"\n");
    // q flushes often and retries after an hour; b never fires while the test runs (its
    // first fire is an hour after start), so only `runner once` and producers change it.
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\nexport: {{textfile: {}}}\njobs:\n  q:\n    every: 200ms\n    queue_flush:\n      spool: {}\n      handler: [\"{}\"]\n      item_retries: {{ attempts: 2, backoff: 1h }}\n  \"b.queue\":\n    every: 1h\n    queue_flush:\n      spool: {}\n      handler: [\"{}\"]\n      item_retries: {{ attempts: 1 }}\n",
            prom.display(),
            spool.display(),
            h.display(),
            spool_b.display(),
            h.display()
        ),
    );
    enqueue(&s, &c, "b.queue", "bad");
    assert!(once(&s, &c, "b.queue").status.code() == Some(1), "a dead letter fails the run");
    enqueue(&s, &c, "b.queue", "good");
    for content in ["good", "good", "good", "bad"] {
        enqueue(&s, &c, "q", content);
    }
    let mut d = Daemon::start(&s, &c);
    let read = || std::fs::read_to_string(&prom).unwrap_or_default();
    wait_for(LONG, "q's items handled in the textfile", || {
        let t = read();
        sample(&t, "runner_queue_items{runner_job=\"q\",state=\"completed\"}") == Some(3.0)
            && sample(&t, "runner_queue_items{runner_job=\"q\",state=\"retrying\"}") == Some(1.0)
    });
    // A producer adds to b while nothing flushes it: the next file (after any run) has it,
    // because the stats are read from the spool when the file is written.
    enqueue(&s, &c, "b.queue", "good");
    wait_for(LONG, "b's new item in the textfile", || {
        sample(&read(), "runner_queue_items{runner_job=\"b.queue\",state=\"pending\"}") == Some(2.0)
    });
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());

    let text = read();
    let problems = validate_exposition(&text);
    assert!(problems.is_empty(), "{problems:?}\n{text}");
    if let Some(said) = promtool_check(&text) {
        assert!(said.is_empty(), "{said}\n{text}");
    }
    for (series, want) in [
        ("runner_queue_items{runner_job=\"q\",state=\"pending\"}", 0.0),
        ("runner_queue_items{runner_job=\"q\",state=\"retrying\"}", 1.0),
        ("runner_queue_items{runner_job=\"q\",state=\"failed\"}", 0.0),
        ("runner_queue_items{runner_job=\"q\",state=\"completed\"}", 3.0),
        ("runner_queue_total_items{runner_job=\"q\"}", 4.0),
        // 3 done, none failed for good yet: a retry does not lower the score.
        ("runner_queue_health_score{runner_job=\"q\"}", 100.0),
        ("runner_queue_items{runner_job=\"b.queue\",state=\"pending\"}", 2.0),
        ("runner_queue_items{runner_job=\"b.queue\",state=\"retrying\"}", 0.0),
        ("runner_queue_items{runner_job=\"b.queue\",state=\"failed\"}", 1.0),
        ("runner_queue_items{runner_job=\"b.queue\",state=\"completed\"}", 0.0),
        ("runner_queue_total_items{runner_job=\"b.queue\"}", 3.0),
        ("runner_queue_health_score{runner_job=\"b.queue\"}", 0.0),
    ] {
        assert_eq!(sample(&text, series), Some(want), "{series}\n{text}");
    }
    // The same figures as `runner queue` shows.
    let v = queue_json(&s, &c, "b.queue");
    assert_eq!(
        (v["pending"].as_u64(), v["failed"].as_u64(), v["health"]["score"].as_u64()),
        (Some(2), Some(1), Some(0))
    );
    // One HELP and TYPE per family, whatever the number of queues.
    assert_eq!(text.matches("# TYPE runner_queue_items gauge").count(), 1, "{text}");
    assert!(text.contains("runner_job_runs_total{runner_job=\"q\",outcome=\"success\"}"), "{text}");

    // A reload that drops a queue drops its rows, and its job's, from the next file.
    let mut d = Daemon::start(&s, &c);
    let cfg_text = std::fs::read_to_string(&c).unwrap();
    s.write("supervisor.yaml", &cfg_text[..cfg_text.find("  \"b.queue\":").unwrap()]);
    wait_for(LONG, "the daemon to start", || d.log_text().contains("runner started"));
    d.signal(Signal::SIGHUP);
    wait_for(LONG, "the reload", || d.log_text().contains("reloaded"));
    wait_for(LONG, "b.queue gone from the textfile", || {
        let t = read();
        // The state keeps a removed job's history, but the file shows the plan's jobs only.
        !t.contains("runner_job=\"b.queue\"") && t.contains("runner_queue_items{runner_job=\"q\"")
    });
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
}

#[test]
fn a_failing_queue_drives_overall_health_through_the_daemon() {
    let s = Scratch::new("qf-health");
    let spool = s.path("spool");
    let h = script(&s, "h.sh", "#!/bin/sh\ngrep -q good \"$1\" || { echo \"cannot push $1\" >&2; exit 3; }\n");
    let c = cfg(&s, &spool, &h, "    every: 200ms\n", "      item_retries: { attempts: 1 }\n");
    let health = || s.runner(&c).arg("health").output().unwrap();
    let overall = || {
        let o = s.runner(&c).args(["status", "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["health"].as_str().unwrap_or_default().to_string()
    };
    let mut d = Daemon::start(&s, &c);
    enqueue(&s, &c, "q", "good");
    wait_for(LONG, "the good item done", || names(&spool, "done").len() == 1);
    wait_for(LONG, "HEALTHY with the daemon running", || health().status.success());
    assert_eq!(stdout(&health()).trim(), "HEALTHY");

    // 1 done, 1 failed: score 50, the bottom of DEGRADED.
    enqueue(&s, &c, "q", "bad");
    wait_for(LONG, "the bad item failed", || names(&spool, "failed").len() == 1);
    wait_for(LONG, "DEGRADED", || stdout(&health()).starts_with("DEGRADED"));
    let o = health();
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("DEGRADED q: 50 queue score 50 (1 done, 1 failed"), "{}", stdout(&o));
    assert_eq!(overall(), "DEGRADED");
    let text = stdout(&s.runner(&c).arg("status").output().unwrap());
    assert!(text.contains("health: DEGRADED (q 50)"), "{text}");

    // 1 done, 3 failed: score 25, UNHEALTHY.
    enqueue(&s, &c, "q", "bad");
    enqueue(&s, &c, "q", "bad");
    wait_for(LONG, "three bad items failed", || names(&spool, "failed").len() == 3);
    wait_for(LONG, "UNHEALTHY", || stdout(&health()).starts_with("UNHEALTHY"));
    let o = health();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("UNHEALTHY q: 25"), "{}", stdout(&o));
    assert_eq!(overall(), "UNHEALTHY");
    assert_eq!(names(&spool, "failed").len(), 3);

    // Back to 80 (4 done, 1 failed) would need the window to forget; more good items do it
    // too: 8 done, 3 failed is 73, DEGRADED again, and the part follows the score.
    for _ in 0..7 {
        enqueue(&s, &c, "q", "good");
    }
    wait_for(LONG, "all eight good items done", || names(&spool, "done").len() == 8);
    wait_for(LONG, "DEGRADED again", || stdout(&health()).starts_with("DEGRADED"));
    assert!(stdout(&health()).contains("q: 73"), "{}", stdout(&health()));
    d.signal(Signal::SIGTERM);
    assert!(d.wait_exit(LONG).success());
    // The daemon is gone: the state may be stale, so health is never 0 now.
    let o = health();
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("daemon not running"), "{}", stdout(&o));
}

#[test]
fn timeout_bounds_the_whole_flush() {
    let s = Scratch::new("qf-timeout");
    let spool = s.path("spool");
    // Each handler would take 30 s; item_timeout allows that, the job's timeout does not.
    let h = script(&s, "h.sh", "#!/bin/sh\necho $$ >> \"$(dirname \"$0\")/pids\"\nexec sleep 30\n");
    let c = cfg(&s, &spool, &h, "    timeout: 1s\n    kill_grace: 1s\n", "      item_timeout: 1m\n");
    let first = enqueue(&s, &c, "q", "one");
    let second = enqueue(&s, &c, "q", "two");
    let t = Instant::now();
    let o = once(&s, &c, "q");
    assert!(t.elapsed() >= Duration::from_secs(1), "stopped before the timeout: {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(25), "the handler ran to its end: {:?}", t.elapsed());
    assert_eq!(o.status.code(), Some(124), "a timed-out flush exits as timeout(1): {}", stderr(&o));
    // The item in progress and the one not reached wait in new/ for the next run, unchanged.
    let left: Vec<String> = names(&spool, "new").iter().map(|n| base(n).to_string()).collect();
    assert_eq!(left, [first, second]);
    assert!(names(&spool, "done").is_empty() && names(&spool, "failed").is_empty());
    for pid in lines(&s.path("pids")) {
        assert!(!alive(pid.parse().unwrap()), "handler {pid} outlived the flush");
    }
    let logs = stdout(&s.runner(&c).args(["logs", "--job", "q", "--json"]).output().unwrap());
    assert!(logs.contains("\"outcome\":\"timeout\"") && logs.contains("timed out after 1s"), "{logs}");
}
