//! The daemon's heap, kept to what it holds: glibc's malloc gives every thread that
//! allocates an arena of its own (64 MiB of address space reserved, its first pages
//! dirtied) and keeps freed memory for reuse. The daemon allocates little after start, from
//! the event loop, the writer thread and short-lived blocking threads, so one arena is
//! enough, and what start-up and a reload freed goes back to the kernel. A no-op where
//! the C library is not glibc (musl has one heap and returns what it frees). A leaf: it
//! imports nothing of the crate.

/// One malloc arena for every thread of this process; call before the second thread starts.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; no thread but this one runs yet.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}

/// Returns freed heap pages to the kernel (after the config was read, after a reload):
/// the parse's peak is freed, but without this malloc keeps its pages. glibc returns only
/// the top of a heap by itself, and a load peaks far above what its plan keeps
/// (serde_norway holds every event of the file: about 30 MiB for 10,000 jobs whose plan is
/// a few MiB), with the plan's own allocations scattered through that peak.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes malloc's own lock; it is safe from any thread.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// Gives back the main thread's stack pages below the caller's frame, which start-up (the
/// config parse, the state and ring reads) dirtied and the event loop, much shallower,
/// never uses again; they are mapped afresh, zeroed, if the stack grows that deep again.
/// Call it from the event loop before its first wait: everything below is dead then.
pub fn release_dead_stack() {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    // A margin below this frame for what the caller calls next (signal handlers, the
    // runtime's park), so the pages given back are ones it does not touch at once.
    const MARGIN: usize = 4 * 1024;
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return };
    let Some(low) = maps.lines().find(|l| l.ends_with("[stack]")).and_then(|l| {
        let (range, _) = l.split_once(' ')?;
        let (lo, hi) = range.split_once('-')?;
        let (lo, hi) = (usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?);
        (lo..hi).contains(&here).then_some(lo)
    }) else {
        return;
    };
    let end = here.saturating_sub(MARGIN) & !4095;
    if end > low {
        // SAFETY: the range is inside this thread's own stack mapping and below the live
        // frames (the stack grows down from `here`); MADV_DONTNEED only drops its pages.
        unsafe {
            nix::libc::madvise(low as *mut nix::libc::c_void, end - low, nix::libc::MADV_DONTNEED);
        }
    }
}
