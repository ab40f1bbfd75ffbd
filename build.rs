//! Records when the binary was built: a box without a battery-backed clock boots in the
//! past, and calendar jobs are held until the wall clock passes this instant. Also passes the
//! binary's size-saving link flags (README, "Binary size"; the test and bench binaries keep
//! the defaults).
fn main() {
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    });
    println!("cargo:rustc-env=RUNNER_BUILD_EPOCH={epoch}");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // Identical code folding: serde, tokio and our own generics leave byte-identical copies
    // of functions (12 KB). Rust promises no distinct function addresses, so folding is safe.
    // Only lld knows the flag, and rust-lld is the default linker on x86_64 glibc alone: the
    // cross targets link with Debian's GNU ld (.cargo/config.toml), which refuses it.
    if std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
    // The unwinder from libgcc_eh.a instead of libgcc_s.so.1: std refers to ten `_Unwind_*`
    // symbols (its personality routine and backtraces; panics abort in release), and with
    // them resolved here `--as-needed` drops libgcc_s. One library fewer for ld.so to map
    // and relocate saves 8 KiB of private memory (its relocated and written pages) for 24 KB
    // of binary (README, "Where the idle daemon's private memory goes"). Named here rather
    // than as a link argument because those come after std's `-lgcc_s` on the link line.
    if std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu") {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
    // Not DT_RELR (`-z pack-relative-relocs`, 57 KB smaller): it needs glibc 2.36 at run
    // time, which Ubuntu 22.04 and RHEL 9 (2.35, 2.34) do not have (README, "Binary size").
}
