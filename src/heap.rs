//! The daemon's memory, kept to what it holds. The heap: glibc's malloc gives every thread that
//! allocates an arena of its own (64 MiB of address space reserved, its first pages
//! dirtied) and keeps freed memory for reuse. The daemon allocates little after start, from
//! the event loop, the writer thread and short-lived blocking threads, so one arena is
//! enough, and what start-up and a reload freed goes back to the kernel. A no-op where
//! the C library is not glibc (musl has one heap and returns what it frees). The stack:
//! start-up's deep frames are given back once the event loop runs. The file pages: the code
//! and read-only data start-up ran (config parsing, serde, the resolver) stay in the
//! process's RSS though the event loop never touches them again; `release_file_pages` drops
//! the process's mappings of them. A leaf: it imports nothing of the crate.

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

/// Gives back the calling thread's stack pages below the caller's frame, which start-up
/// (the config parse, the state and ring reads) or a run's work dirtied and the idle loop,
/// much shallower, does not use; they are mapped afresh, zeroed, if the stack grows that
/// deep again. Call it from a thread's loop before it waits: everything below is dead
/// then. The main thread's stack is `[stack]`; another thread's is the anonymous mapping
/// holding the caller's frame (its guard page is a mapping of its own, and its TLS sits at
/// the top, above every frame).
pub fn release_dead_stack() {
    // A margin below this frame for what it calls after the release (madvise, the free of
    // the maps text), so that no page given back is touched again at once; every frame
    // above, the idle loop's included, is shallower. 4 KiB kept one page more (4 KiB on
    // each thread's stack at idle).
    const MARGIN: usize = 1024;
    let Ok(maps) = read_proc("/proc/self/maps", 8 * 1024) else { return };
    let here = below_this_frame();
    // The mapping holding `here`: the main thread's `[stack]`, or a thread's stack right
    // above its guard page (a `---p` mapping ending where it starts). An anonymous mapping
    // without a guard below could be the kernel's merge of the stack with something else;
    // it is left alone.
    let mut below: Option<(usize, &str)> = None;
    let mut low = None;
    for l in maps.lines() {
        let mut f = l.split_ascii_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else { continue };
        let name = f.nth(3).unwrap_or("");
        let Some((lo, hi)) = address_range(range) else { continue };
        if (lo..hi).contains(&here) {
            let guarded = below.is_some_and(|(end, p)| end == lo && p.starts_with("---p"));
            if perms.starts_with("rw-p") && (name == "[stack]" || (name.is_empty() && guarded)) {
                low = Some(lo);
            }
            break;
        }
        below = Some((hi, perms));
    }
    let Some(low) = low else { return };
    let end = here.saturating_sub(MARGIN) & !4095;
    if end > low {
        // SAFETY: the range is inside this thread's own stack mapping and below the live
        // frames (the stack grows down from `here`); MADV_DONTNEED only drops its pages.
        unsafe {
            nix::libc::madvise(low as *mut nix::libc::c_void, end - low, nix::libc::MADV_DONTNEED);
        }
    }
}

/// A /proc file read whole, as `fsx::read_kernel` does (this module is a leaf).
fn read_proc(path: &str, capacity: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::with_capacity(capacity);
    std::fs::File::open(path)?.take(u64::MAX).read_to_string(&mut text)?;
    Ok(text)
}

/// A maps or smaps line's address range, `lo-hi` in hex.
fn address_range(field: &str) -> Option<(usize, usize)> {
    let (lo, hi) = field.split_once('-')?;
    Some((usize::from_str_radix(lo, 16).ok()?, usize::from_str_radix(hi, 16).ok()?))
}

/// An address below every live byte of the caller's frame: a local of a frame of its own,
/// called from it (stacks grow down).
#[inline(never)]
fn below_this_frame() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Drops this process's mappings of file pages it may never touch again: every mapping of a
/// file that is not writable and holds no private copy (`Anonymous: 0` in
/// /proc/self/smaps, read once, now): the binary's and the libraries' code and read-only
/// data. They stay in the page cache, clean and reclaimable, and what the event loop runs
/// next is mapped back by minor faults; RSS then holds only what the daemon uses, not what
/// start-up (the config parse, serde, the resolver) paged in. A private mapping that was
/// ever written (the relocated read-only data is mapped r-- but was written at load) holds
/// copies that MADV_DONTNEED would discard and replace with the file's bytes, so any
/// mapping with anonymous pages is left alone, as are the stack, the heap, anonymous maps
/// and the kernel's [vdso]/[vvar]. Returns the KiB of RSS the released mappings held.
pub fn release_file_pages() -> u64 {
    let Ok(smaps) = read_proc("/proc/self/smaps", 48 * 1024) else { return 0 };
    // (start, end, rss KiB, anonymous KiB) of the mapping being read; an anonymous count not
    // (yet) read is unknown and counts as private pages, never released.
    let mut cur: Option<(usize, usize, u64, u64)> = None;
    let mut released = 0;
    let mut flush = |m: Option<(usize, usize, u64, u64)>| {
        if let Some((lo, hi, rss, 0)) = m
            && rss > 0
        {
            // SAFETY: the range is a whole mapping of a file, not writable and with no
            // private (copied-on-write) page: MADV_DONTNEED only drops the process's
            // references to page-cache pages, which fault back unchanged when touched.
            if unsafe { nix::libc::madvise(lo as *mut nix::libc::c_void, hi - lo, nix::libc::MADV_DONTNEED) } == 0 {
                released += rss;
            }
        }
    };
    for line in smaps.lines() {
        let mut f = line.split_ascii_whitespace();
        let first = f.next().unwrap_or("");
        let kib = |v: Option<&str>| v.and_then(|n| n.parse::<u64>().ok());
        match first {
            "Rss:" => {
                if let Some(m) = cur.as_mut() {
                    m.2 = kib(f.next()).unwrap_or(0);
                }
            }
            "Anonymous:" => {
                if let Some(m) = cur.as_mut() {
                    m.3 = kib(f.next()).unwrap_or(u64::MAX);
                }
            }
            _ if first.ends_with(':') => {}
            _ => {
                // A mapping's header: "lo-hi perms offset dev inode [path]".
                flush(cur.take());
                let (Some(perms), Some(path)) = (f.next(), f.nth(3)) else { continue };
                let Some((lo, hi)) = address_range(first) else { continue };
                if path.starts_with('/') && !perms.contains('w') {
                    cur = Some((lo, hi, 0, u64::MAX));
                }
            }
        }
    }
    flush(cur.take());
    released
}
