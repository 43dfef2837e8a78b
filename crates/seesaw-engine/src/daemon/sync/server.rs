//! The peer sync server: the versioned state this engine publishes, and
//! the gRPC service that streams it to the peer, serves the config in
//! force and takes the peer's failover requests.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prost::Message as _;
use seesaw_config::cluster::{NodeContext, derive_cluster};
use seesaw_config::cluster_text::parse_cluster_text;
use seesaw_config::model::Cluster;
use seesaw_ipc::sync_proto as wire;
use seesaw_ipc::sync_proto::peer_sync_server::{PeerSync, PeerSyncServer};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::state::{
    CheckStates, StateChanges, SyncState, changes_to_wire, check_changes, describe_override,
    override_changes, override_from_wire, state_to_wire,
};
use super::stopping;
use super::transport::{Gate, KEEPALIVE_TIMEOUT, Throttle, held_back_note, incoming};
use crate::daemon::core::Core;
use crate::overrides::Overrides;

/// How many changes a session may fall behind before it gets the full
/// state instead.
const CHANGE_BUFFER: usize = 256;

/// How long after the start an engine without overrides takes the
/// overrides of the first peer session.
pub const ADOPT_WINDOW: Duration = Duration::from_secs(60);

/// One published change: the version it applies to and the one it makes.
#[derive(Debug)]
pub struct Change {
    pub base: u64,
    pub version: u64,
    pub changes: StateChanges,
}

struct Latest {
    version: u64,
    state: SyncState,
}

/// This engine's state as a sequence of versions, for the sessions.
pub struct Publisher {
    /// Random at each start; see the `instance` of `sync.proto`'s Note.
    instance: u64,
    latest: Mutex<Latest>,
    changes: broadcast::Sender<Arc<Change>>,
    master: watch::Sender<bool>,
    /// Whether any override has been published since the start.
    overridden: AtomicBool,
}

impl Publisher {
    pub fn new(instance: u64) -> Self {
        Publisher {
            instance,
            latest: Mutex::new(Latest {
                version: 1,
                state: SyncState::default(),
            }),
            changes: broadcast::channel(CHANGE_BUFFER).0,
            master: watch::Sender::new(false),
            overridden: AtomicBool::new(false),
        }
    }

    fn latest(&self) -> MutexGuard<'_, Latest> {
        self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the overrides, the config generation and, when given, the
    /// check states; without them the last published ones stay. Returns
    /// whether anything changed.
    pub fn publish(
        &self,
        overrides: &Overrides,
        checks: Option<&CheckStates>,
        config_generation: u64,
    ) -> bool {
        if *overrides != Overrides::default() {
            self.overridden.store(true, Ordering::Relaxed);
        }
        let mut latest = self.latest();
        let changes = StateChanges {
            overrides: override_changes(&latest.state.overrides, overrides),
            checks: checks
                .map(|checks| check_changes(&latest.state.checks, checks))
                .unwrap_or_default(),
            config_generation,
        };
        if changes.leaves_unchanged(&latest.state) {
            return false;
        }
        latest.state.apply(&changes);
        let base = latest.version;
        latest.version += 1;
        // Sent under the lock, so that a session that subscribes and reads
        // the latest state under it misses no change.
        let _ = self.changes.send(Arc::new(Change {
            base,
            version: latest.version,
            changes,
        }));
        true
    }

    /// Publishes new overrides at once, keeping the rest of the state.
    pub fn publish_overrides(&self, overrides: &Overrides) -> bool {
        let generation = self.latest().state.config_generation;
        self.publish(overrides, None, generation)
    }

    /// Returns whether any override has been published since the start.
    pub fn overridden(&self) -> bool {
        self.overridden.load(Ordering::Relaxed)
    }

    pub fn set_master(&self, master: bool) {
        self.master.send_if_modified(|current| {
            let changed = *current != master;
            *current = master;
            changed
        });
    }

    /// Returns the latest version and state, and the changes after it.
    fn subscribe(&self) -> (u64, SyncState, broadcast::Receiver<Arc<Change>>) {
        let latest = self.latest();
        (
            latest.version,
            latest.state.clone(),
            self.changes.subscribe(),
        )
    }

