//! iptables and ip6tables rules, kept in chains of our own.
//!
//! Each built-in chain that Seesaw needs jumps to one chain of ours at its
//! top (`-I INPUT 1 -j SEESAW-INPUT`), and every Seesaw rule lives in our
//! chains. The NCC never flushes a built-in chain or a chain it did not
//! create, so host firewall rules stay untouched. The rules use the `ipvs`
//! match (`-m ipvs --vaddr`), which only the iptables binaries can express,
//! so they run as processes.

mod key;
mod restore;

pub use restore::saved_chains;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Mutex;

use crate::error::{NccError, Result};

pub use key::RuleKey;
pub use restore::{RestoreInput, RestoreScript, RuleSet, failed_line};

/// TCP port of the ECU (the Seesaw control UI), open on every address.
pub const ECU_PORT: u16 = 10257;

/// Exit status of iptables when the xtables lock or a resource is busy.
const EXIT_RESOURCE_PROBLEM: i32 = 4;
const ATTEMPTS: u32 = 5;
const RETRY_DELAY: Duration = Duration::from_millis(200);

/// One chain of ours and the built-in chain that jumps to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnChain {
    pub table: &'static str,
    pub builtin: &'static str,
    pub name: &'static str,
}

pub const FILTER_INPUT: OwnChain = OwnChain {
    table: "filter",
    builtin: "INPUT",
    name: "SEESAW-INPUT",
};
pub const MANGLE_PREROUTING: OwnChain = OwnChain {
    table: "mangle",
    builtin: "PREROUTING",
    name: "SEESAW-PREROUTING",
};
pub const RAW_PREROUTING: OwnChain = OwnChain {
    table: "raw",
    builtin: "PREROUTING",
    name: "SEESAW-PREROUTING",
};
pub const RAW_OUTPUT: OwnChain = OwnChain {
    table: "raw",
    builtin: "OUTPUT",
    name: "SEESAW-OUTPUT",
};
pub const NAT_POSTROUTING: OwnChain = OwnChain {
    table: "nat",
    builtin: "POSTROUTING",
    name: "SEESAW-POSTROUTING",
};

pub const OWN_CHAINS: [OwnChain; 5] = [
    FILTER_INPUT,
    MANGLE_PREROUTING,
    RAW_PREROUTING,
    RAW_OUTPUT,
    NAT_POSTROUTING,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(address: IpAddr) -> Self {
        if address.is_ipv4() {
            Self::V4
        } else {
            Self::V6
        }
    }

    /// The iptables program of the family: `iptables` or `ip6tables`.
    pub fn program(self) -> &'static str {
        match self {
            Self::V4 => "iptables",
            Self::V6 => "ip6tables",
        }
    }

    fn host_prefix(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }
}

/// Where a rule goes in its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Position {
    /// At the top, ahead of the rules added before it.
    First,
    /// At the end.
    Last,
}

/// A rule in one of our chains.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub chain: OwnChain,
    pub position: Position,
    pub args: Vec<String>,
}

impl Rule {
    fn new(chain: OwnChain, position: Position, args: &[&str]) -> Self {
        Self {
            chain,
            position,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        }
    }

    /// The rule as `iptables-save` would list it, for logs and tests.
    pub fn text(&self) -> String {
        format!(
            "-t {} {} {}",
            self.chain.table,
            self.chain.name,
            self.args.join(" ")
        )
    }
}

/// Forwarding mode of a virtual server entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Dsr,
    Nat,
    Tun,
}

/// One port of a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// IP protocol number.
    pub protocol: u8,
    /// 0 for every port.
    pub port: u16,
    pub mode: Mode,
}

/// The name iptables accepts after `-p`.
pub fn protocol_name(protocol: u8) -> String {
    match protocol {
        1 => "icmp".to_owned(),
        6 => "tcp".to_owned(),
        17 => "udp".to_owned(),
        58 => "ipv6-icmp".to_owned(),
        132 => "sctp".to_owned(),
        other => other.to_string(),
    }
}

/// Only these protocols have a port match that `-p` loads implicitly.
fn has_ports(protocol: u8) -> bool {
    matches!(protocol, 6 | 17 | 132)
}

