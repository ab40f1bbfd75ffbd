//! Metrics read straight from the kernel: /proc and sysfs text files, statvfs, directory
//! walks. No helper processes.
//!
//! Owns opening the sources once and re-reading them cheaply: a [`ProcFile`] keeps its file
//! open and re-reads it with `pread` at offset 0 into a buffer sized when it was opened, so
//! a steady-state sample allocates nothing (`tests/metrics_alloc.rs` counts). Roots of /proc
//! and /sys are configurable so tests point them at fixture trees. It must not decide what a
//! value means (thresholds, levels): that is `kinds::check`.

pub mod fs;
pub mod parse;
pub mod per_process;
pub mod power;
pub mod sensors;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use parse::{CpuPercent, CpuStat, CpuTimes, LoadAvg, MAX_CPUS, MemInfo, ParseError, Pressure, Psi};
pub use sensors::Sensor;

/// Where /proc and /sys are. Tests substitute fixture trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roots {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots { proc: PathBuf::from("/proc"), sys: PathBuf::from("/sys") }
    }
}

impl Roots {
    /// `RUNNER_PROC_ROOT` / `RUNNER_SYS_ROOT` outrank the file's `proc_root` / `sys_root`.
    pub fn resolve(file_proc: Option<PathBuf>, file_sys: Option<PathBuf>) -> Roots {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let d = Roots::default();
        Roots {
            proc: env("RUNNER_PROC_ROOT").or(file_proc).unwrap_or(d.proc),
            sys: env("RUNNER_SYS_ROOT").or(file_sys).unwrap_or(d.sys),
        }
    }
}

