//! A fake engine for the tests of the engine's clients, `seesaw_ha`,
//! `seesaw_healthcheck` and `seesaw_ecu`. It serves `proto/engine.proto`
//! on a Unix socket, returns the replies the test sets and records every
//! call it receives. Built only with the `test-support` feature.
//!
//! [`FakeEngine::serve`] runs the server on a thread with its own tokio
//! runtime, so synchronous tests can use it as well as async ones.
//! [`ServedEngine::stop`] drops that runtime, which closes every client
//! connection at once, as the exit of a real engine does. The replies and
//! the record live in the [`FakeEngine`], so they survive a stop and a
//! second `serve`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::engine_proto::engine_server::{Engine, EngineServer};
use crate::engine_proto::*;

/// The replies a fake engine returns and the calls it received. Clones
/// share both.
#[derive(Clone, Debug, Default)]
pub struct FakeEngine {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug, Default)]
struct Shared {
    /// The `HaConfig` reply; `None` returns `FAILED_PRECONDITION`, as an
    /// engine without a loaded cluster config does.
    ha_config: Option<HaConfigReply>,
    /// Whether the next `HaUpdate` reply requests a failover.
    failover_requested: bool,
    healthchecks: Vec<Healthcheck>,
    /// The replies of the read calls; a reply left `None` makes its call
    /// fail with `UNIMPLEMENTED`.
    reads: Reads,
    /// The error every control call fails with, after it is recorded;
    /// `None` lets them succeed.
    control_error: Option<(tonic::Code, String)>,
    calls: Calls,
}

/// The replies of the read calls the shell and the ECU make.
#[derive(Clone, Debug, Default)]
pub struct Reads {
    pub cluster_status: Option<ClusterStatusReply>,
    pub config_status: Option<ConfigStatusReply>,
    pub ha_status: Option<HaStatus>,
    pub bgp_neighbors: Option<BgpNeighborList>,
    pub vlans: Option<VlanList>,
    pub vservers: Option<VserverList>,
    pub backends: Option<BackendList>,
    pub check_status: Option<CheckStatusList>,
    pub access_grants: Option<AccessGrantList>,
    /// The `ConfigSource` reply's previous source.
    pub config_source: Option<String>,
}

/// The calls a fake engine received, each kind in order of arrival.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    pub ha_config: usize,
    pub ha_updates: Vec<HaStatus>,
    pub ha_states: Vec<HaState>,
    pub healthchecks: usize,
    pub health_states: Vec<HealthStateBatch>,
    pub failovers: usize,
    pub config_reloads: usize,
    /// The `source` of each `ConfigSource` call, empty for a read.
    pub config_sources: Vec<String>,
    pub vserver_overrides: Vec<VserverOverride>,
    pub backend_overrides: Vec<BackendOverride>,
    pub destination_overrides: Vec<DestinationOverride>,
}

impl Calls {
    /// Returns the notifications of every `HealthState` batch, in order.
    pub fn notifications(&self) -> impl Iterator<Item = &HealthNotification> {
        self.health_states
            .iter()
            .flat_map(|batch| batch.notifications.iter())
    }
}

impl FakeEngine {
    /// Creates a fake engine with no HA config and no checks.
    pub fn new() -> FakeEngine {
        FakeEngine::default()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().expect("fake engine lock poisoned")
    }

    /// Sets the `HaConfig` reply; `None` makes the call fail with
    /// `FAILED_PRECONDITION`.
    pub fn set_ha_config(&self, reply: Option<HaConfigReply>) {
        self.lock().ha_config = reply;
    }

    /// Makes the next `HaUpdate` reply request a failover, once.
    pub fn request_failover(&self) {
        self.lock().failover_requested = true;
    }

    /// Returns whether a requested failover has not been sent yet.
    pub fn failover_pending(&self) -> bool {
        self.lock().failover_requested
    }

    /// Sets the `Healthchecks` reply.
    pub fn set_healthchecks(&self, checks: Vec<Healthcheck>) {
        self.lock().healthchecks = checks;
    }

    /// Sets the replies of the read calls.
    pub fn set_reads(&self, reads: Reads) {
        self.lock().reads = reads;
    }

    /// Makes every control call (failover, reload, config source,
    /// overrides) fail with `code` and `message` after it is recorded;
    /// `None` lets them succeed again.
    pub fn set_control_error(&self, error: Option<(tonic::Code, &str)>) {
        self.lock().control_error = error.map(|(code, message)| (code, message.to_string()));
    }

    /// Returns a copy of the calls received so far.
    pub fn calls(&self) -> Calls {
        self.lock().calls.clone()
    }

