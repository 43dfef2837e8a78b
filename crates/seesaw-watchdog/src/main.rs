//! `seesaw_watchdog`: the supervisor of the other daemons.

use clap::Parser;
use seesaw_runtime::{GlogFlags, exit_not_implemented, parse_go_flags};

/// Starts the Seesaw daemons in dependency order, restarts them when they
/// exit and stops them in reverse order.
#[derive(Parser, Debug)]
#[command(name = "seesaw_watchdog")]
struct Flags {
    /// Watchdog configuration file.
    #[arg(long = "config", default_value = "/etc/seesaw/watchdog.cfg")]
    config: String,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let _flags: Flags = parse_go_flags(std::env::args());
    exit_not_implemented("seesaw_watchdog");
}