    fn note(&self, version: u64, body: wire::note::Body) -> wire::Note {
        wire::Note {
            instance: self.instance,
            version,
            master: *self.master.borrow(),
            body: Some(body),
        }
    }
}

/// Timing of the sessions.
#[derive(Debug, Clone, Copy)]
pub struct SessionTiming {
    pub heartbeat: Duration,
    /// How long a note may wait for the peer to take it before the
    /// session is dropped.
    pub timeout: Duration,
}

/// The `PeerSync` gRPC service.
pub struct SyncService {
    pub publisher: Arc<Publisher>,
    pub core: Arc<Mutex<Core>>,
    pub cluster_file: PathBuf,
    pub context: NodeContext,
    pub timing: SessionTiming,
    pub shutdown: watch::Receiver<bool>,
    sessions: AtomicU64,
    /// When the engine started, for [`ADOPT_WINDOW`].
    started: Instant,
    /// Whether no session has offered its overrides yet.
    first_session: AtomicBool,
}

impl SyncService {
    pub fn new(
        publisher: Arc<Publisher>,
        core: Arc<Mutex<Core>>,
        cluster_file: PathBuf,
        context: NodeContext,
        timing: SessionTiming,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        SyncService {
            publisher,
            core,
            cluster_file,
            context,
            timing,
            shutdown,
            sessions: AtomicU64::new(1),
            started: Instant::now(),
            first_session: AtomicBool::new(true),
        }
    }

    /// Takes the overrides the first session offers, when this engine
    /// started less than [`ADOPT_WINDOW`] ago and has had no override
    /// since: it is a restarted engine, and the peer kept what it lost.
    fn adopt(&self, offered: &[wire::Override], peer: &str) -> Result<(), Status> {
        if !self.first_session.swap(false, Ordering::Relaxed)
            || offered.is_empty()
            || self.started.elapsed() > ADOPT_WINDOW
            || self.publisher.overridden()
        {
            return Ok(());
        }
        let requests = offered
            .iter()
            .map(override_from_wire)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| {
                tracing::warn!("peer sync: rejected the overrides offered by {peer}: {error}");
                Status::invalid_argument(error)
            })?;
        let mut core = self.core.lock().expect("engine state poisoned");
        if *core.engine.overrides() != Overrides::default() {
            return Ok(());
        }
        for request in requests {
            tracing::info!("peer sync: {} kept by {peer}", describe_override(&request));
            core.override_state(request);
        }
        self.publisher.publish_overrides(core.engine.overrides());
        Ok(())
    }
}

