//! The seesaw.cfg loader: real operator files, every option rule and the
//! messages operators see.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use seesaw_config::model::AnycastRanges;
use seesaw_config::node_config::{DEFAULT_CONFIG_SERVER, NodeConfig};
use seesaw_config::{Diagnostic, Position, Severity};

mod goconf_support;
use goconf_support::{Loaded, expect_errors, expect_loaded, expect_rejected};

/// The smallest valid file; cases append lines from line 4 on.
const BASE: &str = "[cluster]\nname = test\nnode_ipv4 = 192.0.2.2\n";

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ini")
        .join(name)
}

fn parse(text: &str) -> Loaded<NodeConfig> {
    NodeConfig::parse("seesaw.cfg", text)
}

fn load_ok(text: &str) -> (NodeConfig, Vec<String>) {
    expect_loaded(text, parse(text))
}

fn load_err(text: &str) -> Vec<String> {
    expect_rejected(text, parse(text))
}

fn errors(text: &str) -> Vec<String> {
    expect_errors(text, parse(text))
}

#[test]
fn gke_manual_pair_loads() {
    for (name, node, peer) in [
        ("gke-manual-seesaw.cfg", 130, 131),
        ("gke-manual-seesaw-peer.cfg", 131, 130),
    ] {
        let (config, warnings) = NodeConfig::load(fixture(name)).unwrap();
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
        assert_eq!(config.cluster_name, "bundled-seesaw-onprem");
        assert!(!config.anycast_enabled);
        assert_eq!(config.node_ipv4, Ipv4Addr::new(100, 115, 222, node));
        assert_eq!(config.peer_ipv4, Some(Ipv4Addr::new(100, 115, 222, peer)));
        assert_eq!(config.vip_ipv4, Some(Ipv4Addr::new(100, 115, 222, 132)));
        assert_eq!(config.vip_ipv6, None);
        assert_eq!(config.vrid, 128);
        assert_eq!(config.config_servers, vec!["127.0.0.1"]);
        assert_eq!(config.node_interface, "ens192");
        assert_eq!(config.lb_interface, "ens224");
        assert!(config.use_vmac);
        assert_eq!(config.garp_interval, Duration::from_secs(10));
        assert_eq!(config.path, fixture(name));
    }
}

#[test]
fn operator_files_load_cleanly() {
    let files = [
        "absent-lb-interface-seesaw.cfg",
        "anycast-enabled-seesaw.cfg",
        "dsr-plain-check-lb1-seesaw.cfg",
        "dsr-plain-check-lb2-seesaw.cfg",
        "three-nic-seesaw.cfg",
        "vserver-on-cluster-vip-seesaw.cfg",
        "vsphere-dev-seesaw.cfg",
    ];
    for name in files {
        let (config, warnings) =
            NodeConfig::load(fixture(name)).unwrap_or_else(|e| panic!("{name}:\n{e}"));
        assert!(warnings.is_empty(), "{name}: {warnings:?}");
        assert_eq!(config.vrid, 60, "{name}");
    }
}

#[test]
fn operator_file_values() {
    let (config, _) = NodeConfig::load(fixture("vsphere-dev-seesaw.cfg")).unwrap();
    assert_eq!(
        config.config_servers,
        vec![
            "seesaw-config1.example.com",
            "seesaw-config2.example.com",
            "seesaw-config3.example.com"
        ]
    );
    let (config, _) = NodeConfig::load(fixture("absent-lb-interface-seesaw.cfg")).unwrap();
    assert_eq!(config.config_servers, vec!["node1", "node2"]);
    assert_eq!(config.lb_interface, "eth1");
    let (config, _) = NodeConfig::load(fixture("anycast-enabled-seesaw.cfg")).unwrap();
    assert!(config.anycast_enabled);
    assert_eq!(config.config_servers, vec![DEFAULT_CONFIG_SERVER]);
    let (lb1, _) = NodeConfig::load(fixture("dsr-plain-check-lb1-seesaw.cfg")).unwrap();
    let (lb2, _) = NodeConfig::load(fixture("dsr-plain-check-lb2-seesaw.cfg")).unwrap();
    assert_ne!(lb1.cluster_name, lb2.cluster_name);
}

