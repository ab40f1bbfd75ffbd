//! The man pages `examples/generate.rs` writes for the packages: each renders without a
//! warning (`groff -ww`, and `man -l`), names no page that is not made, gives subcommand
//! synopses as people type them, lists the global flags, and keeps the exit-code list one
//! code per line; `supervisor.yaml(5)` has every key the parser accepts.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the generator wrote for this test.
fn generate(s: &Scratch) -> PathBuf {
    generate_packaging_files(s).join("man")
}

fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn every_page_renders_without_warnings() {
    if !have("groff") || !have("man") {
        skip_missing("groff and man (.ci/run installs groff-base and man-db)");
        return;
    }
    let s = Scratch::new("man-render");
    let dir = generate(&s);
    let all = pages(&dir);
    assert!(all.len() >= 13, "{all:?}");
    assert!(all.iter().any(|p| p.ends_with("supervisor.yaml.5")), "{all:?}");
    for p in &all {
        let o = Command::new("groff").args(["-ww", "-man", "-Tutf8", "-z"]).arg(p).output().unwrap();
        assert!(o.status.success() && o.stderr.is_empty(), "groff -ww {}: {}", p.display(), stderr(&o));
        let o = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(p)
            .env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("LC_ALL", "C.UTF-8")
            .output()
            .unwrap();
        assert!(o.status.success(), "man -l {}: {}", p.display(), stderr(&o));
        assert_eq!(stderr(&o), "", "man -l {} warned", p.display());
        assert!(stdout(&o).contains("NAME"), "{}", stdout(&o));
    }
}

#[test]
fn pages_name_only_made_pages_and_read_as_people_type() {
    let s = Scratch::new("man-text");
    let dir = generate(&s);
    let made: Vec<String> =
        pages(&dir).iter().map(|p| p.file_stem().unwrap().to_string_lossy().replace('-', "\\-")).collect();
    for p in pages(&dir) {
        let text = std::fs::read_to_string(&p).unwrap();
        // Every `runner...(1)` a page points at is a page that is made.
        for (i, _) in text.match_indices("(1)") {
            let start = text[..i].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '\\')).unwrap() + 1;
            let name = text[start..i].trim_start_matches("\\fB").trim_end_matches("\\fR");
            let ours = name.starts_with("runner");
            assert!(!ours || made.iter().any(|m| m == name), "{} points at {name}(1), which is not made", p.display());
        }
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        if let Some(sub) = stem.strip_prefix("runner-") {
            // roff escapes the hyphen of `notify-test`.
            let roffed = sub.replace('-', "\\-");
            assert!(text.contains(&format!("\\fBrunner {roffed}\\fR")), "{stem}: synopsis should read `runner {sub}`");
            // Global flags are listed on every page of a command that takes them.
            if sub == "calendar" {
                assert!(!text.contains("state\\-dir"), "calendar reads no state dir");
            } else {
                assert!(text.contains(".SH \"GLOBAL OPTIONS\"") || text.contains(".SH GLOBAL OPTIONS"), "{stem}");
                assert!(text.contains("\\-\\-state\\-dir"), "{stem}");
            }
        }
    }
    let top = std::fs::read_to_string(dir.join("runner.1")).unwrap();
    assert!(!top.contains("runner\\-help"), "runner.1 points at a runner-help page that is not made");
    // The exit codes stay one per line (a no-fill block), not run together.
    let block = &top[top.find(".SH \"EXIT STATUS\"").or_else(|| top.find(".SH EXIT STATUS")).expect("EXIT STATUS")..];
    assert!(block.contains(".nf\n"), "{block}");
    assert!(block.contains("\n  75       the job is already running"), "{block}");
}

/// Every key the parser accepts (the field lists of its serde structs: `config/raw.rs` and each
/// kind's `Block`) is in `supervisor.yaml(5)`, in bold, under its section's heading, with
/// its default and an example.
#[test]
fn the_config_page_has_every_key_the_parser_accepts() {
    let s = Scratch::new("man-config");
    let page = std::fs::read_to_string(generate(&s).join("supervisor.yaml.5")).unwrap();
    let headings = [
        ("top", "TOP LEVEL"),
        ("log", "LOG"),
        ("export", "EXPORT"),
        ("job", "JOBS"),
        ("defaults", "DEFAULTS"),
        ("retries", "RETRIES"),
        ("check", "CHECK"),
        ("queue_flush", "QUEUE_FLUSH"),
        ("orphan_sweep", "ORPHAN_SWEEP"),
        ("match", "MATCH"),
        ("when", "WHEN"),
        ("free_space", "FREE_SPACE"),
        ("notify", "NOTIFY"),
    ];
    let sections = runner::config::raw::sections();
    assert_eq!(sections.len(), headings.len(), "a section of the parser without a heading here");
    let mut keys = 0;
    for (section, fields) in sections {
        let heading = headings.iter().find(|h| h.0 == section).unwrap_or_else(|| panic!("section {section}")).1;
        let start = page.find(&format!(".SH {heading}\n")).unwrap_or_else(|| panic!("no {heading} in:\n{page}"));
        let end = page[start + 4..].find(".SH ").map_or(page.len(), |i| start + 4 + i);
        let text = &page[start..end];
        for f in fields {
            keys += 1;
            let bold = format!("\\fB{f}\\fR");
            let listed = format!(", {f}");
            assert!(
                text.contains(&bold)
                    || (section == "defaults" && (text.contains(&listed) || text.contains(&format!("\\fB{f},")))),
                "`{f}` ({section}) is not in the page's {heading} section:\n{text}"
            );
            if section != "defaults" {
                let entry = &text[text.find(&bold).unwrap()..];
                let entry = &entry[..entry[1..].find(".TP").map_or(entry.len(), |i| i + 1)];
                assert!(
                    (entry.contains("(default: ") || entry.contains("(required)"))
                        && !entry.contains("(default: required)")
                        && entry.contains("Example: "),
                    "{entry}"
                );
            }
        }
    }
    assert!(keys > 90, "{keys} keys");
    // `when:` has its example: a solar-powered uploader.
    let when = &page[page.find(".SH WHEN\n").unwrap()..];
    assert!(
        when.contains("For example, upload when on mains power") && when.contains("      battery_min: 40"),
        "{when}"
    );
}
