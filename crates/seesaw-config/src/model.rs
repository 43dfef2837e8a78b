//! The typed cluster model the daemons work from, derived from cluster.pb.
//!
//! Maps are ordered (`BTreeMap`) so that listings, summaries and equality
//! checks do not depend on hash order.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

pub use crate::pb::host::Status as HostStatus;

/// The IPv4 anycast network of Seesaw v2, the default of
/// `[cluster] anycast_ipv4_range`.
pub const DEFAULT_ANYCAST_IPV4: Ipv4Net = match Ipv4Net::new(Ipv4Addr::new(192, 168, 255, 0), 24) {
    Ok(net) => net,
    Err(_) => panic!("valid prefix"),
};
/// The IPv6 anycast network of Seesaw v2, the default of
/// `[cluster] anycast_ipv6_range`.
pub const DEFAULT_ANYCAST_IPV6: Ipv6Net =
    match Ipv6Net::new(Ipv6Addr::new(0x2015, 0xcafe, 0xffff, 0, 0, 0, 0, 0), 64) {
        Ok(net) => net,
        Err(_) => panic!("valid prefix"),
    };

/// The networks whose VIPs are anycast: one per address family, set in
/// seesaw.cfg. A VIP inside them goes on the dummy interface and is
/// advertised over BGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnycastRanges {
    pub ipv4: Ipv4Net,
    pub ipv6: Ipv6Net,
}

impl Default for AnycastRanges {
    /// Seesaw v2's fixed ranges, 192.168.255.0/24 and 2015:cafe:ffff::/64.
    fn default() -> Self {
        AnycastRanges {
            ipv4: DEFAULT_ANYCAST_IPV4,
            ipv6: DEFAULT_ANYCAST_IPV6,
        }
    }
}

impl AnycastRanges {
    /// Reports whether `ip` is in the range of its family.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => self.ipv4.contains(&v4),
            IpAddr::V6(v6) => self.ipv6.contains(&v6),
        }
    }
}

impl fmt::Display for AnycastRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} and {}", self.ipv4, self.ipv6)
    }
}

/// A host with its addresses. Each address keeps its prefix length, and the
/// address itself is the host address, not the network address.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub hostname: String,
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Option<Ipv6Net>,
    pub status: HostStatus,
}

impl Host {
    /// Returns the addresses of the host, IPv4 first.
    pub fn addresses(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.ipv4
            .map(IpNet::V4)
            .into_iter()
            .chain(self.ipv6.map(IpNet::V6))
    }

    /// Returns the plain IP addresses of the host, IPv4 first.
    pub fn ips(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.addresses().map(|net| net.addr())
    }
}

/// The HA state a node starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Takes part in HA; the election decides master or backup.
    Unknown,
    /// Kept out of HA by its status or the cluster VIP's status.
    Disabled,
}

/// A load-balancer node of the pair.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub host: Host,
    /// VRRP priority: 255 for the node with the lowest IPv4 address, then
    /// counting down, so a pair has 255 and 1.
    pub priority: u8,
    pub state: NodeState,
    pub bgp_enabled: bool,
    pub anycast_enabled: bool,
    pub vservers_enabled: bool,
}

/// How a VIP is carried, which decides where the NCC configures it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VipType {
    /// In an anycast network: on the dummy interface, advertised over BGP.
    Anycast,
    /// In a dedicated VIP subnet: on the dummy interface, routed to the node.
    Dedicated,
    /// On the load-balancing network: on the LB interface or a VLAN.
    Unicast,
}

impl fmt::Display for VipType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VipType::Anycast => "Anycast",
            VipType::Dedicated => "Dedicated",
            VipType::Unicast => "Unicast",
        })
    }
}

/// One VIP address of a vserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vip {
    pub ip: IpAddr,
    pub vip_type: VipType,
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.ip, self.vip_type)
    }
}

/// A VLAN interface on the LB interface, with this node's address on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Vlan {
    pub id: u16,
    pub host: Host,
    /// Distinct backend addresses inside the VLAN's networks, per family.
    pub backend_count: AddressFamilyCounts,
    /// Distinct VIP addresses inside the VLAN's networks, per family.
    pub vip_count: AddressFamilyCounts,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddressFamilyCounts {
    pub ipv4: u32,
    pub ipv6: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        })
    }
}

