//! "Did you mean" for error messages: the closest known name to a misspelt one. A leaf.

/// Edit distance between two names (they are short: keys, metric names), a swap of two
/// neighbours counting as one edit (`josn` is one from `json`), as people mistype.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The known name closest to `got`, if it is close enough to be what was meant: one edit for
/// names of up to five letters, two for longer ones, and never more than half its letters
/// (so `lgs` gives `logs`, `bogus` and `x` give nothing). Between names as close, one with
/// the same letters wins.
pub fn closest<'a>(got: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let letters = |s: &str| {
        let mut v: Vec<char> = s.chars().collect();
        v.sort_unstable();
        v
    };
    let mine = letters(got);
    known
        .map(|k| (edit_distance(got, k), letters(k) != mine, k))
        .filter(|(d, _, k)| {
            let len = k.chars().count().max(got.chars().count());
            *d <= if len <= 5 { 1 } else { 2 } && *d * 2 <= len
        })
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
        assert_eq!(edit_distance("ab", "ba"), 1);
    }

    #[test]
    fn closest_takes_only_near_names() {
        let names = ["list", "logs", "once", "job", "json"];
        assert_eq!(closest("lgs", names.into_iter()), Some("logs"));
        assert_eq!(closest("josn", names.into_iter()), Some("json"));
        assert_eq!(closest("x", names.into_iter()), None);
        assert_eq!(closest("backup", names.into_iter()), None);
        assert_eq!(closest("bogus", ["run", "once", "check", "list", "status", "logs", "health"].into_iter()), None);
        assert_eq!(closest("sttaus", ["status", "list"].into_iter()), Some("status"));
        assert_eq!(edit_distance("josn", "json"), 1);
    }
}
