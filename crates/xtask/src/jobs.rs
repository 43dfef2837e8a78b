//! Runs libtest binaries directly, without nextest: root tests on the host,
//! lab tests in the VM, and every test when nextest is missing.
//!
//! One generated bash script runs the jobs one after another and stores each
//! job's output and exit status in files next to itself. The same script runs
//! on the host or in the guest, so both places report results the same way.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::inventory::TestBinary;
use crate::lab::{self, Share};
use crate::report::Report;

/// Seconds one job may run before `timeout` stops it.
const DEFAULT_JOB_TIMEOUT: u64 = 600;

/// Seconds the VM gets for booting and powering off, on top of the jobs' time.
const LAB_BOOT_ALLOWANCE: u64 = 300;

/// One process: a test binary with exact test names.
pub struct Job {
    pub binary: TestBinary,
    pub tests: Vec<String>,
}

/// The place where jobs run.
pub enum Place {
    Host,
    /// The kernel lab VM, which also needs the target directory shared when
    /// it lies outside the repository.
    Lab {
        target_dir: PathBuf,
    },
}

/// The exit status and output of one job.
struct JobResult {
    /// The exit status, or `None` when the job never finished.
    status: Option<i32>,
    log: String,
}

/// Runs `jobs` in `place` and records one outcome per test in `report`.
/// `dir` is emptied and receives the script and the jobs' output;
/// `env` is exported to every job.
pub fn run(
    jobs: &[Job],
    place: Place,
    dir: &Path,
    env: &[(String, String)],
    report: &mut Report,
) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("failed to remove {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let script = dir.join("run.sh");
    let timeout = job_timeout();
    fs::write(&script, write_script(jobs, env, timeout)?)?;

    let runner_status = match place {
        Place::Host => Command::new("bash").arg(&script).status()?,
        Place::Lab { target_dir } => {
            let shares = lab_shares(jobs, dir, &target_dir);
            let mut command = lab::vm_command(&shares, &["bash".into(), script.clone().into()]);
            let vm_timeout = LAB_BOOT_ALLOWANCE + timeout * jobs.len() as u64;
            command.env("SEESAW_LAB_TIMEOUT", vm_timeout.to_string());
            // The pair scenario runs two nodes of five daemons, seven
            // backends and a client in the guest.
            if std::env::var_os("SEESAW_LAB_MEM").is_none() {
                command.env("SEESAW_LAB_MEM", "1536");
            }
            command.status()?
        }
    };

    for (index, job) in jobs.iter().enumerate() {
        let result = read_result(dir, index)?;
        record(job, &result, timeout, report);
        if result.status != Some(0) {
            println!("---- output of {}", job_label(job));
            print!("{}", result.log);
        }
    }
    if !runner_status.success() {
        println!("the job runner ended with {runner_status}");
    }
    Ok(())
}

/// Returns the per-job time limit: `$SEESAW_TEST_TIMEOUT` seconds, else 600.
fn job_timeout() -> u64 {
    std::env::var("SEESAW_TEST_TIMEOUT")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(DEFAULT_JOB_TIMEOUT)
}

/// Shares the output directory read-write and, when they lie outside the
/// repository, the target directory (test binaries and the binaries that
/// integration tests start) and the packages' directories read-only.
fn lab_shares(jobs: &[Job], dir: &Path, target_dir: &Path) -> Vec<Share> {
    let mut shares = vec![Share {
        dir: dir.to_path_buf(),
        writable: true,
    }];
    let root = crate::workspace::root();
    let mut outside: Vec<&Path> = Vec::new();
    let package_dirs = jobs.iter().map(|job| job.binary.package_dir.as_path());
    for path in std::iter::once(target_dir).chain(package_dirs) {
        if !path.starts_with(&root) && !outside.contains(&path) {
            outside.push(path);
        }
    }
    shares.extend(outside.into_iter().map(|dir| Share {
        dir: dir.to_path_buf(),
        writable: false,
    }));
    shares
}

fn job_label(job: &Job) -> String {
    match job.tests.as_slice() {
        [test] => job.binary.test_id(test),
        tests => format!("{} ({} tests)", job.binary.id(), tests.len()),
    }
}