#[test]
fn bare_line_file_is_rejected_with_warning() {
    let path = fixture("bare-line-seesaw.cfg");
    let rejected = NodeConfig::load(&path).unwrap_err();
    let findings: Vec<&Diagnostic> = rejected.0.iter().collect();
    assert_eq!(findings.len(), 2, "{rejected}");

    assert_eq!(findings[0].severity, Severity::Error);
    assert_eq!(findings[0].position, Some(Position::new(2, 1)));
    assert_eq!(findings[0].file, path);
    assert!(
        findings[0]
            .message
            .starts_with("cannot parse \"testcluster\""),
        "{}",
        findings[0]
    );
    assert!(
        findings[0].message.contains("[cluster] has no option"),
        "{}",
        findings[0]
    );

    assert_eq!(findings[1].severity, Severity::Warning);
    assert_eq!(findings[1].position, Some(Position::new(4, 1)));
    assert_eq!(
        findings[1].message,
        "unknown section [config_servers] is ignored: did you mean [config_server]?"
    );
}

#[test]
fn example_file_loads_without_warnings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/seesaw.cfg.example");
    let (config, warnings) = NodeConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.cluster_name, "seesaw-example");
    assert_eq!(config.node_ipv4, Ipv4Addr::new(192, 0, 2, 2));
    assert_eq!(config.peer_ipv4, Some(Ipv4Addr::new(192, 0, 2, 3)));
    assert_eq!(config.vip_ipv4, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(config.config_servers.len(), 2);
    assert_eq!(config.anycast_ranges, AnycastRanges::default());
    assert!(config.service_anycast_ipv4.is_empty());
}

#[test]
fn missing_file_names_file_and_os_error() {
    let rejected = NodeConfig::load("/nonexistent/seesaw.cfg").unwrap_err();
    assert_eq!(rejected.0.len(), 1);
    let message = rejected.0[0].to_string();
    assert!(
        message.starts_with("/nonexistent/seesaw.cfg: failed to read the file: "),
        "{message}"
    );
    assert!(message.contains("No such file or directory"), "{message}");
}

#[test]
fn directory_is_a_read_error() {
    let directory = tempfile::tempdir().unwrap();
    let rejected = NodeConfig::load(directory.path()).unwrap_err();
    assert_eq!(rejected.0.len(), 1);
    assert_eq!(rejected.0[0].position, None);
}

#[test]
fn non_utf8_file_is_rejected_at_the_byte() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("seesaw.cfg");
    std::fs::write(&path, b"[cluster]\nname = caf\xe9\n").unwrap();
    let rejected = NodeConfig::load(&path).unwrap_err();
    assert_eq!(rejected.0.len(), 1);
    assert_eq!(rejected.0[0].position, Some(Position::new(2, 11)));
    assert!(rejected.0[0].message.contains("not valid UTF-8"));
}

#[test]
fn defaults_when_options_unset() {
    let (config, warnings) = load_ok(BASE);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(config.anycast_enabled);
    assert!(config.use_vmac);
    assert_eq!(config.vrid, 60);
    assert_eq!(config.garp_interval, Duration::from_secs(10));
    assert_eq!(config.config_servers, vec![DEFAULT_CONFIG_SERVER]);
    assert_eq!(config.node_interface, "eth0");
    assert_eq!(config.lb_interface, "eth1");
    assert_eq!(
        config.anycast_ranges.to_string(),
        "192.168.255.0/24 and 2015:cafe:ffff::/64"
    );
    // Seesaw v2 always advertised 192.168.255.254 and 2015:cafe:ffff::254.
    // Here only the listed addresses are advertised.
    assert!(config.service_anycast_ipv4.is_empty());
    assert!(config.service_anycast_ipv6.is_empty());
    assert_eq!(config.vip_ipv4, None);
    assert_eq!(config.peer_ipv6, None);

    assert_eq!(config.engine.config_interval, Duration::from_secs(60));
    assert_eq!(config.engine.config_server_timeout, Duration::from_secs(20));
    assert_eq!(
        config.engine.ca_cert_file,
        Path::new("/etc/seesaw/ssl/ca.crt")
    );
    assert_eq!(config.engine.dummy_interface, "dummy0");
    assert_eq!(config.engine.ha_state_timeout, Duration::from_secs(30));
    assert_eq!(config.engine.stats_interval, Duration::from_secs(15));
    assert_eq!(config.engine.bgp_update_interval, Duration::from_secs(15));
    assert_eq!(config.engine.max_peer_config_sync_errors, 3);
}