/// The fixed rules of our chains: the ECU port, conntrack off for
/// everything (NOTRACK) except traffic to the cluster VIP, which NAT return
/// traffic needs.
pub fn base_rules(family: Family, cluster_vip: Option<IpAddr>) -> Vec<Rule> {
    let ecu_port = ECU_PORT.to_string();
    let mut rules = vec![Rule::new(
        FILTER_INPUT,
        Position::Last,
        &["-p", "tcp", "--dport", &ecu_port, "-j", "ACCEPT"],
    )];
    if let Some(vip) = cluster_vip.filter(|vip| Family::of(*vip) == family) {
        let destination = format!("{vip}/{}", family.host_prefix());
        rules.push(Rule::new(
            RAW_PREROUTING,
            Position::Last,
            &["-d", &destination, "-j", "ACCEPT"],
        ));
    }
    rules.push(Rule::new(
        RAW_PREROUTING,
        Position::Last,
        &["-j", "NOTRACK"],
    ));
    rules.push(Rule::new(RAW_OUTPUT, Position::Last, &["-j", "NOTRACK"]));
    rules
}

/// Returns the `iptables-restore --noflush` input that readies `chains`
/// and their base rules, given `saved`, the output of `iptables-save`.
/// With `empty`, every chain is declared, which creates it or empties it,
/// and every base rule is added. Without `empty`, only missing chains are
/// declared and only missing base rules added, so the rules in the chains
/// stay. Either way a chain's built-in chain gets a jump to it first
/// unless it has one. One process then does what takes about 25
/// `iptables` calls one by one. Returns `None` when nothing is missing.
pub fn ready_script(
    family: Family,
    saved: &str,
    cluster_vip: Option<IpAddr>,
    chains: &[OwnChain],
    empty: bool,
) -> Option<String> {
    let saved_rules = parse_save(saved);
    let declared = restore::saved_chains(saved);
    let present = restore::RuleSet::from_save(family, saved);
    let base = base_rules(family, cluster_vip);
    let mut tables: Vec<&str> = Vec::new();
    for chain in chains {
        if !tables.contains(&chain.table) {
            tables.push(chain.table);
        }
    }
    let mut script = String::new();
    let mut changes = 0;
    for table in tables {
        let in_table: Vec<&OwnChain> = chains.iter().filter(|chain| chain.table == table).collect();
        let mut lines = Vec::new();
        for chain in &in_table {
            if empty || !declared.contains(&(table.to_owned(), chain.name.to_owned())) {
                lines.push(format!(":{} - [0:0]", chain.name));
            }
        }
        for chain in &in_table {
            let jumps = saved_rules.iter().any(|rule| {
                rule.table == table
                    && rule.chain == chain.builtin
                    && is(&rule.args, &["-j", chain.name])
            });
            if !jumps {
                lines.push(format!("-I {} 1 -j {}", chain.builtin, chain.name));
            }
        }
        for rule in base.iter().filter(|rule| in_table.contains(&&rule.chain)) {
            if empty || !present.contains(rule) {
                lines.push(format!("-A {} {}", rule.chain.name, rule.args.join(" ")));
            }
        }
        if lines.is_empty() {
            continue;
        }
        changes += lines.len();
        script.push_str(&format!("*{table}\n"));
        for line in lines {
            script.push_str(&line);
            script.push('\n');
        }
        script.push_str("COMMIT\n");
    }
    (changes > 0).then_some(script)
}

