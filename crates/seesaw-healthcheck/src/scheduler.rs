//! Runs the checks: one tokio task per distinct check configuration.
//!
//! Checks whose configurations are equal (same checker, target, interval,
//! timeout and retries) share one probe task. The probe runs once per
//! interval and sends each of its subscribers a notification when its state
//! changes. Runs are sequential inside the task, so a run that overruns its
//! interval delays the next one instead of piling up beside it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::checker::{CheckContext, CheckResult};
use crate::config::{CheckConfig, CheckId};
use crate::lateness::RunStats;
use crate::status::{Health, Notification, State};

/// Message of a run that exceeded its timeout.
pub const TIMED_OUT: &str = "Timed out";
/// Message of every run in dry-run mode.
pub const DRY_RUN: &str = "dryrun mode; always succeed";

/// The state a probe task shares with the scheduler.
#[derive(Debug)]
struct ProbeShared {
    description: Arc<str>,
    subscribers: Mutex<Vec<CheckId>>,
    health: Mutex<Health>,
}

#[derive(Debug)]
struct Probe {
    shared: Arc<ProbeShared>,
    task: JoinHandle<()>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Aborting drops the run in progress, which closes its sockets.
        self.task.abort();
    }
}

/// The set of running checks.
#[derive(Debug)]
pub struct Scheduler {
    context: Arc<CheckContext>,
    dry_run: bool,
    notifications: mpsc::Sender<Notification>,
    probes: HashMap<CheckConfig, Probe>,
    checks: BTreeMap<CheckId, CheckConfig>,
    run_stats: Arc<RunStats>,
}

