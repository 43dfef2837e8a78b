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
//! In the `root_bgp_generated_*` tests the nodes' bgpd starts without
//! neighbors, next to a zebra, and the NCC configures the neighbors from
//! cluster.pb's settings ([`Bgp::apply_peers`]). A VIP address on the
//! node's loopback interface takes the place of the dummy interface, which the
//! host kernel may lack, so that bgpd's import check finds its route.
//!
//! The daemon itself cannot start without IPVS, which the host kernel
//! lacks. So these tests call the library, and `kernel_ncc.rs` checks the
//! gRPC calls in the kernel lab.

mod frr;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use frr::{Bgpd, Peer, ROUTE_TIMEOUT, START_TIMEOUT, Zebra, bgpd_config, frr_installed, wait_for};
use seesaw_ncc::bgp::neighbors::BgpState;
use seesaw_ncc::bgp::peers::Peering;
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

/// How the nodes' bgpd gets its neighbors.
#[derive(Clone, Copy)]
enum Nodes {
    /// From a configuration written by hand, as Seesaw v2's operators
    /// wrote it ([`node_config`]), without zebra.
    HandWritten,
    /// From the NCC: bgpd starts from the configuration that the function
    /// returns for a node index, next to a zebra.
    Generated(fn(usize) -> String),
}

/// Returns a node configuration with no BGP instance.
fn bare_node_config(index: usize) -> String {
    format!("hostname node{index}\n")
}

/// The namespaces and bgpd processes of one test. Dropping it stops the
/// daemons (by PID) and then deletes the namespaces, which removes the
/// veth pairs, also when the test fails.
struct BgpLab {
    nodes: Vec<Bgpd>,
    zebras: Vec<Zebra>,
    router: Option<Bgpd>,
    namespaces: Vec<String>,
    dir: tempfile::TempDir,
}

impl BgpLab {
    /// Creates a router and `count` nodes, each node peering with the
    /// router.
    fn new(count: usize) -> BgpLab {
        BgpLab::build(count, Nodes::HandWritten)
    }

