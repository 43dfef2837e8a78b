//! The watchdog.cfg loader: the operator file, the example, every option
//! rule, dependency checks and Go's duration syntax.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use seesaw_config::Position;
use seesaw_config::watchdog_config::{
    DEFAULT_TERM_TIMEOUT, ServiceConfig, WatchdogConfig, parse_go_duration,
};

mod goconf_support;
use goconf_support::{Loaded, expect_errors, expect_loaded, expect_rejected};

fn parse(text: &str) -> Loaded<WatchdogConfig> {
    WatchdogConfig::parse("watchdog.cfg", text)
}

fn load_ok(text: &str) -> (WatchdogConfig, Vec<String>) {
    expect_loaded(text, parse(text))
}

fn errors(text: &str) -> Vec<String> {
    expect_errors(text, parse(text))
}

fn service<'c>(config: &'c WatchdogConfig, name: &str) -> &'c ServiceConfig {
    config
        .services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("service {name} is missing"))
}

/// Checks the five standard services, as both the operator file and our
/// example define them.
fn check_standard_services(config: &WatchdogConfig) {
    let names: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["ecu", "engine", "ha", "healthcheck", "ncc"]);
    for service in &config.services {
        assert_eq!(
            service.binary,
            PathBuf::from(format!("/usr/local/seesaw/seesaw_{}", service.name))
        );
        assert_eq!(service.args, vec!["-log_dir=/var/log/seesaw"]);
        assert_eq!(service.user, None);
    }
    let dependencies: Vec<Option<&str>> = config
        .services
        .iter()
        .map(|s| s.dependency.as_deref())
        .collect();
    assert_eq!(
        dependencies,
        vec![
            Some("engine"),
            Some("ncc"),
            Some("engine"),
            Some("engine"),
            None
        ]
    );
    let priorities: Vec<i32> = config.services.iter().map(|s| s.priority).collect();
    assert_eq!(priorities, vec![0, -10, -15, 0, -10]);
    assert_eq!(
        service(config, "engine").term_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(service(config, "ha").term_timeout, DEFAULT_TERM_TIMEOUT);
}

#[test]
fn operator_file_loads() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ini/vsphere-dev-watchdog.cfg");
    let (config, warnings) = WatchdogConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    check_standard_services(&config);
    assert_eq!(config.path, path);
    assert_eq!(service(&config, "engine").position, Position::new(6, 1));
}

#[test]
fn example_file_loads_without_warnings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/watchdog.cfg");
    let (config, warnings) = WatchdogConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(warnings.is_empty(), "{warnings:?}");
    check_standard_services(&config);
}

#[test]
fn missing_file_names_file_and_os_error() {
    let rejected = WatchdogConfig::load("/nonexistent/watchdog.cfg").unwrap_err();
    assert_eq!(rejected.0.len(), 1);
    let message = rejected.0[0].to_string();
    assert!(
        message.starts_with("/nonexistent/watchdog.cfg: failed to read the file: "),
        "{message}"
    );
}

