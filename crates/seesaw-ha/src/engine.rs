//! Where the daemon gets its configuration and where it reports its state.
//!
//! In production that is the Seesaw engine. Its IPC is not written yet, so
//! the only implementation is [`TestMode`], which takes the configuration
//! from the `-test_mode` flags and reports nowhere. An engine client
//! implements [`Engine`] and plugs into [`crate::daemon::run`] unchanged.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::path::PathBuf;

use seesaw_vrrp::{Counters, HaState};
use thiserror::Error;

/// The HA configuration of one node, as the engine's `HAConfig` call
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

/// A failed call to the engine.
#[derive(Debug, Error)]
#[error("engine call {call} failed: {message}")]
pub struct EngineError {
    pub call: &'static str,
    pub message: String,
}

/// The daemon's configuration source and state sink.
///
/// `report_state` runs on the task that sends the adverts, so it must not
/// block: an implementation that talks to a remote engine hands the report
/// to a background task and returns.
pub trait Engine {
    /// Fetches the node's HA configuration.
    fn ha_config(&mut self) -> impl Future<Output = Result<HaConfig, EngineError>>;

    /// Reports a change of state, with the counters after the change.
    fn report_state(&mut self, state: HaState, counters: &Counters);
}

/// The `-test_mode` engine: a fixed configuration from the flags, and state
/// reports written to a status file when `-status_file` is set.
#[derive(Debug)]
pub struct TestMode {
    config: HaConfig,
    status_file: Option<PathBuf>,
}

impl TestMode {
    pub fn new(config: HaConfig, status_file: Option<PathBuf>) -> Self {
        TestMode {
            config,
            status_file,
        }
    }

    /// Writes the status file through a temporary file and a rename, so a
    /// reader never sees a half-written file.
    fn write_status(&self, state: HaState, counters: &Counters) -> io::Result<()> {
        let Some(path) = &self.status_file else {
            return Ok(());
        };
        let text = format!(
            "state={state}\nvrid={vrid}\ntransitions={transitions}\nadverts_sent={sent}\nadverts_received={received}\n",
            vrid = self.config.vrid,
            transitions = counters.transitions,
            sent = counters.adverts_sent,
            received = counters.adverts_received,
        );
        let mut temporary = path.clone().into_os_string();
        temporary.push(".tmp");
        fs::write(&temporary, text)?;
        fs::rename(&temporary, path)
    }
}

impl Engine for TestMode {
    async fn ha_config(&mut self) -> Result<HaConfig, EngineError> {
        Ok(self.config)
    }

    fn report_state(&mut self, state: HaState, counters: &Counters) {
        if let Err(error) = self.write_status(state, counters) {
            tracing::error!(
                "failed to write the status file {}: {error}",
                self.status_file
                    .as_deref()
                    .map(|path| path.display().to_string())
                    .unwrap_or_default()
            );
        }
    }
}
