//! The glibc symbol versions that a binary needs, read with `objdump -T`.
//!
//! The release binaries must run on Ubuntu 18.04 (glibc 2.27) and other old
//! distributions, so they are built against glibc 2.17 and checked here:
//! the dynamic loader refuses a binary that names a symbol version its
//! glibc lacks.

use std::fmt;
use std::path::Path;
use std::process::Command;

/// A glibc symbol version such as `GLIBC_2.2.5`, compared part by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion(pub u32, pub u32, pub u32);

/// The oldest glibc the release binaries support.
pub const BASELINE: GlibcVersion = GlibcVersion(2, 17, 0);

impl GlibcVersion {
    /// Parses `GLIBC_2.17` or `GLIBC_2.2.5`; other version names, such as
    /// `GLIBC_PRIVATE` or `GCC_3.0`, return `None`.
    pub fn parse(name: &str) -> Option<GlibcVersion> {
        let numbers = name.strip_prefix("GLIBC_")?;
        let mut parts = numbers.split('.').map(|part| part.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = parts.next().unwrap_or(Some(0))?;
        if parts.next().is_some() {
            return None;
        }
        Some(GlibcVersion(major, minor, patch))
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlibcVersion(major, minor, 0) => write!(f, "GLIBC_{major}.{minor}"),
            GlibcVersion(major, minor, patch) => write!(f, "GLIBC_{major}.{minor}.{patch}"),
        }
    }
}

/// Returns `(version, symbol)` for every dynamic symbol in `objdump -T`
/// output that carries a glibc version. Lines name the version as
/// `(GLIBC_2.2.5)` or, for a symbol's default version, `GLIBC_2.2.5`.
pub fn symbol_versions(objdump_output: &str) -> Vec<(GlibcVersion, String)> {
    let mut found = Vec::new();
    for line in objdump_output.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(symbol) = fields.last() else {
            continue;
        };
        let version =
            fields.iter().rev().skip(1).find_map(|field| {
                GlibcVersion::parse(field.trim_matches(|c| c == '(' || c == ')'))
            });
        if let Some(version) = version {
            found.push((version, (*symbol).to_owned()));
        }
    }
    found
}

/// Runs `objdump -T` on `binary` and returns the symbols whose glibc
/// version is newer than `baseline`, as `GLIBC_2.34 symbol`.
pub fn symbols_newer_than(binary: &Path, baseline: GlibcVersion) -> Result<Vec<String>, String> {
    let output = Command::new("objdump")
        .arg("-T")
        .arg(binary)
        .output()
        .map_err(|error| format!("failed to start objdump (Debian package binutils): {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "objdump -T {} failed with {}: {}",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let versions = symbol_versions(&text);
    if versions.is_empty() {
        return Err(format!(
            "objdump -T {} lists no glibc symbol, so it is not a dynamically linked glibc binary",
            binary.display()
        ));
    }
    Ok(versions
        .into_iter()
        .filter(|(version, _)| *version > baseline)
        .map(|(version, symbol)| format!("{version} {symbol}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_two_and_three_parts() {
        assert_eq!(
            GlibcVersion::parse("GLIBC_2.17"),
            Some(GlibcVersion(2, 17, 0))
        );
        assert_eq!(
            GlibcVersion::parse("GLIBC_2.2.5"),
            Some(GlibcVersion(2, 2, 5))
        );
        assert_eq!(GlibcVersion::parse("GLIBC_PRIVATE"), None);
        assert_eq!(GlibcVersion::parse("GCC_3.0"), None);
        assert_eq!(GlibcVersion::parse("GLIBC_2.3.4.5"), None);
    }

    #[test]
    fn versions_order_numerically() {
        assert!(GlibcVersion(2, 2, 5) < BASELINE);
        assert!(GlibcVersion(2, 28, 0) > BASELINE);
        assert!(GlibcVersion(2, 17, 0) <= BASELINE);
        assert_eq!(GlibcVersion(2, 2, 5).to_string(), "GLIBC_2.2.5");
        assert_eq!(GlibcVersion(2, 34, 0).to_string(), "GLIBC_2.34");
    }

    #[test]
    fn symbol_versions_reads_objdump_lines() {
        let output = "\
target/release/seesaw_ha:     file format elf64-x86-64

DYNAMIC SYMBOL TABLE:
0000000000000000      DF *UND*\t0000000000000000 (GLIBC_2.2.5) pthread_mutex_lock
0000000000000000      DF *UND*\t0000000000000000  GLIBC_2.34  __libc_start_main
0000000000000000      DF *UND*\t0000000000000000 (GCC_3.0)    _Unwind_Resume
0000000000000000  w   D  *UND*\t0000000000000000  Base        __gmon_start__
";
        assert_eq!(
            symbol_versions(output),
            [
                (GlibcVersion(2, 2, 5), "pthread_mutex_lock".to_owned()),
                (GlibcVersion(2, 34, 0), "__libc_start_main".to_owned()),
            ]
        );
    }
}
