//! Deriving the typed [`Cluster`] from cluster.pb, with every semantic check.
//!
//! The derivation follows Seesaw's: defaults, check names, node priorities,
//! VIP types and status rules are the same. It also rejects what Seesaw
//! crashed on or silently misbehaved on: a `seesaw_vip` without status,
//! addresses that are not CIDR, a vserver on the cluster VIP, a unicast VIP
//! that no interface carries, and health-check intervals of zero. What
//! Seesaw skipped with a log line stays a warning here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::cluster_text::{ParsedCluster, decode_cluster_binary, parse_cluster_text};
use crate::diag::{Diagnostic, Position, Rejected};
use crate::model::*;
use crate::pb;
use crate::text_spans::SpanIndex;

/// The values from this node's seesaw.cfg that cluster.pb is checked
/// against.
#[derive(Debug, Clone, Default)]
pub struct NodeContext {
    /// seesaw.cfg, named in messages about the values below.
    pub node_config_file: PathBuf,
    /// `[cluster] name`.
    pub site: String,
    pub cluster_vip_ipv4: Option<Ipv4Addr>,
    pub cluster_vip_ipv6: Option<Ipv6Addr>,
    pub node_ipv4: Option<Ipv4Addr>,
    pub node_ipv6: Option<Ipv6Addr>,
    /// `[cluster] anycast_ipv4_range` and `anycast_ipv6_range`, which
    /// decide which VIPs are anycast.
    pub anycast_ranges: AnycastRanges,
}

/// A cluster.pb that passed every check.
#[derive(Debug, Clone)]
pub struct LoadedCluster {
    pub cluster: Cluster,
    /// Findings that do not reject the file, such as a skipped duplicate.
    pub warnings: Vec<Diagnostic>,
    /// Remarks about valid but easily misunderstood set-ups, for summaries.
    pub notes: Vec<String>,
}

/// Reads, parses and checks the cluster.pb at `path`.
pub fn read_cluster_file(path: &Path, context: &NodeContext) -> Result<LoadedCluster, Rejected> {
    let bytes = std::fs::read(path).map_err(|error| {
        Rejected(vec![Diagnostic::error(
            path,
            None,
            format!("cannot read the cluster configuration: {error}"),
        )])
    })?;

    // Seesaw reads the file as bytes, so a comment saved in Latin-1 loads
    // there. Accept it here too, with the bad bytes replaced, and warn with the position.
    let (text, encoding_warning) = match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(error) => {
            let valid_up_to = error.utf8_error().valid_up_to();
            let bytes = error.into_bytes();
            let position =
                Position::from_offset(&String::from_utf8_lossy(&bytes[..valid_up_to]), valid_up_to);
            let warning = Diagnostic::warning(
                path,
                Some(position),
                "the file is not valid UTF-8: invalid bytes are read as U+FFFD; save the file as UTF-8",
            );
            (String::from_utf8_lossy(&bytes).into_owned(), Some(warning))
        }
    };

    let mut result = load_cluster_text(path, &text, context);
    if let Some(warning) = encoding_warning {
        match &mut result {
            Ok(loaded) => loaded.warnings.insert(0, warning),
            Err(Rejected(found)) => found.push(warning),
        }
    }
    result
}

/// Parses and checks cluster.pb text. `file` only names the source in
/// messages.
pub fn load_cluster_text(
    file: &Path,
    text: &str,
    context: &NodeContext,
) -> Result<LoadedCluster, Rejected> {
    let ParsedCluster { message, spans } = parse_cluster_text(file, text)?;
    derive_cluster(&message, &spans, file, context)
}

/// Decodes and checks a binary (wire-format) Cluster, as a config server
/// or the peer sends it. `source` only names the input in messages, such as
/// the URL it was fetched from. Binary input has no lines or columns.
pub fn load_cluster_binary(
    source: &Path,
    bytes: &[u8],
    context: &NodeContext,
) -> Result<LoadedCluster, Rejected> {
    let message = decode_cluster_binary(source, bytes)?;
    derive_cluster(&message, &SpanIndex::default(), source, context)
}

/// Derives and checks the model from a parsed message. `spans` gives the
/// positions for messages; pass an empty index for binary input.
pub fn derive_cluster(
    message: &pb::Cluster,
    spans: &SpanIndex,
    file: &Path,
    context: &NodeContext,
) -> Result<LoadedCluster, Rejected> {
    let mut deriver = Deriver {
        file,
        spans,
        context,
        errors: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
        vserver_index: HashMap::new(),
        dsr_plain: Vec::new(),
        node_address_invalid: false,
    };
    let cluster = deriver.cluster(message);

    if deriver.errors.is_empty() {
        sort_by_position(&mut deriver.warnings);
        return Ok(LoadedCluster {
            cluster,
            warnings: deriver.warnings,
            notes: deriver.notes,
        });
    }

    sort_by_position(&mut deriver.errors);
    sort_by_position(&mut deriver.warnings);
    let mut all = deriver.errors;
    all.append(&mut deriver.warnings);
    Err(Rejected(all))
}

fn sort_by_position(diagnostics: &mut [Diagnostic]) {
    // Unpositioned findings go last; the sort is stable, so they keep their
    // order of discovery.
    diagnostics.sort_by_key(|d| d.position.map_or((usize::MAX, 0), |p| (p.line, p.column)));
}

/// Reports whether a status lets a host serve: PRODUCTION or TESTING.
fn status_serves(status: HostStatus) -> bool {
    matches!(status, HostStatus::Production | HostStatus::Testing)
}

fn host_status(host: &pb::Host) -> HostStatus {
    // An unset or unknown status reads as the enum's first value.
    host.status
        .and_then(|s| HostStatus::try_from(s).ok())
        .unwrap_or(HostStatus::Production)
}

