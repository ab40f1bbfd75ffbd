//! The `queue_flush:` block: its serde mirror, its resolved [`QueueFlush`] and the checks that can
//! be made without writing anything (the spool is created at the first run).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::kinds::Problem;
use crate::process::Argv;
use crate::retry::{RawRetries, Retries};
use crate::time::Dur;

/// The `queue_flush:` block; defaults are applied by [`resolve`].
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Block {
    /// The spool directory (tmp/ new/ cur/ done/ failed/ under it).
    pub spool: PathBuf,
    /// argv of the handler; the item's path is appended as the last argument.
    pub handler: Argv,
    pub max_items: Option<u32>,
    /// Same shape as a job's `retries:`, per item.
    pub item_retries: Option<RawRetries>,
    pub item_timeout: Option<Dur>,
    pub keep_done: Option<Dur>,
    pub keep_failed: Option<Dur>,
    pub health_window: Option<Dur>,
}

/// A resolved `queue_flush:` block: every default applied, the spool path absolute.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueFlush {
    pub spool: PathBuf,
    /// argv; the item's path is appended when an item is handled.
    pub handler: Vec<String>,
    pub max_items: usize,
    pub item_retries: Retries,
    pub item_timeout: Duration,
    pub keep_done: Duration,
    pub keep_failed: Duration,
    pub health_window: Duration,
}

impl QueueFlush {
    pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);
    pub const DEFAULT_MAX_ITEMS: usize = 10;
    pub const DEFAULT_RETRIES: Retries =
        Retries { attempts: 5, backoff: Duration::from_secs(60), max_backoff: Duration::from_secs(3600) };
    pub const DEFAULT_ITEM_TIMEOUT: Duration = Duration::from_secs(120);
    pub const DEFAULT_KEEP_DONE: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_KEEP_FAILED: Duration = Duration::from_secs(7 * 24 * 3600);
    pub const DEFAULT_HEALTH_WINDOW: Duration = Duration::from_secs(24 * 3600);
}

/// Applies the queue defaults and checks what can be checked without writing: the spool
/// is absolute and its parent exists (the spool itself is created at the first run).
pub fn resolve(name: &str, q: Block) -> Result<QueueFlush, Vec<Problem>> {
    let mut errors = Vec::new();
    let spool = q.spool;
    if !spool.is_absolute() {
        errors.push(Problem::block(
            &["spool"],
            format!(
                "job `{name}`: spool `{}` must be an absolute path, like /var/spool/runner/{name}",
                spool.display()
            ),
        ));
    } else {
        match std::fs::metadata(&spool) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => errors.push(Problem::block(
                &["spool"],
                format!(
                    "job `{name}`: spool `{}` exists but is not a directory; remove it or pick another path",
                    spool.display()
                ),
            )),
            Err(_) => {
                let parent = spool.parent().unwrap_or(Path::new("/"));
                if !parent.is_dir() {
                    errors.push(Problem::block(&["spool"],
                        format!(
                            "job `{name}`: the spool's parent directory `{}` does not exist; create it (mkdir -p {}) or pick another spool",
                            parent.display(),
                            parent.display()
                        ),
                    ));
                }
            }
        }
    }
    let max_items = q.max_items.map(|n| n as usize).unwrap_or(QueueFlush::DEFAULT_MAX_ITEMS);
    if max_items == 0 {
        errors.push(Problem::block(&["max_items"], format!("job `{name}`: max_items must be at least 1")));
    }
    let def = QueueFlush::DEFAULT_RETRIES;
    let r = q.item_retries.unwrap_or_default();
    let attempts = r.attempts.unwrap_or(def.attempts);
    if attempts == 0 {
        errors.push(Problem::block(
            &["item_retries"],
            format!("job `{name}`: item_retries.attempts counts every try, the first included; it must be at least 1"),
        ));
    }
    let backoff = r.backoff.map(|b| b.0).unwrap_or(def.backoff);
    let max_backoff = r.max_backoff.map(|b| b.0).unwrap_or(def.max_backoff.max(backoff));
    if max_backoff < backoff {
        errors.push(Problem::block(
            &["item_retries"],
            format!(
                "job `{name}`: item_retries.max_backoff ({}) is shorter than item_retries.backoff ({})",
                crate::time::format(max_backoff),
                crate::time::format(backoff)
            ),
        ));
    }
    let item_timeout = q.item_timeout.map(|d| d.0).unwrap_or(QueueFlush::DEFAULT_ITEM_TIMEOUT);
    let health_window = q.health_window.map(|d| d.0).unwrap_or(QueueFlush::DEFAULT_HEALTH_WINDOW);
    for (field, d) in [("item_timeout", item_timeout), ("health_window", health_window)] {
        if d.is_zero() {
            errors.push(Problem::block(&[field], format!("job `{name}`: {field} must be longer than 0s")));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(QueueFlush {
        spool,
        handler: q.handler.0,
        max_items,
        item_retries: Retries { attempts, backoff, max_backoff },
        item_timeout,
        keep_done: q.keep_done.map(|d| d.0).unwrap_or(QueueFlush::DEFAULT_KEEP_DONE),
        keep_failed: q.keep_failed.map(|d| d.0).unwrap_or(QueueFlush::DEFAULT_KEEP_FAILED),
        health_window,
    })
}
