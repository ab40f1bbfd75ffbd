//! A steady-state metrics sample allocates nothing: files stay open and are re-read with
//! pread into buffers sized at open. Counted with a global allocator, so the figure is exact.

use std::path::PathBuf;

mod common;

use common::counting_alloc::{Counting, measure};
use runner::metrics::{Options, Roots, Sampler};

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
    // CPU percent needs the counters to move between two samples: sample until they have.
    common::wait_for(std::time::Duration::from_secs(20), "the CPU counters to move", || {
        sampler.sample(&mut s);
        s.cpu.is_some()
    });
    assert!(s.cpu.is_some() && s.mem.is_some() && s.load.is_some() && s.procs.is_some());
    assert!(s.disks.iter().all(Option::is_some));
    assert_eq!(s.temperatures, [Some(45.0), Some(38.85)]);

    // The counter itself works: one allocation counts as one.
    let (probe, c) = measure(|| std::hint::black_box(Vec::<u8>::with_capacity(1)));
    drop(probe);
    assert_eq!(c.allocs, 1);

    let (cpu_seen, counts) = measure(|| {
        let mut cpu_seen = 0;
        for _ in 0..n {
            sampler.sample(&mut s);
            cpu_seen +=
                usize::from(s.mem.is_some() && s.load.is_some() && s.disks[0].is_some() && s.temperatures[0].is_some());
        }
        cpu_seen
    });
    let allocs = counts.allocs;
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
