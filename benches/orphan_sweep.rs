//! Figures for one orphan-sweep scan, printed, not asserted: `cargo bench --bench orphan_sweep`.
//!
//! Runs as PID 1 of a fresh PID namespace (`unshare --pid --fork --mount-proc`, so root), where
//! it starts RUNNER_BENCH_SWEEP_PROCS (default 2000) `sleep` processes and 10 that match, then
//! times `orphan_sweep::survey` (the scan and every decision, no signals) and counts its heap
//! allocations, bytes, and peak live heap beyond what was live before, at 200 and at the full
//! number of processes: the peak must not grow with processes that do not match.

// Sleepers are reaped by nobody on purpose: PID 1 (this process) exiting ends the namespace.
#![allow(clippy::zombie_processes)]

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use runner::kinds::orphan_sweep::{Match, OrphanSweep, survey};

#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::Counting;

#[global_allocator]
static A: Counting = Counting;

fn main() {
    match std::env::var("SWEEP_BENCH_ROLE").as_deref() {
        Ok("sleeper") => {
            // `match: name` is a glob on comm: take argv[0] as it.
            let _ = std::fs::write("/proc/self/comm", std::env::args().next().unwrap_or_default());
            loop {
                nix::unistd::pause();
            }
        }
        Ok("ns") => return in_namespace(),
        _ => {}
    }
    if !nix::unistd::geteuid().is_root() {
        println!("orphan_sweep bench: needs root for a PID namespace (unshare --pid); skipped");
        return;
    }
    let st = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child"])
        .arg(std::env::current_exe().unwrap())
        .env("SWEEP_BENCH_ROLE", "ns")
        .status();
    match st {
        Ok(s) if s.success() => {}
        other => println!("orphan_sweep bench: the namespace run failed: {other:?}"),
    }
}

struct Figures {
    scanned: usize,
    per_scan: Duration,
    allocs: usize,
    bytes: usize,
    peak: usize,
}

fn measure(spec: &OrphanSweep, rounds: u32) -> Figures {
    let warm = survey(spec).unwrap();
    let scanned = warm.scanned;
    drop(warm);
    let mut times = Vec::new();
    let (mut allocs, mut bytes, mut peak) = (0, 0, 0);
    for _ in 0..rounds {
        let t = Instant::now();
        let (s, counts) = counting_alloc::measure(|| survey(spec).unwrap());
        times.push(t.elapsed());
        std::hint::black_box(&s);
        allocs = counts.allocs;
        bytes = counts.bytes;
        peak = peak.max(counts.peak_above_start);
    }
    times.sort();
    Figures { scanned, per_scan: times[times.len() / 2], allocs, bytes, peak }
}

fn in_namespace() {
    let total: usize = std::env::var("RUNNER_BENCH_SWEEP_PROCS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let rounds = 20;
    let mut n = 0;
    for i in 0..10 {
        Command::new(std::env::current_exe().unwrap())
            .arg0(format!("bench-worker-{i}"))
            .env("SWEEP_BENCH_ROLE", "sleeper")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
    }
    let spec = OrphanSweep {
        matcher: Match { name: Some("bench-worker-*".into()), cmdline: None, uid: None, exe: None },
        min_age: Duration::ZERO,
        registry: None,
        kill_grace: Duration::from_secs(1),
        tree: false,
        max_kills: 20,
        dry_run: true,
        adopters: vec![],
        orphans_only: true,
    };
    let mut spawn_to = |want: usize| {
        while n < want {
            Command::new("sleep").arg("600").stdin(Stdio::null()).spawn().unwrap();
            n += 1;
        }
    };
    println!("orphan_sweep scan (survey: /proc walk and decisions, no signals), median of {rounds}, 10 matches:");
    println!("{:>10} {:>12} {:>14} {:>12} {:>16}", "processes", "per scan", "allocations", "bytes", "peak live heap");
    for want in [200.min(total), total] {
        spawn_to(want);
        let f = measure(&spec, rounds);
        println!(
            "{:>10} {:>9.2} ms {:>14} {:>12} {:>12} B",
            f.scanned,
            f.per_scan.as_secs_f64() * 1e3,
            f.allocs,
            f.bytes,
            f.peak
        );
    }
    // PID 1 exiting ends every sleeper in the namespace.
}
