//! "Did you mean" for error messages: the closest known name to a misspelt one. A leaf.

/// Levenshtein distance between two names (they are short: keys, metric names).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The known name closest to `got`, if it is close enough to be what was meant: at most two
/// edits, and at most half its letters (so `lgs` gives `logs`, `x` gives nothing). Between
/// names as close, one with the same letters wins: a swap (`josn`) costs two edits, as
/// `job` does, but `json` is what was meant.
pub fn closest<'a>(got: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let letters = |s: &str| {
        let mut v: Vec<char> = s.chars().collect();
        v.sort_unstable();
        v
    };
    let mine = letters(got);
    known
        .map(|k| (edit_distance(got, k), letters(k) != mine, k))
        .filter(|(d, _, k)| *d <= 2 && *d * 2 <= k.chars().count().max(got.chars().count()))
        .min_by_key(|(d, other, _)| (*d, *other))
        .map(|(_, _, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("timout", "timeout"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_takes_only_near_names() {
        let names = ["list", "logs", "once", "job", "json"];
        assert_eq!(closest("lgs", names.into_iter()), Some("logs"));
        assert_eq!(closest("josn", names.into_iter()), Some("json"));
        assert_eq!(closest("x", names.into_iter()), None);
        assert_eq!(closest("backup", names.into_iter()), None);
    }
}
