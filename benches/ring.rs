//! Figures for the ring file (printed, never asserted; the allocation count is asserted in
//! tests/ring.rs): append latency without fsync, with fdatasync, allocations per append,
//! time to scan a full 1 MiB ring, and bytes written per run record.

use std::time::{Duration, Instant};

use runner::record::{Outcome, Record, RecordKind, Trigger};
use runner::sinks::ring::{self, Fsync, Ring, RingConfig};

#[path = "../tests/common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::Counting;

#[global_allocator]
static A: Counting = Counting;

fn run_record(output: usize) -> Record {
    let mut r = Record::skipped("backup-home", runner::record::Kind::Command, Trigger::Schedule, String::new());
    r.kind = RecordKind::Run;
    r.outcome = Outcome::Success;
    r.exit_code = Some(0);
    r.pid = Some(4242);
    r.attempt = 1;
    r.duration = Duration::from_millis(1234);
    r.output_tail = (0..output).map(|i| b'a' + (i % 26) as u8).collect();
    r
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let dir = std::env::temp_dir().join(format!("runner-ring-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = |name: &str, size: u64, fsync: Fsync| RingConfig {
        path: dir.join(name),
        size,
        output_bytes: ring::DEFAULT_OUTPUT_BYTES,
        fsync,
    };

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let rec = run_record(8192);
    let mut ring = Ring::open(&cfg("nosync.ring", ring::DEFAULT_SIZE, Fsync::Never)).unwrap();
    let n = 100_000;
    let mut lat = Vec::with_capacity(n);
    let ((), counts) = counting_alloc::measure(|| {
        for _ in 0..n {
            let t = Instant::now();
            ring.append(&rec).unwrap();
            lat.push(t.elapsed());
        }
    });
    let allocs = counts.allocs;
    // Five consecutive rounds of the same appends (before `lat` is sorted): the spread says
    // how much the machine moved.
    let mut p50s: Vec<Duration> = lat.chunks(n / 5).map(|c| pct(&mut c.to_vec(), 0.5)).collect();
    p50s.sort();
    // The latency vector was preallocated, so every allocation counted is the ring's.
    println!(
        "append, no fsync (256 KiB ring, 512-byte output): p50 {:?}  p99 {:?}  max {:?}  (goal < 5 us)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0)
    );
    println!("append p50 of 5 rounds of {}: min {:?}  median {:?}  max {:?}", n / 5, p50s[0], p50s[2], p50s[4]);
    println!("allocations per append: {} (goal 0)", allocs as f64 / n as f64);

    let mut ring = Ring::open(&cfg("sync.ring", ring::DEFAULT_SIZE, Fsync::Always)).unwrap();
    let mut lat: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            ring.append(&rec).unwrap();
            t.elapsed()
        })
        .collect();
    println!("append with fdatasync on {}: p50 {:?}  p99 {:?}", dir.display(), pct(&mut lat, 0.5), pct(&mut lat, 0.99));

    let big = cfg("scan.ring", 1 << 20, Fsync::Never);
    let mut ring = Ring::open(&big).unwrap();
    for _ in 0..3000 {
        ring.append(&rec).unwrap();
    }
    drop(ring);
    let image = std::fs::read(&big.path).unwrap();
    let mut scans: Vec<Duration> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let data = &image[ring::HEADER_SIZE as usize..];
            std::hint::black_box(ring::scan_data(data));
            t.elapsed()
        })
        .collect();
    let records = ring::scan_data(&image[ring::HEADER_SIZE as usize..]).len();
    println!(
        "scan of a full 1 MiB ring ({records} records): p50 {:?}  max {:?}  (goal < 5 ms)",
        pct(&mut scans, 0.5),
        pct(&mut scans, 1.0)
    );
    let mut opens: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(ring::read_path(&big.path).unwrap());
            t.elapsed()
        })
        .collect();
    println!("read_path of the 1 MiB ring (two reads, scan, decode all): p50 {:?}", pct(&mut opens, 0.5));

    for (what, out) in [("no output", 0), ("100-byte output", 100), ("512+ byte output (capped)", 8192)] {
        println!(
            "bytes written per run record, {what}: {}",
            ring::record_size(&run_record(out), ring::DEFAULT_OUTPUT_BYTES)
        );
    }
    let per_ring = ring::DEFAULT_SIZE as usize / ring::record_size(&run_record(8192), ring::DEFAULT_OUTPUT_BYTES);
    println!("records of that largest kind a default 256 KiB ring holds: {per_ring}");
    let _ = std::fs::remove_dir_all(&dir);
}
