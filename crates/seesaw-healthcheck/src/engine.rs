//! The engine mode: the checks come from the engine's `Healthchecks` call
//! and the results go to its `HealthState` call, over the engine's Unix
//! socket.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use seesaw_ipc::engine_proto::{
    CheckMode, CheckState, Empty, HealthNotification, HealthStateBatch, Healthcheck,
};
use seesaw_ipc::{CallError, ClientOptions, EngineClient, connect_engine_lazy};

use crate::config::{CheckConfig, CheckId, CheckSpec};
use crate::daemon::{BoxError, CheckSource, ResultSink};
use crate::status::{Notification, State};
use crate::target::Mode;

/// The limit on the dial and on the whole of each call to the engine, as
/// the original has it. The daemon's loops retry a call that fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A failed call to the engine at `path`.
#[derive(Debug, thiserror::Error)]
#[error("engine at {}: {source}", path.display())]
struct EngineError {
    path: PathBuf,
    source: CallError,
}

/// The checks the engine's `Healthchecks` call returns.
#[derive(Debug)]
pub struct EngineSource {
    path: PathBuf,
    client: EngineClient,
    /// The checks of the last reply that could not be converted, with the
    /// reason, so each one is logged once and not at every fetch.
    rejected: HashMap<CheckId, String>,
}

impl EngineSource {
    /// Creates a source for the engine listening on `path`. Nothing is
    /// dialled before the first fetch. Must be called inside a tokio
    /// runtime.
    pub fn new(path: &Path) -> EngineSource {
        EngineSource {
            path: path.to_path_buf(),
            client: connect_engine_lazy(path, &ClientOptions::single_attempt(CALL_TIMEOUT)),
            rejected: HashMap::new(),
        }
    }

    /// Converts the engine's checks. An invalid check is logged and left
    /// out, so one bad check cannot stop the others.
    fn convert(&mut self, checks: Vec<Healthcheck>) -> BTreeMap<CheckId, CheckConfig> {
        let mut configs = BTreeMap::new();
        let mut rejected = HashMap::new();
        for check in checks {
            let id = check.id;
            match check_spec(check).and_then(CheckSpec::into_config) {
                Ok(config) => {
                    if configs.insert(id, config).is_some() {
                        tracing::warn!("the engine sent check {id} twice; running the last one");
                    }
                }
                Err(reason) => {
                    if self.rejected.get(&id) != Some(&reason) {
                        tracing::error!("not running check {id} from the engine: {reason}");
                    }
                    rejected.insert(id, reason);
                }
            }
        }
        self.rejected = rejected;
        configs
    }
}

impl CheckSource for EngineSource {
    async fn fetch(&mut self) -> Result<BTreeMap<CheckId, CheckConfig>, BoxError> {
        let reply = self
            .client
            .healthchecks(Empty {})
            .await
            .map_err(|status| EngineError {
                path: self.path.clone(),
                source: CallError::new("Healthchecks", status),
            })?;
        Ok(self.convert(reply.into_inner().checks))
    }
}

/// Converts one check of the engine's `Healthchecks` reply.
pub fn check_spec(check: Healthcheck) -> Result<CheckSpec, String> {
    let ip = parse_address("ip", &check.ip)?;
    let host = if check.host.is_empty() {
        None
    } else {
        Some(parse_address("host", &check.host)?)
    };
    let port = u16::try_from(check.port)
        .map_err(|_| format!("port {} is out of range (0 to 65535)", check.port))?;
    let code = u16::try_from(check.code)
        .map_err(|_| format!("HTTP code {} is out of range (0 to 65535)", check.code))?;
    let mode = match CheckMode::try_from(check.mode) {
        Ok(CheckMode::Plain) => Mode::Plain,
        Ok(CheckMode::Dsr) => Mode::Dsr,
        Ok(CheckMode::Tun) => Mode::Tun,
        Err(_) => return Err(format!("unknown mode {}", check.mode)),
    };
    Ok(CheckSpec {
        kind: check.r#type,
        ip,
        host,
        port,
        mode,
        mark: check.mark,
        interval: Duration::from_millis(check.interval_ms),
        timeout: Duration::from_millis(check.timeout_ms),
        retries: check.retries,
        send: check.send,
        receive: check.receive,
        code,
        method: check.method,
        proxy: check.proxy,
        tls_verify: check.tls_verify,
    })
}

fn parse_address(field: &str, text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("invalid {field} {text:?}: expected an IPv4 or IPv6 address"))
}

/// Sends each batch of results with the engine's `HealthState` call.
#[derive(Debug)]
pub struct EngineSink {
    path: PathBuf,
    client: EngineClient,
}

impl EngineSink {
    /// Creates a sink for the engine listening on `path`. Nothing is
    /// dialled before the first send. Must be called inside a tokio
    /// runtime.
    pub fn new(path: &Path) -> EngineSink {
        EngineSink {
            path: path.to_path_buf(),
            client: connect_engine_lazy(path, &ClientOptions::single_attempt(CALL_TIMEOUT)),
        }
    }
}

