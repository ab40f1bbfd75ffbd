//! The generated config the scale figures and their tests share, so the heap per job that
//! `tests/plan_memory.rs` holds down is that of the config `benches/config_parse.rs` times.

/// `n` jobs of the shape a generated config has (one check per disk, service or sensor): a
/// cron schedule and a shell line, and with `extra` a time zone and retries.
pub fn cron_jobs(n: usize, extra: bool) -> String {
    let mut text = String::from("version: 1\njobs:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  job{i:05}:\n    schedule: \"{} */2 * * MON-FRI\"\n    run: \"echo job {i}\"\n",
            i % 60
        ));
        if extra {
            text.push_str("    timezone: Europe/Berlin\n    retries: {attempts: 3, backoff: 10s}\n");
        }
    }
    text
}
