//! Every command through `seesaw_cli -c`, against a fake engine on a Unix
//! socket: what it prints, on which stream, with which exit status, and
//! which calls reach the engine. JSON output is validated against the
//! documented schema.

mod support;

use std::process::Output;

use serde_json::Value;
use support::{FakeState, RunningEngine, example, gke_backup, gke_master, repo_file, run_cli};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the command printed `out` and nothing on standard error,
/// and exited 0.
#[track_caller]
fn assert_success(output: &Output, out: &str) {
    assert_eq!(stderr(output), "", "standard error");
    assert_eq!(stdout(output), out, "standard output");
    assert_eq!(output.status.code(), Some(0), "exit status");
}

/// Asserts that the command failed with `err` on standard error, after
/// `out` on standard output, and exited 1.
#[track_caller]
fn assert_failure(output: &Output, out: &str, err: &str) {
    assert_eq!(stdout(output), out, "standard output");
    assert_eq!(stderr(output), err, "standard error");
    assert_eq!(output.status.code(), Some(1), "exit status");
}

#[test]
fn config_commands() {
    let engine = RunningEngine::start(gke_master());

    assert_success(
        &engine.cli(&["-c", "config reload"]),
        "Configuration reload requested.\n",
    );
    assert_success(
        &engine.cli(&["-c", "config source"]),
        "Config source is server\n",
    );
    assert_success(
        &engine.cli(&["-c", "co so disk"]),
        "Config source is disk (was server)\n",
    );
    assert_failure(
        &engine.cli(&["-c", "config source bogus"]),
        "",
        "Failed to change config source: unknown source \"bogus\"\n",
    );
    assert_failure(
        &engine.cli(&["-c", "config source a b"]),
        "",
        "Unexpected arguments\n",
    );

    assert_eq!(engine.calls(), ["reload", "source disk"]);
}

#[test]
fn failover_reports_engine_refusal() {
    let mut state = gke_backup();
    state.failover_error = Some("Failover request already pending".to_string());
    let engine = RunningEngine::start(state);

    assert_failure(
        &engine.cli(&["-c", "failover"]),
        "",
        "Failover request failed: Failover request already pending\n",
    );
    assert!(engine.calls().is_empty());
}

#[test]
fn help_exit_and_quit() {
    let engine = RunningEngine::start(gke_master());

    assert_success(
        &engine.cli(&["-c", "help"]),
        "Use ? for context-aware command completions.\n",
    );
    assert_success(&engine.cli(&["-c", "exit"]), "\n");
    assert_success(&engine.cli(&["-c", "q"]), "\n");
}

#[test]
fn unknown_and_incomplete_commands() {
    let engine = RunningEngine::start(gke_master());

    for line in ["frobnicate", "show frobnicate", "override vserver frob"] {
        assert_failure(&engine.cli(&["-c", line]), "", "Unknown command.\n");
    }
    for line in ["show", "s v", "config", "override", "o v s", "o v s d web"] {
        assert_failure(&engine.cli(&["-c", line]), "", "Incomplete command.\n");
    }
}

#[test]
fn override_each_target_and_state() {
    let engine = RunningEngine::start(gke_master());

    let lines = [
        "override vserver state disabled admin-control-plane",
        "override vserver state enabled admin-control-plane",
        "o v s de admin-control-plane",
        "override backend state disabled admin-1",
        "override backend state en admin-1",
        "override backend state default admin-1",
        "override destination state disabled admin-control-plane/100.115.222.163:443/TCP",
        "override destination state default admin-control-plane/100.115.222.163:443/TCP",
    ];
    for line in lines {
        assert_success(&engine.cli(&["-c", line]), "");
    }

    assert_eq!(
        engine.calls(),
        [
            "override vserver admin-control-plane disabled",
            "override vserver admin-control-plane enabled",
            "override vserver admin-control-plane default",
            "override backend admin-1 disabled",
            "override backend admin-1 enabled",
            "override backend admin-1 default",
            "override destination admin-control-plane admin-control-plane/100.115.222.163:443/TCP disabled",
            "override destination admin-control-plane admin-control-plane/100.115.222.163:443/TCP default",
        ]
    );
}

#[test]
fn override_rejects_unknown_names_and_arguments() {
    let engine = RunningEngine::start(gke_master());

    assert_failure(
        &engine.cli(&["-c", "override vserver state disabled admin"]),
        "",
        "No such vserver - admin\n",
    );
    assert_failure(
        &engine.cli(&["-c", "override backend state disabled admin"]),
        "",
        "No such backend - admin\n",
    );
    assert_failure(
        &engine.cli(&[
            "-c",
            "override destination state disabled admin-control-plane",
        ]),
        "",
        "No such destination - admin-control-plane\n",
    );
    for kind in ["vserver", "backend", "destination"] {
        assert_failure(
            &engine.cli(&["-c", &format!("override {kind} state enabled")]),
            &format!("override {kind} state <default|disabled|enabled> <{kind}>\n"),
            "Incorrect arguments given.\n",
        );
        assert_failure(
            &engine.cli(&["-c", &format!("override {kind} state enabled a b")]),
            &format!("override {kind} state <default|disabled|enabled> <{kind}>\n"),
            "Incorrect arguments given.\n",
        );
    }
    assert!(engine.calls().is_empty());
}

