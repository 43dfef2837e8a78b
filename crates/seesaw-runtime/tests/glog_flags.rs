//! Runs each of the seven Seesaw binaries with the glog flags that unit
//! files and watchdog.cfg entries written for Seesaw v2 pass, and checks
//! that every binary accepts them and that the daemons write glog's files.
//!
//! Each binary gets arguments that make it stop right after start-up with
//! a known error (a missing file, a zero interval, no root), so a run shows
//! that flag parsing succeeded without starting a daemon. The binaries are
//! the workspace's, built beside this test, as `cargo test --workspace` and
//! `cargo xtask test` build them.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::unistd::{Uid, User};

/// One binary and the arguments that make it exit just after start-up.
struct Case {
    program: &'static str,
    /// Arguments after the glog flags. `{dir}` becomes a scratch directory.
    args: &'static [&'static str],
    exit_code: i32,
    /// Part of the error that shows the binary got past flag parsing.
    message: &'static str,
    /// Whether the binary writes glog files. The CLI accepts the flags but
    /// writes no log.
    writes_logs: bool,
}

const CASES: &[Case] = &[
    Case {
        program: "seesaw_watchdog",
        args: &["-config={dir}/missing.cfg"],
        exit_code: 1,
        message: "failed to read the file",
        writes_logs: true,
    },
    Case {
        program: "seesaw_ncc",
        args: &["-socket={dir}/ncc.sock"],
        exit_code: 2,
        message: "seesaw_ncc must run as root",
        writes_logs: true,
    },
    Case {
        program: "seesaw_engine",
        args: &["-conf={dir}/missing.cfg"],
        exit_code: 2,
        message: "invalid node configuration",
        writes_logs: true,
    },
    Case {
        program: "seesaw_ha",
        args: &["-init_config_retry_delay=0s"],
        exit_code: 2,
        message: "invalid -init_config_retry_delay \"0s\": it must be positive",
        writes_logs: true,
    },
    Case {
        program: "seesaw_healthcheck",
        args: &["-notify_interval=0s"],
        exit_code: 2,
        message: "invalid -notify_interval \"0s\": it must be positive",
        writes_logs: true,
    },
    Case {
        program: "seesaw_ecu",
        args: &["-stats_interval=0s"],
        exit_code: 2,
        message: "invalid -stats_interval=0s",
        writes_logs: true,
    },
    Case {
        program: "seesaw_cli",
        args: &["-engine={dir}/engine.sock", "-c", "show ha"],
        exit_code: 1,
        message: "Failed to connect to engine",
        writes_logs: false,
    },
];

/// What clap prints when it rejects the command line.
const FLAG_ERRORS: &[&str] = &[
    "error: unexpected argument",
    "error: invalid value",
    "error: a value is required",
    "Usage:",
    "For more information, try",
];

/// The user that runs seesaw_ncc when the test runs as root, so that the
/// NCC stops at its root check instead of changing the host's IPVS table.
const UNPRIVILEGED_USER: &str = "nobody";

/// Returns the path of `program`, built into the target directory beside
/// the `deps` directory that this test runs from.
fn binary(program: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let path = dir.join(program);
    assert!(
        path.is_file(),
        "{} is missing; build every binary first with `cargo build --workspace --bins` or run \
         `cargo test --workspace`",
        path.display()
    );
    path
}

/// Creates a scratch directory that `user`, if set, may also write to.
fn scratch_dir(user: Option<&User>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    if user.is_some() {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    }
    dir
}

/// Returns the user that runs `case`: `nobody` for the NCC under root, else
/// `None` for the test's own user.
fn run_as(case: &Case) -> Option<User> {
    if case.program != "seesaw_ncc" || !Uid::effective().is_root() {
        return None;
    }
    let user = User::from_name(UNPRIVILEGED_USER)
        .unwrap()
        .unwrap_or_else(|| panic!("the user {UNPRIVILEGED_USER} does not exist"));
    Some(user)
}

/// Runs `case` with `glog_flags` before its own arguments, with `{dir}`
/// replaced by `dir`. Returns the output and the process id.
fn run(case: &Case, glog_flags: &[String], dir: &Path, user: Option<&User>) -> (Output, u32) {
    let own_args = case
        .args
        .iter()
        .map(|arg| arg.replace("{dir}", &dir.display().to_string()));
    let mut program = binary(case.program);
    if user.is_some() {
        // The user may not reach the target directory, as when it lies in
        // root's home directory.
        let copy = dir.join(case.program);
        fs::copy(&program, &copy).unwrap();
        program = copy;
    }
    let mut command = Command::new(program);
    command
        .args(glog_flags)
        .args(own_args)
        // Under systemd this would send the logs to the journal, not to files.
        .env_remove("JOURNAL_STREAM")
        .env("TMPDIR", dir);
    if let Some(user) = user {
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("failed to run {}: {error}", case.program));
    let pid = child.id();
    (child.wait_with_output().unwrap(), pid)
}

