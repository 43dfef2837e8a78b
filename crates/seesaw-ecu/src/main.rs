//! `seesaw_ecu`: remote control and monitoring.

use clap::Parser;
use seesaw_runtime::{GlogFlags, exit_not_implemented, parse_go_flags};

/// Serves the remote control API and the monitoring endpoint.
#[derive(Parser, Debug)]
#[command(name = "seesaw_ecu")]
struct Flags {
    /// Address of the TLS control endpoint.
    #[arg(long = "control_address", default_value = ":10256")]
    control_address: String,

    /// Address of the HTTP monitoring endpoint.
    #[arg(long = "monitor_address", default_value = ":10257")]
    monitor_address: String,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let _flags: Flags = parse_go_flags(std::env::args());
    exit_not_implemented("seesaw_ecu");
}
