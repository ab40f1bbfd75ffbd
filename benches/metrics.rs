//! Figures for one metrics sample, printed, not asserted: `cargo bench --bench metrics`.
//!
//! One full sample (cpu + mem + load + disk `/`) through `metrics::Sampler`, beside a bare
//! `pread` of the same three files plus `statvfs` (the floor: the kernel generating the
//! text), and beside psutil's equivalent calls (cpu_percent, virtual_memory, getloadavg,
//! disk_usage), measured in the same run. psutil comes from the venv tests/metrics.rs
//! creates under the target dir; without it that line says so.
//! RUNNER_BENCH_SAMPLES sets the count (default 5000); RUNNER_BENCH_ONLY=runner|bare runs one side
//! alone (for `perf stat`). Prints the load average it ran at and
//! the spread (min / median / max) of the interleaved rounds, and of the overhead per round, in
//! wall time and in the thread's CPU time (which a loaded machine blurs less).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use runner::metrics::{Options, Roots, Sampler};

#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::Counting;

#[global_allocator]
static A: Counting = Counting;

/// This thread's CPU time: unlike wall time it leaves out the time the loaded machine ran
/// something else, which on a shared builder blurs a 2 us difference in a 25 us sample.
fn thread_cpu_us() -> f64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    t.tv_sec() as f64 * 1e6 + t.tv_nsec() as f64 / 1e3
}

/// Wall and CPU microseconds per call of `f`, and allocations per call.
fn per_sample(n: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let ((us, cpu_us), counts) = counting_alloc::measure(|| {
        let (t0, c0) = (Instant::now(), thread_cpu_us());
        for _ in 0..n {
            f();
        }
        (t0.elapsed().as_secs_f64() * 1e6 / n as f64, (thread_cpu_us() - c0) / n as f64)
    });
    (us, cpu_us, counts.allocs as f64 / n as f64)
}

fn main() {
    let n: usize = std::env::var("RUNNER_BENCH_SAMPLES").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let opts = Options { cpu: true, mem: true, load: true, disks: vec![PathBuf::from("/")], ..Options::default() };
    let (mut sampler, problems) = Sampler::open(&Roots::default(), &opts);
    assert!(problems.is_empty(), "{problems:?}");
    let mut s = sampler.new_sample();

    let files: Vec<File> =
        ["/proc/stat", "/proc/meminfo", "/proc/loadavg"].iter().map(|p| File::open(p).unwrap()).collect();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bare = || {
        for f in &files {
            let _ = std::hint::black_box(f.read_at(&mut buf, 0).unwrap());
        }
        let _ = std::hint::black_box(nix::sys::statvfs::statvfs("/").unwrap());
    };

    // `RUNNER_BENCH_ONLY=runner` (or `bare`) runs only that side, n samples, and prints
    // nothing else: for `perf stat -e instructions` of one side, which a loaded machine does
    // not blur as it does wall time.
    match std::env::var("RUNNER_BENCH_ONLY").as_deref() {
        Ok("runner") => return (0..n).for_each(|_| sampler.sample(&mut s)),
        Ok("bare") => return (0..n).for_each(|_| bare()),
        Ok(other) => panic!("RUNNER_BENCH_ONLY={other}: say `runner` or `bare`"),
        Err(_) => {}
    }

    // Interleaved rounds, so drift in the machine's load hits both alike.
    let load = |_: ()| std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_before = load(());
    let rounds = 9;
    let (mut ours, mut floor, mut ours_allocs) = (Vec::new(), Vec::new(), 0.0);
    let (mut ours_cpu, mut floor_cpu) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (us, cpu, allocs) = per_sample(n / rounds, || sampler.sample(&mut s));
        ours.push(us);
        ours_cpu.push(cpu);
        ours_allocs += allocs;
        let (us, cpu, _) = per_sample(n / rounds, &mut bare);
        floor.push(us);
        floor_cpu.push(cpu);
    }
    // Each round's overhead against the bare reads of the same round.
    let overhead = |a: &[f64], b: &[f64]| -> Vec<f64> { a.iter().zip(b).map(|(o, f)| (o / f - 1.0) * 100.0).collect() };
    let mut over = overhead(&ours, &floor);
    let mut over_cpu = overhead(&ours_cpu, &floor_cpu);
    let spread = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let (o, f, d) = (spread(&mut ours), spread(&mut floor), spread(&mut over));
    let (oc, fc, dc) = (spread(&mut ours_cpu), spread(&mut floor_cpu), spread(&mut over_cpu));
    let (ours, floor) = (o.1, f.1);
    println!(
        "metrics sample, {n} samples in {rounds} interleaved rounds; load average {} before, {} after",
        load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        load(()).split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "  wall time, min / median / max of rounds: runner {:.1} / {:.1} / {:.1} us, bare {:.1} / {:.1} / {:.1} us, overhead {:+.1} / {:+.1} / {:+.1} %",
        o.0, o.1, o.2, f.0, f.1, f.2, d.0, d.1, d.2
    );
    println!(
        "  CPU time (the thread's), min / median / max of rounds: runner {:.1} / {:.1} / {:.1} us, bare {:.1} / {:.1} / {:.1} us, overhead {:+.1} / {:+.1} / {:+.1} %",
        oc.0, oc.1, oc.2, fc.0, fc.1, fc.2, dc.0, dc.1, dc.2
    );
    println!(
        "  runner Sampler (cpu+mem+load+disk /):   {ours:8.1} us/sample, {:.2} allocations/sample",
        ours_allocs / rounds as f64
    );
    println!(
        "  bare pread of the 3 files + statvfs:     {floor:8.1} us/sample ({:+.1}% wall, {:+.1}% CPU for parsing and bookkeeping, medians of rounds)",
        d.1, dc.1
    );

    let python = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("psutil-venv/bin/python");
    let script = format!(
        "import psutil, os, time\nn={n}\npsutil.cpu_percent(None)\nt=time.perf_counter()\nfor _ in range(n):\n    psutil.cpu_percent(None); psutil.virtual_memory(); os.getloadavg(); psutil.disk_usage('/')\nprint((time.perf_counter()-t)*1e6/n)"
    );
    match Command::new(&python).args(["-c", &script]).output() {
        Ok(o) if o.status.success() => {
            let us: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(f64::NAN);
            println!(
                "  psutil (cpu_percent, virtual_memory, getloadavg, disk_usage): {us:8.1} us/sample ({:.1}x runner)",
                us / ours
            );
        }
        _ => println!("  psutil: not measured ({} missing; `cargo test --test metrics` creates it)", python.display()),
    }
}
