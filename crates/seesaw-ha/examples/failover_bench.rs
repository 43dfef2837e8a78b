//! Measures failover time: SIGKILL of the master to the backup's first
//! advert as master, in a pair of network namespaces, for a pair of
//! seesaw_ha nodes and, in the same run, a pair of keepalived instances.
//!
//! Needs root. Run it with
//! `cargo run -p seesaw-ha --example failover_bench -- [RUNS] [INTERVAL...]`
//! after `cargo build -p seesaw-ha`, since it starts the seesaw_ha binary
//! that sits next to the examples directory. Defaults: 20 runs at 500ms,
//! 100ms and 30ms. The backup has priority 1, as Seesaw's engine assigns
//! it, so it waits almost four intervals. The runs of the two pairs
//! alternate, so both see the same load. Without keepalived only seesaw_ha
//! is measured.

#[path = "../tests/support/mod.rs"]
mod support;

use std::mem::MaybeUninit;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::keepalived::{KeepalivedOptions, have_keepalived};
use support::{HaOptions, Lab, ipv4, wait_for};

/// `ETH_P_ALL` in network byte order, as an AF_PACKET socket expects it.
/// Only an all-protocols packet socket receives outgoing packets.
const ETH_P_ALL_BE: i32 = (libc::ETH_P_ALL as u16).to_be() as i32;

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args
        .next()
        .map(|value| value.parse().expect("RUNS must be a whole number"))
        .unwrap_or(20);
    let mut intervals: Vec<String> = args.collect();
    if intervals.is_empty() {
        intervals = vec!["500ms".into(), "100ms".into(), "30ms".into()];
    }
    let binary = ha_binary();
    let with_keepalived = have_keepalived();

    for interval in &intervals {
        let interval: &'static str = Box::leak(interval.clone().into_boxed_str());
        let mut ours = Vec::with_capacity(runs);
        let mut theirs = Vec::with_capacity(runs);
        for run in 0..runs {
            match measure(&binary, interval) {
                Some(elapsed) => ours.push(elapsed),
                None => eprintln!("seesaw_ha at {interval}: run {run} failed, skipped"),
            }
            if !with_keepalived {
                continue;
            }
            match measure_keepalived(interval) {
                Some(elapsed) => theirs.push(elapsed),
                None => eprintln!("keepalived at {interval}: run {run} failed, skipped"),
            }
        }
        report("seesaw_ha", interval, &mut ours, runs);
        if with_keepalived {
            report("keepalived", interval, &mut theirs, runs);
        }
    }
}

/// Returns the seesaw_ha binary of the same build profile as this example.
fn ha_binary() -> String {
    let exe = std::env::current_exe().expect("cannot find the example's own path");
    let profile_dir: PathBuf = exe
        .parent()
        .and_then(|examples| examples.parent())
        .expect("the example is not in target/<profile>/examples")
        .to_path_buf();
    let binary = profile_dir.join("seesaw_ha");
    assert!(
        binary.exists(),
        "{} not found; run cargo build -p seesaw-ha first",
        binary.display()
    );
    binary.display().to_string()
}

/// Runs one failover and returns the time from the SIGKILL to the first
/// advert of the new master, as a packet socket in its namespace sees it
/// leave.
fn measure(binary: &str, interval: &'static str) -> Option<Duration> {
    let mut lab = Lab::new(2);
    let mut options = HaOptions::new(255);
    options.interval = interval;
    let master = lab.start_ha(binary, 0, &options);
    options.priority = 1;
    let backup = lab.start_ha(binary, 1, &options);

    let settled = wait_for(Duration::from_secs(10), || {
        master.is("LEADER") && backup.is("BACKUP")
    });
    if !settled {
        eprintln!(
            "no election: master {:?}, backup {:?}",
            master.state(),
            backup.state()
        );
        return None;
    }

    sleep_to_random_phase(parse_interval(interval));
    let capture = lab.in_namespace(1, open_capture);
    let start = Instant::now();
    lab.stop(master.pid, libc::SIGKILL);
    let seen = wait_for_advert(&capture, ipv4(1), Duration::from_secs(10));
    if seen.is_none() {
        eprintln!("no advert from the backup; its log:\n{}", backup.log());
    }
    seen.map(|seen| seen - start)
}

