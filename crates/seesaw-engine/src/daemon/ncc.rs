//! The NCC operations the engine uses, as a trait: the daemon talks to the
//! real `seesaw_ncc` over gRPC, tests and benchmarks to a fake that
//! counts operations.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use ipnet::IpNet;
use seesaw_config::model::{AnycastRanges, ForwardingMode, Vip, VipType, Vlan};
use seesaw_config::node_config::NodeConfig;
use seesaw_ipc::{NccClient, ipvs as convert};
use seesaw_ipc::{engine_proto as api, proto};
use seesaw_ipvs::{Destination, Service, ServiceKey};

use crate::kernel::VserverRules;
use crate::reconcile::ObservedState;

/// A failed NCC call; the text names the call and the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NccError(pub String);

pub type Result<T> = std::result::Result<T, NccError>;

/// One IPVS change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsChange {
    AddService(Service),
    UpdateService(Service),
    DeleteService(ServiceKey),
    AddDestination(ServiceKey, Destination),
    UpdateDestination(ServiceKey, Destination),
    DeleteDestination(ServiceKey, Destination),
}

/// The BGP neighbors the NCC configures in bgpd, from cluster.pb's
/// `bgp_local_asn`, `bgp_remote_asn` and `bgp_peer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpPeers {
    pub local_asn: u32,
    pub remote_asn: u32,
    /// An empty set removes Seesaw's neighbors from bgpd.
    pub peers: BTreeSet<IpAddr>,
    /// The router ID of a `router bgp` instance the NCC creates.
    pub router_id: Ipv4Addr,
    /// The ranges whose host routes the peers are sent.
    pub anycast_ranges: AnycastRanges,
}

/// The outcome of configuring bgpd's neighbors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BgpPeersReport {
    /// The configuration commands sent, none when bgpd already matched.
    pub commands: Vec<String>,
    /// Peers bgpd's configuration keeps from Seesaw, each with the reason.
    pub skipped: Vec<String>,
}

/// The LB interface operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbOperation {
    Init,
    Up,
    Down,
}

/// The kernel as the NCC shows it, plus what the worker needs to know
/// about the LB interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub state: ObservedState,
    /// True when the LB interface already carries the cluster VIP, that is
    /// when an engine set it up before this one started.
    pub lb_initialised: bool,
    /// Whether the LB interface is up.
    pub lb_up: bool,
    /// The VLAN interfaces by id, each with its addresses: the node's
    /// address on the VLAN and the VIPs, without link-local ones.
    pub vlans: BTreeMap<u16, BTreeSet<IpNet>>,
}

/// The NCC operations the engine uses. Every operation is idempotent on
/// the NCC's side.
pub trait Ncc: Clone + Send + Sync + 'static {
    fn lb(&self, operation: LbOperation) -> impl Future<Output = Result<()>> + Send;
    /// Readies an LB interface an earlier engine set up without touching
    /// it; `false` when no seesaw-rs NCC set it up, and it needs `Init`.
    fn prepare(&self) -> impl Future<Output = Result<bool>> + Send;
    /// Applies IPVS changes in order; returns the failures by index.
    fn ipvs(
        &self,
        changes: Vec<IpvsChange>,
    ) -> impl Future<Output = Result<Vec<(usize, String)>>> + Send;
    /// Adds (`true`) or deletes (`false`) many VIPs in one call; returns
    /// the failures by index.
    fn vips(
        &self,
        changes: Vec<(Vip, bool)>,
    ) -> impl Future<Output = Result<Vec<(usize, String)>>> + Send;
    fn rules(&self, rules: VserverRules, add: bool) -> impl Future<Output = Result<()>> + Send;
    /// Adds (`true`) or deletes (`false`) many vservers' rules in one
    /// call; returns the failures by index.
    fn rules_batch(
        &self,
        changes: Vec<(VserverRules, bool)>,
    ) -> impl Future<Output = Result<Vec<(usize, String)>>> + Send;
    fn bgp(&self, ip: IpAddr, advertise: bool) -> impl Future<Output = Result<()>> + Send;
    /// Configures bgpd's neighbors; bgpd keeps the rest of its
    /// configuration.
    fn bgp_peers(&self, peers: BgpPeers) -> impl Future<Output = Result<BgpPeersReport>> + Send;
    /// Lists bgpd's neighbors as the engine's API shows them.
    fn bgp_neighbors(&self) -> impl Future<Output = Result<Vec<api::BgpNeighbor>>> + Send;
    fn add_vlan(&self, vlan: Vlan) -> impl Future<Output = Result<()>> + Send;
    fn delete_vlan(&self, id: u16) -> impl Future<Output = Result<()>> + Send;
    /// Sends gratuitous ARPs for addresses by interface.
    fn gratuitous_arp(
        &self,
        targets: BTreeMap<String, Vec<IpAddr>>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Lists IPVS services with their destinations and counters.
    fn ipvs_services(
        &self,
    ) -> impl Future<Output = Result<Vec<(Service, Vec<Destination>)>>> + Send;
    /// Reads back the kernel state for reconciliation.
    fn observe(&self) -> impl Future<Output = Result<Observed>> + Send;
}

