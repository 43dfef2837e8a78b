//! Helpers shared by the integration tests: check configurations from JSON
//! and a scheduler whose notifications the test reads.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use seesaw_healthcheck::checker::{CheckContext, CheckResult};
use seesaw_healthcheck::config::{self, CheckConfig, CheckId};
use seesaw_healthcheck::scheduler::Scheduler;
use seesaw_healthcheck::status::{Notification, State};
use seesaw_healthcheck::tls::TlsClients;
use tokio::sync::mpsc;

pub mod netns;

/// Parses one check from the JSON object `check`.
pub fn check_config(check: &str) -> CheckConfig {
    let text = format!(r#"{{"checks": [{check}]}}"#);
    let file = config::parse(Path::new("test.json"), &text).expect("invalid test check");
    file.checks.into_values().next().expect("one check")
}

/// Runs the checker of `config` once with `context`, as the scheduler does.
pub async fn run_once(config: &CheckConfig, context: &CheckContext) -> CheckResult {
    let timeout = config.effective_timeout();
    tokio::time::timeout(timeout, config.checker.check(context, 0))
        .await
        .unwrap_or_else(|_| panic!("{} did not finish in {timeout:?}", config.checker))
}

/// Returns a context that trusts no CA, for checks without verification.
pub fn context() -> CheckContext {
    CheckContext::new(TlsClients::with_roots(rustls::RootCertStore::empty()))
}

/// A scheduler and the receiving end of its notifications.
pub struct Harness {
    pub scheduler: Scheduler,
    pub notifications: mpsc::Receiver<Notification>,
}

impl Harness {
    pub fn new(context: CheckContext) -> Harness {
        let (sender, notifications) = mpsc::channel(100);
        Harness {
            scheduler: Scheduler::new(context, false, sender),
            notifications,
        }
    }

    /// Runs `checks` with ids from 1.
    pub fn apply(&mut self, checks: &[CheckConfig]) {
        let map: BTreeMap<CheckId, CheckConfig> = checks
            .iter()
            .enumerate()
            .map(|(index, config)| (index as CheckId + 1, config.clone()))
            .collect();
        self.scheduler.apply(&map);
    }

    /// Waits up to `limit` for the next notification.
    pub async fn next(&mut self, limit: Duration) -> Notification {
        tokio::time::timeout(limit, self.notifications.recv())
            .await
            .unwrap_or_else(|_| panic!("no notification within {limit:?}"))
            .expect("the scheduler dropped its sender")
    }

    /// Waits up to `limit` for a notification with `state`, and returns it.
    pub async fn expect_state(&mut self, state: State, limit: Duration) -> Notification {
        let notification = self.next(limit).await;
        assert_eq!(
            notification.status.state, state,
            "unexpected notification: {notification:?}"
        );
        notification
    }
}
