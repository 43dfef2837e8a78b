//! Virtual services: their identity, scheduler, flags and persistence.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};

use netlink_packet_core::DecodeError;

use crate::constants::{AF_INET, AF_INET6};
use crate::nla::{IpvsAttribute, ServiceAttribute};
use crate::stats::Stats;

/// Address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    Inet,
    Inet6,
}

impl AddressFamily {
    pub fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(_) => Self::Inet,
            IpAddr::V6(_) => Self::Inet6,
        }
    }

    /// Returns the Linux `AF_*` number.
    pub fn number(self) -> u16 {
        match self {
            Self::Inet => AF_INET,
            Self::Inet6 => AF_INET6,
        }
    }

    pub fn from_number(number: u16) -> Result<Self, DecodeError> {
        match number {
            AF_INET => Ok(Self::Inet),
            AF_INET6 => Ok(Self::Inet6),
            other => Err(DecodeError::from(format!(
                "unsupported address family {other}, expected {AF_INET} (IPv4) or {AF_INET6} (IPv6)"
            ))),
        }
    }

    /// Length of a full netmask in bits: 32 or 128.
    pub fn max_prefix_len(self) -> u8 {
        match self {
            Self::Inet => 32,
            Self::Inet6 => 128,
        }
    }

    /// Converts the 16-byte wire address field to an address of this family.
    pub(crate) fn address_from_wire(self, bytes: &[u8; 16]) -> IpAddr {
        match self {
            Self::Inet => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
            Self::Inet6 => IpAddr::V6(Ipv6Addr::from(*bytes)),
        }
    }
}

/// Encodes an address in the 16-byte wire field, IPv4 in the first 4 bytes.
pub(crate) fn address_to_wire(address: IpAddr) -> [u8; 16] {
    match address {
        IpAddr::V4(v4) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&v4.octets());
            bytes
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// IP protocol number of a service (`IPPROTO_*`). Any value is passed to the
/// kernel, which accepts TCP, UDP and SCTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Protocol(pub u16);

impl Protocol {
    pub const TCP: Protocol = Protocol(6);
    pub const UDP: Protocol = Protocol(17);
    pub const SCTP: Protocol = Protocol(132);
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TCP => f.write_str("TCP"),
            Self::UDP => f.write_str("UDP"),
            Self::SCTP => f.write_str("SCTP"),
            Protocol(other) => write!(f, "IP({other})"),
        }
    }
}

/// The identity of a service in the kernel: protocol, address and port, or
/// a firewall mark with an address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    Inet {
        protocol: Protocol,
        address: SocketAddr,
    },
    Fwmark {
        family: AddressFamily,
        mark: u32,
    },
}

impl ServiceKey {
    pub fn tcp(address: SocketAddr) -> Self {
        Self::Inet {
            protocol: Protocol::TCP,
            address,
        }
    }

    pub fn udp(address: SocketAddr) -> Self {
        Self::Inet {
            protocol: Protocol::UDP,
            address,
        }
    }

    pub fn sctp(address: SocketAddr) -> Self {
        Self::Inet {
            protocol: Protocol::SCTP,
            address,
        }
    }

    pub fn fwmark(family: AddressFamily, mark: u32) -> Self {
        Self::Fwmark { family, mark }
    }

    pub fn family(&self) -> AddressFamily {
        match self {
            Self::Inet { address, .. } => AddressFamily::of(address.ip()),
            Self::Fwmark { family, .. } => *family,
        }
    }

    /// Returns the attributes that identify the service: the family, then either
    /// protocol, address and port, or the mark. This is the whole service
    /// nest of `GET_DEST` requests (the same as ipvsadm 1.31 sends).
    pub fn attributes(&self) -> Vec<ServiceAttribute> {
        let mut attributes = vec![ServiceAttribute::AddressFamily(self.family().number())];
        match self {
            Self::Inet { protocol, address } => {
                attributes.push(ServiceAttribute::Protocol(protocol.0));
                attributes.push(ServiceAttribute::Address(address_to_wire(address.ip())));
                attributes.push(ServiceAttribute::Port(address.port()));
            }
            Self::Fwmark { mark, .. } => attributes.push(ServiceAttribute::Fwmark(*mark)),
        }
        attributes
    }

