//! Selection and order of the nodes, VLANs, neighbors, vservers,
//! destinations and backends that a show command lists. The text and the
//! JSON output share these rules.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use seesaw_ipc::engine_proto::{
    BgpNeighbor, BgpNeighborList, ClusterStatusReply, Destination, Host, Node, Vlan, VlanList,
    Vserver, VserverList,
};

/// Returns the host's name, or "" when the host is missing.
pub fn hostname(host: Option<&Host>) -> &str {
    host.map_or("", |h| h.hostname.as_str())
}

/// Returns the backend hostname of a destination.
pub fn backend_hostname(destination: &Destination) -> &str {
    hostname(
        destination
            .backend
            .as_ref()
            .and_then(|backend| backend.host.as_ref()),
    )
}

/// Returns the nodes sorted by IPv4 address; nodes without one come first.
pub fn sorted_nodes(cluster: &ClusterStatusReply) -> Vec<&Node> {
    let mut nodes: Vec<&Node> = cluster.nodes.iter().collect();
    nodes.sort_by_key(|node| {
        node.host
            .as_ref()
            .and_then(|host| host.ipv4.split('/').next())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
    });
    nodes
}

/// Returns the node whose hostname is exactly `name`.
pub fn find_node<'a>(cluster: &'a ClusterStatusReply, name: &str) -> Result<&'a Node, String> {
    sorted_nodes(cluster)
        .into_iter()
        .find(|node| hostname(node.host.as_ref()) == name)
        .ok_or_else(|| format!("node {} not found", go_quote(name)))
}

/// Returns the VLANs sorted by ID.
pub fn sorted_vlans(list: &VlanList) -> Vec<&Vlan> {
    let mut vlans: Vec<&Vlan> = list.vlans.iter().collect();
    vlans.sort_by_key(|vlan| vlan.id);
    vlans
}

/// Returns the VLAN that `arg` names: a VLAN ID, or else an address inside
/// the VLAN's IPv4 or IPv6 network.
pub fn find_vlan<'a>(list: &'a VlanList, arg: &str) -> Result<&'a Vlan, String> {
    let vlans = sorted_vlans(list);

    if let Some(id) = parse_vlan_id(arg) {
        return vlans
            .into_iter()
            .find(|vlan| vlan.id == u32::from(id))
            .ok_or_else(|| format!("VLAN ID {id} not found"));
    }

    let Ok(ip) = arg.parse::<IpAddr>() else {
        return Err(format!(
            "unknown value {} - must be a VLAN ID or IP address",
            go_quote(arg)
        ));
    };
    let ip = ip.to_canonical();
    vlans
        .into_iter()
        .find(|vlan| {
            let host = vlan.host.as_ref();
            [host.map(|h| &h.ipv4), host.map(|h| &h.ipv6)]
                .into_iter()
                .flatten()
                .filter_map(|net| net.parse::<IpNet>().ok())
                .any(|net| net.trunc().contains(&ip))
        })
        .ok_or_else(|| format!("VLAN not found for IP address {ip}"))
}

/// Parses a VLAN ID as a decimal 16-bit number: digits only, so `+5` and
/// ` 5` are not IDs.
fn parse_vlan_id(arg: &str) -> Option<u16> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    arg.parse().ok()
}

/// Returns the neighbor whose address equals `arg`.
pub fn find_neighbor<'a>(list: &'a BgpNeighborList, arg: &str) -> Result<&'a BgpNeighbor, String> {
    let Ok(ip) = arg.parse::<IpAddr>() else {
        return Err(format!("{} is not a valid IP address", go_quote(arg)));
    };
    let ip = ip.to_canonical();
    list.neighbors
        .iter()
        .find(|n| n.ip.parse::<IpAddr>().map(|a| a.to_canonical()) == Ok(ip))
        .ok_or_else(|| "No such neighbor".to_string())
}

/// Returns the vservers `filter` selects, sorted by name: all for an empty
/// filter, the one named exactly `filter` if there is one, and otherwise
/// every vserver whose name starts with `filter`.
pub fn filter_vservers<'a>(list: &'a VserverList, filter: &str) -> Vec<&'a Vserver> {
    let mut vservers: Vec<&Vserver> = list.vservers.iter().collect();
    vservers.sort_by(|a, b| a.name.cmp(&b.name));
    if filter.is_empty() {
        return vservers;
    }
    if let Some(exact) = vservers.iter().find(|v| v.name == filter) {
        return vec![exact];
    }
    vservers.retain(|v| v.name.starts_with(filter));
    vservers
}

/// A destination with the state of the vserver it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct DestinationView<'a> {
    pub destination: &'a Destination,
    /// False only when the named vserver exists and is disabled.
    pub vserver_enabled: bool,
    /// Whether the destination's vserver is in the reply at all.
    pub vserver_known: bool,
}

