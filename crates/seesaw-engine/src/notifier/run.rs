//! The notifier task: loading the first config, then checking the source
//! on each trigger and sending the configs that changed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use seesaw_config::cluster::{LoadedCluster, NodeContext, derive_cluster, read_cluster_file};
use seesaw_config::cluster_text::decode_cluster_binary;
use seesaw_config::diag::Rejected;
use seesaw_config::model::{Cluster, ConfigStatus};
use seesaw_config::pb;
use seesaw_config::text_spans::SpanIndex;
use tokio::sync::{mpsc, watch as signal};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::fetch::{FetchSettings, fetch_config};
use super::save::save_config;
use super::status::{Attempt, ConfigInForce, NotifierStatus, Outcome, Trigger};
use super::watch::FileWatch;
use super::{
    BootstrapError, ClusterNotification, Notifier, NotifierHandle, NotifierOptions, Shared, Source,
    lock,
};

/// A config that loaded and passed every check.
struct Pulled {
    loaded: LoadedCluster,
    /// The message as received, kept to save it to cluster.pb. `None` for
    /// a config read from cluster.pb itself.
    message: Option<pb::Cluster>,
    source: Source,
    detail: String,
    time: SystemTime,
}

impl Pulled {
    fn cluster(&self) -> &Cluster {
        &self.loaded.cluster
    }

    fn notification(&self, metadata_only: bool) -> ClusterNotification {
        ClusterNotification {
            cluster: Arc::new(self.loaded.cluster.clone()),
            warnings: self.loaded.warnings.clone(),
            notes: self.loaded.notes.clone(),
            source: self.source,
            source_detail: self.detail.clone(),
            time: self.time,
            metadata_only,
        }
    }

