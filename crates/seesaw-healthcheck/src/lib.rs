//! The Seesaw health checker: checkers, their scheduler, and the daemon
//! that feeds them configurations and reports their results.

pub mod checker;
pub mod config;
pub mod daemon;
pub mod dial;
pub mod engine;
pub mod lateness;
pub mod report;
pub mod scheduler;
pub mod status;
pub mod target;
pub mod tls;
