//! `seesaw_engine`: the Seesaw engine.

use clap::Parser;
use seesaw_config::check::{CheckRequest, check};
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

    /// With -check, also check the peer node's seesaw.cfg against -conf:
    /// both must describe the same pair.
    #[arg(long = "peer_conf", default_value = "")]
    peer_conf: String,

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
        std::process::exit(run_check(&flags));
    }
    exit_not_implemented("seesaw_engine");
}

/// Runs the offline check: the summary goes to standard output, or the
/// findings to standard error, one per line. Returns the exit status: 0 when the files
/// are valid, 1 otherwise.
fn run_check(flags: &Flags) -> i32 {
    let request = CheckRequest {
        node_config: flags.conf.clone().into(),
        cluster: flags.cluster.clone().into(),
        peer_node_config: (!flags.peer_conf.is_empty()).then(|| flags.peer_conf.clone().into()),
    };
    let report = check(&request);

    // A passing summary lists the warnings itself; otherwise every finding
    // goes to standard error.
    if let Some(summary) = &report.summary {
        print!("{summary}");
        return 0;
    }
    for diagnostic in &report.diagnostics {
        eprintln!("{diagnostic}");
    }
    let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
    eprintln!("seesaw_engine: configuration rejected with {errors} error(s)");
    1
}
