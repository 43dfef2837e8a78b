//! The advert interval and the timer arithmetic of RFC 5798 section 6.1.

use std::time::Duration;

use seesaw_vrrp::{AdvertInterval, IntervalError, master_down_interval, skew_time};

fn interval(centis: u16) -> AdvertInterval {
    AdvertInterval::from_centis(centis).unwrap()
}

/// The values a Go seesaw_ha logged at start-up at the default 500 ms, and
/// the worked example for priority 100.
#[test]
fn default_interval_timers() {
    let cases = [
        (
            255,
            Duration::from_nanos(1_953_125),
            Duration::from_nanos(1_501_953_125),
        ),
        (
            100,
            Duration::from_nanos(304_687_500),
            Duration::from_nanos(1_804_687_500),
        ),
        (
            1,
            Duration::from_nanos(498_046_875),
            Duration::from_nanos(1_998_046_875),
        ),
    ];
    for (priority, skew, down) in cases {
        assert_eq!(
            skew_time(priority, AdvertInterval::DEFAULT),
            skew,
            "priority {priority}"
        );
        assert_eq!(
            master_down_interval(priority, AdvertInterval::DEFAULT),
            down,
            "priority {priority}"
        );
    }
}

#[test]
fn skew_truncates_to_nanoseconds() {
    // 255 × 10 ms / 256 is 9,960,937.5 ns. The half nanosecond is dropped,
    // as the Go peer's integer Duration arithmetic drops it.
    assert_eq!(skew_time(1, interval(1)), Duration::from_nanos(9_960_937));
    assert_eq!(skew_time(1, interval(3)), Duration::from_nanos(29_882_812));
}

#[test]
fn longest_interval() {
    let longest = interval(u16::MAX);
    assert_eq!(longest.as_duration(), Duration::from_millis(655_350));
    assert_eq!(
        master_down_interval(1, longest),
        Duration::from_millis(3 * 655_350) + Duration::from_nanos(652_790_039_062)
    );
}

#[test]
fn interval_from_duration() {
    assert_eq!(
        AdvertInterval::from_duration(Duration::from_millis(500)),
        Ok(AdvertInterval::DEFAULT)
    );
    assert_eq!(
        AdvertInterval::from_duration(Duration::from_secs(1)).map(AdvertInterval::centis),
        Ok(100)
    );
    assert_eq!(
        AdvertInterval::from_duration(Duration::from_millis(655_350)).map(AdvertInterval::centis),
        Ok(u16::MAX)
    );
}

#[test]
fn interval_from_duration_errors() {
    for duration in [Duration::from_millis(505), Duration::from_nanos(1)] {
        assert_eq!(
            AdvertInterval::from_duration(duration),
            Err(IntervalError::NotWholeCentiseconds(duration))
        );
    }
    for duration in [Duration::ZERO, Duration::from_millis(655_360)] {
        assert_eq!(
            AdvertInterval::from_duration(duration),
            Err(IntervalError::OutOfRange(duration))
        );
    }
    assert_eq!(
        IntervalError::NotWholeCentiseconds(Duration::from_millis(505)).to_string(),
        "invalid advertisement interval 505ms: it must be a whole number of centiseconds (10 ms steps)"
    );
}

#[test]
fn interval_zero_is_none() {
    assert_eq!(AdvertInterval::from_centis(0), None);
    assert_eq!(AdvertInterval::default(), interval(50));
    assert_eq!(AdvertInterval::DEFAULT.to_string(), "500ms");
}