    /// Returns the service nest for requests that only name the service
    /// (`DEL_SERVICE`, `GET_SERVICE` and the destination commands): the key
    /// plus an empty scheduler, no flags, no timeout and a full netmask. The
    /// kernel reads only the key for these commands; the rest matches what
    /// ipvsadm 1.31 sends, so the bytes can be compared with its captures.
    pub fn request_attributes(&self) -> Vec<ServiceAttribute> {
        Service::new(*self, Scheduler::Other(String::new())).attributes()
    }

    /// Reads the key from a service nest. The family is required; a
    /// non-zero `FWMARK` makes a mark key, otherwise protocol, address and
    /// port are required.
    pub fn from_attributes(attributes: &[ServiceAttribute]) -> Result<Self, DecodeError> {
        let mut family = None;
        let mut protocol = None;
        let mut address = None;
        let mut port = None;
        let mut mark = 0;
        for attribute in attributes {
            match attribute {
                ServiceAttribute::AddressFamily(number) => {
                    family = Some(AddressFamily::from_number(*number)?)
                }
                ServiceAttribute::Protocol(number) => protocol = Some(Protocol(*number)),
                ServiceAttribute::Address(bytes) => address = Some(*bytes),
                ServiceAttribute::Port(number) => port = Some(*number),
                ServiceAttribute::Fwmark(value) => mark = *value,
                _ => {}
            }
        }
        let family = family.ok_or_else(|| missing("service", "address family"))?;
        if mark != 0 {
            return Ok(Self::Fwmark { family, mark });
        }
        let protocol = protocol.ok_or_else(|| missing("service", "protocol"))?;
        let address = address.ok_or_else(|| missing("service", "address"))?;
        let port = port.ok_or_else(|| missing("service", "port"))?;
        Ok(Self::Inet {
            protocol,
            address: SocketAddr::new(family.address_from_wire(&address), port),
        })
    }
}

pub(crate) fn missing(object: &str, attribute: &str) -> DecodeError {
    DecodeError::from(format!("{object} nest has no {attribute} attribute"))
}

/// Formats as ipvsadm lists services: `TCP 192.0.2.1:80`,
/// `UDP [2001:db8::1]:53`, `FWM 1`, `FWM 2 IPv6`.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet { protocol, address } => write!(f, "{protocol} {address}"),
            Self::Fwmark {
                family: AddressFamily::Inet,
                mark,
            } => write!(f, "FWM {mark}"),
            Self::Fwmark {
                family: AddressFamily::Inet6,
                mark,
            } => write!(f, "FWM {mark} IPv6"),
        }
    }
}

/// A scheduler, by the name the kernel module registers (`ip_vs_<name>`).
/// Names the kernel does not know are passed through as `Other`, and the
/// kernel rejects them with `ENOENT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Weighted random twos choice.
    Twos,
    Other(String),
}

impl Scheduler {
    /// Every scheduler of Linux 6.2 and later, where `twos` arrived; 6.1
    /// has the other 13.
    pub const KNOWN: [Scheduler; 14] = [
        Self::Rr,
        Self::Wrr,
        Self::Lc,
        Self::Wlc,
        Self::Lblc,
        Self::Lblcr,
        Self::Dh,
        Self::Sh,
        Self::Sed,
        Self::Nq,
        Self::Fo,
        Self::Ovf,
        Self::Mh,
        Self::Twos,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Mh => "mh",
            Self::Twos => "twos",
            Self::Other(name) => name,
        }
    }
}

impl From<&str> for Scheduler {
    fn from(name: &str) -> Self {
        Self::KNOWN
            .into_iter()
            .find(|known| known.as_str() == name)
            .unwrap_or_else(|| Self::Other(name.to_owned()))
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Service flags (`IP_VS_SVC_F_*`). The meaning of `SCHED1`..`SCHED3`
/// depends on the scheduler, hence the aliases.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ServiceFlags(pub u32);

impl ServiceFlags {
    pub const PERSISTENT: Self = Self(0x1);
    /// Set by the kernel on every service it holds; ignored in requests.
    pub const HASHED: Self = Self(0x2);
    /// One-packet scheduling: each UDP datagram is scheduled on its own.
    pub const ONE_PACKET: Self = Self(0x4);
    pub const SCHED1: Self = Self(0x8);
    pub const SCHED2: Self = Self(0x10);
    pub const SCHED3: Self = Self(0x20);
    /// `sh`: pick another destination when the hashed one is unavailable.
    pub const SH_FALLBACK: Self = Self::SCHED1;
    /// `sh`: hash the source port as well as the address.
    pub const SH_PORT: Self = Self::SCHED2;
    /// `mh`: pick another destination when the hashed one is unavailable.
    pub const MH_FALLBACK: Self = Self::SCHED1;
    /// `mh`: hash the source port as well as the address.
    pub const MH_PORT: Self = Self::SCHED2;

    pub const fn empty() -> Self {
        Self(0)
    }

    pub const fn bits(self) -> u32 {
        self.0
    }

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for ServiceFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl BitOrAssign for ServiceFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0
    }
}

impl BitAnd for ServiceFlags {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl Not for ServiceFlags {
    type Output = Self;
    fn not(self) -> Self {
        Self(!self.0)
    }
}

impl fmt::Debug for ServiceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(u32, &str); 6] = [
            (0x1, "PERSISTENT"),
            (0x2, "HASHED"),
            (0x4, "ONE_PACKET"),
            (0x8, "SCHED1"),
            (0x10, "SCHED2"),
            (0x20, "SCHED3"),
        ];
        write!(f, "ServiceFlags({:#x}", self.0)?;
        let mut separator = ": ";
        for (bit, name) in NAMES {
            if self.0 & bit != 0 {
                write!(f, "{separator}{name}")?;
                separator = " | ";
            }
        }
        f.write_str(")")
    }
}

