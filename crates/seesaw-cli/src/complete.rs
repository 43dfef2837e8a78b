//! What Tab and `?` offer for the text before the cursor, as pure
//! functions of the line and of the names the engine reports.
//!
//! Both keys rewrite the line with full command names, as the original
//! does: `sh vs` becomes `show vservers `. Beyond the original, they also
//! offer the names a command takes as its argument: vservers, backends,
//! destinations, nodes, VLAN IDs, BGP neighbors, config sources and files.

use std::collections::BTreeSet;
use std::path::Path;

use crate::engine::Engine;
use crate::select::{backend_hostname, hostname};
use crate::tree::{ArgKind, Found, find_command};

/// One completion: what a listing shows, and the whole text before the
/// cursor once it is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub display: String,
    pub replacement: String,
}

/// Returns the names an argument of `kind` may take, for completion.
pub type NameSource<'a> = dyn FnMut(ArgKind) -> Vec<String> + 'a;

/// Returns the candidates for Tab with `text` before the cursor. Several
/// candidates share the start that Tab then inserts; a single one
/// replaces the text.
pub fn complete(text: &str, names: &mut NameSource) -> Vec<Candidate> {
    let lookup = find_command(text);
    let at_word_start = text.is_empty() || text.ends_with(char::is_whitespace);
    let normalized = vec![Candidate {
        display: String::new(),
        replacement: lookup.normalized(),
    }];

    match &lookup.found {
        Found::Incomplete(commands) => {
            let partial = match lookup.args.as_slice() {
                [] if at_word_start => "",
                [word] if !at_word_start => word,
                _ => return normalized,
            };
            let prefix = join_words(&lookup.chain, &[]);
            commands
                .iter()
                .filter(|name| name.starts_with(partial))
                .map(|name| Candidate {
                    display: name.to_string(),
                    replacement: format!("{prefix}{name} "),
                })
                .collect()
        }
        Found::Unknown => normalized,
        Found::Leaf(action) => {
            if lookup.args.is_empty() && !at_word_start {
                return normalized;
            }
            let (before, partial) = split_partial(&lookup.args, at_word_start);
            let kind = action.arg_kind();
            let arg_count = if kind == ArgKind::File { 2 } else { 1 };
            if before.len() >= arg_count {
                return normalized;
            }
            let prefix = join_words(&lookup.chain, before);
            argument_candidates(kind, partial, names)
                .into_iter()
                .map(|(display, value)| {
                    // A directory is completed further, so no space follows.
                    let space = if value.ends_with('/') { "" } else { " " };
                    Candidate {
                        display,
                        replacement: format!("{prefix}{value}{space}"),
                    }
                })
                .collect()
        }
    }
}

/// What `?` prints and leaves on the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Help {
    /// The lines listed under the line, each ` <name>`, or
    /// `Unknown command.` when nothing matched.
    pub lines: Vec<String>,
    /// The line afterwards: the text before the cursor with full command
    /// names. Text after the cursor is dropped, as in the original.
    pub line: String,
}

/// Returns what `?` shows with `text` before the cursor: the words that may
/// follow, the matches of an ambiguous word, or the names a command takes
/// as its argument.
pub fn help(text: &str, names: &mut NameSource) -> Help {
    let lookup = find_command(text);
    let lines = match &lookup.found {
        Found::Incomplete(commands) => commands.iter().map(|name| format!(" {name}")).collect(),
        Found::Unknown => vec!["Unknown command.".to_string()],
        Found::Leaf(action) => {
            let at_word_start = text.ends_with(char::is_whitespace);
            let (before, partial) = split_partial(&lookup.args, at_word_start);
            if before.is_empty() {
                argument_candidates(action.arg_kind(), partial, names)
                    .into_iter()
                    .map(|(display, _)| format!(" {display}"))
                    .collect()
            } else {
                Vec::new()
            }
        }
    };
    Help {
        lines,
        line: lookup.normalized(),
    }
}

/// Splits the arguments into the finished ones and the word being typed,
/// which is empty at the start of a new word.
fn split_partial<'a>(args: &'a [&'a str], at_word_start: bool) -> (&'a [&'a str], &'a str) {
    match args.split_last() {
        Some((last, before)) if !at_word_start => (before, last),
        _ => (args, ""),
    }
}

/// Joins command names and finished arguments, with a space after each.
fn join_words(chain: &[&str], args: &[&str]) -> String {
    chain
        .iter()
        .chain(args)
        .map(|word| format!("{word} "))
        .collect()
}

/// Returns (display, value) pairs for the argument being typed.
fn argument_candidates(
    kind: ArgKind,
    partial: &str,
    names: &mut NameSource,
) -> Vec<(String, String)> {
    if kind == ArgKind::File {
        return file_candidates(partial);
    }
    if kind == ArgKind::None {
        return Vec::new();
    }
    let mut values = names(kind);
    values.sort();
    values.dedup();
    values
        .into_iter()
        .filter(|value| value.starts_with(partial))
        .map(|value| (value.clone(), value))
        .collect()
}

/// Returns the files and directories whose path starts with `partial`;
/// directories end with `/`.
fn file_candidates(partial: &str) -> Vec<(String, String)> {
    let (directory, base) = match partial.rfind('/') {
        Some(slash) => (&partial[..=slash], &partial[slash + 1..]),
        None => ("", partial),
    };
    let listed = if directory.is_empty() {
        Path::new(".")
    } else {
        Path::new(directory)
    };
    let Ok(entries) = std::fs::read_dir(listed) else {
        return Vec::new();
    };

    let mut candidates: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            if !name.starts_with(base) || (base.is_empty() && name.starts_with('.')) {
                return None;
            }
            let is_directory = entry.path().is_dir();
            let display = if is_directory {
                format!("{name}/")
            } else {
                name
            };
            Some((display.clone(), format!("{directory}{display}")))
        })
        .collect();
    candidates.sort();
    candidates
}

