//! The derivation of the cluster model from cluster.pb text, and each
//! semantic check, one test per rule.

use std::path::Path;
use std::time::Duration;

use seesaw_config::cluster::{LoadedCluster, NodeContext, load_cluster_text};
use seesaw_config::model::*;

const HEAD: &str = r#"
seesaw_vip: < fqdn: "vip." ipv4: "192.0.2.1/24" status: PRODUCTION >
node: < fqdn: "lb1." ipv4: "192.0.2.2/24" >
node: < fqdn: "lb2." ipv4: "192.0.2.3/24" >
"#;

fn context() -> NodeContext {
    NodeContext {
        node_config_file: "seesaw.cfg".into(),
        site: "test".into(),
        cluster_vip_ipv4: Some("192.0.2.1".parse().unwrap()),
        node_ipv4: Some("192.0.2.2".parse().unwrap()),
        ..NodeContext::default()
    }
}

fn load(body: &str) -> Result<LoadedCluster, String> {
    let text = format!("{HEAD}{body}");
    load_cluster_text(Path::new("cluster.pb"), &text, &context()).map_err(|e| e.to_string())
}

fn vserver(name: &str, address: &str, extra: &str) -> String {
    format!(
        r#"vserver: <
  name: "{name}"
  entry_address: < fqdn: "{name}.vip" ipv4: "{address}" >
  rp: "ops@example.com"
  vserver_entry: < protocol: TCP port: 80 healthcheck: < type: TCP > >
  backend: < host: < fqdn: "web1" ipv4: "192.0.2.50/24" > >
{extra}>
"#
    )
}

#[test]
fn defaults_match_seesaw() {
    let loaded = load(&vserver("web", "192.0.2.10/24", "")).unwrap();
    let web = &loaded.cluster.vservers["web"];
    let entry = &web.entries["80/TCP"];
    assert_eq!(entry.scheduler, Scheduler::Wlc);
    assert_eq!(entry.mode, ForwardingMode::Dsr);
    let check = &entry.healthchecks["TCP/80_0"];
    assert_eq!(
        check.port, 80,
        "entry-level checks default to the entry port"
    );
    assert_eq!(check.mode, HealthcheckMode::Plain);
    assert_eq!(check.interval, Duration::from_secs(10));
    assert_eq!(check.timeout, Duration::from_secs(5));
    assert!(check.tls_verify);
    assert_eq!(web.backends["web1"].weight, 1);
    assert!(web.backends["web1"].enabled);
    assert!(web.enabled);
    assert_eq!(
        web.vips,
        vec![Vip {
            ip: "192.0.2.10".parse().unwrap(),
            vip_type: VipType::Unicast
        }]
    );
}

#[test]
fn node_priorities_and_states() {
    let loaded = load("").unwrap();
    let lb1 = &loaded.cluster.nodes["lb1."];
    let lb2 = &loaded.cluster.nodes["lb2."];
    assert_eq!((lb1.priority, lb2.priority), (255, 1));
    assert_eq!(lb1.state, NodeState::Unknown);
    assert!(lb1.vservers_enabled);
    assert!(lb1.anycast_enabled);
    assert!(lb1.bgp_enabled);
}

#[test]
fn node_status_differing_from_vip_disables_ha() {
    let text = r#"
seesaw_vip: < fqdn: "vip." status: PRODUCTION >
node: < fqdn: "lb1." ipv4: "192.0.2.3/24" status: DISABLED >
node: < fqdn: "lb2." ipv4: "192.0.2.2/24" status: BUILDING >
node: < fqdn: "lb3." ipv4: "192.0.2.4/24" >
"#;
    let loaded = load_cluster_text(Path::new("c.pb"), text, &context()).unwrap();
    let nodes = &loaded.cluster.nodes;
    assert_eq!(nodes["lb2."].priority, 255);
    assert_eq!(nodes["lb1."].priority, 2);
    assert_eq!(nodes["lb3."].priority, 1);
    assert_eq!(nodes["lb1."].state, NodeState::Disabled);
    assert!(!nodes["lb1."].vservers_enabled);
    assert!(!nodes["lb1."].bgp_enabled);
    assert_eq!(nodes["lb2."].state, NodeState::Disabled);
    assert!(nodes["lb2."].bgp_enabled);
    assert!(!nodes["lb2."].anycast_enabled);
    assert_eq!(nodes["lb3."].state, NodeState::Unknown);
}

