//! Reloads of cluster.pb from disk: on request, on the config interval and
//! when the file changes. A config that fails to load is recorded for
//! `config status` and changes nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use seesaw_config::check::context_of;
use seesaw_config::cluster::{NodeContext, read_cluster_file};
use seesaw_config::model::Cluster;
use seesaw_config::node_config::NodeConfig;
use tokio::sync::mpsc;

use super::core::{ConfigInfo, Core};
use super::server::ConfigControl;

/// How often the file is looked at for changes.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A config that loaded.
pub struct Loaded {
    pub cluster: Arc<Cluster>,
    pub info: ConfigInfo,
}

/// The disk source; clones share the reload queue.
#[derive(Clone)]
pub struct DiskConfig {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    context: NodeContext,
    interval: Duration,
    reload: mpsc::Sender<()>,
    requests: Mutex<Option<mpsc::Receiver<()>>>,
}

impl DiskConfig {
    pub fn new(node: &NodeConfig, path: PathBuf) -> Self {
        let (reload, requests) = mpsc::channel(1);
        DiskConfig {
            inner: Arc::new(Inner {
                path,
                context: context_of(node),
                interval: node.engine.config_interval,
                reload,
                requests: Mutex::new(Some(requests)),
            }),
        }
    }

    /// Loads the file; the errors come as `file:line:col: message`.
    pub fn load(&self) -> Result<Loaded, Vec<String>> {
        let path = &self.inner.path;
        match read_cluster_file(path, &self.inner.context) {
            Ok(loaded) => Ok(Loaded {
                cluster: Arc::new(loaded.cluster),
                info: ConfigInfo {
                    source: "disk".into(),
                    source_detail: path.display().to_string(),
                    applied: Some(SystemTime::now()),
                    last_attempt: Some(SystemTime::now()),
                    last_errors: Vec::new(),
                    warnings: loaded.warnings.iter().map(ToString::to_string).collect(),
                },
            }),
            Err(rejected) => Err(rejected.0.iter().map(ToString::to_string).collect()),
        }
    }

    /// Reloads on every trigger until the task is dropped.
    pub async fn run(self, core: Arc<Mutex<Core>>) {
        let Some(mut requests) = self.inner.requests.lock().expect("poisoned").take() else {
            return;
        };
        let mut interval = tokio::time::interval(self.inner.interval.max(Duration::from_secs(1)));
        interval.tick().await;
        let mut watch = tokio::time::interval(WATCH_INTERVAL);
        let mut seen = self.fingerprint();
        loop {
            let reason = tokio::select! {
                _ = interval.tick() => "config interval",
                Some(()) = requests.recv() => "reload request",
                _ = watch.tick() => {
                    let now = self.fingerprint();
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "file change"
                }
            };
            self.reload(&core, reason);
        }
    }

    fn reload(&self, core: &Arc<Mutex<Core>>, reason: &str) {
        let result = self.load();
        let mut core = core.lock().expect("engine state poisoned");
        match result {
            Ok(loaded) => {
                if core.cluster.as_deref() == Some(&*loaded.cluster) {
                    tracing::info!("No config changes found ({reason})");
                    core.config.last_attempt = loaded.info.last_attempt;
                    core.config.last_errors.clear();
                    return;
                }
                tracing::info!(
                    "Received cluster config notification; config from disk ({}) after {reason}",
                    self.inner.path.display()
                );
                core.apply_config(loaded.cluster, loaded.info);
            }
            Err(errors) => {
                tracing::error!(
                    "failed to load {} ({reason}); keeping the config in force:\n  {}",
                    self.inner.path.display(),
                    errors.join("\n  ")
                );
                core.config_failed(errors, SystemTime::now());
            }
        }
    }

    /// Size and modification time, to notice a changed file.
    fn fingerprint(&self) -> Option<(u64, SystemTime)> {
        let metadata = std::fs::metadata(&self.inner.path).ok()?;
        Some((metadata.len(), metadata.modified().ok()?))
    }
}

impl ConfigControl for DiskConfig {
    fn reload(&self) -> Result<(), String> {
        self.inner
            .reload
            .try_send(())
            .map_err(|_| "reload request already queued".to_string())
    }

    fn set_source(&self, name: &str) -> Result<String, String> {
        match name {
            "disk" => {
                ConfigControl::reload(self)?;
                Ok("disk".into())
            }
            "none" | "peer" | "server" => Err(format!("config source {name} is not available")),
            other => Err(format!("unknown source \"{other}\"")),
        }
    }

    fn source(&self) -> String {
        "disk".into()
    }
}