struct Deriver<'a> {
    file: &'a Path,
    spans: &'a SpanIndex,
    context: &'a NodeContext,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    notes: Vec<String>,
    /// Set when a node's address fails to parse, so that the node is not
    /// also reported as missing.
    node_address_invalid: bool,
    /// DSR services whose checks are all PLAIN, as `<vserver> <entry>`.
    dsr_plain: Vec<String>,
    /// Position in the file of each vserver kept, by name.
    vserver_index: HashMap<String, usize>,
}

impl Deriver<'_> {
    fn error(&mut self, path: &str, message: String) {
        let position = self.spans.value_position(path);
        self.errors
            .push(Diagnostic::error(self.file, position, message));
    }

    fn warning(&mut self, path: &str, message: String) {
        let position = self.spans.value_position(path);
        self.warnings
            .push(Diagnostic::warning(self.file, position, message));
    }

    fn cluster(&mut self, message: &pb::Cluster) -> Cluster {
        let vip = self.seesaw_vip(&message.seesaw_vip);
        let access_groups = self.access_groups(message);
        let bgp_peers = self.bgp_peers(message);
        let status = config_status(message);
        let nodes = self.nodes(message);
        let vip_subnets = self.vip_subnets(message);

        let mut cluster = Cluster {
            site: self.context.site.clone(),
            anycast_ranges: self.context.anycast_ranges,
            vip,
            bgp_local_asn: message.bgp_local_asn(),
            bgp_remote_asn: message.bgp_remote_asn(),
            bgp_peers,
            nodes,
            vip_subnets,
            vlans: BTreeMap::new(),
            vservers: BTreeMap::new(),
            access_groups,
            status,
        };
        cluster.vlans = self.vlans(message);
        cluster.vservers = self.vservers(message, &cluster);
        count_vlan_addresses(&mut cluster);
        if !self.dsr_plain.is_empty() {
            self.notes.push(format!(
                "DSR backends must hold the VIP themselves, and a PLAIN check cannot see whether they do ({} with only PLAIN checks: {})",
                plural(self.dsr_plain.len(), "DSR service"),
                self.dsr_plain.join(", ")
            ));
        }

        self.check_node_identity(&cluster);
        self.check_unicast_vips(&cluster);
        self.check_shared_services(&cluster);
        self.check_bgp(message, &cluster);
        self.check_anycast_ranges(message, &cluster);
        cluster
    }

    fn seesaw_vip(&mut self, vip: &pb::Host) -> Host {
        if vip.status.is_none() {
            self.error(
                "seesaw_vip[0]",
                "seesaw_vip has no status: add 'status: PRODUCTION' to take part in HA (TESTING and BUILDING also enable HA; STANDBY, FAILURE, DISABLED and PROPOSED disable it)".to_string(),
            );
        }
        self.host(vip, "seesaw_vip[0]")
    }

    /// Converts a host, rejecting addresses that are not CIDR of the right
    /// family.
    fn host(&mut self, host: &pb::Host, path: &str) -> Host {
        Host {
            hostname: host.fqdn.clone(),
            ipv4: host
                .ipv4
                .as_deref()
                .and_then(|value| self.ipv4_cidr(value, &format!("{path}.ipv4[0]"), &host.fqdn)),
            ipv6: host
                .ipv6
                .as_deref()
                .and_then(|value| self.ipv6_cidr(value, &format!("{path}.ipv6[0]"), &host.fqdn)),
            status: host_status(host),
        }
    }

    fn ipv4_cidr(&mut self, value: &str, path: &str, owner: &str) -> Option<Ipv4Net> {
        match self.parse_host_cidr(value, path) {
            Ok(IpNet::V4(net)) => Some(net),
            Ok(IpNet::V6(_)) => {
                self.error(path, format!("ipv4 of '{owner}' is \"{value}\", an IPv6 address: move it to the ipv6 field"));
                None
            }
            Err(problem) => {
                self.error(path, format!("ipv4 of '{owner}' is \"{value}\", {problem}"));
                None
            }
        }
    }

    fn ipv6_cidr(&mut self, value: &str, path: &str, owner: &str) -> Option<Ipv6Net> {
        match self.parse_host_cidr(value, path) {
            Ok(IpNet::V6(net)) => Some(net),
            Ok(IpNet::V4(_)) => {
                self.error(path, format!("ipv6 of '{owner}' is \"{value}\", an IPv4 address: move it to the ipv4 field"));
                None
            }
            Err(problem) => {
                self.error(path, format!("ipv6 of '{owner}' is \"{value}\", {problem}"));
                None
            }
        }
    }

    /// Parses a host address. The prefix of a node, VLAN or cluster VIP
    /// address is its subnet's, which decides the networks the node carries,
    /// so a missing one gets advice different from a VIP's or a backend's.
    fn parse_host_cidr(&mut self, value: &str, path: &str) -> Result<IpNet, String> {
        let network_host = ["seesaw_vip[", "node[", "vlan["]
            .iter()
            .any(|root| path.starts_with(root));
        if path.starts_with("node[") && parse_cidr(value).is_err() {
            self.node_address_invalid = true;
        }
        match (parse_cidr(value), value.parse::<IpAddr>()) {
            (Err(_), Ok(ip)) if network_host => {
                let example = if ip.is_ipv4() { 24 } else { 64 };
                Err(format!(
                    "which has no prefix length: write it with the length of its subnet, such as {ip}/{example}"
                ))
            }
            (result, _) => result,
        }
    }

    fn access_groups(&mut self, message: &pb::Cluster) -> BTreeMap<String, Vec<String>> {
        let mut groups = BTreeMap::new();
        for (i, group) in message.access_groups.iter().enumerate() {
            if groups.contains_key(&group.name) {
                self.error(
                    &format!("access_groups[{i}].name[0]"),
                    format!(
                        "access group '{}' is defined twice: merge the two definitions",
                        group.name
                    ),
                );
                continue;
            }
            groups.insert(group.name.clone(), group.member.clone());
        }
        groups
    }

    fn bgp_peers(&mut self, message: &pb::Cluster) -> BTreeMap<String, Host> {
        let mut peers = BTreeMap::new();
        for (i, peer) in message.bgp_peer.iter().enumerate() {
            let path = format!("bgp_peer[{i}]");
            let host = self.host(peer, &path);
            if peers.contains_key(&peer.fqdn) {
                self.error(
                    &format!("{path}.fqdn[0]"),
                    format!("BGP peer '{}' is listed twice: remove one", peer.fqdn),
                );
                continue;
            }
            peers.insert(peer.fqdn.clone(), host);
        }
        peers
    }

    /// Derives the nodes: HA state from the statuses, and priorities from
    /// the order of the IPv4 addresses.
    fn nodes(&mut self, message: &pb::Cluster) -> BTreeMap<String, Node> {
        let vip_status = host_status(&message.seesaw_vip);
        let ha_enabled = matches!(
            vip_status,
            HostStatus::Production | HostStatus::Testing | HostStatus::Building
        );

        let mut nodes = BTreeMap::new();
        let mut owners: HashMap<Ipv4Addr, String> = HashMap::new();
        for (i, proto_node) in message.node.iter().enumerate() {
            let path = format!("node[{i}]");
            let host = self.host(proto_node, &path);
            if nodes.contains_key(&proto_node.fqdn) {
                self.error(
                    &format!("{path}.fqdn[0]"),
                    format!("node '{}' is listed twice: remove one", proto_node.fqdn),
                );
                continue;
            }
            if let Some(ip) = host.ipv4.map(|net| net.addr())
                && let Some(other) = owners.insert(ip, proto_node.fqdn.clone())
            {
                self.error(
                        &format!("{path}.ipv4[0]"),
                        format!("nodes '{other}' and '{}' both have the address {ip}: each node needs its own", proto_node.fqdn),
                    );
            }

            let status = host.status;
            let state = if !ha_enabled || status != vip_status {
                NodeState::Disabled
            } else {
                NodeState::Unknown
            };
            let (bgp_enabled, anycast_enabled, vservers_enabled) = match status {
                HostStatus::Building => (true, false, false),
                HostStatus::Testing | HostStatus::Production => (true, true, true),
                _ => (false, false, false),
            };
            nodes.insert(
                proto_node.fqdn.clone(),
                Node {
                    host,
                    priority: 0,
                    state,
                    bgp_enabled,
                    anycast_enabled,
                    vservers_enabled,
                },
            );
        }

        // The lowest IPv4 address gets 255 and the rest count down from the
        // number of nodes, so a pair has 255 and 1. Nodes without IPv4 sort
        // first. Status plays no part.
        let mut order: Vec<(Option<Ipv4Addr>, String)> = nodes
            .values()
            .map(|n| (n.host.ipv4.map(|net| net.addr()), n.host.hostname.clone()))
            .collect();
        order.sort();
        let count = order.len();
        for (index, (_, name)) in order.iter().enumerate() {
            let priority = if index == 0 {
                255
            } else {
                (count - index).min(254) as u8
            };
            if let Some(node) = nodes.get_mut(name) {
                node.priority = priority;
            }
        }
        nodes
    }

    fn vip_subnets(&mut self, message: &pb::Cluster) -> BTreeMap<String, IpNet> {
        let mut subnets = BTreeMap::new();
        for (i, value) in message.dedicated_vip_subnet.iter().enumerate() {
            let path = format!("dedicated_vip_subnet[{i}]");
            let net = match parse_cidr(value) {
                Ok(net) => net.trunc(),
                Err(problem) => {
                    self.error(&path, format!("dedicated_vip_subnet \"{value}\" {problem}"));
                    continue;
                }
            };
            let key = net.to_string();
            if subnets.insert(key.clone(), net).is_some() {
                self.error(
                    &path,
                    format!("dedicated_vip_subnet {key} is listed twice: remove one"),
                );
            }
        }
        subnets
    }

    fn vlans(&mut self, message: &pb::Cluster) -> BTreeMap<u16, Vlan> {
        let mut vlans = BTreeMap::new();
        for (i, proto_vlan) in message.vlan.iter().enumerate() {
            let path = format!("vlan[{i}]");
            let host = self.host(&proto_vlan.host, &format!("{path}.host[0]"));
            let id = proto_vlan.vlan_id;
            if !(1..=4094).contains(&id) {
                self.error(
                    &format!("{path}.vlan_id[0]"),
                    format!("vlan_id {id} is out of range: 802.1Q VLAN IDs run from 1 to 4094"),
                );
                continue;
            }
            let id = id as u16;
            if vlans.contains_key(&id) {
                self.error(
                    &format!("{path}.vlan_id[0]"),
                    format!("VLAN {id} is defined twice: remove one"),
                );
                continue;
            }
            vlans.insert(
                id,
                Vlan {
                    id,
                    host,
                    backend_count: Default::default(),
                    vip_count: Default::default(),
                },
            );
        }
        vlans
    }

    fn vservers(&mut self, message: &pb::Cluster, cluster: &Cluster) -> BTreeMap<String, Vserver> {
        let mut vservers = BTreeMap::new();
        for (i, proto_vserver) in message.vserver.iter().enumerate() {
            let path = format!("vserver[{i}]");
            if vservers.contains_key(&proto_vserver.name) {
                self.warning(
                    &format!("{path}.name[0]"),
                    format!("vserver '{}' is defined twice: this one is ignored, so rename or remove it", proto_vserver.name),
                );
                continue;
            }
            let vserver = self.vserver(proto_vserver, &path, cluster);
            self.vserver_index.insert(vserver.name.clone(), i);
            vservers.insert(vserver.name.clone(), vserver);
        }
        vservers
    }

    fn vserver(&mut self, proto: &pb::Vserver, path: &str, cluster: &Cluster) -> Vserver {
        let name = proto.name.as_str();
        let host = self.host(&proto.entry_address, &format!("{path}.entry_address[0]"));
        let vips: Vec<Vip> = host
            .ips()
            .map(|ip| Vip {
                ip,
                vip_type: cluster.vip_type(ip),
            })
            .collect();
        self.check_cluster_vip_collision(name, &host, path);
        self.check_node_address_collision(name, &host, path, cluster);

        let healthchecks = self.healthchecks(&proto.healthcheck, 0, path, name);
        let entries = self.entries(proto, path);
        let backends = self.backends(proto, path);
        let access_grants = self.access_grants(proto, path);

        if proto.use_fwm() && entries.is_empty() {
            self.error(path, format!("vserver '{name}' sets use_fwm but has no vserver_entry: add the ports it serves"));
        } else if entries.is_empty() {
            self.warning(path, format!("vserver '{name}' has no vserver_entry, so it serves nothing: add the ports it serves"));
        }
        let checked =
            !healthchecks.is_empty() || entries.values().any(|e| !e.healthchecks.is_empty());
        if !entries.is_empty() && !checked && !backends.is_empty() {
            self.warning(
                path,
                format!("vserver '{name}' has no healthcheck, so its backends never become healthy and it never serves traffic: add a healthcheck"),
            );
        }

        let mut warnings = proto.warning.clone();
        warnings.sort();
        let vserver = Vserver {
            name: name.to_string(),
            enabled: status_serves(host.status),
            host,
            entries,
            backends,
            healthchecks,
            vips,
            access_grants,
            use_fwm: proto.use_fwm(),
            warnings,
        };
        self.find_dsr_plain_checks(&vserver);
        vserver
    }

    fn check_cluster_vip_collision(&mut self, name: &str, host: &Host, path: &str) {
        let cluster_vips = [
            self.context.cluster_vip_ipv4.map(IpAddr::V4),
            self.context.cluster_vip_ipv6.map(IpAddr::V6),
        ];
        for ip in host.ips() {
            if cluster_vips.contains(&Some(ip)) {
                let field = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
                let key = if ip.is_ipv4() { "vip_ipv4" } else { "vip_ipv6" };
                self.error(
                    &format!("{path}.entry_address[0].{field}[0]"),
                    format!(
                        "vserver '{name}' uses {ip}, the cluster VIP ({key} in {}): give the vserver an address of its own",
                        self.context.node_config_file.display()
                    ),
                );
            }
        }
    }

    /// Rejects a VIP that is a node's own address or a VLAN's: the NCC
    /// would add it to the LB interface of both nodes and take it away
    /// with mastership, or delete the VLAN's address with the VIP.
    fn check_node_address_collision(
        &mut self,
        name: &str,
        host: &Host,
        path: &str,
        cluster: &Cluster,
    ) {
        for ip in host.ips() {
            let node = cluster
                .nodes
                .values()
                .find(|node| node.host.ips().any(|own| own == ip));
            let vlan = cluster
                .vlans
                .values()
                .find(|vlan| vlan.host.ips().any(|own| own == ip));
            let message = match (node, vlan) {
                (Some(node), _) => format!(
                    "vserver '{name}' uses {ip}, the address of node '{}': give the vserver an address of its own",
                    node.host.hostname
                ),
                (None, Some(vlan)) => format!(
                    "vserver '{name}' uses {ip}, the load balancer's own address on VLAN {}: give the vserver another address in that VLAN's network",
                    vlan.id
                ),
                (None, None) => continue,
            };
            let field = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
            self.error(&format!("{path}.entry_address[0].{field}[0]"), message);
        }
    }

    fn entries(&mut self, proto: &pb::Vserver, path: &str) -> BTreeMap<String, VserverEntry> {
        let mut entries = BTreeMap::new();
        for (j, proto_entry) in proto.vserver_entry.iter().enumerate() {
            let entry_path = format!("{path}.vserver_entry[{j}]");
            let Some(entry) = self.entry(proto_entry, &entry_path, &proto.name) else {
                continue;
            };
            let key = entry.key();
            if entries.contains_key(&key) {
                self.warning(
                    &entry_path,
                    format!(
                        "vserver '{}' has two entries for {key}: this one is ignored, so remove it",
                        proto.name
                    ),
                );
                continue;
            }
            entries.insert(key, entry);
        }
        entries
    }

    fn entry(
        &mut self,
        proto: &pb::VserverEntry,
        path: &str,
        vserver: &str,
    ) -> Option<VserverEntry> {
        let port = self.port(proto.port, &format!("{path}.port[0]"), vserver, false)?;
        let protocol = match proto.protocol() {
            pb::Protocol::Tcp => Protocol::Tcp,
            pb::Protocol::Udp => Protocol::Udp,
        };
        let scheduler = match proto.scheduler() {
            pb::vserver_entry::Scheduler::Rr => Scheduler::Rr,
            pb::vserver_entry::Scheduler::Wrr => Scheduler::Wrr,
            pb::vserver_entry::Scheduler::Lc => Scheduler::Lc,
            pb::vserver_entry::Scheduler::Wlc => Scheduler::Wlc,
            pb::vserver_entry::Scheduler::Sh => Scheduler::Sh,
            pb::vserver_entry::Scheduler::Mh => Scheduler::Mh,
        };
        let mode = match proto.mode() {
            pb::vserver_entry::Mode::Dsr => ForwardingMode::Dsr,
            pb::vserver_entry::Mode::Nat => ForwardingMode::Nat,
            pb::vserver_entry::Mode::Tun => ForwardingMode::Tun,
        };

        let persistence = self.non_negative(
            proto.persistence(),
            &format!("{path}.persistence[0]"),
            "persistence",
            vserver,
        );
        let lower_threshold = self.non_negative(
            proto.lthreshold(),
            &format!("{path}.lthreshold[0]"),
            "lthreshold",
            vserver,
        );
        let upper_threshold = self.non_negative(
            proto.uthreshold(),
            &format!("{path}.uthreshold[0]"),
            "uthreshold",
            vserver,
        );
        let low = self.watermark(
            proto.server_low_watermark(),
            &format!("{path}.server_low_watermark[0]"),
            "server_low_watermark",
            vserver,
        );
        let high = self.watermark(
            proto.server_high_watermark(),
            &format!("{path}.server_high_watermark[0]"),
            "server_high_watermark",
            vserver,
        );
        let healthchecks = self.healthchecks(&proto.healthcheck, port, path, vserver);

        Some(VserverEntry {
            port,
            protocol,
            scheduler,
            mode,
            persistence: Duration::from_secs(persistence.into()),
            one_packet: proto.one_packet(),
            // An unset low watermark stays 0, as Seesaw does, so a healthy
            // service stays up while any destination is healthy.
            high_watermark: high.max(low),
            low_watermark: low,
            lower_threshold,
            upper_threshold,
            healthchecks,
        })
    }

    fn port(&mut self, value: i32, path: &str, vserver: &str, zero_allowed: bool) -> Option<u16> {
        let minimum = if zero_allowed { 0 } else { 1 };
        if (minimum..=65535).contains(&value) {
            return Some(value as u16);
        }
        self.error(
            path,
            format!("port {value} in vserver '{vserver}' is out of range: use {minimum} to 65535"),
        );
        None
    }

    fn non_negative(&mut self, value: i32, path: &str, field: &str, vserver: &str) -> u32 {
        if value >= 0 {
            return value as u32;
        }
        self.error(
            path,
            format!("{field} {value} in vserver '{vserver}' is negative: use 0 or more"),
        );
        0
    }

    fn watermark(&mut self, value: f32, path: &str, field: &str, vserver: &str) -> f32 {
        if (0.0..=1.0).contains(&value) {
            return value;
        }
        self.error(
            path,
            format!("{field} {value} in vserver '{vserver}' is not a fraction: use 0.0 to 1.0, the share of backends that must be healthy"),
        );
        0.0
    }

    /// Converts and names checks. Names are `<TYPE>/<port>_<n>`, with `n`
    /// counting checks of the same type and port in a fixed order.
    fn healthchecks(
        &mut self,
        protos: &[pb::Healthcheck],
        default_port: u16,
        path: &str,
        vserver: &str,
    ) -> BTreeMap<String, Healthcheck> {
        let mut checks: Vec<Healthcheck> = Vec::new();
        for (k, proto) in protos.iter().enumerate() {
            let check_path = format!("{path}.healthcheck[{k}]");
            if let Some(check) = self.healthcheck(proto, default_port, &check_path, vserver) {
                checks.push(check);
            }
        }

        // Sort on every field so the names are the same on every load.
        checks.sort_by(|a, b| {
            (
                a.check_type,
                a.port,
                &a.send,
                &a.receive,
                &a.method,
                a.code,
                a.proxy,
                a.tls_verify,
                a.interval,
                a.timeout,
                a.mode,
                a.retries,
            )
                .cmp(&(
                    b.check_type,
                    b.port,
                    &b.send,
                    &b.receive,
                    &b.method,
                    b.code,
                    b.proxy,
                    b.tls_verify,
                    b.interval,
                    b.timeout,
                    b.mode,
                    b.retries,
                ))
        });
        let mut named = BTreeMap::new();
        let mut counter = 0;
        let mut previous: Option<(HealthcheckType, u16)> = None;
        for mut check in checks {
            let group = (check.check_type, check.port);
            counter = if previous == Some(group) {
                counter + 1
            } else {
                0
            };
            previous = Some(group);
            check.name = format!("{}/{}_{}", check.check_type.name(), check.port, counter);
            named.insert(check.name.clone(), check);
        }
        named
    }

    fn healthcheck(
        &mut self,
        proto: &pb::Healthcheck,
        default_port: u16,
        path: &str,
        vserver: &str,
    ) -> Option<Healthcheck> {
        use pb::healthcheck::{Mode, Type};

        let check_type = match proto.r#type() {
            Type::IcmpPing => HealthcheckType::Icmp,
            Type::Udp => HealthcheckType::Udp,
            Type::Tcp => HealthcheckType::Tcp,
            Type::Http => HealthcheckType::Http,
            Type::Https => HealthcheckType::Https,
            Type::Dns => HealthcheckType::Dns,
            Type::TcpTls => HealthcheckType::TcpTls,
            Type::Radius => HealthcheckType::Radius,
        };
        let mode = match proto.mode() {
            Mode::Plain => HealthcheckMode::Plain,
            Mode::Dsr => HealthcheckMode::Dsr,
            Mode::Tun => HealthcheckMode::Tun,
        };

        let port = match proto.port {
            Some(port) if port != 0 => {
                self.port(port, &format!("{path}.port[0]"), vserver, true)?
            }
            _ => default_port,
        };
        if port == 0 && check_type != HealthcheckType::Icmp {
            self.warning(
                path,
                format!(
                    "{} check in vserver '{vserver}' has no port, so it probes port 0: set port",
                    check_type.name()
                ),
            );
        }

        let mut valid = true;
        for (field, value) in [("interval", proto.interval()), ("timeout", proto.timeout())] {
            if value <= 0 {
                self.error(
                    &format!("{path}.{field}[0]"),
                    format!("healthcheck {field} {value} in vserver '{vserver}' must be at least 1 second"),
                );
                valid = false;
            }
        }
        if proto.retries() < 0 {
            self.error(
                &format!("{path}.retries[0]"),
                format!(
                    "healthcheck retries {} in vserver '{vserver}' is negative: use 0 or more",
                    proto.retries()
                ),
            );
            valid = false;
        }
        if check_type == HealthcheckType::Icmp && mode != HealthcheckMode::Plain {
            self.warning(
                path,
                format!("ICMP check in vserver '{vserver}' uses {mode} mode, which ping cannot do, so it never passes: use mode PLAIN"),
            );
        }
        if check_type == HealthcheckType::Dns && proto.method().is_empty() {
            self.warning(
                path,
                format!("DNS check in vserver '{vserver}' has no method, so it never passes: set method to the query type, such as \"A\""),
            );
        }
        if !valid {
            return None;
        }

        Some(Healthcheck {
            name: String::new(),
            check_type,
            mode,
            port,
            interval: Duration::from_secs(proto.interval() as u64),
            timeout: Duration::from_secs(proto.timeout() as u64),
            retries: proto.retries() as u32,
            send: proto.send().to_string(),
            receive: proto.receive().to_string(),
            code: proto.code(),
            method: proto.method().to_string(),
            proxy: proto.proxy(),
            tls_verify: proto.tls_verify(),
        })
    }

    fn backends(&mut self, proto: &pb::Vserver, path: &str) -> BTreeMap<String, Backend> {
        let mut backends = BTreeMap::new();
        let mut owners: HashMap<IpAddr, String> = HashMap::new();
        for (j, proto_backend) in proto.backend.iter().enumerate() {
            let backend_path = format!("{path}.backend[{j}]");
            let host = self.host(&proto_backend.host, &format!("{backend_path}.host[0]"));
            let hostname = host.hostname.clone();
            if backends.contains_key(&hostname) {
                self.warning(
                    &format!("{backend_path}.host[0].fqdn[0]"),
                    format!("backend '{hostname}' appears twice in vserver '{}': this one is ignored, so remove it", proto.name),
                );
                continue;
            }

            for ip in host.ips() {
                if let Some(other) = owners.insert(ip, hostname.clone()) {
                    let field = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
                    self.error(
                        &format!("{backend_path}.host[0].{field}[0]"),
                        format!(
                            "backends '{other}' and '{hostname}' of vserver '{}' both have the address {ip}: IPVS takes each destination once, so remove one",
                            proto.name
                        ),
                    );
                }
            }

            let cluster_vips = [
                self.context.cluster_vip_ipv4.map(IpAddr::V4),
                self.context.cluster_vip_ipv6.map(IpAddr::V6),
            ];
            for ip in host.ips().filter(|ip| cluster_vips.contains(&Some(*ip))) {
                let field = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
                self.error(
                    &format!("{backend_path}.host[0].{field}[0]"),
                    format!(
                        "backend '{hostname}' of vserver '{}' is {ip}, the cluster VIP ({}): use the backend's own address",
                        proto.name,
                        self.context.node_config_file.display()
                    ),
                );
            }

            let weight = proto_backend.weight();
            if weight < 0 {
                self.error(
                    &format!("{backend_path}.weight[0]"),
                    format!("weight {weight} of backend '{hostname}' is negative: use 0 or more"),
                );
            }
            let status = host.status;
            backends.insert(
                hostname,
                Backend {
                    host,
                    weight: weight.max(0),
                    enabled: status_serves(status),
                    in_service: !matches!(status, HostStatus::Proposed | HostStatus::Building),
                },
            );
        }
        backends
    }

    fn access_grants(&mut self, proto: &pb::Vserver, path: &str) -> BTreeMap<String, AccessGrant> {
        let mut grants = BTreeMap::new();
        for (j, proto_grant) in proto.access_grant.iter().enumerate() {
            let grant = AccessGrant {
                grantee: proto_grant.grantee.clone(),
                is_group: proto_grant.r#type() == pb::access_grant::Type::Group,
            };
            let key = grant.key();
            if grants.contains_key(&key) {
                self.warning(
                    &format!("{path}.access_grant[{j}]"),
                    format!(
                        "access grant {key} appears twice in vserver '{}': remove one",
                        proto.name
                    ),
                );
                continue;
            }
            grants.insert(key, grant);
        }
        grants
    }

    /// Collects DSR entries whose checks are all PLAIN: direct routing needs
    /// the backends to hold the VIP, and a PLAIN check cannot see whether
    /// they do.
    fn find_dsr_plain_checks(&mut self, vserver: &Vserver) {
        let mut entries: Vec<&VserverEntry> = vserver.entries.values().collect();
        entries.sort_by_key(|e| (e.port, e.protocol));
        for entry in entries {
            let checks: Vec<&Healthcheck> = vserver
                .healthchecks
                .values()
                .chain(entry.healthchecks.values())
                .collect();
            if entry.mode == ForwardingMode::Dsr
                && !checks.is_empty()
                && checks.iter().all(|c| c.mode == HealthcheckMode::Plain)
            {
                self.dsr_plain
                    .push(format!("{} {}", vserver.name, entry.key()));
            }
        }
    }

    fn check_node_identity(&mut self, cluster: &Cluster) {
        let Some(node_ip) = self.context.node_ipv4 else {
            return;
        };
        if self.node_address_invalid || cluster.node_by_ipv4(node_ip).is_some() {
            return;
        }
        let known: Vec<String> = cluster
            .nodes
            .values()
            .filter_map(|n| {
                n.host
                    .ipv4
                    .map(|net| format!("{} ({})", n.host.hostname, net.addr()))
            })
            .collect();
        let known = if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        };
        self.errors.push(Diagnostic::error(
            self.file,
            None,
            format!(
                "node_ipv4 {node_ip} from {} is not a node of this cluster (nodes: {known}): add a node with this address or correct node_ipv4",
                self.context.node_config_file.display()
            ),
        ));
    }

    /// Warns about BGP settings that leave the NCC nothing to configure or
    /// point bgpd at a node of the pair.
    /// They are warnings, not errors, because Seesaw v2 ignored these
    /// fields and its configs may carry them half set.
    fn check_bgp(&mut self, message: &pb::Cluster, cluster: &Cluster) {
        for (i, proto_peer) in message.bgp_peer.iter().enumerate() {
            let Some(peer) = cluster.bgp_peers.get(&proto_peer.fqdn) else {
                continue;
            };
            if message.bgp_peer[..i]
                .iter()
                .any(|earlier| earlier.fqdn == proto_peer.fqdn)
            {
                // A repeated peer is an error of its own.
                continue;
            }
            if peer.ipv4.is_none() && peer.ipv6.is_none() {
                self.warning(
                    &format!("bgp_peer[{i}]"),
                    format!(
                        "BGP peer '{}' has no address, so bgpd gets no neighbor for it: add its ipv4 or ipv6 address",
                        peer.hostname
                    ),
                );
            }
            for ip in peer.ips() {
                let Some(node) = cluster
                    .nodes
                    .values()
                    .find(|node| node.host.ips().any(|own| own == ip))
                else {
                    continue;
                };
                let field = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
                self.warning(
                    &format!("bgp_peer[{i}].{field}[0]"),
                    format!(
                        "BGP peer '{}' has {ip}, the address of node '{}': bgp_peer lists the routers the nodes announce anycast VIPs to, not the nodes, so give the router's address",
                        peer.hostname, node.host.hostname
                    ),
                );
            }
        }
        if cluster.bgp_peers.is_empty() {
            if cluster.bgp_remote_asn != 0 {
                self.warning(
                    "bgp_remote_asn[0]",
                    "bgp_remote_asn is set but no bgp_peer is, so bgpd gets no neighbors: add the routers as bgp_peer entries".to_string(),
                );
            }
            return;
        }
        if cluster.bgp_remote_asn == 0 {
            self.warning(
                "bgp_peer[0]",
                "bgp_peer is set but bgp_remote_asn is 0 (unset), so bgpd gets no neighbors: set bgp_remote_asn to the routers' AS number".to_string(),
            );
        } else if cluster.bgp_local_asn == 0 {
            // RFC 7607 reserves AS 0, and bgpd rejects `router bgp 0`.
            self.warning(
                "bgp_local_asn[0]",
                "bgp_local_asn is 0, a reserved AS number, so bgpd gets no neighbors: set the nodes' AS number, such as 64512".to_string(),
            );
        }
    }

    /// Warns when an anycast range overlaps this node's network, because a
    /// VIP in the overlap would go on the dummy interface and be announced
    /// over BGP instead of replying to ARP on the LB interface. It is only a
    /// warning because a Seesaw v2 config without VIPs in the overlap works.
    fn check_anycast_ranges(&mut self, message: &pb::Cluster, cluster: &Cluster) {
        let Some(node_ip) = self.context.node_ipv4 else {
            return;
        };
        let Some(index) = message.node.iter().position(|proto_node| {
            cluster
                .nodes
                .get(&proto_node.fqdn)
                .and_then(|node| node.host.ipv4)
                .is_some_and(|net| net.addr() == node_ip)
        }) else {
            return;
        };
        let host = &cluster.nodes[&message.node[index].fqdn].host;
        let ranges = [
            IpNet::V4(self.context.anycast_ranges.ipv4),
            IpNet::V6(self.context.anycast_ranges.ipv6),
        ];
        for network in host.addresses().map(|net| net.trunc()) {
            let Some(range) = ranges.iter().find(|range| {
                range.addr().is_ipv4() == network.addr().is_ipv4()
                    && (range.contains(&network.network()) || network.contains(&range.network()))
            }) else {
                continue;
            };
            let (field, key) = if network.addr().is_ipv4() {
                ("ipv4", "anycast_ipv4_range")
            } else {
                ("ipv6", "anycast_ipv6_range")
            };
            self.warning(
                &format!("node[{index}].{field}[0]"),
                format!(
                    "{key} {range} overlaps this node's network {network}, so VIPs in both are treated as anycast (put on the dummy interface and announced over BGP): set {key} in {} to a network of its own",
                    self.context.node_config_file.display()
                ),
            );
        }
    }

    /// Rejects unicast VIPs that no interface of this node would carry:
    /// the LB interface carries this node's network, and each VLAN its own.
    fn check_unicast_vips(&mut self, cluster: &Cluster) {
        let mut networks: Vec<IpNet> = Vec::new();
        let this_node = self
            .context
            .node_ipv4
            .and_then(|ip| cluster.node_by_ipv4(ip));
        let lb_hosts = this_node
            .map(|n| &n.host)
            .into_iter()
            .chain(cluster.vlans.values().map(|v| &v.host));
        for host in lb_hosts {
            networks.extend(host.addresses().map(|net| net.trunc()));
        }
        if this_node.is_none() {
            // Without this node's entry the check would reject every VIP;
            // the missing node is reported on its own.
            return;
        }

        let mut seen = BTreeSet::new();
        for (i, vserver) in self.spanned_vservers(cluster) {
            for vip in vserver
                .vips
                .iter()
                .filter(|v| v.vip_type == VipType::Unicast)
            {
                if networks.iter().any(|net| net.contains(&vip.ip)) || !seen.insert(vip.ip) {
                    continue;
                }
                let field = if vip.ip.is_ipv4() { "ipv4" } else { "ipv6" };
                let carried = networks
                    .iter()
                    .filter(|n| n.addr().is_ipv4() == vip.ip.is_ipv4())
                    .map(ToString::to_string)
                    .collect::<Vec<_>>();
                let carried = if carried.is_empty() {
                    "none".to_string()
                } else {
                    carried.join(", ")
                };
                self.error(
                    &format!("vserver[{i}].entry_address[0].{field}[0]"),
                    format!(
                        "VIP {} of vserver '{}' is outside every network this node's LB interface and VLANs carry ({carried}): move it into one of them, add a vlan for its network, list its subnet in dedicated_vip_subnet, or, for an anycast VIP, set anycast_{}_range in seesaw.cfg to a network that contains it",
                        vip.ip,
                        vserver.name,
                        if vip.ip.is_ipv4() { "ipv4" } else { "ipv6" }
                    ),
                );
            }
        }
    }

    /// Rejects two vservers that would create the same IPVS service.
    fn check_shared_services(&mut self, cluster: &Cluster) {
        let mut owners: HashMap<(IpAddr, u16, Protocol), String> = HashMap::new();
        for (i, vserver) in self.spanned_vservers(cluster) {
            for vip in &vserver.vips {
                for entry in vserver.entries.values() {
                    let key = (vip.ip, entry.port, entry.protocol);
                    match owners.get(&key) {
                        Some(other) if other != &vserver.name => {
                            let message = format!(
                                "vservers '{other}' and '{}' both serve {}:{}/{}: IPVS takes each service once, so give one of them another address or port",
                                vserver.name, vip.ip, entry.port, entry.protocol
                            );
                            self.error(&format!("vserver[{i}]"), message);
                        }
                        _ => {
                            owners.insert(key, vserver.name.clone());
                        }
                    }
                }
            }
        }
    }

    /// Pairs each derived vserver with the index of the message it came
    /// from, for positions.
    fn spanned_vservers<'c>(&self, cluster: &'c Cluster) -> Vec<(usize, &'c Vserver)> {
        let mut pairs: Vec<(usize, &Vserver)> = cluster
            .vservers
            .values()
            .filter_map(|v| self.vserver_index.get(&v.name).map(|i| (*i, v)))
            .collect();
        pairs.sort_by_key(|(i, _)| *i);
        pairs
    }
}

