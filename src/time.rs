//! Time helpers every layer uses: human durations as written in the config (`30s`, `5m`,
//! `1h30m`, `2d`, `500ms`), Unix milliseconds, the local zone and RFC 3339 text. A leaf: it
//! imports nothing of the crate.
//!
//! Owns parsing and printing only; what a duration means (monotonic or wall) is the
//! scheduler's business.

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserialize, Deserializer};

/// A duration read from the config. A bare number is refused: `30` could be seconds or
/// minutes, and a wrong guess on a kill grace or a retention ends the wrong way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {}

/// Milliseconds since the Unix epoch (negative before it): the unit of every time in the
/// state file, locks and spool names.
pub fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The inverse of [`epoch_ms`].
pub fn from_epoch_ms(ms: i64) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + std::time::Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - std::time::Duration::from_millis(ms.unsigned_abs())
    }
}

pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write it like `30s`, `5m`, `1h30m` or `2d`".into());
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "invalid duration `{t}`: expected a number before `{rest}`; write it like `30s`, `5m`, `1h30m` or `2d`"
            ));
        }
        let n: u128 = rest[..digits].parse().map_err(|_| format!("invalid duration `{t}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let ms_per: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "" => {
                return Err(format!(
                    "invalid duration `{t}`: a unit is needed after `{n}` (ms, s, m, h, d or w), for example `{n}s`"
                ));
            }
            other => {
                return Err(format!("invalid duration `{t}`: unknown unit `{other}`; use ms, s, m, h, d or w"));
            }
        };
        total = total.checked_add(n * ms_per).ok_or_else(|| format!("invalid duration `{t}`: too large"))?;
    }
    let ms = u64::try_from(total).map_err(|_| format!("invalid duration `{t}`: too large"))?;
    Ok(Duration::from_millis(ms))
}

/// Prints the shortest exact form, the inverse of [`parse`].
pub fn format(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, per) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= per {
            out.push_str(&format!("{}{unit}", ms / per));
            ms %= per;
        }
    }
    out
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format(self.0))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like `30s`, `5m`, `1h30m` or `2d`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse(v).map(Dur).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Err(E::custom(format!("duration `{v}` has no unit; write `{v}s` for seconds or `{v}m` for minutes")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                self.visit_u64(v.unsigned_abs())
            }
        }
        d.deserialize_any(V)
    }
}

/// The most of a zone file runner reads: the largest in tzdata is under 4 KiB, so anything
/// near this is damage (or `TZ=/dev/zero`), and jiff would keep it for the process's life.
pub const ZONE_FILE_MAX: u64 = 256 << 10;

/// The system's time zone as `jiff::tz::TimeZone::system()` finds it (`TZ` first, then
/// `/etc/localtime`), but every file read non-blocking, checked to be a regular file and
/// read within [`ZONE_FILE_MAX`]: a fifo or `/dev/zero` named by `TZ` must neither hang
/// the daemon nor fill its memory. A zone that cannot be used is UTC, with a warning that
/// names it. Also without jiff's cost when `TZ` is unset: jiff walks all of
/// /usr/share/zoneinfo to name the zone `/etc/localtime` links to, and keeps every zone
/// name it found for the life of the process (about 170 KiB of a daemon's heap). Here the
/// name is the link's target below `zoneinfo/` and the rules are `/etc/localtime`'s own.
pub fn local_zone() -> jiff::tz::TimeZone {
    use jiff::tz::TimeZone;
    const LOCALTIME: &str = "/etc/localtime";
    let tz = std::env::var_os("TZ");
    let Some(tz) = tz else {
        let target = std::fs::read_link(LOCALTIME).ok();
        let name = target
            .as_deref()
            .and_then(|t| t.to_str())
            .and_then(|t| t.rsplit_once("zoneinfo/").map(|(_, n)| n.to_string()))
            .unwrap_or_else(|| "Local".to_string());
        return match zone_file(&name, Path::new(LOCALTIME)) {
            Ok(tz) => tz,
            // What jiff does too: no /etc/localtime is UTC.
            Err(None) => TimeZone::UTC,
            Err(Some(why)) => unusable_zone(&why),
        };
    };
    let Some(text) = tz.to_str() else { return unusable_zone("TZ is not UTF-8") };
    let text = text.strip_prefix(':').unwrap_or(text);
    if text.is_empty() {
        return TimeZone::UTC;
    }
    if text.starts_with('/') {
        return zone_file(text, Path::new(text))
            .unwrap_or_else(|why| unusable_zone(&why.unwrap_or_else(|| format!("TZ={text}: no such file"))));
    }
    if let Ok(tz) = jiff::tz::db().get(text) {
        return tz;
    }
    TimeZone::posix(text)
        .unwrap_or_else(|e| unusable_zone(&format!("TZ={text}: neither a zone name nor a POSIX rule: {e}")))
}

