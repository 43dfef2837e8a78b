//! The engine's configuration sources: cluster.pb on disk, the config
//! servers over HTTPS and the peer node.
//!
//! [`Notifier::start`] loads the first config (the peer when one is
//! supplied, then the disk, then the config servers) and spawns a task
//! that loads it again on `config reload`, every `config_interval`, and
//! from disk whenever cluster.pb changes, whatever the source. Each config that
//! loads, passes every check and differs from the one in force is sent to
//! the engine as a [`ClusterNotification`], whole: there is no limit on how
//! many vservers one notification adds, changes or removes.
//!
//! The last good config always stays in force. A config that fails to
//! load, fetch, decode or validate changes nothing: its errors are logged
//! and kept in [`NotifierStatus`] for `config status`. A config from a
//! config server or the peer is saved to cluster.pb, the previous file
//! archived, so the disk keeps the last good config across restarts.
//!
//! ```no_run
//! # async fn run(node: seesaw_config::node_config::NodeConfig) -> Result<(), Box<dyn std::error::Error>> {
//! use seesaw_engine::notifier::{Notifier, NotifierOptions, DEFAULT_CLUSTER_FILE};
//!
//! let options = NotifierOptions::new(&node, DEFAULT_CLUSTER_FILE);
//! let mut notifier = Notifier::start(options).await?; // no config at all: fatal
//! let handle = notifier.handle.clone(); // for `config reload`, `config source`, `config status`
//! while let Some(notification) = notifier.notifications.recv().await {
//!     // Apply notification.cluster; skip the vserver work when
//!     // notification.metadata_only.
//! }
//! # Ok(())
//! # }
//! ```

pub mod fetch;
mod run;
pub mod save;
pub mod source;
pub mod status;
mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use seesaw_config::check::context_of;
use seesaw_config::cluster::NodeContext;
use seesaw_config::diag::Diagnostic;
use seesaw_config::model::Cluster;
use seesaw_config::node_config::{DEFAULT_CONFIG_SERVER, NodeConfig};
use tokio::sync::{mpsc, watch as signal};
use tokio::task::JoinHandle;

pub use fetch::{Resolve, StaticResolver, SystemResolver};
pub use source::{PeerConfig, PeerConfigSource, Source, UnknownSource};
pub use status::{Attempt, ConfigInForce, NotifierStatus, Outcome, Trigger};

/// The path of cluster.pb, as in Seesaw.
pub const DEFAULT_CLUSTER_FILE: &str = "/etc/seesaw/cluster.pb";

/// How often cluster.pb is checked for changes.
pub const DEFAULT_FILE_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Everything the notifier needs, mostly from seesaw.cfg.
#[derive(Clone)]
pub struct NotifierOptions {
    /// `[cluster] name`: the config servers' URL path ends with it.
    pub cluster_name: String,
    pub cluster_file: PathBuf,
    /// The values of seesaw.cfg that a cluster config is checked against.
    pub node_context: NodeContext,
    /// Config server host names, tried in order.
    pub config_servers: Vec<String>,
    pub config_server_port: u16,
    /// Deadline of one request to one config server address.
    pub config_server_timeout: Duration,
    /// The CA bundle that config server certificates must chain to.
    pub ca_cert_file: PathBuf,
    /// Time between periodic checks of the source.
    pub config_interval: Duration,
    /// Time between checks of cluster.pb for changes, or `None` for no
    /// file watch.
    pub file_poll_interval: Option<Duration>,
    /// Peer failures in a row before one check falls back to the config
    /// servers.
    pub max_peer_failures: u32,
    /// The source that reloads pull from once the first config is loaded,
    /// whichever source that came from.
    pub source_after_start: Source,
    pub resolver: Arc<dyn Resolve>,
    /// The peer hook. [`NotifierHandle::set_peer`] can supply it later.
    pub peer: Option<Arc<dyn PeerConfigSource>>,
}

impl NotifierOptions {
    /// Returns the options for the node of `node`, with Seesaw's engine
    /// defaults and the system resolver.
    ///
    /// Reloads pull from the config servers, as in Seesaw, unless
    /// seesaw.cfg names none (the placeholder
    /// [`DEFAULT_CONFIG_SERVER`] only): then they read cluster.pb, so
    /// that edits to the file take effect.
    pub fn new(node: &NodeConfig, cluster_file: impl Into<PathBuf>) -> Self {
        let no_servers = node
            .config_servers
            .iter()
            .all(|s| s == DEFAULT_CONFIG_SERVER);
        NotifierOptions {
            cluster_name: node.cluster_name.clone(),
            cluster_file: cluster_file.into(),
            node_context: context_of(node),
            config_servers: node.config_servers.clone(),
            config_server_port: node.engine.config_server_port,
            config_server_timeout: node.engine.config_server_timeout,
            ca_cert_file: node.engine.ca_cert_file.clone(),
            config_interval: node.engine.config_interval,
            file_poll_interval: Some(DEFAULT_FILE_POLL_INTERVAL),
            max_peer_failures: node.engine.max_peer_config_sync_errors,
            source_after_start: if no_servers {
                Source::Disk
            } else {
                Source::Server
            },
            resolver: Arc::new(SystemResolver),
            peer: None,
        }
    }
}

