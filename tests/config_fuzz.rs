//! Parsing is bounded: thousands of mutated and generated configs (deep nesting, alias
//! bombs, long lines, many jobs, non-UTF-8) load, or are refused, without a panic and
//! within the budget: 1 s and 64 MiB for any file up to 2 MiB (a debug build gets ten times
//! the time). Most cases go through `config::load_text` in-process, with the heap peak
//! counted; a handful go through `runner check`, with the peak RSS from getrusage.

mod common;
use common::*;

use std::path::Path;
use std::time::{Duration, Instant};

use common::counting_alloc::{Counting, measure};
use runner::config::{self, Overrides, ResolveEnv, bounds};

#[global_allocator]
static A: Counting = Counting;

const MEMORY_BUDGET: usize = 64 << 20;

/// The heap peak is process-wide: the tests here take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn time_budget() -> Duration {
    if cfg!(debug_assertions) { Duration::from_secs(10) } else { Duration::from_secs(1) }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const BASE: &str = "\
version: 1
defaults:
  timeout: 5m
  env: &env { LANG: C, TZ: UTC }
jobs:
  backup:
    schedule: \"30 2 * * MON-FRI\"
    command: [/bin/echo, hi]
    retries: { attempts: 3, backoff: 30s }
    env: *env
  disk:
    every: 1m
    check: { metric: disk_used_percent, path: /, warn: 80, crit: 90 }
  tidy:
    schedule: \"@daily\"
    run: |
      find /tmp -mtime +7 -delete
    depends_on: { disk: healthy }
";

/// Pieces of YAML and of runner's own syntax that mutations insert.
const TOKENS: &[&str] = &[
    "- ",
    "[",
    "]",
    "{",
    "}",
    ": ",
    ",",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "\n",
    "\n  ",
    "\n    ",
    "'",
    "\"",
    "|",
    ">",
    "#",
    "!!str ",
    "? ",
    "---\n",
    "...\n",
    "~",
    "\t",
    "jobs:",
    "every: ",
    "schedule: ",
    "* * 31 2 *",
    "0 0 * * L",
    "sat-0",
    "*,0",
    "1ms",
    "jitter: 2d",
    "\u{2028}",
    "\\L",
    "é",
    "\u{feff}",
    "<<: *a",
];

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..1 + rng.below(8) {
        let i = rng.below(b.len() + 1);
        match rng.below(5) {
            0 if !b.is_empty() => {
                let i = i.min(b.len() - 1);
                b[i] = rng.next() as u8;
            }
            1 => {
                let end = (i + rng.below(40)).min(b.len());
                b.drain(i..end);
            }
            2 => {
                let t = rng.pick(TOKENS).as_bytes().to_vec();
                b.splice(i..i, t);
            }
            3 => {
                // Repeat a slice: lines, keys and nesting multiply.
                let end = (i + rng.below(60)).min(b.len());
                let piece = b[i..end].to_vec();
                for _ in 0..rng.below(50) {
                    b.splice(i..i, piece.iter().copied());
                }
            }
            _ => b.truncate(i),
        }
    }
    b
}

