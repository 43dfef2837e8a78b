//! Measures how long it takes to program, change and flush a large IPVS
//! table with `Ipvs::apply` and with `ipvsadm --restore`, in the same run.
//!
//! Run it as root in the kernel lab, never on a host whose IPVS table
//! matters, because it flushes the table many times:
//!
//! ```sh
//! cargo build --release -p seesaw-ipvs --examples
//! SEESAW_LAB_TIMEOUT=3600 cargo xtask vm -- target/release/examples/bench_programming
//! ```
//!
//! Under QEMU's software emulation the default run took 22 minutes on the
//! machine that docs/benchmarks.md describes, longer than the lab's default
//! timeout of 600 s.
//!
//! Options, with their defaults:
//!
//! - `--sizes 1000,10000`: services per table, each with 5 destinations.
//! - `--repetitions 5`: measured cycles per configuration.
//! - `--windows 64,256,512`: batch windows of the window sweep. An empty
//!   list skips the sweep.
//! - `--trash-pause 200`: seconds to wait in the destination trash check.
//!   0 skips the check.
//!
//! docs/benchmarks.md records the results and explains the scenarios.
//!
//! Every measured step is checked afterwards, outside the timed section,
//! against `/proc/net/ip_vs`, so both tools are known to have done the
//! same work.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use seesaw_ipvs::{
    DEFAULT_BATCH_WINDOW, Destination, Ipvs, Request, Scheduler, Service, ServiceKey,
};

const DESTINATIONS_PER_SERVICE: u32 = 5;
/// One service in this many is changed by the change step (1%).
const CHANGE_EVERY: u32 = 100;
const PORT: u16 = 80;
/// Weight of every destination the change step updates.
const CHANGED_WEIGHT: i32 = 2;
/// Share of idle CPU time, over one sampling interval, at which the guest
/// counts as quiet enough to start a measurement.
const IDLE_THRESHOLD: f64 = 0.9;
const IDLE_SAMPLE: Duration = Duration::from_millis(500);
const IDLE_WAIT_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Apply,
    Restore,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Apply => "apply",
            Method::Restore => "restore",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "apply" => Some(Method::Apply),
            "restore" => Some(Method::Restore),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    Program,
    Change,
    Flush,
}

const STEPS: [Step; 3] = [Step::Program, Step::Change, Step::Flush];

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Program => "program",
            Step::Change => "change 1%",
            Step::Flush => "flush",
        }
    }
}

/// The namespace arrangement in which a measurement's repetitions run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// Each repetition in a new network namespace: an empty table and an
    /// empty destination trash.
    Fresh,
    /// All repetitions in one namespace with a flush between them, after
    /// one unmeasured warm-up cycle, so every measured cycle starts with the
    /// destinations of the previous one in the kernel's destination trash.
    Reused,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Fresh => "new netns",
            Scenario::Reused => "after flush",
        }
    }
}

/// The requests and `ipvsadm --restore` lines of one table size, and the
/// table contents expected after each step.
struct Workload {
    size: u32,
    program: Vec<Request>,
    change: Vec<Request>,
    program_rules: String,
    change_rules: String,
    after_program: BTreeSet<String>,
    after_change: BTreeSet<String>,
}

/// Service `index`: 10.0.0.1 and up, inside 10.0.0.0/9.
fn service_address(index: u32) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::from(0x0a00_0001 + index).into(), PORT)
}

/// Destination `slot` of service `index`, in 10.128.0.0/9. Each service
/// owns a block of 8 addresses: slots 0 to 4 are the initial destinations
/// and slot 5 is the one the change step adds.
fn destination_address(index: u32, slot: u32) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::from(0x0a80_0001 + index * 8 + slot).into(), PORT)
}

fn destination(index: u32, slot: u32, weight: i32) -> Destination {
    let mut destination = Destination::new(destination_address(index, slot));
    destination.weight = weight;
    destination
}

