//! `seesaw_healthcheck`: the backend health checker.

use clap::Parser;
use seesaw_runtime::flags::GoBool;
use seesaw_runtime::{GlogFlags, exit_not_implemented, parse_go_flags};

/// Runs the health checks the engine asks for and reports the results.
#[derive(Parser, Debug)]
#[command(name = "seesaw_healthcheck")]
struct Flags {
    /// Longest wait after the first queued result before sending (Go duration).
    #[arg(long = "batch_delay", default_value = "100ms")]
    batch_delay: String,

    /// Send at once when this many results are queued.
    #[arg(long = "batch_size", default_value_t = 100)]
    batch_size: u32,

    /// Capacity of the internal result queue.
    #[arg(long = "channel_size", default_value_t = 1000)]
    channel_size: u32,

    /// Engine socket.
    #[arg(long = "engine", default_value = "/var/run/seesaw/engine/engine.sock")]
    engine: String,

    /// Attempts to send one batch before giving up.
    #[arg(long = "max_failures", default_value_t = 10)]
    max_failures: u32,

    /// Period between full status reports (Go duration).
    #[arg(long = "notify_interval", default_value = "15s")]
    notify_interval: String,

    /// Period between configuration fetches (Go duration).
    #[arg(long = "fetch_interval", default_value = "15s")]
    fetch_interval: String,

    /// Pause between failed batch sends (Go duration).
    #[arg(long = "retry_delay", default_value = "2s")]
    retry_delay: String,

    /// Skip the real checks and report every check as passing.
    #[arg(long = "dry_run", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    dry_run: GoBool,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let _flags: Flags = parse_go_flags(std::env::args());
    exit_not_implemented("seesaw_healthcheck");
}
