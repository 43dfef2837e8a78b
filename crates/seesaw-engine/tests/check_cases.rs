//! `seesaw_engine -check` run as an operator runs it, over real operators'
//! files: each test is one reported set-up and what the check must say.

use std::path::PathBuf;
use std::process::Command;

struct Outcome {
    status: i32,
    stdout: String,
    stderr: String,
}

fn fixture(kind: &str, name: &str) -> String {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "seesaw-config",
        "tests",
        "fixtures",
        kind,
        name,
    ]
    .iter()
    .collect();
    assert!(path.exists(), "fixture {} is missing", path.display());
    path.to_string_lossy().into_owned()
}

/// Returns `relative`, a path in the repository, such as `etc`.
fn repo_path(relative: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "..", "..", relative]
        .iter()
        .collect()
}

fn ini(name: &str) -> String {
    fixture("ini", name)
}

fn cluster(name: &str) -> String {
    fixture("cluster", name)
}

fn run_check(args: &[String]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_seesaw_engine"))
        .arg("-check")
        .args(args)
        .output()
        .expect("seesaw_engine runs");
    Outcome {
        status: output.status.code().expect("exited normally"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn check(conf: &str, cluster_file: &str) -> Outcome {
    run_check(&[format!("-conf={conf}"), format!("-cluster={cluster_file}")])
}

/// Returns the error lines, checking each has the `FILE:LINE:COL: ` or
/// `FILE: ` shape.
fn error_lines(outcome: &Outcome) -> Vec<&str> {
    let lines: Vec<&str> = outcome
        .stderr
        .lines()
        .filter(|l| !l.contains(": warning: ") && !l.starts_with("seesaw_engine: "))
        .collect();
    for line in &lines {
        assert!(line.contains(": "), "not a diagnostic line: {line}");
    }
    lines
}

#[test]
fn gke_pair_passes_on_both_nodes() {
    let pb = cluster("gke-manual.pb");
    for (conf, node, peer) in [
        (
            "gke-manual-seesaw.cfg",
            "100.115.222.130",
            "100.115.222.131",
        ),
        (
            "gke-manual-seesaw-peer.cfg",
            "100.115.222.131",
            "100.115.222.130",
        ),
    ] {
        let outcome = check(&ini(conf), &pb);
        assert_eq!(outcome.status, 0, "{conf}: {}", outcome.stderr);
        assert_eq!(outcome.stderr, "", "{conf}");
        let out = &outcome.stdout;
        assert!(
            out.contains("Cluster:         bundled-seesaw-onprem\n"),
            "{out}"
        );
        assert!(
            out.contains(&format!("This node:       node.{node}. {node}")),
            "{out}"
        );
        assert!(
            out.contains(&format!("Peer:            node.{peer}. {peer}")),
            "{out}"
        );
        assert!(out.contains("VRID:            128\n"), "{out}");
        assert!(out.contains("Vservers: 4, services: 6\n"), "{out}");
        assert!(out.contains("Warnings: none\n"), "{out}");
    }
}

#[test]
fn gke_summary_lists_every_vserver_and_service() {
    let outcome = check(&ini("gke-manual-seesaw.cfg"), &cluster("gke-manual.pb"));
    let out = &outcome.stdout;
    for vserver in [
        "admin-control-plane",
        "admin-ingress-controller",
        "user-1-control-plane",
        "user-1-ingress-controller",
    ] {
        assert!(
            out.contains(&format!("  {vserver} (enabled)\n")),
            "{vserver}: {out}"
        );
    }
    let services: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("Service "))
        .collect();
    let expected = [
        "100.115.222.143:443/TCP",
        "100.115.222.144:80/TCP",
        "100.115.222.144:443/TCP",
        "100.115.222.146:443/TCP",
        "100.115.222.145:80/TCP",
        "100.115.222.145:443/TCP",
    ];
    assert_eq!(services.len(), expected.len(), "{out}");
    for service in expected {
        let line = services
            .iter()
            .find(|l| l.contains(&format!("Service {service} ")))
            .unwrap_or_else(|| panic!("{service} missing: {out}"));
        assert!(
            line.contains("wlc DSR, checks: HTTP/10256_0 (PLAIN)"),
            "{line}"
        );
    }
}

#[test]
fn gke_pair_checked_together() {
    let outcome = run_check(&[
        format!("-conf={}", ini("gke-manual-seesaw.cfg")),
        format!("-cluster={}", cluster("gke-manual.pb")),
        format!("-peer_conf={}", ini("gke-manual-seesaw-peer.cfg")),
    ]);
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains("Warnings: none"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("gke-manual-seesaw-peer.cfg agrees (VRID"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn dsr_with_plain_checks_is_noted_not_warned() {
    let outcome = check(&ini("gke-manual-seesaw.cfg"), &cluster("gke-manual.pb"));
    let notes: Vec<&str> = outcome
        .stdout
        .lines()
        .filter(|l| l.contains("DSR backends must hold the VIP"))
        .collect();
    assert_eq!(notes.len(), 1, "one note line: {}", outcome.stdout);

    let outcome = check(
        &ini("dsr-plain-check-lb1-seesaw.cfg"),
        &cluster("dsr-plain-check.pb"),
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains("test-vserver 80/TCP"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("Warnings: none"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn dsr_pair_with_different_names_warns() {
    let outcome = run_check(&[
        format!("-conf={}", ini("dsr-plain-check-lb1-seesaw.cfg")),
        format!("-cluster={}", cluster("dsr-plain-check.pb")),
        format!("-peer_conf={}", ini("dsr-plain-check-lb2-seesaw.cfg")),
    ]);
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(outcome.stdout.contains("Warnings: 1"), "{}", outcome.stdout);
    assert!(
        outcome.stdout.contains(
            "dsr-plain-check-lb2-seesaw.cfg:3:8: warning: cluster name 'lb2' differs from 'lb1'"
        ),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains(
            "agrees (VRID, cluster VIP, node and peer addresses); it differs in what the warnings below name"
        ),
        "{}",
        outcome.stdout
    );
}

#[test]
fn stray_bracket_is_positioned() {
    let outcome = check(&ini("vsphere-dev-seesaw.cfg"), &cluster("stray-bracket.pb"));
    assert_eq!(outcome.status, 1);
    let errors = error_lines(&outcome);
    assert_eq!(errors.len(), 1, "{}", outcome.stderr);
    assert!(
        errors[0]
            .contains("stray-bracket.pb:31:3: field 'backend' belongs in Vserver, not in Cluster"),
        "{}",
        errors[0]
    );
    assert!(errors[0].contains("line 30, column 3"), "{}", errors[0]);
}

#[test]
fn vserver_on_cluster_vip_is_rejected() {
    let outcome = check(
        &ini("vserver-on-cluster-vip-seesaw.cfg"),
        &cluster("vserver-on-cluster-vip.pb"),
    );
    assert_eq!(outcome.status, 1);
    let errors = error_lines(&outcome);
    assert_eq!(errors.len(), 1, "{}", outcome.stderr);
    assert!(errors[0].contains("vserver-on-cluster-vip.pb:20:11: vserver 'server.br11@kvm.test' uses 10.240.11.65, the cluster VIP (vip_ipv4 in "), "{}", errors[0]);
}

#[test]
fn bare_line_is_rejected_with_unknown_section_warning() {
    let outcome = check(&ini("bare-line-seesaw.cfg"), &cluster("vsphere-dev.pb"));
    assert_eq!(outcome.status, 1);
    assert!(
        outcome.stderr.contains("bare-line-seesaw.cfg:2:1: "),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("\"testcluster\""),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome
            .stderr
            .contains("warning: unknown section [config_servers]"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn absent_lb_interface_passes_offline() {
    // The interface is only looked up when the daemons start.
    let outcome = check(
        &ini("absent-lb-interface-seesaw.cfg"),
        &cluster("low-watermark.pb"),
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("Interfaces:      node eth0, LB eth1"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome.stdout.contains("Config servers:  node1, node2"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn vsphere_dev_lists_vlan_and_grant() {
    let outcome = check(&ini("vsphere-dev-seesaw.cfg"), &cluster("vsphere-dev.pb"));
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    let out = &outcome.stdout;
    assert!(
        out.contains("VLAN 515 seesaw1-vlan515.example.com. 100.115.222.124/25"),
        "{out}"
    );
    assert!(out.contains("Access grants: group:windows-admin"), "{out}");
    assert!(
        out.contains("Dedicated VIP subnets: 192.168.100.0/26, 2015:cafe:100::/64"),
        "{out}"
    );
}

#[test]
fn anycast_enabled_without_anycast_vserver_loads() {
    let outcome = check(
        &ini("anycast-enabled-seesaw.cfg"),
        &cluster("dsr-plain-check.pb"),
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains("Anycast:         enabled"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn node_missing_from_cluster_is_rejected() {
    let outcome = check(&ini("three-nic-seesaw.cfg"), &cluster("vsphere-dev.pb"));
    assert_eq!(outcome.status, 1);
    let errors = error_lines(&outcome);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("node_ipv4 192.0.2.2 from ")
                && e.contains("is not a node of this cluster")),
        "{}",
        outcome.stderr
    );
}

#[test]
fn every_error_of_both_files_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("seesaw.cfg");
    std::fs::write(
        &conf,
        "[cluster]\nname = x\nnode_ipv4 = 192.0.2.2\nvip_ipv4 = 192.0.2.1/24\nvrid = 300\n",
    )
    .unwrap();
    let pb = dir.path().join("cluster.pb");
    std::fs::write(
        &pb,
        "seesaw_vip: < fqdn: \"v\" >\nnode: < fqdn: \"a\" ipv4: \"$IP/$LEN\" >\n",
    )
    .unwrap();

    let outcome = check(conf.to_str().unwrap(), pb.to_str().unwrap());
    assert_eq!(outcome.status, 1);
    let errors = error_lines(&outcome);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("seesaw.cfg:4:") && e.contains("vip_ipv4")),
        "{}",
        outcome.stderr
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("seesaw.cfg:5:") && e.contains("vrid")),
        "{}",
        outcome.stderr
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("cluster.pb:1:13: seesaw_vip has no status")),
        "{}",
        outcome.stderr
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("cluster.pb:2:") && e.contains("$IP/$LEN")),
        "{}",
        outcome.stderr
    );
}

#[test]
fn missing_files_are_named() {
    let outcome = check("/nonexistent/seesaw.cfg", "/nonexistent/cluster.pb");
    assert_eq!(outcome.status, 1);
    assert!(
        outcome.stderr.contains("/nonexistent/seesaw.cfg"),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome.stderr.contains("/nonexistent/cluster.pb"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn example_files_pass() {
    let etc = repo_path("etc");
    let outcome = check(
        etc.join("seesaw.cfg.example").to_str().unwrap(),
        etc.join("cluster.pb.example").to_str().unwrap(),
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
}

#[test]
fn cluster_vip_mismatch_warns() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("seesaw.cfg");
    // A misspelt vip_ipv4 leaves the cluster VIP unset.
    std::fs::write(
        &conf,
        "[cluster]\nname = x\nnode_ipv4 = 100.115.222.130\npeer_ipv4 = 100.115.222.131\nvip_ip4 = 100.115.222.132\n",
    )
    .unwrap();

    let outcome = check(conf.to_str().unwrap(), &cluster("gke-manual.pb"));
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(outcome.stdout.contains("vip_ip4"), "{}", outcome.stdout);
    assert!(
        outcome
            .stdout
            .contains("vip_ipv4 is not set, but seesaw_vip in"),
        "{}",
        outcome.stdout
    );
}

/// Checks a pair of seesaw.cfg files of the GKE sample cluster, written
/// as `node.cfg` and `peer.cfg` with the `[cluster]` lines after the
/// shared name and cluster VIP (lines 2 and 3).
fn check_pair(node_lines: &str, peer_lines: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node.cfg");
    let peer = dir.path().join("peer.cfg");
    let head = "[cluster]\nname = bundled-seesaw-onprem\nvip_ipv4 = 100.115.222.132\n";
    std::fs::write(&node, format!("{head}{node_lines}")).unwrap();
    std::fs::write(&peer, format!("{head}{peer_lines}")).unwrap();
    run_check(&[
        format!("-conf={}", node.display()),
        format!("-cluster={}", cluster("gke-manual.pb")),
        format!("-peer_conf={}", peer.display()),
    ])
}

#[test]
fn peer_addresses_must_cross() {
    let outcome = check_pair(
        "node_ipv4 = 100.115.222.130\npeer_ipv4 = 100.115.222.139\n",
        "node_ipv4 = 100.115.222.131\npeer_ipv4 = 100.115.222.138\n",
    );
    assert_eq!(outcome.status, 1);
    assert!(
        outcome
            .stderr
            .contains("node.cfg:5:13: peer_ipv4 is 100.115.222.139, but the peer's node_ipv4 in "),
        "{}",
        outcome.stderr
    );
    assert!(
        outcome
            .stderr
            .contains("peer.cfg:5:13: peer_ipv4 is 100.115.222.138, but this node's node_ipv4 in "),
        "{}",
        outcome.stderr
    );
}

#[test]
fn peer_anycast_ranges_must_match() {
    let outcome = check_pair(
        "node_ipv4 = 100.115.222.130\npeer_ipv4 = 100.115.222.131\n",
        "node_ipv4 = 100.115.222.131\npeer_ipv4 = 100.115.222.130\n\
         anycast_ipv4_range = 10.20.0.0/24\n",
    );
    assert_eq!(outcome.status, 1);
    assert!(
        outcome.stderr.contains(
            "peer.cfg:6:22: anycast_ipv4_range 10.20.0.0/24 differs from 192.168.255.0/24 in "
        ),
        "{}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains("anycast_ipv6_range"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn peer_anycast_enabled_must_match() {
    let outcome = check_pair(
        "node_ipv4 = 100.115.222.130\npeer_ipv4 = 100.115.222.131\nanycast_enabled = false\n",
        "node_ipv4 = 100.115.222.131\npeer_ipv4 = 100.115.222.130\nanycast_enabled = true\n",
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("peer.cfg:6:19: warning: anycast_enabled is true here but false in "),
        "{}",
        outcome.stdout
    );
}

#[test]
fn anycast_disabled_with_bgp_peers_warns() {
    let etc = repo_path("etc");
    let example = std::fs::read_to_string(etc.join("seesaw.cfg.example")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("seesaw.cfg");
    let disabled = example.replacen("anycast_enabled = true", "anycast_enabled = false", 1);
    assert_ne!(disabled, example, "the example sets anycast_enabled");
    std::fs::write(&conf, disabled).unwrap();

    let outcome = check(
        conf.to_str().unwrap(),
        etc.join("cluster.pb.example").to_str().unwrap(),
    );
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("seesaw.cfg:30:19: warning: anycast_enabled is false, but"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("has 1 BGP peer, which bgpd will not be given: set anycast_enabled = true"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn service_anycast_at_vserver_vip_warns() {
    let etc = repo_path("etc");
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(etc.join("seesaw.cfg.example")).unwrap();
    let listed = example.replacen("#dns_v4 = 192.168.255.53", "web = 192.168.255.10", 1);
    assert_ne!(listed, example, "the example lists dns_v4");
    let conf = dir.path().join("seesaw.cfg");
    std::fs::write(&conf, listed).unwrap();
    let example = std::fs::read_to_string(etc.join("cluster.pb.example")).unwrap();
    let anycast = example.replacen("192.0.2.10/24", "192.168.255.10/24", 1);
    assert_ne!(
        anycast, example,
        "the example has web@example at 192.0.2.10"
    );
    let pb = dir.path().join("cluster.pb");
    std::fs::write(&pb, anycast).unwrap();

    let line = 1 + std::fs::read_to_string(&conf)
        .unwrap()
        .lines()
        .position(|l| l == "web = 192.168.255.10")
        .unwrap();

    let outcome = check(conf.to_str().unwrap(), pb.to_str().unwrap());
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    let expected = format!(
        "seesaw.cfg:{line}:7: warning: [extra_service_anycast] lists 192.168.255.10, the VIP of vserver 'web@example' in "
    );
    assert!(outcome.stdout.contains(&expected), "{}", outcome.stdout);
}

/// Returns the first fenced block after `heading` in README.md.
fn readme_block(heading: &str) -> String {
    let readme = repo_path("README.md");
    let text = std::fs::read_to_string(readme).unwrap();
    let section = &text[text.find(heading).expect("the README has the heading")..];
    let start = section.find("```").expect("a fenced block follows");
    let body = &section[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("the block is closed")].to_string()
}

#[test]
fn readme_samples_pass_check() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("seesaw.cfg");
    std::fs::write(&conf, readme_block("### 4. seesaw.cfg, on each node")).unwrap();
    let pb = dir.path().join("cluster.pb");
    std::fs::write(
        &pb,
        readme_block("### 5. cluster.pb, the same on both nodes"),
    )
    .unwrap();

    let outcome = check(conf.to_str().unwrap(), pb.to_str().unwrap());
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains("Warnings: none"),
        "{}",
        outcome.stdout
    );
    assert!(
        outcome
            .stdout
            .contains("Config servers:  none (reloads read cluster.pb)"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn strict_fails_on_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("seesaw.cfg");
    let text = std::fs::read_to_string(ini("gke-manual-seesaw.cfg")).unwrap();
    std::fs::write(&conf, text.replacen("[interface]", "[interfaces]", 1)).unwrap();
    let args = |strict: &str| {
        let mut args = vec![
            format!("-conf={}", conf.display()),
            format!("-cluster={}", cluster("gke-manual.pb")),
        ];
        if !strict.is_empty() {
            args.push(strict.to_string());
        }
        args
    };

    // The misspelt section is only a warning without -strict.
    let outcome = run_check(&args(""));
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
    assert!(
        outcome.stdout.contains("[interfaces]"),
        "{}",
        outcome.stdout
    );

    let outcome = run_check(&args("-strict"));
    assert_eq!(outcome.status, 2, "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("seesaw_engine: -strict: the configuration has 1 warning(s)"),
        "{}",
        outcome.stderr
    );

    // Without warnings, -strict passes.
    let outcome = run_check(&[
        format!("-conf={}", ini("gke-manual-seesaw.cfg")),
        format!("-cluster={}", cluster("gke-manual.pb")),
        "-strict".to_string(),
    ]);
    assert_eq!(outcome.status, 0, "{}", outcome.stderr);
}
