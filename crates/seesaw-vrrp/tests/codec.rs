//! Byte-exact encoding and decoding of advertisements.

use std::net::{IpAddr, Ipv4Addr};

use seesaw_vrrp::{
    AdvertInterval, Advertisement, Datagram, DecodeError, EncodeError, Endpoints, internet_checksum,
};

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd-length hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn endpoints(source: &str, destination: &str) -> Endpoints {
    Endpoints::new(source.parse().unwrap(), destination.parse().unwrap()).unwrap()
}

fn interval(centis: u16) -> AdvertInterval {
    AdvertInterval::from_centis(centis).unwrap()
}

/// One line of the capture of a Go seesaw_ha pair.
struct CapturedAdvert {
    source: Ipv4Addr,
    destination: Ipv4Addr,
    ttl: u8,
    len: usize,
    priority: u8,
    packet: Vec<u8>,
}

fn captured_adverts() -> Vec<CapturedAdvert> {
    let text = include_str!("fixtures/go_seesaw_adverts.txt");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (fields, packet) = line.split_once('|').unwrap();
            let fields: Vec<&str> = fields.split_whitespace().collect();
            CapturedAdvert {
                source: fields[1].parse().unwrap(),
                destination: fields[2].parse().unwrap(),
                ttl: fields[3].parse().unwrap(),
                len: fields[4].parse().unwrap(),
                priority: fields[5].parse().unwrap(),
                packet: hex(packet.trim()),
            }
        })
        .collect()
}

#[test]
fn go_capture_round_trips() {
    let adverts = captured_adverts();
    assert_eq!(adverts.len(), 327);

    for (index, captured) in adverts.iter().enumerate() {
        assert_eq!(captured.packet.len(), captured.len, "advert {index}");
        let datagram = Datagram::from_ipv4_packet(&captured.packet).unwrap();
        assert_eq!(
            datagram.endpoints,
            Endpoints::V4 {
                source: captured.source,
                destination: captured.destination
            },
            "advert {index}"
        );
        assert_eq!(datagram.hop_limit, captured.ttl, "advert {index}");
        assert_eq!(datagram.payload.len(), 8, "advert {index}");

        let advert = Advertisement::decode(datagram.payload, &datagram.endpoints).unwrap();
        assert_eq!(advert.vrid, 128, "advert {index}");
        assert_eq!(advert.priority, captured.priority, "advert {index}");
        assert_eq!(advert.max_advert_interval, interval(50), "advert {index}");
        assert!(advert.addresses.is_empty(), "advert {index}");

        let encoded = advert.encode(&datagram.endpoints).unwrap();
        assert_eq!(encoded, datagram.payload, "advert {index}");
    }
}

#[test]
fn go_capture_covers_both_nodes() {
    let adverts = captured_adverts();
    let count = |source: [u8; 4], priority: u8| {
        adverts
            .iter()
            .filter(|a| a.source == Ipv4Addr::from(source) && a.priority == priority)
            .count()
    };
    assert_eq!(count([100, 115, 222, 130], 255), 302);
    assert_eq!(count([100, 115, 222, 130], 0), 1);
    assert_eq!(count([100, 115, 222, 131], 1), 23);
    assert_eq!(count([100, 115, 222, 131], 0), 1);
}

#[test]
fn go_capture_step_down_bytes() {
    let n1 = endpoints("100.115.222.130", "224.0.0.18");
    let step_down = Advertisement::new(128, 0, interval(50));
    assert_eq!(step_down.encode(&n1).unwrap(), hex("318000000032aacc"));

    let n2 = endpoints("100.115.222.131", "224.0.0.18");
    let backup = Advertisement::new(128, 1, interval(50));
    assert_eq!(backup.encode(&n2).unwrap(), hex("318001000032a9cb"));
}

#[test]
fn seesaw_worked_examples_ipv4() {
    let cases = [
        ("192.168.10.2", 100, "313c64000032bf5b"),
        ("192.168.10.2", 0, "313c00000032235c"),
        ("192.168.10.3", 50, "313c32000032f15a"),
    ];
    for (source, priority, expected) in cases {
        let endpoints = endpoints(source, "224.0.0.18");
        let advert = Advertisement::new(60, priority, interval(50));
        let bytes = advert.encode(&endpoints).unwrap();
        assert_eq!(bytes, hex(expected), "{source} priority {priority}");
        assert_eq!(Advertisement::decode(&bytes, &endpoints).unwrap(), advert);
    }
}

