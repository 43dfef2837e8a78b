//! The BGP neighbors of cluster.pb (`bgp_local_asn`, `bgp_remote_asn` and
//! `bgp_peer`) as bgpd configuration, and the vty commands that bring a
//! running configuration to it.
//!
//! The NCC owns these parts of bgpd's configuration, all named after
//! Seesaw:
//!
//! ```text
//! ip prefix-list seesaw-anycast-ipv4 seq 5 permit 192.168.255.0/24 ge 32
//! ipv6 prefix-list seesaw-anycast-ipv6 seq 5 permit 2015:cafe:ffff::/64 ge 128
//! route-map seesaw-anycast permit 10
//!  match ip address prefix-list seesaw-anycast-ipv4
//! route-map seesaw-anycast permit 20
//!  match ipv6 address prefix-list seesaw-anycast-ipv6
//! router bgp 64512
//!  bgp router-id 192.0.2.2
//!  neighbor seesaw peer-group
//!  neighbor seesaw remote-as 64513
//!  neighbor 192.0.2.254 peer-group seesaw
//!  address-family ipv4 unicast
//!   neighbor seesaw route-map seesaw-anycast out
//!  address-family ipv6 unicast
//!   neighbor seesaw activate
//!   neighbor seesaw route-map seesaw-anycast out
//! ```
//!
//! The members of the peer group `seesaw` are Seesaw's neighbors, so a
//! peer that leaves cluster.pb leaves bgpd. Everything else stays as the
//! operator configured it: other neighbors and peer groups, `network`
//! statements, other route maps, entries of `seesaw-anycast` other than 10
//! and 20, and lines an operator adds to those two entries (a `set
//! community`, say). `bgp router-id` is set only in an instance the NCC
//! creates, because changing the router ID of a running instance resets
//! its sessions.
//!
//! FRR 8.4's default `bgp ebgp-requires-policy` (RFC 8212) sends an eBGP
//! neighbor no routes unless an outbound policy is set. The route map
//! `seesaw-anycast` is that policy: it sends the host routes inside the
//! anycast ranges and nothing else. No inbound policy is set, so under
//! that default bgpd takes no routes from the peers, which a load balancer
//! does not need.
//!
//! FRR keeps one default instance, so a running `router bgp` with another
//! AS number is an error to fix by hand. The NCC does not replace it,
//! because that would drop the operator's configuration.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{Ipv4Net, Ipv6Net};

use super::config::{BgpInstance, default_instance};

/// The peer group whose members are Seesaw's neighbors.
pub const PEER_GROUP: &str = "seesaw";
/// The outbound route map of the peer group.
pub const ROUTE_MAP: &str = "seesaw-anycast";
/// The prefix list of the IPv4 anycast range.
pub const PREFIX_LIST_IPV4: &str = "seesaw-anycast-ipv4";
/// The prefix list of the IPv6 anycast range.
pub const PREFIX_LIST_IPV6: &str = "seesaw-anycast-ipv6";

/// The sequence number of the NCC's entry in each prefix list.
const PREFIX_LIST_SEQ: u32 = 5;
/// The route-map entries the NCC owns: IPv4, then IPv6.
const ROUTE_MAP_SEQ_IPV4: u32 = 10;
const ROUTE_MAP_SEQ_IPV6: u32 = 20;

/// BGP neighbors as cluster.pb and seesaw.cfg set them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peering {
    /// The AS number of `router bgp`.
    pub local_asn: u32,
    /// The AS number of every peer.
    pub remote_asn: u32,
    /// The neighbor addresses. An empty set removes Seesaw's neighbors,
    /// peer group, route map and prefix lists.
    pub peers: BTreeSet<IpAddr>,
    /// The `bgp router-id` of an instance the NCC creates: the node's IPv4
    /// address.
    pub router_id: Option<Ipv4Addr>,
    /// The anycast ranges, whose host routes the peers are sent.
    pub anycast_ipv4: Ipv4Net,
    pub anycast_ipv6: Ipv6Net,
}

