//! The event loop around the state machine: it feeds received adverts,
//! timer expiries and signals to [`Instance`] and carries out its actions.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use seesaw_vrrp::{
    Action, AdvertInterval, Config, Event, HaState, Instance, ReceiveError, ReceiveFilter, Timer,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, error, info, warn};

use crate::engine::{Engine, EngineRequest, HaConfig};
use crate::net::{PacketError, ReceivedPacket, SetupError, VrrpSockets};

/// The settings that come from flags in every mode.
#[derive(Debug, Clone)]
pub struct Settings {
    pub advert_interval: AdvertInterval,
    pub preempt: bool,
    /// Pause between configuration requests while the engine fails or
    /// reports the node disabled.
    pub init_config_retry_delay: Duration,
    /// The address list of every advert sent, for a keepalived peer, which
    /// drops adverts whose list differs from its own virtual addresses.
    /// Empty for a Seesaw v2 peer, which drops adverts that list any.
    pub advert_addresses: Vec<IpAddr>,
}

/// A failure that stops the daemon before it joins the election.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(
        "-advert_addresses lists {address}, which is not of the family of the local address {local}; list addresses of one family only"
    )]
    AdvertAddressFamily { address: IpAddr, local: IpAddr },
    #[error("failed to install the handler for {signal}: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Minimum time between two log lines for the same kind of repeated error.
const REPEAT_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Runs the node until a signal stops it. Returns `Ok` after a graceful
/// shutdown, when the caller exits 0.
///
/// A new VRID or address from the engine needs new sockets, so the node
/// steps down and starts a new instance. A new priority or enabled flag
/// applies to the running instance.
pub async fn run<E: Engine>(engine: &mut E, settings: Settings) -> Result<(), RunError> {
    let mut signals = Signals::install()?;
    let Some(mut config) =
        wait_for_config(engine, settings.init_config_retry_delay, &mut signals).await
    else {
        return Ok(());
    };

    loop {
        check_advert_addresses(&settings.advert_addresses, config.local_addr)?;
        let sockets = VrrpSockets::open(config.local_addr, config.remote_addr)?;
        let mut node = Node::new(config, &settings);
        info!(
            "started vrid={} local={} peer={} priority={} advert_interval={} preempt={}{}",
            config.vrid,
            config.local_addr,
            config.remote_addr,
            config.priority,
            settings.advert_interval,
            settings.preempt,
            advert_addresses_note(&settings.advert_addresses)
        );
        node.handle(engine, &sockets, Event::Start, Cause::Start);

        let outcome = node.run(engine, &sockets, &mut signals).await;
        info!(
            "stopped vrid={} state={}",
            config.vrid,
            node.instance.state()
        );
        let Outcome::Restart(new) = outcome else {
            engine.flush().await;
            return Ok(());
        };
        drop(sockets);

        config = if new.enabled {
            new
        } else {
            match wait_for_config(engine, settings.init_config_retry_delay, &mut signals).await {
                Some(config) => config,
                None => return Ok(()),
            }
        };
    }
}

/// Returns ` advert_addresses=A,B` for the start line, or nothing when the
/// adverts list no addresses.
fn advert_addresses_note(addresses: &[IpAddr]) -> String {
    if addresses.is_empty() {
        return String::new();
    }
    let list: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
    format!(" advert_addresses={}", list.join(","))
}

/// Checks that the advert's address list is of the local address's family,
/// which the packet's family decides.
fn check_advert_addresses(addresses: &[IpAddr], local: IpAddr) -> Result<(), RunError> {
    match addresses
        .iter()
        .find(|address| address.is_ipv4() != local.is_ipv4())
    {
        Some(&address) => Err(RunError::AdvertAddressFamily { address, local }),
        None => Ok(()),
    }
}

