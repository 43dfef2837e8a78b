//! seesaw_ha on real raw sockets between network namespaces.
//!
//! Needs root. `cargo xtask test` runs these `root_*` tests as root; plain
//! `cargo test` skips them. Time bounds are generous multiples of the
//! protocol's own intervals, so a loaded machine does not fail them.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::thread;
use std::time::{Duration, Instant};

use seesaw_vrrp::packet::IPV6_MULTICAST_GROUP;
use seesaw_vrrp::{AdvertInterval, Advertisement, Endpoints, master_down_interval};
use support::{HaNode, HaOptions, Lab, assert_log_contains, ipv4, ipv6, wait_for};

const BINARY: &str = env!("CARGO_BIN_EXE_seesaw_ha");
const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// At 500 ms, the longest master-down interval (priority 1) is 2 s; 5 s
/// leaves room for a loaded machine.
const TAKEOVER: Duration = Duration::from_secs(5);

/// Waits until exactly one of `nodes` is LEADER and the rest are BACKUP,
/// and returns the index of the leader in `nodes`.
fn wait_for_one_leader(nodes: &[&HaNode], timeout: Duration) -> usize {
    let settled = wait_for(timeout, || {
        let leaders = nodes.iter().filter(|node| node.is("LEADER")).count();
        let backups = nodes.iter().filter(|node| node.is("BACKUP")).count();
        leaders == 1 && backups == nodes.len() - 1
    });
    let states: Vec<_> = nodes.iter().map(|node| node.state()).collect();
    assert!(settled, "no single LEADER within {timeout:?}: {states:?}");
    nodes.iter().position(|node| node.is("LEADER")).unwrap()
}