    fn in_force(&self) -> ConfigInForce {
        ConfigInForce {
            source: self.source,
            source_detail: self.detail.clone(),
            time: self.time,
            cluster_status: self.loaded.cluster.status.clone(),
            warnings: self
                .loaded
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// The source-independent parts of loading a config.
struct Loader {
    options: NotifierOptions,
    peer: Arc<Mutex<Option<Arc<dyn super::PeerConfigSource>>>>,
}

pub(super) async fn start(options: NotifierOptions) -> Result<Notifier, BootstrapError> {
    let peer = Arc::new(Mutex::new(options.peer.clone()));
    let loader = Loader { options, peer };

    let mut order = vec![Source::Disk, Source::Server];
    if lock(&loader.peer).is_some() {
        order.insert(0, Source::Peer);
    }
    let mut failures = Vec::new();
    let mut first = None;
    for source in order {
        match loader.pull(source).await {
            Ok(pulled) => {
                first = Some(pulled);
                break;
            }
            Err(errors) => {
                tracing::warn!(
                    "failed to load the cluster config from {source}: {}",
                    errors.join("; ")
                );
                failures.push((source, errors));
            }
        }
    }
    let Some(first) = first else {
        return Err(BootstrapError { failures });
    };
    tracing::info!(
        "loaded the cluster config from {} ({})",
        first.source,
        first.detail
    );

    if first.source != Source::Disk {
        loader.save_if_disk_differs(&first).await;
    }

    let now = SystemTime::now();
    let last_failure = failures.last().map(|(source, errors)| Attempt {
        time: now,
        trigger: Trigger::Start,
        source: *source,
        outcome: Outcome::Failed {
            errors: errors.clone(),
        },
    });
    let source = loader.options.source_after_start;
    let status = NotifierStatus {
        source,
        in_force: first.in_force(),
        last_attempt: Some(Attempt {
            time: now,
            trigger: Trigger::Start,
            source: first.source,
            outcome: Outcome::Applied {
                metadata_only: false,
            },
        }),
        last_failure,
        attempts: 1,
    };
    let shared = Arc::new(Shared {
        source: Mutex::new(source),
        default_source: source,
        peer: loader.peer.clone(),
        status: Mutex::new(status),
    });

    // The channel is new and has room for one, so the first notification
    // goes in without waiting.
    let (notifications, receiver) = mpsc::channel(1);
    notifications
        .try_send(first.notification(false))
        .expect("a new channel has room");

    let (reload, reloads) = mpsc::channel(1);
    let (shutdown, shutdowns) = signal::channel(false);
    let handle = NotifierHandle {
        shared: shared.clone(),
        reload,
        shutdown: Arc::new(shutdown),
    };

    let watch = loader.options.file_poll_interval.map(|period| {
        (
            FileWatch::new(loader.options.cluster_file.clone()),
            ticker(period),
        )
    });
    let runner = Runner {
        interval: ticker(loader.options.config_interval),
        loader,
        shared,
        last: first,
        peer_failures: 0,
        notifications,
        watch,
    };
    let task = tokio::spawn(runner.run(reloads, shutdowns));

    Ok(Notifier {
        handle,
        notifications: receiver,
        task,
    })
}

/// Returns an interval whose first tick is one period from now.
fn ticker(period: std::time::Duration) -> Interval {
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

impl Loader {
    /// Loads and checks the config from `source`. The errors are one line
    /// each, positioned where the source has lines.
    async fn pull(&self, source: Source) -> Result<Pulled, Vec<String>> {
        let (loaded, message, detail) = match source {
            Source::None => {
                return Err(vec![
                    "the config source is none: set disk, server or peer with `config source`"
                        .to_string(),
                ]);
            }
            Source::Disk => {
                let file = self.options.cluster_file.clone();
                let context = self.options.node_context.clone();
                let detail = file.display().to_string();
                let loaded = blocking(move || read_cluster_file(&file, &context)).await?;
                (loaded, None, detail)
            }
            Source::Peer => {
                let peer = lock(&self.peer).clone().ok_or_else(|| {
                    vec![
                        "no peer config source: seesaw.cfg sets no peer_ipv4 to fetch the cluster config from"
                            .to_string(),
                    ]
                })?;
                let fetched = peer.fetch().await.map_err(|error| vec![error])?;
                let detail = fetched.detail;
                let context = self.options.node_context.clone();
                let label = PathBuf::from(&detail);
                let (loaded, message) = blocking(move || {
                    let message = decode_cluster_binary(&label, &fetched.bytes)?;
                    let loaded = derive(&message, &label, &context)?;
                    Ok((loaded, message))
                })
                .await?;
                (loaded, Some(message), detail)
            }
            Source::Server => {
                let fetched = fetch_config(&self.fetch_settings())
                    .await
                    .map_err(|error| error.lines())?;
                let detail = fetched.detail;
                let context = self.options.node_context.clone();
                let label = PathBuf::from(&detail);
                let message = fetched.message;
                let (loaded, message) = blocking(move || {
                    let loaded = derive(&message, &label, &context)?;
                    Ok((loaded, message))
                })
                .await?;
                (loaded, Some(message), detail)
            }
        };
        Ok(Pulled {
            loaded,
            message,
            source,
            detail,
            time: SystemTime::now(),
        })
    }

    fn fetch_settings(&self) -> FetchSettings {
        FetchSettings {
            cluster_name: self.options.cluster_name.clone(),
            servers: self.options.config_servers.clone(),
            port: self.options.config_server_port,
            timeout: self.options.config_server_timeout,
            ca_cert_file: self.options.ca_cert_file.clone(),
            resolver: self.options.resolver.clone(),
        }
    }

    /// Saves a config that did not come from disk to cluster.pb. A failure
    /// is logged: the config stays in force, only the disk copy is stale.
    async fn save(&self, pulled: &Pulled, backup: bool) {
        let Some(message) = pulled.message.clone() else {
            return;
        };
        let file = self.options.cluster_file.clone();
        let saved = tokio::task::spawn_blocking(move || {
            save_config(&message, &file, backup).map_err(|error| error.to_string())
        })
        .await
        .unwrap_or_else(|error| Err(format!("the save task failed: {error}")));
        match saved {
            Ok(()) => tracing::info!(
                "saved the config from {} to {}",
                pulled.detail,
                self.options.cluster_file.display()
            ),
            Err(error) => tracing::warn!(
                "failed to save the config to {}: {error}",
                self.options.cluster_file.display()
            ),
        }
    }

    /// Saves the first config when cluster.pb is unreadable, invalid or
    /// different.
    async fn save_if_disk_differs(&self, first: &Pulled) {
        let same = match self.pull(Source::Disk).await {
            Ok(disk) => disk.cluster() == first.cluster(),
            Err(_) => false,
        };
        if !same {
            self.save(first, true).await;
        }
    }
}

fn derive(
    message: &pb::Cluster,
    label: &Path,
    context: &NodeContext,
) -> Result<LoadedCluster, Rejected> {
    derive_cluster(message, &SpanIndex::default(), label, context)
}

/// Runs a loader on the blocking pool, because reading and checking a
/// large config takes a while, and turns its findings into lines.
async fn blocking<T, F>(work: F) -> Result<T, Vec<String>>
where
    F: FnOnce() -> Result<T, Rejected> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(Rejected(findings))) => Err(findings.iter().map(ToString::to_string).collect()),
        Err(error) => Err(vec![format!("the config loader failed: {error}")]),
    }
}

/// The notifier task's state.
struct Runner {
    loader: Loader,
    shared: Arc<Shared>,
    /// The config in force.
    last: Pulled,
    /// Peer failures in a row.
    peer_failures: u32,
    notifications: mpsc::Sender<ClusterNotification>,
    interval: Interval,
    watch: Option<(FileWatch, Interval)>,
}

/// Whether the task carries on after a check.
#[derive(PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

impl Runner {
    async fn run(mut self, mut reloads: mpsc::Receiver<()>, mut shutdown: signal::Receiver<bool>) {
        tracing::info!("config notifier started");
        loop {
            let trigger = tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                    continue;
                }
                () = self.notifications.closed() => break,
                request = reloads.recv() => match request {
                    Some(()) => Trigger::Reload,
                    None => break,
                },
                _ = self.interval.tick() => Trigger::Interval,
                () = poll_watch(&mut self.watch) => {
                    tracing::info!("{} changed", self.loader.options.cluster_file.display());
                    Trigger::FileChange
                }
            };

