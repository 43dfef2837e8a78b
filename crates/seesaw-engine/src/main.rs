//! `seesaw_engine`: the Seesaw engine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use seesaw_config::check::{CheckRequest, check};
use seesaw_config::node_config::NodeConfig;
use seesaw_engine::daemon::access::AccessGroups;
use seesaw_engine::daemon::ncc::GrpcNcc;
use seesaw_engine::daemon::{self, Options};
use seesaw_ipc::ClientOptions;
use seesaw_runtime::flags::GoBool;
use seesaw_runtime::{EXIT_FATAL, GlogFlags, logging, parse_go_flags, shutdown_signal};

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

    /// With -check, exit 2 when the files are valid but have warnings
    /// (a misspelt option, say), for scripts that test the exit status.
    #[arg(long = "strict", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    strict: GoBool,

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

fn main() -> ExitCode {
    let flags: Flags = parse_go_flags(std::env::args());
    if flags.check.0 {
        return ExitCode::from(run_check(&flags) as u8);
    }
    logging::init("seesaw_engine", &flags.glog);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("failed to start the async runtime: {error}");
            return ExitCode::from(EXIT_FATAL as u8);
        }
    };
    match runtime.block_on(serve(&flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("seesaw_engine: {message}");
            ExitCode::from(EXIT_FATAL as u8)
        }
    }
}

/// Loads seesaw.cfg, connects to the NCC and runs the daemon.
async fn serve(flags: &Flags) -> Result<(), String> {
    let (node, warnings) = NodeConfig::load(&flags.conf).map_err(|rejected| {
        let lines: Vec<String> = rejected.0.iter().map(ToString::to_string).collect();
        format!("invalid node configuration:\n  {}", lines.join("\n  "))
    })?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    // The NCC starts before the engine under the watchdog, but may still be
    // coming up. The channel dials it at the first call, so the engine
    // loads its config meanwhile, and failed calls are retried.
    let client = seesaw_ipc::connect_lazy(&flags.ncc_socket, &ClientOptions::default());
    let ncc = GrpcNcc::new(client, &node);
    let groups = AccessGroups {
        admin: node.access.admin_group.clone(),
        operator: node.access.operator_group.clone(),
        reader: node.access.reader_group.clone(),
    };
    let options = Options {
        node,
        cluster_file: PathBuf::from(&flags.cluster),
        socket: PathBuf::from(&flags.socket),
        groups,
        adjust_notifier: None,
    };
    daemon::run(options, ncc, shutdown_signal(), |_| {}).await
}

/// Runs the offline check: the summary goes to standard output, or the
/// findings to standard error, one per line. Returns the exit status: 0
/// when the files are valid, 1 otherwise, and 2 with -strict when valid
/// files have warnings.
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
        let warnings = report.diagnostics.len();
        if flags.strict.0 && warnings > 0 {
            eprintln!("seesaw_engine: -strict: the configuration has {warnings} warning(s)");
            return 2;
        }
        return 0;
    }
    for diagnostic in &report.diagnostics {
        eprintln!("{diagnostic}");
    }
    let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
    eprintln!("seesaw_engine: configuration rejected with {errors} error(s)");
    1
}
