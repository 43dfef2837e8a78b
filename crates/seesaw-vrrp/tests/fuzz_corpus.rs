//! Replays the committed corpus and regression inputs of the `decode` fuzz
//! target through the same function as the cargo-fuzz target, and runs a
//! short property test through it. Stable Rust runs these, so CI needs
//! neither nightly nor libFuzzer. docs/fuzzing.md describes the target.
//!
//! The named seeds of the corpus are built here with the crate's encoder.
//! `SEESAW_WRITE_FUZZ_SEEDS=1 cargo test -p seesaw-vrrp --test fuzz_corpus`
//! rewrites them after a change of the wire format.

#[path = "../fuzz/src/lib.rs"]
mod fuzz_paths;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use seesaw_vrrp::{AdvertInterval, Advertisement, Datagram, Endpoints, internet_checksum};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Returns the files of fuzz/corpus/decode and fuzz/regressions/decode.
fn committed_inputs() -> Vec<PathBuf> {
    // A missing directory contributes no inputs.
    let mut files: Vec<PathBuf> = ["corpus", "regressions"]
        .iter()
        .filter_map(|kind| std::fs::read_dir(fuzz_dir().join(kind).join("decode")).ok())
        .flatten()
        .map(|entry| entry.expect("list a corpus directory").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs the target on `data` and names the input if it panics.
fn replay(data: &[u8], name: &str) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| fuzz_paths::decode(data))) {
        eprintln!("the decode target panicked on {name}");
        resume_unwind(panic);
    }
}

#[test]
fn corpus_replays_without_panic() {
    let files = committed_inputs();
    assert!(
        files.len() >= seeds().len(),
        "fuzz/corpus/decode has {} files; the committed corpus is missing",
        files.len()
    );
    for path in &files {
        let data = std::fs::read(path).expect("read a corpus file");
        replay(&data, &path.display().to_string());
    }
    println!("decode: replayed {} files", files.len());
}

/// Parses the hex of a captured packet.
fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Returns the first whole IP packet of the Go pair's capture that `source`
/// sent with `priority`.
fn go_capture(source: &str, priority: u8) -> Vec<u8> {
    let text = include_str!("fixtures/go_seesaw_adverts.txt");
    let line = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&source) && fields.get(5) == Some(&priority.to_string().as_str())
        })
        .unwrap_or_else(|| panic!("the capture has no advert from {source} priority {priority}"));
    let (_, packet) = line.split_once('|').expect("a capture line has a packet");
    hex(packet.trim())
}

fn v4_endpoints() -> Endpoints {
    fuzz_paths::payload_endpoints()[0]
}

fn v6_endpoints() -> Endpoints {
    fuzz_paths::payload_endpoints()[1]
}

/// Encodes an advert for `endpoints` with `addresses` and an interval in
/// centiseconds.
fn payload(
    endpoints: Endpoints,
    vrid: u8,
    priority: u8,
    centis: u16,
    addresses: &[IpAddr],
) -> Vec<u8> {
    let mut advert = Advertisement::new(
        vrid,
        priority,
        AdvertInterval::from_centis(centis).expect("a non-zero interval"),
    );
    advert.addresses = addresses.to_vec();
    advert.encode(&endpoints).expect("the seed advert encodes")
}

/// Builds a whole IPv4 packet of protocol 112 around `vrrp`, with TTL 255,
/// `options` after the fixed header and a correct header checksum.
fn ipv4_packet(source: Ipv4Addr, destination: Ipv4Addr, options: &[u8], vrrp: &[u8]) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0, "IPv4 options fill 32-bit words");
    let header_len = 20 + options.len();
    let total_len = u16::try_from(header_len + vrrp.len()).expect("a small packet");
    let mut packet = vec![0x40 | (header_len / 4) as u8, 0];
    packet.extend_from_slice(&total_len.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0x40, 0, 255, 112, 0, 0]);
    packet.extend_from_slice(&source.octets());
    packet.extend_from_slice(&destination.octets());
    packet.extend_from_slice(options);
    let checksum = internet_checksum(&packet);
    packet[10..12].copy_from_slice(&checksum.to_be_bytes());
    packet.extend_from_slice(vrrp);
    packet
}

