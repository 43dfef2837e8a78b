//! IPVS netlink attributes, one enum variant per attribute type, with their
//! exact wire encoding. No interpretation happens here beyond byte order:
//! the typed model in `service.rs` and `destination.rs` builds on these.
//!
//! Encoding rules, from Linux `include/uapi/linux/ip_vs.h` and the kernel's
//! `ip_vs_ctl.c` policies: integers are in host byte order except ports,
//! which are big-endian. Addresses are always 16 bytes, IPv4 in the first
//! four. Strings carry a trailing NUL. Nests are emitted with
//! `NLA_F_NESTED`, as libnl and ipvsadm do. The kernel emits its nests
//! without that flag, and the parser accepts both.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, ErrorContext, NLA_F_NESTED, Nla, NlaBuffer, NlasIterator,
    Parseable,
};

use crate::constants::*;
use crate::stats::Stats;

/// A top-level attribute of an IPVS message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpvsAttribute {
    Service(Vec<ServiceAttribute>),
    Destination(Vec<DestinationAttribute>),
    /// TCP established-connection timeout in seconds (`GET_CONFIG` reply,
    /// `SET_CONFIG` request; 0 in a request leaves the value unchanged).
    TimeoutTcp(u32),
    /// TCP FIN-wait timeout in seconds.
    TimeoutTcpFin(u32),
    /// UDP timeout in seconds.
    TimeoutUdp(u32),
    /// IPVS version, `major << 16 | minor << 8 | patch` (info messages only).
    Version(u32),
    /// Number of buckets in the connection hash table (info messages only).
    ConnTableSize(u32),
    /// An attribute this crate does not interpret, kept as raw bytes.
    Other(DefaultNla),
}

/// An attribute inside the service nest (`IPVS_SVC_ATTR_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceAttribute {
    AddressFamily(u16),
    Protocol(u16),
    /// The 16-byte address field; an IPv4 address fills the first 4 bytes.
    Address([u8; 16]),
    /// Port number; the wire value is big-endian.
    Port(u16),
    Fwmark(u32),
    Scheduler(String),
    /// Flags and the mask of bits that a request changes.
    Flags {
        flags: u32,
        mask: u32,
    },
    /// Persistence timeout in seconds.
    Timeout(u32),
    /// Persistence netmask, as the 4 raw wire bytes: a network-order mask
    /// for IPv4 and a host-order prefix length for IPv6.
    Netmask([u8; 4]),
    Stats(Stats),
    PersistenceEngine(String),
    Stats64(Stats),
    Other(DefaultNla),
}

/// An attribute inside the destination nest (`IPVS_DEST_ATTR_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationAttribute {
    Address([u8; 16]),
    /// Port number; the wire value is big-endian.
    Port(u16),
    /// Connection flags; the kernel uses only the forwarding bits (0x7).
    ForwardMethod(u32),
    Weight(u32),
    UpperThreshold(u32),
    LowerThreshold(u32),
    ActiveConnections(u32),
    InactiveConnections(u32),
    PersistentConnections(u32),
    Stats(Stats),
    AddressFamily(u16),
    Stats64(Stats),
    TunnelType(u8),
    /// Tunnel (GUE) port; the wire value is big-endian.
    TunnelPort(u16),
    TunnelFlags(u16),
    Other(DefaultNla),
}

// --- value helpers -------------------------------------------------------

fn fixed<const N: usize>(payload: &[u8], what: &str) -> Result<[u8; N], DecodeError> {
    payload
        .get(..N)
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .ok_or_else(|| {
            DecodeError::from(format!(
                "{what} attribute is {} bytes, expected at least {N}",
                payload.len()
            ))
        })
}

fn parse_u8(payload: &[u8], what: &str) -> Result<u8, DecodeError> {
    Ok(fixed::<1>(payload, what)?[0])
}

fn parse_u16(payload: &[u8], what: &str) -> Result<u16, DecodeError> {
    Ok(u16::from_ne_bytes(fixed(payload, what)?))
}

fn parse_u16_be(payload: &[u8], what: &str) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes(fixed(payload, what)?))
}

fn parse_u32(payload: &[u8], what: &str) -> Result<u32, DecodeError> {
    Ok(u32::from_ne_bytes(fixed(payload, what)?))
}

pub(crate) fn parse_u64(payload: &[u8], what: &str) -> Result<u64, DecodeError> {
    Ok(u64::from_ne_bytes(fixed(payload, what)?))
}

