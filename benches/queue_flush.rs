//! Figures for queue flushes, printed, not asserted: `cargo bench --bench queue_flush`.
//!
//! - items per second through flushes with the handler `true` (a process per item), and the
//!   fsyncs each item costs (counted by `runner::kinds::queue_flush::spool::FSYNCS`)
//! - the cost of `runner enqueue`'s write path per item
//! - one run with 10,000 items pending and `max_items: 10`: its time, and the bytes it read
//!   (from /proc/self/io `rchar`) against the bytes the pending items hold, to show it does not
//!   read their contents
//! - the textfile export's read of that spool's stats (listings and `.stats`, per render)
//!
//! Sizes from RUNNER_BENCH_QUEUE_ITEMS (default 1000) and RUNNER_BENCH_QUEUE_PENDING (10000).
//! Runs in-process through the library: the same `jobs::execute` the daemon calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use runner::config::{self, Overrides, ResolveEnv};
use runner::jobs::{self, Ctx, Request};
use runner::kinds::queue_flush::spool::{FSYNCS, Spool};
use runner::record::Trigger;
use runner::sinks::Sinks;
use runner::sinks::state::StateStore;

fn env_num(k: &str, d: usize) -> usize {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn rchar() -> u64 {
    let s = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("rchar: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

struct Setup {
    dir: PathBuf,
    job: Arc<config::Job>,
    ctx: Ctx,
    spool: Spool,
    plan: config::Plan,
}

fn setup(dir: &Path, max_items: usize) -> Setup {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let spool = dir.join("spool");
    let text = format!(
        "version: 1\njobs:\n  q:\n    queue_flush:\n      spool: {}\n      handler: [\"/bin/true\"]\n      max_items: {max_items}\n",
        spool.display()
    );
    let overrides =
        Overrides { state_dir: Some(dir.join("state")), runtime_dir: Some(dir.join("run")), ..Default::default() };
    let plan = config::load_text(&text, &dir.join("supervisor.yaml"), &overrides, &ResolveEnv::current()).unwrap();
    let job = plan.jobs[0].clone();
    let ctx = Ctx {
        runtime_dir: plan.runtime_dir.clone(),
        sinks: Sinks::new(StateStore::new(&plan.state_dir)),
        by: "once",
        echo: false,
        pings: None,
    };
    let mut spool = Spool::new(&spool);
    spool.ensure(None).unwrap();
    Setup { dir: dir.to_path_buf(), job, ctx, spool, plan }
}

fn flush(rt: &tokio::runtime::Runtime, s: &Setup) {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let req = Request { trigger: Trigger::Manual, no_retry: true, wait: false, conditions: false };
    rt.block_on(jobs::execute(&s.ctx, &s.job, req, rx));
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let base = std::env::temp_dir().join(format!("runner-bench-queue-{}", std::process::id()));
    let n = env_num("RUNNER_BENCH_QUEUE_ITEMS", 1000);
    let pending = env_num("RUNNER_BENCH_QUEUE_PENDING", 10_000);

    // Enqueue path.
    let s = setup(&base.join("a"), 10);
    let f0 = FSYNCS.load(Ordering::Relaxed);
    let t = Instant::now();
    for i in 0..n {
        s.spool.enqueue(&mut format!("item {i}\n").as_bytes()).unwrap();
    }
    let dt = t.elapsed();
    println!(
        "enqueue: {n} items in {:.2} s, {:.0} items/s, {:.2} fsyncs per item",
        dt.as_secs_f64(),
        n as f64 / dt.as_secs_f64(),
        (FSYNCS.load(Ordering::Relaxed) - f0) as f64 / n as f64
    );

    // Flush throughput with max_items 10 (the default), runs back to back.
    let f0 = FSYNCS.load(Ordering::Relaxed);
    let t = Instant::now();
    let mut runs = 0;
    while s.spool.counts().unwrap().pending > 0 {
        flush(&rt, &s);
        runs += 1;
    }
    let dt = t.elapsed();
    let c = s.spool.counts().unwrap();
    assert_eq!(c.completed as usize, n, "every item done");
    let fsyncs = FSYNCS.load(Ordering::Relaxed) - f0;
    println!(
        "flush, handler `true`, max_items 10: {n} items in {runs} runs, {:.2} s, {:.0} items/s, {:.2} fsyncs per item ({fsyncs} in all)",
        dt.as_secs_f64(),
        n as f64 / dt.as_secs_f64(),
        fsyncs as f64 / n as f64
    );

    // One run with many pending and max_items 10: time and bytes read.
    let s = setup(&base.join("b"), 10);
    let payload = vec![b'x'; 4096];
    for _ in 0..pending {
        s.spool.enqueue(&mut payload.as_slice()).unwrap();
    }
    let content = pending as u64 * payload.len() as u64;
    let mut times = Vec::new();
    let mut read = Vec::new();
    for _ in 0..5 {
        let r0 = rchar();
        let t = Instant::now();
        flush(&rt, &s);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        read.push(rchar() - r0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "one run, {pending} pending, max_items 10: median {:.1} ms (min {:.1}, max {:.1}); bytes read per run {:?} of {content} held by the pending items",
        times[2], times[0], times[4], read
    );

    // The textfile export reads every queue's stats after each run of any job: listings and
    // the `.stats` history, nothing written.
    let source = jobs::queue_source(&s.plan).expect("the plan has a queue");
    let now = runner::time::epoch_ms(std::time::SystemTime::now());
    let mut times = Vec::new();
    let mut read = Vec::new();
    for _ in 0..9 {
        let r0 = rchar();
        let t = Instant::now();
        let text = runner::sinks::textfile::render_queues(&(source.0)(now));
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        read.push(rchar() - r0);
        assert!(text.contains("state=\"pending\"}"), "{text}");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "textfile queue stats, {} items in the spool: median {:.2} ms (min {:.2}, max {:.2}); bytes read {:?}",
        s.spool.counts().unwrap().total,
        times[4],
        times[0],
        times[8],
        &read[..3]
    );
    let _ = std::fs::remove_dir_all(&s.dir);
    let _ = std::fs::remove_dir_all(&base);
}