#[test]
fn empty_values_keep_defaults() {
    let text = format!(
        "{BASE}anycast_enabled =\nvip_ipv4 =\n[interface]\nnode =\nlb =\n[config_server]\nprimary =\n"
    );
    let (config, warnings) = load_ok(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(config.anycast_enabled);
    assert_eq!(config.vip_ipv4, None);
    assert_eq!(config.node_interface, "eth0");
    assert_eq!(config.lb_interface, "eth1");
    assert_eq!(config.config_servers, vec![DEFAULT_CONFIG_SERVER]);
}

#[test]
fn all_cluster_options_set() {
    let text = format!(
        "{BASE}anycast_enabled = False\nvip_ipv4 = 192.0.2.1\nvip_ipv6 = 2001:db8::1\n\
         node_ipv6 = 2001:db8::2\npeer_ipv4 = 192.0.2.3\npeer_ipv6 = 2001:db8::3\n\
         use_vmac = off\ngarp_interval_sec = 3\nvrid = 255\n"
    );
    let (config, warnings) = load_ok(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(!config.anycast_enabled);
    assert!(!config.use_vmac);
    assert_eq!(config.garp_interval, Duration::from_secs(3));
    assert_eq!(config.vrid, 255);
    let ipv6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    assert_eq!(config.vip_ipv6, Some(ipv6("2001:db8::1")));
    assert_eq!(config.node_ipv6, Some(ipv6("2001:db8::2")));
    assert_eq!(config.peer_ipv6, Some(ipv6("2001:db8::3")));
    assert_eq!(
        config.position("cluster", "vrid"),
        Some(Position::new(12, 8))
    );
    assert_eq!(
        config.position("cluster", "name"),
        Some(Position::new(2, 8))
    );
    assert_eq!(config.position("interface", "lb"), None);
}

#[test]
fn value_errors_table() {
    // Each line goes on line 4 of BASE; the expected message is exact.
    let cases = [
        (
            "vrid = 300",
            "seesaw.cfg:4:8: vrid = 300 is out of range: use a value from 1 to 255",
        ),
        (
            "vrid = 0",
            "seesaw.cfg:4:8: vrid = 0 is out of range: use a value from 1 to 255",
        ),
        (
            "vrid = 0x10",
            "seesaw.cfg:4:8: vrid = 0x10 is not a decimal integer: use a value from 1 to 255",
        ),
        (
            "vrid =",
            "seesaw.cfg:4:7: vrid = \"\" is not a decimal integer: use a value from 1 to 255",
        ),
        (
            "garp_interval_sec = 0",
            "seesaw.cfg:4:21: garp_interval_sec = 0 is out of range: use a number of seconds \
             from 1 to 9223372036",
        ),
        (
            "garp_interval_sec = -5",
            "seesaw.cfg:4:21: garp_interval_sec = -5 is out of range: use a number of seconds \
             from 1 to 9223372036",
        ),
        (
            "use_vmac =",
            "seesaw.cfg:4:11: use_vmac = \"\" is not a boolean: use true or false (t, y, yes, \
             on, 1, f, n, no, off and 0 work too, in any case)",
        ),
        (
            "anycast_enabled = enabled",
            "seesaw.cfg:4:19: anycast_enabled = enabled is not a boolean: use true or false \
             (t, y, yes, on, 1, f, n, no, off and 0 work too, in any case)",
        ),
        (
            "vip_ipv4 = 192.0.2.4/24",
            "seesaw.cfg:4:12: vip_ipv4 = 192.0.2.4/24 has a prefix length, but the option \
             takes a single address: drop the prefix length and write 192.0.2.4",
        ),
        (
            "vip_ipv4 = 2001:db8::1",
            "seesaw.cfg:4:12: vip_ipv4 = 2001:db8::1 is an IPv6 address: put it in vip_ipv6",
        ),
        (
            "peer_ipv4 = ::ffff:192.0.2.3",
            "seesaw.cfg:4:13: peer_ipv4 = ::ffff:192.0.2.3 is an IPv4-mapped IPv6 address: \
             write 192.0.2.3",
        ),
        (
            "vip_ipv6 = 192.0.2.1",
            "seesaw.cfg:4:12: vip_ipv6 = 192.0.2.1 is an IPv4 address: put it in vip_ipv4",
        ),
        (
            "node_ipv6 = ::ffff:192.0.2.1",
            "seesaw.cfg:4:13: node_ipv6 = ::ffff:192.0.2.1 is an IPv4-mapped address: put \
             192.0.2.1 in node_ipv4",
        ),
        (
            "peer_ipv6 = 2001:db8::/64",
            "seesaw.cfg:4:13: peer_ipv6 = 2001:db8::/64 has a prefix length, but the option \
             takes a single address: drop the prefix length and write 2001:db8::",
        ),
        (
            "peer_ipv4 = seesaw2.example.com",
            "seesaw.cfg:4:13: peer_ipv4 = seesaw2.example.com is not a valid IPv4 address: write \
             the address in numbers, such as 192.0.2.10, without leading zeros; host names are \
             not accepted",
        ),
        (
            "vip_ipv4 = 192.0.2.010",
            "seesaw.cfg:4:12: vip_ipv4 = 192.0.2.010 is not a valid IPv4 address: write the \
             address in numbers, such as 192.0.2.10, without leading zeros; host names are not \
             accepted",
        ),
        (
            "vip_ipv6 = fe80::1%eth0",
            "seesaw.cfg:4:12: vip_ipv6 = fe80::1%eth0 is not a valid IPv6 address: write the \
             address in numbers, such as 2001:db8::10, without a zone; host names are not \
             accepted",
        ),
        (
            "name =",
            "seesaw.cfg:4:7: name = \"\" is empty: set name = <cluster name> under [cluster]",
        ),
    ];
    for (line, expected) in cases {
        let text = format!("{BASE}{line}\n");
        assert_eq!(errors(&text), vec![expected.to_string()], "line {line:?}");
    }
}

#[test]
fn node_ipv4_is_required() {
    let found = errors("[cluster]\nname = test\n");
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("seesaw.cfg: [cluster] node_ipv4 is missing: add node_ipv4 ="),
        "{}",
        found[0]
    );
    let found = errors("[cluster]\nname = test\nnode_ipv4 =\n");
    assert!(found[0].contains("node_ipv4 is missing"), "{}", found[0]);
}

#[test]
fn name_is_required() {
    let found = errors("[cluster]\nnode_ipv4 = 192.0.2.2\n");
    assert_eq!(
        found,
        vec![
            "seesaw.cfg: [cluster] name is missing: add name = <cluster name> under [cluster]"
                .to_string()
        ]
    );
}

#[test]
fn empty_file_names_both_required_options() {
    let found = errors("");
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].contains("name is missing"), "{}", found[0]);
    assert!(found[1].contains("node_ipv4 is missing"), "{}", found[1]);
}

