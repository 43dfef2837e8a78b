//! A reader for the INI dialect of `github.com/dlintw/goconf`, the library
//! that Seesaw v2 uses for `seesaw.cfg` and `watchdog.cfg`.
//!
//! The reader accepts and rejects what goconf (commit dcc0709 of 2012,
//! which Seesaw's go.mod pins) accepts and rejects, and returns the same
//! values, so a file behaves the same under both. A differential test runs
//! goconf itself over the test fixtures and generated files and compares
//! the results. The known exceptions are noted at `go_lower`.
//!
//! The dialect:
//! - Each line is trimmed of Unicode white space. Empty lines, lines that
//!   start with `#` or `;`, and lines whose first three characters are
//!   `rem` in any case are skipped. The last rule also drops options such as
//!   `remote = x`, so [`GoConf::rem_lines`] keeps them for warnings.
//! - `[name]` starts a section. Section and option names are lower-cased.
//!   Lines before the first header belong to the `default` section, which
//!   always exists. A repeated header continues the earlier section.
//! - `key = value` and `key: value` split at the first `=` or `:`. An inline
//!   comment starts at a space or tab followed by `;` or `#`. Values keep
//!   their case and their quotes. A repeated key replaces the earlier value.
//! - A line with no `=` or `:` (or one that starts with them) continues the
//!   value of the option above it, joined with `\n`, even across empty and
//!   comment lines. With no option above it in its section, the line is an
//!   error that rejects the whole file.
//! - `%(name)s` in a value expands to the option `name` of the same section
//!   or, failing that, of `default`, up to 200 expansions per value.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::diag::{Diagnostic, Position, Rejected};

/// The section that contains the options written before the first header.
pub const DEFAULT_SECTION: &str = "default";

/// Maximum number of `%(name)s` expansions in one value. goconf rejects a
/// value that needs this many or more, since that usually means a cycle.
pub const MAX_EXPANSIONS: usize = 200;

/// The value strings that goconf reads as booleans, compared without case.
const TRUE_WORDS: [&str; 6] = ["t", "true", "y", "yes", "on", "1"];
const FALSE_WORDS: [&str; 6] = ["f", "false", "n", "no", "off", "0"];

/// One option: its lower-cased key, its raw value and where both are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// The value as written, before `%(name)s` expansion. Continuation lines
    /// are joined with `\n`.
    pub value: String,
    pub key_position: Position,
    /// The first character of the value. For an empty value, the column
    /// just after the separator.
    pub position: Position,
    /// Key positions of earlier assignments of the same key in the same
    /// section, which this one replaced, in file order.
    pub replaced: Vec<Position>,
}

/// A section: its lower-cased name, its headers and its options in the
/// order their keys first appear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    name: String,
    headers: Vec<Position>,
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl Section {
    fn new(name: String) -> Self {
        Section {
            name,
            headers: Vec::new(),
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Returns the lower-cased name, which is empty for a `[]` header.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns the positions of every `[name]` header of this section, in
    /// file order. Empty for `default` unless the file has a `[default]`
    /// header.
    pub fn headers(&self) -> &[Position] {
        &self.headers
    }

    /// Returns the options in the order their keys first appear.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Returns the option `key` (lower-cased by the caller) of this section
    /// alone.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.index.get(key).map(|&i| &mut self.entries[i])
    }

    fn set(&mut self, key: String, value: String, key_position: Position, position: Position) {
        if let Some(entry) = self.get_mut(&key) {
            let earlier = entry.key_position;
            entry.replaced.push(earlier);
            entry.value = value;
            entry.key_position = key_position;
            entry.position = position;
            return;
        }
        self.index.insert(key.clone(), self.entries.len());
        self.entries.push(Entry {
            key,
            value,
            key_position,
            position,
            replaced: Vec::new(),
        });
    }
}

/// A line that goconf skipped as a comment because it starts with `rem`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemLine {
    pub position: Position,
    /// The trimmed line.
    pub text: String,
    /// The lower-cased key when the line reads as `key = value` with a
    /// one-word key, which means the author most likely meant an option.
    pub key: Option<String>,
}

/// The reason goconf rejects a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadErrorKind {
    /// The line is no header, comment or `key = value` pair, and no option
    /// comes before it in its section for it to continue.
    UnparsableLine,
    /// The line follows a `[]` header. goconf rejects every option line in
    /// a section without a name.
    EmptySectionName { header_line: usize },
}

