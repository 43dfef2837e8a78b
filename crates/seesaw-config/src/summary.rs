//! The human-readable summary that `seesaw_engine -check` prints for a
//! valid configuration.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::cluster::plural;
use crate::model::{Cluster, Healthcheck, NodeState, Vserver};
use crate::node_config::DEFAULT_CONFIG_SERVER;

/// The values from this node's seesaw.cfg that the summary shows.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    pub site: String,
    pub node_ipv4: Option<Ipv4Addr>,
    pub peer_ipv4: Option<Ipv4Addr>,
    pub cluster_vip_ipv4: Option<Ipv4Addr>,
    pub cluster_vip_ipv6: Option<Ipv6Addr>,
    pub vrid: u8,
    pub node_interface: String,
    pub lb_interface: String,
    pub config_servers: Vec<String>,
    pub anycast_enabled: bool,
}

/// Counts the IPVS services a cluster needs: one per VIP address and entry.
pub fn service_count(cluster: &Cluster) -> usize {
    cluster
        .vservers
        .values()
        .map(|v| v.vips.len() * v.entries.len())
        .sum()
}

/// Renders the summary. `notes` and `warnings` are printed as they are,
/// one per line.
pub fn render(view: &NodeView, cluster: &Cluster, notes: &[String], warnings: &[String]) -> String {
    let mut out = String::new();
    render_cluster(&mut out, view, cluster);
    render_vservers(&mut out, cluster);
    render_extras(&mut out, cluster);

    if !notes.is_empty() {
        out.push_str("\nNotes:\n");
        for note in notes {
            let _ = writeln!(out, "  {note}");
        }
    }
    if warnings.is_empty() {
        out.push_str("\nWarnings: none\n");
    } else {
        let _ = writeln!(out, "\nWarnings: {}", warnings.len());
        for warning in warnings {
            let _ = writeln!(out, "  {warning}");
        }
    }
    out
}

fn render_cluster(out: &mut String, view: &NodeView, cluster: &Cluster) {
    let optional = |ip: Option<String>| ip.unwrap_or_else(|| "not configured".to_string());
    let ha = match cluster.vip.status {
        crate::model::HostStatus::Production
        | crate::model::HostStatus::Testing
        | crate::model::HostStatus::Building => "enabled",
        _ => "disabled",
    };

    let _ = writeln!(out, "Cluster:         {}", view.site);
    let _ = writeln!(
        out,
        "Cluster VIP:     {}",
        optional(view.cluster_vip_ipv4.map(|ip| ip.to_string()))
    );
    if let Some(ipv6) = view.cluster_vip_ipv6 {
        let _ = writeln!(out, "Cluster VIP v6:  {ipv6}");
    }
    let _ = writeln!(out, "VRID:            {}", view.vrid);
    let _ = writeln!(
        out,
        "HA:              {ha} (seesaw_vip status {})",
        cluster.vip.status.as_str_name()
    );
    let _ = writeln!(
        out,
        "This node:       {}",
        describe_node(cluster, view.node_ipv4)
    );
    let _ = writeln!(
        out,
        "Peer:            {}",
        describe_node(cluster, view.peer_ipv4)
    );
    let _ = writeln!(
        out,
        "Interfaces:      node {}, LB {}",
        view.node_interface, view.lb_interface
    );
    // The placeholder alone means seesaw.cfg names no server, and the
    // engine then reloads from cluster.pb.
    let servers = if view
        .config_servers
        .iter()
        .all(|server| server == DEFAULT_CONFIG_SERVER)
    {
        "none (reloads read cluster.pb)".to_string()
    } else {
        view.config_servers.join(", ")
    };
    let _ = writeln!(out, "Config servers:  {servers}");
    let _ = writeln!(
        out,
        "Anycast:         {}",
        if view.anycast_enabled {
            format!("enabled, VIPs in {}", cluster.anycast_ranges)
        } else {
            "disabled".to_string()
        }
    );
}

fn describe_node(cluster: &Cluster, ip: Option<Ipv4Addr>) -> String {
    let Some(ip) = ip else {
        return "not configured".to_string();
    };
    match cluster.node_by_ipv4(ip) {
        Some(node) => {
            let state = match node.state {
                NodeState::Unknown => "takes part in HA",
                NodeState::Disabled => "HA disabled",
            };
            format!(
                "{} {ip} (priority {}, {state})",
                node.host.hostname, node.priority
            )
        }
        None => format!("{ip} (not a node in the cluster configuration)"),
    }
}

fn render_vservers(out: &mut String, cluster: &Cluster) {
    let _ = writeln!(
        out,
        "\nVservers: {}, services: {}",
        cluster.vservers.len(),
        service_count(cluster)
    );
    for vserver in cluster.vservers.values() {
        render_vserver(out, vserver);
    }
}

