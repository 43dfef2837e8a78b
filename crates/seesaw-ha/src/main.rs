//! `seesaw_ha`: VRRPv3 mastership between the two nodes.

use clap::Parser;
use seesaw_runtime::flags::GoBool;
use seesaw_runtime::{GlogFlags, exit_not_implemented, parse_go_flags};

/// Decides which node of the pair is master, speaking VRRPv3 to the peer.
#[derive(Parser, Debug)]
#[command(name = "seesaw_ha")]
struct Flags {
    /// Engine socket to fetch the HA configuration from and report state to.
    #[arg(long = "engine", default_value = "/var/run/seesaw/engine/engine.sock")]
    engine: String,

    /// Period between HA configuration re-reads (Go duration).
    #[arg(long = "config_check_interval", default_value = "15s")]
    config_check_interval: String,

    /// Consecutive failed configuration reads tolerated.
    #[arg(long = "config_check_max_failures", default_value_t = 15)]
    config_check_max_failures: u32,

    /// Pause between failed configuration reads (Go duration).
    #[arg(long = "config_check_retry_delay", default_value = "2s")]
    config_check_retry_delay: String,

    /// Pause between configuration reads at start-up (Go duration).
    #[arg(long = "init_config_retry_delay", default_value = "5s")]
    init_config_retry_delay: String,

    /// Advertisement interval while master (Go duration).
    #[arg(long = "master_advert_interval", default_value = "500ms")]
    master_advert_interval: String,

    /// Let a backup with a higher priority take over from the master.
    #[arg(long = "preempt", num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    preempt: GoBool,

    /// Period between state reports to the engine (Go duration).
    #[arg(long = "status_report_interval", default_value = "3s")]
    status_report_interval: String,

    /// Consecutive failed state reports tolerated.
    #[arg(long = "status_report_max_failures", default_value_t = 15)]
    status_report_max_failures: u32,

    /// Pause between failed state reports (Go duration).
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

    #[command(flatten)]
    glog: GlogFlags,
}

fn main() {
    let _flags: Flags = parse_go_flags(std::env::args());
    exit_not_implemented("seesaw_ha");
}
