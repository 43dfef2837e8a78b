//! Source positions of the fields in a protobuf text-format file.
//!
//! The text-format parser builds messages but keeps no positions, so this
//! module makes a second, tolerant pass over text that already parsed and
//! records where each field occurrence starts. Semantic errors found later
//! (a bad CIDR in the third backend, say) can then point at the line and
//! column of the offending value.
//!
//! A field occurrence is named by its path from the root message, with the
//! occurrence number of every step, counted from 0 per parent message:
//! `vserver[2].backend[0].host[0].ipv4[0]`. Singular fields always have
//! occurrence 0. Elements of a `field: [a, b]` list count as occurrences.

use std::collections::HashMap;

use crate::diag::Position;

/// The source position of one field occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    /// Start of the field name.
    pub name: Position,
    /// Start of the value: the opening bracket of a message, or the scalar.
    pub value: Position,
}

/// Positions of every field occurrence in one text-format file.
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    fields: HashMap<String, FieldSpan>,
    /// Closing brackets of messages, in source order, with the path of the
    /// message they close.
    closings: Vec<(Position, String)>,
    /// Messages still open at the end of the text, outermost first.
    unclosed: Vec<String>,
}

impl SpanIndex {
    /// Indexes `text`. Text that is not valid text format yields a partial
    /// index, never an error: positions are a convenience for messages.
    pub fn build(text: &str) -> Self {
        let tokens = tokenize(text);
        let mut builder = Builder {
            text,
            tokens: &tokens,
            next: 0,
            index: SpanIndex::default(),
            locator: Locator::new(text),
        };
        builder.message_body("", 0);
        builder.index
    }

    /// Returns the span of the field occurrence at `path`.
    pub fn get(&self, path: &str) -> Option<FieldSpan> {
        self.fields.get(path).copied()
    }

    /// Returns where the value at `path` starts, falling back to the nearest
    /// enclosing field that has a position.
    pub fn value_position(&self, path: &str) -> Option<Position> {
        let mut current = path;
        loop {
            if let Some(span) = self.fields.get(current) {
                return Some(span.value);
            }
            current = &current[..current.rfind('.')?];
        }
    }

    /// Returns where the field name at `path` starts, falling back like
    /// [`SpanIndex::value_position`].
    pub fn name_position(&self, path: &str) -> Option<Position> {
        let mut current = path;
        loop {
            if let Some(span) = self.fields.get(current) {
                return Some(span.name);
            }
            current = &current[..current.rfind('.')?];
        }
    }

    /// Returns the path of the field occurrence whose name starts at
    /// `position`.
    pub fn path_at(&self, position: Position) -> Option<&str> {
        self.fields
            .iter()
            .find(|(_, span)| span.name == position)
            .map(|(path, _)| path.as_str())
    }

    /// Returns the paths of the messages that the text opens but never
    /// closes, outermost first.
    pub fn unclosed(&self) -> &[String] {
        &self.unclosed
    }

    /// Returns the last message-closing bracket before `position`, with the
    /// path of the message it closed.
    pub fn last_closing_before(&self, position: Position) -> Option<(Position, &str)> {
        self.closings
            .iter()
            .rev()
            .find(|(closing, _)| *closing < position)
            .map(|(closing, path)| (*closing, path.as_str()))
    }
}

/// Message nesting depth up to which positions are recorded. The schema
/// nests at most four messages (Cluster, Vserver, VserverEntry,
/// Healthcheck), so deeper text never parses. The limit keeps the recursion
/// of the walk within the stack on hostile input.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Ident,
    Scalar,
    Colon,
    Open,
    Close,
    ListOpen,
    ListClose,
    Separator,
}

struct Builder<'a> {
    text: &'a str,
    tokens: &'a [(Token, usize, usize)],
    next: usize,
    index: SpanIndex,
    locator: Locator<'a>,
}

