//! Check configurations and the JSON file that `-config` reads.
//!
//! The file lists checks with the fields of cluster.pb's `Healthcheck`
//! message plus the address to probe. docs/healthcheck.md describes it.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::checker::{
    Checker, DnsChecker, HttpChecker, PingChecker, RadiusChecker, TcpChecker, UdpChecker,
};
use crate::target::{Mode, Target};

/// The engine's identifier of one check.
pub type CheckId = u64;

/// The configuration of one check: its checker and timing. Two checks with
/// equal configurations share one probe.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CheckConfig {
    /// Time between the starts of two runs; always positive.
    pub interval: Duration,
    /// Limit for one run; zero means the checker's default.
    pub timeout: Duration,
    /// Failures tolerated before a healthy check turns unhealthy.
    pub retries: u32,
    pub checker: Checker,
}

impl CheckConfig {
    /// Returns the timeout one run gets: the configured one, or the
    /// checker's default when it is zero.
    pub fn effective_timeout(&self) -> Duration {
        if self.timeout.is_zero() {
            self.checker.default_timeout()
        } else {
            self.timeout
        }
    }
}

/// The contents of a `-config` file.
#[derive(Clone, Debug, Default)]
pub struct CheckFile {
    /// PEM file of CA certificates for checks with `tls_verify`, instead of
    /// the system store.
    pub ca_file: Option<PathBuf>,
    pub checks: BTreeMap<CheckId, CheckConfig>,
}

