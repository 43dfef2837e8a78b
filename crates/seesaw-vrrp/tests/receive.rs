//! The receive path: IPv4 header parsing and the receive filter.

use std::net::IpAddr;
use std::num::NonZeroU8;

use seesaw_vrrp::{
    AdvertInterval, Advertisement, Datagram, DecodeError, Endpoints, Ipv4HeaderError, ReceiveError,
    ReceiveFilter,
};

/// An advert n1 of a Go pair sent: 100.115.222.130 to 224.0.0.18, TTL 255,
/// VRID 128, priority 255, 500 ms.
const GO_PACKET: [u8; 28] = [
    0x45, 0x00, 0x00, 0x1c, 0x8d, 0x12, 0x40, 0x00, 0xff, 0x70, 0xcb, 0x56, 0x64, 0x73, 0xde, 0x82,
    0xe0, 0x00, 0x00, 0x12, 0x31, 0x80, 0xff, 0x00, 0x00, 0x32, 0xab, 0xcb,
];

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn filter(vrid: u8, local: &str) -> ReceiveFilter {
    ReceiveFilter {
        vrid: NonZeroU8::new(vrid).unwrap(),
        local_address: ip(local),
    }
}

fn datagram<'a>(source: &str, hop_limit: u8, payload: &'a [u8]) -> Datagram<'a> {
    Datagram {
        endpoints: Endpoints::new(ip(source), ip("224.0.0.18")).unwrap(),
        hop_limit,
        payload,
    }
}

/// Encodes an advert from `source` to the IPv4 group.
fn advert_bytes(source: &str, advert: &Advertisement) -> Vec<u8> {
    advert
        .encode(&Endpoints::new(ip(source), ip("224.0.0.18")).unwrap())
        .unwrap()
}

#[test]
fn ipv4_packet_fields() {
    let datagram = Datagram::from_ipv4_packet(&GO_PACKET).unwrap();
    assert_eq!(datagram.endpoints.source(), ip("100.115.222.130"));
    assert_eq!(datagram.endpoints.destination(), ip("224.0.0.18"));
    assert_eq!(datagram.hop_limit, 255);
    assert_eq!(datagram.payload, &GO_PACKET[20..]);
}

#[test]
fn ipv4_packet_with_options() {
    // IHL 6: one 4-byte option word (NOPs) before the payload.
    let mut packet = GO_PACKET[..20].to_vec();
    packet[0] = 0x46;
    packet[3] = 32;
    packet.extend_from_slice(&[1, 1, 1, 0]);
    packet.extend_from_slice(&GO_PACKET[20..]);
    let datagram = Datagram::from_ipv4_packet(&packet).unwrap();
    assert_eq!(datagram.payload, &GO_PACKET[20..]);
}

#[test]
fn ipv4_packet_ignores_bytes_past_total_length() {
    let mut packet = GO_PACKET.to_vec();
    packet.extend_from_slice(&[0xde, 0xad]);
    let datagram = Datagram::from_ipv4_packet(&packet).unwrap();
    assert_eq!(datagram.payload, &GO_PACKET[20..]);
}

#[test]
fn ipv4_packet_errors() {
    assert_eq!(
        Datagram::from_ipv4_packet(&GO_PACKET[..19]),
        Err(Ipv4HeaderError::Truncated { len: 19 })
    );

    let mut ipv6 = GO_PACKET;
    ipv6[0] = 0x65;
    assert_eq!(
        Datagram::from_ipv4_packet(&ipv6),
        Err(Ipv4HeaderError::Version(6))
    );

    let mut short_ihl = GO_PACKET;
    short_ihl[0] = 0x44;
    assert_eq!(
        Datagram::from_ipv4_packet(&short_ihl),
        Err(Ipv4HeaderError::HeaderLength {
            header_len: 16,
            len: 28
        })
    );

    let mut long_ihl = GO_PACKET;
    long_ihl[0] = 0x4f;
    assert_eq!(
        Datagram::from_ipv4_packet(&long_ihl),
        Err(Ipv4HeaderError::HeaderLength {
            header_len: 60,
            len: 28
        })
    );

    assert_eq!(
        Datagram::from_ipv4_packet(&GO_PACKET[..27]),
        Err(Ipv4HeaderError::TotalLength {
            total_len: 28,
            len: 27
        })
    );

    let mut udp = GO_PACKET;
    udp[9] = 17;
    assert_eq!(
        Datagram::from_ipv4_packet(&udp),
        Err(Ipv4HeaderError::Protocol(17))
    );
}