/// The NCC over gRPC.
#[derive(Clone)]
pub struct GrpcNcc {
    client: NccClient,
    lb: proto::LbInterface,
    /// Addresses of this node, the cluster VIP and the service anycast
    /// addresses, which are never VIPs. The worker leaves out the node's
    /// addresses on the VLANs.
    own_addresses: Arc<BTreeSet<IpAddr>>,
    /// The anycast ranges when anycast is enabled: the host prefixes in
    /// them that bgpd advertises count as advertised VIPs.
    anycast_ranges: Option<AnycastRanges>,
    dummy: String,
    lb_name: String,
}

impl GrpcNcc {
    pub fn new(client: NccClient, config: &NodeConfig) -> Self {
        let text = |ip: Option<IpAddr>| ip.map(|ip| ip.to_string()).unwrap_or_default();
        let lb = proto::LbInterface {
            name: config.lb_interface.clone(),
            dummy_interface: config.engine.dummy_interface.clone(),
            node_interface: config.node_interface.clone(),
            node: Some(proto::HostAddresses {
                ipv4: config.node_ipv4.to_string(),
                ipv6: text(config.node_ipv6.map(IpAddr::V6)),
            }),
            cluster_vip: Some(proto::HostAddresses {
                ipv4: text(config.vip_ipv4.map(IpAddr::V4)),
                ipv6: text(config.vip_ipv6.map(IpAddr::V6)),
            }),
            routing_table: u32::from(config.engine.routing_table_id),
            vrid: u32::from(config.vrid),
            use_vmac: config.use_vmac,
        };
        let mut own: BTreeSet<IpAddr> = [Some(IpAddr::V4(config.node_ipv4))]
            .into_iter()
            .chain([
                config.node_ipv6.map(IpAddr::V6),
                config.vip_ipv4.map(IpAddr::V4),
                config.vip_ipv6.map(IpAddr::V6),
            ])
            .flatten()
            .collect();
        own.extend(config.service_anycast_ipv4.iter().map(|ip| IpAddr::V4(*ip)));
        own.extend(config.service_anycast_ipv6.iter().map(|ip| IpAddr::V6(*ip)));
        GrpcNcc {
            client,
            lb,
            own_addresses: Arc::new(own),
            anycast_ranges: config.anycast_enabled.then_some(config.anycast_ranges),
            dummy: config.engine.dummy_interface.clone(),
            lb_name: config.lb_interface.clone(),
        }
    }

    fn client(&self) -> NccClient {
        self.client.clone()
    }
}

fn status(call: &str, object: impl std::fmt::Display, error: tonic::Status) -> NccError {
    NccError(format!("NCC {call} {object}: {}", error.message()))
}

fn family(ip: IpAddr) -> i32 {
    if ip.is_ipv4() {
        proto::AddressFamily::Ipv4 as i32
    } else {
        proto::AddressFamily::Ipv6 as i32
    }
}