/// Checks that `case` got past flag parsing: its exit code and message, and
/// no usage error from clap.
fn assert_parsed(case: &Case, flags: &[String], output: &Output) {
    let program = case.program;
    let stderr = String::from_utf8_lossy(&output.stderr);
    for flag_error in FLAG_ERRORS {
        assert!(
            !stderr.contains(flag_error),
            "{program} rejected {flags:?}:\n{stderr}"
        );
    }
    assert_eq!(
        output.status.code(),
        Some(case.exit_code),
        "{program} with {flags:?}:\n{stderr}"
    );
    assert!(
        stderr.contains(case.message),
        "{program} with {flags:?} did not report {:?}:\n{stderr}",
        case.message
    );
}

/// Returns the short host name, as glog puts it in file names.
fn short_hostname() -> String {
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    host.split('.').next().unwrap().to_string()
}

/// Returns the names of the entries of `dir`, sorted, or none when `dir`
/// does not exist.
fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Checks glog's files in `log_dir` after one run of `case`: a
/// `<program>.<SEVERITY>` symlink per severity, pointing at
/// `<program>.<host>.<user>.log.<SEVERITY>.<YYYYMMDD-HHMMSS>.<pid>` with the
/// process id `pid`, which starts with glog's header and contains the error
/// line.
fn assert_glog_files(case: &Case, log_dir: &Path, user_name: &str, pid: u32) {
    let program = case.program;
    let names = entries(log_dir);
    let host = short_hostname();

    for severity in ["INFO", "WARNING", "ERROR"] {
        let link = log_dir.join(format!("{program}.{severity}"));
        let target = fs::read_link(&link)
            .unwrap_or_else(|error| {
                panic!("{}: {error}; the directory has {names:?}", link.display())
            })
            .into_os_string()
            .into_string()
            .unwrap();
        let prefix = format!("{program}.{host}.{user_name}.log.{severity}.");
        let rest = target
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{link:?} points at {target}, not {prefix}*"));
        let (stamp, file_pid) = rest
            .split_once('.')
            .unwrap_or_else(|| panic!("{target} has no .<pid> after the time stamp"));
        assert_eq!(stamp.len(), "YYYYMMDD-HHMMSS".len(), "{target}");
        assert_eq!(stamp.as_bytes()[8], b'-', "{target}");
        assert!(
            stamp.replace('-', "").bytes().all(|b| b.is_ascii_digit()),
            "{target}"
        );
        assert_eq!(file_pid, pid.to_string(), "{target}");

        let text = fs::read_to_string(log_dir.join(&target)).unwrap();
        assert!(
            text.starts_with("Log file created at: "),
            "{target}:\n{text}"
        );
        assert!(
            text.lines()
                .any(|line| line.starts_with('E') && line.contains(case.message)),
            "{target} has no error line with {:?}:\n{text}",
            case.message
        );
    }
}

/// Returns the entries of the scratch directory `dir` that the run of
/// `case` created, leaving out the copy of its binary.
fn written_files(case: &Case, dir: &Path) -> Vec<String> {
    let mut names = entries(dir);
    names.retain(|name| name != case.program);
    names
}

fn user_name(user: Option<&User>) -> String {
    match user {
        Some(user) => user.name.clone(),
        None => User::from_uid(Uid::current()).unwrap().unwrap().name,
    }
}

#[test]
fn binaries_write_glog_files_to_log_dir() {
    for case in CASES {
        let user = run_as(case);
        let dir = scratch_dir(user.as_ref());
        let log_dir = dir.path().join("logs");
        let flags: Vec<String> = vec![
            format!("-log_dir={}", log_dir.display()),
            "-v=2".into(),
            "-alsologtostderr".into(),
            "-stderrthreshold=ERROR".into(),
            "-vmodule=x=1".into(),
        ];

        let (output, pid) = run(case, &flags, dir.path(), user.as_ref());

        assert_parsed(case, &flags, &output);
        if case.writes_logs {
            assert_glog_files(case, &log_dir, &user_name(user.as_ref()), pid);
        } else {
            assert_eq!(entries(&log_dir), Vec::<String>::new(), "{}", case.program);
        }
        // Nothing falls back to the temporary directory when -log_dir is set.
        let expected: &[&str] = if case.writes_logs { &["logs"] } else { &[] };
        assert_eq!(
            written_files(case, dir.path()),
            expected,
            "{}",
            case.program
        );
    }
}

#[test]
fn binaries_accept_every_glog_flag() {
    for case in CASES {
        let user = run_as(case);
        let dir = scratch_dir(user.as_ref());
        let log_dir = dir.path().join("logs");
        // Go's flag package also takes a value in the next argument.
        let flags: Vec<String> = vec![
            "-log_dir".into(),
            log_dir.display().to_string(),
            "-v".into(),
            "2".into(),
            "-logtostderr".into(),
            "-alsologtostderr".into(),
            "-stderrthreshold".into(),
            "ERROR".into(),
            "-vmodule".into(),
            "x=1".into(),
        ];

        let (output, _) = run(case, &flags, dir.path(), user.as_ref());

        assert_parsed(case, &flags, &output);
        // -logtostderr writes standard error only, even with -log_dir.
        assert_eq!(
            written_files(case, dir.path()),
            Vec::<String>::new(),
            "{}",
            case.program
        );
    }
}
