//! The engine's view of the HA state, as seesaw_ha reports it, and the
//! LB interface change that each change of state requires.
//!
//! The rules are the original engine's: becoming LEADER brings the LB
//! interface up; leaving LEADER, or reaching BACKUP, brings it down; a
//! node that cluster.pb disables accepts no state but UNKNOWN; a report
//! older than the HA timeout drops the state to UNKNOWN. Time is passed
//! in, so the rules are tested without clocks.
//!
//! seesaw_ha also reports DISABLED while it has left the election because
//! its engine was unreachable, and BACKUP when it rejoins. That DISABLED
//! state is left with the next report, or a restarted engine would ignore
//! every later state of the node.

use std::time::{Duration, SystemTime};

use seesaw_vrrp::HaState;

/// The action a change of state requires of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing beyond recording the state.
    None,
    /// Bring the LB interface up and start gratuitous ARPs.
    BecomeMaster,
    /// Bring the LB interface down.
    BecomeBackup,
}

/// The counters and times `show ha` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaStatus {
    pub state: HaState,
    pub since: SystemTime,
    pub last_update: SystemTime,
    pub sent: u64,
    pub received: u64,
    pub received_queued: u64,
    pub transitions: u64,
}

/// The HA state machine of the engine.
#[derive(Debug, Clone)]
pub struct HaManager {
    status: HaStatus,
    timeout: Duration,
    failover_pending: bool,
    /// Whether cluster.pb enables HA on this node. While it does not, the
    /// state stays DISABLED.
    enabled: bool,
}

/// A failover that cannot be requested now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailoverError {
    #[error("Failover request already pending")]
    AlreadyPending,
    #[error("Node is not master (current state is {0})")]
    NotMaster(&'static str),
}

impl HaManager {
    /// Starts in UNKNOWN at `now`; `timeout` is the HA state timeout
    /// (30 s in the original).
    pub fn new(now: SystemTime, timeout: Duration) -> Self {
        HaManager {
            status: HaStatus {
                state: HaState::Unknown,
                since: now,
                last_update: now,
                sent: 0,
                received: 0,
                received_queued: 0,
                transitions: 0,
            },
            timeout,
            failover_pending: false,
            enabled: true,
        }
    }

    pub fn status(&self) -> HaStatus {
        self.status
    }

    pub fn state(&self) -> HaState {
        self.status.state
    }

    /// Records a state reported by seesaw_ha and returns the action it requires.
    pub fn set_state(&mut self, state: HaState, now: SystemTime) -> Transition {
        let current = self.status.state;
        if !self.enabled && current == HaState::Disabled && state != HaState::Unknown {
            tracing::warn!(
                "Invalid HA state transition {} -> {}",
                current.name(),
                state.name()
            );
            return Transition::None;
        }
        let transition = if state == current {
            Transition::None
        } else if state == HaState::Leader {
            Transition::BecomeMaster
        } else if current == HaState::Leader || state == HaState::Backup {
            Transition::BecomeBackup
        } else {
            Transition::None
        };
        if state != current {
            tracing::info!("HA state transition {} -> {}", current.name(), state.name());
            self.status.since = now;
        }
        if state != HaState::Leader {
            self.failover_pending = false;
        }
        self.status.state = state;
        self.status.last_update = now;
        transition
    }

    /// Records a periodic status report. Returns the transition of its
    /// state, and whether a failover was requested since the last report
    /// (the request is consumed).
    pub fn update(&mut self, report: HaStatus, now: SystemTime) -> (Transition, bool) {
        let transition = self.set_state(report.state, now);
        if self.status.state == report.state {
            self.status.since = report.since;
        }
        self.status.sent = report.sent;
        self.status.received = report.received;
        self.status.received_queued = report.received_queued;
        self.status.transitions = report.transitions;
        let failover = std::mem::take(&mut self.failover_pending);
        (transition, failover)
    }

    /// Enables or disables HA as cluster.pb sets it for this node.
    pub fn set_enabled(&mut self, enabled: bool, now: SystemTime) -> Transition {
        self.enabled = enabled;
        match (enabled, self.status.state) {
            (true, HaState::Disabled) => self.set_state(HaState::Unknown, now),
            (false, state) if state != HaState::Disabled => self.set_state(HaState::Disabled, now),
            _ => Transition::None,
        }
    }

    /// When the state expires for want of reports, or `None` when it never
    /// does (UNKNOWN and DISABLED).
    pub fn deadline(&self) -> Option<SystemTime> {
        match self.status.state {
            HaState::Unknown | HaState::Disabled => None,
            _ => Some(self.status.last_update + self.timeout),
        }
    }

    /// Drops to UNKNOWN when no report came within the timeout.
    pub fn expire(&mut self, now: SystemTime) -> Transition {
        match self.deadline() {
            Some(deadline) if now >= deadline => {
                tracing::warn!("Timed out waiting for HAState");
                self.set_state(HaState::Unknown, now)
            }
            _ => Transition::None,
        }
    }

