//! The `seesaw_healthcheck` binary in engine mode, against a fake engine
//! that the tests serve on a Unix socket in a temporary directory, with
//! TCP checks of listeners on 127.0.0.1.

use std::fs::{self, File};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use seesaw_ipc::engine_proto::{CheckState, Healthcheck};
use seesaw_ipc::fake_engine::{Calls, FakeEngine, ServedEngine};

const BINARY: &str = env!("CARGO_BIN_EXE_seesaw_healthcheck");

/// Generous against the 5 s retry of a failed fetch and a loaded machine.
const WAIT: Duration = Duration::from_secs(30);

const CHECK_ID: u64 = 42;

/// A `seesaw_healthcheck` process, killed when dropped, whose standard
/// error goes to a file.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon with short intervals and `extra` flags.
    fn start(socket: &Path, log: PathBuf, extra: &[&str]) -> Daemon {
        let stderr = File::create(&log).unwrap();
        let child = Command::new(BINARY)
            .args([
                "-logtostderr",
                &format!("-engine={}", socket.display()),
                "-fetch_interval=500ms",
                "-batch_delay=50ms",
                "-notify_interval=1s",
                "-retry_delay=100ms",
                "-max_failures=2",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Polls the log until it contains `text` or `timeout` passes.
    fn wait_for_log(&self, text: &str, timeout: Duration) -> bool {
        self.wait_for_log_line(text, timeout).is_some()
    }

    /// Polls the log until a line contains `text`, and returns that line,
    /// or `None` when `timeout` passes first.
    fn wait_for_log_line(&self, text: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let log = self.log();
            if let Some(line) = log.lines().find(|line| line.contains(text)) {
                return Some(line.to_string());
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Returns a TCP check of `127.0.0.1:port` every 500 ms.
fn tcp_check(port: u16) -> Healthcheck {
    Healthcheck {
        id: CHECK_ID,
        r#type: "TCP".into(),
        ip: "127.0.0.1".into(),
        host: "127.0.0.1".into(),
        port: port.into(),
        interval_ms: 500,
        timeout_ms: 1000,
        ..Healthcheck::default()
    }
}

/// Returns whether a batch from index `first` on reports the check as
/// `state`.
fn reported(calls: &Calls, first: usize, state: CheckState) -> bool {
    calls
        .health_states
        .iter()
        .skip(first)
        .flat_map(|batch| batch.notifications.iter())
        .any(|notification| notification.id == CHECK_ID && notification.state() == state)
}

/// A fake engine whose one check probes a listener on 127.0.0.1.
struct Fixture {
    directory: tempfile::TempDir,
    socket: PathBuf,
    backend: Option<TcpListener>,
    port: u16,
    engine: FakeEngine,
}

impl Fixture {
    fn new() -> Fixture {
        let directory = tempfile::tempdir().unwrap();
        let socket = directory.path().join("engine.sock");
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = backend.local_addr().unwrap().port();
        let engine = FakeEngine::new();
        engine.set_healthchecks(vec![tcp_check(port)]);
        Fixture {
            directory,
            socket,
            backend: Some(backend),
            port,
            engine,
        }
    }

    fn start_daemon(&self) -> Daemon {
        self.start_daemon_with(&[])
    }

    fn start_daemon_with(&self, extra: &[&str]) -> Daemon {
        Daemon::start(
            &self.socket,
            self.directory.path().join("healthcheck.log"),
            extra,
        )
    }

    fn serve(&self) -> ServedEngine {
        self.engine.serve(&self.socket).unwrap()
    }

    /// Closes the listener, so the check fails from its next run on.
    fn stop_backend(&mut self) {
        self.backend = None;
    }

    /// Waits until a batch from index `first` on reports the check as
    /// `state`.
    fn wait_for_report(&self, first: usize, state: CheckState) -> bool {
        self.engine
            .wait_for(WAIT, |calls| reported(calls, first, state))
    }

    fn batches(&self) -> usize {
        self.engine.calls().health_states.len()
    }
}

#[test]
fn engine_mode_reports_state_change() {
    let mut fixture = Fixture::new();

    // The daemon starts before the engine has a socket, as after a reboot.
    let mut daemon = fixture.start_daemon();
    let waited = daemon.wait_for_log("failed to fetch checks", WAIT);
    assert!(waited, "no failed fetch:\n{}", daemon.log());
    let _served = fixture.serve();

    let healthy = fixture.wait_for_report(0, CheckState::Healthy);
    assert!(healthy, "no Healthy report:\n{}", daemon.log());
    let calls = fixture.engine.calls();
    assert!(calls.healthchecks >= 1);
    let notification = calls
        .notifications()
        .find(|notification| notification.state() == CheckState::Healthy)
        .unwrap();
    assert_eq!(
        notification.message,
        format!("TCP connect to 127.0.0.1:{}", fixture.port)
    );
    assert!(notification.last_check_ms > 0);
    assert!(notification.successes >= 1);

    let before_stop = fixture.batches();
    fixture.stop_backend();
    let unhealthy = fixture.wait_for_report(before_stop, CheckState::Unhealthy);
    assert!(unhealthy, "no Unhealthy report:\n{}", daemon.log());
    assert!(daemon.is_running());
}

/// Each state change gets one INFO line with the check's id, target and
/// message, as in `-config` mode.
#[test]
fn engine_mode_logs_state_changes() {
    let mut fixture = Fixture::new();
    let _served = fixture.serve();
    let daemon = fixture.start_daemon();
    let port = fixture.port;
    let prefix = format!("check {CHECK_ID} (TCP 127.0.0.1:{port} PLAIN): ");

    let healthy = format!("{prefix}Healthy: TCP connect to 127.0.0.1:{port}");
    let line = daemon.wait_for_log_line(&healthy, WAIT);
    let line = line.unwrap_or_else(|| panic!("no line {healthy:?}:\n{}", daemon.log()));
    assert!(line.starts_with('I'), "not at INFO level: {line}");

    fixture.stop_backend();
    let unhealthy =
        format!("{prefix}Unhealthy: TCP connect to 127.0.0.1:{port}; failed to connect");
    let line = daemon.wait_for_log_line(&unhealthy, WAIT);
    let line = line.unwrap_or_else(|| panic!("no line {unhealthy:?}:\n{}", daemon.log()));
    assert!(line.starts_with('I'), "not at INFO level: {line}");
    assert!(line.contains("Connection refused"), "{line}");

    // The periodic full reports repeat the state but log nothing.
    let resent = fixture.engine.wait_for(WAIT, |calls| {
        calls
            .notifications()
            .filter(|notification| notification.state() == CheckState::Unhealthy)
            .count()
            >= 3
    });
    assert!(
        resent,
        "the Unhealthy state was not resent:\n{}",
        daemon.log()
    );
    let log = daemon.log();
    let unhealthy_lines = log
        .lines()
        .filter(|line| line.contains(&format!("{prefix}Unhealthy")))
        .count();
    assert_eq!(unhealthy_lines, 1, "{log}");
}

/// Every `-notify_interval` the engine gets every check's status, also
/// unchanged ones and those that have not run yet.
#[test]
fn engine_mode_resends_whole_state() {
    let fixture = Fixture::new();
    // Check 43 runs every hour, so it starts half an hour after check 42
    // and stays Unknown throughout the test.
    let idle = Healthcheck {
        id: CHECK_ID + 1,
        interval_ms: 3_600_000,
        ..tcp_check(fixture.port)
    };
    fixture
        .engine
        .set_healthchecks(vec![tcp_check(fixture.port), idle]);
    let _served = fixture.serve();
    let daemon = fixture.start_daemon();

    let count = |calls: &Calls, id: u64, state: CheckState| {
        calls
            .notifications()
            .filter(|notification| notification.id == id && notification.state() == state)
            .count()
    };
    // The backend stays up, so check 42 changes state once; every further
    // Healthy report and every Unknown report of 43 is a periodic resend.
    let resent = fixture.engine.wait_for(WAIT, |calls| {
        count(calls, CHECK_ID, CheckState::Healthy) >= 4
            && count(calls, CHECK_ID + 1, CheckState::Unknown) >= 3
    });
    let calls = fixture.engine.calls();
    assert!(
        resent,
        "too few resends: {} Healthy of check 42, {} Unknown of check 43:\n{}",
        count(&calls, CHECK_ID, CheckState::Healthy),
        count(&calls, CHECK_ID + 1, CheckState::Unknown),
        daemon.log()
    );
    assert_eq!(count(&calls, CHECK_ID, CheckState::Unhealthy), 0);
    assert_eq!(count(&calls, CHECK_ID + 1, CheckState::Healthy), 0);
}

/// `-dry_run` runs no checker: every check reports Healthy with the fixed
/// message, even with nothing listening.
#[test]
fn engine_mode_dry_run_reports_healthy() {
    let mut fixture = Fixture::new();
    fixture.stop_backend();
    let _served = fixture.serve();
    let daemon = fixture.start_daemon_with(&["-dry_run"]);

    let healthy = fixture.wait_for_report(0, CheckState::Healthy);
    assert!(healthy, "no Healthy report:\n{}", daemon.log());
    let calls = fixture.engine.calls();
    for notification in calls.notifications() {
        assert_eq!(
            notification.state(),
            CheckState::Healthy,
            "{notification:?}"
        );
        assert_eq!(notification.message, "dryrun mode; always succeed");
    }
}

#[test]
fn engine_restart_survived() {
    let mut fixture = Fixture::new();
    let served = fixture.serve();
    let mut daemon = fixture.start_daemon();
    let healthy = fixture.wait_for_report(0, CheckState::Healthy);
    assert!(healthy, "no Healthy report:\n{}", daemon.log());

    // The backend fails while the engine is down, so its result waits in
    // the daemon through more than -max_failures failed sends.
    served.stop();
    fixture.stop_backend();
    let escalated = daemon.wait_for_log("failed to send notifications 2 times in a row", WAIT);
    assert!(
        escalated,
        "no error after 2 failed sends:\n{}",
        daemon.log()
    );
    assert!(daemon.is_running(), "exited:\n{}", daemon.log());

    let before_restart = fixture.batches();
    let _served = fixture.serve();
    let unhealthy = fixture.wait_for_report(before_restart, CheckState::Unhealthy);
    assert!(
        unhealthy,
        "no Unhealthy report after the restart:\n{}",
        daemon.log()
    );
    assert!(daemon.is_running());
}
