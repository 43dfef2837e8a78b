//! Runs the real `seesaw_watchdog` binary with fake services.
//!
//! Each fake service is one shell script (`fake.sh NAME RECORDS MODE`) that
//! appends `start <time>` and `term <time>` lines to `RECORDS/NAME.events`
//! and its pid to `RECORDS/NAME.pids`. The timing checks use wide bounds,
//! because the host is shared and the fakes are shell scripts.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The fake service. Modes: `run` exits 0 on SIGTERM, `stubborn` records
/// SIGTERM but keeps running, `exit0` and `exit1` exit at once with that
/// status, and `output` writes to stdout and stderr, records facts about
/// its process in `RECORDS/NAME.info`, then runs. `long_second_run` exits 1
/// at once, except that its second run lasts 61 s and records `exit <time>`.
const FAKE_SERVICE: &str = r#"#!/bin/sh
name=$1
records=$2
mode=$3
now() { date +%s.%N; }
echo "start $(now)" >> "$records/$name.events"
echo $$ >> "$records/$name.pids"
case $mode in
exit0) exit 0 ;;
exit1) exit 1 ;;
long_second_run)
    if [ "$(grep -c '^start ' "$records/$name.events")" -eq 2 ]; then
        sleep 61
        echo "exit $(now)" >> "$records/$name.events"
    fi
    exit 1 ;;
output)
    echo "stdout line from $name"
    echo "stderr line from $name" >&2
    {
        echo "argv $(tr '\0' ' ' < /proc/$$/cmdline)"
        echo "stdin $(readlink /proc/$$/fd/0)"
        echo "pid $$"
        echo "pgid $(cut -d' ' -f5 /proc/$$/stat)"
        echo "notify ${NOTIFY_SOCKET:-unset}"
        # The watchdog sets the priority just after the spawn.
        sleep 0.5
        echo "nice $(cut -d' ' -f19 /proc/$$/stat)"
        echo "ids $(id -u) $(id -g) $(id -G)"
    } > "$records/$name.info.tmp"
    mv "$records/$name.info.tmp" "$records/$name.info"
    ;;
esac
if [ "$mode" = stubborn ]; then
    trap 'echo "term $(now)" >> "$records/$name.events"' TERM
else
    trap 'echo "term $(now)" >> "$records/$name.events"; exit 0' TERM
fi
while :; do sleep 0.1; done
"#;

/// How long a test waits for the watchdog to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(40);

/// A temporary directory with the fake service, a running watchdog and
/// cleanup of every process the test started.
struct Harness {
    dir: tempfile::TempDir,
    watchdog: Option<Child>,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("records")).unwrap();
        let fake = dir.path().join("fake.sh");
        fs::write(&fake, FAKE_SERVICE).unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        Harness {
            dir,
            watchdog: None,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn records(&self) -> PathBuf {
        self.path("records")
    }

    /// Returns a config section that runs the fake through /bin/sh, so
    /// /proc shows the argv[0] the watchdog chose.
    fn service(&self, name: &str, mode: &str, extra: &str) -> String {
        format!(
            "[{name}]\nbinary = /bin/sh\nargs = {} {name} {} {mode}\n{extra}\n\n",
            self.path("fake.sh").display(),
            self.records().display()
        )
    }

    /// Writes `config` and starts the watchdog with `env` added.
    fn start(&mut self, config: &str, env: &[(&str, &Path)]) {
        let config_path = self.path("watchdog.cfg");
        fs::write(&config_path, config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_seesaw_watchdog"));
        command
            .arg(format!("-config={}", config_path.display()))
            .arg(format!("-log_dir={}", self.path("watchdog-logs").display()))
            .arg(format!("-child_log_dir={}", self.path("logs").display()))
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        self.watchdog = Some(command.spawn().unwrap());
    }

    /// Returns the `(kind, seconds since the epoch)` lines a fake recorded.
    fn events(&self, name: &str) -> Vec<(String, f64)> {
        let text =
            fs::read_to_string(self.records().join(format!("{name}.events"))).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let (kind, time) = line.split_once(' ')?;
                Some((kind.to_string(), time.parse().ok()?))
            })
            .collect()
    }

    fn times(&self, name: &str, kind: &str) -> Vec<f64> {
        self.events(name)
            .into_iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, time)| time)
            .collect()
    }

    fn pids(&self, name: &str) -> Vec<i32> {
        fs::read_to_string(self.records().join(format!("{name}.pids")))
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.trim().parse().ok())
            .collect()
    }

    fn all_pids(&self) -> Vec<i32> {
        let Ok(entries) = fs::read_dir(self.records()) else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter_map(|name| name.strip_suffix(".pids").map(str::to_string))
            .flat_map(|name| self.pids(&name))
            .collect()
    }

    fn watchdog_log(&self) -> String {
        fs::read_to_string(self.path("watchdog-logs/seesaw_watchdog.INFO")).unwrap_or_default()
    }

    fn watchdog_pid(&self) -> Pid {
        Pid::from_raw(self.watchdog.as_ref().unwrap().id() as i32)
    }

    fn assert_watchdog_running(&mut self) {
        let status = self.watchdog.as_mut().unwrap().try_wait().unwrap();
        assert!(status.is_none(), "the watchdog exited with {status:?}");
    }

    /// Sends SIGTERM to the watchdog and waits for it to exit.
    fn terminate(&mut self) -> ExitStatus {
        kill(self.watchdog_pid(), Signal::SIGTERM).unwrap();
        self.wait_exit()
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let child = self.watchdog.as_mut().unwrap();
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.watchdog = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the watchdog did not exit within {EXIT_TIMEOUT:?}"
            );
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        // Each service runs in a process group of its own, which also contains
        // its `sleep`.
        for pid in self.all_pids() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Polls `condition` every 50 ms until it holds, panicking with `what`
