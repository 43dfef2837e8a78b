//! Facts about the Cargo workspace that the tasks need: its root, its target
//! directory and its packages, as `cargo metadata` reports them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub packages: Vec<Package>,
}

pub struct Package {
    pub name: String,
    pub version: String,
    pub manifest_path: PathBuf,
}

impl Package {
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("/"))
    }
}

impl Workspace {
    /// Runs `cargo metadata` for the workspace that contains this crate.
    pub fn load() -> Result<Workspace> {
        let output = cargo()
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .arg("--manifest-path")
            .arg(root().join("Cargo.toml"))
            .output()
            .context("failed to run cargo metadata")?;
        if !output.status.success() {
            bail!(
                "cargo metadata failed with {}:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let metadata: Value =
            serde_json::from_slice(&output.stdout).context("invalid JSON from cargo metadata")?;

        let string = |value: &Value, key: &str| -> Result<String> {
            value[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("cargo metadata output has no string field {key:?}"))
        };
        let mut packages = Vec::new();
        for package in metadata["packages"].as_array().into_iter().flatten() {
            packages.push(Package {
                name: string(package, "name")?,
                version: string(package, "version")?,
                manifest_path: string(package, "manifest_path")?.into(),
            });
        }
        Ok(Workspace {
            root: string(&metadata, "workspace_root")?.into(),
            target_dir: string(&metadata, "target_directory")?.into(),
            packages,
        })
    }

    pub fn package_by_manifest(&self, manifest_path: &Path) -> Option<&Package> {
        self.packages
            .iter()
            .find(|package| package.manifest_path == manifest_path)
    }
}

/// Returns the workspace root, two levels above this crate.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/xtask has two parent directories")
        .to_path_buf()
}

/// Returns a command for the cargo that started this task, so a toolchain
/// chosen with `cargo +toolchain xtask` builds the tests too.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}
