//! The `orphan_sweep:` block: its serde mirror, the checks that keep a sweep from ending too
//! much or too often, and its resolved [`OrphanSweep`] (defined beside the sweep in `mod.rs`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Match, OrphanSweep};
use crate::kinds::Problem;
use crate::proc::RegexText;
use crate::process::EnvValue;
use crate::schedule::{CronExpr, Schedule};
use crate::time::Dur;
use crate::users::Db as Users;

/// The `orphan_sweep:` block of a job, as written.
#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// Which processes may be ended: every given criterion must hold.
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    /// Processes younger than this are kept (default 2h).
    pub min_age: Option<Dur>,
    /// A directory of pid files, or a file of pids: those processes and their descendants are kept.
    pub registry: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL (default: the job's `kill_grace`).
    pub kill_grace: Option<Dur>,
    /// Also end the descendants of each orphan.
    pub tree: Option<bool>,
    /// Most processes ended in one sweep (default 20); the rest are refused and recorded.
    pub max_kills: Option<u32>,
    /// Decide and record, but end nothing.
    pub dry_run: Option<bool>,
    /// Names of processes that adopt orphans (subreapers); a child of one counts as orphaned.
    pub adopters: Option<Vec<String>>,
    /// `false` sweeps every match, orphaned or not (default true).
    pub orphans_only: Option<bool>,
    /// Allow a schedule more frequent than hourly.
    pub allow_frequent: Option<bool>,
    /// Allow a `match:` that covers every process (`name: "*"`, `cmdline: ".*"`, empty).
    pub match_everything: Option<bool>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// A glob (`*`, `?`) on the basename of argv[0] and on the kernel's comm.
    pub name: Option<String>,
    /// A regular expression searched in the command line (arguments joined by spaces).
    pub cmdline: Option<RegexText>,
    /// The effective user, by name or uid.
    pub user: Option<EnvValue>,
    /// The executable's absolute path, as /proc/PID/exe shows it.
    pub exe: Option<PathBuf>,
}

/// What an `orphan_sweep:` block is checked against besides itself.
pub struct Context<'a> {
    pub every: Option<Duration>,
    pub schedule: Option<&'a Schedule>,
    pub user: Option<&'a str>,
    /// The job's (or the defaults') `kill_grace`.
    pub kill_grace: Option<Duration>,
    pub users: &'a Users,
}

/// A sweep may not run more often than this unless `allow_frequent: true`.
const SWEEP_MIN_INTERVAL: Duration = Duration::from_secs(3600);