/// A line that makes goconf reject the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoconfError {
    pub kind: ReadErrorKind,
    /// Line and column of the first non-blank character of the line.
    pub position: Position,
    /// The trimmed line.
    pub text: String,
    /// The lower-cased name of the section the line is in.
    pub section: String,
}

impl GoconfError {
    /// Converts the error to a positioned diagnostic about `file`.
    pub fn to_diagnostic(&self, file: &Path) -> Diagnostic {
        Diagnostic::error(file, Some(self.position), self.message())
    }

    fn message(&self) -> String {
        match self.kind {
            ReadErrorKind::UnparsableLine => {
                if self.position.line == 1 && self.text.starts_with('\u{feff}') {
                    return format!(
                        "cannot parse {:?} because the file starts with a UTF-8 byte order \
                         mark: save the file without it",
                        self.text
                    );
                }
                format!(
                    "cannot parse {:?}: write it as key = value. A line without = or : \
                     continues the value of the option above it, but [{}] has no option \
                     before this line.",
                    self.text, self.section
                )
            }
            ReadErrorKind::EmptySectionName { header_line } => format!(
                "cannot read {:?} because the section header [] on line {header_line} has \
                 no name: name the section",
                self.text
            ),
        }
    }
}

impl fmt::Display for GoconfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.position.line,
            self.position.column,
            self.message()
        )
    }
}

impl std::error::Error for GoconfError {}

/// The reason an option could not be read. The variants match goconf's errors,
/// except that goconf reports [`GetError::UnresolvedReference`] as a
/// missing option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetError {
    SectionNotFound {
        section: String,
    },
    /// The option is not set in the section. It may still be set in
    /// `default`: goconf's `HasOption` then reports it, but its getters fail.
    OptionNotFound {
        section: String,
        option: String,
    },
    /// `%(reference)s` names an option that is unset or empty in both the
    /// section and `default`.
    UnresolvedReference {
        section: String,
        option: String,
        reference: String,
    },
    /// The value needs [`MAX_EXPANSIONS`] or more expansions.
    TooManyExpansions {
        section: String,
        option: String,
    },
    InvalidBool {
        section: String,
        option: String,
        value: String,
    },
    InvalidInt {
        section: String,
        option: String,
        value: String,
    },
}

impl fmt::Display for GetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GetError::SectionNotFound { section } => write!(f, "section [{section}] not found"),
            GetError::OptionNotFound { section, option } => {
                write!(f, "option {option} not found in section [{section}]")
            }
            GetError::UnresolvedReference {
                section, reference, ..
            } => write!(
                f,
                "%({reference})s refers to no option with a value in [{section}] or \
                 [{DEFAULT_SECTION}]: define {reference} there"
            ),
            GetError::TooManyExpansions { .. } => write!(
                f,
                "expanding %(name)s references takes {MAX_EXPANSIONS} steps or more, \
                 which usually means that two options refer to each other: break the cycle"
            ),
            GetError::InvalidBool { value, .. } => write!(
                f,
                "{value:?} is not a boolean: use true or false \
                 (t, y, yes, on, 1, f, n, no, off and 0 work too)"
            ),
            GetError::InvalidInt { value, .. } => {
                write!(f, "{value:?} is not a decimal integer")
            }
        }
    }
}

impl std::error::Error for GetError {}

/// A parsed goconf file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoConf {
    /// In the order they first appear, `default` first.
    sections: Vec<Section>,
    index: HashMap<String, usize>,
    rem_lines: Vec<RemLine>,
}

impl GoConf {
    /// Parses `text` as goconf does, stopping at the first line that goconf
    /// rejects.
    pub fn parse(text: &str) -> Result<GoConf, GoconfError> {
        let (conf, mut errors) = Self::parse_lenient(text);
        if errors.is_empty() {
            Ok(conf)
        } else {
            Err(errors.swap_remove(0))
        }
    }

