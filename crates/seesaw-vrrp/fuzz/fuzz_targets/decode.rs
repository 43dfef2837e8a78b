//! Feeds arbitrary bytes to the receive path: as a whole IPv4 packet through
//! the receive filter, and as a VRRP payload over IPv4 and IPv6. No input
//! may panic, and what decodes must encode back to the same bytes. Run with
//! `cargo +nightly fuzz run decode` from crates/seesaw-vrrp; docs/fuzzing.md
//! has the options.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    seesaw_vrrp_fuzz::decode(data);
});
