//! The daemon's loops: fetch configurations, run them, report the results.
//!
//! Where checks come from and where results go are the two traits below, so
//! the standalone `-config` mode and the engine's IPC plug into the same
//! loops.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::checker::CheckContext;
use crate::config::{self, CheckConfig, CheckId};
use crate::scheduler::Scheduler;
use crate::status::{Notification, State};

/// An error from a source or a sink, logged by the loops.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Pause after a failed fetch.
pub const FETCH_RETRY_DELAY: Duration = Duration::from_secs(5);

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
    /// Attempts to send one batch before giving up.
    pub max_failures: u32,
    /// Period of the full status report.
    pub notify_interval: Duration,
    /// Period between fetches after a successful one.
    pub fetch_interval: Duration,
    /// Pause between failed batch sends.
    pub retry_delay: Duration,
    pub dry_run: bool,
}

/// A failure that stops the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("failed to send notifications {attempts} times, giving up: {last}")]
    SendFailed { attempts: u32, last: BoxError },
}

/// Runs the checks from `source` and reports to `sink` until `shutdown`
/// completes or reporting fails `max_failures` times in a row. Checks in
/// flight at shutdown are dropped without a final report.
pub async fn run<S: CheckSource, R: ResultSink>(
    settings: Settings,
    context: CheckContext,
    source: S,
    sink: R,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
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

    let result = tokio::select! {
        () = shutdown => Ok(()),
        result = reported => result,
    };
    updater.abort();
    manager.abort();
    result
}

async fn fetch_loop<S: CheckSource>(
    mut source: S,
    configs: mpsc::Sender<BTreeMap<CheckId, CheckConfig>>,
    fetch_interval: Duration,
) {
    loop {
        match source.fetch().await {
            Ok(checks) => {
                if configs.send(checks).await.is_err() {
                    return;
                }
                tokio::time::sleep(fetch_interval).await;
            }
            Err(error) => {
                tracing::error!(
                    "failed to fetch checks: {error}; retrying in {}s",
                    FETCH_RETRY_DELAY.as_secs()
                );
                tokio::time::sleep(FETCH_RETRY_DELAY).await;
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

/// Collects notifications into batches and sends them: a batch leaves
/// `batch_delay` after its first notification or as soon as it contains
/// `batch_size` notifications. While a send is retried, new notifications wait in the
/// queue.
async fn report_loop<R: ResultSink>(
    mut sink: R,
    mut notifications: mpsc::Receiver<Notification>,
    settings: &Settings,
) -> Result<(), DaemonError> {
    let batch_size = settings.batch_size.max(1);
    loop {
        let Some(first) = notifications.recv().await else {
            return Ok(());
        };
        let deadline = Instant::now() + settings.batch_delay;
        let mut batch = vec![first];
        while batch.len() < batch_size {
            tokio::select! {
                next = notifications.recv() => match next {
                    Some(notification) => batch.push(notification),
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        send_batch(&mut sink, &batch, settings).await?;
    }
}

async fn send_batch<R: ResultSink>(
    sink: &mut R,
    batch: &[Notification],
    settings: &Settings,
) -> Result<(), DaemonError> {
    let attempts = settings.max_failures.max(1);
    let mut attempt = 1;
    loop {
        match sink.send(batch).await {
            Ok(()) => return Ok(()),
            Err(last) if attempt >= attempts => {
                return Err(DaemonError::SendFailed { attempts, last });
            }
            Err(error) => {
                tracing::warn!(
                    "failed to send {} notifications (attempt {attempt} of {attempts}): {error}",
                    batch.len()
                );
                attempt += 1;
                tokio::time::sleep(settings.retry_delay).await;
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

/// Logs each check's state changes; the periodic reports of unchanged
/// states are dropped.
#[derive(Debug, Default)]
pub struct LogSink {
    states: HashMap<CheckId, State>,
}

impl ResultSink for LogSink {
    async fn send(&mut self, batch: &[Notification]) -> Result<(), BoxError> {
        for notification in batch {
            let state = notification.status.state;
            if self.states.insert(notification.id, state) == Some(state) {
                continue;
            }
            tracing::info!(
                "check {} ({}): {state}: {}",
                notification.id,
                notification.description,
                notification.status.message
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Status;

    /// Records batch sizes and fails the first `failures` sends.
    struct RecordingSink {
        batches: mpsc::UnboundedSender<usize>,
        failures: u32,
    }

    impl ResultSink for RecordingSink {
        async fn send(&mut self, batch: &[Notification]) -> Result<(), BoxError> {
            if self.failures > 0 {
                self.failures -= 1;
                return Err("engine unavailable".into());
            }
            self.batches.send(batch.len()).unwrap();
            Ok(())
        }
    }

    fn settings() -> Settings {
        Settings {
            batch_delay: Duration::from_millis(100),
            batch_size: 3,
            channel_size: 10,
            max_failures: 2,
            notify_interval: Duration::from_secs(15),
            fetch_interval: Duration::from_secs(15),
            retry_delay: Duration::from_secs(2),
            dry_run: false,
        }
    }

    fn notification(id: CheckId) -> Notification {
        Notification {
            id,
            description: "TCP 192.0.2.1:80 PLAIN".into(),
            status: Status::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn report_loop_batches_by_size_and_delay() {
        let (batch_sender, mut batches) = mpsc::unbounded_channel();
        let sink = RecordingSink {
            batches: batch_sender,
            failures: 0,
        };
        let (sender, receiver) = mpsc::channel(10);
        let settings = settings();
        let reporter = tokio::spawn(async move { report_loop(sink, receiver, &settings).await });

        for id in 1..=4 {
            sender.send(notification(id)).await.unwrap();
        }
        assert_eq!(batches.recv().await, Some(3), "a full batch leaves at once");

        let start = Instant::now();
        assert_eq!(
            batches.recv().await,
            Some(1),
            "the rest leaves after the delay"
        );
        assert!(start.elapsed() >= Duration::from_millis(100));

        drop(sender);
        assert!(reporter.await.unwrap().is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn report_loop_gives_up_after_max_failures() {
        let (batch_sender, _batches) = mpsc::unbounded_channel();
        let sink = RecordingSink {
            batches: batch_sender,
            failures: 2,
        };
        let (sender, receiver) = mpsc::channel(10);
        sender.send(notification(1)).await.unwrap();
        let settings = settings();

        let result = report_loop(sink, receiver, &settings).await;
        let Err(DaemonError::SendFailed { attempts, .. }) = result else {
            panic!("expected SendFailed, got {result:?}");
        };
        assert_eq!(attempts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn report_loop_retries_failed_send() {
        let (batch_sender, mut batches) = mpsc::unbounded_channel();
        let sink = RecordingSink {
            batches: batch_sender,
            failures: 1,
        };
        let (sender, receiver) = mpsc::channel(10);
        let settings = settings();
        tokio::spawn(async move { report_loop(sink, receiver, &settings).await });

        sender.send(notification(1)).await.unwrap();
        let start = Instant::now();
        assert_eq!(batches.recv().await, Some(1));
        assert!(start.elapsed() >= Duration::from_secs(2), "no retry delay");
    }
}