    /// Polls the calls every 20 ms until `condition` is true or `timeout`
    /// passes, and returns whether it became true. Blocks the calling
    /// thread.
    pub fn wait_for(&self, timeout: Duration, mut condition: impl FnMut(&Calls) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if condition(&self.lock().calls) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Serves the engine API on the Unix socket `path` until the returned
    /// handle is stopped or dropped. A file already at `path` is replaced.
    pub fn serve(&self, path: &Path) -> io::Result<ServedEngine> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        // Bound here rather than on the thread, so the socket exists when
        // this function returns and a bind error reaches the caller.
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(path)?
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let service = EngineServer::new(self.clone());
        let thread = thread::spawn(move || {
            runtime.block_on(async move {
                let server = tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming(UnixListenerStream::new(listener));
                tokio::select! {
                    result = server => {
                        if let Err(error) = result {
                            eprintln!("fake engine: server failed: {error}");
                        }
                    }
                    _ = stopped => {}
                }
            });
            // Dropping the runtime here cancels the connection tasks, so
            // clients see their connections close.
            drop(runtime);
        });
        Ok(ServedEngine {
            stop: Some(stop),
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }
}

/// A running fake engine server. Stopping it, or dropping it, closes its
/// connections and removes its socket.
#[derive(Debug)]
pub struct ServedEngine {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    path: PathBuf,
}

impl ServedEngine {
    /// Returns the socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the server, closes every connection and removes the socket.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = fs::remove_file(&self.path);
    }
}

impl Drop for ServedEngine {
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn not_faked(call: &str) -> Status {
    Status::unimplemented(format!("the fake engine does not serve {call}"))
}

/// Returns the read reply `select` picks, or `UNIMPLEMENTED` when the test
/// set none.
fn read_reply<T: Clone>(
    engine: &FakeEngine,
    call: &str,
    select: impl FnOnce(&Reads) -> &Option<T>,
) -> Result<Response<T>, Status> {
    let shared = engine.lock();
    select(&shared.reads)
        .clone()
        .map(Response::new)
        .ok_or_else(|| not_faked(call))
}

/// Records a control call with `record`, then returns the error the test
/// set, or an empty reply.
fn control_reply(
    engine: &FakeEngine,
    record: impl FnOnce(&mut Calls),
) -> Result<Response<Empty>, Status> {
    let mut shared = engine.lock();
    record(&mut shared.calls);
    match &shared.control_error {
        Some((code, message)) => Err(Status::new(*code, message.clone())),
        None => Ok(Response::new(Empty {})),
    }
}

#[tonic::async_trait]
impl Engine for FakeEngine {
    async fn ha_config(&self, _: Request<Empty>) -> Result<Response<HaConfigReply>, Status> {
        let mut shared = self.lock();
        shared.calls.ha_config += 1;
        match shared.ha_config.clone() {
            Some(reply) => Ok(Response::new(reply)),
            None => Err(Status::failed_precondition(
                "no cluster config naming this node has loaded",
            )),
        }
    }

    async fn ha_update(
        &self,
        request: Request<HaStatus>,
    ) -> Result<Response<HaUpdateReply>, Status> {
        let mut shared = self.lock();
        shared.calls.ha_updates.push(request.into_inner());
        let failover_requested = std::mem::take(&mut shared.failover_requested);
        Ok(Response::new(HaUpdateReply { failover_requested }))
    }

    async fn ha_state(&self, request: Request<HaStateRequest>) -> Result<Response<Empty>, Status> {
        let state = request.into_inner().state();
        self.lock().calls.ha_states.push(state);
        Ok(Response::new(Empty {}))
    }

    async fn healthchecks(&self, _: Request<Empty>) -> Result<Response<HealthcheckList>, Status> {
        let mut shared = self.lock();
        shared.calls.healthchecks += 1;
        let checks = shared.healthchecks.clone();
        Ok(Response::new(HealthcheckList { checks }))
    }

    async fn health_state(
        &self,
        request: Request<HealthStateBatch>,
    ) -> Result<Response<Empty>, Status> {
        self.lock().calls.health_states.push(request.into_inner());
        Ok(Response::new(Empty {}))
    }

