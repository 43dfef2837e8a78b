//! Differential test of the cluster.pb text-format layer against Go.
//!
//! Seesaw v2 reads cluster.pb with golang/protobuf v1.5
//! `proto.UnmarshalText`. This test builds a small Go program around that
//! function (tests/oracle/textformat/main.go), with Go code that protoc and
//! protoc-gen-go generate from proto/config.proto at test time. For every
//! fixture, every hand-written case, the example cluster.pb without each of
//! its fields in turn, and a few hundred random mutations, it checks
//! that both sides accept or both reject the text, and that the messages
//! are equal when both accept.
//!
//! Known differences are listed in `KNOWN` and described in
//! docs/differences.md. A mismatch that no known difference explains fails
//! the test; so does a hand-written case of a known difference that no
//! longer differs, so the document stays true.
//!
//! Without Go, protoc, protoc-gen-go and Debian's golang/protobuf source
//! packages the test prints SKIPPED and passes, unless
//! SEESAW_REQUIRE_ORACLES=1 is set. SEESAW_ORACLE_SEED and
//! SEESAW_ORACLE_CASES change the mutation seed and count, and
//! SEESAW_ORACLE_VERBOSE=1 prints every case.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::mutate::{Rng, drop_each_field, mutate};
use prost::Message;
use seesaw_config::cluster_text::{ParsedCluster, format_cluster_text, parse_cluster_text};

/// Debian's GOPATH root for packaged Go libraries.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";
const GO_PACKAGES: &[&str] = &[
    "github.com/golang/protobuf/proto",
    "google.golang.org/protobuf/proto",
];
const DEFAULT_MUTATIONS: usize = 600;
const DEFAULT_SEED: u64 = 0x5EE5_A0C0_FFEE;

/// Which side accepts the input when the two disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// Go accepts the text and seesaw-rs rejects it.
    GoAccepts,
    /// seesaw-rs accepts the text and Go rejects it.
    RustAccepts,
    /// Both accept the text but read different values.
    Values,
}

/// A documented difference: its name in docs/differences.md, the side that
/// accepts, and a minimal cluster.pb that shows it.
struct Known {
    name: &'static str,
    direction: Direction,
    examples: &'static [&'static [u8]],
}

/// A valid cluster with more lines appended, as bytes.
macro_rules! cluster {
    ($($rest:literal),* $(,)?) => {
        concat!("seesaw_vip < fqdn: \"vip.\" status: PRODUCTION >\n", $($rest),*).as_bytes()
    };
}

/// A valid cluster whose only vserver_entry also contains `$line`.
macro_rules! entry {
    ($line:literal) => {
        cluster!(
            "vserver < name: \"v\" entry_address < fqdn: \"e\" > rp: \"r\"\n",
            "  vserver_entry < protocol: TCP port: 80 ",
            $line,
            " > >\n"
        )
    };
}

