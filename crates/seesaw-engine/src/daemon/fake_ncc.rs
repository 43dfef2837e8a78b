//! An NCC in memory, for tests and the host benchmark: it keeps the
//! state the calls build, counts every call and fails on request.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::IpNet;
use seesaw_config::model::{Vip, VipType, Vlan};
use seesaw_ipc::engine_proto as api;
use seesaw_ipvs::{Destination, Service};

use super::ncc::{
    BgpPeers, BgpPeersReport, IpvsChange, LbOperation, Ncc, NccError, Observed, Result,
};
use crate::kernel::{ServiceId, VserverRules};
use crate::reconcile::ObservedState;

/// State and call counts of the fake NCC.
#[derive(Debug, Clone, Default)]
pub struct FakeState {
    pub services: BTreeMap<ServiceId, (Service, BTreeMap<IpAddr, Destination>)>,
    pub vips: BTreeSet<Vip>,
    pub rules: BTreeMap<(String, IpAddr), VserverRules>,
    pub advertised: BTreeSet<IpAddr>,
    /// The neighbors configured by the last BgpApplyPeers, `None` before
    /// the first or after one without peers.
    pub bgp_peers: Option<BgpPeers>,
    /// BgpApplyPeers calls that reached bgpd.
    pub bgp_peers_calls: u64,
    /// The neighbors that BgpNeighbors returns.
    pub bgp_neighbors: Vec<api::BgpNeighbor>,
    /// Every BGP call fails while set, as when the node has no bgpd.
    pub no_bgpd: bool,
    /// `observe` reports `advertised`, as the gRPC NCC does with anycast
    /// enabled. Off by default, because the fake cannot tell the service
    /// anycast addresses, which `observe` leaves out, from VIPs.
    pub report_advertised: bool,
    /// The VLAN interfaces by id, each with the VLAN it was created for.
    /// A VIP deletion of the node's address on a VLAN takes it off the
    /// interface, as in the kernel: the address leaves the `host` here.
    pub vlans: BTreeMap<u16, Vlan>,
    pub lb_initialised: bool,
    pub lb_up: bool,
    /// Calls that change something, IPVS changes counted one by one.
    pub changes: u64,
    /// Calls of any kind.
    pub calls: u64,
    /// Gratuitous ARP rounds sent.
    pub arp_rounds: u64,
    /// The next this many calls fail.
    pub fail_next: u32,
    /// Every LB interface call fails while set.
    pub fail_lb: bool,
}

/// The fake NCC; clones share one state.
#[derive(Debug, Clone, Default)]
pub struct FakeNcc {
    state: Arc<Mutex<FakeState>>,
}

impl FakeNcc {
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the state for inspection or changes.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().expect("fake NCC state poisoned")
    }

    /// Counts a BGP call like [`FakeNcc::call`], failing it while
    /// [`FakeState::no_bgpd`] is set.
    fn bgp_call(&self, changes: u64) -> Result<MutexGuard<'_, FakeState>> {
        let state = self.call(changes)?;
        if state.no_bgpd {
            return Err(NccError(
                "fake NCC: failed to connect to bgpd (injected)".into(),
            ));
        }
        Ok(state)
    }

    /// Counts a call, failing it when failures are due.
    fn call(&self, changes: u64) -> Result<MutexGuard<'_, FakeState>> {
        let mut state = self.state();
        state.calls += 1;
        if state.fail_next > 0 {
            state.fail_next -= 1;
            return Err(NccError("fake NCC: injected failure".into()));
        }
        state.changes += changes;
        Ok(state)
    }
}

fn apply(state: &mut FakeState, change: IpvsChange) -> std::result::Result<(), String> {
    match change {
        IpvsChange::AddService(service) | IpvsChange::UpdateService(service) => {
            let entry = state
                .services
                .entry(ServiceId::from_key(&service.key))
                .or_insert_with(|| (service.clone(), BTreeMap::new()));
            entry.0 = service;
        }
        IpvsChange::DeleteService(key) => {
            state.services.remove(&ServiceId::from_key(&key));
        }
        IpvsChange::AddDestination(key, destination)
        | IpvsChange::UpdateDestination(key, destination) => {
            let (_, destinations) = state
                .services
                .get_mut(&ServiceId::from_key(&key))
                .ok_or_else(|| format!("no service {key}"))?;
            destinations.insert(destination.address.ip(), destination);
        }
        IpvsChange::DeleteDestination(key, destination) => {
            if let Some((_, destinations)) = state.services.get_mut(&ServiceId::from_key(&key)) {
                destinations.remove(&destination.address.ip());
            }
        }
    }
    Ok(())
}

impl Ncc for FakeNcc {
    async fn lb(&self, operation: LbOperation) -> Result<()> {
        let mut state = self.call(1)?;
        if state.fail_lb {
            return Err(NccError(
                "fake NCC: LB interface call failed (injected)".into(),
            ));
        }
        match operation {
            LbOperation::Init => {
                state.lb_initialised = true;
                state.lb_up = false;
            }
            LbOperation::Up => state.lb_up = true,
            LbOperation::Down => state.lb_up = false,
        }
        Ok(())
    }

    async fn prepare(&self) -> Result<bool> {
        Ok(self.call(0)?.lb_initialised)
    }

