//! The `seesaw_engine` daemon: loads the cluster config, runs the vserver
//! state machine, serves its API and keeps the kernel, through the NCC, in
//! the state the machine wants.
//!
//! - [`ncc`]: the NCC as a trait, over gRPC; [`fake_ncc`] in memory.
//! - [`worker`]: converges the kernel to the published target.
//! - [`core`]: the state behind the API, one lock.
//! - [`server`] and [`access`]: the gRPC service and who may call what.
//! - [`snapshot`]: the state as API messages.
//! - [`config_feed`]: the config notifier's output into the core.
//! - [`sync`]: peer sync with the other engine of the pair.
//! - [`bgp`]: bgpd's neighbors, the service anycast addresses and the
//!   neighbor list.

pub mod access;
pub mod bgp;
pub mod config_feed;
pub mod core;
pub mod fake_ncc;
pub mod ncc;
pub mod server;
pub mod snapshot;
pub mod sync;
pub mod worker;

use std::collections::BTreeSet;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use seesaw_config::model::VipType;
use seesaw_config::node_config::NodeConfig;
use seesaw_ipc::engine_proto::engine_server::EngineServer;
use seesaw_ipc::{SocketGuard, bind_unix_socket, prepare_run_directory};
use seesaw_vrrp::HaState;
use tokio::sync::watch;
use tokio_stream::wrappers::UnixListenerStream;

use self::access::AccessGroups;
use self::core::Core;
use self::ncc::{LbOperation, Ncc, Observed};
use self::worker::{Target, WorkerStatus};
use crate::notifier::{Notifier, NotifierOptions};

/// Settings of the daemon besides the NCC.
#[derive(Clone)]
pub struct Options {
    pub node: NodeConfig,
    pub cluster_file: PathBuf,
    pub socket: PathBuf,
    pub groups: AccessGroups,
    /// Changes to the notifier's options, for tests (a shorter interval,
    /// a resolver that never queries DNS).
    pub adjust_notifier: Option<AdjustNotifier>,
}

/// A change to the notifier's options; see [`Options::adjust_notifier`].
pub type AdjustNotifier = Arc<dyn Fn(&mut NotifierOptions) + Send + Sync>;

/// Handles to a running engine, for tests and benchmarks.
#[derive(Clone)]
pub struct Running {
    pub core: Arc<Mutex<Core>>,
    pub worker: Arc<WorkerStatus>,
}

