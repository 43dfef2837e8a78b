//! Deterministic mutations of cluster.pb text for the differential and
//! corpus tests.
//!
//! Each mutation edits the text at token boundaries found by a small lexer
//! of its own, so it works on broken input too and never splits a UTF-8
//! character. Some mutations inject a construct on which seesaw-rs and Go's
//! proto.UnmarshalText are known to disagree. Those tag the result with the
//! name of that difference, and docs/differences.md describes each name.

#![allow(dead_code)]

/// SplitMix64: a tiny, seedable generator, so every run of a test produces
/// the same cases for the same seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a number in `0..n`; `n` must not be 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Returns true with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: usize, denominator: usize) -> bool {
        self.below(denominator) < numerator
    }
}

/// A mutated text with the steps that produced it.
#[derive(Debug, Clone)]
pub struct Mutant {
    pub text: String,
    /// One short description per mutation step, for failure messages.
    pub steps: Vec<String>,
    /// Names of known Go-vs-Rust differences that a step may have triggered.
    pub tags: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Space,
    Comment,
    Str,
    Word,
    Punct,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// Splits `text` into tokens that cover it completely. Unterminated strings
/// end at the end of the line.
fn lex(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let kind = match c {
            ' ' | '\t' | '\r' | '\n' => {
                while chars
                    .next_if(|&(_, c)| matches!(c, ' ' | '\t' | '\r' | '\n'))
                    .is_some()
                {}
                Kind::Space
            }
            '#' => {
                while chars.next_if(|&(_, c)| c != '\n').is_some() {}
                Kind::Comment
            }
            '"' | '\'' => {
                while let Some((_, next)) = chars.next_if(|&(_, c)| c != '\n') {
                    if next == c {
                        break;
                    }
                    if next == '\\' {
                        chars.next_if(|&(_, c)| c != '\n');
                    }
                }
                Kind::Str
            }
            c if is_word_char(c) => {
                while chars.next_if(|&(_, c)| is_word_char(c)).is_some() {}
                Kind::Word
            }
            _ => Kind::Punct,
        };
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        tokens.push(Token { kind, start, end });
    }
    tokens
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')
}

/// The lexed text with helpers to find fields and brackets.
struct Doc<'a> {
    text: &'a str,
    tokens: Vec<Token>,
}

impl<'a> Doc<'a> {
    fn new(text: &'a str) -> Self {
        Doc {
            text,
            tokens: lex(text),
        }
    }

    fn slice(&self, i: usize) -> &'a str {
        &self.text[self.tokens[i].start..self.tokens[i].end]
    }

    fn is_punct(&self, i: usize, set: &str) -> bool {
        self.tokens[i].kind == Kind::Punct && set.contains(self.slice(i))
    }

    /// Returns the index of the next token after `i` that is not space or
    /// a comment.
    fn next_solid(&self, i: usize) -> Option<usize> {
        (i + 1..self.tokens.len())
            .find(|&j| !matches!(self.tokens[j].kind, Kind::Space | Kind::Comment))
    }

    /// Returns the index of the bracket that closes the opener at `open`.
    fn matching_close(&self, open: usize) -> Option<usize> {
        let mut depth = 0usize;
        for j in open..self.tokens.len() {
            if self.is_punct(j, "<{[") {
                depth += 1;
            } else if self.is_punct(j, ">}]") {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
        }
        None
    }

    /// Field names: words followed by ':' or by an opening bracket.
    fn field_names(&self) -> Vec<usize> {
        (0..self.tokens.len())
            .filter(|&i| self.tokens[i].kind == Kind::Word)
            .filter(|&i| self.next_solid(i).is_some_and(|j| self.is_punct(j, ":<{")))
            .filter(|&i| !self.slice(i).starts_with(|c: char| c.is_ascii_digit()))
            .collect()
    }

    /// Returns the value tokens of the field named at `name`: the token range
    /// from the name to the end of its value, and whether it is a message.
    fn field_extent(&self, name: usize) -> Option<(usize, usize, bool)> {
        let mut j = self.next_solid(name)?;
        if self.is_punct(j, ":") {
            j = self.next_solid(j)?;
        }
        if self.is_punct(j, "<{[") {
            return Some((name, self.matching_close(j)?, !self.is_punct(j, "[")));
        }
        // A scalar, a signed number split by space, or adjacent strings.
        let mut end = j;
        if self.is_punct(j, "-") {
            end = self.next_solid(j)?;
        }
        while self.tokens[end].kind == Kind::Str {
            match self.next_solid(end) {
                Some(k) if self.tokens[k].kind == Kind::Str => end = k,
                _ => break,
            }
        }
        Some((name, end, false))
    }

    /// Scalar value tokens: a word or string right after a field name's ':'.
    fn scalar_values(&self) -> Vec<usize> {
        self.field_names()
            .into_iter()
            .filter_map(|name| {
                let colon = self.next_solid(name)?;
                let value = self.next_solid(colon)?;
                (self.is_punct(colon, ":")
                    && matches!(self.tokens[value].kind, Kind::Word | Kind::Str))
                .then_some(value)
            })
            .collect()
    }

    /// Returns the first token of the value of the field named at `name`.
    fn value_token(&self, name: usize) -> Option<usize> {
        let next = self.next_solid(name)?;
        if self.is_punct(next, ":") {
            self.next_solid(next)
        } else {
            Some(next)
        }
    }

    fn byte_start(&self, i: usize) -> usize {
        self.tokens[i].start
    }

    fn byte_end(&self, i: usize) -> usize {
        self.tokens[i].end
    }

    fn splice(&self, start: usize, end: usize, replacement: &str) -> String {
        format!(
            "{}{}{}",
            &self.text[..start],
            replacement,
            &self.text[end..]
        )
    }
}

