//! `seesaw_ncc`: the network control centre.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use seesaw_ipc::proto::ncc_server::NccServer;
use seesaw_ipc::{SocketGuard, bind_unix_socket, prepare_run_directory};
use seesaw_ncc::bgp::{self, Bgp};
use seesaw_ncc::net::Net;
use seesaw_ncc::ops::Ncc;
use seesaw_ncc::service::NccService;
use seesaw_runtime::{GlogFlags, logging, parse_go_flags, shutdown_signal};
use tokio_stream::wrappers::UnixListenerStream;

/// Programs IPVS, addresses, routes, ARP and iptables on behalf of the engine.
#[derive(Parser, Debug)]
#[command(name = "seesaw_ncc")]
struct Flags {
    /// Unix socket the NCC serves the engine on.
    #[arg(long = "socket", default_value = "/var/run/seesaw/ncc/ncc.sock")]
    socket: String,

    /// vty socket of the bgpd (FRR or Quagga) that advertises anycast VIPs.
    #[arg(long = "bgpd_vty", default_value = bgp::DEFAULT_VTY_SOCKET)]
    bgpd_vty: String,

    #[command(flatten)]
    glog: GlogFlags,
}

/// Exit status of a fatal start-up error, as glog's Fatal uses.
const EXIT_FATAL: u8 = 2;

fn main() -> ExitCode {
    let flags: Flags = parse_go_flags(std::env::args());
    logging::init("seesaw_ncc", &flags.glog);

    if !nix::unistd::geteuid().is_root() {
        tracing::error!("seesaw_ncc must run as root: it changes IPVS, links, routes and iptables");
        return ExitCode::from(EXIT_FATAL);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!("failed to start the async runtime: {error}");
            return ExitCode::from(EXIT_FATAL);
        }
    };
    let bgp = Bgp::new(flags.bgpd_vty);
    match runtime.block_on(run(PathBuf::from(flags.socket), bgp)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::from(EXIT_FATAL)
        }
    }
}

async fn run(socket: PathBuf, bgp: Bgp) -> Result<(), String> {
    let ipvs = seesaw_ipvs::Ipvs::connect()
        .await
        .map_err(|error| format!("IPVS initialisation failed: {error}"))?;
    match ipvs.info().await {
        Ok(info) => tracing::info!("IPVS version {}", info.version),
        Err(error) => return Err(format!("IPVS initialisation failed: {error}")),
    }
    let net = Net::connect().map_err(|error| error.to_string())?;
    let ncc = Arc::new(Ncc::new(net));

    let bgpd_socket = bgp.socket().to_path_buf();
    let service = NccService::new(Arc::clone(&ncc), Arc::new(ipvs), Arc::new(bgp));
    if let Err(error) = prepare_run_directory(&socket) {
        tracing::warn!(
            "failed to prepare the directory of {}: {error}",
            socket.display()
        );
    }
    let listener = bind_unix_socket(&socket)
        .await
        .map_err(|error| error.to_string())?;
    let _socket_guard = SocketGuard::new(&socket);
    tracing::info!("serving on {}", socket.display());

    // Switching over from the Go NCC: its rules sit in built-in chains,
    // where ours never go. The first iptables call in a network namespace
    // can take a second or more, so this runs while the NCC already
    // serves. Calls that change the network wait for it.
    let startup = service.network_lock().lock_owned().await;
    let remover = Arc::clone(&ncc);
    tokio::spawn(async move {
        match remover.remove_go_iptables().await {
            Ok(0) => {}
            Ok(count) => tracing::info!("removed {count} iptables rules left by the Go NCC"),
            Err(error) => {
                tracing::warn!("failed to remove iptables rules left by the Go NCC: {error}")
            }
        }
        drop(startup);
    });

    tracing::info!("driving bgpd through {}", bgpd_socket.display());
    let served = tonic::transport::Server::builder()
        .add_service(NccServer::new(service))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown_signal())
        .await;
    ncc.shutdown();
    served.map_err(|error| format!("serving on {} failed: {error}", socket.display()))?;
    tracing::info!("stopped");
    Ok(())
}