impl Peering {
    /// Checks what bgpd would reject: AS number 0, which RFC 7607
    /// reserves, and addresses that cannot be a neighbor.
    pub fn validate(&self) -> Result<(), String> {
        if self.peers.is_empty() {
            return Ok(());
        }
        if self.local_asn == 0 || self.remote_asn == 0 {
            return Err(format!(
                "local AS {} and remote AS {}: AS number 0 is reserved, so set both \
                 bgp_local_asn and bgp_remote_asn in cluster.pb",
                self.local_asn, self.remote_asn
            ));
        }
        if let Some(peer) = self
            .peers
            .iter()
            .find(|peer| peer.is_unspecified() || peer.is_multicast() || peer.is_loopback())
        {
            return Err(format!(
                "peer {peer} is not a unicast address of another host: give the router's address"
            ));
        }
        Ok(())
    }
}

/// The commands that bring a running configuration to a [`Peering`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPlan {
    /// Configuration commands from `configure terminal` to `end`, or none
    /// when the running configuration already matches.
    pub commands: Vec<String>,
    /// Peers left alone, each with the reason and the fix.
    pub skipped: Vec<String>,
}

/// The running configuration has a default instance of another AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtherInstance {
    pub asn: u32,
}

/// The commands of a plan, by where bgpd takes them.
#[derive(Default)]
struct Commands {
    /// At the top level, before `router bgp`: prefix lists and route maps.
    before: Vec<String>,
    /// Inside `router bgp`, outside the address families.
    router: Vec<String>,
    ipv4_unicast: Vec<String>,
    ipv6_unicast: Vec<String>,
    /// At the top level, after `router bgp`: removals of what the
    /// neighbors referred to.
    after: Vec<String>,
}

/// Returns the commands that bring `running_config` to `peering`.
pub fn plan_peers(running_config: &str, peering: &Peering) -> Result<PeerPlan, OtherInstance> {
    let instance = default_instance(running_config);
    let globals = Globals::parse(running_config);
    let mut commands = Commands::default();
    let mut skipped = Vec::new();

    let asn = if peering.peers.is_empty() {
        remove_all(instance.as_ref(), &globals, &mut commands);
        instance
            .as_ref()
            .map_or(peering.local_asn, |instance| instance.asn)
    } else {
        if let Some(instance) = &instance
            && instance.asn != peering.local_asn
        {
            return Err(OtherInstance { asn: instance.asn });
        }
        ensure_policy(&globals, peering, &mut commands);
        ensure_neighbors(instance.as_ref(), peering, &mut commands, &mut skipped);
        peering.local_asn
    };

    Ok(PeerPlan {
        commands: commands.assemble(asn),
        skipped,
    })
}

impl Commands {
    fn assemble(self, asn: u32) -> Vec<String> {
        let router_changes = !self.router.is_empty()
            || !self.ipv4_unicast.is_empty()
            || !self.ipv6_unicast.is_empty();
        if !router_changes && self.before.is_empty() && self.after.is_empty() {
            return Vec::new();
        }

        let mut commands = vec!["configure terminal".to_owned()];
        commands.extend(self.before);
        if router_changes {
            commands.push(format!("router bgp {asn}"));
            commands.extend(self.router);
            for (family, lines) in [("ipv4", self.ipv4_unicast), ("ipv6", self.ipv6_unicast)] {
                if lines.is_empty() {
                    continue;
                }
                commands.push(format!("address-family {family} unicast"));
                commands.extend(lines);
                commands.push("exit-address-family".to_owned());
            }
            commands.push("exit".to_owned());
        }
        commands.extend(self.after);
        commands.push("end".to_owned());
        commands
    }
}

