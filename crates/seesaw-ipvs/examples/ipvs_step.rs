//! Performs one named IPVS operation through seesaw-ipvs and prints the
//! result. The step names are those of tests/fixtures/capture.py, where each
//! step is also run with ipvsadm, so the captures of both can be compared.
//!
//! Usage (as root, with the ip_vs module loaded): `ipvs_step STEP`.

use std::net::SocketAddr;
use std::process::ExitCode;

use seesaw_ipvs::{
    AddressFamily, Destination, ForwardMethod, Ipvs, Request, Scheduler, Service, ServiceFlags,
    ServiceKey, Timeouts,
};

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("valid socket address")
}

/// Returns the change a step makes, or `None` for a read-only step.
fn step_request(step: &str) -> Option<Request> {
    let tcp_80 = ServiceKey::tcp(addr("192.0.2.1:80"));
    let service = |key: ServiceKey, scheduler: Scheduler, flags: ServiceFlags| {
        let mut service = Service::new(key, scheduler);
        service.flags = flags;
        service
    };
    let destination = |address: &str, forward: ForwardMethod, weight: i32| {
        let mut destination = Destination::new(addr(address));
        destination.forward = forward;
        destination.weight = weight;
        destination
    };
    let none = ServiceFlags::empty();
    Some(match step {
        "add-service-tcp4" | "add-service-exists" => {
            Request::AddService(service(tcp_80, Scheduler::Wlc, none))
        }
        "edit-service-persistent" => {
            let mut persistent = service(tcp_80, Scheduler::Rr, ServiceFlags::PERSISTENT);
            persistent.timeout = 300;
            Request::UpdateService(persistent)
        }
        "add-dest-route" => Request::AddDestination(
            tcp_80,
            destination("192.0.2.2:80", ForwardMethod::DirectRoute, 1),
        ),
        "edit-dest-masq" => {
            let mut masq = destination("192.0.2.2:80", ForwardMethod::Masquerade, 5);
            masq.upper_threshold = 100;
            masq.lower_threshold = 50;
            Request::UpdateDestination(tcp_80, masq)
        }
        "add-dest-tunnel" => Request::AddDestination(
            tcp_80,
            destination("192.0.2.3:80", ForwardMethod::Tunnel, 2),
        ),
        "add-service-udp6-sh" => Request::AddService(service(
            ServiceKey::udp(addr("[2001:db8::1]:53")),
            Scheduler::Sh,
            ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT,
        )),
        "add-dest-udp6" => Request::AddDestination(
            ServiceKey::udp(addr("[2001:db8::1]:53")),
            destination("[2001:db8::2]:53", ForwardMethod::DirectRoute, 3),
        ),
        "add-service-fwmark" => Request::AddService(service(
            ServiceKey::fwmark(AddressFamily::Inet, 1),
            Scheduler::Wrr,
            none,
        )),
        "add-dest-fwmark" => Request::AddDestination(
            ServiceKey::fwmark(AddressFamily::Inet, 1),
            destination("192.0.2.4:0", ForwardMethod::DirectRoute, 1),
        ),
        "add-service-fwmark6" => Request::AddService(service(
            ServiceKey::fwmark(AddressFamily::Inet6, 2),
            Scheduler::Lc,
            none,
        )),
        "add-service-sctp-mh" => Request::AddService(service(
            ServiceKey::sctp(addr("192.0.2.1:9")),
            Scheduler::Mh,
            ServiceFlags::MH_PORT,
        )),
        "add-service-udp-pe" => {
            let mut sip = service(
                ServiceKey::udp(addr("192.0.2.5:5060")),
                Scheduler::Rr,
                ServiceFlags::PERSISTENT,
            );
            sip.timeout = 60;
            sip.netmask = 24;
            sip.persistence_engine = Some("sip".to_owned());
            Request::AddService(sip)
        }
        "add-service-ops" => Request::AddService(service(
            ServiceKey::udp(addr("192.0.2.6:53")),
            Scheduler::Rr,
            ServiceFlags::ONE_PACKET,
        )),
        "set-config" => Request::SetTimeouts(Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }),
        "del-dest" => Request::DeleteDestination(
            tcp_80,
            destination("192.0.2.3:80", ForwardMethod::DirectRoute, 1),
        ),
        "del-service" | "del-service-missing" => {
            Request::DeleteService(ServiceKey::udp(addr("192.0.2.6:53")))
        }
        "flush" => Request::Flush,
        _ => return None,
    })
}

async fn run(step: &str) -> Result<(), String> {
    let ipvs = Ipvs::connect().await.map_err(|e| e.to_string())?;
    if let Some(request) = step_request(step) {
        ipvs.execute(&request).await.map_err(|e| e.to_string())?;
        println!("{request}: done");
        return Ok(());
    }
    match step {
        "info" => {
            let info = ipvs.info().await.map_err(|e| e.to_string())?;
            println!(
                "IPVS version {} (size={})",
                info.version, info.connection_table_size
            );
        }
        "get-config" => {
            let timeouts = ipvs.timeouts().await.map_err(|e| e.to_string())?;
            println!("{timeouts:?}");
        }
        "list" => {
            for (service, destinations) in ipvs
                .services_with_destinations()
                .await
                .map_err(|e| e.to_string())?
            {
                println!("{service} {:?}", service.flags);
                for destination in destinations {
                    println!("  -> {destination} {:?}", destination.forward);
                }
            }
        }
        "list-one" | "list-missing" => {
            let address = if step == "list-one" {
                "192.0.2.1:80"
            } else {
                "192.0.2.99:80"
            };
            let key = ServiceKey::tcp(addr(address));
            let service = ipvs.service(&key).await.map_err(|e| e.to_string())?;
            println!("{service} {:?}", service.flags);
            for destination in ipvs.destinations(&key).await.map_err(|e| e.to_string())? {
                println!("  -> {destination} {:?}", destination.forward);
            }
        }
        other => return Err(format!("unknown step {other:?}")),
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(step) = std::env::args().nth(1) else {
        eprintln!("usage: ipvs_step STEP");
        return ExitCode::from(2);
    };
    match run(&step).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}