    async fn cluster_status(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<ClusterStatusReply>, Status> {
        read_reply(self, "ClusterStatus", |r| &r.cluster_status)
    }

    async fn config_status(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<ConfigStatusReply>, Status> {
        read_reply(self, "ConfigStatus", |r| &r.config_status)
    }

    async fn ha_status_get(&self, _: Request<Empty>) -> Result<Response<HaStatus>, Status> {
        read_reply(self, "HaStatusGet", |r| &r.ha_status)
    }

    async fn bgp_neighbors(&self, _: Request<Empty>) -> Result<Response<BgpNeighborList>, Status> {
        read_reply(self, "BgpNeighbors", |r| &r.bgp_neighbors)
    }

    async fn vlans(&self, _: Request<Empty>) -> Result<Response<VlanList>, Status> {
        read_reply(self, "Vlans", |r| &r.vlans)
    }

    async fn vservers(&self, _: Request<Empty>) -> Result<Response<VserverList>, Status> {
        read_reply(self, "Vservers", |r| &r.vservers)
    }

    async fn backends(&self, _: Request<Empty>) -> Result<Response<BackendList>, Status> {
        read_reply(self, "Backends", |r| &r.backends)
    }

    async fn config_reload(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        control_reply(self, |calls| calls.config_reloads += 1)
    }

    async fn config_source(
        &self,
        request: Request<ConfigSourceRequest>,
    ) -> Result<Response<ConfigSourceReply>, Status> {
        let source = request.into_inner().source;
        let is_read = source.is_empty();
        control_reply(self, |calls| calls.config_sources.push(source))?;
        let previous = self.lock().reads.config_source.clone();
        match previous {
            Some(previous) => Ok(Response::new(ConfigSourceReply { previous })),
            None if is_read => Err(not_faked("ConfigSource")),
            None => Ok(Response::new(ConfigSourceReply::default())),
        }
    }

    async fn check_status(&self, _: Request<Empty>) -> Result<Response<CheckStatusList>, Status> {
        read_reply(self, "CheckStatus", |r| &r.check_status)
    }

    async fn access_grants(&self, _: Request<Empty>) -> Result<Response<AccessGrantList>, Status> {
        read_reply(self, "AccessGrants", |r| &r.access_grants)
    }

    async fn failover(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        control_reply(self, |calls| calls.failovers += 1)
    }

    async fn override_vserver(
        &self,
        request: Request<VserverOverride>,
    ) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        control_reply(self, |calls| calls.vserver_overrides.push(request))
    }

    async fn override_backend(
        &self,
        request: Request<BackendOverride>,
    ) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        control_reply(self, |calls| calls.backend_overrides.push(request))
    }

    async fn override_destination(
        &self,
        request: Request<DestinationOverride>,
    ) -> Result<Response<Empty>, Status> {
        let request = request.into_inner();
        control_reply(self, |calls| calls.destination_overrides.push(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientOptions, connect_engine_lazy};

    fn options() -> ClientOptions {
        ClientOptions {
            call_timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        }
    }

    #[tokio::test]
    async fn records_calls_and_returns_replies() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("engine.sock");
        let engine = FakeEngine::new();
        engine.request_failover();
        let _served = engine.serve(&path).unwrap();
        let mut client = connect_engine_lazy(&path, &options());

        let error = client.ha_config(Empty {}).await.unwrap_err();
        let first = client.ha_update(HaStatus::default()).await.unwrap();
        let second = client.ha_update(HaStatus::default()).await.unwrap();

        assert_eq!(error.code(), tonic::Code::FailedPrecondition);
        assert!(first.into_inner().failover_requested);
        assert!(!second.into_inner().failover_requested);
        let calls = engine.calls();
        assert_eq!(calls.ha_config, 1);
        assert_eq!(calls.ha_updates.len(), 2);
    }

    #[tokio::test]
    async fn serves_reads_and_records_control_calls() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("engine.sock");
        let engine = FakeEngine::new();
        engine.set_reads(Reads {
            ha_status: Some(HaStatus {
                transitions: 3,
                ..HaStatus::default()
            }),
            ..Reads::default()
        });
        let _served = engine.serve(&path).unwrap();
        let mut client = connect_engine_lazy(&path, &options());

        let ha = client.ha_status_get(Empty {}).await.unwrap().into_inner();
        let vservers = client.vservers(Empty {}).await.unwrap_err();
        let failover = client.failover(Empty {}).await;
        engine.set_control_error(Some((tonic::Code::FailedPrecondition, "queued")));
        let reload = client.config_reload(Empty {}).await.unwrap_err();

        assert_eq!(ha.transitions, 3);
        assert_eq!(vservers.code(), tonic::Code::Unimplemented);
        assert!(failover.is_ok(), "{failover:?}");
        assert_eq!(reload.code(), tonic::Code::FailedPrecondition);
        let calls = engine.calls();
        assert_eq!(calls.failovers, 1);
        assert_eq!(calls.config_reloads, 1);
    }

    #[tokio::test]
    async fn lazy_client_reaches_restarted_engine() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("engine.sock");
        let engine = FakeEngine::new();
        let mut client = connect_engine_lazy(&path, &options());
        let request = HaStateRequest {
            state: HaState::Leader.into(),
        };

        let before_start = client.ha_state(request).await;
        let served = engine.serve(&path).unwrap();
        let first = client.ha_state(request).await;
        served.stop();
        let while_stopped = client.ha_state(request).await;
        let _served = engine.serve(&path).unwrap();
        // The first call after a lost connection may fail while the channel
        // notices; a later one must reach the new server.
        let mut after_restart = client.ha_state(request).await;
        if after_restart.is_err() {
            after_restart = client.ha_state(request).await;
        }

        assert_eq!(before_start.unwrap_err().code(), tonic::Code::Unavailable);
        assert!(first.is_ok(), "{first:?}");
        assert!(while_stopped.is_err(), "call reached a stopped engine");
        assert!(after_restart.is_ok(), "{after_restart:?}");
        assert_eq!(engine.calls().ha_states, [HaState::Leader, HaState::Leader]);
    }
}
