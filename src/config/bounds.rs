//! What a config file may cost to read: its size, its encoding, how deep it nests, how
//! many nodes it has and how far its aliases expand it.
//!
//! serde_norway keeps every event of a document in memory and expands an alias each time
//! it is used, so a small file can cost gigabytes. [`check`] walks the document once with
//! libyaml's event parser (streaming: nothing kept but the open collections and the size of
//! each anchor) and refuses a document over these bounds before serde_norway loads it.
//! A syntax error is left to serde_norway, which reports it with its location.
//!
//! The bounds fit a generated config of 10,000 jobs (`config::raw::MAX_JOBS`) of about 200
//! bytes and 20 nodes each in one file, and keep `runner check` of any file within about 1 s
//! and 64 MiB (`benches/config_parse.rs`). serde_norway's events cost about 150 bytes a
//! node, so the node bound is what bounds the memory.

use std::collections::HashMap;

use runner_sys::yaml::{Kind, Parser};

/// The largest config file or drop-in read, in bytes.
pub const MAX_FILE_BYTES: usize = 2 << 20;
const MAX_FILE_MIB: usize = MAX_FILE_BYTES >> 20;
/// Nesting of collections; the config itself nests about 6 deep.
pub const MAX_DEPTH: usize = 64;
/// Nodes (scalars, sequences, mappings) in a document once every alias is expanded.
pub const MAX_NODES: u64 = 200_000;
/// Bytes of scalar text in a document once every alias is expanded: aliases may add about
/// 2 MiB to the largest file accepted.
pub const MAX_EXPANDED_BYTES: u64 = 4 << 20;
const MAX_EXPANDED_MIB: u64 = MAX_EXPANDED_BYTES >> 20;

/// Why a file is refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 1-based; 0 when the refusal is about the file as a whole.
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// The file's bytes as text: refuses a file over [`MAX_FILE_BYTES`] and bytes that are not
/// UTF-8 (placed at the first bad byte). A UTF-8 byte order mark, which some Windows editors
/// write, is dropped (YAML 1.2 allows it; the parser read it as content before a document).
pub fn decode(mut bytes: Vec<u8>) -> Result<String, Refusal> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    if bytes.starts_with(b"\xef\xbb\xbf") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = &bytes[..good];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = before.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
        Refusal {
            line,
            col,
            message: format!(
                "byte 0x{:02x} is not UTF-8; runner reads UTF-8 YAML: convert the file (e.g. `iconv -f latin1 -t utf-8`) or remove the byte",
                bytes[good]
            ),
        }
    })
}

/// The refusal of a file of `len` bytes.
pub fn too_large(len: u64) -> Refusal {
    Refusal {
        line: 0,
        col: 0,
        message: format!(
            "the file is {len} bytes, more than the {MAX_FILE_BYTES} ({MAX_FILE_MIB} MiB) runner reads; split its jobs into drop-in files"
        ),
    }
}

/// Size of what an anchor names, once its own aliases are expanded.
#[derive(Clone, Copy, Default)]
struct Size {
    nodes: u64,
    bytes: u64,
}

