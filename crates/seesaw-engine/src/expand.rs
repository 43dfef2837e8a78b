//! Expansion of a vserver into IPVS services, destinations, iptables rules
//! and health checks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use seesaw_config::model::{ForwardingMode, Scheduler, Vserver, VserverEntry};
use seesaw_ipvs::{Destination, ForwardMethod, Service, ServiceFlags};

use crate::checks::{CheckConfig, CheckKey};
use crate::kernel::{Family, RuleEntry, ServiceId, VserverRules, protocol_number};
use crate::overrides::Overrides;

/// A destination of an expanded service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedDestination {
    /// Backend host name.
    pub backend: String,
    pub address: IpAddr,
    /// `<vserver>/<ip>:<port>/<PROTO>`, or `<vserver>/<ip>` for fwmark services.
    pub name: String,
    pub ipvs: Destination,
    /// Counts towards the watermarks.
    pub in_service: bool,
    /// May serve, after backend and destination overrides.
    pub enabled: bool,
    /// Checks that must all be healthy; empty when disabled.
    pub checks: BTreeSet<CheckKey>,
}

/// An IPVS service of a vserver with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpandedService {
    pub id: ServiceId,
    /// The VIP whose health decides whether the service is programmed.
    pub vip: IpAddr,
    pub high_watermark: f32,
    pub low_watermark: f32,
    pub ipvs: Service,
    pub destinations: BTreeMap<IpAddr, ExpandedDestination>,
}

/// The whole expansion of one vserver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expansion {
    pub services: BTreeMap<ServiceId, ExpandedService>,
    pub checks: BTreeMap<CheckKey, CheckConfig>,
    /// Rules per VIP address.
    pub rules: BTreeMap<IpAddr, VserverRules>,
}

/// Expands `vserver`. `fwmarks` holds its mark per family when it uses
/// fwmark services; a family without a mark gets no service.
pub fn expand(
    vserver: &Vserver,
    fwmarks: &BTreeMap<Family, u32>,
    overrides: &Overrides,
) -> Expansion {
    let mut expansion = Expansion::default();
    let addresses: BTreeSet<IpAddr> = vserver.vips.iter().map(|vip| vip.ip).collect();

    for &address in &addresses {
        let family = Family::of(address);
        let fwmark = if vserver.use_fwm {
            fwmarks.get(&family).copied().unwrap_or(0)
        } else {
            0
        };
        let entries = vserver
            .entries
            .values()
            .map(|entry| RuleEntry {
                protocol: entry.protocol,
                port: entry.port,
                mode: entry.mode,
            })
            .collect();
        expansion.rules.insert(
            address,
            VserverRules {
                vserver: vserver.name.clone(),
                address,
                fwmark,
                entries,
            },
        );

        if vserver.use_fwm {
            // One service per family. Its parameters come from the first
            // entry in key order, so they do not depend on map order, and
            // a vserver with no entries gets no service.
            let Some(first) = vserver.entries.values().next() else {
                continue;
            };
            if fwmark == 0 {
                continue;
            }
            let id = ServiceId::Fwmark {
                family,
                mark: fwmark,
            };
            let entries: Vec<&VserverEntry> = vserver.entries.values().collect();
            add_service(
                &mut expansion,
                vserver,
                overrides,
                id,
                address,
                first,
                &entries,
            );
        } else {
            for entry in vserver.entries.values() {
                let id = ServiceId::Inet {
                    address,
                    protocol: protocol_number(entry.protocol),
                    port: entry.port,
                };
                add_service(
                    &mut expansion,
                    vserver,
                    overrides,
                    id,
                    address,
                    entry,
                    &[entry],
                );
            }
        }
    }
    expansion
}

