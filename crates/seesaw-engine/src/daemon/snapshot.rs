//! The engine's state as the API's messages: vservers with their services
//! and destinations, nodes, VLANs, backends and checks.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use seesaw_config::model::{Cluster, HealthcheckMode, HealthcheckType, Host, NodeState};
use seesaw_ipc::engine_proto as api;
use seesaw_vrrp::HaState;

use super::core::{ConfigInfo, Core};
use crate::checks::{CheckState, Probe};
use crate::engine::VserverState;
use crate::ha::HaStatus;
use crate::health::destination_healthy;
use crate::kernel::{Family, ServiceId};
use crate::overrides::OverrideState;

pub fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

pub fn time(millis: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_millis(millis.max(0) as u64)
}

pub fn ha_state(state: HaState) -> api::HaState {
    api::HaState::try_from(state.as_i32()).unwrap_or(api::HaState::Unknown)
}

pub fn ha_state_from(state: api::HaState) -> HaState {
    HaState::try_from(state as i32).unwrap_or(HaState::Unknown)
}

pub fn ha_status(status: &HaStatus) -> api::HaStatus {
    api::HaStatus {
        state: ha_state(status.state) as i32,
        since_ms: millis(status.since),
        last_update_ms: millis(status.last_update),
        sent: status.sent,
        received: status.received,
        received_queued: status.received_queued,
        transitions: status.transitions,
    }
}

pub fn ha_status_from(message: &api::HaStatus) -> HaStatus {
    HaStatus {
        state: ha_state_from(message.state()),
        since: time(message.since_ms),
        last_update: time(message.last_update_ms),
        sent: message.sent,
        received: message.received,
        received_queued: message.received_queued,
        transitions: message.transitions,
    }
}

pub fn check_state(state: CheckState) -> api::CheckState {
    match state {
        CheckState::Unknown => api::CheckState::Unknown,
        CheckState::Unhealthy => api::CheckState::Unhealthy,
        CheckState::Healthy => api::CheckState::Healthy,
    }
}

pub fn check_state_from(state: api::CheckState) -> CheckState {
    match state {
        api::CheckState::Unknown => CheckState::Unknown,
        api::CheckState::Unhealthy => CheckState::Unhealthy,
        api::CheckState::Healthy => CheckState::Healthy,
    }
}

pub fn host(host: &Host) -> api::Host {
    api::Host {
        hostname: host.hostname.clone(),
        ipv4: host.ipv4.map(|net| net.to_string()).unwrap_or_default(),
        ipv6: host.ipv6.map(|net| net.to_string()).unwrap_or_default(),
    }
}

pub fn healthcheck(probe: &Probe) -> api::Healthcheck {
    let config = &probe.config;
    let kind = match config.check_type {
        HealthcheckType::Icmp => "ICMP_PING",
        other => other.name(),
    };
    let mode = match config.mode {
        HealthcheckMode::Plain => api::CheckMode::Plain,
        HealthcheckMode::Dsr => api::CheckMode::Dsr,
        HealthcheckMode::Tun => api::CheckMode::Tun,
    };
    api::Healthcheck {
        id: probe.id,
        r#type: kind.to_string(),
        ip: probe.target.to_string(),
        host: probe.host.to_string(),
        port: u32::from(config.port),
        mode: mode as i32,
        mark: probe.mark,
        interval_ms: config.interval.as_millis() as u64,
        timeout_ms: config.timeout.as_millis() as u64,
        retries: config.retries,
        method: config.method.clone(),
        send: config.send.clone(),
        receive: config.receive.clone(),
        code: u32::try_from(config.code).unwrap_or(0),
        proxy: config.proxy,
        tls_verify: config.tls_verify,
    }
}

pub fn cluster_status(cluster: &Cluster) -> api::ClusterStatusReply {
    api::ClusterStatusReply {
        version: 2,
        site: cluster.site.clone(),
        nodes: cluster
            .nodes
            .values()
            .map(|node| api::Node {
                host: Some(host(&node.host)),
                priority: u32::from(node.priority),
                state: match node.state {
                    NodeState::Disabled => api::HaState::Disabled,
                    _ => api::HaState::Backup,
                } as i32,
                anycast_enabled: node.anycast_enabled,
                bgp_enabled: node.bgp_enabled,
                vservers_enabled: node.vservers_enabled,
            })
            .collect(),
    }
}