/// Fetches the configuration, retrying until the engine returns one with
/// the node enabled. Returns `None` when a signal arrives first.
async fn wait_for_config<E: Engine>(
    engine: &mut E,
    retry_delay: Duration,
    signals: &mut Signals,
) -> Option<HaConfig> {
    let mut repeats = RepeatLimiter::default();
    // An engine that is not serving yet is usually starting beside this
    // daemon, so it is asked again sooner than a disabled node.
    let unreachable_delay = retry_delay.min(Duration::from_millis(250));
    loop {
        let delay = match unless_signalled(signals, engine.ha_config()).await? {
            Ok(config) if config.enabled => return Some(config),
            Ok(_) => {
                if let Some(suppressed) = repeats.allow("disabled") {
                    info!(
                        "HA peering is disabled for this node; retrying every {retry_delay:?}{}",
                        suppressed_note(suppressed)
                    );
                }
                retry_delay
            }
            Err(error) => {
                if let Some(suppressed) = repeats.allow("config") {
                    error!(
                        "{error}; retrying every {unreachable_delay:?}{}",
                        suppressed_note(suppressed)
                    );
                }
                unreachable_delay
            }
        };
        unless_signalled(signals, tokio::time::sleep(delay)).await?;
    }
}

/// Runs `work` to completion, or returns `None` if a signal arrives first.
async fn unless_signalled<T>(signals: &mut Signals, work: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        biased;
        signal = signals.recv() => {
            info!("{signal} received while waiting for the HA config; exiting");
            None
        }
        value = work => Some(value),
    }
}

/// The signals that stop the daemon gracefully.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, RunError> {
        Ok(Signals {
            terminate: install_signal(SignalKind::terminate(), "SIGTERM")?,
            interrupt: install_signal(SignalKind::interrupt(), "SIGINT")?,
            quit: install_signal(SignalKind::quit(), "SIGQUIT")?,
        })
    }

    /// Waits for the next signal and returns its name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.quit.recv() => "SIGQUIT",
        }
    }
}

fn install_signal(
    kind: SignalKind,
    name: &'static str,
) -> Result<tokio::signal::unix::Signal, RunError> {
    signal(kind).map_err(|source| RunError::Signal {
        signal: name,
        source,
    })
}

/// Returns a deadline a year away, for the branch of a disabled timer.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// The end of a running instance.
enum Outcome {
    /// Stopped for good (SHUTDOWN or ERROR).
    Stopped,
    /// Stepped down for a configuration that needs new sockets.
    Restart(HaConfig),
}

/// The reason for an event, as the state-change log line shows it.
#[derive(Debug, Clone)]
enum Cause {
    Start,
    Advert { source: IpAddr, priority: u8 },
    MasterDownTimer,
    Signal(&'static str),
    AdvertTimer,
    Failover,
    ConfigChanged,
    EngineLost,
    EngineBack,
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Start => f.write_str("start"),
            Cause::Advert { source, priority } => {
                write!(f, "advert from {source} priority {priority}")
            }
            Cause::MasterDownTimer => f.write_str("master-down timer expired"),
            Cause::Signal(name) => write!(f, "{name} received"),
            Cause::AdvertTimer => f.write_str("advert timer expired"),
            Cause::Failover => f.write_str("failover requested by the engine"),
            Cause::ConfigChanged => f.write_str("HA config changed"),
            Cause::EngineLost => f.write_str("engine unreachable for longer than the grace period"),
            Cause::EngineBack => f.write_str("engine reachable again"),
        }
    }
}

/// The instance with its timers and the state the loop keeps around it.
struct Node {
    instance: Instance,
    filter: ReceiveFilter,
    config: HaConfig,
    master_down_deadline: Option<Instant>,
    advert_deadline: Option<Instant>,
    repeats: RepeatLimiter,
    /// Whether the node left the election because the engine is lost.
    engine_lost: bool,
    /// The address list of every advert sent.
    advert_addresses: Vec<IpAddr>,
}

