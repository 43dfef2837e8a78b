//! The HA state machine of one node: a function of (state, event) that
//! returns the actions the daemon must carry out, with no I/O and no clock.
//!
//! Timers are events too. The daemon arms and cancels them as the actions
//! direct and feeds their expiry back as [`Event::MasterDownTimerFired`] or
//! [`Event::AdvertTimerFired`].

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::time::{Duration, Instant};

use crate::interval::{self, AdvertInterval};
use crate::packet::Advertisement;

/// The HA state of a node, with the numbers of the engine's `HaState` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum HaState {
    /// Not started yet.
    Unknown = 0,
    /// Watching the master's adverts, ready to take over.
    Backup = 1,
    /// Kept out of the election by configuration.
    Disabled = 2,
    /// Stopped by a fatal error. Terminal.
    Error = 3,
    /// Master: serves the VIPs and sends adverts.
    Leader = 4,
    /// Stopped on request. Terminal.
    Shutdown = 5,
}

impl HaState {
    /// Returns the engine's number for the state.
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// Returns the engine's name for the state, such as `LEADER`.
    pub const fn name(self) -> &'static str {
        match self {
            HaState::Unknown => "UNKNOWN",
            HaState::Backup => "BACKUP",
            HaState::Disabled => "DISABLED",
            HaState::Error => "ERROR",
            HaState::Leader => "LEADER",
            HaState::Shutdown => "SHUTDOWN",
        }
    }
}

impl TryFrom<i32> for HaState {
    type Error = i32;

    /// Converts the engine's number, returning it back if it names no state.
    fn try_from(value: i32) -> Result<Self, i32> {
        match value {
            0 => Ok(HaState::Unknown),
            1 => Ok(HaState::Backup),
            2 => Ok(HaState::Disabled),
            3 => Ok(HaState::Error),
            4 => Ok(HaState::Leader),
            5 => Ok(HaState::Shutdown),
            other => Err(other),
        }
    }
}

impl fmt::Display for HaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The configuration of one node's instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Virtual router id shared by the pair.
    pub vrid: NonZeroU8,
    /// The node's primary address: the source of its adverts and the
    /// tie-breaker between equal priorities.
    pub local_address: IpAddr,
    /// The node's priority. 0 is reserved for the step-down advert.
    pub priority: NonZeroU8,
    /// How often the node advertises while master.
    pub advert_interval: AdvertInterval,
    /// Whether a backup takes over from a master of lower priority.
    pub preempt: bool,
}

impl Config {
    /// Creates a configuration with seesaw_ha's defaults: a 500 ms interval
    /// and no preemption.
    pub fn new(vrid: NonZeroU8, local_address: IpAddr, priority: NonZeroU8) -> Self {
        Config {
            vrid,
            local_address,
            priority,
            advert_interval: AdvertInterval::DEFAULT,
            preempt: false,
        }
    }
}

/// One of the two timers of an instance. Arming a timer replaces its
/// previous deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Runs in BACKUP: when it fires, the master is presumed dead.
    MasterDown,
    /// Runs in LEADER: when it fires, the next advert is due.
    Advert,
}

/// An input to the state machine.
///
/// When an advert and a timer expiry are due at the same moment, the daemon
/// must deliver the advert first, so that a master's last-moment advert
/// still counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Starts the election, or rejoins it after [`Event::Disable`].
    Start,
    /// Leaves the election, stepping down first if master.
    Disable,
    /// An advert that passed the receive filter.
    AdvertReceived {
        /// The sender's IP address.
        source: IpAddr,
        priority: u8,
        interval: AdvertInterval,
    },
    /// The [`Timer::MasterDown`] deadline passed.
    MasterDownTimerFired,
    /// The [`Timer::Advert`] deadline passed.
    AdvertTimerFired,
    /// Stops for good, stepping down first if master.
    ShutdownRequested,
    /// An operator asked the master to hand over to the peer.
    FailoverRequested,
    /// New values for the settings that can change while running. A new
    /// VRID or local address needs new sockets and so a new instance.
    ConfigChanged {
        priority: NonZeroU8,
        advert_interval: AdvertInterval,
        preempt: bool,
    },
    /// A fatal error in the daemon, such as a failed send.
    Failed,
}

