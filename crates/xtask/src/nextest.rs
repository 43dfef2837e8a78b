//! Runs the host tests with cargo-nextest and reads each outcome from its
//! JUnit report.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};

use crate::inventory::add_package_args;
use crate::report::Report;
use crate::workspace::{Workspace, cargo};

/// The profile that `nextest.toml` in this crate defines.
const PROFILE: &str = "xtask";

/// Returns whether `cargo nextest` is installed.
pub fn available() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A test that the host group must run, as nextest names it.
pub struct Expected {
    pub binary_id: String,
    pub name: String,
}

/// Runs the host tests through nextest and records an outcome for each of
/// `expected`. A test missing from the report counts as failed.
/// Nextest leaves out tests marked `#[ignore]`, and those are exactly the
/// tests outside the host group.
pub fn run(
    workspace: &Workspace,
    packages: &[String],
    env: &[(String, String)],
    expected: &[Expected],
    report: &mut Report,
) -> Result<()> {
    let junit = junit_paths(workspace);
    for path in &junit {
        let _ = fs::remove_file(path);
    }

    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("nextest.toml");
    let mut command = cargo();
    command
        .args(["nextest", "run", "--profile", PROFILE, "--no-tests=pass"])
        .arg("--tool-config-file")
        .arg(format!("xtask:{}", config.display()))
        .current_dir(&workspace.root)
        .envs(env.iter().map(|(name, value)| (name, value)));
    add_package_args(&mut command, packages);
    let status = command
        .status()
        .context("failed to run cargo nextest run")?;

    let report_xml = junit.iter().find_map(|path| fs::read_to_string(path).ok());
    let mut outcomes = match &report_xml {
        Some(xml) => parse_junit(xml)?,
        None => HashMap::new(),
    };
    let why_missing = match report_xml {
        Some(_) => "no result in nextest's JUnit report".to_owned(),
        None => format!("cargo nextest ended with {status} and wrote no JUnit report"),
    };

    for test in expected {
        let id = format!("{} {}", test.binary_id, test.name);
        let key = (test.binary_id.clone(), test.name.clone());
        match outcomes.remove(&key) {
            Some(Outcome::Passed { output }) => report.pass_or_self_skip(id, &output),
            Some(Outcome::Failed(message)) => report.fail(id, message),
            None => report.fail(id, why_missing.clone()),
        }
    }
    // Tests that xtask did not sort into the host group but nextest ran anyway
    // still count, so that no result is lost.
    for ((binary_id, name), outcome) in outcomes {
        println!("warning: nextest ran {binary_id} {name}, which xtask did not expect on the host");
        let id = format!("{binary_id} {name}");
        match outcome {
            Outcome::Passed { output } => report.pass_or_self_skip(id, &output),
            Outcome::Failed(message) => report.fail(id, message),
        }
    }
    Ok(())
}

/// Returns the paths where nextest may write the report. Cargo-nextest 0.9.143
/// writes it under `target/nextest` in the workspace root, even when
/// CARGO_TARGET_DIR points elsewhere. The target directory is the fallback.
fn junit_paths(workspace: &Workspace) -> Vec<PathBuf> {
    let tail = Path::new("nextest").join(PROFILE).join("junit.xml");
    let mut paths = vec![workspace.root.join("target").join(&tail)];
    let in_target = workspace.target_dir.join(&tail);
    if !paths.contains(&in_target) {
        paths.push(in_target);
    }
    paths
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The test passed; its stdout and stderr, in `output`, may still hold
    /// a `SKIPPED` line.
    Passed {
        output: String,
    },
    Failed(String),
}

/// Maps (binary id, test name) to the test's outcome. Nextest writes one
/// `<testcase>` per test that ran, with a `<failure>` or `<error>` child when
/// the test failed, timed out or crashed, and `<system-out>` and `<system-err>`
/// children because nextest.toml sets `store-success-output`.
fn parse_junit(xml: &str) -> Result<HashMap<(String, String), Outcome>> {
    let document = roxmltree::Document::parse(xml).context("invalid JUnit report from nextest")?;
    let mut outcomes = HashMap::new();
    for case in document
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
    {
        let binary_id = case.attribute("classname").unwrap_or_default().to_owned();
        let name = case.attribute("name").unwrap_or_default().to_owned();
        let failure = case
            .children()
            .find(|child| child.has_tag_name("failure") || child.has_tag_name("error"));
        let outcome = match failure {
            Some(child) => {
                let message = child.attribute("message").unwrap_or("failed");
                let kind = child.attribute("type").unwrap_or("failed");
                Outcome::Failed(format!("{kind} ({message})"))
            }
            None => {
                let text_of = |tag: &str| {
                    case.children()
                        .find(|child| child.has_tag_name(tag))
                        .and_then(|child| child.text())
                        .unwrap_or_default()
                };
                Outcome::Passed {
                    output: format!("{}{}", text_of("system-out"), text_of("system-err")),
                }
            }
        };
        outcomes.insert((binary_id, name), outcome);
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn junit_passes_and_failures() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="3" failures="1" errors="1">
  <testsuite name="seesaw-config" tests="3">
    <testcase name="diag::tests::a" classname="seesaw-config" time="0.005"/>
    <testcase name="oracle" classname="seesaw-config::oracle" time="0.005">
      <system-out>running 1 test
</system-out>
      <system-err>SKIPPED oracle: go not found
</system-err>
    </testcase>
    <testcase name="b" classname="seesaw-config" time="0.1">
      <failure message="thread &apos;b&apos; panicked" type="test failure with exit code 101">x</failure>
      <system-out>running 1 test</system-out>
    </testcase>
    <testcase name="c" classname="seesaw-tests::end_to_end" time="60">
      <error message="test timed out" type="test timeout"/>
    </testcase>
  </testsuite>
</testsuites>"#;
        let outcomes = parse_junit(xml).unwrap();
        let get = |binary: &str, name: &str| &outcomes[&(binary.to_owned(), name.to_owned())];
        let failed = |message: &str| Outcome::Failed(message.to_owned());

        assert_eq!(outcomes.len(), 4);
        assert_eq!(
            get("seesaw-config", "diag::tests::a"),
            &Outcome::Passed {
                output: String::new()
            }
        );
        assert_eq!(
            get("seesaw-config::oracle", "oracle"),
            &Outcome::Passed {
                output: "running 1 test\nSKIPPED oracle: go not found\n".to_owned()
            }
        );
        assert_eq!(
            get("seesaw-config", "b"),
            &failed("test failure with exit code 101 (thread 'b' panicked)")
        );
        assert_eq!(
            get("seesaw-tests::end_to_end", "c"),
            &failed("test timeout (test timed out)")
        );
    }
}
