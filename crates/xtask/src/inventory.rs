//! The project's Rust tests: builds every test binary, lists its tests and
//! sorts each test into the group that runs it.
//!
//! The conventions, which docs/testing.md explains to test authors, apply
//! only to tests marked `#[ignore]`, which plain `cargo test` skips:
//! - an ignored test whose function name starts with `root_` needs root on
//!   the host;
//! - an ignored test whose function name starts with `kernel_`, or any ignored
//!   test in an integration-test binary whose name starts with `kernel`, needs
//!   the kernel lab (a VM with Debian's kernel).
//!
//! A test without `#[ignore]` runs on the host whatever its name, because
//! plain `cargo test` runs it there too.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::workspace::{Workspace, cargo};

pub const ROOT_TEST_PREFIX: &str = "root_";
pub const LAB_TEST_PREFIX: &str = "kernel_";
pub const LAB_BINARY_PREFIX: &str = "kernel";

/// The group of tests that run in the same place and way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// On the host as the invoking user, through nextest or libtest.
    Host,
    /// On the host, only as root.
    Root,
    /// In the kernel lab VM.
    Lab,
    /// Marked `#[ignore]` without a root or lab name, so nothing runs it.
    Ignored,
}

/// One libtest binary that `cargo test` would run.
#[derive(Clone, Debug)]
pub struct TestBinary {
    pub package: String,
    pub package_version: String,
    pub package_dir: PathBuf,
    /// Cargo target name, such as `kernel_lab` for `tests/kernel_lab.rs`.
    pub target: String,
    /// Cargo target kind: `lib`, `bin`, `test`, `example`, `bench` or `proc-macro`.
    pub kind: String,
    pub executable: PathBuf,
    pub tests: Vec<TestCase>,
}

#[derive(Clone, Debug)]
pub struct TestCase {
    pub name: String,
    pub ignored: bool,
}

impl TestBinary {
    /// Returns the binary's name as nextest prints it and writes it into its
    /// JUnit report: the package for library tests, `package::target` for
    /// integration tests and `package::kind/target` for the other kinds.
    pub fn id(&self) -> String {
        match self.kind.as_str() {
            "lib" | "proc-macro" => self.package.clone(),
            "test" => format!("{}::{}", self.package, self.target),
            kind => format!("{}::{}/{}", self.package, kind, self.target),
        }
    }

    /// Returns the name that reports use for one test of this binary.
    pub fn test_id(&self, test: &str) -> String {
        format!("{} {}", self.id(), test)
    }

    /// Returns whether every ignored test of this binary runs in the lab,
    /// because it is an integration-test binary named `kernel*`.
    pub fn is_lab_binary(&self) -> bool {
        self.kind == "test" && self.target.starts_with(LAB_BINARY_PREFIX)
    }

    pub fn group_of(&self, test: &TestCase) -> Group {
        if !test.ignored {
            return Group::Host;
        }
        let function = test.name.rsplit("::").next().unwrap_or(&test.name);
        if self.is_lab_binary() || function.starts_with(LAB_TEST_PREFIX) {
            Group::Lab
        } else if function.starts_with(ROOT_TEST_PREFIX) {
            Group::Root
        } else {
            Group::Ignored
        }
    }
}