#[test]
fn every_bad_value_is_reported_in_file_order() {
    let text = format!("{BASE}vrid = 999\nuse_vmac = perhaps\n[interface]\nlb = a/b\n");
    let found = errors(&text);
    let lines: Vec<&str> = found.iter().map(|m| &m[..13]).collect();
    assert_eq!(
        lines,
        vec!["seesaw.cfg:4:", "seesaw.cfg:5:", "seesaw.cfg:7:"]
    );
}

#[test]
fn option_only_in_default_is_an_error() {
    // Seesaw exits with "Failed to get name for cluster" here, because
    // goconf's HasOption reports the [default] option and GetString fails.
    let text = "name = test\n[cluster]\nnode_ipv4 = 192.0.2.2\n";
    let found = errors(text);
    assert_eq!(
        found,
        vec![
            "seesaw.cfg:1:1: name is set in [default] but not in [cluster], and Seesaw reads \
             it only from [cluster]: move it under [cluster]"
                .to_string()
        ]
    );
}

#[test]
fn default_option_without_section_is_unused() {
    // Without an [interface] section goconf's HasOption is false, so
    // Seesaw ignores the option and uses eth1.
    let text = format!("lb = eth9\n{BASE}");
    let (config, warnings) = load_ok(&text);
    assert_eq!(config.lb_interface, "eth1");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("seesaw.cfg:1:1: warning: lb is in [default]"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].ends_with("move it under [interface]"),
        "{}",
        warnings[0]
    );
}

#[test]
fn default_options_serve_interpolation() {
    let text =
        "net = 192.0.2\n[cluster]\nname = test\nnode_ipv4 = %(net)s.2\nvip_ipv4 = %(net)s.1\n";
    let (config, warnings) = load_ok(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.node_ipv4, Ipv4Addr::new(192, 0, 2, 2));
    assert_eq!(config.vip_ipv4, Some(Ipv4Addr::new(192, 0, 2, 1)));
}