pub fn config_status(cluster: Option<&Cluster>, info: &ConfigInfo) -> api::ConfigStatusReply {
    let (last_update_ms, attributes) = match cluster {
        Some(cluster) => (
            cluster.status.last_update.unwrap_or(0) * 1000,
            cluster
                .status
                .attributes
                .iter()
                .map(|(name, value)| api::ConfigAttribute {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        ),
        None => (0, Vec::new()),
    };
    let mut warnings = cluster
        .map(|cluster| cluster.status.warnings.clone())
        .unwrap_or_default();
    warnings.extend(info.warnings.iter().cloned());
    api::ConfigStatusReply {
        last_update_ms,
        attributes,
        warnings,
        source: info.source.clone(),
        source_detail: info.source_detail.clone(),
        last_attempt_ms: info.last_attempt.map(millis).unwrap_or(0),
        last_errors: info.last_errors.clone(),
    }
}

pub fn vlans(cluster: &Cluster) -> api::VlanList {
    api::VlanList {
        vlans: cluster
            .vlans
            .values()
            .map(|vlan| api::Vlan {
                id: u32::from(vlan.id),
                host: Some(host(&vlan.host)),
                backends_ipv4: vlan.backend_count.ipv4,
                backends_ipv6: vlan.backend_count.ipv6,
                vips_ipv4: vlan.vip_count.ipv4,
                vips_ipv6: vlan.vip_count.ipv6,
            })
            .collect(),
    }
}

pub fn override_state(state: OverrideState) -> api::OverrideState {
    match state {
        OverrideState::Default => api::OverrideState::Default,
        OverrideState::Disabled => api::OverrideState::Disabled,
        OverrideState::Enabled => api::OverrideState::Enabled,
    }
}

pub fn override_state_from(state: api::OverrideState) -> OverrideState {
    match state {
        api::OverrideState::Default => OverrideState::Default,
        api::OverrideState::Disabled => OverrideState::Disabled,
        api::OverrideState::Enabled => OverrideState::Enabled,
    }
}

fn stats(stats: Option<&seesaw_ipvs::Stats>) -> Option<api::IpvsStats> {
    stats.map(|stats| api::IpvsStats {
        connections: stats.connections,
        packets_in: stats.packets_in,
        packets_out: stats.packets_out,
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        cps: stats.cps,
        pps_in: stats.packets_in_rate,
        pps_out: stats.packets_out_rate,
        bps_in: stats.bytes_in_rate,
        bps_out: stats.bytes_out_rate,
    })
}

pub fn backends(core: &Core) -> api::BackendList {
    let mut backends = BTreeMap::new();
    if let Some(cluster) = &core.cluster {
        for vserver in cluster.vservers.values() {
            for backend in vserver.backends.values() {
                backends
                    .entry(backend.host.hostname.clone())
                    .or_insert_with(|| api::Backend {
                        host: Some(host(&backend.host)),
                        weight: backend.weight,
                        enabled: backend.enabled,
                        in_service: backend.in_service,
                    });
            }
        }
    }
    api::BackendList {
        backends: backends.into_values().collect(),
    }
}

pub fn vservers(core: &Core) -> api::VserverList {
    let overrides = core.engine.overrides();
    let desired = core.engine.desired();
    let vservers = core
        .engine
        .vservers()
        .map(|(name, state)| {
            let override_state = overrides
                .vservers
                .get(name)
                .copied()
                .unwrap_or(OverrideState::Default);
            vserver(core, name, state, override_state, |id| {
                desired.services.contains_key(id)
            })
        })
        .collect();
    api::VserverList { vservers }
}

fn vserver(
    core: &Core,
    name: &str,
    state: &VserverState,
    override_value: OverrideState,
    active: impl Fn(&ServiceId) -> bool,
) -> api::Vserver {
    let config = &state.config;
    let backends = &config.backends;
    let services = state
        .expansion
        .services
        .values()
        .map(|service| {
            let healthy = state
                .service_health
                .get(&service.id)
                .copied()
                .unwrap_or(false);
            let kernel = core.stats.get(&service.id);
            let destinations: Vec<_> = service
                .destinations
                .values()
                .map(|destination| {
                    let dest_healthy = destination_healthy(destination, &state.check_states);
                    let counters = kernel.and_then(|(_, d)| d.get(&destination.address));
                    api::Destination {
                        name: destination.name.clone(),
                        vserver_name: name.to_string(),
                        backend: backends
                            .get(&destination.backend)
                            .map(|backend| api::Backend {
                                host: Some(host(&backend.host)),
                                weight: backend.weight,
                                enabled: backend.enabled,
                                in_service: backend.in_service,
                            }),
                        weight: destination.ipvs.weight,
                        enabled: destination.enabled,
                        healthy: dest_healthy,
                        active: dest_healthy && healthy && state.enabled,
                        stats: stats(counters.and_then(|d| d.stats.as_ref())),
                        active_conns: counters.map(|d| d.active_connections).unwrap_or(0),
                        inactive_conns: counters.map(|d| d.inactive_connections).unwrap_or(0),
                        persist_conns: counters.map(|d| d.persistent_connections).unwrap_or(0),
                    }
                })
                .collect();
            let (family, protocol, port, fwmark) = match service.id {
                ServiceId::Inet {
                    address,
                    protocol,
                    port,
                } => (family_number(address), protocol, port, 0),
                ServiceId::Fwmark { family, mark } => (
                    match family {
                        Family::V4 => 4,
                        Family::V6 => 6,
                    },
                    0,
                    0,
                    mark,
                ),
            };
            let in_service = service
                .destinations
                .values()
                .filter(|d| d.in_service)
                .count();
            let healthy_count = destinations.iter().filter(|d| d.healthy).count();
            let current = if in_service == 0 {
                0.0
            } else {
                healthy_count as f32 / in_service as f32
            };
            let entry = config
                .entries
                .values()
                .find(|entry| entry.port == port && fwmark == 0);
            api::Service {
                family,
                protocol: u32::from(protocol),
                port: u32::from(port),
                ip: service.vip.to_string(),
                fwmark,
                mode: entry
                    .map(|entry| entry.mode.to_string())
                    .unwrap_or_default(),
                scheduler: service.ipvs.scheduler.to_string(),
                one_packet: entry.is_some_and(|entry| entry.one_packet),
                persistence: service.ipvs.timeout,
                enabled: state.enabled,
                healthy,
                active: active(&service.id),
                low_watermark: service.low_watermark,
                high_watermark: service.high_watermark,
                current_watermark: current,
                stats: stats(kernel.and_then(|(s, _)| s.stats.as_ref())),
                destinations,
            }
        })
        .collect();
    api::Vserver {
        name: name.to_string(),
        host: Some(host(&config.host)),
        entries: config
            .entries
            .values()
            .map(|entry| api::VserverEntry {
                port: u32::from(entry.port),
                protocol: u32::from(crate::kernel::protocol_number(entry.protocol)),
                scheduler: entry.scheduler.name().to_string(),
                mode: entry.mode.to_string(),
                persistence: entry.persistence.as_secs() as u32,
                one_packet: entry.one_packet,
                low_watermark: entry.low_watermark,
                high_watermark: entry.high_watermark,
                lower_threshold: entry.lower_threshold,
                upper_threshold: entry.upper_threshold,
            })
            .collect(),
        fwmark_ipv4: state.fwmarks.get(&Family::V4).copied().unwrap_or(0),
        fwmark_ipv6: state.fwmarks.get(&Family::V6).copied().unwrap_or(0),
        services,
        override_state: override_state(override_value) as i32,
        enabled: state.enabled,
        config_enabled: config.enabled,
        warnings: config.warnings.clone(),
    }
}

fn family_number(address: IpAddr) -> u32 {
    if address.is_ipv4() { 4 } else { 6 }
}

/// Lists every probe with its last result and the destinations it decides.
pub fn check_status(
    core: &Core,
    results: &std::collections::HashMap<u64, api::HealthNotification>,
) -> api::CheckStatusList {
    let checks = core
        .probes
        .values()
        .map(|probe| {
            let mut backend = String::new();
            let mut destinations = Vec::new();
            for (_, state) in core.engine.vservers() {
                let configs = &state.expansion.checks;
                for service in state.expansion.services.values() {
                    for destination in service.destinations.values() {
                        let decides = destination.checks.iter().any(|key| {
                            key.backend == probe.host
                                && configs.get(key) == Some(&probe.config)
                                && (probe.config.mode == HealthcheckMode::Plain
                                    || key.vip == Some(probe.target))
                        });
                        if decides {
                            backend.clone_from(&destination.backend);
                            destinations.push(destination.name.clone());
                        }
                    }
                }
            }
            api::CheckStatus {
                check: Some(healthcheck(probe)),
                result: results.get(&probe.id).cloned(),
                backend,
                destinations,
            }
        })
        .collect();
    api::CheckStatusList { checks }
}

/// Lists the users each vserver's access grants name, group grants expanded.
pub fn access_grants(cluster: &Cluster) -> api::AccessGrantList {
    let mut grants = Vec::new();
    for (name, vserver) in &cluster.vservers {
        for grant in vserver.access_grants.values() {
            let users: Vec<String> = if grant.is_group {
                cluster
                    .access_groups
                    .get(&grant.grantee)
                    .cloned()
                    .unwrap_or_default()
            } else {
                vec![grant.grantee.clone()]
            };
            for user in users {
                grants.push(api::AccessGrant {
                    vserver: name.clone(),
                    user,
                    source: grant.key(),
                });
            }
        }
    }
    api::AccessGrantList { grants }
}
