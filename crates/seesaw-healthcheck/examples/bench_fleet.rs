//! Measures the scheduler with a fleet of TCP checks against loopback
//! listeners: sustained runs per second, how late runs start, and the
//! memory of an idle configured check.
//!
//! ```sh
//! cargo build --release -p seesaw-healthcheck --example bench_fleet
//! ./target/release/examples/bench_fleet 10000 50000 100000
//! ```
//!
//! For each count N the driver starts three child processes of this same
//! binary, one after the other:
//! - `serve N` binds up to [`MAX_LISTENERS`] listeners on 127.1.0.0 upwards
//!   with [`PORTS_PER_ADDRESS`] ports per address, and accepts and closes
//!   every connection. Distinct destinations spread the TCP 4-tuples, so no
//!   port pair is reused while it is in TIME_WAIT. With more checks than
//!   listeners, checks `i` and `i + MAX_LISTENERS` share a listener and
//!   differ in their timeout by 1 ms, so they still get separate probes.
//! - `memory N` applies N checks with a one-hour interval and reports the
//!   growth of VmRSS over the process's baseline, divided by N, and the
//!   growth of the heap as the process's allocator counts it.
//! - `load N` applies N checks at [`INTERVAL`], waits one interval for every
//!   probe to start, then measures over [`MEASURED_INTERVALS`] intervals.
//!
//! Only loopback addresses are used. Every process raises its soft
//! RLIMIT_NOFILE to the hard limit, and the hard limit too when it has
//! CAP_SYS_RESOURCE.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use seesaw_healthcheck::checker::{CheckContext, Checker, TcpChecker};
use seesaw_healthcheck::config::{CheckConfig, CheckId};
use seesaw_healthcheck::scheduler::Scheduler;
use seesaw_healthcheck::target::Target;
use seesaw_healthcheck::tls::TlsClients;
use tokio::sync::mpsc;

/// Ports per listening address.
const PORTS_PER_ADDRESS: usize = 500;
/// Listener count cap, so the listener process fits in a hard
/// RLIMIT_NOFILE of 20,000 without CAP_SYS_RESOURCE.
const MAX_LISTENERS: usize = 10_000;
const FIRST_PORT: u16 = 20000;
const INTERVAL: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(4);
const MEASURED_INTERVALS: u32 = 3;
/// Interval of the memory run, long enough that almost no check is due.
const IDLE_INTERVAL: Duration = Duration::from_secs(3600);

/// The system allocator, counting the bytes and blocks in use.
struct CountingAllocator;

static HEAP_BYTES: AtomicUsize = AtomicUsize::new(0);
static HEAP_BLOCKS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged, and
// the counters only observe the sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            HEAP_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
            HEAP_BLOCKS.fetch_add(1, Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on.
        unsafe { System.dealloc(pointer, layout) };
        HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        HEAP_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed on.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            HEAP_BYTES.fetch_add(new_size, Ordering::Relaxed);
            HEAP_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(parse_count(args.get(1))),
        Some("memory") => memory(parse_count(args.get(1))),
        Some("load") => load(parse_count(args.get(1))),
        _ => {
            let counts: Vec<usize> = if args.is_empty() {
                vec![10_000, 50_000, 100_000]
            } else {
                args.iter().map(|arg| parse_count(Some(arg))).collect()
            };
            drive(&counts);
        }
    }
}

fn parse_count(arg: Option<&String>) -> usize {
    arg.and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("expected a check count, got {arg:?}"))
}

/// Returns the listening address of listener `index`.
fn listener_addr(index: usize) -> SocketAddr {
    let host = u32::try_from(index / PORTS_PER_ADDRESS).expect("too many checks");
    let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 1, 0, 0)) + host);
    let port = FIRST_PORT + (index % PORTS_PER_ADDRESS) as u16;
    SocketAddr::new(IpAddr::V4(ip), port)
}

/// Raises RLIMIT_NOFILE to `wanted` descriptors, capped by `fs.nr_open`.
/// Without CAP_SYS_RESOURCE the hard limit cannot rise, and the soft limit
/// is raised to the hard one instead. Returns the new soft limit.
fn raise_nofile(wanted: u64) -> u64 {
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1 << 20);
    let limit = wanted.min(nr_open);
    let mut rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: setrlimit and getrlimit access only the struct, which lives
    // across each call.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
            return limit;
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlimit), 0);
        eprintln!(
            "setrlimit(RLIMIT_NOFILE, {limit}) failed: {error}; using the hard limit {}",
            rlimit.rlim_max
        );
        rlimit.rlim_cur = rlimit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit), 0);
    }
    rlimit.rlim_cur
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("failed to build the tokio runtime")
}

