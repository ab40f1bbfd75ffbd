//! A line-level outline of a YAML file: where each block-mapping key stands.
//!
//! serde_norway reports a location only for errors it raises while deserializing, and its
//! duplicate-key error points at the start of the mapping. This outline lets the config
//! report the second occurrence of a duplicate key, and put a line and column on errors found
//! after parsing (an unknown user, a job name clash across files). It understands block
//! style, which is what people write; anything it cannot follow (flow collections spanning
//! lines) only makes a location coarser, never hides an error.

/// One `key:` found in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAt {
    /// Keys from the document root; sequence items appear as `[N]`.
    pub path: Vec<String>,
    pub line: usize,
    pub col: usize,
    /// Column of the value on the same line, or `col` when the value is on later lines.
    pub value_col: usize,
}

#[derive(Debug, Default)]
pub struct Outline {
    pub keys: Vec<KeyAt>,
}

struct Frame {
    indent: usize,
    name: String,
}

impl Outline {
    pub fn scan(text: &str) -> Outline {
        let mut keys = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut seq_counters: Vec<(Vec<String>, usize)> = Vec::new();
        // Inside a block scalar (`|` or `>`), every line indented past the key is text.
        let mut block_scalar_indent: Option<usize> = None;
        for (idx, raw_line) in text.lines().enumerate() {
            let line_no = idx + 1;
            let trimmed = raw_line.trim_start_matches(' ');
            let mut indent = raw_line.len() - trimmed.len();
            if let Some(bi) = block_scalar_indent {
                if trimmed.is_empty() || indent > bi {
                    continue;
                }
                block_scalar_indent = None;
            }
            if trimmed.is_empty()
                || trimmed.starts_with('#')
                || trimmed.starts_with("---")
                || trimmed.starts_with("...")
            {
                continue;
            }
            while stack.last().is_some_and(|f| f.indent >= indent) {
                stack.pop();
            }
            let mut content = trimmed;
            while content == "-" || content.starts_with("- ") {
                let parent: Vec<String> = stack.iter().map(|f| f.name.clone()).collect();
                let n = match seq_counters.iter_mut().find(|(p, _)| *p == parent) {
                    Some((_, n)) => {
                        *n += 1;
                        *n
                    }
                    None => {
                        seq_counters.push((parent, 0));
                        0
                    }
                };
                stack.push(Frame { indent, name: format!("[{n}]") });
                let rest = content[1..].trim_start_matches(' ');
                indent += content.len() - rest.len();
                content = rest;
            }
            let Some((key, after_colon)) = split_key(content) else {
                continue;
            };
            let path: Vec<String> = stack.iter().map(|f| f.name.clone()).chain(std::iter::once(key.clone())).collect();
            // A new mapping under this key restarts its sequence numbering.
            seq_counters.retain(|(p, _)| !p.starts_with(&path));
            let value = content[after_colon..].trim_start_matches(' ');
            let value_col = if value.is_empty() || value.starts_with('#') {
                indent + 1
            } else {
                indent + 1 + (content.len() - value.len())
            };
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar_indent = Some(indent);
            }
            keys.push(KeyAt { path, line: line_no, col: indent + 1, value_col });
            stack.push(Frame { indent, name: key });
        }
        Outline { keys }
    }

    /// The first key at exactly this path.
    pub fn find(&self, path: &[&str]) -> Option<&KeyAt> {
        self.keys.iter().find(|k| k.path.iter().map(String::as_str).eq(path.iter().copied()))
    }

    /// The second occurrence of any key already seen in the same mapping, in file order.
    pub fn first_duplicate(&self) -> Option<(&KeyAt, &KeyAt)> {
        for (i, k) in self.keys.iter().enumerate() {
            if let Some(first) = self.keys[..i].iter().find(|p| p.path == k.path) {
                return Some((first, k));
            }
        }
        None
    }

    /// The name of the job whose block holds `line`, if any.
    pub fn job_at_line(&self, line: usize) -> Option<&str> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.path.len() == 2 && k.path[0] == "jobs" && k.line <= line)
            .map(|k| k.path[1].as_str())
    }
}

/// Splits `key: value` or `key:` into the unquoted key and the byte offset just past the colon.
fn split_key(content: &str) -> Option<(String, usize)> {
    let bytes = content.as_bytes();
    let (key, end) = match bytes.first()? {
        q @ (b'"' | b'\'') => {
            let close = content[1..].find(*q as char)? + 1;
            (content[1..close].to_string(), close + 1)
        }
        b'{' | b'[' | b'&' | b'*' | b'!' | b'|' | b'>' => return None,
        _ => {
            let mut i = 0;
            loop {
                let c = content[i..].find(':')? + i;
                let next = bytes.get(c + 1);
                if next.is_none() || next == Some(&b' ') || next == Some(&b'\t') {
                    break (content[..c].trim_end().to_string(), c);
                }
                i = c + 1;
            }
        }
    };
    if bytes.get(end) != Some(&b':') {
        return None;
    }
    if key.contains(" #") {
        return None;
    }
    Some((key, end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
version: 1
jobs:
  backup:
    run: |
      a: 1
      a: 2
    every: 5m
  'quoted':
    command:
      - /bin/echo
      - hi
    env:
      A: x
      A: y
";

    #[test]
    fn finds_keys_with_columns() {
        let o = Outline::scan(DOC);
        let k = o.find(&["jobs", "backup", "every"]).unwrap();
        assert_eq!((k.line, k.col, k.value_col), (7, 5, 12));
        assert!(o.find(&["jobs", "quoted"]).is_some());
    }

    #[test]
    fn block_scalar_text_is_not_keys() {
        let o = Outline::scan(DOC);
        assert!(o.find(&["jobs", "backup", "run", "a"]).is_none());
        assert!(o.find(&["jobs", "backup", "a"]).is_none());
    }

    #[test]
    fn reports_the_second_duplicate() {
        let o = Outline::scan(DOC);
        let (first, second) = o.first_duplicate().unwrap();
        assert_eq!((first.line, second.line), (13, 14));
        assert_eq!(o.job_at_line(14), Some("quoted"));
    }

    #[test]
    fn sequence_items_are_separate_mappings() {
        let o = Outline::scan("a:\n  - x: 1\n    y: 2\n  - x: 3\n");
        assert!(o.first_duplicate().is_none());
        assert_eq!(o.find(&["a", "[1]", "x"]).unwrap().line, 4);
    }
}