/// after `timeout`.
fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        sleep(Duration::from_millis(50));
    }
}

fn process_exists(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

fn gaps(times: &[f64]) -> Vec<f64> {
    times.windows(2).map(|pair| pair[1] - pair[0]).collect()
}

#[test]
fn failed_service_restarts_with_backoff() {
    let mut harness = Harness::new();
    let config = harness.service("crash", "exit1", "") + &harness.service("clean", "exit0", "");
    harness.start(&config, &[]);

    // Expected: 2 s + 5 s, then 2 s + 10 s.
    wait_for("three starts of crash", Duration::from_secs(45), || {
        harness.times("crash", "start").len() >= 3
    });
    harness.assert_watchdog_running();

    let crash = gaps(&harness.times("crash", "start"));
    assert!(
        (6.0..15.0).contains(&crash[0]),
        "first crash gap {}",
        crash[0]
    );
    assert!(
        (11.0..22.0).contains(&crash[1]),
        "second crash gap {}",
        crash[1]
    );

    // A clean exit resets the failures, so every pause is the 2 s base.
    let clean = gaps(&harness.times("clean", "start"));
    assert!(
        clean.len() >= 3,
        "clean restarted only {} times",
        clean.len()
    );
    for gap in &clean {
        assert!((1.5..6.0).contains(gap), "clean gap {gap} in {clean:?}");
    }

    let log = harness.watchdog_log();
    assert!(
        log.contains("Service crash exited with exit status: 1"),
        "{log}"
    );
    assert!(
        log.contains("Restarting service crash in 7 s (1 consecutive failures)"),
        "{log}"
    );
    assert!(
        log.contains("Restarting service crash in 12 s (2 consecutive failures)"),
        "{log}"
    );

    assert!(harness.terminate().success());
}

/// Takes about 70 s, because a service must run for a whole minute
/// (`HEALTHY_RUN`) before its failure count starts over.
#[test]
fn healthy_run_resets_backoff() {
    let mut harness = Harness::new();
    let config = harness.service("flaky", "long_second_run", "");
    harness.start(&config, &[]);

    // Expected: a crash, 2 s + 5 s, a run of 61 s ending in a crash, 2 s
    // (not 2 s + 10 s), then a crash counted as the first again.
    wait_for("the third start of flaky", Duration::from_secs(120), || {
        harness.times("flaky", "start").len() >= 3
    });
    wait_for(
        "the restart after the third start",
        Duration::from_secs(15),
        || {
            harness
                .watchdog_log()
                .matches("Restarting service flaky in 7 s (1 consecutive failures)")
                .count()
                >= 2
        },
    );
    harness.assert_watchdog_running();

    let starts = harness.times("flaky", "start");
    let long_run_exit = harness.times("flaky", "exit");
    assert_eq!(long_run_exit.len(), 1, "{:?}", harness.events("flaky"));
    let first_gap = starts[1] - starts[0];
    assert!((6.0..15.0).contains(&first_gap), "first gap {first_gap}");
    let ran_for = long_run_exit[0] - starts[1];
    assert!(ran_for >= 60.0, "the second run lasted only {ran_for} s");
    let pause = starts[2] - long_run_exit[0];
    assert!(
        (1.5..6.0).contains(&pause),
        "restarted {pause} s after the long run, not after the base 2 s"
    );

    let log = harness.watchdog_log();
    let restarts: Vec<&str> = log
        .lines()
        .filter_map(|line| line.split_once("] Restarting service flaky in "))
        .map(|(_, rest)| rest)
        .collect();
    assert_eq!(
        restarts[..3],
        [
            "7 s (1 consecutive failures)",
            "2 s (0 consecutive failures)",
            "7 s (1 consecutive failures)",
        ],
        "{log}"
    );

    assert!(harness.terminate().success());
}

#[test]
fn dependent_waits_for_dependency_spawn() {
    let mut harness = Harness::new();
    // The dependency's binary is missing at first, so it cannot be spawned.
    let base_binary = harness.path("base.sh");
    let config = format!(
        "[base]\nbinary = {}\nargs = base {} run\n\n{}",
        base_binary.display(),
        harness.records().display(),
        harness.service("dependent", "run", "dependency = base")
    );
    harness.start(&config, &[]);

    wait_for("the failed spawn of base", Duration::from_secs(10), || {
        harness
            .watchdog_log()
            .contains("Failed to start service base")
    });
    sleep(Duration::from_secs(2));
    assert!(harness.times("dependent", "start").is_empty());
    let log = harness.watchdog_log();
    assert!(
        log.contains("Service dependent waiting for base to start"),
        "{log}"
    );

    // Renaming makes the whole script appear at once, so an exec never
    // finds it half-written.
    let staged = harness.path("base.sh.new");
    fs::copy(harness.path("fake.sh"), &staged).unwrap();
    fs::rename(&staged, &base_binary).unwrap();

    // base is retried 7 s after its failed spawn.
    wait_for("the start of dependent", Duration::from_secs(30), || {
        !harness.times("dependent", "start").is_empty()
    });
    let base_start = harness.times("base", "start")[0];
    let dependent_start = harness.times("dependent", "start")[0];
    // The two scripts race to write their records after their spawns, so
    // allow a little disorder here and check the spawn order in the log.
    assert!(
        dependent_start + 0.5 >= base_start,
        "dependent started at {dependent_start}, base at {base_start}"
    );
    let log = harness.watchdog_log();
    let base_spawn = log.find("Starting service base...").unwrap();
    let dependent_spawn = log.find("Starting service dependent...").unwrap();
    assert!(base_spawn < dependent_spawn, "{log}");

    assert!(harness.terminate().success());
}

#[test]
fn sigterm_stops_in_reverse_order() {
    let mut harness = Harness::new();
    let config = harness.service("ncc", "run", "")
        + &harness.service("engine", "run", "dependency = ncc")
        + &harness.service("ha", "run", "dependency = engine")
        + &harness.service("ecu", "run", "dependency = engine");
    harness.start(&config, &[]);
    let names = ["ncc", "engine", "ha", "ecu"];
    wait_for("every service to start", Duration::from_secs(15), || {
        names
            .iter()
            .all(|name| !harness.times(name, "start").is_empty())
    });

    let status = harness.terminate();
    assert!(status.success(), "the watchdog exited with {status}");

    let term = |name: &str| {
        let times = harness.times(name, "term");
        assert_eq!(times.len(), 1, "{name} got SIGTERM {} times", times.len());
        times[0]
    };
    let (ncc, engine, ha, ecu) = (term("ncc"), term("engine"), term("ha"), term("ecu"));
    assert!(ha < engine, "ha stopped at {ha}, engine at {engine}");
    assert!(ecu < engine, "ecu stopped at {ecu}, engine at {engine}");
    assert!(engine < ncc, "engine stopped at {engine}, ncc at {ncc}");

    for name in names {
        assert_eq!(
            harness.times(name, "start").len(),
            1,
            "{name} was restarted"
        );
        for pid in harness.pids(name) {
            assert!(!process_exists(pid), "{name} (pid {pid}) still runs");
        }
    }
}

#[test]
fn stubborn_child_killed_after_term_timeout() {
    let mut harness = Harness::new();
    let config = harness.service("stubborn", "stubborn", "term_timeout = 1s");
    harness.start(&config, &[]);
    wait_for("the start of stubborn", Duration::from_secs(15), || {
        !harness.times("stubborn", "start").is_empty()
    });

    let signalled_at = Instant::now();
    let status = harness.terminate();
    let took = signalled_at.elapsed();
    assert!(status.success(), "the watchdog exited with {status}");
    assert!(took >= Duration::from_millis(900), "stopped after {took:?}");
    assert!(took < Duration::from_secs(15), "stopped after {took:?}");

    assert_eq!(harness.times("stubborn", "term").len(), 1);
    for pid in harness.pids("stubborn") {
        assert!(!process_exists(pid), "stubborn (pid {pid}) still runs");
    }
    let log = harness.watchdog_log();
    assert!(log.contains("sending SIGKILL"), "{log}");
    assert!(
        log.contains("Service stubborn exited with signal: 9 (SIGKILL)"),
        "{log}"
    );
}

/// Reads `RECORDS/NAME.info` as `key value` lines.
fn read_info(harness: &Harness, name: &str) -> Vec<(String, String)> {
    let path = harness.records().join(format!("{name}.info"));
    wait_for(
        &format!("{}", path.display()),
        Duration::from_secs(15),
        || path.exists(),
    );
    fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(key, value)| (key.to_string(), value.trim().to_string()))
        .collect()
}