/// A generated config of up to about `size` bytes meant to be expensive.
fn generated(rng: &mut Rng, size: usize) -> Vec<u8> {
    let n = size / 8;
    let text = match rng.below(12) {
        0 => "- ".repeat(n),
        1 => format!("{}x{}", "[".repeat(n), "]".repeat(n)),
        2 => format!("version: 1\njobs: {}", "{a: ".repeat(n / 2)),
        3 => {
            // Mapping keys nested by indentation: the file grows with the square of the depth.
            let depth = ((size as f64).sqrt() as usize).max(2);
            (0..depth).map(|d| format!("{}k{d}:\n", " ".repeat(d))).collect()
        }
        4 => {
            // A billion laughs.
            let mut s = String::from("version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
            for i in 1..12 {
                let p = i - 1;
                s += &format!("a{i}: &a{i} [{}]\n", vec![format!("*a{p}"); 10].join(", "));
            }
            s
        }
        5 => {
            // One long string used many times.
            let big = "y".repeat(size / 4);
            let uses = (0..(size / 20)).map(|i| format!("      K{i}: *s\n")).collect::<String>();
            format!(
                "version: 1\njobs:\n  j:\n    description: &s \"{big}\"\n    run: x\n    every: 1m\n    env:\n{uses}"
            )
        }
        6 => {
            let line = "z".repeat(size.saturating_sub(64));
            format!("version: 1\njobs:\n  j:\n    run: \"{line}\"\n    every: 1m\n")
        }
        7 => {
            let jobs: String = (0..size / 40).map(|i| format!("  j{i}: {{run: x, every: 1m, jitter: 1s}}\n")).collect();
            format!("version: 1\njobs:\n{jobs}")
        }
        8 => {
            // Large defaults copied into many jobs.
            let env: String = (0..size / 60).map(|i| format!("    V{i}: value{i}\n")).collect();
            let jobs: String = (0..size / 60).map(|i| format!("  j{i}: {{run: x, every: 1m}}\n")).collect();
            format!("version: 1\ndefaults:\n  env:\n{env}jobs:\n{jobs}")
        }
        9 => {
            // Many jobs, each depending on many checks that do not exist.
            let deps: String = (0..200).map(|i| format!("c{i}: healthy, ")).collect();
            let jobs: String = (0..size / (deps.len() + 40))
                .map(|i| format!("  j{i}: {{run: x, every: 1m, depends_on: {{{deps}}}}}\n"))
                .collect();
            format!("version: 1\njobs:\n{jobs}")
        }
        10 => {
            let jobs: String =
                (0..size / 50).map(|i| format!("  j{i}: {{run: x, schedule: \"{} * 31 2 *\"}}\n", i % 60)).collect();
            format!("version: 1\njobs:\n{jobs}")
        }
        _ => (0..n).map(|_| rng.pick(TOKENS)).collect(),
    };
    let mut b = text.into_bytes();
    if rng.below(4) == 0 && !b.is_empty() {
        let i = rng.below(b.len());
        b[i] = 0xff;
    }
    b
}

struct Outcome {
    elapsed: Duration,
    peak: usize,
    ok: bool,
}

fn load_in_process(s: &Scratch, host: &ResolveEnv, bytes: Vec<u8>) -> Outcome {
    let path = s.path("supervisor.yaml");
    let started = Instant::now();
    let (ok, counts) = measure(|| match bounds::decode(bytes) {
        Ok(text) => config::load_text(&text, &path, &Overrides::default(), host).is_ok(),
        Err(_) => false,
    });
    Outcome { elapsed: started.elapsed(), peak: counts.peak_above_start, ok }
}

fn describe(bytes: &[u8]) -> String {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
    format!("{} bytes starting {head:?}", bytes.len())
}

#[test]
fn mutated_and_generated_configs_stay_within_budget() {
    if skip_emulated("its bound is the parse time of a native build; emulation is 5 to 20 times slower") {
        return;
    }
    let _turn = one_at_a_time();
    let env = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let cases = env("CONFIG_FUZZ_CASES", 3000) as usize;
    let seed = env("CONFIG_FUZZ_SEED", 0x5eed_0c0f_1600);
    let s = Scratch::new("fuzz");
    let host = ResolveEnv::current();
    let mut rng = Rng(seed);
    let (mut loaded, mut refused, mut worst_time, mut worst_peak) = (0, 0, Duration::ZERO, 0);
    for case in 0..cases {
        // One case in 50 is large (up to 1 MiB); the rest are mutations of a real config or
        // small generated ones.
        let bytes = match case % 50 {
            0 => generated(&mut rng, bounds::MAX_FILE_BYTES - 1024),
            1..=15 => {
                let size = 64 + rng.below(16 * 1024);
                generated(&mut rng, size)
            }
            _ => mutate(&mut rng, BASE.as_bytes()),
        };
        let what = describe(&bytes);
        let out = load_in_process(&s, &host, bytes);
        assert!(out.elapsed < time_budget(), "case {case} (seed {seed:#x}) took {:?}: {what}", out.elapsed);
        assert!(out.peak < MEMORY_BUDGET, "case {case} (seed {seed:#x}) peaked at {} bytes of heap: {what}", out.peak);
        if out.ok {
            loaded += 1;
        } else {
            refused += 1;
        }
        worst_time = worst_time.max(out.elapsed);
        worst_peak = worst_peak.max(out.peak);
    }
    eprintln!(
        "{cases} configs: {loaded} loaded, {refused} refused; slowest {worst_time:?}, highest heap peak {} KiB",
        worst_peak / 1024
    );
    assert!(loaded > 0 && refused > 0, "the generator should make both valid and invalid configs");
}

/// `runner check` on one file: exit code, stderr and wall time.
fn check_file(s: &Scratch, name: &str, bytes: &[u8]) -> (i32, String, Duration) {
    use std::os::unix::fs::PermissionsExt;
    let p = s.path(name);
    std::fs::write(&p, bytes).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let started = Instant::now();
    let o = s.runner(&p).arg("check").output().unwrap();
    (o.status.code().unwrap_or(-1), stderr(&o), started.elapsed())
}

#[test]
fn runner_check_refuses_hostile_files_with_the_place_and_the_fix() {
    if skip_emulated("its bound is the parse time of a native build; emulation is 5 to 20 times slower") {
        return;
    }
    let _turn = one_at_a_time();
    let s = Scratch::new("fuzz-bin");
    let place = |name: &str| format!("{}:", s.path(name).display());

    // The repro: 20 KB of `- - - ...` took 26 s and 2.75 GB.
    let (code, err, took) = check_file(&s, "nest.yaml", "- ".repeat(10_000).as_bytes());
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with(&format!("{}1:129: nesting deeper than 64 levels", place("nest.yaml"))), "{err}");
    assert!(took < time_budget(), "{took:?}");

    // 3,000 aliases to one large string, under 2 MiB.
    let big = "x".repeat(600 * 1024);
    let uses: String = (0..3000).map(|i| format!("      K{i}: *a\n")).collect();
    let doc = format!(
        "version: 1\njobs:\n  j:\n    description: &a \"{big}\"\n    run: echo\n    every: 1m\n    env:\n{uses}"
    );
    let (code, err, took) = check_file(&s, "alias.yaml", doc.as_bytes());
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with(&place("alias.yaml")), "{err}");
    assert!(err.contains(":13:11: aliases expand this document to more than 4194304 bytes (4 MiB) of values"), "{err}");
    assert!(err.contains("write the shared values out, or use fewer aliases of large values"), "{err}");
    assert!(took < time_budget(), "{took:?}");

    // Over 2 MiB: refused by its size, unread.
    let (code, err, _) = check_file(&s, "big.yaml", &vec![b'#'; bounds::MAX_FILE_BYTES + 1]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("big.yaml: the file is 2097153 bytes, more than the 2097152 (2 MiB) runner reads; split its jobs into drop-in files"),
        "{err}"
    );

    // Not UTF-8: the line and column of the first bad byte.
    let (code, err, _) = check_file(&s, "latin1.yaml", b"version: 1\njobs:\n  caf\xe9:\n    every: 1m\n    run: x\n");
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with(&format!("{}3:6: byte 0xe9 is not UTF-8", place("latin1.yaml"))), "{err}");

    // 2,000 cron jobs with 900-byte commands: almost 2 MiB loads within the budget; 10,000
    // jobs (the most runner takes) load, a 10,001st is refused at its line.
    let cmd = "x".repeat(900);
    let job = |i: usize| format!("  job{i:04}:\n    schedule: \"*/5 * * * MON-FRI\"\n    run: \"echo {cmd}\"\n");
    let doc = format!("version: 1\njobs:\n{}", (0..2000).map(job).collect::<String>());
    assert!(doc.len() > 1800 * 1024 && doc.len() < bounds::MAX_FILE_BYTES, "{}", doc.len());
    let (code, err, took) = check_file(&s, "many.yaml", doc.as_bytes());
    assert_eq!(code, 0, "{err}");
    assert!(took < time_budget(), "{took:?}");
    let jobs: String = (0..10_000).map(|i| format!("  j{i}: {{every: 1m, run: x}}\n")).collect();
    let (code, err, took) = check_file(&s, "most.yaml", format!("version: 1\njobs:\n{jobs}").as_bytes());
    assert_eq!(code, 0, "{err}");
    assert!(took < time_budget(), "{took:?}");
    let jobs = format!("{jobs}  j10000: {{every: 1m, run: x}}\n");
    let (code, err, _) = check_file(&s, "too-many.yaml", format!("version: 1\njobs:\n{jobs}").as_bytes());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("too-many.yaml:10003:3: more than 10000 jobs, the most runner takes"), "{err}");

    // The highest peak RSS of every `runner check` above.
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let max_rss = usage.max_rss() as usize * 1024;
    eprintln!("runner check: highest peak RSS {} KiB", max_rss / 1024);
    assert!(max_rss < MEMORY_BUDGET, "a `runner check` peaked at {max_rss} bytes");
}

#[test]
fn a_large_defaults_block_copied_into_many_jobs_is_refused() {
    let _turn = one_at_a_time();
    let s = Scratch::new("fuzz-defaults");
    let env: String = (0..12000).map(|i| format!("    VARIABLE_{i}: some-value-{i}\n")).collect();
    let jobs: String = (0..1000).map(|i| format!("  j{i}: {{run: x, every: 1m}}\n")).collect();
    let doc = format!("version: 1\ndefaults:\n  env:\n{env}jobs:\n{jobs}");
    let (code, err, _) = check_file(&s, "defaults.yaml", doc.as_bytes());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("defaults.yaml:2:1: `defaults:` holds"), "{err}");
    assert!(err.contains("copied into each of 1000 jobs"), "{err}");
    assert!(Path::new(&s.path("defaults.yaml")).exists());
}
