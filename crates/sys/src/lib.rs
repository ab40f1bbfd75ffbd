//! Every `unsafe` block of runner, each with its safety argument, behind safe functions.
//! The product crate (`runner`) is `#![forbid(unsafe_code)]`; what it cannot do through std,
//! nix or tokio's safe API it does through this crate. A module here is one system facility;
//! none keeps state of its own but what its types own.
//!
//! Nothing here decides policy (which signal, which job, which fallback): that stays with
//! the caller, so this crate stays small enough to read whole.

pub mod dir;
pub mod fd;
pub mod heap;
pub mod pidfd;
pub mod signal;
pub mod spawn;
pub mod wait;
pub mod yaml;