fn serve(count: usize) {
    raise_nofile(count as u64 + 65_536);
    runtime().block_on(async {
        for index in 0..count.min(MAX_LISTENERS) {
            let addr = listener_addr(index);
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .unwrap_or_else(|error| panic!("failed to bind {addr}: {error}"));
            tokio::spawn(async move {
                loop {
                    // Accept errors such as EMFILE are retried after a pause
                    // instead of spinning.
                    if listener.accept().await.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            });
        }
        println!("ready");
        // The driver ends this process by its PID.
        std::future::pending::<()>().await;
    });
}

fn fleet(count: usize, interval: Duration) -> BTreeMap<CheckId, CheckConfig> {
    (0..count)
        .map(|index| {
            let addr = listener_addr(index % MAX_LISTENERS);
            let checker = Checker::Tcp(TcpChecker {
                target: Target::plain(addr.ip(), addr.port()),
                send: Vec::new(),
                receive: Vec::new(),
                secure: false,
                tls_verify: false,
            });
            let sharing = (index / MAX_LISTENERS) as u64;
            let config = CheckConfig {
                interval,
                timeout: TIMEOUT + Duration::from_millis(sharing),
                retries: 0,
                checker,
            };
            (index as CheckId + 1, config)
        })
        .collect()
}

/// Returns this process's resident set size in KiB, from /proc/self/status.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("no /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("no VmRSS in /proc/self/status")
}

/// Returns this process's user plus system CPU time.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("no /proc/self/stat");
    // The command name may contain spaces, so fields are counted after it.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("bad /proc/self/stat") + 2..]
        .split_whitespace()
        .collect();
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    Duration::from_secs_f64(ticks / ticks_per_second)
}

