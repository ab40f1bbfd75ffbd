//! Run records whose content follows from their number, so that any record read back from a
//! ring can be checked and its encoded length is known, and a small seeded generator for
//! where to damage a ring (`tests/ring.rs`, `tests/logs.rs`).

use std::time::Duration;

use runner::record::{Outcome, Record, RecordKind, Trigger};

/// Record `n`: job `job<n % 7>`, an outcome, exit code, duration, message and an output tail
/// of up to 599 bytes, all from `n`.
pub fn record_for(n: u64) -> Record {
    let mut r =
        Record::skipped(&format!("job{}", n % 7), runner::record::Kind::Command, Trigger::Schedule, String::new());
    r.kind = RecordKind::Run;
    r.outcome = if n.is_multiple_of(3) { Outcome::Failure } else { Outcome::Success };
    r.exit_code = Some((n % 3) as i32);
    r.duration = Duration::from_micros(n * 1000 + 7);
    r.output_tail = (0..(n * 37 % 600)).map(|i| b'a' + ((i + n) % 26) as u8).collect();
    r.message = format!("record {n}");
    r
}

/// xorshift64: reproducible from its seed, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
