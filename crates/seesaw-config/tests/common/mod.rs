//! Helpers shared by the integration tests.

#![allow(dead_code)]

pub mod mutate;

use std::path::{Path, PathBuf};

/// Returns the directory of the cluster.pb fixtures.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster")
}

/// Reads every `*.pb` fixture, sorted by file name, and the example
/// etc/cluster.pb.example, which sets every field, as (name, text).
pub fn fixtures() -> Vec<(String, String)> {
    let mut fixtures: Vec<(String, String)> = std::fs::read_dir(fixture_dir())
        .expect("read the fixture directory")
        .map(|entry| entry.expect("list the fixture directory").path())
        .filter(|path| path.extension().is_some_and(|e| e == "pb"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("read a fixture");
            (name, text)
        })
        .collect();
    fixtures.sort();

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/cluster.pb.example");
    let text = std::fs::read_to_string(example).expect("read etc/cluster.pb.example");
    fixtures.push(("cluster.pb.example".to_string(), text));
    fixtures
}