/// Writes the bash script that runs every job and stores `N.log` and
/// `N.status` for job N in the script's own directory.
fn write_script(jobs: &[Job], env: &[(String, String)], timeout: u64) -> Result<String> {
    let mut script = String::from(
        "#!/bin/bash\n\
         # Written by cargo xtask test. Runs each job in its own process and\n\
         # stores its output in N.log and its exit status in N.status.\n\
         out=$(dirname \"$(readlink -f \"$0\")\")\n",
    );
    for (name, value) in env {
        writeln!(script, "export {name}={}", quote(value))?;
    }
    script.push_str(
        "job() {  # job N TIMEOUT DIR PACKAGE VERSION LABEL COMMAND...\n\
         \x20 local n=$1 t=$2 dir=$3 pkg=$4 ver=$5 label=$6\n\
         \x20 shift 6\n\
         \x20 echo \"xtask: running $label\"\n\
         \x20 (cd \"$dir\" && CARGO_MANIFEST_DIR=$dir CARGO_PKG_NAME=$pkg CARGO_PKG_VERSION=$ver \\\n\
         \x20   exec timeout -k 10 \"$t\" \"$@\") </dev/null >\"$out/$n.log\" 2>&1\n\
         \x20 echo $? >\"$out/$n.status\"\n\
         }\n",
    );
    for (index, job) in jobs.iter().enumerate() {
        let binary = &job.binary;
        let mut words = vec![
            index.to_string(),
            timeout.to_string(),
            path_str(&binary.package_dir)?.to_owned(),
            binary.package.clone(),
            binary.package_version.clone(),
            job_label(job),
            path_str(&binary.executable)?.to_owned(),
            "--exact".into(),
            "--include-ignored".into(),
            // Prints passing tests' stdout too, where a SKIPPED line may be.
            "--show-output".into(),
            test_threads_arg(),
        ];
        words.extend(job.tests.iter().cloned());
        let quoted: Vec<String> = words.iter().map(|word| quote(word)).collect();
        writeln!(script, "job {}", quoted.join(" "))?;
    }
    Ok(script)
}

/// Returns `--test-threads=N` with N at least 2. With one thread, libtest
/// prints `test NAME ... ` before the test runs and the result after it, so
/// output that a child process writes to the inherited stdout in between
/// splits the result line. With more threads it prints the whole line after
/// the test. One CPU, as in the lab VM, would otherwise mean one thread.
fn test_threads_arg() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |count| count.get());
    format!("--test-threads={}", cpus.max(2))
}

fn path_str(path: &Path) -> Result<&str> {
    match path.to_str() {
        Some(text) => Ok(text),
        None => bail!("path is not valid UTF-8: {}", path.display()),
    }
}

/// Quotes `word` for bash with single quotes.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fn read_result(dir: &Path, index: usize) -> Result<JobResult> {
    let status = fs::read_to_string(dir.join(format!("{index}.status")))
        .ok()
        .and_then(|text| text.trim().parse().ok());
    let log = match fs::read(dir.join(format!("{index}.log"))) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    Ok(JobResult { status, log })
}

/// Records the outcome of each test of a finished job.
fn record(job: &Job, result: &JobResult, timeout: u64, report: &mut Report) {
    let outcomes = parse_libtest(&result.log);
    let why_missing = match result.status {
        None => "no exit status: the job never finished (see the runner's messages)".to_owned(),
        Some(124) | Some(137) => format!("timed out after {timeout} s"),
        Some(status) => format!("no result line; the test binary exited with status {status}"),
    };
    for test in &job.tests {
        let id = job.binary.test_id(test);
        match outcomes.iter().find(|(name, _)| name == test) {
            // libtest prints `ok` only after the test function returned, so the
            // line is enough, even when a later test in the job crashed.
            Some((_, LibtestResult::Ok)) => {
                println!("PASS {id}");
                report.pass_or_self_skip(id, test_output(job, &result.log, test));
            }
            Some((_, LibtestResult::Failed)) => {
                println!("FAIL {id}");
                report.fail(id, "failed (output above)");
            }
            Some((_, LibtestResult::Ignored)) => {
                report.fail(id, "libtest ignored it despite --include-ignored")
            }
            None => {
                println!("FAIL {id}");
                report.fail(id, why_missing.clone());
            }
        }
    }
}