/// Applies the sweep's defaults and refuses what would end too much or too often.
pub fn resolve(name: &str, raw: Block, at: Context<'_>) -> Result<OrphanSweep, Vec<Problem>> {
    let mut errors = Vec::new();
    let m = raw.matcher.unwrap_or_default();
    if m.name.is_none() && m.cmdline.is_none() && m.user.is_none() && m.exe.is_none() {
        errors.push(Problem::block(&["match"],
            format!("job `{name}`: orphan_sweep needs a `match:` with at least one of name, cmdline, exe, user; an empty match would end every orphan"),
        ));
    }
    if let Some(n) = &m.name
        && n.is_empty()
    {
        errors.push(Problem::block(
            &["match", "name"],
            format!("job `{name}`: orphan_sweep.match.name is empty; write a process name or glob like \"ci-*\""),
        ));
    }
    if let Some(e) = &m.exe
        && !e.is_absolute()
    {
        errors.push(Problem::block(
            &["match", "exe"],
            format!(
                "job `{name}`: orphan_sweep.match.exe `{}` must be an absolute path, as /proc/PID/exe shows it",
                e.display()
            ),
        ));
    }
    let uid = match m.user.as_ref().map(|u| u.0.as_str()) {
        None => None,
        Some(u) => match (at.users.user(u), u.parse::<u32>()) {
            (Some(x), _) => Some((x.name.clone(), x.uid)),
            (None, Ok(n)) => Some((u.to_string(), n)),
            (None, Err(_)) => {
                errors.push(Problem::block(&["match", "user"],
                    format!("unknown user `{u}` in job `{name}`'s orphan_sweep.match; name one from /etc/passwd or give a uid"),
                ));
                None
            }
        },
    };
    if m.name.is_some() || m.cmdline.is_some() || m.user.is_some() {
        let name_all = m.name.as_deref().is_none_or(name_covers_everything);
        let cmdline_all = m.cmdline.as_ref().is_none_or(|r| cmdline_covers_everything(&r.0));
        // root's processes are everything that matters.
        let user_all = m.user.is_none() || uid.as_ref().is_some_and(|(_, id)| *id == 0);
        if name_all && cmdline_all && user_all && m.exe.is_none() && raw.match_everything != Some(true) {
            let (key, shown) = match (&m.name, &m.cmdline) {
                (Some(n), _) => ("name", format!("name {n:?}")),
                (None, Some(c)) => ("cmdline", format!("cmdline {:?}", c.0.as_str())),
                (None, None) => ("user", "user root alone".to_string()),
            };
            errors.push(Problem::block(
                &["match", key],
                format!("job `{name}`: orphan_sweep.match ({shown}) covers every process; narrow it (a name like \"ci-*\", an exe, a user), or set orphan_sweep.match_everything: true if a sweep of everything orphaned is really meant"),
            ));
        }
    }
    if let Some(r) = &raw.registry
        && !r.is_absolute()
    {
        errors.push(Problem::block(
            &["registry"],
            format!("job `{name}`: orphan_sweep.registry `{}` must be an absolute path", r.display()),
        ));
    }
    if raw.max_kills == Some(0) {
        errors.push(Problem::block(
            &["max_kills"],
            format!("job `{name}`: orphan_sweep.max_kills must be at least 1; to end nothing, set `dry_run: true`"),
        ));
    }
    let adopters = raw.adopters.unwrap_or_default();
    if adopters.iter().any(|a| a.is_empty()) {
        errors.push(Problem::block(&["adopters"], format!("job `{name}`: orphan_sweep.adopters has an empty name; list process names like [systemd, containerd-shim]")));
    }
    if at.user.is_some() {
        errors.push(Problem::job("user",
            format!("job `{name}`: `user:` does not apply to orphan_sweep (it signals as runner); to match a process's owner write orphan_sweep.match.user"),
        ));
    }
    let allow_frequent = raw.allow_frequent.unwrap_or(false);
    if !allow_frequent {
        if let Some(e) = at.every
            && !e.is_zero()
            && e < SWEEP_MIN_INTERVAL
        {
            errors.push(Problem::job("every",
                format!("job `{name}`: an orphan sweep every {} is too eager (a sweep ends processes); use `every: 1h` or more, or set orphan_sweep.allow_frequent: true", crate::time::format(e)),
            ));
        }
        if let Some(s) = at.schedule
            && let Schedule::Cron(c) = s
            && let Some(gap) = shortest_cron_gap(c)
            && gap < SWEEP_MIN_INTERVAL
        {
            errors.push(Problem::job("schedule",
                format!("job `{name}`: schedule \"{}\" fires an orphan sweep {} apart (a sweep ends processes); fire at most hourly, or set orphan_sweep.allow_frequent: true", c.as_str(), crate::time::format(gap)),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(OrphanSweep {
        matcher: Match { name: m.name, cmdline: m.cmdline, uid, exe: m.exe },
        min_age: raw.min_age.map(|d| d.0).unwrap_or(Duration::from_secs(2 * 3600)),
        registry: raw.registry,
        kill_grace: raw.kill_grace.map(|d| d.0).or(at.kill_grace).unwrap_or(Duration::from_secs(10)),
        tree: raw.tree.unwrap_or(false),
        max_kills: raw.max_kills.unwrap_or(20),
        dry_run: raw.dry_run.unwrap_or(false),
        adopters,
        orphans_only: raw.orphans_only.unwrap_or(true),
    })
}

/// Names and command lines with nothing in common: a pattern that matches all of them
/// matches any process.
const UNRELATED: [&str; 5] = ["q", "7", "-", "kworker/0:1", "/usr/sbin/sshd -D"];

/// Whether a `name` glob may match any process: decided from the pattern (one with no
/// literal character, like `*` or `??*`, matches every name long enough), and from samples.
fn name_covers_everything(glob: &str) -> bool {
    !glob.bytes().any(|b| b != b'*' && b != b'?')
        || UNRELATED.iter().all(|n| crate::proc::name_matches(glob, n.as_bytes()))
}

/// Whether a `cmdline` regex may match any command line: decided from the pattern (one
/// without a literal run of 2 or more characters that every match must contain, like `..`,
/// `\w` or `a|.`), and from samples.
fn cmdline_covers_everything(re: &regex_lite::Regex) -> bool {
    required_literal_run(re.as_str()) < 2 || UNRELATED.iter().all(|c| re.is_match(c))
}

/// The longest run of literal characters that every match of `pattern` contains, found
/// conservatively: each top-level alternative counts (the shortest of them wins); groups,
/// classes, `.` and escapes like `\w` end a run; a character made optional by `?`, `*` or
/// `{0,...}` is not counted. A pattern it cannot read counts as 0 (refused as too broad).
pub fn required_literal_run(pattern: &str) -> usize {
    top_level_alternatives(pattern).iter().map(|alt| literal_run(alt)).min().unwrap_or(0)
}

fn top_level_alternatives(p: &str) -> Vec<&str> {
    let (mut depth, mut class, mut escaped, mut from) = (0i32, false, false, 0);
    let mut out = Vec::new();
    for (i, c) in p.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '[' if !class => class = true,
            ']' if class => class = false,
            '(' if !class => depth += 1,
            ')' if !class => depth -= 1,
            '|' if !class && depth == 0 => {
                out.push(&p[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&p[from..]);
    out
}

fn literal_run(alt: &str) -> usize {
    let chars: Vec<char> = alt.chars().collect();
    let (mut best, mut run, mut i) = (0usize, 0usize, 0usize);
    while i < chars.len() {
        let (lit, next) = match chars[i] {
            '\\' => match chars.get(i + 1) {
                // An escaped punctuation character is itself; `\w`, `\d`, `\b`... are classes.
                Some(c) if c.is_ascii_punctuation() => (true, i + 2),
                _ => (false, i + 2),
            },
            '(' => (false, skip_group(&chars, i)),
            '[' => (false, skip_class(&chars, i)),
            '.' | '^' | '$' => (false, i + 1),
            _ => (true, i + 1),
        };
        let q = chars.get(next).copied();
        let optional = matches!(q, Some('?' | '*')) || (q == Some('{') && chars.get(next + 1) == Some(&'0'));
        if lit && !optional {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
        // `+` and `{n,m}` repeat the character: the run may go on only through it once.
        if matches!(q, Some('+' | '{')) {
            run = 0;
        }
        i = next;
        while i < chars.len() && matches!(chars[i], '?' | '*' | '+') {
            i += 1;
        }
        if chars.get(i) == Some(&'{') {
            while i < chars.len() && chars[i] != '}' {
                i += 1;
            }
            i += 1;
        }
    }
    best
}

fn skip_group(chars: &[char], from: usize) -> usize {
    let (mut depth, mut i) = (0, from);
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            '[' => i = skip_class(chars, i) - 1,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

fn skip_class(chars: &[char], from: usize) -> usize {
    // `[]...]` and `[^]...]`: a `]` right after the opening is a member.
    let mut i = from + 1;
    if chars.get(i) == Some(&'^') {
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        i += 1;
    }
    while i < chars.len() && chars[i] != ']' {
        if chars[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// The shortest gap between the next few fires of a cron expression from now. Not only the
/// first two: `0,30 9 * * *` fires twice an hour once a day, which a single gap misses.
fn shortest_cron_gap(c: &CronExpr) -> Option<Duration> {
    // Not `TimeZone::system()`: in the daemon that keeps jiff's list of every zone name.
    let tz = crate::time::local_zone();
    let fires = crate::schedule::upcoming(c, &jiff::Timestamp::now().to_zoned(tz.clone()), &tz, 25);
    fires.windows(2).filter_map(|w| w[1].timestamp().duration_since(w[0].timestamp()).try_into().ok()).min()
}

#[cfg(test)]
mod tests {
    use super::required_literal_run as run;

    #[test]
    fn literal_runs_every_match_must_contain() {
        for (p, n) in [
            ("", 0),
            ("..", 0),
            (r"\w", 0),
            (r"\w+\d", 0),
            (".*", 0),
            ("a|.", 0),
            ("ab|cde", 2),
            ("ci-.*", 3),
            ("ab*c", 1),
            ("ab+c", 2),
            ("a{0,3}b", 1),
            ("(?i)python", 6),
            ("^(/usr)?/bin/sleep", 10),
            (r"\.\.", 2),
            ("[a-z]x[0-9]", 1),
        ] {
            assert_eq!(run(p), n, "{p}");
        }
    }
}