/// Every field name in proto/config.proto, for renames that stay valid.
pub const FIELD_NAMES: &[&str] = &[
    "fqdn",
    "ipv4",
    "ipv6",
    "status",
    "host",
    "weight",
    "vlan_id",
    "type",
    "interval",
    "timeout",
    "port",
    "send",
    "receive",
    "code",
    "mode",
    "method",
    "proxy",
    "tls_verify",
    "retries",
    "protocol",
    "scheduler",
    "persistence",
    "quiescent",
    "server_low_watermark",
    "server_high_watermark",
    "lthreshold",
    "uthreshold",
    "healthcheck",
    "one_packet",
    "grantee",
    "role",
    "name",
    "member",
    "entry_address",
    "rp",
    "use_fwm",
    "vserver_entry",
    "access_grant",
    "warning",
    "backend",
    "error_message",
    "value",
    "last_updated",
    "attribute",
    "seesaw_vip",
    "node",
    "vmac",
    "bgp_local_asn",
    "bgp_remote_asn",
    "bgp_peer",
    "vserver",
    "vlan",
    "misconfigured_vserver",
    "metadata",
    "dedicated_vip_subnet",
    "access_groups",
];

/// Repeated fields of the schema, by kind, for list syntax.
const REPEATED_MESSAGES: &[&str] = &[
    "node",
    "bgp_peer",
    "vserver",
    "vlan",
    "vserver_entry",
    "backend",
    "healthcheck",
    "access_grant",
    "misconfigured_vserver",
    "access_groups",
];
const REPEATED_STRINGS: &[&str] = &["dedicated_vip_subnet", "warning", "member"];

/// Integer replacements, each with the known difference it may trigger.
pub const INTEGERS: &[(&str, Option<&str>)] = &[
    ("0", None),
    ("-1", None),
    ("1", None),
    ("017", None),
    ("0x7fffffff", None),
    ("0X1F", None),
    ("-0x10", None),
    ("2147483647", None),
    ("-2147483648", None),
    ("2147483648", None),
    ("-2147483649", None),
    ("4294967295", None),
    ("4294967296", None),
    ("9223372036854775807", None),
    ("-9223372036854775808", None),
    ("9223372036854775808", None),
    ("18446744073709551615", None),
    ("99999999999999999999999", None),
    ("08", None),
    ("1.0", None),
    ("1e3", None),
    ("80x", None),
    ("0x", None),
    ("--1", None),
    ("0x80000000", Some("hex-twos-complement")),
    ("0xFFFFFFFF", Some("hex-twos-complement")),
    ("0xFFFFFFFFFFFFFFFF", Some("hex-twos-complement")),
    ("+1", Some("go-integer-syntax")),
    ("0b101", Some("go-integer-syntax")),
    ("0o17", Some("go-integer-syntax")),
    ("1_000", Some("go-integer-syntax")),
    ("- 1", Some("space-after-minus")),
];