    /// Parses `text`, skipping and collecting the lines that goconf rejects,
    /// so that a loader can report every bad line and still check the rest.
    /// goconf stops at the first of these lines, so a file with any of them
    /// must be rejected.
    pub fn parse_lenient(text: &str) -> (GoConf, Vec<GoconfError>) {
        let mut conf = GoConf {
            sections: Vec::new(),
            index: HashMap::new(),
            rem_lines: Vec::new(),
        };
        conf.section_mut(DEFAULT_SECTION);
        let mut errors = Vec::new();

        let mut section = DEFAULT_SECTION.to_string();
        let mut empty_header_line = 0;
        // The key of the last option set in this section, which a line
        // without a separator continues. goconf resets it only at headers.
        let mut option: Option<String> = None;

        // goconf reads lines up to '\n' only, so a lone '\r' stays inside
        // the line, and trimming removes the '\r' of a "\r\n" ending.
        for (index, raw_line) in text.split('\n').enumerate() {
            let line_number = index + 1;
            let line = raw_line.trim();
            if line.is_empty() {
                continue;
            }
            let start = raw_line.len() - raw_line.trim_start().len();
            let position = Position::new(line_number, column_at(raw_line, start));
            let bytes = line.as_bytes();

            if bytes[0] == b'#' || bytes[0] == b';' {
                continue;
            }
            if bytes.len() >= 3 && bytes[..3].eq_ignore_ascii_case(b"rem") {
                conf.rem_lines.push(RemLine {
                    position,
                    text: line.to_string(),
                    key: rem_line_key(line),
                });
                continue;
            }
            if bytes[0] == b'[' && bytes[bytes.len() - 1] == b']' {
                section = go_lower(line[1..line.len() - 1].trim());
                option = None;
                if section.is_empty() {
                    empty_header_line = line_number;
                }
                conf.section_mut(&section).headers.push(position);
                continue;
            }
            if section.is_empty() {
                errors.push(GoconfError {
                    kind: ReadErrorKind::EmptySectionName {
                        header_line: empty_header_line,
                    },
                    position,
                    text: line.to_string(),
                    section: String::new(),
                });
                continue;
            }

            match line.find(['=', ':']) {
                Some(separator) if separator > 0 => {
                    let key = go_lower(line[..separator].trim());
                    let after = &line[separator + 1..];
                    let value_start = after.len() - after.trim_start().len();
                    let value_offset = start + separator + 1 + value_start;
                    let value_position =
                        Position::new(line_number, column_at(raw_line, value_offset));
                    let value = strip_inline_comment(after).trim().to_string();
                    conf.section_mut(&section)
                        .set(key.clone(), value, position, value_position);
                    option = Some(key);
                }
                _ => match &option {
                    Some(key) => {
                        let more = strip_inline_comment(line).trim();
                        let entry = conf
                            .section_mut(&section)
                            .get_mut(key)
                            .expect("the continued option was set in this section");
                        entry.value.push('\n');
                        entry.value.push_str(more);
                    }
                    None => errors.push(GoconfError {
                        kind: ReadErrorKind::UnparsableLine,
                        position,
                        text: line.to_string(),
                        section: section.clone(),
                    }),
                },
            }
        }
        (conf, errors)
    }

    fn section_mut(&mut self, name: &str) -> &mut Section {
        let index = match self.index.get(name) {
            Some(&index) => index,
            None => {
                self.index.insert(name.to_string(), self.sections.len());
                self.sections.push(Section::new(name.to_string()));
                self.sections.len() - 1
            }
        };
        &mut self.sections[index]
    }

