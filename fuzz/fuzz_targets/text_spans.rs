//! Builds the span index of arbitrary text. It must never panic, because
//! the parser builds it before checking whether the text is valid.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    seesaw_config_fuzz::text_spans(text);
});