fn vip_message(vip: Vip) -> proto::Vip {
    let kind = match vip.vip_type {
        VipType::Anycast => proto::VipType::Anycast,
        VipType::Dedicated => proto::VipType::Dedicated,
        VipType::Unicast => proto::VipType::Unicast,
    };
    proto::Vip {
        address: vip.ip.to_string(),
        r#type: kind as i32,
    }
}

fn rules_message(lb: &proto::LbInterface, rules: &VserverRules) -> proto::VserverRulesRequest {
    proto::VserverRulesRequest {
        lb: Some(lb.clone()),
        vserver_name: rules.vserver.clone(),
        family: family(rules.address),
        address: rules.address.to_string(),
        entries: rules
            .entries
            .iter()
            .map(|entry| proto::VserverEntry {
                protocol: u32::from(crate::kernel::protocol_number(entry.protocol)),
                port: u32::from(entry.port),
                mode: match entry.mode {
                    ForwardingMode::Dsr => proto::ForwardingMode::Dsr,
                    ForwardingMode::Nat => proto::ForwardingMode::Nat,
                    ForwardingMode::Tun => proto::ForwardingMode::Tun,
                } as i32,
            })
            .collect(),
        fwmark: rules.fwmark,
    }
}

fn change_message(change: IpvsChange) -> proto::IpvsChange {
    use proto::ipvs_change::Change;
    let destination = |key: &ServiceKey, destination: &Destination| proto::IpvsDestinationRequest {
        service: Some(convert::key_message(key)),
        destination: Some(convert::destination_message(destination)),
    };
    let change = match change {
        IpvsChange::AddService(service) => {
            Change::AddService(convert::service_message(&service, &[]))
        }
        IpvsChange::UpdateService(service) => {
            Change::UpdateService(convert::service_message(&service, &[]))
        }
        IpvsChange::DeleteService(key) => Change::DeleteService(convert::key_message(&key)),
        IpvsChange::AddDestination(key, d) => Change::AddDestination(destination(&key, &d)),
        IpvsChange::UpdateDestination(key, d) => Change::UpdateDestination(destination(&key, &d)),
        IpvsChange::DeleteDestination(key, d) => Change::DeleteDestination(destination(&key, &d)),
    };
    proto::IpvsChange {
        change: Some(change),
    }
}

fn services(list: Vec<proto::IpvsService>) -> Result<Vec<(Service, Vec<Destination>)>> {
    list.iter()
        .map(|message| {
            let (mut service, destinations) =
                convert::service(message).map_err(|error| NccError(error.0))?;
            service.stats = message.stats.as_ref().map(stats);
            let destinations = destinations
                .into_iter()
                .zip(&message.destinations)
                .map(|(mut destination, message)| {
                    destination.active_connections = message.active_connections;
                    destination.inactive_connections = message.inactive_connections;
                    destination.persistent_connections = message.persistent_connections;
                    destination.stats = message.stats.as_ref().map(stats);
                    destination
                })
                .collect();
            Ok((service, destinations))
        })
        .collect()
}

fn stats(message: &proto::IpvsStats) -> seesaw_ipvs::Stats {
    seesaw_ipvs::Stats {
        connections: message.connections,
        packets_in: message.packets_in,
        packets_out: message.packets_out,
        bytes_in: message.bytes_in,
        bytes_out: message.bytes_out,
        cps: message.connections_rate,
        packets_in_rate: message.packets_in_rate,
        packets_out_rate: message.packets_out_rate,
        bytes_in_rate: message.bytes_in_rate,
        bytes_out_rate: message.bytes_out_rate,
    }
}

impl Ncc for GrpcNcc {
    async fn lb(&self, operation: LbOperation) -> Result<()> {
        let mut client = self.client();
        let request = self.lb.clone();
        let (call, result) = match operation {
            LbOperation::Init => ("InitLbInterface", client.init_lb_interface(request).await),
            LbOperation::Up => (
                "BringLbInterfaceUp",
                client.bring_lb_interface_up(request).await,
            ),
            LbOperation::Down => (
                "BringLbInterfaceDown",
                client.bring_lb_interface_down(request).await,
            ),
        };
        result
            .map(|_| ())
            .map_err(|error| status(call, &self.lb.name, error))
    }

