//! `seesaw_engine`: the Seesaw engine.

use clap::Parser;
use seesaw_runtime::flags::GoBool;
use seesaw_runtime::{GlogFlags, exit_not_implemented, parse_go_flags};

/// Reconciles the cluster configuration against the kernel through the NCC.
#[derive(Parser, Debug)]
#[command(name = "seesaw_engine")]
struct Flags {
    /// Validate -conf and -cluster, print a summary and exit: 0 when both
    /// files are valid, 1 otherwise.
    #[arg(long = "check", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    check: GoBool,

    /// Node configuration file (INI).
    #[arg(long = "conf", default_value = "/etc/seesaw/seesaw.cfg")]
    conf: String,

    /// Cluster configuration file (protobuf text format).
    #[arg(long = "cluster", default_value = "/etc/seesaw/cluster.pb")]
    cluster: String,

    /// NCC socket.
    #[arg(long = "ncc_socket", default_value = "/var/run/seesaw/ncc/ncc.sock")]
    ncc_socket: String,

    /// Engine socket to serve IPC on.
    #[arg(long = "socket", default_value = "/var/run/seesaw/engine/engine.sock")]
    socket: String,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let flags: Flags = parse_go_flags(std::env::args());
    if flags.check.0 {
        todo!("offline check")
    }
    exit_not_implemented("seesaw_engine");
}
