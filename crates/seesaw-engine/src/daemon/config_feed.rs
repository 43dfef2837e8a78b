//! The notifier's configs into the engine's core, and the notifier as
//! the API's config control.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::core::{ConfigInfo, Core};
use super::server::ConfigControl;
use crate::notifier::{ClusterNotification, NotifierHandle, Source};

/// Returns the engine's record of a notification.
pub fn info(notification: &ClusterNotification) -> ConfigInfo {
    ConfigInfo {
        source: notification.source.name().to_string(),
        source_detail: notification.source_detail.clone(),
        applied: Some(notification.time),
        last_attempt: Some(notification.time),
        last_errors: Vec::new(),
        warnings: notification
            .warnings
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}

/// Applies every notification until the notifier stops.
pub async fn run(mut notifications: mpsc::Receiver<ClusterNotification>, core: Arc<Mutex<Core>>) {
    while let Some(notification) = notifications.recv().await {
        tracing::info!(
            "Received cluster config notification; config from {} ({})",
            notification.source,
            notification.source_detail
        );
        let info = info(&notification);
        let mut core = core.lock().expect("engine state poisoned");
        if notification.metadata_only {
            tracing::info!("Only metadata changes found, processing complete.");
            core.cluster = Some(notification.cluster);
            core.config = info;
        } else {
            core.apply_config(notification.cluster, info);
        }
    }
}

impl ConfigControl for NotifierHandle {
    fn reload(&self) -> Result<(), String> {
        NotifierHandle::reload(self).map_err(|error| error.to_string())
    }

    fn set_source(&self, name: &str) -> Result<String, String> {
        let source: Source = name
            .parse()
            .map_err(|error: crate::notifier::UnknownSource| error.to_string())?;
        Ok(NotifierHandle::set_source(self, source).name().to_string())
    }

    fn source(&self) -> String {
        NotifierHandle::source(self).name().to_string()
    }

    fn last_attempt(&self) -> (Option<SystemTime>, Vec<String>) {
        let status = self.status();
        (
            status.last_attempt.as_ref().map(|attempt| attempt.time),
            status.last_errors(),
        )
    }
}
