//! Batches of rule changes for `iptables-restore --noflush`. A model of our
//! chains, read from `iptables-save`, lists the rules that exist, and the
//! restore input adds and deletes rules in one process.
//!
//! The model plays the part of `iptables -C` and of `-D` repeated until it
//! fails: it keeps the rules of each of our chains in order, so a batch
//! adds only missing rules and deletes every copy of a rule, as the
//! commands one at a time do. Deletes name the rule by its number in the
//! chain (`-D <chain> 7`). iptables-nft-restore (1.8.9) compares a rule
//! given by its options with the chain's rules one by one. Deleting 400
//! rules from a chain of 404 that way took 1.1 s in the kernel lab, eight
//! times as long as adding them. Only our chains are modelled and written
//! to.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use super::key::RuleKey;
use super::{FILTER_INPUT, Family, OWN_CHAINS, OwnChain, Position, Rule, parse_save};

/// The rules of our chains as one `iptables-save` listed them, with the
/// changes planned since.
#[derive(Debug, Clone)]
pub struct RuleSet {
    family: Family,
    /// The rules of each of our chains that exist, in order, ours and any
    /// other, as hashes of their keys. A hash is enough to find a rule's
    /// position once `copies` shows that the rule is there.
    chains: HashMap<OwnChain, VecDeque<u64>>,
    /// Copies of each rule in each of our chains.
    copies: HashMap<(OwnChain, RuleKey), usize>,
    /// Rules of SEESAW-INPUT that accept traffic other than ICMP to one
    /// address, by address.
    service_accepts: HashMap<IpAddr, usize>,
}

impl RuleSet {
    /// Reads the output of `iptables-save` (or `ip6tables-save`).
    pub fn from_save(family: Family, text: &str) -> Self {
        let declared = saved_chains(text);
        let chains = OWN_CHAINS
            .into_iter()
            .filter(|chain| declared.contains(&(chain.table.to_owned(), chain.name.to_owned())))
            .map(|chain| (chain, VecDeque::new()))
            .collect();
        let mut rules = Self {
            family,
            chains,
            copies: HashMap::new(),
            service_accepts: HashMap::new(),
        };
        for saved in parse_save(text) {
            let chain = OWN_CHAINS
                .into_iter()
                .find(|own| own.table == saved.table && own.name == saved.chain);
            if let Some(chain) = chain {
                let key = RuleKey::of(family, &saved.args);
                if let Some(list) = rules.chains.get_mut(&chain) {
                    list.push_back(hash(&key));
                }
                rules.count(chain, key, 1);
            }
        }
        rules
    }

    /// Tells whether `chain` exists; InitLbInterface creates our chains.
    pub fn has_chain(&self, chain: OwnChain) -> bool {
        self.chains.contains_key(&chain)
    }

    /// Tells whether `rule` is in its chain, as `iptables -C` would.
    pub fn contains(&self, rule: &Rule) -> bool {
        self.copies
            .get(&(rule.chain, self.key(rule)))
            .is_some_and(|copies| *copies > 0)
    }

    /// Records that `rule` was added at its position unless it is in its
    /// chain, and returns whether it was missing.
    pub fn add_if_missing(&mut self, rule: &Rule) -> bool {
        let key = self.key(rule);
        let present = self
            .copies
            .get(&(rule.chain, key.clone()))
            .is_some_and(|copies| *copies > 0);
        if present {
            return false;
        }
        if let Some(list) = self.chains.get_mut(&rule.chain) {
            match rule.position {
                Position::First => list.push_front(hash(&key)),
                Position::Last => list.push_back(hash(&key)),
            }
        }
        self.count(rule.chain, key, 1);
        true
    }

    /// Records that every copy of `rule` was deleted and returns their
    /// rule numbers (counted from 1) for `-D <chain> <number>`, in the
    /// order to delete them: from the last, so that each number is still
    /// right when its line runs.
    pub fn remove_all(&mut self, rule: &Rule) -> Vec<usize> {
        let key = self.key(rule);
        let copies = self
            .copies
            .get(&(rule.chain, key.clone()))
            .copied()
            .unwrap_or(0);
        let Some(list) = self.chains.get_mut(&rule.chain) else {
            return Vec::new();
        };
        if copies == 0 {
            return Vec::new();
        }
        let target = hash(&key);
        let positions: Vec<usize> = (0..list.len())
            .rev()
            .filter(|position| list[*position] == target)
            .collect();
        for position in &positions {
            list.remove(*position);
        }
        self.count(rule.chain, key, -(positions.len() as isize));
        positions.into_iter().map(|position| position + 1).collect()
    }

