//! Rules of the goconf dialect, checked through the public reader API.

use std::path::Path;

use proptest::prelude::*;
use seesaw_config::Position;
use seesaw_config::goconf::{GetError, GoConf, MAX_EXPANSIONS, ReadErrorKind};

fn parse(text: &str) -> GoConf {
    GoConf::parse(text).unwrap_or_else(|error| panic!("parse of {text:?} failed: {error}"))
}

fn raw_value(conf: &GoConf, section: &str, key: &str) -> Option<String> {
    conf.raw(section, key).map(|entry| entry.value.clone())
}

#[test]
fn comment_lines_are_skipped() {
    let text =
        "[a]\n# hash\n; semicolon\n  # indented\nrem windows\nREM = x\nRemote_host = y\nk = v\n";
    let conf = parse(text);
    assert_eq!(conf.options("a").unwrap(), vec!["k"]);
    assert_eq!(raw_value(&conf, "a", "remote_host"), None);
    assert_eq!(raw_value(&conf, "a", "rem"), None);
}

#[test]
fn rem_lines_are_recorded_with_keys() {
    let conf = parse("[a]\nrem windows comment\n  remote_host = x\nREM: y\nrem a b = c\n");
    let rems = conf.rem_lines();
    assert_eq!(rems.len(), 4);
    assert_eq!(rems[0].key, None);
    assert_eq!(rems[1].key.as_deref(), Some("remote_host"));
    assert_eq!(rems[1].position, Position::new(3, 3));
    assert_eq!(rems[1].text, "remote_host = x");
    assert_eq!(rems[2].key.as_deref(), Some("rem"));
    assert_eq!(rems[3].key, None);
}

#[test]
fn rem_warnings_name_line_and_key() {
    let conf = parse("[cluster]\nremote_host = x\nrem plain comment\n");
    let warnings = conf.rem_warnings(Path::new("seesaw.cfg"));
    assert_eq!(warnings.len(), 1);
    let text = warnings[0].to_string();
    assert!(
        text.starts_with("seesaw.cfg:2:1: warning: option remote_host is ignored"),
        "{text}"
    );
}

#[test]
fn section_and_option_names_are_lower_cased() {
    let conf = parse("[ClUsTeR]\nNaMe = MixedCase\n[ cluster ]\nVRID: 7\n");
    let names: Vec<&str> = conf.sections().iter().map(|s| s.name()).collect();
    assert_eq!(names, vec!["default", "cluster"]);
    assert_eq!(
        raw_value(&conf, "cluster", "name").as_deref(),
        Some("MixedCase")
    );
    assert_eq!(raw_value(&conf, "CLUSTER", "Vrid").as_deref(), Some("7"));
    let headers = conf.section("cluster").unwrap().headers();
    assert_eq!(headers, &[Position::new(1, 1), Position::new(3, 1)]);
}

#[test]
fn values_keep_quotes_and_case() {
    let conf = parse("[a]\nq = \"Quoted Value\"\ns = 'single'\n");
    assert_eq!(
        raw_value(&conf, "a", "q").as_deref(),
        Some("\"Quoted Value\"")
    );
    assert_eq!(raw_value(&conf, "a", "s").as_deref(), Some("'single'"));
}

#[test]
fn separator_is_first_equals_or_colon() {
    let cases = [
        ("k = v", "k", "v"),
        ("k: v", "k", "v"),
        ("k=v=w", "k", "v=w"),
        ("k:v=w", "k", "v=w"),
        ("k=v:w", "k", "v:w"),
        ("url = http://host:80/", "url", "http://host:80/"),
        ("host: 2001:db8::1", "host", "2001:db8::1"),
        ("a b = c", "a b", "c"),
        ("k =", "k", ""),
        ("k\t=\tv\t", "k", "v"),
    ];
    for (line, key, value) in cases {
        let conf = parse(&format!("[s]\n{line}\n"));
        assert_eq!(
            raw_value(&conf, "s", key).as_deref(),
            Some(value),
            "line {line:?}"
        );
    }
}