const KNOWN: &[Known] = &[
    Known {
        name: "list-without-colon",
        direction: Direction::GoAccepts,
        examples: &[cluster!("node [< fqdn: \"a\" >, < fqdn: \"b\" >]\n")],
    },
    Known {
        name: "empty-list",
        direction: Direction::RustAccepts,
        examples: &[
            cluster!("node: []\n"),
            cluster!("dedicated_vip_subnet: []\n"),
        ],
    },
    Known {
        name: "go-integer-syntax",
        direction: Direction::GoAccepts,
        examples: &[
            entry!("persistence: +1"),
            entry!("persistence: 0b101"),
            entry!("persistence: 0o17"),
            entry!("persistence: 1_000"),
            entry!("scheduler: +1"),
        ],
    },
    Known {
        name: "space-after-minus",
        direction: Direction::RustAccepts,
        examples: &[
            entry!("persistence: - 1"),
            entry!("server_low_watermark: - 0.5"),
        ],
    },
    Known {
        name: "hex-twos-complement",
        direction: Direction::GoAccepts,
        examples: &[
            entry!("persistence: 0xFFFFFFFF"),
            entry!("persistence: 0x80000000"),
            cluster!("metadata < last_updated: 0xFFFFFFFFFFFFFFFF >\n"),
        ],
    },
    Known {
        name: "rust-float-syntax",
        direction: Direction::RustAccepts,
        examples: &[
            entry!("server_low_watermark: 1F"),
            entry!("server_low_watermark: -nan"),
        ],
    },
    Known {
        name: "go-float-syntax",
        direction: Direction::GoAccepts,
        examples: &[
            entry!("server_low_watermark: +0.5"),
            entry!("server_low_watermark: 0x1p-2"),
            entry!("server_low_watermark: 010"),
            entry!("server_low_watermark: 00f"),
            entry!("server_low_watermark: +Infinity"),
        ],
    },
    Known {
        name: "float32-range",
        direction: Direction::RustAccepts,
        examples: &[
            entry!("server_low_watermark: 1e39"),
            entry!("server_low_watermark: 3.40282357e38"),
        ],
    },
    Known {
        name: "float32-double-rounding",
        direction: Direction::Values,
        examples: &[entry!(
            "server_low_watermark: 1.00000005960464477539062500001"
        )],
    },
    Known {
        name: "bool-integer-syntax",
        direction: Direction::RustAccepts,
        examples: &[entry!("one_packet: 01")],
    },
    Known {
        name: "short-escape",
        direction: Direction::RustAccepts,
        examples: &[cluster!("vmac: \"\\0\"\n"), cluster!("vmac: \"\\x4\"\n")],
    },
    Known {
        name: "invalid-utf8-string",
        direction: Direction::GoAccepts,
        examples: &[cluster!("vmac: \"\\xff\"\n")],
    },
    Known {
        name: "surrogate-escape",
        direction: Direction::GoAccepts,
        examples: &[cluster!("vmac: \"\\ud800\"\n")],
    },
    Known {
        name: "raw-nul-in-string",
        direction: Direction::GoAccepts,
        examples: &[cluster!("vmac: \"a\0b\"\n")],
    },
    Known {
        name: "non-utf8-string",
        direction: Direction::Values,
        examples: &[b"seesaw_vip < fqdn: \"caf\xe9\" status: PRODUCTION >\n"],
    },
    Known {
        name: "vertical-tab-form-feed",
        direction: Direction::RustAccepts,
        examples: &[cluster!("vmac:\x0b\"x\"\n"), cluster!("vmac:\x0c\"x\"\n")],
    },
];

