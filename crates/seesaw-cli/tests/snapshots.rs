//! Snapshots of every show command, in text and JSON, against the fake
//! engine for the GKE pair's master and for the full example cluster of
//! etc/. Commands run in process with a fixed clock, so the snapshots
//! hold times and durations too. Review changes with `cargo insta review`
//! or rerun with `INSTA_UPDATE=always` and read the diff.

mod support;

use jiff::tz::TimeZone;
use seesaw_cli::exec::{Executor, Format};
use seesaw_cli::render::Clock;
use support::{FakeState, MASTER_SINCE_MS, example, gke_master};

/// 49 s after the GKE master became leader, as in the recorded `show ha`.
fn fixed_clock() -> Clock {
    Clock {
        now_ms: MASTER_SINCE_MS + 49_000,
        zone: TimeZone::UTC,
    }
}

/// Runs `line` and returns what the shell prints: the output, then the
/// error after an `error:` line.
fn run(state: &mut FakeState, line: &str, format: Format) -> String {
    let mut executor = Executor {
        engine: state,
        format,
        clock: fixed_clock,
    };
    let outcome = executor.execute(line);
    match outcome.error {
        Some(error) => format!("{}error: {error}\n", outcome.output),
        None => outcome.output,
    }
}

fn snapshot_name(cluster: &str, line: &str, format: Format) -> String {
    let command: String = line
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let suffix = match format {
        Format::Text => "txt",
        Format::Json => "json",
    };
    format!("{cluster}__{command}__{suffix}")
}

fn check_all(cluster: &str, mut state: FakeState, lines: &[&str]) {
    for line in lines {
        for format in [Format::Text, Format::Json] {
            let output = run(&mut state, line, format);
            insta::assert_snapshot!(snapshot_name(cluster, line, format), output, line);
        }
    }
}

#[test]
fn gke_master_show_commands() {
    check_all(
        "gke",
        gke_master(),
        &[
            "show ha",
            "config status",
            "show warnings",
            "show nodes",
            "show nodes node.100.115.222.131.",
            "show vlans",
            "show bgp neighbors",
            "show vservers",
            "show vservers admin",
            "show vservers admin-control-plane",
            "show destinations",
            "show destinations user-1-ingress",
            "show destinations admin-control-plane/100.115.222.163:443/TCP",
            "show backends",
            "show backends admin-1",
            "show version",
        ],
    );
}

#[test]
fn example_show_commands() {
    check_all(
        "example",
        example(),
        &[
            "show ha",
            "config status",
            "show warnings",
            "show nodes",
            "show nodes seesaw2.example.com.",
            "show vlans",
            "show vlans 100",
            "show vlans 203.0.113.31",
            "show bgp neighbors",
            "show bgp neighbors 192.0.2.254",
            "show vservers",
            "show vservers web@example",
            "show vservers dns@example",
            "show destinations",
            "show destinations web@example/192.0.2.22:80/TCP",
            "show destinations dns@example/203.0.113.31:53/UDP",
            "show backends",
            "show backends web2",
            "show backends ns1",
            "show version",
        ],
    );
}