#[test]
fn seesaw_vip_without_status_is_rejected() {
    let text = "seesaw_vip: < fqdn: \"vip.\" >\nnode: < fqdn: \"lb1.\" ipv4: \"192.0.2.2/24\" >\n";
    let error = load_cluster_text(Path::new("cluster.pb"), text, &context())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cluster.pb:1:13: seesaw_vip has no status"),
        "{error}"
    );
    assert!(error.contains("status: PRODUCTION"), "{error}");
}

#[test]
fn template_placeholder_address_is_rejected() {
    let error = load(&vserver("web", "$VIP/$NETMASK", "")).unwrap_err();
    assert!(error.starts_with("cluster.pb:7:42: "), "{error}");
    assert!(error.contains("\"$VIP/$NETMASK\""), "{error}");
    assert!(error.contains("placeholder"), "{error}");
}

#[test]
fn bare_address_without_prefix_is_rejected() {
    let error = load(&vserver("web", "192.0.2.10", "")).unwrap_err();
    assert!(
        error.contains("has no prefix length: write 192.0.2.10/32"),
        "{error}"
    );
}

#[test]
fn address_in_wrong_family_field_is_rejected() {
    let error = load(&vserver("web", "2001:db8::10/64", "")).unwrap_err();
    assert!(
        error.contains("an IPv6 address: move it to the ipv6 field"),
        "{error}"
    );
}

#[test]
fn vserver_on_cluster_vip_is_rejected() {
    let error = load(&vserver("web", "192.0.2.1/24", "")).unwrap_err();
    assert!(
        error.contains("vserver 'web' uses 192.0.2.1, the cluster VIP (vip_ipv4 in seesaw.cfg)"),
        "{error}"
    );
}

#[test]
fn duplicate_backend_address_is_rejected() {
    let extra = "  backend: < host: < fqdn: \"web2\" ipv4: \"192.0.2.50/24\" > >\n";
    let error = load(&vserver("web", "192.0.2.10/24", extra)).unwrap_err();
    assert!(
        error.contains(
            "backends 'web1' and 'web2' of vserver 'web' both have the address 192.0.2.50"
        ),
        "{error}"
    );
    assert!(error.starts_with("cluster.pb:11:"), "{error}");
}

#[test]
fn duplicate_backend_name_is_a_warning() {
    let extra = "  backend: < host: < fqdn: \"web1\" ipv4: \"192.0.2.51/24\" > >\n";
    let loaded = load(&vserver("web", "192.0.2.10/24", extra)).unwrap();
    assert_eq!(
        loaded.cluster.vservers["web"].backends["web1"]
            .host
            .ipv4
            .unwrap()
            .addr()
            .to_string(),
        "192.0.2.50"
    );
    assert!(
        loaded.warnings[0]
            .to_string()
            .contains("backend 'web1' appears twice")
    );
}

#[test]
fn unicast_vip_outside_lb_networks_is_rejected() {
    let error = load(&vserver("web", "198.51.100.10/24", "")).unwrap_err();
    assert!(
        error.contains("VIP 198.51.100.10 of vserver 'web' is outside every network"),
        "{error}"
    );
    assert!(error.contains("(192.0.2.0/24)"), "{error}");
}

#[test]
fn vlan_carries_vip() {
    let body = format!(
        "vlan: < vlan_id: 100 host: < fqdn: \"lb1-vlan100\" ipv4: \"198.51.100.2/24\" > >\n{}",
        vserver("web", "198.51.100.10/24", "")
    );
    let loaded = load(&body).unwrap();
    assert_eq!(loaded.cluster.vlans[&100].vip_count.ipv4, 1);
    assert_eq!(loaded.cluster.vlans[&100].backend_count.ipv4, 0);
}

