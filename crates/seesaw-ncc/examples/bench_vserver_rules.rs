//! Measures how long seesaw_ncc takes to install the iptables rules of N
//! virtual servers into empty chains, with one `AddVserverRules` call per
//! virtual server and with one `ApplyVserverRules` batch. After each batch
//! it also times the same batch again, which has nothing to change, and a
//! batch that deletes them all.
//!
//! Run it in the kernel lab, never on a host, because it creates network
//! namespaces and veth links and changes their iptables rules:
//!
//! ```sh
//! cargo build --release -p seesaw-ncc --bins --examples
//! SEESAW_LAB_MEM=1536 SEESAW_LAB_TIMEOUT=3600 cargo xtask vm -- \
//!     target/release/examples/bench_vserver_rules
//! ```
//!
//! Options, with their defaults:
//!
//! - `--sizes 100,1000`: virtual servers per run.
//! - `--single-repetitions 1`: measured runs of the single calls.
//! - `--batch-repetitions 3`: measured runs of the batch.
//! - `--ncc PATH`: the daemon; by default `seesaw_ncc` in the directory
//!   above this example's.
//!
//! Each virtual server has its own IPv4 address and TCP ports 80 and 443
//! (direct server return), so four rules: two port ACCEPTs, the ICMP ACCEPT
//! and the REJECT. Every run starts from `InitLbInterface`, which flushes
//! the chains, and the time covers the gRPC calls alone. After each run,
//! outside the timed part, `iptables-save` must list the same rules as
//! after the first single run, so both ways are known to do the same work.
//! docs/benchmarks.md records the results.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use seesaw_ipc::proto::{self, ncc_client::NccClient};
use tonic::transport::Channel;

#[path = "../tests/lb/mod.rs"]
mod lb;

use lb::{GATEWAY, NODE, lb_interface};

const NAMESPACE: &str = "bench-rules";

struct Options {
    sizes: Vec<u32>,
    single_repetitions: u32,
    batch_repetitions: u32,
    ncc: PathBuf,
}