#[test]
fn all_options_set() {
    let text = "[svc]\nbinary = /opt/svc\nargs =  -a  -b=\"x y\"\t-c\ndependency = base\n\
                priority = 19\nterm_timeout = 1m30s\nuser = seesaw\n[base]\nbinary = /opt/base\n";
    let (config, warnings) = load_ok(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    let svc = service(&config, "svc");
    assert_eq!(svc.binary, PathBuf::from("/opt/svc"));
    assert_eq!(svc.args, vec!["-a", "-b=\"x", "y\"", "-c"]);
    assert_eq!(svc.dependency.as_deref(), Some("base"));
    assert_eq!(svc.priority, 19);
    assert_eq!(svc.term_timeout, Duration::from_secs(90));
    assert_eq!(svc.user.as_deref(), Some("seesaw"));
    let base = service(&config, "base");
    assert!(base.args.is_empty());
    assert_eq!(base.dependency, None);
    assert_eq!(base.priority, 0);
    assert_eq!(base.term_timeout, DEFAULT_TERM_TIMEOUT);
}

#[test]
fn empty_values_mean_unset() {
    let text =
        "[svc]\nbinary = /opt/svc\nargs =\ndependency =\npriority =\nterm_timeout =\nuser =\n";
    let (config, warnings) = load_ok(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    let svc = service(&config, "svc");
    assert!(svc.args.is_empty());
    assert_eq!(svc.dependency, None);
    assert_eq!(svc.priority, 0);
    assert_eq!(svc.term_timeout, DEFAULT_TERM_TIMEOUT);
    assert_eq!(svc.user, None);
}

#[test]
fn service_names_are_lower_case_sections() {
    let (config, _) = load_ok("[NCC]\nbinary = /usr/local/seesaw/seesaw_ncc\n");
    assert_eq!(config.services[0].name, "ncc");
}

#[test]
fn missing_binary_is_an_error() {
    for text in ["[ecu]\nargs = -v\n", "[ecu]\nbinary =\n", "[ecu]\n"] {
        assert_eq!(
            errors(text),
            vec![
                "watchdog.cfg:1:1: service \"ecu\" has no binary: add binary = \
                 /usr/local/seesaw/seesaw_ecu"
                    .to_string()
            ],
            "text {text:?}"
        );
    }
}

#[test]
fn relative_binary_is_an_error() {
    assert_eq!(
        errors("[ha]\nbinary = seesaw_ha\n"),
        vec![
            "watchdog.cfg:2:10: binary = seesaw_ha is not an absolute path: give the full \
             path, such as /usr/local/seesaw/seesaw_ha"
                .to_string()
        ]
    );
}

#[test]
fn binary_only_in_default_is_an_error() {
    // Seesaw's watchdog exits with "Failed to get binary for ecu" here.
    let found = errors("binary = /opt/x\n[ecu]\nargs = -v\n");
    assert_eq!(
        found,
        vec![
            "watchdog.cfg:1:1: binary is set in [default] but not in [ecu], and Seesaw reads \
             it only from [ecu]: move it under [ecu]"
                .to_string()
        ]
    );
}

#[test]
fn empty_section_name_is_an_error() {
    let found = errors("[]\n[a]\nbinary = /opt/a\n");
    assert_eq!(
        found,
        vec![
            "watchdog.cfg:1:1: the section header [] has no name: name the service, such as \
             [engine]"
                .to_string()
        ]
    );
}

#[test]
fn priority_errors() {
    let cases = [
        (
            "-21",
            "watchdog.cfg:3:12: priority = -21 is out of range: use a value from -20 \
             (highest priority) to 19",
        ),
        (
            "20",
            "watchdog.cfg:3:12: priority = 20 is out of range: use a value from -20 \
             (highest priority) to 19",
        ),
        (
            "high",
            "watchdog.cfg:3:12: priority = high is not a decimal integer: use a value from -20 \
             (highest priority) to 19",
        ),
    ];
    for (value, expected) in cases {
        let text = format!("[a]\nbinary = /opt/a\npriority = {value}\n");
        assert_eq!(errors(&text), vec![expected.to_string()], "value {value:?}");
    }
    let (config, _) = load_ok("[a]\nbinary = /opt/a\npriority = -20\n");
    assert_eq!(config.services[0].priority, -20);
}

#[test]
fn term_timeout_forms() {
    let cases = [
        ("10s", Duration::from_secs(10)),
        ("500ms", Duration::from_millis(500)),
        ("1m30s", Duration::from_secs(90)),
        ("1.5s", Duration::from_millis(1500)),
        ("0", Duration::ZERO),
        ("+2h", Duration::from_secs(7200)),
    ];
    for (value, expected) in cases {
        let text = format!("[a]\nbinary = /opt/a\nterm_timeout = {value}\n");
        let (config, _) = load_ok(&text);
        assert_eq!(config.services[0].term_timeout, expected, "value {value:?}");
    }
}

#[test]
fn term_timeout_errors() {
    let cases = [
        (
            "-1s",
            "watchdog.cfg:3:16: term_timeout = -1s is negative: use a positive duration such \
             as 10s",
        ),
        (
            "10",
            "watchdog.cfg:3:16: term_timeout = 10 is not a valid duration: a number has no \
             unit: write numbers with units ns, us, ms, s, m or h, such as 10s, 1m30s or 500ms",
        ),
        (
            "10 s",
            "watchdog.cfg:3:16: term_timeout = 10 s is not a valid duration: unknown unit \
             \" s\": write numbers with units ns, us, ms, s, m or h, such as 10s, 1m30s or 500ms",
        ),
        (
            "1d",
            "watchdog.cfg:3:16: term_timeout = 1d is not a valid duration: unknown unit \"d\": \
             write numbers with units ns, us, ms, s, m or h, such as 10s, 1m30s or 500ms",
        ),
        (
            "soon",
            "watchdog.cfg:3:16: term_timeout = soon is not a valid duration: write numbers \
             with units ns, us, ms, s, m or h, such as 10s, 1m30s or 500ms",
        ),
        (
            "3000000h",
            "watchdog.cfg:3:16: term_timeout = 3000000h is not a valid duration: the duration \
             is longer than Go's maximum of about 292 years",
        ),
    ];
    for (value, expected) in cases {
        let text = format!("[a]\nbinary = /opt/a\nterm_timeout = {value}\n");
        assert_eq!(errors(&text), vec![expected.to_string()], "value {value:?}");
    }
}

#[test]
fn group_is_ignored_with_warning() {
    let (config, warnings) = load_ok("[a]\nbinary = /opt/a\nuser = nobody\ngroup = nogroup\n");
    assert_eq!(config.services[0].user.as_deref(), Some("nobody"));
    assert_eq!(
        warnings,
        vec![
            "watchdog.cfg:4:9: warning: group = nogroup is ignored because the watchdog cannot \
             set a service's group: the service runs with the primary group of its user (root \
             without user), so remove the line"
                .to_string()
        ]
    );
}

#[test]
fn unknown_options_warn() {
    let (_, warnings) =
        load_ok("[a]\nbinary = /opt/a\ndepends = b\nenv = X=1\n[b]\nbinary = /opt/b\n");
    assert_eq!(
        warnings,
        vec![
            "watchdog.cfg:3:1: warning: unknown option depends in [a] is ignored: [a] takes \
             binary, args, dependency, priority, term_timeout, user, group",
            "watchdog.cfg:4:1: warning: unknown option env in [a] is ignored: [a] takes \
             binary, args, dependency, priority, term_timeout, user, group",
        ]
    );
    let (_, warnings) = load_ok("[a]\nbinary = /opt/a\nbinaryy = /opt/b\n");
    assert_eq!(
        warnings,
        vec![
            "watchdog.cfg:3:1: warning: unknown option binaryy in [a] is ignored: did you mean binary?"
        ]
    );
}

#[test]
fn unknown_dependency_is_an_error() {
    assert_eq!(
        errors("[a]\nbinary = /opt/a\ndependency = nope\n"),
        vec![
            "watchdog.cfg:3:14: dependency = nope in [a] names no defined service: define a \
             [nope] section or remove the dependency from [a]"
                .to_string()
        ]
    );
    // Section names are lower-cased but dependency values are not, so
    // Seesaw would not find "Engine" either.
    assert_eq!(
        errors("[a]\nbinary = /opt/a\ndependency = Engine\n[engine]\nbinary = /opt/e\n"),
        vec![
            "watchdog.cfg:3:14: dependency = Engine in [a] names no defined service: service \
             names are lower case, so write engine"
                .to_string()
        ]
    );
}

#[test]
fn dependency_cycles_are_errors() {
    let cases = [
        (
            "[a]\nbinary = /a\ndependency = a\n",
            vec![
                "watchdog.cfg:3:14: dependency cycle a -> a: each service would wait for the next to start, forever: remove one of these dependencies",
            ],
        ),
        (
            "[a]\nbinary = /a\ndependency = b\n[b]\nbinary = /b\ndependency = a\n",
            vec![
                "watchdog.cfg:3:14: dependency cycle a -> b -> a: each service would wait for the next to start, forever: remove one of these dependencies",
            ],
        ),
        (
            "[x]\nbinary = /x\ndependency = b\n[b]\nbinary = /b\ndependency = c\n[c]\nbinary = /c\ndependency = d\n[d]\nbinary = /d\ndependency = b\n",
            vec![
                "watchdog.cfg:6:14: dependency cycle b -> c -> d -> b: each service would wait for the next to start, forever: remove one of these dependencies",
            ],
        ),
        (
            "[a]\nbinary = /a\ndependency = b\n[b]\nbinary = /b\ndependency = a\n[c]\nbinary = /c\ndependency = c\n",
            vec![
                "watchdog.cfg:3:14: dependency cycle a -> b -> a: each service would wait for the next to start, forever: remove one of these dependencies",
                "watchdog.cfg:9:14: dependency cycle c -> c: each service would wait for the next to start, forever: remove one of these dependencies",
            ],
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(errors(text), expected, "text {text:?}");
    }
}

#[test]
fn dependency_chains_are_fine() {
    let text =
        "[a]\nbinary = /a\ndependency = b\n[b]\nbinary = /b\ndependency = c\n[c]\nbinary = /c\n";
    let (config, warnings) = load_ok(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.services.len(), 3);
}

#[test]
fn empty_file_warns() {
    let (config, warnings) = load_ok("# nothing here\n");
    assert!(config.services.is_empty());
    assert_eq!(
        warnings,
        vec![
            "watchdog.cfg: warning: no service is defined, so the watchdog has nothing to \
             run: add a [<service>] section with binary = <path>"
        ]
    );
}

#[test]
fn default_section_is_not_a_service() {
    let text = "prefix = /usr/local/seesaw\n[ncc]\nbinary = %(prefix)s/seesaw_ncc\n";
    let (config, warnings) = load_ok(text);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(config.services.len(), 1);
    assert_eq!(
        config.services[0].binary,
        PathBuf::from("/usr/local/seesaw/seesaw_ncc")
    );
}

#[test]
fn bare_line_rejects_without_value_errors() {
    // goconf rejects the file, so the relative binary is not reported, but
    // the unknown option still is.
    let text = "[a]\nseesaw_a\nbinary = relative\nbogus = 1\n";
    let found = expect_rejected(text, parse(text));
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with("watchdog.cfg:2:1: cannot parse \"seesaw_a\""),
        "{}",
        found[0]
    );
    assert!(
        found[1].starts_with("watchdog.cfg:4:1: warning: unknown option bogus in [a]"),
        "{}",
        found[1]
    );
}

/// Renders a duration in the compact form operators write, such as
/// `1h30m` or `250ms`.
fn render_duration(hours: u64, minutes: u64, seconds: u64, millis: u64) -> String {
    let mut text = String::new();
    for (value, unit) in [(hours, "h"), (minutes, "m"), (seconds, "s"), (millis, "ms")] {
        if value > 0 {
            text.push_str(&format!("{value}{unit}"));
        }
    }
    if text.is_empty() {
        text.push('0');
    }
    text
}

proptest! {
    #[test]
    fn durations_round_trip(
        hours in 0u64..1000,
        minutes in 0u64..120,
        seconds in 0u64..120,
        millis in 0u64..2000,
    ) {
        let text = render_duration(hours, minutes, seconds, millis);
        let expected =
            ((hours * 3600 + minutes * 60 + seconds) * 1000 + millis) * 1_000_000;
        prop_assert_eq!(parse_go_duration(&text), Ok(expected as i64));
        prop_assert_eq!(parse_go_duration(&format!("-{text}")), Ok(-(expected as i64)));
    }

    #[test]
    fn duration_parser_never_panics(text in "[-+]?[0-9.]{0,6}[a-zµμ ]{0,3}([0-9.]{0,4}[a-z]{0,2}){0,3}") {
        let _ = parse_go_duration(&text);
    }

    #[test]
    fn generated_chains_load(count in 1usize..8, timeout in 1u64..3600) {
        // Service i depends on service i + 1, so the chain has no cycle.
        let mut text = String::new();
        for i in 0..count {
            text.push_str(&format!("[s{i}]\nbinary = /opt/s{i}\nterm_timeout = {timeout}s\n"));
            if i + 1 < count {
                text.push_str(&format!("dependency = s{}\n", i + 1));
            }
        }
        let (config, warnings) = load_ok(&text);
        prop_assert!(warnings.is_empty());
        prop_assert_eq!(config.services.len(), count);
        for service in &config.services {
            prop_assert_eq!(service.term_timeout, Duration::from_secs(timeout));
        }
    }
}

#[test]
fn unused_default_option_warns() {
    let (_, warnings) = load_ok("args = -v\n[a]\nbinary = /opt/a\nargs = -x\n");
    assert_eq!(
        warnings,
        vec![
            "watchdog.cfg:1:1: warning: args is in [default] (before the first section \
             header), which Seesaw reads only through %(args)s references, and nothing refers \
             to it: move it under the section it belongs to"
        ]
    );
}
