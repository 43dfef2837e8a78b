//! `cargo xtask test`: runs every test of the project in the place it needs
//! and prints one summary.
//!
//! The groups, in the order they run:
//! - host: ordinary tests, through cargo-nextest when installed, else libtest;
//! - doc: documentation tests, through `cargo test --doc`;
//! - root: ignored tests named `root_*`, on the host, only when running as root;
//! - lab: ignored tests named `kernel_*` or in a `kernel*` test binary, in the VM.
//!
//! Tests marked `#[ignore]` under any other name are counted as skipped.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::inventory::{self, Group, TestBinary};
use crate::jobs::{self, Job, Place};
use crate::report::Report;
use crate::workspace::Workspace;
use crate::{doctests, lab, nextest};

/// Which tests a run covers.
pub struct Selection {
    /// Packages to build; empty means the whole workspace.
    pub packages: Vec<String>,
    /// Run only the lab group, as `cargo xtask vm-selftest` does.
    pub lab_only: bool,
}

/// Tests sorted by the group that runs them.
#[derive(Default)]
struct Plan {
    host: Vec<(TestBinary, String)>,
    root: Vec<(TestBinary, String)>,
    lab: Vec<(TestBinary, String)>,
    ignored: Vec<String>,
}

/// Runs the selected tests and returns the exit status: 1 when a test failed,
/// else 0.
pub fn run(selection: &Selection) -> Result<i32> {
    let start = Instant::now();
    // With CI=true, a group that cannot run fails instead of being skipped,
    // so CI cannot pass without running the root and lab tests.
    let strict = std::env::var("CI").is_ok_and(|value| value == "true");
    let env = child_env(strict);
    let workspace = Workspace::load()?;
    let mut report = Report::default();

    section("building the test binaries");
    let binaries = match inventory::build_and_list(&workspace, &selection.packages) {
        Ok(binaries) => binaries,
        Err(error) => {
            report.fail("build of the tests", format!("{error:#}"));
            return Ok(finish(&report, start));
        }
    };
    let plan = plan(&binaries);

    // A group whose runner fails to start is one failure in the summary, and
    // the remaining groups still run.
    if !selection.lab_only {
        let result = run_host(&workspace, &selection.packages, &plan, &env, &mut report);
        record_error(result, "host tests", &mut report);

        section("doc-tests: cargo test --doc");
        let result = doctests::run(&workspace, &selection.packages, &env, &mut report);
        record_error(result, "doc-tests", &mut report);

        if !plan.root.is_empty() {
            section("root tests: on the host, one process per test");
            let dir = workspace.target_dir.join("xtask/root");
            let blocker = root_blocker();
            let result = run_isolated(
                &plan.root,
                Place::Host,
                &dir,
                blocker,
                &env,
                strict,
                &mut report,
            );
            record_error(result, "root tests", &mut report);
        }
    }

    if !plan.lab.is_empty() {
        section("kernel lab tests: in the VM, one process per test");
        let dir = workspace.target_dir.join("xtask/lab");
        let blocker = lab_blocker();
        let place = Place::Lab {
            target_dir: workspace.target_dir.clone(),
        };
        let result = run_isolated(&plan.lab, place, &dir, blocker, &env, strict, &mut report);
        record_error(result, "kernel lab tests", &mut report);
    }

    if !selection.lab_only {
        for test in &plan.ignored {
            report.skip(
                "marked #[ignore] but named neither root_* nor kernel_*, so no group runs it",
                test.clone(),
            );
        }
    }
    Ok(finish(&report, start))
}

/// Returns the variables that every test process gets: SEESAW_REQUIRE_ORACLES=1
/// under CI, so that tests fail instead of skipping when an oracle such as the
/// Go toolchain is missing, and the caller's RUST_BACKTRACE for the VM, which
/// inherits nothing from the host.
fn child_env(strict: bool) -> Vec<(String, String)> {
    let mut env = Vec::new();
    match std::env::var("SEESAW_REQUIRE_ORACLES") {
        Ok(value) => env.push(("SEESAW_REQUIRE_ORACLES".to_owned(), value)),
        Err(_) if strict => env.push(("SEESAW_REQUIRE_ORACLES".to_owned(), "1".to_owned())),
        Err(_) => {}
    }
    if let Ok(value) = std::env::var("RUST_BACKTRACE") {
        env.push(("RUST_BACKTRACE".to_owned(), value));
    }
    env
}

