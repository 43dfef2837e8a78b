//! `seesaw_ha`: VRRPv3 mastership between the two nodes.

mod daemon;
mod engine;
mod ipc;
mod net;

use std::net::IpAddr;
use std::num::NonZeroU8;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use seesaw_runtime::flags::GoBool;
use seesaw_runtime::{EXIT_FATAL, GlogFlags, logging, parse_go_flags};
use seesaw_vrrp::AdvertInterval;
use tracing::{error, info};

use crate::daemon::Settings;
use crate::engine::{HaConfig, TestMode};
use crate::ipc::{IpcEngine, IpcSettings};

/// Decides which node of the pair is master, speaking VRRPv3 to the peer.
#[derive(Parser, Debug)]
#[command(name = "seesaw_ha")]
struct Flags {
    /// Engine socket to fetch the HA configuration from and report state to.
    #[arg(long = "engine", default_value = seesaw_ipc::DEFAULT_ENGINE_SOCKET)]
    engine: String,

    /// Period between HA configuration re-reads (Go duration).
    #[arg(long = "config_check_interval", default_value = "15s")]
    config_check_interval: String,

    /// Failed configuration re-reads in a row after which they are logged
    /// as errors; re-reads are retried regardless.
    #[arg(long = "config_check_max_failures", default_value_t = 15)]
    config_check_max_failures: u32,

    /// Pause after a failed configuration re-read, doubling after each
    /// further failure up to 10s (Go duration).
    #[arg(long = "config_check_retry_delay", default_value = "2s")]
    config_check_retry_delay: String,

    /// How long calls to the engine may fail in a row before the node leaves
    /// the election, a master stepping down first; it rejoins when the
    /// engine responds again. 0 leaves at the first failure (Go duration;
    /// seesaw-rs only, not in Seesaw v2).
    #[arg(long = "engine_grace_period", default_value = "10s")]
    engine_grace_period: String,

    /// Pause between configuration reads at start-up (Go duration).
    #[arg(long = "init_config_retry_delay", default_value = "5s")]
    init_config_retry_delay: String,

    /// Comma-separated addresses to list in every advert, for a keepalived
    /// peer: exactly the virtual_ipaddress list of its instance. Empty by
    /// default, because a Seesaw v2 peer drops adverts that list addresses
    /// (seesaw-rs only, not in Seesaw v2).
    #[arg(long = "advert_addresses", default_value = "")]
    advert_addresses: String,

    /// Advertisement interval while master (Go duration).
    #[arg(long = "master_advert_interval", default_value = "500ms")]
    master_advert_interval: String,

    /// Let a backup with a higher priority take over from the master.
    #[arg(long = "preempt", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    preempt: GoBool,

    /// Period between state reports to the engine (Go duration).
    #[arg(long = "status_report_interval", default_value = "3s")]
    status_report_interval: String,

    /// Failed state reports in a row after which they are logged as errors;
    /// reports are retried regardless.
    #[arg(long = "status_report_max_failures", default_value_t = 15)]
    status_report_max_failures: u32,

    /// Pause after a failed state report, doubling after each further
    /// failure up to 10s (Go duration).
    #[arg(long = "status_report_retry_delay", default_value = "2s")]
    status_report_retry_delay: String,

    /// Take the configuration from the four flags below instead of the engine.
    #[arg(long = "test_mode", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    test_mode: GoBool,

    /// Local address in test mode.
    #[arg(long = "local_addr", default_value = "")]
    local_addr: String,

    /// Peer or multicast group address in test mode.
    #[arg(long = "remote_addr", default_value = "224.0.0.18")]
    remote_addr: String,

    /// VRRP priority in test mode.
    #[arg(long = "priority", default_value_t = 100)]
    priority: u32,

    /// VRRP virtual router ID in test mode.
    #[arg(long = "vrid", default_value_t = 100)]
    vrid: u32,

    /// Write the state to this file on every change, in both modes
    /// (seesaw-rs only, not in Seesaw v2). Lines of key=value: state, vrid,
    /// transitions, adverts_sent, adverts_received.
    #[arg(long = "status_file")]
    status_file: Option<PathBuf>,

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let flags: Flags = parse_go_flags(std::env::args());
    logging::init("seesaw_ha", &flags.glog);

