//! The command tree and the prefix matching that resolves a command line.
//!
//! Each word of a line selects every command at its level whose name
//! starts with it. One match descends, several are ambiguous, none is
//! unknown. No name at a level is a prefix of another, so an exact name
//! always resolves to itself.

use crate::OverrideState;

/// The operation of a leaf command. The shell runs it with the words that
/// follow it on the line as arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ConfigCheck,
    ConfigReload,
    ConfigSource,
    ConfigStatus,
    Exit,
    Failover,
    Help,
    Override(OverrideTarget, OverrideState),
    ShowBackends,
    ShowBgpNeighbors,
    ShowDestinations,
    ShowHa,
    ShowNodes,
    ShowVersion,
    ShowVlans,
    ShowVservers,
    ShowWarnings,
}

/// The kind of object an override command applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverrideTarget {
    Backend,
    Destination,
    Vserver,
}

impl OverrideTarget {
    pub fn name(self) -> &'static str {
        match self {
            OverrideTarget::Backend => "backend",
            OverrideTarget::Destination => "destination",
            OverrideTarget::Vserver => "vserver",
        }
    }
}

/// The kind of name a leaf takes as its argument, for completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    None,
    Backend,
    BgpNeighbor,
    ConfigSource,
    Destination,
    File,
    Node,
    Vlan,
    Vserver,
}

impl Action {
    /// Returns what the leaf's first argument names.
    pub fn arg_kind(self) -> ArgKind {
        match self {
            Action::ConfigCheck => ArgKind::File,
            Action::ConfigSource => ArgKind::ConfigSource,
            Action::Override(OverrideTarget::Backend, _) | Action::ShowBackends => ArgKind::Backend,
            Action::Override(OverrideTarget::Destination, _) | Action::ShowDestinations => {
                ArgKind::Destination
            }
            Action::Override(OverrideTarget::Vserver, _) | Action::ShowVservers => ArgKind::Vserver,
            Action::ShowBgpNeighbors => ArgKind::BgpNeighbor,
            Action::ShowNodes => ArgKind::Node,
            Action::ShowVlans => ArgKind::Vlan,
            _ => ArgKind::None,
        }
    }

    /// Reports whether the command needs the engine. The others also run
    /// when no engine is listening.
    pub fn needs_engine(self) -> bool {
        !matches!(self, Action::ConfigCheck | Action::Exit | Action::Help)
    }

    /// Reports whether the command shows state, and so takes `-o json`.
    pub fn is_show(self) -> bool {
        matches!(
            self,
            Action::ConfigStatus
                | Action::ShowBackends
                | Action::ShowBgpNeighbors
                | Action::ShowDestinations
                | Action::ShowHa
                | Action::ShowNodes
                | Action::ShowVersion
                | Action::ShowVlans
                | Action::ShowVservers
                | Action::ShowWarnings
        )
    }
}

/// A node of the command tree: either a leaf with an action or a level
/// with sub-commands.
#[derive(Debug)]
pub struct Command {
    pub name: &'static str,
    pub node: Node,
}

#[derive(Debug)]
pub enum Node {
    Leaf(Action),
    Level(&'static [Command]),
}

const fn leaf(name: &'static str, action: Action) -> Command {
    Command {
        name,
        node: Node::Leaf(action),
    }
}

const fn level(name: &'static str, commands: &'static [Command]) -> Command {
    Command {
        name,
        node: Node::Level(commands),
    }
}

/// The top level, in the order `?` lists it.
pub static COMMANDS: &[Command] = &[
    level("config", CONFIG),
    leaf("exit", Action::Exit),
    leaf("failover", Action::Failover),
    leaf("help", Action::Help),
    level("override", OVERRIDE),
    leaf("quit", Action::Exit),
    level("show", SHOW),
];

static CONFIG: &[Command] = &[
    leaf("check", Action::ConfigCheck),
    leaf("reload", Action::ConfigReload),
    leaf("source", Action::ConfigSource),
    leaf("status", Action::ConfigStatus),
];

static OVERRIDE: &[Command] = &[
    level("backend", &[level("state", &OVERRIDE_BACKEND_STATE)]),
    level(
        "destination",
        &[level("state", &OVERRIDE_DESTINATION_STATE)],
    ),
    level("vserver", &[level("state", &OVERRIDE_VSERVER_STATE)]),
];

static OVERRIDE_BACKEND_STATE: [Command; 3] = override_states(OverrideTarget::Backend);
static OVERRIDE_DESTINATION_STATE: [Command; 3] = override_states(OverrideTarget::Destination);
static OVERRIDE_VSERVER_STATE: [Command; 3] = override_states(OverrideTarget::Vserver);

/// Returns the `default`, `disabled` and `enabled` leaves under
/// `override <target> state`.
const fn override_states(target: OverrideTarget) -> [Command; 3] {
    [
        leaf("default", Action::Override(target, OverrideState::Default)),
        leaf(
            "disabled",
            Action::Override(target, OverrideState::Disabled),
        ),
        leaf("enabled", Action::Override(target, OverrideState::Enabled)),
    ]
}

static SHOW: &[Command] = &[
    level("bgp", &[leaf("neighbors", Action::ShowBgpNeighbors)]),
    leaf("backends", Action::ShowBackends),
    leaf("destinations", Action::ShowDestinations),
    leaf("ha", Action::ShowHa),
    leaf("nodes", Action::ShowNodes),
    leaf("version", Action::ShowVersion),
    leaf("vlans", Action::ShowVlans),
    leaf("vservers", Action::ShowVservers),
    leaf("warnings", Action::ShowWarnings),
];

/// The result of resolving a line against the tree.
#[derive(Debug)]
pub struct Lookup<'a> {
    /// The commands matched so far, outermost first, by full name.
    pub chain: Vec<&'static str>,
    /// The words after the chain: the arguments of a leaf, or the
    /// unmatched or ambiguous word and what follows it.
    pub args: Vec<&'a str>,
    pub found: Found,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// A leaf was reached.
    Leaf(Action),
    /// The words ran out above the leaves, or a word matched several
    /// commands: these are the candidates for the next word.
    Incomplete(Vec<&'static str>),
    /// A word matched nothing.
    Unknown,
}

/// Resolves `line` against the command tree.
pub fn find_command(line: &str) -> Lookup<'_> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let mut chain = Vec::new();
    let mut commands = COMMANDS;