impl Scheduler {
    /// Creates a scheduler that sends notifications to `notifications`. In
    /// `dry_run` mode no checker runs and every run succeeds.
    pub fn new(
        context: CheckContext,
        dry_run: bool,
        notifications: mpsc::Sender<Notification>,
    ) -> Scheduler {
        Scheduler {
            context: Arc::new(context),
            dry_run,
            notifications,
            probes: HashMap::new(),
            checks: BTreeMap::new(),
            run_stats: Arc::new(RunStats::default()),
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
            .filter(|(id, config)| checks.get(id) != Some(config))
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
            .filter(|(_, config)| !self.probes.contains_key(*config))
            .map(|(_, config)| *config)
            .collect::<std::collections::HashSet<_>>()
            .len();
        let now = Instant::now();
        let mut started = 0;
        for (id, config) in added {
            let first_run = now + spread_offset(config.interval, started, new_probes);
            if self.subscribe(id, config.clone(), first_run) {
                started += 1;
            }
        }
    }

    /// Returns every check's current status, for the periodic full report.
    /// Checks that have not run yet report `Unknown`.
    pub fn statuses(&self) -> Vec<Notification> {
        self.checks
            .iter()
            .map(|(id, config)| {
                let shared = &self.probes[config].shared;
                Notification {
                    id: *id,
                    description: shared.description.clone(),
                    status: shared
                        .health
                        .lock()
                        .expect("health lock poisoned")
                        .status
                        .clone(),
                }
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
        self.run_stats.clone()
    }

    /// Adds check `id` to the probe of `config`, starting the probe with its
    /// first run at `first_run` when there is none yet. Returns whether a
    /// probe was started.
    fn subscribe(&mut self, id: CheckId, config: CheckConfig, first_run: Instant) -> bool {
        let mut started = false;
        let probe = self.probes.entry(config.clone()).or_insert_with(|| {
            started = true;
            Probe::start(
                &config,
                &self.context,
                self.dry_run,
                first_run,
                &self.run_stats,
                &self.notifications,
            )
        });
        probe
            .shared
            .subscribers
            .lock()
            .expect("subscriber lock poisoned")
            .push(id);

        // A check that joins a probe which has already run learns its state
        // now instead of at the probe's next state change.
        let status = probe
            .shared
            .health
            .lock()
            .expect("health lock poisoned")
            .status
            .clone();
        if status.state != State::Unknown {
            let notification = Notification {
                id,
                description: probe.shared.description.clone(),
                status,
            };
            if let Err(error) = self.notifications.try_send(notification) {
                tracing::warn!("check {id}: failed to queue its current status: {error}");
            }
        }
        self.checks.insert(id, config);
        started
    }

    fn unsubscribe(&mut self, id: CheckId) {
        let Some(config) = self.checks.remove(&id) else {
            return;
        };
        let Some(probe) = self.probes.get(&config) else {
            return;
        };
        let remaining = {
            let mut subscribers = probe
                .shared
                .subscribers
                .lock()
                .expect("subscriber lock poisoned");
            subscribers.retain(|subscriber| *subscriber != id);
            subscribers.len()
        };
        if remaining == 0 {
            tracing::debug!("stopping probe {}", probe.shared.description);
            self.probes.remove(&config);
        }
    }
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

impl Probe {
    fn start(
        config: &CheckConfig,
        context: &Arc<CheckContext>,
        dry_run: bool,
        first_run: Instant,
        run_stats: &Arc<RunStats>,
        notifications: &mpsc::Sender<Notification>,
    ) -> Probe {
        let shared = Arc::new(ProbeShared {
            description: config.checker.to_string().into(),
            subscribers: Mutex::new(Vec::new()),
            health: Mutex::new(Health::default()),
        });
        let runner = ProbeRunner {
            config: config.clone(),
            context: context.clone(),
            dry_run,
            shared: shared.clone(),
            run_stats: run_stats.clone(),
            notifications: notifications.clone(),
        };
        let task = tokio::spawn(runner.run(first_run));
        Probe { shared, task }
    }
}

struct ProbeRunner {
    config: CheckConfig,
    context: Arc<CheckContext>,
    dry_run: bool,
    shared: Arc<ProbeShared>,
    run_stats: Arc<RunStats>,
    notifications: mpsc::Sender<Notification>,
}

impl ProbeRunner {
    async fn run(self, first_run: Instant) {
        let mut ticker = tokio::time::interval_at(first_run, self.config.interval);
        // Ticks missed while a run overran are dropped, not made up in a
        // burst.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut run: u64 = 0;
        loop {
            let scheduled = ticker.tick().await;
            self.run_stats.record(scheduled.elapsed());
            let started = SystemTime::now();
            let result = self.run_once(run).await;
            run = run.wrapping_add(1);
            self.record(result, started).await;
        }
    }

    async fn run_once(&self, run: u64) -> CheckResult {
        if self.dry_run {
            return CheckResult {
                success: true,
                message: DRY_RUN.to_string(),
                error: None,
                duration: Duration::ZERO,
            };
        }
        let timeout = self.config.effective_timeout();
        // Boxed because a task stores its largest state inline: the HTTP
        // checker's future is several KiB, which every idle probe would
        // otherwise carry. One allocation per run costs far less than the
        // run's sockets.
        let check = Box::pin(self.config.checker.check(&self.context, run));
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
        let description = &self.shared.description;
        let outcome = if result.success { "SUCCESS" } else { "FAILURE" };
        tracing::debug!("({description}) {outcome}: {text}");

        let (changed, status, failures) = {
            let mut health = self.shared.health.lock().expect("health lock poisoned");
            let changed = health.record(
                result.success,
                text,
                started,
                result.duration,
                self.config.retries,
            );
            (
                changed,
                health.status.clone(),
                health.consecutive_failures(),
            )
        };
        if !changed {
            if !result.success && status.state == State::Healthy {
                tracing::info!("({description}) failure {failures} - retrying");
            }
            return;
        }

        let subscribers = self
            .shared
            .subscribers
            .lock()
            .expect("subscriber lock poisoned")
            .clone();
        for id in subscribers {
            let notification = Notification {
                id,
                description: description.clone(),
                status: status.clone(),
            };
            // Waits while the queue is full, so a stalled engine slows the
            // probes down instead of losing state changes.
            if self.notifications.send(notification).await.is_err() {
                return;
            }
        }
    }
}