/// The rules of one virtual server address. ACCEPT rules go first in
/// SEESAW-INPUT and the final REJECT last, so a second virtual server on
/// the same address still has its ports open.
pub fn vserver_rules(
    address: IpAddr,
    cluster_vip: Option<IpAddr>,
    fwmark: u32,
    entries: &[Entry],
) -> Result<Vec<Rule>> {
    let family = Family::of(address);
    let destination = format!("{address}/{}", family.host_prefix());
    let mut rules = Vec::new();
    for entry in entries {
        let protocol = protocol_name(entry.protocol);
        let mut matches = vec![
            "-p".to_owned(),
            protocol.clone(),
            "-d".to_owned(),
            destination.clone(),
        ];
        if entry.port != 0 && has_ports(entry.protocol) {
            matches.extend(["--dport".to_owned(), entry.port.to_string()]);
        }
        let with = |extra: &[&str]| {
            let mut args = matches.clone();
            args.extend(extra.iter().map(|arg| (*arg).to_owned()));
            args
        };
        rules.push(Rule {
            chain: FILTER_INPUT,
            position: Position::First,
            args: with(&["-j", "ACCEPT"]),
        });
        if fwmark > 0 {
            rules.push(Rule {
                chain: MANGLE_PREROUTING,
                position: Position::Last,
                args: with(&["-j", "MARK", "--set-mark", &fwmark.to_string()]),
            });
        }
        if entry.mode == Mode::Nat {
            let cluster_vip = cluster_vip.filter(|vip| Family::of(*vip) == family).ok_or_else(|| {
                NccError::Invalid(format!(
                    "NAT virtual server {address} needs a cluster VIP of the same address family for SNAT"
                ))
            })?;
            rules.push(Rule {
                chain: RAW_PREROUTING,
                position: Position::First,
                args: with(&["-j", "ACCEPT"]),
            });
            let mut snat = vec![
                "-m".to_owned(),
                "ipvs".to_owned(),
                "-p".to_owned(),
                protocol.clone(),
            ];
            if entry.port != 0 && has_ports(entry.protocol) {
                snat.extend(["--vport".to_owned(), entry.port.to_string()]);
            }
            snat.extend(
                [
                    "--vaddr",
                    &destination,
                    "-j",
                    "SNAT",
                    "--to-source",
                    &cluster_vip.to_string(),
                    "--random",
                ]
                .iter()
                .map(|arg| (*arg).to_owned()),
            );
            rules.push(Rule {
                chain: NAT_POSTROUTING,
                position: Position::Last,
                args: snat,
            });
        }
    }
    rules.extend(address_rules(address));
    Ok(rules)
}

fn icmp_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "icmp",
        Family::V6 => "ipv6-icmp",
    }
}

/// Builds the rules that every virtual server on `address` shares: ICMP accepted
/// and everything else rejected. They go only when the last virtual
/// server on the address goes.
pub fn address_rules(address: IpAddr) -> Vec<Rule> {
    let family = Family::of(address);
    let destination = format!("{address}/{}", family.host_prefix());
    vec![
        Rule::new(
            FILTER_INPUT,
            Position::First,
            &["-p", icmp_name(family), "-d", &destination, "-j", "ACCEPT"],
        ),
        Rule::new(
            FILTER_INPUT,
            Position::Last,
            &["-d", &destination, "-j", "REJECT"],
        ),
    ]
}

/// Tells whether SEESAW-INPUT, as `iptables-save` lists it, still accepts
/// traffic to `address` for something other than ICMP, that is whether a
/// virtual server still uses the address. This covers virtual servers
/// added before the NCC restarted, which it no longer has in memory.
pub fn address_in_use(saved: &[SavedRule], address: IpAddr) -> bool {
    let family = Family::of(address);
    saved.iter().any(|rule| {
        rule.table == FILTER_INPUT.table
            && rule.chain == FILTER_INPUT.name
            && restore::service_accept_address(family, &RuleKey::of(family, &rule.args))
                == Some(address)
    })
}

/// Runs iptables and ip6tables, one process at a time.
#[derive(Debug)]
pub struct Iptables {
    lock: Mutex<()>,
}

impl Default for Iptables {
    fn default() -> Self {
        Self {
            lock: Mutex::new(()),
        }
    }
}

/// Finds `program` (such as `iptables` or `ip6tables-save`) in /usr/sbin
/// or /sbin. Debian links `iptables` through /etc/alternatives, which a
/// minimal root file system may lack, so the nft and legacy variants
/// (`iptables-nft`, `iptables-legacy-save`) are tried next.
pub fn find_program(program: &str) -> Result<PathBuf> {
    let (base, suffix) = match program.split_once('-') {
        Some((base, rest)) => (base, format!("-{rest}")),
        None => (program, String::new()),
    };
    let names = [
        program.to_owned(),
        format!("{base}-nft{suffix}"),
        format!("{base}-legacy{suffix}"),
    ];
    names
        .iter()
        .flat_map(|name| ["/usr/sbin", "/sbin"].map(|dir| Path::new(dir).join(name)))
        .find(|path| path.exists())
        .ok_or_else(|| {
            NccError::NotFound(format!(
                "{program} not found in /usr/sbin or /sbin; install the iptables package"
            ))
        })
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
    pub status: String,
}