impl Event {
    /// Returns the event for an advert from `source` that passed the
    /// receive filter.
    pub fn advert_received(source: IpAddr, advertisement: &Advertisement) -> Self {
        Event::AdvertReceived {
            source,
            priority: advertisement.priority,
            interval: advertisement.max_advert_interval,
        }
    }
}

/// An output of the state machine. The daemon must carry out the actions of
/// one event in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advert to the peer or group.
    SendAdvert(Advertisement),
    /// Start `timer` so that it fires `after` from now, replacing any
    /// deadline it had.
    ArmTimer { timer: Timer, after: Duration },
    /// Stop `timer`. A timer that is not running stays stopped.
    CancelTimer(Timer),
    /// The state changed. The daemon reports `to` to the engine and logs
    /// the change. The report may run in the background so that a slow
    /// engine does not delay the adverts.
    StateChanged { from: HaState, to: HaState },
}

/// The figures a node reports to the engine in its HA status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Adverts the instance asked to send, including step-down adverts.
    pub adverts_sent: u64,
    /// Adverts received in any state, after the receive filter.
    pub adverts_received: u64,
    /// State changes, counting the first one from UNKNOWN to BACKUP.
    pub transitions: u64,
    /// When the current state was entered.
    pub state_since: Instant,
}

/// The state machine of one node.
#[derive(Debug, Clone)]
pub struct Instance {
    config: Config,
    state: HaState,
    /// The interval the current master advertises, learned from its adverts
    /// in BACKUP. `None` until the first one arrives, and then the node's
    /// own interval is used, as RFC 5798 section 6.4.1 specifies.
    master_interval: Option<AdvertInterval>,
    counters: Counters,
}

impl Instance {
    /// Creates an instance in UNKNOWN. [`Event::Start`] begins the election.
    pub fn new(config: Config, now: Instant) -> Self {
        Instance {
            config,
            state: HaState::Unknown,
            master_interval: None,
            counters: Counters {
                adverts_sent: 0,
                adverts_received: 0,
                transitions: 0,
                state_since: now,
            },
        }
    }

    /// Returns the current state.
    pub fn state(&self) -> HaState {
        self.state
    }

    /// Returns the current configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Returns the counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Returns the master's advert interval: the learned one, else the
    /// node's own.
    pub fn master_interval(&self) -> AdvertInterval {
        self.master_interval.unwrap_or(self.config.advert_interval)
    }

    /// Returns how long a backup waits for the master's next advert.
    pub fn master_down_interval(&self) -> Duration {
        interval::master_down_interval(self.config.priority.get(), self.master_interval())
    }

    /// Returns the skew time of RFC 5798 for the node's priority and the
    /// master's interval. A backup takes over at once after a step-down
    /// advert, so the skew only lengthens the master-down interval.
    pub fn skew_time(&self) -> Duration {
        interval::skew_time(self.config.priority.get(), self.master_interval())
    }

    /// Applies `event`, which happened at `now`, and returns the actions to
    /// carry out.
    pub fn handle(&mut self, now: Instant, event: Event) -> Vec<Action> {
        if let Event::AdvertReceived { .. } = event {
            self.counters.adverts_received += 1;
        }

        let mut actions = Vec::new();
        match self.state {
            HaState::Unknown | HaState::Disabled => self.handle_idle(now, event, &mut actions),
            HaState::Backup => self.handle_backup(now, event, &mut actions),
            HaState::Leader => self.handle_leader(now, event, &mut actions),
            // Terminal: the daemon is on its way out.
            HaState::Shutdown | HaState::Error => {}
        }

        let sent = actions
            .iter()
            .filter(|action| matches!(action, Action::SendAdvert(_)))
            .count();
        self.counters.adverts_sent += sent as u64;
        actions
    }

