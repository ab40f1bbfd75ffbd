//! Records and the daemon's own events sent to a syslog daemon over its local datagram socket
//! (`/dev/log`), for boxes without journald: BusyBox `syslogd`, OpenWrt's `logd`, rsyslog,
//! syslog-ng. `logread` or `/var/log/messages` then shows every run.
//!
//! Owns the two wire formats (RFC 3164, what glibc's `syslog(3)` sends, by default; RFC 5424
//! with the record's fields as structured data), facilities and the decision whether syslog
//! is used at all (`log: syslog: auto|on|off`). The severity is the journald priority of
//! the record (`journal::priority`). It must not block: the socket is non-blocking, and a line
//! the daemon cannot take right now (its buffer full, or no daemon at the path) is dropped
//! and counted, never waited for; the ring keeps every record anyway.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::record::{Record, RecordKind};

/// Where syslog daemons listen (BusyBox syslogd always does; so do logd and rsyslog).
pub const DEFAULT_SOCKET: &str = "/dev/log";
/// Outranks `log: syslog_socket:`; the test harness points it at a missing path.
pub const SOCKET_ENV: &str = "RUNNER_SYSLOG_SOCKET";
/// The tag (RFC 3164) and APP-NAME (RFC 5424).
pub const TAG: &str = "runner";
/// The SD-ID of the structured data: a private name under enterprise number 32473, the one
/// RFC 5612 sets aside for examples and documentation (runner has no number of its own).
pub const SD_ID: &str = "runner@32473";
/// Longest line sent: RFC 3164's limit is 1024 bytes; RFC 5424 receivers should take 2048.
/// A longer message (a refused reload's list of errors) is cut there, on a character boundary.
const MAX_3164: usize = 1024;
const MAX_5424: usize = 2048;

/// `log: syslog:`: whether records go to syslog.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// When journald's socket is not there (a box without systemd).
    Auto,
    /// Always, beside journald if it is there too.
    On,
    Off,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "auto" => Some(Mode::Auto),
            "on" | "true" | "yes" => Some(Mode::On),
            "off" | "false" | "no" => Some(Mode::Off),
            _ => None,
        }
    }
}

/// `log: syslog_format:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Rfc3164,
    Rfc5424,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "rfc3164" => Some(Format::Rfc3164),
            "rfc5424" => Some(Format::Rfc5424),
            _ => None,
        }
    }
}

/// The facilities by name and number (syslog(3), RFC 5424 section 6.2.1).
pub const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

pub fn facility(name: &str) -> Option<u8> {
    FACILITIES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// `log: syslog*`, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub mode: Mode,
    pub socket: PathBuf,
    pub format: Format,
    /// The facility's number (`daemon`, 3, by default).
    pub facility: u8,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { mode: Mode::Auto, socket: PathBuf::from(DEFAULT_SOCKET), format: Format::Rfc3164, facility: 3 }
    }
}

impl Settings {
    /// Whether records go to syslog: `on`, or `auto` when nothing listens at journald's
    /// socket path (asked once, when the sinks are made: at start and for `runner once`).
    pub fn wanted(&self, journal_socket: &Path) -> bool {
        match self.mode {
            Mode::On => true,
            Mode::Off => false,
            Mode::Auto => !std::fs::metadata(journal_socket).is_ok_and(|m| m.file_type().is_socket()),
        }
    }
}

/// What a line is stamped with: the local time (RFC 3164 has no zone) and this host.
pub struct Stamp<'a> {
    pub now: &'a jiff::Zoned,
    pub hostname: &'a str,
    pub pid: u32,
}

/// Appends `text` with each control character (a newline in a refused reload's errors) made
/// a space: a syslog line is one line, and BusyBox syslogd writes what it gets.
fn push_text(buf: &mut Vec<u8>, text: &str) {
    buf.extend(text.bytes().map(|b| if b.is_ascii_control() { b' ' } else { b }));
}

/// The message of a record: its summary (job, outcome, exit status, duration), then its run
/// id, which `runner logs --json` shows as `seq`.
fn push_message(buf: &mut Vec<u8>, r: &Record, run_id: u64) {
    push_text(buf, &r.summary());
    if r.kind != RecordKind::Daemon && run_id != 0 {
        let _ = write!(buf, " run_id={run_id}");
    }
}