impl Iptables {
    /// Runs `program args`, retrying while the xtables lock is busy.
    pub async fn run(&self, program: &str, args: &[String]) -> Result<Outcome> {
        let path = find_program(program)?;
        let _guard = self.lock.lock().await;
        let mut attempt = 1;
        loop {
            let output = Command::new(&path)
                .args(args)
                .output()
                .await
                .map_err(|source| NccError::io(format!("run {}", path.display()), source))?;
            let outcome = Outcome {
                success: output.status.success(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                status: output.status.to_string(),
            };
            if output.status.code() == Some(EXIT_RESOURCE_PROBLEM) && attempt < ATTEMPTS {
                tracing::warn!(
                    "{program} {} failed with a busy lock (attempt {attempt} of {ATTEMPTS}), retrying: {}",
                    args.join(" "),
                    outcome.stderr
                );
                tokio::time::sleep(RETRY_DELAY).await;
                attempt += 1;
                continue;
            }
            return Ok(outcome);
        }
    }

    /// Runs a command that must succeed.
    async fn must(&self, family: Family, args: Vec<String>) -> Result<String> {
        let outcome = self.run(family.program(), &args).await?;
        if outcome.success {
            Ok(outcome.stdout)
        } else {
            Err(NccError::Command {
                command: format!("{} {}", family.program(), args.join(" ")),
                status: outcome.status,
                stderr: outcome.stderr,
            })
        }
    }

    async fn succeeds(&self, family: Family, args: Vec<String>) -> Result<bool> {
        Ok(self.run(family.program(), &args).await?.success)
    }

    /// Removes the jump to our chain and the chain itself; missing ones are
    /// skipped.
    pub async fn remove_chain(&self, family: Family, chain: OwnChain) -> Result<()> {
        let jump = strings(&[
            "-w",
            "-t",
            chain.table,
            "-D",
            chain.builtin,
            "-j",
            chain.name,
        ]);
        while self.succeeds(family, jump.clone()).await? {}
        let _ = self
            .succeeds(
                family,
                strings(&["-w", "-t", chain.table, "-F", chain.name]),
            )
            .await?;
        let _ = self
            .succeeds(
                family,
                strings(&["-w", "-t", chain.table, "-X", chain.name]),
            )
            .await?;
        Ok(())
    }

    /// Adds `rule` unless it is already in its chain.
    pub async fn add_rule(&self, family: Family, rule: &Rule) -> Result<()> {
        let mut check = strings(&["-w", "-t", rule.chain.table, "-C", rule.chain.name]);
        check.extend(rule.args.iter().cloned());
        if self.succeeds(family, check).await? {
            return Ok(());
        }
        let mut add = match rule.position {
            Position::First => strings(&["-w", "-t", rule.chain.table, "-I", rule.chain.name, "1"]),
            Position::Last => strings(&["-w", "-t", rule.chain.table, "-A", rule.chain.name]),
        };
        add.extend(rule.args.iter().cloned());
        self.must(family, add).await?;
        Ok(())
    }

    /// Deletes every copy of `rule`; a missing rule is not an error.
    pub async fn delete_rule(&self, family: Family, rule: &Rule) -> Result<()> {
        let mut delete = strings(&["-w", "-t", rule.chain.table, "-D", rule.chain.name]);
        delete.extend(rule.args.iter().cloned());
        while self.succeeds(family, delete.clone()).await? {}
        Ok(())
    }

    /// Deletes a rule of a built-in chain given as `iptables-save` prints
    /// it.
    pub async fn delete_saved_rule(&self, family: Family, rule: &SavedRule) -> Result<()> {
        let mut delete = strings(&["-w", "-t", &rule.table, "-D", &rule.chain]);
        delete.extend(rule.args.iter().cloned());
        self.must(family, delete).await?;
        Ok(())
    }

    /// Returns the output of `iptables-save` (or `ip6tables-save`).
    pub async fn save(&self, family: Family) -> Result<String> {
        let program = format!("{}-save", family.program());
        let outcome = self.run(&program, &[]).await?;
        if outcome.success {
            Ok(outcome.stdout)
        } else {
            Err(NccError::Command {
                command: program,
                status: outcome.status,
                stderr: outcome.stderr,
            })
        }
    }

    /// Feeds `input` to `iptables-restore -w --noflush` (or
    /// `ip6tables-restore`). Tables are committed one after another, so
    /// when one fails the tables before it stay changed. A failure is not
    /// retried here: exit status 4 also means that the kernel rejected a
    /// rule, and the caller plans again from a new `iptables-save`.
    pub async fn restore(&self, family: Family, input: &str) -> Result<Outcome> {
        let program = format!("{}-restore", family.program());
        let path = find_program(&program)?;
        let _guard = self.lock.lock().await;
        let failed = |source| NccError::io(format!("run {}", path.display()), source);
        let mut child = Command::new(&path)
            .args(["-w", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(failed)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let input = input.to_owned();
        // Write while the child runs, so that neither side waits on a
        // full pipe.
        let writer = tokio::spawn(async move {
            stdin.write_all(input.as_bytes()).await?;
            stdin.shutdown().await
        });
        let output = child.wait_with_output().await.map_err(failed)?;
        let written = writer
            .await
            .unwrap_or_else(|error| Err(std::io::Error::other(error)));
        let outcome = Outcome {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            status: output.status.to_string(),
        };
        if outcome.success {
            written.map_err(failed)?;
        }
        Ok(outcome)
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

/// A rule as listed by `iptables-save`: `-A <chain> <args>` under
/// `*<table>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedRule {
    pub table: String,
    pub chain: String,
    pub args: Vec<String>,
}

/// Parses the rules of `iptables-save` output.
pub fn parse_save(text: &str) -> Vec<SavedRule> {
    let mut table = String::new();
    let mut rules = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let mut words = split_words(rest);
            if words.is_empty() {
                continue;
            }
            let chain = words.remove(0);
            rules.push(SavedRule {
                table: table.clone(),
                chain,
                args: words,
            });
        }
    }
    rules
}

/// Splits a rule on spaces, keeping double-quoted words (such as comments)
/// whole and unescaping `\"` inside them, as `iptables-save` quotes them.
fn split_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut has_word = false;
    let mut chars = text.chars();
    while let Some(character) = chars.next() {
        match character {
            '"' => {
                in_quotes = !in_quotes;
                has_word = true;
            }
            '\\' if in_quotes => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            ' ' if !in_quotes => {
                if has_word {
                    words.push(std::mem::take(&mut current));
                    has_word = false;
                }
            }
            other => {
                current.push(other);
                has_word = true;
            }
        }
    }
    if has_word {
        words.push(current);
    }
    words
}

fn value_after<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|arg| arg == flag)
        .and_then(|index| args.get(index + 1))
        .map(String::as_str)
}

