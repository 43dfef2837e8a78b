//! Runs the kernel lab's scenario scripts (crates/xtask/lab/*.sh) on the
//! workspace's binaries, for the tests in `kernel_*.rs`.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs that the scenarios run and `cargo xtask install` installs.
pub const BINARIES: &[&str] = &[
    "seesaw_watchdog",
    "seesaw_ncc",
    "seesaw_engine",
    "seesaw_ha",
    "seesaw_healthcheck",
    "seesaw_ecu",
    "seesaw_cli",
];

pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// Returns the directory of the workspace's binaries, built with the
/// tests: the parent of the `deps` directory this test runs from.
pub fn binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable in target/<profile>/deps")
        .to_path_buf();
    for name in BINARIES {
        assert!(
            dir.join(name).exists(),
            "{name} is missing from {}; build the workspace's binaries first",
            dir.display()
        );
    }
    dir
}

/// Panics unless the test runs in the kernel lab, so that `cargo test --
/// --ignored` on a workstation cannot change the host's IPVS table or links.
pub fn require_lab() {
    assert!(
        std::env::var_os("SEESAW_LAB").is_some(),
        "this test builds a whole network in the kernel and runs only in the kernel lab; run it \
         with `cargo xtask test`"
    );
}

/// Returns whether FRR's bgpd and vtysh are installed. When they are not,
/// prints a SKIPPED line for `test`, or panics when SEESAW_REQUIRE_ORACLES=1.
pub fn frr_installed(test: &str) -> bool {
    if Path::new("/usr/lib/frr/bgpd").exists() && Path::new("/usr/bin/vtysh").exists() {
        return true;
    }
    if std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() == Ok("1") {
        panic!("FRR is not installed and SEESAW_REQUIRE_ORACLES=1 (apt-get install frr)");
    }
    println!("SKIPPED {test}: FRR is not installed (apt-get install frr)");
    false
}

/// Runs `crates/xtask/lab/<script>` with `args` after the binaries'
/// directory, prints its output and panics when it fails. Returns its
/// standard output.
pub fn run_scenario(script: &str, args: &[PathBuf]) -> String {
    let root = repository();
    let output = Command::new("bash")
        .arg(root.join("crates/xtask/lab").join(script))
        .arg(binaries())
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("failed to run {script}: {error}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the scenario {script} failed ({}):\n{stderr}",
        output.status
    );
    stdout
}

/// Panics unless `stdout` contains each of `steps`.
pub fn expect_steps(stdout: &str, steps: &[&str]) {
    for step in steps {
        assert!(stdout.contains(step), "missing step {step:?} in:\n{stdout}");
    }
}