fn info_value(info: &[(String, String)], key: &str) -> String {
    info.iter()
        .find(|(k, _)| k == key)
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| panic!("no {key} in {info:?}"))
}

#[test]
fn child_output_goes_to_log_file() {
    let mut harness = Harness::new();
    // The socket only has to exist so the child's environment can be
    // checked for it.
    let socket_path = harness.path("notify.sock");
    let _socket = UnixDatagram::bind(&socket_path).unwrap();
    let config = harness.service("out", "output", "priority = 7");
    harness.start(&config, &[("NOTIFY_SOCKET", &socket_path)]);

    let info = read_info(&harness, "out");
    let argv = info_value(&info, "argv");
    assert!(argv.starts_with("seesaw_out "), "argv {argv}");
    assert_eq!(info_value(&info, "stdin"), "/dev/null");
    assert_eq!(info_value(&info, "pgid"), info_value(&info, "pid"));
    assert_eq!(info_value(&info, "notify"), "unset");
    assert_eq!(info_value(&info, "nice"), "7");

    let logs = harness.path("logs");
    let target = fs::read_link(logs.join("seesaw_out.log")).unwrap();
    let target = target.to_str().unwrap().to_string();
    let stamp = target.strip_prefix("seesaw_out.log.").unwrap();
    assert_eq!(stamp.len(), "YYYYMMDD-HHMMSS".len(), "{target}");
    assert_eq!(stamp.as_bytes()[8], b'-', "{target}");
    assert!(
        stamp.replace('-', "").bytes().all(|b| b.is_ascii_digit()),
        "{target}"
    );

    let file = logs.join(&target);
    wait_for("both output lines", Duration::from_secs(10), || {
        let text = fs::read_to_string(&file).unwrap();
        text.contains("stdout line from out") && text.contains("stderr line from out")
    });
    let text = fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Log file for seesaw_out (stdout/stderr)");
    assert!(lines[1].starts_with("Created at: "), "{}", lines[1]);
    assert_eq!(lines[1].len(), "Created at: YYYY/MM/DD HH:MM:SS".len());

    assert!(harness.terminate().success());
}

