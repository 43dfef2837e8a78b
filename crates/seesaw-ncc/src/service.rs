//! The gRPC service: one handler per API call, each logging its failure
//! and returning it to the caller with the object named.

use std::sync::Arc;

use ipnet::IpNet;
use rtnetlink::IpVersion;
use seesaw_ipc::proto::{self, ncc_server};
use seesaw_ipvs::{Ipvs, Request as IpvsRequest};
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use crate::bgp::{Bgp, BgpError};
use crate::convert;
use crate::error::{NccError, Result};
use crate::net;
use crate::ops::Ncc;
use crate::vips::VipChange;
use crate::vserver_rules::Action;

/// The NCC behind the API. Changes to links, addresses, rules and iptables
/// run one at a time so that a read-modify-write (such as "add this rule
/// unless it exists") is not interleaved with another.
pub struct NccService {
    ncc: Arc<Ncc>,
    ipvs: Arc<Ipvs>,
    bgp: Arc<Bgp>,
    network_lock: Arc<Mutex<()>>,
}

impl NccService {
    pub fn new(ncc: Arc<Ncc>, ipvs: Arc<Ipvs>, bgp: Arc<Bgp>) -> Self {
        Self {
            ncc,
            ipvs,
            bgp,
            network_lock: Arc::new(Mutex::new(())),
        }
    }

    /// Returns the lock taken by calls that change links, addresses,
    /// routes and iptables. A start-up task takes it so that it runs before
    /// them, while the service already serves IPVS and read calls.
    pub fn network_lock(&self) -> Arc<Mutex<()>> {
        Arc::clone(&self.network_lock)
    }
}

/// Logs a failed call and converts it for the caller.
fn reply<T>(call: &str, result: Result<T>) -> std::result::Result<Response<T>, Status> {
    match result {
        Ok(value) => Ok(Response::new(value)),
        Err(error) => {
            tracing::error!("{call} failed: {error}");
            Err(error.into())
        }
    }
}

fn ipvs_failed(action: String) -> impl FnOnce(seesaw_ipvs::Error) -> NccError {
    move |source| NccError::Ipvs { action, source }
}

fn bgp_failed(action: String) -> impl FnOnce(BgpError) -> NccError {
    move |source| NccError::Bgp { action, source }
}

/// Checks whether a change after `index` in a batch sets or removes the
/// object of the add at `index`. Such a change names the same service, or
/// the same destination of the same service, or is a flush.
fn overridden_later(requests: &[IpvsRequest], index: usize) -> bool {
    requests[index + 1..]
        .iter()
        .any(|later| match (&requests[index], later) {
            (_, IpvsRequest::Flush) => true,
            (
                IpvsRequest::AddService(service),
                IpvsRequest::AddService(other) | IpvsRequest::UpdateService(other),
            ) => service.key == other.key,
            (IpvsRequest::AddService(service), IpvsRequest::DeleteService(key)) => {
                service.key == *key
            }
            (
                IpvsRequest::AddDestination(key, destination),
                IpvsRequest::AddDestination(other_key, other)
                | IpvsRequest::UpdateDestination(other_key, other)
                | IpvsRequest::DeleteDestination(other_key, other),
            ) => key == other_key && destination.address == other.address,
            (IpvsRequest::AddDestination(key, _), IpvsRequest::DeleteService(other_key)) => {
                key == other_key
            }
            _ => false,
        })
}

impl NccService {
    /// Runs one IPVS request; adding what exists updates it and deleting
    /// what is missing succeeds.
    async fn ipvs_execute(&self, request: IpvsRequest) -> Result<()> {
        match self.ipvs.execute(&request).await {
            Ok(()) => Ok(()),
            Err(error) if error.is_exists() => match request {
                IpvsRequest::AddService(service) => self
                    .ipvs
                    .update_service(&service)
                    .await
                    .map_err(ipvs_failed(format!("update service {service}"))),
                IpvsRequest::AddDestination(key, destination) => self
                    .ipvs
                    .update_destination(&key, &destination)
                    .await
                    .map_err(ipvs_failed(format!(
                        "update destination {destination} of {key}"
                    ))),
                _ => Err(NccError::Ipvs {
                    action: request.to_string(),
                    source: error,
                }),
            },
            Err(error)
                if error.is_not_found()
                    && matches!(
                        request,
                        IpvsRequest::DeleteService(_) | IpvsRequest::DeleteDestination(..)
                    ) =>
            {
                Ok(())
            }
            Err(error) => Err(NccError::Ipvs {
                action: request.to_string(),
                source: error,
            }),
        }
    }