/// Walks the document and refuses it when it nests deeper than [`MAX_DEPTH`], or when,
/// with every alias expanded, it has more than [`MAX_NODES`] nodes or [`MAX_EXPANDED_BYTES`]
/// of scalar text. Returns `Ok` on a syntax error: serde_norway reports that one.
pub fn check(text: &str) -> Result<(), Refusal> {
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large(text.len() as u64));
    }
    let mut parser = Parser::new(text.as_bytes());
    // The open collections: their anchor and the totals when they started.
    let mut open: Vec<(Option<Vec<u8>>, Size)> = Vec::new();
    let mut anchors: HashMap<Vec<u8>, Size> = HashMap::new();
    let mut total = Size::default();
    let mut by_alias = Size::default();
    while let Some(ev) = parser.next() {
        let at = |message: String| Refusal { line: ev.line + 1, col: ev.col + 1, message };
        match ev.kind {
            Kind::Scalar { anchor, len } => {
                total.nodes += 1;
                total.bytes += len as u64;
                if let Some(a) = anchor {
                    anchors.insert(a, Size { nodes: 1, bytes: len as u64 });
                }
            }
            Kind::Start { anchor } => {
                total.nodes += 1;
                open.push((anchor, total));
                if open.len() > MAX_DEPTH {
                    return Err(at(format!(
                        "nesting deeper than {MAX_DEPTH} levels; a supervisor config nests a few levels: flatten this value"
                    )));
                }
            }
            Kind::End => {
                if let Some((Some(a), start)) = open.pop() {
                    let size = Size { nodes: total.nodes - start.nodes + 1, bytes: total.bytes - start.bytes };
                    anchors.insert(a, size);
                }
            }
            Kind::Alias { anchor } => {
                // An unknown anchor is serde_norway's error to report.
                if let Some(size) = anchors.get(&anchor) {
                    total.nodes = total.nodes.saturating_add(size.nodes);
                    total.bytes = total.bytes.saturating_add(size.bytes);
                    by_alias.nodes = by_alias.nodes.saturating_add(size.nodes);
                    by_alias.bytes = by_alias.bytes.saturating_add(size.bytes);
                }
            }
            Kind::Other => {}
        }
        if total.nodes > MAX_NODES || total.bytes > MAX_EXPANDED_BYTES {
            let what = if total.nodes > MAX_NODES {
                format!("more than {MAX_NODES} nodes")
            } else {
                format!("more than {MAX_EXPANDED_BYTES} bytes ({MAX_EXPANDED_MIB} MiB) of values")
            };
            let message = if by_alias.nodes > 0 {
                format!(
                    "aliases expand this document to {what} ({} nodes and {} bytes come from aliases); write the shared values out, or use fewer aliases of large values",
                    by_alias.nodes, by_alias.bytes
                )
            } else {
                format!("the document has {what}; split its jobs into drop-in files")
            };
            return Err(at(message));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_documents_pass() {
        assert_eq!(check("version: 1\njobs:\n  a: {run: x, every: 1m}\n"), Ok(()));
        assert_eq!(check("a: &x [1, 2]\nb: *x\nc: *x\n"), Ok(()));
        // A syntax error is serde_norway's to report.
        assert_eq!(check("a: [\n"), Ok(()));
    }

    #[test]
    fn deep_nesting_is_refused_where_it_goes_too_deep() {
        let e = check(&"- ".repeat(1000)).unwrap_err();
        assert_eq!((e.line, e.col), (1, 2 * MAX_DEPTH + 1));
        assert!(e.message.starts_with("nesting deeper than 64 levels"), "{}", e.message);
        assert!(check(&format!("{}1{}", "[".repeat(100), "]".repeat(100))).is_err());
        assert!(check(&format!("{}1{}", "[".repeat(60), "]".repeat(60))).is_ok());
    }

    #[test]
    fn alias_amplification_is_refused() {
        // Nine levels of ten aliases each: a billion-laughs document of 300 bytes.
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            doc += &format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n");
        }
        let e = check(&doc).unwrap_err();
        assert!(e.message.starts_with("aliases expand this document to more than 200000 nodes"), "{}", e.message);
        // One large string used many times: refused on its bytes.
        let big = "y".repeat(100_000);
        let doc = format!("s: &s \"{big}\"\nl: [{}]\n", vec!["*s"; 50].join(", "));
        let e = check(&doc).unwrap_err();
        assert!(e.message.contains("more than 4194304 bytes (4 MiB) of values"), "{}", e.message);
        assert_eq!(e.line, 2);
    }

    #[test]
    fn bad_bytes_are_placed() {
        let e = decode(b"version: 1\njobs:\n  a\xe9b: x\n".to_vec()).unwrap_err();
        assert_eq!((e.line, e.col), (3, 4));
        assert!(e.message.starts_with("byte 0xe9 is not UTF-8"), "{}", e.message);
        assert_eq!(decode("é: ü\n".as_bytes().to_vec()).unwrap(), "é: ü\n");
        assert_eq!(decode(vec![b' '; MAX_FILE_BYTES + 1]).unwrap_err().line, 0);
    }
}
