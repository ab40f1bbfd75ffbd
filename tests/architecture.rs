//! The workspace stays what ARCHITECTURE.md draws: data flows one way through the modules of
//! `src/`, every file under `src/` and `crates/sys/src/` is named there, `unsafe` lives in
//! `crates/sys` only (each block argued), every other crate root forbids it, and the product's
//! code has no inline assembly, no start that shares the daemon's memory and no destructive
//! memory advice.
//!
//! Read like `../shared/tools/modgraph.py`: the `crate::X` paths of each top-level module
//! outside its test module (`super::` inside `src/X/` is X itself). Each module has a layer;
//! a module may import only modules of a lower layer, so there can be no cycle, and a new
//! module fails here until it is given a layer (and a line in ARCHITECTURE.md).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layers from the top (what people run) down to the leaves. A module imports only from
/// layers below its own.
const LAYERS: &[&[&str]] = &[
    // What people run: argument parsing, dispatch, what is printed.
    &["cli"],
    // The daemon: timers, signals, reload, concurrency.
    &["scheduler"],
    // What every fire does: lock, attempts, whole-run timeouts, records to the sinks.
    &["jobs"],
    // The overall level from plan, state and live values (pure).
    &["health"],
    // Where records go: ring, journald, state file, live values, textfile.
    &["sinks"],
    // Files -> Plan.
    &["config"],
    // One home per job kind: its block, its run, its dry run, its health part.
    &["kinds"],
    // Plumbing the kinds and the daemon share.
    &["process", "metrics", "schedule", "logging", "sd_notify", "pings", "clockwatch", "retry", "state", "syslog"],
    // Containment of runs: cgroups, the subreaper, adopted processes; `--pidfile`.
    &["contain", "pidfile"],
    &["journal", "lock", "users", "proc"],
    // The one record every run produces.
    &["record"],
    // Civil time: zone files (TZ, /etc/localtime) are read bounded and non-blocking by fsx.
    &["time"],
    // Leaves: they import nothing of the crate.
    &["host", "exit", "suggest", "fsx", "heap", "signals"],
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`src/kinds/check/mod.rs` -> `kinds`).
fn module_of(rel: &Path) -> String {
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// Identifiers after `crate::`, including each name of a `crate::{a, b::c}` group.
fn imports(text: &str) -> BTreeSet<String> {
    let text = text.split("#[cfg(test)]").next().unwrap();
    let code: String = text.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let rel = f.strip_prefix(src()).unwrap();
        let m = module_of(rel);
        if m == "main" || m == "lib" {
            continue;
        }
        let deps = imports(&std::fs::read_to_string(f).unwrap());
        g.entry(m.clone()).or_default().extend(deps.into_iter().filter(|d| *d != m));
    }
    let names: BTreeSet<String> = g.keys().cloned().collect();
    for deps in g.values_mut() {
        deps.retain(|d| names.contains(d));
    }
    g
}

fn layer_of(m: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&m))
}

#[test]
fn every_import_points_down_the_flow() {
    let g = graph();
    let mut problems = Vec::new();
    for (m, deps) in &g {
        let Some(lm) = layer_of(m) else {
            problems.push(format!("module `{m}` has no layer: add it to LAYERS here and to ARCHITECTURE.md"));
            continue;
        };
        for d in deps {
            match layer_of(d) {
                Some(ld) if ld > lm => {}
                Some(_) => problems.push(format!("`{m}` imports `{d}`, which is not below it in the flow")),
                None => problems.push(format!("`{m}` imports `{d}`, which has no layer")),
            }
        }
    }
    assert!(problems.is_empty(), "the module graph goes against the flow:\n{}", problems.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    // Strict layering already rules cycles out; this says which modules close one if the
    // layers are ever loosened.
    let g = graph();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|p| *p == m).unwrap();
                return Some(path[start..].iter().map(|s| s.to_string()).chain([m.to_string()]).collect());
            }
            _ => {}
        }
        state.insert(m, 1);
        path.push(m);
        for d in &g[m] {
            if let Some(c) = visit(d, g, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(m, 2);
        None
    }
    for m in g.keys() {
        if let Some(cycle) = visit(m, &g, &mut state, &mut Vec::new()) {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn leaves_import_nothing_of_the_crate() {
    let g = graph();
    for leaf in LAYERS.last().unwrap().iter() {
        let deps = g.get(*leaf).unwrap_or_else(|| panic!("leaf `{leaf}` is missing from src/"));
        assert!(deps.is_empty(), "leaf `{leaf}` imports {deps:?}");
    }
}

#[test]
fn the_reader_is_not_fooled() {
    let text = "use crate::a::B;\nuse crate::{b, c::D};\n// crate::e\nfn f() { crate::g::h(); notcrate::x(); }\n#[cfg(test)]\nuse crate::t;";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "g"]);
}

#[test]
fn architecture_md_names_every_file_under_src() {
    let md = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut missing = Vec::new();
    for f in files {
        let rel = format!("src/{}", f.strip_prefix(src()).unwrap().display());
        if !md.contains(&format!("`{rel}`")) {
            missing.push(rel);
        }
    }
    missing.sort();
    assert!(missing.is_empty(), "ARCHITECTURE.md does not name (as `src/...`): {missing:?}");
}

// ---------------------------------------------------------------------------------------
// The workspace: every unsafe line in crates/sys, none of the tricks that made a start or a
// memory release unsound.

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every product source file: src/ and each crate's src/ under crates/.
fn product_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for e in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = e.unwrap().path().join("src");
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
    }
    files
}