/// One RFC 5424 SD-PARAM (`name="value"`), with `"`, `\` and `]` escaped as section 6.3.3 says.
fn sd_param(buf: &mut Vec<u8>, name: &str, value: &str) {
    let _ = write!(buf, " {name}=\"");
    for b in value.bytes() {
        if matches!(b, b'"' | b'\\' | b']') {
            buf.push(b'\\');
        }
        buf.push(if b.is_ascii_control() { b' ' } else { b });
    }
    buf.push(b'"');
}

/// The structured data of a record: the fields journald gets as `RUNNER_*`.
fn push_structured(buf: &mut Vec<u8>, r: &Record, run_id: u64) {
    buf.push(b'[');
    buf.extend_from_slice(SD_ID.as_bytes());
    if r.kind != RecordKind::Daemon {
        sd_param(buf, "job", &r.job);
        sd_param(buf, "job_kind", r.job_kind.as_str());
    }
    sd_param(buf, "kind", r.kind.as_str());
    sd_param(buf, "outcome", r.outcome.as_str());
    if r.kind != RecordKind::Daemon {
        sd_param(buf, "trigger", r.trigger.as_str());
        sd_param(buf, "attempt", &r.attempt.to_string());
    }
    match (r.exit_code, r.signal) {
        (Some(c), _) => {
            sd_param(buf, "exit_code", "exited");
            sd_param(buf, "exit_status", &c.to_string());
        }
        (None, Some(s)) => {
            sd_param(buf, "exit_code", "killed");
            sd_param(buf, "exit_status", &s.to_string());
        }
        (None, None) => {}
    }
    sd_param(buf, "duration_ms", &r.duration.as_millis().to_string());
    if run_id != 0 {
        sd_param(buf, "run_id", &run_id.to_string());
    }
    if let Some(pid) = r.pid {
        sd_param(buf, "pid", &pid.to_string());
    }
    if let Some(v) = r.value {
        sd_param(buf, "value", &v.to_string());
    }
    if let Some(l) = &r.level {
        sd_param(buf, "level", l);
    }
    buf.push(b']');
}

/// The record as one syslog line, in `buf` (cleared first).
pub fn encode(buf: &mut Vec<u8>, format: Format, facility: u8, stamp: &Stamp, r: &Record, run_id: u64) {
    buf.clear();
    let pri = u16::from(facility) * 8 + u16::from(crate::journal::priority(r));
    let max = match format {
        Format::Rfc3164 => {
            // As glibc's syslog(3) sends it to /dev/log: no hostname, the daemon adds its own.
            let _ = write!(buf, "<{pri}>{} {TAG}[{}]: ", stamp.now.strftime("%b %e %H:%M:%S"), stamp.pid);
            push_message(buf, r, run_id);
            MAX_3164
        }
        Format::Rfc5424 => {
            let msgid = r.kind.as_str();
            let _ = write!(
                buf,
                "<{pri}>1 {} {} {TAG} {} {msgid} ",
                stamp.now.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z"),
                stamp.hostname,
                stamp.pid
            );
            push_structured(buf, r, run_id);
            buf.push(b' ');
            // The run id is in the structured data.
            push_text(buf, &r.summary());
            MAX_5424
        }
    };
    if buf.len() > max {
        let mut cut = max;
        // Never in the middle of a UTF-8 sequence.
        while cut > 0 && buf[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        buf.truncate(cut);
    }
}

/// This host's name as RFC 5424's HOSTNAME wants it: printable ASCII, `-` when unknown.
fn hostname() -> String {
    let name = crate::fsx::read_kernel(Path::new("/proc/sys/kernel/hostname"), 72).unwrap_or_default();
    let name: String = name.trim().chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    if name.is_empty() { "-".into() } else { name }
}

/// The local zone of the timestamps: /etc/localtime read directly unless `TZ` is set (jiff's
/// system look-up also lists the zoneinfo directory to name the zone: about 120 system calls
/// more for a `runner once`), else as jiff finds it, else UTC.
fn local_zone() -> jiff::tz::TimeZone {
    if std::env::var_os("TZ").is_none()
        && let Ok(bytes) = read_localtime()
        && let Ok(tz) = jiff::tz::TimeZone::tzif("Local", &bytes)
    {
        return tz;
    }
    jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC)
}