#[test]
fn interpolation_errors_are_positioned() {
    let found = errors(&format!("{BASE}vip_ipv4 = %(nope)s\n"));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("seesaw.cfg:4:12: vip_ipv4 = %(nope)s: %(nope)s refers to no option"),
        "{}",
        found[0]
    );
    let found = errors(&format!("{BASE}vip_ipv4 = %(vip_ipv4)s\n"));
    assert!(found[0].contains("200 steps or more"), "{}", found[0]);
    let found = errors(&format!("net = 192.0.2\n{BASE}vip_ipv4 = %(net)s.300\n"));
    assert_eq!(
        found,
        vec![
            "seesaw.cfg:5:12: vip_ipv4 = %(net)s.300 (expanded to 192.0.2.300) is not a \
             valid IPv4 address: write the address in numbers, such as 192.0.2.10, without \
             leading zeros; host names are not accepted"
                .to_string()
        ]
    );
}

#[test]
fn interface_names() {
    let text = format!("{BASE}[interface]\nnode = ens192\nlb = bond0.100\n");
    let (config, _) = load_ok(&text);
    assert_eq!(config.node_interface, "ens192");
    assert_eq!(config.lb_interface, "bond0.100");
    for bad in ["a/b", "eth0:1", "sixteen-chars-xx", ".."] {
        let found = errors(&format!("{BASE}[interface]\nlb = {bad}\n"));
        assert_eq!(found.len(), 1, "{bad}");
        assert!(
            found[0].starts_with(&format!("seesaw.cfg:5:6: lb = {bad} is not a valid Linux")),
            "{}",
            found[0]
        );
    }
}

#[test]
fn extra_service_anycast_adds_addresses() {
    let text = format!(
        "{BASE}[extra_service_anycast]\nDNS = 192.168.255.53\nntp = 2015:cafe:ffff::123\n\
         mapped = ::ffff:192.168.255.54\n"
    );
    let (config, warnings) = load_ok(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        config.service_anycast_ipv4,
        vec![
            Ipv4Addr::new(192, 168, 255, 53),
            Ipv4Addr::new(192, 168, 255, 54)
        ]
    );
    assert_eq!(
        config.service_anycast_ipv6,
        vec!["2015:cafe:ffff::123".parse::<Ipv6Addr>().unwrap()]
    );
}

#[test]
fn extra_service_anycast_errors() {
    let cases = [
        (
            "a = 10.0.0.1",
            "seesaw.cfg:5:5: a = 10.0.0.1: \"10.0.0.1\" is not an anycast address: use an \
             address in 192.168.255.0/24 or 2015:cafe:ffff::/64",
        ),
        (
            "b = 2015:cafe:fffe::1",
            "seesaw.cfg:5:5: b = 2015:cafe:fffe::1: \"2015:cafe:fffe::1\" is not an anycast \
             address: use an address in 192.168.255.0/24 or 2015:cafe:ffff::/64",
        ),
        (
            "c =",
            "seesaw.cfg:5:4: c = \"\" is empty: use an address in 192.168.255.0/24 or \
             2015:cafe:ffff::/64, or remove the line",
        ),
        (
            "d = 192.168.255.0/24",
            "seesaw.cfg:5:5: d = 192.168.255.0/24 has a prefix length, but the option takes \
             a single address: drop the prefix length and write 192.168.255.0",
        ),
        (
            "e = dns",
            "seesaw.cfg:5:5: e = dns is not a valid IP address: write the address in numbers, \
             such as 192.0.2.10 or 2001:db8::10; host names are not accepted",
        ),
    ];
    for (line, expected) in cases {
        let text = format!("{BASE}[extra_service_anycast]\n{line}\n");
        assert_eq!(errors(&text), vec![expected.to_string()], "line {line:?}");
    }
}

#[test]
fn extra_service_anycast_ignores_default_options() {
    // Seesaw would read `net` as an anycast option and exit; we read only
    // the section's own options.
    let text = format!(
        "net = 192.0.2\n{}[extra_service_anycast]\na = 192.168.255.1\n",
        BASE.replace("192.0.2.2", "%(net)s.2")
    );
    let (config, warnings) = load_ok(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.service_anycast_ipv4.len(), 1);
}