#[test]
fn inline_comments_need_white_space_before() {
    let cases = [
        ("k = v ;c", "v"),
        ("k = v\t;c", "v"),
        ("k = v #c", "v"),
        ("k = v\t#c", "v"),
        ("k = v;c", "v;c"),
        ("k = v#c", "v#c"),
        ("k = http://x/#frag", "http://x/#frag"),
        ("k = ;all comment", ""),
        ("k = # all comment", ""),
        ("k = a ;b #c", "a"),
    ];
    for (line, value) in cases {
        let conf = parse(&format!("[s]\n{line}\n"));
        assert_eq!(
            raw_value(&conf, "s", "k").as_deref(),
            Some(value),
            "line {line:?}"
        );
    }
}

#[test]
fn continuation_lines_join_with_newline() {
    let conf = parse("[s]\nk = one\n  two ;comment\n\n# skipped\nthree\n= four\n");
    assert_eq!(
        raw_value(&conf, "s", "k").as_deref(),
        Some("one\ntwo\nthree\n= four")
    );
    assert_eq!(conf.raw("s", "k").unwrap().position, Position::new(2, 5));
}

#[test]
fn continuation_of_repeated_key_extends_last() {
    let conf = parse("[s]\nk = one\nk = two\nmore\n");
    assert_eq!(raw_value(&conf, "s", "k").as_deref(), Some("two\nmore"));
}

#[test]
fn bare_line_after_header_is_rejected() {
    let error = GoConf::parse("[cluster]\ntestcluster\n\n[other]\nk = v\n").unwrap_err();
    assert_eq!(error.kind, ReadErrorKind::UnparsableLine);
    assert_eq!(error.position, Position::new(2, 1));
    assert_eq!(error.text, "testcluster");
    let message = error.to_string();
    assert!(
        message.starts_with("2:1: cannot parse \"testcluster\""),
        "{message}"
    );
}

#[test]
fn bare_line_rejections_table() {
    let cases = [
        ("bare\n", 1, "bare"),
        ("[a]\n  indented bare\n", 2, "indented bare"),
        ("[a]\nk = v\n[b]\nbare\n", 4, "bare"),
        ("[a]\n=value\n", 2, "=value"),
        ("[a]\n: value\n", 2, ": value"),
        ("[a\n", 1, "[a"),
        ("a]\n", 1, "a]"),
    ];
    for (text, line, bad) in cases {
        let error = GoConf::parse(text).unwrap_err();
        assert_eq!(error.kind, ReadErrorKind::UnparsableLine, "text {text:?}");
        assert_eq!(error.position.line, line, "text {text:?}");
        assert_eq!(error.text, bad, "text {text:?}");
    }
}

#[test]
fn lenient_parse_collects_every_bad_line() {
    let (conf, errors) = GoConf::parse_lenient("[a]\nbad1\nk = v\n[b]\nbad2\n");
    let lines: Vec<usize> = errors.iter().map(|e| e.position.line).collect();
    assert_eq!(lines, vec![2, 5]);
    assert_eq!(raw_value(&conf, "a", "k").as_deref(), Some("v"));
    assert!(conf.has_section("b"));
}

#[test]
fn empty_section_header_rejects_options() {
    let error = GoConf::parse("[]\nk = v\n").unwrap_err();
    assert_eq!(
        error.kind,
        ReadErrorKind::EmptySectionName { header_line: 1 }
    );
    assert_eq!(error.position, Position::new(2, 1));
    // An empty section with nothing in it is accepted, as by goconf.
    let conf = parse("[]\n[a]\nk = v\n");
    let names: Vec<&str> = conf.sections().iter().map(|s| s.name()).collect();
    assert_eq!(names, vec!["default", "", "a"]);
}

#[test]
fn lines_before_first_header_are_default() {
    let conf = parse("k = v\n[a]\n");
    assert_eq!(raw_value(&conf, "default", "k").as_deref(), Some("v"));
    assert_eq!(raw_value(&conf, "", "k").as_deref(), Some("v"));
    assert!(parse("").has_section("default"));
}