    async fn add_service(&self, message: &proto::IpvsService) -> Result<()> {
        let (service, destinations) = convert::service(message)?;
        let key = service.key;
        self.ipvs_execute(IpvsRequest::AddService(service)).await?;
        for destination in destinations {
            self.ipvs_execute(IpvsRequest::AddDestination(key, destination))
                .await?;
        }
        Ok(())
    }

    async fn apply(&self, batch: &proto::IpvsBatch) -> Result<proto::IpvsBatchReport> {
        use proto::ipvs_change::Change;
        let mut requests = Vec::new();
        for (index, change) in batch.changes.iter().enumerate() {
            let change = change.change.as_ref().ok_or_else(|| {
                NccError::Invalid(format!("change {index} of the batch is empty"))
            })?;
            let request = match change {
                Change::AddService(service) => {
                    let (service, destinations) = convert::service(service)?;
                    if !destinations.is_empty() {
                        return Err(NccError::Invalid(format!(
                            "change {index} adds service {service} with destinations; add them as separate changes"
                        )));
                    }
                    IpvsRequest::AddService(service)
                }
                Change::UpdateService(service) => {
                    IpvsRequest::UpdateService(convert::service(service)?.0)
                }
                Change::DeleteService(key) => {
                    IpvsRequest::DeleteService(convert::service_key(Some(key))?)
                }
                Change::AddDestination(request) => {
                    let (key, destination) = convert::destination_request(request)?;
                    IpvsRequest::AddDestination(key, destination)
                }
                Change::UpdateDestination(request) => {
                    let (key, destination) = convert::destination_request(request)?;
                    IpvsRequest::UpdateDestination(key, destination)
                }
                Change::DeleteDestination(request) => {
                    let (key, destination) = convert::destination_request(request)?;
                    IpvsRequest::DeleteDestination(key, destination)
                }
                Change::Flush(_) => IpvsRequest::Flush,
            };
            requests.push(request);
        }
        let report = self
            .ipvs
            .apply(&requests)
            .await
            .map_err(ipvs_failed("apply an IPVS batch".to_owned()))?;
        let mut failures = Vec::new();
        for failure in report.failures {
            // A delete of what was gone at its place in the batch did what
            // it asked. An add of what existed becomes an update, as a
            // single call does, unless a later change of the batch sets or
            // removes the same object, because that change's result must
            // stay.
            let request = &requests[failure.index];
            let settled = match request {
                IpvsRequest::DeleteService(_) | IpvsRequest::DeleteDestination(..) => {
                    failure.error.is_not_found()
                }
                IpvsRequest::AddService(_) | IpvsRequest::AddDestination(..)
                    if failure.error.is_exists() =>
                {
                    overridden_later(&requests, failure.index)
                        || self.ipvs_execute(request.clone()).await.is_ok()
                }
                _ => false,
            };
            if !settled {
                failures.push(proto::IpvsBatchFailure {
                    index: failure.index as u32,
                    error: failure.error.to_string(),
                });
            }
        }
        Ok(proto::IpvsBatchReport {
            applied: (requests.len() - failures.len()) as u32,
            failures,
        })
    }

