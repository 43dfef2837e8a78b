//! Running one command line: resolve it against the command tree, call
//! the engine, and render the reply. Nothing here prints; the caller
//! writes the outcome where the mode of the shell wants it.

use std::path::PathBuf;

use seesaw_config::check::{CheckRequest, check};
use seesaw_ipc::engine_proto::{
    BackendOverride, DestinationOverride, OverrideState, VserverOverride,
};

use crate::engine::Engine;
use crate::json;
use crate::render::{self, Clock};
use crate::select;
use crate::tree::{Action, Found, OverrideTarget, find_command};

/// The output format of show commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!(
                "unknown output format {}: use text or json",
                select::go_quote(other)
            )),
        }
    }
}

/// The files `config check` reads when it is given none.
pub const DEFAULT_CLUSTER_FILE: &str = "/etc/seesaw/cluster.pb";
pub const DEFAULT_NODE_CONFIG_FILE: &str = "/etc/seesaw/seesaw.cfg";

/// The result of running one line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The command's output, printed in any case.
    pub output: String,
    /// The error the command failed with: printed to standard error with
    /// `-c`, to standard output in the interactive shell.
    pub error: Option<String>,
    /// The command asked the shell to end.
    pub exit: bool,
}

impl Outcome {
    fn text(output: impl Into<String>) -> Self {
        Outcome {
            output: output.into(),
            ..Outcome::default()
        }
    }

    fn failed(error: impl Into<String>) -> Self {
        Outcome {
            error: Some(error.into()),
            ..Outcome::default()
        }
    }
}

impl From<Result<String, String>> for Outcome {
    fn from(result: Result<String, String>) -> Self {
        match result {
            Ok(output) => Outcome::text(output),
            Err(error) => Outcome::failed(error),
        }
    }
}

/// Runs command lines against one engine.
pub struct Executor<'a> {
    pub engine: &'a mut dyn Engine,
    /// The format of show commands that do not give `-o` themselves.
    pub format: Format,
    /// Returns the time that durations are measured to.
    pub clock: fn() -> Clock,
}

