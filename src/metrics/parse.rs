//! Hand parsers for the kernel's text files, over byte slices, allocating nothing.
//!
//! Owns the formats of /proc/stat, /proc/meminfo, /proc/loadavg and /proc/pressure/*. It
//! never opens a file: callers hand in what they read, so the parsers are pure and tested
//! on inline fixtures. A malformed file is an `Err`, never a panic.

/// Cores kept per sample; a box with more reports them in the total only.
pub const MAX_CPUS: usize = 64;

/// Parse failures name the file's part that was wrong; static strings, so no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Jiffies spent in each state, as /proc/stat counts them (guest time is already in user).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    pub fn total(&self) -> u64 {
        self.user + self.nice + self.system + self.idle + self.iowait + self.irq + self.softirq + self.steal
    }

    /// Busy as psutil counts it: everything but idle and iowait (a CPU waiting for I/O is
    /// free to run something else).
    pub fn busy(&self) -> u64 {
        self.total() - self.idle - self.iowait
    }
}

/// The cpu lines of one /proc/stat read.
#[derive(Clone, Debug, Default)]
pub struct CpuStat {
    pub total: CpuTimes,
    pub cores: heapless::Vec<CpuTimes, MAX_CPUS>,
}

/// Percentages of the time between two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuPercent {
    pub busy: f64,
    pub iowait: f64,
    pub steal: f64,
}

impl CpuPercent {
    /// `None` when no time passed between the samples (the counters did not move).
    pub fn between(a: &CpuTimes, b: &CpuTimes) -> Option<CpuPercent> {
        let dt = b.total().checked_sub(a.total()).filter(|d| *d > 0)? as f64;
        let d = |x: u64, y: u64| y.saturating_sub(x) as f64 * 100.0 / dt;
        Some(CpuPercent {
            busy: d(a.busy(), b.busy()).clamp(0.0, 100.0),
            iowait: d(a.iowait, b.iowait).clamp(0.0, 100.0),
            steal: d(a.steal, b.steal).clamp(0.0, 100.0),
        })
    }
}

/// Reads the leading `cpu` lines of /proc/stat into `out`, reusing its storage.
pub fn stat(buf: &[u8], out: &mut CpuStat) -> Result<(), ParseError> {
    out.cores.clear();
    let mut saw_total = false;
    let mut lines = Lines(buf);
    loop {
        // The prefix is looked at before the line's end is searched for: the line after the
        // cpu lines is `intr`, hundreds of bytes to a few KiB that a search would walk.
        if saw_total && !lines.0.starts_with(b"cpu") {
            break;
        }
        let Some(line) = lines.next() else { break };
        let Some(rest) = line.strip_prefix(b"cpu") else { continue };
        // `cpu  1 2 ...` is the total, `cpu0 1 2 ...` a core: the label is glued to `cpu`.
        let is_total = rest.first().is_some_and(u8::is_ascii_whitespace);
        let mut f = if is_total {
            rest
        } else {
            // Past the core's number, glued to `cpu`.
            let label = rest.iter().position(u8::is_ascii_whitespace).unwrap_or(rest.len());
            &rest[label..]
        };
        let mut t = CpuTimes::default();
        // Older kernels have fewer columns; missing ones stay 0.
        let cols = [
            &mut t.user,
            &mut t.nice,
            &mut t.system,
            &mut t.idle,
            &mut t.iowait,
            &mut t.irq,
            &mut t.softirq,
            &mut t.steal,
        ];
        for (i, c) in cols.into_iter().enumerate() {
            match next_number(&mut f) {
                Some(v) => *c = v.ok_or(ParseError("/proc/stat: a cpu column is not a number"))?,
                None if i >= 4 => break,
                None => return Err(ParseError("/proc/stat: cpu line with fewer than 4 columns")),
            }
        }
        if is_total {
            out.total = t;
            saw_total = true;
        } else {
            // Beyond MAX_CPUS a core is counted in the total only.
            let _ = out.cores.push(t);
        }
    }
    if saw_total { Ok(()) } else { Err(ParseError("/proc/stat: no `cpu` line")) }
}