fn render_vserver(out: &mut String, vserver: &Vserver) {
    let state = if vserver.enabled {
        "enabled"
    } else {
        "disabled"
    };
    let fwm = if vserver.use_fwm {
        ", firewall mark"
    } else {
        ""
    };
    let _ = writeln!(out, "  {} ({state}{fwm})", vserver.name);
    for warning in &vserver.warnings {
        let _ = writeln!(out, "    Warning: {warning}");
    }
    for vip in &vserver.vips {
        let _ = writeln!(out, "    VIP {vip}");
    }

    let shared_checks = check_list(vserver.healthchecks.values());
    for vip in &vserver.vips {
        let mut entries: Vec<_> = vserver.entries.values().collect();
        entries.sort_by_key(|e| (e.port, e.protocol));
        for entry in entries {
            let address = if vip.ip.is_ipv6() {
                format!("[{}]", vip.ip)
            } else {
                vip.ip.to_string()
            };
            let mut checks = check_list(entry.healthchecks.values());
            if !shared_checks.is_empty() {
                checks = if checks.is_empty() {
                    shared_checks.clone()
                } else {
                    format!("{checks}, {shared_checks}")
                };
            }
            if checks.is_empty() {
                checks = "none".to_string();
            }
            let _ = writeln!(
                out,
                "    Service {address}:{}/{} {} {}, checks: {checks}",
                entry.port,
                entry.protocol,
                entry.scheduler.name(),
                entry.mode
            );
        }
    }

    let backends: Vec<String> = vserver
        .backends
        .values()
        .map(|b| {
            let ips: Vec<String> = b.host.ips().map(|ip| ip.to_string()).collect();
            let disabled = if b.enabled { "" } else { " disabled" };
            format!("{} {}{disabled}", b.host.hostname, ips.join(" "))
        })
        .collect();
    let _ = writeln!(
        out,
        "    Backends ({}): {}",
        backends.len(),
        if backends.is_empty() {
            "none".to_string()
        } else {
            backends.join(", ")
        }
    );
    if !vserver.access_grants.is_empty() {
        let grants: Vec<&String> = vserver.access_grants.keys().collect();
        let _ = writeln!(
            out,
            "    Access grants: {}",
            grants
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn check_list<'a>(checks: impl Iterator<Item = &'a Healthcheck>) -> String {
    checks
        .map(|c| format!("{} ({})", c.name, c.mode))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_extras(out: &mut String, cluster: &Cluster) {
    if cluster.vlans.is_empty() {
        out.push_str("\nVLANs: none\n");
    } else {
        let _ = writeln!(out, "\nVLANs: {}", cluster.vlans.len());
        for vlan in cluster.vlans.values() {
            let addresses: Vec<String> = vlan.host.addresses().map(|a| a.to_string()).collect();
            let _ = writeln!(
                out,
                "  VLAN {} {} {} ({}, {} inside)",
                vlan.id,
                vlan.host.hostname,
                addresses.join(" "),
                plural((vlan.vip_count.ipv4 + vlan.vip_count.ipv6) as usize, "VIP"),
                plural(
                    (vlan.backend_count.ipv4 + vlan.backend_count.ipv6) as usize,
                    "backend"
                ),
            );
        }
    }

    if !cluster.vip_subnets.is_empty() {
        let subnets: Vec<&String> = cluster.vip_subnets.keys().collect();
        let _ = writeln!(
            out,
            "Dedicated VIP subnets: {}",
            subnets
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if cluster.bgp_remote_asn != 0 || !cluster.bgp_peers.is_empty() {
        let peers: Vec<String> = cluster
            .bgp_peers
            .values()
            .map(|p| {
                format!(
                    "{} {}",
                    p.hostname,
                    p.ips()
                        .map(|ip| ip.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "BGP: local AS {}, remote AS {}, peers: {}",
            cluster.bgp_local_asn,
            cluster.bgp_remote_asn,
            if peers.is_empty() {
                "none".to_string()
            } else {
                peers.join(", ")
            }
        );
    }
    if !cluster.access_groups.is_empty() {
        let groups: Vec<String> = cluster
            .access_groups
            .iter()
            .map(|(name, members)| format!("{name} ({})", plural(members.len(), "member")))
            .collect();
        let _ = writeln!(out, "Access groups: {}", groups.join(", "));
    }
    if !cluster.status.warnings.is_empty() {
        let _ = writeln!(
            out,
            "Misconfigured vservers: {}",
            cluster.status.warnings.join("; ")
        );
    }
}