/// Float replacements, each with the known difference it may trigger.
pub const FLOATS: &[(&str, Option<&str>)] = &[
    ("0.3", None),
    ("1e-1", None),
    ("0", None),
    ("1", None),
    (".5", None),
    ("5.", None),
    ("-0", None),
    ("-0.0", None),
    ("inf", None),
    ("-inf", None),
    ("Infinity", None),
    ("-Infinity", None),
    ("nan", None),
    ("NaN", None),
    ("1f", None),
    ("0.5f", None),
    ("2.5e-3f", None),
    ("1e-50", None),
    ("3.4028234e38", None),
    ("0.1.2", None),
    ("1e", None),
    ("e5", None),
    ("0x10", None),
    ("abc", None),
    ("\"0.5\"", None),
    ("1F", Some("rust-float-syntax")),
    ("-nan", Some("rust-float-syntax")),
    ("+0.5", Some("go-float-syntax")),
    ("+inf", None),
    ("0x1p-2", Some("go-float-syntax")),
    ("010", Some("go-float-syntax")),
    ("1_0.5", Some("go-float-syntax")),
    ("- 0.5", Some("space-after-minus")),
    ("1e39", Some("float32-range")),
    ("-3.5e38", Some("float32-range")),
    (
        "1.00000005960464477539062500001",
        Some("float32-double-rounding"),
    ),
];

/// Boolean replacements, each with the known difference it may trigger.
pub const BOOLS: &[(&str, Option<&str>)] = &[
    ("true", None),
    ("false", None),
    ("t", None),
    ("f", None),
    ("True", None),
    ("False", None),
    ("1", None),
    ("0", None),
    ("TRUE", None),
    ("yes", None),
    ("2", None),
    ("\"true\"", None),
    ("01", Some("bool-integer-syntax")),
    ("0x1", Some("bool-integer-syntax")),
];

/// Enum replacements, each with the known difference it may trigger.
pub const ENUMS: &[(&str, Option<&str>)] = &[
    ("1", None),
    ("2", None),
    ("0", None),
    ("-1", None),
    ("99", None),
    ("0x2", None),
    ("02", None),
    ("2147483647", None),
    ("2147483648", None),
    ("production", None),
    ("\"TCP\"", None),
    ("PRODUCTION", None),
    ("HTTP", None),
    ("+1", Some("go-integer-syntax")),
    ("0b1", Some("go-integer-syntax")),
];

/// String replacements, each with the known difference it may trigger.
pub const STRINGS: &[(&str, Option<&str>)] = &[
    ("\"\"", None),
    ("''", None),
    ("'single'", None),
    ("\"tab\\there\"", None),
    ("\"\\a\\b\\f\\n\\r\\t\\v\\?\\\\\\'\\\"\"", None),
    ("\"\\101\\102\"", None),
    ("\"\\x41\\X42\"", None),
    ("\"\\u00e9\\U0001F600\"", None),
    ("\"\\303\\251\"", None),
    ("\"caf\u{e9}\"", None),
    ("\"a\" \"b\"", None),
    ("'a' \"b\" 'c'", None),
    ("\"a\" # comment\n \"b\"", None),
    ("\"it's\"", None),
    ("'say \"hi\"'", None),
    ("\"\\q\"", None),
    ("\"\\400\"", None),
    ("\"\\u12\"", None),
    ("\"\\U00110000\"", None),
    ("\"unterminated", None),
    ("\"line\nbreak\"", None),
    ("\"a\" b", None),
    ("\"\\0\"", Some("short-escape")),
    ("\"\\12\"", Some("short-escape")),
    ("\"\\x4\"", Some("short-escape")),
    ("\"\\x4g\"", Some("short-escape")),
    ("\"\\xff\"", Some("invalid-utf8-string")),
    ("\"\\377\\376\"", Some("invalid-utf8-string")),
    ("\"\\ud800\"", Some("surrogate-escape")),
    ("\"nul\0byte\"", Some("raw-nul-in-string")),
];