    let (mode, settings) = match configure(&flags) {
        Ok(configured) => configured,
        Err(message) => {
            error!("{message}");
            std::process::exit(EXIT_FATAL);
        }
    };

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            error!("failed to start the tokio runtime: {error}");
            std::process::exit(EXIT_FATAL);
        }
    };
    let result = runtime.block_on(async {
        match mode {
            Mode::Test(mut engine) => daemon::run(&mut engine, settings).await,
            Mode::Engine {
                path,
                settings: ipc_settings,
                status_file,
            } => {
                info!("using the engine at {}", path.display());
                let mut engine = IpcEngine::start(&path, ipc_settings, status_file);
                daemon::run(&mut engine, settings).await
            }
        }
    });
    if let Err(error) = result {
        error!("{error}");
        std::process::exit(EXIT_FATAL);
    }
}

/// The source of the configuration.
#[derive(Debug)]
enum Mode {
    /// `-test_mode`: from the flags.
    Test(TestMode),
    /// From the engine listening on `path`.
    Engine {
        path: PathBuf,
        settings: IpcSettings,
        status_file: Option<PathBuf>,
    },
}

/// Checks the flags and returns the mode and the settings, or the error
/// message to exit with.
fn configure(flags: &Flags) -> Result<(Mode, Settings), String> {
    let advert_interval = parse_interval(&flags.master_advert_interval)?;
    let init_config_retry_delay =
        parse_positive_duration("init_config_retry_delay", &flags.init_config_retry_delay)?;
    let settings = Settings {
        advert_interval,
        preempt: flags.preempt.0,
        init_config_retry_delay,
        advert_addresses: parse_advert_addresses(&flags.advert_addresses)?,
    };

    if !flags.test_mode.0 {
        let ipc = IpcSettings {
            engine_grace_period: parse_duration("engine_grace_period", &flags.engine_grace_period)?,
            config_check_interval: parse_positive_duration(
                "config_check_interval",
                &flags.config_check_interval,
            )?,
            config_check_retry_delay: parse_positive_duration(
                "config_check_retry_delay",
                &flags.config_check_retry_delay,
            )?,
            config_check_max_failures: flags.config_check_max_failures,
            status_report_interval: parse_positive_duration(
                "status_report_interval",
                &flags.status_report_interval,
            )?,
            status_report_retry_delay: parse_positive_duration(
                "status_report_retry_delay",
                &flags.status_report_retry_delay,
            )?,
            status_report_max_failures: flags.status_report_max_failures,
        };
        let mode = Mode::Engine {
            path: PathBuf::from(&flags.engine),
            settings: ipc,
            status_file: flags.status_file.clone(),
        };
        return Ok((mode, settings));
    }

    let local_addr: IpAddr = flags.local_addr.parse().map_err(|_| {
        format!(
            "invalid -local_addr {:?}: set it to this node's IPv4 or IPv6 address",
            flags.local_addr
        )
    })?;
    let remote_addr: IpAddr = flags.remote_addr.parse().map_err(|_| {
        format!(
            "invalid -remote_addr {:?}: set it to the peer's address or the group 224.0.0.18",
            flags.remote_addr
        )
    })?;
    if local_addr.is_ipv4() != remote_addr.is_ipv4() {
        return Err(format!(
            "-local_addr {local_addr} and -remote_addr {remote_addr} are of different address families"
        ));
    }
    let config = HaConfig {
        enabled: true,
        local_addr,
        remote_addr,
        priority: parse_u8("priority", flags.priority)?,
        vrid: parse_u8("vrid", flags.vrid)?,
    };
    let engine = TestMode::new(config, flags.status_file.clone());
    Ok((Mode::Test(engine), settings))
}