/// The code of a file without its comments (line comments, doc comments) and the text of its
/// string literals, so a word in either never counts as code.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_str {
                if c == '"' && prev != '\\' {
                    in_str = false;
                    out.push('"');
                }
                prev = if prev == '\\' && c == '\\' { ' ' } else { c };
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\'' {
                in_str = true;
            }
            out.push(c);
            prev = c;
        }
        out.push('\n');
    }
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap().display().to_string()
}

#[test]
fn unsafe_code_lives_in_the_system_crate_only() {
    let sys = root().join("crates/sys");
    let mut found = Vec::new();
    for f in product_files().into_iter().filter(|f| !f.starts_with(&sys)) {
        let code = code_only(&std::fs::read_to_string(&f).unwrap());
        for (n, line) in code.lines().enumerate() {
            let words: Vec<&str> = line.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
            if words.contains(&"unsafe") {
                found.push(format!("{}:{}: {}", rel(&f), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "unsafe outside crates/sys:\n{}", found.join("\n"));
}

#[test]
fn every_product_crate_forbids_unsafe_code() {
    let mut roots = vec![root().join("src/lib.rs"), root().join("src/main.rs")];
    for e in std::fs::read_dir(root().join("crates")).unwrap() {
        let dir = e.unwrap().path();
        if dir.file_name().is_some_and(|n| n != "sys") && dir.join("src/lib.rs").exists() {
            roots.push(dir.join("src/lib.rs"));
        }
    }
    for f in roots {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("#![forbid(unsafe_code)]"), "{} does not forbid unsafe code", rel(&f));
    }
}

#[test]
fn every_unsafe_block_of_the_system_crate_says_why_it_is_sound() {
    let mut dir = Vec::new();
    rust_files(&root().join("crates/sys/src"), &mut dir);
    let mut missing = Vec::new();
    for f in dir {
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let code = code_only(line);
            let opens_block = code.contains("unsafe {") || code.contains("unsafe impl");
            if !opens_block {
                continue;
            }
            // The argument is in the comment just above (a few lines up, past attributes and
            // the start of the statement), or the block is inside a function that states its
            // contract (`# Safety`) and the block's own comment names it.
            let above = lines[n.saturating_sub(8)..n].iter().chain(std::iter::once(line));
            if !above.into_iter().any(|l| l.contains("SAFETY")) {
                missing.push(format!("{}:{}: {}", rel(&f), n + 1, line.trim()));
            }
        }
    }
    assert!(missing.is_empty(), "unsafe blocks without a SAFETY argument:\n{}", missing.join("\n"));
}

#[test]
fn no_inline_assembly_no_shared_memory_start_no_destructive_advice() {
    let banned = ["asm!", "global_asm!", "CLONE_VM", "CLONE_VFORK", "MADV_DONTNEED", "MADV_FREE"];
    let mut found = Vec::new();
    for f in product_files() {
        let code = code_only(&std::fs::read_to_string(&f).unwrap());
        for (n, line) in code.lines().enumerate() {
            for b in banned {
                if line.contains(b) {
                    found.push(format!("{}:{}: {b}", rel(&f), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "banned in the product's code:\n{}", found.join("\n"));
}

#[test]
fn the_system_crate_depends_on_nothing_of_the_product() {
    let manifest = std::fs::read_to_string(root().join("crates/sys/Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap_or("");
    for line in deps.lines().filter(|l| !l.trim_start().starts_with('#')) {
        assert!(!line.contains("path ="), "crates/sys depends on a crate of the workspace: {line}");
    }
}

#[test]
fn the_code_reader_skips_comments_and_strings() {
    let text = "let a = 1; // unsafe here\n/// CLONE_VM in a doc\nlet s = \"asm! \\\" unsafe\"; unsafe { x }\n";
    let code = code_only(text);
    assert!(!code.contains("CLONE_VM") && !code.contains("asm!"), "{code}");
    assert_eq!(code.matches("unsafe").count(), 1, "{code}");
}

#[test]
fn architecture_md_names_every_file_of_the_system_crate() {
    let md = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut files = Vec::new();
    rust_files(&root().join("crates/sys/src"), &mut files);
    let missing: Vec<String> = files.iter().map(|f| rel(f)).filter(|r| !md.contains(&format!("`{r}`"))).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md does not name (as `crates/sys/src/...`): {missing:?}");
}

// ---------------------------------------------------------------------------------------
// One home per kind: what differs between kinds is asked of `JobKind` (src/kinds/mod.rs),
// never matched on a concrete kind elsewhere; in src/kinds/mod.rs a kind is named in its
// registry line only.

/// The kinds' registry (`macro_rules! registry` in src/kinds/mod.rs): each line's number in
/// `code` and its variant, read from the registry itself, so a new kind is covered here
/// without a change to this test.
fn registry_lines(code: &str) -> Vec<(usize, String)> {
    let start = code.find("macro_rules! registry {").expect("src/kinds/mod.rs defines `macro_rules! registry`");
    let first = code[..start].lines().count();
    let body = &code[start..];
    let body = &body[..body.find("\n}").expect("the registry macro ends")];
    let lines: Vec<(usize, String)> = body
        .lines()
        .enumerate()
        .map(|(i, l)| (first + i + 1, l.trim()))
        .filter(|(_, l)| l.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && l.contains(") in "))
        .map(|(n, l)| (n, l.chars().take_while(|c| c.is_ascii_alphanumeric()).collect()))
        .collect();
    assert!(lines.len() >= 4, "the registry's lines not found: {lines:?}");
    lines
}

/// The variants of `JobKind`, one per registry line.
fn kind_variants() -> Vec<String> {
    let text = std::fs::read_to_string(src().join("kinds/mod.rs")).unwrap();
    registry_lines(&code_only(&text)).into_iter().map(|(_, v)| v).collect()
}

/// Where `code` names a concrete kind (`JobKind::Check`, `config::JobKind::Command(..)`).
fn concrete_kinds(code: &str, variants: &[String]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for v in variants {
            let path = format!("JobKind::{v}");
            let mut rest = line;
            while let Some(i) = rest.find(&path) {
                let after = rest[i + path.len()..].chars().next();
                if !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    found.push((n + 1, path.clone()));
                }
                rest = &rest[i + path.len()..];
            }
        }
    }
    found
}

#[test]
fn no_concrete_kind_outside_the_kinds() {
    let variants = kind_variants();
    let kinds = src().join("kinds");
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut found = Vec::new();
    for f in files.into_iter().filter(|f| !f.starts_with(&kinds)) {
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests may build a plan's jobs by hand.
        let text = text.split("#[cfg(test)]").next().unwrap();
        for (n, what) in concrete_kinds(&code_only(text), &variants) {
            found.push(format!("{}:{n}: {what}", rel(&f)));
        }
    }
    assert!(
        found.is_empty(),
        "a concrete kind outside src/kinds/ (ask JobKind instead, in src/kinds/mod.rs):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_kind_reader_is_not_fooled() {
    let variants: Vec<String> = ["Check", "Command"].map(String::from).to_vec();
    let code = code_only(
        "if matches!(k, config::JobKind::Check(_)) {}\n// JobKind::Command\nlet s = \"JobKind::Command\";\nJobKind::CheckLike;\n",
    );
    assert_eq!(concrete_kinds(&code, &variants), [(1, "JobKind::Check".to_string())]);
}

/// The lines of `code` naming a kind by its variant (`JobKind::Check`, `Self::Check(..)`, a
/// bare `Check`), but not a type a kind's module defines under the same name
/// (`queue_flush::QueueFlush`): each line with the variant it names.
fn variant_lines(code: &str, variants: &[String]) -> Vec<(usize, String)> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for v in variants {
            let mut at = 0;
            while let Some(i) = line[at..].find(v.as_str()).map(|i| at + i) {
                at = i + v.len();
                let before = &line[..i];
                if before.chars().last().is_some_and(word) || line[at..].chars().next().is_some_and(word) {
                    continue;
                }
                // `module::Type`: the kind's own type, not the variant.
                if let Some(path) = before.strip_suffix("::") {
                    let seg: String = path.chars().rev().take_while(|&c| word(c)).collect();
                    if seg.chars().last().is_some_and(|c| c.is_ascii_lowercase()) {
                        continue;
                    }
                }
                found.push((n + 1, v.clone()));
            }
        }
    }
    found
}

#[test]
fn a_kind_is_named_in_its_registry_line_only() {
    let text = std::fs::read_to_string(src().join("kinds/mod.rs")).unwrap();
    let code = code_only(text.split("#[cfg(test)]").next().unwrap());
    let registry = registry_lines(&code);
    let variants: Vec<String> = registry.iter().map(|(_, v)| v.clone()).collect();
    let elsewhere: Vec<String> = variant_lines(&code, &variants)
        .into_iter()
        .filter(|(n, v)| !registry.contains(&(*n, v.clone())))
        .map(|(n, v)| format!("src/kinds/mod.rs:{n}: {v}"))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "a kind named beside its registry line (adding a kind is its folder and one registry line; \
         ask the kind through KindImpl, or generate the code from the registry):\n{}",
        elsewhere.join("\n")
    );
}

#[test]
fn the_registry_reader_is_not_fooled() {
    let code = code_only(
        "macro_rules! registry {\n    (x) => {\n        Check(Box<check::CheckSpec>) in check { check: u8 };\n        \
         QueueFlush(Box<queue_flush::QueueFlush>) in queue_flush { queue_flush: u8 };\n        \
         A(u8) in a { a: u8 };\n        B(u8) in b { b: u8 };\n    };\n}\n\
         fn queue(&self) -> Option<&queue_flush::QueueFlush> {}\n\
         JobKind::Check(c) => 1, // QueueFlush\nlet s = \"Check\"; CheckSpec; Self::QueueFlush(q);\n",
    );
    let registry = registry_lines(&code);
    assert_eq!(
        registry.iter().map(|(n, v)| (*n, v.as_str())).collect::<Vec<_>>(),
        [(3, "Check"), (4, "QueueFlush"), (5, "A"), (6, "B")]
    );
    let variants: Vec<String> = ["Check", "QueueFlush"].map(String::from).to_vec();
    let named: Vec<(usize, String)> =
        variant_lines(&code, &variants).into_iter().filter(|f| !registry.contains(f)).collect();
    assert_eq!(named, [(10, "Check".to_string()), (11, "QueueFlush".to_string())]);
}

// ---------------------------------------------------------------------------------------
// One reader of /proc/PID: what runner knows of a process (its own included) comes through
// src/proc.rs.

/// Paths to one process's files under /proc named outside src/proc.rs, allowed with why.
const PROC_PID_ELSEWHERE: &[(&str, &str)] = &[
    // Not a process's facts: the kernel's boot id, read through PID 1's root because a
    // container's own /proc/sys may hold another; host is a leaf and imports nothing.
    ("src/host.rs", "/proc/1/root/proc/sys/kernel/random/boot_id"),
];

/// Where a string literal in `text` names a file of one process: `"/proc/<pid>/...`,
/// `"/proc/{pid}/...` (a `format!`), `"/proc/self/...` or `"/proc/thread-self/...`.
fn proc_pid_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("\"/proc/") {
            rest = &rest[i + 1..];
            let after = &rest["/proc/".len()..];
            let per_process = after.starts_with(|c: char| c.is_ascii_digit() || c == '{')
                || after.starts_with("self")
                || after.starts_with("thread-self");
            if per_process {
                let end = rest.find('"').unwrap_or(rest.len());
                found.push((n + 1, rest[..end].to_string()));
            }
        }
    }
    found
}

#[test]
fn only_proc_reads_a_process_from_proc() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut found = Vec::new();
    for f in files.into_iter().filter(|f| !f.ends_with("src/proc.rs")) {
        let text = std::fs::read_to_string(&f).unwrap();
        // Tests may look at their own process directly.
        let text = text.split("#[cfg(test)]").next().unwrap();
        let file = rel(&f);
        for (n, path) in proc_pid_paths(text) {
            if !PROC_PID_ELSEWHERE.iter().any(|(f, p)| *f == file && *p == path) {
                found.push(format!("{file}:{n}: {path}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "/proc/PID read outside src/proc.rs (add a reader there, or an allowed entry here with why):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_proc_reader_is_not_fooled() {
    let text = "read(\"/proc/stat\");\nlet p = format!(\"/proc/{pid}/exe\");\n// \"/proc/self/cgroup\"\nopen(\"/proc/self/task\");\nopen(\"/proc/sys/kernel/hostname\");\n";
    let got: Vec<(usize, String)> = proc_pid_paths(text);
    assert_eq!(got, [(2, "/proc/{pid}/exe".to_string()), (4, "/proc/self/task".to_string())]);
}