    async fn state(&self, lb: &proto::LbInterface) -> Result<proto::NetworkState> {
        let config = convert::lb_config(Some(lb))?;
        let services = self
            .ipvs
            .services_with_destinations()
            .await
            .map_err(ipvs_failed("list IPVS services".to_owned()))?
            .iter()
            .map(|(service, destinations)| convert::service_message(service, destinations))
            .collect();
        let mut links = Vec::new();
        links.extend(self.ncc.net.find_link(&config.name).await?);
        links.extend(self.ncc.vlan_links(&config).await?);
        links.extend(self.ncc.net.find_link(&config.dummy).await?);
        let mut interfaces = Vec::new();
        for link in links {
            let addresses = self
                .ncc
                .net
                .addresses(Some(link.index))
                .await?
                .iter()
                .filter(|address| !address.is_link_local())
                .map(|address| format!("{}/{}", address.address, address.prefix_len))
                .collect();
            interfaces.push(proto::InterfaceState {
                name: link.name.clone(),
                index: link.index,
                up: link.up,
                mac: net::format_mac(&link.mac),
                addresses,
            });
        }
        let mut rules = Vec::new();
        for (version, family) in [
            (IpVersion::V4, proto::AddressFamily::Ipv4),
            (IpVersion::V6, proto::AddressFamily::Ipv6),
        ] {
            for rule in self.ncc.net.rules(version).await? {
                if rule.table == config.table && !rule.has_other_selectors {
                    rules.push(proto::PolicyRule {
                        family: family as i32,
                        priority: rule.priority,
                        source: rule.source.map(|net| net.to_string()).unwrap_or_default(),
                        destination: rule
                            .destination
                            .map(|net| net.to_string())
                            .unwrap_or_default(),
                        table: rule.table,
                    });
                }
            }
        }
        Ok(proto::NetworkState {
            services,
            interfaces,
            rules,
        })
    }

    async fn gratuitous_arp(
        &self,
        request: &proto::GratuitousArpRequest,
    ) -> proto::GratuitousArpReply {
        let mut reply = proto::GratuitousArpReply::default();
        for target in &request.targets {
            let link = match self.ncc.net.link(&target.interface).await {
                Ok(link) => link,
                Err(error) => {
                    reply.failures.push(error.to_string());
                    continue;
                }
            };
            for text in &target.addresses {
                let result = convert::required_ip(text, "address")
                    .and_then(|address| self.ncc.announce(&link, address));
                match result {
                    Ok(()) => reply.sent += 1,
                    Err(error) => reply
                        .failures
                        .push(format!("{text} on {}: {error}", link.name)),
                }
            }
        }
        for failure in &reply.failures {
            tracing::warn!("gratuitous announcement failed: {failure}");
        }
        reply
    }
}

#[tonic::async_trait]
impl ncc_server::Ncc for NccService {
    async fn init_lb_interface(
        &self,
        request: Request<proto::LbInterface>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        let result = async {
            let lb = convert::lb_config(Some(request.get_ref()))?;
            self.ncc.init_lb(&lb).await
        };
        reply("InitLbInterface", result.await.map(|()| proto::Empty {}))
    }

    async fn prepare_lb_interface(
        &self,
        request: Request<proto::LbInterface>,
    ) -> std::result::Result<Response<proto::PrepareReply>, Status> {
        let _guard = self.network_lock.lock().await;
        let result = async {
            let lb = convert::lb_config(Some(request.get_ref()))?;
            self.ncc.prepare_lb(&lb).await
        };
        reply(
            "PrepareLbInterface",
            result
                .await
                .map(|initialised| proto::PrepareReply { initialised }),
        )
    }

    async fn bring_lb_interface_up(
        &self,
        request: Request<proto::LbInterface>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        let result = async {
            let lb = convert::lb_config(Some(request.get_ref()))?;
            self.ncc.lb_up(&lb).await
        };
        reply("BringLbInterfaceUp", result.await.map(|()| proto::Empty {}))
    }

    async fn bring_lb_interface_down(
        &self,
        request: Request<proto::LbInterface>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        let result = async {
            let lb = convert::lb_config(Some(request.get_ref()))?;
            self.ncc.lb_down(&lb).await
        };
        reply(
            "BringLbInterfaceDown",
            result.await.map(|()| proto::Empty {}),
        )
    }

    async fn add_vip(
        &self,
        request: Request<proto::VipRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        let result = async {
            let lb = convert::lb_config(request.get_ref().lb.as_ref())?;
            let (vip, kind) = convert::vip(request.get_ref().vip.as_ref())?;
            self.ncc.add_vip(&lb, vip, kind).await
        };
        reply("AddVip", result.await.map(|()| proto::Empty {}))
    }

