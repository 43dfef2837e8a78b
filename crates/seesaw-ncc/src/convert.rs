//! Conversions between the API messages and the NCC's own types.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use seesaw_ipc::proto;

use crate::bgp::neighbors::{MessageCount, Neighbor};
use crate::bgp::peers::Peering;
use crate::error::{NccError, Result};
use crate::iptables::{Entry, Mode};
use crate::ops::{LbConfig, VipKind};
use crate::vserver_rules::{Action, RulesChange};

fn invalid(message: String) -> NccError {
    NccError::Invalid(message)
}

/// Parses an optional address field: empty means not set.
pub fn optional_ip(text: &str, field: &str) -> Result<Option<IpAddr>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| invalid(format!("invalid {field} {text:?}: expected an IP address")))
}

pub fn required_ip(text: &str, field: &str) -> Result<IpAddr> {
    optional_ip(text, field)?.ok_or_else(|| invalid(format!("missing {field}")))
}

pub fn lb_config(message: Option<&proto::LbInterface>) -> Result<LbConfig> {
    let lb =
        message.ok_or_else(|| invalid("missing lb (the load-balancing interface)".to_owned()))?;
    if lb.name.is_empty() {
        return Err(invalid("missing lb.name".to_owned()));
    }
    if !(1..=250).contains(&lb.routing_table) {
        return Err(invalid(format!(
            "invalid lb.routing_table {}: must be 1 to 250",
            lb.routing_table
        )));
    }
    let vrid = u8::try_from(lb.vrid)
        .ok()
        .filter(|vrid| *vrid >= 1 || !lb.use_vmac)
        .ok_or_else(|| invalid(format!("invalid lb.vrid {}: must be 1 to 255", lb.vrid)))?;
    let node = lb.node.clone().unwrap_or_default();
    let cluster = lb.cluster_vip.clone().unwrap_or_default();
    let v4 = |text: &str, field: &str| -> Result<Option<std::net::Ipv4Addr>> {
        match optional_ip(text, field)? {
            None => Ok(None),
            Some(IpAddr::V4(address)) => Ok(Some(address)),
            Some(other) => Err(invalid(format!("invalid {field} {other}: expected IPv4"))),
        }
    };
    let v6 = |text: &str, field: &str| -> Result<Option<IpAddr>> {
        match optional_ip(text, field)? {
            Some(address) if address.is_ipv4() => {
                Err(invalid(format!("invalid {field} {address}: expected IPv6")))
            }
            other => Ok(other),
        }
    };
    Ok(LbConfig {
        name: lb.name.clone(),
        dummy: if lb.dummy_interface.is_empty() {
            "dummy0".to_owned()
        } else {
            lb.dummy_interface.clone()
        },
        node_interface: lb.node_interface.clone(),
        node_v4: v4(&node.ipv4, "lb.node.ipv4")?,
        node_v6: v6(&node.ipv6, "lb.node.ipv6")?,
        cluster_v4: v4(&cluster.ipv4, "lb.cluster_vip.ipv4")?,
        cluster_v6: v6(&cluster.ipv6, "lb.cluster_vip.ipv6")?,
        table: lb.routing_table,
        vrid,
        use_vmac: lb.use_vmac,
    })
}

pub fn vip(message: Option<&proto::Vip>) -> Result<(IpAddr, VipKind)> {
    let vip = message.ok_or_else(|| invalid("missing vip".to_owned()))?;
    let address = required_ip(&vip.address, "vip.address")?;
    let kind = match proto::VipType::try_from(vip.r#type) {
        Ok(proto::VipType::Unicast) => VipKind::Unicast,
        Ok(proto::VipType::Anycast | proto::VipType::Dedicated) => VipKind::Dummy,
        _ => {
            return Err(invalid(format!(
                "invalid vip.type {} for VIP {address}",
                vip.r#type
            )));
        }
    };
    Ok((address, kind))
}

pub fn prefix(text: &str, field: &str) -> Result<Option<IpNet>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        invalid(format!("invalid {field} {text:?}: expected an address with prefix length, such as 192.0.2.10/24"))
    })
}

