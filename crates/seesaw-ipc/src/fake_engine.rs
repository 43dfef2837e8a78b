//! A fake engine for the tests of the engine's clients, `seesaw_ha` and
//! `seesaw_healthcheck`. It serves `proto/engine.proto` on a Unix socket,
//! returns the replies the test sets and records every call it receives.
//! Built only with the `test-support` feature.
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
    calls: Calls,
}

/// The calls a fake engine received, each kind in order of arrival.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    pub ha_config: usize,
    pub ha_updates: Vec<HaStatus>,
    pub ha_states: Vec<HaState>,
    pub healthchecks: usize,
    pub health_states: Vec<HealthStateBatch>,
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
        Err(not_faked("ClusterStatus"))
    }

    async fn config_status(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<ConfigStatusReply>, Status> {
        Err(not_faked("ConfigStatus"))
    }

    async fn ha_status_get(&self, _: Request<Empty>) -> Result<Response<HaStatus>, Status> {
        Err(not_faked("HaStatusGet"))
    }

    async fn bgp_neighbors(&self, _: Request<Empty>) -> Result<Response<BgpNeighborList>, Status> {
        Err(not_faked("BgpNeighbors"))
    }

    async fn vlans(&self, _: Request<Empty>) -> Result<Response<VlanList>, Status> {
        Err(not_faked("Vlans"))
    }

    async fn vservers(&self, _: Request<Empty>) -> Result<Response<VserverList>, Status> {
        Err(not_faked("Vservers"))
    }

    async fn backends(&self, _: Request<Empty>) -> Result<Response<BackendList>, Status> {
        Err(not_faked("Backends"))
    }

    async fn config_reload(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(not_faked("ConfigReload"))
    }

    async fn config_source(
        &self,
        _: Request<ConfigSourceRequest>,
    ) -> Result<Response<ConfigSourceReply>, Status> {
        Err(not_faked("ConfigSource"))
    }

    async fn failover(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(not_faked("Failover"))
    }

    async fn override_vserver(
        &self,
        _: Request<VserverOverride>,
    ) -> Result<Response<Empty>, Status> {
        Err(not_faked("OverrideVserver"))
    }

    async fn override_backend(
        &self,
        _: Request<BackendOverride>,
    ) -> Result<Response<Empty>, Status> {
        Err(not_faked("OverrideBackend"))
    }

    async fn override_destination(
        &self,
        _: Request<DestinationOverride>,
    ) -> Result<Response<Empty>, Status> {
        Err(not_faked("OverrideDestination"))
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
