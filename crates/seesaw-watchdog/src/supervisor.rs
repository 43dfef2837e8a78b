//! Starting, restarting and stopping the services.
//!
//! Each service has a run thread that waits for its dependency to have been
//! spawned once, then spawns the service, waits for it to exit and spawns it
//! again after a delay, until the service is stopped. At shutdown each
//! service has a stop thread that waits until every service depending on it
//! has stopped, then sends SIGTERM and, after the term timeout, SIGKILL.
//!
//! All service states share one mutex and one condition variable, because
//! a service waits on the states of others (its dependency when starting,
//! its dependents when stopping) and there are only a handful of services.

use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Local;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use tracing::{error, info, warn};

use crate::child_log;
use crate::notify::NOTIFY_SOCKET;

/// The pause after every exit before the service is spawned again.
pub const RESTART_DELAY: Duration = Duration::from_secs(2);
/// The extra pause per consecutive failure.
pub const RESTART_BACKOFF: Duration = Duration::from_secs(5);
/// The maximum extra pause, reached after 12 consecutive failures.
pub const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A service that ran at least this long before it exited counts as
/// healthy, so its failure count starts over.
pub const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// One service, ready to run.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub binary: PathBuf,
    pub args: Vec<String>,
    /// The index of the service that must have been spawned first.
    pub dependency: Option<usize>,
    /// The indexes of the services whose dependency this is.
    pub dependents: Vec<usize>,
    pub priority: i32,
    pub term_timeout: Duration,
    /// The user and group ids to run as, or `None` to keep the watchdog's.
    pub credentials: Option<(u32, u32)>,
}

impl Service {
    /// Returns the program name the service runs under, which is also its
    /// argv[0] and the name of its log files.
    pub fn program(&self) -> String {
        format!("seesaw_{}", self.name)
    }
}

/// The run state of one service, guarded by [`Supervisor::state`].
#[derive(Debug, Default)]
struct ServiceState {
    /// The running child, cleared before the child is reaped so that a stop
    /// never signals a reused process id.
    pid: Option<Pid>,
    /// Whether the service has been spawned at least once. It stays true
    /// after the child exits, as in Seesaw v2.
    started: bool,
    /// Whether the stop of the service has begun, which forbids new spawns.
    stopping: bool,
    /// Whether the run thread has ended.
    stopped: bool,
    /// Consecutive failures: failed spawns and unclean short runs.
    failures: u32,
    spawns: u64,
}

/// The result of one attempt to run a service.
#[derive(Debug)]
pub enum Outcome {
    /// The log file could not be created, so nothing was spawned.
    Skipped,
    /// The stop began before the spawn.
    Stopping,
    /// Spawning or waiting failed.
    Failed,
    /// The child exited after running for the given time.
    Exited { success: bool, ran_for: Duration },
}

/// Returns the failure count after `outcome`, given the count before it.
///
/// Seesaw v2 reset the count only on exit status 0. Here a run of at least
/// [`HEALTHY_RUN`] also resets it, so a daemon that crashes once a day is
/// not restarted as slowly as one that crashes on start-up.
pub fn failures_after(failures: u32, outcome: &Outcome) -> u32 {
    match outcome {
        Outcome::Skipped | Outcome::Stopping => failures,
        Outcome::Failed => failures.saturating_add(1),
        Outcome::Exited { success, ran_for } => {
            if *success || *ran_for >= HEALTHY_RUN {
                0
            } else {
                failures.saturating_add(1)
            }
        }
    }
}

/// Returns the pause before the next spawn after `failures` consecutive
/// failures: 2 s plus 5 s per failure, with at most 60 s of the latter.
pub fn restart_delay(failures: u32) -> Duration {
    let backoff = RESTART_BACKOFF
        .saturating_mul(failures)
        .min(RESTART_BACKOFF_MAX);
    RESTART_DELAY + backoff
}

/// The services and their shared state.
pub struct Supervisor {
    services: Vec<Service>,
    child_log_dir: PathBuf,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    services: Vec<ServiceState>,
    shutdown_requested: bool,
}

