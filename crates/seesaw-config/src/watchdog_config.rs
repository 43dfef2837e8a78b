//! The watchdog configuration, `/etc/seesaw/watchdog.cfg`: the services the
//! watchdog starts, keeps running and stops in dependency order.
//!
//! Every section except `default` defines one service named after the
//! section. The options and the goconf reading rules are those of Seesaw
//! v2's watchdog. Where it would exit or deadlock, the loader rejects the
//! file with a positioned error instead.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::{Diagnostic, Position, Rejected};
use crate::goconf::{self, DEFAULT_SECTION, Findings, Found, Lookup, parse_int};

const SERVICE_OPTIONS: &[&str] = &[
    "binary",
    "args",
    "dependency",
    "priority",
    "term_timeout",
    "user",
    "group",
];

/// How long the watchdog waits after SIGTERM before it sends SIGKILL, when
/// `term_timeout` is not set.
pub const DEFAULT_TERM_TIMEOUT: Duration = Duration::from_secs(5);

/// The range of process priorities (nice values) Linux accepts.
const MIN_PRIORITY: i32 = -20;
const MAX_PRIORITY: i32 = 19;

/// A typed `watchdog.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// The file it was read from, for messages.
    pub path: PathBuf,
    /// The services in file order.
    pub services: Vec<ServiceConfig>,
}

/// One service: a section of `watchdog.cfg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The lower-cased section name.
    pub name: String,
    /// The position of the section's first header.
    pub position: Position,
    /// `binary`: the absolute path of the program.
    pub binary: PathBuf,
    /// `args`, split at white space. Quotes have no special meaning.
    pub args: Vec<String>,
    /// `dependency`: the service that must have started before this one,
    /// and must stop after it.
    pub dependency: Option<String>,
    /// `priority`: the nice value, from -20 (highest) to 19, default 0.
    pub priority: i32,
    /// `term_timeout`: how long to wait after SIGTERM before SIGKILL.
    pub term_timeout: Duration,
    /// `user`: the user to run as, looked up when the service starts.
    /// `None` runs it as root.
    pub user: Option<String>,
}

impl WatchdogConfig {
    /// Loads `path`. A missing or unreadable file is one error naming the
    /// file and the OS error.
    pub fn load(path: impl AsRef<Path>) -> Result<(WatchdogConfig, Vec<Diagnostic>), Rejected> {
        goconf::load_file(path.as_ref(), |path, text| Self::parse(path, text))
    }

    /// Parses `text`, naming `path` in messages. Returns the configuration
    /// and its warnings, or every finding (errors and warnings, in file
    /// order) when any is an error.
    pub fn parse(
        path: impl AsRef<Path>,
        text: &str,
    ) -> Result<(WatchdogConfig, Vec<Diagnostic>), Rejected> {
        let path = path.as_ref();
        let mut findings = Findings::new(path, text);
        let names: Vec<(String, Position)> = findings
            .conf
            .sections()
            .iter()
            .filter(|s| s.name() != DEFAULT_SECTION)
            .filter_map(|s| Some((s.name().to_string(), *s.headers().first()?)))
            .collect();
        for (name, _) in &names {
            findings.warn_unknown_options(name, SERVICE_OPTIONS);
        }
        findings.warn_replaced_options();
        if findings.has_errors() {
            // goconf rejects the whole file, so the values mean nothing yet.
            return Err(findings.reject());
        }

        let mut services = Vec::new();
        let mut failed = false;
        for (name, position) in &names {
            match read_service(&mut findings, name, *position) {
                Some(service) => services.push(service),
                None => failed = true,
            }
        }
        if !failed {
            check_dependencies(&mut findings, &services);
        }
        if names.is_empty() {
            findings.warning(
                None,
                "no service is defined, so the watchdog has nothing to run: add a \
                 [<service>] section with binary = <path>",
            );
        }
        // Service options belong to a service section, whose name the
        // loader cannot guess, so the hint names no section.
        findings.warn_unused_defaults(|_| None);
        findings.finish(WatchdogConfig {
            path: path.to_path_buf(),
            services,
        })
    }
}

