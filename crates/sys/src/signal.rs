//! Signal dispositions.

/// Puts SIGPIPE back to its default action (Rust's runtime ignores it), for a command that
/// then raises it to end the way `ls` does when its reader went away.
pub fn default_sigpipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: SIG_DFL installs no handler code, so nothing can run in a signal context.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
