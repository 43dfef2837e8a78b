//! The reporter: collects notifications into batches and sends them to the
//! result sink, retrying failed sends for as long as the daemon runs.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use seesaw_ipc::Backoff;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::CheckId;
use crate::daemon::{ResultSink, Settings};
use crate::status::Notification;

/// Upper bound of the delay between two attempts to send a batch. It bounds
/// how long a restarted engine waits for the first results.
pub const RETRY_DELAY_MAX: Duration = Duration::from_secs(10);

/// Notifications waiting to be sent, at most one per check. A notification
/// carries the check's whole status, so a newer one replaces an older one
/// of the same check, and takes its place in the queue.
#[derive(Debug, Default)]
struct PendingNotifications {
    order: VecDeque<CheckId>,
    latest: HashMap<CheckId, Notification>,
    /// Notifications replaced by a newer one of the same check, and so
    /// never sent, since the last call of `take_replaced`.
    replaced: u64,
}

impl PendingNotifications {
    fn len(&self) -> usize {
        self.order.len()
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn push(&mut self, notification: Notification) {
        let id = notification.id;
        if self.latest.insert(id, notification).is_some() {
            self.replaced += 1;
        } else {
            self.order.push_back(id);
        }
    }

    /// Removes and returns up to `max` notifications, oldest first.
    fn take(&mut self, max: usize) -> Vec<Notification> {
        let count = max.min(self.order.len());
        self.order
            .drain(..count)
            .map(|id| {
                self.latest
                    .remove(&id)
                    .expect("queued id has a notification")
            })
            .collect()
    }

    /// Puts a batch that failed to send back at the front of the queue,
    /// except for the checks that have a newer notification queued.
    fn restore(&mut self, batch: Vec<Notification>) {
        for notification in batch.into_iter().rev() {
            if self.latest.contains_key(&notification.id) {
                self.replaced += 1;
                continue;
            }
            self.order.push_front(notification.id);
            self.latest.insert(notification.id, notification);
        }
    }

    fn take_replaced(&mut self) -> u64 {
        std::mem::take(&mut self.replaced)
    }
}

/// Collects notifications into batches and sends them until the sending
/// side of `notifications` closes and the queue is empty.
///
/// A batch leaves `batch_delay` after its first notification, or as soon
/// as `batch_size` notifications are queued. A failed send is retried
/// after `retry_delay`, doubling after each further failure up to
/// [`RETRY_DELAY_MAX`], for as long as it fails. After `max_failures`
/// failures in a row the failure is logged as an error. Notifications are
/// still received while a send is in flight or waits for its retry. A
/// check's older notification is dropped only when a newer one of the same
/// check replaces it.
pub async fn report_loop<R: ResultSink>(
    mut sink: R,
    mut notifications: mpsc::Receiver<Notification>,
    settings: &Settings,
) {
    let batch_size = settings.batch_size.max(1);
    let max_failures = settings.max_failures.max(1);
    let mut backoff = Backoff::new(settings.retry_delay, RETRY_DELAY_MAX);
    let mut pending = PendingNotifications::default();
    // When the next batch leaves, if any notification is queued.
    let mut send_at: Option<Instant> = None;
    let mut open = true;

    loop {
        // A full batch leaves at once, unless a failed send waits for its
        // retry.
        let full = pending.len() >= batch_size && backoff.failures() == 0;
        let due = send_at.is_some_and(|at| at <= Instant::now());
        if !full && !due {
            if !open && pending.is_empty() {
                return;
            }
            tokio::select! {
                next = notifications.recv(), if open => match next {
                    Some(notification) => {
                        pending.push(notification);
                        send_at.get_or_insert_with(|| Instant::now() + settings.batch_delay);
                    }
                    None => open = false,
                },
                () = sleep_until(send_at) => {}
            }
            continue;
        }

        let batch = pending.take(batch_size);
        let result =
            send_while_receiving(&mut sink, &batch, &mut notifications, &mut pending).await;
        match result {
            Ok(()) => {
                let failures = backoff.succeed();
                if failures > 0 {
                    log_recovery(batch.len(), failures, pending.take_replaced());
                }
                send_at = (!pending.is_empty()).then(|| Instant::now() + settings.batch_delay);
            }
            Err(error) => {
                let count = batch.len();
                pending.restore(batch);
                let delay = backoff.fail();
                let failures = backoff.failures();
                if failures < max_failures {
                    tracing::warn!(
                        "failed to send {count} notifications (attempt {failures}): {error}; retrying in {delay:?}"
                    );
                } else if failures.is_multiple_of(max_failures) {
                    // The first error line, then one every max_failures
                    // attempts, which the back-off spaces out.
                    tracing::error!(
                        "failed to send notifications {failures} times in a row: {error}; {} notifications are waiting; retrying in {delay:?}, and at most every {RETRY_DELAY_MAX:?} after that",
                        pending.len()
                    );
                } else {
                    tracing::debug!(
                        "failed to send {count} notifications (attempt {failures}): {error}"
                    );
                }
                send_at = Some(Instant::now() + delay);
            }
        }
    }
}

fn log_recovery(sent: usize, failures: u32, replaced: u64) {
    if replaced == 0 {
        tracing::info!("sent {sent} notifications after {failures} failed attempts");
    } else {
        tracing::info!(
            "sent {sent} notifications after {failures} failed attempts; {replaced} older notifications were replaced by newer ones of the same checks meanwhile"
        );
    }
}

/// Sends `batch`, queueing the notifications that arrive meanwhile, so the
/// probes do not wait for a slow or dead engine.
async fn send_while_receiving<R: ResultSink>(
    sink: &mut R,
    batch: &[Notification],
    notifications: &mut mpsc::Receiver<Notification>,
    pending: &mut PendingNotifications,
) -> Result<(), crate::daemon::BoxError> {
    let send = sink.send(batch);
    tokio::pin!(send);
    loop {
        tokio::select! {
            result = &mut send => return result,
            Some(notification) = notifications.recv() => pending.push(notification),
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::BoxError;
    use crate::status::{State, Status};

    /// The ids and states of one sent batch.
    type SentBatch = Vec<(CheckId, State)>;

    /// Records each batch's ids and states, and fails the first `failures`
    /// sends.
    struct RecordingSink {
        batches: mpsc::UnboundedSender<SentBatch>,
        failures: u32,
    }

    impl ResultSink for RecordingSink {
        async fn send(&mut self, batch: &[Notification]) -> Result<(), BoxError> {
            if self.failures > 0 {
                self.failures -= 1;
                return Err("engine unavailable".into());
            }
            let batch = batch
                .iter()
                .map(|notification| (notification.id, notification.status.state))
                .collect();
            self.batches.send(batch).unwrap();
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
        notification_in(id, State::Unknown)
    }

    fn notification_in(id: CheckId, state: State) -> Notification {
        Notification {
            id,
            description: "TCP 192.0.2.1:80 PLAIN".into(),
            status: Status {
                state,
                ..Status::default()
            },
        }
    }

    /// Starts a reporter over a sink that fails its first `failures` sends,
    /// and returns the sender of notifications and the receiver of batches.
    fn start_reporter(
        failures: u32,
    ) -> (
        mpsc::Sender<Notification>,
        mpsc::UnboundedReceiver<SentBatch>,
        tokio::task::JoinHandle<()>,
    ) {
        let (batch_sender, batches) = mpsc::unbounded_channel();
        let sink = RecordingSink {
            batches: batch_sender,
            failures,
        };
        let (sender, receiver) = mpsc::channel(10);
        let settings = settings();
        let reporter = tokio::spawn(async move { report_loop(sink, receiver, &settings).await });
        (sender, batches, reporter)
    }

    #[tokio::test(start_paused = true)]
    async fn report_loop_batches_by_size_and_delay() {
        let (sender, mut batches, reporter) = start_reporter(0);

        for id in 1..=4 {
            sender.send(notification(id)).await.unwrap();
        }
        let unknown = |id| (id, State::Unknown);
        assert_eq!(
            batches.recv().await,
            Some(vec![unknown(1), unknown(2), unknown(3)]),
            "a full batch leaves at once"
        );

        let start = Instant::now();
        assert_eq!(
            batches.recv().await,
            Some(vec![unknown(4)]),
            "the rest leaves after the delay"
        );
        assert!(start.elapsed() >= Duration::from_millis(100));

        drop(sender);
        reporter.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn report_loop_retries_failed_send() {
        let (sender, mut batches, _reporter) = start_reporter(1);

        sender.send(notification(1)).await.unwrap();
        let start = Instant::now();
        assert_eq!(batches.recv().await, Some(vec![(1, State::Unknown)]));
        assert!(start.elapsed() >= Duration::from_secs(2), "no retry delay");
    }

    /// A dead engine must never stop the reporter: after far more than
    /// `max_failures` failures, the results still go out once it is back.
    #[tokio::test(start_paused = true)]
    async fn report_loop_outlives_max_failures() {
        let (sender, mut batches, reporter) = start_reporter(50);

        sender.send(notification(1)).await.unwrap();
        let batch = batches.recv().await;

        assert_eq!(batch, Some(vec![(1, State::Unknown)]));
        assert!(!reporter.is_finished());
    }

    #[tokio::test(start_paused = true)]
    async fn report_loop_keeps_newest_while_failing() {
        let (sender, mut batches, _reporter) = start_reporter(3);

        sender
            .send(notification_in(1, State::Healthy))
            .await
            .unwrap();
        // Let the first send fail, then queue more while it waits to retry.
        tokio::time::sleep(Duration::from_millis(500)).await;
        sender
            .send(notification_in(2, State::Healthy))
            .await
            .unwrap();
        sender
            .send(notification_in(1, State::Unhealthy))
            .await
            .unwrap();

        let batch = batches.recv().await;

        assert_eq!(
            batch,
            Some(vec![(1, State::Unhealthy), (2, State::Healthy)]),
            "check 1 keeps its place in the queue with its newest state"
        );
    }

    #[test]
    fn pending_replaces_older_notification() {
        let mut pending = PendingNotifications::default();
        pending.push(notification_in(1, State::Healthy));
        pending.push(notification_in(2, State::Healthy));
        pending.push(notification_in(1, State::Unhealthy));

        let batch = pending.take(10);

        let states: Vec<_> = batch.iter().map(|n| (n.id, n.status.state)).collect();
        assert_eq!(states, [(1, State::Unhealthy), (2, State::Healthy)]);
        assert_eq!(pending.take_replaced(), 1);
    }

    #[test]
    fn pending_restore_keeps_newer() {
        let mut pending = PendingNotifications::default();
        pending.push(notification_in(1, State::Healthy));
        pending.push(notification_in(2, State::Healthy));
        let failed = pending.take(2);
        pending.push(notification_in(3, State::Healthy));
        pending.push(notification_in(2, State::Unhealthy));

        pending.restore(failed);

        let states: Vec<_> = pending
            .take(10)
            .iter()
            .map(|n| (n.id, n.status.state))
            .collect();
        assert_eq!(
            states,
            [
                (1, State::Healthy),
                (3, State::Healthy),
                (2, State::Unhealthy)
            ]
        );
        assert_eq!(pending.take_replaced(), 1);
    }
}
