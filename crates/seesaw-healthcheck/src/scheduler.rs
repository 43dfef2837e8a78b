//! Runs the checks: one tokio task per distinct check configuration.
//!
//! Checks whose configurations are equal (same checker, target, interval,
//! timeout and retries) share one probe task. The probe runs once per
//! interval and sends each of its subscribers a notification when its state
//! changes. Runs are sequential inside the task, so a run that overruns its
//! interval delays the next one instead of piling up beside it.
//!
//! An idle probe costs its task, the task's timer, and one [`Probe`] that
//! contains the only copy of its configuration. The scheduler's maps point to
//! that copy, and a check's description is formatted only when a
//! notification needs it.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::checker::{CheckContext, CheckResult};
use crate::config::{CheckConfig, CheckId};
use crate::lateness::RunStats;
use crate::status::{Health, Notification, State, Status};

/// Message of a run that exceeded its timeout.
pub const TIMED_OUT: &str = "Timed out";
/// Message of every run in dry-run mode.
pub const DRY_RUN: &str = "dryrun mode; always succeed";

/// The context, settings and channels that every probe of one scheduler
/// shares.
#[derive(Debug)]
struct ProbeEnv {
    context: CheckContext,
    dry_run: bool,
    run_stats: Arc<RunStats>,
    notifications: mpsc::Sender<Notification>,
}

/// One probe's configuration and state, shared by its task and the
/// scheduler.
#[derive(Debug)]
struct Probe {
    config: CheckConfig,
    subscribers: Mutex<Vec<CheckId>>,
    health: Mutex<Health>,
}

impl Probe {
    /// Returns the checker's description, such as `TCP 192.0.2.1:80 PLAIN`.
    fn description(&self) -> Arc<str> {
        self.config.checker.to_string().into()
    }

    fn status(&self) -> Status {
        self.health
            .lock()
            .expect("health lock poisoned")
            .status
            .clone()
    }
}

/// A probe and its task, in the scheduler's set of probes. Hashed and
/// compared by the probe's configuration, so the set is looked up by a
/// [`CheckConfig`].
#[derive(Debug)]
struct RunningProbe {
    probe: Arc<Probe>,
    task: JoinHandle<()>,
}

impl Drop for RunningProbe {
    fn drop(&mut self) {
        // Aborting drops the run in progress, which closes its sockets.
        self.task.abort();
    }
}

impl Borrow<CheckConfig> for RunningProbe {
    fn borrow(&self) -> &CheckConfig {
        &self.probe.config
    }
}

impl PartialEq for RunningProbe {
    fn eq(&self, other: &RunningProbe) -> bool {
        self.probe.config == other.probe.config
    }
}

impl Eq for RunningProbe {}

impl Hash for RunningProbe {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.probe.config.hash(state);
    }
}

/// The set of running checks.
#[derive(Debug)]
pub struct Scheduler {
    env: Arc<ProbeEnv>,
    probes: HashSet<RunningProbe>,
    checks: BTreeMap<CheckId, Arc<Probe>>,
}

impl Scheduler {
    /// Creates a scheduler that sends notifications to `notifications`. In
    /// `dry_run` mode no checker runs and every run succeeds.
    pub fn new(
        context: CheckContext,
        dry_run: bool,
        notifications: mpsc::Sender<Notification>,
    ) -> Scheduler {
        let env = ProbeEnv {
            context,
            dry_run,
            run_stats: Arc::new(RunStats::default()),
            notifications,
        };
        Scheduler {
            env: Arc::new(env),
            probes: HashSet::new(),
            checks: BTreeMap::new(),
        }
    }

    /// Makes `checks` the set of running checks: stops the checks that are
    /// gone, moves the changed ones to their new probe and starts the new
    /// ones. Must be called inside a tokio runtime.
    ///
    /// The first runs of the new probes are spread evenly over one interval
    /// of each probe, so no burst of probes reaches the network at once, and
    /// new probes start no faster than they will run from then on.
    pub fn apply(&mut self, checks: &BTreeMap<CheckId, CheckConfig>) {
        let stale: Vec<CheckId> = self
            .checks
            .iter()
            .filter(|(id, probe)| checks.get(id) != Some(&probe.config))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.unsubscribe(id);
        }

