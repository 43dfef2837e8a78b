//! Scenarios of two or more nodes in virtual time.
//!
//! Each node is an [`Instance`] whose timers and adverts run on a simulated
//! clock. Adverts are encoded, carried over a simulated link with a fixed
//! delay and passed through the receive filter, so the scenarios exercise
//! the codec as well. No sockets are involved.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU8;
use std::time::{Duration, Instant};

use seesaw_vrrp::packet::IPV4_MULTICAST_GROUP;
use seesaw_vrrp::{
    Action, Advertisement, Config, Datagram, Endpoints, Event, HaState, Instance, ReceiveFilter,
    Timer,
};

const VRID: u8 = 128;
/// One-way delay of the simulated link.
const LINK_DELAY: Duration = Duration::from_millis(1);
const INTERVAL: Duration = Duration::from_millis(500);

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn ns(nanos: u64) -> Duration {
    Duration::from_nanos(nanos)
}

struct Node {
    address: Ipv4Addr,
    config: Config,
    /// `None` while the node's daemon is not running.
    instance: Option<Instance>,
    /// Deadline of each armed timer, in virtual time.
    timers: BTreeMap<TimerKey, Duration>,
    /// Every state change with its virtual time.
    changes: Vec<(Duration, HaState)>,
    /// Priorities of the adverts sent, with their virtual time.
    sent: Vec<(Duration, u8)>,
}

/// [`Timer`] with an order, as a map key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKey {
    MasterDown,
    Advert,
}

impl From<Timer> for TimerKey {
    fn from(timer: Timer) -> Self {
        match timer {
            Timer::MasterDown => TimerKey::MasterDown,
            Timer::Advert => TimerKey::Advert,
        }
    }
}

struct InFlight {
    deliver_at: Duration,
    to: usize,
    source: Ipv4Addr,
    payload: Vec<u8>,
}

struct Simulation {
    base: Instant,
    now: Duration,
    nodes: Vec<Node>,
    in_flight: Vec<InFlight>,
    link_up: bool,
}

impl Simulation {
    /// Creates nodes of the given address and priority, none running yet.
    fn new(nodes: &[(&str, u8)]) -> Self {
        let nodes = nodes
            .iter()
            .map(|&(address, priority)| {
                let address: Ipv4Addr = address.parse().unwrap();
                Node {
                    address,
                    config: Config::new(
                        NonZeroU8::new(VRID).unwrap(),
                        IpAddr::V4(address),
                        NonZeroU8::new(priority).unwrap(),
                    ),
                    instance: None,
                    timers: BTreeMap::new(),
                    changes: Vec::new(),
                    sent: Vec::new(),
                }
            })
            .collect();
        Simulation {
            base: Instant::now(),
            now: Duration::ZERO,
            nodes,
            in_flight: Vec::new(),
            link_up: true,
        }
    }

    fn set_preempt(&mut self, node: usize, preempt: bool) {
        self.nodes[node].config.preempt = preempt;
    }

    /// Starts a node's daemon with a new instance, as after a restart.
    fn start(&mut self, node: usize) {
        let instance = Instance::new(self.nodes[node].config, self.base + self.now);
        self.nodes[node].instance = Some(instance);
        self.deliver(node, Event::Start);
    }

    /// Stops a node's daemon without a word, as a crash or power loss does.
    fn kill(&mut self, node: usize) {
        self.nodes[node].instance = None;
        self.nodes[node].timers.clear();
    }

    /// Stops a node's daemon gracefully.
    fn shut_down(&mut self, node: usize) {
        self.deliver(node, Event::ShutdownRequested);
        assert_eq!(self.state(node), Some(HaState::Shutdown));
        self.kill(node);
    }

    fn state(&self, node: usize) -> Option<HaState> {
        self.nodes[node].instance.as_ref().map(Instance::state)
    }

    /// Returns the virtual time of the node's last change to `state`.
    fn last_change_to(&self, node: usize, state: HaState) -> Duration {
        self.nodes[node]
            .changes
            .iter()
            .rev()
            .find(|(_, to)| *to == state)
            .map(|(at, _)| *at)
            .unwrap_or_else(|| panic!("node {node} never entered {state}"))
    }

