//! `cargo xtask release`: release binaries for old distributions.
//!
//! cargo-zigbuild links against glibc 2.17 stubs with Zig's linker, so the
//! binaries run on any x86_64 Linux with glibc 2.17 or later, such as
//! Ubuntu 18.04 (glibc 2.27), whatever glibc the build machine has.
//! [`check_glibc`] then confirms that no symbol needs a newer glibc.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::glibc;
use crate::install::{self, CLI};
use crate::workspace::{self, Workspace};

/// The Rust target, with cargo-zigbuild's glibc version suffix.
pub const TARGET: &str = "x86_64-unknown-linux-gnu.2.17";

/// The target directory name: cargo-zigbuild drops the glibc suffix.
const TARGET_DIR: &str = "x86_64-unknown-linux-gnu";

const INSTALL_TOOLS: &str = "install them with `cargo install cargo-zigbuild` and \
                             `pip install ziglang` (or put zig on PATH)";

/// Runs `cargo xtask release` and returns the exit status.
pub fn run() -> Result<i32> {
    let workspace = Workspace::load()?;
    let binary_dir = build(&workspace)?;
    check_glibc(&binary_dir)?;
    println!(
        "the binaries in {} need glibc {} or later",
        binary_dir.display(),
        glibc::BASELINE
    );
    Ok(0)
}

/// Tells whether `cargo zigbuild` can run: cargo-zigbuild is installed and
/// finds Zig. cargo-zigbuild 0.24 runs `python3 -m ziglang` (or
/// `$CARGO_ZIGBUILD_PYTHON_PATH`), else `zig` (or `$CARGO_ZIGBUILD_ZIG_PATH`).
pub fn zigbuild_works() -> bool {
    let succeeds = |command: &mut Command| {
        command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let program = |variable: &str, default: &str| {
        std::env::var_os(variable)
            .filter(|value| !value.is_empty())
            .unwrap_or_else(|| default.into())
    };
    if !succeeds(workspace::cargo().args(["zigbuild", "--help"])) {
        return false;
    }
    let python = program("CARGO_ZIGBUILD_PYTHON_PATH", "python3");
    let zig = program("CARGO_ZIGBUILD_ZIG_PATH", "zig");
    succeeds(Command::new(python).args(["-m", "ziglang", "version"]))
        || succeeds(Command::new(zig).arg("version"))
}

/// Builds the seven binaries for [`TARGET`] and returns their directory.
pub fn build(workspace: &Workspace) -> Result<PathBuf> {
    let probe = workspace::cargo()
        .args(["zigbuild", "--help"])
        .output()
        .context("failed to start cargo")?;
    if !probe.status.success() {
        bail!("cargo-zigbuild is not installed; {INSTALL_TOOLS}");
    }

    println!("== building the release binaries for {TARGET} with cargo-zigbuild");
    let mut command = workspace::cargo();
    command.current_dir(&workspace.root).args([
        "zigbuild",
        "--release",
        "--bins",
        "--target",
        TARGET,
    ]);
    for package in install::PACKAGES {
        command.args(["-p", package]);
    }
    let status = command.status().context("failed to start cargo zigbuild")?;
    if !status.success() {
        bail!(
            "cargo zigbuild --target {TARGET} failed with {status}; if zig is missing, {INSTALL_TOOLS}"
        );
    }
    Ok(workspace.target_dir.join(TARGET_DIR).join("release"))
}

/// Fails unless every binary in `binary_dir` needs at most glibc
/// [`glibc::BASELINE`], listing each newer symbol.
pub fn check_glibc(binary_dir: &Path) -> Result<()> {
    let names = install::DAEMONS.into_iter().chain([CLI.0]);
    check_binaries(names.map(|name| binary_dir.join(name)))
}

/// Checks each of `binaries` as [`check_glibc`] does.
pub fn check_binaries(binaries: impl IntoIterator<Item = PathBuf>) -> Result<()> {
    let mut problems = Vec::new();
    for binary in binaries {
        match glibc::symbols_newer_than(&binary, glibc::BASELINE) {
            Ok(newer) if newer.is_empty() => {}
            Ok(newer) => problems.push(format!(
                "{} needs a glibc newer than {}: {}",
                binary.display(),
                glibc::BASELINE,
                newer.join(", ")
            )),
            Err(message) => problems.push(message),
        }
    }
    if !problems.is_empty() {
        bail!("glibc check failed:\n{}", problems.join("\n"));
    }
    Ok(())
}
