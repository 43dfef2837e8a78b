//! Conversions between the NCC API's IPVS messages and the types of
//! `seesaw-ipvs`, shared by the NCC (which serves them) and the engine
//! (which sends them and reads them back).

use std::net::{IpAddr, SocketAddr};

use seesaw_ipvs::{
    AddressFamily, Destination, ForwardMethod, Protocol, Scheduler, Service, ServiceFlags,
    ServiceKey, Stats,
};

use crate::proto;

/// A message that does not describe a valid IPVS object; the text names
/// the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidMessage(pub String);

pub type Result<T> = std::result::Result<T, InvalidMessage>;

fn invalid(message: String) -> InvalidMessage {
    InvalidMessage(message)
}

fn required_ip(text: &str, field: &str) -> Result<IpAddr> {
    if text.is_empty() {
        return Err(invalid(format!("missing {field}")));
    }
    text.parse()
        .map_err(|_| invalid(format!("invalid {field} {text:?}: expected an IP address")))
}

fn family(value: i32) -> Result<AddressFamily> {
    match proto::AddressFamily::try_from(value) {
        Ok(proto::AddressFamily::Ipv4) => Ok(AddressFamily::Inet),
        Ok(proto::AddressFamily::Ipv6) => Ok(AddressFamily::Inet6),
        _ => Err(invalid(format!("invalid address family {value}"))),
    }
}

fn port(value: u32) -> Result<u16> {
    u16::try_from(value).map_err(|_| invalid(format!("invalid port {value}")))
}

pub fn service_key(key: Option<&proto::IpvsServiceKey>) -> Result<ServiceKey> {
    let key = key.ok_or_else(|| invalid("missing service key".to_owned()))?;
    if key.fwmark > 0 {
        return Ok(ServiceKey::fwmark(family(key.family)?, key.fwmark));
    }
    let protocol = u16::try_from(key.protocol)
        .ok()
        .filter(|protocol| *protocol > 0)
        .ok_or_else(|| invalid(format!("invalid service protocol {}", key.protocol)))?;
    let address = required_ip(&key.address, "service address")?;
    Ok(ServiceKey::Inet {
        protocol: Protocol(protocol),
        address: SocketAddr::new(address, port(key.port)?),
    })
}

pub fn service(message: &proto::IpvsService) -> Result<(Service, Vec<Destination>)> {
    let key = service_key(message.key.as_ref())?;
    let scheduler = if message.scheduler.is_empty() {
        "wlc"
    } else {
        &message.scheduler
    };
    let mut service = Service::new(key, Scheduler::from(scheduler));
    service.flags = ServiceFlags(message.flags & !ServiceFlags::HASHED.bits());
    service.timeout = message.timeout;
    if message.netmask != 0 {
        service.netmask = u8::try_from(message.netmask)
            .ok()
            .filter(|mask| *mask <= key.family().max_prefix_len())
            .ok_or_else(|| {
                invalid(format!(
                    "invalid netmask {} for service {key}",
                    message.netmask
                ))
            })?;
    }
    if !message.persistence_engine.is_empty() {
        service.persistence_engine = Some(message.persistence_engine.clone());
    }
    let destinations = message
        .destinations
        .iter()
        .map(destination)
        .collect::<Result<Vec<_>>>()?;
    Ok((service, destinations))
}

pub fn destination(message: &proto::IpvsDestination) -> Result<Destination> {
    let address = required_ip(&message.address, "destination address")?;
    let mut destination = Destination::new(SocketAddr::new(address, port(message.port)?));
    destination.forward = ForwardMethod::from_bits(message.forward as u32);
    destination.weight = message.weight;
    destination.upper_threshold = message.upper_threshold;
    destination.lower_threshold = message.lower_threshold;
    Ok(destination)
}

pub fn destination_request(
    message: &proto::IpvsDestinationRequest,
) -> Result<(ServiceKey, Destination)> {
    let key = service_key(message.service.as_ref())?;
    let destination = destination(
        message
            .destination
            .as_ref()
            .ok_or_else(|| invalid(format!("missing destination for service {key}")))?,
    )?;
    Ok((key, destination))
}

