//! The iptables rules of virtual servers. The registry records which
//! virtual server has which rules. A single change runs one iptables
//! process per rule, and a batch changes many virtual servers with one
//! `iptables-save` and one `iptables-restore` per address family.
//!
//! A batch has the effect of its changes applied one at a time, in order.
//! Rules are added only when missing, and every copy of a deleted rule
//! goes. Rules that another virtual server still has stay, and so do the
//! ICMP ACCEPT and REJECT of an address while a port rule on it remains.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Instant;

use crate::error::Result;
use crate::iptables::{self, Family, RestoreInput, Rule, RuleSet};
use crate::ops::{LbConfig, Ncc};

/// Whether a change installs or removes a virtual server's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Delete,
}

/// The rules of one virtual server at one address, to add or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesChange {
    pub action: Action,
    pub vserver: String,
    pub address: IpAddr,
    pub rules: Vec<Rule>,
}

impl RulesChange {
    /// Builds the rules of virtual server `vserver` at `address`; fails for
    /// a NAT entry without a cluster VIP of the address's family.
    pub fn new(
        action: Action,
        lb: &LbConfig,
        vserver: &str,
        address: IpAddr,
        fwmark: u32,
        entries: &[iptables::Entry],
    ) -> Result<Self> {
        let family = Family::of(address);
        let rules = iptables::vserver_rules(address, cluster_vip(lb, family), fwmark, entries)?;
        Ok(Self {
            action,
            vserver: vserver.to_owned(),
            address,
            rules,
        })
    }

    /// Names the change's object for messages: `virtual server web at
    /// 192.0.2.10`.
    pub fn object(&self) -> String {
        format!("virtual server {} at {}", self.vserver, self.address)
    }
}

/// Returns the cluster VIP of `family`, the source address of SNAT.
fn cluster_vip(lb: &LbConfig, family: Family) -> Option<IpAddr> {
    match family {
        Family::V4 => lb.cluster_v4.map(IpAddr::V4),
        Family::V6 => lb.cluster_v6,
    }
}

/// The rules of each virtual server address added since the last LB
/// interface init, by virtual server name and address, with a count of
/// the entries that have each rule.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    rules: BTreeMap<(String, IpAddr), Vec<Rule>>,
    holders: HashMap<Rule, usize>,
}

/// The rules to delete for one virtual server.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// Rules that no other virtual server has, other than the two below.
    pub own: Vec<Rule>,
    /// The ICMP ACCEPT and REJECT of the address, unless another recorded
    /// virtual server on the address has them. They go only when no port
    /// rule on the address remains in the kernel.
    pub shared: Vec<Rule>,
}

impl Registry {
    pub fn clear(&mut self) {
        self.rules.clear();
        self.holders.clear();
    }

    /// Records the rules of `vserver` at `address`, replacing earlier ones.
    pub fn insert(&mut self, vserver: &str, address: IpAddr, rules: Vec<Rule>) {
        let key = (vserver.to_owned(), address);
        if let Some(old) = self.rules.remove(&key) {
            self.forget(&old);
        }
        for rule in &rules {
            *self.holders.entry(rule.clone()).or_insert(0) += 1;
        }
        self.rules.insert(key, rules);
    }

    /// Forgets the rules of `vserver` at `address` and returns which of
    /// `rules`, the rules the delete request names, no other recorded
    /// virtual server has.
    pub fn remove(&mut self, vserver: &str, address: IpAddr, rules: &[Rule]) -> Removal {
        if let Some(old) = self.rules.remove(&(vserver.to_owned(), address)) {
            self.forget(&old);
        }
        let deleted: Vec<&Rule> = rules.iter().filter(|rule| !self.has(rule)).collect();
        let shared = iptables::address_rules(address);
        let own = deleted
            .iter()
            .filter(|rule| !shared.contains(rule))
            .map(|rule| (*rule).clone())
            .collect();
        let shared = if deleted.iter().any(|rule| shared.contains(rule)) {
            shared
        } else {
            Vec::new()
        };
        Removal { own, shared }
    }

    /// Tells whether a recorded virtual server has `rule`.
    pub fn has(&self, rule: &Rule) -> bool {
        self.holders.get(rule).is_some_and(|count| *count > 0)
    }

