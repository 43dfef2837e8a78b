//! The VRRPv3 advertisement of RFC 5798 section 5: encoding, decoding and the
//! receive filter.
//!
//! A Go Seesaw peer sends and accepts only the 8-byte header with an address
//! count of 0. Full advertisements that list addresses, as keepalived sends
//! them, decode too, and the addresses are kept.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU8;

use crate::error::{DecodeError, EncodeError, FamilyMismatch, Ipv4HeaderError, ReceiveError};
use crate::interval::AdvertInterval;

/// The IP protocol number of VRRP.
pub const IP_PROTOCOL: u8 = 112;
/// The VRRP version this crate speaks.
pub const VERSION: u8 = 3;
/// The packet type of an advertisement, the only type VRRPv3 defines.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the header that precedes the address list, in bytes.
pub const HEADER_LEN: usize = 8;
/// The only TTL (IPv4) or hop limit (IPv6) a valid advertisement arrives
/// with, which proves that it did not cross a router.
pub const REQUIRED_HOP_LIMIT: u8 = 255;
/// The IPv4 multicast group of VRRP, where seesaw_ha sends by default.
pub const IPV4_MULTICAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP.
pub const IPV6_MULTICAST_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

/// Byte offset of the checksum field in the header.
const CHECKSUM_OFFSET: usize = 6;
/// Length of the IPv4 header without options.
const IPV4_MIN_HEADER_LEN: usize = 20;

/// The source and destination addresses of an advertisement's IP packet.
///
/// Both take part in the checksum through the pseudo-header, and their
/// family decides the width of the addresses in the address list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoints {
    V4 {
        source: Ipv4Addr,
        destination: Ipv4Addr,
    },
    V6 {
        source: Ipv6Addr,
        destination: Ipv6Addr,
    },
}

impl Endpoints {
    /// Pairs two addresses, which must be of the same family.
    pub fn new(source: IpAddr, destination: IpAddr) -> Result<Self, FamilyMismatch> {
        match (source, destination) {
            (IpAddr::V4(source), IpAddr::V4(destination)) => Ok(Endpoints::V4 {
                source,
                destination,
            }),
            (IpAddr::V6(source), IpAddr::V6(destination)) => Ok(Endpoints::V6 {
                source,
                destination,
            }),
            _ => Err(FamilyMismatch {
                source_address: source,
                destination,
            }),
        }
    }

    /// Returns the source address.
    pub fn source(&self) -> IpAddr {
        match *self {
            Endpoints::V4 { source, .. } => source.into(),
            Endpoints::V6 { source, .. } => source.into(),
        }
    }

    /// Returns the destination address.
    pub fn destination(&self) -> IpAddr {
        match *self {
            Endpoints::V4 { destination, .. } => destination.into(),
            Endpoints::V6 { destination, .. } => destination.into(),
        }
    }

    /// Width of one address in the address list, in bytes.
    fn address_len(&self) -> usize {
        match self {
            Endpoints::V4 { .. } => 4,
            Endpoints::V6 { .. } => 16,
        }
    }

    fn family_name(&self) -> &'static str {
        match self {
            Endpoints::V4 { .. } => "IPv4",
            Endpoints::V6 { .. } => "IPv6",
        }
    }

    /// Adds the pseudo-header for a VRRP packet of `vrrp_len` bytes: the
    /// IPv4 one of RFC 768 or the IPv6 one of RFC 8200 section 8.1, both
    /// with protocol 112.
    fn add_pseudo_header(&self, vrrp_len: usize, sum: &mut Checksum) {
        match self {
            Endpoints::V4 {
                source,
                destination,
            } => {
                sum.add(&source.octets());
                sum.add(&destination.octets());
                // The IPv4 length field is 16 bits. The advertisement never
                // gets near it: 255 addresses make 1,028 bytes.
                let len = vrrp_len as u16;
                sum.add(&[0, IP_PROTOCOL]);
                sum.add(&len.to_be_bytes());
            }
            Endpoints::V6 {
                source,
                destination,
            } => {
                sum.add(&source.octets());
                sum.add(&destination.octets());
                sum.add(&(vrrp_len as u32).to_be_bytes());
                sum.add(&[0, 0, 0, IP_PROTOCOL]);
            }
        }
    }
}

/// A VRRPv3 advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advertisement {
    /// Virtual router id. seesaw_ha uses the cluster's VRID for the node pair.
    pub vrid: u8,
    /// Sender priority: 1 to 255, or 0 when the master is stepping down.
    pub priority: u8,
    /// How often the sender advertises while master.
    pub max_advert_interval: AdvertInterval,
    /// The virtual addresses, all of the packet's family. Seesaw sends none.
    pub addresses: Vec<IpAddr>,
}

