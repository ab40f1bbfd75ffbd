//! The binary's footprint: its stripped size against issue 14's goal (1.5 MiB), what of it
//! the loader maps (text, read-only data, writable data, from the ELF program headers), and
//! the RSS of a short command, most of which is the text it pages in at start-up.
//! `cargo bench --bench binary`; figures printed, never asserted. `RUNNER_BENCH_BIN` measures
//! another build (a static or non-PIE one, say).

use std::process::{Command, Stdio};

fn bin() -> String {
    std::env::var("RUNNER_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_runner").to_string())
}

fn u16_at(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes(b[at..at + 2].try_into().unwrap()))
}
fn u32_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().unwrap()))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The loadable segments of a 64-bit little-endian ELF file: (flags as `r-x`, bytes in memory).
fn load_segments(elf: &[u8]) -> Vec<(String, u64)> {
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "a 64-bit little-endian ELF file");
    let (off, size, n) = (u64_at(elf, 0x20) as usize, u16_at(elf, 0x36) as usize, u16_at(elf, 0x38) as usize);
    let mut v = Vec::new();
    for i in 0..n {
        let ph = &elf[off + i * size..];
        if u32_at(ph, 0) != 1 {
            continue; // not PT_LOAD
        }
        let f = u32_at(ph, 4);
        let flags = format!(
            "{}{}{}",
            if f & 4 != 0 { 'r' } else { '-' },
            if f & 2 != 0 { 'w' } else { '-' },
            if f & 1 != 0 { 'x' } else { '-' }
        );
        v.push((flags, u64_at(ph, 40)));
    }
    v
}

/// VmRSS, RssFile and RssAnon (KiB) of `runner metrics --interval 1s` half-way through its
/// interval: start-up and one sample done, so the text it paged in is counted. (A short
/// command's ru_maxrss cannot be used: the kernel counts the parent's memory the child
/// shared or copied before its exec.)
fn rss_kib(config: &std::path::Path) -> [u64; 3] {
    let mut child = Command::new(bin())
        .args(["metrics", "--interval", "1s"])
        .env("RUNNER_CONFIG", config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.wait();
    let field = |name: &str| {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    [field("VmRSS:"), field("RssFile:"), field("RssAnon:")]
}

fn main() {
    let path = bin();
    let elf = std::fs::read(&path).unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("binary: {path}");
    println!("load average: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    println!();
    println!("| figure | value | goal |");
    println!("|---|---|---|");
    let size = elf.len() as f64;
    println!(
        "| binary size (release profile, stripped) | {:.2} MB ({:.2} MiB) | 1.5 MiB |",
        size / 1e6,
        size / 1048576.0
    );
    for (flags, bytes) in load_segments(&elf) {
        println!("| mapped segment {flags} | {} KiB | |", bytes / 1024);
    }
    let dir = std::env::temp_dir().join(format!("runner-bench-binary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("supervisor.yaml");
    std::fs::write(&config, "version: 1\njobs: {}\n").unwrap();
    let mut runs: Vec<[u64; 3]> = (0..9).map(|_| rss_kib(&config)).collect();
    runs.sort_unstable();
    let (lo, mid, hi) = (runs[0], runs[4], runs[8]);
    println!(
        "| RSS of `runner metrics` mid-run, min / median / max of 9 (file-backed + anonymous) | {} / {} / {} KiB ({} + {} median) | |",
        lo[0], mid[0], hi[0], mid[1], mid[2]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