pub fn stats_message(stats: &Stats) -> proto::IpvsStats {
    proto::IpvsStats {
        connections: stats.connections,
        packets_in: stats.packets_in,
        packets_out: stats.packets_out,
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        connections_rate: stats.cps,
        packets_in_rate: stats.packets_in_rate,
        packets_out_rate: stats.packets_out_rate,
        bytes_in_rate: stats.bytes_in_rate,
        bytes_out_rate: stats.bytes_out_rate,
    }
}

pub fn key_message(key: &ServiceKey) -> proto::IpvsServiceKey {
    let family = |family: AddressFamily| match family {
        AddressFamily::Inet => proto::AddressFamily::Ipv4 as i32,
        AddressFamily::Inet6 => proto::AddressFamily::Ipv6 as i32,
    };
    match key {
        ServiceKey::Inet { protocol, address } => proto::IpvsServiceKey {
            protocol: u32::from(protocol.0),
            address: address.ip().to_string(),
            port: u32::from(address.port()),
            fwmark: 0,
            family: family(key.family()),
        },
        ServiceKey::Fwmark { family: af, mark } => proto::IpvsServiceKey {
            protocol: 0,
            address: String::new(),
            port: 0,
            fwmark: *mark,
            family: family(*af),
        },
    }
}

pub fn destination_message(destination: &Destination) -> proto::IpvsDestination {
    proto::IpvsDestination {
        address: destination.address.ip().to_string(),
        port: u32::from(destination.address.port()),
        forward: destination.forward.bits() as i32,
        weight: destination.weight,
        upper_threshold: destination.upper_threshold,
        lower_threshold: destination.lower_threshold,
        active_connections: destination.active_connections,
        inactive_connections: destination.inactive_connections,
        persistent_connections: destination.persistent_connections,
        stats: destination.stats.as_ref().map(stats_message),
    }
}

pub fn service_message(service: &Service, destinations: &[Destination]) -> proto::IpvsService {
    proto::IpvsService {
        key: Some(key_message(&service.key)),
        scheduler: service.scheduler.to_string(),
        flags: service.flags.bits(),
        timeout: service.timeout,
        netmask: u32::from(service.netmask),
        persistence_engine: service.persistence_engine.clone().unwrap_or_default(),
        destinations: destinations.iter().map(destination_message).collect(),
        stats: service.stats.as_ref().map(stats_message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_round_trip() {
        let message = proto::IpvsService {
            key: Some(proto::IpvsServiceKey {
                protocol: 6,
                address: "192.0.2.10".to_owned(),
                port: 80,
                fwmark: 0,
                family: proto::AddressFamily::Ipv4 as i32,
            }),
            scheduler: "rr".to_owned(),
            flags: 0x3,
            timeout: 300,
            netmask: 24,
            persistence_engine: String::new(),
            destinations: vec![proto::IpvsDestination {
                address: "192.0.2.20".to_owned(),
                port: 8080,
                forward: proto::IpvsForward::Masquerade as i32,
                weight: 5,
                ..Default::default()
            }],
            stats: None,
        };

        let (service, destinations) = service(&message).unwrap();
        let back = service_message(&service, &destinations);

        assert_eq!(service.flags, ServiceFlags(0x1), "HASHED is dropped");
        assert_eq!(service.netmask, 24);
        assert_eq!(destinations[0].forward, ForwardMethod::Masquerade);
        assert_eq!(back.key, message.key);
        assert_eq!(back.destinations[0].weight, 5);
        assert_eq!(back.destinations[0].port, 8080);
    }

    #[test]
    fn fwmark_key_needs_family() {
        let key = proto::IpvsServiceKey {
            fwmark: 7,
            ..Default::default()
        };

        assert!(service_key(Some(&key)).is_err());
    }
}
