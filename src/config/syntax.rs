//! YAML syntax errors said where the problem starts, in words: libyaml notices an unclosed
//! quote at the end of the file and a broken indentation a few columns on, and says "found
//! character that cannot start any token" for a tab. Each is found again here in the text,
//! and reported at the opening quote, at the line that broke the indentation, or at the tab.
//! Also serde's type names (`expected struct Block`, `expected u32`) in words, with an example.

use super::source::Outline;

/// A syntax error found again in `text`: line, column and message (the job is added by the
/// caller); None when the error is none of these, and libyaml's own words stand.
pub(super) fn locate(text: &str, outline: &Outline, msg: &str, line: usize) -> Option<(usize, usize, String)> {
    let job = |l: usize| outline.job_at_line(l).map(|j| format!("job `{j}`: ")).unwrap_or_default();
    if msg.contains("cannot start any token") || msg.contains("tab character") {
        let (l, c) = first_tab(text, line)?;
        let m =
            "a tab; YAML indents with spaces only: replace the tab with spaces (as many as the lines around it use)";
        return Some((l, c, format!("{}{m}", job(l))));
    }
    if msg.contains("quoted scalar") {
        let (l, c, q) = unclosed_quote(text)?;
        let m = format!("the {q} opened here is never closed: close it on this line (`{q}...{q}`)");
        return Some((l, c, format!("{}{m}", job(l))));
    }
    if ["did not find expected key", "mapping values are not allowed", "expected <block end>", "block mapping"]
        .iter()
        .any(|s| msg.contains(s))
    {
        let (l, indent, above) = broken_indent(text, line)?;
        let key = text.lines().nth(l - 1).unwrap_or_default().trim();
        let key = key.split(':').next().unwrap_or(key);
        let levels: Vec<String> = above.iter().map(|(k, i)| format!("`{k}:` ({i})")).collect();
        let m = format!(
            "`{key}` is indented {indent} space(s), which lines it up with no key above it; indent it as one of {}",
            levels.join(", ")
        );
        return Some((l, indent + 1, format!("{}{m}", job(l.saturating_sub(1)))));
    }
    None
}

/// The first tab in a line's indentation (or, failing that, anywhere) up to `line`.
fn first_tab(text: &str, line: usize) -> Option<(usize, usize)> {
    let upto = if line == 0 { usize::MAX } else { line };
    let lines = || text.lines().enumerate().take(upto);
    let in_indent = lines().find_map(|(i, l)| {
        let lead = l.len() - l.trim_start_matches([' ', '\t']).len();
        l[..lead].find('\t').map(|c| (i + 1, c + 1))
    });
    in_indent.or_else(|| lines().find_map(|(i, l)| l.find('\t').map(|c| (i + 1, c + 1))))
}

/// The opening quote (line, column, the quote) of a quoted scalar still open at the end of
/// the text. Comments and quotes inside plain words (`it's`) are left alone.
fn unclosed_quote(text: &str) -> Option<(usize, usize, char)> {
    let mut open: Option<(usize, usize, char)> = None;
    for (i, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut c = 0;
        while c < chars.len() {
            let ch = chars[c];
            match open {
                Some((_, _, '"')) if ch == '\\' => c += 1,
                Some((_, _, q)) if ch == q => {
                    if q == '\'' && chars.get(c + 1) == Some(&'\'') {
                        c += 1;
                    } else {
                        open = None;
                    }
                }
                Some(_) => {}
                None if ch == '#' && (c == 0 || chars[c - 1] == ' ') => break,
                None if (ch == '"' || ch == '\'')
                    && (c == 0 || matches!(chars[c - 1], ' ' | '[' | '{' | ',' | ':' | '-')) =>
                {
                    open = Some((i + 1, c + 1, ch));
                }
                None => {}
            }
            c += 1;
        }
    }
    open
}

/// Keys with their indentation.
type Levels = Vec<(String, usize)>;

/// The first line, up to `line`, whose indentation lines it up with none of the mappings it
/// could belong to: its line, its indentation, and the last key of each of those mappings
/// with its indentation (innermost first).
fn broken_indent(text: &str, line: usize) -> Option<(usize, usize, Levels)> {
    // The open mappings: the indentation of their keys and the last key seen in each.
    let mut levels: Vec<(usize, String)> = vec![(0, String::new())];
    let mut opens = false;
    let mut block_scalar: Option<usize> = None;
    for (i, l) in text.lines().enumerate().take(if line == 0 { usize::MAX } else { line }) {
        let body = l.trim_start_matches(' ');
        let indent = l.len() - body.len();
        if body.is_empty() || body.starts_with('#') || body.starts_with('\t') {
            continue;
        }
        match block_scalar {
            Some(b) if indent > b => continue,
            _ => block_scalar = None,
        }
        let top = levels.last().map_or(0, |(t, _)| *t);
        if opens && indent > top {
            levels.push((indent, String::new()));
        } else if let Some(at) = levels.iter().rposition(|(t, _)| *t == indent) {
            levels.truncate(at + 1);
        } else {
            let above = levels.iter().rev().filter(|(_, k)| !k.is_empty()).map(|(t, k)| (k.clone(), *t)).collect();
            return Some((i + 1, indent, above));
        }
        opens = false;
        // A sequence item's own keys line up two columns in (`- name: x` then `  path: y`).
        if body.starts_with("- ") && key_of(l).is_some() {
            levels.push((indent + 2, String::new()));
        }
        if let Some(name) = key_of(l) {
            let value = body.split_once(':').map_or("", |(_, v)| v.split(" #").next().unwrap_or(v).trim());
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar = Some(indent);
            }
            opens = value.is_empty();
            if let Some(last) = levels.last_mut() {
                last.1 = name;
            }
        }
    }
    None
}