/// /proc/meminfo, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub buffers: u64,
    pub cached: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemInfo {
    /// Used percent as `free` and psutil count it: what is not available.
    pub fn used_percent(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.total.saturating_sub(self.available) as f64 * 100.0 / self.total as f64
    }

    pub fn swap_used_percent(&self) -> f64 {
        if self.swap_total == 0 {
            return 0.0;
        }
        self.swap_total.saturating_sub(self.swap_free) as f64 * 100.0 / self.swap_total as f64
    }
}

pub fn meminfo(buf: &[u8]) -> Result<MemInfo, ParseError> {
    let mut m = MemInfo::default();
    let mut have_available = false;
    let mut have_total = false;
    let mut seen = 0;
    for line in Lines(buf) {
        // The seven keys come early (SwapFree is about the 16th of some 50 lines).
        if seen == 7 {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let key = &line[..colon];
        let slot = match key {
            b"MemTotal" => {
                have_total = true;
                &mut m.total
            }
            b"MemFree" => &mut m.free,
            b"MemAvailable" => {
                have_available = true;
                &mut m.available
            }
            b"Buffers" => &mut m.buffers,
            b"Cached" => &mut m.cached,
            b"SwapTotal" => &mut m.swap_total,
            b"SwapFree" => &mut m.swap_free,
            _ => continue,
        };
        let mut f = &line[colon + 1..];
        let n = next_number(&mut f).flatten().ok_or(ParseError("/proc/meminfo: a value is not a number"))?;
        let unit = match Fields::new(f).next() {
            Some(b"kB") => 1024,
            _ => 1,
        };
        *slot = n * unit;
        seen += 1;
    }
    if !have_total {
        return Err(ParseError("/proc/meminfo: no MemTotal line"));
    }
    if !have_available {
        // Kernels before 3.14: the estimate `free` used then.
        m.available = m.free + m.buffers + m.cached;
    }
    Ok(m)
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoadAvg {
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    /// Runnable tasks now (the kernel counts threads).
    pub running: u64,
    /// All tasks (threads) on the box.
    pub total: u64,
}

pub fn loadavg(buf: &[u8]) -> Result<LoadAvg, ParseError> {
    let bad = ParseError("/proc/loadavg: unexpected format");
    let mut f = Fields::new(buf);
    let load1 = f.next().and_then(parse_f64).ok_or(bad)?;
    let load5 = f.next().and_then(parse_f64).ok_or(bad)?;
    let load15 = f.next().and_then(parse_f64).ok_or(bad)?;
    let tasks = f.next().ok_or(bad)?;
    let slash = tasks.iter().position(|b| *b == b'/').ok_or(bad)?;
    let running = parse_u64(&tasks[..slash]).ok_or(bad)?;
    let total = parse_u64(&tasks[slash + 1..]).ok_or(bad)?;
    Ok(LoadAvg { load1, load5, load15, running, total })
}

/// One line of a pressure file: percent of time stalled over 10 s, 60 s, 300 s, and the
/// total stall in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Psi {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total_us: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pressure {
    pub some: Psi,
    /// Absent for cpu before Linux 5.13.
    pub full: Option<Psi>,
}

pub fn pressure(buf: &[u8]) -> Result<Pressure, ParseError> {
    let bad = ParseError("pressure file: unexpected format");
    let mut p = Pressure::default();
    let mut have_some = false;
    for line in Lines(buf) {
        let mut f = Fields::new(line);
        let which = match f.next() {
            Some(b"some") => 0,
            Some(b"full") => 1,
            _ => continue,
        };
        let mut psi = Psi::default();
        for kv in f.by_ref() {
            let eq = kv.iter().position(|b| *b == b'=').ok_or(bad)?;
            let v = &kv[eq + 1..];
            match &kv[..eq] {
                b"avg10" => psi.avg10 = parse_f64(v).ok_or(bad)?,
                b"avg60" => psi.avg60 = parse_f64(v).ok_or(bad)?,
                b"avg300" => psi.avg300 = parse_f64(v).ok_or(bad)?,
                b"total" => psi.total_us = parse_u64(v).ok_or(bad)?,
                _ => {}
            }
        }
        if which == 0 {
            p.some = psi;
            have_some = true;
        } else {
            p.full = Some(psi);
        }
    }
    if have_some { Ok(p) } else { Err(bad) }
}

/// A sysfs temperature in millidegrees Celsius, as degrees.
pub fn millidegrees(buf: &[u8]) -> Result<f64, ParseError> {
    let bad = ParseError("temperature file: not a number");
    let mut f = Fields::new(buf);
    let raw = f.next().ok_or(bad)?;
    let (neg, digits) = match raw.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, raw),
    };
    let v = parse_u64(digits).ok_or(bad)? as f64 / 1000.0;
    Ok(if neg { -v } else { v })
}