/// Adds one service. `params` supplies the IPVS parameters and
/// watermarks; `check_entries` are the entries whose checks apply (every
/// entry for an fwmark service).
fn add_service(
    expansion: &mut Expansion,
    vserver: &Vserver,
    overrides: &Overrides,
    id: ServiceId,
    vip: IpAddr,
    params: &VserverEntry,
    check_entries: &[&VserverEntry],
) {
    let family = Family::of(vip);
    let fwm = matches!(id, ServiceId::Fwmark { .. });
    let port = if fwm { 0 } else { params.port };
    let mut destinations = BTreeMap::new();

    for (hostname, backend) in &vserver.backends {
        let Some(address) = backend.host.ips().find(|ip| Family::of(*ip) == family) else {
            continue;
        };
        let name = if fwm {
            format!("{}/{}", vserver.name, address)
        } else {
            format!(
                "{}/{}/{}",
                vserver.name,
                SocketAddr::new(address, port),
                params.protocol
            )
        };
        let enabled =
            overrides.destination_enabled(&vserver.name, &name, hostname, backend.enabled);

        let mut checks = BTreeSet::new();
        if enabled {
            for check in vserver.healthchecks.values() {
                let key = CheckKey {
                    vip: Some(vip),
                    backend: address,
                    service_port: 0,
                    service_protocol: None,
                    mode: check.mode,
                    check_type: check.check_type,
                    check_port: check.port,
                    name: check.name.clone(),
                };
                expansion
                    .checks
                    .insert(key.clone(), CheckConfig::from(check));
                checks.insert(key);
            }
            for entry in check_entries {
                for check in entry.healthchecks.values() {
                    let key = CheckKey {
                        vip: Some(vip),
                        backend: address,
                        service_port: entry.port,
                        service_protocol: Some(entry.protocol),
                        mode: check.mode,
                        check_type: check.check_type,
                        check_port: check.port,
                        name: check.name.clone(),
                    };
                    expansion
                        .checks
                        .insert(key.clone(), CheckConfig::from(check));
                    checks.insert(key);
                }
            }
        }

        destinations.insert(
            address,
            ExpandedDestination {
                backend: hostname.clone(),
                address,
                name,
                ipvs: ipvs_destination(SocketAddr::new(address, port), backend.weight, params),
                in_service: backend.in_service,
                enabled,
                checks,
            },
        );
    }

    expansion.services.insert(
        id,
        ExpandedService {
            id,
            vip,
            high_watermark: params.high_watermark,
            low_watermark: params.low_watermark,
            ipvs: ipvs_service(id, params),
            destinations,
        },
    );
}

/// Builds the IPVS service for `id` with the entry's scheduler, flags and
/// persistence.
pub fn ipvs_service(id: ServiceId, entry: &VserverEntry) -> Service {
    let scheduler = match entry.scheduler {
        Scheduler::Rr => seesaw_ipvs::Scheduler::Rr,
        Scheduler::Wrr => seesaw_ipvs::Scheduler::Wrr,
        Scheduler::Lc => seesaw_ipvs::Scheduler::Lc,
        Scheduler::Wlc => seesaw_ipvs::Scheduler::Wlc,
        Scheduler::Sh => seesaw_ipvs::Scheduler::Sh,
        Scheduler::Mh => seesaw_ipvs::Scheduler::Mh,
    };
    let mut service = Service::new(id.key(), scheduler);
    let persistence = entry.persistence.as_secs();
    if persistence > 0 {
        service.flags |= ServiceFlags::PERSISTENT;
        service.timeout = u32::try_from(persistence).unwrap_or(u32::MAX);
    }
    if entry.one_packet {
        service.flags |= ServiceFlags::ONE_PACKET;
    }
    match entry.scheduler {
        Scheduler::Sh => service.flags |= ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT,
        Scheduler::Mh => service.flags |= ServiceFlags::MH_FALLBACK | ServiceFlags::MH_PORT,
        _ => {}
    }
    service
}

/// Builds the IPVS destination with the entry's forwarding method and
/// connection thresholds.
pub fn ipvs_destination(address: SocketAddr, weight: i32, entry: &VserverEntry) -> Destination {
    let mut destination = Destination::new(address);
    destination.weight = weight;
    destination.forward = match entry.mode {
        ForwardingMode::Dsr => ForwardMethod::DirectRoute,
        ForwardingMode::Nat => ForwardMethod::Masquerade,
        ForwardingMode::Tun => ForwardMethod::Tunnel,
    };
    destination.lower_threshold = entry.lower_threshold;
    destination.upper_threshold = entry.upper_threshold;
    destination
}