/// Reads an address attribute. The kernel always sends 16 bytes; a 4-byte
/// payload (IPv4 only) is accepted too and padded with zeros.
fn parse_address(payload: &[u8], what: &str) -> Result<[u8; 16], DecodeError> {
    let mut address = [0u8; 16];
    match payload.len() {
        4 => address[..4].copy_from_slice(payload),
        len if len >= 16 => address.copy_from_slice(&payload[..16]),
        len => {
            return Err(DecodeError::from(format!(
                "{what} attribute is {len} bytes, expected 4 or 16"
            )));
        }
    }
    Ok(address)
}

/// Reads a NUL-terminated string; bytes after the first NUL are ignored and
/// invalid UTF-8 is replaced, because names are only compared and shown.
fn parse_name(payload: &[u8]) -> String {
    let end = payload
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[..end]).into_owned()
}

fn emit_name(name: &str, buffer: &mut [u8]) {
    buffer[..name.len()].copy_from_slice(name.as_bytes());
    buffer[name.len()] = 0;
}

fn parse_nested<T>(
    payload: &[u8],
    what: &str,
    parse: impl Fn(&NlaBuffer<&[u8]>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    NlasIterator::new(payload)
        .map(|nla| nla.and_then(|nla| parse(&nla)))
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid {what} nest"))
}

// --- top level -----------------------------------------------------------

impl Nla for IpvsAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Service(nest) => nest.as_slice().buffer_len(),
            Self::Destination(nest) => nest.as_slice().buffer_len(),
            Self::TimeoutTcp(_)
            | Self::TimeoutTcpFin(_)
            | Self::TimeoutUdp(_)
            | Self::Version(_)
            | Self::ConnTableSize(_) => 4,
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Service(_) => CMD_ATTR_SERVICE | NLA_F_NESTED,
            Self::Destination(_) => CMD_ATTR_DEST | NLA_F_NESTED,
            Self::TimeoutTcp(_) => CMD_ATTR_TIMEOUT_TCP,
            Self::TimeoutTcpFin(_) => CMD_ATTR_TIMEOUT_TCP_FIN,
            Self::TimeoutUdp(_) => CMD_ATTR_TIMEOUT_UDP,
            Self::Version(_) => INFO_ATTR_VERSION,
            Self::ConnTableSize(_) => INFO_ATTR_CONN_TAB_SIZE,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Service(nest) => nest.as_slice().emit(buffer),
            Self::Destination(nest) => nest.as_slice().emit(buffer),
            Self::TimeoutTcp(v)
            | Self::TimeoutTcpFin(v)
            | Self::TimeoutUdp(v)
            | Self::Version(v)
            | Self::ConnTableSize(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl IpvsAttribute {
    /// Parses one top-level attribute. `info` selects the attribute space of
    /// `GET_INFO`/`SET_INFO` messages, whose ids overlap the others.
    pub fn parse(buf: &NlaBuffer<&[u8]>, info: bool) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match (info, buf.kind()) {
            (true, INFO_ATTR_VERSION) => Self::Version(parse_u32(payload, "version")?),
            (true, INFO_ATTR_CONN_TAB_SIZE) => {
                Self::ConnTableSize(parse_u32(payload, "connection table size")?)
            }
            (false, CMD_ATTR_SERVICE) => {
                Self::Service(parse_nested(payload, "service", ServiceAttribute::parse)?)
            }
            (false, CMD_ATTR_DEST) => Self::Destination(parse_nested(
                payload,
                "destination",
                DestinationAttribute::parse,
            )?),
            (false, CMD_ATTR_TIMEOUT_TCP) => Self::TimeoutTcp(parse_u32(payload, "TCP timeout")?),
            (false, CMD_ATTR_TIMEOUT_TCP_FIN) => {
                Self::TimeoutTcpFin(parse_u32(payload, "TCP FIN timeout")?)
            }
            (false, CMD_ATTR_TIMEOUT_UDP) => Self::TimeoutUdp(parse_u32(payload, "UDP timeout")?),
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}

// --- service nest --------------------------------------------------------

impl Nla for ServiceAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::AddressFamily(_) | Self::Protocol(_) | Self::Port(_) => 2,
            Self::Address(_) => 16,
            Self::Fwmark(_) | Self::Timeout(_) | Self::Netmask(_) => 4,
            Self::Scheduler(name) | Self::PersistenceEngine(name) => name.len() + 1,
            Self::Flags { .. } => 8,
            Self::Stats(stats) => stats.nest_len(false),
            Self::Stats64(stats) => stats.nest_len(true),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::AddressFamily(_) => SVC_ATTR_AF,
            Self::Protocol(_) => SVC_ATTR_PROTOCOL,
            Self::Address(_) => SVC_ATTR_ADDR,
            Self::Port(_) => SVC_ATTR_PORT,
            Self::Fwmark(_) => SVC_ATTR_FWMARK,
            Self::Scheduler(_) => SVC_ATTR_SCHED_NAME,
            Self::Flags { .. } => SVC_ATTR_FLAGS,
            Self::Timeout(_) => SVC_ATTR_TIMEOUT,
            Self::Netmask(_) => SVC_ATTR_NETMASK,
            Self::Stats(_) => SVC_ATTR_STATS | NLA_F_NESTED,
            Self::PersistenceEngine(_) => SVC_ATTR_PE_NAME,
            Self::Stats64(_) => SVC_ATTR_STATS64 | NLA_F_NESTED,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::AddressFamily(v) | Self::Protocol(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Address(address) => buffer.copy_from_slice(address),
            Self::Port(port) => buffer.copy_from_slice(&port.to_be_bytes()),
            Self::Fwmark(v) | Self::Timeout(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Netmask(bytes) => buffer.copy_from_slice(bytes),
            Self::Scheduler(name) | Self::PersistenceEngine(name) => emit_name(name, buffer),
            Self::Flags { flags, mask } => {
                buffer[..4].copy_from_slice(&flags.to_ne_bytes());
                buffer[4..].copy_from_slice(&mask.to_ne_bytes());
            }
            Self::Stats(stats) => stats.emit_nest(false, buffer),
            Self::Stats64(stats) => stats.emit_nest(true, buffer),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl ServiceAttribute {
    pub fn parse(buf: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            SVC_ATTR_AF => Self::AddressFamily(parse_u16(payload, "service address family")?),
            SVC_ATTR_PROTOCOL => Self::Protocol(parse_u16(payload, "service protocol")?),
            SVC_ATTR_ADDR => Self::Address(parse_address(payload, "service address")?),
            SVC_ATTR_PORT => Self::Port(parse_u16_be(payload, "service port")?),
            SVC_ATTR_FWMARK => Self::Fwmark(parse_u32(payload, "service fwmark")?),
            SVC_ATTR_SCHED_NAME => Self::Scheduler(parse_name(payload)),
            SVC_ATTR_FLAGS => {
                let bytes: [u8; 8] = fixed(payload, "service flags")?;
                let (flags, mask) = bytes.split_at(4);
                Self::Flags {
                    flags: parse_u32(flags, "service flags")?,
                    mask: parse_u32(mask, "service flags mask")?,
                }
            }
            SVC_ATTR_TIMEOUT => Self::Timeout(parse_u32(payload, "service timeout")?),
            SVC_ATTR_NETMASK => Self::Netmask(fixed(payload, "service netmask")?),
            SVC_ATTR_STATS => Self::Stats(Stats::parse_nest(payload, false)?),
            SVC_ATTR_PE_NAME => Self::PersistenceEngine(parse_name(payload)),
            SVC_ATTR_STATS64 => Self::Stats64(Stats::parse_nest(payload, true)?),
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}

// --- destination nest ----------------------------------------------------

impl Nla for DestinationAttribute {
    fn value_len(&self) -> usize {
        match self {
            Self::Address(_) => 16,
            Self::Port(_) | Self::AddressFamily(_) | Self::TunnelPort(_) | Self::TunnelFlags(_) => {
                2
            }
            Self::TunnelType(_) => 1,
            Self::ForwardMethod(_)
            | Self::Weight(_)
            | Self::UpperThreshold(_)
            | Self::LowerThreshold(_)
            | Self::ActiveConnections(_)
            | Self::InactiveConnections(_)
            | Self::PersistentConnections(_) => 4,
            Self::Stats(stats) => stats.nest_len(false),
            Self::Stats64(stats) => stats.nest_len(true),
            Self::Other(nla) => nla.value_len(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Self::Address(_) => DEST_ATTR_ADDR,
            Self::Port(_) => DEST_ATTR_PORT,
            Self::ForwardMethod(_) => DEST_ATTR_FWD_METHOD,
            Self::Weight(_) => DEST_ATTR_WEIGHT,
            Self::UpperThreshold(_) => DEST_ATTR_U_THRESH,
            Self::LowerThreshold(_) => DEST_ATTR_L_THRESH,
            Self::ActiveConnections(_) => DEST_ATTR_ACTIVE_CONNS,
            Self::InactiveConnections(_) => DEST_ATTR_INACT_CONNS,
            Self::PersistentConnections(_) => DEST_ATTR_PERSIST_CONNS,
            Self::Stats(_) => DEST_ATTR_STATS | NLA_F_NESTED,
            Self::AddressFamily(_) => DEST_ATTR_ADDR_FAMILY,
            Self::Stats64(_) => DEST_ATTR_STATS64 | NLA_F_NESTED,
            Self::TunnelType(_) => DEST_ATTR_TUN_TYPE,
            Self::TunnelPort(_) => DEST_ATTR_TUN_PORT,
            Self::TunnelFlags(_) => DEST_ATTR_TUN_FLAGS,
            Self::Other(nla) => nla.kind(),
        }
    }

    fn emit_value(&self, buffer: &mut [u8]) {
        match self {
            Self::Address(address) => buffer.copy_from_slice(address),
            Self::Port(port) | Self::TunnelPort(port) => {
                buffer.copy_from_slice(&port.to_be_bytes())
            }
            Self::AddressFamily(v) | Self::TunnelFlags(v) => {
                buffer.copy_from_slice(&v.to_ne_bytes())
            }
            Self::TunnelType(v) => buffer[0] = *v,
            Self::ForwardMethod(v)
            | Self::Weight(v)
            | Self::UpperThreshold(v)
            | Self::LowerThreshold(v)
            | Self::ActiveConnections(v)
            | Self::InactiveConnections(v)
            | Self::PersistentConnections(v) => buffer.copy_from_slice(&v.to_ne_bytes()),
            Self::Stats(stats) => stats.emit_nest(false, buffer),
            Self::Stats64(stats) => stats.emit_nest(true, buffer),
            Self::Other(nla) => nla.emit_value(buffer),
        }
    }
}

impl DestinationAttribute {
    pub fn parse(buf: &NlaBuffer<&[u8]>) -> Result<Self, DecodeError> {
        let payload = buf.value();
        Ok(match buf.kind() {
            DEST_ATTR_ADDR => Self::Address(parse_address(payload, "destination address")?),
            DEST_ATTR_PORT => Self::Port(parse_u16_be(payload, "destination port")?),
            DEST_ATTR_FWD_METHOD => {
                Self::ForwardMethod(parse_u32(payload, "destination forwarding method")?)
            }
            DEST_ATTR_WEIGHT => Self::Weight(parse_u32(payload, "destination weight")?),
            DEST_ATTR_U_THRESH => {
                Self::UpperThreshold(parse_u32(payload, "destination upper threshold")?)
            }
            DEST_ATTR_L_THRESH => {
                Self::LowerThreshold(parse_u32(payload, "destination lower threshold")?)
            }
            DEST_ATTR_ACTIVE_CONNS => {
                Self::ActiveConnections(parse_u32(payload, "active connections")?)
            }
            DEST_ATTR_INACT_CONNS => {
                Self::InactiveConnections(parse_u32(payload, "inactive connections")?)
            }
            DEST_ATTR_PERSIST_CONNS => {
                Self::PersistentConnections(parse_u32(payload, "persistent connections")?)
            }
            DEST_ATTR_STATS => Self::Stats(Stats::parse_nest(payload, false)?),
            DEST_ATTR_ADDR_FAMILY => {
                Self::AddressFamily(parse_u16(payload, "destination address family")?)
            }
            DEST_ATTR_STATS64 => Self::Stats64(Stats::parse_nest(payload, true)?),
            DEST_ATTR_TUN_TYPE => Self::TunnelType(parse_u8(payload, "tunnel type")?),
            DEST_ATTR_TUN_PORT => Self::TunnelPort(parse_u16_be(payload, "tunnel port")?),
            DEST_ATTR_TUN_FLAGS => Self::TunnelFlags(parse_u16(payload, "tunnel flags")?),
            _ => Self::Other(DefaultNla::parse(buf)?),
        })
    }
}