/// The lines of a buffer, without their `\n`; a last line without one counts.
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = find_newline(self.0).unwrap_or(self.0.len());
        let line = &self.0[..end];
        self.0 = self.0.get(end + 1..).unwrap_or(&[]);
        Some(line)
    }
}

/// Where the first `\n` is, eight bytes at a time: a byte-by-byte search was most of what
/// parsing a sample cost (issue 17), and std has no public memchr.
fn find_newline(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while at + 8 <= s.len() {
        let word = u64::from_le_bytes(s[at..at + 8].try_into().expect("an 8-byte slice"));
        let x = word ^ (ONES * u64::from(b'\n'));
        // A zero byte of x (a '\n' of word) sets its high bit here; bytes after the first
        // zero may be false positives, bytes before it never are, so the lowest bit counts.
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + zero.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    s[at..].iter().position(|b| *b == b'\n').map(|i| at + i)
}

/// Whitespace-separated fields of a line.
struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(s: &'a [u8]) -> Self {
        Fields { rest: s }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let start = self.rest.iter().position(|b| !b.is_ascii_whitespace())?;
        let rest = &self.rest[start..];
        let end = rest.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

/// The next whitespace-separated field of `rest` read as a decimal number in one pass (the
/// fields of /proc/stat and /proc/meminfo are most of a sample's parsing); `rest` moves past
/// it. `None` when no field is left, `Some(None)` when the field is not a number.
fn next_number(rest: &mut &[u8]) -> Option<Option<u64>> {
    let s = *rest;
    let start = s.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut n: u64 = 0;
    let mut at = start;
    while let Some(&b) = s.get(at) {
        if b.is_ascii_digit() {
            n = match n.checked_mul(10).and_then(|n| n.checked_add(u64::from(b - b'0'))) {
                Some(n) => n,
                None => return Some(None),
            };
        } else if b.is_ascii_whitespace() {
            break;
        } else {
            return Some(None);
        }
        at += 1;
    }
    *rest = &s[at..];
    Some((at > start).then_some(n))
}

pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// `12.34` as the kernel writes it (no exponent, no sign).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let (int, frac) = match s.iter().position(|b| *b == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let mut v = parse_u64(int)? as f64;
    if !frac.is_empty() {
        let f = parse_u64(frac)? as f64;
        v += f / 10f64.powi(frac.len() as i32);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &[u8] = b"cpu  100 5 50 800 20 3 2 10 0 0\n\
cpu0 50 2 25 400 10 1 1 5 0 0\n\
cpu1 50 3 25 400 10 2 1 5 0 0\n\
intr 12345 1 2 3\nctxt 99\nprocs_running 3\n";

    #[test]
    fn the_word_search_finds_the_first_newline_wherever_it_is() {
        for len in 0..40 {
            for nl in (0..len).map(Some).chain([None]) {
                let mut v: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                if let Some(i) = nl {
                    v[i] = b'\n';
                    // Bytes that differ from '\n' by one bit, and a later newline, must not
                    // be taken for the first.
                    for (j, b) in v.iter_mut().enumerate().skip(i + 1) {
                        *b = [b'\n', 0x0b, 0x8a, 0x09][j % 4];
                    }
                }
                assert_eq!(find_newline(&v), v.iter().position(|b| *b == b'\n'), "len {len}, newline at {nl:?}");
            }
        }
        let lines: Vec<&[u8]> = Lines(b"a\n\nbc\nlast").collect();
        assert_eq!(lines, [&b"a"[..], b"", b"bc", b"last"]);
    }

    #[test]
    fn numbers_are_read_field_by_field_and_refused_when_not_numbers() {
        let mut rest = &b"  12 0\t345 kB"[..];
        assert_eq!(next_number(&mut rest), Some(Some(12)));
        assert_eq!(next_number(&mut rest), Some(Some(0)));
        assert_eq!(next_number(&mut rest), Some(Some(345)));
        assert_eq!(rest, b" kB");
        assert_eq!(next_number(&mut rest), Some(None));
        assert_eq!(next_number(&mut &b"  \n"[..]), None);
        assert_eq!(next_number(&mut &b"12x 3"[..]), Some(None));
        assert_eq!(next_number(&mut &b"99999999999999999999"[..]), Some(None), "overflow");
        assert_eq!(next_number(&mut &b"18446744073709551615"[..]), Some(Some(u64::MAX)));
    }

    #[test]
    fn stat_reads_total_and_cores() {
        let mut s = CpuStat::default();
        stat(STAT, &mut s).unwrap();
        assert_eq!(s.total.total(), 990);
        assert_eq!(s.total.busy(), 990 - 800 - 20);
        assert_eq!(s.cores.len(), 2);
        assert_eq!(s.cores[1].nice, 3);
    }

    #[test]
    fn cpu_percent_is_the_busy_share_of_the_delta() {
        let a = CpuTimes { user: 100, idle: 900, ..Default::default() };
        let b = CpuTimes { user: 150, idle: 940, iowait: 5, steal: 5, ..Default::default() };
        let p = CpuPercent::between(&a, &b).unwrap();
        assert!((p.busy - 55.0).abs() < 1e-9, "{p:?}");
        assert!((p.iowait - 5.0).abs() < 1e-9);
        assert!((p.steal - 5.0).abs() < 1e-9);
        assert_eq!(CpuPercent::between(&a, &a), None);
    }

    #[test]
    fn stat_without_cpu_line_is_an_error() {
        assert!(stat(b"intr 1 2\n", &mut CpuStat::default()).is_err());
        assert!(stat(b"cpu  1 2\n", &mut CpuStat::default()).is_err());
    }

    #[test]
    fn meminfo_uses_available() {
        let m = meminfo(
            b"MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     250 kB\nBuffers: 10 kB\nCached: 20 kB\nSwapTotal: 400 kB\nSwapFree: 300 kB\nHugePages_Total: 0\n",
        )
        .unwrap();
        assert_eq!(m.total, 1000 * 1024);
        assert!((m.used_percent() - 75.0).abs() < 1e-9);
        assert!((m.swap_used_percent() - 25.0).abs() < 1e-9);
        let old = meminfo(b"MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 5 kB\n").unwrap();
        assert_eq!(old.available, 20 * 1024);
        assert!(meminfo(b"MemFree: x kB\n").is_err());
    }

    #[test]
    fn loadavg_and_tasks() {
        let l = loadavg(b"0.52 1.50 12.05 3/1234 5678\n").unwrap();
        assert_eq!((l.load1, l.load5, l.load15, l.running, l.total), (0.52, 1.5, 12.05, 3, 1234));
        assert!(loadavg(b"0.52 1.50\n").is_err());
    }

    #[test]
    fn pressure_some_and_full() {
        let p = pressure(
            b"some avg10=1.25 avg60=0.50 avg300=0.00 total=12345\nfull avg10=0.10 avg60=0.00 avg300=0.00 total=99\n",
        )
        .unwrap();
        assert_eq!(p.some.avg10, 1.25);
        assert_eq!(p.full.unwrap().total_us, 99);
        assert!(pressure(b"").is_err());
    }

    #[test]
    fn temperatures_in_millidegrees() {
        assert_eq!(millidegrees(b"45500\n").unwrap(), 45.5);
        assert_eq!(millidegrees(b"-1000\n").unwrap(), -1.0);
        assert!(millidegrees(b"hot\n").is_err());
    }
}