    /// Tells whether SEESAW-INPUT still accepts traffic other than ICMP to
    /// `address`, that is whether a virtual server still uses the address.
    pub fn address_in_use(&self, address: IpAddr) -> bool {
        self.service_accepts
            .get(&address)
            .is_some_and(|count| *count > 0)
    }

    fn key(&self, rule: &Rule) -> RuleKey {
        RuleKey::of(self.family, &rule.args)
    }

    fn count(&mut self, chain: OwnChain, key: RuleKey, change: isize) {
        if chain == FILTER_INPUT
            && let Some(address) = service_accept_address(self.family, &key)
        {
            let count = self.service_accepts.entry(address).or_insert(0);
            *count = count.saturating_add_signed(change);
        }
        let copies = self.copies.entry((chain, key)).or_insert(0);
        *copies = copies.saturating_add_signed(change);
    }
}

/// Hashes a rule key to find its positions in a chain.
fn hash(key: &RuleKey) -> u64 {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Returns the address that a rule of SEESAW-INPUT accepts traffic other
/// than ICMP to, given its key: a port rule of a virtual server, not the
/// ICMP rule every virtual server address has.
pub fn service_accept_address(family: Family, key: &RuleKey) -> Option<IpAddr> {
    let icmp = match family {
        Family::V4 => "1",
        Family::V6 => "58",
    };
    if !key.has("-j", "ACCEPT") || key.value("-p") == Some(icmp) {
        return None;
    }
    key.value("-d")?.parse().ok()
}

/// Lists the chains that `iptables-save` output declares, as (table, chain).
pub fn saved_chains(text: &str) -> BTreeSet<(String, String)> {
    let mut table = "";
    let mut chains = BTreeSet::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim();
        } else if let Some(declaration) = line.strip_prefix(':')
            && let Some(chain) = declaration.split_whitespace().next()
        {
            chains.insert((table.to_owned(), chain.to_owned()));
        }
    }
    chains
}

/// Input for `iptables-restore --noflush`, built one rule change at a time.
/// Each change records the index of the batch entry it belongs to, so a
/// line that iptables-restore rejects can be traced to that entry.
#[derive(Debug, Default)]
pub struct RestoreInput {
    /// Lines per table, tables in the order of their first change.
    tables: Vec<(&'static str, Vec<(String, usize)>)>,
}

/// Restore input as text, with the batch entry of each line.
#[derive(Debug, PartialEq, Eq)]
pub struct RestoreScript {
    pub text: String,
    /// The batch entry of each line, by line number minus one; `None` for
    /// the `*table` and `COMMIT` lines.
    pub entries: Vec<Option<usize>>,
}

impl RestoreScript {
    /// Returns the batch entry of line `number` (counted from 1, as
    /// iptables-restore counts in its errors).
    pub fn entry_of_line(&self, number: usize) -> Option<usize> {
        self.entries.get(number.checked_sub(1)?).copied().flatten()
    }

    /// Returns line `number` (counted from 1).
    pub fn line(&self, number: usize) -> Option<&str> {
        self.text.lines().nth(number.checked_sub(1)?)
    }
}

impl RestoreInput {
    /// Adds `rule` at its position: `-I <chain> 1` or `-A <chain>`.
    pub fn add(&mut self, rule: &Rule, entry: usize) {
        let command = match rule.position {
            Position::First => format!("-I {} 1", rule.chain.name),
            Position::Last => format!("-A {}", rule.chain.name),
        };
        self.push(rule, command, entry);
    }