/// A TZif file read as [`local_zone`] says; `Err(None)`: it does not exist. (Read here, not
/// with `fsx::read_bounded`: this module is a leaf and imports nothing of the crate.)
fn zone_file(name: &str, path: &Path) -> Result<jiff::tz::TimeZone, Option<String>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| (e.kind() != std::io::ErrorKind::NotFound).then(|| format!("zone file {shown}: {e}")))?;
    let meta = f.metadata().map_err(|e| Some(format!("zone file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(Some(format!("zone file {shown} is not a regular file")));
    }
    let mut bytes = Vec::new();
    f.take(ZONE_FILE_MAX + 1).read_to_end(&mut bytes).map_err(|e| Some(format!("zone file {shown}: {e}")))?;
    if meta.len() > ZONE_FILE_MAX || bytes.len() as u64 > ZONE_FILE_MAX {
        return Err(Some(format!("zone file {shown} is over {} KiB", ZONE_FILE_MAX >> 10)));
    }
    jiff::tz::TimeZone::tzif(name, &bytes).map_err(|e| Some(format!("zone file {shown}: {e}")))
}

/// UTC, after saying once per process why the configured zone was not used.
fn unusable_zone(why: &str) -> jiff::tz::TimeZone {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        eprintln!("runner: warning: cannot use the local time zone ({why}); using UTC");
    });
    jiff::tz::TimeZone::UTC
}

/// `t` as RFC 3339 in UTC, to the second: `2026-03-29T08:00:00Z`.
pub fn utc_text(t: jiff::Timestamp) -> String {
    let mut s = civil_text(jiff::tz::Offset::UTC.to_datetime(t), false);
    s.push('Z');
    s
}

/// `t` as RFC 3339 with `tz`'s offset at that instant (`2026-03-29T10:00:00+02:00`); with
/// `millis`, milliseconds too (`...T10:00:00.250+02:00`). Written here rather than with
/// jiff's `strftime`, whose format-string interpreter was 13 KiB of the binary for these
/// two layouts.
pub fn offset_text(t: jiff::Timestamp, tz: &jiff::tz::TimeZone, millis: bool) -> String {
    let offset = tz.to_offset(t);
    let mut s = civil_text(offset.to_datetime(t), millis);
    let secs = offset.seconds();
    let abs = secs.unsigned_abs();
    s.push(if secs < 0 { '-' } else { '+' });
    s.push_str(&format!("{:02}:{:02}", abs / 3600, abs / 60 % 60));
    // As `%:z` does: the seconds of a local mean time offset only when there are some.
    if !abs.is_multiple_of(60) {
        s.push_str(&format!(":{:02}", abs % 60));
    }
    s
}

fn civil_text(d: jiff::civil::DateTime, millis: bool) -> String {
    let mut s =
        format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", d.year(), d.month(), d.day(), d.hour(), d.minute(), d.second());
    if millis {
        s.push_str(&format!(".{:03}", d.subsec_nanosecond() / 1_000_000));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same text as jiff's `strftime` gives for the layouts we print, across zones
    /// with negative, positive, half-hour and local-mean-time offsets.
    #[test]
    fn rfc3339_text_matches_strftime() {
        let zones = ["UTC", "Europe/Berlin", "America/St_Johns", "Asia/Kolkata", "Europe/Amsterdam"];
        let mut us: i64 = -2_500_000_000_000_000; // 1890, before standard time in Amsterdam
        while us < 4_000_000_000_000_000 {
            let t = jiff::Timestamp::from_microsecond(us).unwrap();
            assert_eq!(utc_text(t), t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
            for name in zones {
                let tz = jiff::tz::TimeZone::get(name).unwrap();
                let z = t.to_zoned(tz.clone());
                assert_eq!(offset_text(t, &tz, false), z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string());
                assert_eq!(offset_text(t, &tz, true), z.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string());
            }
            us += 7_777_777_777_777; // about 90 days and a fraction of a second
        }
    }

    #[test]
    fn parses_compound_forms() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse("1500ms").unwrap(), Duration::from_millis(1500));
    }

    #[test]
    fn refuses_missing_or_unknown_units() {
        assert!(parse("30").unwrap_err().contains("a unit is needed"));
        assert!(parse("3x").unwrap_err().contains("unknown unit `x`"));
        assert!(parse("").is_err());
        assert!(parse("m").is_err());
    }

    #[test]
    fn format_round_trips() {
        for s in ["0s", "30s", "1h30m", "2d", "1m500ms"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
    #[test]
    fn local_zone_is_the_system_zone() {
        let (ours, jiffs) = (local_zone(), jiff::tz::TimeZone::system());
        for s in [0i64, 1_700_000_000, 1_711_846_800, 1_729_990_800, 4_102_444_800] {
            let t = jiff::Timestamp::from_second(s).unwrap();
            assert_eq!(ours.to_offset(t), jiffs.to_offset(t), "at {t}");
        }
        if let Some(name) = jiffs.iana_name() {
            assert_eq!(ours.iana_name(), Some(name));
        }
    }
}