impl Supervisor {
    pub fn new(services: Vec<Service>, child_log_dir: PathBuf) -> Supervisor {
        let states = services.iter().map(|_| ServiceState::default()).collect();
        Supervisor {
            services,
            child_log_dir,
            state: Mutex::new(State {
                services: states,
                shutdown_requested: false,
            }),
            changed: Condvar::new(),
        }
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update keeps the state consistent, so a panic in another
        // thread leaves nothing half-written.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait_while<'a>(
        &'a self,
        guard: MutexGuard<'a, State>,
        condition: impl FnMut(&mut State) -> bool,
    ) -> MutexGuard<'a, State> {
        self.changed
            .wait_while(guard, condition)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits while `condition` holds, for at most `timeout`. Returns the
    /// guard and whether the wait timed out.
    fn wait_timeout_while<'a>(
        &'a self,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
        condition: impl FnMut(&mut State) -> bool,
    ) -> (MutexGuard<'a, State>, bool) {
        let (guard, result) = self
            .changed
            .wait_timeout_while(guard, timeout, condition)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (guard, result.timed_out())
    }

    /// Records a shutdown request. Returns false when one was already made.
    pub fn request_shutdown(&self) -> bool {
        let mut state = self.lock();
        let first = !state.shutdown_requested;
        state.shutdown_requested = true;
        self.changed.notify_all();
        first
    }

    /// Waits until every service has been spawned once or a shutdown was
    /// requested. Returns true in the first case.
    pub fn wait_all_started_or_shutdown(&self) -> bool {
        let state = self.wait_while(self.lock(), |state| {
            !state.shutdown_requested && !state.services.iter().all(|s| s.started)
        });
        !state.shutdown_requested
    }

    pub fn wait_shutdown_requested(&self) {
        let _state = self.wait_while(self.lock(), |state| !state.shutdown_requested);
    }

    /// Logs the state of every service, for SIGUSR1.
    pub fn log_states(&self) {
        let state = self.lock();
        for (service, status) in self.services.iter().zip(&state.services) {
            let pid = status
                .pid
                .map_or_else(|| "none".to_string(), |pid| pid.to_string());
            info!(
                "Service {}: pid {pid}, spawned {} times, {} consecutive failures, \
                 stopping {}, stopped {}",
                service.name, status.spawns, status.failures, status.stopping, status.stopped
            );
        }
    }

    /// Runs service `index` until it is stopped: the run thread's body.
    pub fn run(&self, index: usize) {
        let service = &self.services[index];
        if let Some(dependency) = service.dependency {
            info!(
                "Service {} waiting for {} to start",
                service.name, self.services[dependency].name
            );
            let _state = self.wait_while(self.lock(), |state| {
                !state.services[dependency].started && !state.services[index].stopping
            });
        }

        loop {
            let outcome = self.run_once(index);
            if matches!(outcome, Outcome::Stopping) {
                break;
            }

            let mut state = self.lock();
            let failures = failures_after(state.services[index].failures, &outcome);
            state.services[index].failures = failures;
            if state.services[index].stopping {
                break;
            }
            let delay = restart_delay(failures);
            info!(
                "Restarting service {} in {} s ({failures} consecutive failures)",
                service.name,
                delay.as_secs()
            );
            let (state, _) =
                self.wait_timeout_while(state, delay, |state| !state.services[index].stopping);
            if state.services[index].stopping {
                break;
            }
        }

        let mut state = self.lock();
        state.services[index].stopped = true;
        self.changed.notify_all();
    }

    /// Spawns service `index` once and waits for it to exit.
    fn run_once(&self, index: usize) -> Outcome {
        let service = &self.services[index];
        let program = service.program();

        let log_file = match child_log::create(&self.child_log_dir, &program, &Local::now()) {
            Ok(file) => file,
            Err(error) => {
                error!(
                    "Failed to create the log file for service {} in {}: {error}; \
                     not starting it",
                    service.name,
                    self.child_log_dir.display()
                );
                return Outcome::Skipped;
            }
        };
        let (mut reader, writer) = match io::pipe() {
            Ok(pipe) => pipe,
            Err(error) => {
                error!(
                    "Failed to create the output pipe for service {}: {error}",
                    service.name
                );
                return Outcome::Failed;
            }
        };
        let mut command = match build_command(service, writer) {
            Ok(command) => command,
            Err(error) => {
                error!("Failed to set up service {}: {error}", service.name);
                return Outcome::Failed;
            }
        };

        // Spawning under the lock means a stop either finds the new pid or
        // has already forbidden the spawn.
        let mut child = {
            let mut state = self.lock();
            if state.services[index].stopping {
                return Outcome::Stopping;
            }
            info!("Starting service {}...", service.name);
            match command.spawn() {
                Ok(child) => {
                    state.services[index].pid = Some(child_pid(&child));
                    state.services[index].spawns += 1;
                    child
                }
                Err(error) => {
                    error!(
                        "Failed to start service {} ({}): {error}",
                        service.name,
                        service.binary.display()
                    );
                    return Outcome::Failed;
                }
            }
        };
        // The command owns the parent's copies of the pipe's write end. The
        // copy below reads end-of-file only after they are closed.
        drop(command);
        let started_at = Instant::now();
        let pid = child_pid(&child);

        let name = service.name.clone();
        let mut log_file = log_file;
        thread::spawn(move || {
            if let Err(error) = io::copy(&mut reader, &mut log_file) {
                error!("Failed to copy the output of service {name} to its log file: {error}");
            }
        });

        set_priority(service, pid);
        {
            let mut state = self.lock();
            state.services[index].started = true;
            self.changed.notify_all();
        }

        let status = self.wait_child(index, &mut child, pid);
        let ran_for = started_at.elapsed();
        match status {
            Ok(status) => {
                log_exit(service, status, ran_for);
                Outcome::Exited {
                    success: status.success(),
                    ran_for,
                }
            }
            Err(error) => {
                error!(
                    "Failed to wait for service {} (pid {pid}): {error}",
                    service.name
                );
                Outcome::Failed
            }
        }
    }

    /// Waits for the child to exit, clears its pid and reaps it.
    fn wait_child(&self, index: usize, child: &mut Child, pid: Pid) -> io::Result<ExitStatus> {
        // WNOWAIT leaves the child a zombie, so its pid cannot be reused
        // while a stop thread may still signal it.
        loop {
            match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => {
                    warn!("waitid for pid {pid} failed: {errno}; reaping it directly");
                    break;
                }
            }
        }
        self.lock().services[index].pid = None;
        child.wait()
    }

    /// Stops service `index` after every service depending on it has
    /// stopped: the stop thread's body.
    pub fn stop(&self, index: usize) {
        let service = &self.services[index];
        let mut state = self.wait_while(self.lock(), |state| {
            service
                .dependents
                .iter()
                .any(|&dependent| !state.services[dependent].stopped)
        });
        state.services[index].stopping = true;
        self.changed.notify_all();

        if let Some(pid) = state.services[index].pid {
            info!("Stopping service {} (pid {pid})...", service.name);
            send_signal(service, pid, Signal::SIGTERM);
        }
        let (state, timed_out) = self.wait_timeout_while(state, service.term_timeout, |state| {
            !state.services[index].stopped
        });
        let state = if timed_out {
            if let Some(pid) = state.services[index].pid {
                warn!(
                    "Service {} (pid {pid}) did not exit within {:?} of SIGTERM; sending SIGKILL",
                    service.name, service.term_timeout
                );
                send_signal(service, pid, Signal::SIGKILL);
            }
            self.wait_while(state, |state| !state.services[index].stopped)
        } else {
            state
        };
        drop(state);
        info!("Service {} stopped", service.name);
    }
}

