//! The kernel-facing state the engine wants (IPVS services, VIPs, iptables
//! rules, BGP advertisements), the actions that change it, and the diff
//! between two such states.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use seesaw_config::model::{ForwardingMode, Protocol, Vip};
use seesaw_ipvs::{AddressFamily, Destination, Service, ServiceKey};

use crate::checks::{Probe, ProbeId};

/// An address family, ordered IPv4 first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Returns `0.0.0.0` or `::`, the address of fwmark services.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }

    fn ipvs(self) -> AddressFamily {
        match self {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        }
    }
}

/// Returns the IP protocol number of a vserver entry's protocol.
pub fn protocol_number(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

/// The identity of an IPVS service, ordered so that every listing and
/// action list comes out in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceId {
    Inet {
        address: IpAddr,
        protocol: u16,
        port: u16,
    },
    Fwmark {
        family: Family,
        mark: u32,
    },
}

impl ServiceId {
    /// Returns the kernel's key for this service.
    pub fn key(&self) -> ServiceKey {
        match *self {
            ServiceId::Inet {
                address,
                protocol,
                port,
            } => ServiceKey::Inet {
                protocol: seesaw_ipvs::Protocol(protocol),
                address: SocketAddr::new(address, port),
            },
            ServiceId::Fwmark { family, mark } => ServiceKey::fwmark(family.ipvs(), mark),
        }
    }

    /// Converts a key read back from the kernel.
    pub fn from_key(key: &ServiceKey) -> Self {
        match *key {
            ServiceKey::Inet { protocol, address } => ServiceId::Inet {
                address: address.ip(),
                protocol: protocol.0,
                port: address.port(),
            },
            ServiceKey::Fwmark { family, mark } => ServiceId::Fwmark {
                family: match family {
                    AddressFamily::Inet => Family::V4,
                    AddressFamily::Inet6 => Family::V6,
                },
                mark,
            },
        }
    }
}

/// An IPVS service with its destinations keyed by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelService {
    pub service: Service,
    pub destinations: BTreeMap<IpAddr, Destination>,
}

/// One port of a vserver as the NCC's iptables rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleEntry {
    pub protocol: Protocol,
    pub port: u16,
    pub mode: ForwardingMode,
}

/// The iptables rules the NCC installs for one address of one vserver
/// (`AddVserverRules`). The NCC cannot change them in place, so any change
/// is a delete followed by an add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VserverRules {
    pub vserver: String,
    pub address: IpAddr,
    /// Mark of an fwmark vserver in this family; 0 for none.
    pub fwmark: u32,
    pub entries: Vec<RuleEntry>,
}

/// Everything the engine programs through the NCC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelState {
    pub services: BTreeMap<ServiceId, KernelService>,
    pub vips: BTreeSet<Vip>,
    /// Rules keyed by vserver name and address.
    pub rules: BTreeMap<(String, IpAddr), VserverRules>,
    /// Anycast VIPs advertised over BGP.
    pub advertised: BTreeSet<IpAddr>,
}

impl KernelState {
    /// Returns whether the state is empty.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.vips.is_empty()
            && self.rules.is_empty()
            && self.advertised.is_empty()
    }
}

/// One change for the NCC or the healthcheck component to carry out, in
/// the order returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    WithdrawVip(IpAddr),
    DeleteVip(Vip),
    DeleteVserverRules(VserverRules),
    DeleteDestination {
        service: ServiceKey,
        destination: Destination,
    },
    /// Deletes the service together with its destinations.
    DeleteService(ServiceKey),
    AddVserverRules(VserverRules),
    AddVip(Vip),
    AddService(Service),
    UpdateService(Service),
    AddDestination {
        service: ServiceKey,
        destination: Destination,
    },
    UpdateDestination {
        service: ServiceKey,
        destination: Destination,
    },
    AdvertiseVip(IpAddr),
    /// Stops a health check; its results are no longer wanted.
    StopCheck(ProbeId),
    /// Starts a health check whose results come back as
    /// [`crate::Event::CheckResult`].
    StartCheck(Probe),
}