/// Text inserted where a field may start, to test unknown or odd names.
const ODD_FIELDS: &[&str] = &[
    "unknown_field: 1",
    "frobnicate < >",
    "Fqdn: \"x\"",
    "legacy_backend < >",
    "[seesaw.config.ext]: 1",
    "[type.googleapis.com/seesaw.config.Host] < fqdn: \"x\" >",
    "1: 2",
    "fqdn",
    ": 1",
];

/// Applies `steps` random mutations to `seed_text`.
pub fn mutate(seed_text: &str, rng: &mut Rng, steps: usize) -> Mutant {
    let mut mutant = Mutant {
        text: seed_text.to_string(),
        steps: Vec::new(),
        tags: Vec::new(),
    };
    for _ in 0..steps {
        // Some operators find nothing to change in some texts, so try a few.
        for _ in 0..8 {
            if let Some((text, step, tag)) = mutate_once(&mutant.text, rng) {
                mutant.text = text;
                mutant.steps.push(step);
                mutant.tags.extend(tag);
                break;
            }
        }
    }
    mutant
}

/// Returns one mutant per field occurrence in `text`, each without that
/// field, so that every required field goes missing at every depth.
pub fn drop_each_field(text: &str) -> Vec<Mutant> {
    let doc = Doc::new(text);
    doc.field_names()
        .into_iter()
        .filter_map(|name| {
            let (start, end, _) = doc.field_extent(name)?;
            Some(Mutant {
                text: doc.splice(doc.byte_start(start), doc.byte_end(end), ""),
                steps: vec![format!(
                    "drop field '{}' at line {}",
                    doc.slice(name),
                    text[..doc.byte_start(name)].matches('\n').count() + 1
                )],
                tags: Vec::new(),
            })
        })
        .collect()
}

