//! Figures for the parse budget (printed, never asserted; tests/config_fuzz.rs asserts the
//! budget): time and heap peak of `config::load_text` on the costliest shapes of file up to
//! the size bound, accepted ones near the bounds and refused ones. A reload parses on a
//! blocking thread, so it delays no fire; it takes about the time of one load of its file.
//!
//! Then scale (issue 14): `runner check` of generated configs of 2,500, 5,000 and 10,000
//! cron jobs, plain and with `timezone:` and `retries:`, so that linear growth shows: the
//! binary's wall time (best of 3), and through the library the load's time, its heap peak
//! and the heap its plan keeps per job.

use std::path::Path;
use std::time::{Duration, Instant};

use runner::config::{self, Overrides, ResolveEnv};

#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;
#[path = "../tests/common/generated.rs"]
mod generated;

use counting_alloc::{Counting, live, measure};

#[global_allocator]
static A: Counting = Counting;

fn cases() -> Vec<(&'static str, String)> {
    const MAX: usize = runner::config::bounds::MAX_FILE_BYTES;
    let many_jobs: String = (0..10_000).map(|i| format!("  j{i}: {{run: x, every: 1m}}\n")).collect();
    let cmd = "x".repeat(900);
    let cron_jobs: String = (0..2_000)
        .map(|i| {
            format!("  job{i:04}:\n    run: \"echo {cmd}\"\n    schedule: \"*/5 * * * MON-FRI\"\n    jitter: 10s\n")
        })
        .collect();
    let long_line = "z".repeat(MAX - 100);
    let big = "x".repeat(600 * 1024);
    let uses: String = (0..3000).map(|i| format!("      K{i}: *a\n")).collect();
    let mut laughs = String::from("version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        laughs += &format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", "));
    }
    vec![
        ("10,000 flow-style interval jobs (accepted)", format!("version: 1\njobs:\n{many_jobs}")),
        ("2,000 cron jobs of 1 KiB: a reload's worst (accepted)", format!("version: 1\njobs:\n{cron_jobs}")),
        ("one 2 MiB line (accepted)", format!("version: 1\njobs:\n  j:\n    every: 1m\n    run: \"{long_line}\"\n")),
        ("2 MiB of `- - -` (refused: nesting)", "- ".repeat(MAX / 2 - 8)),
        ("2 MiB of `[[[` (refused: nesting)", "[".repeat(MAX - 8)),
        (
            "3,000 aliases of a 600 KiB string (refused: expansion)",
            format!(
                "version: 1\njobs:\n  j:\n    description: &a \"{big}\"\n    run: echo\n    every: 1m\n    env:\n{uses}"
            ),
        ),
        ("billion laughs, 12 levels (refused: expansion)", laughs),
        ("2 MiB of `[1,1,1...]` (refused: nodes)", format!("version: 1\nx: [{}1]\n", "1,".repeat(MAX / 2 - 16))),
    ]
}

fn scale(host: &ResolveEnv) {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("runner-bench-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!();
    println!(
        "{:<34} {:>9} {:>14} {:>12} {:>10} {:>14}",
        "generated cron jobs", "bytes", "runner check", "load (best)", "heap peak", "plan per job"
    );
    for extra in [false, true] {
        for n in [2_500, 5_000, 10_000] {
            let text = generated::cron_jobs(n, extra);
            let file = dir.join(format!("jobs-{n}-{extra}.yaml"));
            std::fs::write(&file, &text).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let mut check = Duration::MAX;
            for _ in 0..3 {
                let t = Instant::now();
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_runner"))
                    .args(["check", "--config"])
                    .arg(&file)
                    .output()
                    .unwrap();
                check = check.min(t.elapsed());
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            }
            let (mut best, mut peak, mut per_job) = (Duration::MAX, 0, 0);
            for _ in 0..3 {
                let before = live();
                let t = Instant::now();
                let (plan, counts) = measure(|| config::load_text(&text, &file, &Overrides::default(), host).unwrap());
                best = best.min(t.elapsed());
                peak = peak.max(counts.peak_above_start);
                let texts: usize = plan.texts.iter().map(String::capacity).sum();
                per_job = (live() - before - texts) / n;
            }
            let name = format!("{n} {}", if extra { "with timezone and retries" } else { "plain" });
            println!(
                "{name:<34} {:>9} {:>11.1?} {:>12.1?} {:>6} KiB {:>8} bytes",
                text.len(),
                check,
                best,
                peak / 1024,
                per_job
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let host = ResolveEnv::current();
    let path = Path::new("/nonexistent/supervisor.yaml");
    println!("{:<56} {:>9} {:>10} {:>12} {:>9}", "file", "bytes", "result", "time (best)", "heap peak");
    for (name, text) in cases() {
        let mut best = Duration::MAX;
        let mut peak = 0;
        let mut ok = false;
        for _ in 0..5 {
            let started = Instant::now();
            let (r, counts) = measure(|| config::load_text(&text, path, &Overrides::default(), &host));
            best = best.min(started.elapsed());
            peak = peak.max(counts.peak_above_start);
            ok = r.is_ok();
        }
        println!(
            "{name:<56} {:>9} {:>10} {:>10.1?} {:>6} KiB",
            text.len(),
            if ok { "loaded" } else { "refused" },
            best,
            peak / 1024
        );
    }
    scale(&host);
}