/// Computes the actions that turn `old` into `new`. Teardown comes first
/// (BGP withdraw, VIPs, rules, destinations, services), then setup in the
/// reverse order, so a VIP is never advertised before its services exist.
/// Services and destinations compare by their settings, not counters.
pub fn diff(old: &KernelState, new: &KernelState) -> Vec<Action> {
    Changes::between(old, new).actions(new)
}

/// The keys of a [`KernelState`] that may have changed, each with its value
/// before the first change. [`Changes::actions`] computes the same actions
/// as [`diff`] from these keys alone, so an update that touches a few keys
/// of a large state costs in proportion to those keys. A key recorded
/// whose value did not change in the end yields no action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes<'a> {
    /// Whether each advertised VIP was advertised before.
    advertised: BTreeMap<IpAddr, bool>,
    /// Whether each VIP was configured before.
    vips: BTreeMap<Vip, bool>,
    rules: BTreeMap<(String, IpAddr), Option<Cow<'a, VserverRules>>>,
    services: BTreeMap<ServiceId, Option<Cow<'a, KernelService>>>,
}

impl<'a> Changes<'a> {
    /// Records every key of `old` and `new`, borrowing the old values.
    pub fn between(old: &'a KernelState, new: &KernelState) -> Self {
        let mut changes = Changes::default();
        for ip in &old.advertised {
            changes.advertised.insert(*ip, true);
        }
        for ip in &new.advertised {
            changes.advertised.entry(*ip).or_insert(false);
        }
        for vip in &old.vips {
            changes.vips.insert(*vip, true);
        }
        for vip in &new.vips {
            changes.vips.entry(*vip).or_insert(false);
        }
        for (key, rules) in &old.rules {
            changes
                .rules
                .insert(key.clone(), Some(Cow::Borrowed(rules)));
        }
        for key in new.rules.keys() {
            changes.rules.entry(key.clone()).or_insert(None);
        }
        for (id, service) in &old.services {
            changes.services.insert(*id, Some(Cow::Borrowed(service)));
        }
        for id in new.services.keys() {
            changes.services.entry(*id).or_insert(None);
        }
        changes
    }

    /// Returns whether no key was recorded.
    pub fn is_empty(&self) -> bool {
        self.advertised.is_empty()
            && self.vips.is_empty()
            && self.rules.is_empty()
            && self.services.is_empty()
    }

    /// Records that `ip` was advertised (`was`) or not before its first change.
    pub fn record_advertised(&mut self, ip: IpAddr, was: bool) {
        self.advertised.entry(ip).or_insert(was);
    }

    /// Records whether `vip` was configured before its first change.
    pub fn record_vip(&mut self, vip: Vip, was: bool) {
        self.vips.entry(vip).or_insert(was);
    }

    /// Records the rules under `key` before their first change.
    pub fn record_rules(&mut self, key: (String, IpAddr), old: Option<VserverRules>) {
        self.rules.entry(key).or_insert(old.map(Cow::Owned));
    }

    /// Records the service `id` before its first change.
    pub fn record_service(&mut self, id: ServiceId, old: Option<KernelService>) {
        self.services.entry(id).or_insert(old.map(Cow::Owned));
    }