    fn forget(&mut self, rules: &[Rule]) {
        for rule in rules {
            if let Some(count) = self.holders.get_mut(rule) {
                *count -= 1;
                if *count == 0 {
                    self.holders.remove(rule);
                }
            }
        }
    }
}

/// The restore input of a batch for one address family, and the changes
/// that cannot apply.
#[derive(Debug, Default)]
pub struct Plan {
    pub input: RestoreInput,
    /// Changes rejected before iptables runs, by batch index.
    pub rejected: Vec<(usize, String)>,
}

/// Plans `changes` (batch index and change, all of one address family) in
/// order against the rules in the kernel and the registry, updating both
/// as the changes would.
pub fn plan(
    changes: &[(usize, &RulesChange)],
    kernel: &mut RuleSet,
    registry: &mut Registry,
) -> Plan {
    let mut plan = Plan::default();
    for &(index, change) in changes {
        match change.action {
            Action::Add => plan_add(index, change, kernel, registry, &mut plan),
            Action::Delete => plan_delete(index, change, kernel, registry, &mut plan.input),
        }
    }
    plan
}

fn plan_add(
    index: usize,
    change: &RulesChange,
    kernel: &mut RuleSet,
    registry: &mut Registry,
    plan: &mut Plan,
) {
    if let Some(rule) = change
        .rules
        .iter()
        .find(|rule| !kernel.has_chain(rule.chain))
    {
        let mut error = format!(
            "chain {} of table {} does not exist; InitLbInterface creates it",
            rule.chain.name, rule.chain.table
        );
        if Family::of(change.address) == Family::V6 && rule.chain.table == "nat" {
            error.push_str(", and IPv6 NAT needs the ip6table_nat kernel module");
        }
        plan.rejected.push((index, error));
        return;
    }
    for rule in &change.rules {
        if kernel.add_if_missing(rule) {
            plan.input.add(rule, index);
        }
    }
    registry.insert(&change.vserver, change.address, change.rules.clone());
}

fn plan_delete(
    index: usize,
    change: &RulesChange,
    kernel: &mut RuleSet,
    registry: &mut Registry,
    input: &mut RestoreInput,
) {
    let removal = registry.remove(&change.vserver, change.address, &change.rules);
    let mut delete = |rule: &Rule, kernel: &mut RuleSet| {
        for number in kernel.remove_all(rule) {
            input.delete(rule.chain, number, index);
        }
    };
    for rule in &removal.own {
        delete(rule, kernel);
    }
    if removal.shared.is_empty() {
        return;
    }
    if kernel.address_in_use(change.address) {
        tracing::info!(
            "keeping the ICMP and REJECT rules of {}: another virtual server still uses it",
            change.address
        );
        return;
    }
    for rule in &removal.shared {
        delete(rule, kernel);
    }
}

impl Ncc {
    /// Applies one change with one iptables process per rule check, add
    /// and delete. A delete keeps the rules that another virtual server
    /// still needs: its identical rules, and the ICMP ACCEPT and REJECT of
    /// an address that another virtual server still uses.
    pub async fn apply_rules_change(&self, change: &RulesChange) -> Result<()> {
        let family = Family::of(change.address);
        if change.action == Action::Add {
            for rule in &change.rules {
                self.iptables.add_rule(family, rule).await?;
            }
            self.vserver_rules.lock().unwrap().insert(
                &change.vserver,
                change.address,
                change.rules.clone(),
            );
            return Ok(());
        }

        // NOTE: after an NCC restart the registry is empty until the next
        // init, so a port rule shared with another virtual server is
        // deleted here.
        let removal = self.vserver_rules.lock().unwrap().remove(
            &change.vserver,
            change.address,
            &change.rules,
        );
        for rule in &removal.own {
            self.iptables.delete_rule(family, rule).await?;
        }
        if removal.shared.is_empty() {
            return Ok(());
        }
        // A virtual server added before the NCC restarted is not in memory,
        // but its port rules are still in SEESAW-INPUT.
        let saved = iptables::parse_save(&self.iptables.save(family).await?);
        if iptables::address_in_use(&saved, change.address) {
            tracing::info!(
                "keeping the ICMP and REJECT rules of {}: another virtual server still uses it",
                change.address
            );
            return Ok(());
        }
        for rule in &removal.shared {
            self.iptables.delete_rule(family, rule).await?;
        }
        Ok(())
    }