#[test]
fn repeated_keys_and_sections() {
    let conf = parse("[a]\nk = 1\n[b]\nk = x\n[A]\nK = 2\nj = 3\n");
    assert_eq!(raw_value(&conf, "a", "k").as_deref(), Some("2"));
    assert_eq!(raw_value(&conf, "a", "j").as_deref(), Some("3"));
    assert_eq!(raw_value(&conf, "b", "k").as_deref(), Some("x"));
    let entry = conf.raw("a", "k").unwrap();
    assert_eq!(entry.replaced, vec![Position::new(2, 1)]);
    assert_eq!(entry.key_position, Position::new(6, 1));
}

#[test]
fn crlf_and_lone_cr() {
    let conf = parse("[a]\r\nk = v\r\nj = x\ry = z\r\n");
    assert_eq!(raw_value(&conf, "a", "k").as_deref(), Some("v"));
    // goconf splits lines at '\n' only, so '\r' stays inside the value.
    assert_eq!(raw_value(&conf, "a", "j").as_deref(), Some("x\ry = z"));
}

#[test]
fn interpolation_from_section_then_default() {
    let text = "host = default.example\nport = 80\n[s]\nhost = s.example\n\
                url = http://%(host)s:%(PORT)s/\nplain = %(port)s\n";
    let conf = parse(text);
    assert_eq!(conf.get_string("s", "url").unwrap(), "http://s.example:80/");
    assert_eq!(conf.get_string("s", "plain").unwrap(), "80");
    assert_eq!(
        raw_value(&conf, "s", "url").as_deref(),
        Some("http://%(host)s:%(PORT)s/")
    );
}

#[test]
fn interpolation_failures() {
    let text = "d = fromdefault\n[s]\nmissing = %(nope)s\nd =\nshadow = %(d)s\nself = %(self)s\n";
    let conf = parse(text);
    assert!(matches!(
        conf.get_string("s", "missing"),
        Err(GetError::UnresolvedReference { ref reference, .. }) if reference == "nope"
    ));
    // An empty value in the section hides the value in default.
    assert!(matches!(
        conf.get_string("s", "shadow"),
        Err(GetError::UnresolvedReference { .. })
    ));
    assert!(matches!(
        conf.get_string("s", "self"),
        Err(GetError::TooManyExpansions { .. })
    ));
}

#[test]
fn interpolation_depth_limit() {
    // A value needing n expansions succeeds only when n < MAX_EXPANSIONS.
    for count in [MAX_EXPANSIONS - 1, MAX_EXPANSIONS, MAX_EXPANSIONS + 1] {
        let value = "%(v)s".repeat(count);
        let conf = parse(&format!("[s]\nv = x\nk = {value}\n"));
        let result = conf.get_string("s", "k");
        if count < MAX_EXPANSIONS {
            assert_eq!(result.unwrap(), "x".repeat(count), "count {count}");
        } else {
            assert!(
                matches!(result, Err(GetError::TooManyExpansions { .. })),
                "count {count}"
            );
        }
    }
}

#[test]
fn interpolation_chain_depth_limit() {
    for length in [MAX_EXPANSIONS, MAX_EXPANSIONS + 1] {
        let mut text = String::from("[s]\n");
        for i in 0..length - 1 {
            text.push_str(&format!("k{i} = %(k{})s\n", i + 1));
        }
        text.push_str(&format!("k{} = end\n", length - 1));
        let conf = parse(&text);
        let result = conf.get_string("s", "k0");
        // Resolving k0 takes length - 1 expansions.
        if length - 1 < MAX_EXPANSIONS {
            assert_eq!(result.unwrap(), "end", "length {length}");
        } else {
            assert!(result.is_err(), "length {length}");
        }
    }
}

