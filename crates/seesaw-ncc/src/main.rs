//! `seesaw_ncc`: the network control centre.

use clap::Parser;
use seesaw_runtime::{GlogFlags, exit_not_implemented, parse_go_flags};

/// Programs IPVS, addresses, routes, ARP and iptables on behalf of the engine.
#[derive(Parser, Debug)]
#[command(name = "seesaw_ncc")]
struct Flags {
    /// Unix socket the NCC serves the engine on.
    #[arg(long = "socket", default_value = "/var/run/seesaw/ncc/ncc.sock")]
    socket: String,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let _flags: Flags = parse_go_flags(std::env::args());
    exit_not_implemented("seesaw_ncc");
}
