//! ICMP and ICMPv6 echo.

use std::fmt;
use std::net::IpAddr;

use super::{CheckContext, CheckResult, Outcome};
use crate::dial::{self, IcmpSocketKind};
use crate::target::Target;

/// Echo request size: the 8-byte ICMP header and a 56-byte payload, as
/// ping(8) sends by default.
const ECHO_SIZE: usize = 64;
/// The payload starts with this text four times and ends with zeros, which
/// makes the request byte-identical to the original's.
const PAYLOAD_TEXT: &[u8] = b"Healthcheck";
const PAYLOAD_REPEATS: usize = 4;

const ICMPV4_ECHO_REQUEST: u8 = 8;
const ICMPV4_ECHO_REPLY: u8 = 0;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

/// An ICMP echo check of the target's address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PingChecker {
    pub target: Target,
    /// Echo identifier; 0 uses the process's default. Datagram ping sockets
    /// replace it with their own.
    pub echo_id: u16,
}

impl PingChecker {
    pub(super) async fn check(&self, context: &CheckContext, sequence: u16) -> CheckResult {
        let outcome = Outcome::start();
        let message = format!("ICMP ping to host {}", self.target.ip);
        let echo_id = if self.echo_id == 0 {
            context.echo_id
        } else {
            self.echo_id
        };

        let (socket, kind) = match dial::open_icmp(&self.target) {
            Ok(opened) => opened,
            Err(error) => {
                return outcome.error(format!("{message}; failed to create socket"), error);
            }
        };
        let request = echo_request(self.target.ip.is_ipv6(), echo_id, sequence);
        let destination = std::net::SocketAddr::new(self.target.ip, 0);
        if let Err(error) = socket.send_to(&request, destination).await {
            return outcome.error(format!("{message}; failed to send request"), error);
        }

        // A raw socket receives every ICMP packet of the host, so read
        // until our reply arrives or the caller's timeout ends the run.
        let mut buffer = [0; 1500];
        loop {
            let (length, source) = match socket.recv_from(&mut buffer).await {
                Ok(received) => received,
                Err(error) => {
                    return outcome.error(format!("{message}; failed to read response"), error);
                }
            };
            if source.ip() != self.target.ip {
                continue;
            }
            let packet = icmp_message(&buffer[..length], self.target.ip, kind);
            if is_echo_reply(packet, self.target.ip, echo_id, sequence, kind) {
                return outcome.success(message);
            }
        }
    }
}

/// Builds an echo request with `echo_id` and `sequence`. The ICMPv4 checksum
/// is computed here. The kernel fills in the ICMPv6 checksum, because it
/// covers a pseudo-header with the source address, which the kernel picks.
fn echo_request(ipv6: bool, echo_id: u16, sequence: u16) -> Vec<u8> {
    let mut packet = vec![0; ECHO_SIZE];
    packet[0] = if ipv6 {
        ICMPV6_ECHO_REQUEST
    } else {
        ICMPV4_ECHO_REQUEST
    };
    packet[4..6].copy_from_slice(&echo_id.to_be_bytes());
    packet[6..8].copy_from_slice(&sequence.to_be_bytes());
    for repeat in 0..PAYLOAD_REPEATS {
        let start = 8 + repeat * PAYLOAD_TEXT.len();
        packet[start..start + PAYLOAD_TEXT.len()].copy_from_slice(PAYLOAD_TEXT);
    }
    if !ipv6 {
        let checksum = internet_checksum(&packet);
        packet[2..4].copy_from_slice(&checksum.to_be_bytes());
    }
    packet
}

/// Returns the ICMP message in a datagram read from an ICMP socket: IPv4 raw
/// sockets deliver the IP header too.
fn icmp_message(datagram: &[u8], target: IpAddr, kind: IcmpSocketKind) -> &[u8] {
    if target.is_ipv6() || kind == IcmpSocketKind::Datagram {
        return datagram;
    }
    let header_length = datagram
        .first()
        .map_or(0, |byte| usize::from(byte & 0x0f) * 4);
    datagram.get(header_length..).unwrap_or(&[])
}

fn is_echo_reply(
    packet: &[u8],
    target: IpAddr,
    echo_id: u16,
    sequence: u16,
    kind: IcmpSocketKind,
) -> bool {
    if packet.len() < 8 {
        return false;
    }
    let reply_type = if target.is_ipv6() {
        ICMPV6_ECHO_REPLY
    } else {
        ICMPV4_ECHO_REPLY
    };
    if packet[0] != reply_type || packet[1] != 0 {
        return false;
    }
    // The kernel demultiplexes datagram ping sockets by identifier already,
    // and rewrote ours.
    if kind == IcmpSocketKind::Raw && packet[4..6] != echo_id.to_be_bytes() {
        return false;
    }
    if packet[6..8] != sequence.to_be_bytes() {
        return false;
    }
    // The kernel verifies ICMPv6 checksums before delivery.
    target.is_ipv6() || internet_checksum(packet) == 0
}

/// Computes the RFC 1071 one's complement sum of `data`.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = match chunk {
            [high, low] => u16::from_be_bytes([*high, *low]),
            [high] => u16::from_be_bytes([*high, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl fmt::Display for PingChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PING {}", self.target.ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_request_ipv4_bytes() {
        let packet = echo_request(false, 0x1234, 0);
        assert_eq!(packet.len(), 64);
        assert_eq!(
            &packet[..8],
            &[0x08, 0x00, 0x35, 0x1b, 0x12, 0x34, 0x00, 0x00]
        );
        assert_eq!(&packet[8..19], b"Healthcheck");
        assert_eq!(&packet[41..52], b"Healthcheck");
        assert_eq!(&packet[52..], &[0; 12]);
        assert_eq!(internet_checksum(&packet), 0);
    }

    #[test]
    fn echo_request_ipv6_leaves_checksum_to_kernel() {
        let packet = echo_request(true, 1, 2);
        assert_eq!(&packet[..8], &[128, 0, 0, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn reply_matches_id_and_sequence() {
        let target: IpAddr = "192.0.2.1".parse().unwrap();
        let mut reply = echo_request(false, 7, 9);
        reply[0] = ICMPV4_ECHO_REPLY;
        reply[2..4].copy_from_slice(&[0, 0]);
        let checksum = internet_checksum(&reply);
        reply[2..4].copy_from_slice(&checksum.to_be_bytes());

        assert!(is_echo_reply(&reply, target, 7, 9, IcmpSocketKind::Raw));
        assert!(!is_echo_reply(&reply, target, 8, 9, IcmpSocketKind::Raw));
        assert!(is_echo_reply(
            &reply,
            target,
            8,
            9,
            IcmpSocketKind::Datagram
        ));
        assert!(!is_echo_reply(&reply, target, 7, 10, IcmpSocketKind::Raw));
    }
}