#[test]
fn ready_sent_after_every_spawn() {
    let mut harness = Harness::new();
    let socket_path = harness.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let config = harness.service("first", "run", "")
        + &harness.service("second", "run", "dependency = first");
    harness.start(&config, &[("NOTIFY_SOCKET", &socket_path)]);

    let mut buffer = [0u8; 512];
    let length = socket.recv(&mut buffer).unwrap();
    let message = String::from_utf8_lossy(&buffer[..length]).to_string();
    assert!(message.lines().any(|line| line == "READY=1"), "{message:?}");
    let log = harness.watchdog_log();
    assert!(log.contains("Starting service first..."), "{log}");
    assert!(log.contains("Starting service second..."), "{log}");

    assert!(harness.terminate().success());
    let length = socket.recv(&mut buffer).unwrap();
    let message = String::from_utf8_lossy(&buffer[..length]).to_string();
    assert!(
        message.lines().any(|line| line == "STOPPING=1"),
        "{message:?}"
    );
}

impl Harness {
    /// Writes `config` and runs the watchdog on it to the end, for a
    /// configuration it rejects before starting anything.
    fn run_to_exit(&self, config: &str) -> Output {
        let config_path = self.path("watchdog.cfg");
        fs::write(&config_path, config).unwrap();
        Command::new(env!("CARGO_BIN_EXE_seesaw_watchdog"))
            .arg(format!("-config={}", config_path.display()))
            .arg(format!("-log_dir={}", self.path("watchdog-logs").display()))
            .arg(format!("-child_log_dir={}", self.path("logs").display()))
            .env_remove("JOURNAL_STREAM")
            .output()
            .unwrap()
    }
}

