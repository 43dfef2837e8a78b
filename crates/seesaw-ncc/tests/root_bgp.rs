//! The NCC's BGP operations (`seesaw_ncc::bgp`) against FRR's bgpd.
//!
//! Each test builds its own network namespaces: a router and one or two
//! Seesaw nodes, each node joined to the router by a veth pair on
//! 198.18.<10 + i>.0/24, with no route out. Every namespace runs its own
//! bgpd. The nodes are AS 64512 and the router AS 64513, peering over
//! eBGP for IPv4 and IPv6 unicast. The code under test drives a node's
//! bgpd over its vty socket; the checks read the router's BGP table with
//! vtysh.
//!
//! The daemon itself cannot start without IPVS, which the host kernel
//! lacks. So these tests call the library, and `kernel_ncc.rs` checks the
//! gRPC calls in the kernel lab.

mod frr;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use frr::{Bgpd, Peer, ROUTE_TIMEOUT, START_TIMEOUT, bgpd_config, frr_installed, wait_for};
use seesaw_ncc::bgp::neighbors::BgpState;
use seesaw_ncc::bgp::{Bgp, BgpError};

const NODE_ASN: u32 = 64512;
const ROUTER_ASN: u32 = 64513;
const ROUTER_ID: &str = "198.18.0.254";
/// A network the operator configured on the nodes; not Seesaw's to remove.
const OPERATOR_NETWORK: &str = "198.18.100.0/24";

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs `ip` and panics with its error output when it fails.
fn ip(args: &[&str]) {
    let output = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("failed to run ip; is iproute2 installed?");
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn node_address(index: usize) -> String {
    format!("198.18.{}.1", 10 + index)
}

fn router_address(index: usize) -> String {
    format!("198.18.{}.2", 10 + index)
}

fn node_config(index: usize) -> String {
    let router = Peer {
        address: &router_address(index),
        asn: ROUTER_ASN,
        description: "router",
    };
    bgpd_config(
        &format!("node{index}"),
        NODE_ASN,
        &node_address(index),
        &[router],
        &[OPERATOR_NETWORK],
    )
}

fn router_config(nodes: usize) -> String {
    let addresses: Vec<String> = (0..nodes).map(node_address).collect();
    let peers: Vec<Peer> = addresses
        .iter()
        .map(|address| Peer {
            address,
            asn: NODE_ASN,
            description: "",
        })
        .collect();
    bgpd_config("router", ROUTER_ASN, ROUTER_ID, &peers, &[])
}

/// The namespaces and bgpd processes of one test. Dropping it stops the
/// daemons (by PID) and then deletes the namespaces, which removes the
/// veth pairs, also when the test fails.
struct BgpLab {
    nodes: Vec<Bgpd>,
    router: Option<Bgpd>,
    namespaces: Vec<String>,
    dir: tempfile::TempDir,
}

impl BgpLab {
    /// Creates a router and `count` nodes, each node peering with the
    /// router.
    fn new(count: usize) -> BgpLab {
        let prefix = format!(
            "ssbgp{}x{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = BgpLab {
            nodes: Vec::new(),
            router: None,
            namespaces: Vec::new(),
            dir: tempfile::tempdir().expect("failed to create a temporary directory"),
        };
        let router_ns = lab.add_namespace(&format!("{prefix}r"));
        for index in 0..count {
            let node_ns = lab.add_namespace(&format!("{prefix}n{index}"));
            let router_end = format!("r{index}");
            ip(&[
                "-n",
                &node_ns,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                &router_end,
                "netns",
                &router_ns,
            ]);
            let node_cidr = format!("{}/24", node_address(index));
            let router_cidr = format!("{}/24", router_address(index));
            ip(&["-n", &node_ns, "addr", "add", &node_cidr, "dev", "eth0"]);
            ip(&[
                "-n",
                &router_ns,
                "addr",
                "add",
                &router_cidr,
                "dev",
                &router_end,
            ]);
            ip(&["-n", &node_ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &router_ns, "link", "set", &router_end, "up"]);
        }

        let router_dir = lab.dir.path().join("router");
        lab.router = Some(Bgpd::start(&router_ns, &router_dir, &router_config(count)));
        for index in 0..count {
            let node_dir = lab.dir.path().join(format!("node{index}"));
            let node_ns = format!("{prefix}n{index}");
            lab.nodes
                .push(Bgpd::start(&node_ns, &node_dir, &node_config(index)));
        }
        lab
    }

    fn add_namespace(&mut self, name: &str) -> String {
        ip(&["netns", "add", name]);
        self.namespaces.push(name.to_owned());
        ip(&["-n", name, "link", "set", "lo", "up"]);
        name.to_owned()
    }

    fn router(&self) -> &Bgpd {
        self.router.as_ref().expect("the router runs")
    }

    /// Returns the code under test, driving node `index`'s bgpd.
    fn bgp(&self, index: usize) -> Bgp {
        Bgp::new(self.nodes[index].vty_socket())
    }

    /// Waits until the router has `prefix` in its table, or no longer has
    /// it, and panics with both logs otherwise.
    fn expect_route(&self, prefix: &str, present: bool) {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let settled = wait_for(ROUTE_TIMEOUT, || {
            self.router().has_route(family, prefix) == present
        });
        assert!(
            settled,
            "router: {prefix} {} after {ROUTE_TIMEOUT:?}\n{}\nrouter {}\nnode0 {}",
            if present { "missing" } else { "still present" },
            self.router().vtysh(&format!("show bgp {family} unicast")),
            self.router().log(),
            self.nodes[0].log()
        );
    }
}

impl Drop for BgpLab {
    fn drop(&mut self) {
        self.nodes.clear();
        self.router = None;
        for namespace in &self.namespaces {
            let _ = std::process::Command::new("ip")
                .args(["netns", "delete", namespace])
                .status();
        }
    }
}

/// Waits until node `index` reports the router as Established.
async fn wait_established(lab: &BgpLab, index: usize) {
    let bgp = lab.bgp(index);
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let neighbors = bgp.neighbors().await.expect("BgpNeighbors");
        if neighbors
            .iter()
            .any(|neighbor| neighbor.state == BgpState::Established)
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node{index} never reached Established: {neighbors:?}\n{}",
            lab.nodes[index].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns a lab of a router and `nodes` nodes whose sessions are all
/// Established, or `None` when FRR is missing and `test` skips.
async fn established_lab(test: &str, nodes: usize) -> Option<BgpLab> {
    if !frr_installed(test) {
        return None;
    }
    let lab = BgpLab::new(nodes);
    for index in 0..nodes {
        wait_established(&lab, index).await;
    }
    Some(lab)
}

/// Returns the `network` lines of a node's running configuration, trimmed
/// and sorted (FRR prints them in prefix order).
fn network_lines(node: &Bgpd) -> Vec<String> {
    let mut lines: Vec<String> = node
        .vtysh("show running-config")
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("network "))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

fn vip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd"]
async fn root_bgp_advertise_and_withdraw_vip() {
    let Some(lab) = established_lab("root_bgp_advertise_and_withdraw_vip", 1).await else {
        return;
    };
    let bgp = lab.bgp(0);
    lab.expect_route(OPERATOR_NETWORK, true);

    // Twice: the second call finds the statement and changes nothing.
    for _ in 0..2 {
        bgp.advertise(vip("192.168.255.1"))
            .await
            .expect("advertise");
    }
    lab.expect_route("192.168.255.1/32", true);
    assert_eq!(
        network_lines(&lab.nodes[0]),
        [
            "network 192.168.255.1/32".to_owned(),
            format!("network {OPERATOR_NETWORK}"),
        ]
    );

    for _ in 0..2 {
        bgp.withdraw(vip("192.168.255.1")).await.expect("withdraw");
    }
    lab.expect_route("192.168.255.1/32", false);
    lab.expect_route(OPERATOR_NETWORK, true);

    for _ in 0..2 {
        bgp.advertise(vip("2015:cafe:ffff::1"))
            .await
            .expect("advertise IPv6");
    }
    lab.expect_route("2015:cafe:ffff::1/128", true);
    let config = lab.nodes[0].vtysh("show running-config");
    let ipv6_block = config
        .split(" address-family ipv6 unicast")
        .nth(1)
        .expect("an IPv6 unicast block");
    assert!(
        ipv6_block.contains("  network 2015:cafe:ffff::1/128"),
        "{config}"
    );

    for _ in 0..2 {
        bgp.withdraw(vip("2015:cafe:ffff::1"))
            .await
            .expect("withdraw IPv6");
    }
    lab.expect_route("2015:cafe:ffff::1/128", false);
    assert_eq!(
        network_lines(&lab.nodes[0]),
        [format!("network {OPERATOR_NETWORK}")]
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd"]
async fn root_bgp_neighbors_and_config() {
    let Some(lab) = established_lab("root_bgp_neighbors_and_config", 1).await else {
        return;
    };
    let bgp = lab.bgp(0);

    let neighbors = bgp.neighbors().await.expect("BgpNeighbors");
    assert_eq!(neighbors.len(), 1, "{neighbors:?}");
    let router = &neighbors[0];
    assert_eq!(router.address, Some(vip(&router_address(0))));
    assert_eq!(router.interface, None);
    assert_eq!(router.asn, ROUTER_ASN);
    assert_eq!(router.router_id, Some(vip(ROUTER_ID)));
    assert_eq!(router.description, "router");
    assert_eq!(router.state, BgpState::Established);
    assert!(router.uptime < START_TIMEOUT, "{router:?}");
    let messages = router.messages;
    assert!(messages.opens.sent >= 1, "{messages:?}");
    assert!(messages.opens.received >= 1, "{messages:?}");
    assert!(messages.keepalives.received >= 1, "{messages:?}");
    assert!(messages.total.sent >= messages.opens.sent + messages.updates.sent);

    // The uptime counts on while the session stays up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = bgp.neighbors().await.expect("BgpNeighbors");
        assert_eq!(now[0].state, BgpState::Established, "{now:?}");
        if now[0].uptime > router.uptime {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "uptime stayed at {:?}",
            router.uptime
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let lines = bgp.running_config().await.expect("BgpConfig");
    assert!(
        lines.iter().any(|line| line.starts_with("frr version ")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("router bgp {NODE_ASN}")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!(
            " neighbor {} description router",
            router_address(0)
        )),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd"]
async fn root_bgp_withdraw_all_keeps_other_networks() {
    let Some(lab) = established_lab("root_bgp_withdraw_all_keeps_other_networks", 1).await else {
        return;
    };
    let bgp = lab.bgp(0);

    let vips = [
        "192.168.255.1",
        "192.168.255.2",
        "192.168.255.3",
        "2015:cafe:ffff::1",
        "2015:cafe:ffff::2",
    ];
    for text in vips {
        bgp.advertise(vip(text)).await.expect("advertise");
    }
    for text in vips {
        lab.expect_route(
            &format!("{text}/{}", if text.contains(':') { 128 } else { 32 }),
            true,
        );
    }

    let mut withdrawn: Vec<String> = bgp
        .withdraw_all()
        .await
        .expect("BgpWithdrawAll")
        .iter()
        .map(ToString::to_string)
        .collect();
    withdrawn.sort();
    assert_eq!(
        withdrawn,
        [
            "192.168.255.1/32",
            "192.168.255.2/32",
            "192.168.255.3/32",
            "2015:cafe:ffff::1/128",
            "2015:cafe:ffff::2/128",
        ]
    );
    for prefix in &withdrawn {
        lab.expect_route(prefix, false);
    }
    lab.expect_route(OPERATOR_NETWORK, true);
    assert_eq!(
        network_lines(&lab.nodes[0]),
        [format!("network {OPERATOR_NETWORK}")]
    );

    let again = bgp.withdraw_all().await.expect("BgpWithdrawAll again");
    assert!(again.is_empty(), "{again:?}");
}

/// Two Seesaw nodes advertise the same anycast VIP, so the router has two
/// paths until one node withdraws it.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd"]
async fn root_bgp_anycast_from_two_nodes() {
    let Some(lab) = established_lab("root_bgp_anycast_from_two_nodes", 2).await else {
        return;
    };
    let prefix = "192.168.255.10/32";

    for index in 0..2 {
        lab.bgp(index)
            .advertise(vip("192.168.255.10"))
            .await
            .expect("advertise");
    }
    let router = lab.router();
    assert!(
        wait_for(ROUTE_TIMEOUT, || router.path_count("ipv4", prefix) == 2),
        "{}",
        router.vtysh(&format!("show bgp ipv4 unicast {prefix}"))
    );

    lab.bgp(0)
        .withdraw(vip("192.168.255.10"))
        .await
        .expect("withdraw");
    assert!(
        wait_for(ROUTE_TIMEOUT, || router.path_count("ipv4", prefix) == 1),
        "{}",
        router.vtysh(&format!("show bgp ipv4 unicast {prefix}"))
    );
    let remaining = router.vtysh(&format!("show bgp ipv4 unicast {prefix}"));
    assert!(remaining.contains(&node_address(1)), "{remaining}");

    lab.bgp(1).withdraw_all().await.expect("BgpWithdrawAll");
    lab.expect_route(prefix, false);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd"]
async fn root_bgp_errors() {
    if !frr_installed("root_bgp_errors") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // No bgpd at all.
    let missing = dir.path().join("missing/bgpd.vty");
    let bgp = Bgp::new(&missing);
    let error = bgp.advertise(vip("192.168.255.1")).await.unwrap_err();
    assert!(matches!(error, BgpError::Connect { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&missing.display().to_string()),
        "{message}"
    );
    assert!(message.contains("is bgpd running"), "{message}");
    for result in [
        bgp.withdraw(vip("192.168.255.1")).await,
        bgp.withdraw_all().await.map(drop),
        bgp.neighbors().await.map(drop),
        bgp.running_config().await.map(drop),
    ] {
        assert!(
            matches!(result, Err(BgpError::Connect { .. })),
            "{result:?}"
        );
    }

    // A bgpd without `router bgp`: the NCC must not create an instance.
    let namespace = format!("ssbgp{}e", std::process::id());
    ip(&["netns", "add", &namespace]);
    let _namespace = NamespaceGuard(namespace.clone());
    let bgpd = Bgpd::start(&namespace, &dir.path().join("empty"), "hostname empty\n");
    let bgp = Bgp::new(bgpd.vty_socket());

    let error = bgp.advertise(vip("192.168.255.1")).await.unwrap_err();
    assert!(matches!(error, BgpError::NoInstance { .. }), "{error:?}");
    assert!(error.to_string().contains("router bgp"), "{error}");
    let error = bgp.withdraw(vip("192.168.255.1")).await.unwrap_err();
    assert!(matches!(error, BgpError::NoInstance { .. }), "{error:?}");
    assert!(
        !bgpd.vtysh("show running-config").contains("router bgp"),
        "an instance was created"
    );

    // Nothing is advertised without an instance.
    let withdrawn = bgp.withdraw_all().await.expect("BgpWithdrawAll");
    assert!(withdrawn.is_empty());
    let error = bgp.neighbors().await.unwrap_err();
    assert!(
        error.to_string().contains("BGP instance not found"),
        "{error}"
    );
    let lines = bgp.running_config().await.expect("BgpConfig");
    assert!(lines.contains(&"hostname empty".to_owned()), "{lines:?}");

    // After bgpd stops, its socket accepts nothing.
    let socket = bgpd.vty_socket();
    drop(bgpd);
    let error = Bgp::new(&socket).running_config().await.unwrap_err();
    assert!(matches!(error, BgpError::Connect { .. }), "{error:?}");
}

/// Deletes a namespace on drop.
struct NamespaceGuard(String);

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}