/// Parses the comma-separated `-advert_addresses`. An advert counts its
/// addresses in one byte, so it lists at most 255.
fn parse_advert_addresses(value: &str) -> Result<Vec<IpAddr>, String> {
    let addresses = value
        .split(',')
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| {
            text.parse::<IpAddr>().map_err(|_| {
                format!("invalid -advert_addresses entry {text:?}: use IPv4 or IPv6 addresses separated by commas")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addresses.len() > usize::from(u8::MAX) {
        return Err(format!(
            "invalid -advert_addresses: {} addresses, but an advert lists at most 255",
            addresses.len()
        ));
    }
    Ok(addresses)
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

fn parse_interval(value: &str) -> Result<AdvertInterval, String> {
    let duration = parse_duration("master_advert_interval", value)?;
    AdvertInterval::from_duration(duration)
        .map_err(|error| format!("invalid -master_advert_interval: {error}"))
}

/// Checks a priority or VRID. Seesaw v2 truncates such values to 8 bits
/// silently; seesaw-rs rejects 0 and values above 255 instead.
fn parse_u8(name: &str, value: u32) -> Result<NonZeroU8, String> {
    u8::try_from(value)
        .ok()
        .and_then(NonZeroU8::new)
        .ok_or_else(|| format!("invalid -{name} {value}: it must be from 1 to 255"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_range_checked() {
        assert_eq!(parse_u8("priority", 1).unwrap().get(), 1);
        assert_eq!(parse_u8("priority", 255).unwrap().get(), 255);
        assert!(parse_u8("priority", 0).is_err());
        assert!(parse_u8("priority", 256).is_err());
    }

    #[test]
    fn advert_interval_parsed() {
        assert_eq!(parse_interval("500ms").unwrap().centis(), 50);
        assert_eq!(parse_interval("1s").unwrap().centis(), 100);
        assert_eq!(parse_interval("30ms").unwrap().centis(), 3);
        assert!(parse_interval("505ms").is_err());
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("fast").is_err());
    }

    #[test]
    fn advert_addresses_parsed() {
        assert_eq!(parse_advert_addresses("").unwrap(), Vec::<IpAddr>::new());
        let expected: Vec<IpAddr> = vec![
            "198.18.0.100".parse().unwrap(),
            "198.18.0.101".parse().unwrap(),
        ];
        assert_eq!(
            parse_advert_addresses("198.18.0.100, 198.18.0.101").unwrap(),
            expected
        );
        let error = parse_advert_addresses("198.18.0.100,vip").unwrap_err();
        assert!(error.contains("\"vip\""), "{error}");
        let too_many = vec!["198.18.0.100"; 256].join(",");
        assert!(parse_advert_addresses(&too_many).is_err());
    }

    #[test]
    fn test_mode_flags_configure() {
        let flags: Flags = Flags::parse_from([
            "seesaw_ha",
            "--test_mode=true",
            "--local_addr=198.18.0.1",
            "--priority=255",
            "--vrid=60",
        ]);
        let (_, settings) = configure(&flags).unwrap();
        assert_eq!(settings.advert_interval, AdvertInterval::DEFAULT);
        assert!(!settings.preempt);
    }

    #[test]
    fn mixed_families_rejected() {
        let flags: Flags =
            Flags::parse_from(["seesaw_ha", "--test_mode=true", "--local_addr=2001:db8::1"]);
        let error = configure(&flags).unwrap_err();
        assert!(error.contains("different address families"), "{error}");
    }

    #[test]
    fn engine_mode_by_default() {
        let flags: Flags = Flags::parse_from(["seesaw_ha", "--status_report_interval=1s"]);
        let (mode, _) = configure(&flags).unwrap();
        let Mode::Engine { path, settings, .. } = mode else {
            panic!("not in engine mode");
        };
        assert_eq!(path, PathBuf::from("/var/run/seesaw/engine/engine.sock"));
        assert_eq!(settings.config_check_interval, Duration::from_secs(15));
        assert_eq!(settings.status_report_interval, Duration::from_secs(1));
        assert_eq!(settings.status_report_retry_delay, Duration::from_secs(2));
        assert_eq!(settings.config_check_max_failures, 15);
        assert_eq!(settings.engine_grace_period, Duration::from_secs(10));
    }

    #[test]
    fn engine_grace_period_may_be_zero() {
        let flags: Flags = Flags::parse_from(["seesaw_ha", "--engine_grace_period=0s"]);
        let (mode, _) = configure(&flags).unwrap();
        let Mode::Engine { settings, .. } = mode else {
            panic!("not in engine mode");
        };
        assert_eq!(settings.engine_grace_period, Duration::ZERO);
    }

    #[test]
    fn zero_report_interval_rejected() {
        let flags: Flags = Flags::parse_from(["seesaw_ha", "--status_report_interval=0s"]);
        let error = configure(&flags).unwrap_err();
        assert!(error.contains("must be positive"), "{error}");
    }
}
