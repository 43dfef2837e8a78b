//! The NCC daemon against a real kernel, in network namespaces that each
//! test creates inside the kernel lab VM.
//!
//! Topology (one L2 segment, 10.10.0.0/24, on a bridge in `<p>-sw`):
//! - `<p>-lb`: the load balancer; `eth0` is the node interface
//!   (10.10.0.5), `eth1` the LB interface, default route via 10.10.0.1.
//! - `<p>-cl`: a client, 10.10.0.50.
//! - `<p>-be`: a backend, 10.10.0.60, holding the DSR VIP on `lo`.
//! - `<p>-be2`: a second backend, 10.10.0.61, only in tests that add it.
//!
//! Every check reads the kernel's own view (`ip`, `iptables-save`,
//! `ipvsadm`) or sends real packets.

mod frr;
mod lb;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use seesaw_ipc::proto::{self, ncc_client::NccClient};
use tonic::transport::Channel;

use lb::{CLUSTER_VIP, GATEWAY, NODE, lb_interface};

const CLIENT: &str = "10.10.0.50";
const BACKEND: &str = "10.10.0.60";
const DSR_VIP: &str = "10.10.0.100";
const NAT_VIP: &str = "10.10.0.101";

/// Panics unless the test runs in the lab, whose init sets SEESAW_LAB=1, so
/// that `cargo test -- --ignored` cannot change the host's network setup.
fn require_lab() {
    if std::env::var_os("SEESAW_LAB").is_none() {
        panic!(
            "this test changes the kernel's network setup and runs only in the kernel lab; run it with `cargo xtask test`"
        );
    }
}

/// Runs a command and returns its stdout; panics with its output on failure.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("failed to start {program}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{program} {}` failed with {}\nstdout:\n{stdout}\nstderr:\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn sh(script: &str) -> String {
    run("bash", &["-c", script])
}

fn iptables_program(name: &str) -> String {
    seesaw_ncc::iptables::find_program(name)
        .expect("iptables installed")
        .display()
        .to_string()
}

/// The namespaces of one test, deleted on drop.
struct Lab {
    prefix: String,
    roles: Vec<&'static str>,
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Runs `ip netns exec <ns> <command>` and returns stdout.
    fn exec(&self, role: &str, command: &str) -> String {
        sh(&format!("ip netns exec {} {command}", self.ns(role)))
    }

    fn iptables_save(&self) -> String {
        self.exec("lb", &iptables_program("iptables-save"))
    }

    fn iptables(&self, args: &str) -> String {
        self.exec("lb", &format!("{} -w {args}", iptables_program("iptables")))
    }

    fn new(prefix: &str) -> Self {
        let lab = Lab {
            prefix: prefix.to_owned(),
            roles: vec!["sw", "lb", "cl", "be"],
        };
        for &role in &lab.roles {
            run("ip", &["netns", "add", &lab.ns(role)]);
            lab.exec(role, "ip link set lo up");
        }
        lab.exec("sw", "ip link add br0 type bridge");
        lab.exec("sw", &format!("ip addr add {GATEWAY}/24 dev br0"));
        lab.exec("sw", "ip link set br0 up");
        for (role, name) in [("lb", "eth0"), ("lb", "eth1"), ("cl", "c0"), ("be", "b0")] {
            lab.plug_into_bridge(role, name);
        }
        lab.exec("lb", &format!("ip addr add {NODE}/24 dev eth0"));
        lab.exec(
            "lb",
            &format!("ip route add default via {GATEWAY} dev eth0"),
        );
        lab.exec("cl", &format!("ip addr add {CLIENT}/24 dev c0"));
        lab.exec("be", &format!("ip addr add {BACKEND}/24 dev b0"));
        // The backend holds the DSR VIP without answering ARP for it.
        lab.exec("be", &format!("ip addr add {DSR_VIP}/32 dev lo"));
        for key in [
            "all/arp_ignore=1",
            "all/arp_announce=2",
            "b0/arp_ignore=1",
            "b0/arp_announce=2",
        ] {
            lab.exec(
                "be",
                &format!("sysctl -q -w net.ipv4.conf.{}", key.replace('/', ".")),
            );
        }
        lab
    }

    /// Adds the namespace of `role` as a host at `address` on the segment,
    /// with `link` as its port to the bridge.
    fn add_host(&mut self, role: &'static str, link: &str, address: &str) {
        run("ip", &["netns", "add", &self.ns(role)]);
        self.roles.push(role);
        self.exec(role, "ip link set lo up");
        self.plug_into_bridge(role, link);
        self.exec(role, &format!("ip addr add {address}/24 dev {link}"));
    }

    /// Connects the namespace of `role` to the bridge by a veth pair:
    /// `link` in that namespace, `p-<link>` on the bridge, both up.
    fn plug_into_bridge(&self, role: &str, link: &str) {
        let port = format!("p-{link}");
        run(
            "ip",
            &[
                "link",
                "add",
                link,
                "netns",
                &self.ns(role),
                "type",
                "veth",
                "peer",
                "name",
                &port,
                "netns",
                &self.ns("sw"),
            ],
        );
        self.exec("sw", &format!("ip link set {port} master br0 up"));
        self.exec(role, &format!("ip link set {link} up"));
    }

    /// Starts seesaw_ncc in the load balancer's namespace, with a bgpd
    /// vty socket next to its own socket, where no bgpd listens.
    fn start_ncc(&self, socket: &std::path::Path) -> Daemon {
        self.start_ncc_with_bgpd(socket, &socket.with_file_name("bgpd.vty"))
    }

    fn start_ncc_with_bgpd(&self, socket: &std::path::Path, bgpd_vty: &std::path::Path) -> Daemon {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns("lb"),
                env!("CARGO_BIN_EXE_seesaw_ncc"),
                "-logtostderr",
                "-socket",
            ])
            .arg(socket)
            .arg("-bgpd_vty")
            .arg(bgpd_vty)
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start seesaw_ncc");
        Daemon { child: Some(child) }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for role in &self.roles {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(role)])
                .status();
        }
    }
}