/// Drops the host prefix length that `iptables-save` prints after `-d`
/// but not after `--vaddr`.
fn host_address(text: &str) -> &str {
    text.trim_end_matches("/32").trim_end_matches("/128")
}

fn is(args: &[String], expected: &[&str]) -> bool {
    args.len() == expected.len() && args.iter().zip(expected).all(|(arg, want)| arg == want)
}

/// Finds the rules that the Go Seesaw NCC left in built-in chains.
///
/// The Go NCC wrote its rules straight into INPUT, PREROUTING, OUTPUT and
/// POSTROUTING. Two traits identify them without touching host rules:
/// it disabled conntrack with `-j NOTRACK` at the end of both raw
/// PREROUTING and raw OUTPUT, and for every virtual server address it
/// accepted the ICMP protocol of the other family (`-p ipv6-icmp` under
/// iptables, `-p icmp` under ip6tables), which matches nothing and which a
/// person would not write. Rules on those addresses are its service rules.
pub fn go_leftovers(family: Family, rules: &[SavedRule]) -> Vec<SavedRule> {
    let foreign_icmp = match family {
        Family::V4 => "ipv6-icmp",
        Family::V6 => "icmp",
    };
    let notrack_in = rules.iter().any(|rule| {
        rule.table == "raw" && rule.chain == "PREROUTING" && is(&rule.args, &["-j", "NOTRACK"])
    });
    let notrack_out = rules.iter().any(|rule| {
        rule.table == "raw" && rule.chain == "OUTPUT" && is(&rule.args, &["-j", "NOTRACK"])
    });
    let go_ran = notrack_in && notrack_out;

    let vips: BTreeSet<String> = rules
        .iter()
        .filter(|rule| rule.table == "filter" && rule.chain == "INPUT")
        .filter(|rule| value_after(&rule.args, "-p") == Some(foreign_icmp))
        .filter(|rule| rule.args.ends_with(&["-j".to_owned(), "ACCEPT".to_owned()]))
        .filter_map(|rule| {
            value_after(&rule.args, "-d").map(|address| host_address(address).to_owned())
        })
        .collect();
    let ecu_rule = ["-p", "tcp", "-m", "tcp", "--dport", "10257", "-j", "ACCEPT"];

    rules
        .iter()
        .filter(|rule| {
            let on_vip = value_after(&rule.args, "-d")
                .or_else(|| value_after(&rule.args, "--vaddr"))
                .is_some_and(|address| vips.contains(host_address(address)));
            let target = value_after(&rule.args, "-j").unwrap_or("");
            match (rule.table.as_str(), rule.chain.as_str()) {
                ("filter", "INPUT") => {
                    (on_vip && matches!(target, "ACCEPT" | "REJECT"))
                        || (go_ran && is(&rule.args, &ecu_rule))
                }
                ("mangle", "PREROUTING") => on_vip && target == "MARK",
                ("raw", "PREROUTING") => {
                    (go_ran && is(&rule.args, &["-j", "NOTRACK"]))
                        || (on_vip && target == "ACCEPT")
                        || (go_ran
                            && rule.args.len() == 4
                            && rule.args[0] == "-d"
                            && target == "ACCEPT")
                }
                ("raw", "OUTPUT") => go_ran && is(&rule.args, &["-j", "NOTRACK"]),
                ("nat", "POSTROUTING") => on_vip && target == "SNAT",
                _ => false,
            }
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(rules: &[Rule]) -> Vec<String> {
        rules.iter().map(Rule::text).collect()
    }

    #[test]
    fn ready_script_declares_chains_and_adds_missing_jumps() {
        let saved = "*filter\n:INPUT ACCEPT [0:0]\n:SEESAW-INPUT - [0:0]\n-A INPUT -j SEESAW-INPUT\n-A SEESAW-INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n";
        let script = ready_script(
            Family::V4,
            saved,
            Some("192.0.2.2".parse().unwrap()),
            &OWN_CHAINS,
            true,
        );
        assert_eq!(
            script.as_deref().unwrap(),
            "*filter\n\
             :SEESAW-INPUT - [0:0]\n\
             -A SEESAW-INPUT -p tcp --dport 10257 -j ACCEPT\n\
             COMMIT\n\
             *mangle\n\
             :SEESAW-PREROUTING - [0:0]\n\
             -I PREROUTING 1 -j SEESAW-PREROUTING\n\
             COMMIT\n\
             *raw\n\
             :SEESAW-PREROUTING - [0:0]\n\
             :SEESAW-OUTPUT - [0:0]\n\
             -I PREROUTING 1 -j SEESAW-PREROUTING\n\
             -I OUTPUT 1 -j SEESAW-OUTPUT\n\
             -A SEESAW-PREROUTING -d 192.0.2.2/32 -j ACCEPT\n\
             -A SEESAW-PREROUTING -j NOTRACK\n\
             -A SEESAW-OUTPUT -j NOTRACK\n\
             COMMIT\n\
             *nat\n\
             :SEESAW-POSTROUTING - [0:0]\n\
             -I POSTROUTING 1 -j SEESAW-POSTROUTING\n\
             COMMIT\n"
        );
    }

    #[test]
    fn ready_script_leaves_out_tables_not_asked_for() {
        let chains: Vec<OwnChain> = OWN_CHAINS
            .into_iter()
            .filter(|chain| chain.table != "nat")
            .collect();
        let script = ready_script(Family::V6, "", None, &chains, true).unwrap();
        assert!(!script.contains("*nat"), "{script}");
        assert!(script.contains("*raw"), "{script}");
    }

    #[test]
    fn ready_script_keeps_existing_chains_and_rules() {
        let chains = [FILTER_INPUT, RAW_OUTPUT];
        let ready = "*filter\n:INPUT ACCEPT [0:0]\n:SEESAW-INPUT - [0:0]\n-A INPUT -j SEESAW-INPUT\n-A SEESAW-INPUT -p tcp -m tcp --dport 80 -j ACCEPT\n-A SEESAW-INPUT -p tcp -m tcp --dport 10257 -j ACCEPT\nCOMMIT\n*raw\n:OUTPUT ACCEPT [0:0]\n:SEESAW-OUTPUT - [0:0]\n-A OUTPUT -j SEESAW-OUTPUT\n-A SEESAW-OUTPUT -j NOTRACK\nCOMMIT\n";
        assert_eq!(ready_script(Family::V4, ready, None, &chains, false), None);

        // The raw chain and its rule are missing; the filter chain's rule
        // for port 80 must not be flushed.
        let partial = "*filter\n:INPUT ACCEPT [0:0]\n:SEESAW-INPUT - [0:0]\n-A INPUT -j SEESAW-INPUT\n-A SEESAW-INPUT -p tcp -m tcp --dport 80 -j ACCEPT\nCOMMIT\n";
        let script = ready_script(Family::V4, partial, None, &chains, false).unwrap();
        assert_eq!(
            script,
            "*filter\n\
             -A SEESAW-INPUT -p tcp --dport 10257 -j ACCEPT\n\
             COMMIT\n\
             *raw\n\
             :SEESAW-OUTPUT - [0:0]\n\
             -I OUTPUT 1 -j SEESAW-OUTPUT\n\
             -A SEESAW-OUTPUT -j NOTRACK\n\
             COMMIT\n"
        );
    }

    #[test]
    fn base_rules_with_cluster_vip() {
        let rules = base_rules(Family::V4, Some("192.0.2.2".parse().unwrap()));

        assert_eq!(
            texts(&rules),
            [
                "-t filter SEESAW-INPUT -p tcp --dport 10257 -j ACCEPT",
                "-t raw SEESAW-PREROUTING -d 192.0.2.2/32 -j ACCEPT",
                "-t raw SEESAW-PREROUTING -j NOTRACK",
                "-t raw SEESAW-OUTPUT -j NOTRACK",
            ]
        );
    }

    #[test]
    fn base_rules_skip_other_family_vip() {
        let rules = base_rules(Family::V6, Some("192.0.2.2".parse().unwrap()));

        assert_eq!(rules.len(), 3);
    }

    #[test]
    fn vserver_rules_dsr_and_nat() {
        let entries = [
            Entry {
                protocol: 6,
                port: 80,
                mode: Mode::Dsr,
            },
            Entry {
                protocol: 17,
                port: 53,
                mode: Mode::Nat,
            },
        ];

        let rules = vserver_rules(
            "192.0.2.10".parse().unwrap(),
            Some("192.0.2.2".parse().unwrap()),
            0,
            &entries,
        )
        .unwrap();

        assert_eq!(
            texts(&rules),
            [
                "-t filter SEESAW-INPUT -p tcp -d 192.0.2.10/32 --dport 80 -j ACCEPT",
                "-t filter SEESAW-INPUT -p udp -d 192.0.2.10/32 --dport 53 -j ACCEPT",
                "-t raw SEESAW-PREROUTING -p udp -d 192.0.2.10/32 --dport 53 -j ACCEPT",
                "-t nat SEESAW-POSTROUTING -m ipvs -p udp --vport 53 --vaddr 192.0.2.10/32 -j SNAT --to-source 192.0.2.2 --random",
                "-t filter SEESAW-INPUT -p icmp -d 192.0.2.10/32 -j ACCEPT",
                "-t filter SEESAW-INPUT -d 192.0.2.10/32 -j REJECT",
            ]
        );
        assert_eq!(rules.last().unwrap().position, Position::Last);
        assert_eq!(rules[0].position, Position::First);
    }

    #[test]
    fn vserver_rules_fwmark_and_port_zero() {
        let entries = [Entry {
            protocol: 6,
            port: 0,
            mode: Mode::Tun,
        }];

        let rules = vserver_rules("2001:db8::10".parse().unwrap(), None, 7, &entries).unwrap();

        assert_eq!(
            texts(&rules),
            [
                "-t filter SEESAW-INPUT -p tcp -d 2001:db8::10/128 -j ACCEPT",
                "-t mangle SEESAW-PREROUTING -p tcp -d 2001:db8::10/128 -j MARK --set-mark 7",
                "-t filter SEESAW-INPUT -p ipv6-icmp -d 2001:db8::10/128 -j ACCEPT",
                "-t filter SEESAW-INPUT -d 2001:db8::10/128 -j REJECT",
            ]
        );
    }

    #[test]
    fn address_in_use_ignores_icmp_and_other_addresses() {
        let only_shared = "*filter\n-A SEESAW-INPUT -d 192.0.2.10/32 -p icmp -j ACCEPT\n-A SEESAW-INPUT -d 192.0.2.11/32 -p tcp -m tcp --dport 80 -j ACCEPT\n-A SEESAW-INPUT -d 192.0.2.10/32 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n";
        let with_port = "*filter\n-A SEESAW-INPUT -d 192.0.2.10/32 -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n";
        let v6 = "*filter\n-A SEESAW-INPUT -d 2001:db8::10/128 -p ipv6-icmp -j ACCEPT\n-A SEESAW-INPUT -d 2001:db8::10/128 -p tcp -j ACCEPT\nCOMMIT\n";
        let address = "192.0.2.10".parse().unwrap();

        assert!(!address_in_use(&parse_save(only_shared), address));
        assert!(address_in_use(&parse_save(with_port), address));
        assert!(address_in_use(
            &parse_save(v6),
            "2001:db8::10".parse().unwrap()
        ));
        assert!(!address_in_use(
            &parse_save(
                "*filter\n-A SEESAW-INPUT -d 2001:db8::10/128 -p ipv6-icmp -j ACCEPT\nCOMMIT\n"
            ),
            "2001:db8::10".parse().unwrap()
        ));
    }

    #[test]
    fn nat_without_cluster_vip_rejected() {
        let entries = [Entry {
            protocol: 6,
            port: 80,
            mode: Mode::Nat,
        }];

        let error = vserver_rules("192.0.2.10".parse().unwrap(), None, 0, &entries).unwrap_err();

        assert!(error.to_string().contains("192.0.2.10"), "{error}");
    }

    #[test]
    fn save_parsing_keeps_quoted_words() {
        let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -m comment --comment \"office \\\"lan\\\"\" -j ACCEPT\nCOMMIT\n";

        let rules = parse_save(text);

        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].table, "filter");
        assert_eq!(rules[0].chain, "INPUT");
        assert_eq!(
            rules[0].args,
            [
                "-s",
                "10.0.0.0/8",
                "-m",
                "comment",
                "--comment",
                "office \"lan\"",
                "-j",
                "ACCEPT"
            ]
        );
    }

    const GO_MASTER: &str = "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 100.115.222.132/32 -j ACCEPT
-A PREROUTING -j NOTRACK
-A OUTPUT -j NOTRACK
COMMIT
*filter
:INPUT ACCEPT [0:0]
-A INPUT -s 10.9.9.0/24 -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -p tcp -m tcp --dport 10257 -j ACCEPT
-A INPUT -d 100.115.222.143/32 -p tcp -m tcp --dport 443 -j ACCEPT
-A INPUT -d 100.115.222.143/32 -p icmp -j ACCEPT
-A INPUT -d 100.115.222.143/32 -p ipv6-icmp -j ACCEPT
-A INPUT -d 100.115.222.143/32 -j REJECT --reject-with icmp-port-unreachable
-A INPUT -d 198.51.100.1/32 -p tcp -m tcp --dport 25 -j ACCEPT
COMMIT
*nat
-A POSTROUTING -p tcp -m ipvs --vaddr 100.115.222.143 --vport 443 -j SNAT --to-source 100.115.222.132 --random
COMMIT
";

    #[test]
    fn go_leftovers_found() {
        let leftovers = go_leftovers(Family::V4, &parse_save(GO_MASTER));
        let lines: Vec<String> = leftovers
            .iter()
            .map(|rule| format!("{} {} {}", rule.table, rule.chain, rule.args.join(" ")))
            .collect();

        assert_eq!(
            lines,
            [
                "raw PREROUTING -d 100.115.222.132/32 -j ACCEPT",
                "raw PREROUTING -j NOTRACK",
                "raw OUTPUT -j NOTRACK",
                "filter INPUT -p tcp -m tcp --dport 10257 -j ACCEPT",
                "filter INPUT -d 100.115.222.143/32 -p tcp -m tcp --dport 443 -j ACCEPT",
                "filter INPUT -d 100.115.222.143/32 -p icmp -j ACCEPT",
                "filter INPUT -d 100.115.222.143/32 -p ipv6-icmp -j ACCEPT",
                "filter INPUT -d 100.115.222.143/32 -j REJECT --reject-with icmp-port-unreachable",
                "nat POSTROUTING -p tcp -m ipvs --vaddr 100.115.222.143 --vport 443 -j SNAT --to-source 100.115.222.132 --random",
            ]
        );
    }

    #[test]
    fn host_rules_not_leftovers() {
        let host = "*filter\n-A INPUT -p tcp -m tcp --dport 10257 -j ACCEPT\n-A INPUT -d 192.0.2.1/32 -j REJECT\nCOMMIT\n*raw\n-A PREROUTING -j NOTRACK\nCOMMIT\n";

        let leftovers = go_leftovers(Family::V4, &parse_save(host));

        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