    /// Creates a router and `count` nodes whose bgpd is set up as `nodes`
    /// describes.
    fn build(count: usize, nodes: Nodes) -> BgpLab {
        let prefix = format!(
            "ssbgp{}x{}",
            std::process::id(),
            LAB_COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut lab = BgpLab {
            nodes: Vec::new(),
            zebras: Vec::new(),
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
            let bgpd = match nodes {
                Nodes::HandWritten => Bgpd::start(&node_ns, &node_dir, &node_config(index)),
                Nodes::Generated(config) => {
                    // zebra runs as the frr user, which must reach its
                    // directory.
                    std::fs::set_permissions(
                        lab.dir.path(),
                        std::os::unix::fs::PermissionsExt::from_mode(0o755),
                    )
                    .expect("failed to open the lab directory to frr");
                    let zebra_dir = lab.dir.path().join(format!("zebra{index}"));
                    let zebra = Zebra::start(&node_ns, &zebra_dir);
                    let bgpd = Bgpd::start_with_zebra(&node_ns, &node_dir, &config(index), &zebra);
                    lab.zebras.push(zebra);
                    bgpd
                }
            };
            lab.nodes.push(bgpd);
        }
        lab
    }

    fn node_namespace(&self, index: usize) -> &str {
        &self.namespaces[index + 1]
    }

    /// Puts `address` on node `index`'s loopback interface, as the NCC
    /// puts an anycast VIP on the dummy interface.
    fn add_node_address(&self, index: usize, address: &str) {
        ip(&[
            "-n",
            self.node_namespace(index),
            "addr",
            "add",
            address,
            "dev",
            "lo",
        ]);
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
        self.zebras.clear();
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

/// Returns node `index`'s neighbors as cluster.pb would set them: the
/// nodes' and the router's AS numbers, `peers`, and Seesaw v2's anycast
/// ranges.
fn peering(index: usize, peers: &[&str]) -> Peering {
    Peering {
        local_asn: NODE_ASN,
        remote_asn: ROUTER_ASN,
        peers: peers.iter().map(|peer| vip(peer)).collect(),
        router_id: Some(node_address(index).parse().unwrap()),
        anycast_ipv4: "192.168.255.0/24".parse().unwrap(),
        anycast_ipv6: "2015:cafe:ffff::/64".parse().unwrap(),
    }
}

/// Returns a lab whose nodes start from `config`, or `None` when FRR is
/// missing and `test` skips.
fn generated_lab(test: &str, config: fn(usize) -> String) -> Option<BgpLab> {
    frr_installed(test).then(|| BgpLab::build(1, Nodes::Generated(config)))
}

/// Waits until node `index` reports the neighbor at `address` in state
/// Established, or in any other state when `established` is false.
async fn wait_neighbor(lab: &BgpLab, index: usize, address: &str, established: bool) {
    let bgp = lab.bgp(index);
    let address = vip(address);
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        let neighbors = bgp.neighbors().await.expect("BgpNeighbors");
        let state = neighbors
            .iter()
            .find(|neighbor| neighbor.address == Some(address))
            .map(|neighbor| neighbor.state);
        if state.is_some_and(|state| (state == BgpState::Established) == established) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node{index}: neighbor {address} never {} Established: {neighbors:?}\n{}",
            if established { "reached" } else { "left" },
            lab.nodes[index].log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Returns the trimmed lines of a running configuration that name Seesaw.
fn seesaw_lines(config: &str) -> Vec<String> {
    config
        .lines()
        .map(str::trim)
        .filter(|line| line.contains("seesaw"))
        .map(str::to_owned)
        .collect()
}

/// A node whose bgpd has only the generated stanza peers with the router,
/// and the router learns an anycast VIP but nothing else. A second apply
/// changes nothing.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd and zebra"]
async fn root_bgp_generated_peers_announce_vip() {
    let Some(lab) = generated_lab("root_bgp_generated_peers_announce_vip", bare_node_config) else {
        return;
    };
    let bgp = lab.bgp(0);
    let router = router_address(0);
    lab.add_node_address(0, "192.168.255.1/32");
    lab.add_node_address(0, "198.18.100.1/24");

    let report = bgp
        .apply_peers(&peering(0, &[&router]))
        .await
        .expect("BgpApplyPeers");
    assert!(
        report.commands.contains(&"router bgp 64512".to_owned()),
        "{report:?}"
    );
    assert!(report.skipped.is_empty(), "{report:?}");
    wait_neighbor(&lab, 0, &router, true).await;

    // A network outside the anycast ranges, which an operator might add,
    // is not sent: the route map passes only anycast host routes.
    lab.nodes[0].configure(&[
        "router bgp 64512",
        "address-family ipv4 unicast",
        &format!("network {OPERATOR_NETWORK}"),
    ]);
    bgp.advertise(vip("192.168.255.1"))
        .await
        .expect("advertise");
    lab.expect_route("192.168.255.1/32", true);
    assert!(
        !lab.router().has_route("ipv4", OPERATOR_NETWORK),
        "{}",
        lab.router().vtysh("show bgp ipv4 unicast")
    );
    let node_table = lab.nodes[0].vtysh("show bgp ipv4 unicast");
    assert!(
        node_table.contains(OPERATOR_NETWORK),
        "the operator's network is in the node's own table:\n{node_table}"
    );

    // The same input again: no command, and the same running config.
    let before = bgp.running_config().await.expect("BgpConfig");
    let again = bgp
        .apply_peers(&peering(0, &[&router]))
        .await
        .expect("BgpApplyPeers again");
    assert!(again.commands.is_empty(), "{again:?}");
    let after = bgp.running_config().await.expect("BgpConfig");
    assert_eq!(before, after);
    assert_eq!(
        seesaw_lines(&after.join("\n")),
        [
            "neighbor seesaw peer-group",
            "neighbor seesaw remote-as 64513",
            "neighbor 198.18.10.2 peer-group seesaw",
            "neighbor seesaw route-map seesaw-anycast out",
            "neighbor seesaw activate",
            "neighbor seesaw route-map seesaw-anycast out",
            "ip prefix-list seesaw-anycast-ipv4 seq 5 permit 192.168.255.0/24 ge 32",
            "ipv6 prefix-list seesaw-anycast-ipv6 seq 5 permit 2015:cafe:ffff::/64 ge 128",
            "route-map seesaw-anycast permit 10",
            "match ip address prefix-list seesaw-anycast-ipv4",
            "route-map seesaw-anycast permit 20",
            "match ipv6 address prefix-list seesaw-anycast-ipv6",
        ]
    );
    assert!(
        after.contains(&" bgp router-id 198.18.10.1".to_owned()),
        "{after:?}"
    );

    let neighbors = bgp.neighbors().await.expect("BgpNeighbors");
    assert_eq!(neighbors.len(), 1, "{neighbors:?}");
    assert_eq!(neighbors[0].asn, ROUTER_ASN);
    assert_eq!(neighbors[0].router_id, Some(vip(ROUTER_ID)));
}

/// The neighbors follow cluster.pb: a peer added, a peer removed, a new
/// remote AS, and no peers at all.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd and zebra"]
async fn root_bgp_generated_peers_follow_changes() {
    let Some(lab) = generated_lab("root_bgp_generated_peers_follow_changes", bare_node_config)
    else {
        return;
    };
    let bgp = lab.bgp(0);
    let router = router_address(0);
    // No host has this address.
    let absent = "198.18.10.9";
    lab.add_node_address(0, "192.168.255.1/32");

    bgp.apply_peers(&peering(0, &[&router]))
        .await
        .expect("BgpApplyPeers");
    wait_neighbor(&lab, 0, &router, true).await;
    bgp.advertise(vip("192.168.255.1"))
        .await
        .expect("advertise");
    lab.expect_route("192.168.255.1/32", true);

    // A peer added: one command, and the router's session stays.
    let report = bgp
        .apply_peers(&peering(0, &[&router, absent]))
        .await
        .expect("BgpApplyPeers with two peers");
    assert_eq!(
        report.commands,
        [
            "configure terminal",
            "router bgp 64512",
            &format!("neighbor {absent} peer-group seesaw"),
            "exit",
            "end"
        ]
    );
    let neighbors = bgp.neighbors().await.expect("BgpNeighbors");
    assert_eq!(neighbors.len(), 2, "{neighbors:?}");
    wait_neighbor(&lab, 0, &router, true).await;

    // The router removed: its session ends, so the router loses the VIP.
    bgp.apply_peers(&peering(0, &[absent]))
        .await
        .expect("BgpApplyPeers without the router");
    lab.expect_route("192.168.255.1/32", false);
    let neighbors = bgp.neighbors().await.expect("BgpNeighbors");
    let addresses: Vec<_> = neighbors.iter().map(|n| n.address).collect();
    assert_eq!(addresses, [Some(vip(absent))]);

    // The router back, then with a remote AS it does not have.
    bgp.apply_peers(&peering(0, &[&router]))
        .await
        .expect("BgpApplyPeers with the router again");
    lab.expect_route("192.168.255.1/32", true);
    let mut wrong_asn = peering(0, &[&router]);
    wrong_asn.remote_asn = 64999;
    bgp.apply_peers(&wrong_asn)
        .await
        .expect("BgpApplyPeers with AS 64999");
    lab.expect_route("192.168.255.1/32", false);
    let config = bgp.running_config().await.expect("BgpConfig");
    assert!(
        config.contains(&" neighbor seesaw remote-as 64999".to_owned()),
        "{config:?}"
    );
    bgp.apply_peers(&peering(0, &[&router]))
        .await
        .expect("BgpApplyPeers with AS 64513");
    lab.expect_route("192.168.255.1/32", true);

    // No peers: everything of Seesaw's goes, the instance and its network
    // stay.
    bgp.apply_peers(&peering(0, &[]))
        .await
        .expect("BgpApplyPeers without peers");
    lab.expect_route("192.168.255.1/32", false);
    let config = bgp.running_config().await.expect("BgpConfig").join("\n");
    assert_eq!(seesaw_lines(&config), Vec::<String>::new(), "{config}");
    assert!(config.contains("router bgp 64512"), "{config}");
    assert!(config.contains("network 192.168.255.1/32"), "{config}");
}

/// Returns an operator's bgpd configuration around the generated stanza.
fn operator_node_config(index: usize) -> String {
    format!(
        "hostname node{index}
ip prefix-list operator seq 5 permit {OPERATOR_NETWORK}
route-map operator-out permit 10
 match ip address prefix-list operator
exit
route-map seesaw-anycast permit 100
 match ip address prefix-list operator
exit
router bgp {NODE_ASN}
 bgp router-id {}
 neighbor 198.18.10.50 remote-as 65050
 neighbor 198.18.10.50 description operator
 address-family ipv4 unicast
  network {OPERATOR_NETWORK}
  neighbor 198.18.10.50 route-map operator-out out
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:100::/48
 exit-address-family
exit
",
        node_address(index)
    )
}

/// The generated stanza leaves the operator's configuration as it was,
/// taking it away restores the exact text, and an instance of another AS
/// is an error that changes nothing.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd and zebra"]
async fn root_bgp_generated_peers_keep_operator_config() {
    let Some(lab) = generated_lab(
        "root_bgp_generated_peers_keep_operator_config",
        operator_node_config,
    ) else {
        return;
    };
    let bgp = lab.bgp(0);
    let router = router_address(0);
    lab.add_node_address(0, "192.168.255.1/32");
    lab.add_node_address(0, "198.18.100.1/24");
    let original = bgp.running_config().await.expect("BgpConfig");

    let mut other_asn = peering(0, &[&router]);
    other_asn.local_asn = 65000;
    let error = bgp.apply_peers(&other_asn).await.unwrap_err();
    assert!(
        matches!(
            error,
            BgpError::OtherInstance {
                running: NODE_ASN,
                requested: 65000,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(bgp.running_config().await.expect("BgpConfig"), original);

    bgp.apply_peers(&peering(0, &[&router]))
        .await
        .expect("BgpApplyPeers");
    wait_neighbor(&lab, 0, &router, true).await;
    let applied = bgp.running_config().await.expect("BgpConfig");
    for line in &original {
        assert!(
            applied.contains(line),
            "the line {line:?} is gone:\n{}",
            applied.join("\n")
        );
    }
    assert!(
        !applied
            .iter()
            .any(|line| line.starts_with(" bgp router-id ")
                && line != &format!(" bgp router-id {}", node_address(0))),
        "{applied:?}"
    );

    // The operator's entry 100 of Seesaw's route map passes the operator's
    // network to Seesaw's peers.
    bgp.advertise(vip("192.168.255.1"))
        .await
        .expect("advertise");
    lab.expect_route("192.168.255.1/32", true);
    lab.expect_route(OPERATOR_NETWORK, true);

    bgp.apply_peers(&peering(0, &[]))
        .await
        .expect("BgpApplyPeers without peers");
    bgp.withdraw(vip("192.168.255.1")).await.expect("withdraw");
    let restored = bgp.running_config().await.expect("BgpConfig");
    assert_eq!(restored.join("\n"), original.join("\n"));
}

/// A neighbor that an operator wrote by hand for a `bgp_peer`, as Seesaw
/// v2 required, becomes Seesaw's.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs root: creates network namespaces and runs FRR's bgpd and zebra"]
async fn root_bgp_generated_peers_adopt_neighbor() {
    fn hand_written(index: usize) -> String {
        format!(
            "hostname node{index}\nrouter bgp {NODE_ASN}\n bgp router-id {}\n \
             neighbor {} remote-as {ROUTER_ASN}\n neighbor {} description router\nexit\n",
            node_address(index),
            router_address(index),
            router_address(index)
        )
    }
    let Some(lab) = generated_lab("root_bgp_generated_peers_adopt_neighbor", hand_written) else {
        return;
    };
    let bgp = lab.bgp(0);
    let router = router_address(0);
    lab.add_node_address(0, "192.168.255.1/32");
    wait_neighbor(&lab, 0, &router, true).await;

    let report = bgp
        .apply_peers(&peering(0, &[&router]))
        .await
        .expect("BgpApplyPeers");
    assert!(
        report
            .commands
            .contains(&format!("neighbor {router} peer-group seesaw")),
        "{report:?}"
    );
    let config = bgp.running_config().await.expect("BgpConfig");
    assert!(
        config.contains(&format!(" neighbor {router} description router")),
        "{config:?}"
    );
    assert!(
        !config.contains(&format!(" neighbor {router} remote-as {ROUTER_ASN}")),
        "{config:?}"
    );

    wait_neighbor(&lab, 0, &router, true).await;
    bgp.advertise(vip("192.168.255.1"))
        .await
        .expect("advertise");
    lab.expect_route("192.168.255.1/32", true);
}
