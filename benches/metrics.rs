//! Figures for one metrics sample, printed, not asserted: `cargo bench --bench metrics`.
//!
//! One full sample (cpu + mem + load + disk `/`) through `metrics::Sampler`, beside a bare
//! `pread` of the same three files plus `statvfs` (the floor: the kernel generating the
//! text), and beside psutil's equivalent calls (cpu_percent, virtual_memory, getloadavg,
//! disk_usage), measured in the same run. psutil comes from the venv tests/metrics.rs
//! creates under the target dir; without it that line says so.
//! RUNNER_BENCH_SAMPLES sets the count (default 5000); RUNNER_BENCH_ONLY=runner|bare runs one side
//! alone (for `perf stat`). Prints the load average it ran at and
//! the spread (min / median / max) of the interleaved rounds, and of the overhead per round.

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

fn per_sample(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..n / 10 {
        f();
    }
    let (us, counts) = counting_alloc::measure(|| {
        let t0 = Instant::now();
        for _ in 0..n {
            f();
        }
        t0.elapsed().as_secs_f64() * 1e6 / n as f64
    });
    (us, counts.allocs as f64 / n as f64)
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
    for _ in 0..rounds {
        let (us, allocs) = per_sample(n / rounds, || sampler.sample(&mut s));
        ours.push(us);
        ours_allocs += allocs;
        floor.push(per_sample(n / rounds, &mut bare).0);
    }
    // Each round's overhead against the bare reads of the same round.
    let mut over: Vec<f64> = ours.iter().zip(&floor).map(|(o, f)| (o / f - 1.0) * 100.0).collect();
    let spread = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[0], v[v.len() / 2], v[v.len() - 1])
    };
    let (o, f, d) = (spread(&mut ours), spread(&mut floor), spread(&mut over));
    let (ours, floor) = (o.1, f.1);
    println!(
        "metrics sample, {n} samples in {rounds} interleaved rounds; load average {} before, {} after",
        load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        load(()).split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "  min / median / max of rounds: runner {:.1} / {:.1} / {:.1} us, bare {:.1} / {:.1} / {:.1} us, overhead {:+.1} / {:+.1} / {:+.1} %",
        o.0, o.1, o.2, f.0, f.1, f.2, d.0, d.1, d.2
    );
    println!(
        "  runner Sampler (cpu+mem+load+disk /):   {ours:8.1} us/sample, {:.2} allocations/sample",
        ours_allocs / rounds as f64
    );
    println!(
        "  bare pread of the 3 files + statvfs:     {floor:8.1} us/sample ({:+.1}% for parsing and bookkeeping, median of rounds)",
        d.1
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
