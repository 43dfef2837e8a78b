//! The engine client: [`Engine`] over the engine's gRPC API on its Unix
//! socket.
//!
//! Three background tasks talk to the engine, so the task that sends the
//! adverts does not wait for it:
//! - the state reporter sends `HaState` on each change of state, retrying
//!   with the newest state until the engine takes it;
//! - the status reporter sends `HaUpdate` every `-status_report_interval`
//!   and turns a reply that requests a failover into
//!   [`EngineRequest::Failover`]. Its failed calls also tell when the
//!   engine is lost (see [`EngineHealth`]);
//! - the config checker calls `HaConfig` every `-config_check_interval`
//!   and turns a new configuration into [`EngineRequest::ConfigChanged`].
//!
//! A failing call is retried after a back-off that doubles from its retry
//! delay up to [`RETRY_DELAY_MAX`], for as long as the daemon runs. After
//! the `max_failures` setting's number of failures in a row, the failure
//! is logged as an error.

use std::net::IpAddr;
use std::num::NonZeroU8;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use seesaw_ipc::engine_proto::{self, Empty, HaConfigReply, HaStateRequest};
use seesaw_ipc::{Backoff, CallError, ClientOptions, EngineClient, connect_engine_lazy};
use seesaw_vrrp::{Counters, HaState};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::engine::{Engine, EngineError, EngineRequest, HaConfig, StatusFile};

/// Upper bound of the delay between two attempts of a failing call. It
/// bounds how long a restarted engine waits to hear this node's state.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(10);

/// How long the daemon waits at exit for its last state, such as SHUTDOWN,
/// to reach the engine.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// The timing of the engine calls, from the flags.
#[derive(Debug, Clone, Copy)]
pub struct IpcSettings {
    /// How long `HaUpdate` calls may fail in a row before the daemon
    /// leaves the election.
    pub engine_grace_period: Duration,
    pub config_check_interval: Duration,
    pub config_check_retry_delay: Duration,
    pub config_check_max_failures: u32,
    pub status_report_interval: Duration,
    pub status_report_retry_delay: Duration,
    pub status_report_max_failures: u32,
}

/// The node's state and counters after its last event.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    state: HaState,
    counters: Counters,
}

/// The engine at the end of a Unix socket.
#[derive(Debug)]
pub struct IpcEngine {
    path: PathBuf,
    client: EngineClient,
    /// The configuration last handed to the daemon, which the config
    /// checker compares with the engine's.
    config: Arc<Mutex<Option<HaConfig>>>,
    states: watch::Sender<Option<HaState>>,
    /// The last state the engine accepted.
    delivered: watch::Receiver<Option<HaState>>,
    status: watch::Sender<Option<Snapshot>>,
    requests: mpsc::Receiver<EngineRequest>,
    health: Arc<EngineHealth>,
    /// Whether the engine is lost, as [`EngineHealth`] last decided.
    lost: watch::Receiver<bool>,
    status_file: Option<StatusFile>,
    tasks: Vec<JoinHandle<()>>,
}

impl IpcEngine {
    /// Starts the client of the engine listening on `path` and its
    /// background tasks. Nothing is dialled before the first call, so the
    /// engine need not be up yet. Must be called inside a tokio runtime.
    pub fn start(path: &Path, settings: IpcSettings, status_file: Option<PathBuf>) -> IpcEngine {
        let client = connect_engine_lazy(path, &ClientOptions::single_attempt(CALL_TIMEOUT));
        let config = Arc::new(Mutex::new(None));
        let (states, state_receiver) = watch::channel(None);
        let (delivered_sender, delivered) = watch::channel(None);
        let (status, status_receiver) = watch::channel(None);
        let (request_sender, requests) = mpsc::channel(4);
        let (health, lost) = EngineHealth::new(path, settings.engine_grace_period);
        let health = Arc::new(health);
        let caller = |call| Caller {
            path: path.to_path_buf(),
            client: client.clone(),
            call,
        };

        let tasks = vec![
            tokio::spawn(report_states(
                caller("HaState"),
                state_receiver,
                delivered_sender,
                health.clone(),
                Backoff::new(settings.status_report_retry_delay, RETRY_DELAY_MAX),
                settings.status_report_max_failures,
            )),
            tokio::spawn(report_status(
                caller("HaUpdate"),
                status_receiver,
                request_sender.clone(),
                health.clone(),
                settings,
            )),
            tokio::spawn(check_config(
                caller("HaConfig"),
                config.clone(),
                request_sender,
                health.clone(),
                settings,
            )),
        ];
        IpcEngine {
            path: path.to_path_buf(),
            client,
            config,
            states,
            delivered,
            status,
            requests,
            health,
            lost,
            status_file: status_file.map(StatusFile::new),
            tasks,
        }
    }
}