/// Returns the prefix-list line that matches the host routes of `range`.
fn prefix_list_line(range: ipnet::IpNet) -> String {
    let (keyword, name) = match range {
        ipnet::IpNet::V4(_) => ("ip", PREFIX_LIST_IPV4),
        ipnet::IpNet::V6(_) => ("ipv6", PREFIX_LIST_IPV6),
    };
    // bgpd rejects `ge` unless it is longer than the prefix.
    let host_routes = if range.prefix_len() < range.max_prefix_len() {
        format!(" ge {}", range.max_prefix_len())
    } else {
        String::new()
    };
    format!("{keyword} prefix-list {name} seq {PREFIX_LIST_SEQ} permit {range}{host_routes}")
}

/// Returns the route-map entries the NCC owns, each with its match line.
fn route_map_entries() -> [(String, String); 2] {
    [
        (
            format!("route-map {ROUTE_MAP} permit {ROUTE_MAP_SEQ_IPV4}"),
            format!("match ip address prefix-list {PREFIX_LIST_IPV4}"),
        ),
        (
            format!("route-map {ROUTE_MAP} permit {ROUTE_MAP_SEQ_IPV6}"),
            format!("match ipv6 address prefix-list {PREFIX_LIST_IPV6}"),
        ),
    ]
}

/// Adds the prefix lists and the route map, where they are missing or
/// differ. A prefix-list entry with the same sequence number is replaced
/// in place.
fn ensure_policy(globals: &Globals, peering: &Peering, commands: &mut Commands) {
    for range in [
        ipnet::IpNet::V4(peering.anycast_ipv4),
        ipnet::IpNet::V6(peering.anycast_ipv6),
    ] {
        let line = prefix_list_line(range);
        if !globals.lines.contains(&line) {
            commands.before.push(line);
        }
    }

    for (header, match_line) in route_map_entries() {
        let present = globals
            .route_map(&header)
            .is_some_and(|body| body.contains(&match_line));
        if !present {
            commands.before.push(header);
            commands.before.push(match_line);
            commands.before.push("exit".to_owned());
        }
    }
}

/// Adds the peer group with its remote AS and address-family settings,
/// binds the peers to it and removes the members that are no longer
/// peers.
fn ensure_neighbors(
    instance: Option<&BgpInstance>,
    peering: &Peering,
    commands: &mut Commands,
    skipped: &mut Vec<String>,
) {
    let empty = Vec::new();
    let statements = instance.map_or(&empty, |instance| &instance.statements);
    let ipv4_unicast = instance.map_or(&empty, |instance| &instance.ipv4_unicast);
    let ipv6_unicast = instance.map_or(&empty, |instance| &instance.ipv6_unicast);
    let has = |lines: &Vec<String>, line: &str| lines.iter().any(|l| l == line);

    if instance.is_none()
        && let Some(router_id) = peering.router_id
    {
        commands.router.push(format!("bgp router-id {router_id}"));
    }
    let definition = format!("neighbor {PEER_GROUP} peer-group");
    if !has(statements, &definition) {
        commands.router.push(definition);
    }
    let remote_as = format!("neighbor {PEER_GROUP} remote-as {}", peering.remote_asn);
    if !has(statements, &remote_as) {
        commands.router.push(remote_as);
    }

    let groups = peer_groups(statements);
    for (address, group) in &groups {
        if group == PEER_GROUP && !peering.peers.contains(address) {
            commands.router.push(format!("no neighbor {address}"));
        }
    }
    for peer in &peering.peers {
        match groups.iter().find(|(address, _)| address == peer) {
            Some((_, group)) if group == PEER_GROUP => {}
            Some((_, group)) => skipped.push(format!(
                "neighbor {peer} is in the peer group {group} of bgpd's configuration, so it \
                 is left as it is: remove it from {group} (no neighbor {peer} peer-group \
                 {group}) to let Seesaw configure it"
            )),
            None => commands
                .router
                .push(format!("neighbor {peer} peer-group {PEER_GROUP}")),
        }
    }

    // IPv4 unicast is active for every neighbor unless `no bgp default
    // ipv4-unicast` is set, and FRR prints the activation only then.
    // Quagga prints IPv4 unicast settings among the instance's statements.
    let activate = format!("neighbor {PEER_GROUP} activate");
    let deactivate = format!("no {activate}");
    let route_map = format!("neighbor {PEER_GROUP} route-map {ROUTE_MAP} out");
    let in_ipv4 = |line: &str| has(ipv4_unicast, line) || has(statements, line);
    let default_off = has(statements, "no bgp default ipv4-unicast");
    if in_ipv4(&deactivate) || (default_off && !in_ipv4(&activate)) {
        commands.ipv4_unicast.push(activate.clone());
    }
    if !in_ipv4(&route_map) {
        commands.ipv4_unicast.push(route_map.clone());
    }
    if !has(ipv6_unicast, &activate) {
        commands.ipv6_unicast.push(activate);
    }
    if !has(ipv6_unicast, &route_map) {
        commands.ipv6_unicast.push(route_map);
    }
}

