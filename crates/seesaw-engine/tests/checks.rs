//! The check manager's per-vserver updates: probe ids that survive a
//! takeover, and DSR/TUN marks when the pool runs out.

use std::collections::BTreeMap;

use seesaw_config::model::{HealthcheckMode, HealthcheckType};
use seesaw_engine::checks::{CheckChanges, CheckConfig, CheckKey, CheckManager, Subscriber};
use seesaw_engine::marks::MarkPool;

mod common;

use common::check;

/// Returns a DSR check of VIP 192.0.2.1 for each backend.
fn dsr_checks(backends: &[&str]) -> BTreeMap<CheckKey, CheckConfig> {
    let config = CheckConfig::from(&check(
        "dsr",
        HealthcheckType::Tcp,
        HealthcheckMode::Dsr,
        80,
    ));
    backends
        .iter()
        .map(|backend| {
            let key = CheckKey {
                vip: Some("192.0.2.1".parse().unwrap()),
                backend: backend.parse().unwrap(),
                service_port: 0,
                service_protocol: None,
                mode: HealthcheckMode::Dsr,
                check_type: HealthcheckType::Tcp,
                check_port: 80,
                name: "dsr".to_string(),
            };
            (key, config.clone())
        })
        .collect()
}

#[test]
fn starved_check_gets_mark_on_next_update() {
    let mut manager = CheckManager::with_marks(1, MarkPool::new(100, 2));
    let first = dsr_checks(&["10.0.0.1", "10.0.0.2"]);
    let second = dsr_checks(&["10.0.0.3"]);
    let both = BTreeMap::from([
        ("a".to_string(), Some(&first)),
        ("b".to_string(), Some(&second)),
    ]);
    let changes = manager.update(&both);
    assert_eq!(changes.started.len(), 2);
    assert_eq!(changes.mark_services.len(), 2);
    let warnings: Vec<&String> = manager.warnings().collect();
    assert_eq!(warnings, ["b: check dsr not run: no free DSR/TUN marks"]);

    // The marks of a removed vserver return to the pool after the update,
    // so the starved check still finds none in this one.
    let changes = manager.update(&BTreeMap::from([("a".to_string(), None)]));
    assert_eq!(changes.stopped, vec![1, 2]);
    assert!(changes.started.is_empty());
    assert_eq!(manager.warnings().count(), 1);

    // Any later update tries it again; it takes the first mark freed.
    let changes = manager.update(&BTreeMap::new());
    assert_eq!(changes.started.len(), 1);
    assert_eq!(changes.started[0].id, 3);
    assert_eq!(changes.started[0].mark, 100);
    assert_eq!(manager.warnings().count(), 0);
    let subscribers: Vec<&Subscriber> = manager.subscribers(3).collect();
    assert_eq!(subscribers.len(), 1);
    assert_eq!(subscribers[0].0, "b");
}

#[test]
fn probe_keeps_id_when_taken_over() {
    let mut manager = CheckManager::new(1);
    let checks = dsr_checks(&["10.0.0.1"]);
    manager.update(&BTreeMap::from([("a".to_string(), Some(&checks))]));
    let mark = manager.probes().next().unwrap().mark;

    // "a" drops the check as "b" takes it up in the same update.
    let changes = manager.update(&BTreeMap::from([
        ("a".to_string(), None),
        ("b".to_string(), Some(&checks)),
    ]));
    assert_eq!(changes, CheckChanges::default());
    let probe = manager.probes().next().unwrap();
    assert_eq!((probe.id, probe.mark), (1, mark));
    let subscribers: Vec<&Subscriber> = manager.subscribers(1).collect();
    assert_eq!(subscribers.len(), 1);
    assert_eq!(subscribers[0].0, "b");
}
