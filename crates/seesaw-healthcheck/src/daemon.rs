//! The daemon's loops: fetch configurations, run them, report the results.
//!
//! Where checks come from and where results go are the two traits below, so
//! the standalone `-config` mode and the engine's IPC plug into the same
//! loops.

use std::collections::BTreeMap;
use std::error::Error;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::checker::CheckContext;
use crate::config::{self, CheckConfig, CheckId};
use crate::report::report_loop;
use crate::scheduler::Scheduler;
use crate::status::Notification;

/// An error from a source or a sink, logged by the loops.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Pause after a failed fetch.
pub const FETCH_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Pause after a failed fetch before any fetch has succeeded: the engine
/// creates its socket a few seconds after the watchdog starts both, and
/// checks should start as soon as it does.
pub const FIRST_FETCH_RETRY_DELAY: Duration = Duration::from_millis(250);

/// Failed fetches in a row per error line: one line a minute.
const FETCH_FAILURES_PER_LOG: u32 = 12;

/// A source of the checks to run.
pub trait CheckSource: Send + 'static {
    /// Returns the complete set of checks to run now. An empty map stops
    /// every check.
    fn fetch(
        &mut self,
    ) -> impl Future<Output = Result<BTreeMap<CheckId, CheckConfig>, BoxError>> + Send;
}

/// A destination for check results.
pub trait ResultSink: Send + 'static {
    /// Delivers one batch of notifications.
    fn send(&mut self, batch: &[Notification])
    -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// The daemon's timing and queue settings, from its flags.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Maximum wait after the first queued notification before sending.
    pub batch_delay: Duration,
    /// Send at once when this many notifications are queued.
    pub batch_size: usize,
    /// Capacity of the notification queue.
    pub channel_size: usize,
    /// Failed sends in a row after which the failure is logged as an
    /// error; sending is retried regardless.
    pub max_failures: u32,
    /// Period of the full status report.
    pub notify_interval: Duration,
    /// Period between fetches after a successful one.
    pub fetch_interval: Duration,
    /// Pause after the first failed send of a batch; it doubles after each
    /// further failure, up to [`crate::report::RETRY_DELAY_MAX`].
    pub retry_delay: Duration,
    pub dry_run: bool,
}

/// Runs the checks from `source` and reports to `sink` until `shutdown`
/// completes. A failing source or sink is retried, never fatal. Checks in
/// flight at shutdown are dropped without a final report.
pub async fn run<S: CheckSource, R: ResultSink>(
    settings: Settings,
    context: CheckContext,
    source: S,
    sink: R,
    shutdown: impl Future<Output = ()>,
) {
    let (notification_tx, notification_rx) = mpsc::channel(settings.channel_size.max(1));
    let (config_tx, config_rx) = mpsc::channel(1);
    let scheduler = Scheduler::new(context, settings.dry_run, notification_tx.clone());

    let updater = tokio::spawn(fetch_loop(source, config_tx, settings.fetch_interval));
    let manager = tokio::spawn(manage_loop(
        scheduler,
        config_rx,
        notification_tx,
        settings.notify_interval,
    ));
    let reported = report_loop(sink, notification_rx, &settings);

    tokio::select! {
        () = shutdown => {}
        () = reported => {}
    }
    updater.abort();
    manager.abort();
}

async fn fetch_loop<S: CheckSource>(
    mut source: S,
    configs: mpsc::Sender<BTreeMap<CheckId, CheckConfig>>,
    fetch_interval: Duration,
) {
    let mut failures: u32 = 0;
    let mut fetched = false;
    loop {
        match source.fetch().await {
            Ok(checks) => {
                fetched = true;
                if failures > 0 {
                    tracing::info!(
                        "fetched {} checks after {failures} failed attempts",
                        checks.len()
                    );
                    failures = 0;
                }
                if configs.send(checks).await.is_err() {
                    return;
                }
                tokio::time::sleep(fetch_interval).await;
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                // The first failure, then one line a minute while the
                // source stays down.
                let pause = if fetched {
                    FETCH_RETRY_DELAY
                } else {
                    FIRST_FETCH_RETRY_DELAY
                };
                if failures % FETCH_FAILURES_PER_LOG == 1 {
                    tracing::error!(
                        "failed to fetch checks (attempt {failures}): {error}; retrying every {}s",
                        pause.as_secs()
                    );
                } else {
                    tracing::debug!("failed to fetch checks (attempt {failures}): {error}");
                }
                tokio::time::sleep(pause).await;
            }
        }
    }
}

async fn manage_loop(
    mut scheduler: Scheduler,
    mut configs: mpsc::Receiver<BTreeMap<CheckId, CheckConfig>>,
    notifications: mpsc::Sender<Notification>,
    notify_interval: Duration,
) {
    let mut report = tokio::time::interval_at(Instant::now() + notify_interval, notify_interval);
    loop {
        tokio::select! {
            checks = configs.recv() => {
                let Some(checks) = checks else { return };
                scheduler.apply(&checks);
            }
            _ = report.tick() => {
                for notification in scheduler.statuses() {
                    if notifications.send(notification).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Checks read from a `-config` file, re-read at every fetch so edits apply
/// within one fetch interval.
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: PathBuf) -> FileSource {
        FileSource { path }
    }
}

impl CheckSource for FileSource {
    async fn fetch(&mut self) -> Result<BTreeMap<CheckId, CheckConfig>, BoxError> {
        let path = self.path.clone();
        let file = tokio::task::spawn_blocking(move || config::load(&path)).await??;
        Ok(file.checks)
    }
}

/// Drops every notification, for the `-config` mode, where the
/// scheduler's log lines of the state changes are the only output.
#[derive(Debug, Default)]
pub struct DiscardSink;

impl ResultSink for DiscardSink {
    async fn send(&mut self, _batch: &[Notification]) -> Result<(), BoxError> {
        Ok(())
    }
}
