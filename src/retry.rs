//! Retries with exponential backoff: a job's `retries:` and a queue item's `item_retries:`
//! have the same shape and the same arithmetic.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::time::Dur;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retries {
    /// Tries in all, the first included; 1 means no retry.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retries {
    fn default() -> Self {
        Retries { attempts: 1, backoff: Duration::from_secs(10), max_backoff: Duration::from_secs(3600) }
    }
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    /// Tries in all, the first one included.
    pub attempts: Option<u32>,
    pub backoff: Option<Dur>,
    pub max_backoff: Option<Dur>,
}

/// Exponential backoff with "equal jitter": half fixed, half random, so retries from many
/// boxes after a shared outage spread out but never come sooner than half the step.
pub fn backoff(base: Duration, max: Duration, failed_attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(failed_attempt.saturating_sub(1)).unwrap_or(u32::MAX));
    let step = exp.min(max);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let frac = f64::from(nanos % 1_000_000) / 1_000_000.0;
    step / 2 + step.div_f64(2.0).mul_f64(frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds() {
        let b = Duration::from_secs(10);
        let max = Duration::from_secs(60);
        for (attempt, full) in [(1, 10), (2, 20), (3, 40), (4, 60), (30, 60)] {
            let d = backoff(b, max, attempt);
            let full = Duration::from_secs(full);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} outside [{:?}, {full:?}]", full / 2);
        }
    }
}