fn remote<T>(request: &Request<T>) -> String {
    request.remote_addr().map_or_else(
        || "an unknown address".to_string(),
        |address| address.to_string(),
    )
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl PeerSync for SyncService {
    type WatchStream = ReceiverStream<Result<wire::Note, Status>>;

    async fn watch(&self, request: Request<wire::WatchRequest>) -> Reply<Self::WatchStream> {
        let id = self.sessions.fetch_add(1, Ordering::Relaxed);
        let peer = format!("{} (node {})", remote(&request), request.get_ref().node);
        tracing::info!("peer sync: session {id} with {peer} started");
        self.adopt(&request.get_ref().overrides, &peer)?;
        let (sender, receiver) = mpsc::channel(16);
        let session = Session {
            id,
            peer,
            publisher: self.publisher.clone(),
            sender,
            timing: self.timing,
        };
        tokio::spawn(session.run(self.shutdown.clone()));
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn config(&self, request: Request<wire::Empty>) -> Reply<wire::ConfigReply> {
        let in_force = self
            .core
            .lock()
            .expect("engine state poisoned")
            .cluster
            .clone()
            .ok_or_else(|| Status::failed_precondition("no cluster config loaded"))?;
        let file = self.cluster_file.clone();
        let context = self.context.clone();
        let encoded =
            tokio::task::spawn_blocking(move || encode_in_force(&file, &context, &in_force))
                .await
                .map_err(|error| Status::internal(format!("the config encoder failed: {error}")))?;
        match encoded {
            Ok(cluster) => {
                tracing::info!(
                    "peer sync: sent the config in force ({} bytes) to {}",
                    cluster.len(),
                    remote(&request)
                );
                Ok(Response::new(wire::ConfigReply { cluster }))
            }
            Err(error) => {
                tracing::warn!(
                    "peer sync: cannot send the config in force to {}: {error}",
                    remote(&request)
                );
                Err(Status::failed_precondition(error))
            }
        }
    }

    async fn failover(&self, request: Request<wire::Empty>) -> Reply<wire::Empty> {
        let result = self
            .core
            .lock()
            .expect("engine state poisoned")
            .request_failover();
        match result {
            Ok(()) => {
                tracing::info!("failover requested by the peer {}", remote(&request));
                Ok(Response::new(wire::Empty {}))
            }
            Err(error) => {
                tracing::warn!(
                    "failover requested by the peer {} failed: {error}",
                    remote(&request)
                );
                Err(Status::failed_precondition(error.to_string()))
            }
        }
    }
}

/// Encodes cluster.pb as a binary Cluster, once it is known to hold the
/// config in force: the notifier saves every config it applies there, so
/// the file differs only while it is being edited or failed to save.
fn encode_in_force(
    file: &Path,
    context: &NodeContext,
    in_force: &Cluster,
) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|error| format!("failed to read {}: {error}", file.display()))?;
    let rejected = |findings: Vec<seesaw_config::diag::Diagnostic>| {
        findings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    let parsed = parse_cluster_text(file, &text).map_err(|error| rejected(error.0))?;
    let loaded = derive_cluster(&parsed.message, &parsed.spans, file, context)
        .map_err(|error| rejected(error.0))?;
    if loaded.cluster != *in_force {
        return Err(format!(
            "{} differs from the config in force (edited, or not saved); try again after the next reload",
            file.display()
        ));
    }
    Ok(parsed.message.encode_to_vec())
}

/// One peer's stream of notes.
struct Session {
    id: u64,
    peer: String,
    publisher: Arc<Publisher>,
    sender: mpsc::Sender<Result<wire::Note, Status>>,
    timing: SessionTiming,
}

impl Session {
    /// Sends the full state, then the changes and heartbeats, until the
    /// peer goes, stops taking notes, or the engine stops.
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut master = self.publisher.master.subscribe();
        let (mut version, mut changes) = match self.send_state().await {
            Some(subscribed) => subscribed,
            None => return,
        };
        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + self.timing.heartbeat,
            self.timing.heartbeat,
        );
        let reason = loop {
            let resync = tokio::select! {
                () = stopping(&mut shutdown) => break "the engine is stopping",
                () = self.sender.closed() => break "the peer closed it",
                changed = master.changed() => {
                    if changed.is_err() {
                        break "the engine is stopping";
                    }
                    true
                }
                received = changes.recv() => match received {
                    Ok(change) if change.version <= version => false,
                    Ok(change) if change.base == version => {
                        let body = wire::note::Body::Changes(changes_to_wire(change.base, &change.changes));
                        if !self.send(self.publisher.note(change.version, body)).await {
                            break "the peer stopped taking notes";
                        }
                        version = change.version;
                        false
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        tracing::warn!(
                            "peer sync: session {} with {} fell behind the changes; sending the full state",
                            self.id,
                            self.peer
                        );
                        true
                    }
                    Err(broadcast::error::RecvError::Closed) => break "the engine is stopping",
                },
                _ = heartbeat.tick() => {
                    let body = wire::note::Body::Heartbeat(wire::Heartbeat {});
                    if !self.send(self.publisher.note(version, body)).await {
                        break "the peer stopped taking notes";
                    }
                    false
                }
            };
            if resync {
                match self.send_state().await {
                    Some(subscribed) => (version, changes) = subscribed,
                    None => break "the peer stopped taking notes",
                }
            }
        };
        tracing::info!(
            "peer sync: session {} with {} ended: {reason}",
            self.id,
            self.peer
        );
    }

    /// Sends the latest full state; returns its version and the changes
    /// after it, or `None` when the peer does not take it.
    async fn send_state(&self) -> Option<(u64, broadcast::Receiver<Arc<Change>>)> {
        let (version, state, changes) = self.publisher.subscribe();
        let body = wire::note::Body::State(state_to_wire(&state));
        self.send(self.publisher.note(version, body))
            .await
            .then_some((version, changes))
    }

    /// Sends a note; fails when the peer is gone or took nothing for the
    /// session timeout.
    async fn send(&self, note: wire::Note) -> bool {
        match tokio::time::timeout(self.timing.timeout, self.sender.send(Ok(note))).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                tracing::warn!(
                    "peer sync: session {} with {} expired: the peer took no note for {:?}",
                    self.id,
                    self.peer,
                    self.timing.timeout
                );
                false
            }
        }
    }
}