impl Executor<'_> {
    /// Runs `line`. An unknown command, or one that stops above a leaf,
    /// fails with the original's messages.
    pub fn execute(&mut self, line: &str) -> Outcome {
        let lookup = find_command(line);
        match lookup.found {
            Found::Leaf(action) => self.run(action, &lookup.args),
            Found::Incomplete(_) => Outcome::failed("Incomplete command."),
            Found::Unknown => Outcome::failed("Unknown command."),
        }
    }

    /// Runs `action` with its arguments, as `execute` does once the line
    /// is resolved.
    pub fn run(&mut self, action: Action, args: &[&str]) -> Outcome {
        if action.is_show() {
            return match take_format(args) {
                Ok((format, args)) => {
                    let format = format.unwrap_or(self.format);
                    self.show(action, &args, format)
                }
                Err(error) => Outcome::failed(error),
            };
        }

        match action {
            Action::ConfigCheck => config_check(args),
            Action::ConfigReload => match self.engine.config_reload() {
                Ok(()) => Outcome::text("Configuration reload requested.\n"),
                Err(e) => Outcome::failed(format!("Config reload failed: {e}")),
            },
            Action::ConfigSource => self.config_source(args),
            Action::Exit => Outcome {
                exit: true,
                ..Outcome::default()
            },
            Action::Failover => match self.engine.failover() {
                Ok(()) => Outcome::text("Failover requested.\n"),
                Err(e) => Outcome::failed(format!("Failover request failed: {e}")),
            },
            Action::Help => Outcome::text("Use ? for context-aware command completions.\n"),
            Action::Override(target, state) => self.apply_override(target, state, args),
            _ => unreachable!("show commands return above"),
        }
    }

    fn config_source(&mut self, args: &[&str]) -> Outcome {
        if args.len() > 1 {
            return Outcome::failed("Unexpected arguments");
        }
        let source = args.first().copied().unwrap_or("");
        match self.engine.config_source(source) {
            Ok(old) if source.is_empty() => Outcome::text(format!("Config source is {old}\n")),
            Ok(old) => Outcome::text(format!("Config source is {source} (was {old})\n")),
            Err(e) => Outcome::failed(format!("Failed to change config source: {e}")),
        }
    }

    /// `override <target> state <state> <name>`: checks that the engine
    /// reports the target, then sends the override.
    fn apply_override(
        &mut self,
        target: OverrideTarget,
        state: OverrideState,
        args: &[&str],
    ) -> Outcome {
        let kind = target.name();
        let [name] = args else {
            return Outcome {
                output: format!("override {kind} state <default|disabled|enabled> <{kind}>\n"),
                error: Some("Incorrect arguments given.".to_string()),
                exit: false,
            };
        };
        let vservers = match self.engine.vservers() {
            Ok(list) => list,
            Err(e) => return Outcome::failed(format!("Failed to retrieve list of vservers: {e}")),
        };
        let no_such = || Outcome::failed(format!("No such {kind} - {name}"));

        let state = state as i32;
        let result = match target {
            OverrideTarget::Vserver => {
                if !vservers.vservers.iter().any(|v| v.name == *name) {
                    return no_such();
                }
                self.engine.override_vserver(VserverOverride {
                    vserver: name.to_string(),
                    state,
                })
            }
            OverrideTarget::Backend => {
                let known = select::select_backends(&vservers, Some(name))
                    .is_ok_and(|groups| groups.contains_key(name));
                if !known {
                    return no_such();
                }
                self.engine.override_backend(BackendOverride {
                    hostname: name.to_string(),
                    state,
                })
            }
            OverrideTarget::Destination => {
                let Some(view) = select::find_destination(&vservers, name) else {
                    return no_such();
                };
                self.engine.override_destination(DestinationOverride {
                    vserver: view.destination.vserver_name.clone(),
                    destination: name.to_string(),
                    state,
                })
            }
        };
        match result {
            Ok(()) => Outcome::default(),
            Err(e) => Outcome::failed(format!("Override {kind} state failed - {e}")),
        }
    }

    /// Runs the show command `action` in `format`; `args` contain no `-o`.
    pub fn show(&mut self, action: Action, args: &[&str], format: Format) -> Outcome {
        // The original prints a usage line, and succeeds, when a show
        // command gets too many arguments; JSON output fails instead, so
        // that a script never parses a usage line.
        let usage = match action {
            Action::ShowBackends => Some("show backend <backend>"),
            Action::ShowDestinations => Some("show destinations <vserver|destination>"),
            Action::ShowNodes => Some("show node <node>"),
            Action::ShowVlans => Some("show vlans [<id>|<ip>]"),
            Action::ShowVservers => Some("show vserver [<vserver>]"),
            _ => None,
        };
        if let Some(usage) = usage
            && args.len() > 1
        {
            return match format {
                Format::Text => Outcome::text(format!("{usage}\n")),
                Format::Json => Outcome::failed(format!("Too many arguments: {usage}")),
            };
        }

        let arg = args.first().copied();
        let result = match action {
            Action::ConfigStatus => self.config_status(format),
            Action::ShowBackends => self.show_backends(arg, format),
            Action::ShowBgpNeighbors => self.show_bgp_neighbors(args, format),
            Action::ShowDestinations => self.show_destinations(arg, format),
            Action::ShowHa => self.show_ha(format),
            Action::ShowNodes => self.show_nodes(arg, format),
            Action::ShowVersion => self.show_version(format),
            Action::ShowVlans => self.show_vlans(arg, format),
            Action::ShowVservers => self.show_vservers(arg, format),
            Action::ShowWarnings => self.show_warnings(format),
            _ => unreachable!("{action:?} is not a show command"),
        };
        Outcome::from(result)
    }

    fn config_status(&mut self, format: Format) -> Result<String, String> {
        let status = self
            .engine
            .config_status()
            .map_err(|e| format!("Failed to get config status: {e}"))?;
        Ok(match format {
            Format::Text => render::config_status(&status, &(self.clock)().zone),
            Format::Json => json::to_text(&json::ConfigStatusJson::from(&status)),
        })
    }

    fn show_warnings(&mut self, format: Format) -> Result<String, String> {
        let status = self
            .engine
            .config_status()
            .map_err(|e| format!("Failed to get config status: {e}"))?;
        Ok(match format {
            Format::Text => render::warnings(&status),
            Format::Json => json::to_text(&json::WarningsJson {
                warnings: status.warnings,
            }),
        })
    }

    fn show_ha(&mut self, format: Format) -> Result<String, String> {
        // The original's message ends with a newline of its own, so an
        // empty line follows it.
        let ha = self
            .engine
            .ha_status()
            .map_err(|e| format!("HA status: {e}\n"))?;
        let clock = (self.clock)();
        Ok(match format {
            Format::Text => render::ha_status(&ha, &clock),
            Format::Json => json::to_text(&json::HaJson::new(&ha, clock.now_ms)),
        })
    }

    fn show_nodes(&mut self, name: Option<&str>, format: Format) -> Result<String, String> {
        let cluster = self
            .engine
            .cluster_status()
            .map_err(|e| format!("Failed to get cluster status: {e}"))?;
        let nodes = match name {
            Some(name) => vec![select::find_node(&cluster, name)?],
            None => select::sorted_nodes(&cluster),
        };
        Ok(match (format, name) {
            (Format::Text, Some(_)) => render::node_detail(&cluster, nodes[0]),
            (Format::Text, None) => render::node_list(&nodes),
            (Format::Json, _) => json::to_text(&json::NodesJson::new(&cluster, &nodes)),
        })
    }

    fn show_version(&mut self, format: Format) -> Result<String, String> {
        if format == Format::Text {
            // The original never implemented it; scripts may expect this.
            return Err("unimplemented".to_string());
        }
        let cluster = self
            .engine
            .cluster_status()
            .map_err(|e| format!("Failed to get cluster status: {e}"))?;
        Ok(json::to_text(&json::VersionJson {
            cli_version: env!("CARGO_PKG_VERSION").to_string(),
            engine_version: cluster.version,
        }))
    }

    fn show_vlans(&mut self, arg: Option<&str>, format: Format) -> Result<String, String> {
        let list = self
            .engine
            .vlans()
            .map_err(|e| format!("failed to get VLANs: {e}"))?;
        let vlans = match arg {
            Some(arg) => vec![select::find_vlan(&list, arg)?],
            None => select::sorted_vlans(&list),
        };
        Ok(match (format, arg) {
            (Format::Text, Some(_)) => render::vlan_detail(vlans[0]),
            (Format::Text, None) => render::vlan_list(&vlans),
            (Format::Json, _) => json::to_text(&json::VlansJson {
                vlans: vlans.iter().map(|v| json::VlanJson::from(*v)).collect(),
            }),
        })
    }

    fn show_bgp_neighbors(&mut self, args: &[&str], format: Format) -> Result<String, String> {
        let list = self
            .engine
            .bgp_neighbors()
            .map_err(|e| format!("Failed to get BGP neighbors: {e}"))?;
        let neighbors = match args {
            [] => list.neighbors.iter().collect(),
            [ip] => vec![select::find_neighbor(&list, ip)?],
            _ => return Err("Too many arguments".to_string()),
        };
        Ok(match (format, args.is_empty()) {
            (Format::Text, true) => render::neighbor_list(&list),
            (Format::Text, false) => render::neighbor_detail(neighbors[0]),
            (Format::Json, _) => json::to_text(&json::NeighborsJson {
                neighbors: neighbors
                    .iter()
                    .map(|n| json::NeighborJson::from(*n))
                    .collect(),
            }),
        })
    }

    fn show_vservers(&mut self, filter: Option<&str>, format: Format) -> Result<String, String> {
        let list = self
            .engine
            .vservers()
            .map_err(|e| format!("Failed to get vservers: {e}\n"))?;
        let vservers = select::filter_vservers(&list, filter.unwrap_or(""));
        if format == Format::Json {
            return Ok(json::to_text(&json::VserversJson {
                vservers: vservers
                    .iter()
                    .map(|v| json::VserverJson::from(*v))
                    .collect(),
            }));
        }
        Ok(match vservers.as_slice() {
            [] if filter.is_some() => "No matching vservers\n".to_string(),
            [] => "No vservers found\n".to_string(),
            [only] => render::vserver_detail(only),
            _ => render::vserver_list(&vservers),
        })
    }

    fn show_destinations(
        &mut self,
        prefix: Option<&str>,
        format: Format,
    ) -> Result<String, String> {
        let list = self
            .engine
            .vservers()
            .map_err(|e| format!("Failed to get vservers: {e}"))?;
        let views = select::select_destinations(&list, prefix)?;
        Ok(match (format, views.as_slice()) {
            (Format::Json, _) => json::to_text(&json::DestinationsJson {
                destinations: views.iter().map(json::DestinationJson::from).collect(),
            }),
            (Format::Text, [only]) => render::destination_detail(only),
            (Format::Text, _) => render::destination_list(&views),
        })
    }

    fn show_backends(&mut self, prefix: Option<&str>, format: Format) -> Result<String, String> {
        let list = self
            .engine
            .vservers()
            .map_err(|e| format!("Failed to get vservers: {e}"))?;
        let groups = select::select_backends(&list, prefix)?;
        if format == Format::Json {
            return Ok(json::to_text(&json::BackendsJson::from(&groups)));
        }
        Ok(match groups.iter().next() {
            Some((host, views)) if groups.len() == 1 => render::backend_detail(host, views),
            _ => render::backend_list(&groups),
        })
    }
}

