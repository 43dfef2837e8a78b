//! `seesaw_watchdog`: the supervisor of the other daemons.

mod child_log;
mod notify;
mod supervisor;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use seesaw_config::watchdog_config::{ServiceConfig, WatchdogConfig};
use seesaw_runtime::{GlogFlags, logging, parse_go_flags};
use tracing::{error, info, warn};

use crate::supervisor::{Service, Supervisor};

/// Exit status for an invalid configuration, as the other seesaw-rs tools
/// use.
const EXIT_CONFIG: i32 = 1;

/// Starts the Seesaw daemons in dependency order, restarts them when they
/// exit and stops them in reverse order.
#[derive(Parser, Debug)]
#[command(name = "seesaw_watchdog")]
struct Flags {
    /// Watchdog configuration file.
    #[arg(long = "config", default_value = "/etc/seesaw/watchdog.cfg")]
    config: String,

    /// Directory for the services' standard output and error files,
    /// seesaw_<service>.log.<YYYYMMDD-HHMMSS> (seesaw-rs only; Seesaw v2
    /// always used /var/log/seesaw).
    #[arg(long = "child_log_dir", default_value = "/var/log/seesaw")]
    child_log_dir: String,

    /// Validate -config, print the services it defines and exit: 0 when
    /// the file is valid, 1 otherwise (seesaw-rs only).
    #[arg(long = "check", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    check: seesaw_runtime::flags::GoBool,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let flags: Flags = parse_go_flags(std::env::args());
    if flags.check.0 {
        std::process::exit(check_config(&flags.config));
    }
    logging::init("seesaw_watchdog", &flags.glog);

    // Blocked before any thread starts, so every thread inherits the mask
    // and only the signal thread receives these. A signal that arrives
    // before the services start is kept pending, not lost. Children get an
    // empty mask before exec (see supervisor::build_command).
    let signals = handled_signals();
    if let Err(errno) = signals.thread_block() {
        error!("Failed to block the shutdown signals: {errno}");
        std::process::exit(seesaw_runtime::EXIT_FATAL);
    }

    let config = load_config(&flags.config);
    let services = match prepare_services(&config.services) {
        Ok(services) => services,
        Err(messages) => {
            for message in messages {
                error!("{message}");
            }
            std::process::exit(EXIT_CONFIG);
        }
    };

    info!("Seesaw watchdog starting...");
    let supervisor = Arc::new(Supervisor::new(
        services,
        PathBuf::from(&flags.child_log_dir),
    ));
    spawn_signal_thread(Arc::clone(&supervisor), signals);
    let run_threads: Vec<_> = (0..supervisor.services().len())
        .map(|index| {
            let supervisor = Arc::clone(&supervisor);
            thread::spawn(move || supervisor.run(index))
        })
        .collect();

    if supervisor.wait_all_started_or_shutdown() {
        info!("Every service has been started");
        send_notification("READY=1\nSTATUS=Every service has been started");
    }
    supervisor.wait_shutdown_requested();
    send_notification("STOPPING=1\nSTATUS=Stopping the services");

    let stop_threads: Vec<_> = (0..supervisor.services().len())
        .map(|index| {
            let supervisor = Arc::clone(&supervisor);
            thread::spawn(move || supervisor.stop(index))
        })
        .collect();
    for handle in stop_threads.into_iter().chain(run_threads) {
        if handle.join().is_err() {
            error!("A service thread panicked");
        }
    }
    info!("Every service has stopped; exiting");
    std::process::exit(0);
}

/// Loads the configuration, logging its warnings. Exits with
/// [`EXIT_CONFIG`] after logging every finding when the file is invalid.
/// Validates the configuration offline: the services go to standard output,
/// the findings to standard error. Returns the exit status.
fn check_config(path: &str) -> i32 {
    match WatchdogConfig::load(path) {
        Ok((config, warnings)) => {
            for warning in &warnings {
                eprintln!("{warning}");
            }
            println!("{path}: {} services", config.services.len());
            for service in &config.services {
                let after = service
                    .dependency
                    .as_deref()
                    .map_or(String::new(), |d| format!(", after {d}"));
                println!(
                    "  {} {} {} (priority {}, term_timeout {:?}{after})",
                    service.name,
                    service.binary.display(),
                    service.args.join(" "),
                    service.priority,
                    service.term_timeout
                );
            }
            0
        }
        Err(rejected) => {
            eprintln!("{rejected}");
            EXIT_CONFIG
        }
    }
}