    async fn delete_vip(
        &self,
        request: Request<proto::VipRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        let result = async {
            let lb = convert::lb_config(request.get_ref().lb.as_ref())?;
            let (vip, kind) = convert::vip(request.get_ref().vip.as_ref())?;
            self.ncc.delete_vip(&lb, vip, kind).await
        };
        reply("DeleteVip", result.await.map(|()| proto::Empty {}))
    }

    async fn apply_vips(
        &self,
        request: Request<proto::VipBatch>,
    ) -> std::result::Result<Response<proto::VipBatchReport>, Status> {
        let _guard = self.network_lock.lock().await;
        let batch = request.get_ref();
        let lb = convert::lb_config(batch.lb.as_ref()).map_err(|error| {
            tracing::error!("ApplyVips failed: {error}");
            Status::invalid_argument(error.to_string())
        })?;
        // Changes that do not parse fail on their own; the rest are applied.
        let mut failures = Vec::new();
        let mut changes = Vec::new();
        let mut positions = Vec::new();
        for (index, change) in batch.changes.iter().enumerate() {
            match convert::vip(change.vip.as_ref()) {
                Ok((vip, kind)) => {
                    positions.push(index);
                    changes.push(VipChange {
                        vip,
                        kind,
                        add: change.add,
                    });
                }
                Err(error) => failures.push((index, error.to_string())),
            }
        }
        for (position, error) in self.ncc.apply_vips(&lb, &changes).await {
            failures.push((positions[position], error));
        }
        failures.sort_by_key(|(index, _)| *index);
        for (_, error) in &failures {
            tracing::error!("ApplyVips: {error}");
        }
        let total = batch.changes.len();
        tracing::info!(
            "applied {} of {total} VIP changes in one batch",
            total - failures.len()
        );
        Ok(Response::new(proto::VipBatchReport {
            applied: u32::try_from(total - failures.len()).unwrap_or(u32::MAX),
            failures: failures
                .into_iter()
                .map(|(index, error)| proto::VipFailure {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    error,
                })
                .collect(),
        }))
    }

    async fn add_vlan(
        &self,
        request: Request<proto::VlanRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        let result = async {
            let lb = convert::lb_config(request.get_ref().lb.as_ref())?;
            let vlan = request
                .get_ref()
                .vlan
                .clone()
                .ok_or_else(|| NccError::Invalid("missing vlan".to_owned()))?;
            let id = u16::try_from(vlan.id)
                .map_err(|_| NccError::Invalid(format!("invalid VLAN id {}", vlan.id)))?;
            let addresses: Vec<IpNet> = [
                convert::prefix(&vlan.ipv4, "vlan.ipv4")?,
                convert::prefix(&vlan.ipv6, "vlan.ipv6")?,
            ]
            .into_iter()
            .flatten()
            .collect();
            self.ncc.add_vlan(&lb, id, &addresses).await
        };
        reply("AddVlan", result.await.map(|()| proto::Empty {}))
    }

    async fn delete_vlan(
        &self,
        request: Request<proto::VlanRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        let result = async {
            let lb = convert::lb_config(request.get_ref().lb.as_ref())?;
            let vlan = request
                .get_ref()
                .vlan
                .clone()
                .ok_or_else(|| NccError::Invalid("missing vlan".to_owned()))?;
            let id = u16::try_from(vlan.id)
                .map_err(|_| NccError::Invalid(format!("invalid VLAN id {}", vlan.id)))?;
            self.ncc.delete_vlan(&lb, id).await
        };
        reply("DeleteVlan", result.await.map(|()| proto::Empty {}))
    }

    async fn add_vserver_rules(
        &self,
        request: Request<proto::VserverRulesRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        reply(
            "AddVserverRules",
            self.vserver_rules(request.get_ref(), Action::Add)
                .await
                .map(|()| proto::Empty {}),
        )
    }

    async fn delete_vserver_rules(
        &self,
        request: Request<proto::VserverRulesRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let _guard = self.network_lock.lock().await;
        reply(
            "DeleteVserverRules",
            self.vserver_rules(request.get_ref(), Action::Delete)
                .await
                .map(|()| proto::Empty {}),
        )
    }

