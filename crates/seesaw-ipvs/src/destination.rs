//! Destinations (real servers) of a service.

use std::fmt;
use std::net::SocketAddr;

use netlink_packet_core::DecodeError;

use crate::nla::{DestinationAttribute, IpvsAttribute};
use crate::service::{AddressFamily, address_to_wire, missing};
use crate::stats::Stats;

/// The forwarding method of a destination (`IP_VS_CONN_F_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMethod {
    /// NAT: the director rewrites the destination address.
    Masquerade,
    /// The destination is the director itself.
    Local,
    /// IP-in-IP (or GUE/GRE, see [`Tunnel`]) encapsulation.
    Tunnel,
    /// Direct routing (DSR): the frame is sent to the destination's MAC.
    DirectRoute,
    /// Cache bypass.
    Bypass,
    /// A value outside the five methods above, passed through unchanged.
    Other(u32),
}

impl ForwardMethod {
    /// Mask of the forwarding bits in the connection flags.
    pub const MASK: u32 = 0x7;

    pub fn bits(self) -> u32 {
        match self {
            Self::Masquerade => 0,
            Self::Local => 1,
            Self::Tunnel => 2,
            Self::DirectRoute => 3,
            Self::Bypass => 4,
            Self::Other(bits) => bits,
        }
    }

    /// Reads the forwarding method from connection flags, keeping only the
    /// forwarding bits as the kernel does.
    pub fn from_bits(bits: u32) -> Self {
        match bits & Self::MASK {
            0 => Self::Masquerade,
            1 => Self::Local,
            2 => Self::Tunnel,
            3 => Self::DirectRoute,
            4 => Self::Bypass,
            other => Self::Other(other),
        }
    }
}

/// Encapsulation of a `Tunnel` destination (`IP_VS_CONN_F_TUNNEL_TYPE_*`).
/// Kernels older than these attributes ignore them and use IPIP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelType {
    Ipip,
    Gue,
    Gre,
    Other(u8),
}

impl TunnelType {
    pub fn number(self) -> u8 {
        match self {
            Self::Ipip => 0,
            Self::Gue => 1,
            Self::Gre => 2,
            Self::Other(number) => number,
        }
    }

    pub fn from_number(number: u8) -> Self {
        match number {
            0 => Self::Ipip,
            1 => Self::Gue,
            2 => Self::Gre,
            other => Self::Other(other),
        }
    }
}