impl ResultSink for EngineSink {
    async fn send(&mut self, batch: &[Notification]) -> Result<(), BoxError> {
        let request = HealthStateBatch {
            notifications: batch.iter().map(health_notification).collect(),
        };
        self.client
            .health_state(request)
            .await
            .map_err(|status| EngineError {
                path: self.path.clone(),
                source: CallError::new("HealthState", status),
            })?;
        Ok(())
    }
}

/// Converts a notification to the engine's message.
pub fn health_notification(notification: &Notification) -> HealthNotification {
    let status = &notification.status;
    let state = match status.state {
        State::Unknown => CheckState::Unknown,
        State::Unhealthy => CheckState::Unhealthy,
        State::Healthy => CheckState::Healthy,
    };
    // 0 means "never". A start before 1970, which only a wrong clock
    // gives, is sent as 0 too.
    let last_check_ms = status
        .last_check
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, millis_i64);
    HealthNotification {
        id: notification.id,
        state: state.into(),
        message: status.message.clone(),
        last_check_ms,
        duration_ms: u64::try_from(status.duration.as_millis()).unwrap_or(u64::MAX),
        failures: status.failures,
        successes: status.successes,
    }
}

fn millis_i64(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Checker;
    use crate::status::Status;

    fn tcp_check() -> Healthcheck {
        Healthcheck {
            id: 7,
            r#type: "TCP".into(),
            ip: "192.0.2.1".into(),
            port: 80,
            interval_ms: 5000,
            timeout_ms: 2000,
            retries: 1,
            ..Healthcheck::default()
        }
    }

    #[test]
    fn plain_tcp_check_converted() {
        let config = check_spec(tcp_check()).unwrap().into_config().unwrap();

        assert_eq!(config.interval, Duration::from_secs(5));
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.retries, 1);
        assert_eq!(config.checker.to_string(), "TCP 192.0.2.1:80 PLAIN");
    }

    #[test]
    fn dsr_https_check_converted() {
        let check = Healthcheck {
            r#type: "HTTPS".into(),
            ip: "198.51.100.1".into(),
            host: "192.0.2.10".into(),
            port: 443,
            mode: CheckMode::Dsr.into(),
            mark: 65536,
            send: "/healthz".into(),
            code: 204,
            proxy: true,
            tls_verify: false,
            ..tcp_check()
        };

        let config = check_spec(check).unwrap().into_config().unwrap();

        let Checker::Http(http) = &config.checker else {
            panic!("not an HTTP checker: {}", config.checker);
        };
        assert!(http.secure);
        assert!(!http.tls_verify);
        assert_eq!(http.request, "/healthz");
        assert_eq!(http.response_code, 204);
        assert!(http.proxy);
        assert_eq!(
            http.target.to_string(),
            "198.51.100.1:443 DSR (via 192.0.2.10 mark 65536)"
        );
    }

    #[test]
    fn invalid_fields_rejected() {
        let cases = [
            (
                Healthcheck {
                    ip: "backend".into(),
                    ..tcp_check()
                },
                "invalid ip \"backend\"",
            ),
            (
                Healthcheck {
                    port: 70000,
                    ..tcp_check()
                },
                "port 70000 is out of range",
            ),
            (
                Healthcheck {
                    mode: 9,
                    ..tcp_check()
                },
                "unknown mode 9",
            ),
            (
                Healthcheck {
                    interval_ms: 0,
                    ..tcp_check()
                },
                "interval must be positive",
            ),
            (
                Healthcheck {
                    mode: CheckMode::Tun.into(),
                    ..tcp_check()
                },
                "a TUN check needs \"host\"",
            ),
        ];
        for (check, expected) in cases {
            let error = check_spec(check)
                .and_then(CheckSpec::into_config)
                .unwrap_err();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[tokio::test]
    async fn invalid_check_left_out() {
        let mut source = EngineSource::new(Path::new("/nonexistent/engine.sock"));
        let bad = Healthcheck {
            id: 8,
            r#type: "SMTP".into(),
            ..tcp_check()
        };

        let configs = source.convert(vec![tcp_check(), bad]);

        assert_eq!(configs.keys().copied().collect::<Vec<_>>(), [7]);
        assert!(source.rejected[&8].contains("unknown check type \"SMTP\""));
    }

    #[test]
    fn notification_converted() {
        let started = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let notification = Notification {
            id: 42,
            description: "TCP 192.0.2.1:80 PLAIN".into(),
            status: Status {
                last_check: Some(started),
                duration: Duration::from_millis(15),
                failures: 3,
                successes: 9,
                state: State::Unhealthy,
                message: "TCP connect to 192.0.2.1:80; failed to connect".into(),
            },
        };

        let message = health_notification(&notification);

        assert_eq!(message.id, 42);
        assert_eq!(message.state(), CheckState::Unhealthy);
        assert_eq!(message.last_check_ms, 1_700_000_000_123);
        assert_eq!(message.duration_ms, 15);
        assert_eq!(message.failures, 3);
        assert_eq!(message.successes, 9);
        assert_eq!(message.message, notification.status.message);
    }

    #[test]
    fn unchecked_notification_has_zero_time() {
        let notification = Notification {
            id: 1,
            description: "PING 192.0.2.1".into(),
            status: Status::default(),
        };

        let message = health_notification(&notification);

        assert_eq!(message.state(), CheckState::Unknown);
        assert_eq!(message.last_check_ms, 0);
    }
}