    async fn apply_vserver_rules(
        &self,
        request: Request<proto::VserverRulesBatch>,
    ) -> std::result::Result<Response<proto::VserverRulesBatchReport>, Status> {
        let _guard = self.network_lock.lock().await;
        Ok(Response::new(
            self.apply_rules_batch(request.get_ref()).await,
        ))
    }

    async fn send_gratuitous_arp(
        &self,
        request: Request<proto::GratuitousArpRequest>,
    ) -> std::result::Result<Response<proto::GratuitousArpReply>, Status> {
        Ok(Response::new(self.gratuitous_arp(request.get_ref()).await))
    }

    async fn get_default_route(
        &self,
        _request: Request<proto::Empty>,
    ) -> std::result::Result<Response<proto::DefaultRoute>, Status> {
        let result = self
            .ncc
            .default_gateway()
            .await
            .map(|(gateway, interface)| proto::DefaultRoute {
                gateway: gateway.to_string(),
                interface: interface.unwrap_or_default(),
            });
        reply("GetDefaultRoute", result)
    }

    async fn ipvs_flush(
        &self,
        _request: Request<proto::Empty>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = self
            .ipvs
            .flush()
            .await
            .map_err(ipvs_failed("flush IPVS".to_owned()));
        reply("IpvsFlush", result.map(|()| proto::Empty {}))
    }

    async fn ipvs_list_services(
        &self,
        _request: Request<proto::Empty>,
    ) -> std::result::Result<Response<proto::IpvsServiceList>, Status> {
        let result = self
            .ipvs
            .services_with_destinations()
            .await
            .map_err(ipvs_failed("list IPVS services".to_owned()))
            .map(|services| proto::IpvsServiceList {
                services: services
                    .iter()
                    .map(|(service, destinations)| convert::service_message(service, destinations))
                    .collect(),
            });
        reply("IpvsListServices", result)
    }

    async fn ipvs_get_service(
        &self,
        request: Request<proto::IpvsServiceKey>,
    ) -> std::result::Result<Response<proto::IpvsService>, Status> {
        let result = async {
            let key = convert::service_key(Some(request.get_ref()))?;
            let service = self
                .ipvs
                .service(&key)
                .await
                .map_err(ipvs_failed(format!("get service {key}")))?;
            let destinations = self
                .ipvs
                .destinations(&key)
                .await
                .map_err(ipvs_failed(format!("list destinations of {key}")))?;
            Ok(convert::service_message(&service, &destinations))
        };
        reply("IpvsGetService", result.await)
    }

    async fn ipvs_add_service(
        &self,
        request: Request<proto::IpvsService>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        reply(
            "IpvsAddService",
            self.add_service(request.get_ref())
                .await
                .map(|()| proto::Empty {}),
        )
    }

    async fn ipvs_update_service(
        &self,
        request: Request<proto::IpvsService>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = async {
            let (service, _) = convert::service(request.get_ref())?;
            self.ipvs_execute(IpvsRequest::UpdateService(service)).await
        };
        reply("IpvsUpdateService", result.await.map(|()| proto::Empty {}))
    }

    async fn ipvs_delete_service(
        &self,
        request: Request<proto::IpvsServiceKey>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = async {
            let key = convert::service_key(Some(request.get_ref()))?;
            self.ipvs_execute(IpvsRequest::DeleteService(key)).await
        };
        reply("IpvsDeleteService", result.await.map(|()| proto::Empty {}))
    }

    async fn ipvs_add_destination(
        &self,
        request: Request<proto::IpvsDestinationRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = async {
            let (key, destination) = convert::destination_request(request.get_ref())?;
            self.ipvs_execute(IpvsRequest::AddDestination(key, destination))
                .await
        };
        reply("IpvsAddDestination", result.await.map(|()| proto::Empty {}))
    }

    async fn ipvs_update_destination(
        &self,
        request: Request<proto::IpvsDestinationRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = async {
            let (key, destination) = convert::destination_request(request.get_ref())?;
            self.ipvs_execute(IpvsRequest::UpdateDestination(key, destination))
                .await
        };
        reply(
            "IpvsUpdateDestination",
            result.await.map(|()| proto::Empty {}),
        )
    }