    for (index, word) in words.iter().enumerate() {
        let matches: Vec<&Command> = commands
            .iter()
            .filter(|c| c.name.starts_with(word))
            .collect();
        let rest = words[index..].to_vec();
        match matches.as_slice() {
            [] => {
                return Lookup {
                    chain,
                    args: rest,
                    found: Found::Unknown,
                };
            }
            [only] => {
                chain.push(only.name);
                match only.node {
                    Node::Leaf(action) => {
                        return Lookup {
                            chain,
                            args: words[index + 1..].to_vec(),
                            found: Found::Leaf(action),
                        };
                    }
                    Node::Level(next) => commands = next,
                }
            }
            _ => {
                return Lookup {
                    chain,
                    args: rest,
                    found: Found::Incomplete(matches.iter().map(|c| c.name).collect()),
                };
            }
        }
    }

    Lookup {
        chain,
        args: Vec::new(),
        found: Found::Incomplete(commands.iter().map(|c| c.name).collect()),
    }
}

impl Lookup<'_> {
    /// Returns the line rewritten with full command names, as Tab and `?`
    /// leave it. A trailing space follows when no argument remains, so the
    /// next word can be typed at once.
    pub fn normalized(&self) -> String {
        let mut words: Vec<&str> = self.chain.clone();
        words.extend(self.args.iter().copied());
        let mut line = words.join(" ");
        if !words.is_empty() && self.args.is_empty() {
            line.push(' ');
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_prefixes_resolve() {
        let lookup = find_command("sh vs admin");

        assert_eq!(lookup.found, Found::Leaf(Action::ShowVservers));
        assert_eq!(lookup.chain, ["show", "vservers"]);
        assert_eq!(lookup.args, ["admin"]);
    }

    #[test]
    fn ambiguous_prefix_is_incomplete() {
        let lookup = find_command("s v");

        assert_eq!(
            lookup.found,
            Found::Incomplete(vec!["version", "vlans", "vservers"])
        );
        assert_eq!(lookup.chain, ["show"]);
        assert_eq!(lookup.args, ["v"]);
    }

    #[test]
    fn level_without_leaf_lists_next_words() {
        let lookup = find_command("config");

        assert_eq!(
            lookup.found,
            Found::Incomplete(vec!["check", "reload", "source", "status"])
        );
        assert!(lookup.args.is_empty());
    }

    #[test]
    fn empty_line_lists_top_level() {
        let lookup = find_command("   ");

        assert_eq!(
            lookup.found,
            Found::Incomplete(vec![
                "config", "exit", "failover", "help", "override", "quit", "show"
            ])
        );
    }

    #[test]
    fn unknown_word_keeps_the_rest() {
        let lookup = find_command("show frobnicate now");

        assert_eq!(lookup.found, Found::Unknown);
        assert_eq!(lookup.chain, ["show"]);
        assert_eq!(lookup.args, ["frobnicate", "now"]);
    }

    #[test]
    fn ve_is_version() {
        assert_eq!(
            find_command("show ve").found,
            Found::Leaf(Action::ShowVersion)
        );
    }

    #[test]
    fn override_states_need_more_than_d() {
        let lookup = find_command("o v s d x");

        assert_eq!(lookup.found, Found::Incomplete(vec!["default", "disabled"]));
        assert_eq!(
            find_command("o d s di x").found,
            Found::Leaf(Action::Override(
                OverrideTarget::Destination,
                OverrideState::Disabled
            ))
        );
    }

    #[test]
    fn normalized_line_spells_commands_out() {
        assert_eq!(find_command("sh vs").normalized(), "show vservers ");
        assert_eq!(find_command("sh vs adm").normalized(), "show vservers adm");
        assert_eq!(find_command("show v").normalized(), "show v");
        assert_eq!(find_command("").normalized(), "");
    }

    #[test]
    fn no_name_prefixes_a_sibling() {
        fn walk(commands: &[Command]) {
            for a in commands {
                for b in commands {
                    assert!(
                        a.name == b.name || !b.name.starts_with(a.name),
                        "{} is a prefix of {}",
                        a.name,
                        b.name
                    );
                }
                if let Node::Level(next) = a.node {
                    walk(next);
                }
            }
        }
        walk(COMMANDS);
    }
}