/// A virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key: ServiceKey,
    pub scheduler: Scheduler,
    pub flags: ServiceFlags,
    /// Persistence timeout in seconds; used when `flags` has `PERSISTENT`.
    pub timeout: u32,
    /// Persistence granularity as a prefix length: clients whose addresses
    /// share this prefix stick to the same destination. 32 (IPv4) or 128
    /// (IPv6) means each client address on its own.
    pub netmask: u8,
    /// Persistence engine name, such as `sip`; `None` for plain persistence.
    pub persistence_engine: Option<String>,
    /// Counters; present only in services read from the kernel.
    pub stats: Option<Stats>,
}

impl Service {
    /// Creates a service with no flags, no persistence and a full netmask.
    pub fn new(key: ServiceKey, scheduler: impl Into<Scheduler>) -> Self {
        Self {
            key,
            scheduler: scheduler.into(),
            flags: ServiceFlags::empty(),
            timeout: 0,
            netmask: key.family().max_prefix_len(),
            persistence_engine: None,
            stats: None,
        }
    }

    /// Compares everything a caller sets, ignoring the counters and the
    /// kernel-set `HASHED` flag, so a service read back from the kernel
    /// matches the one that was written.
    pub fn same_settings(&self, other: &Service) -> bool {
        let settable = !ServiceFlags::HASHED;
        self.key == other.key
            && self.scheduler == other.scheduler
            && self.flags & settable == other.flags & settable
            && self.timeout == other.timeout
            && self.netmask == other.netmask
            && self.persistence_engine == other.persistence_engine
    }

    /// Returns the service nest of `NEW_SERVICE` and `SET_SERVICE` requests, in the
    /// order ipvsadm 1.31 emits it. The flags mask is all ones, so the
    /// request replaces every flag.
    pub fn attributes(&self) -> Vec<ServiceAttribute> {
        let mut attributes = self.key.attributes();
        attributes.push(ServiceAttribute::Scheduler(
            self.scheduler.as_str().to_owned(),
        ));
        if let Some(engine) = &self.persistence_engine {
            attributes.push(ServiceAttribute::PersistenceEngine(engine.clone()));
        }
        attributes.push(ServiceAttribute::Flags {
            flags: self.flags.bits(),
            mask: u32::MAX,
        });
        attributes.push(ServiceAttribute::Timeout(self.timeout));
        attributes.push(ServiceAttribute::Netmask(netmask_to_wire(
            self.key.family(),
            self.netmask,
        )));
        attributes
    }

    /// Reads a service nest as the kernel sends it. Only the key is
    /// required; other missing values keep their defaults, unknown
    /// attributes are ignored, and `STATS64` wins over `STATS`.
    pub fn from_attributes(attributes: &[ServiceAttribute]) -> Result<Self, DecodeError> {
        let key = ServiceKey::from_attributes(attributes)?;
        let mut service = Service::new(key, Scheduler::Other(String::new()));
        let mut stats32 = None;
        for attribute in attributes {
            match attribute {
                ServiceAttribute::Scheduler(name) => service.scheduler = name.as_str().into(),
                ServiceAttribute::Flags { flags, .. } => service.flags = ServiceFlags(*flags),
                ServiceAttribute::Timeout(seconds) => service.timeout = *seconds,
                ServiceAttribute::Netmask(bytes) => {
                    service.netmask = netmask_from_wire(key.family(), *bytes)
                }
                ServiceAttribute::PersistenceEngine(name) => {
                    service.persistence_engine = Some(name.clone())
                }
                ServiceAttribute::Stats(stats) => stats32 = Some(*stats),
                ServiceAttribute::Stats64(stats) => service.stats = Some(*stats),
                _ => {}
            }
        }
        service.stats = service.stats.or(stats32);
        Ok(service)
    }