impl Node {
    fn new(config: HaConfig, settings: &Settings) -> Self {
        let mut vrrp = Config::new(config.vrid, config.local_addr, config.priority);
        vrrp.advert_interval = settings.advert_interval;
        vrrp.preempt = settings.preempt;
        Node {
            instance: Instance::new(vrrp, Instant::now().into_std()),
            filter: ReceiveFilter {
                vrid: config.vrid,
                local_address: config.local_addr,
            },
            config,
            master_down_deadline: None,
            advert_deadline: None,
            repeats: RepeatLimiter::default(),
            engine_lost: false,
            advert_addresses: settings.advert_addresses.clone(),
        }
    }

    fn is_stopped(&self) -> bool {
        matches!(self.instance.state(), HaState::Shutdown | HaState::Error)
    }

    /// Runs the instance until it stops or the engine's configuration
    /// needs a new one.
    async fn run<E: Engine>(
        &mut self,
        engine: &mut E,
        sockets: &VrrpSockets,
        signals: &mut Signals,
    ) -> Outcome {
        while !self.is_stopped() {
            let deadline = self.next_deadline();
            tokio::select! {
                // Signals first, so a busy socket cannot delay a shutdown.
                biased;
                signal = signals.recv() => self.shutdown(engine, sockets, signal),
                packets = sockets.receive() => self.deliver(engine, sockets, packets),
                _ = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                    // An advert that arrived by the deadline goes in before the
                    // expiry, and may re-arm or cancel the timer.
                    let packets = sockets.drain();
                    self.deliver(engine, sockets, packets);
                    self.fire_due_timers(engine, sockets);
                }
                request = engine.next_request() => match request {
                    EngineRequest::Failover => {
                        info!(
                            "failover requested by the engine vrid={} state={}",
                            self.config.vrid,
                            self.instance.state()
                        );
                        self.handle(engine, sockets, Event::FailoverRequested, Cause::Failover);
                    }
                    EngineRequest::ConfigChanged(new) => {
                        if self.reconfigure(engine, sockets, new) {
                            return Outcome::Restart(new);
                        }
                    }
                    EngineRequest::EngineLost => self.leave_for_lost_engine(engine, sockets),
                    EngineRequest::EngineBack => self.rejoin_after_lost_engine(engine, sockets),
                },
            }
        }
        Outcome::Stopped
    }

    /// Applies a new configuration from the engine. Returns true when it
    /// needs a new instance, after stepping down from this one.
    fn reconfigure<E: Engine>(
        &mut self,
        engine: &mut E,
        sockets: &VrrpSockets,
        new: HaConfig,
    ) -> bool {
        let old = self.config;
        if new == old {
            return false;
        }
        info!(
            "HA config changed vrid={}: enabled={} local={} peer={} priority={} vrid={}",
            old.vrid, new.enabled, new.local_addr, new.remote_addr, new.priority, new.vrid
        );

        if old.needs_restart_for(&new) {
            info!("restarting the VRRP instance for the new VRID or address");
            if self.instance.state() != HaState::Disabled {
                self.handle(engine, sockets, Event::Disable, Cause::ConfigChanged);
            }
            return true;
        }

        self.config = new;
        if new.priority != old.priority {
            let running = self.instance.config();
            let event = Event::ConfigChanged {
                priority: new.priority,
                advert_interval: running.advert_interval,
                preempt: running.preempt,
            };
            self.handle(engine, sockets, event, Cause::ConfigChanged);
        }
        if old.enabled && !new.enabled {
            self.handle(engine, sockets, Event::Disable, Cause::ConfigChanged);
        } else if !old.enabled && new.enabled && !self.engine_lost {
            // While the engine is lost, the node rejoins when it is back.
            self.handle(engine, sockets, Event::Start, Cause::ConfigChanged);
        }
        false
    }

    /// Leaves the election because calls to the engine have failed for longer
    /// than the grace period. A master sends its step-down advert, so the
    /// peer takes over at once, and the node waits in DISABLED.
    fn leave_for_lost_engine<E: Engine>(&mut self, engine: &mut E, sockets: &VrrpSockets) {
        if self.engine_lost {
            return;
        }
        self.engine_lost = true;
        if matches!(self.instance.state(), HaState::Backup | HaState::Leader) {
            self.handle(engine, sockets, Event::Disable, Cause::EngineLost);
        }
    }

    /// Rejoins the election as BACKUP once a call to the engine succeeds, unless
    /// the engine's configuration keeps the node disabled.
    fn rejoin_after_lost_engine<E: Engine>(&mut self, engine: &mut E, sockets: &VrrpSockets) {
        if !self.engine_lost {
            return;
        }
        self.engine_lost = false;
        if self.config.enabled && self.instance.state() == HaState::Disabled {
            self.handle(engine, sockets, Event::Start, Cause::EngineBack);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        match (self.master_down_deadline, self.advert_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn shutdown<E: Engine>(&mut self, engine: &mut E, sockets: &VrrpSockets, signal: &'static str) {
        info!("{signal} received; shutting down vrid={}", self.config.vrid);
        self.handle(
            engine,
            sockets,
            Event::ShutdownRequested,
            Cause::Signal(signal),
        );
    }

    /// Passes each packet through the receive filter and hands the adverts
    /// that pass to the instance, in the order read.
    fn deliver<E: Engine>(
        &mut self,
        engine: &mut E,
        sockets: &VrrpSockets,
        packets: Vec<Result<ReceivedPacket, PacketError>>,
    ) {
        for packet in packets {
            let packet = match packet {
                Ok(packet) => packet,
                Err(error) => {
                    self.log_packet_error(&error);
                    continue;
                }
            };
            match self.filter.accept(&packet.datagram()) {
                Ok(advertisement) => {
                    let source = packet.endpoints.source();
                    let event = Event::advert_received(source, &advertisement);
                    let cause = Cause::Advert {
                        source,
                        priority: advertisement.priority,
                    };
                    self.handle(engine, sockets, event, cause);
                }
                Err(ReceiveError::OwnAddress(_)) => {
                    // Our own advert looped back; expected, not an error.
                }
                Err(rejected) => {
                    let kind = match rejected {
                        ReceiveError::HopLimit { .. } => "hop_limit",
                        ReceiveError::Vrid { .. } => "vrid",
                        _ => "decode",
                    };
                    if let Some(suppressed) = self.repeats.allow(kind) {
                        warn!("{rejected}{}", suppressed_note(suppressed));
                    }
                }
            }
        }
    }

    /// Fires every timer whose deadline has passed, earliest first.
    fn fire_due_timers<E: Engine>(&mut self, engine: &mut E, sockets: &VrrpSockets) {
        let now = Instant::now();
        let mut due = Vec::new();
        if let Some(deadline) = self.master_down_deadline.filter(|d| *d <= now) {
            due.push((deadline, Timer::MasterDown));
        }
        if let Some(deadline) = self.advert_deadline.filter(|d| *d <= now) {
            due.push((deadline, Timer::Advert));
        }
        due.sort_by_key(|(deadline, _)| *deadline);

        for (deadline, timer) in due {
            // An earlier timer's actions may have re-armed or cancelled it.
            let still_due = match timer {
                Timer::MasterDown => self.master_down_deadline == Some(deadline),
                Timer::Advert => self.advert_deadline == Some(deadline),
            };
            if !still_due {
                continue;
            }
            match timer {
                Timer::MasterDown => {
                    self.master_down_deadline = None;
                    self.handle(
                        engine,
                        sockets,
                        Event::MasterDownTimerFired,
                        Cause::MasterDownTimer,
                    );
                }
                Timer::Advert => {
                    self.advert_deadline = None;
                    self.handle(engine, sockets, Event::AdvertTimerFired, Cause::AdvertTimer);
                }
            }
        }
    }

    /// Applies one event and carries out its actions in order.
    fn handle<E: Engine>(
        &mut self,
        engine: &mut E,
        sockets: &VrrpSockets,
        event: Event,
        cause: Cause,
    ) {
        let now = Instant::now();
        let actions = self.instance.handle(now.into_std(), event);
        for action in actions {
            match action {
                Action::SendAdvert(mut advertisement) => {
                    advertisement.addresses.clone_from(&self.advert_addresses);
                    if let Err(error) = sockets.send(&advertisement) {
                        self.log_packet_error(&error);
                    }
                }
                Action::ArmTimer { timer, after } => *self.deadline_mut(timer) = Some(now + after),
                Action::CancelTimer(timer) => *self.deadline_mut(timer) = None,
                Action::StateChanged { from, to } => {
                    // Tests and operators match this line; keep its format.
                    info!(
                        "state {from} -> {to} vrid={} peer={} cause=\"{cause}\"",
                        self.config.vrid, self.config.remote_addr
                    );
                    engine.report_state(to, self.instance.counters());
                }
            }
        }
        engine.update_status(self.instance.state(), self.instance.counters());
    }

    fn deadline_mut(&mut self, timer: Timer) -> &mut Option<Instant> {
        match timer {
            Timer::MasterDown => &mut self.master_down_deadline,
            Timer::Advert => &mut self.advert_deadline,
        }
    }

    /// Logs a send or receive failure. The daemon carries on: the next
    /// advert or read is the retry.
    fn log_packet_error(&mut self, error: &PacketError) {
        if let Some(suppressed) = self.repeats.allow(error.kind()) {
            error!(
                "{error} (vrid={}){}",
                self.config.vrid,
                suppressed_note(suppressed)
            );
        } else {
            debug!("{error}");
        }
    }
}

fn suppressed_note(suppressed: u64) -> String {
    if suppressed == 0 {
        String::new()
    } else {
        format!(" ({suppressed} more like it suppressed)")
    }
}

/// Rate limit for log lines of one kind: the first is logged, then at most
/// one per [`REPEAT_LOG_PERIOD`], which states how many were suppressed.
#[derive(Debug, Default)]
struct RepeatLimiter {
    /// Per kind: when it was last logged, and how many were suppressed since.
    kinds: HashMap<&'static str, (Instant, u64)>,
}

impl RepeatLimiter {
    /// Returns the number suppressed since the last line if this one may be
    /// logged, or `None` if it is suppressed.
    fn allow(&mut self, kind: &'static str) -> Option<u64> {
        let now = Instant::now();
        match self.kinds.get_mut(kind) {
            Some((last, suppressed)) if now.duration_since(*last) < REPEAT_LOG_PERIOD => {
                *suppressed += 1;
                None
            }
            Some((last, suppressed)) => {
                let count = *suppressed;
                *last = now;
                *suppressed = 0;
                Some(count)
            }
            None => {
                self.kinds.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advert_addresses_of_local_family() {
        let local: IpAddr = "198.18.0.1".parse().unwrap();
        let v4: IpAddr = "198.18.0.100".parse().unwrap();
        let v6: IpAddr = "2001:db8::100".parse().unwrap();

        assert!(check_advert_addresses(&[], local).is_ok());
        assert!(check_advert_addresses(&[v4], local).is_ok());
        let error = check_advert_addresses(&[v4, v6], local).unwrap_err();
        assert!(
            matches!(error, RunError::AdvertAddressFamily { address, .. } if address == v6),
            "{error}"
        );
    }

    #[test]
    fn repeat_limiter_suppresses_within_period() {
        let mut limiter = RepeatLimiter::default();
        assert_eq!(limiter.allow("send"), Some(0));
        assert_eq!(limiter.allow("send"), None);
        assert_eq!(limiter.allow("send"), None);
        // Another kind has its own budget.
        assert_eq!(limiter.allow("receive"), Some(0));

        // Move the last line of "send" back past the period.
        let entry = limiter.kinds.get_mut("send").unwrap();
        entry.0 -= REPEAT_LOG_PERIOD;
        assert_eq!(limiter.allow("send"), Some(2));
        assert_eq!(limiter.allow("send"), None);
    }
}
