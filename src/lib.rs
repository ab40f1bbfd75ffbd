//! `runner`: a static-config job scheduler and health supervisor for small Linux boxes.
//!
//! Data flows one way: [`config`] -> [`config::Plan`] -> [`scheduler`] -> [`jobs`] ->
//! [`record`] -> [`sinks`]. The binary in `main.rs` only parses arguments and calls [`cli`].

pub mod cli;
pub mod clockwatch;
pub mod config;
pub mod contain;
pub mod exit;
pub mod fsx;
pub mod health;
pub mod heap;
pub mod host;
pub mod jobs;
pub mod journal;
pub mod kinds;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod pings;
pub mod proc;
pub mod process;
pub mod procinfo;
pub mod record;
pub mod retry;
pub mod schedule;
pub mod scheduler;
pub mod signals;
pub mod sinks;
pub mod state;
pub mod suggest;
pub mod time;
pub mod users;