    async fn prepare(&self) -> Result<bool> {
        self.client()
            .prepare_lb_interface(self.lb.clone())
            .await
            .map(|reply| reply.into_inner().initialised)
            .map_err(|error| status("PrepareLbInterface", &self.lb.name, error))
    }

    async fn ipvs(&self, changes: Vec<IpvsChange>) -> Result<Vec<(usize, String)>> {
        let batch = proto::IpvsBatch {
            changes: changes.into_iter().map(change_message).collect(),
        };
        let report = self
            .client()
            .ipvs_apply(batch)
            .await
            .map_err(|error| status("IpvsApply", "batch", error))?
            .into_inner();
        Ok(report
            .failures
            .into_iter()
            .map(|failure| (failure.index as usize, failure.error))
            .collect())
    }

    async fn vips(&self, changes: Vec<(Vip, bool)>) -> Result<Vec<(usize, String)>> {
        let batch = proto::VipBatch {
            lb: Some(self.lb.clone()),
            changes: changes
                .iter()
                .map(|(vip, add)| proto::VipChange {
                    vip: Some(vip_message(*vip)),
                    add: *add,
                })
                .collect(),
        };
        let report = self
            .client()
            .apply_vips(batch)
            .await
            .map_err(|error| status("ApplyVips", "batch", error))?
            .into_inner();
        Ok(report
            .failures
            .into_iter()
            .map(|failure| (failure.index as usize, failure.error))
            .collect())
    }

    async fn rules(&self, rules: VserverRules, add: bool) -> Result<()> {
        let request = rules_message(&self.lb, &rules);
        let mut client = self.client();
        let (call, result) = if add {
            ("AddVserverRules", client.add_vserver_rules(request).await)
        } else {
            (
                "DeleteVserverRules",
                client.delete_vserver_rules(request).await,
            )
        };
        let object = format!("{} {}", rules.vserver, rules.address);
        result
            .map(|_| ())
            .map_err(|error| status(call, object, error))
    }

    async fn rules_batch(
        &self,
        changes: Vec<(VserverRules, bool)>,
    ) -> Result<Vec<(usize, String)>> {
        use proto::vserver_rules_change::Change;
        let batch = proto::VserverRulesBatch {
            changes: changes
                .iter()
                .map(|(rules, add)| {
                    let request = rules_message(&self.lb, rules);
                    proto::VserverRulesChange {
                        change: Some(if *add {
                            Change::AddRules(request)
                        } else {
                            Change::DeleteRules(request)
                        }),
                    }
                })
                .collect(),
        };
        let report = self
            .client()
            .apply_vserver_rules(batch)
            .await
            .map_err(|error| status("ApplyVserverRules", "batch", error))?
            .into_inner();
        Ok(report
            .failures
            .into_iter()
            .map(|failure| (failure.index as usize, failure.error))
            .collect())
    }

    async fn bgp(&self, ip: IpAddr, advertise: bool) -> Result<()> {
        let request = proto::BgpVipRequest {
            address: ip.to_string(),
        };
        let mut client = self.client();
        let (call, result) = if advertise {
            ("BgpAdvertiseVip", client.bgp_advertise_vip(request).await)
        } else {
            ("BgpWithdrawVip", client.bgp_withdraw_vip(request).await)
        };
        result.map(|_| ()).map_err(|error| status(call, ip, error))
    }