/// Inputs on which both parsers must agree, beyond the mutations: one per
/// syntax rule the loader promises and per edge value worth pinning.
const AGREED: &[&[u8]] = &[
    b"",
    b"# only a comment\n",
    cluster!(),
    b"seesaw_vip: { fqdn: 'vip.' status: PRODUCTION }",
    b"seesaw_vip < fqdn: \"vip.\" status: PRODUCTION }\n",
    b"seesaw_vip < fqdn: \"vip.\" status: PRODUCTION > >\n",
    cluster!("node: [< fqdn: \"a\" >, { fqdn: \"b\" }]\n"),
    cluster!("node: [< fqdn: \"a\" >,]\n"),
    cluster!("node: [< fqdn: \"a\" >; < fqdn: \"b\" >]\n"),
    cluster!("dedicated_vip_subnet: [\"10.0.0.0/8\", '192.0.2.0/24']\n"),
    cluster!("dedicated_vip_subnet [\"10.0.0.0/8\"]\n"),
    cluster!("node < fqdn: \"a\" >, node < fqdn: \"b\" >;\n"),
    cluster!("node < fqdn: \"a\" >,,\n"),
    cluster!("node < fqdn: \"a\" ; >\n"),
    cluster!("vmac: \"a\" \"b\" 'c'\n"),
    cluster!("vmac: \"\\a\\b\\f\\n\\r\\t\\v\\?\\\\\\'\\\"\\101\\x41\\X41\\u00e9\\U0001F600\"\n"),
    cluster!("vmac: \"\\400\"\n"),
    cluster!("vmac: \"\\q\"\n"),
    cluster!("vmac: \"\\U00110000\"\n"),
    cluster!("vmac: \"open\n"),
    cluster!("vmac: unquoted\n"),
    cluster!("vmac \"x\"\n"),
    cluster!("vmac: \"x\" vmac: \"y\"\n"),
    cluster!("bgp_local_asn: 4294967295\n"),
    cluster!("bgp_local_asn: 4294967296\n"),
    cluster!("bgp_local_asn: -1\n"),
    cluster!("bgp_local_asn: -0\n"),
    cluster!("bgp_local_asn: 0xFFFFFFFF\n"),
    cluster!("bgp_local_asn: 010\n"),
    cluster!("bgp_local_asn: 08\n"),
    cluster!("metadata < last_updated: -9223372036854775808 >\n"),
    cluster!("metadata < last_updated: 9223372036854775808 >\n"),
    cluster!("metadata < >\n"),
    entry!("persistence: 2147483647"),
    entry!("persistence: -2147483648"),
    entry!("persistence: 2147483648"),
    entry!("persistence: -0x10"),
    entry!("persistence: 1.0"),
    entry!("persistence: 80x"),
    entry!("server_low_watermark: 0.3"),
    entry!("server_low_watermark: 1e-1"),
    entry!("server_low_watermark: .5"),
    entry!("server_low_watermark: 5."),
    entry!("server_low_watermark: -0"),
    entry!("server_low_watermark: inf"),
    entry!("server_low_watermark: -Infinity"),
    entry!("server_low_watermark: nan"),
    entry!("server_low_watermark: 1.5f"),
    entry!("server_low_watermark: 3.4028234e38"),
    entry!("server_low_watermark: 1e-50"),
    entry!("server_low_watermark: 0x10"),
    entry!("one_packet: t"),
    entry!("one_packet: False"),
    entry!("one_packet: 1"),
    entry!("one_packet: TRUE"),
    entry!("one_packet: 2"),
    entry!("scheduler: 6"),
    entry!("scheduler: 99"),
    entry!("scheduler: -1"),
    entry!("scheduler: 0x2"),
    entry!("scheduler: rr"),
    entry!("scheduler: \"RR\""),
    entry!("healthcheck < >"),
    entry!("healthcheck < type: HTTP > healthcheck { type: DNS }"),
    cluster!("vserver < name: \"v\" rp: \"r\" >\n"),
    cluster!("vlan < vlan_id: 1 host < > >\n"),
    cluster!("unknown_field: 1\n"),
    cluster!("legacy_backend < >\n"),
    cluster!("[seesaw.config.ext]: 1\n"),
    cluster!("1: 2\n"),
    cluster!("/ \n"),
    cluster!("seesaw_vip < fqdn: \"again\" >\n"),
    cluster!("bgp_local_asn: 0XFFFFFFFF\n"),
    entry!("persistence: 0XFFFFFFFF"),
    entry!("persistence: 00"),
    entry!("server_low_watermark: 1.f"),
    entry!("server_low_watermark: 01.5"),
    entry!("server_low_watermark: 1E5"),
    entry!("server_low_watermark: INF"),
    entry!("server_low_watermark: 7e-46"),
    entry!("server_low_watermark: 3.4028235e38"),
    cluster!("vmac: \"\x01\t\r\"\n"),
    cluster!("vmac: \"\\0101\"\n"),
    cluster!("vmac: [\"a\"]\n"),
    cluster!("dedicated_vip_subnet: [\"a\" \"b\", 'c']\n"),
    cluster!("node: [{ fqdn: \"a\" }]\n"),
    cluster!("node: [[< fqdn: \"a\" >]]\n"),
    cluster!("node: : < fqdn: \"a\" >\n"),
    cluster!("node { fqdn { } }\n"),
    cluster!("seesaw_vip.fqdn: \"a\"\n"),
    cluster!("[seesaw.config.Host] < fqdn: \"x\" >\n"),
    b"seesaw_vip < fqdn: \"vip.\" status: PRODUCTION >\r\n# CRLF\r\n",
    b"\xef\xbb\xbfseesaw_vip < fqdn: \"vip.\" >\n",
    b"seesaw_vip < fqdn: \"vip.\" \0 >\n",
];