    /// Applies a batch of changes in order and returns the error of each
    /// change that failed, by batch index. An entry that is already an
    /// error (an invalid request) is reported as it is; a failed change
    /// does not stop the others.
    pub async fn apply_vserver_rules(
        &self,
        changes: &[Result<RulesChange>],
    ) -> BTreeMap<usize, String> {
        let mut failures = BTreeMap::new();
        for (index, change) in changes.iter().enumerate() {
            if let Err(error) = change {
                failures.insert(index, error.to_string());
            }
        }
        for family in [Family::V4, Family::V6] {
            let of_family: Vec<(usize, &RulesChange)> = changes
                .iter()
                .enumerate()
                .filter_map(|(index, change)| change.as_ref().ok().map(|change| (index, change)))
                .filter(|(_, change)| Family::of(change.address) == family)
                .collect();
            if !of_family.is_empty() {
                self.apply_family(family, &of_family, &mut failures).await;
            }
        }
        for (index, error) in &failures {
            tracing::error!("iptables change {index} of the batch failed: {error}");
        }
        failures
    }

    /// Applies the changes of one address family: reads the rules with
    /// `iptables-save`, plans the changes and applies the plan with one
    /// `iptables-restore`. When iptables-restore rejects the line of one
    /// change, that change fails and the rest is planned again from a new
    /// `iptables-save`, because the tables before the failed one were
    /// committed. A failure that names no change's line makes the
    /// remaining changes apply one rule at a time.
    async fn apply_family(
        &self,
        family: Family,
        changes: &[(usize, &RulesChange)],
        failures: &mut BTreeMap<usize, String>,
    ) {
        loop {
            let pending: Vec<(usize, &RulesChange)> = changes
                .iter()
                .filter(|(index, _)| !failures.contains_key(index))
                .copied()
                .collect();
            if pending.is_empty() {
                return;
            }

            let started = Instant::now();
            let saved = match self.iptables.save(family).await {
                Ok(saved) => saved,
                Err(error) => {
                    for (index, change) in pending {
                        failures.insert(index, format!("{}: {error}", change.object()));
                    }
                    return;
                }
            };
            let saved_after = started.elapsed();
            let mut kernel = RuleSet::from_save(family, &saved);
            let mut registry = self.vserver_rules.lock().unwrap().clone();
            let plan = plan(&pending, &mut kernel, &mut registry);
            for (index, error) in plan.rejected {
                let change = changes.iter().find(|(at, _)| *at == index).unwrap().1;
                failures.insert(index, format!("{}: {error}", change.object()));
            }
            if plan.input.is_empty() {
                *self.vserver_rules.lock().unwrap() = registry;
                return;
            }

            let script = plan.input.script();
            let planned_after = started.elapsed();
            let program = format!("{}-restore", family.program());
            let outcome = match self.iptables.restore(family, &script.text).await {
                Ok(outcome) if outcome.success => {
                    let elapsed = started.elapsed();
                    tracing::info!(
                        "applied {} iptables changes of {} virtual servers with one {program} in {:.3} s ({:.3} s to save, {:.3} s to plan, {:.3} s to restore)",
                        script.entries.iter().flatten().count(),
                        pending.len(),
                        elapsed.as_secs_f64(),
                        saved_after.as_secs_f64(),
                        (planned_after - saved_after).as_secs_f64(),
                        (elapsed - planned_after).as_secs_f64(),
                    );
                    *self.vserver_rules.lock().unwrap() = registry;
                    return;
                }
                Ok(outcome) => outcome,
                Err(error) => {
                    for (index, change) in pending {
                        failures
                            .entry(index)
                            .or_insert_with(|| format!("{}: {error}", change.object()));
                    }
                    return;
                }
            };

            let line = iptables::failed_line(&outcome.stderr);
            let Some(index) = line.and_then(|number| script.entry_of_line(number)) else {
                tracing::warn!(
                    "{program} failed ({}): {}; applying the {} changes one rule at a time",
                    outcome.status,
                    outcome.stderr,
                    pending.len()
                );
                self.apply_one_by_one(&pending, failures).await;
                return;
            };
            let change = changes.iter().find(|(at, _)| *at == index).unwrap().1;
            let rule = line.and_then(|number| script.line(number)).unwrap_or("");
            failures.insert(
                index,
                format!(
                    "{}: `{program}` rejected `{rule}` ({}): {}",
                    change.object(),
                    outcome.status,
                    outcome.stderr
                ),
            );
        }
    }