/// Builds the command for one spawn, with `output` as standard output and
/// standard error.
fn build_command(service: &Service, output: io::PipeWriter) -> io::Result<Command> {
    let mut command = Command::new(&service.binary);
    command
        .arg0(service.program())
        .args(&service.args)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        // A group of its own keeps a Ctrl-C on the watchdog's terminal from
        // reaching the services, which the watchdog stops in order instead.
        .process_group(0)
        // These describe the watchdog's own standard error and notification
        // channel, not the child's.
        .env_remove(NOTIFY_SOCKET)
        .env_remove("JOURNAL_STREAM");
    // SAFETY: the closure runs in the forked child before exec and calls
    // only sigprocmask, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            // The watchdog blocks its shutdown signals in every thread, and a
            // child inherits that mask (std 1.95 does not reset it), so the
            // child could not receive SIGTERM without this.
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(io::Error::from)
        });
    }
    if let Some((uid, gid)) = service.credentials {
        // std clears the supplementary groups when it changes the user id.
        command.uid(uid).gid(gid);
    }
    Ok(command)
}

fn child_pid(child: &Child) -> Pid {
    // Linux pids are at most 2^22, so they always fit.
    Pid::from_raw(child.id() as i32)
}

/// Applies the service's nice value; failure is only logged, as in Seesaw v2.
fn set_priority(service: &Service, pid: Pid) {
    // SAFETY: setpriority takes only integers and touches no memory of ours.
    let result = unsafe {
        libc::setpriority(
            libc::PRIO_PROCESS,
            pid.as_raw() as libc::id_t,
            service.priority,
        )
    };
    if result != 0 {
        warn!(
            "Failed to set the priority of service {} (pid {pid}) to {}: {}",
            service.name,
            service.priority,
            io::Error::last_os_error()
        );
    }
}

