//! The JSON output of the show commands (`-o json`). Each command prints
//! one object; the schemas in `schema/` describe them and docs/cli.md
//! explains the fields. Fields are only ever added, so scripts keep
//! working across versions.
//!
//! Times are RFC 3339 in UTC, or null for "never". Durations are whole
//! milliseconds in fields ending in `_ms`. Addresses are text, with the
//! prefix length for a host's network (`192.0.2.1/24`), or null when not
//! configured.

use seesaw_ipc::engine_proto::{
    BgpNeighbor, ClusterStatusReply, ConfigStatusReply, HaStatus, Host, IpvsStats, Node, Service,
    Vlan, Vserver,
};
use serde::Serialize;

use crate::layout::rfc3339;
use crate::render::{
    destination_status, family_name, ha_state_name, override_state_name, protocol_name,
    sorted_services,
};
use crate::select::{BackendGroups, DestinationView, backend_hostname, backend_state};

fn address(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn ipv4(host: Option<&Host>) -> Option<String> {
    host.and_then(|h| address(&h.ipv4))
}

fn ipv6(host: Option<&Host>) -> Option<String> {
    host.and_then(|h| address(&h.ipv6))
}

/// Converts an `f32` through its shortest decimal form, so that 0.3
/// prints as 0.3 and not 0.30000001192092896.
fn ratio(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

/// `show ha`.
#[derive(Debug, Serialize)]
pub struct HaJson {
    pub state: String,
    pub since: Option<String>,
    /// Time in the current state, in whole seconds as milliseconds; null
    /// when the state has no start time.
    pub duration_ms: Option<u64>,
    pub transitions: u64,
    pub advertisements_sent: u64,
    pub advertisements_received: u64,
    pub last_update: Option<String>,
}

impl HaJson {
    pub fn new(ha: &HaStatus, now_ms: i64) -> Self {
        HaJson {
            state: ha_state_name(ha.state),
            since: rfc3339(ha.since_ms),
            duration_ms: (ha.since_ms != 0)
                .then(|| now_ms.saturating_sub(ha.since_ms).max(0) as u64 / 1000 * 1000),
            transitions: ha.transitions,
            advertisements_sent: ha.sent,
            advertisements_received: ha.received,
            last_update: rfc3339(ha.last_update_ms),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AttributeJson {
    pub name: String,
    pub value: String,
}

/// `config status`.
#[derive(Debug, Serialize)]
pub struct ConfigStatusJson {
    pub last_update: Option<String>,
    pub attributes: Vec<AttributeJson>,
    pub warnings: Vec<String>,
    /// Where the config in force came from: `disk`, `peer` or `server`, or
    /// empty when the engine does not report it.
    pub source: String,
    pub source_detail: String,
    pub last_attempt: Option<String>,
    pub last_errors: Vec<String>,
}

impl From<&ConfigStatusReply> for ConfigStatusJson {
    fn from(status: &ConfigStatusReply) -> Self {
        ConfigStatusJson {
            last_update: rfc3339(status.last_update_ms),
            attributes: status
                .attributes
                .iter()
                .map(|a| AttributeJson {
                    name: a.name.clone(),
                    value: a.value.clone(),
                })
                .collect(),
            warnings: status.warnings.clone(),
            source: status.source.clone(),
            source_detail: status.source_detail.clone(),
            last_attempt: rfc3339(status.last_attempt_ms),
            last_errors: status.last_errors.clone(),
        }
    }
}

/// `show warnings`.
#[derive(Debug, Serialize)]
pub struct WarningsJson {
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct NodeJson {
    pub hostname: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub priority: u32,
    /// The HA state the cluster configuration gives the node: `BACKUP`, or
    /// `DISABLED` when it takes no part in HA.
    pub state: String,
    pub ha_enabled: bool,
    pub anycast_enabled: bool,
    pub bgp_enabled: bool,
    pub vservers_enabled: bool,
}

impl From<&Node> for NodeJson {
    fn from(node: &Node) -> Self {
        let host = node.host.as_ref();
        NodeJson {
            hostname: host.map(|h| h.hostname.clone()).unwrap_or_default(),
            ipv4: ipv4(host),
            ipv6: ipv6(host),
            priority: node.priority,
            state: ha_state_name(node.state),
            ha_enabled: node.state != seesaw_ipc::engine_proto::HaState::Disabled as i32,
            anycast_enabled: node.anycast_enabled,
            bgp_enabled: node.bgp_enabled,
            vservers_enabled: node.vservers_enabled,
        }
    }
}

/// `show nodes`.
#[derive(Debug, Serialize)]
pub struct NodesJson {
    pub site: String,
    /// The engine's API version; the original's engine reports 2.
    pub engine_version: u32,
    pub nodes: Vec<NodeJson>,
}

impl NodesJson {
    pub fn new(cluster: &ClusterStatusReply, nodes: &[&Node]) -> Self {
        NodesJson {
            site: cluster.site.clone(),
            engine_version: cluster.version,
            nodes: nodes.iter().map(|n| NodeJson::from(*n)).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FamilyCountsJson {
    pub ipv4: u32,
    pub ipv6: u32,
}

#[derive(Debug, Serialize)]
pub struct VlanJson {
    pub id: u32,
    pub hostname: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub backend_count: FamilyCountsJson,
    pub vip_count: FamilyCountsJson,
}

impl From<&Vlan> for VlanJson {
    fn from(vlan: &Vlan) -> Self {
        let host = vlan.host.as_ref();
        VlanJson {
            id: vlan.id,
            hostname: host.map(|h| h.hostname.clone()).unwrap_or_default(),
            ipv4: ipv4(host),
            ipv6: ipv6(host),
            backend_count: FamilyCountsJson {
                ipv4: vlan.backends_ipv4,
                ipv6: vlan.backends_ipv6,
            },
            vip_count: FamilyCountsJson {
                ipv4: vlan.vips_ipv4,
                ipv6: vlan.vips_ipv6,
            },
        }
    }
}

/// `show vlans`.
#[derive(Debug, Serialize)]
pub struct VlansJson {
    pub vlans: Vec<VlanJson>,
}

#[derive(Debug, Serialize)]
pub struct NeighborJson {
    pub ip: String,
    pub router_id: String,
    pub asn: u32,
    pub description: String,
    pub state: String,
    pub uptime_ms: u64,
}

impl From<&BgpNeighbor> for NeighborJson {
    fn from(n: &BgpNeighbor) -> Self {
        NeighborJson {
            ip: n.ip.clone(),
            router_id: n.router_id.clone(),
            asn: n.asn,
            description: n.description.clone(),
            state: n.state.clone(),
            uptime_ms: n.uptime_ms,
        }
    }
}

/// `show bgp neighbors`.
#[derive(Debug, Serialize)]
pub struct NeighborsJson {
    pub neighbors: Vec<NeighborJson>,
}

/// IPVS counters and rates of a service or destination.
#[derive(Debug, Default, Serialize)]
pub struct StatsJson {
    pub connections: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub cps: u64,
    pub pps_in: u64,
    pub pps_out: u64,
    pub bps_in: u64,
    pub bps_out: u64,
}

impl From<Option<&IpvsStats>> for StatsJson {
    fn from(stats: Option<&IpvsStats>) -> Self {
        let Some(s) = stats else {
            return StatsJson::default();
        };
        StatsJson {
            connections: s.connections,
            packets_in: s.packets_in,
            packets_out: s.packets_out,
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            cps: s.cps,
            pps_in: s.pps_in,
            pps_out: s.pps_out,
            bps_in: s.bps_in,
            bps_out: s.bps_out,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConnectionsJson {
    pub active: u32,
    pub inactive: u32,
    pub persistent: u32,
}

#[derive(Debug, Serialize)]
pub struct DestinationJson {
    pub name: String,
    pub vserver: String,
    pub vserver_enabled: bool,
    pub backend: String,
    pub weight: i32,
    pub enabled: bool,
    pub healthy: bool,
    pub active: bool,
    /// The summary the text output shows in brackets.
    pub status: String,
    pub stats: StatsJson,
    pub connections: ConnectionsJson,
}

impl From<&DestinationView<'_>> for DestinationJson {
    fn from(view: &DestinationView) -> Self {
        let d = view.destination;
        DestinationJson {
            name: d.name.clone(),
            vserver: d.vserver_name.clone(),
            vserver_enabled: view.vserver_enabled,
            backend: backend_hostname(d).to_string(),
            weight: d.weight,
            enabled: d.enabled,
            healthy: d.healthy,
            active: d.active,
            status: destination_status(view),
            stats: StatsJson::from(d.stats.as_ref()),
            connections: ConnectionsJson {
                active: d.active_conns,
                inactive: d.inactive_conns,
                persistent: d.persist_conns,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct WatermarksJson {
    pub low: f64,
    pub high: f64,
    pub current: f64,
}

#[derive(Debug, Serialize)]
pub struct ServiceJson {
    /// `IPv4` or `IPv6`.
    pub family: String,
    /// `TCP`, `UDP`, or `IP(0)` for a firewall-mark service.
    pub protocol: String,
    pub port: u32,
    pub ip: String,
    /// The firewall mark; 0 for a service on an address and port.
    pub fwmark: u32,
    pub mode: String,
    pub scheduler: String,
    pub one_packet: bool,
    pub persistence_s: u32,
    pub enabled: bool,
    pub healthy: bool,
    pub active: bool,
    pub watermarks: WatermarksJson,
    pub stats: StatsJson,
    pub destinations: Vec<DestinationJson>,
}

impl ServiceJson {
    fn new(vserver: &Vserver, service: &Service) -> Self {
        let mut destinations: Vec<DestinationView> = service
            .destinations
            .iter()
            .map(|destination| DestinationView {
                destination,
                vserver_enabled: vserver.enabled,
                vserver_known: true,
            })
            .collect();
        destinations.sort_by(|a, b| a.destination.name.cmp(&b.destination.name));
        ServiceJson {
            family: family_name(service.family),
            protocol: protocol_name(service.protocol),
            port: service.port,
            ip: service.ip.clone(),
            fwmark: service.fwmark,
            mode: if service.mode.is_empty() {
                "None".to_string()
            } else {
                service.mode.clone()
            },
            scheduler: service.scheduler.clone(),
            one_packet: service.one_packet,
            persistence_s: service.persistence,
            enabled: service.enabled,
            healthy: service.healthy,
            active: service.active,
            watermarks: WatermarksJson {
                low: ratio(service.low_watermark),
                high: ratio(service.high_watermark),
                current: ratio(service.current_watermark),
            },
            stats: StatsJson::from(service.stats.as_ref()),
            destinations: destinations.iter().map(DestinationJson::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct VserverJson {
    pub name: String,
    pub hostname: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    /// The effective state, after the override.
    pub enabled: bool,
    pub config_enabled: bool,
    /// `default`, `disabled` or `enabled`.
    pub override_state: String,
    pub services: Vec<ServiceJson>,
    pub warnings: Vec<String>,
}

impl From<&Vserver> for VserverJson {
    fn from(vserver: &Vserver) -> Self {
        let host = vserver.host.as_ref();
        VserverJson {
            name: vserver.name.clone(),
            hostname: host.map(|h| h.hostname.clone()).unwrap_or_default(),
            ipv4: ipv4(host),
            ipv6: ipv6(host),
            enabled: vserver.enabled,
            config_enabled: vserver.config_enabled,
            override_state: override_state_name(vserver.override_state).to_string(),
            services: sorted_services(vserver)
                .into_iter()
                .map(|s| ServiceJson::new(vserver, s))
                .collect(),
            warnings: vserver.warnings.clone(),
        }
    }
}

/// `show vservers`.
#[derive(Debug, Serialize)]
pub struct VserversJson {
    pub vservers: Vec<VserverJson>,
}

/// `show destinations`.
#[derive(Debug, Serialize)]
pub struct DestinationsJson {
    pub destinations: Vec<DestinationJson>,
}

#[derive(Debug, Serialize)]
pub struct BackendJson {
    pub hostname: String,
    /// `enabled`, `partially disabled` or `disabled`.
    pub status: String,
    pub destinations: Vec<DestinationJson>,
}

/// `show backends`.
#[derive(Debug, Serialize)]
pub struct BackendsJson {
    pub backends: Vec<BackendJson>,
}

impl From<&BackendGroups<'_>> for BackendsJson {
    fn from(groups: &BackendGroups) -> Self {
        BackendsJson {
            backends: groups
                .iter()
                .map(|(host, views)| BackendJson {
                    hostname: host.to_string(),
                    status: backend_state(views).name().to_string(),
                    destinations: views.iter().map(DestinationJson::from).collect(),
                })
                .collect(),
        }
    }
}

/// `show version`.
#[derive(Debug, Serialize)]
pub struct VersionJson {
    /// The version of this shell.
    pub cli_version: String,
    /// The engine's API version, as `show nodes` reports it.
    pub engine_version: u32,
}

/// Serializes `value` as pretty-printed JSON with a final newline.
pub fn to_text<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|error| {
        // Serializing these plain structs cannot fail, but report it if it does.
        format!("{{\"error\": \"cannot serialize the output: {error}\"}}")
    });
    text.push('\n');
    text
}