/// Retries `call` with a growing pause until it succeeds: 250 ms more
/// after each failure, at most 10 s.
async fn retry<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ncc::NccError>>,
{
    let mut attempt = 0u32;
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) => {
                attempt += 1;
                let pause = Duration::from_millis(250 * u64::from(attempt.min(40)));
                tracing::warn!("{what} failed (attempt {attempt}): {error}; retrying in {pause:?}");
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Runs the engine until `shutdown` completes. Fails only when the first
/// cluster config cannot be loaded or the socket cannot be served; NCC
/// errors are retried, never fatal.
///
/// At shutdown the kernel is left as it is, so a restarted engine takes
/// over without dropping a connection (docs/engine.md). Only the anycast
/// VIPs are withdrawn from BGP, because nothing checks their health once
/// the engine is gone.
pub async fn run<N: Ncc>(
    options: Options,
    ncc: N,
    shutdown: impl Future<Output = ()>,
    started: impl FnOnce(Running),
) -> Result<(), String> {
    let node = options.node.clone();
    let mut notifier_options = NotifierOptions::new(&node, options.cluster_file.clone());
    if let Some(adjust) = &options.adjust_notifier {
        adjust(&mut notifier_options);
    }
    let mut notifier = Notifier::start(notifier_options)
        .await
        .map_err(|error| error.to_string())?;
    let first = notifier
        .notifications
        .recv()
        .await
        .ok_or("the config notifier stopped before the first config")?;
    tracing::info!("Seesaw Engine starting for {}", node.cluster_name);

    let started_at = std::time::Instant::now();
    let mut observed: Observed =
        retry("reading the kernel state from the NCC", || ncc.observe()).await;
    tracing::info!(
        "read the kernel state through the NCC in {:.3} s: {} IPVS services",
        started_at.elapsed().as_secs_f64(),
        observed.state.services.len()
    );
    // An LB interface with the cluster VIP was set up before. When an
    // earlier engine of ours set it up, it is kept so that no connection
    // drops. When the Go Seesaw did, the NCC reports it, and the interface
    // is initialised from scratch.
    let keep_lb_interface =
        observed.lb_initialised && retry("readying the LB interface", || ncc.prepare()).await;
    if keep_lb_interface {
        tracing::info!(
            "the LB interface is already set up; keeping it and {} IPVS services as they are",
            observed.state.services.len()
        );
    } else {
        let init_at = std::time::Instant::now();
        retry("initialising the LB interface", || {
            ncc.lb(LbOperation::Init)
        })
        .await;
        tracing::info!(
            "initialised the LB interface in {:.3} s",
            init_at.elapsed().as_secs_f64()
        );
        // Initialising flushes the LB and dummy interfaces' addresses.
        observed = retry("reading the kernel state from the NCC", || ncc.observe()).await;
        observed.lb_up = false;
    }

    let (target_tx, target_rx) = watch::channel(Target::default());
    let mut core = Core::new(node.clone(), SystemTime::now(), target_tx);
    let info = config_feed::info(&first);
    let core_at = std::time::Instant::now();
    core.start(first.cluster, info, &observed.state);
    tracing::info!(
        "computed the state of {} vservers in {:.3} s",
        core.engine.vservers().count(),
        core_at.elapsed().as_secs_f64()
    );
    let core = Arc::new(Mutex::new(core));
    let status = Arc::new(WorkerStatus::default());

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(worker::run(
        ncc.clone(),
        observed,
        target_rx,
        status.clone(),
    ));
    tasks.spawn(arp_loop(ncc.clone(), core.clone(), node.garp_interval));
    tasks.spawn(ha_timer(core.clone()));
    tasks.spawn(stats_loop(
        ncc.clone(),
        core.clone(),
        node.engine.stats_interval,
    ));
    let control = Arc::new(notifier.handle.clone());
    let configs = core
        .lock()
        .expect("engine state poisoned")
        .configs
        .subscribe();
    tasks.spawn(bgp::run(ncc.clone(), core.clone(), configs));
    tasks.spawn(config_feed::run(notifier.notifications, core.clone()));
    let transitions = core
        .lock()
        .expect("engine state poisoned")
        .transitions
        .subscribe();
    tasks.spawn(reset_source_on_transitions(
        transitions,
        notifier.handle.clone(),
    ));

    let peer_sync = sync::PeerSync::new(sync::SyncSettings::from_node(&node));
    notifier.handle.set_peer(peer_sync.config_source());
    let peer_failover = peer_sync.failover();
    let peer_sync = peer_sync.start(
        core.clone(),
        notifier.handle.clone(),
        options.cluster_file.clone(),
    );

    if let Err(error) = prepare_run_directory(&options.socket) {
        tracing::warn!(
            "failed to prepare the directory of {}: {error}",
            options.socket.display()
        );
    }
    let listener = bind_unix_socket(&options.socket)
        .await
        .map_err(|error| error.to_string())?;
    let _guard = SocketGuard::new(&options.socket);
    if options.groups != AccessGroups::default() {
        open_socket_to_groups(&options.socket);
    }
    tracing::info!("serving on {}", options.socket.display());
    started(Running {
        core: core.clone(),
        worker: status,
    });

    let service = server::EngineService::new(core.clone(), control, options.groups)
        .with_peer_failover(peer_failover);
    let served = tonic::transport::Server::builder()
        .add_service(EngineServer::new(service))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    peer_sync.stop().await;
    tasks.abort_all();
    // Waits for the aborted tasks, so that no NCC call of the worker is in
    // flight while the anycast VIPs are withdrawn.
    while tasks.join_next().await.is_some() {}
    withdraw_anycast(&ncc, &core).await;
    notifier.handle.shutdown();
    served.map_err(|error| format!("serving on {} failed: {error}", options.socket.display()))?;
    tracing::info!("Shutdown complete");
    Ok(())
}

/// How long the withdrawals at shutdown may take: well within the 10 s that
/// the watchdog gives the engine between SIGTERM and SIGKILL.
const WITHDRAW_TIMEOUT: Duration = Duration::from_secs(5);

/// Withdraws every anycast VIP of this node from BGP at shutdown, and the
/// service anycast addresses with them. Once the engine stops, nothing
/// checks their health, so the router must send
/// their traffic to the other nodes. IPVS and the VIPs stay, as at any
/// shutdown. Every anycast VIP of the vservers is withdrawn, advertised or
/// not, because the NCC accepts withdrawing a VIP it does not advertise.
async fn withdraw_anycast<N: Ncc>(ncc: &N, core: &Mutex<Core>) {
    let addresses: BTreeSet<IpAddr> = {
        let core = core.lock().expect("engine state poisoned");
        if !core.node.anycast_enabled {
            return;
        }
        let configured = core
            .engine
            .vservers()
            .flat_map(|(_, state)| &state.config.vips)
            .filter(|vip| vip.vip_type == VipType::Anycast)
            .map(|vip| vip.ip);
        core.engine
            .desired()
            .advertised
            .iter()
            .copied()
            .chain(configured)
            .chain(bgp::service_anycast(&core.node))
            .collect()
    };
    if addresses.is_empty() {
        return;
    }
    let withdraw = async {
        let mut withdrawn = 0;
        for ip in &addresses {
            match ncc.bgp(*ip, false).await {
                Ok(()) => withdrawn += 1,
                Err(error) => tracing::error!("failed to withdraw anycast VIP {ip}: {error}"),
            }
        }
        withdrawn
    };
    match tokio::time::timeout(WITHDRAW_TIMEOUT, withdraw).await {
        Ok(withdrawn) => tracing::info!(
            "withdrew {withdrawn} of {} anycast VIPs from BGP at shutdown",
            addresses.len()
        ),
        Err(_) => tracing::error!(
            "withdrawing {} anycast VIPs from BGP timed out after {WITHDRAW_TIMEOUT:?}",
            addresses.len()
        ),
    }
}

/// Returns the config source to the one used after the start, and
/// reloads, at every transition to master or backup, as Seesaw switches to
/// its config server then.
async fn reset_source_on_transitions(
    mut transitions: watch::Receiver<u64>,
    notifier: crate::notifier::NotifierHandle,
) {
    while transitions.changed().await.is_ok() {
        let previous = notifier.reset_source();
        tracing::info!("HA transition: config source reset (was {previous}) and reloaded");
    }
}

/// Lets users other than root reach the socket once `[access]` names
/// groups: the directory becomes 0755 and the socket 0666, and every call
/// is then authorised by the caller's credentials (see [`access`]).
fn open_socket_to_groups(socket: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let modes = [
        (socket.parent().map(|dir| dir.to_path_buf()), 0o755),
        (Some(socket.to_path_buf()), 0o666),
    ];
    for (path, mode) in modes {
        let Some(path) = path else { continue };
        if let Err(error) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)) {
            tracing::warn!(
                "failed to set mode {mode:o} on {}: {error}; only root can use the engine's socket",
                path.display()
            );
        }
    }
}