impl Workload {
    fn new(size: u32) -> Self {
        assert!(
            size * 8 < 1 << 23,
            "{size} services do not fit in 10.128.0.0/9"
        );
        let mut workload = Workload {
            size,
            program: Vec::new(),
            change: Vec::new(),
            program_rules: String::new(),
            change_rules: String::new(),
            after_program: BTreeSet::new(),
            after_change: BTreeSet::new(),
        };
        for index in 0..size {
            workload.add_service(index);
        }
        for index in (0..size).step_by(CHANGE_EVERY as usize) {
            workload.change_service(index);
        }
        assert_eq!(workload.program.len(), step_objects(size, Step::Program));
        assert_eq!(workload.change.len(), step_objects(size, Step::Change));
        workload
    }

    fn add_service(&mut self, index: u32) {
        let address = service_address(index);
        let key = ServiceKey::tcp(address);
        self.program
            .push(Request::AddService(Service::new(key, Scheduler::Wlc)));
        self.program_rules
            .push_str(&format!("-A -t {address} -s wlc\n"));
        for slot in 0..DESTINATIONS_PER_SERVICE {
            let destination = destination(index, slot, 1);
            self.program_rules.push_str(&format!(
                "-a -t {address} -r {} -g -w 1\n",
                destination.address
            ));
            self.program.push(Request::AddDestination(key, destination));
        }
        let listed = listed_service(index, 0..DESTINATIONS_PER_SERVICE, 1);
        self.after_program.extend(listed.clone());
        self.after_change.extend(listed);
    }

    /// Replaces destination 0 of the service with destination 5 and gives
    /// the other four a new weight: the diff a controller sends when one
    /// backend is swapped and the weights are rebalanced.
    fn change_service(&mut self, index: u32) {
        let address = service_address(index);
        let key = ServiceKey::tcp(address);

        let removed = destination(index, 0, 1);
        self.change_rules
            .push_str(&format!("-d -t {address} -r {}\n", removed.address));
        self.change.push(Request::DeleteDestination(key, removed));

        for slot in 1..DESTINATIONS_PER_SERVICE {
            let updated = destination(index, slot, CHANGED_WEIGHT);
            self.change_rules.push_str(&format!(
                "-e -t {address} -r {} -g -w {CHANGED_WEIGHT}\n",
                updated.address
            ));
            self.change.push(Request::UpdateDestination(key, updated));
        }

        let added = destination(index, DESTINATIONS_PER_SERVICE, 1);
        self.change_rules
            .push_str(&format!("-a -t {address} -r {} -g -w 1\n", added.address));
        self.change.push(Request::AddDestination(key, added));

        for line in listed_service(index, 0..DESTINATIONS_PER_SERVICE, 1) {
            self.after_change.remove(&line);
        }
        self.after_change.extend(listed_service(
            index,
            1..DESTINATIONS_PER_SERVICE,
            CHANGED_WEIGHT,
        ));
        self.after_change.extend(listed_service(
            index,
            DESTINATIONS_PER_SERVICE..DESTINATIONS_PER_SERVICE + 1,
            1,
        ));
    }
}

/// Services plus destinations that a step adds, changes or removes.
fn step_objects(size: u32, step: Step) -> usize {
    let per_service = 1 + DESTINATIONS_PER_SERVICE as usize;
    match step {
        // The table after the change step has as many objects as the
        // programmed one, because each changed service lost one destination
        // and gained one.
        Step::Program | Step::Flush => size as usize * per_service,
        // Per changed service: one delete, four updates, one add.
        Step::Change => {
            size.div_ceil(CHANGE_EVERY) as usize * (DESTINATIONS_PER_SERVICE as usize + 1)
        }
    }
}

/// Returns the lines that `/proc/net/ip_vs` should show for one service and
/// some of its destinations, in the canonical form of [`read_table`].
fn listed_service(index: u32, slots: std::ops::Range<u32>, weight: i32) -> Vec<String> {
    let service = proc_address(service_address(index));
    let mut lines = vec![format!("TCP {service} wlc")];
    for slot in slots {
        let destination = proc_address(destination_address(index, slot));
        lines.push(format!("TCP {service} -> {destination} Route {weight}"));
    }
    lines
}