/// Returns the names the engine reports for an argument of `kind`; an
/// engine error gives none, so completion never interrupts typing.
pub fn engine_names(engine: &mut dyn Engine, kind: ArgKind) -> Vec<String> {
    match kind {
        ArgKind::Vserver => engine
            .vservers()
            .map(|list| list.vservers.into_iter().map(|v| v.name).collect())
            .unwrap_or_default(),
        ArgKind::Backend | ArgKind::Destination => {
            let Ok(list) = engine.vservers() else {
                return Vec::new();
            };
            let destinations = list
                .vservers
                .iter()
                .flat_map(|v| &v.services)
                .flat_map(|s| &s.destinations);
            let names: BTreeSet<String> = if kind == ArgKind::Backend {
                destinations
                    .map(|d| backend_hostname(d).to_string())
                    .collect()
            } else {
                destinations.map(|d| d.name.clone()).collect()
            };
            names.into_iter().collect()
        }
        ArgKind::Node => engine
            .cluster_status()
            .map(|c| {
                c.nodes
                    .iter()
                    .map(|n| hostname(n.host.as_ref()).to_string())
                    .collect()
            })
            .unwrap_or_default(),
        ArgKind::Vlan => engine
            .vlans()
            .map(|list| list.vlans.iter().map(|v| v.id.to_string()).collect())
            .unwrap_or_default(),
        ArgKind::BgpNeighbor => engine
            .bgp_neighbors()
            .map(|list| list.neighbors.into_iter().map(|n| n.ip).collect())
            .unwrap_or_default(),
        ArgKind::ConfigSource => ["disk", "peer", "server"].map(String::from).to_vec(),
        ArgKind::File | ArgKind::None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vservers(kind: ArgKind) -> Vec<String> {
        match kind {
            ArgKind::Vserver => vec![
                "admin-ingress-controller".to_string(),
                "admin-control-plane".to_string(),
                "user-1-control-plane".to_string(),
            ],
            _ => Vec::new(),
        }
    }

    fn replacements(text: &str) -> Vec<String> {
        complete(text, &mut vservers)
            .into_iter()
            .map(|c| c.replacement)
            .collect()
    }

    #[test]
    fn tab_spells_out_commands() {
        assert_eq!(replacements("sh vs"), ["show vservers "]);
        assert_eq!(replacements("show"), ["show "]);
        assert_eq!(replacements("sh frob"), ["show frob"]);
    }

    #[test]
    fn tab_offers_ambiguous_matches() {
        assert_eq!(
            replacements("show v"),
            ["show version ", "show vlans ", "show vservers "]
        );
        assert_eq!(replacements("co s"), ["config source ", "config status "]);
    }

    #[test]
    fn tab_lists_next_level_after_space() {
        assert_eq!(
            replacements("config "),
            [
                "config check ",
                "config reload ",
                "config source ",
                "config status "
            ]
        );
    }

    #[test]
    fn tab_completes_vserver_names() {
        assert_eq!(
            replacements("sh vs adm"),
            [
                "show vservers admin-control-plane ",
                "show vservers admin-ingress-controller "
            ]
        );
        assert_eq!(
            replacements("o v s e u"),
            ["override vserver state enabled user-1-control-plane "]
        );
        assert_eq!(
            replacements("sh vs user-1-control-plane x"),
            ["show vservers user-1-control-plane x"]
        );
    }

    #[test]
    fn tab_leaves_argumentless_leaf_alone() {
        assert!(replacements("show ha ").is_empty());
    }

    #[test]
    fn question_lists_next_words() {
        let listing = help("show ", &mut vservers);

        assert_eq!(listing.lines[0], " bgp");
        assert_eq!(listing.lines.len(), 9);
        assert_eq!(listing.line, "show ");
    }

    #[test]
    fn question_lists_ambiguous_matches() {
        let listing = help("s v", &mut vservers);

        assert_eq!(listing.lines, [" version", " vlans", " vservers"]);
        assert_eq!(listing.line, "show v");
    }

    #[test]
    fn question_on_unknown_word() {
        let listing = help("frob", &mut vservers);

        assert_eq!(listing.lines, ["Unknown command."]);
        assert_eq!(listing.line, "frob");
    }

    #[test]
    fn question_lists_arguments() {
        let listing = help("sh vs admin-c", &mut vservers);

        assert_eq!(listing.lines, [" admin-control-plane"]);
        assert_eq!(listing.line, "show vservers admin-c");
    }

    #[test]
    fn files_complete_with_directories() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cluster.pb"), "").unwrap();
        std::fs::create_dir(root.path().join("conf")).unwrap();
        let base = format!("{}/c", root.path().display());

        let found: Vec<String> = file_candidates(&base).into_iter().map(|(d, _)| d).collect();

        assert_eq!(found, ["cluster.pb", "conf/"]);
    }
}