impl Drop for IpcEngine {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Engine for IpcEngine {
    async fn ha_config(&mut self) -> Result<HaConfig, EngineError> {
        let config = fetch_config(&mut self.client, &self.path).await?;
        self.health.succeeded();
        *self.config.lock().expect("config lock poisoned") = Some(config);
        Ok(config)
    }

    fn report_state(&mut self, state: HaState, counters: &Counters) {
        self.states.send_replace(Some(state));
        let vrid = self
            .config
            .lock()
            .expect("config lock poisoned")
            .map(|c| c.vrid);
        if let (Some(file), Some(vrid)) = (&self.status_file, vrid) {
            file.write(vrid, state, counters);
        }
    }

    fn update_status(&mut self, state: HaState, counters: &Counters) {
        self.status.send_replace(Some(Snapshot {
            state,
            counters: *counters,
        }));
    }

    async fn next_request(&mut self) -> EngineRequest {
        tokio::select! {
            request = self.requests.recv() => match request {
                Some(request) => request,
                // The tasks hold the senders until the engine is dropped.
                None => std::future::pending().await,
            },
            // Only the newest value counts, so a loss that ended while the
            // daemon was not waiting for requests makes no request at all.
            Ok(()) = self.lost.changed() => {
                if *self.lost.borrow_and_update() {
                    EngineRequest::EngineLost
                } else {
                    EngineRequest::EngineBack
                }
            }
        }
    }

    async fn flush(&mut self) {
        let Some(last) = *self.states.borrow() else {
            return;
        };
        let delivered = self.delivered.wait_for(|state| *state == Some(last));
        if tokio::time::timeout(FLUSH_TIMEOUT, delivered)
            .await
            .is_err()
        {
            warn!(
                "the engine at {} did not receive the last state {last} within {FLUSH_TIMEOUT:?}",
                self.path.display()
            );
        }
    }
}

/// The limit on the dial and on the whole of each call to the engine, as
/// Seesaw v2's seesaw_ha has it. The tasks retry a call that fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One background task's handle on the engine: the client and the name of
/// the call it makes, for its log lines.
struct Caller {
    path: PathBuf,
    client: EngineClient,
    call: &'static str,
}

impl Caller {
    fn error(&self, status: tonic::Status) -> EngineError {
        EngineError::Call {
            path: self.path.clone(),
            source: CallError::new(self.call, status),
        }
    }

    /// Logs a failed attempt: a warning until `max_failures` failures in a
    /// row, then an error at every `max_failures`-th failure, which the
    /// back-off spaces out.
    fn log_failure(
        &self,
        error: &EngineError,
        backoff: &Backoff,
        delay: Duration,
        max_failures: u32,
    ) {
        let failures = backoff.failures();
        let max_failures = max_failures.max(1);
        if failures < max_failures {
            warn!("{error} (attempt {failures}); retrying in {delay:?}");
        } else if failures.is_multiple_of(max_failures) {
            error!(
                "{error}: {failures} failures in a row; still retrying, in {delay:?} and then at most every {RETRY_DELAY_MAX:?}"
            );
        } else {
            debug!("{error} (attempt {failures}); retrying in {delay:?}");
        }
    }