/// Inputs on which Go's proto.UnmarshalText panics, so Seesaw would crash
/// while loading them. We reject them with a message.
const GO_PANICS: &[&[u8]] = &[
    cluster!("[type.googleapis.com/seesaw.config.Host] < fqdn: \"x\" >\n"),
    b"seesaw_vip < fqdn: \"vip.\" [type.googleapis.com/seesaw.config.Host] { fqdn: \"x\" } >\n",
];

#[test]
fn text_format_matches_go() {
    let Some(oracle) = Oracle::build() else {
        return;
    };

    let mut report = Report::default();

    for known in KNOWN {
        for example in known.examples {
            let outcome = oracle.compare(example);
            let label = format!("known difference '{}'", known.name);
            if verbose() {
                println!("{label}: {outcome:?}");
            }
            if outcome.direction() != Some(known.direction) {
                report.failures.push(format!(
                    "{label}: expected {:?}, got {outcome:?}; update the table in this test and docs/differences.md\ninput:\n{}",
                    known.direction,
                    String::from_utf8_lossy(example)
                ));
            } else {
                report.known += 1;
            }
        }
    }

    for (i, text) in AGREED.iter().enumerate() {
        let label = format!("AGREED[{i}]");
        report.check(&oracle.compare(text), &label, &[], text, &[]);
    }

    for text in GO_PANICS {
        let verdict = oracle.go_verdict(text);
        if !verdict.starts_with("reject: panic:") {
            report.failures.push(format!(
                "Go no longer panics ({verdict}); move this case to AGREED\ninput:\n{}",
                String::from_utf8_lossy(text)
            ));
        } else if parse(text).is_ok() {
            report.failures.push(format!(
                "we accept an input on which Go panics\ninput:\n{}",
                String::from_utf8_lossy(text)
            ));
        } else {
            report.go_panics += 1;
        }
    }

    let fixtures = common::fixtures();
    assert!(!fixtures.is_empty(), "no fixtures found");
    for (name, text) in &fixtures {
        let label = format!("fixture {name}");
        report.check(
            &oracle.compare(text.as_bytes()),
            &label,
            &[],
            text.as_bytes(),
            &[],
        );

        // The engine saves a fetched config to cluster.pb in this format,
        // so Seesaw v2 must read it as the same message after a rollback.
        if let Ok(parsed) = parse(text.as_bytes()) {
            let saved = format_cluster_text(&parsed.message);
            match oracle.compare(saved.as_bytes()) {
                Outcome::Equal => report.equal += 1,
                outcome => report.failures.push(format!(
                    "{label} as saved: {outcome:?}, but Go must read the saved text as the same message\ninput:\n{saved}"
                )),
            }
        }
    }

    // The example sets every field, so dropping each field in turn removes
    // every required field at every depth.
    let (name, example) = fixtures
        .iter()
        .find(|(name, _)| name == "cluster.pb.example")
        .expect("etc/cluster.pb.example is among the fixtures");
    for mutant in drop_each_field(example) {
        let label = format!("{name} with {}", mutant.steps[0]);
        report.check(
            &oracle.compare(mutant.text.as_bytes()),
            &label,
            &mutant.steps,
            mutant.text.as_bytes(),
            &mutant.tags,
        );
    }

    let seed = env_number("SEESAW_ORACLE_SEED").unwrap_or(DEFAULT_SEED);
    let count = env_number("SEESAW_ORACLE_CASES").map_or(DEFAULT_MUTATIONS, |n| n as usize);
    let mut rng = Rng::new(seed);
    for case in 0..count {
        let (name, text) = &fixtures[case % fixtures.len()];
        let steps = 1 + usize::from(rng.chance(1, 3)) + usize::from(rng.chance(1, 6));
        let mutant = mutate(text, &mut rng, steps);
        let label = format!("mutation {case} of {name} (seed {seed:#x})");
        report.check(
            &oracle.compare(mutant.text.as_bytes()),
            &label,
            &mutant.steps,
            mutant.text.as_bytes(),
            &mutant.tags,
        );
    }

    println!(
        "text format vs Go: {} cases; both accept and equal {}, both reject {} (Go panics on {}), known differences {}, unexplained {}",
        report.total(),
        report.equal,
        report.rejected + report.go_panics,
        report.go_panics,
        report.known,
        report.failures.len()
    );
    assert!(
        report.failures.is_empty(),
        "{} failures comparing with Go's proto.UnmarshalText:\n\n{}",
        report.failures.len(),
        report.failures.join("\n\n")
    );
}