/// A config that changed, for the engine to apply.
#[derive(Debug, Clone)]
pub struct ClusterNotification {
    pub cluster: Arc<Cluster>,
    /// The loader's warnings: findings that did not reject the config.
    pub warnings: Vec<Diagnostic>,
    /// Remarks about valid but easily misunderstood set-ups.
    pub notes: Vec<String>,
    pub source: Source,
    /// The file, `<url> (<address>)` of a config server, or the peer's
    /// detail.
    pub source_detail: String,
    pub time: SystemTime,
    /// Only the metadata (last update, attributes, the source's warnings)
    /// differs from the config in force, so no vserver needs updating.
    pub metadata_only: bool,
}

/// No config could be loaded at the start.
#[derive(Debug, Clone, thiserror::Error)]
#[error("failed to load any cluster config: {}", summary(.failures))]
pub struct BootstrapError {
    /// Each source tried, in order, with its errors.
    pub failures: Vec<(Source, Vec<String>)>,
}

fn summary(failures: &[(Source, Vec<String>)]) -> String {
    failures
        .iter()
        .map(|(source, errors)| format!("{source}: {}", errors.join("; ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A reload that could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    #[error("reload request already queued")]
    AlreadyQueued,
    #[error("the config notifier has stopped")]
    Stopped,
}

/// A running notifier.
pub struct Notifier {
    /// Controls and inspects the notifier. Clones share the notifier.
    pub handle: NotifierHandle,
    /// The configs to apply. The first is the one loaded at the start.
    /// The notifier waits while a notification is unread, so none is lost.
    pub notifications: mpsc::Receiver<ClusterNotification>,
    /// The notifier task. It ends on [`NotifierHandle::shutdown`], when
    /// `notifications` is dropped, or when every handle is dropped.
    pub task: JoinHandle<()>,
}

impl Notifier {
    /// Loads the first config and spawns the notifier task. Fails when no
    /// source has a valid config.
    pub async fn start(options: NotifierOptions) -> Result<Notifier, BootstrapError> {
        run::start(options).await
    }
}

/// The state the handles and the notifier task share.
struct Shared {
    source: Mutex<Source>,
    /// [`NotifierOptions::source_after_start`], for [`NotifierHandle::reset_source`].
    default_source: Source,
    /// Shared with the loader, which reads it at each pull.
    peer: Arc<Mutex<Option<Arc<dyn PeerConfigSource>>>>,
    status: Mutex<NotifierStatus>,
}

/// Locks a mutex. A panic while it was held leaves plain data behind,
/// which is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Controls a running notifier: reloads, the source, the peer hook, and
/// the status for `config status`.
#[derive(Clone)]
pub struct NotifierHandle {
    shared: Arc<Shared>,
    reload: mpsc::Sender<()>,
    shutdown: Arc<signal::Sender<bool>>,
}

impl NotifierHandle {
    /// Queues a reload from the current source. At most one reload waits,
    /// so a second one fails with [`ReloadError::AlreadyQueued`].
    pub fn reload(&self) -> Result<(), ReloadError> {
        self.reload.try_send(()).map_err(|error| match error {
            mpsc::error::TrySendError::Full(()) => ReloadError::AlreadyQueued,
            mpsc::error::TrySendError::Closed(()) => ReloadError::Stopped,
        })
    }

    /// Returns the source that reloads pull from.
    pub fn source(&self) -> Source {
        *lock(&self.shared.source)
    }

    /// Sets the source and queues a reload from it. Returns the previous
    /// source. A reload that cannot be queued is logged.
    pub fn set_source(&self, source: Source) -> Source {
        let previous = std::mem::replace(&mut *lock(&self.shared.source), source);
        lock(&self.shared.status).source = source;
        tracing::info!("config source set to {source} (was {previous})");
        if let Err(error) = self.reload() {
            tracing::warn!("reload failed after setting the config source to {source}: {error}");
        }
        previous
    }

    /// Sets the source back to the one reloads used after the start, and
    /// queues a reload. Returns the previous source. Seesaw sets the
    /// source to server on every HA transition, and the engine calls this
    /// instead, so a node without config servers keeps reading cluster.pb.
    pub fn reset_source(&self) -> Source {
        self.set_source(self.shared.default_source)
    }

    /// Supplies the hook that fetches the peer's config, or removes it.
    pub fn set_peer(&self, peer: Option<Arc<dyn PeerConfigSource>>) {
        *lock(&self.shared.peer) = peer;
    }

    /// Returns a snapshot for `config status`.
    pub fn status(&self) -> NotifierStatus {
        lock(&self.shared.status).clone()
    }

    /// Stops the notifier task. A check in progress is abandoned.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}
