//! `/metrics`: the latest collection in the Prometheus text exposition
//! format, version 0.0.4.
//!
//! The engine's series come from the latest collection only. A call that
//! failed leaves its series out rather than repeating old values, and
//! `seesaw_engine_up` shows whether the engine answered at all.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use seesaw_cli::render::{ha_state_name, override_state_name, protocol_name};
use seesaw_ipc::engine_proto::{
    CheckMode, CheckState, CheckStatusList, ConfigStatusReply, Destination, HaState, HaStatus,
    IpvsStats, Service, VserverList,
};

use crate::stats::{CallFailure, Stats};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Responses of the control server by HTTP status code.
#[derive(Debug, Default)]
pub struct RequestCounts {
    by_code: Mutex<BTreeMap<u16, u64>>,
}

impl RequestCounts {
    pub fn count(&self, code: u16) {
        *self
            .by_code
            .lock()
            .expect("request counts lock poisoned")
            .entry(code)
            .or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<u16, u64> {
        self.by_code
            .lock()
            .expect("request counts lock poisoned")
            .clone()
    }
}

type Labels = Vec<(&'static str, String)>;

/// One metric family and its samples.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(Labels, f64)>,
}

impl Family {
    fn gauge(name: &'static str, help: &'static str) -> Family {
        Family {
            name,
            kind: "gauge",
            help,
            samples: Vec::new(),
        }
    }

    fn counter(name: &'static str, help: &'static str) -> Family {
        Family {
            kind: "counter",
            ..Family::gauge(name, help)
        }
    }

    fn with(mut self, labels: Labels, value: f64) -> Family {
        self.add(labels, value);
        self
    }

    fn add(&mut self, labels: Labels, value: f64) {
        self.samples.push((labels, value));
    }
}

/// Writes every family that has samples, in order.
fn render_families(families: &[Family]) -> String {
    let mut text = String::new();
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        let _ = writeln!(text, "# HELP {} {}", family.name, family.help);
        let _ = writeln!(text, "# TYPE {} {}", family.name, family.kind);
        for (labels, value) in &family.samples {
            text.push_str(family.name);
            if !labels.is_empty() {
                text.push('{');
                for (index, (name, value)) in labels.iter().enumerate() {
                    if index > 0 {
                        text.push(',');
                    }
                    let _ = write!(text, "{name}=\"{}\"", escape_label(value));
                }
                text.push('}');
            }
            let _ = writeln!(text, " {}", number(*value));
        }
    }
    text
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Formats a sample value as the format spells it.
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        value.to_string()
    }
}

fn flag(value: bool) -> f64 {
    if value { 1.0 } else { 0.0 }
}

