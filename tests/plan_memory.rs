//! What a loaded job costs on the heap, in the plan and in the daemon's timetable. issue 14
//! wants 10,000 jobs in a daemon under 16 MiB, about 1.5 KiB a job all told; a cron schedule
//! alone once kept croner's table of every year to 9999 (about 10 KB), and the timetable a
//! second copy of every job. Counted with the global allocator, so deterministic.

use std::path::Path;

mod common;

use common::counting_alloc::{Counting, live};
use runner::config::{Overrides, ResolveEnv, load_text};
use runner::scheduler::Timetable;
use runner::sinks::state::State;

#[global_allocator]
static A: Counting = Counting;

/// One test, not several: the live heap is the whole process's.
#[test]
fn a_loaded_and_planned_job_costs_a_few_hundred_bytes_of_heap() {
    let host = ResolveEnv { euid: 0, users: Default::default() };
    for extra in [false, true] {
        let n = 2000;
        let text = common::generated::cron_jobs(n, extra);
        let before = live();
        let plan = load_text(&text, Path::new("/x/supervisor.yaml"), &Overrides::default(), &host).unwrap();
        let held = live() - before - plan.texts.iter().map(String::capacity).sum::<usize>();
        let per_job = held / n;
        eprintln!("extra: {extra}: {per_job} bytes of heap per job");
        assert_eq!(plan.jobs.len(), n);
        assert!(per_job < 1024, "{per_job} bytes of heap per job (extra: {extra})");

        // The daemon's timetable shares the plan's jobs: its own cost per job is its
        // entry, the name it finds a job by and a heap slot, not a second copy of the job.
        let (wall, mono) = ("2026-03-29T00:30:00Z".parse().unwrap(), tokio::time::Instant::now());
        let state = State::default();
        let before = live();
        let mut table = Timetable::new("machine".into(), "boot".into());
        for job in &plan.jobs {
            table.plan_job(job.clone(), &state, wall, mono);
        }
        let per_job = (live() - before) / n;
        eprintln!("extra: {extra}: {per_job} bytes of timetable per job");
        assert_eq!(table.len(), n);
        assert!(per_job < 256, "{per_job} bytes of timetable heap per job (extra: {extra})");
    }
}