    fn leaders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&node| self.state(node) == Some(HaState::Leader))
            .collect()
    }

    /// Hands `event` to a running node and carries out its actions now.
    fn deliver(&mut self, node: usize, event: Event) {
        let now = self.base + self.now;
        let Some(instance) = self.nodes[node].instance.as_mut() else {
            return;
        };
        let actions = instance.handle(now, event);
        for action in actions {
            self.perform(node, action);
        }
    }

    fn perform(&mut self, node: usize, action: Action) {
        match action {
            Action::SendAdvert(advert) => self.send(node, &advert),
            Action::ArmTimer { timer, after } => {
                self.nodes[node]
                    .timers
                    .insert(timer.into(), self.now + after);
            }
            Action::CancelTimer(timer) => {
                self.nodes[node].timers.remove(&timer.into());
            }
            Action::StateChanged { to, .. } => self.nodes[node].changes.push((self.now, to)),
        }
    }

    fn send(&mut self, node: usize, advert: &Advertisement) {
        let source = self.nodes[node].address;
        self.nodes[node].sent.push((self.now, advert.priority));
        let endpoints = Endpoints::V4 {
            source,
            destination: IPV4_MULTICAST_GROUP,
        };
        let payload = advert.encode(&endpoints).unwrap();
        if !self.link_up {
            return;
        }
        for to in 0..self.nodes.len() {
            if to != node {
                self.in_flight.push(InFlight {
                    deliver_at: self.now + LINK_DELAY,
                    to,
                    source,
                    payload: payload.clone(),
                });
            }
        }
    }

    /// Runs every packet delivery and timer due up to `until`, in time
    /// order. At equal times packets go first, as the daemon must order
    /// them.
    fn run_until(&mut self, until: Duration) {
        loop {
            let packet = self
                .in_flight
                .iter()
                .enumerate()
                .min_by_key(|(_, packet)| packet.deliver_at)
                .map(|(index, packet)| (packet.deliver_at, index));
            let timer = self
                .nodes
                .iter()
                .enumerate()
                .flat_map(|(node, n)| n.timers.iter().map(move |(key, at)| (*at, node, *key)))
                .min();

            match (packet, timer) {
                (Some((at, index)), timer) if at <= until && timer.is_none_or(|t| at <= t.0) => {
                    self.now = at;
                    let packet = self.in_flight.remove(index);
                    self.receive(packet);
                }
                (_, Some((at, node, key))) if at <= until => {
                    self.now = at;
                    self.nodes[node].timers.remove(&key);
                    let event = match key {
                        TimerKey::MasterDown => Event::MasterDownTimerFired,
                        TimerKey::Advert => Event::AdvertTimerFired,
                    };
                    self.deliver(node, event);
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn receive(&mut self, packet: InFlight) {
        let node = &self.nodes[packet.to];
        let filter = ReceiveFilter {
            vrid: node.config.vrid,
            local_address: IpAddr::V4(node.address),
        };
        let datagram = Datagram {
            endpoints: Endpoints::V4 {
                source: packet.source,
                destination: IPV4_MULTICAST_GROUP,
            },
            hop_limit: 255,
            payload: &packet.payload,
        };
        let advert = filter.accept(&datagram).unwrap();
        let event = Event::advert_received(IpAddr::V4(packet.source), &advert);
        self.deliver(packet.to, event);
    }
}

/// Creates a pair as Seesaw configures it: the lower address gets priority
/// 255 and the other priority 1.
fn seesaw_pair() -> Simulation {
    Simulation::new(&[("10.0.0.1", 255), ("10.0.0.2", 1)])
}

/// Starts both nodes of a Seesaw pair at once and runs until `until`.
fn running_pair(until: Duration) -> Simulation {
    let mut sim = seesaw_pair();
    sim.start(0);
    sim.start(1);
    sim.run_until(until);
    sim
}

/// Master-down interval at 500 ms for priority 255.
const MASTER_DOWN_255: Duration = Duration::from_nanos(1_501_953_125);
/// Master-down interval at 500 ms for priority 1.
const MASTER_DOWN_1: Duration = Duration::from_nanos(1_998_046_875);

#[test]
fn single_node_becomes_leader() {
    let mut sim = Simulation::new(&[("10.0.0.1", 100)]);
    sim.start(0);
    sim.run_until(ns(1_804_687_499));
    assert_eq!(sim.state(0), Some(HaState::Backup));
    sim.run_until(ns(1_804_687_500));
    assert_eq!(sim.state(0), Some(HaState::Leader));
    assert_eq!(sim.nodes[0].sent, vec![(ns(1_804_687_500), 100)]);
}

#[test]
fn election_higher_priority_wins() {
    let sim = running_pair(ms(10_000));

    assert_eq!(sim.state(0), Some(HaState::Leader));
    assert_eq!(sim.state(1), Some(HaState::Backup));
    assert_eq!(sim.last_change_to(0, HaState::Leader), MASTER_DOWN_255);
    assert_eq!(
        sim.nodes[1].changes,
        vec![(Duration::ZERO, HaState::Backup)]
    );

    // The first advert goes out on becoming master, then one per interval.
    let sent: Vec<Duration> = sim.nodes[0].sent.iter().map(|(at, _)| *at).collect();
    assert_eq!(sent.len(), 17);
    for (index, at) in sent.iter().enumerate() {
        assert_eq!(*at, MASTER_DOWN_255 + INTERVAL * index as u32);
    }
    assert!(sim.nodes[1].sent.is_empty());

    let counters = sim.nodes[1].instance.as_ref().unwrap().counters();
    assert_eq!(counters.adverts_received, 17);
    assert_eq!(counters.transitions, 1);
}

#[test]
fn election_order_of_start() {
    // The backup-priority node starts first and wins the empty segment. The
    // higher-priority node joining later does not take over without
    // preemption.
    let mut sim = seesaw_pair();
    sim.start(1);
    sim.run_until(ms(5_000));
    assert_eq!(sim.state(1), Some(HaState::Leader));

    sim.start(0);
    sim.run_until(ms(20_000));
    assert_eq!(sim.state(0), Some(HaState::Backup));
    assert_eq!(sim.state(1), Some(HaState::Leader));
}

#[test]
fn dead_master_taken_over() {
    let mut sim = running_pair(ms(10_000));
    sim.kill(0);
    let last_advert = sim.nodes[0].sent.last().unwrap().0;

    sim.run_until(ms(15_000));
    assert_eq!(sim.state(1), Some(HaState::Leader));
    assert_eq!(
        sim.last_change_to(1, HaState::Leader),
        last_advert + LINK_DELAY + MASTER_DOWN_1
    );
}

#[test]
fn graceful_shutdown_takeover_at_once() {
    let mut sim = running_pair(ms(10_200));
    sim.shut_down(0);
    assert_eq!(sim.nodes[0].sent.last(), Some(&(ms(10_200), 0)));

    sim.run_until(ms(15_000));
    assert_eq!(sim.state(1), Some(HaState::Leader));
    // The backup becomes master as the step-down advert arrives and
    // advertises in the same instant.
    let takeover = ms(10_200) + LINK_DELAY;
    assert_eq!(sim.last_change_to(1, HaState::Leader), takeover);
    assert_eq!(sim.nodes[1].sent.first(), Some(&(takeover, 1)));
}

#[test]
fn failover_hands_over_to_backup() {
    let mut sim = running_pair(ms(10_200));
    sim.deliver(0, Event::FailoverRequested);
    assert_eq!(sim.state(0), Some(HaState::Backup));
    assert_eq!(sim.nodes[0].sent.last(), Some(&(ms(10_200), 0)));

    sim.run_until(ms(20_000));
    assert_eq!(sim.state(0), Some(HaState::Backup));
    assert_eq!(sim.state(1), Some(HaState::Leader));
    assert_eq!(
        sim.last_change_to(1, HaState::Leader),
        ms(10_200) + LINK_DELAY
    );
}

#[test]
fn link_cut_then_healed() {
    let mut sim = running_pair(ms(10_000));
    let last_heard = sim.nodes[0].sent.last().unwrap().0 + LINK_DELAY;

    sim.link_up = false;
    sim.run_until(ms(15_000));
    assert_eq!(sim.leaders(), vec![0, 1]);
    assert_eq!(
        sim.last_change_to(1, HaState::Leader),
        last_heard + MASTER_DOWN_1
    );

    // On healing, the priority-255 master ignores the other's adverts and
    // the priority-1 master yields to its first advert.
    let changes_before = sim.nodes[0].changes.len();
    sim.link_up = true;
    sim.run_until(ms(15_600));
    assert_eq!(sim.leaders(), vec![0]);
    assert_eq!(sim.state(1), Some(HaState::Backup));
    assert_eq!(sim.nodes[0].changes.len(), changes_before);

    // And it stays that way.
    sim.run_until(ms(30_000));
    assert_eq!(sim.leaders(), vec![0]);
}

/// Restarts the higher-priority node while the other is master, and runs
/// on for 18 s.
fn restart_higher_priority(preempt: bool) -> Simulation {
    let mut sim = seesaw_pair();
    sim.set_preempt(0, preempt);
    sim.set_preempt(1, preempt);
    sim.start(0);
    sim.start(1);
    sim.run_until(ms(10_000));
    sim.shut_down(0);
    sim.run_until(ms(12_000));
    assert_eq!(sim.leaders(), vec![1]);

    sim.start(0);
    sim.run_until(ms(30_000));
    sim
}

#[test]
fn restart_without_preempt() {
    let sim = restart_higher_priority(false);
    assert_eq!(sim.state(0), Some(HaState::Backup));
    assert_eq!(sim.state(1), Some(HaState::Leader));
}

#[test]
fn restart_with_preempt() {
    let sim = restart_higher_priority(true);
    assert_eq!(sim.state(0), Some(HaState::Leader));
    assert_eq!(sim.state(1), Some(HaState::Backup));

    // The restarted node ignores the lower master's adverts until its
    // master-down timer fires, then the lower master yields on its advert.
    let takeover = ms(12_000) + MASTER_DOWN_255;
    assert_eq!(sim.last_change_to(0, HaState::Leader), takeover);
    assert_eq!(
        sim.last_change_to(1, HaState::Backup),
        takeover + LINK_DELAY
    );
}

#[test]
fn equal_priority_higher_address_wins() {
    let mut sim = Simulation::new(&[("10.0.0.1", 100), ("10.0.0.2", 100)]);
    sim.start(0);
    sim.start(1);
    sim.run_until(ms(10_000));

    // Both time out together and become master. The lower address yields
    // to the other's first advert.
    assert_eq!(sim.leaders(), vec![1]);
    assert_eq!(
        sim.nodes[0].changes,
        vec![
            (Duration::ZERO, HaState::Backup),
            (ns(1_804_687_500), HaState::Leader),
            (ns(1_804_687_500) + LINK_DELAY, HaState::Backup),
        ]
    );
}

#[test]
fn equal_priority_split_brain_heals() {
    let mut sim = Simulation::new(&[("10.0.0.1", 100), ("10.0.0.2", 100)]);
    sim.start(1);
    sim.run_until(ms(5_000));
    sim.start(0);
    sim.run_until(ms(10_000));
    assert_eq!(sim.leaders(), vec![1]);

    sim.link_up = false;
    sim.run_until(ms(15_000));
    assert_eq!(sim.leaders(), vec![0, 1]);

    sim.link_up = true;
    sim.run_until(ms(15_600));
    assert_eq!(sim.leaders(), vec![1]);
}

/// RFC 5798 breaks ties between masters only: a backup does not take over
/// from a master of equal priority, whatever the addresses.
#[test]
fn equal_priority_sitting_master_stays() {
    let mut sim = Simulation::new(&[("10.0.0.1", 100), ("10.0.0.2", 100)]);
    sim.start(0);
    sim.run_until(ms(3_000));
    assert_eq!(sim.leaders(), vec![0]);

    sim.start(1);
    sim.run_until(ms(20_000));
    assert_eq!(sim.leaders(), vec![0]);
    assert_eq!(sim.state(1), Some(HaState::Backup));
}

#[test]
fn master_reasserts_after_other_steps_down() {
    // Two masters during a split. When the lower one shuts down gracefully,
    // the remaining master sends an advert as soon as the step-down arrives.
    let mut sim = seesaw_pair();
    sim.start(0);
    sim.link_up = false;
    sim.start(1);
    sim.run_until(ms(5_000));
    sim.link_up = true;
    sim.shut_down(1);
    let sent_before = sim.nodes[0].sent.len();
    sim.run_until(ms(5_000) + LINK_DELAY);
    assert_eq!(sim.nodes[0].sent.len(), sent_before + 1);
    assert_eq!(
        sim.nodes[0].sent.last(),
        Some(&(ms(5_000) + LINK_DELAY, 255))
    );
}

/// With two backups, both take over on the step-down advert, and the one of
/// lower priority yields to the other's first advert one link delay later.
#[test]
fn step_down_with_two_backups_converges() {
    let mut sim = Simulation::new(&[("10.0.0.1", 255), ("10.0.0.2", 100), ("10.0.0.3", 50)]);
    sim.start(0);
    sim.run_until(ms(3_000));
    sim.start(1);
    sim.start(2);
    sim.run_until(ms(10_000));
    assert_eq!(sim.leaders(), vec![0]);

    sim.shut_down(0);
    let takeover = ms(10_000) + LINK_DELAY;
    sim.run_until(takeover);
    assert_eq!(sim.leaders(), vec![1, 2]);

    sim.run_until(ms(20_000));
    assert_eq!(sim.leaders(), vec![1]);
    assert_eq!(
        sim.last_change_to(2, HaState::Backup),
        takeover + LINK_DELAY
    );
}