/// The result of one comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    BothReject,
    Equal,
    /// Go accepts; the payload is our error.
    GoOnly(String),
    /// We accept; the payload is Go's error.
    RustOnly(String),
    /// Both accept; the payload is the oracle's description.
    Differ(String),
}

impl Outcome {
    fn direction(&self) -> Option<Direction> {
        match self {
            Outcome::BothReject | Outcome::Equal => None,
            Outcome::GoOnly(_) => Some(Direction::GoAccepts),
            Outcome::RustOnly(_) => Some(Direction::RustAccepts),
            Outcome::Differ(_) => Some(Direction::Values),
        }
    }
}

#[derive(Default)]
struct Report {
    equal: usize,
    rejected: usize,
    go_panics: usize,
    known: usize,
    failures: Vec<String>,
}

impl Report {
    fn total(&self) -> usize {
        self.equal + self.rejected + self.go_panics + self.known + self.failures.len()
    }

    fn check(
        &mut self,
        outcome: &Outcome,
        label: &str,
        steps: &[String],
        text: &[u8],
        tags: &[&str],
    ) {
        if verbose() {
            println!("{label}: {outcome:?} {steps:?}");
        }
        match outcome.direction() {
            None if *outcome == Outcome::Equal => self.equal += 1,
            None => self.rejected += 1,
            Some(direction) => {
                let explained = KNOWN
                    .iter()
                    .any(|k| k.direction == direction && tags.contains(&k.name));
                if explained {
                    self.known += 1;
                } else {
                    self.failures.push(format!(
                        "{label}: {outcome:?}\nsteps: {steps:?}\ninput:\n{}",
                        String::from_utf8_lossy(text)
                    ));
                }
            }
        }
    }
}

/// The built Go program and a scratch directory for its inputs.
struct Oracle {
    dir: tempfile::TempDir,
    program: PathBuf,
}

impl Oracle {
    /// Builds the oracle, or returns None after printing why the test is
    /// skipped. Panics instead when SEESAW_REQUIRE_ORACLES=1.
    fn build() -> Option<Oracle> {
        if let Some(missing) = missing_tool() {
            if std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() == Ok("1") {
                panic!("SEESAW_REQUIRE_ORACLES=1 requires the Go oracle, but {missing}");
            }
            println!("SKIPPED text_format_matches_go: {missing}");
            return None;
        }

        let dir = tempfile::tempdir().expect("create a temporary directory");
        let root = repo_root();
        let source = root.join("tests/oracle/textformat/main.go");
        std::fs::copy(&source, dir.path().join("main.go")).expect("copy main.go");

        // The M option puts the generated code in package main next to
        // main.go, so proto/config.proto needs no go_package option.
        run(Command::new("protoc")
            .arg(format!("--proto_path={}", root.join("proto").display()))
            .arg(format!("--go_out={}", dir.path().display()))
            .arg("--go_opt=paths=source_relative")
            .arg("--go_opt=Mconfig.proto=seesaw-rs/oracle/textformat;main")
            .arg(root.join("proto/config.proto")));

        let gopath = format!("{}:{DEBIAN_GOPATH}", dir.path().join("gopath").display());
        let program = dir.path().join("oracle");
        // Go needs a build cache, which it otherwise finds through HOME. A
        // cache under target/ works without HOME and persists across runs.
        let go_cache = std::env::var_os("GOCACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-build"));
        run(Command::new("go")
            .current_dir(dir.path())
            .env("GOCACHE", go_cache)
            .env("GO111MODULE", "off")
            .env("GOPATH", gopath)
            .env("GOFLAGS", "")
            .args(["build", "-o"])
            .arg(&program)
            .args(["main.go", "config.pb.go"]));

