//! A line-level outline of a YAML file: where each block-mapping key stands.
//!
//! serde_norway reports a location only for errors it raises while deserializing, and its
//! duplicate-key error points at the start of the mapping. This outline lets the config
//! report the second occurrence of a duplicate key, and put a line and column on errors found
//! after parsing (an unknown user, a job name clash across files). It understands block
//! style, which is what people write; anything it cannot follow (flow collections spanning
//! lines) only makes a location coarser, never hides an error.
//!
//! Its cost is linear in the file (each line is read once, each key is one 24-byte node that
//! names its parent, lookups go through a sorted index), whatever the nesting: it runs
//! before the file's bounds are known to serde_norway.

/// Where one `key:` stands. Which key it is: [`Outline::path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyAt {
    pub line: usize,
    pub col: usize,
    /// Column of the value on the same line, or `col` when the value is on later lines.
    pub value_col: usize,
    id: u32,
}

const ROOT: u32 = u32::MAX;
/// `Node::name_len` of a sequence item, whose `name_start` is then its index.
const ITEM: u32 = u32::MAX;

/// A key or a sequence item: 24 bytes, its name a range of the text, its path the chain of
/// its parents. The outline of a 1 MiB file is a few MiB whatever its shape.
#[derive(Clone, Copy, Debug)]
struct Node {
    parent: u32,
    name_start: u32,
    name_len: u32,
    line: u32,
    col: u32,
    value_col: u32,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Name<'t> {
    Item(u32),
    Key(&'t str),
}

/// The keys of a file, in file order. Linear in the file: each line is looked at once,
/// and lookups go through an index sorted by (parent, name).
#[derive(Debug, Default)]
pub struct Outline<'t> {
    text: &'t str,
    nodes: Vec<Node>,
    /// Node ids by (parent, name), equal ones in file order.
    sorted: Vec<u32>,
}

struct Frame {
    indent: usize,
    node: u32,
    /// The next index of a sequence item directly under this node.
    next_item: u32,
}

impl<'t> Outline<'t> {
    pub fn scan(text: &'t str) -> Outline<'t> {
        let mut o = Outline { text, nodes: Vec::new(), sorted: Vec::new() };
        let mut stack: Vec<Frame> = Vec::new();
        let mut root_items: u32 = 0;
        let base = text.as_ptr() as usize;
        let n32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        // Inside a block scalar (`|` or `>`), every line indented past the key is text.
        let mut block_scalar_indent: Option<usize> = None;
        for (idx, raw_line) in text.lines().enumerate() {
            let line_no = n32(idx + 1);
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
                let counter = match stack.last_mut() {
                    Some(f) => &mut f.next_item,
                    None => &mut root_items,
                };
                let n = *counter;
                *counter = counter.saturating_add(1);
                let parent = stack.last().map_or(ROOT, |f| f.node);
                let node = Node {
                    parent,
                    name_start: n,
                    name_len: ITEM,
                    line: line_no,
                    col: n32(indent + 1),
                    value_col: n32(indent + 1),
                };
                stack.push(Frame { indent, node: o.push(node), next_item: 0 });
                let rest = content[1..].trim_start_matches(' ');
                indent += content.len() - rest.len();
                content = rest;
            }
            let Some((key, after_colon)) = split_key(content) else {
                continue;
            };
            let value = content[after_colon..].trim_start_matches(' ');
            let value_col = if value.is_empty() || value.starts_with('#') {
                indent + 1
            } else {
                indent + 1 + (content.len() - value.len())
            };
            if value.starts_with('|') || value.starts_with('>') {
                block_scalar_indent = Some(indent);
            }
            let node = Node {
                parent: stack.last().map_or(ROOT, |f| f.node),
                name_start: n32(key.as_ptr() as usize - base),
                name_len: n32(key.len()),
                line: line_no,
                col: n32(indent + 1),
                value_col: n32(value_col),
            };
            stack.push(Frame { indent, node: o.push(node), next_item: 0 });
        }
        let mut sorted: Vec<u32> = (0..o.nodes.len() as u32).collect();
        // Stable: equal keys stay in file order.
        sorted.sort_by_key(|&id| o.sort_key(id));
        o.sorted = sorted;
        o
    }

    fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    fn name(&self, id: u32) -> Name<'t> {
        let n = self.nodes[id as usize];
        if n.name_len == ITEM {
            Name::Item(n.name_start)
        } else {
            Name::Key(&self.text[n.name_start as usize..(n.name_start + n.name_len) as usize])
        }
    }

    fn sort_key(&self, id: u32) -> (u32, Name<'t>) {
        (self.nodes[id as usize].parent, self.name(id))
    }

    fn key_at(&self, id: u32) -> KeyAt {
        let n = self.nodes[id as usize];
        KeyAt { line: n.line as usize, col: n.col as usize, value_col: n.value_col as usize, id }
    }

    /// The first node named `name` under `parent`.
    fn child(&self, parent: u32, name: Name<'_>) -> Option<u32> {
        let i = self.sorted.partition_point(|&id| self.sort_key(id) < (parent, name));
        let id = *self.sorted.get(i)?;
        (self.sort_key(id) == (parent, name)).then_some(id)
    }

    /// The first key at exactly this path (a sequence item is `[N]`).
    pub fn find(&self, path: &[&str]) -> Option<KeyAt> {
        let mut at = ROOT;
        for part in path {
            let item = part.strip_prefix('[').and_then(|p| p.strip_suffix(']')).and_then(|n| n.parse().ok());
            at = self.child(at, item.map_or(Name::Key(part), Name::Item))?;
        }
        (at != ROOT && self.nodes[at as usize].name_len != ITEM).then(|| self.key_at(at))
    }

    /// Every key, in file order.
    pub fn keys(&self) -> impl Iterator<Item = KeyAt> + '_ {
        (0..self.nodes.len() as u32).filter(|&id| self.nodes[id as usize].name_len != ITEM).map(|id| self.key_at(id))
    }

    /// The key's path from the document root; sequence items appear as `[N]`.
    pub fn path(&self, key: &KeyAt) -> Vec<String> {
        let mut path = Vec::new();
        let mut at = key.id;
        while at != ROOT {
            path.push(match self.name(at) {
                Name::Item(n) => format!("[{n}]"),
                Name::Key(k) => k.to_string(),
            });
            at = self.nodes[at as usize].parent;
        }
        path.reverse();
        path
    }

    /// The second occurrence of any key already seen in the same mapping, in file order.
    pub fn first_duplicate(&self) -> Option<(KeyAt, KeyAt)> {
        self.sorted
            .windows(2)
            .filter(|w| self.sort_key(w[0]) == self.sort_key(w[1]))
            .map(|w| (self.child(self.nodes[w[1] as usize].parent, self.name(w[1])).unwrap_or(w[0]), w[1]))
            .min_by_key(|(_, second)| *second)
            .map(|(first, second)| (self.key_at(first), self.key_at(second)))
    }

    /// The name of the job whose block holds `line`, if any.
    pub fn job_at_line(&self, line: usize) -> Option<&'t str> {
        let jobs = self.child(ROOT, Name::Key("jobs"))?;
        let id = (0..self.nodes.len() as u32)
            .rev()
            .find(|&id| self.nodes[id as usize].parent == jobs && self.nodes[id as usize].line as usize <= line)?;
        match self.name(id) {
            Name::Key(k) => Some(k),
            Name::Item(_) => None,
        }
    }
}

/// Splits `key: value` or `key:` into the unquoted key and the byte offset just past the colon.
fn split_key(content: &str) -> Option<(&str, usize)> {
    let bytes = content.as_bytes();
    let (key, end) = match bytes.first()? {
        q @ (b'"' | b'\'') => {
            let close = content[1..].find(*q as char)? + 1;
            (&content[1..close], close + 1)
        }
        b'{' | b'[' | b'&' | b'*' | b'!' | b'|' | b'>' => return None,
        _ => {
            let mut i = 0;
            loop {
                let c = content[i..].find(':')? + i;
                let next = bytes.get(c + 1);
                if next.is_none() || next == Some(&b' ') || next == Some(&b'\t') {
                    break (content[..c].trim_end(), c);
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
