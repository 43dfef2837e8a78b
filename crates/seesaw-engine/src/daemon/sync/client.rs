//! The peer sync client: follows the peer's state while this engine is not
//! master, and makes single calls to the peer for its config and for a
//! failover.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seesaw_ipc::sync_proto as wire;
use tokio::sync::watch;

use super::health::{HealthComparison, describe};
use super::state::{
    Desync, Mirror, Received, check_states, describe_override, override_changes, override_to_wire,
};
use super::stopping;
use super::transport::{Dialer, Throttle, describe_error, held_back_note};
use crate::daemon::core::Core;
use crate::daemon::server::PeerFailover;
use crate::notifier::source::BoxFuture;
use crate::notifier::{NotifierHandle, PeerConfig, PeerConfigSource, ReloadError, Source};
use crate::overrides::{Override, Overrides};

/// How long a single call to the peer may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// How many disagreeing checks one log line names.
const LOGGED_DISAGREEMENTS: usize = 10;

/// Calls to the peer's sync server.
pub struct PeerClient {
    /// How to reach the peer, or why peer sync cannot run.
    dialer: Result<Dialer, String>,
}

impl PeerClient {
    pub fn new(dialer: Result<Dialer, String>) -> Self {
        PeerClient { dialer }
    }

    /// Returns how to reach the peer, or why peer sync cannot run.
    pub fn dialer(&self) -> Result<&Dialer, String> {
        self.dialer.as_ref().map_err(Clone::clone)
    }

    /// Returns the peer's address for messages.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.dialer.as_ref().ok().map(|dialer| dialer.peer)
    }

    /// Asks the peer to give up mastership.
    pub async fn failover(&self) -> Result<(), String> {
        let dialer = self.dialer()?;
        let mut client = dialer.connect().await?;
        let call = client.failover(wire::Empty {});
        tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| format!("the call timed out after {CALL_TIMEOUT:?}"))?
            .map_err(|status| status.message().to_string())?;
        Ok(())
    }

    /// Fetches the config in force on the peer, as a binary Cluster.
    pub async fn config(&self) -> Result<PeerConfig, String> {
        let dialer = self.dialer()?;
        let describe_failure = |error: String| {
            format!(
                "fetching the config from the peer {} failed: {error}",
                dialer.peer
            )
        };
        let mut client = dialer.connect().await.map_err(describe_failure)?;
        let call = client.config(wire::Empty {});
        let reply = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| describe_failure(format!("the call timed out after {CALL_TIMEOUT:?}")))?
            .map_err(|status| describe_failure(status.message().to_string()))?;
        Ok(PeerConfig {
            bytes: reply.into_inner().cluster,
            detail: format!("peer {}", dialer.peer),
        })
    }
}

impl PeerConfigSource for PeerClient {
    fn fetch(&self) -> BoxFuture<'_, Result<PeerConfig, String>> {
        Box::pin(self.config())
    }
}

impl PeerFailover for PeerClient {
    fn failover(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            PeerClient::failover(self).await?;
            Ok(self
                .peer()
                .map_or_else(|| "the peer".to_string(), |peer| peer.to_string()))
        })
    }
}

/// Timing of the client.
#[derive(Debug, Clone, Copy)]
pub struct FollowTiming {
    /// How long the peer may stay silent before the session is dropped.
    pub session_timeout: Duration,
    /// The pause before connecting again.
    pub retry: Duration,
}

/// Copies the peer's state into this engine.
pub struct Follower {
    pub dialer: Dialer,
    pub core: Arc<Mutex<Core>>,
    pub notifier: NotifierHandle,
    pub timing: FollowTiming,
    /// The peer's config generation when this engine last reloaded for it.
    config_generation: Option<(u64, u64)>,
    health: HealthComparison,
    failures: Throttle,
}

impl Follower {
    pub fn new(
        dialer: Dialer,
        core: Arc<Mutex<Core>>,
        notifier: NotifierHandle,
        timing: FollowTiming,
    ) -> Self {
        Follower {
            dialer,
            core,
            notifier,
            timing,
            config_generation: None,
            health: HealthComparison::default(),
            failures: Throttle::new(Duration::from_secs(300)),
        }
    }

