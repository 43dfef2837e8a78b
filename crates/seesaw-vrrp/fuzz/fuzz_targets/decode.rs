//! Feeds arbitrary bytes to the receive path. Run with
//! `cargo +nightly fuzz run decode` from crates/seesaw-vrrp.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU8;

use libfuzzer_sys::fuzz_target;
use seesaw_vrrp::{Advertisement, Datagram, Endpoints, ReceiveFilter};

fuzz_target!(|data: &[u8]| {
    // The whole input as an IPv4 packet read from a raw socket.
    let filter = ReceiveFilter {
        vrid: NonZeroU8::new(100).unwrap(),
        local_address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    };
    if let Ok(datagram) = Datagram::from_ipv4_packet(data) {
        let _ = filter.accept(&datagram);
    }

    // The whole input as a VRRP payload between IPv4 and IPv6 endpoints.
    // What decodes must encode back to the same bytes, but for the checksum:
    // RFC 1071 accepts both 0x0000 and 0xffff where the sum makes 0x0000,
    // and the encoder writes 0x0000.
    let endpoints = [
        Endpoints::V4 {
            source: Ipv4Addr::new(10, 0, 0, 1),
            destination: Ipv4Addr::new(224, 0, 0, 18),
        },
        Endpoints::V6 {
            source: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            destination: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
        },
    ];
    for endpoints in &endpoints {
        if let Ok(advert) = Advertisement::decode(data, endpoints) {
            let encoded = advert.encode(endpoints).expect("a decoded advert encodes");
            assert_eq!(encoded[..6], data[..6]);
            assert_eq!(encoded[8..], data[8..]);
            assert_eq!(Advertisement::decode(&encoded, endpoints), Ok(advert));
        }
    }
});
