//! glibc's malloc tunables; no-ops where the C library is another (musl has one heap and
//! returns what it frees).

/// One malloc arena for every thread of this process.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter, under malloc's own lock.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns freed heap pages to the kernel.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes malloc's own lock; it is safe from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