/// Formats an address as `/proc/net/ip_vs` does: `0A000001:0050`.
fn proc_address(address: SocketAddr) -> String {
    match address {
        SocketAddr::V4(v4) => format!("{:08X}:{:04X}", u32::from(*v4.ip()), v4.port()),
        SocketAddr::V6(_) => unreachable!("the benchmark uses IPv4 only"),
    }
}

/// Reads the table of the current network namespace from `/proc/net/ip_vs`
/// as one line per service (`TCP 0A000001:0050 wlc`) and one per
/// destination (`TCP 0A000001:0050 -> 0A800001:0050 Route 1`). The file is
/// independent of both tools under test, and reading it costs one pass,
/// whereas `ipvsadm -Ln` needs one dump per service.
fn read_table() -> BTreeSet<String> {
    let text = std::fs::read_to_string("/proc/net/ip_vs").expect("read /proc/net/ip_vs");
    let mut table = BTreeSet::new();
    let mut service = String::new();
    // The first three lines are the version and two column headers.
    for line in text.lines().skip(3) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first() == Some(&"->") {
            let [_, address, forward, weight, ..] = fields[..] else {
                panic!("unexpected destination line in /proc/net/ip_vs: {line:?}");
            };
            table.insert(format!("{service} -> {address} {forward} {weight}"));
        } else {
            let [protocol, address, scheduler, ..] = fields[..] else {
                panic!("unexpected service line in /proc/net/ip_vs: {line:?}");
            };
            service = format!("{protocol} {address}");
            table.insert(format!("{service} {scheduler}"));
        }
    }
    table
}

/// Panics unless the table equals `expected`, naming the first difference.
fn check_table(expected: &BTreeSet<String>, after_step: &str) {
    let actual = read_table();
    if &actual == expected {
        return;
    }
    let missing = expected.difference(&actual).next();
    let extra = actual.difference(expected).next();
    panic!(
        "table after {after_step} differs from the expected one: {} lines expected, {} listed; \
         first missing {missing:?}, first unexpected {extra:?}",
        expected.len(),
        actual.len()
    );
}

/// Reads the idle and total CPU time of all CPUs from `/proc/stat`, in
/// clock ticks. Idle includes iowait.
fn cpu_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let line = text.lines().next().expect("/proc/stat is not empty");
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().expect("/proc/stat counts are integers"))
        .collect();
    let idle = ticks[3] + ticks.get(4).copied().unwrap_or(0);
    (idle, ticks.iter().sum())
}

/// Waits until the guest's CPUs are mostly idle. Work the kernel deferred
/// from the previous step (RCU callbacks freeing services, the teardown of
/// a worker's namespace) would otherwise run inside the next measurement.
fn wait_for_idle_cpu() {
    let start = Instant::now();
    let (mut idle, mut total) = cpu_ticks();
    while start.elapsed() < IDLE_WAIT_LIMIT {
        std::thread::sleep(IDLE_SAMPLE);
        let (next_idle, next_total) = cpu_ticks();
        let share = (next_idle - idle) as f64 / (next_total - total).max(1) as f64;
        if share >= IDLE_THRESHOLD {
            return;
        }
        (idle, total) = (next_idle, next_total);
    }
    eprintln!(
        "warning: the CPU was still busy after {} s; measuring anyway",
        IDLE_WAIT_LIMIT.as_secs()
    );
}

/// User-space clock ticks per second in `/proc` files: USER_HZ, which is
/// 100 on Linux whatever the kernel's HZ.
const USER_HZ: f64 = 100.0;

/// Wall time of one step and the CPU time spent on it by this process and
/// the children it waited for (ipvsadm). System time includes the kernel's
/// handling of the netlink requests, because the kernel runs IPVS commands
/// inside the sending process's `sendmsg` call.
#[derive(Clone, Copy)]
struct StepTime {
    wall: Duration,
    user: Duration,
    system: Duration,
}

