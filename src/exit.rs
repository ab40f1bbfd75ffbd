//! Exit codes, shared by every command and the daemon. A leaf.

pub const ALREADY_RUNNING: u8 = 75;
/// EX_CONFIG: a service manager can stop restarting on an invalid config.
pub const CONFIG: u8 = 78;
pub const TIMEOUT: u8 = 124;
pub const RUNNER_ERROR: u8 = 125;
pub const CANNOT_EXECUTE: u8 = 126;
pub const NOT_FOUND: u8 = 127;
