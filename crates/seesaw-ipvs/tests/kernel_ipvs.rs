//! Tests against a real kernel's IPVS, checked with ipvsadm's listing.
//!
//! They need root, the `ip_vs` module and ipvsadm, so they are ignored by
//! plain `cargo test` and run in the kernel lab VM (docs/ipvs.md has the
//! commands). Each test starts by flushing the table, and a lock keeps the
//! tests of one process from running at the same time.
//!
//! Addresses come from the documentation and benchmarking ranges (RFC 5737,
//! RFC 3849, RFC 2544); IPVS only stores them. The stats test sends a few
//! packets over the guest's loopback interface, and nothing else leaves a
//! process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};

use seesaw_ipvs::{
    AddressFamily, Destination, ForwardMethod, Ipvs, Request, Scheduler, Service, ServiceFlags,
    ServiceKey, Timeouts,
};

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Takes the test lock and returns a handle on an empty table.
async fn setup() -> (MutexGuard<'static, ()>, Ipvs) {
    let guard = SERIAL.lock().await;
    let ipvs = Ipvs::connect().await.expect("connect to IPVS");
    ipvs.flush().await.expect("flush");
    (guard, ipvs)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Runs a command and returns its standard output; panics on failure.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed with {}",
        output.status
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A service line of `ipvsadm -Ln` and the destination lines under it.
#[derive(Debug, Default, Clone)]
struct Listed {
    /// Everything after the key and scheduler: `persistent 300`, `ops`,
    /// `(sh-fallback,sh-port)`.
    scheduler: String,
    options: String,
    /// Destination address → the columns after address and forwarding
    /// method, and the method itself.
    destinations: BTreeMap<String, (String, Vec<u64>)>,
}

/// Parses `ipvsadm -Ln [extra]`, keyed like `ServiceKey`'s `Display`
/// (`TCP 192.0.2.1:80`, `FWM 2 IPv6`).
fn ipvsadm_list(extra: &[&str]) -> BTreeMap<String, Listed> {
    let mut args = vec!["-Ln"];
    args.extend_from_slice(extra);
    let text = run("ipvsadm", &args);
    let mut services = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        match tokens.first() {
            Some(&"TCP") | Some(&"UDP") | Some(&"SCTP") | Some(&"FWM") => {
                let key_len = if tokens[0] == "FWM" && tokens[2] == "IPv6" {
                    3
                } else {
                    2
                };
                let key = tokens[..key_len].join(" ");
                let listed = Listed {
                    scheduler: tokens[key_len].to_owned(),
                    options: tokens[key_len + 1..].join(" "),
                    destinations: BTreeMap::new(),
                };
                services.insert(key.clone(), listed);
                current = Some(key);
            }
            Some(&"->") if tokens.get(1) != Some(&"RemoteAddress:Port") => {
                let key = current.as_ref().expect("destination line before a service");
                // Plain -Ln has a forwarding-method column; --stats,
                // --thresholds and --persistent-conn have none.
                let (forward, first_number) = match tokens[2].parse::<u64>() {
                    Ok(_) => ("", 2),
                    Err(_) => (tokens[2], 3),
                };
                let numbers = tokens[first_number..]
                    .iter()
                    .map(|t| t.parse().unwrap())
                    .collect();
                services
                    .get_mut(key)
                    .unwrap()
                    .destinations
                    .insert(tokens[1].to_owned(), (forward.to_owned(), numbers));
            }
            _ => {}
        }
    }
    services
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn info_matches_ipvsadm() {
    let (_guard, ipvs) = setup().await;

    let info = ipvs.info().await.unwrap();
    let header = run("ipvsadm", &["-Ln"]);

    let expected = format!(
        "IP Virtual Server version {} (size={})",
        info.version, info.connection_table_size
    );
    assert_eq!(header.lines().next().unwrap(), expected);
    assert!(ipvs.family_id() >= 0x10, "family id {}", ipvs.family_id());
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn service_add_update_delete() {
    let (_guard, ipvs) = setup().await;
    let key = ServiceKey::tcp(addr("192.0.2.1:80"));
    let mut service = Service::new(key, Scheduler::Wlc);

    ipvs.add_service(&service).await.unwrap();
    let listed = ipvsadm_list(&[]);
    assert_eq!(listed["TCP 192.0.2.1:80"].scheduler, "wlc");
    assert_eq!(listed["TCP 192.0.2.1:80"].options, "");

    service.scheduler = Scheduler::Rr;
    service.flags = ServiceFlags::PERSISTENT;
    service.timeout = 300;
    ipvs.update_service(&service).await.unwrap();
    let listed = ipvsadm_list(&[]);
    assert_eq!(listed["TCP 192.0.2.1:80"].scheduler, "rr");
    assert_eq!(listed["TCP 192.0.2.1:80"].options, "persistent 300");

    let read = ipvs.service(&key).await.unwrap();
    assert!(read.same_settings(&service), "{read:?}");
    assert!(read.flags.contains(ServiceFlags::HASHED));
    assert!(read.stats.is_some());
    let all = ipvs.services().await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all[0].same_settings(&service));

    ipvs.delete_service(&key).await.unwrap();
    assert!(ipvsadm_list(&[]).is_empty());
    assert!(ipvs.services().await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn destinations_every_forward_method() {
    let (_guard, ipvs) = setup().await;
    let key = ServiceKey::tcp(addr("192.0.2.1:80"));
    ipvs.add_service(&Service::new(key, Scheduler::Wrr))
        .await
        .unwrap();
    let mut route = Destination::new(addr("192.0.2.2:80"));
    route.weight = 1;
    let mut masq = Destination::new(addr("192.0.2.3:8080"));
    masq.forward = ForwardMethod::Masquerade;
    masq.weight = 5;
    masq.upper_threshold = 100;
    masq.lower_threshold = 50;
    let mut tunnel = Destination::new(addr("192.0.2.4:80"));
    tunnel.forward = ForwardMethod::Tunnel;
    tunnel.weight = 0;

    for destination in [&route, &masq, &tunnel] {
        ipvs.add_destination(&key, destination).await.unwrap();
    }
    let listed = ipvsadm_list(&[]);
    let destinations = &listed["TCP 192.0.2.1:80"].destinations;
    assert_eq!(destinations["192.0.2.2:80"].0, "Route");
    assert_eq!(destinations["192.0.2.2:80"].1[0], 1);
    assert_eq!(destinations["192.0.2.3:8080"].0, "Masq");
    assert_eq!(destinations["192.0.2.3:8080"].1[0], 5);
    assert_eq!(destinations["192.0.2.4:80"].0, "Tunnel");
    assert_eq!(destinations["192.0.2.4:80"].1[0], 0);
    // --thresholds columns: upper, lower, active, inactive.
    let thresholds = ipvsadm_list(&["--thresholds"]);
    assert_eq!(
        thresholds["TCP 192.0.2.1:80"].destinations["192.0.2.3:8080"].1,
        [100, 50, 0, 0]
    );

    let read = ipvs.destinations(&key).await.unwrap();
    assert_eq!(read.len(), 3);
    for expected in [&route, &masq, &tunnel] {
        let found = read.iter().find(|d| d.address == expected.address).unwrap();
        assert!(found.same_settings(expected), "{found:?}");
    }

    masq.weight = 1000;
    masq.forward = ForwardMethod::DirectRoute;
    // Direct routing cannot map ports, so the kernel keeps the service port
    // only if the destination has it; this one keeps 8080 as given.
    ipvs.update_destination(&key, &masq).await.unwrap();
    let listed = ipvsadm_list(&[]);
    assert_eq!(
        listed["TCP 192.0.2.1:80"].destinations["192.0.2.3:8080"],
        ("Route".to_owned(), vec![1000, 0, 0])
    );

    ipvs.delete_destination(&key, &tunnel).await.unwrap();
    let listed = ipvsadm_list(&[]);
    assert_eq!(listed["TCP 192.0.2.1:80"].destinations.len(), 2);
    assert!(
        !listed["TCP 192.0.2.1:80"]
            .destinations
            .contains_key("192.0.2.4:80")
    );
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn every_scheduler_loads() {
    let (_guard, ipvs) = setup().await;
    let mut rejected = Vec::new();

    for (index, scheduler) in Scheduler::KNOWN.iter().enumerate() {
        let port = 1000 + index as u16;
        let key = ServiceKey::tcp(SocketAddr::new("192.0.2.1".parse().unwrap(), port));
        match ipvs
            .add_service(&Service::new(key, scheduler.clone()))
            .await
        {
            Ok(()) => {
                let listed = ipvsadm_list(&[]);
                assert_eq!(listed[&key.to_string()].scheduler, scheduler.as_str());
                assert_eq!(ipvs.service(&key).await.unwrap().scheduler, *scheduler);
            }
            Err(error) => rejected.push(format!("{scheduler}: {error}")),
        }
    }

    // twos arrived in Linux 6.2; the lab runs 6.1.
    let release = run("uname", &["-r"]);
    let version: Vec<u32> = release
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map(|part| part.parse().unwrap())
        .collect();
    let twos_known = (version[0], version[1]) >= (6, 2);
    if twos_known {
        assert!(rejected.is_empty(), "schedulers rejected: {rejected:?}");
    } else {
        assert_eq!(rejected.len(), 1, "schedulers rejected: {rejected:?}");
        assert!(rejected[0].starts_with("twos: "), "{rejected:?}");
    }
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn unknown_scheduler_is_not_found() {
    let (_guard, ipvs) = setup().await;
    let key = ServiceKey::tcp(addr("192.0.2.1:80"));

    let error = ipvs
        .add_service(&Service::new(key, "nosuch"))
        .await
        .unwrap_err();

    assert!(error.is_not_found(), "{error}");
    assert_eq!(error.errno(), Some(2));
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn scheduler_flags_and_persistence() {
    let (_guard, ipvs) = setup().await;
    let mut sh = Service::new(ServiceKey::tcp(addr("192.0.2.1:80")), Scheduler::Sh);
    sh.flags = ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT;
    let mut mh = Service::new(ServiceKey::tcp(addr("192.0.2.1:81")), Scheduler::Mh);
    mh.flags = ServiceFlags::MH_FALLBACK | ServiceFlags::MH_PORT;
    let mut ops = Service::new(ServiceKey::udp(addr("192.0.2.1:53")), Scheduler::Rr);
    ops.flags = ServiceFlags::ONE_PACKET;
    let mut sip = Service::new(ServiceKey::udp(addr("192.0.2.1:5060")), Scheduler::Rr);
    sip.flags = ServiceFlags::PERSISTENT;
    sip.timeout = 60;
    sip.netmask = 24;
    sip.persistence_engine = Some("sip".to_owned());
    let mut sctp = Service::new(ServiceKey::sctp(addr("192.0.2.1:9")), Scheduler::Lc);
    sctp.flags = ServiceFlags::PERSISTENT;
    sctp.timeout = 30;

    for service in [&sh, &mh, &ops, &sip, &sctp] {
        ipvs.add_service(service).await.unwrap();
    }

    let listed = ipvsadm_list(&[]);
    assert_eq!(listed["TCP 192.0.2.1:80"].options, "(sh-fallback,sh-port)");
    assert_eq!(listed["TCP 192.0.2.1:81"].options, "(mh-fallback,mh-port)");
    assert_eq!(listed["UDP 192.0.2.1:53"].options, "ops");
    assert_eq!(
        listed["UDP 192.0.2.1:5060"].options,
        "persistent 60 mask 255.255.255.0 pe sip"
    );
    assert_eq!(listed["SCTP 192.0.2.1:9"].options, "persistent 30");
    for service in [&sh, &mh, &ops, &sip, &sctp] {
        let read = ipvs.service(&service.key).await.unwrap();
        assert!(read.same_settings(service), "{read:?} != {service:?}");
    }
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn ipv6_service_and_destinations() {
    let (_guard, ipvs) = setup().await;
    let key = ServiceKey::udp(addr("[2001:db8::1]:53"));
    let mut service = Service::new(key, Scheduler::Wrr);
    service.flags = ServiceFlags::PERSISTENT;
    service.timeout = 120;
    service.netmask = 64;
    let first = Destination::new(addr("[2001:db8::2]:53"));
    let mut second = Destination::new(addr("[2001:db8:1::]:5353"));
    second.forward = ForwardMethod::Masquerade;
    second.weight = 7;

    ipvs.add_service(&service).await.unwrap();
    ipvs.add_destination(&key, &first).await.unwrap();
    ipvs.add_destination(&key, &second).await.unwrap();

    let listed = ipvsadm_list(&[]);
    let entry = &listed["UDP [2001:db8::1]:53"];
    assert_eq!(entry.options, "persistent 120 mask 64");
    assert_eq!(entry.destinations["[2001:db8::2]:53"].0, "Route");
    assert_eq!(entry.destinations["[2001:db8:1::]:5353"].0, "Masq");
    assert_eq!(entry.destinations["[2001:db8:1::]:5353"].1[0], 7);
    let read = ipvs.service(&key).await.unwrap();
    assert!(read.same_settings(&service), "{read:?}");
    let destinations = ipvs.destinations(&key).await.unwrap();
    assert_eq!(destinations.len(), 2);
    assert!(destinations.iter().any(|d| d.same_settings(&first)));
    assert!(destinations.iter().any(|d| d.same_settings(&second)));
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn fwmark_services_both_families() {
    let (_guard, ipvs) = setup().await;
    let v4 = ServiceKey::fwmark(AddressFamily::Inet, 256);
    let v6 = ServiceKey::fwmark(AddressFamily::Inet6, 65536);
    let mut dsr = Destination::new(addr("192.0.2.2:0"));
    dsr.weight = 3;
    let mut tunnel = Destination::new(addr("[2001:db8::2]:0"));
    tunnel.forward = ForwardMethod::Tunnel;

    ipvs.add_service(&Service::new(v4, Scheduler::Wlc))
        .await
        .unwrap();
    ipvs.add_service(&Service::new(v6, Scheduler::Mh))
        .await
        .unwrap();
    ipvs.add_destination(&v4, &dsr).await.unwrap();
    ipvs.add_destination(&v6, &tunnel).await.unwrap();

    let listed = ipvsadm_list(&[]);
    assert_eq!(listed["FWM 256"].scheduler, "wlc");
    assert_eq!(listed["FWM 65536 IPv6"].scheduler, "mh");
    assert_eq!(
        listed["FWM 256"].destinations["192.0.2.2:0"],
        ("Route".to_owned(), vec![3, 0, 0])
    );
    assert_eq!(
        listed["FWM 65536 IPv6"].destinations["[2001:db8::2]:0"].0,
        "Tunnel"
    );
    let table = ipvs.services_with_destinations().await.unwrap();
    assert_eq!(table.len(), 2);
    for (service, destinations) in table {
        assert_eq!(destinations.len(), 1, "{service}");
        match service.key {
            ServiceKey::Fwmark { mark: 256, .. } => assert!(destinations[0].same_settings(&dsr)),
            ServiceKey::Fwmark { mark: 65536, .. } => {
                assert!(destinations[0].same_settings(&tunnel))
            }
            other => panic!("unexpected service {other}"),
        }
    }
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn flush_empties_table() {
    let (_guard, ipvs) = setup().await;
    for port in 1..=3 {
        let key = ServiceKey::tcp(SocketAddr::new("192.0.2.1".parse().unwrap(), port));
        ipvs.add_service(&Service::new(key, Scheduler::Rr))
            .await
            .unwrap();
        ipvs.add_destination(&key, &Destination::new(addr("192.0.2.2:0")))
            .await
            .unwrap();
    }
    assert_eq!(ipvsadm_list(&[]).len(), 3);

    ipvs.flush().await.unwrap();

    assert!(ipvsadm_list(&[]).is_empty());
    assert!(ipvs.services().await.unwrap().is_empty());
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn errors_name_errno_and_object() {
    let (_guard, ipvs) = setup().await;
    let key = ServiceKey::tcp(addr("192.0.2.1:80"));
    let service = Service::new(key, Scheduler::Rr);
    ipvs.add_service(&service).await.unwrap();
    let destination = Destination::new(addr("192.0.2.2:80"));
    ipvs.add_destination(&key, &destination).await.unwrap();

    let exists = ipvs.add_service(&service).await.unwrap_err();
    assert!(exists.is_exists(), "{exists}");
    assert_eq!(exists.errno(), Some(17));
    assert_eq!(
        exists.to_string(),
        "add service TCP 192.0.2.1:80 (rr) failed: File exists (os error 17)"
    );

    let dest_exists = ipvs.add_destination(&key, &destination).await.unwrap_err();
    assert!(dest_exists.is_exists(), "{dest_exists}");
    assert!(
        dest_exists
            .to_string()
            .contains("192.0.2.2:80 of TCP 192.0.2.1:80"),
        "{dest_exists}"
    );

    let missing = ServiceKey::udp(addr("192.0.2.9:53"));
    let not_found = ipvs.delete_service(&missing).await.unwrap_err();
    assert!(not_found.is_not_found(), "{not_found}");
    assert_eq!(not_found.errno(), Some(3));
    assert!(not_found.to_string().contains("UDP 192.0.2.9:53"));

    let get_missing = ipvs.service(&missing).await.unwrap_err();
    assert_eq!(get_missing.errno(), Some(3), "{get_missing}");
    // The kernel ends a destination dump of a missing service with no
    // error, so the list is just empty.
    assert!(ipvs.destinations(&missing).await.unwrap().is_empty());

    let absent = Destination::new(addr("192.0.2.99:80"));
    let dest_missing = ipvs.delete_destination(&key, &absent).await.unwrap_err();
    assert!(dest_missing.is_not_found(), "{dest_missing}");

    let mut negative = Destination::new(addr("192.0.2.3:80"));
    negative.weight = -1;
    let invalid = ipvs.add_destination(&key, &negative).await.unwrap_err();
    assert_eq!(invalid.errno(), Some(34), "ERANGE expected: {invalid}");

    // The handle stays usable after rejections.
    assert_eq!(ipvs.services().await.unwrap().len(), 1);
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn timeouts_set_and_read() {
    let (_guard, ipvs) = setup().await;
    let timeouts = Timeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    };

    ipvs.set_timeouts(&timeouts).await.unwrap();
    let read = ipvs.timeouts().await.unwrap();
    let listed = run("ipvsadm", &["-L", "--timeout"]);

    assert_eq!(read, timeouts);
    assert_eq!(listed.trim(), "Timeout (tcp tcpfin udp): 900 120 300");

    // Zero keeps a value.
    ipvs.set_timeouts(&Timeouts {
        tcp: 0,
        tcp_fin: 60,
        udp: 0,
    })
    .await
    .unwrap();
    assert_eq!(
        ipvs.timeouts().await.unwrap(),
        Timeouts {
            tcp: 900,
            tcp_fin: 60,
            udp: 300
        }
    );
}

/// Connects through a persistent TCP service on the guest's loopback to a
/// listener in this process, then compares our counters with ipvsadm's.
#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn stats_and_connection_counts() {
    let (_guard, ipvs) = setup().await;
    run("ip", &["link", "set", "lo", "up"]);
    let listener = std::net::TcpListener::bind("127.0.0.1:9090").unwrap();
    let key = ServiceKey::tcp(addr("127.0.0.1:8080"));
    let mut service = Service::new(key, Scheduler::Rr);
    service.flags = ServiceFlags::PERSISTENT;
    service.timeout = 300;
    let mut destination = Destination::new(addr("127.0.0.1:9090"));
    destination.forward = ForwardMethod::Masquerade;
    ipvs.add_service(&service).await.unwrap();
    ipvs.add_destination(&key, &destination).await.unwrap();

    for _ in 0..3 {
        let mut client = std::net::TcpStream::connect("127.0.0.1:8080").unwrap();
        let (mut server, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut client, b"ping").unwrap();
        let mut buffer = [0u8; 4];
        std::io::Read::read_exact(&mut server, &mut buffer).unwrap();
        assert_eq!(&buffer, b"ping");
    }

    // The kernel sums the per-CPU counters in its rate estimator, which
    // runs every 2 seconds, so fresh traffic shows up only after that.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let read = ipvs.service(&key).await.unwrap();
    let stats = read.stats.expect("service stats");
    let destinations = ipvs.destinations(&key).await.unwrap();
    // --stats columns: connections, packets in, packets out, bytes in, bytes out.
    let listed = ipvsadm_list(&["--stats"]);
    let listed_dest = &listed["TCP 127.0.0.1:8080"].destinations["127.0.0.1:9090"].1;
    let dest_stats = destinations[0].stats.expect("destination stats");
    assert_eq!(stats.connections, 3);
    assert_eq!(dest_stats.connections, listed_dest[0]);
    assert_eq!(dest_stats.packets_in, listed_dest[1]);
    assert_eq!(dest_stats.packets_out, listed_dest[2]);
    assert_eq!(dest_stats.bytes_in, listed_dest[3]);
    assert!(dest_stats.bytes_in >= 3 * 4, "{dest_stats:?}");
    // --persistent-conn columns: weight, persistent, active, inactive.
    let persistent = ipvsadm_list(&["--persistent-conn"]);
    let columns = &persistent["TCP 127.0.0.1:8080"].destinations["127.0.0.1:9090"].1;
    assert_eq!(
        u64::from(destinations[0].persistent_connections),
        columns[1]
    );
    assert_eq!(u64::from(destinations[0].active_connections), columns[2]);
    assert_eq!(u64::from(destinations[0].inactive_connections), columns[3]);
    assert_eq!(destinations[0].persistent_connections, 1);
}

/// 1,000 services, each with 5 destinations: 6,000 requests.
fn large_table() -> Vec<Request> {
    let mut requests = Vec::new();
    for index in 0..1000u32 {
        let service_ip = std::net::Ipv4Addr::from(0xc612_0000 + index); // 198.18.x.y
        let key = ServiceKey::tcp(SocketAddr::new(service_ip.into(), 80));
        requests.push(Request::AddService(Service::new(key, Scheduler::Wlc)));
        for dest in 0..5u32 {
            let dest_ip = std::net::Ipv4Addr::from(0xc613_0000 + index * 5 + dest); // 198.19.x.y
            let destination = Destination::new(SocketAddr::new(dest_ip.into(), 80));
            requests.push(Request::AddDestination(key, destination));
        }
    }
    requests
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn batch_of_thousand_services() {
    let (_guard, ipvs) = setup().await;
    let requests = large_table();

    let report = ipvs.apply(&requests).await.unwrap();

    assert_eq!(report.sent, 6000);
    assert!(report.failures.is_empty(), "{:?}", report.failures.first());
    let listed = ipvsadm_list(&[]);
    assert_eq!(listed.len(), 1000);
    assert!(listed.values().all(|s| s.destinations.len() == 5));
    let table = ipvs.services_with_destinations().await.unwrap();
    assert_eq!(table.len(), 1000);
    assert_eq!(table.iter().map(|(_, d)| d.len()).sum::<usize>(), 5000);
}

#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn batch_reports_each_failure() {
    let (_guard, ipvs) = setup().await;
    let key = ServiceKey::tcp(addr("192.0.2.1:80"));
    let missing = ServiceKey::tcp(addr("192.0.2.9:80"));
    let service = Service::new(key, Scheduler::Rr);
    let requests = vec![
        Request::AddService(service.clone()),
        Request::AddService(service.clone()),
        Request::AddDestination(key, Destination::new(addr("192.0.2.2:80"))),
        Request::AddDestination(missing, Destination::new(addr("192.0.2.3:80"))),
        Request::DeleteService(missing),
        Request::AddDestination(key, Destination::new(addr("192.0.2.4:80"))),
    ];

    let report = ipvs.apply(&requests).await.unwrap();

    let failed: Vec<(usize, Option<i32>)> = report
        .failures
        .iter()
        .map(|f| (f.index, f.error.errno()))
        .collect();
    assert_eq!(failed, [(1, Some(17)), (3, Some(3)), (4, Some(3))]);
    assert!(
        report.failures[1]
            .error
            .to_string()
            .starts_with("add destination 192.0.2.3:80 of TCP 192.0.2.9:80 failed"),
        "{}",
        report.failures[1].error
    );
    let listed = ipvsadm_list(&[]);
    assert_eq!(listed["TCP 192.0.2.1:80"].destinations.len(), 2);
}

/// Times the same 1,000 × 5 table three ways from an empty table, three
/// runs each; run with `--nocapture` to see the numbers. Every run is
/// checked with ipvsadm.
#[tokio::test]
#[ignore = "needs the kernel lab"]
async fn measure_programming_time() {
    let (_guard, mut ipvs) = setup().await;
    let requests = large_table();
    let rules = restore_rules(&requests);
    let mut results: Vec<(String, Vec<Duration>)> = Vec::new();

    for window in [64, 256, 512] {
        let mut runs = Vec::new();
        ipvs.set_batch_window(window);
        for _ in 0..3 {
            ipvs.flush().await.unwrap();
            let start = Instant::now();
            let report = ipvs.apply(&requests).await.unwrap();
            runs.push(start.elapsed());
            assert!(report.is_success(), "{:?}", report.failures.first());
            assert_eq!(ipvsadm_list(&[]).len(), 1000);
        }
        results.push((format!("apply, window {window}"), runs));
    }

    let mut runs = Vec::new();
    for _ in 0..3 {
        ipvs.flush().await.unwrap();
        let start = Instant::now();
        for request in &requests {
            ipvs.execute(request).await.unwrap();
        }
        runs.push(start.elapsed());
        assert_eq!(ipvsadm_list(&[]).len(), 1000);
    }
    results.push(("one request per round trip".to_owned(), runs));

    let mut runs = Vec::new();
    for _ in 0..3 {
        ipvs.flush().await.unwrap();
        let start = Instant::now();
        let mut child = Command::new("ipvsadm")
            .arg("--restore")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), rules.as_bytes()).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        runs.push(start.elapsed());
        assert_eq!(ipvsadm_list(&[]).len(), 1000);
    }
    results.push(("ipvsadm --restore".to_owned(), runs));

    for (what, runs) in &results {
        let seconds: Vec<String> = runs
            .iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect();
        println!("measure: {what}: {} s", seconds.join(" / "));
    }
}

/// Writes the table as `ipvsadm --restore` input.
fn restore_rules(requests: &[Request]) -> String {
    let mut rules = String::new();
    for request in requests {
        match request {
            Request::AddService(service) => {
                rules.push_str(&format!("-A -t {} -s wlc\n", tcp_address(&service.key)))
            }
            Request::AddDestination(key, destination) => rules.push_str(&format!(
                "-a -t {} -r {} -g -w {}\n",
                tcp_address(key),
                destination.address,
                destination.weight
            )),
            other => panic!("no ipvsadm rule for {other}"),
        }
    }
    rules
}

fn tcp_address(key: &ServiceKey) -> SocketAddr {
    match key {
        ServiceKey::Inet { address, .. } => *address,
        other => panic!("not an address service: {other}"),
    }
}