/// Returns user and system time of this process plus its waited-for
/// children, in clock ticks, from fields 14 to 17 of `/proc/self/stat`.
fn cpu_time_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The command name in field 2 may contain spaces, so count fields from
    // its closing parenthesis: field 3 is the first one after it.
    let rest = &text[text.rfind(')').expect("stat has a command name") + 1..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|field| field.parse().expect("stat times are integers"))
        .collect();
    (fields[0] + fields[2], fields[1] + fields[3])
}

/// A measurement in progress of wall time and CPU time.
struct Stopwatch {
    start: Instant,
    ticks: (u64, u64),
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            ticks: cpu_time_ticks(),
            start: Instant::now(),
        }
    }

    fn stop(self) -> StepTime {
        let wall = self.start.elapsed();
        let (user, system) = cpu_time_ticks();
        let ticks = |end: u64, start: u64| Duration::from_secs_f64((end - start) as f64 / USER_HZ);
        StepTime {
            wall,
            user: ticks(user, self.ticks.0),
            system: ticks(system, self.ticks.1),
        }
    }
}

/// Runs `ipvsadm` with `input` on stdin and measures it from spawning the
/// process to its exit, which is what a caller of the tool waits for.
fn time_ipvsadm(args: &[&str], input: &str) -> StepTime {
    let stopwatch = Stopwatch::start();
    let mut child = Command::new("ipvsadm")
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn ipvsadm");
    let mut stdin = child.stdin.take().expect("ipvsadm stdin");
    stdin.write_all(input.as_bytes()).expect("write to ipvsadm");
    drop(stdin);
    let status = child.wait().expect("wait for ipvsadm");
    let elapsed = stopwatch.stop();
    assert!(status.success(), "ipvsadm {args:?} failed with {status}");
    elapsed
}

async fn time_apply(ipvs: &Ipvs, requests: &[Request]) -> StepTime {
    let stopwatch = Stopwatch::start();
    let report = ipvs.apply(requests).await.expect("apply");
    let elapsed = stopwatch.stop();
    assert_eq!(report.sent, requests.len());
    assert!(
        report.is_success(),
        "{} of {} requests failed, the first: {}",
        report.failures.len(),
        requests.len(),
        report.failures[0].error
    );
    elapsed
}

/// Programs, changes and flushes the table once, checking it after each
/// step, and returns the times of the three steps.
async fn run_cycle(ipvs: &Ipvs, method: Method, workload: &Workload) -> [StepTime; 3] {
    check_table(&BTreeSet::new(), "the previous flush");
    wait_for_idle_cpu();
    let program = match method {
        Method::Apply => time_apply(ipvs, &workload.program).await,
        Method::Restore => time_ipvsadm(&["--restore"], &workload.program_rules),
    };
    check_table(&workload.after_program, "programming");
    let change = match method {
        Method::Apply => time_apply(ipvs, &workload.change).await,
        Method::Restore => time_ipvsadm(&["--restore"], &workload.change_rules),
    };
    check_table(&workload.after_change, "the change");
    let flush = match method {
        Method::Apply => {
            let stopwatch = Stopwatch::start();
            ipvs.flush().await.expect("flush");
            stopwatch.stop()
        }
        Method::Restore => time_ipvsadm(&["-C"], ""),
    };
    check_table(&BTreeSet::new(), "the flush");
    [program, change, flush]
}

/// The runs of one measurement: a scenario, size, method and window.
struct Measurement {
    scenario: Scenario,
    size: u32,
    method: Method,
    window: usize,
    /// Per step, the times of each repetition.
    runs: [Vec<StepTime>; 3],
}

struct Options {
    sizes: Vec<u32>,
    repetitions: usize,
    windows: Vec<usize>,
    /// Seconds to wait for the destination trash to empty; 0 skips the
    /// trash check.
    trash_pause: u64,
}

fn parse_list<T: std::str::FromStr>(text: &str, option: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse()
                .map_err(|_| format!("invalid value {item:?} in {option}"))
        })
        .collect()
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        sizes: vec![1000, 10_000],
        repetitions: 5,
        windows: vec![64, 256, 512],
        trash_pause: 200,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--sizes" => options.sizes = parse_list(value()?, arg)?,
            "--repetitions" => {
                options.repetitions = value()?
                    .parse()
                    .map_err(|_| format!("invalid number for {arg}"))?
            }
            "--windows" => options.windows = parse_list(value()?, arg)?,
            "--trash-pause" => {
                options.trash_pause = value()?
                    .parse()
                    .map_err(|_| format!("invalid number of seconds for {arg}"))?
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if options.repetitions == 0 {
        return Err("--repetitions must be at least 1".to_owned());
    }
    Ok(options)
}