/// A failure to load a `-config` file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: check {index} (id {id}): {reason}")]
    Check {
        path: PathBuf,
        index: usize,
        id: CheckId,
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJson {
    #[serde(default)]
    ca_file: Option<PathBuf>,
    checks: Vec<CheckJson>,
}

/// A duration as a Go-style string (`"1.5s"`, `"500ms"`) or as seconds.
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum DurationJson {
    Seconds(u64),
    Text(#[serde(deserialize_with = "deserialize_go_duration")] Duration),
}

fn deserialize_go_duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

impl DurationJson {
    fn duration(self) -> Duration {
        match self {
            DurationJson::Seconds(seconds) => Duration::from_secs(seconds),
            DurationJson::Text(duration) => duration,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckJson {
    id: Option<CheckId>,
    #[serde(rename = "type")]
    kind: String,
    ip: IpAddr,
    #[serde(default)]
    port: u16,
    interval: Option<DurationJson>,
    timeout: Option<DurationJson>,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    send: String,
    #[serde(default)]
    receive: String,
    #[serde(default)]
    code: u16,
    #[serde(default)]
    method: String,
    #[serde(default)]
    proxy: bool,
    #[serde(default = "default_true")]
    tls_verify: bool,
    #[serde(default)]
    mode: Option<String>,
    host: Option<IpAddr>,
    #[serde(default)]
    mark: u32,
}

fn default_true() -> bool {
    true
}

/// Default interval and timeout, those of cluster.pb's `Healthcheck`.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads and validates a `-config` file.
pub fn load(path: &Path) -> Result<CheckFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses the text of a `-config` file; `path` only names it in errors.
pub fn parse(path: &Path, text: &str) -> Result<CheckFile, ConfigError> {
    let file: FileJson = serde_json::from_str(text).map_err(|source| ConfigError::Json {
        path: path.to_path_buf(),
        source,
    })?;

    let mut checks = BTreeMap::new();
    let mut seen = HashSet::new();
    for (index, check) in file.checks.into_iter().enumerate() {
        // Checks without an id are numbered by position from 1, so a file
        // can mix both only when the explicit ids avoid those numbers.
        let id = check.id.unwrap_or(index as CheckId + 1);
        let invalid = |reason: String| ConfigError::Check {
            path: path.to_path_buf(),
            index: index + 1,
            id,
            reason,
        };
        if !seen.insert(id) {
            return Err(invalid(format!("duplicate check id {id}")));
        }
        let config = check
            .into_spec()
            .and_then(CheckSpec::into_config)
            .map_err(invalid)?;
        checks.insert(id, config);
    }

    Ok(CheckFile {
        ca_file: file.ca_file,
        checks,
    })
}

impl CheckJson {
    /// Converts the JSON fields, applying the defaults of cluster.pb's
    /// `Healthcheck` to a missing interval or timeout.
    fn into_spec(self) -> Result<CheckSpec, String> {
        let mode = match self.mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("PLAIN") => Mode::Plain,
            Some("DSR") => Mode::Dsr,
            Some("TUN") => Mode::Tun,
            Some(other) => {
                return Err(format!(
                    "unknown mode {other:?}: expected PLAIN, DSR or TUN"
                ));
            }
        };
        Ok(CheckSpec {
            kind: self.kind,
            ip: self.ip,
            host: self.host,
            port: self.port,
            mode,
            mark: self.mark,
            interval: self
                .interval
                .map_or(DEFAULT_INTERVAL, DurationJson::duration),
            timeout: self.timeout.map_or(DEFAULT_TIMEOUT, DurationJson::duration),
            retries: self.retries,
            send: self.send,
            receive: self.receive,
            code: self.code,
            method: self.method,
            proxy: self.proxy,
            tls_verify: self.tls_verify,
        })
    }
}

/// The fields of one check as cluster.pb's `Healthcheck` has them, plus its
/// target. A `-config` file and the engine's `Healthchecks` reply are both
/// converted to this, and [`CheckSpec::into_config`] builds the checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckSpec {
    /// The check type, such as `HTTPS`, in any case.
    pub kind: String,
    /// The address that is dialled: the backend, or the VIP in DSR and TUN
    /// mode.
    pub ip: IpAddr,
    /// The backend's address; required in DSR and TUN mode.
    pub host: Option<IpAddr>,
    /// The port to probe; ICMP_PING checks need none.
    pub port: u16,
    pub mode: Mode,
    /// `SO_MARK` for the probe's sockets; required in DSR and TUN mode.
    pub mark: u32,
    pub interval: Duration,
    /// Zero means the checker's default.
    pub timeout: Duration,
    pub retries: u32,
    pub send: String,
    pub receive: String,
    /// The HTTP status to expect; 0 means 200.
    pub code: u16,
    pub method: String,
    pub proxy: bool,
    pub tls_verify: bool,
}

impl CheckSpec {
    /// Checks the fields and builds the check's configuration, or returns
    /// why the check is invalid.
    pub fn into_config(self) -> Result<CheckConfig, String> {
        if self.interval.is_zero() {
            return Err("interval must be positive".to_string());
        }
        let target = self.target()?;
        let kind = self.kind.to_ascii_uppercase();
        if kind != "ICMP_PING" && self.port == 0 {
            return Err(format!("a {kind} check needs a port"));
        }

        let checker = match kind.as_str() {
            "ICMP_PING" => {
                if target.mode != Mode::Plain {
                    return Err("an ICMP_PING check cannot use DSR or TUN mode".to_string());
                }
                Checker::Ping(PingChecker { target, echo_id: 0 })
            }
            "UDP" => Checker::Udp(UdpChecker {
                target,
                send: self.send.into_bytes(),
                receive: self.receive.into_bytes(),
            }),
            "TCP" | "TCP_TLS" => Checker::Tcp(TcpChecker {
                target,
                send: self.send.into_bytes(),
                receive: self.receive.into_bytes(),
                secure: kind == "TCP_TLS",
                tls_verify: self.tls_verify,
            }),
            "HTTP" | "HTTPS" => Checker::Http(HttpChecker {
                target,
                method: non_empty(self.method, "GET"),
                request: non_empty(self.send, "/"),
                response: self.receive,
                response_code: if self.code == 0 { 200 } else { self.code },
                proxy: self.proxy,
                secure: kind == "HTTPS",
                tls_verify: self.tls_verify,
            }),
            "DNS" => Checker::Dns(DnsChecker::new(
                target,
                &self.send,
                &self.method,
                &self.receive,
            )?),
            "RADIUS" => {
                Checker::Radius(RadiusChecker::from_send(target, &self.send, &self.receive)?)
            }
            other => {
                return Err(format!(
                    "unknown check type {other:?}: expected ICMP_PING, UDP, TCP, TCP_TLS, HTTP, HTTPS, DNS or RADIUS"
                ));
            }
        };

        Ok(CheckConfig {
            interval: self.interval,
            timeout: self.timeout,
            retries: self.retries,
            checker,
        })
    }

    fn target(&self) -> Result<Target, String> {
        let mode = self.mode;
        if mode != Mode::Plain && (self.mark == 0 || self.host.is_none()) {
            return Err(format!(
                "a {mode} check needs \"host\" (the backend) and a non-zero \"mark\""
            ));
        }
        Ok(Target {
            ip: self.ip,
            host: self.host.unwrap_or(self.ip),
            mark: self.mark,
            mode,
            port: self.port,
        })
    }
}

fn non_empty(value: String, default: &str) -> String {
    if value.is_empty() {
        default.to_string()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<CheckFile, ConfigError> {
        parse(Path::new("checks.json"), text)
    }

    #[test]
    fn http_and_https_same_port_kept() {
        let file = parse_text(
            r#"{"checks": [
                {"type": "HTTP", "ip": "192.0.2.1", "port": 8080},
                {"type": "https", "ip": "192.0.2.1", "port": 8080, "tls_verify": false}
            ]}"#,
        )
        .unwrap();
        assert_eq!(file.checks.len(), 2);
        let Checker::Http(https) = &file.checks[&2].checker else {
            panic!("check 2 is not HTTP");
        };
        assert!(https.secure);
        assert!(!https.tls_verify);
        assert_eq!(https.method, "GET");
        assert_eq!(https.request, "/");
        assert_eq!(https.response_code, 200);
    }

    #[test]
    fn durations_as_text_or_seconds() {
        let file = parse_text(
            r#"{"checks": [{"id": 7, "type": "TCP", "ip": "192.0.2.1", "port": 22,
                "interval": "1.5s", "timeout": 2}]}"#,
        )
        .unwrap();
        let config = &file.checks[&7];
        assert_eq!(config.interval, Duration::from_millis(1500));
        assert_eq!(config.timeout, Duration::from_secs(2));
    }

    #[test]
    fn zero_timeout_uses_checker_default() {
        let file = parse_text(
            r#"{"checks": [{"type": "TCP", "ip": "192.0.2.1", "port": 22, "timeout": 0}]}"#,
        )
        .unwrap();
        assert_eq!(file.checks[&1].effective_timeout(), Duration::from_secs(10));
    }

    #[test]
    fn zero_interval_is_rejected() {
        let error = parse_text(
            r#"{"checks": [{"type": "TCP", "ip": "192.0.2.1", "port": 22, "interval": 0}]}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("interval must be positive"),
            "{error}"
        );
    }

    #[test]
    fn duplicate_id_is_rejected() {
        let error = parse_text(
            r#"{"checks": [
                {"id": 2, "type": "TCP", "ip": "192.0.2.1", "port": 22},
                {"type": "TCP", "ip": "192.0.2.1", "port": 23}
            ]}"#,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("duplicate check id 2"),
            "{error}"
        );
    }

    #[test]
    fn dsr_needs_host_and_mark() {
        let error = parse_text(
            r#"{"checks": [{"type": "TCP", "ip": "192.0.2.1", "port": 22, "mode": "DSR"}]}"#,
        )
        .unwrap_err();
        assert!(error.to_string().contains("needs \"host\""), "{error}");

        let file = parse_text(
            r#"{"checks": [{"type": "TCP", "ip": "192.0.2.1", "port": 22, "mode": "dsr",
                "host": "192.0.2.9", "mark": 65536}]}"#,
        )
        .unwrap();
        assert_eq!(
            file.checks[&1].checker.target().to_string(),
            "192.0.2.1:22 DSR (via 192.0.2.9 mark 65536)"
        );
    }

    #[test]
    fn ping_rejects_dsr() {
        let result = parse_text(
            r#"{"checks": [{"type": "ICMP_PING", "ip": "192.0.2.1", "mode": "TUN",
                "host": "192.0.2.9", "mark": 1}]}"#,
        );
        assert!(result.is_err());
    }

    #[test]
    fn unknown_field_is_rejected() {
        let error = parse_text(r#"{"checks": [{"type": "TCP", "ip": "192.0.2.1", "prot": 1}]}"#)
            .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `prot`"),
            "{error}"
        );
    }
}
