//! `runner`: a static-config job scheduler and health supervisor for small Linux boxes.
//!
//! Data flows one way: [`config`] -> [`config::Plan`] -> [`scheduler`] -> [`jobs`] ->
//! [`record`] -> [`sinks`]. The binary in `main.rs` only parses arguments and calls [`cli`].
//! What needs `unsafe` lives in the `runner-sys` crate (crates/sys), behind safe functions.
#![forbid(unsafe_code)]

pub mod cli;
pub(crate) mod clockwatch;
pub mod config;
pub(crate) mod contain;
pub mod exit;
pub(crate) mod fsx;
pub(crate) mod health;
pub(crate) mod heap;
pub(crate) mod host;
pub mod jobs;
pub mod journal;
pub mod kinds;
pub(crate) mod lock;
pub(crate) mod logging;
pub mod metrics;
pub(crate) mod pidfile;
pub(crate) mod pings;
pub mod proc;
pub mod process;
pub mod record;
pub(crate) mod retry;
pub(crate) mod schedule;
pub mod scheduler;
pub(crate) mod sd_notify;
pub(crate) mod signals;
pub mod sinks;
pub(crate) mod state;
pub(crate) mod suggest;
pub(crate) mod syslog;
pub mod time;
pub(crate) mod users;