pub fn entries(entries: &[proto::VserverEntry]) -> Result<Vec<Entry>> {
    entries
        .iter()
        .map(|entry| {
            let protocol = u8::try_from(entry.protocol)
                .map_err(|_| invalid(format!("invalid protocol {}", entry.protocol)))?;
            let port = u16::try_from(entry.port)
                .map_err(|_| invalid(format!("invalid port {}", entry.port)))?;
            let mode = match proto::ForwardingMode::try_from(entry.mode) {
                Ok(proto::ForwardingMode::Dsr) => Mode::Dsr,
                Ok(proto::ForwardingMode::Nat) => Mode::Nat,
                Ok(proto::ForwardingMode::Tun) => Mode::Tun,
                _ => {
                    return Err(invalid(format!(
                        "invalid forwarding mode {} for port {port}",
                        entry.mode
                    )));
                }
            };
            Ok(Entry {
                protocol,
                port,
                mode,
            })
        })
        .collect()
}

/// Converts an AddVserverRules or DeleteVserverRules request into the
/// rules to add or delete.
pub fn rules_change(request: &proto::VserverRulesRequest, action: Action) -> Result<RulesChange> {
    let lb = lb_config(request.lb.as_ref())?;
    let address = required_ip(&request.address, "address")?;
    let family_matches = match proto::AddressFamily::try_from(request.family) {
        Ok(proto::AddressFamily::Ipv4) => address.is_ipv4(),
        Ok(proto::AddressFamily::Ipv6) => address.is_ipv6(),
        _ => true,
    };
    if !family_matches {
        return Err(NccError::Invalid(format!(
            "virtual server {} address {address} is not of the requested family",
            request.vserver_name
        )));
    }
    let entries = entries(&request.entries)?;
    RulesChange::new(
        action,
        &lb,
        &request.vserver_name,
        address,
        request.fwmark,
        &entries,
    )
}

/// Converts one change of an ApplyVserverRules batch; `index` is its
/// position, for the error of an empty change.
pub fn batch_rules_change(
    change: &proto::VserverRulesChange,
    index: usize,
) -> (Option<&proto::VserverRulesRequest>, Result<RulesChange>) {
    use proto::vserver_rules_change::Change;
    match &change.change {
        Some(Change::AddRules(request)) => (Some(request), rules_change(request, Action::Add)),
        Some(Change::DeleteRules(request)) => {
            (Some(request), rules_change(request, Action::Delete))
        }
        None => (
            None,
            Err(invalid(format!(
                "change {index} of the batch is empty: set add_rules or delete_rules"
            ))),
        ),
    }
}

/// Seesaw v2's anycast ranges, used when a request names none.
const DEFAULT_ANYCAST_IPV4: (Ipv4Addr, u8) = (Ipv4Addr::new(192, 168, 255, 0), 24);
const DEFAULT_ANYCAST_IPV6: (Ipv6Addr, u8) =
    (Ipv6Addr::new(0x2015, 0xcafe, 0xffff, 0, 0, 0, 0, 0), 64);

/// Converts a BgpApplyPeers request.
pub fn peering(request: &proto::BgpPeersRequest) -> Result<Peering> {
    let peers = request
        .peers
        .iter()
        .enumerate()
        .map(|(index, text)| required_ip(text, &format!("peers[{index}]")))
        .collect::<Result<_>>()?;
    let router_id = match optional_ip(&request.router_id, "router_id")? {
        None => None,
        Some(IpAddr::V4(id)) => Some(id),
        Some(IpAddr::V6(id)) => {
            return Err(invalid(format!(
                "invalid router_id {id}: a BGP router ID is an IPv4 address"
            )));
        }
    };
    let anycast_ipv4 = match prefix(&request.anycast_ipv4, "anycast_ipv4")? {
        None => Ipv4Net::new(DEFAULT_ANYCAST_IPV4.0, DEFAULT_ANYCAST_IPV4.1)
            .expect("a valid prefix length"),
        Some(IpNet::V4(range)) => range.trunc(),
        Some(IpNet::V6(range)) => {
            return Err(invalid(format!(
                "invalid anycast_ipv4 {range}: expected an IPv4 network"
            )));
        }
    };
    let anycast_ipv6 = match prefix(&request.anycast_ipv6, "anycast_ipv6")? {
        None => Ipv6Net::new(DEFAULT_ANYCAST_IPV6.0, DEFAULT_ANYCAST_IPV6.1)
            .expect("a valid prefix length"),
        Some(IpNet::V6(range)) => range.trunc(),
        Some(IpNet::V4(range)) => {
            return Err(invalid(format!(
                "invalid anycast_ipv6 {range}: expected an IPv6 network"
            )));
        }
    };
    Ok(Peering {
        local_asn: request.local_asn,
        remote_asn: request.remote_asn,
        peers,
        router_id,
        anycast_ipv4,
        anycast_ipv6,
    })
}