/// Runs one failover of a keepalived pair, the master at priority 254 and
/// the backup at 1, and returns the time from the SIGKILL of the master's
/// VRRP process to the first advert of the new master.
fn measure_keepalived(interval: &str) -> Option<Duration> {
    let mut lab = Lab::new(2);
    let mut options = KeepalivedOptions::new(254);
    options.interval = parse_interval(interval);
    let master = lab.start_keepalived(0, &options);
    // Both start as BACKUP, so the master is started alone first.
    if !wait_for(Duration::from_secs(10), || master.is("MASTER")) {
        eprintln!("keepalived did not become master:\n{}", master.log());
        return None;
    }
    options.priority = 1;
    let backup = lab.start_keepalived(1, &options);
    if !wait_for(Duration::from_secs(10), || backup.is("BACKUP")) {
        eprintln!("keepalived did not start as backup:\n{}", backup.log());
        return None;
    }
    // A backup that has not heard the master yet would wait its own
    // master-down interval from its start, not from the kill.
    std::thread::sleep(Duration::from_millis(200).max(3 * options.interval));
    if !master.is("MASTER") || !backup.is("BACKUP") {
        eprintln!(
            "no election: master {:?}, backup {:?}",
            master.state(),
            backup.state()
        );
        return None;
    }

    sleep_to_random_phase(options.interval);
    let capture = lab.in_namespace(1, open_capture);
    let start = Instant::now();
    lab.kill_keepalived(&master);
    let seen = wait_for_advert(&capture, ipv4(1), Duration::from_secs(10));
    if seen.is_none() {
        eprintln!("no advert from the backup; its log:\n{}", backup.log());
    }
    seen.map(|seen| seen - start)
}

fn parse_interval(interval: &str) -> Duration {
    humantime::parse_duration(interval).expect("invalid interval")
}

/// Sleeps three intervals plus a random part of one, so that the kill
/// falls at a random phase of the advert cycle, as a crash would, and not
/// right after an advert, which would always give the longest wait.
fn sleep_to_random_phase(interval: Duration) {
    std::thread::sleep(3 * interval + random_fraction(interval));
}

/// Returns a duration from 0 to `max`, drawn from the clock's nanoseconds,
/// which is random enough to spread the kills over the advert cycle.
fn random_fraction(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    max.mul_f64(f64::from(nanos % 1_000_000) / 1e6)
}

/// Opens a packet socket that captures every packet of the namespace, outgoing
/// ones included, from the network header on.
fn open_capture() -> socket2::Socket {
    let socket = socket2::Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::from(ETH_P_ALL_BE)),
    )
    .expect("failed to open a packet socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("failed to set the read timeout");
    socket
}

/// Returns when the first VRRP packet from `source` was read, or `None`
/// after `timeout`.
fn wait_for_advert(
    socket: &socket2::Socket,
    source: Ipv4Addr,
    timeout: Duration,
) -> Option<Instant> {
    let start = Instant::now();
    let mut buffer = [MaybeUninit::<u8>::uninit(); 2048];
    while start.elapsed() < timeout {
        let Ok(len) = socket.recv(&mut buffer) else {
            continue;
        };
        let seen = Instant::now();
        // SAFETY: recv initialised the first `len` bytes.
        let packet: Vec<u8> = buffer[..len]
            .iter()
            .map(|byte| unsafe { byte.assume_init() })
            .collect();
        let is_vrrp = packet.len() >= 20 && packet[0] >> 4 == 4 && packet[9] == 112;
        if is_vrrp && packet[12..16] == source.octets() {
            return Some(seen);
        }
    }
    None
}

fn report(name: &str, interval: &str, samples: &mut [Duration], runs: usize) {
    samples.sort();
    if samples.is_empty() {
        println!("{name} at {interval}: no successful runs of {runs}");
        return;
    }
    let median = samples[samples.len() / 2];
    let min = samples[0];
    let max = samples[samples.len() - 1];
    println!(
        "{name} at {interval}: {} of {runs} runs, min {:.1} ms, median {:.1} ms, max {:.1} ms",
        samples.len(),
        min.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
    );
}