/// Serves `service` on `listen` through `gate` until `shutdown` turns
/// true. Binding is retried every `retry`, because the node's address may
/// not be up yet when the engine starts.
pub async fn serve(
    service: SyncService,
    listen: SocketAddr,
    gate: Arc<Gate>,
    retry: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let timing = service.timing;
    let bind_failures = Throttle::new(Duration::from_secs(300));
    let listener = loop {
        match TcpListener::bind(listen).await {
            Ok(listener) => break listener,
            Err(error) => {
                if let Some(held_back) = bind_failures.allow() {
                    tracing::warn!(
                        "peer sync: failed to listen on {listen}: {error}; retrying every {retry:?}{}",
                        held_back_note(held_back)
                    );
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = stopping(&mut shutdown) => return,
        }
    };
    tracing::info!("peer sync: listening on {listen}");

    let stopped = {
        let mut shutdown = shutdown.clone();
        async move { stopping(&mut shutdown).await }
    };
    let served = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(timing.heartbeat))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(PeerSyncServer::new(service))
        .serve_with_incoming_shutdown(incoming(listener, gate), stopped)
        .await;
    if let Err(error) = served {
        tracing::error!("peer sync: serving on {listen} failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckState;
    use crate::overrides::{Override, OverrideState};

    fn overrides(name: &str) -> Overrides {
        let mut overrides = Overrides::default();
        overrides.store(Override::Vserver {
            vserver: name.to_string(),
            state: OverrideState::Disabled,
        });
        overrides
    }

    #[test]
    fn publishing_the_same_state_changes_nothing() {
        let publisher = Publisher::new(1);
        assert!(publisher.publish(&overrides("web"), None, 1));
        assert!(!publisher.publish(&overrides("web"), None, 1));
        assert_eq!(publisher.subscribe().0, 2);
    }

    #[test]
    fn changes_follow_the_subscribed_version() {
        let publisher = Publisher::new(1);
        let (version, state, mut changes) = publisher.subscribe();
        assert_eq!(version, 1);
        assert_eq!(state, SyncState::default());

        publisher.publish(&overrides("web"), None, 0);
        let checks: CheckStates =
            [(("web".to_string(), "HTTP".to_string()), CheckState::Healthy)].into();
        publisher.publish(&overrides("web"), Some(&checks), 0);

        let first = changes.try_recv().unwrap();
        assert_eq!((first.base, first.version), (1, 2));
        assert_eq!(first.changes.overrides.len(), 1);
        let second = changes.try_recv().unwrap();
        assert_eq!((second.base, second.version), (2, 3));
        assert!(second.changes.overrides.is_empty());
        assert_eq!(second.changes.checks.len(), 1);
    }

    #[test]
    fn publishing_without_checks_keeps_them() {
        let publisher = Publisher::new(1);
        let checks: CheckStates =
            [(("web".to_string(), "HTTP".to_string()), CheckState::Healthy)].into();
        publisher.publish(&Overrides::default(), Some(&checks), 0);
        publisher.publish(&overrides("web"), None, 0);
        let (_, state, _) = publisher.subscribe();
        assert_eq!(state.checks, checks);
        assert_eq!(state.overrides, overrides("web"));
    }

    #[test]
    fn notes_carry_instance_and_role() {
        let publisher = Publisher::new(42);
        publisher.set_master(true);
        let note = publisher.note(7, wire::note::Body::Heartbeat(wire::Heartbeat {}));
        assert_eq!(note.instance, 42);
        assert_eq!(note.version, 7);
        assert!(note.master);
    }
}