    async fn bgp_peers(&self, peers: BgpPeers) -> Result<BgpPeersReport> {
        let request = proto::BgpPeersRequest {
            local_asn: peers.local_asn,
            remote_asn: peers.remote_asn,
            peers: peers.peers.iter().map(ToString::to_string).collect(),
            router_id: peers.router_id.to_string(),
            anycast_ipv4: peers.anycast_ranges.ipv4.to_string(),
            anycast_ipv6: peers.anycast_ranges.ipv6.to_string(),
        };
        let reply = self
            .client()
            .bgp_apply_peers(request)
            .await
            .map_err(|error| {
                let object = format!("({} peers of AS {})", peers.peers.len(), peers.remote_asn);
                status("BgpApplyPeers", object, error)
            })?
            .into_inner();
        Ok(BgpPeersReport {
            commands: reply.commands,
            skipped: reply.skipped,
        })
    }

    async fn bgp_neighbors(&self) -> Result<Vec<api::BgpNeighbor>> {
        let reply = self
            .client()
            .bgp_neighbors(proto::Empty {})
            .await
            .map_err(|error| status("BgpNeighbors", "", error))?
            .into_inner();
        Ok(reply.neighbors.iter().map(neighbor_message).collect())
    }

    async fn add_vlan(&self, vlan: Vlan) -> Result<()> {
        let request = proto::VlanRequest {
            lb: Some(self.lb.clone()),
            vlan: Some(proto::Vlan {
                id: u32::from(vlan.id),
                ipv4: vlan
                    .host
                    .ipv4
                    .map(|net| net.to_string())
                    .unwrap_or_default(),
                ipv6: vlan
                    .host
                    .ipv6
                    .map(|net| net.to_string())
                    .unwrap_or_default(),
            }),
        };
        self.client()
            .add_vlan(request)
            .await
            .map(|_| ())
            .map_err(|error| status("AddVlan", format!("VLAN {}", vlan.id), error))
    }

    async fn delete_vlan(&self, id: u16) -> Result<()> {
        let request = proto::VlanRequest {
            lb: Some(self.lb.clone()),
            vlan: Some(proto::Vlan {
                id: u32::from(id),
                ..proto::Vlan::default()
            }),
        };
        self.client()
            .delete_vlan(request)
            .await
            .map(|_| ())
            .map_err(|error| status("DeleteVlan", format!("VLAN {id}"), error))
    }

    async fn gratuitous_arp(&self, targets: BTreeMap<String, Vec<IpAddr>>) -> Result<()> {
        let request = proto::GratuitousArpRequest {
            targets: targets
                .into_iter()
                .map(|(interface, addresses)| proto::GratuitousArpTarget {
                    interface,
                    addresses: addresses.iter().map(ToString::to_string).collect(),
                })
                .collect(),
        };
        let reply = self
            .client()
            .send_gratuitous_arp(request)
            .await
            .map_err(|error| status("SendGratuitousArp", "", error))?
            .into_inner();
        if reply.failures.is_empty() {
            Ok(())
        } else {
            Err(NccError(format!(
                "NCC SendGratuitousArp: {}",
                reply.failures.join("; ")
            )))
        }
    }

    async fn ipvs_services(&self) -> Result<Vec<(Service, Vec<Destination>)>> {
        let list = self
            .client()
            .ipvs_list_services(proto::Empty {})
            .await
            .map_err(|error| status("IpvsListServices", "", error))?
            .into_inner();
        services(list.services)
    }

