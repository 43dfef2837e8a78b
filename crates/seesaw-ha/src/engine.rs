//! Where the daemon gets its configuration and where it reports its state.
//!
//! In production that is the Seesaw engine, through [`crate::ipc::IpcEngine`].
//! [`TestMode`] takes the configuration from the `-test_mode` flags and
//! reports nowhere. Both implement [`Engine`], which [`crate::daemon::run`]
//! drives.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::path::PathBuf;

use seesaw_ipc::CallError;
use seesaw_vrrp::{Counters, HaState};
use thiserror::Error;

/// The HA configuration of one node, as the engine's `HaConfig` call
/// returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaConfig {
    /// False while the node is DISABLED; the daemon waits for true.
    pub enabled: bool,
    pub local_addr: IpAddr,
    /// The peer's address or the multicast group.
    pub remote_addr: IpAddr,
    pub priority: NonZeroU8,
    pub vrid: NonZeroU8,
}

impl HaConfig {
    /// Returns whether `other` needs new sockets and a new instance: a new
    /// VRID or address. A new priority or enabled flag does not.
    pub fn needs_restart_for(&self, other: &HaConfig) -> bool {
        self.vrid != other.vrid
            || self.local_addr != other.local_addr
            || self.remote_addr != other.remote_addr
    }
}

/// A failed request to the engine.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("engine at {}: {source}", path.display())]
    Call {
        path: PathBuf,
        #[source]
        source: CallError,
    },
    #[error("invalid HA config from the engine at {}: {reason}", path.display())]
    InvalidConfig { path: PathBuf, reason: String },
}

/// A request from the engine to the running node, or a change in whether
/// calls to the engine succeed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineRequest {
    /// An operator asked the master to hand over to its peer.
    Failover,
    /// The engine's HA configuration differs from the one in force.
    ConfigChanged(HaConfig),
    /// Calls to the engine have failed for longer than the grace period,
    /// so the node must leave the election.
    EngineLost,
    /// A call to the engine succeeded after [`EngineRequest::EngineLost`].
    EngineBack,
}

/// The daemon's configuration source and state sink.
///
/// Every method but `ha_config` runs on the task that sends the adverts,
/// so none of them may block: an implementation that talks to a remote
/// engine hands the reports to a background task and returns.
pub trait Engine {
    /// Fetches the node's HA configuration.
    fn ha_config(&mut self) -> impl Future<Output = Result<HaConfig, EngineError>>;

    /// Reports a change of state, with the counters after the change.
    fn report_state(&mut self, state: HaState, counters: &Counters);

    /// Records the node's state and counters after each event, for the
    /// periodic status report.
    fn update_status(&mut self, state: HaState, counters: &Counters) {
        let _ = (state, counters);
    }

    /// Waits for the engine's next request. An engine that never sends one
    /// returns a future that never completes.
    fn next_request(&mut self) -> impl Future<Output = EngineRequest>;

    /// Waits a moment for the last state report to reach the engine. The
    /// daemon calls it once, before it exits.
    fn flush(&mut self) -> impl Future<Output = ()> {
        async {}
    }
}

/// The `-status_file` of seesaw-rs: the state and counters as `key=value`
/// lines, replaced on every change of state.
#[derive(Debug)]
pub struct StatusFile {
    path: PathBuf,
}

impl StatusFile {
    pub fn new(path: PathBuf) -> StatusFile {
        StatusFile { path }
    }

    /// Writes the file through a temporary file and a rename, so a reader
    /// never sees a half-written file. Failures are logged.
    pub fn write(&self, vrid: NonZeroU8, state: HaState, counters: &Counters) {
        if let Err(error) = self.try_write(vrid, state, counters) {
            tracing::error!(
                "failed to write the status file {}: {error}",
                self.path.display()
            );
        }
    }

    fn try_write(&self, vrid: NonZeroU8, state: HaState, counters: &Counters) -> io::Result<()> {
        let text = format!(
            "state={state}\nvrid={vrid}\ntransitions={transitions}\nadverts_sent={sent}\nadverts_received={received}\n",
            transitions = counters.transitions,
            sent = counters.adverts_sent,
            received = counters.adverts_received,
        );
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        fs::write(&temporary, text)?;
        fs::rename(&temporary, &self.path)
    }
}

/// The `-test_mode` engine: a fixed configuration from the flags, and state
/// reports written to a status file when `-status_file` is set.
#[derive(Debug)]
pub struct TestMode {
    config: HaConfig,
    status_file: Option<StatusFile>,
}

impl TestMode {
    pub fn new(config: HaConfig, status_file: Option<PathBuf>) -> Self {
        TestMode {
            config,
            status_file: status_file.map(StatusFile::new),
        }
    }
}

impl Engine for TestMode {
    async fn ha_config(&mut self) -> Result<HaConfig, EngineError> {
        Ok(self.config)
    }

    fn report_state(&mut self, state: HaState, counters: &Counters) {
        if let Some(file) = &self.status_file {
            file.write(self.config.vrid, state, counters);
        }
    }

    async fn next_request(&mut self) -> EngineRequest {
        std::future::pending().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HaConfig {
        HaConfig {
            enabled: true,
            local_addr: "198.18.0.1".parse().unwrap(),
            remote_addr: "224.0.0.18".parse().unwrap(),
            priority: NonZeroU8::new(200).unwrap(),
            vrid: NonZeroU8::new(60).unwrap(),
        }
    }

    #[test]
    fn restart_only_for_vrid_or_address() {
        let running = config();
        let priority = HaConfig {
            priority: NonZeroU8::new(100).unwrap(),
            ..running
        };
        let disabled = HaConfig {
            enabled: false,
            ..running
        };
        let vrid = HaConfig {
            vrid: NonZeroU8::new(61).unwrap(),
            ..running
        };
        let local = HaConfig {
            local_addr: "198.18.0.9".parse().unwrap(),
            ..running
        };
        let remote = HaConfig {
            remote_addr: "198.18.0.2".parse().unwrap(),
            ..running
        };

        assert!(!running.needs_restart_for(&priority));
        assert!(!running.needs_restart_for(&disabled));
        assert!(running.needs_restart_for(&vrid));
        assert!(running.needs_restart_for(&local));
        assert!(running.needs_restart_for(&remote));
    }
}
