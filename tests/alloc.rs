//! Heap allocations per scheduler tick in steady state: the goal is zero, so a daemon that
//! runs for years on 64 MiB does not fragment its heap. Counted with a global allocator,
//! which makes the figure deterministic.

use std::path::Path;
use std::time::Duration;

mod common;

use common::counting_alloc::{Counting, measure};
use runner::config::{Overrides, ResolveEnv, load_text};
use runner::scheduler::Timetable;
use runner::sinks::state::State;

#[global_allocator]
static A: Counting = Counting;

#[test]
fn scheduler_ticks_allocate_nothing_in_steady_state() {
    let mut jobs = String::new();
    for i in 0..20 {
        jobs.push_str(&format!(
            "  cron{i}:\n    schedule: \"*/{} * * * * *\"\n    timezone: Europe/Berlin\n    run: x\n",
            i % 5 + 1
        ));
        jobs.push_str(&format!("  every{i}:\n    every: {}s\n    run: x\n", i % 7 + 1));
    }
    let host = ResolveEnv { euid: 0, users: Default::default() };
    let plan =
        load_text(&format!("version: 1\njobs:\n{jobs}"), Path::new("/x/t.yaml"), &Overrides::default(), &host).unwrap();
    let mut t = Timetable::new("machine".into(), "boot".into());
    let mut wall: jiff::Timestamp = "2026-03-29T00:30:00Z".parse().unwrap();
    let mut mono = tokio::time::Instant::now();
    for j in &plan.jobs {
        t.plan_job(j.clone(), &State::default(), wall, mono);
    }
    let mut fires = Vec::with_capacity(64);
    // Warm up: the heaps reach their steady size.
    let step = Duration::from_millis(250);
    for _ in 0..200 {
        wall += jiff::SignedDuration::from_millis(250);
        mono += step;
        fires.clear();
        t.take_due(wall, mono, &mut fires);
        let _ = t.sleep_for(wall, mono);
    }
    // The counter itself works: one allocation counts as one.
    let (probe, c) = measure(|| std::hint::black_box(Vec::<u8>::with_capacity(1)));
    drop(probe);
    assert_eq!(c.allocs, 1);

    let (fired, counts) = measure(|| {
        let mut fired = 0;
        // Across the spring-forward hour in Berlin, too.
        for _ in 0..4000 {
            wall += jiff::SignedDuration::from_millis(250);
            mono += step;
            fires.clear();
            t.take_due(wall, mono, &mut fires);
            fired += fires.len();
            let _ = t.sleep_for(wall, mono);
        }
        fired
    });
    let allocs = counts.allocs;
    assert!(fired > 1000, "the ticks should fire jobs: {fired}");
    println!("{fired} fires over 4000 ticks, {allocs} allocations");
    assert_eq!(allocs, 0, "allocations per {fired} fires");
}
