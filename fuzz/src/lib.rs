//! The code paths that the fuzz targets exercise, one function per target.
//!
//! crates/seesaw-config/tests/fuzz_corpus.rs includes this file too, so the
//! stable test suite replays the committed corpus through exactly these
//! functions without nightly Rust or libFuzzer.

use std::path::Path;

use seesaw_config::cluster::{NodeContext, derive_cluster};
use seesaw_config::cluster_text::parse_cluster_text;
use seesaw_config::goconf::GoConf;
use seesaw_config::node_config::NodeConfig;
use seesaw_config::text_spans::SpanIndex;
use seesaw_config::watchdog_config::WatchdogConfig;

/// Parses `text` as cluster.pb and, when it parses, derives the model for a
/// node with a default context. Formats every diagnostic too, so that their
/// Display code runs.
pub fn cluster_text(text: &str) {
    let file = Path::new("cluster.pb");
    match parse_cluster_text(file, text) {
        Ok(parsed) => {
            let derived = derive_cluster(
                &parsed.message,
                &parsed.spans,
                file,
                &NodeContext::default(),
            );
            match derived {
                Ok(loaded) => {
                    for warning in &loaded.warnings {
                        let _ = warning.to_string();
                    }
                }
                Err(rejected) => {
                    let _ = rejected.to_string();
                }
            }
        }
        Err(rejected) => {
            let _ = rejected.to_string();
        }
    }
}

/// Builds the span index of `text` and queries it, as messages do.
pub fn text_spans(text: &str) {
    let index = SpanIndex::build(text);
    for path in [
        "seesaw_vip[0]",
        "vserver[0].vserver_entry[0].port[0]",
        "a[0].b[1]",
    ] {
        let _ = index.get(path);
        if let Some(position) = index.value_position(path) {
            let _ = index.last_closing_before(position);
        }
        let _ = index.name_position(path);
    }
}

/// Reads `text` with the goconf reader, reads back every option of every
/// section as a string, boolean and integer, and loads it as seesaw.cfg and
/// as watchdog.cfg.
pub fn goconf(text: &str) {
    let (conf, errors) = GoConf::parse_lenient(text);
    for error in &errors {
        let _ = error.to_diagnostic(Path::new("seesaw.cfg")).to_string();
    }
    let _ = GoConf::parse(text);

    for section in conf.sections() {
        let name = section.name();
        for entry in section.entries() {
            let _ = conf.get_string(name, &entry.key);
            let _ = conf.get_bool(name, &entry.key);
            let _ = conf.get_int(name, &entry.key);
            let _ = conf.has_option(name, &entry.key);
            let _ = conf.raw(name, &entry.key);
        }
        let _ = conf.options(name);
    }
    let _ = conf.rem_warnings(Path::new("seesaw.cfg"));

    let _ = NodeConfig::parse("seesaw.cfg", text);
    let _ = WatchdogConfig::parse("watchdog.cfg", text);
}