/// Converts a neighbour of `show ip bgp neighbors` for the API.
pub fn bgp_neighbor_message(neighbor: &Neighbor) -> proto::BgpNeighbor {
    let count = |count: MessageCount| {
        Some(proto::BgpMessageCount {
            sent: count.sent,
            received: count.received,
        })
    };
    let messages = &neighbor.messages;
    proto::BgpNeighbor {
        address: neighbor
            .address
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        router_id: neighbor
            .router_id
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        asn: neighbor.asn,
        description: neighbor.description.clone(),
        state: neighbor.state.name().to_owned(),
        uptime_seconds: neighbor.uptime.as_secs(),
        messages: Some(proto::BgpMessageStats {
            opens: count(messages.opens),
            notifications: count(messages.notifications),
            updates: count(messages.updates),
            keepalives: count(messages.keepalives),
            route_refresh: count(messages.route_refresh),
            capability: count(messages.capability),
            total: count(messages.total),
        }),
        interface: neighbor.interface.clone().unwrap_or_default(),
    }
}

pub use seesaw_ipc::ipvs::{
    destination, destination_request, key_message, service, service_key, service_message,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn lb() -> proto::LbInterface {
        proto::LbInterface {
            name: "eth1".to_owned(),
            dummy_interface: String::new(),
            node_interface: "eth0".to_owned(),
            node: Some(proto::HostAddresses {
                ipv4: "192.0.2.5".to_owned(),
                ipv6: String::new(),
            }),
            cluster_vip: Some(proto::HostAddresses {
                ipv4: "192.0.2.2".to_owned(),
                ipv6: String::new(),
            }),
            routing_table: 2,
            vrid: 60,
            use_vmac: true,
        }
    }

    #[test]
    fn lb_config_defaults_dummy() {
        let config = lb_config(Some(&lb())).unwrap();

        assert_eq!(config.dummy, "dummy0");
        assert_eq!(config.cluster_v4, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(config.vrid, 60);
    }

    #[test]
    fn lb_config_rejects_bad_table() {
        let mut message = lb();
        message.routing_table = 251;

        let error = lb_config(Some(&message)).unwrap_err();

        assert!(error.to_string().contains("routing_table 251"), "{error}");
    }

    #[test]
    fn lb_config_rejects_wrong_family() {
        let mut message = lb();
        message.node.as_mut().unwrap().ipv4 = "2001:db8::1".to_owned();

        let error = lb_config(Some(&message)).unwrap_err();

        assert!(error.to_string().contains("lb.node.ipv4"), "{error}");
    }

    fn peers_request() -> proto::BgpPeersRequest {
        proto::BgpPeersRequest {
            local_asn: 64512,
            remote_asn: 64513,
            peers: vec!["192.0.2.254".to_owned(), "2001:db8::fe".to_owned()],
            router_id: "192.0.2.5".to_owned(),
            anycast_ipv4: String::new(),
            anycast_ipv6: "2001:db8:a::/48".to_owned(),
        }
    }

    #[test]
    fn peering_defaults_ranges() {
        let peering = peering(&peers_request()).unwrap();

        assert_eq!(peering.peers.len(), 2);
        assert_eq!(peering.router_id, Some(Ipv4Addr::new(192, 0, 2, 5)));
        assert_eq!(peering.anycast_ipv4.to_string(), "192.168.255.0/24");
        assert_eq!(peering.anycast_ipv6.to_string(), "2001:db8:a::/48");
    }

    #[test]
    fn peering_rejects_bad_fields() {
        type Edit = fn(&mut proto::BgpPeersRequest);
        let cases: [(Edit, &str); 4] = [
            (|r| r.peers.push("router1".to_owned()), "peers[2]"),
            (|r| r.router_id = "2001:db8::5".to_owned(), "router_id"),
            (
                |r| r.anycast_ipv4 = "2001:db8::/64".to_owned(),
                "anycast_ipv4",
            ),
            (
                |r| r.anycast_ipv6 = "192.168.255.0".to_owned(),
                "anycast_ipv6",
            ),
        ];
        for (change, field) in cases {
            let mut request = peers_request();
            change(&mut request);

            let error = peering(&request).unwrap_err();

            assert!(matches!(error, NccError::Invalid(_)), "{error:?}");
            assert!(error.to_string().contains(field), "{error}");
        }
    }
}
