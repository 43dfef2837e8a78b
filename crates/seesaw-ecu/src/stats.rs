//! The statistics collector: it reads the engine's state at start and
//! then at every interval, for `/metrics` and `/healthz`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use seesaw_ipc::EngineClient;
use seesaw_ipc::engine_proto::{
    CheckStatusList, ClusterStatusReply, ConfigStatusReply, Empty, HaStatus, VserverList,
};
use tokio::sync::watch;

/// One collection's results. Each call's result is kept apart, so a
/// failing call leaves the others' metrics in place.
#[derive(Debug, Clone)]
pub struct Stats {
    /// When the collection started.
    pub collected_at: SystemTime,
    pub duration: Duration,
    pub ha: Result<HaStatus, CallFailure>,
    pub config: Result<ConfigStatusReply, CallFailure>,
    pub cluster: Result<ClusterStatusReply, CallFailure>,
    pub vservers: Result<VserverList, CallFailure>,
    pub checks: Result<CheckStatusList, CallFailure>,
    /// Collections since the ECU started, this one included.
    pub collections: u64,
    /// Failed calls since the ECU started, by call name.
    pub errors: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Returns whether the engine served the last collection's
    /// `HaStatusGet`, the one call that does not need a loaded config.
    pub fn engine_up(&self) -> bool {
        self.ha.is_ok()
    }
}

/// A failed engine call: its gRPC code, and a message that names the call
/// and the cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    pub code: tonic::Code,
    pub message: String,
}

impl CallFailure {
    fn new(call: &'static str, status: tonic::Status) -> CallFailure {
        CallFailure {
            code: status.code(),
            message: seesaw_ipc::CallError::new(call, status).to_string(),
        }
    }
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Returns whether a call with this code did not reach the engine.
fn unreachable(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
    )
}

/// Returns the failure of a call left out because the engine is
/// unreachable.
fn skipped() -> CallFailure {
    CallFailure {
        code: tonic::Code::Unavailable,
        message: "not called: the engine is unreachable".to_string(),
    }
}

/// The latest collection, `None` until the first one ends.
pub type StatsReceiver = watch::Receiver<Option<Arc<Stats>>>;

/// Calls the engine for one collection.
struct Collector {
    client: EngineClient,
    collections: u64,
    errors: BTreeMap<&'static str, u64>,
    /// The last failure of each call, to log only changes.
    last_failures: BTreeMap<&'static str, CallFailure>,
}

impl Collector {
    async fn collect(&mut self) -> Stats {
        let collected_at = SystemTime::now();
        let started = Instant::now();

        let mut client = self.client.clone();
        let ha = client.ha_status_get(Empty {}).await;
        let ha = self.outcome("HaStatusGet", ha);

        self.collections += 1;
        let mut stats = Stats {
            collected_at,
            duration: started.elapsed(),
            ha: ha.clone(),
            config: Err(skipped()),
            cluster: Err(skipped()),
            vservers: Err(skipped()),
            checks: Err(skipped()),
            collections: self.collections,
            errors: self.errors.clone(),
        };
        // An engine that is unreachable would fail every other call the
        // same way, so they are neither made nor counted.
        if let Err(failure) = &ha
            && unreachable(failure.code)
        {
            return stats;
        }

        let config = client.config_status(Empty {}).await;
        stats.config = self.outcome("ConfigStatus", config);
        let cluster = client.cluster_status(Empty {}).await;
        stats.cluster = self.outcome("ClusterStatus", cluster);
        let vservers = client.vservers(Empty {}).await;
        stats.vservers = self.outcome("Vservers", vservers);
        let checks = client.check_status(Empty {}).await;
        stats.checks = self.outcome("CheckStatus", checks);
        stats.duration = started.elapsed();
        stats.errors = self.errors.clone();
        stats
    }

    /// Counts and logs a failed call. Each call's failure is logged when
    /// it starts or changes, and its end is logged too, so that an engine
    /// that stays down does not fill the log.
    fn outcome<T>(
        &mut self,
        call: &'static str,
        result: Result<tonic::Response<T>, tonic::Status>,
    ) -> Result<T, CallFailure> {
        let failure = match result {
            Ok(reply) => {
                if let Some(failure) = self.last_failures.remove(call) {
                    tracing::info!("{call} works again; it failed with {failure}");
                }
                return Ok(reply.into_inner());
            }
            Err(status) => CallFailure::new(call, status),
        };

        // An engine older than this ECU lacks the newer calls; that is not
        // an error to count.
        if failure.code != tonic::Code::Unimplemented {
            *self.errors.entry(call).or_default() += 1;
        }
        if self.last_failures.get(call) != Some(&failure) {
            if failure.code == tonic::Code::Unimplemented {
                tracing::info!("the engine does not serve {call}; its metrics are left out");
            } else {
                tracing::warn!("failed to collect statistics: {failure}");
            }
            self.last_failures.insert(call, failure.clone());
        }
        Err(failure)
    }
}

/// Collects at once and then every `interval` until `shutdown` completes,
/// publishing each collection to the returned receiver.
pub fn spawn_collector(
    client: EngineClient,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> StatsReceiver {
    let (sender, receiver) = watch::channel(None);
    let mut collector = Collector {
        client,
        collections: 0,
        errors: BTreeMap::new(),
        last_failures: BTreeMap::new(),
    };
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut shutdown => return,
            }
            let stats = collector.collect().await;
            sender.send_replace(Some(Arc::new(stats)));
        }
    });
    receiver
}
