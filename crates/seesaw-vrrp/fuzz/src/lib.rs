//! The code path that the `decode` fuzz target exercises.
//!
//! crates/seesaw-vrrp/tests/fuzz_corpus.rs includes this file too, so the
//! stable test suite replays the committed corpus through exactly this
//! function without nightly Rust or libFuzzer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU8;

use seesaw_vrrp::{Advertisement, Datagram, Endpoints, ReceiveFilter};

/// The VRID that the receive filter accepts.
pub const FILTER_VRID: u8 = 100;

/// The receive filter of a node at 10.0.0.2 with VRID [`FILTER_VRID`].
pub fn receive_filter() -> ReceiveFilter {
    ReceiveFilter {
        vrid: NonZeroU8::new(FILTER_VRID).expect("FILTER_VRID is not zero"),
        local_address: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    }
}

/// The IPv4 and IPv6 endpoints whose pseudo-headers the payload checksum is
/// checked against: a node advertising to the multicast group.
pub fn payload_endpoints() -> [Endpoints; 2] {
    [
        Endpoints::V4 {
            source: Ipv4Addr::new(10, 0, 0, 1),
            destination: Ipv4Addr::new(224, 0, 0, 18),
        },
        Endpoints::V6 {
            source: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            destination: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
        },
    ]
}

/// Reads `data` as a whole IPv4 packet from a raw socket and passes it
/// through the receive filter, then reads it as a VRRP payload between the
/// IPv4 and the IPv6 endpoints of [`payload_endpoints`].
///
/// # Panics
///
/// Panics when a payload that decodes does not encode back to the same
/// bytes, checksum aside. RFC 1071 accepts both 0x0000 and 0xffff where the
/// sum makes 0x0000, and the encoder writes 0x0000.
pub fn decode(data: &[u8]) {
    if let Ok(datagram) = Datagram::from_ipv4_packet(data) {
        let _ = receive_filter().accept(&datagram);
    }

    for endpoints in &payload_endpoints() {
        if let Ok(advert) = Advertisement::decode(data, endpoints) {
            let encoded = advert.encode(endpoints).expect("a decoded advert encodes");
            assert_eq!(encoded[..6], data[..6]);
            assert_eq!(encoded[8..], data[8..]);
            assert_eq!(Advertisement::decode(&encoded, endpoints), Ok(advert));
        }
    }
}