/// Returns the TIME_WAIT count from /proc/net/sockstat.
fn time_wait_sockets() -> u64 {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    sockstat
        .lines()
        .find(|line| line.starts_with("TCP:"))
        .and_then(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let position = words.iter().position(|word| *word == "tw")?;
            words.get(position + 1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn new_scheduler() -> (
    Scheduler,
    mpsc::Receiver<seesaw_healthcheck::status::Notification>,
) {
    let (sender, receiver) = mpsc::channel(1000);
    let context = CheckContext::new(TlsClients::default());
    (Scheduler::new(context, false, sender), receiver)
}

fn memory(count: usize) {
    raise_nofile(65_536);
    runtime().block_on(async {
        let (mut scheduler, mut notifications) = new_scheduler();
        tokio::spawn(async move { while notifications.recv().await.is_some() {} });
        // Let the runtime's threads and the allocator settle before the
        // baseline.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let baseline = rss_kib();
        let heap_bytes = HEAP_BYTES.load(Ordering::Relaxed);
        let heap_blocks = HEAP_BLOCKS.load(Ordering::Relaxed);

        let checks = fleet(count, IDLE_INTERVAL);
        scheduler.apply(&checks);
        drop(checks);
        // Every task is polled once and registers its timer.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let loaded = rss_kib();
        let runs = scheduler.run_stats().snapshot().runs;
        let per_check = (loaded - baseline) as f64 * 1024.0 / count as f64;
        let heap_per_check =
            (HEAP_BYTES.load(Ordering::Relaxed) - heap_bytes) as f64 / count as f64;
        let blocks_per_check =
            (HEAP_BLOCKS.load(Ordering::Relaxed) - heap_blocks) as f64 / count as f64;
        println!(
            "memory checks={count} baseline_kib={baseline} loaded_kib={loaded} \
             bytes_per_check={per_check:.0} heap_bytes_per_check={heap_per_check:.0} \
             heap_blocks_per_check={blocks_per_check:.1} runs_during_measurement={runs}"
        );
    });
}

fn load(count: usize) {
    let nofile = raise_nofile(65_536);
    runtime().block_on(async {
        let (mut scheduler, mut notifications) = new_scheduler();
        tokio::spawn(async move { while notifications.recv().await.is_some() {} });

        let started = Instant::now();
        scheduler.apply(&fleet(count, INTERVAL));
        let apply_time = started.elapsed();
        // Every probe's first run falls within one interval of apply.
        tokio::time::sleep(INTERVAL + Duration::from_secs(1)).await;

        let peak_fds = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let sampler = tokio::spawn(sample_open_fds(peak_fds.clone()));
        let stats = scheduler.run_stats();
        let before = stats.snapshot();
        let counted_before = run_count(&scheduler);
        let cpu_before = cpu_time();
        let window_start = Instant::now();
        tokio::time::sleep(INTERVAL * MEASURED_INTERVALS).await;
        let window = window_start.elapsed();
        let cpu = cpu_time() - cpu_before;
        let counted_after = run_count(&scheduler);
        let runs = stats.snapshot().since(&before);
        sampler.abort();

        let seconds = window.as_secs_f64();
        let failures = counted_after.failures - counted_before.failures;
        let statuses = scheduler.statuses();
        let healthy = statuses
            .iter()
            .filter(|notification| {
                notification.status.state == seesaw_healthcheck::status::State::Healthy
            })
            .count();
        let failure_sample = statuses
            .iter()
            .find(|notification| {
                notification.status.state != seesaw_healthcheck::status::State::Healthy
            })
            .map(|notification| notification.status.message.clone())
            .unwrap_or_default();
        println!(
            "load checks={count} apply_ms={} window_s={seconds:.1} runs={} \
             checks_per_s={:.0} status_runs_per_s={:.0} failures={failures} healthy={healthy} \
             late_p50_ms={:.3} late_p99_ms={:.3} late_max_ms={:.3} late_max_total_ms={:.3} \
             cpu_percent={:.0} time_wait={} peak_fds={} nofile_limit={nofile} failure_sample={failure_sample:?}",
            apply_time.as_millis(),
            runs.runs,
            runs.runs as f64 / seconds,
            (counted_after.runs - counted_before.runs) as f64 / seconds,
            runs.quantile(0.5).as_secs_f64() * 1e3,
            runs.quantile(0.99).as_secs_f64() * 1e3,
            runs.max.as_secs_f64() * 1e3,
            stats.snapshot().max.as_secs_f64() * 1e3,
            cpu.as_secs_f64() / seconds * 100.0,
            time_wait_sockets(),
            peak_fds.load(std::sync::atomic::Ordering::Relaxed),
        );
    });
}

/// Keeps in `peak` the largest count of open descriptors, sampled every
/// 20 ms.
async fn sample_open_fds(peak: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    loop {
        let open = std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count());
        peak.fetch_max(open, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct RunCount {
    runs: u64,
    failures: u64,
}

/// Sums the lifetime success and failure counts of every check's status,
/// an independent count of the runs that finished.
fn run_count(scheduler: &Scheduler) -> RunCount {
    let statuses = scheduler.statuses();
    let failures: u64 = statuses.iter().map(|n| n.status.failures).sum();
    let successes: u64 = statuses.iter().map(|n| n.status.successes).sum();
    RunCount {
        runs: failures + successes,
        failures,
    }
}

fn spawn_child(mode: &str, count: usize) -> Child {
    let exe = std::env::current_exe().expect("no path of this program");
    Command::new(exe)
        .args([mode, &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("failed to start `{mode} {count}`: {error}"))
}

/// Runs `mode` for `count` checks and returns its one line of output.
fn run_child(mode: &str, count: usize) -> String {
    let child = spawn_child(mode, count);
    let output = child.wait_with_output().expect("child failed");
    assert!(
        output.status.success(),
        "`{mode} {count}` failed: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn drive(counts: &[usize]) {
    for &count in counts {
        let mut server = spawn_child("serve", count);
        let mut ready = String::new();
        BufReader::new(server.stdout.take().expect("no stdout"))
            .read_line(&mut ready)
            .expect("failed to read from the listener process");
        assert_eq!(ready.trim(), "ready", "listener process failed to start");
        println!("{}", run_child("memory", count));
        println!("{}", run_child("load", count));
        // Ends only the listener process this driver started, by its PID.
        server.kill().expect("failed to stop the listener process");
        server.wait().expect("failed to reap the listener process");
        // Lets the TIME_WAIT sockets of this count expire before the next.
        std::thread::sleep(Duration::from_secs(2));
    }
}
