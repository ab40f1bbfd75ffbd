//! The README is what a newcomer reads first: it fits in a few screens, every relative link in
//! it and in docs/ leads to a file (and heading) that exists, its test command is the one CI
//! runs, and its quickstart lines work through the real binary as written.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// README.md and every page under docs/, as paths relative to the checkout.
fn pages() -> Vec<String> {
    let mut v = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("a docs/ directory")
        .map(|e| format!("docs/{}", e.unwrap().file_name().to_string_lossy()))
        .filter(|n| n.ends_with(".md"))
        .collect();
    docs.sort();
    v.extend(docs);
    v
}

/// The lines of a Markdown page outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fence = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fence = !fence;
                return false;
            }
            !fence
        })
        .collect()
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    prose(text).iter().filter(|l| l.starts_with('#')).map(|l| slug(l.trim_start_matches('#'))).collect()
}

/// Every `[text](target)` in the prose of a page, inline code spans left out.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose(text) {
        let mut code = false;
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'`' => code = !code,
                b']' if !code && b.get(i + 1) == Some(&b'(') => {
                    if let Some(end) = line[i + 2..].find(')') {
                        out.push(line[i + 2..i + 2 + end].to_string());
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    out
}

#[test]
fn readme_fits_in_300_lines() {
    let n = read("README.md").lines().count();
    assert!(n <= 300, "README.md has {n} lines; keep it to 300 and move the rest to a page under docs/");
}

#[test]
fn every_relative_link_in_readme_and_docs_resolves() {
    let mut checked = 0;
    for page in pages() {
        let text = read(&page);
        let dir = Path::new(&page).parent().unwrap_or(Path::new("")).to_path_buf();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = link.split_once('#').map_or((link.as_str(), None), |(f, a)| (f, Some(a)));
            let target: PathBuf = if file.is_empty() { PathBuf::from(&page) } else { dir.join(file) };
            let full = Path::new(ROOT).join(&target);
            assert!(full.exists(), "{page}: the link `{link}` leads to {}, which does not exist", target.display());
            if let Some(a) = anchor {
                let t = std::fs::read_to_string(&full).unwrap();
                assert!(
                    anchors(&t).iter().any(|h| h == a),
                    "{page}: the link `{link}` names #{a}, which no heading of {} has",
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} relative links found: is the link scan broken?");
}

#[test]
fn readme_links_every_docs_page() {
    let readme = read("README.md");
    for page in pages().into_iter().skip(1) {
        assert!(readme.contains(&format!("]({page})")), "README.md's list of pages does not link {page}");
    }
}

/// The README's first `sh` block: the daemon line and the test line.
fn setup_block() -> Vec<String> {
    let readme = read("README.md");
    let start = readme.find("```sh\n").expect("a sh block in README.md") + 6;
    let end = start + readme[start..].find("```").unwrap();
    readme[start..end].lines().map(|l| l.split(" #").next().unwrap().trim().to_string()).collect()
}

#[test]
fn readme_test_command_is_what_ci_runs() {
    let block = setup_block();
    assert_eq!(block.len(), 2, "README's set-up block is two commands: {block:?}");
    assert_eq!(block[1], "cargo test");
    let ci = read(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "stage \"cargo test\" cargo test"),
        ".ci/run no longer runs plain `cargo test`, the README's test command"
    );
}

/// The quickstart as written: the daemon line (run by the binary cargo built, from the
/// checkout, with its directories moved into a scratch directory), then the companion line
/// that talks to it, with only the binary's path and the same directories replaced.
#[test]
fn quickstart_companion_line_talks_to_the_daemon() {
    let s = Scratch::new("readme-quickstart");
    let quick = s.path("quickstart");
    let here = |l: &str| l.replace("target/quickstart", quick.to_str().unwrap());
    let daemon_line = here(&setup_block()[0]);
    let args: Vec<&str> = daemon_line.split_once(" -- ").expect("cargo run ... -- run ...").1.split(' ').collect();
    assert_eq!(args[0], "run");
    let log = s.path("daemon.log");
    let mut daemon = std::process::Command::new(BIN)
        .args(&args)
        .current_dir(ROOT)
        .env_remove("RUNNER_CONFIG")
        .env_remove("RUNNER_STATE_DIR")
        .env_remove("RUNNER_RUNTIME_DIR")
        .env_remove("NOTIFY_SOCKET")
        .env("RUNNER_JOURNAL_SOCKET", s.path("no-journal"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    wait_for(Duration::from_secs(30), "the quickstart daemon's pid file", || quick.join("run/runner.pid").exists());

    let readme = read("README.md");
    let companion = readme
        .lines()
        .find(|l| l.starts_with("RUNNER_CONFIG=") && l.ends_with("runner status"))
        .expect("README gives the line that talks to the quickstart daemon");
    let mut words = here(companion).split(' ').map(str::to_string).collect::<Vec<_>>();
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(ROOT).env_clear().env("PATH", "/usr/bin:/bin");
    while words[0].contains('=') {
        let w = words.remove(0);
        let (k, v) = w.split_once('=').unwrap();
        cmd.env(k, v);
    }
    assert!(words[0].ends_with("target/release/runner"), "the companion line runs the release binary: {companion}");
    let out = cmd.args(&words[1..]).output().unwrap();
    let _ = daemon.kill();
    let _ = daemon.wait();
    remove_daemon_cgroups(pid);
    let (o, e) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{companion}\nexit {:?}\n{o}\n{e}", out.status);
    assert!(o.contains(&format!("pid {pid}")), "status does not see the quickstart daemon (pid {pid}):\n{o}\n{e}");
    for job in ["heartbeat", "disk-report", "root-disk"] {
        assert!(o.contains(job), "status lacks the shipped job {job}:\n{o}");
    }
    assert!(e.is_empty(), "status said something on stderr:\n{e}");
}

/// "Your first job": `runner check` prints what the README quotes, and the job the README
/// shows how to add is accepted when added under `jobs:` as shown.
#[test]
fn first_job_walkthrough_matches_the_binary() {
    let readme = read("README.md");
    let section = &readme[readme.find("## Your first job").expect("a first-job section")..];
    let said = section.split('`').find(|w| w.starts_with("...: ok, ")).expect("README quotes check's summary");
    let s = Scratch::new("readme-first-job");
    let text = read("examples/configs/first-job.yaml");
    let c = s.write("first-job.yaml", &text);
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).trim_end().ends_with(&said[3..]), "README says `{said}`; check printed {}", stdout(&o));

    let start = section.find("```yaml\n").expect("the job to add") + 8;
    let block = &section[start..start + section[start..].find("```").unwrap()];
    // The block is indented 3 columns for the list item it sits in; under `jobs:` it is the
    // job's name at 2 columns.
    let job: String = block.lines().map(|l| format!("{}\n", l.strip_prefix("   ").unwrap_or(l).trim_end())).collect();
    let c = s.write("first-job.yaml", &format!("{text}{job}"));
    let o = s.runner(&c).arg("check").output().unwrap();
    assert!(o.status.success(), "{}\n{job}", stderr(&o));
    assert!(stdout(&o).contains(": ok, 4 job(s) (4 enabled) from 1 file(s)"), "{}", stdout(&o));
    let o = s.runner(&c).args(["once", "--dry-run", "nightly"]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}