#[test]
fn show_commands_with_too_many_arguments() {
    let engine = RunningEngine::start(gke_master());

    let cases = [
        ("show backends a b", "show backend <backend>\n"),
        (
            "show destinations a b",
            "show destinations <vserver|destination>\n",
        ),
        ("show nodes a b", "show node <node>\n"),
        ("show vlans a b", "show vlans [<id>|<ip>]\n"),
        ("show vservers a b", "show vserver [<vserver>]\n"),
    ];
    for (line, usage) in cases {
        assert_success(&engine.cli(&["-c", line]), usage);
        let json = engine.cli(&["-o", "json", "-c", line]);
        assert_failure(&json, "", &format!("Too many arguments: {usage}"));
    }
    assert_failure(
        &engine.cli(&["-c", "show bgp neighbors a b"]),
        "",
        "Too many arguments\n",
    );
}

#[test]
fn show_commands_not_found() {
    let engine = RunningEngine::start(example());

    let cases = [
        ("show bgp neighbors 192.0.2.1", "No such neighbor\n"),
        ("show bgp neighbors x", "\"x\" is not a valid IP address\n"),
        ("show nodes nosuch.", "node \"nosuch.\" not found\n"),
        ("show vlans 5", "VLAN ID 5 not found\n"),
        (
            "show vlans 198.51.100.1",
            "VLAN not found for IP address 198.51.100.1\n",
        ),
        ("show backends nosuch", "backend 'nosuch...' not found\n"),
        (
            "show destinations nosuch",
            "destination 'nosuch...' not found\n",
        ),
        ("show version", "unimplemented\n"),
    ];
    for (line, error) in cases {
        assert_failure(&engine.cli(&["-c", line]), "", error);
    }
    assert_success(
        &engine.cli(&["-c", "show vservers nosuch"]),
        "No matching vservers\n",
    );
}

#[test]
fn empty_engine_lists() {
    let engine = RunningEngine::start(FakeState::default());

    assert_success(&engine.cli(&["-c", "show vservers"]), "No vservers found\n");
    assert_failure(
        &engine.cli(&["-c", "show backends"]),
        "",
        "no backends found\n",
    );
    assert_failure(
        &engine.cli(&["-c", "show destinations"]),
        "",
        "no destinations found\n",
    );
    assert_success(&engine.cli(&["-c", "show warnings"]), "No warnings.\n");
}

#[test]
fn engine_errors_name_the_call() {
    let mut state = gke_master();
    state.broken = Some("no cluster configuration loaded".to_string());
    let engine = RunningEngine::start(state);

    let cases = [
        ("show ha", "HA status: no cluster configuration loaded\n\n"),
        (
            "show vservers",
            "Failed to get vservers: no cluster configuration loaded\n\n",
        ),
        (
            "show backends",
            "Failed to get vservers: no cluster configuration loaded\n",
        ),
        (
            "show destinations",
            "Failed to get vservers: no cluster configuration loaded\n",
        ),
        (
            "show nodes",
            "Failed to get cluster status: no cluster configuration loaded\n",
        ),
        (
            "show vlans",
            "failed to get VLANs: no cluster configuration loaded\n",
        ),
        (
            "show bgp neighbors",
            "Failed to get BGP neighbors: no cluster configuration loaded\n",
        ),
        (
            "show warnings",
            "Failed to get config status: no cluster configuration loaded\n",
        ),
        (
            "config status",
            "Failed to get config status: no cluster configuration loaded\n",
        ),
        (
            "config reload",
            "Config reload failed: no cluster configuration loaded\n",
        ),
        (
            "failover",
            "Failover request failed: no cluster configuration loaded\n",
        ),
        (
            "override vserver state enabled x",
            "Failed to retrieve list of vservers: no cluster configuration loaded\n",
        ),
    ];
    for (line, error) in cases {
        assert_failure(&engine.cli(&["-c", line]), "", error);
    }
}

#[test]
fn missing_engine_fails_to_connect() {
    let home = tempfile::tempdir().unwrap();
    let socket = home.path().join("absent.sock");

    let output = run_cli(
        &["-engine", socket.to_str().unwrap(), "-c", "show ha"],
        home.path(),
    );

    assert_failure(
        &output,
        "",
        &format!(
            "Failed to connect to engine: Dial failed: dial unix {}: connect: no such file or directory\n",
            socket.display()
        ),
    );
}