/// The key a line starts with (`  run: x` gives `run`), if it is a `key:` line.
fn key_of(line: &str) -> Option<String> {
    let body = line.trim_start_matches([' ', '-']).trim_start();
    let (k, rest) = body.split_once(':')?;
    let simple = !k.is_empty() && !k.contains(['"', '\'', ' ', '{', '[']);
    (simple && (rest.is_empty() || rest.starts_with(' '))).then(|| k.to_string())
}

/// serde's "invalid type: string \"disk\", expected struct Block" for the value of `key`, in
/// words with an example; None when `msg` names no type.
pub(super) fn expected_in_words(msg: &str, key: Option<&str>) -> Option<String> {
    let rest = msg.strip_prefix("invalid type: ")?;
    let (found, expected) = rest.split_once(", expected ")?;
    let words = match expected.trim() {
        "u8" | "u16" | "u32" | "u64" | "usize" | "i32" | "i64" => "a whole number, for example `3`".to_string(),
        "f32" | "f64" => "a number, for example `85` or `92.5`".to_string(),
        "a boolean" | "bool" => "`true` or `false`".to_string(),
        "a string" | "a borrowed string" => "text, for example `\"echo hi\"`".to_string(),
        "a sequence" => "a list, for example `[\"/bin/echo\", \"hi\"]`".to_string(),
        e if e.starts_with("struct ") || e.starts_with("a map") || e == "map" => block_example(key),
        _ => return None,
    };
    let what = key.map(|k| format!("`{k}:` takes ")).unwrap_or_else(|| "expected ".to_string());
    Some(format!("{what}{words}; found {found}"))
}

fn block_example(key: Option<&str>) -> String {
    let example = match key {
        Some("check") => {
            "`check: {metric: disk_used_percent, path: /}` (or `metric:` and `path:` on lines of their own, indented under `check:`)"
        }
        Some("retries") | Some("item_retries") => "`retries: {attempts: 3, backoff: 30s}`",
        Some("queue_flush") => {
            "`queue_flush: {spool: /var/spool/runner/outbox, handler: [\"/usr/local/bin/push-item\"]}`"
        }
        Some("orphan_sweep") => "`orphan_sweep: {match: {name: \"ci-*\"}}`",
        Some("match") => "`match: {name: \"ci-*\"}`",
        Some("log") => "`log: {ring_size: 256KiB}`",
        Some("export") => "`export: {textfile: /var/lib/node_exporter/runner.prom}`",
        Some("defaults") => "`defaults: {timeout: 10m}`",
        Some("depends_on") => "`depends_on: {root-disk: healthy}`",
        Some("jobs") => "`jobs:` then each job's name, indented, with its settings under it",
        _ => "`key: value` lines indented under it, or `{key: value, ...}` on one line",
    };
    format!("a block of settings, for example {example}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclosed_quote_is_found_where_it_opens() {
        let t = "a: 1\nb: \"x\"\nc: [\"y\", \"z]\nd: it's\ne: 2\n";
        assert_eq!(unclosed_quote(t), Some((3, 10, '"')));
        assert_eq!(unclosed_quote("a: 'it''s'\nb: \"a\\\"b\"\n"), None);
    }

    #[test]
    fn a_line_that_lines_up_with_no_key_is_found() {
        let t = "version: 1\njobs:\n  hello:\n    every: 10s\n    run: x\n   timeout: 5s\n";
        let (l, indent, above) = broken_indent(t, 0).unwrap();
        assert_eq!((l, indent), (6, 3));
        assert_eq!(above[0], ("run".to_string(), 4));
        assert!(above.contains(&("hello".to_string(), 2)), "{above:?}");
        let ok = "version: 1\njobs:\n  a:\n    command:\n    - x\n    run: |\n      text\n   more\n";
        assert_eq!(broken_indent(&ok[..ok.find("   more").unwrap()], 0), None);
    }

    #[test]
    fn type_names_become_words() {
        let m = expected_in_words("invalid type: string \"disk\", expected struct Block", Some("check")).unwrap();
        assert!(m.starts_with("`check:` takes a block of settings, for example `check: {metric"), "{m}");
        assert!(m.ends_with("found string \"disk\""), "{m}");
        let m = expected_in_words("invalid type: string \"3 b\", expected u32", Some("attempts")).unwrap();
        assert_eq!(m, "`attempts:` takes a whole number, for example `3`; found string \"3 b\"");
    }
}
