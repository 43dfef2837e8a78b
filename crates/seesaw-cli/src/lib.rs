//! The seesaw shell: the operator's view of the engine and its controls,
//! installed as `/usr/bin/seesaw`.
//!
//! - [`tree`]: the command tree and prefix matching.
//! - [`exec`]: running a line against the engine.
//! - [`select`], [`render`], [`json`]: what a show command selects and how
//!   it prints, as pure functions of the engine's replies.
//! - [`complete`]: what Tab and `?` offer.
//! - [`shell`]: the interactive line editor.
//! - [`engine`]: the engine calls, over gRPC or faked in tests.

#![forbid(unsafe_code)]

pub mod complete;
pub mod engine;
pub mod exec;
pub mod json;
pub mod layout;
pub mod render;
pub mod select;
pub mod shell;
pub mod tree;

pub use seesaw_ipc::engine_proto::OverrideState;