/// Removes Seesaw's neighbors, peer group, route-map entries and
/// prefix-list entries, where they exist.
fn remove_all(instance: Option<&BgpInstance>, globals: &Globals, commands: &mut Commands) {
    if let Some(instance) = instance {
        for (address, group) in peer_groups(&instance.statements) {
            if group == PEER_GROUP {
                commands.router.push(format!("no neighbor {address}"));
            }
        }
        let definition = format!("neighbor {PEER_GROUP} peer-group");
        if instance.statements.contains(&definition) {
            commands.router.push(format!("no {definition}"));
        }
    }

    for (header, _) in route_map_entries() {
        if globals.route_map(&header).is_some() {
            commands.after.push(format!("no {header}"));
        }
    }
    for name in [
        format!("ip prefix-list {PREFIX_LIST_IPV4} seq {PREFIX_LIST_SEQ} "),
        format!("ipv6 prefix-list {PREFIX_LIST_IPV6} seq {PREFIX_LIST_SEQ} "),
    ] {
        for line in globals.lines.iter().filter(|line| line.starts_with(&name)) {
            commands.after.push(format!("no {line}"));
        }
    }
}

/// Returns the neighbors bound to a peer group, with the group's name,
/// from `neighbor <address> peer-group <group>` statements.
fn peer_groups(statements: &[String]) -> Vec<(IpAddr, String)> {
    statements
        .iter()
        .filter_map(|statement| {
            let rest = statement.strip_prefix("neighbor ")?;
            let (address, group) = rest.split_once(" peer-group ")?;
            let group = group.trim();
            if group.contains(' ') {
                return None;
            }
            Some((address.parse().ok()?, group.to_owned()))
        })
        .collect()
}

/// The top level of a running configuration: its unindented lines, and
/// the route-map entries with their statements.
#[derive(Debug, Default)]
struct Globals {
    lines: Vec<String>,
    route_maps: Vec<(String, Vec<String>)>,
}

impl Globals {
    fn parse(running_config: &str) -> Globals {
        let mut globals = Globals::default();
        let mut entry: Option<(String, Vec<String>)> = None;
        for line in running_config.lines() {
            if line.starts_with(' ') {
                if let Some((_, body)) = entry.as_mut() {
                    body.push(line.trim().to_owned());
                }
                continue;
            }
            globals.route_maps.extend(entry.take());
            let line = line.trim_end();
            if line.starts_with("route-map ") {
                entry = Some((line.to_owned(), Vec::new()));
            } else {
                globals.lines.push(line.to_owned());
            }
        }
        globals.route_maps.extend(entry);
        globals
    }