#[test]
fn dedicated_and_anycast_vips_need_no_network() {
    let body = format!(
        "dedicated_vip_subnet: \"203.0.113.0/24\"\n{}{}",
        vserver("dedicated", "203.0.113.5/32", ""),
        vserver("anycast", "192.168.255.1/32", "")
    );
    let loaded = load(&body).unwrap();
    assert_eq!(
        loaded.cluster.vservers["dedicated"].vips[0].vip_type,
        VipType::Dedicated
    );
    assert_eq!(
        loaded.cluster.vservers["anycast"].vips[0].vip_type,
        VipType::Anycast
    );
    assert_eq!(
        loaded.cluster.vservers["anycast"].vips[0].to_string(),
        "192.168.255.1 (Anycast)"
    );
}

#[test]
fn configured_anycast_ranges_decide_vip_type() {
    let mut context = context();
    context.anycast_ranges = AnycastRanges {
        ipv4: "10.20.0.0/24".parse().unwrap(),
        ipv6: "2001:db8:a::/48".parse().unwrap(),
    };
    let body = format!(
        "{}{}",
        vserver("new-range", "10.20.0.7/32", ""),
        vserver("old-range", "192.0.2.10/24", "")
    );
    let text = format!("{HEAD}{body}");
    let loaded = load_cluster_text(Path::new("cluster.pb"), &text, &context).unwrap();
    assert_eq!(loaded.cluster.anycast_ranges, context.anycast_ranges);
    assert_eq!(
        loaded.cluster.vservers["new-range"].vips[0].vip_type,
        VipType::Anycast
    );
    assert_eq!(
        loaded.cluster.vip_type("192.168.255.1".parse().unwrap()),
        VipType::Unicast
    );
    assert_eq!(
        loaded.cluster.vip_type("2001:db8:a::1".parse().unwrap()),
        VipType::Anycast
    );
}

#[test]
fn bgp_settings_wanted() {
    let peer = "bgp_peer: < fqdn: \"router1.\" ipv4: \"192.0.2.254/24\" >\n";
    let loaded = load(&format!(
        "bgp_local_asn: 64512\nbgp_remote_asn: 64513\n{peer}"
    ))
    .unwrap();
    assert!(loaded.cluster.wants_bgp_peers());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

    // bgp_local_asn defaults to 64512, as in Seesaw's schema.
    let loaded = load(&format!("bgp_remote_asn: 64513\n{peer}")).unwrap();
    assert_eq!(loaded.cluster.bgp_local_asn, 64512);
    assert!(loaded.cluster.wants_bgp_peers());

    let loaded = load("").unwrap();
    assert!(!loaded.cluster.wants_bgp_peers());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn bgp_settings_half_set_warn() {
    let cases = [
        (
            "bgp_peer: < fqdn: \"router1.\" ipv4: \"192.0.2.254/24\" >\n",
            "cluster.pb:5:11: warning: bgp_peer is set but bgp_remote_asn is 0 (unset), so bgpd \
             gets no neighbors: set bgp_remote_asn to the routers' AS number",
        ),
        (
            "bgp_remote_asn: 64513\n",
            "cluster.pb:5:17: warning: bgp_remote_asn is set but no bgp_peer is, so bgpd gets no \
             neighbors: add the routers as bgp_peer entries",
        ),
        (
            "bgp_local_asn: 0\nbgp_remote_asn: 64513\nbgp_peer: < fqdn: \"r\" ipv4: \"192.0.2.254/24\" >\n",
            "cluster.pb:5:16: warning: bgp_local_asn is 0, a reserved AS number, so bgpd gets no \
             neighbors: set the nodes' AS number, such as 64512",
        ),
        (
            "bgp_remote_asn: 64513\nbgp_peer: < fqdn: \"router1.\" >\n",
            "cluster.pb:6:11: warning: BGP peer 'router1.' has no address, so bgpd gets no \
             neighbor for it: add its ipv4 or ipv6 address",
        ),
    ];
    for (body, expected) in cases {
        let loaded = load(body).unwrap_or_else(|error| panic!("{body}: {error}"));
        let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
        assert_eq!(warnings, [expected], "{body}");
        assert!(!loaded.cluster.wants_bgp_peers(), "{body}");
    }
}

#[test]
fn node_ipv4_missing_from_cluster_is_rejected() {
    let mut context = context();
    context.node_ipv4 = Some("192.0.2.9".parse().unwrap());
    let error = load_cluster_text(Path::new("cluster.pb"), HEAD, &context)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("node_ipv4 192.0.2.9 from seesaw.cfg is not a node of this cluster"),
        "{error}"
    );
    assert!(error.contains("lb1. (192.0.2.2)"), "{error}");
}

