//! Binary (wire-format) cluster configs, as config servers send them, and
//! the text that a fetched config is saved to cluster.pb as.

mod common;

use std::path::Path;

use prost::Message;
use seesaw_config::check::context_of;
use seesaw_config::cluster::{LoadedCluster, NodeContext, load_cluster_binary, load_cluster_text};
use seesaw_config::cluster_text::{decode_cluster_binary, format_cluster_text, parse_cluster_text};
use seesaw_config::node_config::NodeConfig;
use seesaw_config::pb;

const SOURCE: &str = "https://config.test:10255/config/au-syd (127.0.0.1)";

/// Returns the vsphere-dev fixture's text and the context of its node.
fn fixture() -> (String, NodeContext) {
    let dir = common::fixture_dir();
    let text = std::fs::read_to_string(dir.join("vsphere-dev.pb")).unwrap();
    let (node, _) = NodeConfig::load(dir.join("../ini/vsphere-dev-seesaw.cfg")).unwrap();
    (text, context_of(&node))
}

fn parse(text: &str) -> pb::Cluster {
    parse_cluster_text(Path::new("cluster.pb"), text)
        .unwrap()
        .message
}

fn load_text(text: &str, context: &NodeContext) -> LoadedCluster {
    load_cluster_text(Path::new("cluster.pb"), text, context).unwrap()
}

#[test]
fn binary_loads_like_text() {
    let (text, context) = fixture();
    let bytes = parse(&text).encode_to_vec();

    let from_binary = load_cluster_binary(Path::new(SOURCE), &bytes, &context).unwrap();
    let from_text = load_text(&text, &context);

    assert_eq!(from_binary.cluster, from_text.cluster);
    assert!(!from_binary.cluster.vservers.is_empty());
}

#[test]
fn empty_binary_lacks_seesaw_vip() {
    let error = decode_cluster_binary(Path::new(SOURCE), b"").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{SOURCE}: missing required field 'seesaw_vip' in Cluster: add it to the top level of the file"
        )
    );
}

#[test]
fn binary_nested_required_field() {
    // Field 1 (seesaw_vip), length-delimited, empty: a Host without fqdn.
    let error = decode_cluster_binary(Path::new(SOURCE), &[0x0a, 0x00]).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{SOURCE}: missing required field 'fqdn' in Host: add it to this Host")
    );
}

#[test]
fn garbage_binary_is_invalid() {
    let error = decode_cluster_binary(Path::new(SOURCE), b"<html>not found</html>").unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "{SOURCE}: invalid binary protobuf Cluster (22 bytes): "
        )),
        "{message}"
    );
}

#[test]
fn binary_semantic_error_names_source() {
    let (text, context) = fixture();
    let mut message = parse(&text);
    message.vserver[0].entry_address.ipv4 = Some("not-an-address".to_string());

    let error =
        load_cluster_binary(Path::new(SOURCE), &message.encode_to_vec(), &context).unwrap_err();
    let first = &error.0[0];
    assert!(first.is_error());
    assert_eq!(first.position, None);
    assert!(
        first.to_string().starts_with(&format!("{SOURCE}: ")),
        "{first}"
    );
    assert!(first.message.contains("not-an-address"), "{first}");
}

#[test]
fn formatted_text_loads_back_equal() {
    let (text, context) = fixture();
    let message = parse(&text);

    let formatted = format_cluster_text(&message);
    let reparsed = parse_cluster_text(Path::new("cluster.pb"), &formatted).unwrap();

    assert_eq!(reparsed.message, message);
    assert_eq!(
        load_text(&formatted, &context).cluster,
        load_text(&text, &context).cluster
    );
    assert!(formatted.ends_with('\n'));
}

#[test]
fn formatted_text_keeps_metadata() {
    let (text, context) = fixture();
    let mut message = parse(&text);
    message.metadata = Some(pb::Metadata {
        last_updated: 1_700_000_000,
        attribute: vec![pb::Attribute {
            name: "change".to_string(),
            value: "42".to_string(),
        }],
    });

    let formatted = format_cluster_text(&message);
    let cluster = load_text(&formatted, &context).cluster;

    assert_eq!(cluster.status.last_update, Some(1_700_000_000));
    assert_eq!(
        cluster.status.attributes,
        vec![("change".to_string(), "42".to_string())]
    );
}

#[test]
fn every_fixture_round_trips() {
    let mut checked = 0;
    for (name, text) in common::fixtures() {
        // Some fixtures are deliberately broken or fragments.
        let Ok(parsed) = parse_cluster_text(Path::new(&name), &text) else {
            continue;
        };
        let message = parsed.message;
        checked += 1;

        let decoded = decode_cluster_binary(Path::new(&name), &message.encode_to_vec()).unwrap();
        assert_eq!(decoded, message, "{name}: binary round trip");

        let formatted = format_cluster_text(&message);
        let reparsed = parse_cluster_text(Path::new(&name), &formatted)
            .unwrap_or_else(|error| panic!("{name}: formatted text does not parse: {error}"));
        assert_eq!(reparsed.message, message, "{name}: text round trip");
    }
    assert!(checked >= 5, "only {checked} fixtures parsed");
}
