//! `runner`: a static-config job scheduler and health supervisor for small Linux boxes.
//!
//! Data flows one way: [`config`] -> [`config::Plan`] -> [`scheduler`] -> [`jobs`] ->
//! [`record`] -> [`sinks`]. The binary in `main.rs` only parses arguments and calls [`cli`].

pub mod cli;
pub mod config;
pub mod process;
pub mod schedule;
pub mod users;