/// Returns the output of `test` in which to look for a `SKIPPED` line. A job
/// of one test owns its whole log, which also contains what child processes
/// wrote. A job of several tests has only libtest's captured sections.
fn test_output<'a>(job: &Job, log: &'a str, test: &str) -> &'a str {
    if job.tests.len() == 1 {
        log
    } else {
        captured_stdout(log, test)
    }
}

/// Returns the output that libtest captured for `test` and printed under
/// `--show-output`: the lines after `---- TEST stdout ----` up to the next
/// such header or the `successes:` or `failures:` list. Despite the header,
/// the section contains what the test thread wrote to stdout and to stderr.
fn captured_stdout<'a>(log: &'a str, test: &str) -> &'a str {
    let header = format!("---- {test} stdout ----\n");
    let Some(start) = log.find(&header).map(|at| at + header.len()) else {
        return "";
    };
    let section = &log[start..];
    let mut end = section.len();
    let mut offset = 0;
    for line in section.split_inclusive('\n') {
        let text = line.trim_end_matches('\n');
        let next_header = text.starts_with("---- ") && text.ends_with(" stdout ----");
        if next_header || text == "successes:" || text == "failures:" {
            end = offset;
            break;
        }
        offset += line.len();
    }
    &section[..end]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibtestResult {
    Ok,
    Failed,
    Ignored,
}