#[test]
fn booleans_table() {
    let trues = [
        "t", "T", "true", "TRUE", "True", "y", "Y", "yes", "YeS", "on", "ON", "1",
    ];
    let falses = [
        "f", "F", "false", "False", "n", "no", "NO", "off", "Off", "0",
    ];
    let invalid = [
        "",
        "2",
        "enabled",
        "truee",
        "tru",
        "yes please",
        "true.",
        "nope",
    ];
    for word in trues {
        let conf = parse(&format!("[s]\nb = {word}\n"));
        assert_eq!(conf.get_bool("s", "b"), Ok(true), "word {word:?}");
    }
    for word in falses {
        let conf = parse(&format!("[s]\nb = {word}\n"));
        assert_eq!(conf.get_bool("s", "b"), Ok(false), "word {word:?}");
    }
    for word in invalid {
        let conf = GoConf::parse_lenient(&format!("[s]\nb = {word}\n")).0;
        let result = conf.get_bool("s", "b");
        assert!(
            matches!(result, Err(GetError::InvalidBool { .. })),
            "word {word:?}: {result:?}"
        );
    }
    let conf = parse("[s]\nb = maybe\n");
    let message = conf.get_bool("s", "b").unwrap_err().to_string();
    assert!(message.contains("\"maybe\" is not a boolean"), "{message}");
}

#[test]
fn integers_follow_go_atoi() {
    let valid = [
        ("0", 0),
        ("+7", 7),
        ("-7", -7),
        ("007", 7),
        ("-0", 0),
        ("9223372036854775807", i64::MAX),
        ("-9223372036854775808", i64::MIN),
    ];
    for (text, expected) in valid {
        let conf = parse(&format!("[s]\ni = {text}\n"));
        assert_eq!(conf.get_int("s", "i"), Ok(expected), "text {text:?}");
    }
    let invalid = [
        "",
        "+",
        "-",
        "1_000",
        "0x10",
        "1e3",
        "1.0",
        "9223372036854775808",
        "-9223372036854775809",
        "12abc",
        "١٢",
    ];
    for text in invalid {
        let conf = parse(&format!("[s]\ni = {text}\n"));
        assert!(
            matches!(conf.get_int("s", "i"), Err(GetError::InvalidInt { .. })),
            "text {text:?}"
        );
    }
}

#[test]
fn default_only_options_quirk() {
    let conf = parse("shared = yes\n[s]\nown = 1\n");
    assert!(conf.has_option("s", "shared"));
    assert!(conf.has_option("s", "own"));
    assert!(!conf.has_option("s", "other"));
    assert!(!conf.has_option("missing", "shared"));
    assert_eq!(conf.options("s").unwrap(), vec!["own", "shared"]);
    assert_eq!(conf.options("missing"), None);
    assert!(conf.raw("s", "shared").is_none());
    assert!(matches!(
        conf.get_string("s", "shared"),
        Err(GetError::OptionNotFound { .. })
    ));
    assert!(matches!(
        conf.get_string("missing", "shared"),
        Err(GetError::SectionNotFound { .. })
    ));
}

#[test]
fn value_positions_count_characters() {
    let conf = parse("[s]\n\tkéy = välue\nk2 =   \n");
    let entry = conf.raw("s", "kéy").unwrap();
    assert_eq!(entry.key_position, Position::new(2, 2));
    assert_eq!(entry.position, Position::new(2, 8));
    let empty = conf.raw("s", "k2").unwrap();
    assert_eq!(empty.position, Position::new(3, 5));
}

#[test]
fn is_referenced_finds_names() {
    let conf = parse("base = x\n[s]\nk = %(BASE)s-%(other)s\n");
    assert!(conf.is_referenced("base"));
    assert!(conf.is_referenced("other"));
    assert!(!conf.is_referenced("k"));
}

/// Renders a generated file with the given separator and padding style.
fn render(sections: &[(String, Vec<(String, String)>)], style: &Style) -> String {
    let mut text = String::new();
    for (name, options) in sections {
        text.push_str(&format!("{}[{}]{}", style.indent, name, style.end));
        if style.comments {
            text.push_str(&format!("# section {name}{}", style.end));
        }
        for (key, value) in options {
            text.push_str(&format!(
                "{}{}{}{}{}",
                style.indent, key, style.separator, value, style.end
            ));
            if style.comments {
                text.push_str(&format!("; after {key}{}", style.end));
            }
        }
        text.push_str(style.end);
    }
    text
}