impl Builder<'_> {
    fn peek(&self) -> Option<Token> {
        self.tokens.get(self.next).map(|t| t.0)
    }

    fn position(&mut self, token: usize) -> Position {
        let offset = self.tokens.get(token).map_or(self.text.len(), |t| t.1);
        self.locator.locate(offset)
    }

    /// Reads fields until the closing bracket of the current message or the
    /// end of input. Returns when a `Close` token is next (not consumed).
    fn message_body(&mut self, prefix: &str, depth: usize) {
        let mut counts: HashMap<String, usize> = HashMap::new();
        while let Some(token) = self.peek() {
            match token {
                Token::Close => return,
                Token::Ident => self.field(prefix, depth, &mut counts),
                // Stray tokens: skip them so the rest still gets indexed.
                _ => self.next += 1,
            }
        }
    }

    fn field(&mut self, prefix: &str, depth: usize, counts: &mut HashMap<String, usize>) {
        let (_, start, end) = self.tokens[self.next];
        let name = self.text[start..end].to_string();
        let name_position = self.position(self.next);
        self.next += 1;

        if self.peek() == Some(Token::Colon) {
            self.next += 1;
        }

        if self.peek() == Some(Token::ListOpen) {
            self.next += 1;
            while let Some(token) = self.peek() {
                match token {
                    Token::ListClose => {
                        self.next += 1;
                        break;
                    }
                    // A bracket that closes the enclosing message ends an
                    // unterminated list too.
                    Token::Close => break,
                    Token::Open | Token::Scalar | Token::Ident => {
                        self.value(prefix, depth, &name, name_position, counts)
                    }
                    // Anything else cannot start a value. Skip it, because
                    // value() would consume nothing and the loop would spin.
                    Token::Separator | Token::Colon | Token::ListOpen => self.next += 1,
                }
            }
        } else {
            self.value(prefix, depth, &name, name_position, counts);
        }

        if self.peek() == Some(Token::Separator) {
            self.next += 1;
        }
    }

    /// Records one occurrence of `name` and consumes its value.
    fn value(
        &mut self,
        prefix: &str,
        depth: usize,
        name: &str,
        name_position: Position,
        counts: &mut HashMap<String, usize>,
    ) {
        let occurrence = counts.entry(name.to_string()).or_insert(0);
        let path = if prefix.is_empty() {
            format!("{name}[{occurrence}]")
        } else {
            format!("{prefix}.{name}[{occurrence}]")
        };
        *occurrence += 1;

        let value_position = self.position(self.next);
        self.index.fields.insert(
            path.clone(),
            FieldSpan {
                name: name_position,
                value: value_position,
            },
        );

        match self.peek() {
            Some(Token::Open) if depth >= MAX_DEPTH => self.skip_message(),
            Some(Token::Open) => {
                self.next += 1;
                self.message_body(&path, depth + 1);
                if self.peek() == Some(Token::Close) {
                    let closing = self.position(self.next);
                    self.index.closings.push((closing, path));
                    self.next += 1;
                } else {
                    // The walk unwinds from the innermost message outwards.
                    self.index.unclosed.insert(0, path);
                }
            }
            // Adjacent string literals form one value, and a negative
            // number or enum is a `-` scalar followed by more.
            Some(Token::Scalar) | Some(Token::Ident) => {
                self.next += 1;
                while self.peek() == Some(Token::Scalar) {
                    self.next += 1;
                }
            }
            _ => {}
        }
    }

    /// Consumes a message value, from its opening bracket up to and including
    /// the matching closing bracket or the end of input, without recursion.
    fn skip_message(&mut self) {
        let mut open = 0usize;
        while let Some(token) = self.peek() {
            self.next += 1;
            match token {
                Token::Open => open += 1,
                Token::Close => {
                    open -= 1;
                    if open == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }
}

/// Converts byte offsets to positions like [`Position::from_offset`], but
/// resumes from the previous offset. The walk requests offsets in
/// increasing order, so indexing a file costs one pass over it instead of
/// one pass per field. With one pass per field, a 340 KB cluster.pb with
/// 1000 vservers took 86 s to index in a fuzzing build.
struct Locator<'a> {
    text: &'a str,
    offset: usize,
    position: Position,
}

impl<'a> Locator<'a> {
    fn new(text: &'a str) -> Self {
        Locator {
            text,
            offset: 0,
            position: Position::new(1, 1),
        }
    }

    /// Returns the position of `offset`, which must be on a character
    /// boundary.
    fn locate(&mut self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            *self = Locator::new(self.text);
        }
        for c in self.text[self.offset..offset].chars() {
            if c == '\n' {
                self.position.line += 1;
                self.position.column = 1;
            } else {
                self.position.column += 1;
            }
        }
        self.offset = offset;
        self.position
    }
}