/// /etc/localtime (a link into /usr/share/zoneinfo, as a rule), at most 256 KiB.
fn read_localtime() -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open("/etc/localtime")?.take(256 << 10).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A connection to one syslog socket. Cheap to keep; the socket is made on first use.
#[derive(Debug)]
pub struct Syslog {
    path: PathBuf,
    format: Format,
    facility: u8,
    /// Said when sending fails at warn level (`syslog: on`), else at debug level.
    asked_for: bool,
    hostname: String,
    /// The local zone, looked up once here: on the writer thread's small stack, jiff's
    /// first look-up of the system zone overflowed it (debug build).
    zone: jiff::tz::TimeZone,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sock: Option<UnixDatagram>,
    buf: Vec<u8>,
    /// Lines the daemon could not take, since start.
    dropped: u64,
    /// Lines it took.
    sent: u64,
    /// The last send failed: said once, until one succeeds again.
    failing: bool,
}

impl Syslog {
    pub fn new(s: &Settings) -> Syslog {
        Syslog {
            path: s.socket.clone(),
            format: s.format,
            facility: s.facility,
            asked_for: s.mode == Mode::On,
            hostname: if s.format == Format::Rfc5424 { hostname() } else { String::new() },
            zone: local_zone(),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines dropped since start (a full or missing socket).
    #[cfg(test)]
    pub fn dropped(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).dropped
    }

    /// The drops worth a word in the daemon's last record: with `syslog: on`, or once a
    /// syslog daemon took a line. `auto` on a box with neither journald nor a syslog daemon
    /// has nothing to report (as the journald sink without journald).
    pub fn drops_to_report(&self) -> Option<u64> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        (g.dropped > 0 && (self.asked_for || g.sent > 0)).then_some(g.dropped)
    }

    /// Sends one record; true if the socket took it.
    pub fn record(&self, r: &Record, run_id: u64) -> bool {
        let now = jiff::Timestamp::now().to_zoned(self.zone.clone());
        let stamp = Stamp { now: &now, hostname: &self.hostname, pid: crate::host::pid() };
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *g;
        let mut buf = std::mem::take(&mut inner.buf);
        encode(&mut buf, self.format, self.facility, &stamp, r, run_id);
        let sent = self.send_locked(inner, &buf);
        inner.buf = buf;
        sent
    }