    async fn ipvs_delete_destination(
        &self,
        request: Request<proto::IpvsDestinationRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = async {
            let (key, destination) = convert::destination_request(request.get_ref())?;
            self.ipvs_execute(IpvsRequest::DeleteDestination(key, destination))
                .await
        };
        reply(
            "IpvsDeleteDestination",
            result.await.map(|()| proto::Empty {}),
        )
    }

    async fn ipvs_apply(
        &self,
        request: Request<proto::IpvsBatch>,
    ) -> std::result::Result<Response<proto::IpvsBatchReport>, Status> {
        reply("IpvsApply", self.apply(request.get_ref()).await)
    }

    async fn bgp_config(
        &self,
        _request: Request<proto::Empty>,
    ) -> std::result::Result<Response<proto::BgpConfigReply>, Status> {
        let result = self
            .bgp
            .running_config()
            .await
            .map(|lines| proto::BgpConfigReply { lines })
            .map_err(bgp_failed("read the bgpd running configuration".to_owned()));
        reply("BgpConfig", result)
    }

    async fn bgp_neighbors(
        &self,
        _request: Request<proto::Empty>,
    ) -> std::result::Result<Response<proto::BgpNeighborsReply>, Status> {
        let result = self
            .bgp
            .neighbors()
            .await
            .map(|neighbors| proto::BgpNeighborsReply {
                neighbors: neighbors
                    .iter()
                    .map(convert::bgp_neighbor_message)
                    .collect(),
            })
            .map_err(bgp_failed("list the BGP neighbors".to_owned()));
        reply("BgpNeighbors", result)
    }

    async fn bgp_withdraw_all(
        &self,
        _request: Request<proto::Empty>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = self
            .bgp
            .withdraw_all()
            .await
            .map(|_| proto::Empty {})
            .map_err(bgp_failed("withdraw all BGP advertisements".to_owned()));
        reply("BgpWithdrawAll", result)
    }

    async fn bgp_advertise_vip(
        &self,
        request: Request<proto::BgpVipRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = self.bgp_vip(request.get_ref(), true).await;
        reply("BgpAdvertiseVip", result.map(|()| proto::Empty {}))
    }

    async fn bgp_withdraw_vip(
        &self,
        request: Request<proto::BgpVipRequest>,
    ) -> std::result::Result<Response<proto::Empty>, Status> {
        let result = self.bgp_vip(request.get_ref(), false).await;
        reply("BgpWithdrawVip", result.map(|()| proto::Empty {}))
    }

    async fn bgp_apply_peers(
        &self,
        request: Request<proto::BgpPeersRequest>,
    ) -> std::result::Result<Response<proto::BgpPeersReply>, Status> {
        let result = match convert::peering(request.get_ref()) {
            Ok(peering) => self
                .bgp
                .apply_peers(&peering)
                .await
                .map(|report| proto::BgpPeersReply {
                    commands: report.commands,
                    skipped: report.skipped,
                })
                .map_err(bgp_failed(format!(
                    "configure {} BGP peers of AS {}",
                    peering.peers.len(),
                    peering.remote_asn
                ))),
            Err(error) => Err(error),
        };
        if let Ok(reply) = &result {
            for skipped in &reply.skipped {
                tracing::warn!("BgpApplyPeers: {skipped}");
            }
        }
        reply("BgpApplyPeers", result)
    }

    async fn get_state(
        &self,
        request: Request<proto::LbInterface>,
    ) -> std::result::Result<Response<proto::NetworkState>, Status> {
        let _guard = self.network_lock.lock().await;
        reply("GetState", self.state(request.get_ref()).await)
    }
}

impl NccService {
    /// Advertises the VIP of `request` over BGP, or withdraws it.
    async fn bgp_vip(&self, request: &proto::BgpVipRequest, advertise: bool) -> Result<()> {
        let vip = convert::required_ip(&request.address, "address")?;
        let result = if advertise {
            self.bgp.advertise(vip).await
        } else {
            self.bgp.withdraw(vip).await
        };
        let action = if advertise {
            format!("advertise VIP {vip} over BGP")
        } else {
            format!("withdraw VIP {vip} from BGP")
        };
        result.map_err(bgp_failed(action))
    }