/// Splits text-format source into tokens with their byte ranges. Comments
/// and white space are dropped; anything unrecognised becomes a one-byte
/// scalar so the walk can go on.
fn tokenize(text: &str) -> Vec<(Token, usize, usize)> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let token = match c {
            b' ' | b'\t' | b'\r' | b'\n' | b'\x0b' | b'\x0c' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b':' => Token::Colon,
            b'<' | b'{' => Token::Open,
            b'>' | b'}' => Token::Close,
            b'[' => Token::ListOpen,
            b']' => Token::ListClose,
            b',' | b';' => Token::Separator,
            b'"' | b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != c && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                tokens.push((Token::Scalar, start, (i + 1).min(bytes.len())));
                i += 1;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                tokens.push((Token::Ident, start, i));
                continue;
            }
            c if c.is_ascii_digit() || c == b'-' || c == b'.' || c == b'+' => {
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.' || bytes[i] == b'_')
                {
                    // An exponent sign belongs to the number.
                    if (bytes[i] == b'e' || bytes[i] == b'E')
                        && i + 1 < bytes.len()
                        && (bytes[i + 1] == b'-' || bytes[i + 1] == b'+')
                    {
                        i += 1;
                    }
                    i += 1;
                }
                tokens.push((Token::Scalar, start, i));
                continue;
            }
            _ => {
                // Step over a whole UTF-8 character.
                i += text[i..].chars().next().map_or(1, char::len_utf8);
                tokens.push((Token::Scalar, start, i));
                continue;
            }
        };
        i += 1;
        tokens.push((token, start, i));
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_repeated_fields() {
        let text = "seesaw_vip: <\n  fqdn: \"vip.\"\n>\nnode <\n  fqdn: 'a'\n>\nnode {\n  ipv4: \"1.2.3.4/24\"\n}\n";
        let index = SpanIndex::build(text);
        assert_eq!(
            index.get("seesaw_vip[0]").unwrap().name,
            Position::new(1, 1)
        );
        assert_eq!(
            index.get("seesaw_vip[0]").unwrap().value,
            Position::new(1, 13)
        );
        assert_eq!(
            index.get("seesaw_vip[0].fqdn[0]").unwrap().value,
            Position::new(2, 9)
        );
        assert_eq!(
            index.get("node[1].ipv4[0]").unwrap().value,
            Position::new(8, 9)
        );
        assert_eq!(
            index.get("node[0].fqdn[0]").unwrap().name,
            Position::new(5, 3)
        );
    }

    #[test]
    fn comments_separators_and_lists() {
        let text =
            "# head\nvserver < name: \"x\", # trailing\n  warning: [\"a\", \"b\"];\n  port: -1 >\n";
        let index = SpanIndex::build(text);
        assert_eq!(
            index.get("vserver[0].name[0]").unwrap().value,
            Position::new(2, 17)
        );
        assert_eq!(
            index.get("vserver[0].warning[1]").unwrap().value,
            Position::new(3, 18)
        );
        assert_eq!(
            index.get("vserver[0].port[0]").unwrap().value,
            Position::new(4, 9)
        );
    }

    #[test]
    fn fallback_to_enclosing_field() {
        let text = "node <\n  fqdn: \"a\"\n>\n";
        let index = SpanIndex::build(text);
        assert_eq!(
            index.value_position("node[0].ipv4[0]"),
            Some(Position::new(1, 6))
        );
        assert_eq!(index.value_position("vlan[0].host[0]"), None);
    }

    #[test]
    fn records_unclosed_messages() {
        let text = "vserver <\n  name: \"x\"\n  entry_address <\n    fqdn: \"e\"\n";
        let index = SpanIndex::build(text);
        assert_eq!(
            index.unclosed(),
            ["vserver[0]", "vserver[0].entry_address[0]"]
        );
        assert_eq!(
            index.path_at(Position::new(4, 5)),
            Some("vserver[0].entry_address[0].fqdn[0]")
        );
    }

    #[test]
    fn records_closing_brackets() {
        let text = "vserver <\n  name: \"x\"\n  >\n>\n";
        let index = SpanIndex::build(text);
        let (closing, path) = index.last_closing_before(Position::new(4, 1)).unwrap();
        assert_eq!(closing, Position::new(3, 3));
        assert_eq!(path, "vserver[0]");
    }

    #[test]
    fn never_panics_on_broken_input() {
        for text in [
            "",
            "<<<",
            "a: [",
            "\"unterminated",
            "x: 'a\\",
            "é: ü",
            ">>> a { b: [1,,] }",
            "a: [>",
            "a: [:",
            "a: [[",
            "a < b: [ > c: 1",
        ] {
            SpanIndex::build(text);
        }
    }

    #[test]
    fn locator_matches_from_offset() {
        let text = "ab\ncd\u{e9}\r\n\nf\u{1f600}g";
        let offsets: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        let mut locator = Locator::new(text);
        for &offset in offsets.iter().chain(offsets.iter().rev()) {
            assert_eq!(
                locator.locate(offset),
                Position::from_offset(text, offset),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn deep_nesting_stays_on_the_stack() {
        let text = "a <".repeat(100_000);
        let index = SpanIndex::build(&text);
        assert!(index.get("a[0].a[0]").is_some());
    }
}
