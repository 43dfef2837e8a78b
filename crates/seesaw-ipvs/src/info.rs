//! Module-wide information and settings: version, table size, timeouts.

use std::fmt;

use netlink_packet_core::DecodeError;

use crate::nla::IpvsAttribute;

/// IPVS version as the kernel encodes it: `major << 16 | minor << 8 | patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32);

impl Version {
    pub fn major(self) -> u8 {
        (self.0 >> 16) as u8
    }

    pub fn minor(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub fn patch(self) -> u8 {
        self.0 as u8
    }
}

/// Formats as `1.2.1`.
impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major(), self.minor(), self.patch())
    }
}

/// The reply to `GET_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub version: Version,
    /// Buckets in the connection hash table (the `conn_tab_bits` module
    /// parameter as a power of two).
    pub connection_table_size: u32,
}

impl Info {
    /// Reads a `SET_INFO` reply; both values are required.
    pub fn from_message_attributes(attributes: &[IpvsAttribute]) -> Result<Self, DecodeError> {
        let mut version = None;
        let mut size = None;
        for attribute in attributes {
            match attribute {
                IpvsAttribute::Version(v) => version = Some(Version(*v)),
                IpvsAttribute::ConnTableSize(v) => size = Some(*v),
                _ => {}
            }
        }
        Ok(Self {
            version: version.ok_or("info reply has no version attribute")?,
            connection_table_size: size
                .ok_or("info reply has no connection table size attribute")?,
        })
    }
}

/// Connection timeouts of the whole IPVS table, in seconds
/// (`ipvsadm --set tcp tcpfin udp`). In a request, 0 leaves a value as it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

impl Timeouts {
    /// Returns the attributes of a `SET_CONFIG` request.
    pub fn attributes(&self) -> Vec<IpvsAttribute> {
        vec![
            IpvsAttribute::TimeoutTcp(self.tcp),
            IpvsAttribute::TimeoutTcpFin(self.tcp_fin),
            IpvsAttribute::TimeoutUdp(self.udp),
        ]
    }

    /// Reads a `GET_CONFIG` reply; a missing value reads as 0 (the kernel
    /// omits the TCP values when built without TCP support).
    pub fn from_message_attributes(attributes: &[IpvsAttribute]) -> Self {
        let mut timeouts = Timeouts::default();
        for attribute in attributes {
            match attribute {
                IpvsAttribute::TimeoutTcp(v) => timeouts.tcp = *v,
                IpvsAttribute::TimeoutTcpFin(v) => timeouts.tcp_fin = *v,
                IpvsAttribute::TimeoutUdp(v) => timeouts.udp = *v,
                _ => {}
            }
        }
        timeouts
    }
}
