//! Health propagation: checks to destinations, destinations to services
//! with watermarks, services to VIPs, and VIP health to the kernel state.

use std::collections::BTreeMap;
use std::net::IpAddr;

use seesaw_config::model::{Vip, VipType};

use crate::checks::{CheckKey, CheckState};
use crate::expand::{ExpandedDestination, Expansion};
use crate::kernel::{KernelService, KernelState, ServiceId};

/// Returns whether a destination is healthy: it is enabled and has checks,
/// and every one of them is healthy. A destination without checks is
/// never healthy, as in Seesaw.
pub fn destination_healthy(
    destination: &ExpandedDestination,
    states: &BTreeMap<CheckKey, CheckState>,
) -> bool {
    destination.enabled
        && !destination.checks.is_empty()
        && destination
            .checks
            .iter()
            .all(|key| states.get(key) == Some(&CheckState::Healthy))
}

/// Returns whether a service is healthy with `healthy` of `in_service`
/// destinations healthy. A healthy service stays up while the fraction is
/// at least `low`; an unhealthy one comes up at `max(high, low)`. A zero
/// threshold means one healthy destination is enough.
pub fn service_healthy(
    was_healthy: bool,
    healthy: usize,
    in_service: usize,
    high: f32,
    low: f32,
) -> bool {
    if healthy == 0 || in_service == 0 {
        return false;
    }
    let threshold = if was_healthy { low } else { high.max(low) };
    if threshold == 0.0 {
        return true;
    }
    // f32 as in Seesaw, so fractions near a threshold round the same way.
    healthy as f32 / in_service as f32 >= threshold
}

/// Returns whether a VIP is healthy given the health of its services: an
/// anycast VIP needs all of them, any other VIP at least one.
pub fn vip_healthy(vip_type: VipType, services: &[bool]) -> bool {
    if services.is_empty() {
        return false;
    }
    match vip_type {
        VipType::Anycast => services.iter().all(|healthy| *healthy),
        VipType::Dedicated | VipType::Unicast => services.iter().any(|healthy| *healthy),
    }
}

/// The outcome of evaluating one vserver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evaluation {
    /// Health of each service, the watermark state for the next round.
    pub service_health: BTreeMap<ServiceId, bool>,
    /// VIP addresses that are up.
    pub active_vips: Vec<IpAddr>,
    /// What the vserver wants programmed.
    pub kernel: KernelState,
}

/// Evaluates a vserver. `previous` holds the service health from the last
/// round, which picks the watermark. A disabled vserver wants nothing.
pub fn evaluate(
    expansion: &Expansion,
    vips: &[Vip],
    enabled: bool,
    states: &BTreeMap<CheckKey, CheckState>,
    previous: &BTreeMap<ServiceId, bool>,
    anycast_enabled: bool,
) -> Evaluation {
    let mut evaluation = Evaluation::default();
    if !enabled {
        return evaluation;
    }

    for (id, service) in &expansion.services {
        let healthy = service
            .destinations
            .values()
            .filter(|d| destination_healthy(d, states))
            .count();
        let in_service = service
            .destinations
            .values()
            .filter(|d| d.in_service)
            .count();
        let was_healthy = previous.get(id).copied().unwrap_or(false);
        let now = service_healthy(
            was_healthy,
            healthy,
            in_service,
            service.high_watermark,
            service.low_watermark,
        );
        evaluation.service_health.insert(*id, now);
    }

    for vip in vips {
        let services: Vec<bool> = expansion
            .services
            .values()
            .filter(|service| service.vip == vip.ip)
            .map(|service| evaluation.service_health[&service.id])
            .collect();
        let active = vip_healthy(vip.vip_type, &services);
        if active {
            evaluation.active_vips.push(vip.ip);
        }

        // Unicast and dedicated VIPs stay configured whatever their health,
        // so clients keep reaching this node; anycast ones only while up.
        let configured = vip.vip_type != VipType::Anycast || active;
        if configured {
            evaluation.kernel.vips.insert(*vip);
            if let Some(rules) = expansion.rules.get(&vip.ip) {
                evaluation
                    .kernel
                    .rules
                    .insert((rules.vserver.clone(), vip.ip), rules.clone());
            }
        }
        if vip.vip_type == VipType::Anycast && active && anycast_enabled {
            evaluation.kernel.advertised.insert(vip.ip);
        }
        if !active {
            continue;
        }

        for service in expansion.services.values().filter(|s| s.vip == vip.ip) {
            if !evaluation.service_health[&service.id] {
                continue;
            }
            let destinations = service
                .destinations
                .values()
                .filter(|d| destination_healthy(d, states))
                .map(|d| (d.address, d.ipvs.clone()))
                .collect();
            evaluation.kernel.services.insert(
                service.id,
                KernelService {
                    service: service.ipvs.clone(),
                    destinations,
                },
            );
        }
    }
    evaluation
}
