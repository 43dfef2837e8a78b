//! Check state, status and the rule that turns results into state changes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::CheckId;

/// The health of one check, numbered as on the engine's wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum State {
    /// Not checked yet.
    #[default]
    Unknown = 0,
    Unhealthy = 1,
    Healthy = 2,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Unknown => "Unknown",
            State::Unhealthy => "Unhealthy",
            State::Healthy => "Healthy",
        })
    }
}

/// The status of one check, as reported to the engine.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Status {
    /// Start of the last run; `None` before the first.
    pub last_check: Option<SystemTime>,
    /// Length of the last run.
    pub duration: Duration,
    /// Failed runs since the check was created.
    pub failures: u64,
    /// Successful runs since the check was created.
    pub successes: u64,
    pub state: State,
    /// The last result's text.
    pub message: String,
}

/// One check's status, sent on every state change and periodically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: CheckId,
    /// The checker's description, such as `TCP 192.0.2.1:80 PLAIN`.
    pub description: Arc<str>,
    pub status: Status,
}

/// The state machine of one probe: its status and the run of consecutive
/// failures.
#[derive(Clone, Debug, Default)]
pub struct Health {
    pub status: Status,
    consecutive_failures: u32,
}

impl Health {
    /// Records one result and returns whether the state changed.
    ///
    /// A success makes the check healthy at once. A failure makes it
    /// unhealthy, except that a healthy check stays healthy for its first
    /// `retries` consecutive failures. The first result always changes the
    /// state away from `Unknown`.
    pub fn record(
        &mut self,
        success: bool,
        message: String,
        started: SystemTime,
        duration: Duration,
        retries: u32,
    ) -> bool {
        let previous = self.status.state;
        self.status.last_check = Some(started);
        self.status.duration = duration;
        self.status.message = message;

        if success {
            self.status.successes += 1;
            self.consecutive_failures = 0;
            self.status.state = State::Healthy;
        } else {
            self.status.failures += 1;
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            if previous != State::Healthy || self.consecutive_failures > retries {
                self.status.state = State::Unhealthy;
            }
        }
        self.status.state != previous
    }

    /// Returns the failures in a row so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(health: &mut Health, success: bool, retries: u32) -> bool {
        health.record(
            success,
            String::new(),
            SystemTime::UNIX_EPOCH,
            Duration::ZERO,
            retries,
        )
    }

    #[test]
    fn first_result_changes_state() {
        let mut health = Health::default();
        assert!(record(&mut health, false, 3));
        assert_eq!(health.status.state, State::Unhealthy);
    }

    #[test]
    fn healthy_turns_unhealthy_after_retries_plus_one() {
        let mut health = Health::default();
        assert!(record(&mut health, true, 2));
        assert!(!record(&mut health, false, 2));
        assert!(!record(&mut health, false, 2));
        assert_eq!(health.status.state, State::Healthy);
        assert!(record(&mut health, false, 2));
        assert_eq!(health.status.state, State::Unhealthy);
        assert_eq!(health.status.failures, 3);
    }

    #[test]
    fn unhealthy_turns_healthy_after_one_success() {
        let mut health = Health::default();
        record(&mut health, false, 2);
        assert!(record(&mut health, true, 2));
        assert_eq!(health.status.state, State::Healthy);
        assert_eq!(health.consecutive_failures(), 0);
    }

    #[test]
    fn success_resets_failure_run() {
        let mut health = Health::default();
        record(&mut health, true, 1);
        record(&mut health, false, 1);
        record(&mut health, true, 1);
        assert!(!record(&mut health, false, 1));
        assert_eq!(health.status.state, State::Healthy);
    }
}
