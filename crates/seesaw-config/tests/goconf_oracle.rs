//! Differential test: the Rust goconf reader against the Go library itself.
//!
//! The oracle, `tests/oracle/goconf/main.go`, reads files with the goconf
//! package that Debian ships (golang-github-dlintw-goconf-dev at commit
//! dcc0709, the commit that Seesaw's go.mod pins) and prints what goconf
//! returns for every option. This test
//! builds it, runs it over the fixtures, hand-written edge cases and a few
//! hundred generated files, and requires our reader to accept and reject the
//! same files and to return the same values.
//!
//! Without Go or the goconf package the test prints a SKIPPED line and
//! passes, unless SEESAW_REQUIRE_ORACLES=1 is set, as in CI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use seesaw_config::goconf::{GetError, GoConf, ReadErrorKind};
use seesaw_config::watchdog_config::parse_go_duration;
use serde_json::{Map, Value, json};

/// The directory where Debian installs Go package sources.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";
const GOCONF_PACKAGE: &str = "github.com/dlintw/goconf";

/// Number of generated files of each kind. Each run generates the same
/// files, so a failure reproduces.
const GENERATED_LINE_FILES: usize = 400;
const GENERATED_CHARACTER_FILES: usize = 150;

#[test]
fn goconf_reader_matches_go_library() {
    let work = tempfile::tempdir().expect("create a temporary directory");
    let oracle = match build_oracle(work.path()) {
        Ok(oracle) => oracle,
        Err(reason) => {
            let message = format!("SKIPPED goconf_reader_matches_go_library: {reason}");
            if std::env::var("SEESAW_REQUIRE_ORACLES").as_deref() == Ok("1") {
                panic!("{message}, and SEESAW_REQUIRE_ORACLES=1 requires the oracle");
            }
            println!("{message}");
            return;
        }
    };

    let cases = all_cases();
    let mut paths = Vec::with_capacity(cases.len());
    for (index, case) in cases.iter().enumerate() {
        let path = work.path().join(format!("case-{index:04}.cfg"));
        std::fs::write(&path, &case.text).expect("write a case file");
        paths.push(path);
    }

    let output = Command::new(&oracle)
        .args(&paths)
        .output()
        .expect("run the goconf oracle");
    assert!(
        output.status.success(),
        "the goconf oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("the oracle prints UTF-8");
    let go_dumps: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("the oracle prints JSON lines"))
        .collect();
    assert_eq!(go_dumps.len(), cases.len(), "one oracle line per case");

    let mut mismatches = Vec::new();
    // Files and rejected files per group, in the order groups first appear.
    let mut counts: Vec<(&str, usize, usize)> = Vec::new();
    for ((case, path), go_dump) in cases.iter().zip(&paths).zip(&go_dumps) {
        let file = path.to_str().expect("temporary paths are UTF-8");
        let our_dump = dump(file, &case.text);
        let rejected = usize::from(our_dump.get("read_error").is_some());
        match counts.iter_mut().find(|(group, _, _)| *group == case.group) {
            Some(count) => {
                count.1 += 1;
                count.2 += rejected;
            }
            None => counts.push((case.group, 1, rejected)),
        }
        if &our_dump != go_dump {
            mismatches.push(format!(
                "case {} ({file}):\n--- text ---\n{}\n--- goconf ---\n{}\n--- ours ---\n{}\n",
                case.name,
                case.text,
                serde_json::to_string_pretty(go_dump).unwrap(),
                serde_json::to_string_pretty(&our_dump).unwrap(),
            ));
        }
    }
    let groups: Vec<String> = counts
        .iter()
        .map(|(group, files, rejected)| format!("{files} {group} ({rejected} rejected)"))
        .collect();
    println!(
        "goconf oracle: compared {} files: {}; {} mismatches",
        cases.len(),
        groups.join(", "),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} cases differ from goconf; the first ones:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Builds the oracle into `work`, or explains why it cannot be built.
fn build_oracle(work: &Path) -> Result<PathBuf, String> {
    let version = Command::new("go")
        .arg("version")
        .output()
        .map_err(|error| format!("`go` is not installed ({error}); install golang-go"))?;
    if !version.status.success() {
        return Err("`go version` failed".to_string());
    }
    let package = Path::new(DEBIAN_GOPATH).join("src").join(GOCONF_PACKAGE);
    if !package.is_dir() {
        return Err(format!(
            "{} is missing; install golang-github-dlintw-goconf-dev",
            package.display()
        ));
    }

    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/oracle/goconf/main.go")
        .canonicalize()
        .map_err(|error| format!("the oracle source is missing: {error}"))?;
    let binary = work.join("goconf-oracle");
    let gopath = work.join("gopath");
    let mut build = Command::new("go");
    build
        .arg("build")
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .current_dir(work)
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{}:{DEBIAN_GOPATH}", gopath.display()))
        .env("GOFLAGS", "");
    // Go needs a build cache, which defaults to a directory under $HOME.
    if std::env::var_os("HOME").is_none() && std::env::var_os("GOCACHE").is_none() {
        build.env("GOCACHE", work.join("gocache"));
    }
    let output = build
        .output()
        .map_err(|error| format!("running `go build` failed: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "`go build` of the oracle failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(binary)
}

/// Dumps what our reader returns in the oracle's format.
fn dump(file: &str, text: &str) -> Value {
    let conf = match GoConf::parse(text) {
        Ok(conf) => conf,
        Err(error) => {
            let kind = match error.kind {
                ReadErrorKind::UnparsableLine => "could_not_parse",
                ReadErrorKind::EmptySectionName { .. } => "blank_section",
            };
            return json!({"file": file, "read_error": {"kind": kind, "line": error.text}});
        }
    };

    let mut sections = Map::new();
    for section in conf.sections() {
        let name = section.name();
        let options: BTreeSet<&str> = conf
            .options(name)
            .expect("every listed section exists")
            .into_iter()
            .collect();
        let mut values = Map::new();
        for option in &options {
            values.insert(option.to_string(), option_values(&conf, name, option));
        }
        sections.insert(
            name.to_string(),
            json!({"options": options.iter().collect::<Vec<_>>(), "values": values}),
        );
    }
    json!({"file": file, "sections": sections})
}

fn option_values(conf: &GoConf, section: &str, option: &str) -> Value {
    let raw = match conf.raw(section, option) {
        Some(entry) => json!({"ok": entry.value}),
        None if conf.has_section(section) => json!({"error": "option_not_found"}),
        None => json!({"error": "section_not_found"}),
    };
    let (string, duration) = match conf.get_string(section, option) {
        Ok(value) => {
            let duration = match parse_go_duration(&value) {
                Ok(nanoseconds) => json!({"ok": nanoseconds}),
                Err(_) => json!({"error": "invalid_duration"}),
            };
            (json!({"ok": value}), duration)
        }
        Err(error) => (error_value(&error), error_value(&error)),
    };
    let boolean = match conf.get_bool(section, option) {
        Ok(value) => json!({"ok": value}),
        Err(error) => error_value(&error),
    };
    let int = match conf.get_int(section, option) {
        Ok(value) => json!({"ok": value}),
        Err(error) => error_value(&error),
    };
    json!({"raw": raw, "string": string, "bool": boolean, "int": int, "duration": duration})
}

/// Maps our errors to goconf's error kinds.
fn error_value(error: &GetError) -> Value {
    match error {
        GetError::SectionNotFound { .. } => json!({"error": "section_not_found"}),
        GetError::OptionNotFound { .. } | GetError::UnresolvedReference { .. } => {
            json!({"error": "option_not_found"})
        }
        GetError::TooManyExpansions { .. } => json!({"error": "max_depth"}),
        GetError::InvalidBool { value, .. } => {
            json!({"error": "could_not_parse_bool", "value": value})
        }
        GetError::InvalidInt { value, .. } => {
            json!({"error": "could_not_parse_int", "value": value})
        }
    }
}

struct Case {
    group: &'static str,
    name: String,
    text: String,
}

fn all_cases() -> Vec<Case> {
    let mut cases = fixture_cases();
    cases.extend(edge_cases());
    let mut random = Random(0x5eed_5a77);
    for index in 0..GENERATED_LINE_FILES {
        cases.push(Case {
            group: "generated from lines",
            name: format!("generated lines #{index}"),
            text: generate_line_file(&mut random),
        });
    }
    for index in 0..GENERATED_CHARACTER_FILES {
        cases.push(Case {
            group: "generated from characters",
            name: format!("generated characters #{index}"),
            text: generate_character_file(&mut random),
        });
    }
    cases
}

fn fixture_cases() -> Vec<Case> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ini");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&directory)
        .expect("read the fixture directory")
        .map(|entry| entry.expect("list a fixture").path())
        .collect();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc");
    paths.push(examples.join("seesaw.cfg.example"));
    paths.push(examples.join("watchdog.cfg"));
    paths.sort();
    paths
        .into_iter()
        .map(|path| Case {
            group: "fixtures",
            name: path.display().to_string(),
            text: std::fs::read_to_string(&path).expect("read a fixture"),
        })
        .collect()
}

fn edge_cases() -> Vec<Case> {
    let mut texts: Vec<(&str, String)> = vec![
        ("empty file", String::new()),
        ("only blank lines", "\n \n\t\n".into()),
        ("no trailing newline", "[a]\nk = v".into()),
        ("crlf", "[a]\r\nk = v\r\nb = on\r\n".into()),
        ("lone cr", "[a]\nk = v\rw = x\n".into()),
        ("rem forms", "[a]\nrem x\nREM= y\nRemote_host = z\nre = w\nremx\n".into()),
        ("rem only", "rem".into()),
        ("comments", "# c\n; c\n[a]\n  # c\n\t; c\nk = v\n".into()),
        (
            "inline comments",
            "[a]\na = v ;c\nb = v\t;c\nc = v #c\nd = v\t#c\ne = v;c\nf = v#c\ng = http://x/#frag\nh = ;c\ni = #c\n"
                .into(),
        ),
        ("colon separator", "[a]\nk: v\nj:v=w\nh=v:w\n".into()),
        ("separator first", "[a]\nk = v\n=odd\n:odd\n".into()),
        ("separator first no option", "[a]\n=odd\n".into()),
        ("continuation", "[a]\nk = one\n two\n\n# c\nthree ;c\n".into()),
        ("continuation in default", "k = one\ntwo\n".into()),
        ("bare line after header", "[cluster]\ntestcluster\n".into()),
        ("bare line first", "bare\n".into()),
        ("empty header", "[]\nk = v\n".into()),
        ("empty header blank", "[ ]\n[a]\nk = v\n".into()),
        ("empty header alone", "[]\n".into()),
        ("header oddities", "[a]b]\nk = v\n[x = y]\nj = w\n".into()),
        ("unclosed header", "[a\n".into()),
        ("header then option line", "[a] = b\n".into()),
        ("case folding", "[CluSter]\nNaMe = V\n[cluster]\nNAME = W\n".into()),
        ("default header", "k = 1\n[DEFAULT]\nj = 2\n[a]\nl = 3\n".into()),
        ("duplicate keys", "[a]\nk = 1\nk = 2\nK = 3\n".into()),
        ("duplicate sections", "[a]\nk = 1\n[b]\nk = 2\n[a]\nj = 3\n".into()),
        (
            "interpolation",
            "host = d\n[a]\nhost = a\nurl = %(host)s/%(HOST)s\nd = %(port)s\nport = 80\nm = %(missing)s\n"
                .into(),
        ),
        ("interpolation empty shadow", "x = 1\n[a]\nx =\ny = %(x)s\n".into()),
        ("interpolation self", "[a]\nk = %(k)s\n".into()),
        ("interpolation pair", "[a]\nk = %(j)s\nj = %(k)s\n".into()),
        ("interpolation malformed", "[a]\nk = %(j)\nl = %()s\nm = %%(j)s\nj = x\n".into()),
        ("interpolation rebuilt", "[a]\np = %\nk = %(p)s(j)s\nj = x\n".into()),
        (
            "booleans",
            "[a]\na = t\nb = TRUE\nc = Yes\nd = on\ne = 1\nf = F\ng = no\nh = OFF\ni = 0\nj = maybe\nk =\n"
                .into(),
        ),
        (
            "integers",
            "[a]\na = +7\nb = -0\nc = 007\nd = 9223372036854775807\ne = 9223372036854775808\nf = -9223372036854775808\ng = 1_0\nh = 0x1\n"
                .into(),
        ),
        (
            "durations",
            "[a]\na = 10s\nb = 1m30s\nc = .5s\nd = 1.s\ne = -3ms\nf = 1µs\ng = 1μs\nh = 1.5h\ni = 10\nj = 1d\nk = 0\nl = -0\nm = 2562047h47m16.854775807s\nn = 2562047h47m16.854775808s\no = -2562047h47m16.854775808s\np = 0.0000000009s\nq = 1.0000000000000000000001s\n"
                .into(),
        ),
        ("unicode names", "[Σ]\nİd = x\n\u{212a}ey = y\nΣΑΣ = z\n".into()),
        ("unicode spaces", "\u{a0}[a]\u{a0}\n\u{2003}k\u{2003}=\u{2003}v\u{2003}\n".into()),
        ("byte order mark", "\u{feff}[a]\nk = v\n".into()),
        (
            "other white space",
            "[a]\n\u{85}k\u{1680}=\u{3000}v\u{85}\n\u{200b}j = w\n\u{180e}x = y\u{180e}\n\u{b}z = 1\u{c}\n"
                .into(),
        ),
        ("accented names", "[ÉTÉ]\nÇa = oui\nÑ = x\n".into()),
        ("default leak", "shared = s\n[a]\nown = o\n".into()),
        ("tabs", "\t[a]\t\n\tk\t=\tv\t\n".into()),
    ];
    for count in [198, 199, 200, 201] {
        let mut text = String::from("[a]\nv = x\n");
        text.push_str(&format!("k = {}\n", "%(v)s".repeat(count)));
        texts.push(("expansion count", text));
    }
    for length in [199, 200, 201, 202] {
        let mut text = String::from("[a]\n");
        for i in 0..length - 1 {
            text.push_str(&format!("k{i} = %(k{})s\n", i + 1));
        }
        text.push_str(&format!("k{} = end\n", length - 1));
        texts.push(("expansion chain", text));
    }
    texts
        .into_iter()
        .map(|(name, text)| Case {
            group: "edge cases",
            name: name.to_string(),
            text,
        })
        .collect()
}

/// SplitMix64: a small, fixed pseudo-random sequence.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "name",
    "Name",
    "NAME",
    "vrid",
    "x",
    "y",
    "k.e-y",
    "a b",
    "remote_host",
    "REM",
    "v1",
    "v2",
];
const VALUES: &[&str] = &[
    "",
    "v",
    "True",
    "FALSE",
    "yes",
    "On",
    "n",
    "0",
    "1",
    "-1",
    "+7",
    "007",
    "9223372036854775807",
    "9223372036854775808",
    "1_0",
    "0x1f",
    "1e3",
    "10s",
    "1m30s",
    "1.5h",
    ".5s",
    "-3ms",
    "1µs",
    "5 s",
    "1d",
    "http://h/#frag",
    "a ;c",
    "a\t#c",
    "a;c",
    "a#c",
    "\"quoted\"",
    "x = y",
    "a:b",
    "%(name)s",
    "%(x)s",
    "%(Y)s",
    "%(missing)s",
    "%(k.e-y)s",
    "pre-%(v1)s-post",
    "%(v1)s%(v2)s",
    "%(x)",
    "%%(x)s",
];
const HEADERS: &[&str] = &[
    "[cluster]",
    "[ Cluster ]",
    "[DEFAULT]",
    "[default]",
    "[]",
    "[ ]",
    "[a]b]",
    "[x",
    "x]",
    "[config_server]",
    "[s]",
];
const COMMENTS: &[&str] = &["# c", "; c", "#", "rem x", "REM = y", "Remote = z", "rem"];
const CONTINUATIONS: &[&str] = &["more", "  cont ;c", "=odd", ":odd", "plain words", "re"];
const SEPARATORS: &[&str] = &["=", " = ", ":", ": ", "\t=\t", " :", "=:", "=="];
const INDENTS: &[&str] = &["", "", "", " ", "\t", "  "];

/// Generates a file from whole lines of the kinds above.
fn generate_line_file(random: &mut Random) -> String {
    let mut text = String::new();
    let lines = 1 + random.below(15);
    for _ in 0..lines {
        let indent = random.pick(INDENTS);
        let line = match random.below(20) {
            0..=9 => format!(
                "{}{}{}",
                random.pick(KEYS),
                random.pick(SEPARATORS),
                random.pick(VALUES)
            ),
            10..=12 => random.pick(HEADERS).to_string(),
            13..=14 => random.pick(COMMENTS).to_string(),
            15..=16 => random.pick(CONTINUATIONS).to_string(),
            _ => String::new(),
        };
        text.push_str(indent);
        text.push_str(&line);
        text.push_str(if random.below(8) == 0 { "\r\n" } else { "\n" });
    }
    if random.below(4) == 0 {
        text.pop();
    }
    text
}

/// Generates a file character by character from the characters that
/// matter to goconf, to reach combinations no line template has.
fn generate_character_file(random: &mut Random) -> String {
    const CHARACTERS: &[&str] = &[
        "[", "]", "=", ":", ";", "#", " ", "\t", "\n", "\n", "\n", "r", "e", "m", "R", "E", "M",
        "a", "b", "%", "(", ")", "s", "1", "0", "t", "\r",
    ];
    let length = random.below(80);
    (0..length).map(|_| random.pick(CHARACTERS)).collect()
}