/// Announces the cluster VIP (and without the VRRP MAC, the VIPs) while
/// this node is master.
async fn arp_loop<N: Ncc>(ncc: N, core: Arc<Mutex<Core>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
    let mut announcing = false;
    loop {
        ticker.tick().await;
        let targets = {
            let core = core.lock().expect("engine state poisoned");
            (core.ha.state() == HaState::Leader).then(|| core.arp_targets())
        };
        match targets {
            Some(targets) => {
                if !announcing {
                    tracing::info!("Starting gratuitous ARPs every {interval:?}");
                    announcing = true;
                }
                if let Err(error) = ncc.gratuitous_arp(targets).await {
                    tracing::warn!("gratuitous ARP failed: {error}");
                }
            }
            None if announcing => {
                tracing::info!("Stopping gratuitous ARPs");
                announcing = false;
            }
            None => {}
        }
    }
}

/// Drops the HA state to UNKNOWN when seesaw_ha stops reporting.
async fn ha_timer(core: Arc<Mutex<Core>>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        core.lock().expect("engine state poisoned").ha_expire();
    }
}

/// Refreshes the IPVS counters the snapshots show.
async fn stats_loop<N: Ncc>(ncc: N, core: Arc<Mutex<Core>>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_secs(1)));
    loop {
        ticker.tick().await;
        match ncc.ipvs_services().await {
            Ok(services) => {
                let stats = services
                    .into_iter()
                    .map(|(service, destinations)| {
                        let id = crate::kernel::ServiceId::from_key(&service.key);
                        let destinations = destinations
                            .into_iter()
                            .map(|d| (d.address.ip(), d))
                            .collect();
                        (id, (service, destinations))
                    })
                    .collect();
                core.lock().expect("engine state poisoned").stats = stats;
            }
            Err(error) => tracing::warn!("failed to read IPVS counters: {error}"),
        }
    }
}
