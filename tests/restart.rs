//! Crashes and restarts lose nothing and block nothing: the leftovers of a crashed daemon
//! are ended in the background while jobs fire, stay recorded until they are gone (a second
//! crash in the grace does not lose them), and each run a crash interrupted is recorded once.

mod common;
use common::*;

use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(40);

fn kill9(d: &mut Daemon) {
    d.signal(Signal::SIGKILL);
    d.wait_exit(LONG);
}

fn logs(s: &Scratch, c: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let o = s.runner(c).arg("logs").args(args).arg("--json").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// One test at a time: each kills a daemon and starts another, and a runner that starts ends
/// what is left in the cgroups of runners that are gone beside its own (`contain`), which
/// here are the other test's killed daemon's, whose leftover that test expects in its grace.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends the stubborn group if the test failed before the daemon did (it is ours: the
/// daemon this test started made it), while its child is still there.
struct Group(i32, i32);
impl Drop for Group {
    fn drop(&mut self) {
        if self.0 > 1 && alive(self.1) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(self.0), Signal::SIGKILL);
        }
    }
}

#[test]
fn leftovers_end_in_the_background_survive_a_second_crash_and_are_recorded() {
    let _one = one_at_a_time();
    let s = Scratch::new("restart");
    let (ticks, pids, once) = (s.path("ticks"), s.path("pids"), s.path("started-once"));
    // `stubborn` runs once (a marker keeps later fires short) and leaves a child that ignores
    // TERM in its group (the main process dies with its daemon: PR_SET_PDEATHSIG), 20 s grace.
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  tick:\n    every: 200ms\n    run: \"echo >> {ticks}\"\n  stubborn:\n    every: 300ms\n    kill_grace: 20s\n    run: \"[ -e {once} ] && exit 0; touch {once}; trap '' TERM; sleep 120 & echo $$ $! >> {pids}; wait\"\n",
            ticks = ticks.display(),
            once = once.display(),
            pids = pids.display()
        ),
    );
    let mut d1 = Daemon::start(&s, &c);
    // Its record too: the daemon writes it once the start returns, which on the slow emulated
    // daemon is well after the job's shell has written its pids.
    wait_for(LONG, "the stubborn run and its record", || {
        !lines(&pids).is_empty() && s.path("run/jobs/stubborn.running").exists()
    });
    let ids: Vec<i32> = lines(&pids)[0].split_whitespace().map(|w| w.parse().unwrap()).collect();
    let (pgid, child) = (ids[0], ids[1]);
    let _cleanup = Group(pgid, child);
    kill9(&mut d1);
    assert!(alive(child), "the run's child outlives its daemon");

    // Second daemon: jobs fire at once, while the leftover is in its 20 s grace.
    let started = Instant::now();
    let mut d2 = Daemon::start(&s, &c);
    let n = lines(&ticks).len();
    wait_for(LONG, "ticks during the grace", || lines(&ticks).len() >= n + 5);
    assert!(started.elapsed() < Duration::from_secs(10), "start waited for the grace: {:?}", started.elapsed());
    assert!(alive(child), "the leftover is still in its grace");
    let running = std::fs::read_to_string(s.path("run/jobs/stubborn.running")).unwrap();
    assert!(running.contains(&format!("\"pgid\":{pgid}")), "still recorded: {running}");
    // A second crash in the grace: the leftover stays recorded.
    kill9(&mut d2);
    assert!(alive(child));
    let running = std::fs::read_to_string(s.path("run/jobs/stubborn.running")).unwrap();
    assert!(running.contains(&format!("\"pgid\":{pgid}")), "still recorded after the second crash: {running}");

    // Third daemon: fires at once and ends the leftover after its grace.
    let mut d3 = Daemon::start(&s, &c);
    let n = lines(&ticks).len();
    wait_for(LONG, "ticks after the second crash", || lines(&ticks).len() >= n + 5);
    wait_for(LONG, "the leftover's end", || !alive(child));
    wait_for(LONG, "the leftovers record", || {
        logs(&s, &c, &["--kind", "daemon"])
            .iter()
            .any(|r| r["message"].as_str().unwrap().starts_with("leftovers of job stubborn ended"))
    });
    assert!(!s.path("run/jobs/stubborn.running").exists(), "cleared once gone");
    d3.signal(Signal::SIGTERM);
    assert!(d3.wait_exit(LONG).success());

    // The interrupted run is recorded once, though two daemons found it.
    let interrupted: Vec<_> =
        logs(&s, &c, &["--job", "stubborn"]).into_iter().filter(|r| r["outcome"] == "interrupted").collect();
    assert_eq!(interrupted.len(), 1, "{interrupted:?}");
    assert_eq!(interrupted[0]["kind"], "run");
    assert_eq!(interrupted[0]["pid"].as_i64(), Some(i64::from(pgid)));
    let text = stdout(&s.runner(&c).args(["logs", "--job", "stubborn"]).output().unwrap());
    assert!(text.contains(" run stubborn interrupted"), "{text}");
}

#[test]
fn a_run_that_died_with_its_daemon_is_recorded_interrupted_and_nothing_is_left_to_end() {
    let _one = one_at_a_time();
    let s = Scratch::new("restart-gone");
    let (pids, once) = (s.path("pids"), s.path("started-once"));
    let c = s.write(
        "supervisor.yaml",
        &format!(
            "version: 1\njobs:\n  short:\n    every: 300ms\n    run: \"[ -e {once} ] && exit 0; touch {once}; echo $$ >> {pids}; exec sleep 30\"\n",
            once = once.display(),
            pids = pids.display()
        ),
    );
    let mut d1 = Daemon::start(&s, &c);
    wait_for(LONG, "the run and its record", || !lines(&pids).is_empty() && s.path("run/jobs/short.running").exists());
    let pgid: i32 = lines(&pids)[0].trim().parse().unwrap();
    kill9(&mut d1);
    // Gone, not even a zombie waiting to be reaped.
    wait_for(LONG, "the run's end", || !std::path::Path::new(&format!("/proc/{pgid}")).exists());
    let mut d2 = Daemon::start(&s, &c);
    wait_for(LONG, "startup", || d2.log_text().contains("runner started"));
    d2.signal(Signal::SIGTERM);
    assert!(d2.wait_exit(LONG).success());
    let recs = logs(&s, &c, &["--job", "short"]);
    let interrupted: Vec<_> = recs.iter().filter(|r| r["outcome"] == "interrupted").collect();
    assert_eq!(interrupted.len(), 1, "{recs:?}");
    // Nothing was left to end.
    assert!(!logs(&s, &c, &["--kind", "daemon"]).iter().any(|r| r["message"].as_str().unwrap().contains("leftovers")));
}