/// Builds the test binaries of `packages` (all of the workspace when empty)
/// and lists their tests. Cargo's diagnostics go to stderr as usual.
pub fn build_and_list(workspace: &Workspace, packages: &[String]) -> Result<Vec<TestBinary>> {
    let mut command = cargo();
    command.args([
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    add_package_args(&mut command, packages);
    command.current_dir(&workspace.root).stdout(Stdio::piped());
    let mut child = command
        .spawn()
        .context("failed to run cargo test --no-run")?;

    let mut binaries = Vec::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        let line = line.context("failed to read cargo's output")?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(binary) = test_binary_from_message(workspace, &message)? {
            binaries.push(binary);
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo test --no-run failed with {status}");
    }

    for binary in &mut binaries {
        binary.tests = list_tests(binary)?;
    }
    binaries.sort_by_key(TestBinary::id);
    Ok(binaries)
}

/// Adds `--workspace` or one `-p` per package to a cargo command.
pub fn add_package_args(command: &mut Command, packages: &[String]) {
    if packages.is_empty() {
        command.arg("--workspace");
    }
    for package in packages {
        command.args(["-p", package]);
    }
}

/// Returns the test binary that a `compiler-artifact` message describes, or
/// `None` for any other message and for artifacts that are not test harnesses
/// (such as the plain binaries that integration tests call).
fn test_binary_from_message(workspace: &Workspace, message: &Value) -> Result<Option<TestBinary>> {
    if message["reason"] != "compiler-artifact" || message["profile"]["test"] != true {
        return Ok(None);
    }
    let Some(executable) = message["executable"].as_str() else {
        return Ok(None);
    };
    let manifest_path = PathBuf::from(message["manifest_path"].as_str().unwrap_or_default());
    let package = workspace
        .package_by_manifest(&manifest_path)
        .with_context(|| format!("cargo built a test of an unknown package: {manifest_path:?}"))?;
    let target = &message["target"];
    Ok(Some(TestBinary {
        package: package.name.clone(),
        package_version: package.version.clone(),
        package_dir: package.dir().to_path_buf(),
        target: target["name"].as_str().unwrap_or_default().to_owned(),
        kind: target["kind"][0].as_str().unwrap_or_default().to_owned(),
        executable: executable.into(),
        tests: Vec::new(),
    }))
}

/// Lists a binary's tests with libtest's `--list`, once for all tests and once
/// for the ignored ones.
fn list_tests(binary: &TestBinary) -> Result<Vec<TestCase>> {
    let all = run_list(binary, false)?;
    let ignored = run_list(binary, true)?;
    Ok(all
        .into_iter()
        .map(|name| TestCase {
            ignored: ignored.contains(&name),
            name,
        })
        .collect())
}

fn run_list(binary: &TestBinary, ignored: bool) -> Result<Vec<String>> {
    let mut command = Command::new(&binary.executable);
    command.args(["--list", "--format", "terse"]);
    if ignored {
        command.arg("--ignored");
    }
    let output = command
        .current_dir(&binary.package_dir)
        .output()
        .with_context(|| format!("failed to run {}", binary.executable.display()))?;
    if !output.status.success() {
        bail!(
            "listing the tests of {} failed with {} (a binary without the libtest \
             harness cannot be listed):\n{}",
            binary.id(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(parse_list(&String::from_utf8_lossy(&output.stdout)))
}

/// Parses libtest's terse list, one `NAME: test` line per test. Benchmarks
/// (`NAME: benchmark`) are not tests and are left out.
fn parse_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.strip_suffix(": test"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binary(kind: &str, target: &str) -> TestBinary {
        TestBinary {
            package: "seesaw-ncc".into(),
            package_version: "0.1.0".into(),
            package_dir: "/src/crates/seesaw-ncc".into(),
            target: target.into(),
            kind: kind.into(),
            executable: "/src/target/debug/deps/x".into(),
            tests: Vec::new(),
        }
    }

    fn case(name: &str, ignored: bool) -> TestCase {
        TestCase {
            name: name.into(),
            ignored,
        }
    }

    #[test]
    fn groups_follow_name_conventions() {
        let lib = binary("lib", "seesaw_ncc");
        let cases = [
            (case("links::tests::parses_mtu", false), Group::Host),
            (case("links::tests::root_adds_dummy", true), Group::Root),
            (case("root_at_top_level", true), Group::Root),
            (case("links::tests::kernel_adds_vip", true), Group::Lab),
            (case("links::tests::slow_case", true), Group::Ignored),
            (case("links::tests::not_root_here", false), Group::Host),
            (
                case("links::kernel_module::tests::plain", false),
                Group::Host,
            ),
        ];
        for (test, group) in cases {
            assert_eq!(lib.group_of(&test), group, "{}", test.name);
        }
    }

    #[test]
    fn ignored_tests_of_kernel_binary_are_lab() {
        let lab = binary("test", "kernel_ipvs");
        assert_eq!(lab.group_of(&case("adds_service", true)), Group::Lab);
        assert_eq!(lab.group_of(&case("parses_reply", false)), Group::Host);

        // Only integration-test binaries count, not a library named kernel*.
        let library = binary("lib", "kernel_util");
        assert_eq!(library.group_of(&case("parses", true)), Group::Ignored);
    }

    #[test]
    fn ids_match_nextest() {
        assert_eq!(binary("lib", "seesaw_ncc").id(), "seesaw-ncc");
        assert_eq!(binary("test", "kernel_lab").id(), "seesaw-ncc::kernel_lab");
        assert_eq!(binary("bin", "ncc").id(), "seesaw-ncc::bin/ncc");
        assert_eq!(
            binary("test", "kernel_lab").test_id("kernel_x"),
            "seesaw-ncc::kernel_lab kernel_x"
        );
    }

    #[test]
    fn list_keeps_tests_only() {
        let text = "a::b: test\nroot_c: test\nbench_d: benchmark\n";
        assert_eq!(parse_list(text), ["a::b", "root_c"]);
    }
}
