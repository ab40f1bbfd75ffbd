//! Temperatures from sysfs: thermal zones (`class/thermal/thermal_zone*/temp`, named by
//! their `type`) and hwmon chips (`class/hwmon/hwmon*/temp*_input`, named by the chip's
//! `name` and the input's `label`). Discovered once; each sensor's file stays open.

use std::path::Path;

use super::{Error, ProcFile, Roots, parse};

#[derive(Debug)]
pub struct Sensor {
    /// `type` of a thermal zone, or `chip label` (`chip tempN` without a label) for hwmon.
    pub name: String,
    /// The zone type or hwmon chip name alone, so `sensor: coretemp` matches every core.
    pub group: String,
    /// The hwmon label, if any.
    pub label: Option<String>,
    file: ProcFile,
}

impl Sensor {
    pub fn read(&mut self) -> Result<f64, Error> {
        Ok(parse::millidegrees(self.file.read()?)?)
    }

    /// Whether a check's `sensor:` names this one: its full name, its zone type or chip
    /// name, or its label.
    pub fn matches(&self, want: &str) -> bool {
        self.name == want || self.group == want || self.label.as_deref() == Some(want)
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

fn read_trimmed(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Directory entries of `dir` whose names start with `prefix`, sorted by the number after it
/// (thermal_zone2 before thermal_zone10).
fn numbered(dir: &Path, prefix: &str) -> Vec<(u64, std::path::PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Vec<(u64, std::path::PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(prefix)?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// Every sensor under `roots.sys`, or only those `filter` matches.
pub fn discover(roots: &Roots, filter: Option<&str>) -> Vec<Sensor> {
    let mut out = Vec::new();
    for (_, zone) in numbered(&roots.sys.join("class/thermal"), "thermal_zone") {
        let Some(kind) = read_trimmed(&zone.join("type")) else { continue };
        let Ok(file) = ProcFile::open(&zone.join("temp"), 32) else { continue };
        out.push(Sensor { name: kind.clone(), group: kind, label: None, file });
    }
    for (_, chip) in numbered(&roots.sys.join("class/hwmon"), "hwmon") {
        let chip_name = read_trimmed(&chip.join("name"))
            .unwrap_or_else(|| chip.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        let Ok(rd) = std::fs::read_dir(&chip) else { continue };
        let mut inputs: Vec<(u64, String)> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let idx = n.strip_prefix("temp")?.strip_suffix("_input")?.parse().ok()?;
                Some((idx, n))
            })
            .collect();
        inputs.sort();
        for (idx, input) in inputs {
            let label = read_trimmed(&chip.join(format!("temp{idx}_label")));
            let Ok(file) = ProcFile::open(&chip.join(&input), 32) else { continue };
            let name = format!("{chip_name} {}", label.clone().unwrap_or_else(|| format!("temp{idx}")));
            out.push(Sensor { name, group: chip_name.clone(), label, file });
        }
    }
    if let Some(f) = filter {
        out.retain(|s| s.matches(f));
    }
    out
}