        Some(Oracle { dir, program })
    }

    /// Runs the oracle on `text`, with our encoding when we accept it, and
    /// returns its one-line verdict.
    fn run(&self, text: &[u8], ours: Option<&ParsedCluster>) -> String {
        let input = self.dir.path().join("case.pb");
        let encoded = self.dir.path().join("rust.bin");
        std::fs::write(&input, text).expect("write the case");
        let _ = std::fs::remove_file(&encoded);
        if let Some(parsed) = ours {
            std::fs::write(&encoded, parsed.message.encode_to_vec()).expect("write rust.bin");
        }

        let output = Command::new(&self.program)
            .arg(&input)
            .arg(&encoded)
            .output()
            .expect("run the oracle");
        assert!(
            output.status.success(),
            "the oracle failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }

    fn go_verdict(&self, text: &[u8]) -> String {
        self.run(text, None)
    }

    fn compare(&self, text: &[u8]) -> Outcome {
        let ours = parse(text);
        let verdict = self.run(text, ours.as_ref().ok());

        match (ours, verdict.as_str()) {
            (Err(_), v) if v.starts_with("reject: ") => Outcome::BothReject,
            (Err(error), "accept") => Outcome::GoOnly(error),
            (Ok(_), v) if v.starts_with("reject: ") => {
                Outcome::RustOnly(v["reject: ".len()..].to_string())
            }
            (Ok(_), "equal") => Outcome::Equal,
            (Ok(_), v) if v.starts_with("differ: ") => {
                Outcome::Differ(v["differ: ".len()..].to_string())
            }
            (ours, v) => panic!("unexpected oracle output {v:?} for our result {ours:?}"),
        }
    }
}

/// Parses `text` as the loader does: bytes that are not UTF-8 are read as
/// U+FFFD (`read_cluster_file` warns about them), then the text-format
/// parser runs. Returns our error message on rejection.
fn parse(text: &[u8]) -> Result<ParsedCluster, String> {
    let text = String::from_utf8_lossy(text);
    parse_cluster_text(Path::new("case.pb"), &text).map_err(|e| e.to_string())
}

/// Names the first tool or Go package that is missing, if any.
fn missing_tool() -> Option<String> {
    let tools = [
        ("go", "version", "golang-go"),
        ("protoc", "--version", "protobuf-compiler"),
    ];
    for (tool, flag, package) in tools {
        let works = Command::new(tool)
            .arg(flag)
            .output()
            .is_ok_and(|o| o.status.success());
        if !works {
            return Some(format!("'{tool}' is not installed (Debian: {package})"));
        }
    }
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("protoc-gen-go").is_file())
    });
    if !on_path {
        return Some("'protoc-gen-go' is not on PATH (Debian: protoc-gen-go)".to_string());
    }
    for package in GO_PACKAGES {
        if !Path::new(DEBIAN_GOPATH).join("src").join(package).is_dir() {
            return Some(format!(
                "Go package {package} is not in {DEBIAN_GOPATH} (Debian: golang-github-golang-protobuf-1-5-dev, golang-google-protobuf-dev)"
            ));
        }
    }
    None
}

fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn verbose() -> bool {
    std::env::var("SEESAW_ORACLE_VERBOSE").as_deref() == Ok("1")
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => value.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={value} is not a number")))
}