#[test]
fn arguments_after_flags_are_rejected() {
    let home = tempfile::tempdir().unwrap();

    let output = run_cli(&["show", "ha"], home.path());

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unexpected argument 'show'"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_check_needs_no_engine() {
    let home = tempfile::tempdir().unwrap();
    let cluster = repo_file("etc/cluster.pb.example");
    let node = repo_file("etc/seesaw.cfg.example");
    let line = format!("config check {} {}", cluster.display(), node.display());

    let output = run_cli(
        &["-engine", "/nonexistent/engine.sock", "-c", &line],
        home.path(),
    );

    assert_eq!(stderr(&output), "");
    assert!(
        stdout(&output).contains("seesaw-example"),
        "{}",
        stdout(&output)
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn config_check_reports_errors() {
    let home = tempfile::tempdir().unwrap();
    let broken = home.path().join("cluster.pb");
    std::fs::write(&broken, "vserver: < name: \"x\" \n").unwrap();
    let node = repo_file("etc/seesaw.cfg.example");
    let line = format!("config check {} {}", broken.display(), node.display());

    let output = run_cli(&["-c", &line], home.path());

    assert_eq!(stdout(&output), "");
    let err = stderr(&output);
    assert!(err.contains(&broken.display().to_string()), "{err}");
    assert!(
        err.ends_with("configuration rejected with 1 error(s)\n"),
        "{err}"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn config_check_usage() {
    let home = tempfile::tempdir().unwrap();

    let output = run_cli(&["-c", "config check a b c"], home.path());

    assert_failure(
        &output,
        "config check [<cluster.pb> [<seesaw.cfg>]]\n",
        "Incorrect arguments given.\n",
    );
}

/// Returns a validator for the output of one show command: the schema
/// document with its root pointing at `$defs/<definition>`.
fn schema_for(definition: &str) -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/show.schema.json");
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    schema["$ref"] = Value::String(format!("#/$defs/{definition}"));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

#[track_caller]
fn assert_valid(definition: &str, text: &str) {
    let instance: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("invalid JSON ({e}): {text}"));
    let validator = schema_for(definition);
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{definition}: {errors:#?}\n{text}");
}

#[test]
fn json_output_matches_schema() {
    let cases = [
        ("show ha", "ha"),
        ("config status", "config_status"),
        ("show warnings", "warnings"),
        ("show nodes", "nodes"),
        ("show nodes seesaw1.example.com.", "nodes"),
        ("show vlans", "vlans"),
        ("show vlans 100", "vlans"),
        ("show bgp neighbors", "bgp_neighbors"),
        ("show bgp neighbors 192.0.2.254", "bgp_neighbors"),
        ("show vservers", "vservers"),
        ("show vservers web@example", "vservers"),
        ("show vservers nosuch", "vservers"),
        ("show destinations", "destinations"),
        (
            "show destinations web@example/192.0.2.22:80/TCP",
            "destinations",
        ),
        ("show backends", "backends"),
        ("show backends web2", "backends"),
        ("show version", "version"),
    ];
    let mut validated = std::collections::BTreeSet::new();
    for state in [example(), gke_master(), FakeState::default()] {
        let engine = RunningEngine::start(state);
        for (line, definition) in cases {
            let output = engine.cli(&["-o", "json", "-c", line]);
            if output.status.code() != Some(0) {
                // Not found in this cluster: the error is text, as checked
                // elsewhere.
                assert_eq!(stdout(&output), "", "{line}");
                continue;
            }
            assert_valid(definition, &stdout(&output));
            validated.insert(line);
        }
    }
    // Each command printed JSON for at least one of the clusters, so no
    // definition of the schema goes unchecked.
    let unchecked: Vec<&str> = cases
        .iter()
        .map(|(line, _)| *line)
        .filter(|line| !validated.contains(line))
        .collect();
    assert!(unchecked.is_empty(), "never printed JSON: {unchecked:?}");
}

#[test]
fn json_option_after_the_command() {
    let engine = RunningEngine::start(example());

    let flag = engine.cli(&["-o", "json", "-c", "show vservers"]);
    let trailing = engine.cli(&["-c", "show vservers -o json"]);
    let equals = engine.cli(&["-c", "show vs -o=json"]);
    let text = engine.cli(&["-o", "json", "-c", "show vservers -o text"]);

    assert_success(&trailing, &stdout(&flag));
    assert_success(&equals, &stdout(&flag));
    assert!(stdout(&text).starts_with("Vservers\n"), "{}", stdout(&text));
    assert_failure(
        &engine.cli(&["-c", "show ha -o yaml"]),
        "",
        "unknown output format \"yaml\": use text or json\n",
    );
}

#[test]
fn schema_rejects_missing_field() {
    let validator = schema_for("warnings");

    assert!(validator.is_valid(&serde_json::json!({"warnings": []})));
    assert!(!validator.is_valid(&serde_json::json!({})));
    assert!(!validator.is_valid(&serde_json::json!({"warnings": [], "extra": 1})));
}
