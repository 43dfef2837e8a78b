//! The `seesaw_healthcheck` binary: start-up errors and the `-config` mode.
//! `engine.rs` tests the engine mode.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_seesaw_healthcheck");

#[test]
fn invalid_config_exits_2() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("checks.json");
    std::fs::write(&path, r#"{"checks": [{"type": "TCP", "ip": "127.0.0.1"}]}"#).unwrap();
    let output = Command::new(BINARY)
        .arg("-logtostderr")
        .arg(format!("-config={}", path.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("check 1 (id 1): a TCP check needs a port"),
        "{stderr}"
    );
}

#[test]
fn config_mode_logs_state_change() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("checks.json");
    std::fs::write(
        &path,
        format!(r#"{{"checks": [{{"id": 42, "type": "TCP", "ip": "127.0.0.1", "port": {port}, "interval": "1s"}}]}}"#),
    )
    .unwrap();

    let mut child = Command::new(BINARY)
        .args(["-logtostderr", "-config", &path.display().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let expected =
        format!("check 42 (TCP 127.0.0.1:{port} PLAIN): Healthy: TCP connect to 127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = false;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if line.contains(&expected) {
            found = true;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(found, "no line containing {expected:?}");
}

#[test]
fn log_dir_gets_glog_files() {
    let directory = tempfile::tempdir().unwrap();
    let missing = directory.path().join("missing.json");
    let output = Command::new(BINARY)
        .arg(format!("-log_dir={}", directory.path().display()))
        .arg(format!("-config={}", missing.display()))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let expected = format!("failed to read {}", missing.display());

    // ERROR lines reach both severities' files through the glog symlinks.
    for severity in ["INFO", "ERROR"] {
        let link = directory
            .path()
            .join(format!("seesaw_healthcheck.{severity}"));
        let text = std::fs::read_to_string(&link)
            .unwrap_or_else(|error| panic!("failed to read {}: {error}", link.display()));
        assert!(text.contains(&expected), "{text}");
    }
    // The default -stderrthreshold is ERROR, so the error is also on stderr.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&expected), "{stderr}");
}
