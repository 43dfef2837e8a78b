//! Properties of the codec over random input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU8;

use proptest::prelude::*;
use seesaw_vrrp::{
    AdvertInterval, Advertisement, Datagram, DecodeError, Endpoints, ReceiveFilter,
    internet_checksum,
};

fn endpoints() -> impl Strategy<Value = Endpoints> {
    prop_oneof![
        (any::<u32>(), any::<u32>()).prop_map(|(source, destination)| Endpoints::V4 {
            source: Ipv4Addr::from(source),
            destination: Ipv4Addr::from(destination),
        }),
        (any::<u128>(), any::<u128>()).prop_map(|(source, destination)| Endpoints::V6 {
            source: Ipv6Addr::from(source),
            destination: Ipv6Addr::from(destination),
        }),
    ]
}

/// Generates advertisements with addresses of the family of `endpoints`.
fn advert_for(endpoints: Endpoints) -> impl Strategy<Value = Advertisement> {
    let address = match endpoints {
        Endpoints::V4 { .. } => any::<u32>()
            .prop_map(|a| IpAddr::from(Ipv4Addr::from(a)))
            .boxed(),
        Endpoints::V6 { .. } => any::<u128>()
            .prop_map(|a| IpAddr::from(Ipv6Addr::from(a)))
            .boxed(),
    };
    (
        any::<u8>(),
        any::<u8>(),
        1..=u16::MAX,
        prop::collection::vec(address, 0..8),
    )
        .prop_map(|(vrid, priority, centis, addresses)| Advertisement {
            vrid,
            priority,
            max_advert_interval: AdvertInterval::from_centis(centis).unwrap(),
            addresses,
        })
}

/// Computes the checksum with the pseudo-header laid out by hand, apart
/// from the crate's own code.
fn checksum_with_pseudo_header(endpoints: &Endpoints, packet: &[u8]) -> u16 {
    let mut data = Vec::new();
    match endpoints {
        Endpoints::V4 {
            source,
            destination,
        } => {
            data.extend_from_slice(&source.octets());
            data.extend_from_slice(&destination.octets());
            data.extend_from_slice(&[0, 112]);
            data.extend_from_slice(&(packet.len() as u16).to_be_bytes());
        }
        Endpoints::V6 {
            source,
            destination,
        } => {
            data.extend_from_slice(&source.octets());
            data.extend_from_slice(&destination.octets());
            data.extend_from_slice(&(packet.len() as u32).to_be_bytes());
            data.extend_from_slice(&[0, 0, 0, 112]);
        }
    }
    data.extend_from_slice(packet);
    internet_checksum(&data)
}

proptest! {
    #[test]
    fn decode_never_panics(payload in prop::collection::vec(any::<u8>(), 0..128), endpoints in endpoints()) {
        let _ = Advertisement::decode(&payload, &endpoints);
    }

    #[test]
    fn ipv4_receive_never_panics(packet in prop::collection::vec(any::<u8>(), 0..128), local in any::<u32>()) {
        let filter = ReceiveFilter {
            vrid: NonZeroU8::new(1).unwrap(),
            local_address: IpAddr::from(Ipv4Addr::from(local)),
        };
        if let Ok(datagram) = Datagram::from_ipv4_packet(&packet) {
            prop_assert!(datagram.payload.len() <= packet.len());
            let _ = filter.accept(&datagram);
        }
    }

    #[test]
    fn round_trip((endpoints, advert) in endpoints().prop_flat_map(|e| (Just(e), advert_for(e)))) {
        let bytes = advert.encode(&endpoints).unwrap();
        prop_assert_eq!(Advertisement::decode(&bytes, &endpoints), Ok(advert));
    }

    /// A valid packet built from random bytes decodes and encodes back to
    /// the same bytes, so decoding loses or normalises nothing.
    #[test]
    fn random_valid_packet_reencodes(
        vrid in any::<u8>(),
        priority in any::<u8>(),
        centis in any::<u16>(),
        count in 0u8..8,
        address_bytes in prop::collection::vec(any::<u8>(), 8 * 16),
        endpoints in endpoints(),
    ) {
        let width = match endpoints {
            Endpoints::V4 { .. } => 4,
            Endpoints::V6 { .. } => 16,
        };
        let mut packet = vec![0x31, vrid, priority, count];
        packet.extend_from_slice(&centis.to_be_bytes());
        packet.extend_from_slice(&[0, 0]);
        packet.extend_from_slice(&address_bytes[..usize::from(count) * width]);
        let checksum = checksum_with_pseudo_header(&endpoints, &packet);
        packet[6..8].copy_from_slice(&checksum.to_be_bytes());

        match Advertisement::decode(&packet, &endpoints) {
            Ok(advert) => prop_assert_eq!(advert.encode(&endpoints).unwrap(), packet),
            Err(error) => {
                prop_assert_eq!(error, DecodeError::ZeroInterval);
                prop_assert_eq!(centis, 0);
            }
        }
    }

    /// Any change to one byte of a valid advert is rejected: the checksum
    /// catches every single-byte error.
    #[test]
    fn single_byte_corruption_rejected(
        (endpoints, advert) in endpoints().prop_flat_map(|e| (Just(e), advert_for(e))),
        index in any::<prop::sample::Index>(),
        flip in 1..=u8::MAX,
    ) {
        let mut bytes = advert.encode(&endpoints).unwrap();
        let position = index.index(bytes.len());
        bytes[position] ^= flip;
        prop_assert!(Advertisement::decode(&bytes, &endpoints).is_err());
    }

    #[test]
    fn short_payload_is_truncated(payload in prop::collection::vec(any::<u8>(), 0..8), endpoints in endpoints()) {
        prop_assert_eq!(
            Advertisement::decode(&payload, &endpoints),
            Err(DecodeError::Truncated { len: payload.len() })
        );
    }
}