#[test]
fn zero_interval_is_rejected() {
    let text = vserver("web", "192.0.2.10/24", "").replace(
        "healthcheck: < type: TCP >",
        "healthcheck: < type: TCP interval: 0 >",
    );
    let error = load(&text).unwrap_err();
    assert!(
        error.contains("healthcheck interval 0 in vserver 'web' must be at least 1 second"),
        "{error}"
    );
}

#[test]
fn out_of_range_values_are_rejected() {
    for (from, to, expected) in [
        (
            "port: 80",
            "port: 70000",
            "port 70000 in vserver 'web' is out of range",
        ),
        (
            "port: 80",
            "port: 80 server_low_watermark: 1.5",
            "server_low_watermark 1.5 in vserver 'web' is not a fraction",
        ),
        (
            "port: 80",
            "port: 80 persistence: -1",
            "persistence -1 in vserver 'web' is negative",
        ),
    ] {
        let text = vserver("web", "192.0.2.10/24", "").replacen(from, to, 1);
        let error = load(&text).unwrap_err();
        assert!(error.contains(expected), "{to}: {error}");
    }
}

#[test]
fn vlan_id_out_of_range_is_rejected() {
    let error = load("vlan: < vlan_id: 5000 host: < fqdn: \"v\" ipv4: \"198.51.100.2/24\" > >\n")
        .unwrap_err();
    assert!(error.contains("vlan_id 5000 is out of range"), "{error}");
}

#[test]
fn duplicate_nodes_subnets_and_vlans_are_rejected() {
    for (body, expected) in [
        (
            "node: < fqdn: \"lb1.\" ipv4: \"192.0.2.7/24\" >\n",
            "node 'lb1.' is listed twice",
        ),
        (
            "dedicated_vip_subnet: \"203.0.113.0/24\"\ndedicated_vip_subnet: \"203.0.113.9/24\"\n",
            "dedicated_vip_subnet 203.0.113.0/24 is listed twice",
        ),
        (
            "vlan: < vlan_id: 7 host: < fqdn: \"a\" > >\nvlan: < vlan_id: 7 host: < fqdn: \"b\" > >\n",
            "VLAN 7 is defined twice",
        ),
        (
            "bgp_peer: < fqdn: \"r1\" >\nbgp_peer: < fqdn: \"r1\" >\n",
            "BGP peer 'r1' is listed twice",
        ),
        (
            "access_groups: < name: \"g\" >\naccess_groups: < name: \"g\" >\n",
            "access group 'g' is defined twice",
        ),
    ] {
        let error = load(body).unwrap_err();
        assert!(error.contains(expected), "{body}: {error}");
    }
}

#[test]
fn two_vservers_on_one_service_are_rejected() {
    let body = format!(
        "{}{}",
        vserver("a", "192.0.2.10/24", ""),
        vserver("b", "192.0.2.10/24", "")
    );
    let error = load(&body).unwrap_err();
    assert!(
        error.contains("vservers 'a' and 'b' both serve 192.0.2.10:80/TCP"),
        "{error}"
    );
}

#[test]
fn fwm_vserver_without_entries_is_rejected() {
    let text = "vserver: < name: \"f\" entry_address: < fqdn: \"f\" ipv4: \"192.0.2.10/24\" > rp: \"r\" use_fwm: true >\n";
    let error = load(text).unwrap_err();
    assert!(
        error.contains("vserver 'f' sets use_fwm but has no vserver_entry"),
        "{error}"
    );
}

#[test]
fn checks_named_by_type_and_port() {
    let extra = r#"  healthcheck: < type: HTTPS port: 443 tls_verify: false >
  healthcheck: < type: HTTP port: 443 >
  healthcheck: < type: HTTP port: 443 send: "/b" >
  healthcheck: < type: TCP_TLS port: 443 >
"#;
    let loaded = load(&vserver("web", "192.0.2.10/24", extra)).unwrap();
    let names: Vec<&String> = loaded.cluster.vservers["web"].healthchecks.keys().collect();
    // HTTP and HTTPS on one port keep separate names instead of colliding.
    assert_eq!(
        names,
        ["HTTP/443_0", "HTTP/443_1", "HTTPS/443_0", "TCP_TLS/443_0"]
    );
    assert_eq!(
        loaded.cluster.vservers["web"].healthchecks["HTTP/443_1"].send,
        "/b"
    );
}

