//! `seesaw`: the operator's shell.

use clap::Parser;
use seesaw_runtime::{GlogFlags, exit_not_implemented, parse_go_flags};

/// The seesaw shell: inspect and control the load balancer.
#[derive(Parser, Debug)]
#[command(name = "seesaw")]
struct Flags {
    /// Run one command and exit; without it the shell is interactive.
    #[arg(short = 'c', long = "c", default_value = "")]
    command: String,

    /// Engine socket.
    #[arg(long = "engine", default_value = "/var/run/seesaw/engine/engine.sock")]
    engine: String,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let _flags: Flags = parse_go_flags(std::env::args());
    exit_not_implemented("seesaw");
}