fn parse_options() -> Result<Options, String> {
    let default_ncc = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("seesaw_ncc")))
        .unwrap_or_else(|| PathBuf::from("target/debug/seesaw_ncc"));
    let mut options = Options {
        sizes: vec![100, 1000],
        single_repetitions: 1,
        batch_repetitions: 3,
        ncc: default_ncc,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let number = |text: &str| {
            text.parse::<u32>()
                .map_err(|_| format!("invalid {arg} {text:?}: expected a number"))
        };
        match arg.as_str() {
            "--sizes" => {
                options.sizes = value.split(',').map(number).collect::<Result<_, _>>()?;
            }
            "--single-repetitions" => options.single_repetitions = number(&value)?,
            "--batch-repetitions" => options.batch_repetitions = number(&value)?,
            "--ncc" => options.ncc = PathBuf::from(value),
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    Ok(options)
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("failed to start {program}: {error}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn in_namespace(command: &str) -> String {
    run(
        "bash",
        &["-c", &format!("ip netns exec {NAMESPACE} {command}")],
    )
}

/// Creates the load balancer's namespace: `eth0` with the node address and
/// a default route, `eth1` as the LB interface, both veth links whose peers
/// stay in the initial namespace.
fn create_namespace() {
    let _ = Command::new("ip")
        .args(["netns", "del", NAMESPACE])
        .status();
    run("ip", &["netns", "add", NAMESPACE]);
    for (link, peer) in [("eth0", "bench-p0"), ("eth1", "bench-p1")] {
        run(
            "ip",
            &[
                "link", "add", link, "netns", NAMESPACE, "type", "veth", "peer", "name", peer,
            ],
        );
        run("ip", &["link", "set", peer, "up"]);
        in_namespace(&format!("ip link set {link} up"));
    }
    in_namespace(&format!("ip addr add {NODE}/24 dev eth0"));
    in_namespace(&format!("ip route add default via {GATEWAY} dev eth0"));
}

fn vserver(index: u32) -> proto::VserverRulesRequest {
    let tcp = |port| proto::VserverEntry {
        protocol: 6,
        port,
        mode: proto::ForwardingMode::Dsr as i32,
    };
    proto::VserverRulesRequest {
        lb: Some(lb_interface()),
        vserver_name: format!("vs{index}"),
        family: proto::AddressFamily::Ipv4 as i32,
        address: format!(
            "10.{}.{}.{}",
            20 + index / 65536,
            index / 256 % 256,
            index % 256
        ),
        entries: vec![tcp(80), tcp(443)],
        fwmark: 0,
    }
}

/// `iptables-save` without comments and counters.
fn saved_rules() -> String {
    let program = seesaw_ncc::iptables::find_program("iptables-save").expect("iptables-save");
    in_namespace(&program.display().to_string())
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with(':'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Counts the rules in our chains, the fixed ones of init included.
fn our_rules(saved: &str) -> usize {
    saved
        .lines()
        .filter(|line| line.starts_with("-A SEESAW-"))
        .count()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_ncc(ncc: &Path, socket: &Path) -> (Daemon, NccClient<Channel>) {
    let child = Command::new("ip")
        .args(["netns", "exec", NAMESPACE])
        .arg(ncc)
        .arg("-logtostderr")
        .arg("-socket")
        .arg(socket)
        .arg("-bgpd_vty")
        .arg(socket.with_file_name("bgpd.vty"))
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("start seesaw_ncc");
    let options = seesaw_ipc::ClientOptions {
        connect_attempts: 50,
        retry_delay: Duration::from_millis(100),
        call_timeout: Duration::from_secs(3600),
        ..Default::default()
    };
    let client = seesaw_ipc::connect(socket, &options)
        .await
        .expect("connect to seesaw_ncc");
    (Daemon(child), client)
}

async fn add_one_by_one(ncc: &mut NccClient<Channel>, count: u32) -> Duration {
    let started = Instant::now();
    for index in 0..count {
        ncc.add_vserver_rules(vserver(index))
            .await
            .expect("AddVserverRules");
    }
    started.elapsed()
}

/// Applies one batch that adds (or deletes) the rules of `count` virtual
/// servers.
async fn apply_batch(ncc: &mut NccClient<Channel>, count: u32, add: bool) -> Duration {
    use proto::vserver_rules_change::Change;
    let changes = (0..count)
        .map(|index| proto::VserverRulesChange {
            change: Some(if add {
                Change::AddRules(vserver(index))
            } else {
                Change::DeleteRules(vserver(index))
            }),
        })
        .collect();
    let started = Instant::now();
    let report = ncc
        .apply_vserver_rules(proto::VserverRulesBatch { changes })
        .await
        .expect("ApplyVserverRules")
        .into_inner();
    let elapsed = started.elapsed();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    elapsed
}

/// Writes the median and the range of `durations` in seconds, or `-` for
/// none.
fn seconds(durations: &[Duration]) -> String {
    if durations.is_empty() {
        return "-".to_owned();
    }
    let mut sorted: Vec<f64> = durations.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    if sorted.len() == 1 {
        format!("{median:.3}")
    } else {
        format!(
            "{median:.3} ({:.3}–{:.3})",
            sorted[0],
            sorted[sorted.len() - 1]
        )
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::var("SEESAW_LAB").as_deref() != Ok("1") {
        eprintln!(
            "bench_vserver_rules changes iptables rules; run it in the kernel lab (cargo xtask vm)"
        );
        return ExitCode::from(2);
    }
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let run_dir = tempfile::tempdir().expect("temporary directory");
    let socket = run_dir.path().join("ncc.sock");
    create_namespace();
    let (daemon, mut ncc) = start_ncc(&options.ncc, &socket).await;

    println!(
        "| Virtual servers | Rules | Single calls s | Batch s | Single / batch | Same batch again s | Batch delete s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &count in &options.sizes {
        let mut single = Vec::new();
        let mut batch = Vec::new();
        let mut again = Vec::new();
        let mut deleted = Vec::new();
        let mut expected = None;
        ncc.init_lb_interface(lb_interface())
            .await
            .expect("InitLbInterface");
        let base = saved_rules();
        for repetition in 0..options.single_repetitions.max(options.batch_repetitions) {
            let mut ways = Vec::new();
            if repetition < options.single_repetitions {
                ways.push(true);
            }
            if repetition < options.batch_repetitions {
                ways.push(false);
            }
            for one_by_one in ways {
                ncc.init_lb_interface(lb_interface())
                    .await
                    .expect("InitLbInterface");
                let elapsed = if one_by_one {
                    add_one_by_one(&mut ncc, count).await
                } else {
                    apply_batch(&mut ncc, count, true).await
                };
                let saved = saved_rules();
                if !one_by_one {
                    let elapsed = apply_batch(&mut ncc, count, true).await;
                    assert!(saved == saved_rules(), "the same batch again changed rules");
                    again.push(elapsed);
                }
                let rules = our_rules(&saved);
                eprintln!(
                    "{count} virtual servers, {}: {elapsed:?}, {rules} rules",
                    if one_by_one { "single calls" } else { "batch" }
                );
                match &expected {
                    None => expected = Some(saved),
                    Some(expected) => {
                        assert!(*expected == saved, "the rules differ from the first run's")
                    }
                }
                if one_by_one {
                    single.push(elapsed);
                } else {
                    batch.push(elapsed);
                    deleted.push(apply_batch(&mut ncc, count, false).await);
                    assert_eq!(
                        our_rules(&saved_rules()),
                        our_rules(&base),
                        "rules left after the batch delete"
                    );
                }
            }
        }
        let ratio = match (single.first(), batch.first()) {
            (Some(_), Some(_)) => {
                let median = |durations: &[Duration]| {
                    let mut sorted = durations.to_vec();
                    sorted.sort();
                    sorted[sorted.len() / 2].as_secs_f64()
                };
                format!("{:.0}", median(&single) / median(&batch))
            }
            _ => "-".to_owned(),
        };
        let rules = expected.as_deref().map_or(0, our_rules);
        println!(
            "| {count} | {rules} | {} | {} | {ratio} | {} | {} |",
            seconds(&single),
            seconds(&batch),
            seconds(&again),
            seconds(&deleted),
        );
    }
    drop(daemon);
    let _ = Command::new("ip")
        .args(["netns", "del", NAMESPACE])
        .status();
    ExitCode::SUCCESS
}