/// IPVS scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sh,
    Mh,
}

impl Scheduler {
    /// Returns the kernel's name for the scheduler, as ipvsadm prints it.
    pub fn name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Sh => "sh",
            Scheduler::Mh => "mh",
        }
    }
}

/// IPVS forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardingMode {
    Dsr,
    Nat,
    Tun,
}

impl fmt::Display for ForwardingMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ForwardingMode::Dsr => "DSR",
            ForwardingMode::Nat => "NAT",
            ForwardingMode::Tun => "TUN",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthcheckType {
    Dns,
    Http,
    Https,
    Icmp,
    Radius,
    Tcp,
    TcpTls,
    Udp,
}

impl HealthcheckType {
    /// Returns the type's name as used in check names, such as `HTTPS` in
    /// `HTTPS/443_0`.
    pub fn name(self) -> &'static str {
        match self {
            HealthcheckType::Dns => "DNS",
            HealthcheckType::Http => "HTTP",
            HealthcheckType::Https => "HTTPS",
            HealthcheckType::Icmp => "ICMP",
            HealthcheckType::Radius => "RADIUS",
            HealthcheckType::Tcp => "TCP",
            HealthcheckType::TcpTls => "TCP_TLS",
            HealthcheckType::Udp => "UDP",
        }
    }
}

/// The path a health check takes to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HealthcheckMode {
    /// To the backend's own address.
    Plain,
    /// To the VIP, forwarded to the backend by direct routing.
    Dsr,
    /// To the VIP, forwarded to the backend through an IP-in-IP tunnel.
    Tun,
}

impl fmt::Display for HealthcheckMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HealthcheckMode::Plain => "PLAIN",
            HealthcheckMode::Dsr => "DSR",
            HealthcheckMode::Tun => "TUN",
        })
    }
}

/// A health check, named `<TYPE>/<port>_<n>` within its vserver or entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Healthcheck {
    pub name: String,
    pub check_type: HealthcheckType,
    pub mode: HealthcheckMode,
    /// Port to check; 0 for a vserver-level check configured without one.
    pub port: u16,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub send: String,
    pub receive: String,
    pub code: i32,
    pub method: String,
    pub proxy: bool,
    pub tls_verify: bool,
}

/// One port and protocol of a vserver.
#[derive(Debug, Clone, PartialEq)]
pub struct VserverEntry {
    pub port: u16,
    pub protocol: Protocol,
    pub scheduler: Scheduler,
    pub mode: ForwardingMode,
    /// Persistence timeout; zero means none.
    pub persistence: Duration,
    pub one_packet: bool,
    /// Fraction of in-service backends that must be healthy for the service
    /// to come up; at least `low_watermark`.
    pub high_watermark: f32,
    /// Fraction of in-service backends below which a healthy service goes
    /// down.
    pub low_watermark: f32,
    pub lower_threshold: u32,
    pub upper_threshold: u32,
    pub healthchecks: BTreeMap<String, Healthcheck>,
}

impl VserverEntry {
    /// Returns the key of the entry within its vserver, such as `443/TCP`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.port, self.protocol)
    }
}

/// A real server behind a vserver.
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub host: Host,
    pub weight: i32,
    /// Receives traffic: status PRODUCTION or TESTING.
    pub enabled: bool,
    /// Counts towards the watermarks: any status but PROPOSED or BUILDING.
    pub in_service: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccessGrant {
    pub grantee: String,
    pub is_group: bool,
}

impl AccessGrant {
    /// Returns the key of the grant: `user:<name>` or `group:<name>`.
    pub fn key(&self) -> String {
        let kind = if self.is_group { "group" } else { "user" };
        format!("{kind}:{}", self.grantee)
    }
}