    /// Returns every section in the order it first appears, `default` first. A `[]`
    /// header adds a section with an empty name, which the lookups below
    /// cannot reach because goconf reads an empty name as `default`.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// Returns the section `name`, compared without case. An empty name means
    /// `default`, as in goconf.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.index
            .get(&lookup_name(name))
            .map(|&i| &self.sections[i])
    }

    pub fn has_section(&self, name: &str) -> bool {
        self.section(name).is_some()
    }

    /// Returns the `default` section, which always exists.
    pub fn default_section(&self) -> &Section {
        &self.sections[0]
    }

    /// Returns the option names goconf lists for `section`: its own keys in file
    /// order, then the keys of `default` that it lacks. goconf lists a key
    /// in both twice and in random order. Returns `None` when the section
    /// does not exist.
    pub fn options(&self, section: &str) -> Option<Vec<&str>> {
        let own = self.section(section)?;
        let mut names: Vec<&str> = own.entries.iter().map(|e| e.key.as_str()).collect();
        for entry in &self.default_section().entries {
            if own.get(&entry.key).is_none() {
                names.push(&entry.key);
            }
        }
        Some(names)
    }

    /// Whether goconf's `HasOption` reports the option: the section must
    /// exist, and the option may be set in it or in `default` alone.
    pub fn has_option(&self, section: &str, option: &str) -> bool {
        let Some(own) = self.section(section) else {
            return false;
        };
        let option = go_lower(option);
        own.get(&option).is_some() || self.default_section().get(&option).is_some()
    }

    /// Returns the option as set in `section` itself, without looking in `default`
    /// and without expansion, like goconf's `GetRawString`.
    pub fn raw(&self, section: &str, option: &str) -> Option<&Entry> {
        self.section(section)?.get(&go_lower(option))
    }

    /// Returns the value of an option with every `%(name)s` expanded. Like goconf,
    /// it fails when the option is set only in `default`.
    pub fn get_string(&self, section: &str, option: &str) -> Result<String, GetError> {
        let section_name = lookup_name(section);
        let option = go_lower(option);
        let Some(own) = self.section(&section_name) else {
            return Err(GetError::SectionNotFound {
                section: section_name,
            });
        };
        let Some(entry) = own.get(&option) else {
            return Err(GetError::OptionNotFound {
                section: section_name,
                option,
            });
        };
        self.expand(own, &option, &entry.value)
    }

    /// Expands the `%(name)s` references in `raw`, the value of `option` in
    /// `own`, one at a time from the left, as goconf does.
    fn expand(&self, own: &Section, option: &str, raw: &str) -> Result<String, GetError> {
        let mut value = raw.to_string();
        for _ in 0..MAX_EXPANSIONS {
            let Some((start, end)) = find_reference(&value) else {
                return Ok(value);
            };
            // The name has only ASCII characters, so ASCII lower-casing
            // matches goconf's.
            let reference = value[start + 2..end - 2].to_ascii_lowercase();
            // A reference to an option that is set but empty in the section
            // fails even when `default` has a value for it.
            let replacement = own
                .get(&reference)
                .or_else(|| self.default_section().get(&reference))
                .map(|entry| entry.value.as_str())
                .unwrap_or("");
            if replacement.is_empty() {
                return Err(GetError::UnresolvedReference {
                    section: own.name.clone(),
                    option: option.to_string(),
                    reference,
                });
            }
            value.replace_range(start..end, replacement);
        }
        // goconf fails after the last allowed expansion even when nothing is
        // left to expand.
        Err(GetError::TooManyExpansions {
            section: own.name.clone(),
            option: option.to_string(),
        })
    }

    /// Reads the expanded value as goconf reads a boolean.
    pub fn get_bool(&self, section: &str, option: &str) -> Result<bool, GetError> {
        let value = self.get_string(section, option)?;
        parse_bool(&value).ok_or_else(|| GetError::InvalidBool {
            section: lookup_name(section),
            option: go_lower(option),
            value,
        })
    }

    /// Reads the expanded value as Go's `strconv.Atoi` reads it: an optional
    /// sign and decimal digits within the 64-bit range.
    pub fn get_int(&self, section: &str, option: &str) -> Result<i64, GetError> {
        let value = self.get_string(section, option)?;
        parse_int(&value).ok_or_else(|| GetError::InvalidInt {
            section: lookup_name(section),
            option: go_lower(option),
            value,
        })
    }

    /// Returns the lines goconf skipped because they start with `rem`.
    pub fn rem_lines(&self) -> &[RemLine] {
        &self.rem_lines
    }

    /// Returns warnings about the `rem` lines that look like options,
    /// which goconf drops without a word.
    pub fn rem_warnings(&self, file: &Path) -> Vec<Diagnostic> {
        self.rem_lines
            .iter()
            .filter_map(|rem| {
                let key = rem.key.as_ref()?;
                Some(Diagnostic::warning(
                    file,
                    Some(rem.position),
                    format!(
                        "option {key} is ignored because goconf reads every line that \
                         starts with \"rem\" as a comment: rename the option, or start \
                         the line with # if it is meant as a comment"
                    ),
                ))
            })
            .collect()
    }

    /// Reports whether any value in the file has a `%(name)s` reference to
    /// `name`.
    pub fn is_referenced(&self, name: &str) -> bool {
        self.sections
            .iter()
            .flat_map(|section| &section.entries)
            .any(|entry| {
                let mut rest = entry.value.as_str();
                while let Some((start, end)) = find_reference(rest) {
                    if rest[start + 2..end - 2].eq_ignore_ascii_case(name) {
                        return true;
                    }
                    rest = &rest[end..];
                }
                false
            })
    }
}

