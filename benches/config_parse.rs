//! Figures for the parse budget (printed, never asserted; tests/config_fuzz.rs asserts the
//! budget): time and heap peak of `config::load_text` on the costliest shapes of file up to
//! 1 MiB, accepted ones near the bounds and refused ones. A reload blocks the daemon's loop
//! for about the time of one load of its file.

use std::path::Path;
use std::time::{Duration, Instant};

use runner::config::{self, Host, Overrides};

#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::{Counting, measure};

#[global_allocator]
static A: Counting = Counting;

fn cases() -> Vec<(&'static str, String)> {
    let many_jobs: String = (0..1000).map(|i| format!("  j{i}: {{run: x, every: 1m}}\n")).collect();
    let cmd = "x".repeat(900);
    let cron_jobs: String = (0..1000)
        .map(|i| {
            format!("  job{i:04}:\n    run: \"echo {cmd}\"\n    schedule: \"*/5 * * * MON-FRI\"\n    jitter: 10s\n")
        })
        .collect();
    let long_line = "z".repeat((1 << 20) - 100);
    let big = "x".repeat(600 * 1024);
    let uses: String = (0..3000).map(|i| format!("      K{i}: *a\n")).collect();
    let mut laughs = String::from("version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        laughs += &format!("a{i}: &a{i} [{}]\n", vec![format!("*a{}", i - 1); 10].join(", "));
    }
    vec![
        ("1,000 flow-style interval jobs (accepted)", format!("version: 1\njobs:\n{many_jobs}")),
        ("1,000 cron jobs of 1 KiB: a reload's worst (accepted)", format!("version: 1\njobs:\n{cron_jobs}")),
        ("one 1 MiB line (accepted)", format!("version: 1\njobs:\n  j:\n    every: 1m\n    run: \"{long_line}\"\n")),
        ("1 MiB of `- - -` (refused: nesting)", "- ".repeat((1 << 20) / 2 - 8)),
        ("1 MiB of `[[[` (refused: nesting)", "[".repeat((1 << 20) - 8)),
        (
            "3,000 aliases of a 600 KiB string (refused: expansion)",
            format!(
                "version: 1\njobs:\n  j:\n    description: &a \"{big}\"\n    run: echo\n    every: 1m\n    env:\n{uses}"
            ),
        ),
        ("billion laughs, 12 levels (refused: expansion)", laughs),
        ("1 MiB of `[1,1,1...]` (refused: nodes)", format!("version: 1\nx: [{}1]\n", "1,".repeat((1 << 20) / 2 - 16))),
    ]
}

fn main() {
    let host = Host::current();
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
}