/// A virtual server.
#[derive(Debug, Clone, PartialEq)]
pub struct Vserver {
    pub name: String,
    pub host: Host,
    /// Entries keyed by `<port>/<protocol>`.
    pub entries: BTreeMap<String, VserverEntry>,
    /// Backends keyed by host name.
    pub backends: BTreeMap<String, Backend>,
    /// Vserver-level checks, applied to every entry.
    pub healthchecks: BTreeMap<String, Healthcheck>,
    pub vips: Vec<Vip>,
    /// Grants keyed by [`AccessGrant::key`].
    pub access_grants: BTreeMap<String, AccessGrant>,
    /// Serves traffic: the entry address status is PRODUCTION or TESTING.
    pub enabled: bool,
    pub use_fwm: bool,
    pub warnings: Vec<String>,
}

/// The origin of the configuration and the source's metadata about it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigStatus {
    /// Seconds since the Unix epoch, from the file's metadata.
    pub last_update: Option<i64>,
    pub attributes: Vec<(String, String)>,
    /// `<vserver>: <error>` for each vserver the source marked broken.
    pub warnings: Vec<String>,
}

/// The whole cluster configuration as the engine applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The cluster name from seesaw.cfg, not from cluster.pb.
    pub site: String,
    /// The anycast networks from seesaw.cfg, not from cluster.pb.
    pub anycast_ranges: AnycastRanges,
    pub vip: Host,
    pub bgp_local_asn: u32,
    pub bgp_remote_asn: u32,
    pub bgp_peers: BTreeMap<String, Host>,
    pub nodes: BTreeMap<String, Node>,
    pub vip_subnets: BTreeMap<String, IpNet>,
    pub vlans: BTreeMap<u16, Vlan>,
    pub vservers: BTreeMap<String, Vserver>,
    pub access_groups: BTreeMap<String, Vec<String>>,
    pub status: ConfigStatus,
}

impl Cluster {
    /// Returns the node whose IPv4 address is `ip`.
    pub fn node_by_ipv4(&self, ip: Ipv4Addr) -> Option<&Node> {
        self.nodes
            .values()
            .find(|n| n.host.ipv4.map(|net| net.addr()) == Some(ip))
    }

    /// Reports whether cluster.pb configures BGP neighbors: a local and a
    /// remote AS number and at least one peer with an address.
    pub fn wants_bgp_peers(&self) -> bool {
        self.bgp_local_asn != 0
            && self.bgp_remote_asn != 0
            && self
                .bgp_peers
                .values()
                .any(|peer| peer.ips().next().is_some())
    }

    /// Returns the type of a VIP at `ip`: anycast networks first, then the
    /// dedicated VIP subnets, else unicast.
    pub fn vip_type(&self, ip: IpAddr) -> VipType {
        if self.anycast_ranges.contains(ip) {
            VipType::Anycast
        } else if self.vip_subnets.values().any(|net| net.contains(&ip)) {
            VipType::Dedicated
        } else {
            VipType::Unicast
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn default_anycast_ranges() {
        let ranges = AnycastRanges::default();
        assert!(!ranges.contains(ip("192.168.23.1")));
        assert!(ranges.contains(ip("192.168.255.1")));
        assert!(ranges.contains(ip("192.168.255.255")));
        assert!(!ranges.contains(ip("2012::cafe")));
        assert!(ranges.contains(ip("2015:cafe:ffff::1")));
        assert!(ranges.contains(ip("2015:cafe:ffff::ffff:ffff:ffff:ffff")));
        assert_eq!(
            ranges.to_string(),
            "192.168.255.0/24 and 2015:cafe:ffff::/64"
        );
    }

    #[test]
    fn configured_anycast_ranges() {
        let ranges = AnycastRanges {
            ipv4: "10.20.0.0/23".parse().unwrap(),
            ipv6: "2001:db8:a::/48".parse().unwrap(),
        };
        assert!(ranges.contains(ip("10.20.1.255")));
        assert!(!ranges.contains(ip("10.20.2.0")));
        assert!(!ranges.contains(ip("192.168.255.1")));
        assert!(ranges.contains(ip("2001:db8:a:ffff::1")));
        assert!(!ranges.contains(ip("2015:cafe:ffff::1")));
    }

    #[test]
    fn vip_display() {
        let vip = Vip {
            ip: "192.168.255.1".parse().unwrap(),
            vip_type: VipType::Anycast,
        };
        assert_eq!(vip.to_string(), "192.168.255.1 (Anycast)");
    }
}