/// Splits `-o FORMAT` (or `-o=FORMAT`) off the arguments of a show
/// command.
fn take_format<'a>(args: &[&'a str]) -> Result<(Option<Format>, Vec<&'a str>), String> {
    let mut format = None;
    let mut rest = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if *word == "-o" {
            let Some(value) = words.next() else {
                return Err("-o needs a format: text or json".to_string());
            };
            format = Some(value.parse()?);
        } else if let Some(value) = word.strip_prefix("-o=") {
            format = Some(value.parse()?);
        } else {
            rest.push(*word);
        }
    }
    Ok((format, rest))
}

/// `config check [<cluster.pb> [<seesaw.cfg>]]`: the offline check of
/// `seesaw_engine -check`, on files of this machine.
fn config_check(args: &[&str]) -> Outcome {
    let (cluster, node_config) = match args {
        [] => (DEFAULT_CLUSTER_FILE, DEFAULT_NODE_CONFIG_FILE),
        [cluster] => (*cluster, DEFAULT_NODE_CONFIG_FILE),
        [cluster, node_config] => (*cluster, *node_config),
        _ => {
            return Outcome {
                output: "config check [<cluster.pb> [<seesaw.cfg>]]\n".to_string(),
                error: Some("Incorrect arguments given.".to_string()),
                exit: false,
            };
        }
    };
    let report = check(&CheckRequest {
        node_config: PathBuf::from(node_config),
        cluster: PathBuf::from(cluster),
        peer_node_config: None,
    });

    if let Some(summary) = report.summary {
        return Outcome::text(summary);
    }
    let mut lines: Vec<String> = report.diagnostics.iter().map(ToString::to_string).collect();
    let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
    lines.push(format!("configuration rejected with {errors} error(s)"));
    Outcome::failed(lines.join("\n"))
}