/// Tunnel settings of a destination; ignored unless it forwards by tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tunnel {
    pub kind: TunnelType,
    /// Destination UDP port of GUE encapsulation.
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*`: 0x1 checksum, 0x2 remote checksum offload.
    pub flags: u16,
}

impl Default for Tunnel {
    fn default() -> Self {
        Self {
            kind: TunnelType::Ipip,
            port: 0,
            flags: 0,
        }
    }
}

/// A destination (real server) of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub address: SocketAddr,
    pub forward: ForwardMethod,
    /// Scheduling weight; 0 takes the destination out of rotation. The
    /// kernel rejects negative values with `EINVAL`.
    pub weight: i32,
    /// Maximum connections before the destination is overloaded; 0 = none.
    pub upper_threshold: u32,
    /// Connections below which an overloaded destination is used again.
    pub lower_threshold: u32,
    pub tunnel: Tunnel,
    /// Read only: filled from kernel replies, never sent.
    pub active_connections: u32,
    /// Read only: filled from kernel replies, never sent.
    pub inactive_connections: u32,
    /// Read only: filled from kernel replies, never sent.
    pub persistent_connections: u32,
    /// Counters; present only in destinations read from the kernel.
    pub stats: Option<Stats>,
}

impl Destination {
    /// Creates a direct-routing destination with weight 1 and no thresholds, the
    /// defaults of `ipvsadm -a`.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            forward: ForwardMethod::DirectRoute,
            weight: 1,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: Tunnel::default(),
            active_connections: 0,
            inactive_connections: 0,
            persistent_connections: 0,
            stats: None,
        }
    }

    pub fn family(&self) -> AddressFamily {
        AddressFamily::of(self.address.ip())
    }

    /// Compares everything a caller sets, ignoring counters.
    pub fn same_settings(&self, other: &Destination) -> bool {
        self.address == other.address
            && self.forward == other.forward
            && self.weight == other.weight
            && self.upper_threshold == other.upper_threshold
            && self.lower_threshold == other.lower_threshold
            && self.tunnel == other.tunnel
    }

    /// Returns the destination nest of `NEW_DEST`, `SET_DEST` and `DEL_DEST`, in the
    /// order ipvsadm 1.31 emits it. The address family is always sent, so a
    /// destination may differ in family from its service (tunnel mode,
    /// Linux 3.18 and later). Connection counters are never sent.
    pub fn attributes(&self) -> Vec<DestinationAttribute> {
        vec![
            DestinationAttribute::AddressFamily(self.family().number()),
            DestinationAttribute::Address(address_to_wire(self.address.ip())),
            DestinationAttribute::Port(self.address.port()),
            DestinationAttribute::ForwardMethod(self.forward.bits()),
            // The kernel reads the weight as a u32 and stores it in an int.
            DestinationAttribute::Weight(self.weight as u32),
            DestinationAttribute::TunnelType(self.tunnel.kind.number()),
            DestinationAttribute::TunnelPort(self.tunnel.port),
            DestinationAttribute::TunnelFlags(self.tunnel.flags),
            DestinationAttribute::UpperThreshold(self.upper_threshold),
            DestinationAttribute::LowerThreshold(self.lower_threshold),
        ]
    }

    /// Reads a destination nest. Address and port are required; the family
    /// comes from `ADDR_FAMILY` when present (Linux 3.18 and later), else it
    /// is `service_family`. Unknown attributes are ignored and `STATS64`
    /// wins over `STATS`.
    pub fn from_attributes(
        attributes: &[DestinationAttribute],
        service_family: AddressFamily,
    ) -> Result<Self, DecodeError> {
        let mut family = service_family;
        let mut address = None;
        let mut port = None;
        for attribute in attributes {
            match attribute {
                DestinationAttribute::AddressFamily(number) => {
                    family = AddressFamily::from_number(*number)?
                }
                DestinationAttribute::Address(bytes) => address = Some(*bytes),
                DestinationAttribute::Port(number) => port = Some(*number),
                _ => {}
            }
        }
        let address = address.ok_or_else(|| missing("destination", "address"))?;
        let port = port.ok_or_else(|| missing("destination", "port"))?;
        let mut destination =
            Destination::new(SocketAddr::new(family.address_from_wire(&address), port));
        let mut stats32 = None;
        for attribute in attributes {
            match attribute {
                DestinationAttribute::ForwardMethod(bits) => {
                    destination.forward = ForwardMethod::from_bits(*bits)
                }
                DestinationAttribute::Weight(weight) => destination.weight = *weight as i32,
                DestinationAttribute::UpperThreshold(v) => destination.upper_threshold = *v,
                DestinationAttribute::LowerThreshold(v) => destination.lower_threshold = *v,
                DestinationAttribute::ActiveConnections(v) => destination.active_connections = *v,
                DestinationAttribute::InactiveConnections(v) => {
                    destination.inactive_connections = *v
                }
                DestinationAttribute::PersistentConnections(v) => {
                    destination.persistent_connections = *v
                }
                DestinationAttribute::TunnelType(v) => {
                    destination.tunnel.kind = TunnelType::from_number(*v)
                }
                DestinationAttribute::TunnelPort(v) => destination.tunnel.port = *v,
                DestinationAttribute::TunnelFlags(v) => destination.tunnel.flags = *v,
                DestinationAttribute::Stats(stats) => stats32 = Some(*stats),
                DestinationAttribute::Stats64(stats) => destination.stats = Some(*stats),
                _ => {}
            }
        }
        destination.stats = destination.stats.or(stats32);
        Ok(destination)
    }

    /// Reads the destination nest of a kernel reply message.
    pub fn from_message_attributes(
        attributes: &[IpvsAttribute],
        service_family: AddressFamily,
    ) -> Result<Self, DecodeError> {
        attributes
            .iter()
            .find_map(|attribute| match attribute {
                IpvsAttribute::Destination(nest) => {
                    Some(Self::from_attributes(nest, service_family))
                }
                _ => None,
            })
            .unwrap_or_else(|| Err(DecodeError::from("reply has no destination attribute")))
    }
}

/// Formats as `192.0.2.2:80` or `[2001:db8::2]:53`.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.address)
    }
}
