//! Helpers shared by the seesaw.cfg and watchdog.cfg loader tests.

use seesaw_config::{Diagnostic, Rejected};

/// The result of `NodeConfig::parse` and `WatchdogConfig::parse`.
pub type Loaded<T> = Result<(T, Vec<Diagnostic>), Rejected>;

/// Returns the configuration and its warnings as printed, or fails the
/// test with the rejection and the text.
pub fn expect_loaded<T>(text: &str, loaded: Loaded<T>) -> (T, Vec<String>) {
    match loaded {
        Ok((config, warnings)) => (config, warnings.iter().map(ToString::to_string).collect()),
        Err(rejected) => panic!("rejected:\n{rejected}\n--- text ---\n{text}"),
    }
}

/// Returns every finding of a rejection as printed, or fails the test when
/// the text loads.
pub fn expect_rejected<T>(text: &str, loaded: Loaded<T>) -> Vec<String> {
    match loaded {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(rejected) => rejected.0.iter().map(ToString::to_string).collect(),
    }
}

/// Returns the errors of a rejection as printed, without its warnings.
pub fn expect_errors<T>(text: &str, loaded: Loaded<T>) -> Vec<String> {
    match loaded {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(rejected) => rejected
            .0
            .iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect(),
    }
}