        let added: Vec<(CheckId, &CheckConfig)> = checks
            .iter()
            .filter(|(id, _)| !self.checks.contains_key(id))
            .map(|(id, config)| (*id, config))
            .collect();
        let new_probes = added
            .iter()
            .filter(|(_, config)| !self.probes.contains(*config))
            .map(|(_, config)| *config)
            .collect::<HashSet<_>>()
            .len();
        let now = Instant::now();
        let mut started = 0;
        for (id, config) in added {
            let first_run = now + spread_offset(config.interval, started, new_probes);
            if self.subscribe(id, config, first_run) {
                started += 1;
            }
        }
    }

    /// Returns every check's current status, for the periodic full report.
    /// Checks that have not run yet report `Unknown`.
    pub fn statuses(&self) -> Vec<Notification> {
        self.checks
            .iter()
            .map(|(id, probe)| Notification {
                id: *id,
                description: probe.description(),
                status: probe.status(),
            })
            .collect()
    }

    /// Returns the number of probe tasks, which is less than the number of
    /// checks when checks share probes.
    pub fn probe_count(&self) -> usize {
        self.probes.len()
    }

    /// Returns the run counters shared by every probe of this scheduler.
    pub fn run_stats(&self) -> Arc<RunStats> {
        self.env.run_stats.clone()
    }

    /// Adds check `id` to the probe of `config`, starting the probe with its
    /// first run at `first_run` when there is none yet. Returns whether a
    /// probe was started.
    fn subscribe(&mut self, id: CheckId, config: &CheckConfig, first_run: Instant) -> bool {
        let (probe, started) = match self.probes.get(config) {
            Some(running) => (running.probe.clone(), false),
            None => {
                let running = RunningProbe::start(config.clone(), &self.env, first_run);
                let probe = running.probe.clone();
                self.probes.insert(running);
                (probe, true)
            }
        };
        probe
            .subscribers
            .lock()
            .expect("subscriber lock poisoned")
            .push(id);

        // A check that joins a probe which has already run learns its state
        // now instead of at the probe's next state change.
        let status = probe.status();
        if status.state != State::Unknown {
            let description = probe.description();
            log_state_change(id, &description, &status);
            let notification = Notification {
                id,
                description,
                status,
            };
            if let Err(error) = self.env.notifications.try_send(notification) {
                tracing::warn!("check {id}: failed to queue its current status: {error}");
            }
        }
        self.checks.insert(id, probe);
        started
    }

    fn unsubscribe(&mut self, id: CheckId) {
        let Some(probe) = self.checks.remove(&id) else {
            return;
        };
        let remaining = {
            let mut subscribers = probe.subscribers.lock().expect("subscriber lock poisoned");
            subscribers.retain(|subscriber| *subscriber != id);
            subscribers.len()
        };
        if remaining == 0 {
            tracing::debug!("stopping probe {}", probe.config.checker);
            self.probes.remove(&probe.config);
        }
    }
}

/// Logs that check `id` entered `status.state`, in the same form in engine
/// and `-config` mode.
fn log_state_change(id: CheckId, description: &str, status: &Status) {
    tracing::info!(
        "check {id} ({description}): {}: {}",
        status.state,
        status.message
    );
}

