//! The VRRPv3 advertisement codec of seesaw_ha, with no I/O.
//!
//! - [`packet`] encodes and decodes RFC 5798 advertisements and filters
//!   received packets as a Go Seesaw peer does.
//! - [`interval`] defines the advert interval and the timer arithmetic.
#![forbid(unsafe_code)]

pub mod error;
pub mod interval;
pub mod packet;

pub use error::{
    DecodeError, EncodeError, FamilyMismatch, IntervalError, Ipv4HeaderError, ReceiveError,
};
pub use interval::{AdvertInterval, master_down_interval, skew_time};
pub use packet::{Advertisement, Datagram, Endpoints, ReceiveFilter, internet_checksum};