#[test]
fn seesaw_worked_example_ipv6() {
    let endpoints = endpoints("2015:cafe::2", "ff02::12");
    let advert = Advertisement::new(60, 100, interval(50));
    let bytes = advert.encode(&endpoints).unwrap();
    assert_eq!(bytes, hex("313c640000327fee"));
    assert_eq!(Advertisement::decode(&bytes, &endpoints).unwrap(), advert);
}

#[test]
fn checksum_rfc1071_vectors() {
    assert_eq!(internet_checksum(&hex("0001f203f4f5f6f7")), 0x220d);
    // An odd trailing byte is the high byte of a zero-padded word.
    assert_eq!(internet_checksum(&hex("0001f203f4f5f6f701")), 0x210d);
    assert_eq!(internet_checksum(&[]), 0xffff);
}

#[test]
fn checksum_uses_real_destination() {
    let advert = Advertisement::new(60, 100, interval(50));
    let multicast = advert
        .encode(&endpoints("192.168.10.2", "224.0.0.18"))
        .unwrap();
    let unicast = advert
        .encode(&endpoints("192.168.10.2", "192.168.10.3"))
        .unwrap();
    assert_ne!(multicast[6..8], unicast[6..8]);

    let error =
        Advertisement::decode(&multicast, &endpoints("192.168.10.2", "192.168.10.3")).unwrap_err();
    assert_eq!(
        error,
        DecodeError::Checksum {
            received: u16::from_be_bytes([multicast[6], multicast[7]]),
            expected: u16::from_be_bytes([unicast[6], unicast[7]]),
        }
    );
}

/// Full RFC 5798 adverts with an address list, as keepalived sends them.
/// The bytes were computed independently of this crate.
#[test]
fn address_list_ipv4() {
    let endpoints = endpoints("192.168.200.1", "224.0.0.18");
    let bytes = hex("313364020064efb4c0a8c810c0a8c811");
    let advert = Advertisement::decode(&bytes, &endpoints).unwrap();
    assert_eq!(advert.vrid, 51);
    assert_eq!(advert.priority, 100);
    assert_eq!(advert.max_advert_interval, interval(100));
    let expected: Vec<IpAddr> = vec![
        "192.168.200.16".parse().unwrap(),
        "192.168.200.17".parse().unwrap(),
    ];
    assert_eq!(advert.addresses, expected);
    assert_eq!(advert.encode(&endpoints).unwrap(), bytes);
}

#[test]
fn address_list_ipv6() {
    let endpoints = endpoints("fe80::1", "ff02::12");
    let bytes = hex("3133960100640c7f20010db8000000000000000000000010");
    let advert = Advertisement::decode(&bytes, &endpoints).unwrap();
    assert_eq!(advert.priority, 150);
    let expected: Vec<IpAddr> = vec!["2001:db8::10".parse().unwrap()];
    assert_eq!(advert.addresses, expected);
    assert_eq!(advert.encode(&endpoints).unwrap(), bytes);
}

/// Above 40.95 s the interval needs the 4 bits RFC 5798 reserves. A Go
/// peer writes and reads them, and so do we.
#[test]
fn interval_uses_all_sixteen_bits() {
    let endpoints = endpoints("10.0.0.1", "10.0.0.2");
    let advert = Advertisement::new(7, 200, interval(6000));
    let bytes = advert.encode(&endpoints).unwrap();
    assert_eq!(bytes, hex("3107c8001770db0c"));
    assert_eq!(
        Advertisement::decode(&bytes, &endpoints)
            .unwrap()
            .max_advert_interval,
        interval(6000)
    );
}