/// Looks an option up, taking an empty value as unset as Seesaw's watchdog
/// does. The outer `None` means that an error was recorded.
fn lookup(findings: &mut Findings, service: &str, key: &str) -> Option<Option<Found>> {
    match findings.lookup(service, key) {
        Lookup::Found(found) if found.value.is_empty() => Some(None),
        Lookup::Found(found) => Some(Some(found)),
        Lookup::Absent => Some(None),
        Lookup::Invalid => None,
    }
}

/// Reads one service, recording every error. Returns `None` after an error.
fn read_service(findings: &mut Findings, name: &str, position: Position) -> Option<ServiceConfig> {
    if name.is_empty() {
        findings.error(
            Some(position),
            "the section header [] has no name: name the service, such as [engine]",
        );
        return None;
    }
    let binary = read_binary(findings, name, position);
    let args = lookup(findings, name, "args")
        .map(|found| found.map_or_else(Vec::new, |f| split_args(&f.value)));
    let dependency = lookup(findings, name, "dependency").map(|found| found.map(|f| f.value));
    let priority = lookup(findings, name, "priority")
        .and_then(|found| found.map_or(Some(0), |f| read_priority(findings, &f)));
    let term_timeout = lookup(findings, name, "term_timeout").and_then(|found| {
        found.map_or(Some(DEFAULT_TERM_TIMEOUT), |f| {
            read_term_timeout(findings, &f)
        })
    });
    let user = lookup(findings, name, "user").map(|found| found.map(|f| f.value));
    if let Some(Some(group)) = lookup(findings, name, "group") {
        let message = format!(
            "{} is ignored because the watchdog cannot set a service's group: the \
             service runs with the primary group of its user (root without user), so \
             remove the line",
            group.describe()
        );
        findings.warning(Some(group.position), message);
    }
    Some(ServiceConfig {
        name: name.to_string(),
        position,
        binary: binary?,
        args: args?,
        dependency: dependency?,
        priority: priority?,
        term_timeout: term_timeout?,
        user: user?,
    })
}

fn read_binary(findings: &mut Findings, name: &str, position: Position) -> Option<PathBuf> {
    let example = format!("/usr/local/seesaw/seesaw_{name}");
    match lookup(findings, name, "binary")? {
        Some(found) if found.value.starts_with('/') => Some(PathBuf::from(found.value)),
        Some(found) => {
            findings.invalid(
                &found,
                format!("is not an absolute path: give the full path, such as {example}"),
            );
            None
        }
        None => {
            findings.error(
                Some(position),
                format!("service \"{name}\" has no binary: add binary = {example}"),
            );
            None
        }
    }
}

/// Splits `args` at white space as Go's `strings.Fields` does.
fn split_args(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_string).collect()
}

fn read_priority(findings: &mut Findings, found: &Found) -> Option<i32> {
    let range = format!("use a value from {MIN_PRIORITY} (highest priority) to {MAX_PRIORITY}");
    match parse_int(&found.value) {
        Some(value) if (i64::from(MIN_PRIORITY)..=i64::from(MAX_PRIORITY)).contains(&value) => {
            i32::try_from(value).ok()
        }
        Some(_) => {
            findings.invalid(found, format!("is out of range: {range}"));
            None
        }
        None => {
            findings.invalid(found, format!("is not a decimal integer: {range}"));
            None
        }
    }
}

fn read_term_timeout(findings: &mut Findings, found: &Found) -> Option<Duration> {
    match parse_go_duration(&found.value) {
        Ok(nanos) if nanos >= 0 => Some(Duration::from_nanos(nanos.unsigned_abs())),
        Ok(_) => {
            findings.invalid(found, "is negative: use a positive duration such as 10s");
            None
        }
        Err(error) => {
            findings.invalid(found, format!("is not a valid duration: {error}"));
            None
        }
    }
}