/// Parses libtest's result lines, `test NAME ... ok|FAILED|ignored[, REASON]`.
/// A `#[should_panic]` test's line has ` - should panic` after its name.
pub fn parse_libtest(log: &str) -> Vec<(String, LibtestResult)> {
    let mut outcomes = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        let Some((name, result)) = rest.rsplit_once(" ... ") else {
            continue;
        };
        let name = name.strip_suffix(" - should panic").unwrap_or(name);
        let result = match result {
            "ok" => LibtestResult::Ok,
            "FAILED" => LibtestResult::Failed,
            other if other == "ignored" || other.starts_with("ignored, ") => LibtestResult::Ignored,
            _ => continue,
        };
        outcomes.push((name.to_owned(), result));
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::TestBinary;

    fn job(tests: &[&str]) -> Job {
        Job {
            binary: TestBinary {
                package: "xtask".into(),
                package_version: "0.1.0".into(),
                package_dir: "/src/crates/xtask".into(),
                target: "kernel_lab".into(),
                kind: "test".into(),
                executable: "/src/target/debug/deps/kernel_lab-1234".into(),
                tests: Vec::new(),
            },
            tests: tests.iter().map(|name| name.to_string()).collect(),
        }
    }

    #[test]
    fn libtest_lines_parsed() {
        let log = "\nrunning 4 tests\n\
                   test a::b ... ok\n\
                   test c ... FAILED\n\
                   test d - should panic ... ok\n\
                   test e ... ignored, needs root: x\n\
                   test f ... \n\
                   test result: FAILED. 2 passed; 1 failed; 1 ignored\n";
        assert_eq!(
            parse_libtest(log),
            [
                ("a::b".to_owned(), LibtestResult::Ok),
                ("c".to_owned(), LibtestResult::Failed),
                ("d".to_owned(), LibtestResult::Ok),
                ("e".to_owned(), LibtestResult::Ignored),
            ]
        );
    }

    #[test]
    fn outcome_needs_result_line() {
        let cases = [
            (Some(0), "test t ... ok\n", (1, 0)),
            (Some(101), "test t ... FAILED\n", (0, 1)),
            // A zero status alone proves nothing: the filter may have matched no test.
            (Some(0), "running 0 tests\n", (0, 1)),
            (Some(139), "test t ... ok\n", (1, 0)),
            (None, "running 1 test\n", (0, 1)),
            (Some(124), "", (0, 1)),
        ];
        for (status, log, (passed, failed)) in cases {
            let mut report = Report::default();
            let result = JobResult {
                status,
                log: log.into(),
            };
            record(&job(&["t"]), &result, 600, &mut report);
            assert_eq!(report.passed(), passed, "{status:?} {log:?}");
            assert_eq!(report.failed(), failed, "{status:?} {log:?}");
            assert_eq!(report.skipped(), 0);
        }
    }

    #[test]
    fn self_skip_found_in_show_output() {
        let log = "running 2 tests\n\
                   test t ... ok\n\
                   test u ... ok\n\n\
                   successes:\n\n\
                   ---- t stdout ----\n\
                   SKIPPED t: no go\n\n\
                   ---- u stdout ----\n\
                   plain output\n\n\n\
                   successes:\n    t\n    u\n\n\
                   test result: ok. 2 passed; 0 failed\n";
        assert_eq!(captured_stdout(log, "t"), "SKIPPED t: no go\n\n");
        assert_eq!(captured_stdout(log, "u"), "plain output\n\n\n");
        assert_eq!(captured_stdout(log, "v"), "");

        let mut report = Report::default();
        let result = JobResult {
            status: Some(0),
            log: log.into(),
        };
        record(&job(&["t", "u"]), &result, 600, &mut report);
        assert_eq!(report.count_line(), "1 passed, 0 failed, 1 skipped");

        // A child process writes to the job's log directly, outside libtest's
        // sections, and a job of one test owns that log.
        let mut report = Report::default();
        let result = JobResult {
            status: Some(0),
            log: "running 1 test\nSKIPPED: keepalived not installed\ntest t ... ok\n".into(),
        };
        record(&job(&["t"]), &result, 600, &mut report);
        assert_eq!(report.count_line(), "0 passed, 0 failed, 1 skipped");
    }

    #[test]
    fn lab_shares_outside_repository() {
        let root = crate::workspace::root();
        let inside = job(&["t"]);
        let dir = root.join("target/xtask/lab");

        let shares = lab_shares(std::slice::from_ref(&inside), &dir, &root.join("target"));
        assert_eq!(shares.len(), 2, "{shares:?}");
        assert_eq!(shares[0].dir, dir);
        assert!(shares[0].writable);
        // The package directory of the test job lies outside this repository.
        assert_eq!(shares[1].dir, Path::new("/src/crates/xtask"));
        assert!(!shares[1].writable);

        let shares = lab_shares(&[], Path::new("/tmp/t/xtask/lab"), Path::new("/tmp/t"));
        assert_eq!(shares.len(), 2, "{shares:?}");
        assert_eq!(shares[1].dir, Path::new("/tmp/t"));
        assert!(!shares[1].writable);
    }

    #[test]
    fn script_quotes_every_word() {
        let script = write_script(
            &[job(&["it's"])],
            &[("SEESAW_REQUIRE_ORACLES".into(), "1".into())],
            30,
        )
        .unwrap();

        assert!(
            script.contains("export SEESAW_REQUIRE_ORACLES='1'\n"),
            "{script}"
        );
        assert!(
            script.contains("'--exact' '--include-ignored' '--show-output' '--test-threads="),
            "{script}"
        );
        assert!(script.contains("' 'it'\\''s'\n"), "{script}");
        assert!(
            script.contains("job '0' '30' '/src/crates/xtask' 'xtask' '0.1.0'"),
            "{script}"
        );
    }

    #[test]
    fn script_runs_in_bash() {
        let dir = std::env::temp_dir().join(format!("xtask-jobs-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut echo = job(&["t"]);
        echo.binary.package_dir = dir.clone();
        echo.binary.executable = "/bin/echo".into();
        fs::write(dir.join("run.sh"), write_script(&[echo], &[], 30).unwrap()).unwrap();

        let status = Command::new("bash")
            .arg(dir.join("run.sh"))
            .status()
            .unwrap();
        let result = read_result(&dir, 0).unwrap();
        fs::remove_dir_all(&dir).unwrap();

        assert!(status.success());
        assert_eq!(result.status, Some(0));
        assert_eq!(
            result.log,
            format!(
                "--exact --include-ignored --show-output {} t\n",
                test_threads_arg()
            )
        );
    }
}