    /// Computes the actions that turn the recorded old values into the
    /// values that `new` has under the same keys, in the order of [`diff`].
    pub fn actions(&self, new: &KernelState) -> Vec<Action> {
        let mut actions = Vec::new();

        for (ip, was) in &self.advertised {
            if *was && !new.advertised.contains(ip) {
                actions.push(Action::WithdrawVip(*ip));
            }
        }
        for (vip, was) in &self.vips {
            if *was && !new.vips.contains(vip) {
                actions.push(Action::DeleteVip(*vip));
            }
        }
        for (key, old_rules) in &self.rules {
            let Some(old_rules) = old_rules else {
                continue;
            };
            if new.rules.get(key) != Some(old_rules.as_ref()) {
                actions.push(Action::DeleteVserverRules(old_rules.as_ref().clone()));
            }
        }
        for (id, old_service) in &self.services {
            let Some(old_service) = old_service else {
                continue;
            };
            let Some(new_service) = new.services.get(id) else {
                actions.push(Action::DeleteService(id.key()));
                continue;
            };
            for (address, destination) in &old_service.destinations {
                if !new_service.destinations.contains_key(address) {
                    actions.push(Action::DeleteDestination {
                        service: id.key(),
                        destination: destination.clone(),
                    });
                }
            }
        }

        for (key, old_rules) in &self.rules {
            let Some(new_rules) = new.rules.get(key) else {
                continue;
            };
            if old_rules.as_deref() != Some(new_rules) {
                actions.push(Action::AddVserverRules(new_rules.clone()));
            }
        }
        for (vip, was) in &self.vips {
            if !*was && new.vips.contains(vip) {
                actions.push(Action::AddVip(*vip));
            }
        }
        for (id, old_service) in &self.services {
            let Some(new_service) = new.services.get(id) else {
                continue;
            };
            service_setup(&mut actions, *id, old_service.as_deref(), new_service);
        }
        for (ip, was) in &self.advertised {
            if !*was && new.advertised.contains(ip) {
                actions.push(Action::AdvertiseVip(*ip));
            }
        }
        actions
    }
}

/// Appends the actions that add or update service `id` and its
/// destinations from `old` to `new`.
fn service_setup(
    actions: &mut Vec<Action>,
    id: ServiceId,
    old: Option<&KernelService>,
    new: &KernelService,
) {
    match old {
        None => actions.push(Action::AddService(new.service.clone())),
        Some(old) if !old.service.same_settings(&new.service) => {
            actions.push(Action::UpdateService(new.service.clone()))
        }
        Some(_) => {}
    }
    for (address, destination) in &new.destinations {
        let old_destination = old.and_then(|s| s.destinations.get(address));
        match old_destination {
            None => actions.push(Action::AddDestination {
                service: id.key(),
                destination: destination.clone(),
            }),
            Some(old_destination) if !old_destination.same_settings(destination) => {
                actions.push(Action::UpdateDestination {
                    service: id.key(),
                    destination: destination.clone(),
                })
            }
            Some(_) => {}
        }
    }
}

/// Applies `actions` to `state` as the NCC would, ignoring the health check
/// actions. Used to check that a diff converges and to track a simulated
/// kernel in tests.
pub fn apply(state: &mut KernelState, actions: &[Action]) {
    for action in actions {
        match action {
            Action::WithdrawVip(ip) => {
                state.advertised.remove(ip);
            }
            Action::AdvertiseVip(ip) => {
                state.advertised.insert(*ip);
            }
            Action::DeleteVip(vip) => {
                state.vips.remove(vip);
            }
            Action::AddVip(vip) => {
                state.vips.insert(*vip);
            }
            Action::DeleteVserverRules(rules) => {
                state.rules.remove(&(rules.vserver.clone(), rules.address));
            }
            Action::AddVserverRules(rules) => {
                state
                    .rules
                    .insert((rules.vserver.clone(), rules.address), rules.clone());
            }
            Action::DeleteService(key) => {
                state.services.remove(&ServiceId::from_key(key));
            }
            Action::AddService(service) | Action::UpdateService(service) => {
                let entry = state
                    .services
                    .entry(ServiceId::from_key(&service.key))
                    .or_insert_with(|| KernelService {
                        service: service.clone(),
                        destinations: BTreeMap::new(),
                    });
                entry.service = service.clone();
            }
            Action::DeleteDestination {
                service,
                destination,
            } => {
                if let Some(entry) = state.services.get_mut(&ServiceId::from_key(service)) {
                    entry.destinations.remove(&destination.address.ip());
                }
            }
            Action::AddDestination {
                service,
                destination,
            }
            | Action::UpdateDestination {
                service,
                destination,
            } => {
                if let Some(entry) = state.services.get_mut(&ServiceId::from_key(service)) {
                    entry
                        .destinations
                        .insert(destination.address.ip(), destination.clone());
                }
            }
            Action::StopCheck(_) | Action::StartCheck(_) => {}
        }
    }
}
