//! Parses arbitrary text as cluster.pb and, when it parses, derives the
//! typed model with a default node context. Neither step may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    seesaw_config_fuzz::cluster_text(text);
});