/// Runs one cycle in worker mode (`--worker METHOD SIZE WINDOW`), which
/// [`run_worker`] starts in a new network namespace, and prints on one line
/// the wall, user and system seconds of each of the three steps.
async fn worker(args: &[String]) -> Result<(), String> {
    let [method, size, window] = args else {
        return Err("usage: --worker apply|restore SIZE WINDOW".to_owned());
    };
    let method = Method::parse(method).ok_or_else(|| format!("unknown method {method:?}"))?;
    let size: u32 = size.parse().map_err(|_| format!("invalid size {size:?}"))?;
    let window: usize = window
        .parse()
        .map_err(|_| format!("invalid window {window:?}"))?;
    // A new namespace has no local routing table until an interface is up,
    // and without one the kernel classifies every destination address as
    // broadcast and rejects it with EINVAL.
    let status = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if !status.success() {
        return Err(format!("ip link set lo up failed with {status}"));
    }
    let workload = Workload::new(size);
    let mut ipvs = Ipvs::connect().await.map_err(|e| e.to_string())?;
    ipvs.set_batch_window(window);
    let times = run_cycle(&ipvs, method, &workload).await;
    let fields: Vec<String> = times
        .iter()
        .flat_map(|time| [time.wall, time.user, time.system])
        .map(|duration| duration.as_secs_f64().to_string())
        .collect();
    println!("{}", fields.join(" "));
    Ok(())
}