impl<'a> DestinationView<'a> {
    fn new(list: &'a VserverList, destination: &'a Destination) -> Self {
        let vserver = list
            .vservers
            .iter()
            .find(|v| v.name == destination.vserver_name);
        DestinationView {
            destination,
            vserver_enabled: vserver.is_none_or(|v| v.enabled),
            vserver_known: vserver.is_some(),
        }
    }
}

/// Returns every destination of every service, in reply order.
fn all_destinations(list: &VserverList) -> impl Iterator<Item = DestinationView<'_>> {
    list.vservers
        .iter()
        .flat_map(|v| &v.services)
        .flat_map(|s| &s.destinations)
        .map(move |d| DestinationView::new(list, d))
}

/// Returns the destinations whose name starts with `prefix`, sorted by
/// name; an empty prefix selects all. None found is an error.
pub fn select_destinations<'a>(
    list: &'a VserverList,
    prefix: Option<&str>,
) -> Result<Vec<DestinationView<'a>>, String> {
    let mut selected: Vec<DestinationView> = all_destinations(list)
        .filter(|view| prefix.is_none_or(|p| view.destination.name.starts_with(p)))
        .collect();
    if selected.is_empty() {
        return Err(match prefix {
            Some(prefix) => format!("destination '{prefix}...' not found"),
            None => "no destinations found".to_string(),
        });
    }
    selected.sort_by(|a, b| a.destination.name.cmp(&b.destination.name));
    Ok(selected)
}

/// Returns the destination named exactly `name`.
pub fn find_destination<'a>(list: &'a VserverList, name: &str) -> Option<DestinationView<'a>> {
    all_destinations(list).find(|view| view.destination.name == name)
}

/// Backends keyed by hostname, each with its destinations sorted by name.
pub type BackendGroups<'a> = BTreeMap<&'a str, Vec<DestinationView<'a>>>;

/// Groups the destinations by backend hostname, keeping the backends whose
/// hostname starts with `prefix`. None found is an error.
pub fn select_backends<'a>(
    list: &'a VserverList,
    prefix: Option<&str>,
) -> Result<BackendGroups<'a>, String> {
    let mut groups = BackendGroups::new();
    for view in all_destinations(list) {
        let host = backend_hostname(view.destination);
        if prefix.is_none_or(|p| host.starts_with(p)) {
            groups.entry(host).or_default().push(view);
        }
    }
    if groups.is_empty() {
        return Err(match prefix {
            Some(prefix) => format!("backend '{prefix}...' not found"),
            None => "no backends found".to_string(),
        });
    }
    for views in groups.values_mut() {
        views.sort_by(|a, b| a.destination.name.cmp(&b.destination.name));
    }
    Ok(groups)
}

/// How much of a backend is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendState {
    Enabled,
    PartiallyDisabled,
    Disabled,
}

impl BackendState {
    pub fn name(self) -> &'static str {
        match self {
            BackendState::Enabled => "enabled",
            BackendState::PartiallyDisabled => "partially disabled",
            BackendState::Disabled => "disabled",
        }
    }
}

/// Summarises a backend's destinations: disabled when every vserver it
/// serves or every destination is disabled, partially disabled when some
/// are. As in the original, a backend none of whose vservers is in the
/// reply counts as disabled.
pub fn backend_state(views: &[DestinationView]) -> BackendState {
    let disabled_destinations = views.iter().filter(|v| !v.destination.enabled).count();
    let mut all_vservers = std::collections::BTreeSet::new();
    let mut disabled_vservers = std::collections::BTreeSet::new();
    for view in views.iter().filter(|v| v.vserver_known) {
        all_vservers.insert(view.destination.vserver_name.as_str());
        if !view.vserver_enabled {
            disabled_vservers.insert(view.destination.vserver_name.as_str());
        }
    }

    if disabled_vservers.len() == all_vservers.len() || disabled_destinations == views.len() {
        BackendState::Disabled
    } else if !disabled_vservers.is_empty() || disabled_destinations > 0 {
        BackendState::PartiallyDisabled
    } else {
        BackendState::Enabled
    }
}

