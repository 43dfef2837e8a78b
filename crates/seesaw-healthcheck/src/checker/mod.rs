//! The checkers: one probe of one backend, returning a [`CheckResult`].

mod dns;
mod http;
mod ping;
mod radius;
mod tcp;
mod udp;

use std::fmt;
use std::time::{Duration, Instant};

pub use dns::DnsChecker;
pub use http::HttpChecker;
pub use ping::PingChecker;
pub use radius::{RadiusChecker, RadiusResponse};
pub use tcp::TcpChecker;
pub use udp::UdpChecker;

use crate::target::Target;
use crate::tls::TlsClients;

/// The outcome of one run of a checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub success: bool,
    /// The probed address and, on failure, the step that failed.
    pub message: String,
    /// The underlying I/O or protocol error, if any.
    pub error: Option<String>,
    /// Time from the checker's start to its result.
    pub duration: Duration,
}

impl CheckResult {
    /// Returns the text reported to the engine: the message, followed by the
    /// error when there is one.
    pub fn text(&self) -> String {
        match &self.error {
            Some(error) if self.message.is_empty() => error.clone(),
            Some(error) => format!("{}: {error}", self.message),
            None => self.message.clone(),
        }
    }
}

/// Builds results for one run, measuring the duration from its creation.
pub(crate) struct Outcome {
    start: Instant,
}

impl Outcome {
    pub(crate) fn start() -> Outcome {
        Outcome {
            start: Instant::now(),
        }
    }

    pub(crate) fn success(&self, message: String) -> CheckResult {
        CheckResult {
            success: true,
            message,
            error: None,
            duration: self.start.elapsed(),
        }
    }

    pub(crate) fn failure(&self, message: String) -> CheckResult {
        CheckResult {
            success: false,
            message,
            error: None,
            duration: self.start.elapsed(),
        }
    }

    pub(crate) fn error(&self, message: String, error: impl fmt::Display) -> CheckResult {
        CheckResult {
            success: false,
            message,
            error: Some(error.to_string()),
            duration: self.start.elapsed(),
        }
    }
}

/// Settings shared by every checker besides its own configuration.
#[derive(Clone, Debug)]
pub struct CheckContext {
    pub tls: TlsClients,
    /// Sent as RADIUS NAS-Identifier.
    pub hostname: String,
    /// ICMP echo identifier for ping checks that configure none.
    pub echo_id: u16,
}

impl CheckContext {
    /// Builds a context with the system trust store and this host's name.
    pub fn new(tls: TlsClients) -> CheckContext {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .unwrap_or_default();
        CheckContext {
            tls,
            hostname,
            echo_id: std::process::id() as u16,
        }
    }
}

/// One configured checker. Equal checkers probe the same thing in the same
/// way, which lets the scheduler share one probe between them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Checker {
    Dns(DnsChecker),
    Http(HttpChecker),
    Ping(PingChecker),
    Radius(RadiusChecker),
    Tcp(TcpChecker),
    Udp(UdpChecker),
}

impl Checker {
    /// Returns the timeout the checker uses when its configuration has 0.
    pub fn default_timeout(&self) -> Duration {
        match self {
            Checker::Dns(_) | Checker::Radius(_) => Duration::from_secs(3),
            Checker::Http(_) | Checker::Udp(_) => Duration::from_secs(5),
            Checker::Ping(_) => Duration::from_secs(1),
            Checker::Tcp(_) => Duration::from_secs(10),
        }
    }

    /// Returns the target the checker probes.
    pub fn target(&self) -> &Target {
        match self {
            Checker::Dns(checker) => &checker.target,
            Checker::Http(checker) => &checker.target,
            Checker::Ping(checker) => &checker.target,
            Checker::Radius(checker) => &checker.target,
            Checker::Tcp(checker) => &checker.target,
            Checker::Udp(checker) => &checker.target,
        }
    }

    /// Runs the checker once. `run` counts the probe's runs and becomes the
    /// ICMP echo sequence number.
    ///
    /// Checkers set no deadlines of their own: the caller bounds the whole
    /// run with the check's timeout, and dropping the future cancels the run
    /// and closes its sockets.
    pub async fn check(&self, context: &CheckContext, run: u64) -> CheckResult {
        match self {
            Checker::Dns(checker) => checker.check().await,
            Checker::Http(checker) => checker.check(context).await,
            Checker::Ping(checker) => checker.check(context, run as u16).await,
            Checker::Radius(checker) => checker.check(context).await,
            Checker::Tcp(checker) => checker.check(context).await,
            Checker::Udp(checker) => checker.check().await,
        }
    }
}

impl fmt::Display for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checker::Dns(checker) => checker.fmt(f),
            Checker::Http(checker) => checker.fmt(f),
            Checker::Ping(checker) => checker.fmt(f),
            Checker::Radius(checker) => checker.fmt(f),
            Checker::Tcp(checker) => checker.fmt(f),
            Checker::Udp(checker) => checker.fmt(f),
        }
    }
}

/// Formats `bytes` for a message, as Go's `%q` would: printable ASCII as is,
/// the rest escaped.
pub(crate) fn quote(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}
