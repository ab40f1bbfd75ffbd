//! Power supplies from sysfs (`class/power_supply/*`: `type`, `online`, `capacity`) and the
//! default routes from /proc/net (`route`, `ipv6_route`): what `when:` conditions and the
//! `ac_online` / `battery_percent` check metrics read. Read afresh each time (a supply can
//! appear or vanish: a USB charger plugged in), each file within a small bound.

use std::io::Read;
use std::path::Path;

use super::Roots;

/// What the power supplies say right now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Power {
    /// Some(true) when a supply of type Mains or USB is online, Some(false) when there are
    /// such supplies and none is, None when the box lists none (most boards without a
    /// charger: they run on mains).
    pub ac_online: Option<bool>,
    /// The lowest `capacity` of the batteries, in percent; None without a battery.
    pub battery_percent: Option<f64>,
    /// How many supplies were listed at all.
    pub supplies: usize,
}

/// A small sysfs attribute: at most 64 bytes, trimmed.
fn attr(dir: &Path, name: &str) -> Option<String> {
    let f = std::fs::File::open(dir.join(name)).ok()?;
    let mut s = String::with_capacity(16);
    f.take(64).read_to_string(&mut s).ok()?;
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Reads every supply under `sys/class/power_supply`. An unreadable directory is an error
/// (the caller says so); a missing one is a box without supplies.
pub fn power(roots: &Roots) -> std::io::Result<Power> {
    let dir = roots.sys.join("class/power_supply");
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Power::default()),
        Err(e) => return Err(e),
    };
    let mut p = Power::default();
    // Bounded: a real box lists a handful of supplies.
    for e in rd.filter_map(|e| e.ok()).take(256) {
        let d = e.path();
        let Some(kind) = attr(&d, "type") else { continue };
        p.supplies += 1;
        // USB chargers show as USB, USB_DCP, USB_C, USB_PD... depending on the kernel.
        if kind == "Mains" || kind.starts_with("USB") {
            let online = attr(&d, "online").is_some_and(|v| v != "0");
            p.ac_online = Some(p.ac_online.unwrap_or(false) || online);
        } else if kind == "Battery"
            && let Some(c) = attr(&d, "capacity").and_then(|c| c.parse::<f64>().ok())
        {
            p.battery_percent = Some(p.battery_percent.map_or(c, |b: f64| b.min(c)));
        }
    }
    Ok(p)
}

/// The interface of a default route that is up (IPv4 first, then IPv6), None without one.
/// Loopback and reject (unreachable) routes do not count: the kernel lists an IPv6
/// "unreachable" default on `lo` on many boxes without any network.
pub fn default_route(roots: &Roots) -> std::io::Result<Option<String>> {
    let read = |name: &str| -> std::io::Result<String> {
        let f = std::fs::File::open(roots.proc.join("net").join(name))?;
        let mut s = String::new();
        f.take(1 << 20).read_to_string(&mut s)?;
        Ok(s)
    };
    let v4 = read("route");
    if let Ok(text) = &v4
        && let Some(dev) = default_v4(text)
    {
        return Ok(Some(dev));
    }
    match read("ipv6_route") {
        Ok(text) => Ok(default_v6(&text)),
        // A kernel without IPv6: the IPv4 table alone decides.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => v4.map(|_| None),
        Err(e) => v4.map(|_| None).or(Err(e)),
    }
}

const RTF_UP: u32 = 0x1;
const RTF_REJECT: u32 = 0x200;

/// `/proc/net/route`: `Iface Destination Gateway Flags ... Mask ...`, hex fields.
pub fn default_v4(text: &str) -> Option<String> {
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
        let ok = f[1] == "00000000" && *f.get(7)? == "00000000" && flags & RTF_UP != 0 && flags & RTF_REJECT == 0;
        (ok && f[0] != "lo").then(|| f[0].to_string())
    })
}

/// `/proc/net/ipv6_route`: `dest plen src plen next_hop metric refcnt use flags iface`.
pub fn default_v6(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let flags = u32::from_str_radix(f.get(8)?, 16).ok()?;
        let dev = *f.get(9)?;
        let ok = f[0].bytes().all(|b| b == b'0') && f[1] == "00" && flags & RTF_UP != 0 && flags & RTF_REJECT == 0;
        (ok && dev != "lo").then(|| dev.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routes_skip_loopback_and_reject() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(default_v4(v4), None);
        let v4 = format!("{v4}eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n");
        assert_eq!(default_v4(&v4).as_deref(), Some("eth0"));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert_eq!(default_v6(v6), None);
        let v6 = format!(
            "{v6}00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00450003    wlan0\n"
        );
        assert_eq!(default_v6(&v6).as_deref(), Some("wlan0"));
    }
}
