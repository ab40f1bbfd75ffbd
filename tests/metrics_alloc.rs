//! A steady-state metrics sample allocates nothing: files stay open and are re-read with
//! pread into buffers sized at open. Counted with a global allocator, so the figure is exact.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use runner::metrics::{Options, Roots, Sampler};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static COUNTING: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn a_full_sample_allocates_nothing_in_steady_state() {
    let n: usize = std::env::var("RUNNER_METRICS_ALLOC_SAMPLES").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    // A fixture sysfs with one thermal zone and one hwmon input, so sensors are sampled too
    // on machines (like CI containers) without any.
    let sys = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("alloc-sys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sys);
    for (rel, text) in [
        ("class/thermal/thermal_zone0/type", "cpu-thermal\n"),
        ("class/thermal/thermal_zone0/temp", "45000\n"),
        ("class/hwmon/hwmon0/name", "nvme\n"),
        ("class/hwmon/hwmon0/temp1_input", "38850\n"),
        ("class/hwmon/hwmon0/temp1_label", "Composite\n"),
    ] {
        std::fs::create_dir_all(sys.join(rel).parent().unwrap()).unwrap();
        std::fs::write(sys.join(rel), text).unwrap();
    }
    let roots = Roots { sys: sys.clone(), ..Roots::default() };
    let opts = Options::everything(vec![PathBuf::from("/"), std::env::temp_dir()]);
    let (mut sampler, problems) = Sampler::open(&roots, &opts);
    assert!(problems.is_empty(), "{problems:?}");
    let mut s = sampler.new_sample();
    sampler.sample(&mut s);
    // CPU percent needs the counters to move between two samples.
    std::thread::sleep(std::time::Duration::from_millis(50));
    sampler.sample(&mut s);
    assert!(s.cpu.is_some() && s.mem.is_some() && s.load.is_some() && s.procs.is_some());
    assert!(s.disks.iter().all(Option::is_some));
    assert_eq!(s.temperatures, [Some(45.0), Some(38.85)]);

    // The counter itself works: one allocation counts as one.
    COUNTING.store(true, Ordering::Relaxed);
    let probe = std::hint::black_box(Vec::<u8>::with_capacity(1));
    COUNTING.store(false, Ordering::Relaxed);
    drop(probe);
    assert_eq!(ALLOCS.swap(0, Ordering::Relaxed), 1);

    COUNTING.store(true, Ordering::Relaxed);
    let mut cpu_seen = 0;
    for _ in 0..n {
        sampler.sample(&mut s);
        cpu_seen +=
            usize::from(s.mem.is_some() && s.load.is_some() && s.disks[0].is_some() && s.temperatures[0].is_some());
    }
    COUNTING.store(false, Ordering::Relaxed);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert_eq!(cpu_seen, n, "every sample read memory, load and disk");
    println!(
        "{n} samples ({} sensors, {} disks, pressure {}): {allocs} allocations",
        sampler.sensors.len(),
        2,
        s.pressure.iter().filter(|p| p.is_some()).count()
    );
    assert_eq!(allocs, 0, "allocations over {n} samples");
    let _ = std::fs::remove_dir_all(&sys);
}