#[test]
fn filter_accepts_go_advert() {
    let datagram = Datagram::from_ipv4_packet(&GO_PACKET).unwrap();
    let advert = filter(128, "100.115.222.131").accept(&datagram).unwrap();
    assert_eq!(
        advert,
        Advertisement::new(128, 255, AdvertInterval::from_centis(50).unwrap())
    );
}

#[test]
fn filter_drops_own_advert() {
    let datagram = Datagram::from_ipv4_packet(&GO_PACKET).unwrap();
    assert_eq!(
        filter(128, "100.115.222.130").accept(&datagram),
        Err(ReceiveError::OwnAddress(ip("100.115.222.130")))
    );
}

#[test]
fn filter_drops_routed_packet() {
    let payload = &GO_PACKET[20..];
    for hop_limit in [0, 1, 64, 254] {
        assert_eq!(
            filter(128, "100.115.222.131").accept(&datagram("100.115.222.130", hop_limit, payload)),
            Err(ReceiveError::HopLimit {
                source_address: ip("100.115.222.130"),
                received: hop_limit
            })
        );
    }
}

/// The Go test of the wrong VRRP version queued its advert straight into
/// the state machine, so it never reached the filter. This test runs the
/// advert through the filter.
#[test]
fn filter_drops_wrong_version() {
    let valid = advert_bytes(
        "10.0.0.1",
        &Advertisement::new(100, 200, AdvertInterval::DEFAULT),
    );
    for version in [0u8, 1, 2, 4, 15] {
        let mut bytes = valid.clone();
        bytes[0] = (version << 4) | 1;
        assert_eq!(
            filter(100, "10.0.0.2").accept(&datagram("10.0.0.1", 255, &bytes)),
            Err(ReceiveError::Decode {
                source_address: ip("10.0.0.1"),
                error: DecodeError::Version(version)
            })
        );
    }
}

/// The Go test of the wrong VRID had the same gap as the version test.
#[test]
fn filter_drops_wrong_vrid() {
    let bytes = advert_bytes(
        "10.0.0.1",
        &Advertisement::new(101, 200, AdvertInterval::DEFAULT),
    );
    assert_eq!(
        filter(100, "10.0.0.2").accept(&datagram("10.0.0.1", 255, &bytes)),
        Err(ReceiveError::Vrid {
            source_address: ip("10.0.0.1"),
            expected: 100,
            received: 101
        })
    );
}

#[test]
fn filter_drops_bad_checksum() {
    // Valid for the group, but the packet claims another destination.
    let bytes = advert_bytes(
        "10.0.0.1",
        &Advertisement::new(100, 200, AdvertInterval::DEFAULT),
    );
    let datagram = Datagram {
        endpoints: Endpoints::new(ip("10.0.0.1"), ip("10.0.0.2")).unwrap(),
        hop_limit: 255,
        payload: &bytes,
    };
    let error = filter(100, "10.0.0.2").accept(&datagram).unwrap_err();
    assert!(
        matches!(
            error,
            ReceiveError::Decode {
                error: DecodeError::Checksum { .. },
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn filter_accepts_keepalived_address_list() {
    let mut advert = Advertisement::new(100, 150, AdvertInterval::from_centis(100).unwrap());
    advert.addresses = vec![ip("10.0.0.100"), ip("10.0.0.101")];
    let bytes = advert_bytes("10.0.0.1", &advert);
    assert_eq!(
        filter(100, "10.0.0.2").accept(&datagram("10.0.0.1", 255, &bytes)),
        Ok(advert)
    );
}

#[test]
fn filter_accepts_ipv6() {
    let endpoints = Endpoints::new(ip("fe80::1"), ip("ff02::12")).unwrap();
    let advert = Advertisement::new(100, 150, AdvertInterval::DEFAULT);
    let bytes = advert.encode(&endpoints).unwrap();
    let datagram = Datagram {
        endpoints,
        hop_limit: 255,
        payload: &bytes,
    };
    assert_eq!(filter(100, "fe80::2").accept(&datagram), Ok(advert));
}

#[test]
fn filter_errors_name_the_value() {
    let error = ReceiveError::HopLimit {
        source_address: ip("10.0.0.1"),
        received: 64,
    };
    assert_eq!(
        error.to_string(),
        "dropped VRRP packet from 10.0.0.1: TTL or hop limit 64 is not 255"
    );
    let error = ReceiveError::Decode {
        source_address: ip("10.0.0.1"),
        error: DecodeError::Version(2),
    };
    assert_eq!(
        error.to_string(),
        "dropped invalid VRRP packet from 10.0.0.1: unsupported VRRP version 2, expected 3"
    );
}