    async fn observe(&self) -> Result<Observed> {
        let state = self
            .client()
            .get_state(self.lb.clone())
            .await
            .map_err(|error| status("GetState", &self.lb.name, error))?
            .into_inner();
        let own = &self.own_addresses;
        let cluster_vip = self
            .lb
            .cluster_vip
            .as_ref()
            .and_then(|vip| vip.ipv4.parse::<IpAddr>().ok());
        let vlan_prefix = format!("{}.", self.lb_name);
        let mut observed = Observed::default();
        for interface in &state.interfaces {
            let on_dummy = interface.name == self.dummy;
            let on_lb = interface.name == self.lb_name;
            let mut vlan = None;
            if let Some(id) = interface.name.strip_prefix(&vlan_prefix) {
                if let Ok(id) = id.parse::<u16>() {
                    observed.vlans.entry(id).or_default();
                    vlan = Some(id);
                }
            } else if !on_dummy && !on_lb {
                continue;
            }
            if on_lb {
                observed.lb_up = interface.up;
            }
            for text in &interface.addresses {
                let net = text.parse::<IpNet>().ok();
                let Some(ip) = net.map(|net| net.addr()).or_else(|| text.parse().ok()) else {
                    continue;
                };
                if on_lb && Some(ip) == cluster_vip {
                    observed.lb_initialised = true;
                }
                if own.contains(&ip) || is_link_local(ip) {
                    continue;
                }
                if let (Some(id), Some(net)) = (vlan, net) {
                    observed.vlans.entry(id).or_default().insert(net);
                }
                let vip_type = if on_dummy {
                    VipType::Anycast
                } else {
                    VipType::Unicast
                };
                observed.state.vips.insert(Vip { ip, vip_type });
            }
        }
        observed.state.services = services(state.services)?;
        observed.state.advertised = self.advertised().await;
        Ok(observed)
    }
}

impl GrpcNcc {
    /// Reads the VIPs that bgpd advertises, so that one whose vserver went
    /// away while the engine was down (killed before it could withdraw)
    /// is withdrawn. Returns `None` without anycast or when bgpd cannot
    /// be read; then every wanted VIP is advertised again and nothing is
    /// withdrawn.
    async fn advertised(&self) -> Option<BTreeSet<IpAddr>> {
        let ranges = self.anycast_ranges?;
        match self.client().bgp_config(proto::Empty {}).await {
            Ok(reply) => Some(advertised_vips(
                &reply.into_inner().lines,
                &ranges,
                &self.own_addresses,
            )),
            Err(error) => {
                tracing::debug!("bgpd's advertisements not read: {}", error.message());
                None
            }
        }
    }
}

/// Returns the host prefixes of bgpd's `network` statements that lie in
/// the anycast ranges, leaving out `own` (the service anycast addresses,
/// which the BGP task owns).
fn advertised_vips(
    running_config: &[String],
    ranges: &AnycastRanges,
    own: &BTreeSet<IpAddr>,
) -> BTreeSet<IpAddr> {
    running_config
        .iter()
        .filter_map(|line| line.trim().strip_prefix("network "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<IpNet>().ok())
        .filter(|net| net.prefix_len() == net.max_prefix_len())
        .map(|net| net.addr())
        .filter(|ip| ranges.contains(*ip) && !own.contains(ip))
        .collect()
}

/// Converts a neighbor of the NCC for the engine's API. An interface
/// neighbor whose address is not known yet shows its interface.
fn neighbor_message(neighbor: &proto::BgpNeighbor) -> api::BgpNeighbor {
    let ip = if neighbor.address.is_empty() {
        neighbor.interface.clone()
    } else {
        neighbor.address.clone()
    };
    api::BgpNeighbor {
        ip,
        router_id: neighbor.router_id.clone(),
        asn: neighbor.asn,
        description: neighbor.description.clone(),
        state: neighbor.state.clone(),
        uptime_ms: neighbor.uptime_seconds.saturating_mul(1000),
    }
}

fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_link_local(),
        IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_vips_from_running_config() {
        let lines: Vec<String> = [
            "router bgp 64512",
            " address-family ipv4 unicast",
            "  network 192.168.255.10/32",
            "  network 192.168.255.254/32",
            "  network 192.168.255.0/24",
            "  network 10.0.0.1/32",
            " exit-address-family",
            " address-family ipv6 unicast",
            "  network 2015:cafe:ffff::10/128 route-map x",
            " exit-address-family",
        ]
        .iter()
        .map(|line| line.to_string())
        .collect();
        // The service anycast address belongs to the BGP task.
        let own: BTreeSet<IpAddr> = ["192.168.255.254".parse().unwrap()].into();
        let found = advertised_vips(&lines, &AnycastRanges::default(), &own);
        let expected: BTreeSet<IpAddr> = ["192.168.255.10", "2015:cafe:ffff::10"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect();
        assert_eq!(found, expected);
    }
}