/// Returns the delay of the first run of new probe `index` out of `count`
/// started together: `index / count` of its interval.
fn spread_offset(interval: Duration, index: usize, count: usize) -> Duration {
    if count <= 1 {
        return Duration::ZERO;
    }
    let nanos = interval.as_nanos() * index as u128 / count as u128;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

impl RunningProbe {
    fn start(config: CheckConfig, env: &Arc<ProbeEnv>, first_run: Instant) -> RunningProbe {
        let probe = Arc::new(Probe {
            config,
            // Most probes have one subscriber. A capacity of one allocates 8
            // bytes, where the first push into an empty Vec reserves 32.
            subscribers: Mutex::new(Vec::with_capacity(1)),
            health: Mutex::new(Health::default()),
        });
        let runner = ProbeRunner {
            probe: probe.clone(),
            env: env.clone(),
        };
        let task = tokio::spawn(runner.run(first_run));
        RunningProbe { probe, task }
    }
}

/// The task of one probe. While idle it stores two pointers and its ticker.
struct ProbeRunner {
    probe: Arc<Probe>,
    env: Arc<ProbeEnv>,
}

impl ProbeRunner {
    async fn run(self, first_run: Instant) {
        let mut ticker = tokio::time::interval_at(first_run, self.probe.config.interval);
        // Ticks missed while a run overran are dropped, not made up in a
        // burst.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut run: u64 = 0;
        loop {
            let scheduled = ticker.tick().await;
            self.env.run_stats.record(scheduled.elapsed());
            // Boxed because a task stores its largest state inline. A run
            // contains the checker's future (several KiB for HTTP), a timer
            // and a notification, which every idle probe would otherwise
            // carry. One allocation per run costs far less than its sockets.
            Box::pin(self.run_and_record(run)).await;
            run = run.wrapping_add(1);
        }
    }

    async fn run_and_record(&self, run: u64) {
        let started = SystemTime::now();
        let result = self.run_once(run).await;
        self.record(result, started).await;
    }

    async fn run_once(&self, run: u64) -> CheckResult {
        if self.env.dry_run {
            return CheckResult {
                success: true,
                message: DRY_RUN.to_string(),
                error: None,
                duration: Duration::ZERO,
            };
        }
        let config = &self.probe.config;
        let timeout = config.effective_timeout();
        let check = config.checker.check(&self.env.context, run);
        match tokio::time::timeout(timeout, check).await {
            Ok(result) => result,
            Err(_) => CheckResult {
                success: false,
                message: TIMED_OUT.to_string(),
                error: None,
                duration: timeout,
            },
        }
    }

    async fn record(&self, result: CheckResult, started: SystemTime) {
        let text = result.text();
        let checker = &self.probe.config.checker;
        let outcome = if result.success { "SUCCESS" } else { "FAILURE" };
        tracing::debug!("({checker}) {outcome}: {text}");

        let (changed, status, failures) = {
            let mut health = self.probe.health.lock().expect("health lock poisoned");
            let changed = health.record(
                result.success,
                text,
                started,
                result.duration,
                self.probe.config.retries,
            );
            (
                changed,
                health.status.clone(),
                health.consecutive_failures(),
            )
        };
        if !changed {
            if !result.success && status.state == State::Healthy {
                tracing::info!("({checker}) failure {failures} - retrying");
            }
            return;
        }

        let subscribers = self
            .probe
            .subscribers
            .lock()
            .expect("subscriber lock poisoned")
            .clone();
        let description = self.probe.description();
        for id in subscribers {
            log_state_change(id, &description, &status);
            let notification = Notification {
                id,
                description: description.clone(),
                status: status.clone(),
            };
            // Waits while the queue is full, so a stalled engine slows the
            // probes down instead of losing state changes.
            if self.env.notifications.send(notification).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::tls::TlsClients;

    /// Returns `count` TCP checks of distinct ports, every `interval`, with
    /// ids from 1.
    fn tcp_checks(count: u16, interval: &str) -> BTreeMap<CheckId, CheckConfig> {
        let checks: Vec<String> = (1..=count)
            .map(|port| {
                format!(
                    r#"{{"type": "TCP", "ip": "192.0.2.1", "port": {port}, "interval": "{interval}"}}"#
                )
            })
            .collect();
        let text = format!(r#"{{"checks": [{}]}}"#, checks.join(","));
        crate::config::parse(Path::new("test.json"), &text)
            .unwrap()
            .checks
    }

    /// Creates a dry-run scheduler, whose runs succeed at once without
    /// touching the network, and returns it with its notification receiver.
    fn dry_run_scheduler() -> (Scheduler, mpsc::Receiver<Notification>) {
        let (sender, receiver) = mpsc::channel(100);
        let context = CheckContext::new(TlsClients::with_roots(rustls::RootCertStore::empty()));
        (Scheduler::new(context, true, sender), receiver)
    }

    #[test]
    fn spread_offset_divides_interval() {
        let interval = Duration::from_secs(10);
        assert_eq!(spread_offset(interval, 0, 1), Duration::ZERO);
        assert_eq!(spread_offset(interval, 0, 4), Duration::ZERO);
        assert_eq!(spread_offset(interval, 1, 4), Duration::from_millis(2500));
        assert_eq!(spread_offset(interval, 3, 4), Duration::from_millis(7500));
    }

    /// In paused time each first run's notification arrives at the virtual
    /// instant the run was scheduled for, so the offsets are exact.
    #[tokio::test(start_paused = true)]
    async fn first_runs_spread_over_interval() {
        let (mut scheduler, mut notifications) = dry_run_scheduler();
        let start = Instant::now();
        scheduler.apply(&tcp_checks(10, "10s"));

        let mut offsets = BTreeMap::new();
        for _ in 0..10 {
            let notification = notifications.recv().await.unwrap();
            assert_eq!(notification.status.state, State::Healthy);
            assert_eq!(notification.status.message, DRY_RUN);
            offsets.insert(notification.id, start.elapsed());
        }

        let expected: BTreeMap<CheckId, Duration> = (1..=10)
            .map(|id| (id, Duration::from_secs(id - 1)))
            .collect();
        assert_eq!(offsets, expected, "first run of each check");
    }

    /// Checks added later are spread over their own interval, from the
    /// moment they are added, and do not disturb the running ones.
    #[tokio::test(start_paused = true)]
    async fn added_checks_spread_from_apply() {
        let (mut scheduler, mut notifications) = dry_run_scheduler();
        let mut checks = tcp_checks(2, "4s");
        scheduler.apply(&checks);
        for _ in 0..2 {
            notifications.recv().await.unwrap();
        }

        let start = Instant::now();
        checks.extend(tcp_checks(6, "4s").into_iter().filter(|(id, _)| *id > 2));
        scheduler.apply(&checks);

        let mut offsets = BTreeMap::new();
        for _ in 0..4 {
            let notification = notifications.recv().await.unwrap();
            offsets.insert(notification.id, start.elapsed());
        }
        let expected: BTreeMap<CheckId, Duration> = [(3, 0), (4, 1), (5, 2), (6, 3)]
            .into_iter()
            .map(|(id, seconds)| (id, Duration::from_secs(seconds)))
            .collect();
        assert_eq!(offsets, expected, "first run of each added check");
        assert_eq!(scheduler.probe_count(), 6);
    }

    #[tokio::test(start_paused = true)]
    async fn statuses_report_unknown_before_first_run() {
        let (mut scheduler, mut notifications) = dry_run_scheduler();
        scheduler.apply(&tcp_checks(2, "1h"));
        // Check 1 runs at once, check 2 half an interval later.
        let first = notifications.recv().await.unwrap();
        assert_eq!(first.id, 1);

        let states: Vec<(CheckId, State)> = scheduler
            .statuses()
            .iter()
            .map(|notification| (notification.id, notification.status.state))
            .collect();
        assert_eq!(states, [(1, State::Healthy), (2, State::Unknown)]);
    }
}