impl Advertisement {
    /// Creates an advertisement without addresses, as seesaw_ha sends.
    pub fn new(vrid: u8, priority: u8, max_advert_interval: AdvertInterval) -> Self {
        Advertisement {
            vrid,
            priority,
            max_advert_interval,
            addresses: Vec::new(),
        }
    }

    /// Encodes the advertisement for an IP packet between `endpoints`.
    ///
    /// The checksum covers the pseudo-header with the real destination, so
    /// a packet sent to the multicast group must be encoded with the group.
    /// All 16 bits of the interval field are written, so intervals above
    /// 40.95 s set the bits that RFC 5798 reserves, as a Go peer does.
    pub fn encode(&self, endpoints: &Endpoints) -> Result<Vec<u8>, EncodeError> {
        let count =
            u8::try_from(self.addresses.len()).map_err(|_| EncodeError::TooManyAddresses {
                count: self.addresses.len(),
            })?;

        let mut packet = Vec::with_capacity(HEADER_LEN + self.addresses.len() * 16);
        packet.push((VERSION << 4) | TYPE_ADVERTISEMENT);
        packet.push(self.vrid);
        packet.push(self.priority);
        packet.push(count);
        packet.extend_from_slice(&self.max_advert_interval.centis().to_be_bytes());
        packet.extend_from_slice(&[0, 0]);

        for address in &self.addresses {
            match (endpoints, address) {
                (Endpoints::V4 { .. }, IpAddr::V4(v4)) => packet.extend_from_slice(&v4.octets()),
                (Endpoints::V6 { .. }, IpAddr::V6(v6)) => packet.extend_from_slice(&v6.octets()),
                _ => {
                    return Err(EncodeError::AddressFamily {
                        address: *address,
                        family: endpoints.family_name(),
                    });
                }
            }
        }

        let checksum = vrrp_checksum(endpoints, &packet);
        packet[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].copy_from_slice(&checksum.to_be_bytes());
        Ok(packet)
    }

    /// Decodes the VRRP payload of an IP packet between `endpoints`.
    ///
    /// Checks, in order: the header length, version 3, type 1, that the
    /// length is exactly the header plus `count` addresses of the packet's
    /// family, the checksum over the pseudo-header, and a non-zero interval.
    /// The interval is read from all 16 bits of its field, as a Go peer
    /// reads it. RFC 5798 senders keep the top 4 bits zero, so they read
    /// the same either way.
    pub fn decode(payload: &[u8], endpoints: &Endpoints) -> Result<Self, DecodeError> {
        if payload.len() < HEADER_LEN {
            return Err(DecodeError::Truncated { len: payload.len() });
        }

        let version = payload[0] >> 4;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let packet_type = payload[0] & 0x0f;
        if packet_type != TYPE_ADVERTISEMENT {
            return Err(DecodeError::PacketType(packet_type));
        }

        let count = payload[3];
        let expected = HEADER_LEN + usize::from(count) * endpoints.address_len();
        if payload.len() != expected {
            return Err(DecodeError::Length {
                count,
                expected,
                actual: payload.len(),
            });
        }

        // A correct packet sums to 0xffff with its checksum in place, which
        // makes the complement 0. The expected value is only for the error.
        if vrrp_checksum(endpoints, payload) != 0 {
            let mut zeroed = payload.to_vec();
            zeroed[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2].fill(0);
            return Err(DecodeError::Checksum {
                received: u16::from_be_bytes([payload[6], payload[7]]),
                expected: vrrp_checksum(endpoints, &zeroed),
            });
        }

        let centis = u16::from_be_bytes([payload[4], payload[5]]);
        let max_advert_interval =
            AdvertInterval::from_centis(centis).ok_or(DecodeError::ZeroInterval)?;

        let addresses = payload[HEADER_LEN..]
            .chunks_exact(endpoints.address_len())
            .map(|chunk| match endpoints {
                Endpoints::V4 { .. } => IpAddr::from(<[u8; 4]>::try_from(chunk).unwrap()),
                Endpoints::V6 { .. } => IpAddr::from(<[u8; 16]>::try_from(chunk).unwrap()),
            })
            .collect();

        Ok(Advertisement {
            vrid: payload[1],
            priority: payload[2],
            max_advert_interval,
            addresses,
        })
    }
}