#[test]
fn decode_rejects_bad_headers() {
    let endpoints = endpoints("192.168.10.2", "224.0.0.18");
    let valid = hex("313c64000032bf5b");

    assert_eq!(
        Advertisement::decode(&valid[..7], &endpoints),
        Err(DecodeError::Truncated { len: 7 })
    );
    assert_eq!(
        Advertisement::decode(&[], &endpoints),
        Err(DecodeError::Truncated { len: 0 })
    );

    let mut version2 = valid.clone();
    version2[0] = 0x21;
    assert_eq!(
        Advertisement::decode(&version2, &endpoints),
        Err(DecodeError::Version(2))
    );

    let mut type2 = valid.clone();
    type2[0] = 0x32;
    assert_eq!(
        Advertisement::decode(&type2, &endpoints),
        Err(DecodeError::PacketType(2))
    );

    let mut corrupted = valid.clone();
    corrupted[2] = 0x65;
    assert_eq!(
        Advertisement::decode(&corrupted, &endpoints),
        Err(DecodeError::Checksum {
            received: 0xbf5b,
            expected: 0xbe5b
        })
    );
}

#[test]
fn decode_rejects_count_mismatch() {
    let v4 = endpoints("192.168.200.1", "224.0.0.18");
    let two_addresses = hex("313364020064efb4c0a8c810c0a8c811");

    assert_eq!(
        Advertisement::decode(&two_addresses[..12], &v4),
        Err(DecodeError::Length {
            count: 2,
            expected: 16,
            actual: 12
        })
    );
    let mut trailing = two_addresses.clone();
    trailing.extend_from_slice(&[0, 0]);
    assert_eq!(
        Advertisement::decode(&trailing, &v4),
        Err(DecodeError::Length {
            count: 2,
            expected: 16,
            actual: 18
        })
    );

    // The same bytes between IPv6 endpoints would need 16-byte addresses.
    let v6 = endpoints("fe80::1", "ff02::12");
    assert_eq!(
        Advertisement::decode(&two_addresses, &v6),
        Err(DecodeError::Length {
            count: 2,
            expected: 40,
            actual: 16
        })
    );

    // A Go peer's 8-byte advert with a stray count.
    let mut go_with_count = hex("313c64000032bf5b");
    go_with_count[3] = 1;
    assert_eq!(
        Advertisement::decode(&go_with_count, &v4),
        Err(DecodeError::Length {
            count: 1,
            expected: 12,
            actual: 8
        })
    );
}

#[test]
fn decode_rejects_zero_interval() {
    let endpoints = endpoints("192.168.10.2", "224.0.0.18");
    let mut bytes = hex("313c640000000000");
    let checksum = {
        let mut sum_input = vec![192, 168, 10, 2, 224, 0, 0, 18, 0, 112, 0, 8];
        sum_input.extend_from_slice(&bytes);
        internet_checksum(&sum_input)
    };
    bytes[6..8].copy_from_slice(&checksum.to_be_bytes());
    assert_eq!(
        Advertisement::decode(&bytes, &endpoints),
        Err(DecodeError::ZeroInterval)
    );
}

#[test]
fn encode_rejects_wrong_family() {
    let mut advert = Advertisement::new(51, 100, interval(100));
    advert.addresses.push("2001:db8::1".parse().unwrap());
    assert_eq!(
        advert.encode(&endpoints("192.168.200.1", "224.0.0.18")),
        Err(EncodeError::AddressFamily {
            address: "2001:db8::1".parse().unwrap(),
            family: "IPv4"
        })
    );
}

#[test]
fn encode_rejects_too_many_addresses() {
    let mut advert = Advertisement::new(51, 100, interval(100));
    advert.addresses = (0..256u32)
        .map(|i| IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    assert_eq!(
        advert.encode(&endpoints("192.168.200.1", "224.0.0.18")),
        Err(EncodeError::TooManyAddresses { count: 256 })
    );

    advert.addresses.pop();
    let endpoints = endpoints("192.168.200.1", "224.0.0.18");
    let bytes = advert.encode(&endpoints).unwrap();
    assert_eq!(bytes.len(), 8 + 255 * 4);
    assert_eq!(Advertisement::decode(&bytes, &endpoints).unwrap(), advert);
}

#[test]
fn endpoints_reject_mixed_families() {
    let source: IpAddr = "192.168.10.2".parse().unwrap();
    let destination: IpAddr = "ff02::12".parse().unwrap();
    let error = Endpoints::new(source, destination).unwrap_err();
    assert_eq!(error.source_address, source);
    assert_eq!(error.destination, destination);
}