/// Checks that each dependency names a defined service and that no
/// dependencies form a cycle, which would make the watchdog wait forever.
fn check_dependencies(findings: &mut Findings, services: &[ServiceConfig]) {
    let index_of = |name: &str| services.iter().position(|s| s.name == name);
    let mut next: Vec<Option<usize>> = Vec::with_capacity(services.len());
    for service in services {
        let Some(dependency) = &service.dependency else {
            next.push(None);
            continue;
        };
        let target = index_of(dependency);
        if target.is_none() {
            let position = findings
                .conf
                .raw(&service.name, "dependency")
                .map(|e| e.position);
            let hint = match services
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(dependency))
            {
                Some(close) => format!("service names are lower case, so write {}", close.name),
                None => format!(
                    "define a [{dependency}] section or remove the dependency from [{}]",
                    service.name
                ),
            };
            findings.error(
                position,
                format!(
                    "dependency = {dependency} in [{}] names no defined service: {hint}",
                    service.name
                ),
            );
        }
        next.push(target);
    }

    // Each service has at most one dependency, so following the links from
    // each service either ends or runs into a cycle. A cycle is reported
    // once, at the first of its services in file order.
    let mut reported = vec![false; services.len()];
    for start in 0..services.len() {
        let mut path = vec![start];
        let mut current = start;
        while let Some(following) = next[current] {
            if let Some(cycle_start) = path.iter().position(|&i| i == following) {
                let cycle = &path[cycle_start..];
                if !cycle.iter().any(|&i| reported[i]) {
                    report_cycle(findings, services, cycle);
                }
                for &i in cycle {
                    reported[i] = true;
                }
                break;
            }
            path.push(following);
            current = following;
        }
    }
}

fn report_cycle(findings: &mut Findings, services: &[ServiceConfig], cycle: &[usize]) {
    let first = *cycle.iter().min().expect("a cycle has a service");
    let rotation = cycle.iter().position(|&i| i == first).unwrap_or(0);
    let mut names: Vec<&str> = cycle[rotation..]
        .iter()
        .chain(&cycle[..rotation])
        .map(|&i| services[i].name.as_str())
        .collect();
    names.push(&services[first].name);
    let position = findings
        .conf
        .raw(&services[first].name, "dependency")
        .map(|e| e.position);
    findings.error(
        position,
        format!(
            "dependency cycle {}: each service would wait for the next to start, \
             forever: remove one of these dependencies",
            names.join(" -> ")
        ),
    );
}

/// The reason a Go duration string is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationError {
    Invalid,
    MissingUnit,
    UnknownUnit(String),
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let forms = "write numbers with units ns, us, ms, s, m or h, such as 10s, 1m30s or 500ms";
        match self {
            DurationError::Invalid => write!(f, "{forms}"),
            DurationError::MissingUnit => write!(f, "a number has no unit: {forms}"),
            DurationError::UnknownUnit(unit) => write!(f, "unknown unit {unit:?}: {forms}"),
            DurationError::Overflow => {
                write!(
                    f,
                    "the duration is longer than Go's maximum of about 292 years"
                )
            }
        }
    }
}

impl std::error::Error for DurationError {}