#[test]
fn config_errors_exit_1() {
    let harness = Harness::new();
    let output = harness
        .run_to_exit("[nobinary]\nargs = -v\n\n[badpriority]\nbinary = /bin/true\npriority = 99\n");

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let prefix = format!("{}:", harness.path("watchdog.cfg").display());
    assert!(
        stderr.contains(&format!("{prefix}1:1: service \"nobinary\" has no binary")),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{prefix}6:")), "{stderr}");
    assert!(stderr.contains("priority = 99 is out of range"), "{stderr}");
    assert!(!harness.path("logs").exists(), "a service was started");
}

#[test]
fn missing_dependency_exits_1() {
    let harness = Harness::new();
    let output = harness.run_to_exit(
        "[ncc]\nbinary = /bin/true\n\n[engine]\nbinary = /bin/true\ndependency = nccd\n",
    );

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "{}:6:14: dependency = nccd in [engine] names no defined service: define a [nccd] \
         section or remove the dependency from [engine]",
        harness.path("watchdog.cfg").display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(harness.watchdog_log().contains(&expected));
    assert!(!harness.path("logs").exists(), "a service was started");
}

#[test]
fn journal_stderr_replaces_log_files() {
    let harness = Harness::new();
    let temp_dir = harness.path("tmp");
    fs::create_dir(&temp_dir).unwrap();
    let (mut reader, writer) = std::io::pipe().unwrap();
    let stat = nix::sys::stat::fstat(&writer).unwrap();
    let journal_stream = format!("{}:{}", stat.st_dev, stat.st_ino);

    // Without -log_dir and with standard error matching JOURNAL_STREAM, as
    // under systemd, the errors go to standard error and no file is made.
    let mut command = Command::new(env!("CARGO_BIN_EXE_seesaw_watchdog"));
    command
        .arg(format!("-config={}", harness.path("missing.cfg").display()))
        .env("JOURNAL_STREAM", &journal_stream)
        .env("TMPDIR", &temp_dir)
        .stderr(writer);
    let status = command.status().unwrap();
    drop(command);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut reader, &mut stderr).unwrap();

    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("failed to read the file"), "{stderr}");
    let files: Vec<_> = fs::read_dir(&temp_dir).unwrap().collect();
    assert!(files.is_empty(), "{files:?}");
}

/// Returns the unit file that `cargo xtask install` and the Debian package
/// install.
fn unit_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../systemd/seesaw_watchdog.service")
}

/// Prints the SKIPPED line that `cargo xtask test` counts, or panics when
/// SEESAW_REQUIRE_ORACLES=1, as under CI, where the skip would hide a gap.
fn skip_unless_required(test: &str, reason: &str) {
    assert_ne!(
        std::env::var("SEESAW_REQUIRE_ORACLES").as_deref(),
        Ok("1"),
        "{test} cannot run and SEESAW_REQUIRE_ORACLES=1: {reason}"
    );
    println!("SKIPPED {test}: {reason}");
}

#[test]
fn systemd_unit_passes_verify() {
    const TEST: &str = "systemd_unit_passes_verify";
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if let Err(error) = &analyze {
        skip_unless_required(
            TEST,
            &format!("systemd-analyze not found ({error}); apt-get install systemd"),
        );
        return;
    }

    // verify checks that ExecStart is executable, and the unit names the
    // installed path, so the copy points at the binary just built instead.
    let harness = Harness::new();
    let text = fs::read_to_string(unit_path()).unwrap();
    assert!(text.contains("ExecStart=/usr/local/seesaw/seesaw_watchdog\n"));
    let text = text.replace(
        "ExecStart=/usr/local/seesaw/seesaw_watchdog",
        &format!("ExecStart={}", env!("CARGO_BIN_EXE_seesaw_watchdog")),
    );
    let copy = harness.path("seesaw_watchdog.service");
    fs::write(&copy, text).unwrap();

    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() && stderr.contains("Failed to initialize manager") {
        skip_unless_required(TEST, &format!("systemd-analyze cannot run here: {stderr}"));
        return;
    }
    // Other units on the host may draw warnings too, so only lines about
    // this unit count.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("seesaw_watchdog.service"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
    assert!(output.status.success(), "{stderr}");
}

