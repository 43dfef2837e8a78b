//! `cargo xtask lab`: the sample GKE manual-mode pair from the repository's
//! fixtures, serving on a real kernel. It checks both nodes' configuration
//! offline, builds the release binaries and runs `lab/pair.sh` in the
//! kernel lab, which sets the pair up, shows it serving, fails it over and
//! marks a backend unhealthy, checking every step.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::lab;
use crate::workspace;

/// The sample cluster: the GKE on-prem manual load-balancing pair.
pub struct Sample {
    pub cluster: PathBuf,
    pub node: PathBuf,
    pub peer: PathBuf,
}

impl Sample {
    pub fn locate(root: &Path) -> Sample {
        let fixtures = root.join("crates/seesaw-config/tests/fixtures");
        Sample {
            cluster: fixtures.join("cluster/gke-manual.pb"),
            node: fixtures.join("ini/gke-manual-seesaw.cfg"),
            peer: fixtures.join("ini/gke-manual-seesaw-peer.cfg"),
        }
    }
}

/// Builds the release binaries and returns their directory: the glibc
/// 2.17 build of `cargo xtask release` when cargo-zigbuild and Zig are
/// installed (CI builds it first, so this costs nothing there), else a
/// plain release build.
pub fn build_release(root: &Path) -> Result<PathBuf> {
    if crate::release::zigbuild_works() {
        return crate::release::build(&workspace::Workspace::load()?);
    }
    let mut build = workspace::cargo();
    build
        .current_dir(root)
        .args(["build", "--release", "--bins"]);
    for package in crate::install::PACKAGES {
        build.args(["-p", package]);
    }
    let status = build.status().context("starting cargo build")?;
    if !status.success() {
        bail!("cargo build failed with {status}");
    }
    Ok(root.join("target/release"))
}

/// Returns the command that runs the pair scenario in the kernel lab;
/// `steps` limits it to some steps (all when empty).
pub fn pair_command(bin: &Path, sample: &Sample, steps: &[&str]) -> Command {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/pair.sh");
    let mut command: Vec<OsString> = vec![
        script.into(),
        bin.into(),
        sample.cluster.clone().into(),
        sample.node.clone().into(),
        sample.peer.clone().into(),
    ];
    command.extend(steps.iter().map(OsString::from));
    let mut vm = lab::vm_command(&[], &command);
    // Seven backends, a client and two nodes of five daemons each need
    // more than the default memory, and the emulated CPU takes minutes.
    vm.env(
        "SEESAW_LAB_MEM",
        std::env::var("SEESAW_LAB_MEM").unwrap_or("1536".into()),
    );
    vm.env(
        "SEESAW_LAB_TIMEOUT",
        std::env::var("SEESAW_LAB_TIMEOUT").unwrap_or("1200".into()),
    );
    vm
}

/// Runs the lab and returns the exit status to exit with.
pub fn run() -> Result<i32> {
    let root = workspace::root();
    let sample = Sample::locate(&root);

    println!("== building the release binaries");
    let bin = build_release(&root)?;

    for (this, other) in [(&sample.node, &sample.peer), (&sample.peer, &sample.node)] {
        println!("\n== seesaw_engine -check for {}", this.display());
        let status = Command::new(bin.join("seesaw_engine"))
            .arg("-check")
            .arg(format!("-conf={}", this.display()))
            .arg(format!("-cluster={}", sample.cluster.display()))
            .arg(format!("-peer_conf={}", other.display()))
            .status()
            .context("running seesaw_engine -check")?;
        if !status.success() {
            bail!("the sample configuration failed its check");
        }
    }

    println!("\n== kernel lab: the pair serving the sample cluster");
    lab::prepare()?;
    let status = pair_command(&bin, &sample, &[])
        .status()
        .context("starting the kernel lab")?;
    Ok(status.code().unwrap_or(1))
}
