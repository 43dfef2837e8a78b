//! The shell against the original's recorded output: the GKE pair's
//! master and backup, each command run as `seesaw -c "<command>"`
//! against a fake engine that returns the state the original's engine had.
//! Standard output, standard error and the exit status must match,
//! except for the time elapsed in `show ha`, which depends on the clock.

mod support;

use std::path::Path;

use seesaw_ipc::engine_proto::{HaState, HaStatus};
use support::{MASTER_SINCE_MS, RunningEngine, gke_backup, gke_master, golden_dir};

/// Returns the golden file name of a command: spaces and slashes become
/// `_`, colons `-`.
fn file_stem(role: &str, command: &str) -> String {
    let name: String = command
        .chars()
        .map(|c| match c {
            ' ' | '/' => '_',
            ':' => '-',
            c => c,
        })
        .collect();
    format!("{role}__{name}")
}

/// Replaces the elapsed time of a `Duration:` line, which depends on when
/// the command ran, and keeps the start time after it.
fn mask_elapsed(text: &str) -> String {
    text.lines()
        .map(|line| match line.strip_prefix("  Duration:            ") {
            Some(value) => match value.split_once(" (since ") {
                Some((_, since)) => format!("  Duration:            <elapsed> (since {since}"),
                None => line.to_string(),
            },
            None => line.to_string(),
        })
        .map(|line| line + "\n")
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

struct Case {
    role: String,
    command: String,
    status: i32,
}

/// Returns the cases of index.tsv plus the recorded files that it does
/// not list.
fn cases(dir: &Path) -> Vec<Case> {
    let index = std::fs::read_to_string(dir.join("index.tsv")).unwrap();
    let mut cases: Vec<Case> = index
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            Case {
                role: fields[0].to_string(),
                command: fields[1].to_string(),
                status: fields[2].parse().unwrap(),
            }
        })
        .collect();
    cases.push(Case {
        role: "master".into(),
        command: "show destinations admin-control-plane/100.115.222.163:443/TCP".into(),
        status: 0,
    });
    cases
}

#[test]
fn golden_outputs_match() {
    let dir = golden_dir();
    if !dir.join("index.tsv").exists() {
        println!("SKIPPED: no golden outputs at {}", dir.display());
        return;
    }
    let master = RunningEngine::start(gke_master());
    let backup = RunningEngine::start(gke_backup());

    let mut failures = Vec::new();
    let cases = cases(&dir);
    for case in &cases {
        let engine = if case.role == "master" {
            &master
        } else {
            &backup
        };
        let stem = file_stem(&case.role, &case.command);
        let expected_out = read(&dir.join(format!("{stem}.txt")));
        let expected_err = read(&dir.join(format!("{stem}.stderr.txt")));

        let output = engine.cli(&["-c", &case.command]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);

        if mask_elapsed(&stdout) != mask_elapsed(&expected_out) {
            failures.push(format!(
                "{stem}: stdout differs\n--- expected\n{expected_out}--- got\n{stdout}"
            ));
        }
        if stderr != expected_err {
            failures.push(format!(
                "{stem}: stderr differs\n--- expected\n{expected_err}--- got\n{stderr}"
            ));
        }
        if output.status.code() != Some(case.status) {
            failures.push(format!(
                "{stem}: exit status {:?}, expected {}",
                output.status.code(),
                case.status
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The recorded failover files end with the exit status the recording
/// script appended.
#[test]
fn golden_failover_matches() {
    let dir = golden_dir();
    let recorded = dir.join("master__failover.txt");
    if !recorded.exists() {
        println!("SKIPPED: no golden outputs at {}", dir.display());
        return;
    }
    let expected = read(&recorded);
    let (expected_out, expected_status) = expected
        .rsplit_once("rc=")
        .expect("the file ends with rc=<status>");

    for state in [gke_master(), gke_backup()] {
        let engine = RunningEngine::start(state);
        let output = engine.cli(&["-c", "failover"]);

        assert_eq!(String::from_utf8_lossy(&output.stdout), expected_out);
        assert_eq!(
            output.status.code(),
            Some(expected_status.trim().parse().unwrap())
        );
        assert_eq!(engine.calls(), ["failover"]);
    }
}

/// Returns `state` with the HA status a node of the GKE pair reported a
/// few seconds after the failover the recording requested.
fn after_failover(
    mut state: support::FakeState,
    role: HaState,
    since_s: i64,
    update_s: i64,
    counts: (u64, u64, u64),
) -> support::FakeState {
    let (sent, received, transitions) = counts;
    state.ha = HaStatus {
        state: role as i32,
        since_ms: MASTER_SINCE_MS + since_s * 1000,
        last_update_ms: MASTER_SINCE_MS + update_s * 1000,
        sent,
        received,
        transitions,
        ..HaStatus::default()
    };
    state
}

/// The recording asked the master to fail over, then ran `show ha` on
/// both nodes and `failover` on the new backup.
#[test]
fn golden_after_failover_matches() {
    let dir = golden_dir();
    if !dir.join("after-failover_newmaster__show_ha.txt").exists() {
        println!("SKIPPED: no golden outputs at {}", dir.display());
        return;
    }
    // The old backup leads from 20:22:43, 143 s after the master's
    // recorded start; the old master is backup from 20:22:46.
    let new_master = RunningEngine::start(after_failover(
        gke_backup(),
        HaState::Leader,
        143,
        149,
        (11, 272, 2),
    ));
    let new_backup = RunningEngine::start(after_failover(
        gke_master(),
        HaState::Backup,
        146,
        152,
        (0, 12, 1),
    ));

    for (engine, stem) in [
        (&new_master, "after-failover_newmaster__show_ha"),
        (&new_backup, "after-failover_newbackup__show_ha"),
    ] {
        let expected = read(&dir.join(format!("{stem}.txt")));
        let output = engine.cli(&["-c", "show ha"]);
        assert_eq!(
            mask_elapsed(&String::from_utf8_lossy(&output.stdout)),
            mask_elapsed(&expected),
            "{stem}"
        );
        assert!(output.stderr.is_empty(), "{stem}");
        assert_eq!(output.status.code(), Some(0), "{stem}");
    }

    let expected = read(&dir.join("after-failover_newbackup__failover.txt"));
    let (expected_out, expected_status) = expected
        .rsplit_once("rc=")
        .expect("the file ends with rc=<status>");
    let output = new_backup.cli(&["-c", "failover"]);
    assert_eq!(String::from_utf8_lossy(&output.stdout), expected_out);
    assert_eq!(
        output.status.code(),
        Some(expected_status.trim().parse().unwrap())
    );
    assert_eq!(new_backup.calls(), ["failover"]);
}

#[test]
fn file_stems_match_recorded_names() {
    assert_eq!(
        file_stem(
            "master",
            "show destinations admin-control-plane/100.115.222.143:443/TCP"
        ),
        "master__show_destinations_admin-control-plane_100.115.222.143-443_TCP"
    );
    assert_eq!(
        file_stem("backup", "show node nosuch."),
        "backup__show_node_nosuch."
    );
}