    /// Reads the service nest of a kernel reply message.
    pub fn from_message_attributes(attributes: &[IpvsAttribute]) -> Result<Self, DecodeError> {
        attributes
            .iter()
            .find_map(|attribute| match attribute {
                IpvsAttribute::Service(nest) => Some(Self::from_attributes(nest)),
                _ => None,
            })
            .unwrap_or_else(|| Err(DecodeError::from("reply has no service attribute")))
    }
}

/// Formats as `TCP 192.0.2.1:80 (wlc)`.
impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.scheduler)
    }
}

/// Encodes a persistence prefix length. IPv4 takes the mask in network
/// byte order and IPv6 the prefix length as a host-order u32, as the
/// kernel's `ip_vs_genl_parse_service` reads them.
fn netmask_to_wire(family: AddressFamily, prefix_len: u8) -> [u8; 4] {
    let prefix_len = prefix_len.min(family.max_prefix_len());
    match family {
        AddressFamily::Inet => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix_len))
                .unwrap_or(0);
            mask.to_be_bytes()
        }
        AddressFamily::Inet6 => u32::from(prefix_len).to_ne_bytes(),
    }
}

/// Decodes a persistence netmask. A non-contiguous IPv4 mask (which
/// ipvsadm lets through) is read as its leading one bits.
fn netmask_from_wire(family: AddressFamily, bytes: [u8; 4]) -> u8 {
    match family {
        AddressFamily::Inet => u32::from_be_bytes(bytes).leading_ones() as u8,
        AddressFamily::Inet6 => u32::from_ne_bytes(bytes).min(128) as u8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmask_wire_forms() {
        assert_eq!(netmask_to_wire(AddressFamily::Inet, 32), [0xff; 4]);
        assert_eq!(
            netmask_to_wire(AddressFamily::Inet, 24),
            [0xff, 0xff, 0xff, 0]
        );
        assert_eq!(netmask_to_wire(AddressFamily::Inet, 0), [0; 4]);
        assert_eq!(
            netmask_to_wire(AddressFamily::Inet6, 128),
            128u32.to_ne_bytes()
        );
        assert_eq!(
            netmask_from_wire(AddressFamily::Inet, [0xff, 0xff, 0xff, 0]),
            24
        );
        assert_eq!(
            netmask_from_wire(AddressFamily::Inet6, 64u32.to_ne_bytes()),
            64
        );
    }

    #[test]
    fn scheduler_names_round_trip() {
        for scheduler in Scheduler::KNOWN {
            assert_eq!(Scheduler::from(scheduler.as_str()), scheduler);
        }
        assert_eq!(Scheduler::from("rr2"), Scheduler::Other("rr2".to_owned()));
    }

    #[test]
    fn key_display_matches_ipvsadm() {
        let v4 = ServiceKey::tcp("192.0.2.1:80".parse().unwrap());
        let v6 = ServiceKey::udp("[2001:db8::1]:53".parse().unwrap());
        assert_eq!(v4.to_string(), "TCP 192.0.2.1:80");
        assert_eq!(v6.to_string(), "UDP [2001:db8::1]:53");
        assert_eq!(
            ServiceKey::fwmark(AddressFamily::Inet, 1).to_string(),
            "FWM 1"
        );
        assert_eq!(
            ServiceKey::fwmark(AddressFamily::Inet6, 2).to_string(),
            "FWM 2 IPv6"
        );
        let other = ServiceKey::Inet {
            protocol: Protocol(50),
            address: "192.0.2.1:0".parse().unwrap(),
        };
        assert_eq!(other.to_string(), "IP(50) 192.0.2.1:0");
    }

    #[test]
    fn flags_debug_names_bits() {
        let flags = ServiceFlags::PERSISTENT | ServiceFlags::SH_PORT;
        assert_eq!(
            format!("{flags:?}"),
            "ServiceFlags(0x11: PERSISTENT | SCHED2)"
        );
        assert!(flags.contains(ServiceFlags::PERSISTENT));
        assert!(!flags.contains(ServiceFlags::HASHED));
    }
}