/// Returns `1 thing` or `N things`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn config_status(message: &pb::Cluster) -> ConfigStatus {
    let mut warnings: Vec<String> = message
        .misconfigured_vserver
        .iter()
        .map(|m| format!("{}: {}", m.name, m.error_message()))
        .collect();
    warnings.sort();
    ConfigStatus {
        last_update: message.metadata.as_ref().map(|m| m.last_updated),
        attributes: message
            .metadata
            .iter()
            .flat_map(|m| {
                m.attribute
                    .iter()
                    .map(|a| (a.name.clone(), a.value.clone()))
            })
            .collect(),
        warnings,
    }
}

/// Counts the distinct VIP and backend addresses inside each VLAN's
/// networks.
fn count_vlan_addresses(cluster: &mut Cluster) {
    let vips: BTreeSet<IpAddr> = cluster
        .vservers
        .values()
        .flat_map(|v| v.host.ips())
        .collect();
    let backends: BTreeSet<IpAddr> = cluster
        .vservers
        .values()
        .flat_map(|v| v.backends.values().flat_map(|b| b.host.ips()))
        .collect();
    for vlan in cluster.vlans.values_mut() {
        vlan.vip_count = count_in(&vlan.host, &vips);
        vlan.backend_count = count_in(&vlan.host, &backends);
    }
}