/// A received VRRP packet as the socket layer hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The packet's real source and destination.
    pub endpoints: Endpoints,
    /// The IPv4 TTL or the IPv6 hop limit the packet arrived with.
    pub hop_limit: u8,
    /// The VRRP packet, from the version byte on.
    pub payload: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Splits a whole IPv4 packet, as a raw IPv4 socket reads it, into its
    /// addresses, TTL and VRRP payload.
    ///
    /// Bytes after the header's total length are ignored. The header
    /// checksum is not verified because the kernel has already done so.
    pub fn from_ipv4_packet(packet: &'a [u8]) -> Result<Self, Ipv4HeaderError> {
        let len = packet.len();
        if len < IPV4_MIN_HEADER_LEN {
            return Err(Ipv4HeaderError::Truncated { len });
        }

        let version = packet[0] >> 4;
        if version != 4 {
            return Err(Ipv4HeaderError::Version(version));
        }
        let header_len = usize::from(packet[0] & 0x0f) * 4;
        if header_len < IPV4_MIN_HEADER_LEN || header_len > len {
            return Err(Ipv4HeaderError::HeaderLength { header_len, len });
        }
        let total_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        if total_len > len || total_len < header_len {
            return Err(Ipv4HeaderError::TotalLength { total_len, len });
        }
        let protocol = packet[9];
        if protocol != IP_PROTOCOL {
            return Err(Ipv4HeaderError::Protocol(protocol));
        }

        let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
        let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        Ok(Datagram {
            endpoints: Endpoints::V4 {
                source,
                destination,
            },
            hop_limit: packet[8],
            payload: &packet[header_len..total_len],
        })
    }
}

/// The checks a node applies to every received packet before passing it to
/// its state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveFilter {
    /// Only advertisements for this virtual router are accepted.
    pub vrid: NonZeroU8,
    /// The node's own address. Packets from it are its own adverts looped
    /// back and are dropped.
    pub local_address: IpAddr,
}

impl ReceiveFilter {
    /// Decodes `datagram` and returns the advertisement if it is meant for
    /// this node.
    ///
    /// The checks are those of a Go Seesaw peer (own source, TTL or hop
    /// limit 255, checksum, version and type, VRID) plus those of
    /// [`Advertisement::decode`]. Unlike the Go peer, it also accepts a
    /// packet that lists addresses. Like the Go peer and RFC 5798, it does
    /// not compare the sender with a configured peer address.
    pub fn accept(&self, datagram: &Datagram<'_>) -> Result<Advertisement, ReceiveError> {
        let source_address = datagram.endpoints.source();
        if source_address == self.local_address {
            return Err(ReceiveError::OwnAddress(source_address));
        }
        if datagram.hop_limit != REQUIRED_HOP_LIMIT {
            return Err(ReceiveError::HopLimit {
                source_address,
                received: datagram.hop_limit,
            });
        }

        let advertisement =
            Advertisement::decode(datagram.payload, &datagram.endpoints).map_err(|error| {
                ReceiveError::Decode {
                    source_address,
                    error,
                }
            })?;

        if advertisement.vrid != self.vrid.get() {
            return Err(ReceiveError::Vrid {
                source_address,
                expected: self.vrid.get(),
                received: advertisement.vrid,
            });
        }
        Ok(advertisement)
    }
}

/// Returns the RFC 1071 checksum of `data`: the one's complement of the
/// one's-complement sum of its 16-bit big-endian words. An odd trailing byte
/// is the high byte of a last word padded with zero.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum = Checksum::default();
    sum.add(data);
    sum.finish()
}

/// Returns the checksum of a VRRP packet over its pseudo-header, taking the
/// packet's checksum field as it is.
fn vrrp_checksum(endpoints: &Endpoints, packet: &[u8]) -> u16 {
    let mut sum = Checksum::default();
    endpoints.add_pseudo_header(packet.len(), &mut sum);
    sum.add(packet);
    sum.finish()
}

/// A running RFC 1071 sum over data that arrives in pieces.
#[derive(Debug, Default)]
struct Checksum {
    /// Sum of the 16-bit words so far, carries not yet folded. A u64 cannot
    /// overflow for any packet that fits in memory.
    sum: u64,
    /// The high byte of a word whose low byte is still to come.
    pending_high: Option<u8>,
}

impl Checksum {
    fn add(&mut self, mut data: &[u8]) {
        if let Some(high) = self.pending_high.take() {
            match data.split_first() {
                Some((&low, rest)) => {
                    self.sum += u64::from(u16::from_be_bytes([high, low]));
                    data = rest;
                }
                None => {
                    self.pending_high = Some(high);
                    return;
                }
            }
        }

        let mut words = data.chunks_exact(2);
        for word in &mut words {
            self.sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
        }
        if let [last] = words.remainder() {
            self.pending_high = Some(*last);
        }
    }

    fn finish(mut self) -> u16 {
        if let Some(high) = self.pending_high.take() {
            self.sum += u64::from(u16::from_be_bytes([high, 0]));
        }
        while self.sum > 0xffff {
            self.sum = (self.sum & 0xffff) + (self.sum >> 16);
        }
        !(self.sum as u16)
    }
}