#[test]
fn anycast_ranges_configured() {
    let text = format!(
        "{BASE}anycast_ipv4_range = 10.20.0.0/23
anycast_ipv6_range = 2001:db8:a::/48
\
         [extra_service_anycast]
monitoring = 10.20.1.254
monitoring_v6 = 2001:db8:a::254
"
    );
    let (config, warnings) = load_ok(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        config.anycast_ranges,
        AnycastRanges {
            ipv4: "10.20.0.0/23".parse().unwrap(),
            ipv6: "2001:db8:a::/48".parse().unwrap(),
        }
    );
    assert_eq!(
        config.service_anycast_ipv4,
        vec![Ipv4Addr::new(10, 20, 1, 254)]
    );
    assert_eq!(
        config.service_anycast_ipv6,
        vec!["2001:db8:a::254".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(
        config.position("cluster", "anycast_ipv4_range"),
        Some(Position::new(4, 22))
    );

    // An empty value keeps the default.
    let (config, _) = load_ok(&format!(
        "{BASE}anycast_ipv4_range =
"
    ));
    assert_eq!(config.anycast_ranges, AnycastRanges::default());
}

#[test]
fn anycast_ranges_errors() {
    let cases = [
        (
            "anycast_ipv4_range = 10.20.0.1",
            "seesaw.cfg:4:22: anycast_ipv4_range = 10.20.0.1 has no prefix length: write the \
             network with its length, such as 10.20.0.0/24",
        ),
        (
            "anycast_ipv4_range = 10.20.0.1/23",
            "seesaw.cfg:4:22: anycast_ipv4_range = 10.20.0.1/23 has host bits set: write the \
             network address, 10.20.0.0/23",
        ),
        (
            "anycast_ipv4_range = 2001:db8::/64",
            "seesaw.cfg:4:22: anycast_ipv4_range = 2001:db8::/64 is an IPv6 network: put it in \
             anycast_ipv6_range",
        ),
        (
            "anycast_ipv6_range = 10.20.0.0/24",
            "seesaw.cfg:4:22: anycast_ipv6_range = 10.20.0.0/24 is an IPv4 network: put it in \
             anycast_ipv4_range",
        ),
        (
            "anycast_ipv4_range = 0.0.0.0/0",
            "seesaw.cfg:4:22: anycast_ipv4_range = 0.0.0.0/0 covers every address, so every VIP \
             would be anycast: give the network reserved for anycast VIPs, such as \
             192.168.255.0/24",
        ),
        (
            "anycast_ipv6_range = anycast",
            "seesaw.cfg:4:22: anycast_ipv6_range = anycast is not a network: write it as \
             address/prefix length, such as 2015:cafe:ffff::/64",
        ),
    ];
    for (line, expected) in cases {
        let text = format!(
            "{BASE}{line}
"
        );
        assert_eq!(errors(&text), vec![expected.to_string()], "line {line:?}");
    }
}

#[test]
fn service_anycast_follows_configured_ranges() {
    // Seesaw v2's default address is outside a configured range.
    let text = format!(
        "{BASE}anycast_ipv4_range = 10.20.0.0/24
[extra_service_anycast]
old = 192.168.255.254
"
    );
    assert_eq!(
        errors(&text),
        vec![
            "seesaw.cfg:6:7: old = 192.168.255.254: \"192.168.255.254\" is not an anycast \
             address: use an address in 10.20.0.0/24 or 2015:cafe:ffff::/64"
                .to_string()
        ]
    );

    // A bad range is reported alone, not with every address it rejects.
    let text = format!(
        "{BASE}anycast_ipv4_range = 10.20.0.0
[extra_service_anycast]
a = 10.20.0.5
"
    );
    assert_eq!(errors(&text).len(), 1, "{:?}", errors(&text));
}

#[test]
fn config_servers_in_order() {
    let text =
        format!("{BASE}[config_server]\ntertiary = c.example\nprimary = a.example\nsecondary =\n");
    let (config, _) = load_ok(&text);
    assert_eq!(config.config_servers, vec!["a.example", "c.example"]);
}

#[test]
fn config_server_url_warns() {
    let text = format!("{BASE}[config_server]\nprimary = https://seesaw-config.example.com/\n");
    let (config, warnings) = load_ok(&text);
    assert_eq!(
        config.config_servers,
        vec!["https://seesaw-config.example.com/"]
    );
    assert_eq!(
        warnings,
        vec![
            "seesaw.cfg:5:11: warning: primary = https://seesaw-config.example.com/ is not a \
             host name, so fetching from it will fail: give the host name alone, such as \
             seesaw-config.example.com"
                .to_string()
        ]
    );
}

#[test]
fn unknown_sections_and_options_warn() {
    let text = format!(
        "{BASE}nmae = x\nvrrp_id = 5\n[Config_Servers]\nprimary = a\n[interface]\nlbb = eth1\n[vlans]\n"
    );
    let (_, warnings) = load_ok(&text);
    assert_eq!(
        warnings,
        vec![
            "seesaw.cfg:4:1: warning: unknown option nmae in [cluster] is ignored: did you mean name?",
            "seesaw.cfg:5:1: warning: unknown option vrrp_id in [cluster] is ignored: [cluster] \
             takes name, anycast_enabled, anycast_ipv4_range, anycast_ipv6_range, vip_ipv4, \
             vip_ipv6, node_ipv4, node_ipv6, peer_ipv4, peer_ipv6, use_vmac, garp_interval_sec, \
             vrid",
            "seesaw.cfg:6:1: warning: unknown section [config_servers] is ignored: did you mean \
             [config_server]?",
            "seesaw.cfg:9:1: warning: unknown option lbb in [interface] is ignored: did you mean lb?",
            "seesaw.cfg:10:1: warning: unknown section [vlans] is ignored: seesaw.cfg has the \
             sections [cluster], [config_server], [interface], [extra_service_anycast], [access], \
             [sync]",
        ]
    );
}

#[test]
fn rem_option_warns() {
    let text = format!("{BASE}remote_peer = 192.0.2.3\nREM this line is a comment\n");
    let (config, warnings) = load_ok(&text);
    assert_eq!(config.peer_ipv4, None);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "seesaw.cfg:4:1: warning: option remote_peer is ignored because goconf reads \
             every line that starts with \"rem\" as a comment"
        ),
        "{}",
        warnings[0]
    );
}