/// Runs one cycle in a worker process under `unshare --net`, so that it
/// starts with a network namespace of its own.
fn run_worker(size: u32, method: Method, window: usize) -> Vec<StepTime> {
    let executable = std::env::current_exe().expect("path of this program");
    let output = Command::new("unshare")
        .arg("--net")
        .arg("--")
        .arg(&executable)
        .args([
            "--worker",
            method.name(),
            &size.to_string(),
            &window.to_string(),
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn unshare");
    assert!(
        output.status.success(),
        "worker failed with {}",
        output.status
    );
    let text = String::from_utf8(output.stdout).expect("worker output is UTF-8");
    let seconds: Vec<Duration> = text
        .split_whitespace()
        .map(|field| Duration::from_secs_f64(field.parse().expect("worker prints seconds")))
        .collect();
    assert_eq!(seconds.len(), 9, "worker output {text:?}");
    seconds
        .chunks(3)
        .map(|step| StepTime {
            wall: step[0],
            user: step[1],
            system: step[2],
        })
        .collect()
}

/// Measures each configuration (size, method and batch window) in new
/// network namespaces. The configurations take turns within each
/// repetition, so a change in the host's load over the run affects all of
/// them alike, including the sizes that the linearity check compares.
fn run_fresh(configurations: &[(u32, Method, usize)], repetitions: usize) -> Vec<Measurement> {
    let mut measurements: Vec<Measurement> = configurations
        .iter()
        .map(|&(size, method, window)| Measurement {
            scenario: Scenario::Fresh,
            size,
            method,
            window,
            runs: Default::default(),
        })
        .collect();
    for repetition in 1..=repetitions {
        for measurement in &mut measurements {
            let times = run_worker(measurement.size, measurement.method, measurement.window);
            log_cycle(
                Scenario::Fresh,
                measurement.size,
                measurement.method,
                measurement.window,
                repetition,
                &times,
            );
            for (step, time) in times.iter().enumerate() {
                measurement.runs[step].push(*time);
            }
        }
    }
    measurements
}

/// Runs both methods in this process's namespace, alternating them each
/// repetition so that both meet the same trash, after one unmeasured
/// warm-up cycle per method.
async fn run_reused(ipvs: &Ipvs, workload: &Workload, repetitions: usize) -> [Measurement; 2] {
    let methods = [Method::Apply, Method::Restore];
    let mut runs: [[Vec<StepTime>; 3]; 2] = Default::default();
    for repetition in 0..=repetitions {
        for (slot, method) in methods.iter().enumerate() {
            let times = run_cycle(ipvs, *method, workload).await;
            // Repetition 0 is the warm-up.
            log_cycle(
                Scenario::Reused,
                workload.size,
                *method,
                DEFAULT_BATCH_WINDOW,
                repetition,
                &times,
            );
            if repetition == 0 {
                continue;
            }
            for (step, time) in times.iter().enumerate() {
                runs[slot][step].push(*time);
            }
        }
    }
    let [apply, restore] = runs;
    [
        Measurement {
            scenario: Scenario::Reused,
            size: workload.size,
            method: Method::Apply,
            window: DEFAULT_BATCH_WINDOW,
            runs: apply,
        },
        Measurement {
            scenario: Scenario::Reused,
            size: workload.size,
            method: Method::Restore,
            window: DEFAULT_BATCH_WINDOW,
            runs: restore,
        },
    ]
}

/// Programming times with `apply` in one namespace, with the destinations
/// of the previous flush in the trash and after they expired.
struct TrashCheck {
    size: u32,
    with_trash: StepTime,
    drained: StepTime,
}

/// Programs the table right after a flush and again after a flush and a
/// pause, in the same namespace. A flushed destination stays in the
/// kernel's destination trash until the trash timer, which runs every 60 s,
/// finds it unused for 120 s. A pause of 180 s or more therefore empties
/// the trash, and the difference between the two times is the cost of
/// searching it.
async fn run_trash_check(ipvs: &Ipvs, workload: &Workload, pause: Duration) -> TrashCheck {
    // The last cycle of run_reused ended with a flush of the same
    // destinations, so they are all in the trash now.
    let with_trash = program_and_flush(ipvs, workload).await;
    eprintln!(
        "trash check: {} services, programmed in {:.3} s after a flush; waiting {} s",
        workload.size,
        with_trash.wall.as_secs_f64(),
        pause.as_secs()
    );
    std::thread::sleep(pause);
    let drained = program_and_flush(ipvs, workload).await;
    eprintln!(
        "trash check: {} services, programmed in {:.3} s after the pause",
        workload.size,
        drained.wall.as_secs_f64()
    );
    TrashCheck {
        size: workload.size,
        with_trash,
        drained,
    }
}

/// Programs the table with `apply`, measuring only that, and flushes it.
async fn program_and_flush(ipvs: &Ipvs, workload: &Workload) -> StepTime {
    check_table(&BTreeSet::new(), "the previous flush");
    wait_for_idle_cpu();
    let time = time_apply(ipvs, &workload.program).await;
    check_table(&workload.after_program, "programming");
    ipvs.flush().await.expect("flush");
    time
}

fn print_trash_checks(checks: &[TrashCheck], pause: u64) {
    if checks.is_empty() {
        return;
    }
    println!();
    println!(
        "| Services | `apply` program right after a flush: wall s (system s) \
         | after a flush and {pause} s: wall s (system s) | Ratio of wall times |"
    );
    println!("|---|---|---|---|");
    for check in checks {
        let with_trash = check.with_trash.wall.as_secs_f64();
        let drained = check.drained.wall.as_secs_f64();
        println!(
            "| {} | {with_trash:.3} ({:.2}) | {drained:.3} ({:.2}) | {:.1} |",
            check.size,
            check.with_trash.system.as_secs_f64(),
            check.drained.system.as_secs_f64(),
            with_trash / drained
        );
    }
}

fn log_cycle(
    scenario: Scenario,
    size: u32,
    method: Method,
    window: usize,
    repetition: usize,
    times: &[StepTime],
) {
    let walls: Vec<String> = times
        .iter()
        .map(|time| format!("{:.3}", time.wall.as_secs_f64()))
        .collect();
    eprintln!(
        "{}: {size} services, {} (window {window}), repetition {repetition}: \
         program / change / flush {} s; program user {:.2} s, system {:.2} s",
        scenario.name(),
        method.name(),
        walls.join(" / "),
        times[0].user.as_secs_f64(),
        times[0].system.as_secs_f64()
    );
}

fn walls(runs: &[StepTime]) -> Vec<Duration> {
    runs.iter().map(|time| time.wall).collect()
}

/// Median, min and max of some durations.
fn summarize(runs: &[Duration]) -> (f64, f64, f64) {
    let mut seconds: Vec<f64> = runs.iter().map(Duration::as_secs_f64).collect();
    seconds.sort_by(f64::total_cmp);
    let middle = seconds.len() / 2;
    let median = if seconds.len() % 2 == 1 {
        seconds[middle]
    } else {
        (seconds[middle - 1] + seconds[middle]) / 2.0
    };
    (median, seconds[0], seconds[seconds.len() - 1])
}

fn format_cell(runs: &[Duration]) -> String {
    let (median, min, max) = summarize(runs);
    format!("{median:.3} ({min:.3}–{max:.3})")
}

fn find(
    measurements: &[Measurement],
    scenario: Scenario,
    size: u32,
    method: Method,
    window: usize,
) -> Option<&Measurement> {
    measurements.iter().find(|m| {
        m.scenario == scenario && m.size == size && m.method == method && m.window == window
    })
}

fn print_comparison(measurements: &[Measurement], sizes: &[u32]) {
    println!();
    println!(
        "| Scenario | Step | Services | Objects | `apply` s, median (min–max) | `apply` objects/s \
         | `ipvsadm --restore` s, median (min–max) | `ipvsadm` objects/s | ipvsadm / apply |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for scenario in [Scenario::Fresh, Scenario::Reused] {
        for &size in sizes {
            let workload_objects = |step| step_objects(size, step);
            let apply = find(
                measurements,
                scenario,
                size,
                Method::Apply,
                DEFAULT_BATCH_WINDOW,
            );
            let restore = find(
                measurements,
                scenario,
                size,
                Method::Restore,
                DEFAULT_BATCH_WINDOW,
            );
            let (Some(apply), Some(restore)) = (apply, restore) else {
                continue;
            };
            for (step_index, step) in STEPS.iter().enumerate() {
                let objects = workload_objects(*step);
                let (apply_median, ..) = summarize(&walls(&apply.runs[step_index]));
                let (restore_median, ..) = summarize(&walls(&restore.runs[step_index]));
                println!(
                    "| {} | {} | {size} | {objects} | {} | {:.0} | {} | {:.0} | {:.1} |",
                    scenario.name(),
                    step.name(),
                    format_cell(&walls(&apply.runs[step_index])),
                    objects as f64 / apply_median,
                    format_cell(&walls(&restore.runs[step_index])),
                    objects as f64 / restore_median,
                    restore_median / apply_median,
                );
            }
        }
    }
}

fn print_linearity(measurements: &[Measurement], sizes: &[u32]) {
    let (Some(&small), Some(&large)) = (sizes.first(), sizes.last()) else {
        return;
    };
    if small == large {
        return;
    }
    println!();
    println!(
        "| Scenario | Method | Step | {small} services, median s | {large} services, median s \
         | Ratio (linear: {:.0}) |",
        f64::from(large) / f64::from(small)
    );
    println!("|---|---|---|---|---|---|");
    for scenario in [Scenario::Fresh, Scenario::Reused] {
        for method in [Method::Apply, Method::Restore] {
            let window = DEFAULT_BATCH_WINDOW;
            let (Some(first), Some(last)) = (
                find(measurements, scenario, small, method, window),
                find(measurements, scenario, large, method, window),
            ) else {
                continue;
            };
            for (step_index, step) in STEPS.iter().enumerate() {
                let (first_median, ..) = summarize(&walls(&first.runs[step_index]));
                let (last_median, ..) = summarize(&walls(&last.runs[step_index]));
                println!(
                    "| {} | {} | {} | {first_median:.3} | {last_median:.3} | {:.1} |",
                    scenario.name(),
                    method.name(),
                    step.name(),
                    last_median / first_median
                );
            }
        }
    }
}

fn print_windows(measurements: &[Measurement], sizes: &[u32], windows: &[usize]) {
    if windows.is_empty() {
        return;
    }
    println!();
    println!("| Services | Window | Program s, median (min–max) | Objects/s |");
    println!("|---|---|---|---|");
    for &size in sizes {
        for &window in windows {
            let Some(measurement) =
                find(measurements, Scenario::Fresh, size, Method::Apply, window)
            else {
                continue;
            };
            let objects = step_objects(size, Step::Program);
            let (median, ..) = summarize(&walls(&measurement.runs[0]));
            println!(
                "| {size} | {window} | {} | {:.0} |",
                format_cell(&walls(&measurement.runs[0])),
                objects as f64 / median
            );
        }
    }
}

/// Prints, for the program step, the median wall, user and system time.
/// The rest of the wall time is time in which neither this process nor
/// ipvsadm ran.
fn print_cpu_times(measurements: &[Measurement]) {
    println!();
    println!("| Scenario | Services | Method | Program wall s | User s | System s | Rest s |");
    println!("|---|---|---|---|---|---|---|");
    for measurement in measurements {
        if measurement.window != DEFAULT_BATCH_WINDOW {
            continue;
        }
        let program = &measurement.runs[0];
        let median = |part: fn(&StepTime) -> Duration| {
            summarize(&program.iter().map(part).collect::<Vec<_>>()).0
        };
        let wall = median(|time| time.wall);
        let user = median(|time| time.user);
        let system = median(|time| time.system);
        // CPU times come in 10 ms ticks, so the difference can come out
        // slightly negative.
        let rest = (wall - user - system).max(0.0);
        println!(
            "| {} | {} | {} | {wall:.3} | {user:.2} | {system:.2} | {rest:.2} |",
            measurement.scenario.name(),
            measurement.size,
            measurement.method.name(),
        );
    }
}

async fn run(options: Options) -> Result<(), String> {
    let ipvs = Ipvs::connect().await.map_err(|e| e.to_string())?;
    ipvs.flush().await.map_err(|e| e.to_string())?;
    let mut measurements = Vec::new();
    let mut trash_checks = Vec::new();
    let mut configurations = Vec::new();
    for &size in &options.sizes {
        configurations.push((size, Method::Apply, DEFAULT_BATCH_WINDOW));
        configurations.push((size, Method::Restore, DEFAULT_BATCH_WINDOW));
        for &window in &options.windows {
            if window != DEFAULT_BATCH_WINDOW {
                configurations.push((size, Method::Apply, window));
            }
        }
    }
    measurements.extend(run_fresh(&configurations, options.repetitions));

    // The sizes cannot take turns here, because each cycle leaves its
    // destinations in the trash that the next cycle searches.
    for &size in &options.sizes {
        let workload = Workload::new(size);
        measurements.extend(run_reused(&ipvs, &workload, options.repetitions).await);
        if options.trash_pause > 0 {
            let pause = Duration::from_secs(options.trash_pause);
            trash_checks.push(run_trash_check(&ipvs, &workload, pause).await);
        }
    }
    print_comparison(&measurements, &options.sizes);
    print_linearity(&measurements, &options.sizes);
    print_windows(&measurements, &options.sizes, &options.windows);
    print_cpu_times(&measurements);
    print_trash_checks(&trash_checks, options.trash_pause);
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The lab's init exports SEESAW_LAB=1. Any other value, empty
    // included, counts as outside the lab.
    if std::env::var("SEESAW_LAB").as_deref() != Ok("1") {
        eprintln!(
            "error: SEESAW_LAB is not 1. This benchmark flushes the IPVS table many times, \
             so it runs only in the kernel lab: cargo xtask vm -- {}",
            std::env::args().next().unwrap_or_default()
        );
        return ExitCode::from(2);
    }
    let result = match args.first().map(String::as_str) {
        Some("--worker") => worker(&args[1..]).await,
        _ => match parse_options(&args) {
            Ok(options) => run(options).await,
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
