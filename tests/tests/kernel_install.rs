//! The installation of docs/install.md on a fresh machine
//! (crates/xtask/lab/install.sh): `cargo xtask install --binaries` puts the
//! release binaries, the configuration, the unit and the log directory in
//! place, and the operator's seesaw.cfg and cluster.pb for the sample GKE
//! node follow. seesaw_watchdog, started as the installed unit starts it,
//! must then run all five daemons without restarts, with their logs in
//! /var/log/seesaw, the CLI and the ECU responding. A second install keeps
//! the operator's files, and SIGTERM stops the watchdog and every daemon.

mod lab;

use std::path::{Path, PathBuf};

/// Returns the directory of the binaries that `cargo xtask release` builds
/// when all are there. Under SEESAW_REQUIRE_ORACLES=1 (CI, which builds
/// them first) they must be, and elsewhere the workspace's own binaries
/// replace them.
fn release_binaries(workspace_binaries: &Path) -> PathBuf {
    let release = workspace_binaries
        .parent()
        .expect("target/debug has a parent")
        .join("x86_64-unknown-linux-gnu/release");
    if lab::BINARIES
        .iter()
        .all(|name| release.join(name).is_file())
    {
        return release;
    }
    assert!(
        std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() != Ok("1"),
        "{} lacks the release binaries and SEESAW_REQUIRE_ORACLES=1; run `cargo xtask release` \
         first",
        release.display()
    );
    println!(
        "{} lacks the release binaries of `cargo xtask release`, so the workspace's own \
         binaries are installed",
        release.display()
    );
    workspace_binaries.to_path_buf()
}

#[test]
#[ignore = "needs the kernel lab: mounts overlays over /usr, /etc and /var and runs every daemon"]
fn kernel_install_gives_running_watchdog() {
    lab::require_lab();
    let install = release_binaries(&lab::binaries());
    let stdout = lab::run_scenario("install.sh", &[install]);
    lab::expect_steps(
        &stdout,
        &[
            "no /usr/local/seesaw, /usr/bin/seesaw, /etc/seesaw or /var/log/seesaw yet",
            "installed /usr/local/seesaw/seesaw_watchdog",
            "/var/log/seesaw (0755)",
            "seesaw -c \"show ha\" reports LEADER",
            "the gateway got \"ok\" from http://100.115.222.130:10257/healthz",
            "the same PIDs: ncc=",
            "seesaw_ncc.INFO",
            "watchdog.cfg and cluster.pb.example kept, with .dist beside them",
            "the watchdog exited with status 0",
            "every daemon runs with the operator's -v=1",
            "every step succeeded",
        ],
    );
}
