//! The advertisement interval and the timer arithmetic derived from it.

use std::fmt;
use std::num::NonZeroU16;
use std::time::Duration;

use crate::error::IntervalError;

/// Nanoseconds in one centisecond, the unit of the interval field on the wire.
const NANOS_PER_CENTI: u64 = 10_000_000;

/// An advertisement interval: a whole, non-zero number of centiseconds.
///
/// The range is 1 to 65,535 centiseconds (10 ms to 655.35 s), the full
/// 16-bit field. RFC 5798 section 5.2.7 gives the interval 12 bits (at most
/// 40.95 s) and reserves the top 4, but a Go Seesaw peer writes and reads all
/// 16 bits, so longer intervals keep their meaning between Seesaw nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AdvertInterval(NonZeroU16);

impl AdvertInterval {
    /// The `-master_advert_interval` default of seesaw_ha: 500 ms.
    pub const DEFAULT: AdvertInterval = AdvertInterval(NonZeroU16::new(50).unwrap());

    /// Returns the interval of `centis` centiseconds, or `None` for 0.
    pub const fn from_centis(centis: u16) -> Option<Self> {
        match NonZeroU16::new(centis) {
            Some(value) => Some(AdvertInterval(value)),
            None => None,
        }
    }

    /// Converts a configured duration, which must be a whole number of
    /// centiseconds from 10 ms to 655.35 s.
    ///
    /// The Go peer truncates the duration to centiseconds on the wire but
    /// times its own adverts with the exact value, so a value such as 505 ms
    /// would make the two sides disagree. Rejecting it keeps them equal.
    pub fn from_duration(duration: Duration) -> Result<Self, IntervalError> {
        let nanos = duration.as_nanos();
        let centis = nanos / u128::from(NANOS_PER_CENTI);
        if !nanos.is_multiple_of(u128::from(NANOS_PER_CENTI)) {
            return Err(IntervalError::NotWholeCentiseconds(duration));
        }
        u16::try_from(centis)
            .ok()
            .and_then(Self::from_centis)
            .ok_or(IntervalError::OutOfRange(duration))
    }

    /// Returns the interval in centiseconds, as written on the wire.
    pub const fn centis(self) -> u16 {
        self.0.get()
    }

    /// Returns the interval as a duration.
    pub const fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0.get() as u64 * NANOS_PER_CENTI)
    }
}

impl Default for AdvertInterval {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for AdvertInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_duration())
    }
}

/// Returns the skew time of RFC 5798 section 6.1: `((256 - priority) *
/// interval) / 256`.
///
/// The product is taken in whole nanoseconds and truncated, as the Go peer
/// does, so both sides compute the same deadline to the nanosecond. At
/// 500 ms this is 304.6875 ms for priority 100 and 498.046875 ms for
/// priority 1.
pub fn skew_time(priority: u8, master_interval: AdvertInterval) -> Duration {
    let weight = 256 - u64::from(priority);
    let interval_nanos = u64::from(master_interval.centis()) * NANOS_PER_CENTI;
    Duration::from_nanos(weight * interval_nanos / 256)
}

/// Returns the master-down interval of RFC 5798 section 6.1: three master
/// advertisement intervals plus the skew time.
///
/// At 500 ms this is 1.8046875 s for priority 100, 1.501953125 s for
/// priority 255 and 1.998046875 s for priority 1.
pub fn master_down_interval(priority: u8, master_interval: AdvertInterval) -> Duration {
    3 * master_interval.as_duration() + skew_time(priority, master_interval)
}