    async fn ipvs(&self, changes: Vec<IpvsChange>) -> Result<Vec<(usize, String)>> {
        let mut state = self.call(changes.len() as u64)?;
        let mut failures = Vec::new();
        for (index, change) in changes.into_iter().enumerate() {
            if let Err(error) = apply(&mut state, change) {
                failures.push((index, error));
            }
        }
        Ok(failures)
    }

    async fn vips(&self, changes: Vec<(Vip, bool)>) -> Result<Vec<(usize, String)>> {
        let mut state = self.call(changes.len() as u64)?;
        for (vip, add) in changes {
            if add {
                state.vips.insert(vip);
                continue;
            }
            state.vips.remove(&vip);
            for vlan in state.vlans.values_mut() {
                let host = &mut vlan.host;
                if host.ipv4.map(|net| IpAddr::V4(net.addr())) == Some(vip.ip) {
                    host.ipv4 = None;
                }
                if host.ipv6.map(|net| IpAddr::V6(net.addr())) == Some(vip.ip) {
                    host.ipv6 = None;
                }
            }
        }
        Ok(Vec::new())
    }

    async fn rules(&self, rules: VserverRules, add: bool) -> Result<()> {
        let mut state = self.call(1)?;
        let key = (rules.vserver.clone(), rules.address);
        if add {
            state.rules.insert(key, rules);
        } else {
            state.rules.remove(&key);
        }
        Ok(())
    }

    async fn rules_batch(
        &self,
        changes: Vec<(VserverRules, bool)>,
    ) -> Result<Vec<(usize, String)>> {
        let mut state = self.call(changes.len() as u64)?;
        for (rules, add) in changes {
            let key = (rules.vserver.clone(), rules.address);
            if add {
                state.rules.insert(key, rules);
            } else {
                state.rules.remove(&key);
            }
        }
        Ok(Vec::new())
    }

    async fn bgp(&self, ip: IpAddr, advertise: bool) -> Result<()> {
        let mut state = self.bgp_call(1)?;
        if advertise {
            state.advertised.insert(ip);
        } else {
            state.advertised.remove(&ip);
        }
        Ok(())
    }

    async fn bgp_peers(&self, peers: BgpPeers) -> Result<BgpPeersReport> {
        let mut state = self.bgp_call(1)?;
        state.bgp_peers_calls += 1;
        let configured = (!peers.peers.is_empty()).then_some(peers);
        if state.bgp_peers == configured {
            return Ok(BgpPeersReport::default());
        }
        state.bgp_peers = configured;
        Ok(BgpPeersReport {
            commands: vec!["configure terminal".to_owned(), "end".to_owned()],
            skipped: Vec::new(),
        })
    }

    async fn bgp_neighbors(&self) -> Result<Vec<api::BgpNeighbor>> {
        Ok(self.bgp_call(0)?.bgp_neighbors.clone())
    }

    async fn add_vlan(&self, vlan: Vlan) -> Result<()> {
        self.call(1)?.vlans.insert(vlan.id, vlan);
        Ok(())
    }

    /// Deletes the VLAN interface and, as in the kernel, the unicast VIPs
    /// on it: those inside its networks.
    async fn delete_vlan(&self, id: u16) -> Result<()> {
        let mut state = self.call(1)?;
        if let Some(vlan) = state.vlans.remove(&id) {
            state.vips.retain(|vip| {
                vip.vip_type != VipType::Unicast
                    || !vlan.host.addresses().any(|net| net.contains(&vip.ip))
            });
        }
        Ok(())
    }

    async fn gratuitous_arp(&self, _targets: BTreeMap<String, Vec<IpAddr>>) -> Result<()> {
        let mut state = self.call(0)?;
        state.arp_rounds += 1;
        Ok(())
    }

    async fn ipvs_services(&self) -> Result<Vec<(Service, Vec<Destination>)>> {
        let state = self.call(0)?;
        Ok(listing(&state))
    }

    async fn observe(&self) -> Result<Observed> {
        let state = self.call(0)?;
        // The real NCC cannot tell anycast from dedicated VIPs on the
        // dummy interface, nor read rules back. It lists the node's address
        // on each VLAN with the VIPs.
        let mut vips: BTreeSet<Vip> = state
            .vips
            .iter()
            .map(|vip| Vip {
                ip: vip.ip,
                vip_type: match vip.vip_type {
                    VipType::Unicast => VipType::Unicast,
                    _ => VipType::Anycast,
                },
            })
            .collect();
        let mut vlans = BTreeMap::new();
        for (id, vlan) in &state.vlans {
            let addresses: BTreeSet<IpNet> = vlan.host.addresses().collect();
            vips.extend(addresses.iter().map(|net| Vip {
                ip: net.addr(),
                vip_type: VipType::Unicast,
            }));
            vlans.insert(*id, addresses);
        }
        Ok(Observed {
            state: ObservedState {
                services: listing(&state),
                vips,
                rules: None,
                advertised: state.report_advertised.then(|| state.advertised.clone()),
            },
            lb_initialised: state.lb_initialised,
            lb_up: state.lb_up,
            vlans,
        })
    }
}

fn listing(state: &FakeState) -> Vec<(Service, Vec<Destination>)> {
    state
        .services
        .values()
        .map(|(service, destinations)| (service.clone(), destinations.values().cloned().collect()))
        .collect()
}