    /// UNKNOWN and DISABLED: no timers run and adverts are only counted.
    fn handle_idle(&mut self, now: Instant, event: Event, actions: &mut Vec<Action>) {
        match event {
            Event::Start => self.enter_backup(now, actions),
            Event::Disable => {
                if self.state != HaState::Disabled {
                    self.change_state(now, HaState::Disabled, actions);
                }
            }
            Event::ShutdownRequested => self.change_state(now, HaState::Shutdown, actions),
            Event::Failed => self.change_state(now, HaState::Error, actions),
            Event::ConfigChanged {
                priority,
                advert_interval,
                preempt,
            } => self.apply_config(priority, advert_interval, preempt),
            Event::AdvertReceived { .. }
            | Event::MasterDownTimerFired
            | Event::AdvertTimerFired
            | Event::FailoverRequested => {}
        }
    }

    fn handle_backup(&mut self, now: Instant, event: Event, actions: &mut Vec<Action>) {
        match event {
            Event::AdvertReceived {
                priority, interval, ..
            } => self.backup_advert(now, priority, interval, actions),
            Event::MasterDownTimerFired => self.enter_leader(now, actions),
            Event::Disable => self.leave_backup(now, HaState::Disabled, actions),
            Event::ShutdownRequested => self.leave_backup(now, HaState::Shutdown, actions),
            Event::Failed => self.leave_backup(now, HaState::Error, actions),
            Event::ConfigChanged {
                priority,
                advert_interval,
                preempt,
            } => {
                let before = self.master_down_interval();
                self.apply_config(priority, advert_interval, preempt);
                let after = self.master_down_interval();
                // Restarting the wait from now is conservative: it can only
                // delay a takeover, never cause a premature one.
                if after != before {
                    actions.push(Action::ArmTimer {
                        timer: Timer::MasterDown,
                        after,
                    });
                }
            }
            // A master-only request, or a stale or duplicate event.
            Event::Start | Event::AdvertTimerFired | Event::FailoverRequested => {}
        }
    }

    /// Handles an advert in BACKUP as RFC 5798 section 6.4.2 specifies,
    /// except for the step-down advert.
    fn backup_advert(
        &mut self,
        now: Instant,
        priority: u8,
        interval: AdvertInterval,
        actions: &mut Vec<Action>,
    ) {
        if priority == 0 {
            // The master is stepping down. RFC 5798 waits the skew time so
            // that the backup with the highest priority of several wins, but
            // a Seesaw pair has one backup, so it takes over at once, as
            // Seesaw v2 does.
            actions.push(Action::CancelTimer(Timer::MasterDown));
            self.enter_leader(now, actions);
            return;
        }
        if self.config.preempt && priority < self.config.priority.get() {
            // Ignoring the lower-priority master lets the master-down timer
            // fire, and then this node takes over.
            return;
        }
        self.master_interval = Some(interval);
        actions.push(Action::ArmTimer {
            timer: Timer::MasterDown,
            after: self.master_down_interval(),
        });
    }

    fn handle_leader(&mut self, now: Instant, event: Event, actions: &mut Vec<Action>) {
        match event {
            Event::AdvertReceived {
                source,
                priority,
                interval,
            } => self.leader_advert(now, source, priority, interval, actions),
            Event::AdvertTimerFired => self.advertise(actions),
            Event::FailoverRequested => {
                self.step_down(now, HaState::Backup, actions);
                self.master_interval = None;
                actions.push(Action::ArmTimer {
                    timer: Timer::MasterDown,
                    after: self.master_down_interval(),
                });
            }
            Event::Disable => self.step_down(now, HaState::Disabled, actions),
            Event::ShutdownRequested => self.step_down(now, HaState::Shutdown, actions),
            Event::Failed => self.step_down(now, HaState::Error, actions),
            Event::ConfigChanged {
                priority,
                advert_interval,
                preempt,
            } => {
                let changed = priority != self.config.priority
                    || advert_interval != self.config.advert_interval;
                self.apply_config(priority, advert_interval, preempt);
                // Tell the peer the new priority and interval now rather
                // than one interval later.
                if changed {
                    self.advertise(actions);
                }
            }
            // A stale timer or a duplicate start.
            Event::Start | Event::MasterDownTimerFired => {}
        }
    }