#[test]
fn repeated_option_warns_at_loser() {
    let text = format!("{BASE}vrid = 10\n[cluster]\nVRID = 20\n");
    let (config, warnings) = load_ok(&text);
    assert_eq!(config.vrid, 20);
    assert_eq!(
        warnings,
        vec![
            "seesaw.cfg:4:1: warning: vrid is set again in [cluster] on line 6, which \
             replaces this value: remove one of them"
                .to_string()
        ]
    );
}

#[test]
fn rejection_keeps_warnings_in_file_order() {
    let text = format!("{BASE}nmae = x\nvrid = 0\n");
    let found = load_err(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("seesaw.cfg:4:1: warning:"),
        "{}",
        found[0]
    );
    assert!(
        found[1].starts_with("seesaw.cfg:5:8: vrid = 0"),
        "{}",
        found[1]
    );
}

#[test]
fn read_errors_stop_before_values() {
    // goconf rejects the file, so no option errors follow the read error.
    let text = "[cluster]\nbare\nvrid = 999\n[]\nk = v\n";
    let found = load_err(text);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found[0].starts_with("seesaw.cfg:2:1: cannot parse \"bare\""),
        "{}",
        found[0]
    );
    assert!(
        found[1].starts_with("seesaw.cfg:4:1: warning: unknown section [] is ignored"),
        "{}",
        found[1]
    );
    assert!(
        found[2].starts_with("seesaw.cfg:5:1: cannot read \"k = v\" because the section header []"),
        "{}",
        found[2]
    );
}