fn count_in(host: &Host, ips: &BTreeSet<IpAddr>) -> AddressFamilyCounts {
    let mut counts = AddressFamilyCounts::default();
    for ip in ips {
        match ip {
            IpAddr::V4(v4) if host.ipv4.is_some_and(|net| net.contains(v4)) => counts.ipv4 += 1,
            IpAddr::V6(v6) if host.ipv6.is_some_and(|net| net.contains(v6)) => counts.ipv6 += 1,
            _ => {}
        }
    }
    counts
}

/// Parses `address/prefix`, keeping the host address. On failure returns
/// the end of a sentence that states what is wrong and how to write it.
pub fn parse_cidr(value: &str) -> Result<IpNet, String> {
    if let Ok(net) = value.parse::<IpNet>() {
        return Ok(net);
    }
    if let Ok(ip) = value.parse::<IpAddr>() {
        let length = if ip.is_ipv4() { 32 } else { 128 };
        return Err(format!(
            "which has no prefix length: write {ip}/{length} for a single address, or use the length of its subnet"
        ));
    }
    if let Some((address, length)) = value.split_once('/')
        && let (Ok(ip), Ok(length)) = (address.parse::<IpAddr>(), length.parse::<u32>())
    {
        let maximum = if ip.is_ipv4() { 32 } else { 128 };
        return Err(format!(
            "whose prefix length {length} is longer than {maximum}: use at most {maximum}"
        ));
    }
    if value.contains('$') || value.contains('{') || value.contains('%') {
        return Err("which looks like an unfilled template placeholder: replace it with an address and prefix length such as 192.0.2.10/24".to_string());
    }
    Err("which is not an address with a prefix length: write it like 192.0.2.10/24 or 2001:db8::10/64".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_cidr_keeps_host_address() {
        let net = parse_cidr("192.168.36.1/26").unwrap();
        assert_eq!(net.addr().to_string(), "192.168.36.1");
        assert_eq!(net.prefix_len(), 26);
    }

    #[test]
    fn parse_cidr_explains_failures() {
        assert!(parse_cidr("10.0.0.1").unwrap_err().contains("10.0.0.1/32"));
        assert!(
            parse_cidr("$VIP/$NETMASK")
                .unwrap_err()
                .contains("placeholder")
        );
        assert!(
            parse_cidr("10.0.0.1/33")
                .unwrap_err()
                .contains("prefix length 33 is longer than 32")
        );
    }
}