/// Quotes `text` as Go's `%q` does for printable text: in double quotes,
/// with backslashes, quotes and control characters escaped.
pub fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            c if c.is_control() => quoted.push_str(&format!("\\x{:02x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use super::*;
    use seesaw_ipc::engine_proto::{Backend, Service};

    fn host(name: &str, ipv4: &str) -> Option<Host> {
        Some(Host {
            hostname: name.to_string(),
            ipv4: ipv4.to_string(),
            ipv6: String::new(),
        })
    }

    fn vlan_list() -> VlanList {
        VlanList {
            vlans: vec![
                Vlan {
                    id: 200,
                    host: host("v200.", "10.2.0.2/24"),
                    ..Vlan::default()
                },
                Vlan {
                    id: 100,
                    host: Some(Host {
                        hostname: "v100.".into(),
                        ipv4: "10.1.0.2/24".into(),
                        ipv6: "2001:db8:100::2/64".into(),
                    }),
                    ..Vlan::default()
                },
            ],
        }
    }

    #[test]
    fn vlan_by_id_or_address() {
        let list = vlan_list();

        assert_eq!(find_vlan(&list, "200").unwrap().id, 200);
        assert_eq!(find_vlan(&list, "10.1.0.77").unwrap().id, 100);
        assert_eq!(find_vlan(&list, "2001:db8:100::9").unwrap().id, 100);
        assert_eq!(find_vlan(&list, "5").unwrap_err(), "VLAN ID 5 not found");
        assert_eq!(
            find_vlan(&list, "10.9.0.1").unwrap_err(),
            "VLAN not found for IP address 10.9.0.1"
        );
        assert_eq!(
            find_vlan(&list, "abc").unwrap_err(),
            "unknown value \"abc\" - must be a VLAN ID or IP address"
        );
        // Go's ParseUint takes neither a sign nor a value past 65535.
        assert!(
            find_vlan(&list, "+5")
                .unwrap_err()
                .starts_with("unknown value")
        );
        assert!(
            find_vlan(&list, "65536")
                .unwrap_err()
                .starts_with("unknown value")
        );
    }

    #[test]
    fn vservers_exact_name_wins_over_prefix() {
        let list = VserverList {
            vservers: ["web", "web-2", "dns"]
                .iter()
                .map(|name| Vserver {
                    name: name.to_string(),
                    ..Vserver::default()
                })
                .collect(),
        };

        let names = |filter| -> Vec<String> {
            filter_vservers(&list, filter)
                .iter()
                .map(|v| v.name.clone())
                .collect()
        };
        assert_eq!(names(""), ["dns", "web", "web-2"]);
        assert_eq!(names("web"), ["web"]);
        assert_eq!(names("we"), ["web", "web-2"]);
        assert!(names("x").is_empty());
    }

    fn destination(vserver: &str, backend: &str, enabled: bool) -> Destination {
        Destination {
            name: format!("{vserver}/{backend}:80/TCP"),
            vserver_name: vserver.to_string(),
            backend: Some(Backend {
                host: host(backend, ""),
                ..Backend::default()
            }),
            enabled,
            ..Destination::default()
        }
    }

    fn vserver(name: &str, enabled: bool, destinations: Vec<Destination>) -> Vserver {
        Vserver {
            name: name.to_string(),
            enabled,
            services: vec![Service {
                destinations,
                ..Service::default()
            }],
            ..Vserver::default()
        }
    }

    #[test]
    fn backend_states() {
        let list = VserverList {
            vservers: vec![
                vserver(
                    "a",
                    true,
                    vec![destination("a", "b1", true), destination("a", "b2", false)],
                ),
                vserver("b", false, vec![destination("b", "b1", true)]),
                vserver("c", true, vec![destination("c", "b3", true)]),
            ],
        };

        let groups = select_backends(&list, None).unwrap();

        assert_eq!(
            backend_state(&groups["b1"]),
            BackendState::PartiallyDisabled
        );
        assert_eq!(backend_state(&groups["b2"]), BackendState::Disabled);
        assert_eq!(backend_state(&groups["b3"]), BackendState::Enabled);
        assert_eq!(
            select_backends(&list, Some("x")).unwrap_err(),
            "backend 'x...' not found"
        );
    }

    #[test]
    fn destinations_sorted_by_name() {
        let list = VserverList {
            vservers: vec![
                vserver("b", true, vec![destination("b", "h1", true)]),
                vserver("a", true, vec![destination("a", "h2", true)]),
            ],
        };

        let names: Vec<&str> = select_destinations(&list, None)
            .unwrap()
            .iter()
            .map(|v| v.destination.name.as_str())
            .collect();

        assert_eq!(names, ["a/h2:80/TCP", "b/h1:80/TCP"]);
        assert_eq!(
            select_destinations(&list, Some("z")).unwrap_err(),
            "destination 'z...' not found"
        );
    }

    #[test]
    fn neighbor_lookup() {
        let list = BgpNeighborList {
            neighbors: vec![BgpNeighbor {
                ip: "192.0.2.254".into(),
                ..BgpNeighbor::default()
            }],
        };

        assert!(find_neighbor(&list, "192.0.2.254").is_ok());
        assert!(find_neighbor(&list, "::ffff:192.0.2.254").is_ok());
        assert_eq!(
            find_neighbor(&list, "192.0.2.1").unwrap_err(),
            "No such neighbor"
        );
        assert_eq!(
            find_neighbor(&list, "x").unwrap_err(),
            "\"x\" is not a valid IP address"
        );
    }

    #[test]
    fn quote_escapes_like_go() {
        assert_eq!(go_quote("nosuch."), "\"nosuch.\"");
        assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    }
}