type Step = (String, String, Option<&'static str>);

fn mutate_once(text: &str, rng: &mut Rng) -> Option<Step> {
    let doc = Doc::new(text);
    match rng.below(21) {
        0 => drop_field(&doc, rng),
        1 => duplicate_field(&doc, rng),
        2 => rename_field(&doc, rng),
        3 => toggle_colon(&doc, rng),
        4 => swap_brackets(&doc, rng),
        5 => add_separator(&doc, rng),
        6 => insert_comment(&doc, rng),
        7 => list_syntax(&doc, rng),
        8 | 9 => replace_scalar(&doc, rng, "string", STRINGS, |d, i| {
            d.tokens[i].kind == Kind::Str
        }),
        10 => replace_scalar(&doc, rng, "enum", ENUMS, |d, i| {
            let s = d.slice(i);
            s.len() > 1 && s.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        }),
        11 => replace_scalar(&doc, rng, "integer", INTEGERS, |d, i| {
            d.slice(i).parse::<i64>().is_ok()
        }),
        12 => float_value(&doc, rng),
        13 => replace_scalar(&doc, rng, "bool", BOOLS, |d, i| {
            matches!(d.slice(i), "true" | "false")
        }),
        14 => odd_field(&doc, rng),
        15 => stray_bracket(&doc, rng),
        16 => truncate(text, rng),
        17 => whitespace(text, rng),
        18 => drop_line(text, rng),
        19 => insert_token(&doc, rng),
        _ => delete_token(&doc, rng),
    }
}

fn drop_field(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let names = doc.field_names();
    let name = *rng.pick(non_empty(&names)?);
    let (start, end, _) = doc.field_extent(name)?;
    let text = doc.splice(doc.byte_start(start), doc.byte_end(end), "");
    Some((text, format!("drop field '{}'", doc.slice(name)), None))
}

fn duplicate_field(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let names = doc.field_names();
    let name = *rng.pick(non_empty(&names)?);
    let (start, end, _) = doc.field_extent(name)?;
    let field = &doc.text[doc.byte_start(start)..doc.byte_end(end)];
    let text = doc.splice(doc.byte_end(end), doc.byte_end(end), &format!("\n{field}"));
    Some((text, format!("duplicate field '{}'", doc.slice(name)), None))
}

fn rename_field(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let names = doc.field_names();
    let name = *rng.pick(non_empty(&names)?);
    let old = doc.slice(name);
    let new = match rng.below(4) {
        0 => format!("{old}s"),
        1 => old.to_ascii_uppercase(),
        _ => rng.pick(FIELD_NAMES).to_string(),
    };
    let text = doc.splice(doc.byte_start(name), doc.byte_end(name), &new);
    Some((text, format!("rename field '{old}' to '{new}'"), None))
}

fn toggle_colon(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let names: Vec<usize> = doc
        .field_names()
        .into_iter()
        .filter(|&i| {
            let Some(j) = doc.next_solid(i) else {
                return false;
            };
            doc.is_punct(j, "<{")
                || (doc.is_punct(j, ":")
                    && doc.next_solid(j).is_some_and(|k| doc.is_punct(k, "<{")))
        })
        .collect();
    let name = *rng.pick(non_empty(&names)?);
    let next = doc.next_solid(name)?;
    let text = if doc.is_punct(next, ":") {
        doc.splice(doc.byte_start(next), doc.byte_end(next), "")
    } else {
        doc.splice(doc.byte_end(name), doc.byte_end(name), ":")
    };
    Some((
        text,
        format!("toggle the colon after '{}'", doc.slice(name)),
        None,
    ))
}

fn swap_brackets(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let openers: Vec<usize> = (0..doc.tokens.len())
        .filter(|&i| doc.is_punct(i, "<{"))
        .collect();
    let open = *rng.pick(non_empty(&openers)?);
    let close = doc.matching_close(open)?;
    let (new_open, new_close) = if doc.slice(open) == "<" {
        ("{", "}")
    } else {
        ("<", ">")
    };
    // Now and then change only one side, which both parsers must reject.
    let only_one = rng.chance(1, 5);
    let mut text = doc.splice(doc.byte_start(close), doc.byte_end(close), new_close);
    if !only_one {
        text = format!(
            "{}{}{}",
            &text[..doc.byte_start(open)],
            new_open,
            &text[doc.byte_end(open)..]
        );
    }
    let step = if only_one {
        "swap one closing bracket"
    } else {
        "swap a bracket pair"
    };
    Some((text, step.to_string(), None))
}

fn add_separator(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let mut ends: Vec<usize> = doc.scalar_values();
    ends.extend((0..doc.tokens.len()).filter(|&i| doc.is_punct(i, ">}")));
    let at = doc.byte_end(*rng.pick(non_empty(&ends)?));
    let separator = *rng.pick(&[",", ";", ",", ";", " ,", ",,", ";;", ",;"]);
    let text = doc.splice(at, at, separator);
    Some((text, format!("add separator '{separator}'"), None))
}

fn insert_comment(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let comment = *rng.pick(&[
        "# plain comment\n",
        "# brackets > } ] and \"quotes\n",
        "#\n",
        "   # indented\n",
    ]);
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(doc.text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let at = if rng.chance(1, 3) {
        // A trailing comment on a line.
        let newline = doc
            .text
            .match_indices('\n')
            .map(|(i, _)| i)
            .collect::<Vec<_>>();
        *rng.pick(non_empty(&newline)?)
    } else {
        *rng.pick(&line_starts)
    };
    let inserted = if at < doc.text.len() && doc.text.as_bytes()[at] == b'\n' {
        format!(" {}", comment.trim_end())
    } else {
        comment.to_string()
    };
    Some((
        doc.splice(at, at, &inserted),
        "insert a comment".to_string(),
        None,
    ))
}

/// Rewrites a repeated field in list syntax, or inserts a list.
fn list_syntax(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let names = doc.field_names();
    let repeated: Vec<usize> = names
        .iter()
        .copied()
        .filter(|&i| {
            REPEATED_MESSAGES.contains(&doc.slice(i)) || REPEATED_STRINGS.contains(&doc.slice(i))
        })
        .collect();

    match rng.below(6) {
        // An empty list: Go rejects it, prost-reflect accepts it.
        0 => {
            let at = doc.byte_start(*rng.pick(non_empty(&repeated)?));
            let field = rng.pick(REPEATED_MESSAGES);
            let text = doc.splice(at, at, &format!("{field}: []\n"));
            Some((text, format!("insert '{field}: []'"), Some("empty-list")))
        }
        // A trailing comma inside a list, which both reject.
        1 => {
            let name = *rng.pick(non_empty(&repeated)?);
            let (_, end, _) = doc.field_extent(name)?;
            let value = doc.value_token(name)?;
            let body = &doc.text[doc.byte_start(value)..doc.byte_end(end)];
            let text = doc.splice(
                doc.byte_start(value),
                doc.byte_end(end),
                &format!("[{body},]"),
            );
            Some((text, "list with a trailing comma".to_string(), None))
        }
        // One or two occurrences of a repeated field as a list, with or
        // without the colon before '['.
        _ => {
            let name = *rng.pick(non_empty(&repeated)?);
            let field = doc.slice(name);
            let (_, end, is_message) = doc.field_extent(name)?;
            let value = doc.value_token(name)?;
            let mut items = vec![&doc.text[doc.byte_start(value)..doc.byte_end(end)]];
            let mut last = end;

            // Merge the next sibling of the same name, when it follows.
            if let Some(next) = doc.next_solid(end)
                && doc.slice(next) == field
                && let Some((_, next_end, _)) = doc.field_extent(next)
            {
                let next_value = doc.value_token(next)?;
                items.push(&doc.text[doc.byte_start(next_value)..doc.byte_end(next_end)]);
                last = next_end;
            }

            let drop_colon = is_message && rng.chance(1, 4);
            let separator = if drop_colon { " " } else { ": " };
            let list = format!("{field}{separator}[{}]", items.join(", "));
            let text = doc.splice(doc.byte_start(name), doc.byte_end(last), &list);
            let tag = drop_colon.then_some("list-without-colon");
            Some((
                text,
                format!("write '{field}' in list syntax ({} items)", items.len()),
                tag,
            ))
        }
    }
}

fn replace_scalar(
    doc: &Doc,
    rng: &mut Rng,
    value_kind: &str,
    pool: &[(&str, Option<&'static str>)],
    fits: impl Fn(&Doc, usize) -> bool,
) -> Option<Step> {
    let values: Vec<usize> = doc
        .scalar_values()
        .into_iter()
        .filter(|&i| fits(doc, i))
        .collect();
    let value = *rng.pick(non_empty(&values)?);
    let (new, tag) = *rng.pick(pool);
    let text = doc.splice(doc.byte_start(value), doc.byte_end(value), new);
    Some((
        text,
        format!("replace {value_kind} {} with {new}", doc.slice(value)),
        tag,
    ))
}

/// Replaces a watermark value, or inserts one into a vserver_entry.
fn float_value(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let (new, tag) = *rng.pick(FLOATS);
    let watermarks: Vec<usize> = doc
        .scalar_values()
        .into_iter()
        .filter(|&i| doc.tokens[i].kind == Kind::Word)
        .filter(|&i| {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if doc.tokens[j].kind == Kind::Word {
                    return doc.slice(j).ends_with("_watermark");
                }
            }
            false
        })
        .collect();
    if !watermarks.is_empty() && rng.chance(1, 2) {
        let value = *rng.pick(&watermarks);
        let text = doc.splice(doc.byte_start(value), doc.byte_end(value), new);
        return Some((text, format!("replace float with {new}"), tag));
    }

    let entries: Vec<usize> = doc
        .field_names()
        .into_iter()
        .filter(|&i| doc.slice(i) == "vserver_entry")
        .collect();
    let entry = *rng.pick(non_empty(&entries)?);
    let mut open = doc.next_solid(entry)?;
    if doc.is_punct(open, ":") {
        open = doc.next_solid(open)?;
    }
    if !doc.is_punct(open, "<{") {
        return None;
    }
    let field = rng.pick(&["server_low_watermark", "server_high_watermark"]);
    let at = doc.byte_end(open);
    let text = doc.splice(at, at, &format!(" {field}: {new} "));
    Some((text, format!("insert {field}: {new}"), tag))
}

fn odd_field(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let names = doc.field_names();
    let at = doc.byte_start(*rng.pick(non_empty(&names)?));
    let field = rng.pick(ODD_FIELDS);
    let text = doc.splice(at, at, &format!("{field}\n"));
    Some((text, format!("insert '{field}'"), None))
}

fn stray_bracket(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let boundaries: Vec<usize> = doc.tokens.iter().map(|t| t.start).collect();
    let at = *rng.pick(non_empty(&boundaries)?);
    let bracket = rng.pick(&["<", ">", "{", "}", "[", "]", "<>", "{}"]);
    let text = doc.splice(at, at, bracket);
    Some((text, format!("insert a stray '{bracket}'"), None))
}

/// Inserts one token at a token boundary.
fn insert_token(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let at_token = rng.below(doc.tokens.len() + 1);
    let at = doc.tokens.get(at_token).map_or(doc.text.len(), |t| t.start);
    let token = *rng.pick(&[
        "-", "+", ".", "0", "1", "\"x\"", ":", ",", ";", "#", "/", "=", "@", "\\", "_", " ",
    ]);
    // A sign in front of a number is a Go-only integer form ("+1") or, with
    // space before the digits, a form only prost-reflect reads ("- 1").
    let next_is_number = doc
        .tokens
        .get(at_token)
        .is_some_and(|t| t.kind != Kind::Punct && t.kind != Kind::Str);
    let tag = match token {
        "+" if next_is_number => Some("go-integer-syntax"),
        "-" if next_is_number => Some("space-after-minus"),
        _ => None,
    };
    let text = doc.splice(at, at, token);
    Some((text, format!("insert token '{token}'"), tag))
}

/// Deletes one token that is not white space.
fn delete_token(doc: &Doc, rng: &mut Rng) -> Option<Step> {
    let solid: Vec<usize> = (0..doc.tokens.len())
        .filter(|&i| doc.tokens[i].kind != Kind::Space)
        .collect();
    let i = *rng.pick(non_empty(&solid)?);
    let before = (0..i)
        .rev()
        .find(|&j| !matches!(doc.tokens[j].kind, Kind::Space | Kind::Comment));
    let after = doc.next_solid(i);
    let tag = if doc.is_punct(i, ":") && after.is_some_and(|j| doc.is_punct(j, "[")) {
        Some("list-without-colon")
    } else if before.is_some_and(|j| doc.is_punct(j, "["))
        && after.is_some_and(|j| doc.is_punct(j, "]"))
    {
        Some("empty-list")
    } else {
        None
    };
    let text = doc.splice(doc.byte_start(i), doc.byte_end(i), "");
    Some((text, format!("delete token '{}'", doc.slice(i)), tag))
}

fn truncate(text: &str, rng: &mut Rng) -> Option<Step> {
    if text.is_empty() {
        return None;
    }
    let mut at = rng.below(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    Some((
        text[..at].to_string(),
        format!("truncate at byte {at}"),
        None,
    ))
}

fn whitespace(text: &str, rng: &mut Rng) -> Option<Step> {
    match rng.below(5) {
        0 => Some((
            text.replace('\n', "\r\n"),
            "use CRLF line ends".to_string(),
            None,
        )),
        1 => Some((
            text.replace("  ", "\t"),
            "indent with tabs".to_string(),
            None,
        )),
        2 => Some((text.replace('\n', " "), "join all lines".to_string(), None)),
        3 => {
            let spaces: Vec<usize> = text.match_indices(' ').map(|(i, _)| i).collect();
            let at = *rng.pick(non_empty(&spaces)?);
            let control = rng.pick(&["\x0b", "\x0c"]);
            let text = format!("{}{}{}", &text[..at], control, &text[at + 1..]);
            Some((
                text,
                "replace a space with a vertical tab or form feed".to_string(),
                Some("vertical-tab-form-feed"),
            ))
        }
        _ => Some((
            text.trim_end().to_string(),
            "drop the final newline".to_string(),
            None,
        )),
    }
}

fn drop_line(text: &str, rng: &mut Rng) -> Option<Step> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let line = rng.below(non_empty(&lines)?.len());
    let rest: String = lines
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != line)
        .map(|(_, l)| *l)
        .collect();
    Some((rest, format!("drop line {}", line + 1), None))
}

fn non_empty<T>(items: &[T]) -> Option<&[T]> {
    (!items.is_empty()).then_some(items)
}
