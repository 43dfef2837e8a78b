//! Process plumbing shared by every Seesaw binary.

#![forbid(unsafe_code)]

pub mod flags;
pub mod logging;
pub mod signals;

pub use flags::{GlogFlags, parse_go_flags};
pub use signals::shutdown_signal;

/// Exit status of a binary whose daemon is not written yet, and of a fatal
/// start-up error, as glog's `Fatal` uses.
pub const EXIT_FATAL: i32 = 2;

/// Prints that `program` is not implemented yet and exits with status 2.
///
/// The flags have already been parsed, so `-help` still shows them.
pub fn exit_not_implemented(program: &str) -> ! {
    eprintln!("{program}: not implemented yet in seesaw-rs; run `{program} -help` for its flags");
    std::process::exit(EXIT_FATAL)
}