/// Reads a boolean as goconf does, without case. goconf lower-cases with
/// Unicode rules, but no non-ASCII character lower-cases to a letter of the
/// accepted words, so ASCII rules give the same result.
pub fn parse_bool(value: &str) -> Option<bool> {
    if TRUE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(value)) {
        Some(true)
    } else if FALSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(value)) {
        Some(false)
    } else {
        None
    }
}

/// Reads an integer as Go's `strconv.Atoi` does on 64-bit hosts. Rust's
/// `i64` parser takes the same forms: an optional `+` or `-`, then one or
/// more decimal digits, with no spaces or underscores.
pub fn parse_int(value: &str) -> Option<i64> {
    value.parse().ok()
}

/// Lower-cases as Go's `strings.ToLower` does: one character for each
/// character. Rust maps only U+0130 (capital I with dot above) to two
/// characters, where Go maps it to a plain `i`.
///
/// NOTE: Go 1.19 uses Unicode 13 tables. Characters that gained a lower
/// case in later Unicode versions are lower-cased here but not by goconf.
pub fn go_lower(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    text.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(single), None) => single,
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Returns the section name goconf looks up for `name`: lower-cased, and `default`
/// for an empty name.
fn lookup_name(name: &str) -> String {
    if name.is_empty() {
        DEFAULT_SECTION.to_string()
    } else {
        go_lower(name)
    }
}

/// Cuts `value` at the first inline comment, which starts at a space or tab
/// followed by `;` or `#`. A `#` without white space before it, as in
/// `http://host/#part`, stays in the value.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    let cut = bytes
        .windows(2)
        .position(|pair| matches!(pair, [b' ' | b'\t', b';' | b'#']));
    match cut {
        Some(index) => &value[..index],
        None => value,
    }
}

/// Finds the leftmost `%(name)s` with a name of ASCII letters, digits, `_`,
/// `.` and `-`, and returns its byte range.
fn find_reference(value: &str) -> Option<(usize, usize)> {
    let bytes = value.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let mut start = 0;
    while let Some(found) = value[start..].find("%(") {
        let open = start + found;
        let name_start = open + 2;
        let mut end = name_start;
        while end < bytes.len() && is_name(bytes[end]) {
            end += 1;
        }
        if end > name_start && bytes[end..].starts_with(b")s") {
            return Some((open, end + 2));
        }
        start = open + 1;
    }
    None
}

/// Returns the key of a `rem` line that reads as `key = value` with a one-word key.
fn rem_line_key(line: &str) -> Option<String> {
    let separator = line.find(['=', ':'])?;
    let key = line[..separator].trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return None;
    }
    Some(go_lower(key))
}

/// Returns the 1-based character column of byte `offset` in `line`.
fn column_at(line: &str, offset: usize) -> usize {
    line[..offset].chars().count() + 1
}

/// The result of a typed loader's lookup of an option, made as Seesaw
/// makes it.
pub(crate) enum Lookup {
    /// Unset, or the section does not exist.
    Absent,
    /// Set, but unreadable. The error is already recorded.
    Invalid,
    Found(Found),
}

/// A set option and its expanded value.
pub(crate) struct Found {
    pub key: String,
    pub raw: String,
    pub value: String,
    /// The start of the value.
    pub position: Position,
}

impl Found {
    /// Formats the option for a message: `key = value`, plus the expansion
    /// when it differs.
    pub fn describe(&self) -> String {
        let shown = show_value(&self.raw);
        if self.value == self.raw {
            format!("{} = {shown}", self.key)
        } else {
            format!(
                "{} = {shown} (expanded to {})",
                self.key,
                show_value(&self.value)
            )
        }
    }
}

