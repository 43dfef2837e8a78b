//! Peer sync between the two engines of a pair.
//!
//! Each engine serves the `PeerSync` gRPC service of `proto/sync.proto` on
//! TCP port 10258 of its node_ipv4, and accepts only the peer's address
//! and, with `[sync]` TLS files, only the peer's certificate. While an
//! engine is not master, it follows its peer's state. The master's
//! overrides replace its own. The check states are compared with its own,
//! and the differences logged. A new config generation reloads the config
//! when the source is `peer`. A restarted engine takes back the
//! overrides that the first peer session offers. A failover requested on
//! the backup is passed to the peer.
//!
//! - [`state`]: the versioned state and the receiver's copy.
//! - [`health`]: the comparison of check states.
//! - [`server`] and [`client`]: the two ends.
//! - [`transport`] and [`tls`]: the connections and their checks.

pub mod client;
pub mod health;
pub mod server;
pub mod state;
pub mod tls;
pub mod transport;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use seesaw_config::check::context_of;
use seesaw_config::model::Cluster;
use seesaw_config::node_config::{NodeConfig, SyncTls};
use seesaw_vrrp::HaState;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::client::{FollowTiming, Follower, PeerClient};
use self::server::{Publisher, SessionTiming, SyncService};
use self::state::{CheckStates, check_states};
use self::tls::SyncTlsConfig;
use self::transport::{Dialer, Gate, Throttle};
use super::core::Core;
use super::server::PeerFailover;
use crate::notifier::{NotifierHandle, PeerConfigSource};

/// How often the engine's state is read for publishing, and the HA state
/// for following the peer.
const STATE_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// How long a connection to the peer may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long the sync tasks get to end at shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The addresses, TLS files and timing of peer sync.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// node_ipv4 and the sync port.
    pub listen: SocketAddr,
    /// peer_ipv4 and the sync port; `None` without a peer, which turns the
    /// client off.
    pub peer: Option<SocketAddr>,
    /// The addresses the server accepts: peer_ipv4.
    pub allowed: Vec<IpAddr>,
    pub tls: Option<SyncTls>,
    pub heartbeat: Duration,
    pub session_timeout: Duration,
    pub retry: Duration,
}

impl SyncSettings {
    pub fn from_node(node: &NodeConfig) -> Self {
        let port = node.engine.sync_port;
        // The server listens on node_ipv4 alone, so an IPv6 peer address
        // could never connect.
        let allowed = node.peer_ipv4.map(IpAddr::V4).into_iter().collect();
        SyncSettings {
            listen: SocketAddr::new(IpAddr::V4(node.node_ipv4), port),
            peer: node
                .peer_ipv4
                .map(|peer| SocketAddr::new(IpAddr::V4(peer), port)),
            allowed,
            tls: node.sync.tls.clone(),
            heartbeat: node.engine.sync_heartbeat_interval,
            session_timeout: node.engine.sync_session_timeout,
            retry: node.engine.sync_retry_interval,
        }
    }
}

/// Peer sync, set up but not started: the calls to the peer work already.
pub struct PeerSync {
    settings: SyncSettings,
    /// The TLS settings, or why they failed to load, which disables sync.
    tls: Result<Option<SyncTlsConfig>, String>,
    client: Arc<PeerClient>,
}

impl PeerSync {
    /// Loads the TLS files. A failure is logged, and leaves sync off
    /// rather than falling back to plain TCP.
    pub fn new(settings: SyncSettings) -> Self {
        let local = settings.listen.ip();
        let tls = match &settings.tls {
            None => Ok(None),
            Some(files) => tls::load(files, local)
                .map(Some)
                .map_err(|error| format!("peer sync is off: {error}")),
        };
        if let Err(error) = &tls {
            tracing::error!("{error}; fix [sync] in seesaw.cfg and restart the engine");
        }
        let dialer = match (&tls, settings.peer) {
            (Err(error), _) => Err(error.clone()),
            (Ok(_), None) => Err("seesaw.cfg sets no peer_ipv4".to_string()),
            (Ok(tls), Some(peer)) => Ok(Dialer {
                local,
                peer,
                tls: tls.as_ref().map(|tls| tls.client.clone()),
                connect_timeout: CONNECT_TIMEOUT,
                keepalive: settings.heartbeat,
            }),
        };
        PeerSync {
            settings,
            tls,
            client: Arc::new(PeerClient::new(dialer)),
        }
    }

