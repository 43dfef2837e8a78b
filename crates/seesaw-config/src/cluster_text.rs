//! Parsing cluster.pb, the protobuf text-format cluster configuration.
//!
//! Accepts what Seesaw's parser accepts: `field: < ... >`, `field < ... >`
//! without a colon, `{ }` braces, `#` comments, `,` and `;` separators,
//! `[a, b]` lists and enum values by name. proto2 `required` fields are
//! enforced. Every error carries the file, line and column and tells how
//! to fix the input.

use std::path::Path;
use std::sync::OnceLock;

use miette::Diagnostic as _;
use prost_reflect::text_format::FormatOptions;
use prost_reflect::{
    Cardinality, DescriptorPool, DynamicMessage, Kind, MessageDescriptor, ReflectMessage, Value,
};

use crate::diag::{Diagnostic, Position, Rejected};
use crate::pb;
use crate::text_spans::SpanIndex;

/// A cluster.pb that parsed, with the positions of its fields.
#[derive(Debug, Clone)]
pub struct ParsedCluster {
    pub message: pb::Cluster,
    pub spans: SpanIndex,
}

/// Returns the descriptor pool of `proto/config.proto`.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(pb::DESCRIPTOR_SET).expect("the embedded descriptor set is valid")
    })
}

/// Returns the descriptor of the message `seesaw.config.<name>`.
pub fn message_descriptor(name: &str) -> MessageDescriptor {
    descriptor_pool()
        .get_message_by_name(&format!("seesaw.config.{name}"))
        .unwrap_or_else(|| panic!("message {name} is in proto/config.proto"))
}

/// Parses cluster.pb text. `file` only names the source in messages.
pub fn parse_cluster_text(file: &Path, text: &str) -> Result<ParsedCluster, Rejected> {
    let spans = SpanIndex::build(text);
    let descriptor = message_descriptor("Cluster");

    let dynamic = match DynamicMessage::parse_text_format(descriptor, text) {
        Ok(message) => message,
        Err(error) => {
            return Err(Rejected(vec![describe_parse_error(
                file, text, &spans, &error,
            )]));
        }
    };

    let mut missing = Vec::new();
    find_missing_required(&dynamic, "", &spans, file, &mut missing);
    if !missing.is_empty() {
        return Err(Rejected(missing));
    }

    let message = dynamic.transcode_to::<pb::Cluster>().map_err(|error| {
        Rejected(vec![Diagnostic::error(
            file,
            None,
            format!("internal error converting the cluster: {error}"),
        )])
    })?;
    Ok(ParsedCluster { message, spans })
}

/// Decodes a binary (wire-format) Cluster, as a config server sends it.
/// proto2 `required` fields are enforced. `source` only names the input in
/// messages, which carry no line or column because binary input has none.
pub fn decode_cluster_binary(source: &Path, bytes: &[u8]) -> Result<pb::Cluster, Rejected> {
    let dynamic =
        DynamicMessage::decode(message_descriptor("Cluster"), bytes).map_err(|error| {
            Rejected(vec![Diagnostic::error(
                source,
                None,
                format!(
                    "invalid binary protobuf Cluster ({} bytes): {error}",
                    bytes.len()
                ),
            )])
        })?;

    let mut missing = Vec::new();
    find_missing_required(&dynamic, "", &SpanIndex::default(), source, &mut missing);
    if !missing.is_empty() {
        return Err(Rejected(missing));
    }

    dynamic.transcode_to::<pb::Cluster>().map_err(|error| {
        Rejected(vec![Diagnostic::error(
            source,
            None,
            format!("internal error converting the cluster: {error}"),
        )])
    })
}

