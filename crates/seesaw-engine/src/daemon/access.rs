//! Access control of the engine's API: callers are identified by the Unix
//! socket's peer credentials, never by anything they send.
//!
//! - root, and the user the engine runs as, may call everything;
//! - members of the admin group may read and change (failover, reload,
//!   overrides);
//! - members of the operator group may read, and override the vservers
//!   whose `access_grant` names them or one of their access groups;
//! - members of the reader group may read.
//!
//! The components' calls (seesaw_ha, seesaw_healthcheck) need root.

use std::collections::BTreeSet;

use nix::unistd::{Gid, Group, Uid, User};
use seesaw_config::model::Cluster;
use tonic::Status;
use tonic::transport::server::UdsConnectInfo;

/// The group names that grant access; `None` grants nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessGroups {
    pub admin: Option<String>,
    pub operator: Option<String>,
    pub reader: Option<String>,
}

/// The level of access a caller has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    None,
    Reader,
    Operator,
    Admin,
    Root,
}

/// A caller identified by its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub user: String,
    pub groups: BTreeSet<String>,
    pub role: Role,
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} [uid {}]", self.user, self.uid)
    }
}

impl Caller {
    /// Identifies the caller of `request`. A request that did not come
    /// over a Unix socket with credentials gets no role.
    pub fn of<T>(request: &tonic::Request<T>, groups: &AccessGroups) -> Caller {
        let credentials = request
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|info| info.peer_cred);
        match credentials {
            Some(credentials) => Caller::from_ids(credentials.uid(), credentials.gid(), groups),
            None => Caller {
                uid: u32::MAX,
                user: "(unknown)".into(),
                groups: BTreeSet::new(),
                role: Role::None,
            },
        }
    }

    /// Looks the user and its groups up in the system's databases.
    pub fn from_ids(uid: u32, gid: u32, groups: &AccessGroups) -> Caller {
        let user = User::from_uid(Uid::from_raw(uid)).ok().flatten();
        let name = user
            .as_ref()
            .map(|user| user.name.clone())
            .unwrap_or_else(|| uid.to_string());
        let mut gids = vec![Gid::from_raw(gid)];
        if let Some(user) = &user
            && let Ok(c_name) = std::ffi::CString::new(user.name.clone())
            && let Ok(list) = nix::unistd::getgrouplist(&c_name, user.gid)
        {
            gids.extend(list);
        }
        let names: BTreeSet<String> = gids
            .into_iter()
            .filter_map(|gid| Group::from_gid(gid).ok().flatten())
            .map(|group| group.name)
            .collect();
        Caller::with_groups(uid, name, names, groups)
    }

    pub fn with_groups(
        uid: u32,
        user: String,
        names: BTreeSet<String>,
        groups: &AccessGroups,
    ) -> Caller {
        let member = |group: &Option<String>| group.as_ref().is_some_and(|g| names.contains(g));
        // The engine's own user can already do all the engine can, so its
        // processes count as root (this lets tests run unprivileged).
        let role = if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
            Role::Root
        } else if member(&groups.admin) {
            Role::Admin
        } else if member(&groups.operator) {
            Role::Operator
        } else if member(&groups.reader) {
            Role::Reader
        } else {
            Role::None
        };
        Caller {
            uid,
            user,
            groups: names,
            role,
        }
    }

    fn require(&self, role: Role, what: &str) -> Result<(), Status> {
        if self.role >= role {
            Ok(())
        } else {
            tracing::warn!("{what} denied for {self}");
            Err(Status::permission_denied(format!(
                "insufficient access: {what} needs {}",
                match role {
                    Role::Root => "root",
                    Role::Admin => "root or the admin group",
                    Role::Operator => "root, the admin or the operator group",
                    _ => "root or an access group",
                }
            )))
        }
    }

    pub fn require_component(&self, what: &str) -> Result<(), Status> {
        self.require(Role::Root, what)
    }

    pub fn require_read(&self, what: &str) -> Result<(), Status> {
        self.require(Role::Reader, what)
    }

    pub fn require_write(&self, what: &str) -> Result<(), Status> {
        self.require(Role::Admin, what)
    }

    /// Allows a vserver override for admins, and for operators the
    /// vserver grants access to. Returns why it is allowed.
    pub fn may_override_vserver(
        &self,
        cluster: Option<&Cluster>,
        vserver: &str,
    ) -> Result<String, Status> {
        match self.role {
            Role::Root => return Ok("root".into()),
            Role::Admin => return Ok("administrator".into()),
            Role::Operator => {}
            _ => {
                return Err(Status::permission_denied("insufficient access"));
            }
        }
        let grants = cluster
            .and_then(|cluster| cluster.vservers.get(vserver).map(|v| (cluster, v)))
            .map(|(cluster, v)| {
                v.access_grants
                    .values()
                    .filter_map(|grant| {
                        let allowed = if grant.is_group {
                            cluster
                                .access_groups
                                .get(&grant.grantee)
                                .is_some_and(|members| members.contains(&self.user))
                        } else {
                            grant.grantee == self.user
                        };
                        allowed.then(|| grant.key())
                    })
                    .next()
            });
        match grants.flatten() {
            Some(reason) => Ok(reason),
            None => Err(Status::permission_denied(format!(
                "insufficient access: user \"{}\" is not authorized to control \"{vserver}\"",
                self.user
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> AccessGroups {
        AccessGroups {
            admin: Some("lb-admin".into()),
            operator: Some("lb-ops".into()),
            reader: Some("lb-read".into()),
        }
    }

    /// A uid that is neither root nor the test's own.
    const OTHER: u32 = 54_321;

    fn caller(uid: u32, member_of: &[&str]) -> Caller {
        let names = member_of.iter().map(|name| name.to_string()).collect();
        Caller::with_groups(uid, "alice".into(), names, &groups())
    }

    #[test]
    fn roles_follow_groups() {
        assert_eq!(caller(0, &[]).role, Role::Root);
        assert_eq!(caller(OTHER, &["lb-admin", "lb-read"]).role, Role::Admin);
        assert_eq!(caller(OTHER, &["lb-ops"]).role, Role::Operator);
        assert_eq!(caller(OTHER, &["lb-read"]).role, Role::Reader);
        assert_eq!(caller(OTHER, &["users"]).role, Role::None);
    }

    #[test]
    fn reader_and_component_access() {
        let reader = caller(OTHER, &["lb-read"]);
        assert!(reader.require_read("Vservers").is_ok());
        assert!(reader.require_write("Failover").is_err());
        assert!(
            caller(OTHER, &["lb-admin"])
                .require_component("HaUpdate")
                .is_err()
        );
        assert!(caller(0, &[]).require_component("HaUpdate").is_ok());
    }

    #[test]
    fn unset_groups_grant_nothing() {
        let caller = Caller::with_groups(
            OTHER,
            "alice".into(),
            [String::new()].into_iter().collect(),
            &AccessGroups::default(),
        );
        assert_eq!(caller.role, Role::None);
    }
}
