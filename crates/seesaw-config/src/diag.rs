//! Positioned errors and warnings about configuration files.

use std::fmt;
use std::path::{Path, PathBuf};

/// Whether a finding rejects the file or only deserves attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// A 1-based line and column in a configuration file. The column counts
/// characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    pub fn new(line: usize, column: usize) -> Self {
        Position { line, column }
    }

    /// Converts a byte offset in `text` to a line and column.
    pub fn from_offset(text: &str, offset: usize) -> Self {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

/// One finding about a configuration file: what is wrong, where, and how
/// to fix it.
///
/// It prints as `FILE:LINE:COL: message`, or `FILE: message` when no
/// position applies (a missing option, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub position: Option<Position>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(
        file: impl AsRef<Path>,
        position: Option<Position>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            file: file.as_ref().to_path_buf(),
            position,
            message: message.into(),
        }
    }

    pub fn warning(
        file: impl AsRef<Path>,
        position: Option<Position>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, position, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(position) = self.position {
            write!(f, "{}:{}:", position.line, position.column)?;
        }
        if self.severity == Severity::Warning {
            write!(f, " warning:")?;
        }
        write!(f, " {}", self.message)
    }
}

/// The findings that rejected a file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub Vec<Diagnostic>);

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, diagnostic) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_from_offset() {
        let text = "ab\ncdé\nf";
        assert_eq!(Position::from_offset(text, 0), Position::new(1, 1));
        assert_eq!(Position::from_offset(text, 3), Position::new(2, 1));
        assert_eq!(
            Position::from_offset(text, text.find('f').unwrap()),
            Position::new(3, 1)
        );
        assert_eq!(
            Position::from_offset(text, text.find('é').unwrap() + 2),
            Position::new(2, 4)
        );
    }

    #[test]
    fn display_with_and_without_position() {
        let positioned = Diagnostic::error(
            "seesaw.cfg",
            Some(Position::new(3, 7)),
            "vrid 300 is out of range",
        );
        assert_eq!(
            positioned.to_string(),
            "seesaw.cfg:3:7: vrid 300 is out of range"
        );
        let unpositioned = Diagnostic::warning("seesaw.cfg", None, "unknown section [foo]");
        assert_eq!(
            unpositioned.to_string(),
            "seesaw.cfg: warning: unknown section [foo]"
        );
    }
}