    fn send_locked(&self, inner: &mut Inner, line: &[u8]) -> bool {
        if inner.sock.is_none() {
            match UnixDatagram::unbound().and_then(|s| s.set_nonblocking(true).map(|()| s)) {
                Ok(s) => inner.sock = Some(s),
                Err(_) => {
                    inner.dropped += 1;
                    return false;
                }
            }
        }
        let sock = inner.sock.as_ref().expect("set just above");
        match sock.send_to(line, &self.path) {
            Ok(_) => {
                inner.sent += 1;
                if inner.failing {
                    inner.failing = false;
                    log::info!(
                        "syslog at {} takes records again ({} dropped so far)",
                        self.path.display(),
                        inner.dropped
                    );
                }
                true
            }
            Err(e) => {
                inner.dropped += 1;
                if !inner.failing {
                    inner.failing = true;
                    let m = format!(
                        "syslog at {} does not take records ({e}); they are dropped and counted, the ring keeps them",
                        self.path.display()
                    );
                    if self.asked_for { log::warn!("{m}") } else { log::debug!("{m}") }
                }
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Kind, Outcome, Trigger};

    fn at(s: &str) -> jiff::Zoned {
        s.parse().unwrap()
    }

    fn failed_run() -> Record {
        let mut r = Record::skipped("backup", Kind::Command, Trigger::Schedule, String::new());
        r.kind = RecordKind::Run;
        r.outcome = Outcome::Failure;
        r.exit_code = Some(3);
        r.duration = std::time::Duration::from_millis(1234);
        r
    }

    #[test]
    fn rfc3164_is_what_glibc_sends() {
        let now = at("2026-03-05T07:08:09.5+01:00[Europe/Berlin]");
        let stamp = Stamp { now: &now, hostname: "gw1", pid: 42 };
        let mut b = Vec::new();
        encode(&mut b, Format::Rfc3164, 3, &stamp, &failed_run(), 17);
        let line = String::from_utf8(b).unwrap();
        // daemon (3) * 8 + err (3) = 27; the day of the month space-padded.
        assert!(line.starts_with("<27>Mar  5 07:08:09 runner[42]: job backup failure"), "{line}");
        assert!(line.contains("after 1234 ms"), "{line}");
        assert!(line.ends_with(" run_id=17"), "{line}");
    }

    #[test]
    fn rfc5424_carries_structured_data() {
        let now = at("2026-03-05T07:08:09.5+01:00[Europe/Berlin]");
        let stamp = Stamp { now: &now, hostname: "gw1", pid: 42 };
        let mut b = Vec::new();
        let mut r = failed_run();
        r.job = "a\"b]c\\".into();
        r.attempt = 1;
        encode(&mut b, Format::Rfc5424, 16, &stamp, &r, 17);
        let line = String::from_utf8(b).unwrap();
        assert!(line.starts_with("<131>1 2026-03-05T07:08:09.500000+01:00 gw1 runner 42 run [runner@32473 "), "{line}");
        assert!(line.contains(r#" job="a\"b\]c\\""#), "{line}");
        let sd = r#" outcome="failure" trigger="schedule" attempt="1" exit_code="exited" exit_status="3" duration_ms="1234" run_id="17"] job "#;
        assert!(line.contains(sd), "{line}");
        assert!(line.ends_with("failure (exit 3) after 1234 ms"), "{line}");
    }

    #[test]
    fn one_line_within_the_limit() {
        let now = at("2026-03-05T07:08:09+00:00[UTC]");
        let stamp = Stamp { now: &now, hostname: "h", pid: 1 };
        let r = Record::daemon(Outcome::Failure, format!("reload refused:\n{}", "é".repeat(2000)));
        let mut b = Vec::new();
        encode(&mut b, Format::Rfc3164, 3, &stamp, &r, 0);
        assert!(b.len() <= MAX_3164);
        let line = String::from_utf8(b).expect("cut on a character boundary");
        assert!(line.contains("reload refused: é"), "{line}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn a_full_or_missing_socket_drops_and_counts_without_blocking() {
        let dir = std::env::temp_dir().join(format!("runner-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let s = Settings { mode: Mode::On, socket: path.clone(), ..Settings::default() };
        let sys = Syslog::new(&s);
        assert!(!sys.record(&failed_run(), 1), "nothing listens yet");
        assert_eq!(sys.dropped(), 1);
        // A daemon that never reads: its queue fills, and each send after that is a drop,
        // returned at once (a blocking send would hang this test).
        let reader = UnixDatagram::bind(&path).unwrap();
        let mut taken = 0;
        for _ in 0..10_000 {
            if sys.record(&failed_run(), 1) {
                taken += 1;
            }
        }
        assert!(taken > 0 && taken < 10_000, "taken {taken}");
        assert_eq!(sys.dropped(), 1 + 10_000 - taken);
        assert_eq!(sys.drops_to_report(), Some(sys.dropped()));
        // `auto` where no syslog daemon ever listened: counted, nothing to report.
        let auto = Syslog::new(&Settings { socket: dir.join("none"), ..Settings::default() });
        assert!(!auto.record(&failed_run(), 1));
        assert_eq!((auto.dropped(), auto.drops_to_report()), (1, None));
        let mut got = [0u8; 2048];
        let n = reader.recv(&mut got).unwrap();
        assert!(got[..n].starts_with(b"<27>"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn auto_means_no_journald_socket() {
        let s = Settings::default();
        assert!(s.wanted(Path::new("/nonexistent/journal/socket")));
        assert!(!Settings { mode: Mode::Off, ..s.clone() }.wanted(Path::new("/nonexistent")));
        assert!(Settings { mode: Mode::On, ..s }.wanted(Path::new("/")));
    }
}