/// Parses a duration as Go 1.19's `time.ParseDuration` does and returns it
/// in nanoseconds, which may be negative.
///
/// The syntax is an optional sign and then one or more decimal numbers,
/// each with an optional fraction and a unit: `ns`, `us` (or `µs`, `μs`),
/// `ms`, `s`, `m` or `h`. A lone `0` needs no unit. The total must fit a
/// signed 64-bit count of nanoseconds. Fractions are scaled with `f64`
/// arithmetic, exactly as Go does, so results match to the nanosecond.
pub fn parse_go_duration(text: &str) -> Result<i64, DurationError> {
    // Go accumulates in u64 and allows up to 2^63 so that the most
    // negative duration parses.
    const LIMIT: u64 = 1 << 63;
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(DurationError::Invalid);
    }

    let mut total: u64 = 0;
    while !rest.is_empty() {
        let first = rest.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(DurationError::Invalid);
        }

        let integer_digits = leading_digits(rest);
        let mut whole: u64 = 0;
        for digit in rest[..integer_digits].bytes() {
            if whole > LIMIT / 10 {
                return Err(DurationError::Invalid);
            }
            whole = whole * 10 + u64::from(digit - b'0');
            if whole > LIMIT {
                return Err(DurationError::Invalid);
            }
        }
        rest = &rest[integer_digits..];

        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut fraction_digits = 0;
        if let Some(after_point) = rest.strip_prefix('.') {
            fraction_digits = leading_digits(after_point);
            (fraction, scale) = read_fraction(&after_point[..fraction_digits]);
            rest = &after_point[fraction_digits..];
        }
        if integer_digits == 0 && fraction_digits == 0 {
            return Err(DurationError::Invalid);
        }

        let unit_length = rest
            .bytes()
            .position(|b| b == b'.' || b.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_length == 0 {
            return Err(DurationError::MissingUnit);
        }
        let unit_name = &rest[..unit_length];
        rest = &rest[unit_length..];
        let unit = unit_nanos(unit_name)
            .ok_or_else(|| DurationError::UnknownUnit(unit_name.to_string()))?;

        if whole > LIMIT / unit {
            return Err(DurationError::Overflow);
        }
        let mut value = whole * unit;
        if fraction > 0 {
            // The product is at most 3.6e12 (the nanoseconds of an hour), so
            // the conversion cannot saturate.
            value += (fraction as f64 * (unit as f64 / scale)) as u64;
            if value > LIMIT {
                return Err(DurationError::Overflow);
            }
        }
        total += value;
        if total > LIMIT {
            return Err(DurationError::Overflow);
        }
    }

    if negative {
        // 2^63 becomes i64::MIN, as in Go.
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| DurationError::Overflow)
}

fn leading_digits(text: &str) -> usize {
    text.bytes().take_while(u8::is_ascii_digit).count()
}

/// Reads fraction digits into an integer and its power-of-ten scale. Like
/// Go, it stops taking digits once the integer would pass 2^63, because
/// they no longer change the result by a whole nanosecond.
fn read_fraction(digits: &str) -> (u64, f64) {
    let mut fraction: u64 = 0;
    let mut scale: f64 = 1.0;
    for digit in digits.bytes() {
        if fraction > (i64::MAX as u64) / 10 {
            break;
        }
        let next = fraction * 10 + u64::from(digit - b'0');
        if next > 1 << 63 {
            break;
        }
        fraction = next;
        scale *= 10.0;
    }
    (fraction, scale)
}

fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "ns" => 1,
        "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_valid_forms() {
        let cases = [
            ("0", 0),
            ("+0", 0),
            ("-0", 0),
            ("10s", 10_000_000_000),
            ("1m30s", 90_000_000_000),
            ("500ms", 500_000_000),
            ("1.5h", 5_400_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("1h2m3s4ms5us6ns", 3_723_004_005_006),
            ("1\u{b5}s", 1_000),
            ("1\u{3bc}s", 1_000),
            ("-3ms", -3_000_000),
            ("0.000000001s", 1),
            ("0.0000000009s", 0),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
            ("2562047h47m16.854775807s", i64::MAX),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_go_duration(text), Ok(expected), "input {text:?}");
        }
    }

    #[test]
    fn go_duration_invalid_forms() {
        let cases = [
            ("", DurationError::Invalid),
            ("-", DurationError::Invalid),
            ("s", DurationError::Invalid),
            (".s", DurationError::Invalid),
            ("10", DurationError::MissingUnit),
            ("1s5", DurationError::MissingUnit),
            ("10 s", DurationError::UnknownUnit(" s".into())),
            ("1d", DurationError::UnknownUnit("d".into())),
            ("1S", DurationError::UnknownUnit("S".into())),
            ("9223372036854775808ns", DurationError::Overflow),
            ("99999999999999999999s", DurationError::Invalid),
            ("3000000h", DurationError::Overflow),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_go_duration(text), Err(expected), "input {text:?}");
        }
    }

    #[test]
    fn split_args_like_go_fields() {
        assert_eq!(
            split_args("  -a\t-b=\"x y\"\u{a0}c "),
            vec!["-a", "-b=\"x", "y\"", "c"]
        );
        assert!(split_args("").is_empty());
    }
}