/// Checks for `period` that the states and transition counts stay put.
fn assert_steady(nodes: &[&HaNode], period: Duration) {
    let before: Vec<_> = nodes
        .iter()
        .map(|node| (node.state(), node.transitions()))
        .collect();
    let start = Instant::now();
    while start.elapsed() < period {
        let now: Vec<_> = nodes
            .iter()
            .map(|node| (node.state(), node.transitions()))
            .collect();
        assert_eq!(now, before, "states changed during steady state");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_election_one_leader() {
    let mut lab = Lab::new(2);
    let high = lab.start_ha(BINARY, 0, &HaOptions::new(200));
    let low = lab.start_ha(BINARY, 1, &HaOptions::new(100));

    let leader = wait_for_one_leader(&[&high, &low], TAKEOVER);
    assert_steady(&[&high, &low], Duration::from_secs(3));

    // Both start as BACKUP; the one whose master-down timer fires first
    // (the higher priority, 1.52 s against 1.80 s) wins.
    assert_eq!(leader, 0, "the priority-200 node should win");
    assert_log_contains(&high, "state BACKUP -> LEADER vrid=60 peer=224.0.0.18");
    assert_log_contains(&low, "state UNKNOWN -> BACKUP vrid=60");
    assert!(!low.log().contains("-> LEADER"), "{}", low.log());
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_election_unicast_peers() {
    let mut lab = Lab::new(2);
    let mut first = HaOptions::new(200);
    first.remote = ipv4(1).into();
    let mut second = HaOptions::new(100);
    second.remote = ipv4(0).into();
    let high = lab.start_ha(BINARY, 0, &first);
    let low = lab.start_ha(BINARY, 1, &second);

    assert_eq!(wait_for_one_leader(&[&high, &low], TAKEOVER), 0);
    assert_steady(&[&high, &low], Duration::from_secs(3));
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_election_ipv6_multicast() {
    let mut lab = Lab::new(2);
    let mut first = HaOptions::new(200);
    first.ipv6 = true;
    first.remote = IpAddr::V6(IPV6_MULTICAST_GROUP);
    let mut second = first.clone();
    second.priority = 100;
    let high = lab.start_ha(BINARY, 0, &first);
    let low = lab.start_ha(BINARY, 1, &second);

    assert_eq!(wait_for_one_leader(&[&high, &low], TAKEOVER), 0);
    assert_steady(&[&high, &low], Duration::from_secs(3));

    lab.stop(high.pid, libc::SIGKILL);
    assert!(wait_for(TAKEOVER, || low.is("LEADER")), "{}", low.log());
}

/// Runs a pair that advertises by IPv6 unicast from `locals[i]` to the
/// other node's address: one leader, steady, and the backup's takeover when
/// the leader is killed.
fn elect_over_ipv6_unicast(lab: &mut Lab, locals: [Ipv6Addr; 2]) {
    let mut first = HaOptions::new(200);
    first.ipv6 = true;
    first.local = Some(locals[0].into());
    first.remote = locals[1].into();
    let mut second = first.clone();
    second.priority = 100;
    second.local = Some(locals[1].into());
    second.remote = locals[0].into();
    let high = lab.start_ha(BINARY, 0, &first);
    let low = lab.start_ha(BINARY, 1, &second);

    assert_eq!(wait_for_one_leader(&[&high, &low], TAKEOVER), 0);
    assert_steady(&[&high, &low], Duration::from_secs(3));
    assert_log_contains(
        &high,
        &format!("state BACKUP -> LEADER vrid=60 peer={}", locals[1]),
    );

    lab.stop(high.pid, libc::SIGKILL);
    assert!(wait_for(TAKEOVER, || low.is("LEADER")), "{}", low.log());
    assert_log_contains(
        &low,
        &format!(
            "state BACKUP -> LEADER vrid=60 peer={} cause=\"master-down timer expired\"",
            locals[0]
        ),
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_election_ipv6_unicast_peers() {
    let mut lab = Lab::new(2);
    elect_over_ipv6_unicast(&mut lab, [ipv6(0), ipv6(1)]);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_election_ipv6_link_local_peers() {
    let mut lab = Lab::new(2);
    // Fixed link-local addresses, beside the kernel's own, so the test can
    // name them. The daemon scopes them to eth0.
    let locals = [
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa1),
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0xa2),
    ];
    for (index, local) in locals.iter().enumerate() {
        let address = format!("{local}/64");
        lab.ip_in(index, &["addr", "add", &address, "dev", "eth0", "nodad"]);
    }
    elect_over_ipv6_unicast(&mut lab, locals);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_kill_master_backup_takes_over() {
    let mut lab = Lab::new(2);
    let high = lab.start_ha(BINARY, 0, &HaOptions::new(200));
    let low = lab.start_ha(BINARY, 1, &HaOptions::new(100));
    wait_for_one_leader(&[&high, &low], TAKEOVER);

    lab.stop(high.pid, libc::SIGKILL);
    assert!(wait_for(TAKEOVER, || low.is("LEADER")), "{}", low.log());
    assert_log_contains(
        &low,
        "state BACKUP -> LEADER vrid=60 peer=224.0.0.18 cause=\"master-down timer expired\"",
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_sigterm_hands_over_at_once() {
    let mut lab = Lab::new(2);
    // At 1 s the backup's master-down interval is 3.61 s, so a takeover
    // within 2.5 s can only come from the step-down advert. The log line
    // shows that the advert itself, not a timer, made the backup master.
    let mut options = HaOptions::new(200);
    options.interval = "1s";
    let high = lab.start_ha(BINARY, 0, &options);
    options.priority = 100;
    let low = lab.start_ha(BINARY, 1, &options);
    wait_for_one_leader(&[&high, &low], Duration::from_secs(10));

    let start = Instant::now();
    let status = lab.stop(high.pid, libc::SIGTERM);
    assert!(status.success(), "SIGTERM exit status {status}");
    assert!(
        wait_for(Duration::from_millis(2500), || low.is("LEADER")),
        "no takeover within 2.5 s of SIGTERM:\n{}",
        low.log()
    );
    eprintln!("takeover after SIGTERM in {:?}", start.elapsed());
    assert_log_contains(
        &low,
        "state BACKUP -> LEADER vrid=60 peer=224.0.0.18 cause=\"advert from 198.18.0.1 priority 0\"",
    );
    assert!(high.is("SHUTDOWN"), "{:?}", high.state());
    assert_log_contains(&high, "state LEADER -> SHUTDOWN vrid=60");
    assert_log_contains(&high, "stopped vrid=60 state=SHUTDOWN");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_restart_without_preempt_stays_backup() {
    let mut lab = Lab::new(2);
    let high = lab.start_ha(BINARY, 0, &HaOptions::new(200));
    let low = lab.start_ha(BINARY, 1, &HaOptions::new(100));
    wait_for_one_leader(&[&high, &low], TAKEOVER);

    lab.stop(high.pid, libc::SIGTERM);
    assert!(wait_for(TAKEOVER, || low.is("LEADER")));

    let high = lab.start_ha(BINARY, 0, &HaOptions::new(200));
    assert!(wait_for(TAKEOVER, || high.is("BACKUP")));
    // Three of the restarted node's master-down intervals (1.52 s each).
    assert_steady(&[&high, &low], Duration::from_secs(5));
    assert!(low.is("LEADER"));
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_restart_with_preempt_takes_over() {
    let mut lab = Lab::new(2);
    let mut options = HaOptions::new(200);
    options.preempt = true;
    let high = lab.start_ha(BINARY, 0, &options);
    let low = lab.start_ha(BINARY, 1, &HaOptions::new(100));
    wait_for_one_leader(&[&high, &low], TAKEOVER);

    lab.stop(high.pid, libc::SIGTERM);
    assert!(wait_for(TAKEOVER, || low.is("LEADER")));

    let high = lab.start_ha(BINARY, 0, &options);
    assert!(wait_for(TAKEOVER, || high.is("LEADER")), "{}", high.log());
    assert_eq!(wait_for_one_leader(&[&high, &low], TAKEOVER), 0);
    assert_log_contains(
        &low,
        "state LEADER -> BACKUP vrid=60 peer=224.0.0.18 cause=\"advert from 198.18.0.1 priority 200\"",
    );
}

/// The time allowed beyond a protocol interval for the kernel, the daemon
/// and the test's polling to act on a loaded machine.
const SCHEDULING_SLACK: Duration = Duration::from_millis(250);

/// Puts `port` back on the bridge and waits until exactly one of `nodes` is
/// LEADER and `loser` has logged its step-down. Returns the leader's index
/// in `nodes`.
///
/// Both nodes are master while cut, so the healed pair converges when the
/// loser hears the winner's next advert, within one advert interval. The
/// bound is the loser's master-down interval plus [`SCHEDULING_SLACK`],
/// measured from just before the link comes back up to the poll that sees
/// the step-down, so it includes up to one 20 ms poll.
fn heal_and_converge(
    lab: &Lab,
    port: usize,
    nodes: &[&HaNode],
    loser: usize,
    priority: u8,
) -> usize {
    let master_down = master_down_interval(priority, AdvertInterval::DEFAULT);
    let bound = master_down + SCHEDULING_SLACK;
    let step_down = "state LEADER -> BACKUP vrid=60";

    let healed_at = Instant::now();
    let healed_at_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970");
    lab.set_link(port, true);
    let link_up_after = healed_at.elapsed();
    // Wait past the bound, so a failure reports how long it really took.
    let converged = wait_for(bound * 3, || {
        let leaders = nodes.iter().filter(|node| node.is("LEADER")).count();
        let backups = nodes.iter().filter(|node| node.is("BACKUP")).count();
        leaders == 1 && backups == nodes.len() - 1 && nodes[loser].log().contains(step_down)
    });
    let elapsed = healed_at.elapsed();
    eprintln!(
        "heal converged in {} ms, of which {} ms running ip; bound {} ms (master-down interval {} ms + {} ms)",
        elapsed.as_millis(),
        link_up_after.as_millis(),
        bound.as_millis(),
        master_down.as_millis(),
        SCHEDULING_SLACK.as_millis()
    );
    // The log's timestamps are local time, to the microsecond.
    let loser_log = nodes[loser].log();
    let step_down_line = loser_log.lines().find(|line| line.contains(step_down));
    eprintln!(
        "link up at unix time {}.{:06}; loser logged: {}",
        healed_at_unix.as_secs(),
        healed_at_unix.subsec_micros(),
        step_down_line.unwrap_or("nothing")
    );

    let states: Vec<_> = nodes.iter().map(|node| node.state()).collect();
    assert!(converged, "no single LEADER after the heal: {states:?}");
    assert!(
        elapsed <= bound,
        "the pair took {elapsed:?} to converge after the heal, more than the bound {bound:?}"
    );
    nodes.iter().position(|node| node.is("LEADER")).unwrap()
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_link_cut_and_heal() {
    let mut lab = Lab::new(2);
    let high = lab.start_ha(BINARY, 0, &HaOptions::new(200));
    let low = lab.start_ha(BINARY, 1, &HaOptions::new(100));
    wait_for_one_leader(&[&high, &low], TAKEOVER);

    lab.set_link(0, false);
    assert!(
        wait_for(TAKEOVER, || low.is("LEADER")),
        "the cut-off backup did not take over"
    );
    assert!(high.is("LEADER"), "both should be master while cut");

    assert_eq!(heal_and_converge(&lab, 0, &[&high, &low], 1, 100), 0);
    assert_log_contains(
        &low,
        "state LEADER -> BACKUP vrid=60 peer=224.0.0.18 cause=\"advert from 198.18.0.1 priority 200\"",
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_link_cut_equal_priority_converges() {
    let mut lab = Lab::new(2);
    let first = lab.start_ha(BINARY, 0, &HaOptions::new(100));
    let second = lab.start_ha(BINARY, 1, &HaOptions::new(100));
    let leader = wait_for_one_leader(&[&first, &second], TAKEOVER);

    // Cut the backup off so it becomes a second master.
    let backup = 1 - leader;
    lab.set_link(backup, false);
    let both = [&first, &second];
    assert!(wait_for(TAKEOVER, || both[backup].is("LEADER")));

    // The RFC 5798 tie-break: the higher address keeps the role, so the
    // node at 198.18.0.1 steps down.
    assert_eq!(heal_and_converge(&lab, backup, &both, 0, 100), 1);
    assert_log_contains(
        &first,
        "state LEADER -> BACKUP vrid=60 peer=224.0.0.18 cause=\"advert from 198.18.0.2 priority 100\"",
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_send_failure_logged_and_retried() {
    let mut lab = Lab::new(2);
    let high = lab.start_ha(BINARY, 0, &HaOptions::new(200));
    let low = lab.start_ha(BINARY, 1, &HaOptions::new(100));
    assert_eq!(wait_for_one_leader(&[&high, &low], TAKEOVER), 0);

    // With its own interface down, the master's sendto fails on every advert.
    lab.ip_in(0, &["link", "set", "eth0", "down"]);
    let failure = "failed to send the advert to 224.0.0.18";
    assert!(
        wait_for(Duration::from_secs(2), || high.log().contains(failure)),
        "no send failure logged:\n{}",
        high.log()
    );
    assert!(
        wait_for(TAKEOVER, || low.is("LEADER")),
        "the backup did not take over from a master that cannot send"
    );

    // The log limits repeats to one line per 10 s, and that line counts
    // the failures in between, each of them one advert retried.
    let retried = wait_for(Duration::from_secs(15), || {
        high.log().contains("more like it suppressed)")
    });
    assert!(retried, "no repeated send failure logged:\n{}", high.log());
    for line in high.log().lines().filter(|line| line.contains(failure)) {
        eprintln!("master's log: {line}");
    }
    assert!(
        lab.is_running(high.pid),
        "seesaw_ha exited:\n{}",
        high.log()
    );
    assert!(high.is("LEADER"), "{:?}", high.state());

    lab.ip_in(0, &["link", "set", "eth0", "up"]);
    assert_eq!(wait_for_one_leader(&[&high, &low], TAKEOVER), 0);
    assert_log_contains(
        &low,
        "state LEADER -> BACKUP vrid=60 peer=224.0.0.18 cause=\"advert from 198.18.0.1 priority 200\"",
    );

    // The backup's master-down interval is 1.80 s, so staying BACKUP for
    // 3 s shows that the adverts keep coming. The status file is written
    // only on a change of state, so its counters cannot show it.
    assert_steady(&[&high, &low], Duration::from_secs(3));
    assert!(
        lab.is_running(high.pid),
        "seesaw_ha exited:\n{}",
        high.log()
    );

    let status = lab.stop(high.pid, libc::SIGTERM);
    assert!(status.success(), "SIGTERM exit status {status}");
}

/// A raw socket in the injector's namespace that writes whole IPv4 packets,
/// so the test controls the TTL and every byte.
struct Injector {
    socket: socket2::Socket,
}

impl Injector {
    fn open(lab: &Lab, index: usize) -> Injector {
        let source = ipv4(index);
        let socket = lab.in_namespace(index, move || {
            let socket = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::from(112)),
            )
            .expect("raw socket");
            socket.set_header_included_v4(true).expect("IP_HDRINCL");
            socket
                .set_multicast_if_v4(&source)
                .expect("IP_MULTICAST_IF");
            socket
        });
        Injector { socket }
    }

    /// Sends `payload` from `source` to `destination` with `ttl`.
    fn send(&self, source: Ipv4Addr, destination: Ipv4Addr, ttl: u8, payload: &[u8]) {
        let total = 20 + payload.len();
        let mut packet = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            ttl,
            112,
            0,
            0,
        ];
        packet.extend_from_slice(&source.octets());
        packet.extend_from_slice(&destination.octets());
        packet.extend_from_slice(payload);
        let address = std::net::SocketAddr::new(destination.into(), 0);
        self.socket
            .send_to(&packet, &address.into())
            .expect("failed to inject a packet");
    }
}

/// Builds an injected packet's payload for a destination.
type PacketBuilder<'a> = Box<dyn Fn(Ipv4Addr) -> Vec<u8> + 'a>;

/// Returns a valid advert from `source` to `destination`.
fn advert(vrid: u8, priority: u8, source: Ipv4Addr, destination: Ipv4Addr) -> Vec<u8> {
    let endpoints = Endpoints::V4 {
        source,
        destination,
    };
    Advertisement::new(vrid, priority, AdvertInterval::DEFAULT)
        .encode(&endpoints)
        .unwrap()
}

#[test]
#[ignore = "needs root: network namespaces"]
fn root_invalid_packets_change_nothing() {
    let mut lab = Lab::new(3);
    // The two master-down intervals differ by only 98 ms, so the backup
    // starts once the leader is master, lest a slow start on a loaded
    // machine swap the roles.
    let leader = lab.start_ha(BINARY, 0, &HaOptions::new(100));
    assert!(
        wait_for(TAKEOVER, || leader.is("LEADER")),
        "{}",
        leader.log()
    );
    let backup = lab.start_ha(BINARY, 1, &HaOptions::new(50));
    assert_eq!(wait_for_one_leader(&[&leader, &backup], TAKEOVER), 0);
    let injector = Injector::open(&lab, 2);
    let source = ipv4(2);

    // Every packet claims priority 255, so any that got through would make
    // the master (priority 100) yield.
    let valid = |destination| advert(60, 255, source, destination);
    let mut cases: Vec<(&str, u8, PacketBuilder)> = vec![
        ("short", 255, Box::new(|d| valid(d)[..6].to_vec())),
        ("empty", 255, Box::new(|_| Vec::new())),
        ("ttl 64", 64, Box::new(valid)),
        ("ttl 254", 254, Box::new(valid)),
        (
            "wrong checksum",
            255,
            Box::new(|d| {
                let mut packet = valid(d);
                packet[7] ^= 0x01;
                packet
            }),
        ),
        ("wrong vrid", 255, Box::new(|d| advert(61, 255, source, d))),
        (
            "checksum over another destination",
            255,
            Box::new(|_| advert(60, 255, source, Ipv4Addr::new(198, 18, 0, 99))),
        ),
        (
            "version 2",
            255,
            Box::new(|d| {
                let mut packet = valid(d);
                packet[0] = 0x21;
                refix_checksum(&mut packet, source, d);
                packet
            }),
        ),
        (
            "type 2",
            255,
            Box::new(|d| {
                let mut packet = valid(d);
                packet[0] = 0x32;
                refix_checksum(&mut packet, source, d);
                packet
            }),
        ),
        (
            "count without addresses",
            255,
            Box::new(|d| {
                let mut packet = valid(d);
                packet[3] = 1;
                refix_checksum(&mut packet, source, d);
                packet
            }),
        ),
        (
            "interval 0",
            255,
            Box::new(|d| {
                let mut packet = valid(d);
                packet[4] = 0;
                packet[5] = 0;
                refix_checksum(&mut packet, source, d);
                packet
            }),
        ),
        (
            "trailing garbage",
            255,
            Box::new(|d| {
                let mut packet = valid(d);
                packet.extend_from_slice(&[1, 2, 3]);
                packet
            }),
        ),
    ];

    let transitions = (leader.transitions(), backup.transitions());
    for (name, ttl, build) in cases.drain(..) {
        for destination in [GROUP, ipv4(0), ipv4(1)] {
            for _ in 0..5 {
                injector.send(source, destination, ttl, &build(destination));
            }
        }
        thread::sleep(Duration::from_millis(100));
        assert!(leader.is("LEADER"), "the master yielded to a {name} packet");
        assert!(backup.is("BACKUP"), "the backup moved on a {name} packet");
    }
    assert_steady(&[&leader, &backup], Duration::from_secs(2));
    assert_eq!((leader.transitions(), backup.transitions()), transitions);
    assert_log_contains(&leader, "TTL or hop limit 64 is not 255");
    assert_log_contains(&leader, "VRID 61 is not the local VRID 60");

    // A valid advert over the same path proves the packets above arrived
    // and were dropped for their defect alone.
    injector.send(source, GROUP, 255, &valid(GROUP));
    assert!(wait_for(Duration::from_secs(2), || leader.is("BACKUP")));
    assert_log_contains(
        &leader,
        "state LEADER -> BACKUP vrid=60 peer=224.0.0.18 cause=\"advert from 198.18.0.3 priority 255\"",
    );
}

/// Recomputes the checksum of an edited advert so only the edit is wrong.
fn refix_checksum(packet: &mut [u8], source: Ipv4Addr, destination: Ipv4Addr) {
    packet[6] = 0;
    packet[7] = 0;
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&source.octets());
    pseudo.extend_from_slice(&destination.octets());
    pseudo.extend_from_slice(&[0, 112]);
    pseudo.extend_from_slice(&(packet.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(packet);
    let checksum = seesaw_vrrp::internet_checksum(&pseudo);
    packet[6..8].copy_from_slice(&checksum.to_be_bytes());
}
