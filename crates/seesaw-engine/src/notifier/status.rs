//! The notifier status behind `config status`: the config in force and
//! the last attempts to load one.

use std::time::SystemTime;

use seesaw_config::model::ConfigStatus;

use super::source::Source;

/// A snapshot of the notifier, for `config status`.
#[derive(Debug, Clone)]
pub struct NotifierStatus {
    /// The source that reloads pull from.
    pub source: Source,
    pub in_force: ConfigInForce,
    /// The latest attempt to load a config, whatever its outcome.
    pub last_attempt: Option<Attempt>,
    /// The latest attempt that failed or was ignored. It stays after later
    /// attempts succeed, so an operator can still see what went wrong.
    pub last_failure: Option<Attempt>,
    /// Attempts made since the start, counting the one at the start.
    pub attempts: u64,
}

impl NotifierStatus {
    /// Returns the errors of the latest attempt: empty when it applied a
    /// config or found no change.
    pub fn last_errors(&self) -> Vec<String> {
        self.last_attempt
            .as_ref()
            .map(|attempt| attempt.outcome.errors())
            .unwrap_or_default()
    }
}

/// The config the engine runs with.
#[derive(Debug, Clone)]
pub struct ConfigInForce {
    pub source: Source,
    /// The file, or `<url> (<address>)` of the config server reply, or
    /// the peer's detail.
    pub source_detail: String,
    /// When it was loaded.
    pub time: SystemTime,
    /// The metadata that came with it: last update, attributes and the
    /// source's warnings about misconfigured vservers.
    pub cluster_status: ConfigStatus,
    /// The loader's warnings about it, as `file:line:col: warning: ...`.
    pub warnings: Vec<String>,
}

/// The event that started an attempt to load a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The engine's start.
    Start,
    /// `config reload`, or a change of source with `config source`.
    Reload,
    /// The periodic check, every `config_interval`.
    Interval,
    /// cluster.pb changed while the source is disk.
    FileChange,
}

/// One attempt to load a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub time: SystemTime,
    pub trigger: Trigger,
    /// The source pulled from. After repeated peer failures this is the
    /// server, which the notifier falls back to.
    pub source: Source,
    pub outcome: Outcome,
}

/// The result of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A changed config was loaded and sent to the engine.
    Applied { metadata_only: bool },
    /// The config equals the one in force.
    Unchanged,
    /// The config loaded but was not used, for the reason given.
    Ignored { reason: String },
    /// The config could not be read, fetched, decoded or checked. Each
    /// error is one line, as `file:line:col: message` where the source
    /// has positions.
    Failed { errors: Vec<String> },
}

impl Outcome {
    /// Returns the lines that explain a failed or ignored attempt.
    pub fn errors(&self) -> Vec<String> {
        match self {
            Outcome::Failed { errors } => errors.clone(),
            Outcome::Ignored { reason } => vec![reason.clone()],
            Outcome::Applied { .. } | Outcome::Unchanged => Vec::new(),
        }
    }
}
