//! `seesaw_healthcheck`: the backend health checker.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use seesaw_healthcheck::checker::CheckContext;
use seesaw_healthcheck::config;
use seesaw_healthcheck::daemon::{self, FileSource, LogSink, Settings};
use seesaw_healthcheck::engine::{EngineSink, EngineSource};
use seesaw_healthcheck::tls::TlsClients;
use seesaw_runtime::flags::GoBool;
use seesaw_runtime::{EXIT_FATAL, GlogFlags, logging, parse_go_flags, shutdown_signal};
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

    /// Engine socket to fetch the checks from and send the results to.
    #[arg(long = "engine", default_value = seesaw_ipc::DEFAULT_ENGINE_SOCKET)]
    engine: String,

    /// Failed result sends in a row after which they are logged as errors;
    /// sends are retried regardless.
    #[arg(long = "max_failures", default_value_t = 10)]
    max_failures: u32,

    /// Period between full status reports (Go duration).
    #[arg(long = "notify_interval", default_value = "15s")]
    notify_interval: String,

    /// Period between configuration fetches (Go duration).
    #[arg(long = "fetch_interval", default_value = "15s")]
    fetch_interval: String,

    /// Pause after a failed result send, doubling after each further failure
    /// up to 10s (Go duration).
    #[arg(long = "retry_delay", default_value = "2s")]
    retry_delay: String,

    /// Skip the real checks and report every check as passing.
    #[arg(long = "dry_run", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    dry_run: GoBool,

    /// JSON file of checks to run without an engine, logging state changes
    /// (not in the original; see docs/healthcheck.md). Without it the checks
    /// come from the engine.
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => fatal(&format!("failed to start the tokio runtime: {error}")),
    };
    match flags.config {
        Some(config_path) => run_from_file(&runtime, settings, config_path),
        None => run_with_engine(&runtime, settings, Path::new(&flags.engine)),
    }
    info!("stopping");
}

/// Runs the checks of a `-config` file and logs their state changes.
fn run_from_file(runtime: &tokio::runtime::Runtime, settings: Settings, config_path: PathBuf) {
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
    info!(
        "starting with {} checks from {}",
        file.checks.len(),
        config_path.display()
    );
    runtime.block_on(daemon::run(
        settings,
        CheckContext::new(tls),
        FileSource::new(config_path),
        LogSink::default(),
        shutdown_signal(),
    ));
}

/// Runs the checks the engine listening on `engine` requests and sends it
/// the results. An engine that is not up yet, or goes away, is retried.
fn run_with_engine(runtime: &tokio::runtime::Runtime, settings: Settings, engine: &Path) {
    info!(
        "starting with the checks of the engine at {}",
        engine.display()
    );
    runtime.block_on(async {
        daemon::run(
            settings,
            CheckContext::new(TlsClients::default()),
            EngineSource::new(engine),
            EngineSink::new(engine),
            shutdown_signal(),
        )
        .await;
    });
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