    /// Deletes rule `number` (counted from 1) of `chain`.
    pub fn delete(&mut self, chain: OwnChain, number: usize, entry: usize) {
        self.push_line(chain.table, format!("-D {} {number}", chain.name), entry);
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    fn push(&mut self, rule: &Rule, command: String, entry: usize) {
        let mut line = command;
        for arg in &rule.args {
            line.push(' ');
            line.push_str(&quote(arg));
        }
        self.push_line(rule.chain.table, line, entry);
    }

    fn push_line(&mut self, table: &'static str, line: String, entry: usize) {
        let position = match self.tables.iter().position(|(name, _)| *name == table) {
            Some(position) => position,
            None => {
                self.tables.push((table, Vec::new()));
                self.tables.len() - 1
            }
        };
        self.tables[position].1.push((line, entry));
    }

    /// Writes the input: per table `*<table>`, its lines and `COMMIT`.
    pub fn script(&self) -> RestoreScript {
        let mut text = String::new();
        let mut entries = Vec::new();
        for (table, lines) in &self.tables {
            text.push_str(&format!("*{table}\n"));
            entries.push(None);
            for (line, entry) in lines {
                text.push_str(line);
                text.push('\n');
                entries.push(Some(*entry));
            }
            text.push_str("COMMIT\n");
            entries.push(None);
        }
        RestoreScript { text, entries }
    }
}

/// Quotes an argument for iptables-restore, which splits lines on spaces
/// and keeps double-quoted words whole. The NCC's own arguments never need
/// it.
fn quote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        return arg.to_owned();
    }
    format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Finds the line number that an iptables-restore error names: `line 5
/// failed`, `line 5: RULE_APPEND failed` or `Error occurred at line: 5`.
pub fn failed_line(stderr: &str) -> Option<usize> {
    let mut rest = stderr;
    while let Some(found) = rest.find("line") {
        rest = &rest[found + "line".len()..];
        let digits: String = rest
            .trim_start_matches(':')
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(number) = digits.parse() {
            return Some(number);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::{Entry, Mode, base_rules, vserver_rules};
    use super::*;

    const LAB_V4: &str = include_str!("../../tests/fixtures/iptables/lab-v4.save");
    const LAB_V6: &str = include_str!("../../tests/fixtures/iptables/lab-v6.save");

    fn web(address: &str, port: u16) -> Vec<Rule> {
        let entries = [Entry {
            protocol: 6,
            port,
            mode: Mode::Dsr,
        }];
        vserver_rules(address.parse().unwrap(), None, 0, &entries).unwrap()
    }

    fn rules_of(
        address: &str,
        cluster_vip: Option<&str>,
        fwmark: u32,
        entries: &[Entry],
    ) -> Vec<Rule> {
        let cluster_vip = cluster_vip.map(|vip| vip.parse().unwrap());
        vserver_rules(address.parse().unwrap(), cluster_vip, fwmark, entries).unwrap()
    }

    const TUN_AND_SCTP: [Entry; 2] = [
        Entry {
            protocol: 6,
            port: 0,
            mode: Mode::Tun,
        },
        Entry {
            protocol: 132,
            port: 9,
            mode: Mode::Dsr,
        },
    ];

    #[test]
    fn lab_rules_found() {
        let rules = RuleSet::from_save(Family::V4, LAB_V4);
        let nat = [Entry {
            protocol: 17,
            port: 53,
            mode: Mode::Nat,
        }];
        let expected = [
            rules_of("10.20.0.6", Some("10.10.0.10"), 0, &nat),
            rules_of("10.20.0.4", None, 0, &TUN_AND_SCTP),
            base_rules(Family::V4, Some("10.10.0.10".parse().unwrap())),
        ];

        for rule in expected.iter().flatten() {
            assert!(rules.contains(rule), "{} missing", rule.text());
        }
    }

    #[test]
    fn lab_mark_rule_found() {
        let rules = RuleSet::from_save(Family::V4, LAB_V4);
        let web = [Entry {
            protocol: 6,
            port: 80,
            mode: Mode::Dsr,
        }];
        let marked = rules_of("192.0.2.10", None, 7, &web);
        let other_mark = rules_of("192.0.2.10", None, 8, &web);

        assert_eq!(marked[1].chain, super::super::MANGLE_PREROUTING);
        assert!(rules.contains(&marked[1]));
        assert!(!rules.contains(&other_mark[1]));
    }

    #[test]
    fn lab_v6_rules_found() {
        let rules = RuleSet::from_save(Family::V6, LAB_V6);
        let expected = [
            rules_of("fd00:20::a", None, 0, &TUN_AND_SCTP),
            base_rules(Family::V6, None),
        ];

        for rule in expected.iter().flatten() {
            assert!(rules.contains(rule), "{} missing", rule.text());
        }
        assert!(rules.address_in_use("fd00:20::a".parse().unwrap()));
    }

    #[test]
    fn missing_rules_and_chains() {
        let mut without_nat = LAB_V4.replace(":SEESAW-POSTROUTING - [0:0]\n", "");
        without_nat = without_nat.replace("-A POSTROUTING -j SEESAW-POSTROUTING\n", "");
        let rules = RuleSet::from_save(Family::V4, &without_nat);

        assert!(!rules.contains(&web("10.20.0.4", 443)[0]));
        assert!(!rules.contains(&web("10.20.0.7", 80)[1]));
        assert!(!rules.has_chain(super::super::NAT_POSTROUTING));
        assert!(rules.has_chain(FILTER_INPUT));
    }

    #[test]
    fn address_in_use_follows_changes() {
        let mut rules = RuleSet::from_save(Family::V4, LAB_V4);
        let address = "10.20.0.6".parse().unwrap();
        let nat = [Entry {
            protocol: 17,
            port: 53,
            mode: Mode::Nat,
        }];
        let port_53 = &rules_of("10.20.0.6", Some("10.10.0.10"), 0, &nat)[0];
        let port_443 = &web("10.20.0.6", 443)[0];

        assert!(rules.address_in_use(address));
        assert_eq!(rules.remove_all(port_53), [2]);
        assert!(!rules.address_in_use(address));
        assert_eq!(rules.remove_all(port_53), []);
        assert!(rules.add_if_missing(port_443));
        assert!(!rules.add_if_missing(port_443));
        assert!(rules.address_in_use(address));
        assert_eq!(rules.remove_all(port_443), [1]);
        assert!(!rules.address_in_use(address));
        assert!(!rules.address_in_use("10.1.0.0".parse().unwrap()));
    }

    #[test]
    fn rule_numbers_follow_changes() {
        let mut rules = RuleSet::from_save(Family::V4, LAB_V4);
        let reject_4 = &web("10.20.0.4", 80)[2];
        let reject_6 = &web("10.20.0.6", 80)[2];
        let port_80 = &web("10.20.0.7", 80)[0];

        // REJECT of 10.20.0.6 is the ninth and last rule of SEESAW-INPUT.
        assert_eq!(rules.remove_all(reject_6), [9]);
        assert!(rules.add_if_missing(port_80));
        assert_eq!(rules.remove_all(reject_4), [9]);
        assert_eq!(rules.remove_all(port_80), [1]);
    }

    #[test]
    fn copies_deleted_from_the_last() {
        let saved = LAB_V4.replace(
            "-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT\n",
            "-A SEESAW-INPUT -d 10.20.0.7/32 -p tcp -m tcp --dport 80 -j ACCEPT
-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT
-A SEESAW-INPUT -d 10.20.0.7/32 -p tcp -m tcp --dport 80 -j ACCEPT
",
        );
        let mut rules = RuleSet::from_save(Family::V4, &saved);

        assert_eq!(rules.remove_all(&web("10.20.0.7", 80)[0]), [8, 6]);
        assert!(!rules.contains(&web("10.20.0.7", 80)[0]));
    }

    #[test]
    fn script_groups_lines_by_table() {
        let nat = vserver_rules(
            "192.0.2.20".parse().unwrap(),
            Some("192.0.2.2".parse().unwrap()),
            0,
            &[Entry {
                protocol: 17,
                port: 53,
                mode: Mode::Nat,
            }],
        )
        .unwrap();
        let mut input = RestoreInput::default();
        for rule in &nat {
            input.add(rule, 0);
        }
        input.delete(FILTER_INPUT, 3, 1);

        let script = input.script();

        assert_eq!(
            script.text,
            "*filter
-I SEESAW-INPUT 1 -p udp -d 192.0.2.20/32 --dport 53 -j ACCEPT
-I SEESAW-INPUT 1 -p icmp -d 192.0.2.20/32 -j ACCEPT
-A SEESAW-INPUT -d 192.0.2.20/32 -j REJECT
-D SEESAW-INPUT 3
COMMIT
*raw
-I SEESAW-PREROUTING 1 -p udp -d 192.0.2.20/32 --dport 53 -j ACCEPT
COMMIT
*nat
-A SEESAW-POSTROUTING -m ipvs -p udp --vport 53 --vaddr 192.0.2.20/32 -j SNAT --to-source 192.0.2.2 --random
COMMIT
"
        );
        assert_eq!(script.entry_of_line(5), Some(1));
        assert_eq!(script.entry_of_line(2), Some(0));
        assert_eq!(script.entry_of_line(6), None);
        assert_eq!(script.entry_of_line(0), None);
        assert_eq!(script.entry_of_line(99), None);
        assert_eq!(
            script.line(8),
            Some("-I SEESAW-PREROUTING 1 -p udp -d 192.0.2.20/32 --dport 53 -j ACCEPT")
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("ACCEPT"), "ACCEPT");
        assert_eq!(quote("two words"), "\"two words\"");
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(quote(""), "\"\"");
    }

    #[test]
    fn failed_line_of_each_error_form() {
        let errors = [
            (
                "iptables-restore: line 3 failed: Bad rule (does a matching rule exist in that chain?).",
                3,
            ),
            (
                "Warning: Extension ipvs revision 0 not supported, missing kernel module?\niptables-restore v1.8.9 (nf_tables): \nline 5: RULE_APPEND failed (No such file or directory): rule in chain POSTROUTING",
                5,
            ),
            (
                "iptables-restore v1.8.9 (nf_tables): unknown option \"--bogus\"\nError occurred at line: 12\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.",
                12,
            ),
            ("iptables-restore: line 2 failed", 2),
        ];
        for (stderr, line) in errors {
            assert_eq!(failed_line(stderr), Some(line), "{stderr}");
        }
        assert_eq!(
            failed_line("Another app is currently holding the xtables lock."),
            None
        );
    }
}