    async fn vserver_rules(
        &self,
        request: &proto::VserverRulesRequest,
        action: Action,
    ) -> Result<()> {
        let change = convert::rules_change(request, action)?;
        let result = self.ncc.apply_rules_change(&change).await;
        result.map_err(|error| match error {
            NccError::Command {
                command,
                status,
                stderr,
            } => NccError::Command {
                command: format!("{command} (virtual server {})", request.vserver_name),
                status,
                stderr,
            },
            other => other,
        })
    }

    /// Applies a batch of virtual server rule changes and reports the
    /// failed ones by position.
    async fn apply_rules_batch(
        &self,
        batch: &proto::VserverRulesBatch,
    ) -> proto::VserverRulesBatchReport {
        let mut requests = Vec::new();
        let mut changes = Vec::new();
        for (index, change) in batch.changes.iter().enumerate() {
            let (request, change) = convert::batch_rules_change(change, index);
            requests.push(request);
            changes.push(change);
        }
        let failures: Vec<proto::VserverRulesFailure> = self
            .ncc
            .apply_vserver_rules(&changes)
            .await
            .into_iter()
            .map(|(index, error)| {
                let request = requests[index];
                proto::VserverRulesFailure {
                    index: index as u32,
                    vserver_name: request
                        .map(|request| request.vserver_name.clone())
                        .unwrap_or_default(),
                    address: request
                        .map(|request| request.address.clone())
                        .unwrap_or_default(),
                    error,
                }
            })
            .collect();
        proto::VserverRulesBatchReport {
            applied: (changes.len() - failures.len()) as u32,
            failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use seesaw_ipvs::{Destination, Service, ServiceKey};

    use super::*;

    fn key(port: u16) -> ServiceKey {
        ServiceKey::tcp(format!("192.0.2.1:{port}").parse().unwrap())
    }

    fn destination(address: &str) -> Destination {
        Destination::new(format!("{address}:80").parse().unwrap())
    }

    #[test]
    fn add_overridden_by_later_change_of_same_object() {
        let service = Service::new(key(80), "rr");
        let cases = [
            IpvsRequest::UpdateService(service.clone()),
            IpvsRequest::AddService(service.clone()),
            IpvsRequest::DeleteService(key(80)),
            IpvsRequest::Flush,
        ];
        for later in cases {
            let requests = [IpvsRequest::AddService(service.clone()), later];
            assert!(overridden_later(&requests, 0), "{:?}", requests[1]);
        }

        let add = IpvsRequest::AddDestination(key(80), destination("198.51.100.1"));
        let cases = [
            IpvsRequest::UpdateDestination(key(80), destination("198.51.100.1")),
            IpvsRequest::DeleteDestination(key(80), destination("198.51.100.1")),
            IpvsRequest::AddDestination(key(80), destination("198.51.100.1")),
            IpvsRequest::DeleteService(key(80)),
            IpvsRequest::Flush,
        ];
        for later in cases {
            let requests = [add.clone(), later];
            assert!(overridden_later(&requests, 0), "{:?}", requests[1]);
        }
    }

    #[test]
    fn add_kept_when_later_changes_touch_other_objects() {
        let service = Service::new(key(80), "rr");
        let requests = [
            IpvsRequest::AddService(service.clone()),
            IpvsRequest::AddDestination(key(80), destination("198.51.100.1")),
            IpvsRequest::UpdateService(Service::new(key(81), "wlc")),
            IpvsRequest::DeleteService(key(81)),
        ];
        assert!(!overridden_later(&requests, 0));

        let requests = [
            IpvsRequest::AddDestination(key(80), destination("198.51.100.1")),
            IpvsRequest::UpdateService(service),
            IpvsRequest::DeleteDestination(key(80), destination("198.51.100.2")),
            IpvsRequest::DeleteDestination(key(81), destination("198.51.100.1")),
            IpvsRequest::DeleteService(key(81)),
        ];
        assert!(!overridden_later(&requests, 0));

        // A change before the add does not count.
        let requests = [
            IpvsRequest::Flush,
            IpvsRequest::AddService(Service::new(key(80), "rr")),
        ];
        assert!(!overridden_later(&requests, 1));
    }
}
