//! `seesaw_watchdog -check`: offline validation of watchdog.cfg.

use std::path::PathBuf;
use std::process::Command;

fn check(config: &str) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_seesaw_watchdog"))
        .args(["-check", "-config", config])
        .output()
        .expect("seesaw_watchdog runs");
    (
        output.status.code().expect("exited normally"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn shipped_config_passes_check() {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "etc",
        "watchdog.cfg",
    ]
    .iter()
    .collect();
    let (status, stdout, stderr) = check(path.to_str().unwrap());
    assert_eq!(status, 0, "{stderr}");
    assert!(stdout.contains(": 5 services\n"), "{stdout}");
    assert!(stdout.contains("  engine /usr/local/seesaw/seesaw_engine -log_dir=/var/log/seesaw (priority -10, term_timeout 10s, after ncc)"), "{stdout}");
}

#[test]
fn unknown_dependency_fails_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchdog.cfg");
    std::fs::write(&path, "[a]\nbinary = /x\ndependency = b\n").unwrap();

    let (status, stdout, stderr) = check(path.to_str().unwrap());
    assert_eq!(status, 1);
    assert_eq!(stdout, "");
    // The path, line and column of the value, the section that contains the
    // dependency, and the fix.
    let expected = format!(
        "{}:3:14: dependency = b in [a] names no defined service: define a [b] section or \
         remove the dependency from [a]",
        path.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