#[test]
fn vserver_level_check_without_port_warns() {
    let extra = "  healthcheck: < type: HTTP >\n";
    let loaded = load(&vserver("web", "192.0.2.10/24", extra)).unwrap();
    assert_eq!(
        loaded.cluster.vservers["web"].healthchecks["HTTP/0_0"].port,
        0
    );
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.to_string().contains("probes port 0"))
    );
}

#[test]
fn watermarks_follow_seesaw() {
    let text = vserver("web", "192.0.2.10/24", "").replacen(
        "port: 80",
        "port: 80 server_low_watermark: 0.3",
        1,
    );
    let loaded = load(&text).unwrap();
    let entry = &loaded.cluster.vservers["web"].entries["80/TCP"];
    assert_eq!(entry.low_watermark, 0.3);
    assert_eq!(
        entry.high_watermark, 0.3,
        "the high watermark is at least the low one"
    );
}

#[test]
fn backend_status_rules() {
    let extra = r#"  backend: < host: < fqdn: "b2" ipv4: "192.0.2.52/24" status: STANDBY > >
  backend: < host: < fqdn: "b3" ipv4: "192.0.2.53/24" status: PROPOSED > weight: 5 >
"#;
    let loaded = load(&vserver("web", "192.0.2.10/24", extra)).unwrap();
    let backends = &loaded.cluster.vservers["web"].backends;
    assert!(!backends["b2"].enabled);
    assert!(backends["b2"].in_service);
    assert!(!backends["b3"].enabled);
    assert!(!backends["b3"].in_service);
    assert_eq!(backends["b3"].weight, 5);
}

#[test]
fn disabled_entry_address_disables_vserver() {
    let text = vserver("web", "192.0.2.10/24", "").replace(
        "ipv4: \"192.0.2.10/24\"",
        "ipv4: \"192.0.2.10/24\" status: BUILDING",
    );
    let loaded = load(&text).unwrap();
    assert!(!loaded.cluster.vservers["web"].enabled);
}

#[test]
fn metadata_and_misconfigured_vservers() {
    let body = r#"metadata: < last_updated: 1447906527 attribute: < name: "source" value: "git" > >
misconfigured_vserver: < name: "z" error_message: "bad" >
misconfigured_vserver: < name: "a" >
"#;
    let loaded = load(body).unwrap();
    let status = &loaded.cluster.status;
    assert_eq!(status.last_update, Some(1447906527));
    assert_eq!(
        status.attributes,
        vec![("source".to_string(), "git".to_string())]
    );
    assert_eq!(
        status.warnings,
        vec!["a: ".to_string(), "z: bad".to_string()]
    );
}

#[test]
fn dsr_with_only_plain_checks_gets_one_note() {
    let body = format!(
        "{}{}",
        vserver("a", "192.0.2.10/24", ""),
        vserver("b", "192.0.2.11/24", "")
    );
    let loaded = load(&body).unwrap();
    assert_eq!(loaded.notes.len(), 1);
    assert!(
        loaded.notes[0].contains("2 DSR services with only PLAIN checks: a 80/TCP, b 80/TCP"),
        "{}",
        loaded.notes[0]
    );
    assert!(loaded.warnings.is_empty());
}

#[test]
fn errors_come_in_file_order() {
    let body = format!(
        "{}{}",
        vserver("a", "$A/$B", ""),
        vserver("b", "10.1.1.1", "")
    );
    let error = load(&body).unwrap_err();
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines.len(), 2, "{error}");
    assert!(
        lines[0].contains("$A/$B") && lines[1].contains("10.1.1.1"),
        "{error}"
    );
}

#[test]
fn latin1_comment_loads_with_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.pb");
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"# caf\xe9\n");
    std::fs::write(&path, bytes).unwrap();

    let loaded = seesaw_config::cluster::read_cluster_file(&path, &context()).unwrap();
    assert_eq!(loaded.cluster.nodes.len(), 2);
    let warning = loaded.warnings[0].to_string();
    assert!(
        warning.contains("cluster.pb:5:6: warning: the file is not valid UTF-8"),
        "{warning}"
    );
}

