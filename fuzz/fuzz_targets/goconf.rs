//! Reads arbitrary text with the goconf INI reader and the seesaw.cfg and
//! watchdog.cfg loaders built on it. None of them may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    seesaw_config_fuzz::goconf(text);
});
