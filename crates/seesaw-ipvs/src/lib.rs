//! IPVS over generic netlink, in pure Rust.
//!
//! Two layers, as in the rust-netlink crates:
//!
//! - Message types that do no I/O. [`IpvsMessage`] (a command and its
//!   attributes) implements `GenlFamily`, `Emitable` and
//!   `ParseableParametrized` from netlink-packet-generic and
//!   netlink-packet-core. [`nla`] has one enum variant per attribute.
//!   [`Service`], [`Destination`], [`Info`] and [`Timeouts`] convert to and
//!   from attribute lists.
//! - [`Ipvs`], an async handle over one netlink socket that resolves the
//!   `IPVS` family once and offers every operation, plus [`Ipvs::apply`],
//!   which pipelines many changes per round trip.
//!
//! The wire format follows the Linux UAPI header `include/uapi/linux/ip_vs.h`
//! and the messages of ipvsadm 1.31; the tests compare our bytes with
//! captures of ipvsadm and of the kernel.

#![forbid(unsafe_code)]

pub mod constants;
mod destination;
mod error;
mod handle;
mod info;
mod message;
pub mod nla;
mod request;
mod service;
mod stats;

pub use destination::{Destination, ForwardMethod, Tunnel, TunnelType};
pub use error::{Error, Result};
pub use handle::{BatchFailure, BatchReport, DEFAULT_BATCH_WINDOW, Ipvs};
pub use info::{Info, Timeouts, Version};
pub use message::{IpvsCommand, IpvsMessage};
pub use request::Request;
pub use service::{AddressFamily, Protocol, Scheduler, Service, ServiceFlags, ServiceKey};
pub use stats::Stats;