    /// Asks seesaw_ha, through the next status reply, to give up
    /// mastership. Only a master can; a backup forwards the request to its
    /// peer instead.
    pub fn request_failover(&mut self) -> Result<(), FailoverError> {
        if self.status.state != HaState::Leader {
            return Err(FailoverError::NotMaster(self.status.state.name()));
        }
        if self.failover_pending {
            return Err(FailoverError::AlreadyPending);
        }
        self.failover_pending = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + seconds)
    }

    fn manager() -> HaManager {
        HaManager::new(at(0), TIMEOUT)
    }

    #[test]
    fn leader_brings_the_interface_up_and_backup_down() {
        let mut ha = manager();

        assert_eq!(
            ha.set_state(HaState::Backup, at(1)),
            Transition::BecomeBackup
        );
        assert_eq!(
            ha.set_state(HaState::Leader, at(2)),
            Transition::BecomeMaster
        );
        assert_eq!(ha.set_state(HaState::Leader, at(3)), Transition::None);
        assert_eq!(
            ha.set_state(HaState::Shutdown, at(4)),
            Transition::BecomeBackup
        );
        assert_eq!(ha.status().since, at(4));
    }

    #[test]
    fn unknown_to_shutdown_does_nothing() {
        let mut ha = manager();

        assert_eq!(ha.set_state(HaState::Shutdown, at(1)), Transition::None);
        assert_eq!(ha.state(), HaState::Shutdown);
    }

    #[test]
    fn disabled_accepts_only_unknown() {
        let mut ha = manager();
        ha.set_enabled(false, at(1));

        assert_eq!(ha.set_state(HaState::Leader, at(2)), Transition::None);
        assert_eq!(ha.state(), HaState::Disabled);
        assert_eq!(ha.set_enabled(true, at(3)), Transition::None);
        assert_eq!(ha.state(), HaState::Unknown);
    }

    #[test]
    fn disabled_by_seesaw_ha_accepts_rejoin() {
        let mut ha = manager();
        ha.set_state(HaState::Leader, at(1));

        // seesaw_ha left the election while the engine was unreachable.
        assert_eq!(
            ha.set_state(HaState::Disabled, at(2)),
            Transition::BecomeBackup
        );
        assert_eq!(
            ha.set_state(HaState::Backup, at(3)),
            Transition::BecomeBackup
        );
        assert_eq!(
            ha.set_state(HaState::Leader, at(4)),
            Transition::BecomeMaster
        );
        assert_eq!(ha.state(), HaState::Leader);
    }

    #[test]
    fn disabling_a_master_brings_it_down() {
        let mut ha = manager();
        ha.set_state(HaState::Leader, at(1));

        assert_eq!(ha.set_enabled(false, at(2)), Transition::BecomeBackup);
    }

    #[test]
    fn state_expires_after_the_timeout() {
        let mut ha = manager();
        ha.set_state(HaState::Leader, at(10));

        assert_eq!(ha.deadline(), Some(at(40)));
        assert_eq!(ha.expire(at(39)), Transition::None);
        assert_eq!(ha.expire(at(40)), Transition::BecomeBackup);
        assert_eq!(ha.state(), HaState::Unknown);
        assert_eq!(ha.deadline(), None);
    }

    #[test]
    fn updates_keep_the_state_alive_and_copy_counters() {
        let mut ha = manager();
        let report = HaStatus {
            state: HaState::Leader,
            since: at(5),
            last_update: at(6),
            sent: 40,
            received: 2,
            received_queued: 1,
            transitions: 3,
        };

        let (transition, failover) = ha.update(report, at(20));

        assert_eq!(transition, Transition::BecomeMaster);
        assert!(!failover);
        assert_eq!(ha.status().since, at(5));
        assert_eq!(ha.status().sent, 40);
        assert_eq!(ha.deadline(), Some(at(50)));
    }

    #[test]
    fn failover_is_consumed_by_the_next_update() {
        let mut ha = manager();
        ha.set_state(HaState::Leader, at(1));

        ha.request_failover().unwrap();
        assert_eq!(ha.request_failover(), Err(FailoverError::AlreadyPending));
        let report = HaStatus {
            state: HaState::Leader,
            ..ha.status()
        };
        assert_eq!(ha.update(report, at(2)), (Transition::None, true));
        assert_eq!(ha.update(report, at(3)), (Transition::None, false));
    }

    #[test]
    fn backup_failover_rejected() {
        let mut ha = manager();
        ha.set_state(HaState::Backup, at(1));

        assert_eq!(
            ha.request_failover().unwrap_err().to_string(),
            "Node is not master (current state is BACKUP)"
        );
    }
}
