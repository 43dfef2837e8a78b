//! The offline configuration check behind `seesaw_engine -check`: one
//! node's seesaw.cfg and the cluster.pb, optionally with the peer node's
//! seesaw.cfg to compare the two halves of the pair.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::cluster::{LoadedCluster, NodeContext, plural, read_cluster_file};
use crate::diag::{Diagnostic, Rejected};
use crate::model::VipType;
use crate::node_config::NodeConfig;
use crate::summary::{NodeView, render};

/// The files to check.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub node_config: PathBuf,
    pub cluster: PathBuf,
    /// The other node's seesaw.cfg, to check that the two agree.
    pub peer_node_config: Option<PathBuf>,
}

/// The outcome of a check.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Every error and warning, errors first, each group in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The summary, present when there is no error.
    pub summary: Option<String>,
}

impl CheckReport {
    pub fn passed(&self) -> bool {
        !self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the files of `request`, collecting every finding rather than
/// stopping at the first.
pub fn check(request: &CheckRequest) -> CheckReport {
    let mut diagnostics = Vec::new();

    let node = take(NodeConfig::load(&request.node_config), &mut diagnostics);
    let context = node.as_ref().map_or_else(
        || NodeContext {
            node_config_file: request.node_config.clone(),
            ..NodeContext::default()
        },
        context_of,
    );
    let cluster = take(read_cluster(&request.cluster, &context), &mut diagnostics);
    if let (Some(node), Some(loaded)) = (&node, &cluster) {
        compare_cluster_vip(node, loaded, &request.cluster, &mut diagnostics);
        warn_anycast_disabled(node, loaded, &request.cluster, &mut diagnostics);
        warn_service_anycast_vips(node, loaded, &request.cluster, &mut diagnostics);
    }

    if let Some(peer_path) = &request.peer_node_config {
        let peer = take(NodeConfig::load(peer_path), &mut diagnostics);
        if let (Some(node), Some(peer)) = (&node, &peer) {
            compare_pair(node, peer, &mut diagnostics);
            // The peer must find itself in cluster.pb too.
            if let Err(Rejected(found)) = read_cluster_file(&request.cluster, &context_of(peer)) {
                diagnostics.extend(found);
            }
        }
    }

    dedupe(&mut diagnostics);
    diagnostics.sort_by_key(|d| !d.is_error());
    let summary = match (&node, &cluster) {
        (Some(node), Some(loaded)) if !diagnostics.iter().any(Diagnostic::is_error) => {
            Some(summarize(
                node,
                loaded,
                request.peer_node_config.as_deref(),
                &diagnostics,
            ))
        }
        _ => None,
    };
    CheckReport {
        diagnostics,
        summary,
    }
}

/// Keeps the value of a successful load and collects every finding.
fn take<T>(
    result: Result<(T, Vec<Diagnostic>), Rejected>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<T> {
    match result {
        Ok((value, warnings)) => {
            diagnostics.extend(warnings);
            Some(value)
        }
        Err(Rejected(found)) => {
            diagnostics.extend(found);
            None
        }
    }
}

/// Reads cluster.pb with its warnings split out, in the shape [`take`]
/// expects.
fn read_cluster(
    path: &Path,
    context: &NodeContext,
) -> Result<(LoadedCluster, Vec<Diagnostic>), Rejected> {
    read_cluster_file(path, context).map(|mut loaded| {
        let warnings = std::mem::take(&mut loaded.warnings);
        (loaded, warnings)
    })
}

/// Returns what cluster.pb is checked against from a node's seesaw.cfg.
pub fn context_of(node: &NodeConfig) -> NodeContext {
    NodeContext {
        node_config_file: node.path.clone(),
        site: node.cluster_name.clone(),
        cluster_vip_ipv4: node.vip_ipv4,
        cluster_vip_ipv6: node.vip_ipv6,
        node_ipv4: Some(node.node_ipv4),
        node_ipv6: node.node_ipv6,
        anycast_ranges: node.anycast_ranges,
    }
}

/// Checks that two nodes' seesaw.cfg files describe the same pair.
fn compare_pair(node: &NodeConfig, peer: &NodeConfig, diagnostics: &mut Vec<Diagnostic>) {
    let at = |config: &NodeConfig, key: &str| config.position("cluster", key);

    if node.cluster_name != peer.cluster_name {
        diagnostics.push(Diagnostic::warning(
            &peer.path,
            at(peer, "name"),
            format!(
                "cluster name '{}' differs from '{}' in {}: give both nodes the same name, which the CLI and the config server use",
                peer.cluster_name,
                node.cluster_name,
                node.path.display()
            ),
        ));
    }
    if node.anycast_enabled != peer.anycast_enabled {
        diagnostics.push(Diagnostic::warning(
            &peer.path,
            at(peer, "anycast_enabled"),
            format!(
                "anycast_enabled is {} here but {} in {}: only the node with anycast enabled announces anycast VIPs and configures bgpd, so set the same value on both nodes",
                peer.anycast_enabled,
                node.anycast_enabled,
                node.path.display()
            ),
        ));
    }
    if node.vrid != peer.vrid {
        diagnostics.push(Diagnostic::error(
            &peer.path,
            at(peer, "vrid"),
            format!(
                "vrid {} differs from vrid {} in {}: both nodes must use the same VRRP virtual router ID to form a pair",
                peer.vrid,
                node.vrid,
                node.path.display()
            ),
        ));
    }
    for (key, mine, theirs) in [
        (
            "vip_ipv4",
            node.vip_ipv4.map(IpAddr::V4),
            peer.vip_ipv4.map(IpAddr::V4),
        ),
        (
            "vip_ipv6",
            node.vip_ipv6.map(IpAddr::V6),
            peer.vip_ipv6.map(IpAddr::V6),
        ),
    ] {
        if mine != theirs {
            diagnostics.push(Diagnostic::error(
                &peer.path,
                at(peer, key),
                format!(
                    "{key} is {} here but {} in {}: both nodes must share the cluster VIP",
                    show(theirs),
                    show(mine),
                    node.path.display()
                ),
            ));
        }
    }
    for (key, mine, theirs) in [
        (
            "anycast_ipv4_range",
            node.anycast_ranges.ipv4.to_string(),
            peer.anycast_ranges.ipv4.to_string(),
        ),
        (
            "anycast_ipv6_range",
            node.anycast_ranges.ipv6.to_string(),
            peer.anycast_ranges.ipv6.to_string(),
        ),
    ] {
        if mine != theirs {
            diagnostics.push(Diagnostic::error(
                &peer.path,
                at(peer, key),
                format!(
                    "{key} {theirs} differs from {mine} in {}: both nodes must use the same anycast ranges, or a VIP anycast on one node is unicast on the other",
                    node.path.display()
                ),
            ));
        }
    }
    if node.node_ipv4 == peer.node_ipv4 {
        diagnostics.push(Diagnostic::error(
            &peer.path,
            at(peer, "node_ipv4"),
            format!(
                "node_ipv4 {} is also node_ipv4 in {}: each node needs its own address",
                peer.node_ipv4,
                node.path.display()
            ),
        ));
        return;
    }
    // Each file's peer_ipv4 must be the other file's node_ipv4.
    for (this, other, whose) in [(node, peer, "the peer's"), (peer, node, "this node's")] {
        if this.peer_ipv4 == Some(other.node_ipv4) {
            continue;
        }
        diagnostics.push(Diagnostic::error(
            &this.path,
            at(this, "peer_ipv4"),
            format!(
                "peer_ipv4 is {}, but {whose} node_ipv4 in {} is {}: set peer_ipv4 = {}",
                show(this.peer_ipv4.map(IpAddr::V4)),
                other.path.display(),
                other.node_ipv4,
                other.node_ipv4
            ),
        ));
    }
}

fn show(ip: Option<IpAddr>) -> String {
    ip.map_or_else(|| "not set".to_string(), |ip| ip.to_string())
}

/// Drops findings repeated word for word, which happens when the same
/// cluster.pb is checked from both nodes' points of view.
fn dedupe(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert(d.to_string()));
}

/// Warns when cluster.pb's `seesaw_vip` address differs from the cluster
/// VIP of seesaw.cfg. Only seesaw.cfg's address is used, so a mismatch
/// usually means one of the two files is stale or an option name is wrong.
fn compare_cluster_vip(
    node: &NodeConfig,
    loaded: &LoadedCluster,
    cluster_file: &Path,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(in_cluster) = loaded.cluster.vip.ipv4.map(|net| net.addr()) else {
        return;
    };
    if node.vip_ipv4 == Some(in_cluster) {
        return;
    }
    let configured = node
        .vip_ipv4
        .map_or_else(|| "not set".to_string(), |ip| ip.to_string());
    diagnostics.push(Diagnostic::warning(
        &node.path,
        node.position("cluster", "vip_ipv4"),
        format!(
            "vip_ipv4 is {configured}, but seesaw_vip in {} is {in_cluster}: the cluster VIP comes from vip_ipv4, so make the two agree",
            cluster_file.display()
        ),
    ));
}

/// Warns when `anycast_enabled = false` in seesaw.cfg while cluster.pb has
/// anycast VIPs or BGP peers: the node would never announce them.
fn warn_anycast_disabled(
    node: &NodeConfig,
    loaded: &LoadedCluster,
    cluster_file: &Path,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if node.anycast_enabled {
        return;
    }
    let anycast_vips = loaded
        .cluster
        .vservers
        .values()
        .flat_map(|vserver| &vserver.vips)
        .filter(|vip| vip.vip_type == VipType::Anycast)
        .count();
    let peers = loaded.cluster.bgp_peers.len();
    if anycast_vips == 0 && peers == 0 {
        return;
    }
    let mut unused = Vec::new();
    if anycast_vips > 0 {
        unused.push(format!(
            "{}, which this node will never announce",
            plural(anycast_vips, "anycast VIP")
        ));
    }
    if peers > 0 {
        unused.push(format!(
            "{}, which bgpd will not be given",
            plural(peers, "BGP peer")
        ));
    }
    diagnostics.push(Diagnostic::warning(
        &node.path,
        node.position("cluster", "anycast_enabled"),
        format!(
            "anycast_enabled is false, but {} has {}: set anycast_enabled = true or remove them",
            cluster_file.display(),
            unused.join(" and ")
        ),
    ));
}

/// Warns when `[extra_service_anycast]` lists a vserver's VIP: both would
/// own the one address on the dummy interface, so removing the vserver
/// would take the address from the service.
fn warn_service_anycast_vips(
    node: &NodeConfig,
    loaded: &LoadedCluster,
    cluster_file: &Path,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let service_addresses: Vec<IpAddr> = node
        .service_anycast_ipv4
        .iter()
        .map(|&ip| IpAddr::V4(ip))
        .chain(node.service_anycast_ipv6.iter().map(|&ip| IpAddr::V6(ip)))
        .collect();
    for address in service_addresses {
        let Some(vserver) = loaded
            .cluster
            .vservers
            .values()
            .find(|vserver| vserver.vips.iter().any(|vip| vip.ip == address))
        else {
            continue;
        };
        diagnostics.push(Diagnostic::warning(
            &node.path,
            node.service_anycast_position(address),
            format!(
                "[extra_service_anycast] lists {address}, the VIP of vserver '{}' in {}: removing the vserver would delete the service's address, so remove the line or give the vserver another address",
                vserver.name,
                cluster_file.display()
            ),
        ));
    }
}

fn summarize(
    node: &NodeConfig,
    loaded: &LoadedCluster,
    peer_file: Option<&Path>,
    diagnostics: &[Diagnostic],
) -> String {
    let view = NodeView {
        site: node.cluster_name.clone(),
        node_ipv4: Some(node.node_ipv4),
        peer_ipv4: node.peer_ipv4,
        cluster_vip_ipv4: node.vip_ipv4,
        cluster_vip_ipv6: node.vip_ipv6,
        vrid: node.vrid,
        node_interface: node.node_interface.clone(),
        lb_interface: node.lb_interface.clone(),
        config_servers: node.config_servers.clone(),
        anycast_enabled: node.anycast_enabled,
    };
    let warnings: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    let mut out = render(&view, &loaded.cluster, &loaded.notes, &warnings);
    if let Some(peer_file) = peer_file {
        let about_peer = diagnostics.iter().any(|d| d.file == peer_file);
        let line = format!(
            "Peer config:     {} agrees (VRID, cluster VIP, node and peer addresses){}\n",
            peer_file.display(),
            if about_peer {
                "; it differs in what the warnings below name"
            } else {
                ""
            }
        );
        // Place it under the peer line of the header.
        match out.find("Interfaces:") {
            Some(at) => out.insert_str(at, &line),
            None => out.push_str(&line),
        }
    }
    out
}