            let checked = tokio::select! {
                flow = self.check(trigger) => flow,
                _ = shutdown.wait_for(|stop| *stop) => Flow::Stop,
            };
            if checked == Flow::Stop {
                break;
            }
        }
        tracing::info!("config notifier stopped");
    }

    /// Loads the config from the current source and sends it when it
    /// changed.
    async fn check(&mut self, trigger: Trigger) -> Flow {
        tracing::debug!("checking for config changes ({trigger:?})");
        // An edit of cluster.pb is the operator's newest intent, whatever
        // the source: it is loaded from disk. A config the notifier saved
        // there itself loads as unchanged.
        let mut source = match trigger {
            Trigger::FileChange => Source::Disk,
            _ => *lock(&self.shared.source),
        };
        let mut pulled = self.loader.pull(source).await;

        if source == Source::Peer && pulled.is_err() {
            self.peer_failures += 1;
            if self.peer_failures < self.loader.options.max_peer_failures {
                let errors = pulled.err().unwrap_or_default();
                tracing::error!(
                    "failed to pull the config from the peer ({} in a row): {}",
                    self.peer_failures,
                    errors.join("; ")
                );
                self.record(trigger, source, Outcome::Failed { errors });
                return Flow::Continue;
            }
            tracing::info!(
                "sync from the peer failed {} times, falling back to the config servers",
                self.peer_failures
            );
            source = Source::Server;
            pulled = self.loader.pull(source).await;
        }
        self.peer_failures = 0;

        let pulled = match pulled {
            Ok(pulled) => pulled,
            Err(errors) => {
                tracing::error!(
                    "failed to pull the config from {source}; the config in force stays: {}",
                    errors.join("; ")
                );
                self.record(trigger, source, Outcome::Failed { errors });
                return Flow::Continue;
            }
        };

        if source == Source::Server
            && let Some(reason) = out_of_date(&self.last.cluster().status, &pulled)
        {
            tracing::info!("{reason}");
            self.record(trigger, source, Outcome::Ignored { reason });
            return Flow::Continue;
        }

        if pulled.cluster() == self.last.cluster() {
            tracing::debug!("no config changes found");
            self.record(trigger, source, Outcome::Unchanged);
            return Flow::Continue;
        }

        let metadata_only = same_but_metadata(self.last.cluster(), pulled.cluster());
        tracing::info!(
            "sending a config update from {} ({} vservers{})",
            pulled.detail,
            pulled.cluster().vservers.len(),
            if metadata_only { ", metadata only" } else { "" }
        );
        if self
            .notifications
            .send(pulled.notification(metadata_only))
            .await
            .is_err()
        {
            return Flow::Stop;
        }
        lock(&self.shared.status).in_force = pulled.in_force();
        self.record(trigger, source, Outcome::Applied { metadata_only });

        if source != Source::Disk {
            self.loader.save(&pulled, !metadata_only).await;
        }
        self.last = pulled;
        Flow::Continue
    }

    fn record(&self, trigger: Trigger, source: Source, outcome: Outcome) {
        let attempt = Attempt {
            time: SystemTime::now(),
            trigger,
            source,
            outcome,
        };
        let mut status = lock(&self.shared.status);
        status.attempts += 1;
        if !attempt.outcome.errors().is_empty() {
            status.last_failure = Some(attempt.clone());
        }
        status.last_attempt = Some(attempt);
    }
}

/// Completes when the file watch reports a change. Without a watch it
/// never completes.
async fn poll_watch(watch: &mut Option<(FileWatch, Interval)>) {
    let Some((file, interval)) = watch else {
        return std::future::pending().await;
    };
    loop {
        interval.tick().await;
        if file.poll() {
            return;
        }
    }
}

/// Explains why a config server's reply is older than the config in
/// force, when both carry metadata. Equal times are accepted.
fn out_of_date(in_force: &ConfigStatus, pulled: &Pulled) -> Option<String> {
    let old = in_force.last_update?;
    let new = pulled.cluster().status.last_update?;
    (old > new).then(|| {
        format!(
            "ignoring out-of-date config from {}: its last_updated {new} is older than {old} of the config in force",
            pulled.detail
        )
    })
}

/// Reports whether two clusters differ only in their metadata.
fn same_but_metadata(old: &Cluster, new: &Cluster) -> bool {
    let mut old = old.clone();
    old.status = ConfigStatus::default();
    let mut new = new.clone();
    new.status = ConfigStatus::default();
    old == new
}
