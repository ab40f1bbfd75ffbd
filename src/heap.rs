//! The daemon's heap, kept to what it holds. glibc's malloc gives every thread that allocates
//! an arena of its own (64 MiB of address space reserved, its first pages dirtied) and keeps
//! freed memory for reuse. The daemon allocates little after start, from the event loop, the
//! writer thread and short-lived blocking threads, so one arena is enough, and what start-up
//! and a reload freed goes back to the kernel. A no-op where the C library is not glibc (musl
//! has one heap and returns what it frees). A leaf: it imports nothing of the crate.
//!
//! Nothing here advises the kernel about pages (no madvise): advice given on ranges read
//! earlier could reach a mapping that was unmapped and reused meanwhile, and what the file
//! pages of code and the dead stack held is private memory no more than clean cache is.

/// One malloc arena for every thread of this process; call before the second thread starts.
pub fn one_arena() {
    runner_sys::heap::one_arena();
}

/// Returns freed heap pages to the kernel (after the config was read, after a reload):
/// the parse's peak is freed, but without this malloc keeps its pages. glibc returns only
/// the top of a heap by itself, and a load peaks far above what its plan keeps
/// (serde_norway holds every event of the file: about 30 MiB for 10,000 jobs whose plan is
/// a few MiB), with the plan's own allocations scattered through that peak.
pub fn trim() {
    runner_sys::heap::trim();
}