/// Formats a Cluster as cluster.pb text, one field per line. Fields that
/// are not set are left out. Nested messages use `{ }` braces, which
/// Seesaw's parser also accepts.
pub fn format_cluster_text(message: &pb::Cluster) -> String {
    let mut dynamic = DynamicMessage::new(message_descriptor("Cluster"));
    dynamic
        .transcode_from(message)
        .expect("a prost Cluster re-encodes as the Cluster it was generated from");
    let mut text = dynamic.to_text_format_with_options(&FormatOptions::new().pretty(true));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Turns a text-format parse error into a positioned message with a fix.
fn describe_parse_error(
    file: &Path,
    text: &str,
    spans: &SpanIndex,
    error: &prost_reflect::text_format::ParseError,
) -> Diagnostic {
    let position = error
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| Position::from_offset(text, label.offset()))
        .unwrap_or_else(|| Position::from_offset(text, text.trim_end().len()));
    let raw = error.to_string();

    let message = if let Some((field, message)) =
        quoted_pair(&raw, "field '", "' not found for message '")
    {
        unknown_field_message(&field, short_name(&message), position, spans)
    } else if let Some((value, enumeration)) =
        quoted_pair(&raw, "value '", "' was not found for enum '")
    {
        unknown_enum_message(&value, &enumeration)
    } else if let Some(field) = raw
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix("' is already set"))
    {
        format!("field '{field}' is set twice, but it takes one value: remove one of them")
    } else if raw.contains("reached end of input") {
        match spans.unclosed().last() {
            Some(path) => {
                let start = spans.name_position(path).map_or(0, |p| p.line);
                format!(
                    "{raw}: the '{}' message that starts at line {start} is not closed; add the missing '>' or '}}'",
                    field_name_of(path)
                )
            }
            None => format!(
                "{raw}: a message opened with '<' or '{{' is not closed; add the missing '>' or '}}'"
            ),
        }
    } else if let Some(range) = integer_range(&raw) {
        match field_before(text, position) {
            Some(field) => format!("{field}: {raw}: write a whole number from {range}"),
            None => format!("{raw}: write a whole number from {range}"),
        }
    } else if raw.starts_with("expected") {
        format!("{raw}: check the brackets and quotes on this line and the line before")
    } else {
        raw
    };
    Diagnostic::error(file, Some(position), message)
}

/// Returns the name of the field whose value starts at `position`, as in
/// `bgp_local_asn: -5`.
fn field_before(text: &str, position: Position) -> Option<String> {
    let line = text.lines().nth(position.line.checked_sub(1)?)?;
    let before: String = line
        .chars()
        .take(position.column.saturating_sub(1))
        .collect();
    let name = before.trim_end().strip_suffix(':')?.trim_end();
    let start = name
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |at| at + 1);
    let field = &name[start..];
    (!field.is_empty()).then(|| field.to_string())
}

/// Returns the range of the integer type that an out-of-range error names,
/// such as a negative AS number in an unsigned field.
fn integer_range(raw: &str) -> Option<&'static str> {
    if !raw.contains("is out of range") {
        return None;
    }
    let ranges = [
        ("unsigned 32-bit integer", "0 to 4294967295"),
        ("signed 32-bit integer", "-2147483648 to 2147483647"),
        ("unsigned 64-bit integer", "0 to 18446744073709551615"),
        (
            "signed 64-bit integer",
            "-9223372036854775808 to 9223372036854775807",
        ),
    ];
    ranges
        .iter()
        .find(|(kind, _)| raw.contains(&format!("an {kind}")) || raw.contains(&format!("a {kind}")))
        .map(|(_, range)| *range)
}

/// Explains an unknown field, suggesting a near spelling or, when the field
/// belongs to another message, a bracket that closed a message too early.
fn unknown_field_message(
    field: &str,
    message: &str,
    position: Position,
    spans: &SpanIndex,
) -> String {
    let descriptor = message_descriptor(message);
    let names: Vec<String> = descriptor.fields().map(|f| f.name().to_string()).collect();
    if let Some(close) = closest_name(field, &names) {
        return format!("unknown field '{field}' in {message}: did you mean '{close}'?");
    }

    let owners: Vec<String> = descriptor_pool()
        .all_messages()
        .filter(|m| m.get_field_by_name(field).is_some())
        .map(|m| m.name().to_string())
        .collect();
    if owners.is_empty() {
        let known = names.join(", ");
        return format!(
            "unknown field '{field}' in {message}: the fields of {message} are {known}"
        );
    }

    // A field of an enclosing message type that turns up inside a nested
    // message means a bracket is missing. A field of a nested type that
    // turns up at an outer level means a bracket closed its message early.
    let current = message_descriptor(message);
    let too_deep = owners
        .iter()
        .any(|owner| contains_message(&message_descriptor(owner), &current));
    let owners = owners.join(" or ");
    if too_deep {
        let open = spans
            .path_at(position)
            .and_then(|path| path.rsplit_once('.').map(|(parent, _)| parent))
            .and_then(|parent| {
                spans
                    .name_position(parent)
                    .map(|start| (field_name_of(parent), start))
            });
        return match open {
            Some((open_field, start)) => format!(
                "field '{field}' belongs in {owners}, not in {message}: the '{open_field}' message that starts at line {} is not closed; add '>' or '}}' before line {}",
                start.line, position.line
            ),
            None => format!(
                "field '{field}' belongs in {owners}, not in {message}: a message above is not closed; add the missing '>' or '}}'"
            ),
        };
    }

    match spans.last_closing_before(position) {
        Some((closing, closed_path)) => {
            let closed_field = field_name_of(closed_path);
            let opened = spans.name_position(closed_path).map_or(String::new(), |p| {
                format!(" that starts at line {}", p.line)
            });
            format!(
                "field '{field}' belongs in {owners}, not in {message}: the closing bracket at line {}, column {} ends the '{closed_field}' message{opened}, so an extra '>' or '}}' probably closes it too early",
                closing.line, closing.column
            )
        }
        None => format!(
            "field '{field}' belongs in {owners}, not in {message}: move it inside a {owners} message"
        ),
    }
}

