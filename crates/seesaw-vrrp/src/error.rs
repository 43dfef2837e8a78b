//! Errors of the codec, the receive filter and the configuration.

use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

/// An invalid advertisement interval in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IntervalError {
    #[error(
        "invalid advertisement interval {0:?}: it must be a whole number of centiseconds (10 ms steps)"
    )]
    NotWholeCentiseconds(Duration),
    #[error("invalid advertisement interval {0:?}: it must be from 10ms to 655.35s")]
    OutOfRange(Duration),
}

/// A received IPv4 packet whose header cannot carry a VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Ipv4HeaderError {
    #[error("IPv4 packet is {len} bytes, shorter than the 20-byte minimum header")]
    Truncated { len: usize },
    #[error("invalid IP version {0} in an IPv4 packet")]
    Version(u8),
    #[error("invalid IPv4 header length {header_len} bytes in a {len}-byte packet")]
    HeaderLength { header_len: usize, len: usize },
    #[error("IPv4 total length {total_len} exceeds the {len} bytes received")]
    TotalLength { total_len: usize, len: usize },
    #[error("IP protocol {0} is not VRRP (112)")]
    Protocol(u8),
}

/// A VRRP payload that is not a valid version 3 advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("VRRP packet is {len} bytes, shorter than the 8-byte header")]
    Truncated { len: usize },
    #[error("unsupported VRRP version {0}, expected 3")]
    Version(u8),
    #[error("unsupported VRRP packet type {0}, expected 1 (advertisement)")]
    PacketType(u8),
    #[error(
        "VRRP packet is {actual} bytes but its address count {count} requires exactly {expected}"
    )]
    Length {
        count: u8,
        expected: usize,
        actual: usize,
    },
    #[error("invalid VRRP checksum {received:#06x}, expected {expected:#06x}")]
    Checksum { received: u16, expected: u16 },
    #[error("invalid max advertisement interval 0")]
    ZeroInterval,
}

/// An advertisement that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error("address {address} is not of the packet's address family ({family})")]
    AddressFamily {
        address: IpAddr,
        family: &'static str,
    },
    #[error("{count} addresses exceed the 255 that the count field can carry")]
    TooManyAddresses { count: usize },
}

/// Source and destination addresses of different families.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("source {source_address} and destination {destination} are of different address families")]
pub struct FamilyMismatch {
    pub source_address: IpAddr,
    pub destination: IpAddr,
}

/// A received packet that the receive filter drops.
///
/// A Go Seesaw peer drops such packets silently. The daemon decides whether
/// to log or count them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReceiveError {
    #[error("dropped VRRP packet from {0}: it was sent from the local address")]
    OwnAddress(IpAddr),
    #[error("dropped VRRP packet from {source_address}: TTL or hop limit {received} is not 255")]
    HopLimit {
        source_address: IpAddr,
        received: u8,
    },
    #[error(
        "dropped VRRP packet from {source_address}: VRID {received} is not the local VRID {expected}"
    )]
    Vrid {
        source_address: IpAddr,
        expected: u8,
        received: u8,
    },
    #[error("dropped invalid VRRP packet from {source_address}: {error}")]
    Decode {
        source_address: IpAddr,
        error: DecodeError,
    },
}
