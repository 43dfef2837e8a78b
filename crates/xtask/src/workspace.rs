//! Facts about the Cargo workspace that the tasks need.

use std::path::{Path, PathBuf};

/// Returns the workspace root, two levels above this crate.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/xtask has two parent directories")
        .to_path_buf()
}