    /// Returns the notifier's hook for the `peer` source, when there is a
    /// peer.
    pub fn config_source(&self) -> Option<Arc<dyn PeerConfigSource>> {
        self.settings
            .peer
            .map(|_| self.client.clone() as Arc<dyn PeerConfigSource>)
    }

    /// Returns the API's hook that passes a failover to the peer.
    pub fn failover(&self) -> Arc<dyn PeerFailover> {
        self.client.clone()
    }

    /// Starts the server, the client and the task that publishes this
    /// engine's state. `cluster_file` is served as the config in force.
    pub fn start(
        self,
        core: Arc<Mutex<Core>>,
        notifier: NotifierHandle,
        cluster_file: PathBuf,
    ) -> RunningSync {
        let (stop, shutdown) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let Ok(tls) = self.tls else {
            return RunningSync { stop, tasks };
        };
        let publisher = Arc::new(Publisher::new(instance_id()));
        let (enable, enabled) = watch::channel(false);

        let context = context_of(&core.lock().expect("engine state poisoned").node);
        let timing = SessionTiming {
            heartbeat: self.settings.heartbeat,
            timeout: self.settings.session_timeout,
        };
        let service = SyncService::new(
            publisher.clone(),
            core.clone(),
            cluster_file,
            context,
            timing,
            shutdown.clone(),
        );
        let gate = Arc::new(Gate {
            allowed: self.settings.allowed.clone(),
            tls: tls.as_ref().map(|tls| tls.server.clone()),
            rejections: Throttle::new(Duration::from_secs(60)),
        });
        tasks.spawn(server::serve(
            service,
            self.settings.listen,
            gate,
            self.settings.retry,
            shutdown.clone(),
        ));

        if let Ok(dialer) = self.client.dialer() {
            let timing = FollowTiming {
                session_timeout: self.settings.session_timeout,
                retry: self.settings.retry,
            };
            let follower = Follower::new(dialer.clone(), core.clone(), notifier, timing);
            tasks.spawn(follower.run(enabled, shutdown.clone()));
        }

        let watcher = StateWatcher {
            core,
            publisher,
            enable,
            has_peer: self.settings.peer.is_some(),
            health_interval: self.settings.heartbeat,
        };
        tasks.spawn(watcher.run(shutdown));
        RunningSync { stop, tasks }
    }
}

/// The running sync tasks.
pub struct RunningSync {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningSync {
    /// Ends the sessions and stops the tasks. Sessions end first, so that
    /// the server's graceful shutdown does not wait for their streams.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        let stopped = tokio::time::timeout(STOP_TIMEOUT, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if stopped.is_err() {
            tracing::warn!("peer sync did not stop within {STOP_TIMEOUT:?}; aborting it");
            self.tasks.abort_all();
        }
    }
}

/// Waits until `shutdown` turns true, or its sender is gone.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Returns a number that differs between engine starts.
fn instance_id() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// Reads the engine's state for the publisher, and its HA state to turn
/// the client on and off.
struct StateWatcher {
    core: Arc<Mutex<Core>>,
    publisher: Arc<Publisher>,
    enable: watch::Sender<bool>,
    has_peer: bool,
    health_interval: Duration,
}

impl StateWatcher {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(STATE_POLL_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_health = tokio::time::Instant::now();
        let mut cluster: Option<Arc<Cluster>> = None;
        let mut config_generation = 0;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = stopping(&mut shutdown) => return,
            }
            let collect_health = tokio::time::Instant::now() >= next_health;
            if collect_health {
                next_health += self.health_interval;
            }
            let (ha, overrides, checks) = {
                let core = self.core.lock().expect("engine state poisoned");
                let same_cluster = match (&cluster, &core.cluster) {
                    (Some(old), Some(new)) => Arc::ptr_eq(old, new),
                    (None, None) => true,
                    _ => false,
                };
                if !same_cluster {
                    cluster = core.cluster.clone();
                    config_generation += 1;
                }
                let checks: Option<CheckStates> =
                    collect_health.then(|| check_states(&core.engine));
                (core.ha.state(), core.engine.overrides().clone(), checks)
            };

            self.follow_ha(ha);
            self.publisher
                .publish(&overrides, checks.as_ref(), config_generation);
        }
    }

    /// Turns the client on while this node is not master.
    fn follow_ha(&self, current: HaState) {
        let master = current == HaState::Leader;
        self.publisher.set_master(master);
        self.enable.send_if_modified(|enabled| {
            let wanted = self.has_peer && !master;
            let changed = *enabled != wanted;
            *enabled = wanted;
            changed
        });
    }
}
