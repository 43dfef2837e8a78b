//! `seesaw_ecu`: remote control and monitoring.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use seesaw_ecu::EcuConfig;
use seesaw_ecu::tls::TlsFiles;
use seesaw_runtime::{EXIT_FATAL, GlogFlags, logging, parse_go_flags, shutdown_signal};

/// Serves the remote control API over HTTPS and the monitoring endpoints
/// over HTTP.
#[derive(Parser, Debug)]
#[command(name = "seesaw_ecu")]
struct Flags {
    /// Address of the HTTPS control server, as [host]:port.
    #[arg(long = "control_address", default_value = ":10256")]
    control_address: String,

    /// Address of the HTTP monitoring server (/healthz, /metrics), as
    /// [host]:port.
    #[arg(long = "monitor_address", default_value = ":10257")]
    monitor_address: String,

    /// Unix socket of the engine.
    #[arg(long = "engine", default_value = seesaw_ipc::DEFAULT_ENGINE_SOCKET)]
    engine: String,

    /// PEM certificate chain of the control server.
    #[arg(long = "cert_file", default_value = "/etc/seesaw/ssl/seesaw.crt")]
    cert_file: String,

    /// PEM private key of the control server.
    #[arg(long = "key_file", default_value = "/etc/seesaw/ssl/seesaw.key")]
    key_file: String,

    /// PEM CA certificates that client certificates must chain to; empty
    /// disables client certificates.
    #[arg(long = "ca_file", default_value = "/etc/seesaw/ssl/ca.crt")]
    ca_file: String,

    /// File of bearer tokens, one "<token> <role> <name>" per line, with
    /// role admin, operator or reader; empty disables tokens.
    #[arg(long = "token_file", default_value = "/etc/seesaw/ecu-tokens")]
    token_file: String,

    /// Time between collections of the engine's state for /metrics and
    /// /healthz, such as 10s.
    #[arg(long = "stats_interval", default_value = "10s", value_parser = humantime::parse_duration)]
    stats_interval: Duration,

    /// Limit on each engine call of a collection.
    #[arg(long = "engine_timeout", default_value = "5s", value_parser = humantime::parse_duration)]
    engine_timeout: Duration,

    #[command(flatten)]
    glog: GlogFlags,
}

/// Returns `None` for an empty path, which disables what it names.
fn optional_path(path: String) -> Option<PathBuf> {
    (!path.is_empty()).then(|| PathBuf::from(path))
}

fn main() -> ExitCode {
    let flags: Flags = parse_go_flags(std::env::args());
    logging::init("seesaw_ecu", &flags.glog);

    if flags.stats_interval.is_zero() {
        tracing::error!("invalid -stats_interval=0s: use a positive duration such as 10s");
        return ExitCode::from(EXIT_FATAL as u8);
    }
    let config = EcuConfig {
        control_address: flags.control_address,
        monitor_address: flags.monitor_address,
        engine_socket: PathBuf::from(flags.engine),
        tls: TlsFiles {
            certificate: PathBuf::from(flags.cert_file),
            key: PathBuf::from(flags.key_file),
            client_ca: optional_path(flags.ca_file),
        },
        token_file: optional_path(flags.token_file),
        stats_interval: flags.stats_interval,
        engine_timeout: flags.engine_timeout,
    };

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
    match runtime.block_on(seesaw_ecu::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::from(EXIT_FATAL as u8)
        }
    }
}