/// Returns the named seeds of fuzz/corpus/decode: adverts of a Go pair as captured,
/// adverts in the form seesaw_ha sends, keepalived-style adverts with an
/// address list, and IPv6 payloads.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let vrid = fuzz_paths::FILTER_VRID;
    let group = Ipv4Addr::new(224, 0, 0, 18);
    let peer = Ipv4Addr::new(10, 0, 0, 1);
    let local = Ipv4Addr::new(10, 0, 0, 2);
    let v4_group = Endpoints::V4 {
        source: peer,
        destination: group,
    };
    let v4_unicast = Endpoints::V4 {
        source: peer,
        destination: local,
    };
    let v4_addresses: Vec<IpAddr> = vec![
        Ipv4Addr::new(192, 0, 2, 10).into(),
        Ipv4Addr::new(192, 0, 2, 11).into(),
        Ipv4Addr::new(192, 0, 2, 12).into(),
    ];
    let v6_addresses: Vec<IpAddr> = vec![
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10).into(),
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11).into(),
    ];
    let nop_options = [1, 1, 1, 1];

    vec![
        ("go-master-ipv4-packet", go_capture("100.115.222.130", 255)),
        ("go-backup-ipv4-packet", go_capture("100.115.222.131", 1)),
        ("go-step-down-ipv4-packet", go_capture("100.115.222.130", 0)),
        (
            "seesaw-group-ipv4-packet",
            ipv4_packet(peer, group, &[], &payload(v4_group, vrid, 200, 50, &[])),
        ),
        (
            "seesaw-unicast-ipv4-packet",
            ipv4_packet(peer, local, &[], &payload(v4_unicast, vrid, 100, 3, &[])),
        ),
        (
            "seesaw-ipv4-packet-with-options",
            ipv4_packet(
                peer,
                group,
                &nop_options,
                &payload(v4_group, vrid, 200, 50, &[]),
            ),
        ),
        (
            "keepalived-ipv4-packet",
            ipv4_packet(
                peer,
                group,
                &[],
                &payload(v4_group, vrid, 150, 100, &v4_addresses[..2]),
            ),
        ),
        (
            "seesaw-ipv4-payload",
            payload(v4_endpoints(), vrid, 100, 50, &[]),
        ),
        (
            "seesaw-ipv4-step-down-payload",
            payload(v4_endpoints(), vrid, 0, 50, &[]),
        ),
        (
            "seesaw-ipv4-reserved-interval-bits-payload",
            payload(v4_endpoints(), vrid, 255, 0xffff, &[]),
        ),
        (
            "keepalived-ipv4-payload",
            payload(v4_endpoints(), vrid, 150, 100, &v4_addresses),
        ),
        (
            "seesaw-ipv6-payload",
            payload(v6_endpoints(), vrid, 100, 50, &[]),
        ),
        (
            "seesaw-ipv6-step-down-payload",
            payload(v6_endpoints(), vrid, 0, 50, &[]),
        ),
        (
            "keepalived-ipv6-payload",
            payload(v6_endpoints(), vrid, 150, 100, &v6_addresses),
        ),
    ]
}

#[test]
fn seeds_are_committed() {
    let dir = fuzz_dir().join("corpus/decode");
    let write = std::env::var_os("SEESAW_WRITE_FUZZ_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).expect("create fuzz/corpus/decode");
    }
    for (name, bytes) in seeds() {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &bytes).expect("write a seed");
        }
        let committed = std::fs::read(&path).unwrap_or_else(|error| {
            panic!(
                "failed to read the seed {}: {error}; write the seeds with SEESAW_WRITE_FUZZ_SEEDS=1",
                path.display()
            )
        });
        assert_eq!(
            committed, bytes,
            "{name} differs from the seed this test builds; rewrite the seeds with SEESAW_WRITE_FUZZ_SEEDS=1"
        );
    }
}

/// The seeds reach past the first checks: every IPv4 packet splits, the
/// packets for the filter's VRID pass it, and every payload decodes.
#[test]
fn seeds_pass_the_decoder() {
    let filter = fuzz_paths::receive_filter();
    for (name, bytes) in seeds() {
        if name.ends_with("-ipv4-packet") || name.ends_with("-ipv4-packet-with-options") {
            let datagram = Datagram::from_ipv4_packet(&bytes)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            let accepted = filter.accept(&datagram);
            if name.starts_with("go-") {
                // The Go pair used VRID 128, so only the VRID check fails.
                assert!(
                    matches!(
                        accepted,
                        Err(seesaw_vrrp::ReceiveError::Vrid { received: 128, .. })
                    ),
                    "{name}: {accepted:?}"
                );
            } else {
                assert!(accepted.is_ok(), "{name}: {accepted:?}");
            }
        } else {
            let endpoints = if name.contains("-ipv6-") {
                v6_endpoints()
            } else {
                v4_endpoints()
            };
            let decoded = Advertisement::decode(&bytes, &endpoints);
            assert!(decoded.is_ok(), "{name}: {decoded:?}");
        }
    }
}

/// Returns a seed with one byte changed, cut short or extended, as a cheap
/// stand-in for libFuzzer's mutations.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    let count = seeds().len();
    (0..count, any::<usize>(), any::<u8>(), 0..3u8).prop_map(
        |(index, position, value, mutation)| {
            let (_, mut bytes) = seeds().swap_remove(index);
            let at = position % bytes.len();
            match mutation {
                0 => bytes[at] = value,
                1 => bytes.truncate(at),
                _ => bytes.extend(std::iter::repeat_n(value, at % 17)),
            }
            bytes
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..96)) {
        fuzz_paths::decode(&data);
    }

    #[test]
    fn mutated_seeds_never_panic(data in mutated_seed()) {
        fuzz_paths::decode(&data);
    }
}
