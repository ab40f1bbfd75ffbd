//! A global allocator that counts, for the zero-allocation assertions in tests and the
//! allocation figures in benchmarks. Each test or bench binary installs it with
//! `#[global_allocator] static A: Counting = Counting;` and wraps the code to count in
//! [`measure`]. Counting is per thread, so tests running in parallel threads do not count
//! each other's allocations; the live heap is process-wide, for peaks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    // try_with: the allocator also runs while thread-locals are being torn down.
    if ON.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        let _ = BYTES.try_with(|c| c.set(c.get() + size));
        let _ = PEAK.try_with(|c| c.set(c.get().max(live)));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        note(n);
        unsafe { System.realloc(p, l, n) }
    }
}

/// What [`measure`] saw on this thread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Allocations and reallocations.
    pub allocs: usize,
    /// Bytes asked for by them.
    pub bytes: usize,
    /// The highest the live heap rose above where it stood when `measure` began.
    pub peak_above_start: usize,
}

/// Runs `f` and counts the allocations it makes on this thread.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Counts) {
    let base = LIVE.load(Ordering::Relaxed);
    ALLOCS.with(|c| c.set(0));
    BYTES.with(|c| c.set(0));
    PEAK.with(|c| c.set(base));
    ON.with(|c| c.set(true));
    let out = f();
    ON.with(|c| c.set(false));
    let counts = Counts {
        allocs: ALLOCS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
        peak_above_start: PEAK.with(Cell::get).saturating_sub(base),
    };
    (out, counts)
}

/// Bytes live on the heap now, in the whole process: what a structure built between two
/// readings holds, when nothing else allocates meanwhile.
#[allow(dead_code)] // Not every test binary that counts reads it.
pub fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}