proptest! {
    #[test]
    fn valid_values_round_trip(
        vrid in 1u8..=255,
        garp in 1u32..100_000,
        node in any::<[u8; 4]>(),
        vip in any::<[u8; 4]>(),
        peer6 in any::<[u16; 8]>(),
        anycast in "(?i-u)(true|false|yes|no|on|off|t|f|y|n|1|0)",
        use_vmac in any::<bool>(),
        name in "[a-z][a-z0-9-]{0,20}",
    ) {
        let node = Ipv4Addr::from(node);
        let vip = Ipv4Addr::from(vip);
        let peer6 = Ipv6Addr::from(peer6);
        prop_assume!(peer6.to_ipv4_mapped().is_none());
        let text = format!(
            "[cluster]\nname = {name}\nnode_ipv4 = {node}\nvip_ipv4 = {vip}\npeer_ipv6 = {peer6}\n\
             vrid = {vrid}\ngarp_interval_sec = {garp}\nanycast_enabled = {anycast}\n\
             use_vmac = {use_vmac}\n"
        );
        let (config, warnings) = load_ok(&text);
        prop_assert!(warnings.is_empty());
        prop_assert_eq!(config.cluster_name, name);
        prop_assert_eq!(config.node_ipv4, node);
        prop_assert_eq!(config.vip_ipv4, Some(vip));
        prop_assert_eq!(config.peer_ipv6, Some(peer6));
        prop_assert_eq!(config.vrid, vrid);
        prop_assert_eq!(config.garp_interval, Duration::from_secs(u64::from(garp)));
        let expected_anycast = matches!(
            anycast.to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "t" | "y" | "1"
        );
        prop_assert_eq!(config.anycast_enabled, expected_anycast);
        prop_assert_eq!(config.use_vmac, use_vmac);
    }

    #[test]
    fn out_of_range_vrid_rejected(vrid in prop_oneof![i64::MIN..=0, 256..=i64::MAX]) {
        let found = errors(&format!("{BASE}vrid = {vrid}\n"));
        prop_assert_eq!(found.len(), 1);
        prop_assert!(found[0].starts_with("seesaw.cfg:4:8: vrid = "), "{}", &found[0]);
        prop_assert!(found[0].ends_with("is out of range: use a value from 1 to 255"), "{}", &found[0]);
    }

    #[test]
    fn loader_never_panics(text in "(\\[(cluster|interface|config_server|extra_service_anycast)\\]\n|[a-z_0-9]{1,12} ?= ?[a-z0-9.:/%()]{0,16}\n|[a-z ]{0,6}\n){0,12}") {
        let _ = NodeConfig::parse("seesaw.cfg", &text);
    }
}

#[test]
fn access_groups_are_read() {
    let text = format!("{BASE}[access]\nadmin_group = lb-admin\nreader_group = lb-read\n");
    let (config, warnings) = load_ok(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.access.admin_group.as_deref(), Some("lb-admin"));
    assert_eq!(config.access.operator_group, None);
    assert_eq!(config.access.reader_group.as_deref(), Some("lb-read"));
}

#[test]
fn access_group_with_spaces_is_an_error() {
    let text = format!("{BASE}[access]\nadmin_group = lb admins\n");
    let errors = load_err(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("seesaw.cfg:5:15: admin_group = lb admins"),
        "{errors:?}"
    );
    assert!(errors[0].contains("is not a group name"), "{errors:?}");
}

#[test]
fn sync_tls_files_are_read() {
    let text = format!(
        "{BASE}[sync]\ncert_file = /etc/seesaw/ssl/sync.crt\nkey_file = /etc/seesaw/ssl/sync.key\n\
         ca_file = /etc/seesaw/ssl/sync-ca.crt\n"
    );
    let (config, warnings) = load_ok(&text);
    assert!(warnings.is_empty(), "{warnings:?}");
    let tls = config.sync.tls.expect("the three files make TLS");
    assert_eq!(tls.cert_file, Path::new("/etc/seesaw/ssl/sync.crt"));
    assert_eq!(tls.key_file, Path::new("/etc/seesaw/ssl/sync.key"));
    assert_eq!(tls.ca_file, Path::new("/etc/seesaw/ssl/sync-ca.crt"));
}

#[test]
fn sync_without_section_is_plain() {
    let (config, _) = load_ok(BASE);
    assert_eq!(config.sync.tls, None);
}

#[test]
fn sync_with_some_files_is_an_error() {
    let text = format!("{BASE}[sync]\nkey_file = /etc/seesaw/ssl/sync.key\n");
    let errors = load_err(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("seesaw.cfg:5:12: key_file = /etc/seesaw/ssl/sync.key"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("is set without cert_file and ca_file"),
        "{errors:?}"
    );
}

#[test]
fn sync_relative_path_is_an_error() {
    let text = format!("{BASE}[sync]\ncert_file = sync.crt\nkey_file = /k\nca_file = /ca\n");
    let errors = load_err(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("seesaw.cfg:5:13: cert_file = sync.crt"),
        "{errors:?}"
    );
    assert!(errors[0].contains("is not an absolute path"), "{errors:?}");
}