#[test]
fn vserver_on_node_address_is_rejected() {
    let error = load(&vserver("web", "192.0.2.3/24", "")).unwrap_err();
    assert!(
        error.contains("vserver 'web' uses 192.0.2.3, the address of node 'lb2.'"),
        "{error}"
    );
}

#[test]
fn vserver_on_vlan_address_is_rejected() {
    let body = format!(
        "vlan: < vlan_id: 100 host: < fqdn: \"lb-vlan100\" ipv4: \"198.51.100.2/24\" > >\n{}",
        vserver("web", "198.51.100.2/24", "")
    );
    let error = load(&body).unwrap_err();
    assert!(
        error.contains(
            "vserver 'web' uses 198.51.100.2, the load balancer's own address on VLAN 100"
        ),
        "{error}"
    );
}

#[test]
fn backend_on_cluster_vip_is_rejected() {
    let extra = "  backend: < host: < fqdn: \"web2\" ipv4: \"192.0.2.1/24\" > >\n";
    let error = load(&vserver("web", "192.0.2.10/24", extra)).unwrap_err();
    assert!(
        error.contains("backend 'web2' of vserver 'web' is 192.0.2.1, the cluster VIP"),
        "{error}"
    );
}

#[test]
fn node_without_prefix_gets_subnet_advice() {
    let text = "seesaw_vip: < fqdn: \"vip.\" status: PRODUCTION >\nnode: < fqdn: \"lb1.\" ipv4: \"192.0.2.2\" >\n";
    let error = load_cluster_text(Path::new("cluster.pb"), text, &context())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("write it with the length of its subnet, such as 192.0.2.2/24"),
        "{error}"
    );
    assert!(!error.contains("is not a node of this cluster"), "{error}");
}

#[test]
fn prefix_too_long_is_named() {
    let error = load(&vserver("web", "192.0.2.10/33", "")).unwrap_err();
    assert!(
        error.contains("prefix length 33 is longer than 32"),
        "{error}"
    );
}

#[test]
fn bgp_peer_at_node_address_warns() {
    // The warnings follow the file's order, not the peers' names.
    let body = "bgp_remote_asn: 64513\n\
                bgp_peer: < fqdn: \"zeta.\" ipv4: \"192.0.2.3/24\" >\n\
                bgp_peer: < fqdn: \"alpha.\" >\n";
    let loaded = load(body).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "cluster.pb:6:33: warning: BGP peer 'zeta.' has 192.0.2.3, the address of node \
             'lb2.': bgp_peer lists the routers the nodes announce anycast VIPs to, not the \
             nodes, so give the router's address",
            "cluster.pb:7:11: warning: BGP peer 'alpha.' has no address, so bgpd gets no \
             neighbor for it: add its ipv4 or ipv6 address",
        ]
    );
}

#[test]
fn anycast_range_over_node_network_warns() {
    let overlapping = NodeContext {
        anycast_ranges: AnycastRanges {
            ipv4: "192.0.2.128/25".parse().unwrap(),
            ..AnycastRanges::default()
        },
        ..context()
    };
    let loaded = load_cluster_text(Path::new("cluster.pb"), HEAD, &overlapping).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "cluster.pb:3:28: warning: anycast_ipv4_range 192.0.2.128/25 overlaps this node's \
             network 192.0.2.0/24, so VIPs in both are treated as anycast (put on the dummy \
             interface and announced over BGP): set anycast_ipv4_range in seesaw.cfg to a \
             network of its own"
        ]
    );

    // The default ranges leave the node's network alone.
    assert!(load("").unwrap().warnings.is_empty());
}

#[test]
fn integer_out_of_range_names_the_range() {
    let error = load("bgp_local_asn: -5\n").unwrap_err();
    assert!(
        error.contains(
            "cluster.pb:5:16: bgp_local_asn: expected value to be an unsigned 32-bit integer, \
             but the value -5 is out of range: write a whole number from 0 to 4294967295"
        ),
        "{error}"
    );
    let error = load("bgp_remote_asn: 4294967296\n").unwrap_err();
    assert!(
        error.contains("is out of range: write a whole number from 0 to 4294967295"),
        "{error}"
    );
}