    /// Follows the peer while `enabled` is true, until `shutdown` turns
    /// true. A session that ends is started again after the retry pause,
    /// with the full state, so nothing missed while apart is lost.
    pub async fn run(
        mut self,
        mut enabled: watch::Receiver<bool>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut following = false;
        loop {
            tokio::select! {
                waited = enabled.wait_for(|enabled| *enabled) => if waited.is_err() { return },
                () = stopping(&mut shutdown) => return,
            }
            if !following {
                tracing::info!("peer sync: following the peer {}", self.dialer.peer);
                following = true;
            }

            let ended = tokio::select! {
                ended = self.session() => Some(ended),
                _ = enabled.wait_for(|enabled| !*enabled) => None,
                () = stopping(&mut shutdown) => return,
            };
            match ended {
                None => {
                    tracing::info!("peer sync: stopped following the peer: this node is master");
                    following = false;
                    continue;
                }
                Some(error) => {
                    if let Some(held_back) = self.failures.allow() {
                        tracing::warn!(
                            "peer sync: the session with the peer {} ended: {error}; \
                             connecting again every {:?}{}",
                            self.dialer.peer,
                            self.timing.retry,
                            held_back_note(held_back)
                        );
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.timing.retry) => {}
                () = stopping(&mut shutdown) => return,
            }
        }
    }

    /// Runs one session; returns why it ended.
    async fn session(&mut self) -> String {
        let mut client = match self.dialer.connect().await {
            Ok(client) => client,
            Err(error) => return format!("connecting failed: {error}"),
        };
        let overrides = self
            .core
            .lock()
            .expect("engine state poisoned")
            .engine
            .overrides()
            .clone();
        let request = wire::WatchRequest {
            node: self.dialer.local.to_string(),
            overrides: override_changes(&Overrides::default(), &overrides)
                .iter()
                .map(override_to_wire)
                .collect(),
        };
        let mut notes = match client.watch(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return format!("the peer rejected the session: {}", status.message()),
        };
        let mut mirror = Mirror::default();
        self.health.reset();

        loop {
            let note = match tokio::time::timeout(self.timing.session_timeout, notes.message())
                .await
            {
                Err(_) => {
                    return format!(
                        "the peer sent nothing for {:?}",
                        self.timing.session_timeout
                    );
                }
                Ok(Err(status)) => return format!("receiving failed: {}", describe_error(&status)),
                Ok(Ok(None)) => return "the peer ended the session".to_string(),
                Ok(Ok(Some(note))) => note,
            };
            match mirror.receive(&note) {
                Ok(received) => {
                    if received == Received::State {
                        self.failures.reset();
                    }
                    self.apply(&mirror, received, note.instance);
                }
                Err(desync) => return describe_desync(&desync),
            }
        }
    }

    /// Carries out what a note changed in the copy of the peer's state.
    fn apply(&mut self, mirror: &Mirror, received: Received, instance: u64) {
        match received {
            Received::State if mirror.master => {
                let mut core = self.core.lock().expect("engine state poisoned");
                let local = core.engine.overrides().clone();
                for request in override_changes(&local, &mirror.state.overrides) {
                    self.apply_override(&mut core, request);
                }
            }
            Received::Changes(changes) if mirror.master => {
                let mut core = self.core.lock().expect("engine state poisoned");
                for request in changes.overrides {
                    self.apply_override(&mut core, request);
                }
            }
            Received::State | Received::Changes(_) => {}
            Received::Heartbeat => self.compare_health(mirror),
        }
        self.follow_config(instance, mirror.state.config_generation);
    }

    fn apply_override(&self, core: &mut Core, request: Override) {
        tracing::info!(
            "peer sync: {} from the master {}",
            describe_override(&request),
            self.dialer.peer
        );
        core.override_state(request);
    }

    /// Reloads from the peer when it applied a new config and this
    /// engine's config source is the peer.
    fn follow_config(&mut self, instance: u64, generation: u64) {
        let current = Some((instance, generation));
        if self.config_generation == current {
            return;
        }
        self.config_generation = current;
        if self.notifier.source() != Source::Peer {
            return;
        }
        match self.notifier.reload() {
            Ok(()) => tracing::info!(
                "peer sync: the peer {} has a new config; reloading from it",
                self.dialer.peer
            ),
            Err(ReloadError::AlreadyQueued) => {}
            Err(error) => tracing::warn!("peer sync: reloading from the peer failed: {error}"),
        }
    }

    /// Compares the peer's check states with this engine's, and logs the
    /// disagreements that last, and those that end.
    fn compare_health(&mut self, mirror: &Mirror) {
        let local = check_states(&self.core.lock().expect("engine state poisoned").engine);
        let comparison = self.health.compare(&mirror.state.checks, &local);
        if !comparison.new.is_empty() {
            tracing::warn!(
                "peer sync: {} check(s) disagree with the peer {}, so a failover would change \
                 which destinations serve: {}",
                comparison.new.len(),
                self.dialer.peer,
                describe(&comparison.new, LOGGED_DISAGREEMENTS)
            );
        }
        if comparison.resolved > 0 {
            tracing::info!(
                "peer sync: {} check(s) agree with the peer again; {} still disagree",
                comparison.resolved,
                comparison.ongoing
            );
        }
    }
}

fn describe_desync(desync: &Desync) -> String {
    format!("out of sync with the peer ({desync}); the next session starts with the full state")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disabled_client_returns_reason() {
        let client = PeerClient::new(Err("peer sync is disabled: no key".to_string()));
        assert_eq!(
            client.failover().await,
            Err("peer sync is disabled: no key".to_string())
        );
        assert!(client.config().await.is_err());
        assert_eq!(client.peer(), None);
    }
}
