//! `seesaw_healthcheck`: the backend health checker.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use seesaw_healthcheck::checker::CheckContext;
use seesaw_healthcheck::config;
use seesaw_healthcheck::daemon::{self, DiscardSink, FileSource, Settings};
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
        DiscardSink,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use seesaw_runtime::flags::rewrite_go_args;

    /// Parses `args` (without the program name) as `main` does, but returns
    /// clap's error instead of exiting.
    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        let args = std::iter::once("seesaw_healthcheck")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        Flags::try_parse_from(rewrite_go_args(&Flags::command(), args))
    }

    #[test]
    fn defaults_match_original() {
        let flags = parse(&[]).unwrap();
        let settings = settings(&flags).unwrap();

        assert_eq!(settings.batch_delay, Duration::from_millis(100));
        assert_eq!(settings.batch_size, 100);
        assert_eq!(settings.channel_size, 1000);
        assert_eq!(settings.fetch_interval, Duration::from_secs(15));
        assert_eq!(settings.notify_interval, Duration::from_secs(15));
        assert_eq!(settings.retry_delay, Duration::from_secs(2));
        assert_eq!(settings.max_failures, 10);
        assert!(!settings.dry_run);
        assert_eq!(flags.engine, "/var/run/seesaw/engine/engine.sock");
        assert_eq!(flags.config, None);
    }

    #[test]
    fn go_style_flags_set_every_field() {
        let flags = parse(&[
            "-batch_delay=250ms",
            "-batch_size",
            "7",
            "--channel_size=9",
            "-fetch_interval=1m",
            "-notify_interval=3s",
            "-retry_delay=1.5s",
            "-max_failures=4",
            "-dry_run",
            "-engine=/tmp/engine.sock",
        ])
        .unwrap();
        let settings = settings(&flags).unwrap();

        assert_eq!(settings.batch_delay, Duration::from_millis(250));
        assert_eq!(settings.batch_size, 7);
        assert_eq!(settings.channel_size, 9);
        assert_eq!(settings.fetch_interval, Duration::from_secs(60));
        assert_eq!(settings.notify_interval, Duration::from_secs(3));
        assert_eq!(settings.retry_delay, Duration::from_millis(1500));
        assert_eq!(settings.max_failures, 4);
        assert!(settings.dry_run);
        assert_eq!(flags.engine, "/tmp/engine.sock");
    }

    #[test]
    fn dry_run_takes_go_boolean() {
        for (value, expected) in [("true", true), ("false", false), ("1", true), ("0", false)] {
            let flags = parse(&[&format!("-dry_run={value}")]).unwrap();
            assert_eq!(flags.dry_run.0, expected, "-dry_run={value}");
        }
        assert!(parse(&["-dry_run=maybe"]).is_err());
    }

    #[test]
    fn invalid_durations_rejected() {
        let flags = parse(&["-notify_interval=0s"]).unwrap();
        let error = settings(&flags).unwrap_err();
        assert!(error.contains("-notify_interval"), "{error}");
        assert!(error.contains("must be positive"), "{error}");

        let flags = parse(&["-batch_delay=soon"]).unwrap();
        let error = settings(&flags).unwrap_err();
        assert!(error.contains("invalid -batch_delay \"soon\""), "{error}");
    }
}