    /// Handles an advert in LEADER as RFC 5798 section 6.4.3 specifies.
    fn leader_advert(
        &mut self,
        now: Instant,
        source: IpAddr,
        priority: u8,
        interval: AdvertInterval,
        actions: &mut Vec<Action>,
    ) {
        let own = self.config.priority.get();
        if priority == 0 {
            // Another master is stepping down. Advertising at once, as
            // RFC 5798 section 6.4.3 specifies, lets a backup that took over
            // on the same step-down advert hear this master and yield to it
            // by priority within one link delay.
            self.advertise(actions);
            return;
        }

        // The higher address wins between equal priorities, so that two
        // masters always converge on one.
        let yields = priority > own || (priority == own && source > self.config.local_address);
        if !yields {
            return;
        }
        self.change_state(now, HaState::Backup, actions);
        actions.push(Action::CancelTimer(Timer::Advert));
        self.master_interval = Some(interval);
        actions.push(Action::ArmTimer {
            timer: Timer::MasterDown,
            after: self.master_down_interval(),
        });
    }

    /// Enters BACKUP from UNKNOWN or DISABLED.
    fn enter_backup(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.change_state(now, HaState::Backup, actions);
        self.master_interval = None;
        actions.push(Action::ArmTimer {
            timer: Timer::MasterDown,
            after: self.master_down_interval(),
        });
    }

    /// Leaves BACKUP for a state without timers.
    fn leave_backup(&mut self, now: Instant, to: HaState, actions: &mut Vec<Action>) {
        self.change_state(now, to, actions);
        actions.push(Action::CancelTimer(Timer::MasterDown));
    }

    /// Enters LEADER from BACKUP. The first advert goes out at once, as
    /// RFC 5798 section 6.4.2 specifies, so the peer learns of the new
    /// master without waiting an interval.
    fn enter_leader(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.change_state(now, HaState::Leader, actions);
        self.advertise(actions);
    }

    /// Leaves LEADER for `to` with a priority-0 advert, so the peer takes
    /// over at once instead of after its master-down interval.
    fn step_down(&mut self, now: Instant, to: HaState, actions: &mut Vec<Action>) {
        self.change_state(now, to, actions);
        actions.push(Action::CancelTimer(Timer::Advert));
        actions.push(Action::SendAdvert(self.advertisement(0)));
    }

    /// Sends an advert now and schedules the next one an interval later.
    fn advertise(&mut self, actions: &mut Vec<Action>) {
        actions.push(Action::SendAdvert(
            self.advertisement(self.config.priority.get()),
        ));
        actions.push(Action::ArmTimer {
            timer: Timer::Advert,
            after: self.config.advert_interval.as_duration(),
        });
    }

    fn advertisement(&self, priority: u8) -> Advertisement {
        Advertisement::new(
            self.config.vrid.get(),
            priority,
            self.config.advert_interval,
        )
    }

    fn apply_config(
        &mut self,
        priority: NonZeroU8,
        advert_interval: AdvertInterval,
        preempt: bool,
    ) {
        self.config.priority = priority;
        self.config.advert_interval = advert_interval;
        self.config.preempt = preempt;
    }

    fn change_state(&mut self, now: Instant, to: HaState, actions: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        self.counters.transitions += 1;
        self.counters.state_since = now;
        actions.push(Action::StateChanged { from, to });
    }
}
