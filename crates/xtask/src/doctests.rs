//! Runs the documentation tests, which nextest does not run, with
//! `cargo test --doc`.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use anyhow::{Context, Result};

use crate::inventory::add_package_args;
use crate::jobs::{LibtestResult, parse_libtest};
use crate::report::Report;
use crate::workspace::{Workspace, cargo};

const IGNORED_REASON: &str = "doc-test code block marked `ignore`";

/// Runs the doc-tests of `packages` (all of the workspace when empty) and
/// records their outcomes. Cargo's output is echoed as it arrives.
pub fn run(
    workspace: &Workspace,
    packages: &[String],
    env: &[(String, String)],
    report: &mut Report,
) -> Result<()> {
    // One pipe for stdout and stderr keeps each `Doc-tests CRATE` header
    // (stderr) ahead of that crate's result lines (stdout).
    let (reader, writer) = std::io::pipe().context("failed to create a pipe")?;
    let mut command = cargo();
    command
        .args(["test", "--doc", "--no-fail-fast"])
        .current_dir(&workspace.root)
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    add_package_args(&mut command, packages);
    let mut child = command.spawn().context("failed to run cargo test --doc")?;
    // Drop the parent's copies of the write end, so reading ends with cargo.
    drop(command);

    let mut krate = String::from("doc-test");
    let failures_before = report.failed();
    let mut results = 0;
    for line in BufReader::new(reader).lines() {
        let line = line.context("failed to read cargo's output")?;
        println!("{line}");
        if let Some(name) = line.trim_start().strip_prefix("Doc-tests ") {
            krate = name.trim().to_owned();
        }
        for (name, result) in parse_libtest(&line) {
            let id = format!("{krate} {name}");
            results += 1;
            match result {
                LibtestResult::Ok => report.pass(),
                LibtestResult::Failed => report.fail(id, "doc-test failed (output above)"),
                LibtestResult::Ignored => report.skip(IGNORED_REASON, id),
            }
        }
    }
    let status = child.wait()?;
    let new_failures = report.failed() - failures_before;

    // A compile error in a crate stops cargo before any doc-test runs, and
    // then no line above names a test.
    if !status.success() && new_failures == 0 {
        report.fail(
            "doc-tests",
            format!("cargo test --doc ended with {status} after {results} results (output above)"),
        );
    }
    Ok(())
}
