//! Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6),
//! which tell the segment that an address now lives at this MAC.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;
const ARPHRD_ETHER: u16 = 1;
const ARP_REQUEST: u16 = 1;
/// Length of an Ethernet/IPv4 ARP payload.
pub const ARP_PAYLOAD_LEN: usize = 28;

/// Builds a gratuitous ARP announcement for `address` (RFC 5227, section
/// 3): a request whose sender and target protocol addresses are both
/// `address`, with a zero target hardware address. Linux sends the same
/// when an interface comes up with `arp_notify` set.
pub fn gratuitous_arp(mac: [u8; 6], address: Ipv4Addr) -> [u8; ARP_PAYLOAD_LEN] {
    let mut packet = [0u8; ARP_PAYLOAD_LEN];
    packet[0..2].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    packet[2..4].copy_from_slice(&ETH_P_IP.to_be_bytes());
    packet[4] = 6;
    packet[5] = 4;
    packet[6..8].copy_from_slice(&ARP_REQUEST.to_be_bytes());
    packet[8..14].copy_from_slice(&mac);
    packet[14..18].copy_from_slice(&address.octets());
    // Bytes 18..24, the target MAC, stay zero.
    packet[24..28].copy_from_slice(&address.octets());
    packet
}

/// Sends `payload` as an ARP frame to the Ethernet broadcast address on
/// interface `index`; the kernel adds the Ethernet header with the
/// interface's MAC as the source.
pub fn send_arp(index: u32, payload: &[u8]) -> io::Result<()> {
    let socket = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from(i32::from(ETH_P_ARP.to_be()))),
    )?;
    // SAFETY: sockaddr_ll is plain data, zero is a valid value for every
    // field, and it fits in the zeroed sockaddr_storage it is written to.
    let address = unsafe {
        let mut storage = socket2::SockAddrStorage::zeroed();
        let link = storage.view_as::<libc::sockaddr_ll>();
        link.sll_family = libc::AF_PACKET as u16;
        link.sll_protocol = ETH_P_ARP.to_be();
        link.sll_ifindex = index as i32;
        link.sll_hatype = ARPHRD_ETHER;
        link.sll_halen = 6;
        link.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        SockAddr::new(
            storage,
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    let sent = socket.send_to(payload, &address)?;
    if sent != payload.len() {
        return Err(io::Error::other(format!(
            "sent {sent} of {} bytes",
            payload.len()
        )));
    }
    Ok(())
}

const ND_NEIGHBOR_ADVERT: u8 = 136;
/// Override flag of a neighbour advertisement (RFC 4861, section 4.4).
const ND_OVERRIDE: u8 = 0x20;
const ND_OPT_TARGET_LINKADDR: u8 = 2;

/// Builds an unsolicited neighbour advertisement for `target` with the
/// Override flag and a target link-layer address option (RFC 4861, section
/// 7.2.6). The checksum stays zero: the kernel fills it in for ICMPv6 raw
/// sockets.
pub fn neighbour_advertisement(mac: [u8; 6], target: Ipv6Addr) -> [u8; 32] {
    let mut packet = [0u8; 32];
    packet[0] = ND_NEIGHBOR_ADVERT;
    packet[4] = ND_OVERRIDE;
    packet[8..24].copy_from_slice(&target.octets());
    packet[24] = ND_OPT_TARGET_LINKADDR;
    // Option length in units of 8 bytes.
    packet[25] = 1;
    packet[26..32].copy_from_slice(&mac);
    packet
}

/// Sends an unsolicited neighbour advertisement for `target` to all nodes
/// (ff02::1) on interface `index` called `name`, from `target` itself.
pub fn send_neighbour_advertisement(
    index: u32,
    name: &str,
    mac: [u8; 6],
    target: Ipv6Addr,
) -> io::Result<()> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(name.as_bytes()))?;
    // Receivers drop neighbour discovery packets with a hop limit below 255.
    socket.set_multicast_hops_v6(255)?;
    socket.set_multicast_if_v6(index)?;
    socket.bind(&SockAddr::from(SocketAddrV6::new(target, 0, 0, 0)))?;
    let all_nodes = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, index);
    socket.send_to(
        &neighbour_advertisement(mac, target),
        &SockAddr::from(all_nodes),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_arp_bytes() {
        let packet = gratuitous_arp([0, 0, 0x5e, 0, 1, 0x3c], "192.168.10.1".parse().unwrap());

        let expected: [u8; 28] = [
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet, IPv4, request
            0x00, 0x00, 0x5e, 0x00, 0x01, 0x3c, // sender MAC
            0xc0, 0xa8, 0x0a, 0x01, // sender IP
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC
            0xc0, 0xa8, 0x0a, 0x01, // target IP
        ];
        assert_eq!(packet, expected);
    }

    #[test]
    fn neighbour_advertisement_bytes() {
        let target: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let packet = neighbour_advertisement([2, 0, 0, 0, 0, 1], target);

        assert_eq!(packet[0], 136);
        assert_eq!(packet[4], 0x20, "only the Override flag");
        assert_eq!(&packet[8..24], &target.octets());
        assert_eq!(&packet[24..26], &[2, 1]);
        assert_eq!(&packet[26..32], &[2, 0, 0, 0, 0, 1]);
    }
}