fn plan(binaries: &[TestBinary]) -> Plan {
    let mut plan = Plan::default();
    for binary in binaries {
        for test in &binary.tests {
            let entry = (binary.clone(), test.name.clone());
            match binary.group_of(test) {
                Group::Host => plan.host.push(entry),
                Group::Root => plan.root.push(entry),
                Group::Lab => plan.lab.push(entry),
                Group::Ignored => plan.ignored.push(binary.test_id(&test.name)),
            }
        }
    }
    plan
}

fn run_host(
    workspace: &Workspace,
    packages: &[String],
    plan: &Plan,
    env: &[(String, String)],
    report: &mut Report,
) -> Result<()> {
    if nextest::available() {
        section("host tests: cargo nextest run");
        let expected: Vec<nextest::Expected> = plan
            .host
            .iter()
            .map(|(binary, name)| nextest::Expected {
                binary_id: binary.id(),
                name: name.clone(),
            })
            .collect();
        return nextest::run(workspace, packages, env, &expected, report);
    }

    section("host tests: libtest (cargo-nextest is not installed)");
    // One process per binary, as `cargo test` runs them.
    let mut jobs: Vec<Job> = Vec::new();
    for (binary, name) in &plan.host {
        match jobs.last_mut() {
            Some(job) if job.binary.executable == binary.executable => job.tests.push(name.clone()),
            _ => jobs.push(Job {
                binary: binary.clone(),
                tests: vec![name.clone()],
            }),
        }
    }
    let dir = workspace.target_dir.join("xtask/host");
    jobs::run(&jobs, Place::Host, &dir, env, report)
}

/// Returns why root tests cannot run, or `None` when xtask runs as root.
fn root_blocker() -> Option<String> {
    match std::fs::metadata("/proc/self").map(|metadata| metadata.uid()) {
        Ok(0) => None,
        Ok(uid) => Some(format!("root tests need root, but xtask runs as uid {uid}")),
        Err(error) => Some(format!(
            "root tests need root, and reading /proc/self failed: {error}"
        )),
    }
}

/// Returns why lab tests cannot run, or `None` once the lab is ready. Getting
/// ready may install QEMU and build the VM image.
fn lab_blocker() -> Option<String> {
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        return Some("the kernel lab needs an x86_64 Linux host".to_owned());
    }
    match lab::prepare() {
        Ok(()) => None,
        Err(error) => Some(format!("the kernel lab is unavailable: {error:#}")),
    }
}

/// Runs root or lab tests, one process per test, in `place`. When `blocker`
/// gives a reason that they cannot run, records them as not run instead.
fn run_isolated(
    tests: &[(TestBinary, String)],
    place: Place,
    dir: &Path,
    blocker: Option<String>,
    env: &[(String, String)],
    strict: bool,
    report: &mut Report,
) -> Result<()> {
    if let Some(reason) = blocker {
        not_run(tests, &reason, strict, report);
        return Ok(());
    }
    let jobs: Vec<Job> = tests
        .iter()
        .map(|(binary, name)| Job {
            binary: binary.clone(),
            tests: vec![name.clone()],
        })
        .collect();
    jobs::run(&jobs, place, dir, env, report)
}

/// Records tests that could not run: failed under CI, skipped elsewhere.
fn not_run(tests: &[(TestBinary, String)], reason: &str, strict: bool, report: &mut Report) {
    let verdict = if strict { "failing" } else { "skipping" };
    println!("{verdict} {} tests: {reason}", tests.len());
    for (binary, name) in tests {
        let id = binary.test_id(name);
        if strict {
            report.fail(
                id,
                format!("{reason} (CI=true requires these tests to run)"),
            );
        } else {
            report.skip(reason, id);
        }
    }
}

fn record_error(result: Result<()>, group: &str, report: &mut Report) {
    if let Err(error) = result {
        println!("error: {group}: {error:#}");
        report.fail(group, format!("{error:#}"));
    }
}

fn section(title: &str) {
    println!();
    println!("== {title}");
}

fn finish(report: &Report, start: Instant) -> i32 {
    println!();
    println!("== finished in {} s", start.elapsed().as_secs());
    report.print_summary();
    if report.failed() > 0 { 1 } else { 0 }
}