/// A running seesaw_ncc, stopped with SIGTERM.
struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("daemon running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        // `ip netns exec` execs the daemon, so this pid is the daemon's.
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal seesaw_ncc");
        child.wait().expect("wait for seesaw_ncc")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn client(socket: &std::path::Path) -> NccClient<Channel> {
    let options = seesaw_ipc::ClientOptions {
        connect_attempts: 20,
        retry_delay: Duration::from_millis(100),
        ..Default::default()
    };
    seesaw_ipc::connect(socket, &options)
        .await
        .expect("connect to seesaw_ncc")
}

fn vip_request(address: &str, kind: proto::VipType) -> proto::VipRequest {
    proto::VipRequest {
        lb: Some(lb_interface()),
        vip: Some(proto::Vip {
            address: address.to_owned(),
            r#type: kind as i32,
        }),
    }
}

fn tcp_service(
    vip: &str,
    port: u32,
    backend_port: u32,
    forward: proto::IpvsForward,
) -> proto::IpvsService {
    proto::IpvsService {
        key: Some(proto::IpvsServiceKey {
            protocol: 6,
            address: vip.to_owned(),
            port,
            fwmark: 0,
            family: proto::AddressFamily::Ipv4 as i32,
        }),
        scheduler: "rr".to_owned(),
        destinations: vec![proto::IpvsDestination {
            address: BACKEND.to_owned(),
            port: backend_port,
            forward: forward as i32,
            weight: 1,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn vserver_rules(vip: &str, port: u32, mode: proto::ForwardingMode) -> proto::VserverRulesRequest {
    proto::VserverRulesRequest {
        lb: Some(lb_interface()),
        vserver_name: format!("test-{vip}"),
        family: proto::AddressFamily::Ipv4 as i32,
        address: vip.to_owned(),
        entries: vec![proto::VserverEntry {
            protocol: 6,
            port,
            mode: mode as i32,
        }],
        fwmark: 0,
    }
}

/// Lines of `ip route show table local` that route to `address`.
fn local_routes(lab: &Lab, address: &str) -> Vec<String> {
    lab.exec("lb", "ip route show table local")
        .lines()
        .filter(|line| line.starts_with(&format!("local {address} ")))
        .map(str::to_owned)
        .collect()
}

/// Starts an HTTP server in the backend that answers every GET with
/// `body`, on `port`.
fn start_backend(lab: &Lab, port: u16, dir: &std::path::Path, body: &str) -> Daemon {
    start_http_server(lab, "be", port, dir, body)
}

/// Starts an HTTP server on `port` in the namespace of `role` that returns
/// `body` for every GET.
fn start_http_server(
    lab: &Lab,
    role: &str,
    port: u16,
    dir: &std::path::Path,
    body: &str,
) -> Daemon {
    std::fs::write(dir.join("index.html"), body).unwrap();
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns(role),
            "python3",
            "-m",
            "http.server",
            "--bind",
            "0.0.0.0",
            &port.to_string(),
        ])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the backend server");
    Daemon { child: Some(child) }
}

/// Fetches `http://<address>:<port>/` from the client namespace.
fn fetch_from_client(lab: &Lab, address: &str, port: u16) -> String {
    let script = format!(
        "import urllib.request; print(urllib.request.urlopen('http://{address}:{port}/', timeout=5).read().decode(), end='')"
    );
    let mut last_error = String::new();
    // The backend server may still be starting.
    for _ in 0..20 {
        let output = Command::new("ip")
            .args(["netns", "exec", &lab.ns("cl"), "python3", "-c", &script])
            .output()
            .unwrap();
        if output.status.success() {
            return String::from_utf8_lossy(&output.stdout).into_owned();
        }
        last_error = String::from_utf8_lossy(&output.stderr).into_owned();
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("fetching http://{address}:{port}/ from the client failed: {last_error}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces, links, IPVS services and iptables rules"]
async fn kernel_ncc_lb_vip_and_services() {
    require_lab();
    let lab = Lab::new("nccA");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("seesaw/ncc/ncc.sock");
    // A host firewall rule that must survive the NCC.
    lab.iptables("-A INPUT -s 10.99.0.0/16 -p tcp --dport 22 -j ACCEPT");
    let host_rule = "-A INPUT -s 10.99.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT";
    let forwarding_before = lab.exec("lb", "cat /proc/sys/net/ipv4/ip_forward");

    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;

    // Init: VMAC, cluster VIP with broadcast, rules, our chains.
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");
    // A second init empties our chains and duplicates neither the jumps to
    // them nor the base rules.
    lab.iptables("-A SEESAW-INPUT -p tcp --dport 9999 -j ACCEPT");
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface again");
    let saved = lab.iptables_save();
    assert!(!saved.contains("--dport 9999"), "{saved}");
    // The PREROUTING jump is in the mangle and the raw table.
    for (line, expected) in [
        ("-A INPUT -j SEESAW-INPUT", 1),
        ("-A PREROUTING -j SEESAW-PREROUTING", 2),
        ("-A OUTPUT -j SEESAW-OUTPUT", 1),
        ("-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT", 1),
        ("-A SEESAW-OUTPUT -j NOTRACK", 1),
    ] {
        let count = saved
            .lines()
            .filter(|saved_line| *saved_line == line)
            .count();
        assert_eq!(count, expected, "{line}:\n{saved}");
    }
    let link = lab.exec("lb", "ip -d link show eth1");
    assert!(link.contains("link/ether 00:00:5e:00:01:3c"), "{link}");
    let addresses = lab.exec("lb", "ip -d addr show eth1");
    assert!(
        addresses.contains(&format!("inet {CLUSTER_VIP}/24 brd 10.10.0.255")),
        "{addresses}"
    );
    let rules = lab.exec("lb", "ip rule");
    assert!(
        rules.contains(&format!("from all to {CLUSTER_VIP} lookup 2")),
        "{rules}"
    );
    assert!(
        rules.contains(&format!("from {CLUSTER_VIP} lookup 2")),
        "{rules}"
    );
    assert_eq!(
        rules.matches("lookup 2").count(),
        2,
        "init twice must not duplicate rules:\n{rules}"
    );
    let saved = lab.iptables_save();
    assert!(saved.contains("-A INPUT -j SEESAW-INPUT"), "{saved}");
    assert!(
        saved.contains("-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT"),
        "{saved}"
    );
    assert!(
        saved.contains(&format!(
            "-A SEESAW-PREROUTING -d {CLUSTER_VIP}/32 -j ACCEPT"
        )),
        "{saved}"
    );
    assert!(saved.contains("-A SEESAW-OUTPUT -j NOTRACK"), "{saved}");
    assert!(saved.contains(host_rule), "host rule lost:\n{saved}");
    assert_eq!(
        lab.exec("lb", "cat /proc/sys/net/ipv4/ip_forward").trim(),
        "1"
    );
    let dummy = lab.exec("lb", "ip -d link show dummy0");
    assert!(dummy.contains("dummy"), "{dummy}");

    // Up: table 2 gets the node network and the default route.
    ncc.bring_lb_interface_up(lb_interface())
        .await
        .expect("BringLbInterfaceUp");
    ncc.bring_lb_interface_up(lb_interface())
        .await
        .expect("BringLbInterfaceUp again");
    let table = lab.exec("lb", "ip route show table 2");
    assert!(
        table.contains("10.10.0.0/24 dev eth1 scope link"),
        "{table}"
    );
    assert!(
        table.contains(&format!("default via {GATEWAY} dev eth1")),
        "{table}"
    );

    // A unicast VIP, announced on the wire while the client listens.
    let capture = start_capture(&lab, "arp and arp[14:4] = 0x0a0a0064").await;
    ncc.add_vip(vip_request(DSR_VIP, proto::VipType::Unicast))
        .await
        .expect("AddVip");
    let captured = captured(capture);
    assert!(
        captured.contains("00:00:5e:00:01:3c > ff:ff:ff:ff:ff:ff"),
        "{captured}"
    );
    assert!(
        captured.contains(&format!(
            "Request who-has {DSR_VIP} tell {DSR_VIP}, length 28"
        )),
        "{captured}"
    );

    ncc.add_vip(vip_request(DSR_VIP, proto::VipType::Unicast))
        .await
        .expect("AddVip again");
    let addresses = lab.exec("lb", "ip addr show eth1");
    assert!(
        addresses.contains(&format!("inet {DSR_VIP}/24")),
        "{addresses}"
    );
    let rules = lab.exec("lb", "ip rule");
    assert_eq!(
        rules.matches(&format!("from {DSR_VIP} lookup 2")).count(),
        1,
        "{rules}"
    );
    let routes = local_routes(&lab, DSR_VIP);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(
        routes[0].contains(&format!("dev eth1 scope host src {NODE}")),
        "{routes:?}"
    );

    // The node-sourced local route holds across down and up.
    ncc.bring_lb_interface_down(lb_interface())
        .await
        .expect("BringLbInterfaceDown");
    assert!(
        !lab.exec("lb", "ip link show eth1").contains(",UP"),
        "eth1 still up"
    );
    ncc.bring_lb_interface_up(lb_interface())
        .await
        .expect("BringLbInterfaceUp after down");
    let routes = local_routes(&lab, DSR_VIP);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(routes[0].contains(&format!("src {NODE}")), "{routes:?}");

    // A DSR service and a NAT service, each reached from the client.
    ncc.add_vip(vip_request(NAT_VIP, proto::VipType::Unicast))
        .await
        .expect("AddVip NAT");
    ncc.ipvs_flush(proto::Empty {}).await.expect("IpvsFlush");
    ncc.ipvs_add_service(tcp_service(
        DSR_VIP,
        80,
        80,
        proto::IpvsForward::DirectRoute,
    ))
    .await
    .expect("add DSR service");
    ncc.ipvs_add_service(tcp_service(
        DSR_VIP,
        80,
        80,
        proto::IpvsForward::DirectRoute,
    ))
    .await
    .expect("add DSR service again");
    ncc.ipvs_add_service(tcp_service(
        NAT_VIP,
        8080,
        8080,
        proto::IpvsForward::Masquerade,
    ))
    .await
    .expect("add NAT service");
    ncc.add_vserver_rules(vserver_rules(DSR_VIP, 80, proto::ForwardingMode::Dsr))
        .await
        .expect("DSR rules");
    ncc.add_vserver_rules(vserver_rules(NAT_VIP, 8080, proto::ForwardingMode::Nat))
        .await
        .expect("NAT rules");
    ncc.add_vserver_rules(vserver_rules(NAT_VIP, 8080, proto::ForwardingMode::Nat))
        .await
        .expect("NAT rules again");
    let table = lab.exec("lb", "ipvsadm -Ln");
    assert!(table.contains(&format!("TCP  {DSR_VIP}:80 rr")), "{table}");
    assert!(table.contains(&format!("-> {BACKEND}:80")), "{table}");
    assert!(table.contains(&format!("-> {BACKEND}:8080")), "{table}");
    let saved = lab.iptables_save();
    assert_eq!(
        saved.matches(&format!("--vaddr {NAT_VIP} ")).count(),
        1,
        "one SNAT rule:\n{saved}"
    );
    assert!(
        saved.contains(&format!("-j SNAT --to-source {CLUSTER_VIP} --random")),
        "{saved}"
    );

    let web = tempfile::tempdir().unwrap();
    let _dsr_backend = start_backend(&lab, 80, web.path(), "backend says hello\n");
    let _nat_backend = start_backend(&lab, 8080, web.path(), "backend says hello\n");
    assert_eq!(fetch_from_client(&lab, DSR_VIP, 80), "backend says hello\n");
    assert_eq!(
        fetch_from_client(&lab, NAT_VIP, 8080),
        "backend says hello\n"
    );

    // State read-back for the engine.
    let state = ncc
        .get_state(lb_interface())
        .await
        .expect("GetState")
        .into_inner();
    assert_eq!(state.services.len(), 2, "{state:?}");
    let eth1 = state
        .interfaces
        .iter()
        .find(|interface| interface.name == "eth1")
        .expect("eth1 in state");
    assert!(
        eth1.addresses.contains(&format!("{DSR_VIP}/24")),
        "{eth1:?}"
    );
    assert!(
        state
            .rules
            .iter()
            .any(|rule| rule.source == format!("{DSR_VIP}/32")),
        "{:?}",
        state.rules
    );

    // Removal, twice.
    ncc.delete_vserver_rules(vserver_rules(NAT_VIP, 8080, proto::ForwardingMode::Nat))
        .await
        .expect("delete NAT rules");
    ncc.delete_vip(vip_request(DSR_VIP, proto::VipType::Unicast))
        .await
        .expect("DeleteVip");
    ncc.delete_vip(vip_request(DSR_VIP, proto::VipType::Unicast))
        .await
        .expect("DeleteVip again");
    assert!(!lab.exec("lb", "ip addr show eth1").contains(DSR_VIP));
    assert!(!lab.exec("lb", "ip rule").contains(DSR_VIP));
    assert!(local_routes(&lab, DSR_VIP).is_empty());
    assert!(!lab.iptables_save().contains(&format!("--vaddr {NAT_VIP} ")));

    // Anycast VIPs live on the dummy interface with a node-sourced route.
    ncc.add_vip(vip_request("192.168.255.1", proto::VipType::Anycast))
        .await
        .expect("AddVip anycast");
    assert!(
        lab.exec("lb", "ip addr show dummy0")
            .contains("inet 192.168.255.1/32")
    );
    let routes = local_routes(&lab, "192.168.255.1");
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(
        routes[0].contains(&format!("dev dummy0 scope host src {NODE}")),
        "{routes:?}"
    );

    // VLANs.
    let vlan = proto::VlanRequest {
        lb: Some(lb_interface()),
        vlan: Some(proto::Vlan {
            id: 100,
            ipv4: "10.20.0.5/24".to_owned(),
            ipv6: String::new(),
        }),
    };
    ncc.add_vlan(vlan.clone()).await.expect("AddVlan");
    ncc.add_vlan(vlan.clone()).await.expect("AddVlan again");
    let link = lab.exec("lb", "ip -d addr show eth1.100");
    assert!(link.contains("vlan protocol 802.1Q id 100"), "{link}");
    assert!(link.contains("inet 10.20.0.5/24 brd 10.20.0.255"), "{link}");
    ncc.delete_vlan(vlan.clone()).await.expect("DeleteVlan");
    ncc.delete_vlan(vlan).await.expect("DeleteVlan again");
    assert!(!lab.exec("lb", "ip link show").contains("eth1.100"));

    // Errors name the object.
    let error = ncc
        .add_vip(vip_request("172.16.9.9", proto::VipType::Unicast))
        .await
        .expect_err("a VIP outside every network");
    assert!(error.message().contains("172.16.9.9"), "{error:?}");
    // Without bgpd, a BGP call fails and the daemon keeps serving.
    let bgp = ncc
        .bgp_withdraw_all(proto::Empty {})
        .await
        .expect_err("no bgpd runs");
    assert_eq!(bgp.code(), tonic::Code::Unavailable, "{bgp:?}");
    assert!(
        bgp.message().starts_with(
            "failed to withdraw all BGP advertisements: failed to connect to bgpd at "
        ),
        "{bgp:?}"
    );
    assert!(bgp.message().contains("bgpd.vty"), "{bgp:?}");

    let status = daemon.stop();
    assert!(status.success(), "seesaw_ncc exited with {status}");
    assert!(!socket.exists(), "socket left behind");
    assert!(
        lab.iptables_save().contains(host_rule),
        "host rule lost after stop"
    );
    assert_eq!(
        lab.exec("lb", "cat /proc/sys/net/ipv4/ip_forward"),
        forwarding_before
    );
}

/// The kernel state that the Go Seesaw left on its master node (see
/// `fixtures/go-seesaw/README.md`).
const GO_IPTABLES: &str = include_str!("fixtures/go-seesaw/master__iptables-save.txt");
const GO_IP6TABLES: &str = include_str!("fixtures/go-seesaw/master__ip6tables-save.txt");
const GO_RULES: &str = include_str!("fixtures/go-seesaw/master__ip_rule.txt");
const GO_ADDRESSES: &str = include_str!("fixtures/go-seesaw/master__ip_-d_addr.txt");
const GO_ROUTES: &str = include_str!("fixtures/go-seesaw/master__ip_route_show_table_all.txt");

/// The Go master's VIPs, moved into the lab's network.
const GO_VIPS: [&str; 4] = ["10.10.0.143", "10.10.0.144", "10.10.0.145", "10.10.0.146"];

/// Rules of a NAT virtual server on 10.10.0.144 and a fwmark virtual server
/// on 10.10.0.145, in the form the Go NCC writes them. The captured master
/// ran neither kind.
const GO_NAT_AND_MARK: &str = "*raw
-I PREROUTING 1 -p tcp -d 10.10.0.144/32 --dport 443 -j ACCEPT
COMMIT
*mangle
-A PREROUTING -p tcp -d 10.10.0.145/32 --dport 80 -j MARK --set-mark 7
COMMIT
*nat
-A POSTROUTING -m ipvs -p tcp --vport 443 --vaddr 10.10.0.144 -j SNAT --to-source 10.10.0.10 --random
COMMIT
";

/// Moves the Go master's addresses and interface names into the lab's
/// network: 100.115.222.128/25 becomes 10.10.0.0/24, with the node, the
/// gateway and the cluster VIP at the lab's addresses and the other hosts
/// keeping their last octet.
fn go_state_in_lab(text: &str) -> String {
    const NET: &str = "100.115.222.";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(NET) {
        out.push_str(&rest[..at]);
        rest = &rest[at + NET.len()..];
        let end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let octet: u8 = rest[..end].parse().expect("an address");
        rest = &rest[end..];
        out.push_str(&match octet {
            128 => "10.10.0.0".to_owned(),
            129 => GATEWAY.to_owned(),
            130 => NODE.to_owned(),
            132 => CLUSTER_VIP.to_owned(),
            other => format!("10.10.0.{other}"),
        });
        if let Some(after) = rest.strip_prefix("/25") {
            out.push_str("/24");
            rest = after;
        }
    }
    out.push_str(rest);
    out.replace("ens224", "eth1").replace("ens192", "eth0")
}

/// `ip addr add` arguments for the IPv4 addresses of `interface` in
/// `ip -d addr` output.
fn ipv4_addresses_of(addresses: &str, interface: &str) -> Vec<String> {
    let mut current = String::new();
    let mut found = Vec::new();
    for line in addresses.lines() {
        if !line.starts_with(' ') {
            // "3: eth1@if5: <...>" names the interface of the lines below.
            current = line
                .split(": ")
                .nth(1)
                .unwrap_or_default()
                .split('@')
                .next()
                .unwrap_or_default()
                .to_owned();
        } else if current == interface
            && let Some(rest) = line.trim_start().strip_prefix("inet ")
        {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let mut args = vec![words[0].to_owned()];
            if let Some(at) = words.iter().position(|word| *word == "brd") {
                args.push(format!("brd {}", words[at + 1]));
            }
            found.push(format!("{} dev {interface}", args.join(" ")));
        }
    }
    found
}

/// Rule lines of `iptables-save` output in built-in chains.
fn builtin_chain_rules(saved: &str) -> Vec<String> {
    saved
        .lines()
        .filter(|line| {
            ["INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"]
                .iter()
                .any(|chain| line.starts_with(&format!("-A {chain} ")))
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces, links and iptables rules"]
async fn kernel_ncc_takes_over_go_state() {
    require_lab();
    let lab = Lab::new("nccB");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let ip6tables = iptables_program("ip6tables");
    let ip6tables_save = || lab.exec("lb", &iptables_program("ip6tables-save"));

    // Host rules, which must stay.
    lab.iptables("-A INPUT -s 10.99.0.0/16 -p tcp --dport 22 -j ACCEPT");
    lab.exec(
        "lb",
        &format!("{ip6tables} -w -A INPUT -s fd00:99::/64 -p tcp --dport 22 -j ACCEPT"),
    );
    let host_rule = "-A INPUT -s 10.99.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT";
    let host_rule_v6 = "-A INPUT -s fd00:99::/64 -p tcp -m tcp --dport 22 -j ACCEPT";

    // The Go master's state: iptables and ip6tables rules in the built-in
    // chains, the VMAC, the cluster VIP and VIPs on the LB interface, the
    // `lookup 2` rules, table 2 and the node-sourced local routes.
    let files = tempfile::tempdir().unwrap();
    for (name, program, text) in [
        ("v4.save", "iptables-restore", go_state_in_lab(GO_IPTABLES)),
        ("nat.save", "iptables-restore", GO_NAT_AND_MARK.to_owned()),
        ("v6.save", "ip6tables-restore", GO_IP6TABLES.to_owned()),
    ] {
        let path = files.path().join(name);
        std::fs::write(&path, text).unwrap();
        lab.exec(
            "lb",
            &format!(
                "{} -w --noflush {}",
                iptables_program(program),
                path.display()
            ),
        );
    }
    let go_v4 = lab.iptables_save();
    let go_v6 = ip6tables_save();
    for line in [
        format!("-A PREROUTING -d {CLUSTER_VIP}/32 -j ACCEPT"),
        "-A PREROUTING -d 10.10.0.144/32 -p tcp -m tcp --dport 443 -j ACCEPT".to_owned(),
        "-A PREROUTING -d 10.10.0.145/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x7/0xffffffff"
            .to_owned(),
        "-A INPUT -d 10.10.0.143/32 -p ipv6-icmp -j ACCEPT".to_owned(),
        host_rule.to_owned(),
    ] {
        assert!(go_v4.contains(&line), "{line} not applied:\n{go_v4}");
    }
    assert!(go_v4.contains("--vaddr 10.10.0.144"), "{go_v4}");
    assert!(go_v6.contains("-A OUTPUT -j NOTRACK"), "{go_v6}");

    let go_addresses = go_state_in_lab(GO_ADDRESSES);
    let go_mac = go_addresses
        .lines()
        .skip_while(|line| !line.contains(" eth1@"))
        .find_map(|line| line.trim_start().strip_prefix("link/ether "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the LB interface's MAC")
        .to_owned();
    lab.exec("lb", &format!("ip link set eth1 address {go_mac}"));
    let addresses = ipv4_addresses_of(&go_addresses, "eth1");
    assert_eq!(addresses.len(), 5, "{addresses:?}");
    for address in &addresses {
        lab.exec("lb", &format!("ip addr add {address}"));
    }
    let mut rule_count = 0;
    for line in go_state_in_lab(GO_RULES).lines() {
        let (priority, rule) = line.split_once(":\t").expect("a rule line");
        if rule.contains("lookup 2") {
            lab.exec("lb", &format!("ip rule add pref {priority} {rule}"));
            rule_count += 1;
        }
    }
    assert_eq!(rule_count, 6);
    let mut route_count = 0;
    for route in go_state_in_lab(GO_ROUTES).lines() {
        let go_route = route.contains(" table 2 ")
            || (route.starts_with("local ")
                && route.contains(" table local ")
                && !route.contains(" proto kernel "));
        if go_route {
            lab.exec("lb", &format!("ip route append {route}"));
            route_count += 1;
        }
    }
    assert_eq!(route_count, 6);
    // An anycast VIP on the dummy interface with its node-sourced route.
    let anycast = "192.168.255.1";
    lab.exec("lb", "ip link add dummy0 type dummy");
    lab.exec("lb", "ip link set dummy0 up");
    lab.exec("lb", &format!("ip addr add {anycast}/32 dev dummy0"));
    lab.exec(
        "lb",
        &format!("ip route append local {anycast} dev dummy0 table local scope host src {NODE}"),
    );
    for vip in GO_VIPS {
        assert_eq!(local_routes(&lab, vip).len(), 2, "{vip}");
    }

    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;

    // Soon after start the Go rules leave the built-in chains of both
    // families; the host rules stay. The NCC removes them while it already
    // serves, before any call that changes the network.
    let only_host_rules = |saved: &str, host: &str| builtin_chain_rules(saved) == [host];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut saved, mut saved_v6) = (lab.iptables_save(), ip6tables_save());
    while !(only_host_rules(&saved, host_rule) && only_host_rules(&saved_v6, host_rule_v6))
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
        (saved, saved_v6) = (lab.iptables_save(), ip6tables_save());
    }
    assert_eq!(builtin_chain_rules(&saved), [host_rule], "{saved}");
    assert_eq!(builtin_chain_rules(&saved_v6), [host_rule_v6], "{saved_v6}");
    assert!(
        !saved.contains(&format!("-d {CLUSTER_VIP}/32 -j ACCEPT")),
        "{saved}"
    );

    // Init replaces the Go addresses, rules and routes with ours.
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");
    ncc.bring_lb_interface_up(lb_interface())
        .await
        .expect("BringLbInterfaceUp");
    let rules = lab.exec("lb", "ip rule");
    assert_eq!(rules.matches("lookup 2").count(), 2, "{rules}");
    assert!(
        rules.contains(&format!("from all to {CLUSTER_VIP} lookup 2")),
        "{rules}"
    );
    assert!(
        rules.contains(&format!("from {CLUSTER_VIP} lookup 2")),
        "{rules}"
    );
    let eth1 = lab.exec("lb", "ip -d addr show eth1");
    assert!(eth1.contains("link/ether 00:00:5e:00:01:3c"), "{eth1}");
    let inet: Vec<&str> = eth1
        .lines()
        .filter(|line| line.trim_start().starts_with("inet "))
        .collect();
    assert_eq!(inet.len(), 1, "{eth1}");
    assert!(
        inet[0].contains(&format!("inet {CLUSTER_VIP}/24 brd 10.10.0.255")),
        "{eth1}"
    );
    let dummy = lab.exec("lb", "ip addr show dummy0");
    assert!(!dummy.contains(anycast), "{dummy}");
    for vip in GO_VIPS.into_iter().chain([anycast]) {
        assert!(
            local_routes(&lab, vip).is_empty(),
            "{vip}: {:?}",
            local_routes(&lab, vip)
        );
    }
    let table = lab.exec("lb", "ip route show table 2");
    assert_eq!(table.matches("default via").count(), 1, "{table}");

    // Ours exist next to the host rules, which are the only others in the
    // built-in chains.
    for (saved, host) in [
        (lab.iptables_save(), host_rule),
        (ip6tables_save(), host_rule_v6),
    ] {
        for line in builtin_chain_rules(&saved) {
            assert!(
                line == host || line.contains(" -j SEESAW-"),
                "{line}:\n{saved}"
            );
        }
        for line in [
            host,
            "-A INPUT -j SEESAW-INPUT",
            "-A OUTPUT -j SEESAW-OUTPUT",
            "-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT",
            "-A SEESAW-PREROUTING -j NOTRACK",
            "-A SEESAW-OUTPUT -j NOTRACK",
        ] {
            assert!(saved.contains(line), "{line} missing:\n{saved}");
        }
    }
    let saved = lab.iptables_save();
    assert!(
        saved.contains(&format!(
            "-A SEESAW-PREROUTING -d {CLUSTER_VIP}/32 -j ACCEPT"
        )),
        "{saved}"
    );
    assert!(
        saved.contains("-A POSTROUTING -j SEESAW-POSTROUTING"),
        "{saved}"
    );

    assert!(daemon.stop().success());
    assert!(lab.iptables_save().contains(host_rule));
    assert!(ip6tables_save().contains(host_rule_v6));
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: runs seesaw_ncc as root"]
async fn kernel_ncc_rejects_socket_in_use() {
    require_lab();
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_seesaw_ncc"))
        .arg("-logtostderr")
        .arg("-socket")
        .arg(&socket)
        .output()
        .expect("run seesaw_ncc");

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is in use"), "{stderr}");
}

const NODE_V6: &str = "fd00:10::5";
const CLUSTER_VIP_V6: &str = "fd00:10::10";
const CLIENT_V6: &str = "fd00:10::50";
const VIP_V6: &str = "fd00:10::100";

/// Gives the node and the client IPv6 addresses on the shared segment.
/// `nodad` makes them usable at once, as a source and for neighbour
/// discovery, instead of after duplicate address detection.
fn add_ipv6(lab: &Lab) {
    lab.exec("lb", &format!("ip addr add {NODE_V6}/64 dev eth0 nodad"));
    lab.exec("cl", &format!("ip addr add {CLIENT_V6}/64 dev c0 nodad"));
}

fn dual_stack_lb_interface() -> proto::LbInterface {
    let mut lb = lb_interface();
    lb.node.as_mut().unwrap().ipv6 = NODE_V6.to_owned();
    lb.cluster_vip.as_mut().unwrap().ipv6 = CLUSTER_VIP_V6.to_owned();
    lb
}

fn dual_stack_vip(address: &str, kind: proto::VipType) -> proto::VipRequest {
    proto::VipRequest {
        lb: Some(dual_stack_lb_interface()),
        ..vip_request(address, kind)
    }
}

/// Lines of `ip -6 route show table local` that route to `address`.
fn local_routes_v6(lab: &Lab, address: &str) -> Vec<String> {
    lab.exec("lb", "ip -6 route show table local")
        .lines()
        .filter(|line| line.starts_with(&format!("local {address} ")))
        .map(str::to_owned)
        .collect()
}

/// Asserts that `address` has exactly one local route, on `device` with
/// the node's IPv6 address as source.
fn assert_node_sourced_v6(lab: &Lab, address: &str, device: &str) {
    let routes = local_routes_v6(lab, address);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(routes[0].contains(&format!("dev {device} ")), "{routes:?}");
    assert!(routes[0].contains(&format!("src {NODE_V6} ")), "{routes:?}");
}

/// Starts tcpdump in the client namespace, stopping after one packet
/// matching `filter` or after 15 seconds, and waits until it listens.
async fn start_capture(lab: &Lab, filter: &str) -> Child {
    let capture = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns("cl"),
            "timeout",
            "15",
            "tcpdump",
            "-i",
            "c0",
            "-nn",
            "-e",
            "-v",
            "-c",
            "1",
            "-l",
            // The lab's root file system has no `tcpdump` user to drop to.
            "-Z",
            "root",
            filter,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tcpdump");
    tokio::time::sleep(Duration::from_secs(2)).await;
    capture
}

fn captured(capture: Child) -> String {
    let output = capture.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces, links, addresses and routes"]
async fn kernel_ncc_ipv6_vips_and_vlan() {
    require_lab();
    let lab = Lab::new("nccC");
    add_ipv6(&lab);
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;

    ncc.init_lb_interface(dual_stack_lb_interface())
        .await
        .expect("InitLbInterface");
    ncc.bring_lb_interface_up(dual_stack_lb_interface())
        .await
        .expect("BringLbInterfaceUp");
    let addresses = lab.exec("lb", "ip -6 addr show eth1");
    assert!(
        addresses.contains(&format!("inet6 {CLUSTER_VIP_V6}/64")),
        "{addresses}"
    );

    // A unicast VIP, announced with an unsolicited neighbour advertisement
    // (ICMPv6 type 136) whose target ends in ::100.
    let capture = start_capture(&lab, "icmp6 and ip6[40] == 136 and ip6[60:4] == 0x00000100").await;
    ncc.add_vip(dual_stack_vip(VIP_V6, proto::VipType::Unicast))
        .await
        .expect("AddVip IPv6");
    let captured = captured(capture);
    assert!(
        captured.contains("00:00:5e:00:01:3c > 33:33:00:00:00:01"),
        "{captured}"
    );
    assert!(
        captured.contains(&format!("{VIP_V6} > ff02::1")),
        "{captured}"
    );
    assert!(captured.contains("hlim 255"), "{captured}");
    assert!(captured.contains(&format!("tgt is {VIP_V6}")), "{captured}");
    assert!(captured.contains("override"), "{captured}");

    ncc.add_vip(dual_stack_vip(VIP_V6, proto::VipType::Unicast))
        .await
        .expect("AddVip IPv6 again");
    let addresses = lab.exec("lb", "ip -6 addr show eth1");
    assert!(
        addresses.contains(&format!("inet6 {VIP_V6}/64")),
        "{addresses}"
    );
    assert_node_sourced_v6(&lab, VIP_V6, "eth1");
    // Policy routing is IPv4 only.
    let rules = lab.exec("lb", "ip -6 rule");
    assert!(!rules.contains(VIP_V6), "{rules}");
    lab.exec("cl", &format!("ping -6 -c 1 -W 5 {VIP_V6}"));

    // Down drops IPv6 addresses in the kernel; the NCC puts them back, and
    // up leaves one node-sourced local route.
    ncc.bring_lb_interface_down(dual_stack_lb_interface())
        .await
        .expect("BringLbInterfaceDown");
    let addresses = lab.exec("lb", "ip -6 addr show eth1");
    assert!(
        addresses.contains(&format!("inet6 {VIP_V6}/64")),
        "{addresses}"
    );
    assert!(
        addresses.contains(&format!("inet6 {CLUSTER_VIP_V6}/64")),
        "{addresses}"
    );
    ncc.bring_lb_interface_up(dual_stack_lb_interface())
        .await
        .expect("BringLbInterfaceUp after down");
    assert_node_sourced_v6(&lab, VIP_V6, "eth1");

    // IPv6 virtual server rules go to ip6tables.
    let rules = proto::VserverRulesRequest {
        lb: Some(dual_stack_lb_interface()),
        vserver_name: "web-v6".to_owned(),
        family: proto::AddressFamily::Ipv6 as i32,
        address: VIP_V6.to_owned(),
        entries: vec![proto::VserverEntry {
            protocol: 6,
            port: 80,
            mode: proto::ForwardingMode::Dsr as i32,
        }],
        fwmark: 0,
    };
    ncc.add_vserver_rules(rules.clone())
        .await
        .expect("AddVserverRules IPv6");
    let saved = lab.exec("lb", &iptables_program("ip6tables-save"));
    for line in [
        format!("-A SEESAW-INPUT -d {VIP_V6}/128 -p tcp -m tcp --dport 80 -j ACCEPT"),
        format!("-A SEESAW-INPUT -d {VIP_V6}/128 -p ipv6-icmp -j ACCEPT"),
        format!("-A SEESAW-INPUT -d {VIP_V6}/128 -j REJECT"),
    ] {
        assert!(saved.contains(&line), "{line} missing:\n{saved}");
    }
    ncc.delete_vserver_rules(rules)
        .await
        .expect("DeleteVserverRules IPv6");
    let saved = lab.exec("lb", &iptables_program("ip6tables-save"));
    assert!(!saved.contains(VIP_V6), "{saved}");

    // An anycast VIP on the dummy interface.
    ncc.add_vip(dual_stack_vip("fd00:99::1", proto::VipType::Anycast))
        .await
        .expect("AddVip IPv6 anycast");
    let dummy = lab.exec("lb", "ip -6 addr show dummy0");
    assert!(dummy.contains("inet6 fd00:99::1/128"), "{dummy}");
    assert_node_sourced_v6(&lab, "fd00:99::1", "dummy0");

    // A VLAN with an IPv6 address, and a VIP in its network.
    let vlan = proto::VlanRequest {
        lb: Some(dual_stack_lb_interface()),
        vlan: Some(proto::Vlan {
            id: 200,
            ipv4: "10.20.0.5/24".to_owned(),
            ipv6: "fd00:20::5/64".to_owned(),
        }),
    };
    ncc.add_vlan(vlan.clone()).await.expect("AddVlan IPv6");
    ncc.add_vlan(vlan.clone())
        .await
        .expect("AddVlan IPv6 again");
    let link = lab.exec("lb", "ip -d addr show eth1.200");
    assert!(link.contains("vlan protocol 802.1Q id 200"), "{link}");
    assert!(link.contains("inet6 fd00:20::5/64"), "{link}");
    ncc.add_vip(dual_stack_vip("fd00:20::100", proto::VipType::Unicast))
        .await
        .expect("AddVip on the VLAN");
    assert!(
        lab.exec("lb", "ip -6 addr show eth1.200")
            .contains("inet6 fd00:20::100/64")
    );
    assert_node_sourced_v6(&lab, "fd00:20::100", "eth1.200");
    ncc.bring_lb_interface_down(dual_stack_lb_interface())
        .await
        .expect("BringLbInterfaceDown with VLAN");
    ncc.bring_lb_interface_up(dual_stack_lb_interface())
        .await
        .expect("BringLbInterfaceUp with VLAN");
    let link = lab.exec("lb", "ip -6 addr show eth1.200");
    assert!(link.contains("inet6 fd00:20::5/64"), "{link}");
    assert!(link.contains("inet6 fd00:20::100/64"), "{link}");
    assert_node_sourced_v6(&lab, "fd00:20::100", "eth1.200");

    let state = ncc
        .get_state(dual_stack_lb_interface())
        .await
        .expect("GetState")
        .into_inner();
    let addresses_of = |name: &str| {
        state
            .interfaces
            .iter()
            .find(|interface| interface.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {state:?}"))
            .addresses
            .clone()
    };
    assert!(addresses_of("eth1").contains(&format!("{VIP_V6}/64")));
    assert!(addresses_of("eth1.200").contains(&"fd00:20::100/64".to_owned()));
    assert!(addresses_of("dummy0").contains(&"fd00:99::1/128".to_owned()));

    // Removal, twice each.
    for (address, kind) in [
        (VIP_V6, proto::VipType::Unicast),
        ("fd00:20::100", proto::VipType::Unicast),
        ("fd00:99::1", proto::VipType::Anycast),
    ] {
        for _ in 0..2 {
            ncc.delete_vip(dual_stack_vip(address, kind))
                .await
                .unwrap_or_else(|error| panic!("DeleteVip {address}: {error:?}"));
        }
        assert!(
            !lab.exec("lb", "ip -6 addr show").contains(address),
            "{address} still configured"
        );
        assert!(
            local_routes_v6(&lab, address).is_empty(),
            "{:?}",
            local_routes_v6(&lab, address)
        );
    }
    ncc.delete_vlan(vlan).await.expect("DeleteVlan IPv6");

    assert!(daemon.stop().success());
}

fn batch_service(address: &str, port: u32, scheduler: &str) -> proto::IpvsService {
    proto::IpvsService {
        key: Some(proto::IpvsServiceKey {
            protocol: 6,
            address: address.to_owned(),
            port,
            fwmark: 0,
            family: proto::AddressFamily::Ipv4 as i32,
        }),
        scheduler: scheduler.to_owned(),
        ..Default::default()
    }
}

fn batch_destination(service: &proto::IpvsService, address: &str) -> proto::IpvsChange {
    proto::IpvsChange {
        change: Some(proto::ipvs_change::Change::AddDestination(
            proto::IpvsDestinationRequest {
                service: service.key.clone(),
                destination: Some(proto::IpvsDestination {
                    address: address.to_owned(),
                    port: 8080,
                    forward: proto::IpvsForward::Masquerade as i32,
                    weight: 1,
                    ..Default::default()
                }),
            },
        )),
    }
}

fn add_service_change(service: &proto::IpvsService) -> proto::IpvsChange {
    proto::IpvsChange {
        change: Some(proto::ipvs_change::Change::AddService(service.clone())),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and IPVS services"]
async fn kernel_ncc_ipvs_batch() {
    require_lab();
    let lab = Lab::new("nccD");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    ncc.ipvs_flush(proto::Empty {}).await.expect("IpvsFlush");

    // 200 services with 5 destinations each.
    let mut changes = Vec::new();
    for index in 0..200 {
        let service = batch_service("10.30.0.1", 1000 + index, "wrr");
        changes.push(add_service_change(&service));
        for backend in 1..=5 {
            changes.push(batch_destination(&service, &format!("10.40.0.{backend}")));
        }
    }
    let batch = proto::IpvsBatch { changes };
    let started = std::time::Instant::now();
    let report = ncc
        .ipvs_apply(batch.clone())
        .await
        .expect("IpvsApply")
        .into_inner();
    println!(
        "IpvsApply of {} changes took {:?}",
        batch.changes.len(),
        started.elapsed()
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.applied, 1200);

    let state = ncc
        .get_state(lb_interface())
        .await
        .expect("GetState")
        .into_inner();
    assert_eq!(state.services.len(), 200);
    for service in &state.services {
        assert_eq!(service.destinations.len(), 5, "{service:?}");
        assert_eq!(service.scheduler, "wrr", "{service:?}");
    }
    let table = lab.exec("lb", "ipvsadm -Ln");
    assert_eq!(
        table
            .lines()
            .filter(|line| line.starts_with("TCP  10.30.0.1:"))
            .count(),
        200,
        "{table}"
    );
    assert_eq!(
        table
            .lines()
            .filter(|line| line.contains("-> 10.40.0.") && line.contains("Masq"))
            .count(),
        1000,
        "{table}"
    );

    // The same batch again changes nothing and fails nothing.
    let report = ncc
        .ipvs_apply(batch)
        .await
        .expect("IpvsApply again")
        .into_inner();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.applied, 1200);
    assert_eq!(lab.exec("lb", "ipvsadm -Ln"), table);

    // A batch with two failing changes: an unknown scheduler and a
    // destination of a missing service. The others still apply.
    let good = batch_service("10.30.0.2", 80, "rr");
    let bad_scheduler = batch_service("10.30.0.2", 81, "no-such-scheduler");
    let missing = batch_service("10.30.0.9", 99, "rr");
    let report = ncc
        .ipvs_apply(proto::IpvsBatch {
            changes: vec![
                add_service_change(&good),
                add_service_change(&bad_scheduler),
                batch_destination(&good, "10.40.0.1"),
                batch_destination(&missing, "10.40.0.1"),
            ],
        })
        .await
        .expect("IpvsApply with failures")
        .into_inner();
    assert_eq!(report.applied, 2, "{report:?}");
    let indexes: Vec<u32> = report
        .failures
        .iter()
        .map(|failure| failure.index)
        .collect();
    assert_eq!(indexes, [1, 3], "{report:?}");
    assert!(
        report.failures[0].error.contains("10.30.0.2:81"),
        "{report:?}"
    );
    assert!(
        report.failures[1].error.contains("10.30.0.9:99"),
        "{report:?}"
    );
    let table = lab.exec("lb", "ipvsadm -Ln -t 10.30.0.2:80");
    assert!(table.contains("-> 10.40.0.1:8080"), "{table}");
    assert!(
        !lab.exec("lb", "ipvsadm -Ln").contains("10.30.0.2:81"),
        "the service with a bad scheduler exists"
    );

    ncc.ipvs_flush(proto::Empty {}).await.expect("IpvsFlush");
    assert!(daemon.stop().success());
}

fn named_vserver_rules(name: &str, ports: &[u32]) -> proto::VserverRulesRequest {
    proto::VserverRulesRequest {
        lb: Some(lb_interface()),
        vserver_name: name.to_owned(),
        family: proto::AddressFamily::Ipv4 as i32,
        address: DSR_VIP.to_owned(),
        entries: ports
            .iter()
            .map(|port| proto::VserverEntry {
                protocol: 6,
                port: *port,
                mode: proto::ForwardingMode::Dsr as i32,
            })
            .collect(),
        fwmark: 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and iptables rules"]
async fn kernel_ncc_shared_vip_rules() {
    require_lab();
    let lab = Lab::new("nccE");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");

    let icmp = format!("-A SEESAW-INPUT -d {DSR_VIP}/32 -p icmp -j ACCEPT");
    let reject = format!("-A SEESAW-INPUT -d {DSR_VIP}/32 -j REJECT");
    let port = |port: u32| {
        format!("-A SEESAW-INPUT -d {DSR_VIP}/32 -p tcp -m tcp --dport {port} -j ACCEPT")
    };

    // Two virtual servers on one VIP, both with port 80.
    let web = named_vserver_rules("web", &[80]);
    let web_tls = named_vserver_rules("web-tls", &[80, 443]);
    ncc.add_vserver_rules(web.clone()).await.expect("add web");
    ncc.add_vserver_rules(web_tls.clone())
        .await
        .expect("add web-tls");
    ncc.delete_vserver_rules(web.clone())
        .await
        .expect("delete web");
    let saved = lab.iptables_save();
    for line in [&icmp, &reject, &port(80), &port(443)] {
        assert!(saved.contains(line.as_str()), "{line} missing:\n{saved}");
    }
    ncc.delete_vserver_rules(web_tls.clone())
        .await
        .expect("delete web-tls");
    let saved = lab.iptables_save();
    assert!(!saved.contains(DSR_VIP), "{saved}");

    // After a restart the NCC has no record of the virtual servers; the
    // port rules still in the chain keep the shared rules.
    let web_alt = named_vserver_rules("web-8080", &[8080]);
    ncc.add_vserver_rules(web.clone()).await.expect("add web");
    ncc.add_vserver_rules(web_alt.clone())
        .await
        .expect("add web-8080");
    assert!(daemon.stop().success());
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    ncc.delete_vserver_rules(web)
        .await
        .expect("delete web after restart");
    let saved = lab.iptables_save();
    for line in [&icmp, &reject, &port(8080)] {
        assert!(saved.contains(line.as_str()), "{line} missing:\n{saved}");
    }
    assert!(!saved.contains(&port(80)), "{saved}");
    ncc.delete_vserver_rules(web_alt)
        .await
        .expect("delete web-8080 after restart");
    let saved = lab.iptables_save();
    assert!(!saved.contains(DSR_VIP), "{saved}");

    assert!(daemon.stop().success());
}

const BACKEND_2: &str = "10.10.0.61";

/// The first firewall mark the engine gives a DSR or TUN health check.
const FIRST_CHECK_MARK: u32 = 65536;

/// Builds the IPVS service that the engine requests for a DSR or TUN health
/// check. Every packet with `mark`, whatever its address, protocol and
/// port, goes to `backend` on the packet's own destination port.
fn check_service(mark: u32, backend: &str, forward: proto::IpvsForward) -> proto::IpvsService {
    proto::IpvsService {
        key: Some(proto::IpvsServiceKey {
            protocol: 0,
            address: "0.0.0.0".to_owned(),
            port: 0,
            fwmark: mark,
            family: proto::AddressFamily::Ipv4 as i32,
        }),
        scheduler: "rr".to_owned(),
        destinations: vec![proto::IpvsDestination {
            address: backend.to_owned(),
            port: 0,
            forward: forward as i32,
            weight: 1,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Makes the backend `role` accept DSR and TUN traffic for `vip`, as a
/// Seesaw backend is set up: the VIP on `lo` for direct routing and on the
/// IPIP device `tunl0` for tunnelled packets, with ARP replies and
/// announcements only for the address on `link`. The reverse-path filter
/// is off on `tunl0` because decapsulated packets from the node arrive
/// there while the route back to the node leaves through `link`.
fn hold_vip_for_dsr_and_tun(lab: &Lab, role: &str, link: &str, vip: &str) {
    lab.exec(role, "ip link set tunl0 up");
    for device in ["lo", "tunl0"] {
        lab.exec(role, &format!("ip addr replace {vip}/32 dev {device}"));
    }
    for key in [
        "all.arp_ignore=1".to_owned(),
        "all.arp_announce=2".to_owned(),
        format!("{link}.arp_ignore=1"),
        format!("{link}.arp_announce=2"),
        "all.rp_filter=0".to_owned(),
        "tunl0.rp_filter=0".to_owned(),
    ] {
        lab.exec(role, &format!("sysctl -q -w net.ipv4.conf.{key}"));
    }
}

/// The outcome of one HTTP request from the node.
struct Probe {
    /// The source address the kernel chose for the connection.
    local: std::net::SocketAddr,
    body: String,
}

/// Sends `GET /` to `address` from the load balancer's namespace, as a
/// health check does, over a TCP socket whose packets carry `mark` (none
/// when `None`). `timeout` limits the connect and each read and write.
fn probe_from_node(
    lab: &Lab,
    address: std::net::SocketAddr,
    mark: Option<u32>,
    timeout: Duration,
) -> std::io::Result<Probe> {
    use std::io::{Read, Write};

    let namespace = std::fs::File::open(format!("/var/run/netns/{}", lab.ns("lb")))?;
    // setns changes the namespace of the calling thread only, so a thread
    // of its own, which ends after the probe, enters the load balancer's
    // namespace and no other code of the test runs there.
    let prober = std::thread::spawn(move || -> std::io::Result<Probe> {
        nix::sched::setns(&namespace, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(address),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        if let Some(mark) = mark {
            socket.set_mark(mark)?;
        }
        socket.connect_timeout(&address.into(), timeout)?;
        let local = socket
            .local_addr()?
            .as_socket()
            .expect("a TCP socket has an IP address");
        let mut stream = std::net::TcpStream::from(socket);
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(format!("GET / HTTP/1.0\r\nHost: {}\r\n\r\n", address.ip()).as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status_ok = response
            .lines()
            .next()
            .is_some_and(|status| status.starts_with("HTTP/1.") && status.contains(" 200 "));
        let body = response.split_once("\r\n\r\n").map(|(_, body)| body);
        match body {
            Some(body) if status_ok => Ok(Probe {
                local,
                body: body.to_owned(),
            }),
            _ => Err(std::io::Error::other(format!(
                "unexpected HTTP response from {address}: {response:?}"
            ))),
        }
    });
    prober.join().expect("the probe thread panicked")
}

/// Probes `address` with `mark` until a probe succeeds, because the
/// backend's HTTP server may still be starting. Panics after 20 failures.
fn probe_until_answer(lab: &Lab, address: std::net::SocketAddr, mark: Option<u32>) -> Probe {
    let mut last_error = None;
    for _ in 0..20 {
        match probe_from_node(lab, address, mark, Duration::from_secs(10)) {
            Ok(probe) => return probe,
            Err(error) => last_error = Some(error),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "probing {address} with mark {mark:?} from the node failed: {:?}",
        last_error.expect("at least one attempt")
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces, links, tunnels and IPVS services"]
async fn kernel_ncc_dsr_and_tun_check_paths() {
    require_lab();
    // Loading the module creates the fallback IPIP device tunl0 in every
    // network namespace, the backends' included.
    run("modprobe", &["ipip"]);
    let mut lab = Lab::new("nccF");
    lab.add_host("be2", "b1", BACKEND_2);
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;

    // The node: the VIP with its node-sourced local route.
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");
    ncc.bring_lb_interface_up(lb_interface())
        .await
        .expect("BringLbInterfaceUp");
    ncc.add_vip(vip_request(DSR_VIP, proto::VipType::Unicast))
        .await
        .expect("AddVip");
    let routes = local_routes(&lab, DSR_VIP);
    assert_eq!(routes.len(), 1, "{routes:?}");
    assert!(routes[0].contains(&format!("src {NODE}")), "{routes:?}");

    // Two backends, each holding the VIP and naming itself over HTTP.
    let backends = [
        ("be", "b0", BACKEND, "backend-1\n"),
        ("be2", "b1", BACKEND_2, "backend-2\n"),
    ];
    let web_dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut servers = Vec::new();
    for ((role, link, _, body), dir) in backends.iter().zip(&web_dirs) {
        hold_vip_for_dsr_and_tun(&lab, role, link, DSR_VIP);
        servers.push(start_http_server(&lab, role, 80, dir.path(), body));
    }

    // One check service per backend and forwarding method.
    let mut checks = Vec::new();
    for forward in [proto::IpvsForward::DirectRoute, proto::IpvsForward::Tunnel] {
        for (_, _, address, body) in backends {
            let mark = FIRST_CHECK_MARK + checks.len() as u32;
            checks.push((mark, address, body, forward));
        }
    }
    ncc.ipvs_flush(proto::Empty {}).await.expect("IpvsFlush");
    for (mark, address, _, forward) in &checks {
        ncc.ipvs_add_service(check_service(*mark, address, *forward))
            .await
            .unwrap_or_else(|error| panic!("add check service {mark}: {error:?}"));
        let table = lab.exec("lb", &format!("ipvsadm -Ln -f {mark}"));
        let method = match forward {
            proto::IpvsForward::Tunnel => "Tunnel",
            _ => "Route",
        };
        assert!(table.contains(&format!("FWM  {mark} rr")), "{table}");
        assert!(
            table
                .lines()
                .any(|line| line.contains(&format!("-> {address}:0")) && line.contains(method)),
            "{table}"
        );
    }

    // Each mark reaches its own backend, from the node address.
    let vip_http: std::net::SocketAddr = format!("{DSR_VIP}:80").parse().unwrap();
    for (mark, address, body, forward) in &checks {
        let probe = probe_until_answer(&lab, vip_http, Some(*mark));
        assert_eq!(
            probe.body, *body,
            "mark {mark} ({forward:?} to {address}) reached the wrong backend"
        );
        assert_eq!(probe.local.ip().to_string(), NODE, "mark {mark}");
    }

    // Without a mark the VIP is the node's own address, where nothing
    // listens on port 80, so the node itself rejects the connection.
    let unmarked = probe_from_node(&lab, vip_http, None, Duration::from_secs(5));
    match unmarked {
        Err(error) => assert_eq!(
            error.kind(),
            std::io::ErrorKind::ConnectionRefused,
            "{error:?}"
        ),
        Ok(probe) => panic!("an unmarked connection to the VIP reached {:?}", probe.body),
    }

    // Backend 1 loses the VIP. Its checks must fail while a plain check of
    // its own address still passes. Backend 2's checks still pass.
    for device in ["lo", "tunl0"] {
        lab.exec("be", &format!("ip addr del {DSR_VIP}/32 dev {device}"));
    }
    let plain: std::net::SocketAddr = format!("{BACKEND}:80").parse().unwrap();
    assert_eq!(probe_until_answer(&lab, plain, None).body, "backend-1\n");
    for (mark, address, body, forward) in &checks {
        if *address == BACKEND {
            // The backend drops packets for an address it does not have,
            // since it does not forward, so the connect times out.
            let probe = probe_from_node(&lab, vip_http, Some(*mark), Duration::from_secs(3));
            match probe {
                Ok(probe) => panic!(
                    "mark {mark} ({forward:?}) reached {address} without the VIP: {:?}",
                    probe.body
                ),
                Err(error) => println!("mark {mark} ({forward:?}) to {address} failed: {error}"),
            }
        } else {
            let probe = probe_until_answer(&lab, vip_http, Some(*mark));
            assert_eq!(probe.body, *body, "mark {mark} ({forward:?} to {address})");
        }
    }

    ncc.ipvs_flush(proto::Empty {}).await.expect("IpvsFlush");
    ncc.delete_vip(vip_request(DSR_VIP, proto::VipType::Unicast))
        .await
        .expect("DeleteVip");
    drop(servers);
    assert!(daemon.stop().success());
}

/// Checks the BGP calls over gRPC. The load balancer's bgpd (AS 64512) peers
/// with a router bgpd (AS 64513) on the bridge address of the switch
/// namespace; the router's BGP table, read with vtysh, shows what the NCC
/// advertised.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and runs FRR's bgpd"]
async fn kernel_ncc_bgp_calls() {
    require_lab();
    if !frr::frr_installed("kernel_ncc_bgp_calls") {
        return;
    }
    let lab = Lab::new("nccG");
    let run_dir = tempfile::tempdir().unwrap();
    let node_dir = run_dir.path().join("node");
    let socket = run_dir.path().join("ncc.sock");
    let mut daemon = lab.start_ncc_with_bgpd(&socket, &node_dir.join("bgpd.vty"));
    let mut ncc = client(&socket).await;

    // The engine's start: the LB interface first, then the anycast VIP on
    // dummy0. The BGP session starts after InitLbInterface: before it,
    // eth1 (on the same bridge as eth0) also replies to ARP requests for
    // the node address, and the router would keep eth1's old MAC.
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");
    let anycast = "192.168.255.1";
    ncc.add_vip(vip_request(anycast, proto::VipType::Anycast))
        .await
        .expect("AddVip anycast");

    let router_peer = frr::Peer {
        address: GATEWAY,
        asn: 64513,
        description: "router",
    };
    let node_peer = frr::Peer {
        address: NODE,
        asn: 64512,
        description: "",
    };
    let router_config = frr::bgpd_config("router", 64513, GATEWAY, &[node_peer], &[]);
    let router = frr::Bgpd::start(
        &lab.ns("sw"),
        &run_dir.path().join("router"),
        &router_config,
    );
    let node_config = frr::bgpd_config("lb", 64512, NODE, &[router_peer], &[]);
    let node = frr::Bgpd::start(&lab.ns("lb"), &node_dir, &node_config);

    let deadline = tokio::time::Instant::now() + frr::START_TIMEOUT;
    let router_neighbor = loop {
        let reply = ncc
            .bgp_neighbors(proto::Empty {})
            .await
            .expect("BgpNeighbors")
            .into_inner();
        if let Some(neighbor) = reply.neighbors.iter().find(|n| n.state == "Established") {
            break neighbor.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Established neighbour: {reply:?}\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(router_neighbor.address, GATEWAY);
    assert_eq!(router_neighbor.asn, 64513);
    assert_eq!(router_neighbor.router_id, GATEWAY);
    assert_eq!(router_neighbor.description, "router");
    let messages = router_neighbor.messages.expect("message counts");
    assert!(messages.opens.expect("opens").received >= 1, "{messages:?}");

    let request = proto::BgpVipRequest {
        address: anycast.to_owned(),
    };
    for _ in 0..2 {
        ncc.bgp_advertise_vip(request.clone())
            .await
            .expect("BgpAdvertiseVip");
    }
    let prefix = "192.168.255.1/32";
    assert!(
        frr::wait_for(frr::ROUTE_TIMEOUT, || router.has_route("ipv4", prefix)),
        "router lacks {prefix}:\n{}\n{}\nnode:\n{}\n{}\nrouter {}\nnode {}",
        router.vtysh("show bgp ipv4 unicast"),
        router.vtysh("show bgp summary"),
        node.vtysh("show bgp ipv4 unicast"),
        lab.exec("lb", "ss -tn"),
        router.log(),
        node.log()
    );
    let config = ncc
        .bgp_config(proto::Empty {})
        .await
        .expect("BgpConfig")
        .into_inner();
    assert!(
        config.lines.contains(&"router bgp 64512".to_owned()),
        "{config:?}"
    );
    assert!(
        config.lines.contains(&format!("  network {prefix}")),
        "{config:?}"
    );

    for _ in 0..2 {
        ncc.bgp_withdraw_vip(request.clone())
            .await
            .expect("BgpWithdrawVip");
    }
    assert!(
        frr::wait_for(frr::ROUTE_TIMEOUT, || !router.has_route("ipv4", prefix)),
        "router still has {prefix}"
    );

    for address in ["192.168.255.2", "2015:cafe:ffff::2"] {
        ncc.bgp_advertise_vip(proto::BgpVipRequest {
            address: address.to_owned(),
        })
        .await
        .expect("BgpAdvertiseVip");
    }
    assert!(frr::wait_for(frr::ROUTE_TIMEOUT, || {
        router.has_route("ipv4", "192.168.255.2/32")
            && router.has_route("ipv6", "2015:cafe:ffff::2/128")
    }));
    ncc.bgp_withdraw_all(proto::Empty {})
        .await
        .expect("BgpWithdrawAll");
    assert!(frr::wait_for(frr::ROUTE_TIMEOUT, || {
        !router.has_route("ipv4", "192.168.255.2/32")
            && !router.has_route("ipv6", "2015:cafe:ffff::2/128")
    }));

    let invalid = ncc
        .bgp_advertise_vip(proto::BgpVipRequest {
            address: "192.168.255.300".to_owned(),
        })
        .await
        .expect_err("an invalid address");
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument, "{invalid:?}");
    assert!(invalid.message().contains("192.168.255.300"), "{invalid:?}");

    // BgpApplyPeers takes over the neighbor written by hand, and the router
    // learns the VIP over the session; the same request again sends
    // nothing.
    let peers = proto::BgpPeersRequest {
        local_asn: 64512,
        remote_asn: 64513,
        peers: vec![GATEWAY.to_owned()],
        router_id: NODE.to_owned(),
        anycast_ipv4: String::new(),
        anycast_ipv6: String::new(),
    };
    let applied = ncc
        .bgp_apply_peers(peers.clone())
        .await
        .expect("BgpApplyPeers")
        .into_inner();
    assert!(
        applied
            .commands
            .contains(&format!("neighbor {GATEWAY} peer-group seesaw")),
        "{applied:?}"
    );
    assert!(applied.skipped.is_empty(), "{applied:?}");
    let again = ncc
        .bgp_apply_peers(peers.clone())
        .await
        .expect("BgpApplyPeers again")
        .into_inner();
    assert!(again.commands.is_empty(), "{again:?}");
    ncc.bgp_advertise_vip(request.clone())
        .await
        .expect("BgpAdvertiseVip after BgpApplyPeers");
    assert!(
        frr::wait_for(frr::ROUTE_TIMEOUT, || router.has_route("ipv4", prefix)),
        "router lacks {prefix} after BgpApplyPeers:\n{}\nnode {}",
        router.vtysh("show bgp summary"),
        node.log()
    );
    ncc.bgp_withdraw_vip(request.clone())
        .await
        .expect("BgpWithdrawVip after BgpApplyPeers");

    let other_asn = ncc
        .bgp_apply_peers(proto::BgpPeersRequest {
            local_asn: 65000,
            ..peers.clone()
        })
        .await
        .expect_err("another AS");
    assert_eq!(
        other_asn.code(),
        tonic::Code::FailedPrecondition,
        "{other_asn:?}"
    );
    assert!(
        other_asn.message().contains("router bgp 64512"),
        "{other_asn:?}"
    );
    let invalid = ncc
        .bgp_apply_peers(proto::BgpPeersRequest {
            peers: vec!["router1".to_owned()],
            ..peers
        })
        .await
        .expect_err("an invalid peer");
    assert_eq!(invalid.code(), tonic::Code::InvalidArgument, "{invalid:?}");

    // bgpd stops: the calls fail, naming the operation, and the NCC stays.
    drop(node);
    let error = ncc
        .bgp_advertise_vip(request.clone())
        .await
        .expect_err("bgpd stopped");
    assert_eq!(error.code(), tonic::Code::Unavailable, "{error:?}");
    assert!(
        error
            .message()
            .starts_with("failed to advertise VIP 192.168.255.1 over BGP: "),
        "{error:?}"
    );
    ncc.get_default_route(proto::Empty {})
        .await
        .expect("GetDefaultRoute after the BGP failure");

    ncc.delete_vip(vip_request(anycast, proto::VipType::Anycast))
        .await
        .expect("DeleteVip anycast");
    assert!(daemon.stop().success());
}

/// Returns the rules request of virtual server `vs<index>` in a batch test.
/// The mix covers every kind of rule: DSR ports, NAT (raw ACCEPT and SNAT),
/// fwmark (MARK), a TUN service on every port, and IPv6. Pairs of virtual
/// servers on one address share a port rule and the address's ICMP and
/// REJECT rules.
fn batch_vserver(index: u32) -> proto::VserverRulesRequest {
    let tcp = |port| proto::VserverEntry {
        protocol: 6,
        port,
        mode: proto::ForwardingMode::Dsr as i32,
    };
    let v6 = index % 10 == 9;
    // The second of each ten shares the first one's address.
    let slot = if index % 10 == 1 { index - 1 } else { index };
    let address = if v6 {
        format!("fd00:20::{:x}", slot + 1)
    } else {
        format!("10.20.{}.{}", slot / 200, slot % 200 + 1)
    };
    let mut fwmark = 0;
    let entries = match index % 4 {
        _ if index % 10 == 1 => vec![
            tcp(80),
            proto::VserverEntry {
                protocol: 17,
                port: 53,
                mode: proto::ForwardingMode::Nat as i32,
            },
        ],
        0 => vec![tcp(80), tcp(443)],
        1 if !v6 => vec![proto::VserverEntry {
            protocol: 17,
            port: 53,
            mode: proto::ForwardingMode::Nat as i32,
        }],
        2 => {
            fwmark = 100 + index;
            vec![tcp(0), tcp(8080)]
        }
        _ => vec![
            proto::VserverEntry {
                protocol: 6,
                port: 0,
                mode: proto::ForwardingMode::Tun as i32,
            },
            proto::VserverEntry {
                protocol: 132,
                port: 9,
                mode: proto::ForwardingMode::Dsr as i32,
            },
        ],
    };
    proto::VserverRulesRequest {
        lb: Some(lb_interface()),
        vserver_name: format!("vs{index}"),
        family: if v6 {
            proto::AddressFamily::Ipv6
        } else {
            proto::AddressFamily::Ipv4
        } as i32,
        address,
        entries,
        fwmark,
    }
}

fn add_rules(request: proto::VserverRulesRequest) -> proto::VserverRulesChange {
    proto::VserverRulesChange {
        change: Some(proto::vserver_rules_change::Change::AddRules(request)),
    }
}

fn delete_rules(request: proto::VserverRulesRequest) -> proto::VserverRulesChange {
    proto::VserverRulesChange {
        change: Some(proto::vserver_rules_change::Change::DeleteRules(request)),
    }
}

/// `iptables-save` and `ip6tables-save` without comments and counters, so
/// that two listings of the same rules compare equal.
fn saved_tables(lab: &Lab) -> String {
    let mut text = String::new();
    for program in ["iptables-save", "ip6tables-save"] {
        for line in lab.exec("lb", &iptables_program(program)).lines() {
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with(':') {
                let words: Vec<&str> = line.split_whitespace().take(2).collect();
                text.push_str(&words.join(" "));
            } else {
                text.push_str(line);
            }
            text.push('\n');
        }
    }
    text
}

/// Applies a batch and asserts that every change succeeded.
async fn apply_batch(ncc: &mut NccClient<Channel>, changes: Vec<proto::VserverRulesChange>) {
    let count = changes.len() as u32;
    let started = std::time::Instant::now();
    let report = ncc
        .apply_vserver_rules(proto::VserverRulesBatch { changes })
        .await
        .expect("ApplyVserverRules")
        .into_inner();
    println!(
        "ApplyVserverRules of {count} changes took {:?}",
        started.elapsed()
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(report.applied, count);
}

/// Asserts that two listings are equal, printing the lines that differ.
fn assert_same_rules(batch: &str, single: &str, what: &str) {
    let only_batch: Vec<&str> = batch
        .lines()
        .filter(|line| !single.contains(line))
        .collect();
    let only_single: Vec<&str> = single
        .lines()
        .filter(|line| !batch.contains(line))
        .collect();
    assert!(
        batch == single,
        "{what}: the batch and the single calls differ\nonly after the batch: {only_batch:#?}\nonly after the single calls: {only_single:#?}\nbatch:\n{batch}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and iptables rules"]
async fn kernel_ncc_vserver_rules_batch() {
    require_lab();
    let lab = Lab::new("nccR");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    // Host rules in built-in chains and in a chain of the host's own.
    lab.iptables("-A INPUT -s 10.99.0.0/16 -p tcp --dport 22 -j ACCEPT");
    lab.iptables("-N HOST-CHAIN");
    lab.iptables("-A HOST-CHAIN -s 10.98.0.0/16 -j DROP");
    lab.exec(
        "lb",
        &format!(
            "{} -w -A INPUT -s fd00:99::/64 -p tcp --dport 22 -j ACCEPT",
            iptables_program("ip6tables")
        ),
    );
    let host_rules = [
        "-A INPUT -s 10.99.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT",
        "-A HOST-CHAIN -s 10.98.0.0/16 -j DROP",
        "-A INPUT -s fd00:99::/64 -p tcp -m tcp --dport 22 -j ACCEPT",
    ];

    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");
    let initial = saved_tables(&lab);
    let vservers: Vec<proto::VserverRulesRequest> = (0..200).map(batch_vserver).collect();
    let half: Vec<proto::VserverRulesRequest> = vservers.iter().step_by(2).cloned().collect();

    // The reference: one call per virtual server.
    let started = std::time::Instant::now();
    for request in &vservers {
        ncc.add_vserver_rules(request.clone())
            .await
            .unwrap_or_else(|error| panic!("AddVserverRules {}: {error}", request.vserver_name));
    }
    println!("200 AddVserverRules calls took {:?}", started.elapsed());
    let single_added = saved_tables(&lab);
    for request in &half {
        ncc.delete_vserver_rules(request.clone())
            .await
            .unwrap_or_else(|error| panic!("DeleteVserverRules {}: {error}", request.vserver_name));
    }
    let single_deleted = saved_tables(&lab);
    println!("after the single calls:\n{single_deleted}");

    // InitLbInterface flushes our chains and clears the record of the
    // virtual servers.
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface again");
    assert_same_rules(&saved_tables(&lab), &initial, "after init");

    // The batch gives the same rules in the same order, and again nothing
    // changes.
    let adds: Vec<proto::VserverRulesChange> = vservers.iter().cloned().map(add_rules).collect();
    apply_batch(&mut ncc, adds.clone()).await;
    assert_same_rules(&saved_tables(&lab), &single_added, "200 added");
    apply_batch(&mut ncc, adds).await;
    assert_same_rules(&saved_tables(&lab), &single_added, "200 added twice");

    let deletes: Vec<proto::VserverRulesChange> = half.iter().cloned().map(delete_rules).collect();
    apply_batch(&mut ncc, deletes.clone()).await;
    assert_same_rules(&saved_tables(&lab), &single_deleted, "half deleted");
    apply_batch(&mut ncc, deletes).await;
    assert_same_rules(&saved_tables(&lab), &single_deleted, "half deleted twice");

    // Invalid changes fail alone and name their object; the valid ones in
    // between apply.
    let mut nat_v6 = batch_vserver(9);
    nat_v6.vserver_name = "nat-v6".to_owned();
    nat_v6.entries[0].mode = proto::ForwardingMode::Nat as i32;
    let mut bad_address = batch_vserver(4);
    bad_address.vserver_name = "bad-address".to_owned();
    bad_address.address = "10.20.0.300".to_owned();
    let mut extra = batch_vserver(4);
    extra.vserver_name = "extra".to_owned();
    extra.address = "10.21.0.1".to_owned();
    let report = ncc
        .apply_vserver_rules(proto::VserverRulesBatch {
            changes: vec![
                add_rules(nat_v6),
                proto::VserverRulesChange { change: None },
                add_rules(extra.clone()),
                add_rules(bad_address),
            ],
        })
        .await
        .expect("ApplyVserverRules with failures")
        .into_inner();
    assert_eq!(report.applied, 1, "{report:?}");
    let indexes: Vec<u32> = report
        .failures
        .iter()
        .map(|failure| failure.index)
        .collect();
    assert_eq!(indexes, [0, 1, 3], "{report:?}");
    assert_eq!(report.failures[0].vserver_name, "nat-v6", "{report:?}");
    assert!(
        report.failures[0].error.contains("fd00:20::a"),
        "{report:?}"
    );
    assert!(report.failures[1].error.contains("change 1"), "{report:?}");
    assert_eq!(report.failures[2].address, "10.20.0.300", "{report:?}");
    assert!(
        report.failures[2].error.contains("10.20.0.300"),
        "{report:?}"
    );
    let saved = lab.iptables_save();
    assert!(
        saved.contains("-A SEESAW-INPUT -d 10.21.0.1/32 -p tcp -m tcp --dport 80 -j ACCEPT"),
        "{saved}"
    );
    apply_batch(&mut ncc, vec![delete_rules(extra)]).await;
    assert_same_rules(&saved_tables(&lab), &single_deleted, "extra deleted");

    // After a restart the NCC has no record of the virtual servers; deleting
    // the rest leaves only the rules of init.
    assert!(daemon.stop().success());
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    let rest: Vec<proto::VserverRulesChange> = vservers
        .iter()
        .skip(1)
        .step_by(2)
        .cloned()
        .map(delete_rules)
        .collect();
    apply_batch(&mut ncc, rest).await;
    assert_same_rules(&saved_tables(&lab), &initial, "all deleted after a restart");

    let saved = saved_tables(&lab);
    for rule in host_rules {
        assert!(saved.contains(rule), "host rule {rule} lost:\n{saved}");
    }
    assert!(daemon.stop().success());
}

/// Returns an `iptables-restore` script that fails like the real one when
/// the kernel rejects a rule. Input with `--vaddr 10.22.0.99` fails at that
/// line after the tables before it are committed, as iptables-restore
/// commits table by table. Input with 10.22.0.98 fails with an error that
/// names no line. Any other input goes to the real program.
fn failing_restore(real: &str) -> String {
    format!(
        r#"#!/bin/bash
input=$(cat)
line=$(grep -n -- '--vaddr 10.22.0.99' <<<"$input" | head -n 1 | cut -d: -f1)
if [ -n "$line" ]; then
    table=$(head -n "$line" <<<"$input" | grep -n '^\*' | tail -n 1 | cut -d: -f1)
    if [ "$table" -gt 1 ]; then
        head -n $((table - 1)) <<<"$input" | {real} "$@" || exit 1
    fi
    echo "iptables-restore: line $line failed: injected rejection" >&2
    exit 1
fi
if grep -q '10.22.0.98' <<<"$input"; then
    echo "iptables-restore: injected failure" >&2
    exit 1
fi
exec {real} "$@" <<<"$input"
"#
    )
}

fn nat_vserver(name: &str, address: &str) -> proto::VserverRulesRequest {
    proto::VserverRulesRequest {
        lb: Some(lb_interface()),
        vserver_name: name.to_owned(),
        family: proto::AddressFamily::Ipv4 as i32,
        address: address.to_owned(),
        entries: vec![proto::VserverEntry {
            protocol: 17,
            port: 53,
            mode: proto::ForwardingMode::Nat as i32,
        }],
        fwmark: 0,
    }
}

/// Counts the rules of `iptables-save` that mention `address` as a whole
/// address.
fn rules_on(saved: &str, address: &str) -> Vec<String> {
    saved
        .lines()
        .filter(|line| line.starts_with("-A "))
        .filter(|line| {
            line.split_whitespace()
                .any(|word| word == address || word == format!("{address}/32"))
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces, mounts and iptables rules"]
async fn kernel_ncc_vserver_rules_batch_restore_failures() {
    require_lab();
    let lab = Lab::new("nccS");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let wrapper = run_dir.path().join("iptables-restore");
    std::fs::write(
        &wrapper,
        failing_restore(&iptables_program("iptables-restore")),
    )
    .unwrap();
    sh(&format!("chmod 755 {}", wrapper.display()));
    // The daemon finds /sbin/iptables-restore before iptables-nft-restore,
    // because the lab has no /etc/alternatives. Only its own mount
    // namespace sees the wrapper there.
    let child = Command::new("unshare")
        .args(["-m", "bash", "-c"])
        .arg(format!(
            "mount -t tmpfs tmpfs /sbin && cp {} /sbin/iptables-restore && exec ip netns exec {} {} -logtostderr -socket {} -bgpd_vty {}",
            wrapper.display(),
            lab.ns("lb"),
            env!("CARGO_BIN_EXE_seesaw_ncc"),
            socket.display(),
            socket.with_file_name("bgpd.vty").display()
        ))
        .spawn()
        .expect("start seesaw_ncc");
    let mut daemon = Daemon { child: Some(child) };
    let mut ncc = client(&socket).await;
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");

    // The third change's nat line is rejected after the filter and raw
    // tables were committed. It fails alone, and the others are applied
    // once each.
    let rejected = nat_vserver("rejected", "10.22.0.99");
    let changes = vec![
        add_rules(named_vserver_rules_at("a", "10.22.0.1")),
        add_rules(nat_vserver("b", "10.22.0.2")),
        add_rules(rejected.clone()),
        add_rules(named_vserver_rules_at("d", "10.22.0.3")),
    ];
    let report = ncc
        .apply_vserver_rules(proto::VserverRulesBatch { changes })
        .await
        .expect("ApplyVserverRules")
        .into_inner();
    assert_eq!(report.applied, 3, "{report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    let failure = &report.failures[0];
    assert_eq!(failure.index, 2, "{report:?}");
    assert_eq!(failure.vserver_name, "rejected", "{report:?}");
    assert!(failure.error.contains("injected rejection"), "{report:?}");
    assert!(
        failure
            .error
            .contains("-A SEESAW-POSTROUTING -m ipvs -p udp --vport 53 --vaddr 10.22.0.99/32"),
        "{report:?}"
    );
    let saved = lab.iptables_save();
    assert_eq!(rules_on(&saved, "10.22.0.1").len(), 3, "{saved}");
    assert_eq!(rules_on(&saved, "10.22.0.2").len(), 5, "{saved}");
    assert_eq!(rules_on(&saved, "10.22.0.3").len(), 3, "{saved}");
    // The committed tables keep the rejected change's filter and raw
    // rules, as a single call that fails at its nat rule does.
    let partial = rules_on(&saved, "10.22.0.99");
    assert_eq!(partial.len(), 4, "{saved}");
    assert!(
        partial.iter().all(|rule| !rule.contains("SNAT")),
        "{partial:?}"
    );

    // Deleting the rejected virtual server removes what it left.
    apply_batch(&mut ncc, vec![delete_rules(rejected)]).await;
    let saved = lab.iptables_save();
    assert!(rules_on(&saved, "10.22.0.99").is_empty(), "{saved}");

    // An error that names no line makes the batch fall back to one rule at
    // a time; every change then applies.
    apply_batch(
        &mut ncc,
        vec![
            add_rules(named_vserver_rules_at("e", "10.22.0.98")),
            add_rules(named_vserver_rules_at("f", "10.22.0.4")),
        ],
    )
    .await;
    let saved = lab.iptables_save();
    assert_eq!(rules_on(&saved, "10.22.0.98").len(), 3, "{saved}");
    assert_eq!(rules_on(&saved, "10.22.0.4").len(), 3, "{saved}");
    assert_eq!(rules_on(&saved, "10.22.0.1").len(), 3, "{saved}");

    assert!(daemon.stop().success());
}

/// Returns the request of a DSR virtual server on TCP port 80 at `address`.
fn named_vserver_rules_at(name: &str, address: &str) -> proto::VserverRulesRequest {
    proto::VserverRulesRequest {
        address: address.to_owned(),
        ..named_vserver_rules(name, &[80])
    }
}

fn vip_change(address: &str, kind: proto::VipType, add: bool) -> proto::VipChange {
    proto::VipChange {
        vip: Some(proto::Vip {
            address: address.to_owned(),
            r#type: kind as i32,
        }),
        add,
    }
}

async fn apply_vips(
    ncc: &mut NccClient<Channel>,
    changes: Vec<proto::VipChange>,
) -> proto::VipBatchReport {
    let count = changes.len();
    let start = std::time::Instant::now();
    let report = ncc
        .apply_vips(proto::VipBatch {
            lb: Some(lb_interface()),
            changes,
        })
        .await
        .expect("ApplyVips")
        .into_inner();
    eprintln!("ApplyVips of {count} changes took {:?}", start.elapsed());
    report
}

/// Checks that unicast VIP `address` is on eth1 with its policy rule and
/// the NCC's local route, or that none of them exists.
fn assert_unicast_vip(lab: &Lab, address: &str, present: bool) {
    let addresses = lab.exec("lb", "ip addr show eth1");
    let rules = lab.exec("lb", "ip rule");
    let routes = local_routes(lab, address);
    let inet = format!("inet {address}/24 ");
    let rule = format!("from {address} lookup 2");
    if present {
        assert!(addresses.contains(&inet), "{address} missing:\n{addresses}");
        assert_eq!(rules.matches(&rule).count(), 1, "{address}:\n{rules}");
        assert_eq!(routes.len(), 1, "{address}: {routes:?}");
        assert!(
            routes[0].contains(&format!("src {NODE}")) && routes[0].contains("dev eth1"),
            "{address}: {routes:?}"
        );
    } else {
        assert!(!addresses.contains(&inet), "{address} left:\n{addresses}");
        assert!(!rules.contains(&rule), "{address} rule left:\n{rules}");
        assert!(routes.is_empty(), "{address}: {routes:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces, links, addresses, routes and rules"]
async fn kernel_ncc_vip_batch() {
    require_lab();
    let lab = Lab::new("nccV");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("seesaw/ncc/ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");
    ncc.bring_lb_interface_up(lb_interface())
        .await
        .expect("BringLbInterfaceUp");

    use proto::VipType::{Anycast, Unicast};
    let unicast: Vec<String> = (150..200).map(|host| format!("10.10.0.{host}")).collect();
    let anycast = ["192.168.255.1", "192.168.255.2"];
    let mut adds: Vec<proto::VipChange> = unicast
        .iter()
        .map(|vip| vip_change(vip, Unicast, true))
        .collect();
    adds.extend(anycast.iter().map(|vip| vip_change(vip, Anycast, true)));
    // No network on the LB interface contains this one: it fails alone.
    adds.insert(10, vip_change("10.20.0.1", Unicast, true));

    let report = apply_vips(&mut ncc, adds.clone()).await;
    assert_eq!(report.applied, 52, "{report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].index, 10);
    assert!(report.failures[0].error.contains("10.20.0.1"), "{report:?}");
    for vip in &unicast {
        assert_unicast_vip(&lab, vip, true);
    }
    let dummy = lab.exec("lb", "ip addr show dummy0");
    for vip in anycast {
        assert!(dummy.contains(&format!("inet {vip}/32 ")), "{dummy}");
        let routes = local_routes(&lab, vip);
        assert_eq!(routes.len(), 1, "{routes:?}");
        assert!(routes[0].contains("dev dummy0"), "{routes:?}");
    }

    // The same batch again changes nothing and duplicates nothing.
    let report = apply_vips(&mut ncc, adds).await;
    assert_eq!(report.applied, 52, "{report:?}");
    for vip in &unicast {
        assert_unicast_vip(&lab, vip, true);
    }

    // Deletes, and a VIP deleted and added again in one batch, which ends
    // present.
    let mut changes: Vec<proto::VipChange> = unicast[..25]
        .iter()
        .map(|vip| vip_change(vip, Unicast, false))
        .collect();
    changes.push(vip_change(anycast[0], Anycast, false));
    changes.push(vip_change(&unicast[0], Unicast, true));
    let report = apply_vips(&mut ncc, changes).await;
    assert!(report.failures.is_empty(), "{report:?}");
    assert_unicast_vip(&lab, &unicast[0], true);
    for vip in &unicast[1..25] {
        assert_unicast_vip(&lab, vip, false);
    }
    for vip in &unicast[25..] {
        assert_unicast_vip(&lab, vip, true);
    }
    let dummy = lab.exec("lb", "ip addr show dummy0");
    assert!(!dummy.contains(&format!("inet {} ", anycast[0])), "{dummy}");
    assert!(local_routes(&lab, anycast[0]).is_empty());
    assert!(
        dummy.contains(&format!("inet {}/32 ", anycast[1])),
        "{dummy}"
    );

    // The cluster VIP and the node address are untouched.
    let addresses = lab.exec("lb", "ip addr show eth1");
    assert!(
        addresses.contains(&format!("inet {CLUSTER_VIP}/24")),
        "{addresses}"
    );
    assert!(
        lab.exec("lb", "ip addr show eth0")
            .contains(&format!("inet {NODE}/24"))
    );
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and iptables rules"]
async fn kernel_ncc_prepare_keeps_rules() {
    require_lab();
    let lab = Lab::new("nccP");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("seesaw/ncc/ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;

    // On a node without our chains, nothing changes and the reply asks for
    // init.
    let before = lab.iptables_save();
    let reply = ncc
        .prepare_lb_interface(lb_interface())
        .await
        .expect("PrepareLbInterface")
        .into_inner();
    assert!(!reply.initialised, "{reply:?}");
    assert!(!lab.iptables_save().contains("SEESAW-"), "{before}");

    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");
    ncc.add_vserver_rules(vserver_rules(DSR_VIP, 80, proto::ForwardingMode::Dsr))
        .await
        .expect("AddVserverRules");
    let ready = lab.iptables_save();

    // A ready node stays exactly as it is, virtual server rules included.
    let reply = ncc
        .prepare_lb_interface(lb_interface())
        .await
        .expect("PrepareLbInterface")
        .into_inner();
    assert!(reply.initialised, "{reply:?}");
    assert_eq!(rule_lines(&lab.iptables_save()), rule_lines(&ready));

    // A lost jump and a lost base rule come back; the rest stays.
    lab.iptables("-t raw -D OUTPUT -j SEESAW-OUTPUT");
    lab.iptables("-D SEESAW-INPUT -p tcp --dport 10257 -j ACCEPT");
    let reply = ncc
        .prepare_lb_interface(lb_interface())
        .await
        .expect("PrepareLbInterface")
        .into_inner();
    assert!(reply.initialised, "{reply:?}");
    let after = lab.iptables_save();
    assert!(after.contains("-A OUTPUT -j SEESAW-OUTPUT"), "{after}");
    assert!(
        after.contains("-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT"),
        "{after}"
    );
    let mut expected = rule_lines(&ready);
    let mut found = rule_lines(&after);
    expected.sort();
    found.sort();
    assert_eq!(found, expected);
    assert!(daemon.stop().success());
}

/// Returns the table and rule lines of `iptables-save` output, without
/// comments and chain counters.
fn rule_lines(saved: &str) -> Vec<String> {
    saved
        .lines()
        .filter(|line| line.starts_with("-A ") || line.starts_with('*'))
        .map(str::to_owned)
        .collect()
}

/// Finds the `ipvsadm` line of destination `address` and splits it into
/// words, such as `["->", "10.40.0.1:8080", "Masq", "1", "0", "0"]`.
fn destination_words(table: &str, address: &str) -> Option<Vec<String>> {
    table
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .find(|words| words.len() > 1 && words[0] == "->" && words[1] == address)
}

fn destination_request(
    service: &proto::IpvsService,
    address: &str,
    forward: proto::IpvsForward,
    weight: i32,
) -> proto::IpvsDestinationRequest {
    proto::IpvsDestinationRequest {
        service: service.key.clone(),
        destination: Some(proto::IpvsDestination {
            address: address.to_owned(),
            port: 8080,
            forward: forward as i32,
            weight,
            ..Default::default()
        }),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and IPVS services"]
async fn kernel_ncc_ipvs_single_calls() {
    require_lab();
    let lab = Lab::new("nccI");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    let ipvsadm = |args: &str| lab.exec("lb", &format!("ipvsadm -Ln {args}"));
    ncc.ipvs_flush(proto::Empty {}).await.expect("IpvsFlush");

    // A service, added twice, and read back.
    let web = batch_service("10.30.0.1", 80, "wrr");
    let key = web.key.clone().unwrap();
    ncc.ipvs_add_service(web.clone())
        .await
        .expect("IpvsAddService");
    ncc.ipvs_add_service(web.clone())
        .await
        .expect("IpvsAddService again");
    let table = ipvsadm("");
    assert_eq!(table.matches("TCP  10.30.0.1:80 wrr").count(), 1, "{table}");
    let got = ncc
        .ipvs_get_service(key.clone())
        .await
        .expect("IpvsGetService")
        .into_inner();
    assert_eq!(got.key.as_ref(), Some(&key), "{got:?}");
    assert_eq!(got.scheduler, "wrr", "{got:?}");
    assert!(got.destinations.is_empty(), "{got:?}");

    // Destinations: adding one that exists updates it.
    use proto::IpvsForward::{DirectRoute, Masquerade, Tunnel};
    ncc.ipvs_add_destination(destination_request(&web, "10.40.0.1", Masquerade, 1))
        .await
        .expect("IpvsAddDestination");
    let words = destination_words(&ipvsadm(""), "10.40.0.1:8080").expect("10.40.0.1 added");
    assert_eq!(words[2..4], ["Masq", "1"], "{words:?}");
    ncc.ipvs_add_destination(destination_request(&web, "10.40.0.1", Masquerade, 4))
        .await
        .expect("IpvsAddDestination again");
    let words = destination_words(&ipvsadm(""), "10.40.0.1:8080").expect("10.40.0.1 kept");
    assert_eq!(words[2..4], ["Masq", "4"], "{words:?}");
    let mut limited = destination_request(&web, "10.40.0.2", DirectRoute, 2);
    let destination = limited.destination.as_mut().unwrap();
    destination.upper_threshold = 100;
    destination.lower_threshold = 10;
    ncc.ipvs_add_destination(limited)
        .await
        .expect("IpvsAddDestination with thresholds");
    let words = destination_words(&ipvsadm(""), "10.40.0.2:8080").expect("10.40.0.2 added");
    assert_eq!(words[2..4], ["Route", "2"], "{words:?}");
    let words = destination_words(&ipvsadm("--thresholds"), "10.40.0.2:8080").unwrap();
    assert_eq!(words[2..4], ["100", "10"], "{words:?}");

    ncc.ipvs_update_destination(destination_request(&web, "10.40.0.1", Tunnel, 5))
        .await
        .expect("IpvsUpdateDestination");
    let words = destination_words(&ipvsadm(""), "10.40.0.1:8080").unwrap();
    assert_eq!(words[2..4], ["Tunnel", "5"], "{words:?}");
    let error = ncc
        .ipvs_update_destination(destination_request(&web, "10.40.0.9", Tunnel, 5))
        .await
        .expect_err("updating a missing destination");
    assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
    assert!(error.message().contains("10.40.0.9"), "{error:?}");

    // Updating the service: scheduler, persistence and netmask.
    let mut persistent = batch_service("10.30.0.1", 80, "rr");
    persistent.flags = 1;
    persistent.timeout = 300;
    persistent.netmask = 24;
    ncc.ipvs_update_service(persistent)
        .await
        .expect("IpvsUpdateService");
    let table = ipvsadm("");
    assert!(
        table.contains("TCP  10.30.0.1:80 rr persistent 300 mask 255.255.255.0"),
        "{table}"
    );
    let got = ncc
        .ipvs_get_service(key.clone())
        .await
        .expect("IpvsGetService after the update")
        .into_inner();
    assert_eq!(got.scheduler, "rr", "{got:?}");
    assert_eq!(got.flags & 1, 1, "{got:?}");
    assert_eq!((got.timeout, got.netmask), (300, 24), "{got:?}");
    let mut destinations: Vec<_> = got
        .destinations
        .iter()
        .map(|d| {
            (
                d.address.as_str(),
                d.port,
                d.forward,
                d.weight,
                d.upper_threshold,
                d.lower_threshold,
            )
        })
        .collect();
    destinations.sort();
    assert_eq!(
        destinations,
        [
            ("10.40.0.1", 8080, Tunnel as i32, 5, 0, 0),
            ("10.40.0.2", 8080, DirectRoute as i32, 2, 100, 10),
        ],
        "{got:?}"
    );
    let mut missing = batch_service("10.30.0.9", 99, "rr");
    let error = ncc
        .ipvs_update_service(missing.clone())
        .await
        .expect_err("updating a missing service");
    assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
    assert!(error.message().contains("10.30.0.9:99"), "{error:?}");
    let error = ncc
        .ipvs_get_service(missing.key.clone().unwrap())
        .await
        .expect_err("getting a missing service");
    assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
    assert!(error.message().contains("10.30.0.9:99"), "{error:?}");

    // An IPv6 service and a firewall-mark service, then the list.
    let mut v6 = batch_service("fd00:30::1", 443, "sh");
    v6.key.as_mut().unwrap().family = proto::AddressFamily::Ipv6 as i32;
    ncc.ipvs_add_service(v6).await.expect("IpvsAddService IPv6");
    let marked = proto::IpvsService {
        key: Some(proto::IpvsServiceKey {
            fwmark: 7,
            family: proto::AddressFamily::Ipv4 as i32,
            ..Default::default()
        }),
        scheduler: "wlc".to_owned(),
        ..Default::default()
    };
    ncc.ipvs_add_service(marked)
        .await
        .expect("IpvsAddService fwmark");
    let table = ipvsadm("");
    assert!(table.contains("TCP  [fd00:30::1]:443 sh"), "{table}");
    assert!(table.contains("FWM  7 wlc"), "{table}");
    let list = ncc
        .ipvs_list_services(proto::Empty {})
        .await
        .expect("IpvsListServices")
        .into_inner();
    assert_eq!(list.services.len(), 3, "{list:?}");
    let listed = list
        .services
        .iter()
        .find(|service| service.key.as_ref() == Some(&key))
        .expect("the TCP service listed");
    assert_eq!(listed.scheduler, "rr", "{listed:?}");
    assert_eq!(listed.destinations.len(), 2, "{listed:?}");
    let keys: Vec<String> = list
        .services
        .iter()
        .map(|service| {
            let key = service.key.as_ref().unwrap();
            format!(
                "{} {} {} {}",
                key.protocol, key.address, key.port, key.fwmark
            )
        })
        .collect();
    assert!(keys.contains(&"6 fd00:30::1 443 0".to_owned()), "{keys:?}");
    assert!(keys.iter().any(|key| key.ends_with(" 7")), "{keys:?}");

    // Deleting a destination and a service, each twice, and a destination
    // of a service that is gone.
    let gone = destination_request(&web, "10.40.0.2", DirectRoute, 2);
    ncc.ipvs_delete_destination(gone.clone())
        .await
        .expect("IpvsDeleteDestination");
    assert!(destination_words(&ipvsadm(""), "10.40.0.2:8080").is_none());
    assert!(destination_words(&ipvsadm(""), "10.40.0.1:8080").is_some());
    ncc.ipvs_delete_destination(gone.clone())
        .await
        .expect("IpvsDeleteDestination again");
    ncc.ipvs_delete_service(key.clone())
        .await
        .expect("IpvsDeleteService");
    assert!(!ipvsadm("").contains("10.30.0.1:80"));
    ncc.ipvs_delete_service(key.clone())
        .await
        .expect("IpvsDeleteService again");
    ncc.ipvs_delete_destination(gone)
        .await
        .expect("IpvsDeleteDestination of a deleted service");
    missing.key.as_mut().unwrap().port = 98;
    ncc.ipvs_delete_service(missing.key.unwrap())
        .await
        .expect("IpvsDeleteService of a service never added");
    let table = ipvsadm("");
    assert!(table.contains("TCP  [fd00:30::1]:443 sh"), "{table}");

    ncc.ipvs_flush(proto::Empty {}).await.expect("IpvsFlush");
    let table = ipvsadm("");
    assert!(
        !table.contains("TCP ") && !table.contains("FWM "),
        "{table}"
    );
    assert!(daemon.stop().success());
}

fn ipvs_change(change: proto::ipvs_change::Change) -> proto::IpvsChange {
    proto::IpvsChange {
        change: Some(change),
    }
}

/// Builds a change of the NAT destination `address`, port 8080, of
/// `service`; `kind` is the change's variant, such as `Change::AddDestination`.
fn nat_destination_change(
    kind: fn(proto::IpvsDestinationRequest) -> proto::ipvs_change::Change,
    service: &proto::IpvsService,
    address: &str,
    weight: i32,
) -> proto::IpvsChange {
    ipvs_change(kind(destination_request(
        service,
        address,
        proto::IpvsForward::Masquerade,
        weight,
    )))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and IPVS services"]
async fn kernel_ncc_ipvs_batch_updates_and_deletes() {
    use proto::ipvs_change::Change;
    require_lab();
    let lab = Lab::new("nccU");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    let ipvsadm = || lab.exec("lb", "ipvsadm -Ln");
    ncc.ipvs_flush(proto::Empty {}).await.expect("IpvsFlush");

    let one = batch_service("10.30.1.1", 80, "rr");
    let two = batch_service("10.30.1.2", 80, "rr");
    let report = ncc
        .ipvs_apply(proto::IpvsBatch {
            changes: vec![
                add_service_change(&one),
                add_service_change(&two),
                batch_destination(&one, "10.40.0.1"),
                batch_destination(&one, "10.40.0.2"),
                batch_destination(&two, "10.40.0.1"),
            ],
        })
        .await
        .expect("IpvsApply of adds")
        .into_inner();
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(report.applied, 5);

    // Updates and deletes, with adds of what exists and deletes of what is
    // gone, which succeed.
    let mut one_wlc = one.clone();
    one_wlc.scheduler = "wlc".to_owned();
    let changes = vec![
        ipvs_change(Change::UpdateService(one_wlc.clone())),
        nat_destination_change(Change::UpdateDestination, &one, "10.40.0.1", 9),
        nat_destination_change(Change::DeleteDestination, &one, "10.40.0.2", 1),
        ipvs_change(Change::DeleteService(two.key.clone().unwrap())),
        ipvs_change(Change::DeleteService(two.key.clone().unwrap())),
        nat_destination_change(Change::DeleteDestination, &one, "10.40.0.7", 1),
        nat_destination_change(Change::DeleteDestination, &two, "10.40.0.1", 1),
        ipvs_change(Change::AddService(one_wlc.clone())),
        nat_destination_change(Change::AddDestination, &one, "10.40.0.1", 9),
        // Pairs of changes to one object must end as in batch order. An
        // add of what exists comes before its delete, a delete of what is
        // gone before its add, and an add of an existing service before
        // an update of it.
        nat_destination_change(Change::AddDestination, &one, "10.40.0.1", 9),
        nat_destination_change(Change::DeleteDestination, &one, "10.40.0.1", 9),
        nat_destination_change(Change::DeleteDestination, &one, "10.40.0.5", 1),
        nat_destination_change(Change::AddDestination, &one, "10.40.0.5", 3),
        ipvs_change(Change::AddService(one.clone())),
        ipvs_change(Change::UpdateService(one_wlc.clone())),
    ];
    let count = changes.len() as u32;
    let report = ncc
        .ipvs_apply(proto::IpvsBatch { changes })
        .await
        .expect("IpvsApply of updates and deletes")
        .into_inner();
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(report.applied, count);
    let table = ipvsadm();
    assert!(table.contains("TCP  10.30.1.1:80 wlc"), "{table}");
    assert!(!table.contains("10.30.1.2:80"), "{table}");
    assert!(
        destination_words(&table, "10.40.0.1:8080").is_none(),
        "{table}"
    );
    assert!(
        destination_words(&table, "10.40.0.2:8080").is_none(),
        "{table}"
    );
    let words = destination_words(&table, "10.40.0.5:8080").expect("10.40.0.5 added");
    assert_eq!(words[2..4], ["Masq", "3"], "{table}");

    // Changes after a flush apply to the empty table, in order: an add of
    // a destination that exists, then an update of it.
    let three = batch_service("10.30.1.3", 80, "rr");
    let report = ncc
        .ipvs_apply(proto::IpvsBatch {
            changes: vec![
                ipvs_change(Change::Flush(proto::Empty {})),
                add_service_change(&three),
                batch_destination(&three, "10.40.0.3"),
                batch_destination(&three, "10.40.0.3"),
                nat_destination_change(Change::UpdateDestination, &three, "10.40.0.3", 6),
            ],
        })
        .await
        .expect("IpvsApply with a flush")
        .into_inner();
    assert!(report.failures.is_empty(), "{report:?}");
    assert_eq!(report.applied, 5);
    let table = ipvsadm();
    assert!(!table.contains("10.30.1.1:80"), "{table}");
    assert!(table.contains("TCP  10.30.1.3:80 rr"), "{table}");
    let words = destination_words(&table, "10.40.0.3:8080").expect("10.40.0.3 added");
    assert_eq!(words[2..4], ["Masq", "6"], "{table}");

    let report = ncc
        .ipvs_apply(proto::IpvsBatch {
            changes: vec![ipvs_change(Change::Flush(proto::Empty {}))],
        })
        .await
        .expect("IpvsApply of a flush")
        .into_inner();
    assert_eq!(report.applied, 1, "{report:?}");
    let table = ipvsadm();
    assert!(!table.contains("TCP "), "{table}");
    assert!(daemon.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and sends ARP"]
async fn kernel_ncc_gratuitous_arp_and_default_route() {
    require_lab();
    let lab = Lab::new("nccW");
    add_ipv6(&lab);
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;

    let route = ncc
        .get_default_route(proto::Empty {})
        .await
        .expect("GetDefaultRoute")
        .into_inner();
    assert_eq!(route.gateway, GATEWAY, "{route:?}");
    assert_eq!(route.interface, "eth0", "{route:?}");

    ncc.init_lb_interface(dual_stack_lb_interface())
        .await
        .expect("InitLbInterface");
    ncc.bring_lb_interface_up(dual_stack_lb_interface())
        .await
        .expect("BringLbInterfaceUp");
    // The IPv6 advertisement is sent from its address, so that address
    // must be on the node; the IPv4 one need not be.
    ncc.add_vip(dual_stack_vip("fd00:10::102", proto::VipType::Unicast))
        .await
        .expect("AddVip IPv6");
    // The default route of the main table is still the node's.
    let route = ncc
        .get_default_route(proto::Empty {})
        .await
        .expect("GetDefaultRoute after init")
        .into_inner();
    assert_eq!(
        (route.gateway.as_str(), route.interface.as_str()),
        (GATEWAY, "eth0")
    );

    // One call announces an IPv4 and an IPv6 address from the VMAC. It
    // lists three failures: an IPv6 address that is not on the node, a
    // malformed address and an unknown interface.
    let arp = start_capture(&lab, "arp and arp[14:4] = 0x0a0a0066").await;
    let na = start_capture(&lab, "icmp6 and ip6[40] == 136 and ip6[60:4] == 0x00000102").await;
    let reply = ncc
        .send_gratuitous_arp(proto::GratuitousArpRequest {
            targets: vec![
                proto::GratuitousArpTarget {
                    interface: "eth1".to_owned(),
                    addresses: vec![
                        "10.10.0.102".to_owned(),
                        "fd00:10::102".to_owned(),
                        "fd00:10::103".to_owned(),
                        "not-an-address".to_owned(),
                    ],
                },
                proto::GratuitousArpTarget {
                    interface: "nosuch0".to_owned(),
                    addresses: vec!["10.10.0.103".to_owned()],
                },
            ],
        })
        .await
        .expect("SendGratuitousArp")
        .into_inner();
    assert_eq!(reply.sent, 2, "{reply:?}");
    assert_eq!(reply.failures.len(), 3, "{reply:?}");
    assert!(
        reply.failures[0].starts_with("fd00:10::103 on eth1: "),
        "{reply:?}"
    );
    assert!(
        reply.failures[1].starts_with("not-an-address on eth1: "),
        "{reply:?}"
    );
    assert!(reply.failures[2].contains("nosuch0"), "{reply:?}");
    let arp = captured(arp);
    assert!(
        arp.contains("00:00:5e:00:01:3c > ff:ff:ff:ff:ff:ff"),
        "{arp}"
    );
    assert!(
        arp.contains("Request who-has 10.10.0.102 tell 10.10.0.102, length 28"),
        "{arp}"
    );
    let na = captured(na);
    assert!(na.contains("00:00:5e:00:01:3c > 33:33:00:00:00:01"), "{na}");
    assert!(na.contains("fd00:10::102 > ff02::1"), "{na}");
    assert!(na.contains("hlim 255"), "{na}");
    assert!(na.contains("tgt is fd00:10::102"), "{na}");
    assert!(na.contains("override"), "{na}");
    assert!(daemon.stop().success());
}

/// Lists the sysctls that the Go NCC sets and that exist in a network
/// namespace, with their values, for `interfaces`. The `gc_thresh` keys,
/// which it sets too, exist only in the initial namespace.
fn expected_sysctls(interfaces: &[&str]) -> Vec<(String, &'static str)> {
    let mut keys: Vec<(String, &'static str)> = [
        ("net/ipv4/ip_forward", "1"),
        ("net/ipv4/vs/conntrack", "1"),
        ("net/netfilter/nf_conntrack_tcp_timeout_established", "900"),
        ("net/ipv4/vs/expire_nodest_conn", "1"),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    for interface in interfaces {
        for (family, key, value) in [
            ("ipv4", "accept_local", "1"),
            ("ipv4", "arp_filter", "1"),
            ("ipv4", "arp_ignore", "1"),
            ("ipv4", "arp_announce", "2"),
            ("ipv4", "arp_notify", "1"),
            ("ipv4", "rp_filter", "2"),
            ("ipv4", "send_redirects", "0"),
            ("ipv6", "autoconf", "0"),
            ("ipv6", "accept_dad", "0"),
            ("ipv6", "dad_transmits", "0"),
        ] {
            keys.push((format!("net/{family}/conf/{interface}/{key}"), value));
        }
    }
    keys
}

/// Reads `keys` under /proc/sys in the load balancer's namespace.
fn read_sysctls(lab: &Lab, keys: &[String]) -> Vec<String> {
    let script = keys
        .iter()
        .map(|key| format!("cat /proc/sys/{key}"))
        .collect::<Vec<_>>()
        .join("; ");
    let values: Vec<String> = lab
        .exec("lb", &format!("sh -c '{script}'"))
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(values.len(), keys.len(), "{values:?}");
    values
}

/// Pairs each key with the value read, for readable assertion messages.
fn sysctl_values(keys: &[String], values: &[String]) -> Vec<String> {
    keys.iter()
        .zip(values)
        .map(|(key, value)| format!("{key}={value}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the kernel lab: creates namespaces and changes sysctls"]
async fn kernel_ncc_sysctls_set_and_restored() {
    require_lab();
    let lab = Lab::new("nccY");
    let run_dir = tempfile::tempdir().unwrap();
    let socket = run_dir.path().join("ncc.sock");
    let expected = expected_sysctls(&["all", "default", "eth0", "eth1"]);
    let keys: Vec<String> = expected.iter().map(|(key, _)| key.clone()).collect();

    // Start from values that each differ from the NCC's, so that the
    // restore is seen.
    let script = expected
        .iter()
        .map(|(key, value)| {
            let other = match *value {
                "0" => "1",
                "900" => "432000",
                _ => "0",
            };
            format!("echo {other} > /proc/sys/{key}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    lab.exec("lb", &format!("sh -c '{script}'"));
    let before = read_sysctls(&lab, &keys);
    for ((key, value), old) in expected.iter().zip(&before) {
        assert_ne!(old, value, "{key}");
    }

    let mut daemon = lab.start_ncc(&socket);
    let mut ncc = client(&socket).await;
    ncc.init_lb_interface(lb_interface())
        .await
        .expect("InitLbInterface");
    let after_init = read_sysctls(&lab, &keys);
    let want: Vec<String> = expected
        .iter()
        .map(|(_, value)| value.to_string())
        .collect();
    assert_eq!(
        sysctl_values(&keys, &after_init),
        sysctl_values(&keys, &want)
    );

    // A VLAN interface gets the per-interface settings too.
    let vlan = proto::VlanRequest {
        lb: Some(lb_interface()),
        vlan: Some(proto::Vlan {
            id: 100,
            ipv4: "10.20.0.5/24".to_owned(),
            ipv6: String::new(),
        }),
    };
    ncc.add_vlan(vlan).await.expect("AddVlan");
    let vlan_expected = expected_sysctls(&["eth1.100"]);
    let vlan_keys: Vec<String> = vlan_expected
        .iter()
        .filter(|(key, _)| key.contains("eth1.100"))
        .map(|(key, _)| key.clone())
        .collect();
    let vlan_want: Vec<String> = vlan_expected
        .iter()
        .filter(|(key, _)| key.contains("eth1.100"))
        .map(|(_, value)| value.to_string())
        .collect();
    assert_eq!(
        sysctl_values(&vlan_keys, &read_sysctls(&lab, &vlan_keys)),
        sysctl_values(&vlan_keys, &vlan_want)
    );

    // Stopping writes back what was there before the NCC.
    assert!(daemon.stop().success());
    let after_stop = read_sysctls(&lab, &keys);
    assert_eq!(
        sysctl_values(&keys, &after_stop),
        sysctl_values(&keys, &before)
    );
}
