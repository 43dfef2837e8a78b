//! `seesaw_healthcheck`: the backend health checker.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use seesaw_healthcheck::checker::CheckContext;
use seesaw_healthcheck::config;
use seesaw_healthcheck::daemon::{self, FileSource, LogSink, Settings};
use seesaw_healthcheck::tls::TlsClients;
use seesaw_runtime::flags::GoBool;
use seesaw_runtime::{EXIT_FATAL, GlogFlags, logging, parse_go_flags};
use tracing::{error, info};

/// Runs the health checks the engine requests and reports the results.
#[derive(Parser, Debug)]
#[command(name = "seesaw_healthcheck")]
struct Flags {
    /// Maximum wait after the first queued result before sending (Go duration).
    #[arg(long = "batch_delay", default_value = "100ms")]
    batch_delay: String,

    /// Send at once when this many results are queued.
    #[arg(long = "batch_size", default_value_t = 100)]
    batch_size: u32,

    /// Capacity of the internal result queue.
    #[arg(long = "channel_size", default_value_t = 1000)]
    channel_size: u32,

    /// Engine socket.
    #[arg(long = "engine", default_value = "/var/run/seesaw/engine/engine.sock")]
    engine: String,

    /// Attempts to send one batch before giving up.
    #[arg(long = "max_failures", default_value_t = 10)]
    max_failures: u32,

    /// Period between full status reports (Go duration).
    #[arg(long = "notify_interval", default_value = "15s")]
    notify_interval: String,

    /// Period between configuration fetches (Go duration).
    #[arg(long = "fetch_interval", default_value = "15s")]
    fetch_interval: String,

    /// Pause between failed batch sends (Go duration).
    #[arg(long = "retry_delay", default_value = "2s")]
    retry_delay: String,

    /// Skip the real checks and report every check as passing.
    #[arg(long = "dry_run", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    dry_run: GoBool,

    /// JSON file of checks to run without an engine, logging state changes
    /// (not in the original; see docs/healthcheck.md).
    #[arg(long = "config")]
    config: Option<PathBuf>,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let flags: Flags = parse_go_flags(std::env::args());
    logging::init("seesaw_healthcheck", &flags.glog);

    let settings = match settings(&flags) {
        Ok(settings) => settings,
        Err(message) => fatal(&message),
    };
    let Some(config_path) = flags.config.clone() else {
        fatal("the engine IPC is not written yet; run with -config FILE to check from a file");
    };
    // Loading once here makes a broken file a start-up error rather than a
    // retried fetch error.
    let file = match config::load(&config_path) {
        Ok(file) => file,
        Err(error) => fatal(&error.to_string()),
    };
    let tls = match &file.ca_file {
        Some(ca_file) => TlsClients::from_ca_file(ca_file),
        None => TlsClients::default(),
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => fatal(&format!("failed to start the tokio runtime: {error}")),
    };
    info!(
        "starting with {} checks from {}",
        file.checks.len(),
        config_path.display()
    );
    let source = FileSource::new(config_path);
    let result = runtime.block_on(daemon::run(
        settings,
        CheckContext::new(tls),
        source,
        LogSink::default(),
        shutdown_signal(),
    ));
    match result {
        Ok(()) => info!("stopping"),
        Err(error) => fatal(&error.to_string()),
    }
}

fn fatal(message: &str) -> ! {
    error!("{message}");
    std::process::exit(EXIT_FATAL);
}

fn settings(flags: &Flags) -> Result<Settings, String> {
    Ok(Settings {
        batch_delay: parse_duration("batch_delay", &flags.batch_delay)?,
        batch_size: flags.batch_size as usize,
        channel_size: flags.channel_size as usize,
        max_failures: flags.max_failures,
        notify_interval: parse_positive_duration("notify_interval", &flags.notify_interval)?,
        fetch_interval: parse_duration("fetch_interval", &flags.fetch_interval)?,
        retry_delay: parse_duration("retry_delay", &flags.retry_delay)?,
        dry_run: flags.dry_run.0,
    })
}

fn parse_duration(name: &str, value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|error| {
        format!("invalid -{name} {value:?}: {error}; use a duration such as 500ms")
    })
}

fn parse_positive_duration(name: &str, value: &str) -> Result<Duration, String> {
    let duration = parse_duration(name, value)?;
    if duration.is_zero() {
        return Err(format!("invalid -{name} {value:?}: it must be positive"));
    }
    Ok(duration)
}

/// Completes on SIGINT, SIGTERM or SIGQUIT, the signals the original stops
/// on.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};

    let watch = |kind: SignalKind| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(error) => {
            error!("failed to watch signal {kind:?}: {error}");
            None
        }
    };
    let mut interrupt = watch(SignalKind::interrupt());
    let mut terminate = watch(SignalKind::terminate());
    let mut quit = watch(SignalKind::quit());
    tokio::select! {
        Some(_) = async { interrupt.as_mut()?.recv().await } => {}
        Some(_) = async { terminate.as_mut()?.recv().await } => {}
        Some(_) = async { quit.as_mut()?.recv().await } => {}
        else => std::future::pending::<()>().await,
    }
    info!("received a stop signal");
}
