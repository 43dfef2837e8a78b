//! Fixtures shared by the engine's state machine tests.

// Each test binary uses only some of these.
#![allow(dead_code)]

pub mod fake_node;

use std::time::Duration;

use seesaw_config::model::{Healthcheck, HealthcheckMode, HealthcheckType};

pub fn check(
    name: &str,
    check_type: HealthcheckType,
    mode: HealthcheckMode,
    port: u16,
) -> Healthcheck {
    Healthcheck {
        name: name.to_string(),
        check_type,
        mode,
        port,
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        retries: 0,
        send: String::new(),
        receive: String::new(),
        code: 0,
        method: String::new(),
        proxy: false,
        tls_verify: true,
    }
}