    fn log_success(&self, backoff: &mut Backoff) {
        let failures = backoff.succeed();
        if failures > 0 {
            info!(
                "{} call to the engine at {} succeeded after {failures} failures",
                self.call,
                self.path.display()
            );
        }
    }
}

/// Sends each new state with `HaState`. A failed call is retried with the
/// newest state, which may have changed meanwhile.
async fn report_states(
    mut caller: Caller,
    mut states: watch::Receiver<Option<HaState>>,
    delivered: watch::Sender<Option<HaState>>,
    health: Arc<EngineHealth>,
    mut backoff: Backoff,
    max_failures: u32,
) {
    while states.changed().await.is_ok() {
        loop {
            let Some(state) = *states.borrow_and_update() else {
                break;
            };
            let request = HaStateRequest {
                state: proto_state(state).into(),
            };
            match caller.client.ha_state(request).await {
                Ok(_) => {
                    caller.log_success(&mut backoff);
                    health.succeeded();
                    delivered.send_replace(Some(state));
                    break;
                }
                Err(status) => {
                    let error = caller.error(status);
                    let delay = backoff.fail();
                    caller.log_failure(&error, &backoff, delay, max_failures);
                    // A newer state ends the wait early; it is sent next.
                    let _ = tokio::time::timeout(delay, states.changed()).await;
                }
            }
        }
    }
}

/// Sends the node's status with `HaUpdate` once the daemon has published
/// one, then every `status_report_interval`, and passes a failover that the
/// reply requests to the daemon.
///
/// While the calls fail, the retries follow the back-off, except that one
/// falls at the end of the grace period, so that an engine that is back by
/// then is not declared lost.
async fn report_status(
    mut caller: Caller,
    mut status: watch::Receiver<Option<Snapshot>>,
    requests: mpsc::Sender<EngineRequest>,
    health: Arc<EngineHealth>,
    settings: IpcSettings,
) {
    let mut backoff = Backoff::new(settings.status_report_retry_delay, RETRY_DELAY_MAX);
    if status.wait_for(Option::is_some).await.is_err() {
        return;
    }
    loop {
        let Some(snapshot) = *status.borrow() else {
            return;
        };
        let started = Instant::now();
        match caller.client.ha_update(ha_status(&snapshot)).await {
            Ok(reply) => {
                caller.log_success(&mut backoff);
                health.succeeded();
                if reply.into_inner().failover_requested {
                    info!("the engine requested a failover (state {})", snapshot.state);
                    if requests.send(EngineRequest::Failover).await.is_err() {
                        return;
                    }
                }
                tokio::time::sleep(settings.status_report_interval).await;
            }
            Err(status) => {
                let error = caller.error(status);
                let mut delay = backoff.fail();
                if let Some(left) = health.failed(started) {
                    delay = delay.min(left);
                }
                caller.log_failure(&error, &backoff, delay, settings.status_report_max_failures);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Fetches the configuration with `HaConfig` every `config_check_interval`
/// and passes one that differs from the configuration in force to the
/// daemon.
async fn check_config(
    mut caller: Caller,
    config: Arc<Mutex<Option<HaConfig>>>,
    requests: mpsc::Sender<EngineRequest>,
    health: Arc<EngineHealth>,
    settings: IpcSettings,
) {
    let mut backoff = Backoff::new(settings.config_check_retry_delay, RETRY_DELAY_MAX);
    let mut delay = settings.config_check_interval;
    loop {
        tokio::time::sleep(delay).await;
        // Until the daemon has a configuration, it fetches its own.
        if config.lock().expect("config lock poisoned").is_none() {
            continue;
        }
        let fetched = fetch_config(&mut caller.client, &caller.path).await;
        let new = match fetched {
            Ok(new) => new,
            Err(error) => {
                delay = backoff.fail();
                caller.log_failure(&error, &backoff, delay, settings.config_check_max_failures);
                continue;
            }
        };
        caller.log_success(&mut backoff);
        health.succeeded();
        delay = settings.config_check_interval;

        let changed = {
            let mut current = config.lock().expect("config lock poisoned");
            let changed = current.is_some_and(|current| current != new);
            if changed {
                *current = Some(new);
            }
            changed
        };
        if changed
            && requests
                .send(EngineRequest::ConfigChanged(new))
                .await
                .is_err()
        {
            return;
        }
    }
}

/// Whether calls to the engine succeed, shared by the tasks that call it.
///
/// An outage starts with a failed `HaUpdate` call and ends with any
/// successful call. Once an outage has lasted the grace period, the engine
/// is lost: the daemon leaves the election until the engine is back,
/// because a master without an engine does not serve the VIPs.
#[derive(Debug)]
struct EngineHealth {
    path: PathBuf,
    grace_period: Duration,
    /// When the first failed call of the current outage started.
    outage_start: Mutex<Option<Instant>>,
    lost: watch::Sender<bool>,
}

impl EngineHealth {
    /// Creates the health of the engine at `path`, and the receiver that
    /// sees each change between lost and not lost.
    fn new(path: &Path, grace_period: Duration) -> (EngineHealth, watch::Receiver<bool>) {
        let (lost, receiver) = watch::channel(false);
        let health = EngineHealth {
            path: path.to_path_buf(),
            grace_period,
            outage_start: Mutex::new(None),
            lost,
        };
        (health, receiver)
    }

    /// Records a successful call, which ends the outage, if any.
    fn succeeded(&self) {
        let start = self
            .outage_start
            .lock()
            .expect("outage lock poisoned")
            .take();
        // Only a change notifies the daemon.
        let was_lost = self
            .lost
            .send_if_modified(|lost| std::mem::replace(lost, false));
        if let (true, Some(start)) = (was_lost, start) {
            info!(
                "a call to the engine at {} succeeded again, {:?} after the first failed call",
                self.path.display(),
                start.elapsed()
            );
        }
    }

    /// Records a failed call that started at `started`. Returns how long
    /// the outage may still last before the engine counts as lost, or
    /// `None` once it does.
    fn failed(&self, started: Instant) -> Option<Duration> {
        let start = *self
            .outage_start
            .lock()
            .expect("outage lock poisoned")
            .get_or_insert(started);
        let failing_for = start.elapsed();
        let left = self.grace_period.saturating_sub(failing_for);
        if !left.is_zero() {
            return Some(left);
        }
        let newly_lost = self
            .lost
            .send_if_modified(|lost| !std::mem::replace(lost, true));
        if newly_lost {
            warn!(
                "calls to the engine at {} have failed for {failing_for:?}, longer than the grace period of {:?}; leaving the election until a call succeeds",
                self.path.display(),
                self.grace_period
            );
        }
        None
    }
}

/// Calls `HaConfig` and checks the reply.
async fn fetch_config(client: &mut EngineClient, path: &Path) -> Result<HaConfig, EngineError> {
    let reply = client
        .ha_config(Empty {})
        .await
        .map_err(|status| EngineError::Call {
            path: path.to_path_buf(),
            source: CallError::new("HaConfig", status),
        })?;
    ha_config(&reply.into_inner()).map_err(|reason| EngineError::InvalidConfig {
        path: path.to_path_buf(),
        reason,
    })
}

/// Converts the engine's `HaConfig` reply, checking the addresses, the
/// priority and the VRID.
fn ha_config(reply: &HaConfigReply) -> Result<HaConfig, String> {
    let address = |field: &str, text: &str| {
        text.parse::<IpAddr>()
            .map_err(|_| format!("{field} {text:?} is not an IPv4 or IPv6 address"))
    };
    let byte = |field: &str, value: u32| {
        u8::try_from(value)
            .ok()
            .and_then(NonZeroU8::new)
            .ok_or_else(|| format!("{field} {value} is not from 1 to 255"))
    };
    let local_addr = address("local_addr", &reply.local_addr)?;
    let remote_addr = address("remote_addr", &reply.remote_addr)?;
    if local_addr.is_ipv4() != remote_addr.is_ipv4() {
        return Err(format!(
            "local_addr {local_addr} and remote_addr {remote_addr} are of different address families"
        ));
    }
    Ok(HaConfig {
        enabled: reply.enabled,
        local_addr,
        remote_addr,
        priority: byte("priority", reply.priority)?,
        vrid: byte("vrid", reply.vrid)?,
    })
}

fn proto_state(state: HaState) -> engine_proto::HaState {
    match state {
        HaState::Unknown => engine_proto::HaState::Unknown,
        HaState::Backup => engine_proto::HaState::Backup,
        HaState::Disabled => engine_proto::HaState::Disabled,
        HaState::Error => engine_proto::HaState::Error,
        HaState::Leader => engine_proto::HaState::Leader,
        HaState::Shutdown => engine_proto::HaState::Shutdown,
    }
}

/// Builds the `HaUpdate` request. Adverts are handled as they are read, so
/// none is ever queued.
fn ha_status(snapshot: &Snapshot) -> engine_proto::HaStatus {
    let now = SystemTime::now();
    let in_state = Instant::now().saturating_duration_since(snapshot.counters.state_since);
    engine_proto::HaStatus {
        state: proto_state(snapshot.state).into(),
        since_ms: unix_millis(now.checked_sub(in_state).unwrap_or(UNIX_EPOCH)),
        last_update_ms: unix_millis(now),
        sent: snapshot.counters.adverts_sent,
        received: snapshot.counters.adverts_received,
        received_queued: 0,
        transitions: snapshot.counters.transitions,
    }
}

fn unix_millis(time: SystemTime) -> i64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> HaConfigReply {
        HaConfigReply {
            enabled: true,
            local_addr: "198.18.0.1".into(),
            remote_addr: "224.0.0.18".into(),
            priority: 255,
            vrid: 60,
        }
    }

    #[test]
    fn ha_config_converted() {
        let config = ha_config(&reply()).unwrap();

        assert!(config.enabled);
        assert_eq!(config.local_addr, "198.18.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(config.remote_addr, "224.0.0.18".parse::<IpAddr>().unwrap());
        assert_eq!(config.priority.get(), 255);
        assert_eq!(config.vrid.get(), 60);
    }

    #[test]
    fn invalid_ha_config_rejected() {
        let cases = [
            (
                HaConfigReply {
                    local_addr: String::new(),
                    ..reply()
                },
                "local_addr \"\" is not an IPv4 or IPv6 address",
            ),
            (
                HaConfigReply {
                    remote_addr: "ff02::12".into(),
                    ..reply()
                },
                "different address families",
            ),
            (
                HaConfigReply {
                    priority: 0,
                    ..reply()
                },
                "priority 0 is not from 1 to 255",
            ),
            (
                HaConfigReply {
                    vrid: 256,
                    ..reply()
                },
                "vrid 256 is not from 1 to 255",
            ),
        ];
        for (reply, expected) in cases {
            let error = ha_config(&reply).unwrap_err();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn status_carries_counters() {
        let snapshot = Snapshot {
            state: HaState::Leader,
            counters: Counters {
                adverts_sent: 12,
                adverts_received: 3,
                transitions: 2,
                state_since: Instant::now(),
            },
        };

        let status = ha_status(&snapshot);

        assert_eq!(status.state(), engine_proto::HaState::Leader);
        assert_eq!(status.sent, 12);
        assert_eq!(status.received, 3);
        assert_eq!(status.transitions, 2);
        assert!(status.since_ms > 0);
        assert!(status.since_ms <= status.last_update_ms);
    }

    #[test]
    fn engine_lost_after_grace_period() {
        let grace_period = Duration::from_secs(10);
        let (health, mut lost) = EngineHealth::new(Path::new("/run/engine.sock"), grace_period);
        let now = Instant::now();

        // An outage that started 20 s ago is past the grace period, and a
        // later failure does not restart it.
        assert_eq!(health.failed(now - 2 * grace_period), None);
        assert!(lost.has_changed().unwrap());
        assert!(*lost.borrow_and_update());
        assert_eq!(health.failed(now), None);
        assert!(!lost.has_changed().unwrap());

        // A success ends the outage, and the next failure starts a new one.
        health.succeeded();
        assert!(lost.has_changed().unwrap());
        assert!(!*lost.borrow_and_update());
        let left = health.failed(Instant::now()).unwrap();
        assert!(left <= grace_period, "{left:?}");
        assert!(!lost.has_changed().unwrap());
    }

    #[test]
    fn zero_grace_period_loses_engine_at_first_failure() {
        let (health, lost) = EngineHealth::new(Path::new("/run/engine.sock"), Duration::ZERO);
        assert_eq!(health.failed(Instant::now()), None);
        assert!(*lost.borrow());
    }

    #[test]
    fn states_keep_engine_numbers() {
        for state in [
            HaState::Unknown,
            HaState::Backup,
            HaState::Disabled,
            HaState::Error,
            HaState::Leader,
            HaState::Shutdown,
        ] {
            assert_eq!(proto_state(state) as i32, state.as_i32(), "{state}");
        }
    }
}