fn load_config(path: &str) -> WatchdogConfig {
    match WatchdogConfig::load(path) {
        Ok((config, warnings)) => {
            for warning in warnings {
                warn!("{warning}");
            }
            config
        }
        Err(rejected) => {
            for diagnostic in &rejected.0 {
                if diagnostic.is_error() {
                    error!("{diagnostic}");
                } else {
                    warn!("{diagnostic}");
                }
            }
            error!("Invalid configuration {path}: fix the errors above and restart");
            std::process::exit(EXIT_CONFIG);
        }
    }
}

/// Turns the configured services into runnable ones: resolves dependencies
/// to indexes and users to ids. Returns every error found.
fn prepare_services(configs: &[ServiceConfig]) -> Result<Vec<Service>, Vec<String>> {
    let mut errors = Vec::new();
    let mut services = Vec::with_capacity(configs.len());
    let running_as_root = nix::unistd::geteuid().is_root();

    for config in configs {
        let dependency = config
            .dependency
            .as_ref()
            .and_then(|name| configs.iter().position(|other| &other.name == name));
        let credentials = match &config.user {
            Some(user) => match nix::unistd::User::from_name(user) {
                Ok(Some(entry)) => Some((entry.uid.as_raw(), entry.gid.as_raw())),
                Ok(None) => {
                    errors.push(format!(
                        "service {}: user {user:?} not found: create the user or change \
                         its user option",
                        config.name
                    ));
                    None
                }
                Err(errno) => {
                    errors.push(format!(
                        "service {}: failed to look up user {user:?}: {errno}",
                        config.name
                    ));
                    None
                }
            },
            // Seesaw v2 ran such services as uid 0 and gid 0 with no
            // supplementary groups. Doing that when not root would fail every
            // spawn, so a non-root watchdog keeps its own ids.
            None if running_as_root => Some((0, 0)),
            None => None,
        };
        services.push(Service {
            name: config.name.clone(),
            binary: config.binary.clone(),
            args: config.args.clone(),
            dependency,
            dependents: Vec::new(),
            priority: config.priority,
            term_timeout: config.term_timeout,
            credentials,
        });
    }

    for index in 0..services.len() {
        if let Some(dependency) = services[index].dependency {
            services[dependency].dependents.push(index);
        }
    }
    if errors.is_empty() {
        Ok(services)
    } else {
        Err(errors)
    }
}

fn handled_signals() -> SigSet {
    let mut signals = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGTERM,
        Signal::SIGUSR1,
    ] {
        signals.add(signal);
    }
    signals
}

/// Starts the thread that turns SIGINT, SIGQUIT and SIGTERM into a shutdown
/// request and SIGUSR1 into a log of the service states.
fn spawn_signal_thread(supervisor: Arc<Supervisor>, signals: SigSet) {
    thread::spawn(move || {
        loop {
            let signal = match signals.wait() {
                Ok(signal) => signal,
                Err(errno) => {
                    error!("Waiting for signals failed: {errno}");
                    continue;
                }
            };
            if signal == Signal::SIGUSR1 {
                info!("Received {signal}, logging the service states");
                supervisor.log_states();
            } else if supervisor.request_shutdown() {
                info!("Received {signal}, initiating shutdown...");
            } else {
                info!("Received {signal}, but a shutdown is already in progress");
            }
        }
    });
}

/// Sends a systemd notification, logging a failure. The watchdog works
/// without systemd, so a failure never stops it.
fn send_notification(message: &str) {
    match notify::notify(message) {
        Ok(true) => {
            let first = message.lines().next().unwrap_or(message);
            info!("Sent {first} to systemd");
        }
        Ok(false) => {}
        Err(error) => warn!("Failed to send {message:?} to systemd: {error}"),
    }
}