#[derive(Debug)]
struct Style {
    indent: &'static str,
    separator: &'static str,
    end: &'static str,
    comments: bool,
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop::sample::select(vec!["", " ", "\t", "  "]),
        prop::sample::select(vec!["=", " = ", ":", ": ", "\t=\t", " :"]),
        prop::sample::select(vec!["\n", "\r\n"]),
        any::<bool>(),
    )
        .prop_map(|(indent, separator, end, comments)| Style {
            indent,
            separator,
            end,
            comments,
        })
}

/// Section names that cannot be mistaken for comments (no leading `rem`)
/// and keys likewise; values without separators or comment starters.
fn model() -> impl Strategy<Value = Vec<(String, Vec<(String, String)>)>> {
    let name = "[a-qs-z][a-z0-9_]{0,8}";
    let key = "[a-qs-zA-QS-Z][a-zA-Z0-9_.]{0,8}";
    let value = "[A-Za-z0-9_./-]([A-Za-z0-9_./;#-]{0,10}[A-Za-z0-9_./-])?";
    prop::collection::vec(
        (
            name,
            prop::collection::vec((key, prop::option::of(value)), 0..6),
        ),
        0..5,
    )
    .prop_map(|sections| {
        sections
            .into_iter()
            .map(|(name, options)| {
                let options = options
                    .into_iter()
                    .map(|(key, value)| (key, value.unwrap_or_default()))
                    .collect();
                (name, options)
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC*") {
        let _ = GoConf::parse(&text);
        let (conf, _) = GoConf::parse_lenient(&text);
        for section in conf.sections() {
            for entry in section.entries() {
                let _ = conf.get_string(section.name(), &entry.key);
                let _ = conf.get_bool(section.name(), &entry.key);
                let _ = conf.get_int(section.name(), &entry.key);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_ini_shapes(
        lines in prop::collection::vec(
            "[ \\t]{0,2}(\\[[a-z ]{0,4}\\]?|[a-zA-Z%()]{0,5}[ \\t]{0,2}[=:]?[ \\t]{0,2}[a-z;#%() \\t]{0,8}|(?i-u)rem[a-z =]{0,4})",
            0..12,
        )
    ) {
        let text = lines.join("\n");
        let (conf, errors) = GoConf::parse_lenient(&text);
        prop_assert_eq!(GoConf::parse(&text).is_ok(), errors.is_empty());
        for section in conf.sections() {
            for entry in section.entries() {
                let _ = conf.get_string(section.name(), &entry.key);
            }
        }
    }

    #[test]
    fn generated_files_round_trip(sections in model(), style in style()) {
        let text = render(&sections, &style);
        let conf = GoConf::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // The expected view: names lower-cased, repeated sections merged,
        // the last value of a key winning.
        for (name, options) in &sections {
            for (key, _) in options {
                let last = sections
                    .iter()
                    .filter(|(n, _)| n == name)
                    .flat_map(|(_, o)| o)
                    .filter(|(k, _)| k.to_lowercase() == key.to_lowercase())
                    .map(|(_, v)| v.clone())
                    .next_back()
                    .unwrap();
                prop_assert_eq!(raw_value(&conf, name, key), Some(last));
            }
        }
    }

    #[test]
    fn booleans_ignore_ascii_case(
        word in "(?i-u)(t|true|y|yes|on|1)",
        false_word in "(?i-u)(f|false|n|no|off|0)",
    ) {
        let conf = parse(&format!("[s]\nyes = {word}\nno = {false_word}\n"));
        prop_assert_eq!(conf.get_bool("s", "yes"), Ok(true));
        prop_assert_eq!(conf.get_bool("s", "no"), Ok(false));
    }

    #[test]
    fn integers_round_trip(number in any::<i64>(), plus in any::<bool>()) {
        let text = if plus && number >= 0 {
            format!("[s]\ni = +{number}\n")
        } else {
            format!("[s]\ni = {number}\n")
        };
        prop_assert_eq!(parse(&text).get_int("s", "i"), Ok(number));
    }
}