fn send_signal(service: &Service, pid: Pid, signal: Signal) {
    if let Err(errno) = kill(pid, signal) {
        warn!(
            "Failed to send {signal} to service {} (pid {pid}): {errno}",
            service.name
        );
    }
}

fn log_exit(service: &Service, status: ExitStatus, ran_for: Duration) {
    let seconds = ran_for.as_secs_f64();
    if status.success() {
        info!(
            "Service {} exited with {status} after {seconds:.1} s",
            service.name
        );
    } else {
        warn!(
            "Service {} exited with {status} after {seconds:.1} s",
            service.name
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_delay_grows_and_caps() {
        assert_eq!(restart_delay(0), Duration::from_secs(2));
        assert_eq!(restart_delay(1), Duration::from_secs(7));
        assert_eq!(restart_delay(2), Duration::from_secs(12));
        assert_eq!(restart_delay(12), Duration::from_secs(62));
        assert_eq!(restart_delay(13), Duration::from_secs(62));
        assert_eq!(restart_delay(u32::MAX), Duration::from_secs(62));
    }

    #[test]
    fn failures_reset_on_clean_exit() {
        let outcome = Outcome::Exited {
            success: true,
            ran_for: Duration::from_millis(10),
        };
        assert_eq!(failures_after(4, &outcome), 0);
    }

    #[test]
    fn failures_reset_after_long_run() {
        let outcome = Outcome::Exited {
            success: false,
            ran_for: HEALTHY_RUN,
        };
        assert_eq!(failures_after(4, &outcome), 0);
    }

    #[test]
    fn failures_grow_on_short_crash() {
        let outcome = Outcome::Exited {
            success: false,
            ran_for: Duration::from_secs(59),
        };
        assert_eq!(failures_after(4, &outcome), 5);
    }

    #[test]
    fn failures_grow_on_spawn_failure() {
        assert_eq!(failures_after(0, &Outcome::Failed), 1);
        assert_eq!(failures_after(u32::MAX, &Outcome::Failed), u32::MAX);
    }

    #[test]
    fn failures_unchanged_when_skipped() {
        assert_eq!(failures_after(3, &Outcome::Skipped), 3);
        assert_eq!(failures_after(3, &Outcome::Stopping), 3);
    }
}
