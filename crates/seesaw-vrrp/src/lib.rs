//! The VRRPv3 advertisement codec and the HA state machine of seesaw_ha,
//! with no I/O.
//!
//! - [`packet`] encodes and decodes RFC 5798 advertisements and filters
//!   received packets as a Go Seesaw peer does.
//! - [`instance`] is the state machine: [`Instance::handle`] takes an
//!   [`Event`] and returns the [`Action`]s for the daemon to carry out.
//!   Timers are actions and events, so the machine needs no clock.
//! - [`interval`] defines the advert interval and the timer arithmetic.
#![forbid(unsafe_code)]

pub mod error;
pub mod instance;
pub mod interval;
pub mod packet;

pub use error::{
    DecodeError, EncodeError, FamilyMismatch, IntervalError, Ipv4HeaderError, ReceiveError,
};
pub use instance::{Action, Config, Counters, Event, HaState, Instance, Timer};
pub use interval::{AdvertInterval, master_down_interval, skew_time};
pub use packet::{Advertisement, Datagram, Endpoints, ReceiveFilter, internet_checksum};
