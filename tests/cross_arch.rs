//! Files cross architectures: the ring and the job state one binary writes, every other one
//! reads the same. A box moves its state directory (a new SD card, a board swapped for a
//! 64-bit one, a backup restored on a laptop), and the files are little-endian with fixed
//! widths (src/sinks/ring.rs) or JSON, never a native struct.
//!
//! The native binary takes turns with the aarch64 and armv7 (32-bit) release builds, which
//! run under qemu-user through binfmt_misc: `.ci/run` builds them and enables binfmt before
//! the native `cargo test`. Each binary appends a run to the same ring and state, and after
//! every append all of them must print the same `runner logs --json` and the same jobs in
//! `runner status --json`.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The foreign builds this test starts: (name, target triple, binfmt entry that runs it).
const FOREIGN: [(&str, &str, &str); 2] =
    [("aarch64", "aarch64-unknown-linux-gnu", "qemu-aarch64"), ("armv7", "armv7-unknown-linux-gnueabihf", "qemu-arm")];

/// The release build of `triple`, beside this test's own target directory.
fn foreign_bin(triple: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join(triple).join("release/runner")
}

/// The writers and readers, native first; None (a skip outside CI, a failure under CI=true)
/// when a foreign build or its binfmt entry is missing.
fn binaries() -> Option<Vec<(&'static str, PathBuf)>> {
    let mut all = vec![(std::env::consts::ARCH, PathBuf::from(BIN))];
    for (name, triple, binfmt) in FOREIGN {
        let bin = foreign_bin(triple);
        if !bin.exists() {
            skip_missing(&format!("{} (cargo build --release --target {triple})", bin.display()));
            return None;
        }
        let entry = std::fs::read_to_string(format!("/proc/sys/fs/binfmt_misc/{binfmt}")).unwrap_or_default();
        if !entry.starts_with("enabled") {
            skip_missing(&format!("binfmt_misc entry {binfmt} (update-binfmts --enable {binfmt}), to run {name}"));
            return None;
        }
        all.push((name, bin));
    }
    Some(all)
}

/// `bin` with the environment `Scratch::runner` gives the test's own binary.
fn cmd(s: &Scratch, config: &Path, bin: &Path) -> Command {
    let base = s.runner(config);
    let mut c = Command::new(bin);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c
}

/// `runner logs --json` and the `jobs` of `runner status --json`, as `bin` reads them.
fn read_back(s: &Scratch, config: &Path, bin: &Path) -> (String, serde_json::Value) {
    let logs = cmd(s, config, bin).args(["logs", "--json"]).output().unwrap();
    assert!(logs.status.success(), "{} logs: {}", bin.display(), stderr(&logs));
    let status = cmd(s, config, bin).args(["status", "--json"]).output().unwrap();
    assert!(status.status.success(), "{} status: {}", bin.display(), stderr(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    (stdout(&logs), v["jobs"].clone())
}

#[test]
fn ring_and_state_written_by_each_architecture_read_the_same_by_all() {
    if skip_emulated("starts the foreign builds itself; runs natively") {
        return;
    }
    let Some(bins) = binaries() else { return };
    let s = Scratch::new("cross-arch");
    let mut yaml = String::from("version: 1\njobs:\n");
    for (i, (name, _)) in bins.iter().enumerate() {
        yaml.push_str(&format!("  {name}:\n    every: 1h\n    run: \"echo written by {name}; exit {}\"\n", 10 + i));
    }
    let config = s.write("supervisor.yaml", &yaml);

    // Native, aarch64, armv7, then native again: each appends to what the others wrote.
    let turns: Vec<usize> = (0..bins.len()).chain([0]).collect();
    for (n, &w) in turns.iter().enumerate() {
        let (name, bin) = &bins[w];
        let o = cmd(&s, &config, bin).args(["once", name]).output().unwrap();
        assert_eq!(o.status.code(), Some(10 + w as i32), "{name} once: {}", stderr(&o));
        assert_eq!(stdout(&o), format!("written by {name}\n"));

        let (logs, jobs) = read_back(&s, &config, &bins[0].1);
        for (reader, bin) in &bins[1..] {
            let (their_logs, their_jobs) = read_back(&s, &config, bin);
            assert_eq!(their_logs, logs, "{reader} reads the ring differently after {name} wrote");
            assert_eq!(their_jobs, jobs, "{reader} reads the state differently after {name} wrote");
        }

        let entries: Vec<serde_json::Value> = logs.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(entries.len(), n + 1, "{logs}");
        let last = &entries[n];
        assert_eq!(last["job"], *name);
        assert_eq!(last["exit_code"], 10 + w as i64);
        assert_eq!(last["output"], format!("written by {name}\n"));
        assert_eq!(last["seq"], n as u64 + 1);
        let job = jobs.as_array().unwrap().iter().find(|j| j["name"] == *name).unwrap();
        assert_eq!(job["last_exit_code"], 10 + w as i64, "{jobs}");
        assert_eq!(job["runs"], turns[..=n].iter().filter(|&&t| t == w).count() as u64, "{jobs}");
    }
}

/// The same fire times from every build, past 2038-01-19T03:14:07Z (the last second of
/// armv7 glibc's 32-bit `time_t`) and in a zone with daylight saving: schedules are computed
/// in 64 bits everywhere.
#[test]
fn every_architecture_prints_the_same_calendar_past_2038() {
    if skip_emulated("starts the foreign builds itself; runs natively") {
        return;
    }
    let Some(bins) = binaries() else { return };
    let cases: [&[&str]; 3] = [
        &["*/1 * * * * *", "--from", "2038-01-19T03:14:05Z", "--tz", "UTC", "--count", "4"],
        &["0 12 1 1,7 *", "--from", "2040-01-01T00:00:00Z", "--tz", "Europe/Berlin", "--count", "2"],
        &["@yearly", "--from", "2106-02-07T06:28:15Z", "--tz", "UTC", "--count", "1"],
    ];
    for args in cases {
        let outs: Vec<(&str, String)> = bins
            .iter()
            .map(|(name, bin)| {
                let o = Command::new(bin).arg("calendar").args(args).output().unwrap();
                assert!(o.status.success(), "{name} calendar {args:?}: {}", stderr(&o));
                (*name, stdout(&o))
            })
            .collect();
        for (name, out) in &outs[1..] {
            assert_eq!(out, &outs[0].1, "{name} and {} differ for calendar {args:?}", outs[0].0);
        }
        assert!(!outs[0].1.is_empty(), "{args:?}: no fire times");
    }
    let first = Command::new(&bins[2].1).arg("calendar").args(cases[0]).output().unwrap();
    assert_eq!(
        stdout(&first).lines().collect::<Vec<_>>(),
        [
            "2038-01-19T03:14:06+00:00",
            "2038-01-19T03:14:07+00:00",
            "2038-01-19T03:14:08+00:00",
            "2038-01-19T03:14:09+00:00"
        ],
        "armv7"
    );
}
