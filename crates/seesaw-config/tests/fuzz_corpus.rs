//! Replays the committed fuzz corpora and regression inputs, and runs a
//! short property test, through the same functions as the cargo-fuzz
//! targets in fuzz/. Stable Rust runs these, so CI needs neither nightly
//! nor libFuzzer. docs/fuzzing.md describes the targets.

mod common;

#[path = "../../../fuzz/src/lib.rs"]
mod fuzz_paths;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::mutate::{FIELD_NAMES, Rng, mutate};
use proptest::prelude::*;

/// Time allowed for one input. The slowest corpus file takes milliseconds
/// in a debug build, so only a hang comes near this.
const PER_INPUT_LIMIT: Duration = Duration::from_secs(20);

type Target = fn(&str);

const TARGETS: &[(&str, Target)] = &[
    ("cluster_text", fuzz_paths::cluster_text),
    ("text_spans", fuzz_paths::text_spans),
    ("goconf", fuzz_paths::goconf),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Returns the files of fuzz/corpus/<target> and fuzz/regressions/<target>.
fn inputs_of(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("list a corpus directory").path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Stack size of a replay thread: Rust's default for spawned threads, which
/// is smaller than a main thread's, so deep recursion shows up here first.
const REPLAY_STACK: usize = 2 << 20;

/// Runs `target` on `text` in a thread, so that a hang fails the test with
/// the input's name instead of stalling the suite.
fn run_with_limit(target: Target, text: String, name: &str) {
    let (done, finished) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .stack_size(REPLAY_STACK)
        .spawn(move || {
            target(&text);
            let _ = done.send(());
        })
        .expect("start a replay thread");
    match finished.recv_timeout(PER_INPUT_LIMIT) {
        Ok(()) => worker.join().expect("the replay thread finished"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The thread ended without sending: the target panicked.
            let panic = worker
                .join()
                .expect_err("a thread that did not send panicked");
            std::panic::resume_unwind(panic);
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name} took longer than {PER_INPUT_LIMIT:?}: the target probably hangs")
        }
    }
}

#[test]
fn corpus_replays_without_panic() {
    for &(target, run) in TARGETS {
        let files = inputs_of(target);
        assert!(
            files.len() >= 5,
            "fuzz/corpus/{target} has {} files; the committed corpus is missing",
            files.len()
        );

        let mut replayed = 0;
        for path in &files {
            let bytes = std::fs::read(path).expect("read a corpus file");
            // The targets take &str, and libFuzzer skips inputs that are
            // not UTF-8, so the replay does too.
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            let name = format!("{target}: {}", path.display());
            run_with_limit(run, text, &name);
            replayed += 1;
        }
        println!("{target}: replayed {replayed} of {} files", files.len());
        assert!(replayed > 0, "no UTF-8 file in the {target} corpus");
    }
}

/// Text-format tokens, so that random sequences often reach the parser's
/// inner states instead of failing at the first byte.
fn cluster_token() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(FIELD_NAMES).prop_map(str::to_string),
        proptest::sample::select(
            &[
                ":",
                "<",
                ">",
                "{",
                "}",
                "[",
                "]",
                ",",
                ";",
                "-",
                " ",
                "\n",
                "# c\n",
                "\"x\"",
                "'a\\x41'",
                "\"10.0.0.1/24\"",
                "0",
                "80",
                "-1",
                "0x1F",
                "1.5",
                "inf",
                "PRODUCTION",
                "TCP",
                "HTTP",
                "true",
                "[seesaw.config.x]",
            ][..]
        )
        .prop_map(str::to_string),
        "[ -~]{0,6}",
    ]
}

fn cluster_text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(cluster_token(), 0..80).prop_map(|t| t.concat()),
        any::<String>(),
    ]
}

/// goconf lines: headers, options, `rem` lines, continuations, comments and
/// `%(name)s` references.
fn goconf_text_strategy() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "\\[[a-z_ ]{0,8}\\]",
        "[a-zA-Z_]{1,8} ?[=:] ?[a-z0-9%()._ ]{0,12}",
        "(rem|REM)[a-z =]{0,8}",
        "[ \t]*[#;][ -~]{0,8}",
        "[ -~]{0,12}",
        "[a-z]{1,6} = %\\([a-z]{1,6}\\)s",
        Just(String::new()),
    ];
    prop_oneof![
        proptest::collection::vec(line, 0..20).prop_map(|lines| lines.join("\n")),
        any::<String>(),
    ]
}

/// Reads the INI fixtures, for mutation.
fn ini_fixtures() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ini");
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .expect("read tests/fixtures/ini")
        .map(|entry| std::fs::read_to_string(entry.expect("list ini fixtures").path()))
        .map(|text| text.expect("read an ini fixture"))
        .collect();
    texts.sort();
    texts
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_cluster_text_never_panics(text in cluster_text_strategy()) {
        fuzz_paths::cluster_text(&text);
        fuzz_paths::text_spans(&text);
    }

    #[test]
    fn mutated_cluster_fixtures_never_panic(index in any::<usize>(), seed in any::<u64>(), steps in 1..4usize) {
        let fixtures = common::fixtures();
        let (_, text) = &fixtures[index % fixtures.len()];
        let mutant = mutate(text, &mut Rng::new(seed), steps);
        fuzz_paths::cluster_text(&mutant.text);
        fuzz_paths::text_spans(&mutant.text);
    }

    #[test]
    fn arbitrary_goconf_text_never_panics(text in goconf_text_strategy()) {
        fuzz_paths::goconf(&text);
    }

    #[test]
    fn mutated_ini_fixtures_never_panic(index in any::<usize>(), seed in any::<u64>(), steps in 1..4usize) {
        let fixtures = ini_fixtures();
        let text = &fixtures[index % fixtures.len()];
        let mutant = mutate(text, &mut Rng::new(seed), steps);
        fuzz_paths::goconf(&mutant.text);
    }
}
