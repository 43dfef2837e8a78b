//! Layout helpers of the text output: labels padded to fixed columns,
//! durations and times written as Go writes them, so that the output
//! matches the original shell's column for column.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The column (0-based) where values of `Label: value` lines start is
/// `VALUE_WIDTH + 1`.
pub const VALUE_WIDTH: usize = 22;
/// The indent of labels under a heading.
pub const SUB_INDENT: usize = 2;

/// Returns `text` indented by `indent` spaces and padded with spaces to
/// `width` characters in all. A text already too long is not cut.
pub fn label(text: &str, indent: usize, width: usize) -> String {
    let pad = width.saturating_sub(indent + text.len());
    format!("{:indent$}{text}{:pad$}", "", "")
}

/// Appends one `  Label:  value` line, the value at column 23.
pub fn push_value(out: &mut String, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{} {value}", label(name, SUB_INDENT, VALUE_WIDTH));
}

/// Formats `enabled, healthy, active` and its variants, or `disabled`.
pub fn status_summary(enabled: bool, healthy: bool, active: bool) -> String {
    if !enabled {
        return "disabled".to_string();
    }
    let health = if healthy { "healthy" } else { "unhealthy" };
    let activity = if active { "active" } else { "inactive" };
    format!("enabled, {health}, {activity}")
}

/// Formats a duration in milliseconds as Go's `time.Duration.String`
/// does: `49s`, `1h2m3s`, `26h3m0s`, `1.5s`, `250ms`, `0s`.
pub fn go_duration(millis: u64) -> String {
    if millis == 0 {
        return "0s".to_string();
    }
    if millis < 1000 {
        return format!("{millis}ms");
    }

    let hours = millis / 3_600_000;
    let minutes = millis / 60_000 % 60;
    let seconds = millis / 1000 % 60;
    let fraction = millis % 1000;

    let mut text = String::new();
    if hours > 0 {
        let _ = write!(text, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(text, "{minutes}m");
    }
    let _ = write!(text, "{seconds}");
    if fraction > 0 {
        let digits = format!("{fraction:03}");
        let _ = write!(text, ".{}", digits.trim_end_matches('0'));
    }
    text.push('s');
    text
}

/// Formats a Unix time in milliseconds as Go's layout
/// `Jan 2 15:04:05 MST` in `zone`. Zero, which the engine sends for
/// "never", prints as Go's zero time: `Jan 1 00:00:00 UTC`.
pub fn go_time(millis: i64, zone: &TimeZone) -> String {
    const ZERO: &str = "Jan 1 00:00:00 UTC";
    if millis == 0 {
        return ZERO.to_string();
    }
    match Timestamp::from_millisecond(millis) {
        Ok(time) => time
            .to_zoned_datetime(zone.clone())
            .strftime("%b %-d %H:%M:%S %Z")
            .to_string(),
        // Out of jiff's range, which is years -9999 to 9999.
        Err(_) => ZERO.to_string(),
    }
}

/// Formats a Unix time in milliseconds as RFC 3339 in UTC for JSON, or
/// `None` for zero, which means "never".
pub fn rfc3339(millis: i64) -> Option<String> {
    if millis == 0 {
        return None;
    }
    Timestamp::from_millisecond(millis)
        .ok()
        .map(|time| time.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_pads_to_width() {
        assert_eq!(label("State:", 2, 22), "  State:              ");
        assert_eq!(label("IPv4 TCP/443", 4, 18), "    IPv4 TCP/443  ");
        assert_eq!(
            label("Advertisements Sent:", 2, 22),
            "  Advertisements Sent:"
        );
        assert_eq!(label("a-very-long-attribute-name", 4, 18).len(), 30);
    }

    #[test]
    fn durations_as_go_prints_them() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(250), "250ms");
        assert_eq!(go_duration(49_000), "49s");
        assert_eq!(go_duration(1_500), "1.5s");
        assert_eq!(go_duration(60_000), "1m0s");
        assert_eq!(go_duration(3_723_000), "1h2m3s");
        assert_eq!(go_duration(93_780_000), "26h3m0s");
        assert_eq!(go_duration(3_600_010), "1h0m0.01s");
    }

    #[test]
    fn times_as_go_prints_them() {
        let utc = TimeZone::UTC;
        // 2026-12-04T20:20:20Z
        assert_eq!(go_time(1_796_415_620_000, &utc), "Dec 4 20:20:20 UTC");
        assert_eq!(go_time(0, &utc), "Jan 1 00:00:00 UTC");
    }

    #[test]
    fn times_in_named_zone() {
        let sydney = TimeZone::get("Australia/Sydney");
        let Ok(sydney) = sydney else {
            println!("SKIPPED: no tz database entry for Australia/Sydney");
            return;
        };
        assert_eq!(go_time(1_796_415_620_000, &sydney), "Dec 5 07:20:20 AEDT");
    }

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(
            rfc3339(1_796_415_620_000).as_deref(),
            Some("2026-12-04T20:20:20Z")
        );
        assert_eq!(rfc3339(0), None);
    }
}