/// Converts Unix milliseconds to seconds.
fn seconds(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// Renders the ECU's own counters and the latest collection.
pub fn render(stats: Option<&Stats>, requests: &RequestCounts) -> String {
    let mut families = collector_metrics(stats, requests);
    if let Some(stats) = stats {
        if let Ok(ha) = &stats.ha {
            families.extend(ha_metrics(ha));
        }
        if stats.engine_up() {
            families.extend(config_metrics(&stats.config));
        }
        if let Ok(cluster) = &stats.cluster {
            families.push(
                Family::gauge("seesaw_cluster_info", "The cluster's site name.")
                    .with(vec![("site", cluster.site.clone())], 1.0),
            );
        }
        if let Ok(vservers) = &stats.vservers {
            families.extend(vserver_metrics(vservers));
            families.extend(service_metrics(vservers));
            families.extend(destination_metrics(vservers));
        }
        if let Ok(checks) = &stats.checks {
            families.extend(check_metrics(checks));
        }
    }
    render_families(&families)
}

fn collector_metrics(stats: Option<&Stats>, requests: &RequestCounts) -> Vec<Family> {
    let up = stats.is_some_and(Stats::engine_up);
    let mut families = vec![
        Family::gauge(
            "seesaw_engine_up",
            "Whether the engine answered the last collection (1) or not (0).",
        )
        .with(vec![], flag(up)),
    ];

    if let Some(stats) = stats {
        let started = stats
            .collected_at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut errors = Family::counter(
            "seesaw_ecu_collection_errors_total",
            "Engine calls of the collections that failed, by call.",
        );
        for (call, count) in &stats.errors {
            errors.add(vec![("call", call.to_string())], *count as f64);
        }
        families.extend([
            Family::counter(
                "seesaw_ecu_collections_total",
                "Collections of the engine's state since the ECU started.",
            )
            .with(vec![], stats.collections as f64),
            errors,
            Family::gauge(
                "seesaw_ecu_last_collection_timestamp_seconds",
                "When the last collection started, in Unix time.",
            )
            .with(vec![], started.as_secs_f64()),
            Family::gauge(
                "seesaw_ecu_collection_duration_seconds",
                "How long the last collection took.",
            )
            .with(vec![], stats.duration.as_secs_f64()),
        ]);
    }

    let mut responses = Family::counter(
        "seesaw_ecu_control_requests_total",
        "Responses of the control server, by HTTP status code.",
    );
    for (code, count) in requests.snapshot() {
        responses.add(vec![("code", code.to_string())], count as f64);
    }
    families.push(responses);
    families
}

fn ha_metrics(ha: &HaStatus) -> Vec<Family> {
    let mut state = Family::gauge(
        "seesaw_ha_state",
        "The node's HA state: 1 for the current state, 0 for the others.",
    );
    for candidate in [
        HaState::Unknown,
        HaState::Backup,
        HaState::Disabled,
        HaState::Error,
        HaState::Leader,
        HaState::Shutdown,
    ] {
        let name = ha_state_name(candidate as i32);
        state.add(vec![("state", name)], flag(ha.state == candidate as i32));
    }

    let mut families = vec![state];
    if ha.since_ms != 0 {
        families.push(
            Family::gauge(
                "seesaw_ha_state_since_timestamp_seconds",
                "When the node entered its HA state, in Unix time.",
            )
            .with(vec![], seconds(ha.since_ms)),
        );
    }
    if ha.last_update_ms != 0 {
        families.push(
            Family::gauge(
                "seesaw_ha_last_update_timestamp_seconds",
                "When seesaw_ha last reported to the engine, in Unix time.",
            )
            .with(vec![], seconds(ha.last_update_ms)),
        );
    }
    families.extend([
        Family::counter(
            "seesaw_ha_transitions_total",
            "HA state transitions that seesaw_ha reported.",
        )
        .with(vec![], ha.transitions as f64),
        Family::counter(
            "seesaw_ha_advertisements_sent_total",
            "VRRP advertisements seesaw_ha sent.",
        )
        .with(vec![], ha.sent as f64),
        Family::counter(
            "seesaw_ha_advertisements_received_total",
            "VRRP advertisements seesaw_ha received.",
        )
        .with(vec![], ha.received as f64),
    ]);
    families
}

fn config_metrics(config: &Result<ConfigStatusReply, CallFailure>) -> Vec<Family> {
    let mut families = vec![
        Family::gauge(
            "seesaw_config_loaded",
            "Whether the engine has a cluster config in force (1) or none (0).",
        )
        .with(vec![], flag(config.is_ok())),
    ];
    let Ok(config) = config else {
        return families;
    };

    if config.last_update_ms != 0 {
        families.push(
            Family::gauge(
                "seesaw_config_last_update_timestamp_seconds",
                "When the config in force was loaded, in Unix time.",
            )
            .with(vec![], seconds(config.last_update_ms)),
        );
    }
    if config.last_attempt_ms != 0 {
        families.push(
            Family::gauge(
                "seesaw_config_last_attempt_timestamp_seconds",
                "When the engine last tried to load a config, in Unix time.",
            )
            .with(vec![], seconds(config.last_attempt_ms)),
        );
    }
    families.extend([
        Family::gauge(
            "seesaw_config_last_attempt_errors",
            "Errors that rejected the last config the engine tried to load; 0 when it loaded.",
        )
        .with(vec![], config.last_errors.len() as f64),
        Family::gauge(
            "seesaw_config_warnings",
            "Warnings about the config in force.",
        )
        .with(vec![], config.warnings.len() as f64),
    ]);
    if !config.source.is_empty() {
        families.push(
            Family::gauge(
                "seesaw_config_source_info",
                "Where the config in force came from: disk, peer or server.",
            )
            .with(vec![("source", config.source.clone())], 1.0),
        );
    }
    families
}

fn vserver_metrics(list: &VserverList) -> Vec<Family> {
    let mut enabled = Family::gauge(
        "seesaw_vserver_enabled",
        "Whether the vserver is enabled, after its override.",
    );
    let mut config_enabled = Family::gauge(
        "seesaw_vserver_config_enabled",
        "Whether cluster.pb enables the vserver.",
    );
    let mut overrides = Family::gauge(
        "seesaw_vserver_override",
        "The vserver's override: 1 for the current state, 0 for the others.",
    );
    for vserver in &list.vservers {
        let labels = vec![("vserver", vserver.name.clone())];
        enabled.add(labels.clone(), flag(vserver.enabled));
        config_enabled.add(labels.clone(), flag(vserver.config_enabled));
        let current = override_state_name(vserver.override_state);
        for state in ["default", "disabled", "enabled"] {
            overrides.add(with(&labels, "state", state), flag(state == current));
        }
    }
    vec![enabled, config_enabled, overrides]
}

/// Names a service as destinations are named: `192.0.2.1:80/TCP`,
/// `[2001:db8::1]:53/UDP`, or `fwm:300` for a firewall-mark service.
pub fn service_name(service: &Service) -> String {
    if service.fwmark != 0 {
        return format!("fwm:{}", service.fwmark);
    }
    let protocol = protocol_name(service.protocol);
    if service.family == 6 {
        format!("[{}]:{}/{protocol}", service.ip, service.port)
    } else {
        format!("{}:{}/{protocol}", service.ip, service.port)
    }
}

/// Returns `labels` with one more label.
fn with(labels: &Labels, name: &'static str, value: &str) -> Labels {
    let mut labels = labels.clone();
    labels.push((name, value.to_string()));
    labels
}

/// The IPVS counters of services or of destinations.
struct IpvsFamilies {
    connections: Family,
    packets: Family,
    bytes: Family,
}

impl IpvsFamilies {
    fn add(&mut self, labels: &Labels, stats: Option<&IpvsStats>) {
        let stats = stats.copied().unwrap_or_default();
        self.connections
            .add(labels.clone(), stats.connections as f64);
        self.packets
            .add(with(labels, "direction", "in"), stats.packets_in as f64);
        self.packets
            .add(with(labels, "direction", "out"), stats.packets_out as f64);
        self.bytes
            .add(with(labels, "direction", "in"), stats.bytes_in as f64);
        self.bytes
            .add(with(labels, "direction", "out"), stats.bytes_out as f64);
    }

    fn into_families(self) -> [Family; 3] {
        [self.connections, self.packets, self.bytes]
    }
}

/// A gauge family whose value is a flag of each item.
type FlagGauge<T> = (&'static str, &'static str, fn(&T) -> bool);

/// Returns every service with the labels that name it.
fn labelled_services(list: &VserverList) -> Vec<(Labels, &Service)> {
    list.vservers
        .iter()
        .flat_map(|vserver| {
            vserver.services.iter().map(move |service| {
                let labels = vec![
                    ("vserver", vserver.name.clone()),
                    ("service", service_name(service)),
                ];
                (labels, service)
            })
        })
        .collect()
}

fn service_metrics(list: &VserverList) -> Vec<Family> {
    let services = labelled_services(list);
    let flags: [FlagGauge<Service>; 3] = [
        (
            "seesaw_service_enabled",
            "Whether the IPVS service is enabled.",
            |service| service.enabled,
        ),
        (
            "seesaw_service_healthy",
            "Whether enough of the service's backends are healthy.",
            |service| service.healthy,
        ),
        (
            "seesaw_service_active",
            "Whether the service is in the IPVS table.",
            |service| service.active,
        ),
    ];
    let mut families: Vec<Family> = flags
        .iter()
        .map(|(name, help, value)| {
            let mut family = Family::gauge(name, help);
            for (labels, service) in &services {
                family.add(labels.clone(), flag(value(service)));
            }
            family
        })
        .collect();

    let mut backends = Family::gauge(
        "seesaw_service_backends",
        "Destinations (backends) of the service.",
    );
    let mut healthy = Family::gauge(
        "seesaw_service_healthy_backends",
        "Destinations (backends) of the service that pass their checks.",
    );
    let mut watermarks = Family::gauge(
        "seesaw_service_watermark",
        "The service's low and high watermarks and its current healthy fraction.",
    );
    let mut ipvs = IpvsFamilies {
        connections: Family::counter(
            "seesaw_service_connections_total",
            "Connections the IPVS service has scheduled.",
        ),
        packets: Family::counter(
            "seesaw_service_packets_total",
            "Packets through the IPVS service, by direction.",
        ),
        bytes: Family::counter(
            "seesaw_service_bytes_total",
            "Bytes through the IPVS service, by direction.",
        ),
    };
    for (labels, service) in &services {
        let healthy_count = service.destinations.iter().filter(|d| d.healthy).count();
        backends.add(labels.clone(), service.destinations.len() as f64);
        healthy.add(labels.clone(), healthy_count as f64);
        for (kind, value) in [
            ("low", service.low_watermark),
            ("high", service.high_watermark),
            ("current", service.current_watermark),
        ] {
            watermarks.add(with(labels, "watermark", kind), f64::from(value));
        }
        ipvs.add(labels, service.stats.as_ref());
    }
    families.extend([backends, healthy, watermarks]);
    families.extend(ipvs.into_families());
    families
}

fn destination_metrics(list: &VserverList) -> Vec<Family> {
    let destinations: Vec<(Labels, &Destination)> = labelled_services(list)
        .into_iter()
        .flat_map(|(labels, service)| {
            service.destinations.iter().map(move |destination| {
                let backend = seesaw_cli::select::backend_hostname(destination);
                let mut labels = labels.clone();
                labels.push(("destination", destination.name.clone()));
                labels.push(("backend", backend.to_string()));
                (labels, destination)
            })
        })
        .collect();

    let flags: [FlagGauge<Destination>; 3] = [
        (
            "seesaw_destination_enabled",
            "Whether the destination is enabled, after overrides.",
            |destination| destination.enabled,
        ),
        (
            "seesaw_destination_healthy",
            "Whether the destination passes its checks.",
            |destination| destination.healthy,
        ),
        (
            "seesaw_destination_active",
            "Whether the destination is in the IPVS table.",
            |destination| destination.active,
        ),
    ];
    let mut families: Vec<Family> = flags
        .iter()
        .map(|(name, help, value)| {
            let mut family = Family::gauge(name, help);
            for (labels, destination) in &destinations {
                family.add(labels.clone(), flag(value(destination)));
            }
            family
        })
        .collect();

    let mut weight = Family::gauge(
        "seesaw_destination_weight",
        "The destination's IPVS weight.",
    );
    let mut active = Family::gauge(
        "seesaw_destination_active_connections",
        "Established connections to the destination.",
    );
    let mut inactive = Family::gauge(
        "seesaw_destination_inactive_connections",
        "Connections to the destination in another TCP state.",
    );
    let mut persistent = Family::gauge(
        "seesaw_destination_persistent_connections",
        "Persistence templates that point at the destination.",
    );
    let mut ipvs = IpvsFamilies {
        connections: Family::counter(
            "seesaw_destination_connections_total",
            "Connections IPVS has scheduled to the destination.",
        ),
        packets: Family::counter(
            "seesaw_destination_packets_total",
            "Packets to and from the destination, by direction.",
        ),
        bytes: Family::counter(
            "seesaw_destination_bytes_total",
            "Bytes to and from the destination, by direction.",
        ),
    };
    for (labels, destination) in &destinations {
        weight.add(labels.clone(), f64::from(destination.weight));
        active.add(labels.clone(), f64::from(destination.active_conns));
        inactive.add(labels.clone(), f64::from(destination.inactive_conns));
        persistent.add(labels.clone(), f64::from(destination.persist_conns));
        ipvs.add(labels, destination.stats.as_ref());
    }
    families.extend([weight, active, inactive, persistent]);
    families.extend(ipvs.into_families());
    families
}

fn check_metrics(list: &CheckStatusList) -> Vec<Family> {
    let mut state = Family::gauge(
        "seesaw_check_state",
        "The check's state: 1 for the current state, 0 for the others.",
    );
    let mut duration = Family::gauge(
        "seesaw_check_duration_seconds",
        "How long the check's last run took.",
    );
    let mut last_run = Family::gauge(
        "seesaw_check_last_run_timestamp_seconds",
        "When the check last ran, in Unix time.",
    );
    let mut failures = Family::counter(
        "seesaw_check_failures_total",
        "Failed runs of the check since seesaw_healthcheck created it.",
    );
    let mut successes = Family::counter(
        "seesaw_check_successes_total",
        "Successful runs of the check since seesaw_healthcheck created it.",
    );

    for status in &list.checks {
        let Some(check) = status.check.as_ref() else {
            continue;
        };
        let mode = CheckMode::try_from(check.mode)
            .map(|mode| mode.as_str_name().trim_start_matches("CHECK_MODE_"))
            .unwrap_or("UNKNOWN");
        let labels = vec![
            ("id", check.id.to_string()),
            ("type", check.r#type.clone()),
            ("backend", status.backend.clone()),
            ("ip", check.ip.clone()),
            ("port", check.port.to_string()),
            ("mode", mode.to_string()),
        ];
        let result = status.result.clone().unwrap_or_default();

        for (name, candidate) in [
            ("unknown", CheckState::Unknown),
            ("unhealthy", CheckState::Unhealthy),
            ("healthy", CheckState::Healthy),
        ] {
            state.add(
                with(&labels, "state", name),
                flag(result.state == candidate as i32),
            );
        }
        if result.last_check_ms != 0 {
            duration.add(labels.clone(), result.duration_ms as f64 / 1000.0);
            last_run.add(labels.clone(), seconds(result.last_check_ms));
        }
        failures.add(labels.clone(), result.failures as f64);
        successes.add(labels, result.successes as f64);
    }
    vec![state, duration, last_run, failures, successes]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let family = Family::gauge("seesaw_test", "A test.")
            .with(vec![("name", "a\"b\\c\nd".to_string())], 1.0);

        let text = render_families(&[family]);

        assert!(
            text.contains(r#"seesaw_test{name="a\"b\\c\nd"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn empty_families_are_left_out() {
        let families = [
            Family::counter("seesaw_empty_total", "Nothing."),
            Family::gauge("seesaw_one", "One.").with(vec![], 0.5),
        ];

        let text = render_families(&families);

        assert_eq!(
            text,
            "# HELP seesaw_one One.\n# TYPE seesaw_one gauge\nseesaw_one 0.5\n"
        );
    }

    #[test]
    fn special_values_use_exposition_spelling() {
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(number(3.0), "3");
    }

    #[test]
    fn service_names_follow_destination_names() {
        let tcp = Service {
            family: 4,
            protocol: 6,
            port: 80,
            ip: "192.0.2.1".into(),
            ..Service::default()
        };
        let udp6 = Service {
            family: 6,
            protocol: 17,
            port: 53,
            ip: "2001:db8::1".into(),
            ..Service::default()
        };
        let fwmark = Service {
            fwmark: 300,
            ..Service::default()
        };

        assert_eq!(service_name(&tcp), "192.0.2.1:80/TCP");
        assert_eq!(service_name(&udp6), "[2001:db8::1]:53/UDP");
        assert_eq!(service_name(&fwmark), "fwm:300");
    }

    #[test]
    fn no_collection_reports_engine_down() {
        let text = render(None, &RequestCounts::default());

        assert!(text.contains("\nseesaw_engine_up 0\n"), "{text}");
        assert!(!text.contains("seesaw_ha_"), "{text}");
    }
}