/// Returns the field name of the last step of a span path:
/// `vserver[0].entry_address[0]` gives `entry_address`.
fn field_name_of(path: &str) -> &str {
    let last = path.rsplit('.').next().unwrap_or(path);
    last.split('[').next().unwrap_or(last)
}

/// Reports whether a message of type `inner` can appear, at any depth,
/// inside a message of type `outer`.
fn contains_message(outer: &MessageDescriptor, inner: &MessageDescriptor) -> bool {
    let mut seen = vec![outer.full_name().to_string()];
    let mut queue = vec![outer.clone()];
    while let Some(current) = queue.pop() {
        for field in current.fields() {
            if let Kind::Message(child) = field.kind() {
                if child.full_name() == inner.full_name() {
                    return true;
                }
                if !seen.iter().any(|name| name == child.full_name()) {
                    seen.push(child.full_name().to_string());
                    queue.push(child);
                }
            }
        }
    }
    false
}

fn unknown_enum_message(value: &str, enumeration: &str) -> String {
    let short = short_name(enumeration);
    let allowed = descriptor_pool()
        .get_enum_by_name(enumeration)
        .map(|e| {
            e.values()
                .map(|v| v.name().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    match closest_name(
        value,
        &allowed.split(", ").map(String::from).collect::<Vec<_>>(),
    ) {
        Some(close) => format!(
            "'{value}' is not a valid {short}: did you mean {close}? (valid values: {allowed})"
        ),
        None => format!("'{value}' is not a valid {short}: use one of {allowed}"),
    }
}

/// Collects an error for every required field that is missing, anywhere in
/// the message tree.
fn find_missing_required(
    message: &DynamicMessage,
    path: &str,
    spans: &SpanIndex,
    file: &Path,
    out: &mut Vec<Diagnostic>,
) {
    let descriptor = message.descriptor();
    for field in descriptor.fields() {
        let child_path = |i: usize| {
            if path.is_empty() {
                format!("{}[{i}]", field.name())
            } else {
                format!("{path}.{}[{i}]", field.name())
            }
        };

        if field.cardinality() == Cardinality::Required && !message.has_field(&field) {
            let where_ = if path.is_empty() {
                "the top level of the file".to_string()
            } else {
                format!("this {}", descriptor.name())
            };
            let position = if path.is_empty() {
                None
            } else {
                spans.value_position(path)
            };
            out.push(Diagnostic::error(
                file,
                position,
                format!(
                    "missing required field '{}' in {}: add it to {where_}",
                    field.name(),
                    descriptor.name()
                ),
            ));
            continue;
        }

        if !matches!(field.kind(), Kind::Message(_)) || !message.has_field(&field) {
            continue;
        }
        match message.get_field(&field).as_ref() {
            Value::Message(child) => find_missing_required(child, &child_path(0), spans, file, out),
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Message(child) = item {
                        find_missing_required(child, &child_path(i), spans, file, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Extracts `a` and `b` from text shaped like `<before>a<middle>b'`.
fn quoted_pair(text: &str, before: &str, middle: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix(before)?;
    let (first, rest) = rest.split_once(middle)?;
    let second = rest.strip_suffix('\'')?;
    Some((first.to_string(), second.to_string()))
}

/// Drops the package from a full message or enum name, keeping nesting:
/// `seesaw.config.Host.Status` becomes `Host.Status`.
fn short_name(full: &str) -> &str {
    full.strip_prefix("seesaw.config.").unwrap_or(full)
}

/// Returns the candidate closest to `word` when it is close enough to be a
/// likely typo: at most two edits, or a plural or case difference.
pub(crate) fn closest_name<'a>(word: &str, candidates: &'a [String]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(distance, c)| *distance <= 2.min(c.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ParsedCluster, Rejected> {
        parse_cluster_text(Path::new("cluster.pb"), text)
    }

    fn error_of(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const MINIMAL: &str = "seesaw_vip: < fqdn: \"vip.\" status: PRODUCTION >\n";

    #[test]
    fn accepts_every_bracket_style() {
        let text = "seesaw_vip < fqdn: 'vip.' status: PRODUCTION >\nnode: { fqdn: \"a\" ipv4: \"10.0.0.1/24\" },\nnode < fqdn: \"b\" >;\n# comment\nvserver: [< name: \"v\" entry_address < fqdn: \"e\" > rp: \"r\" >]\n";
        let parsed = parse(text).unwrap();
        assert_eq!(parsed.message.node.len(), 2);
        assert_eq!(parsed.message.vserver[0].name, "v");
        assert_eq!(
            parsed.message.seesaw_vip.status,
            Some(pb::host::Status::Production as i32)
        );
    }

    #[test]
    fn defaults_come_through_accessors() {
        let parsed = parse(MINIMAL).unwrap();
        assert_eq!(parsed.message.vmac(), "00:00:5E:00:01:01");
        assert_eq!(parsed.message.bgp_local_asn(), 64512);
        assert_eq!(parsed.message.bgp_remote_asn(), 0);
    }

    #[test]
    fn missing_required_nested_field() {
        let text = format!("{MINIMAL}vserver: <\n  name: \"v\"\n  rp: \"r\"\n>\n");
        assert_eq!(
            error_of(&text),
            "cluster.pb:2:10: missing required field 'entry_address' in Vserver: add it to this Vserver"
        );
    }

    #[test]
    fn missing_required_top_level_field() {
        assert_eq!(
            error_of("node: < fqdn: \"a\" >\n"),
            "cluster.pb: missing required field 'seesaw_vip' in Cluster: add it to the top level of the file"
        );
    }

    #[test]
    fn unknown_field_suggests_spelling() {
        let text = format!("{MINIMAL}vserver: <\n  name: \"v\"\n  backends: < >\n>\n");
        assert_eq!(
            error_of(&text),
            "cluster.pb:4:3: unknown field 'backends' in Vserver: did you mean 'backend'?"
        );
    }

    #[test]
    fn misplaced_field_points_at_bracket() {
        let text = format!("{MINIMAL}vserver: <\n  name: \"v\"\n  >\n>\nbackend: <\n>\n");
        let error = error_of(&text);
        assert!(error.starts_with("cluster.pb:5:1: "), "{error}");
        assert!(
            error.contains("'>'") || error.contains("expected"),
            "{error}"
        );
    }

    #[test]
    fn missing_bracket_names_open_message() {
        let text = format!(
            "{MINIMAL}vserver: <\n  name: \"v\"\n  entry_address: <\n    fqdn: \"e\"\n  rp: \"r\"\n>\n"
        );
        assert_eq!(
            error_of(&text),
            "cluster.pb:6:3: field 'rp' belongs in Vserver, not in Host: the 'entry_address' message that starts at line 4 is not closed; add '>' or '}' before line 6"
        );
    }

    #[test]
    fn unclosed_at_end_names_message() {
        let text = format!("{MINIMAL}metadata: <\n  last_updated: 1\n");
        let error = error_of(&text);
        assert!(
            error.contains("the 'metadata' message that starts at line 2 is not closed"),
            "{error}"
        );
    }

    #[test]
    fn bad_enum_lists_valid_values() {
        let error = error_of("seesaw_vip: < fqdn: \"v\" status: PRODUCTON >\n");
        assert_eq!(
            error,
            "cluster.pb:1:33: 'PRODUCTON' is not a valid Host.Status: did you mean PRODUCTION? (valid values: PRODUCTION, TESTING, BUILDING, STANDBY, FAILURE, DISABLED, PROPOSED)"
        );
    }

    #[test]
    fn unclosed_message() {
        let error = error_of("seesaw_vip: < fqdn: \"v\"\n");
        assert!(error.starts_with("cluster.pb:1:"), "{error}");
        assert!(error.contains("is not closed"), "{error}");
    }

    #[test]
    fn field_set_twice() {
        let error = error_of("seesaw_vip: < fqdn: \"v\" fqdn: \"w\" >\n");
        assert!(error.contains("'fqdn' is set twice"), "{error}");
    }

    #[test]
    fn closest_name_thresholds() {
        let names: Vec<String> = ["backend", "vserver_entry", "name"]
            .map(String::from)
            .to_vec();
        assert_eq!(closest_name("backends", &names), Some("backend"));
        assert_eq!(
            closest_name("vserver_entrys", &names),
            Some("vserver_entry")
        );
        assert_eq!(closest_name("zzz", &names), None);
    }
}