    /// Applies each change with the commands of [`Ncc::apply_rules_change`].
    async fn apply_one_by_one(
        &self,
        changes: &[(usize, &RulesChange)],
        failures: &mut BTreeMap<usize, String>,
    ) {
        for &(index, change) in changes {
            if failures.contains_key(&index) {
                continue;
            }
            if let Err(error) = self.apply_rules_change(change).await {
                failures.insert(index, format!("{}: {error}", change.object()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iptables::{Entry, Mode, address_rules};

    fn lb() -> LbConfig {
        LbConfig {
            name: "eth1".to_owned(),
            dummy: "dummy0".to_owned(),
            node_interface: "eth0".to_owned(),
            node_v4: Some("192.0.2.5".parse().unwrap()),
            node_v6: None,
            cluster_v4: Some("192.0.2.2".parse().unwrap()),
            cluster_v6: None,
            table: 2,
            vrid: 60,
            use_vmac: false,
        }
    }

    fn change(action: Action, vserver: &str, address: &str, ports: &[u16]) -> RulesChange {
        let entries: Vec<Entry> = ports
            .iter()
            .map(|port| Entry {
                protocol: 6,
                port: *port,
                mode: Mode::Dsr,
            })
            .collect();
        RulesChange::new(
            action,
            &lb(),
            vserver,
            address.parse().unwrap(),
            0,
            &entries,
        )
        .unwrap()
    }

    /// `iptables-save` right after InitLbInterface (iptables 1.8.9,
    /// nf_tables), without the mangle and nat tables' other chains.
    const INIT: &str = "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:SEESAW-OUTPUT - [0:0]
:SEESAW-PREROUTING - [0:0]
-A PREROUTING -j SEESAW-PREROUTING
-A OUTPUT -j SEESAW-OUTPUT
-A SEESAW-OUTPUT -j NOTRACK
-A SEESAW-PREROUTING -d 192.0.2.2/32 -j ACCEPT
-A SEESAW-PREROUTING -j NOTRACK
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:SEESAW-PREROUTING - [0:0]
-A PREROUTING -j SEESAW-PREROUTING
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:SEESAW-POSTROUTING - [0:0]
-A POSTROUTING -j SEESAW-POSTROUTING
COMMIT
*filter
:INPUT ACCEPT [0:0]
:SEESAW-INPUT - [0:0]
-A INPUT -j SEESAW-INPUT
-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT
COMMIT
";

    fn planned(saved: &str, changes: &[RulesChange], registry: &mut Registry) -> Plan {
        let indexed: Vec<(usize, &RulesChange)> = changes.iter().enumerate().collect();
        let mut kernel = RuleSet::from_save(Family::V4, saved);
        plan(&indexed, &mut kernel, registry)
    }

    #[test]
    fn adds_become_inserts_and_appends() {
        let changes = [change(Action::Add, "web", "192.0.2.10", &[80])];

        let plan = planned(INIT, &changes, &mut Registry::default());

        assert_eq!(
            plan.input.script().text,
            "*filter
-I SEESAW-INPUT 1 -p tcp -d 192.0.2.10/32 --dport 80 -j ACCEPT
-I SEESAW-INPUT 1 -p icmp -d 192.0.2.10/32 -j ACCEPT
-A SEESAW-INPUT -d 192.0.2.10/32 -j REJECT
COMMIT
"
        );
        assert!(plan.rejected.is_empty());
    }

    #[test]
    fn existing_rules_not_added_again() {
        let saved = INIT.replace(
            "-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT\n",
            "-A SEESAW-INPUT -d 192.0.2.10/32 -p icmp -j ACCEPT
-A SEESAW-INPUT -d 192.0.2.10/32 -p tcp -m tcp --dport 80 -j ACCEPT
-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT
-A SEESAW-INPUT -d 192.0.2.10/32 -j REJECT --reject-with icmp-port-unreachable
",
        );
        let changes = [
            change(Action::Add, "web", "192.0.2.10", &[80]),
            change(Action::Add, "web-tls", "192.0.2.10", &[80, 443]),
        ];

        let plan = planned(&saved, &changes, &mut Registry::default());

        assert_eq!(
            plan.input.script().text,
            "*filter\n-I SEESAW-INPUT 1 -p tcp -d 192.0.2.10/32 --dport 443 -j ACCEPT\nCOMMIT\n"
        );
    }

    #[test]
    fn batch_twice_plans_nothing() {
        let changes = [
            change(Action::Add, "web", "192.0.2.10", &[80]),
            change(Action::Add, "dns", "192.0.2.11", &[53]),
        ];
        let mut registry = Registry::default();
        let mut kernel = RuleSet::from_save(Family::V4, INIT);
        let indexed: Vec<(usize, &RulesChange)> = changes.iter().enumerate().collect();
        plan(&indexed, &mut kernel, &mut registry);

        let again = plan(&indexed, &mut kernel, &mut registry);

        assert!(again.input.is_empty());
    }

    #[test]
    fn delete_keeps_rules_of_other_vserver() {
        let changes = [
            change(Action::Add, "web", "192.0.2.10", &[80]),
            change(Action::Add, "web-tls", "192.0.2.10", &[80, 443]),
            change(Action::Delete, "web", "192.0.2.10", &[80]),
            change(Action::Delete, "web-tls", "192.0.2.10", &[80, 443]),
        ];
        let mut registry = Registry::default();

        let first_three = planned(INIT, &changes[..3], &mut registry);
        let deletes = text_lines(&first_three, "-D");
        assert!(deletes.is_empty(), "{deletes:?}");

        let all = planned(INIT, &changes, &mut Registry::default());
        // The chain is then 443, ICMP, 80, ECU port, REJECT; port 80 goes
        // first, then 443, ICMP and REJECT.
        assert_eq!(
            text_lines(&all, "-D"),
            [
                "-D SEESAW-INPUT 3",
                "-D SEESAW-INPUT 1",
                "-D SEESAW-INPUT 1",
                "-D SEESAW-INPUT 2",
            ]
        );
    }

    fn text_lines(plan: &Plan, prefix: &str) -> Vec<String> {
        let text = plan.input.script().text;
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn delete_after_restart_keeps_shared_rules_in_use() {
        // The registry is empty, as after an NCC restart; the kernel still
        // has two virtual servers' port rules on the address.
        let saved = INIT.replace(
            "-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT\n",
            "-A SEESAW-INPUT -d 192.0.2.10/32 -p icmp -j ACCEPT
-A SEESAW-INPUT -d 192.0.2.10/32 -p tcp -m tcp --dport 8080 -j ACCEPT
-A SEESAW-INPUT -d 192.0.2.10/32 -p tcp -m tcp --dport 80 -j ACCEPT
-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT
-A SEESAW-INPUT -d 192.0.2.10/32 -j REJECT --reject-with icmp-port-unreachable
",
        );
        let web = [change(Action::Delete, "web", "192.0.2.10", &[80])];
        let both = [
            change(Action::Delete, "web", "192.0.2.10", &[80]),
            change(Action::Delete, "web-8080", "192.0.2.10", &[8080]),
        ];

        let plan = planned(&saved, &web, &mut Registry::default());
        assert_eq!(text_lines(&plan, "-D"), ["-D SEESAW-INPUT 3"]);

        let plan = planned(&saved, &both, &mut Registry::default());
        assert_eq!(text_lines(&plan, "-D").len(), 4);
    }

    #[test]
    fn delete_of_missing_rules_plans_nothing() {
        let changes = [change(Action::Delete, "web", "192.0.2.10", &[80])];

        let plan = planned(INIT, &changes, &mut Registry::default());

        assert!(plan.input.is_empty());
    }

    #[test]
    fn every_copy_deleted() {
        let saved = INIT.replace(
            "-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT\n",
            "-A SEESAW-INPUT -d 192.0.2.10/32 -p tcp -m tcp --dport 80 -j ACCEPT
-A SEESAW-INPUT -d 192.0.2.10/32 -p tcp -m tcp --dport 80 -j ACCEPT
",
        );
        let changes = [change(Action::Delete, "web", "192.0.2.10", &[80])];

        let plan = planned(&saved, &changes, &mut Registry::default());

        assert_eq!(
            text_lines(&plan, "-D"),
            ["-D SEESAW-INPUT 2", "-D SEESAW-INPUT 1"]
        );
    }

    #[test]
    fn add_to_missing_chain_rejected() {
        let saved = INIT.replace(":SEESAW-POSTROUTING - [0:0]\n", "");
        let nat = RulesChange::new(
            Action::Add,
            &lb(),
            "dns",
            "192.0.2.20".parse().unwrap(),
            0,
            &[Entry {
                protocol: 17,
                port: 53,
                mode: Mode::Nat,
            }],
        )
        .unwrap();
        let changes = [nat, change(Action::Add, "web", "192.0.2.10", &[80])];
        let mut registry = Registry::default();

        let plan = planned(&saved, &changes, &mut registry);

        assert_eq!(plan.rejected.len(), 1);
        assert_eq!(plan.rejected[0].0, 0);
        assert!(
            plan.rejected[0].1.contains("SEESAW-POSTROUTING"),
            "{:?}",
            plan.rejected
        );
        assert!(!plan.input.script().text.contains("192.0.2.20"));
        assert!(plan.input.script().text.contains("192.0.2.10"));
        let web = &changes[1].rules;
        assert!(registry.has(&web[0]));
        assert!(!registry.has(&changes[0].rules[0]));
    }

    #[test]
    fn shared_address_rules_kept_for_other_vserver() {
        let web = change(Action::Add, "web", "192.0.2.10", &[80]);
        let dns = change(Action::Add, "dns", "192.0.2.10", &[53]);
        let mut registry = Registry::default();
        registry.insert(&web.vserver, web.address, web.rules.clone());
        registry.insert(&dns.vserver, dns.address, dns.rules.clone());

        let removal = registry.remove("web", web.address, &web.rules);

        assert_eq!(removal.own, web.rules[..1]);
        assert!(removal.shared.is_empty());
    }

    #[test]
    fn last_vserver_on_address_deletes_all() {
        let address: IpAddr = "192.0.2.10".parse().unwrap();
        let web = change(Action::Add, "web", "192.0.2.10", &[80]);
        let other = change(Action::Add, "web", "192.0.2.11", &[80]);
        let mut registry = Registry::default();
        registry.insert(&web.vserver, web.address, web.rules.clone());
        registry.insert(&other.vserver, other.address, other.rules.clone());

        let removal = registry.remove("web", address, &web.rules);

        assert_eq!(removal.own, web.rules[..1]);
        assert_eq!(removal.shared, address_rules(address));
        assert!(registry.has(&other.rules[0]));
    }

    #[test]
    fn same_name_in_two_families_kept_apart() {
        let v4 = change(Action::Add, "web", "192.0.2.10", &[80]);
        let v6 = change(Action::Add, "web", "2001:db8::10", &[80]);
        let web2 = change(Action::Add, "web2", "192.0.2.10", &[80]);
        let mut registry = Registry::default();
        for change in [&v4, &v6, &web2] {
            registry.insert(&change.vserver, change.address, change.rules.clone());
        }

        let removal = registry.remove("web2", web2.address, &web2.rules);

        assert_eq!(removal, Removal::default());
        assert!(registry.has(&v4.rules[0]));
    }

    #[test]
    fn reinsert_replaces_rules() {
        let old = change(Action::Add, "web", "192.0.2.10", &[80]);
        let new = change(Action::Add, "web", "192.0.2.10", &[443]);
        let mut registry = Registry::default();
        registry.insert(&old.vserver, old.address, old.rules.clone());
        registry.insert(&new.vserver, new.address, new.rules.clone());

        assert!(!registry.has(&old.rules[0]));
        assert!(registry.has(&new.rules[0]));
        assert!(registry.has(&address_rules(old.address)[0]));
    }
}
