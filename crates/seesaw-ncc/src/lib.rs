//! The Seesaw network control centre: the only process that changes the
//! kernel's network state (IPVS, links, addresses, routes, policy rules,
//! ARP, iptables and sysctls), on behalf of the engine.

pub mod arp;
pub mod bgp;
pub mod convert;
pub mod error;
pub mod iptables;
pub mod net;
pub mod ops;
pub mod service;
pub mod sysctl;
pub mod vips;
pub mod vserver_rules;