/// Why a value could not be read; carries no heap data, so failing costs no allocation.
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    Parse(ParseError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Parse(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}

/// A kernel text file kept open and re-read whole with `pread` at offset 0. The kernel
/// regenerates /proc and sysfs text on a read from offset 0, so one `pread` per sample sees
/// fresh values without a seek or a reopen.
#[derive(Debug)]
pub struct ProcFile {
    path: PathBuf,
    file: File,
    buf: Box<[u8]>,
}

impl ProcFile {
    /// Opens `path` with a buffer of `cap` bytes: what does not fit is not read (callers
    /// size it for the part they parse).
    pub fn open(path: &Path, cap: usize) -> io::Result<ProcFile> {
        let file = File::open(path)?;
        Ok(ProcFile { path: path.to_path_buf(), file, buf: vec![0; cap.max(64)].into_boxed_slice() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One `pread` normally: these files are generated whole (single_open, one sysfs page),
    /// so a short read is the end. Reading on to confirm EOF would make the kernel generate
    /// the text a second time, which costs more than the parse.
    pub fn read(&mut self) -> io::Result<&[u8]> {
        let mut n = 0;
        while n < self.buf.len() {
            let want = self.buf.len() - n;
            match self.file.read_at(&mut self.buf[n..], n as u64) {
                Ok(0) => break,
                Ok(k) if k < want => {
                    n += k;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.buf[..n])
    }
}

/// Opens a file for a reader, putting its path on the error (set-up time, so the message
/// may allocate).
pub fn open_source(path: &Path, cap: usize) -> Result<ProcFile, String> {
    ProcFile::open(path, cap).map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// CPU time from /proc/stat, with the previous sample kept for deltas.
#[derive(Debug)]
pub struct CpuReader {
    file: ProcFile,
    /// The last two samples; `cur` indexes the newer. Flipping the index instead of swapping
    /// the two (4 KiB each, MAX_CPUS cores) saves copying 8 KiB per sample, which was most of
    /// what a sample cost over the bare reads.
    stats: [CpuStat; 2],
    cur: usize,
    samples: u64,
}

impl CpuReader {
    pub fn open(roots: &Roots) -> Result<CpuReader, String> {
        let path = roots.proc.join("stat");
        // Size the buffer for the cpu lines only: the `intr` line after them can be tens of
        // kilobytes on a big box and is never parsed.
        let whole = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut end = 0;
        let mut at = 0;
        for line in whole.split(|b| *b == b'\n') {
            at += line.len() + 1;
            if line.starts_with(b"cpu") {
                end = at;
            }
        }
        if end == 0 {
            return Err(format!("{}: no `cpu` line; is this a Linux /proc?", path.display()));
        }
        let file = open_source(&path, end + 1024)?;
        Ok(CpuReader { file, stats: [CpuStat::default(), CpuStat::default()], cur: 0, samples: 0 })
    }

    pub fn sample(&mut self) -> Result<(), Error> {
        let next = self.cur ^ 1;
        let buf = self.file.read()?;
        parse::stat(buf, &mut self.stats[next])?;
        self.cur = next;
        self.samples += 1;
        Ok(())
    }

    /// Busy, iowait and steal percent between the last two samples.
    pub fn percent(&self) -> Option<CpuPercent> {
        (self.samples >= 2)
            .then(|| CpuPercent::between(&self.stats[self.cur ^ 1].total, &self.stats[self.cur].total))
            .flatten()
    }

    pub fn core_percent(&self, core: usize) -> Option<CpuPercent> {
        if self.samples < 2 {
            return None;
        }
        CpuPercent::between(self.stats[self.cur ^ 1].cores.get(core)?, self.stats[self.cur].cores.get(core)?)
    }

    pub fn cores(&self) -> usize {
        self.stats[self.cur].cores.len()
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }
}

/// A one-file source parsed by a plain function: /proc/meminfo, /proc/loadavg, a pressure
/// file.
#[derive(Debug)]
pub struct TextSource<T> {
    file: ProcFile,
    parse: fn(&[u8]) -> Result<T, ParseError>,
}

impl<T> TextSource<T> {
    pub fn sample(&mut self) -> Result<T, Error> {
        let parse = self.parse;
        Ok(parse(self.file.read()?)?)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

pub fn meminfo(roots: &Roots) -> Result<TextSource<MemInfo>, String> {
    Ok(TextSource { file: open_source(&roots.proc.join("meminfo"), 8192)?, parse: parse::meminfo })
}

pub fn loadavg(roots: &Roots) -> Result<TextSource<LoadAvg>, String> {
    Ok(TextSource { file: open_source(&roots.proc.join("loadavg"), 256)?, parse: parse::loadavg })
}

/// The pressure resources the kernel reports under /proc/pressure.
pub const PRESSURE: [&str; 3] = ["cpu", "memory", "io"];

pub fn pressure(roots: &Roots, resource: &str) -> Result<TextSource<Pressure>, String> {
    let path = roots.proc.join("pressure").join(resource);
    Ok(TextSource { file: open_source(&path, 512)?, parse: parse::pressure })
}

/// Disk and inode use of the filesystem holding a path.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DiskUsage {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub avail_bytes: u64,
    /// As `df` computes it: used / (used + available to unprivileged users), so the blocks
    /// reserved for root count as neither.
    pub used_percent: f64,
    /// As `df -i`: used / (used + free); 0 on filesystems without an inode count.
    pub inodes_used_percent: f64,
    pub inodes_total: u64,
    pub inodes_used: u64,
}

/// statvfs(2) of `path`. Paths shorter than 1 KiB go through nix's stack buffer, so this
/// does not allocate.
pub fn disk_usage(path: &Path) -> io::Result<DiskUsage> {
    let st = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    let frsize = st.fragment_size() as u64;
    let blocks = st.blocks() as u64;
    let bfree = st.blocks_free() as u64;
    let bavail = st.blocks_available() as u64;
    let used = blocks.saturating_sub(bfree);
    let pct = |used: u64, avail: u64| if used + avail == 0 { 0.0 } else { used as f64 * 100.0 / (used + avail) as f64 };
    let files = st.files() as u64;
    let ffree = st.files_free() as u64;
    let iused = files.saturating_sub(ffree);
    Ok(DiskUsage {
        total_bytes: blocks * frsize,
        used_bytes: used * frsize,
        avail_bytes: bavail * frsize,
        used_percent: pct(used, bavail),
        inodes_used_percent: if files == 0 { 0.0 } else { pct(iused, ffree) },
        inodes_total: files,
        inodes_used: iused,
    })
}

/// Counts processes (numeric entries of /proc) with getdents64 over a directory kept open
/// and rewound, into a fixed buffer: std's and nix's directory iterators copy each name to
/// the heap.
#[derive(Debug)]
pub struct ProcCounter {
    dir: File,
    buf: Box<[u8]>,
}

impl ProcCounter {
    pub fn open(roots: &Roots) -> Result<ProcCounter, String> {
        let dir = File::open(&roots.proc).map_err(|e| format!("cannot open {}: {e}", roots.proc.display()))?;
        Ok(ProcCounter { dir, buf: vec![0; 16 * 1024].into_boxed_slice() })
    }

    pub fn count(&mut self) -> Result<u64, Error> {
        use std::os::fd::AsFd;
        nix::unistd::lseek(self.dir.as_fd(), 0, nix::unistd::Whence::SeekSet).map_err(io::Error::from)?;
        let mut n = 0;
        loop {
            let got = runner_sys::dir::getdents64(self.dir.as_fd(), &mut self.buf)?;
            if got == 0 {
                return Ok(n);
            }
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            let recs = &self.buf[..got];
            let mut at = 0;
            while at + 19 <= recs.len() {
                let reclen = u16::from_ne_bytes([recs[at + 16], recs[at + 17]]) as usize;
                if reclen == 0 || at + reclen > recs.len() {
                    break;
                }
                let name = &recs[at + 19..at + reclen];
                let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
                if !name.is_empty() && name.iter().all(u8::is_ascii_digit) {
                    n += 1;
                }
                at += reclen;
            }
        }
    }
}

/// What a full sample (`runner metrics`, the benchmark) reads.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub cpu: bool,
    pub mem: bool,
    pub load: bool,
    pub pressure: bool,
    pub temperatures: bool,
    pub procs: bool,
    pub disks: Vec<PathBuf>,
}

impl Options {
    pub fn everything(disks: Vec<PathBuf>) -> Options {
        Options { cpu: true, mem: true, load: true, pressure: true, temperatures: true, procs: true, disks }
    }
}

/// Every source of a full sample, opened once.
#[derive(Debug)]
pub struct Sampler {
    pub cpu: Option<CpuReader>,
    pub mem: Option<TextSource<MemInfo>>,
    pub load: Option<TextSource<LoadAvg>>,
    pub pressure: [Option<TextSource<Pressure>>; 3],
    pub sensors: Vec<Sensor>,
    pub procs: Option<ProcCounter>,
    pub disks: Vec<PathBuf>,
}

/// One sample's values, in storage reused from sample to sample.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub cpu: Option<CpuPercent>,
    pub cores: heapless::Vec<f64, MAX_CPUS>,
    pub mem: Option<MemInfo>,
    pub load: Option<LoadAvg>,
    pub pressure: [Option<Pressure>; 3],
    pub temperatures: Vec<Option<f64>>,
    pub procs: Option<u64>,
    pub disks: Vec<Option<DiskUsage>>,
}

impl Sampler {
    /// Opens what `opts` asks for. Sources that cannot be opened are left out and named in
    /// the returned problems (pressure and sensors are simply absent on many kernels and are
    /// not problems).
    pub fn open(roots: &Roots, opts: &Options) -> (Sampler, Vec<String>) {
        fn keep<T>(problems: &mut Vec<String>, r: Result<T, String>) -> Option<T> {
            r.map_err(|e| problems.push(e)).ok()
        }
        let mut problems = Vec::new();
        let p = &mut problems;
        let cpu = if opts.cpu { keep(p, CpuReader::open(roots)) } else { None };
        let mem = if opts.mem { keep(p, meminfo(roots)) } else { None };
        let load = if opts.load { keep(p, loadavg(roots)) } else { None };
        let procs = if opts.procs { keep(p, ProcCounter::open(roots)) } else { None };
        let pressure = PRESSURE.map(|r| if opts.pressure { pressure(roots, r).ok() } else { None });
        let sensors = if opts.temperatures { sensors::discover(roots, None) } else { Vec::new() };
        (Sampler { cpu, mem, load, pressure, sensors, procs, disks: opts.disks.clone() }, problems)
    }

    /// A `Sample` with room for this sampler's disks and sensors.
    pub fn new_sample(&self) -> Sample {
        Sample {
            temperatures: vec![None; self.sensors.len()],
            disks: vec![None; self.disks.len()],
            ..Sample::default()
        }
    }

    /// Reads every source into `out`. CPU percent needs two samples; the first leaves it
    /// `None`. Allocates nothing once `out` came from [`new_sample`](Self::new_sample).
    pub fn sample(&mut self, out: &mut Sample) {
        out.cpu = None;
        out.cores.clear();
        if let Some(c) = &mut self.cpu
            && c.sample().is_ok()
        {
            out.cpu = c.percent();
            for i in 0..c.cores() {
                let _ = out.cores.push(c.core_percent(i).map(|p| p.busy).unwrap_or(f64::NAN));
            }
        }
        out.mem = self.mem.as_mut().and_then(|m| m.sample().ok());
        out.load = self.load.as_mut().and_then(|l| l.sample().ok());
        for (slot, src) in out.pressure.iter_mut().zip(self.pressure.iter_mut()) {
            *slot = src.as_mut().and_then(|p| p.sample().ok());
        }
        for (slot, s) in out.temperatures.iter_mut().zip(self.sensors.iter_mut()) {
            *slot = s.read().ok();
        }
        out.procs = self.procs.as_mut().and_then(|p| p.count().ok());
        for (slot, d) in out.disks.iter_mut().zip(&self.disks) {
            *slot = disk_usage(d).ok();
        }
    }

    /// The JSON `runner metrics --json` prints.
    pub fn to_json(&self, s: &Sample) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let num = |v: f64| if v.is_finite() { json!((v * 100.0).round() / 100.0) } else { Value::Null };
        let mut o = Map::new();
        o.insert("cpu_percent".into(), s.cpu.map(|c| num(c.busy)).unwrap_or(Value::Null));
        o.insert("cpu_iowait_percent".into(), s.cpu.map(|c| num(c.iowait)).unwrap_or(Value::Null));
        o.insert("cpu_steal_percent".into(), s.cpu.map(|c| num(c.steal)).unwrap_or(Value::Null));
        o.insert("cpu_cores_percent".into(), Value::Array(s.cores.iter().map(|v| num(*v)).collect()));
        o.insert("mem_used_percent".into(), s.mem.map(|m| num(m.used_percent())).unwrap_or(Value::Null));
        o.insert("mem_total_bytes".into(), json!(s.mem.map(|m| m.total)));
        o.insert("mem_available_bytes".into(), json!(s.mem.map(|m| m.available)));
        o.insert("swap_used_percent".into(), s.mem.map(|m| num(m.swap_used_percent())).unwrap_or(Value::Null));
        o.insert("load1".into(), s.load.map(|l| num(l.load1)).unwrap_or(Value::Null));
        o.insert("load5".into(), s.load.map(|l| num(l.load5)).unwrap_or(Value::Null));
        o.insert("load15".into(), s.load.map(|l| num(l.load15)).unwrap_or(Value::Null));
        o.insert("procs".into(), json!(s.procs));
        o.insert("procs_running".into(), json!(s.load.map(|l| l.running)));
        o.insert("threads".into(), json!(s.load.map(|l| l.total)));
        let disks: Vec<Value> = self
            .disks
            .iter()
            .zip(&s.disks)
            .map(|(p, d)| match d {
                Some(d) => json!({
                    "path": p,
                    "used_percent": num(d.used_percent),
                    "inodes_used_percent": num(d.inodes_used_percent),
                    "total_bytes": d.total_bytes,
                    "used_bytes": d.used_bytes,
                    "avail_bytes": d.avail_bytes,
                }),
                None => json!({"path": p, "used_percent": null, "inodes_used_percent": null}),
            })
            .collect();
        o.insert("disks".into(), Value::Array(disks));
        let temps: Vec<Value> = self
            .sensors
            .iter()
            .zip(&s.temperatures)
            .map(|(sensor, t)| json!({"name": sensor.name, "celsius": t.map(num)}))
            .collect();
        o.insert("temperatures".into(), Value::Array(temps));
        let mut psi = Map::new();
        for (name, p) in PRESSURE.iter().zip(&s.pressure) {
            if let Some(p) = p {
                let line =
                    |x: &Psi| json!({"avg10": x.avg10, "avg60": x.avg60, "avg300": x.avg300, "total_us": x.total_us});
                psi.insert((*name).into(), json!({"some": line(&p.some), "full": p.full.as_ref().map(line)}));
            }
        }
        if !psi.is_empty() {
            o.insert("pressure".into(), Value::Object(psi));
        }
        Value::Object(o)
    }
}