    fn route_map(&self, header: &str) -> Option<&Vec<String>> {
        self.route_maps
            .iter()
            .find(|(entry, _)| entry == header)
            .map(|(_, body)| body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peering(peers: &[&str]) -> Peering {
        Peering {
            local_asn: 64512,
            remote_asn: 64513,
            peers: peers.iter().map(|peer| peer.parse().unwrap()).collect(),
            router_id: Some(Ipv4Addr::new(192, 0, 2, 2)),
            anycast_ipv4: "192.168.255.0/24".parse().unwrap(),
            anycast_ipv6: "2015:cafe:ffff::/64".parse().unwrap(),
        }
    }

    /// FRR 8.4's running configuration after the commands of
    /// `new_instance_commands`, with an operator's network.
    const APPLIED: &str = "\
frr version 8.4.4
frr defaults traditional
!
hostname node
!
router bgp 64512
 bgp router-id 192.0.2.2
 neighbor seesaw peer-group
 neighbor seesaw remote-as 64513
 neighbor 192.0.2.254 peer-group seesaw
 neighbor 2001:db8::fe peer-group seesaw
 !
 address-family ipv4 unicast
  network 198.18.100.0/24
  neighbor seesaw route-map seesaw-anycast out
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor seesaw activate
  neighbor seesaw route-map seesaw-anycast out
 exit-address-family
exit
!
ip prefix-list seesaw-anycast-ipv4 seq 5 permit 192.168.255.0/24 ge 32
ipv6 prefix-list seesaw-anycast-ipv6 seq 5 permit 2015:cafe:ffff::/64 ge 128
!
route-map seesaw-anycast permit 10
 match ip address prefix-list seesaw-anycast-ipv4
exit
!
route-map seesaw-anycast permit 20
 match ipv6 address prefix-list seesaw-anycast-ipv6
exit
!
";

    #[test]
    fn new_instance_commands() {
        let running = "frr version 8.4.4\nfrr defaults traditional\n!\nhostname node\n!\n";
        let plan = plan_peers(running, &peering(&["192.0.2.254", "2001:db8::fe"])).unwrap();
        assert!(plan.skipped.is_empty());
        assert_eq!(
            plan.commands,
            [
                "configure terminal",
                "ip prefix-list seesaw-anycast-ipv4 seq 5 permit 192.168.255.0/24 ge 32",
                "ipv6 prefix-list seesaw-anycast-ipv6 seq 5 permit 2015:cafe:ffff::/64 ge 128",
                "route-map seesaw-anycast permit 10",
                "match ip address prefix-list seesaw-anycast-ipv4",
                "exit",
                "route-map seesaw-anycast permit 20",
                "match ipv6 address prefix-list seesaw-anycast-ipv6",
                "exit",
                "router bgp 64512",
                "bgp router-id 192.0.2.2",
                "neighbor seesaw peer-group",
                "neighbor seesaw remote-as 64513",
                "neighbor 192.0.2.254 peer-group seesaw",
                "neighbor 2001:db8::fe peer-group seesaw",
                "address-family ipv4 unicast",
                "neighbor seesaw route-map seesaw-anycast out",
                "exit-address-family",
                "address-family ipv6 unicast",
                "neighbor seesaw activate",
                "neighbor seesaw route-map seesaw-anycast out",
                "exit-address-family",
                "exit",
                "end",
            ]
        );
    }

    #[test]
    fn applied_config_needs_nothing() {
        let plan = plan_peers(APPLIED, &peering(&["192.0.2.254", "2001:db8::fe"])).unwrap();
        assert_eq!(plan, PeerPlan::default());
    }

    #[test]
    fn peer_change_adds_and_removes() {
        let plan = plan_peers(APPLIED, &peering(&["192.0.2.254", "192.0.2.253"])).unwrap();
        assert_eq!(
            plan.commands,
            [
                "configure terminal",
                "router bgp 64512",
                "no neighbor 2001:db8::fe",
                "neighbor 192.0.2.253 peer-group seesaw",
                "exit",
                "end",
            ]
        );
    }

    #[test]
    fn remote_asn_and_range_change() {
        let mut requested = peering(&["192.0.2.254", "2001:db8::fe"]);
        requested.remote_asn = 65001;
        requested.anycast_ipv4 = "10.20.0.0/23".parse().unwrap();
        let plan = plan_peers(APPLIED, &requested).unwrap();
        assert_eq!(
            plan.commands,
            [
                "configure terminal",
                "ip prefix-list seesaw-anycast-ipv4 seq 5 permit 10.20.0.0/23 ge 32",
                "router bgp 64512",
                "neighbor seesaw remote-as 65001",
                "exit",
                "end",
            ]
        );
    }

    #[test]
    fn host_range_has_no_ge() {
        assert_eq!(
            prefix_list_line("10.20.0.1/32".parse().unwrap()),
            "ip prefix-list seesaw-anycast-ipv4 seq 5 permit 10.20.0.1/32"
        );
        assert_eq!(
            prefix_list_line("2001:db8::/127".parse().unwrap()),
            "ipv6 prefix-list seesaw-anycast-ipv6 seq 5 permit 2001:db8::/127 ge 128"
        );
    }

    #[test]
    fn other_asn_is_rejected() {
        let running = "router bgp 65000\n neighbor 192.0.2.9 remote-as 65009\nexit\n";
        let error = plan_peers(running, &peering(&["192.0.2.254"])).unwrap_err();
        assert_eq!(error, OtherInstance { asn: 65000 });
    }

    #[test]
    fn operator_config_is_kept() {
        // An operator's neighbor, peer group, route-map entry and a line in
        // Seesaw's route-map entry; nothing of it is touched.
        let running = APPLIED.replace(
            " neighbor 192.0.2.254 peer-group seesaw\n",
            " neighbor 192.0.2.254 peer-group seesaw\n neighbor ops peer-group\n \
             neighbor ops remote-as 65100\n neighbor 203.0.113.9 peer-group ops\n \
             neighbor 198.51.100.7 remote-as 65007\n",
        ) + "route-map seesaw-anycast permit 100\n match ip address prefix-list other\nexit\n";
        let running = running.replace(
            " match ip address prefix-list seesaw-anycast-ipv4\n",
            " match ip address prefix-list seesaw-anycast-ipv4\n set community 64512:1\n",
        );
        let plan = plan_peers(&running, &peering(&["192.0.2.254", "2001:db8::fe"])).unwrap();
        assert_eq!(plan, PeerPlan::default());
    }

    #[test]
    fn neighbor_of_other_group_is_skipped() {
        let running = APPLIED.replace(
            " neighbor 192.0.2.254 peer-group seesaw\n",
            " neighbor ops peer-group\n neighbor 192.0.2.254 peer-group ops\n",
        );
        let plan = plan_peers(&running, &peering(&["192.0.2.254", "2001:db8::fe"])).unwrap();
        assert!(plan.commands.is_empty(), "{:?}", plan.commands);
        assert_eq!(plan.skipped.len(), 1);
        assert!(
            plan.skipped[0].starts_with("neighbor 192.0.2.254 is in the peer group ops"),
            "{}",
            plan.skipped[0]
        );
        assert!(
            plan.skipped[0].contains("no neighbor 192.0.2.254 peer-group ops"),
            "{}",
            plan.skipped[0]
        );
    }

    #[test]
    fn standalone_neighbor_is_adopted() {
        let running = APPLIED.replace(
            " neighbor 192.0.2.254 peer-group seesaw\n",
            " neighbor 192.0.2.254 remote-as 64513\n",
        );
        let plan = plan_peers(&running, &peering(&["192.0.2.254", "2001:db8::fe"])).unwrap();
        assert!(plan.skipped.is_empty());
        assert_eq!(
            plan.commands,
            [
                "configure terminal",
                "router bgp 64512",
                "neighbor 192.0.2.254 peer-group seesaw",
                "exit",
                "end",
            ]
        );
    }

    #[test]
    fn ipv4_activation_follows_default() {
        let peers = ["192.0.2.254", "2001:db8::fe"];

        // Deactivated by hand: Seesaw activates it again.
        let running = APPLIED.replace(
            "  neighbor seesaw route-map seesaw-anycast out\n exit-address-family\n !\n \
             address-family ipv6",
            "  no neighbor seesaw activate\n  neighbor seesaw route-map seesaw-anycast out\n \
             exit-address-family\n !\n address-family ipv6",
        );
        let plan = plan_peers(&running, &peering(&peers)).unwrap();
        assert_eq!(
            plan.commands[2..5],
            [
                "address-family ipv4 unicast",
                "neighbor seesaw activate",
                "exit-address-family"
            ]
        );

        // Without the IPv4 unicast default, FRR prints the activation.
        let running = APPLIED.replace(
            " bgp router-id 192.0.2.2\n",
            " bgp router-id 192.0.2.2\n no bgp default ipv4-unicast\n",
        );
        let plan = plan_peers(&running, &peering(&peers)).unwrap();
        assert_eq!(plan.commands[3], "neighbor seesaw activate");
        let running = running.replace(
            "  network 198.18.100.0/24\n",
            "  network 198.18.100.0/24\n  neighbor seesaw activate\n",
        );
        assert_eq!(
            plan_peers(&running, &peering(&peers)).unwrap(),
            PeerPlan::default()
        );
    }

    #[test]
    fn existing_instance_keeps_router_id() {
        let running = "router bgp 64512\n neighbor 198.51.100.7 remote-as 65007\nexit\n";
        let plan = plan_peers(running, &peering(&["192.0.2.254"])).unwrap();
        assert!(
            !plan.commands.iter().any(|c| c.starts_with("bgp router-id")),
            "{:?}",
            plan.commands
        );
        assert!(
            !plan.commands.iter().any(|c| c.contains("198.51.100.7")),
            "{:?}",
            plan.commands
        );
    }

    #[test]
    fn no_peers_removes_seesaw_config() {
        let running = APPLIED.replace(
            "route-map seesaw-anycast permit 20",
            "route-map other permit 5\nexit\n!\nroute-map seesaw-anycast permit 20",
        );
        let plan = plan_peers(&running, &peering(&[])).unwrap();
        assert_eq!(
            plan.commands,
            [
                "configure terminal",
                "router bgp 64512",
                "no neighbor 192.0.2.254",
                "no neighbor 2001:db8::fe",
                "no neighbor seesaw peer-group",
                "exit",
                "no route-map seesaw-anycast permit 10",
                "no route-map seesaw-anycast permit 20",
                "no ip prefix-list seesaw-anycast-ipv4 seq 5 permit 192.168.255.0/24 ge 32",
                "no ipv6 prefix-list seesaw-anycast-ipv6 seq 5 permit 2015:cafe:ffff::/64 ge 128",
                "end",
            ]
        );

        // With another AS, removal still works in the running instance.
        let mut other = peering(&[]);
        other.local_asn = 65000;
        assert_eq!(plan_peers(&running, &other).unwrap(), plan);

        // Nothing of Seesaw's: nothing to do.
        let bare =
            "hostname node\n!\nrouter bgp 64512\n neighbor 198.51.100.7 remote-as 65007\nexit\n";
        assert_eq!(
            plan_peers(bare, &peering(&[])).unwrap(),
            PeerPlan::default()
        );
    }

    #[test]
    fn validate_rejects_zero_asn_and_bad_peers() {
        let mut requested = peering(&["192.0.2.254"]);
        assert_eq!(requested.validate(), Ok(()));
        requested.remote_asn = 0;
        assert!(requested.validate().unwrap_err().contains("AS number 0"));
        for bad in ["0.0.0.0", "224.0.0.5", "::1"] {
            let requested = peering(&[bad]);
            let error = requested.validate().unwrap_err();
            assert!(error.contains(bad), "{error}");
        }
        let mut empty = peering(&[]);
        empty.local_asn = 0;
        assert_eq!(empty.validate(), Ok(()));
    }
}