/// Returns the `(section, key, value)` entries of a systemd unit, in file
/// order, without comments and blank lines.
fn unit_entries(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut entries = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("unit line without '=': {line}"));
        entries.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    entries
}

/// Returns the single value of `key` in [Service], panicking when the key
/// is missing or set more than once.
fn service_value<'a>(entries: &'a [(String, String, String)], key: &str) -> &'a str {
    let values: Vec<&str> = entries
        .iter()
        .filter(|(section, k, _)| section == "Service" && k == key)
        .map(|(_, _, value)| value.as_str())
        .collect();
    assert_eq!(values.len(), 1, "{key} in [Service]: {values:?}");
    values[0]
}

#[test]
fn systemd_unit_has_seesaw_keys() {
    let entries = unit_entries(&fs::read_to_string(unit_path()).unwrap());

    assert_eq!(service_value(&entries, "Type"), "notify");
    assert_eq!(
        service_value(&entries, "ExecStart"),
        "/usr/local/seesaw/seesaw_watchdog"
    );
    // systemd signals only the watchdog, which stops the services in order.
    assert_eq!(service_value(&entries, "KillMode"), "process");
    assert_eq!(service_value(&entries, "Restart"), "always");
    assert!(
        ["true", "yes", "on", "1"].contains(&service_value(&entries, "PrivateTmp")),
        "PrivateTmp={}",
        service_value(&entries, "PrivateTmp")
    );

    for key in ["LimitNOFILE", "LimitNPROC"] {
        let value = service_value(&entries, key);
        // A limit is one number or soft:hard.
        for limit in value.split(':') {
            let limit: u64 = limit
                .parse()
                .unwrap_or_else(|_| panic!("{key}={value} is not a number of the form N or N:M"));
            assert!(limit >= 8192, "{key}={value} is below 8192");
        }
    }

    // A bare number is seconds, as in the shipped unit.
    let restart_sec = service_value(&entries, "RestartSec");
    let seconds: u64 = restart_sec
        .strip_suffix('s')
        .unwrap_or(restart_sec)
        .parse()
        .unwrap_or_else(|_| panic!("RestartSec={restart_sec} is not a number of seconds"));
    assert!(seconds > 0, "RestartSec={restart_sec}");

    let wanted_by: Vec<&str> = entries
        .iter()
        .filter(|(section, key, _)| section == "Install" && key == "WantedBy")
        .map(|(_, _, value)| value.as_str())
        .collect();
    assert_eq!(wanted_by, ["multi-user.target"]);
}

#[test]
#[ignore = "needs root: runs services as another user and with a negative nice value"]
fn root_services_run_with_configured_ids() {
    let mut harness = Harness::new();
    // The unprivileged service must reach the script and its records.
    fs::set_permissions(harness.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(harness.records(), fs::Permissions::from_mode(0o777)).unwrap();
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the user nobody exists");

    let config = harness.service("asnobody", "output", "user = nobody\npriority = -5")
        + &harness.service("asroot", "output", "");
    harness.start(&config, &[]);

    let info = read_info(&harness, "asnobody");
    let expected = format!("{} {} {}", nobody.uid, nobody.gid, nobody.gid);
    assert_eq!(info_value(&info, "ids"), expected);
    assert_eq!(info_value(&info, "nice"), "-5");

    // Without user, a service runs as uid 0 and gid 0 with no other groups.
    let info = read_info(&harness, "asroot");
    assert_eq!(info_value(&info, "ids"), "0 0 0");
    assert_eq!(info_value(&info, "nice"), "0");

    assert!(harness.terminate().success());
}

#[test]
fn unwritable_child_log_dir_skips_spawn() {
    // A file where the log directory should be makes every log file fail.
    let mut harness = Harness::new();
    let config = harness.service("svc", "run", "");
    fs::write(harness.path("logs"), "not a directory").unwrap();
    harness.start(&config, &[]);

    wait_for("the log file error", Duration::from_secs(10), || {
        harness
            .watchdog_log()
            .contains("Failed to create the log file for service svc")
    });
    harness.assert_watchdog_running();
    assert!(harness.times("svc", "start").is_empty());
    assert!(harness.terminate().success());
}