/// Formats a value for a message: bare when it is plain text, quoted when
/// it is empty or contains control characters such as a continuation's `\n`.
pub(crate) fn show_value(value: &str) -> String {
    if value.is_empty() || value.chars().any(char::is_control) {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

/// The findings of a typed loader over one goconf file. It parses the file
/// leniently, records goconf's read errors and the `rem` warnings, and
/// offers lookups that follow Seesaw's use of goconf.
pub(crate) struct Findings {
    pub file: std::path::PathBuf,
    pub conf: GoConf,
    diagnostics: Vec<Diagnostic>,
    /// Keys of `default` already reported, so they get no second warning.
    reported_defaults: Vec<String>,
}

impl Findings {
    pub fn new(file: &Path, text: &str) -> Findings {
        let (conf, read_errors) = GoConf::parse_lenient(text);
        let mut diagnostics: Vec<Diagnostic> = read_errors
            .iter()
            .map(|error| error.to_diagnostic(file))
            .collect();
        diagnostics.extend(conf.rem_warnings(file));
        Findings {
            file: file.to_path_buf(),
            conf,
            diagnostics,
            reported_defaults: Vec::new(),
        }
    }

    pub fn error(&mut self, position: Option<Position>, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(&self.file, position, message));
    }

    pub fn warning(&mut self, position: Option<Position>, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::warning(&self.file, position, message));
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// Looks up an option as Seesaw's `cfgOpt` helper does, but reports
    /// what it would exit on.
    ///
    /// An option set only in `default` while `section` exists is an error:
    /// goconf's `HasOption` reports it but `GetString` fails, and Seesaw
    /// then exits with "Failed to get <option> for <section>". Using the
    /// value instead would start a daemon on a file that Seesaw rejects.
    pub fn lookup(&mut self, section: &str, option: &str) -> Lookup {
        if !self.conf.has_option(section, option) {
            return Lookup::Absent;
        }
        let Some(entry) = self.conf.raw(section, option) else {
            let key_position = self
                .conf
                .default_section()
                .get(option)
                .map(|e| e.key_position);
            self.reported_defaults.push(option.to_string());
            self.diagnostics.push(Diagnostic::error(
                &self.file,
                key_position,
                format!(
                    "{option} is set in [{DEFAULT_SECTION}] but not in [{section}], and Seesaw \
                     reads it only from [{section}]: move it under [{section}]"
                ),
            ));
            return Lookup::Invalid;
        };
        match self.conf.get_string(section, option) {
            Ok(value) => Lookup::Found(Found {
                key: entry.key.clone(),
                raw: entry.value.clone(),
                value,
                position: entry.position,
            }),
            Err(error) => {
                self.diagnostics.push(Diagnostic::error(
                    &self.file,
                    Some(entry.position),
                    format!("{} = {}: {error}", entry.key, show_value(&entry.value)),
                ));
                Lookup::Invalid
            }
        }
    }

    /// Records an error about a set option at its value.
    pub fn invalid(&mut self, found: &Found, problem: impl fmt::Display) {
        let message = format!("{} {problem}", found.describe());
        self.error(Some(found.position), message);
    }

    /// Warns about each section that is neither `default` nor listed in
    /// `known`, naming the closest of `known` when one is close. `file_kind`
    /// names the file in the hint, such as `seesaw.cfg`.
    pub fn warn_unknown_sections(&mut self, known: &[&str], file_kind: &str) {
        let unknown: Vec<(String, Position)> = self
            .conf
            .sections()
            .iter()
            .filter(|s| s.name() != DEFAULT_SECTION && !known.contains(&s.name()))
            .filter_map(|s| Some((s.name().to_string(), *s.headers().first()?)))
            .collect();
        for (name, position) in unknown {
            let hint = match closest(&name, known) {
                Some(close) => format!("did you mean [{close}]?"),
                None => format!("{file_kind} has the sections {}", list_sections(known)),
            };
            self.warning(
                Some(position),
                format!("unknown section [{name}] is ignored: {hint}"),
            );
        }
    }

    /// Warns about each option of `section` that `known` does not list,
    /// naming the closest known option when one is close.
    pub fn warn_unknown_options(&mut self, section: &str, known: &[&str]) {
        let Some(own) = self.conf.section(section) else {
            return;
        };
        let unknown: Vec<(String, Position)> = own
            .entries()
            .iter()
            .filter(|e| !known.contains(&e.key.as_str()))
            .map(|e| (e.key.clone(), e.key_position))
            .collect();
        for (key, position) in unknown {
            let hint = match closest(&key, known) {
                Some(close) => format!("did you mean {close}?"),
                None => format!("[{section}] takes {}", known.join(", ")),
            };
            self.warning(
                Some(position),
                format!("unknown option {key} in [{section}] is ignored: {hint}"),
            );
        }
    }

    /// Warns about each option set more than once in a section, at the
    /// assignments that lose.
    pub fn warn_replaced_options(&mut self) {
        let mut replaced = Vec::new();
        for section in self.conf.sections() {
            for entry in section.entries() {
                for earlier in &entry.replaced {
                    replaced.push((
                        *earlier,
                        format!(
                            "{} is set again in [{}] on line {}, which replaces this value: \
                             remove one of them",
                            entry.key,
                            section.name(),
                            entry.key_position.line
                        ),
                    ));
                }
            }
        }
        for (position, message) in replaced {
            self.warning(Some(position), message);
        }
    }

    /// Warns about each option of `default` that no `%(name)s` refers to.
    /// Seesaw reads options from their own sections only, so such an option
    /// has no effect. `home` names the section where a known key belongs.
    pub fn warn_unused_defaults(&mut self, home: impl Fn(&str) -> Option<&'static str>) {
        let unused: Vec<(String, Position)> = self
            .conf
            .default_section()
            .entries()
            .iter()
            .filter(|e| !self.reported_defaults.contains(&e.key))
            .filter(|e| !self.conf.is_referenced(&e.key))
            .map(|e| (e.key.clone(), e.key_position))
            .collect();
        for (key, position) in unused {
            let fix = match home(&key) {
                Some(section) => format!("move it under [{section}]"),
                None => "move it under the section it belongs to".to_string(),
            };
            self.warning(
                Some(position),
                format!(
                    "{key} is in [{DEFAULT_SECTION}] (before the first section header), \
                     which Seesaw reads only through %({key})s references, and nothing \
                     refers to it: {fix}"
                ),
            );
        }
    }

    /// Finishes loading: every finding in file order, with findings that
    /// have no line last. Returns the value and the warnings when nothing
    /// is an error, and all findings otherwise.
    pub fn finish<T>(mut self, value: T) -> Result<(T, Vec<Diagnostic>), Rejected> {
        self.diagnostics
            .sort_by_key(|d| (d.position.is_none(), d.position));
        if self.has_errors() {
            Err(Rejected(self.diagnostics))
        } else {
            Ok((value, self.diagnostics))
        }
    }

    /// Rejects the file with the findings so far, in file order.
    pub fn reject(self) -> Rejected {
        match self.finish(()) {
            Err(rejected) => rejected,
            Ok(((), diagnostics)) => Rejected(diagnostics),
        }
    }
}

/// Reads `path` and parses it with `parse`, which names the file in its
/// messages.
pub(crate) fn load_file<T>(
    path: &Path,
    parse: impl FnOnce(&Path, &str) -> Result<T, Rejected>,
) -> Result<T, Rejected> {
    let text = read_text(path)?;
    parse(path, &text)
}

/// Reads a configuration file as UTF-8, or returns one error naming the
/// file and the OS error.
fn read_text(path: &Path) -> Result<String, Rejected> {
    let bytes = std::fs::read(path).map_err(|error| {
        Rejected(vec![Diagnostic::error(
            path,
            None,
            format!("failed to read the file: {error}: check the path and its permissions"),
        )])
    })?;
    String::from_utf8(bytes).map_err(|error| {
        // NOTE: goconf reads any bytes. Files in other encodings are
        // rejected here because every Seesaw option is ASCII.
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        let text = String::from_utf8_lossy(valid);
        let position = Position::from_offset(&text, text.len());
        Rejected(vec![Diagnostic::error(
            path,
            Some(position),
            "the file is not valid UTF-8: save it as UTF-8 or plain ASCII",
        )])
    })
}

/// Returns the name in `known` closest to `name`, if it is close enough to be a
/// likely typo: at most two edits, and fewer than half the length of the
/// longer of the two names.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), *candidate))
        .filter(|&(distance, candidate)| {
            distance <= 2 && distance * 2 < name.len().max(candidate.len())
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

fn list_sections(known: &[&str]) -> String {
    let names: Vec<String> = known.iter().map(|name| format!("[{name}]")).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> GoConf {
        GoConf::parse(text).unwrap_or_else(|e| panic!("parse failed: {e}"))
    }

    fn value(conf: &GoConf, section: &str, key: &str) -> String {
        conf.raw(section, key)
            .unwrap_or_else(|| panic!("[{section}] {key} is missing"))
            .value
            .clone()
    }

    #[test]
    fn strip_inline_comment_cases() {
        let cases = [
            ("a ;c", "a"),
            ("a\t;c", "a"),
            ("a #c", "a"),
            ("a\t#c", "a"),
            ("a;c", "a;c"),
            ("a#c", "a#c"),
            ("http://x/#frag", "http://x/#frag"),
            ("a #b ;c", "a"),
            (" ;c", ""),
            ("plain", "plain"),
        ];
        for (input, expected) in cases {
            assert_eq!(strip_inline_comment(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn find_reference_cases() {
        let cases = [
            ("%(a)s", Some((0, 5))),
            ("x%(a.b-c_9)sy", Some((1, 12))),
            ("%()s", None),
            ("%(a)", None),
            ("%(a b)s", None),
            ("%(%(a)s", Some((2, 7))),
            ("100%", None),
        ];
        for (input, expected) in cases {
            assert_eq!(find_reference(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn go_lower_cases() {
        assert_eq!(go_lower("NaMe"), "name");
        assert_eq!(go_lower("\u{130}X"), "ix");
        assert_eq!(go_lower("ΣΑΣ"), "σασ");
        assert_eq!(go_lower("\u{212a}"), "k");
    }

    #[test]
    fn positions_of_keys_and_values() {
        let conf = parse("[cluster]\n  vrid =  300\nname:x\nempty =\n");
        let vrid = conf.raw("cluster", "vrid").unwrap();
        assert_eq!(vrid.key_position, Position::new(2, 3));
        assert_eq!(vrid.position, Position::new(2, 11));
        let name = conf.raw("cluster", "name").unwrap();
        assert_eq!(name.position, Position::new(3, 6));
        let empty = conf.raw("cluster", "empty").unwrap();
        assert_eq!(empty.position, Position::new(4, 8));
        assert_eq!(
            conf.section("cluster").unwrap().headers(),
            &[Position::new(1, 1)]
        );
    }

    #[test]
    fn continuation_spans_blank_and_comment_lines() {
        let conf = parse("[a]\nx = 1\n\n# note\nmore ;c\n=odd\n");
        assert_eq!(value(&conf, "a", "x"), "1\nmore\n=odd");
    }

    #[test]
    fn replaced_options_keep_earlier_positions() {
        let conf = parse("[a]\nx = 1\nX = 2\n");
        let entry = conf.raw("a", "x").unwrap();
        assert_eq!(entry.value, "2");
        assert_eq!(entry.replaced, vec![Position::new(2, 1)]);
    }

    #[test]
    fn empty_section_name_rejects_option_lines() {
        let error = GoConf::parse("[a]\n[ ]\nx = 1\n").unwrap_err();
        assert_eq!(
            error.kind,
            ReadErrorKind::EmptySectionName { header_line: 2 }
        );
        assert_eq!(error.position, Position::new(3, 1));
        assert_eq!(
            error.to_string(),
            "3:1: cannot read \"x = 1\" because the section header [] on line 2 has no \
             name: name the section"
        );
    }

    #[test]
    fn byte_order_mark_gets_a_hint() {
        let error = GoConf::parse("\u{feff}[cluster]\n").unwrap_err();
        assert_eq!(error.kind, ReadErrorKind::UnparsableLine);
        assert!(
            error.to_string().contains("byte order mark"),
            "message: {error}"
        );
    }

    #[test]
    fn closest_name_suggestions() {
        let known = ["cluster", "config_server", "interface"];
        assert_eq!(closest("config_servers", &known), Some("config_server"));
        assert_eq!(closest("clsuter", &known), Some("cluster"));
        assert_eq!(closest("vlan", &known), None);
        assert_eq!(closest("ab", &["lb"]), None);
        assert_eq!(closest("lbb", &["node", "lb"]), Some("lb"));
    }

    #[test]
    fn show_value_quotes_only_when_needed() {
        assert_eq!(show_value("eth0"), "eth0");
        assert_eq!(show_value(""), "\"\"");
        assert_eq!(show_value("a\nb"), "\"a\\nb\"");
    }
}
