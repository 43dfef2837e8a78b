//! The comparison of this engine's check states with the peer's.
//!
//! Each engine runs its own checks and serves by their results, because
//! the two nodes can reach the backends by different paths. A check that
//! one node finds healthy and the other unhealthy means that a failover
//! would change which destinations serve, so the backup reports it.

use std::collections::BTreeSet;

use super::state::{CheckId, CheckStates};
use crate::checks::CheckState;

/// A check on which the two engines disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub check: CheckId,
    pub peer: CheckState,
    pub local: CheckState,
}

/// The result of one comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Disagreements seen in this comparison and the one before, and not
    /// reported yet.
    pub new: Vec<Disagreement>,
    /// How many reported disagreements are gone.
    pub resolved: usize,
    /// How many disagreements are reported and still present.
    pub ongoing: usize,
}

/// Compares check states over time. A disagreement counts once it is seen
/// in two comparisons in a row, because results reach the two engines at
/// different times.
#[derive(Debug, Default)]
pub struct HealthComparison {
    /// Disagreements seen in the last comparison.
    seen: BTreeSet<CheckId>,
    /// Disagreements already reported.
    reported: BTreeSet<CheckId>,
}

impl HealthComparison {
    /// Compares the checks known on both engines.
    pub fn compare(&mut self, peer: &CheckStates, local: &CheckStates) -> Comparison {
        let current: Vec<Disagreement> = peer
            .iter()
            .filter_map(|(check, peer_state)| {
                let local_state = local.get(check)?;
                (local_state != peer_state).then(|| Disagreement {
                    check: check.clone(),
                    peer: *peer_state,
                    local: *local_state,
                })
            })
            .collect();
        let current_ids: BTreeSet<CheckId> = current.iter().map(|d| d.check.clone()).collect();

        let new: Vec<Disagreement> = current
            .into_iter()
            .filter(|d| self.seen.contains(&d.check) && !self.reported.contains(&d.check))
            .collect();
        let before = self.reported.len();
        self.reported.retain(|check| current_ids.contains(check));
        let resolved = before - self.reported.len();
        let ongoing = self.reported.len();
        self.reported
            .extend(new.iter().map(|disagreement| disagreement.check.clone()));
        self.seen = current_ids;
        Comparison {
            new,
            resolved,
            ongoing,
        }
    }

    /// Forgets everything, as for a new peer session.
    pub fn reset(&mut self) {
        self.seen.clear();
        self.reported.clear();
    }
}

/// Describes up to `limit` disagreements for a log line, with a count of
/// the rest.
pub fn describe(disagreements: &[Disagreement], limit: usize) -> String {
    let mut parts: Vec<String> = disagreements
        .iter()
        .take(limit)
        .map(|d| {
            format!(
                "{} {} (peer {}, here {})",
                d.check.0,
                d.check.1,
                state_name(d.peer),
                state_name(d.local)
            )
        })
        .collect();
    if disagreements.len() > limit {
        parts.push(format!("and {} more", disagreements.len() - limit));
    }
    parts.join("; ")
}

fn state_name(state: CheckState) -> &'static str {
    match state {
        CheckState::Unknown => "unknown",
        CheckState::Unhealthy => "unhealthy",
        CheckState::Healthy => "healthy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(entries: &[(&str, CheckState)]) -> CheckStates {
        entries
            .iter()
            .map(|(check, state)| (("web".to_string(), check.to_string()), *state))
            .collect()
    }

    #[test]
    fn disagreement_counts_on_second_sight() {
        let mut comparison = HealthComparison::default();
        let peer = states(&[("a", CheckState::Healthy), ("b", CheckState::Healthy)]);
        let local = states(&[("a", CheckState::Unhealthy), ("b", CheckState::Healthy)]);

        let first = comparison.compare(&peer, &local);
        assert!(first.new.is_empty(), "{first:?}");

        let second = comparison.compare(&peer, &local);
        assert_eq!(second.new.len(), 1, "{second:?}");
        assert_eq!(second.new[0].check.1, "a");
        assert_eq!(second.new[0].peer, CheckState::Healthy);
        assert_eq!(second.new[0].local, CheckState::Unhealthy);

        let third = comparison.compare(&peer, &local);
        assert!(third.new.is_empty(), "reported once: {third:?}");
        assert_eq!(third.ongoing, 1);
    }

    #[test]
    fn resolved_disagreement_is_counted() {
        let mut comparison = HealthComparison::default();
        let peer = states(&[("a", CheckState::Healthy)]);
        let local = states(&[("a", CheckState::Unhealthy)]);
        comparison.compare(&peer, &local);
        comparison.compare(&peer, &local);

        let agreed = comparison.compare(&peer, &peer);
        assert_eq!(agreed.resolved, 1);
        assert_eq!(agreed.ongoing, 0);
        assert!(agreed.new.is_empty());
    }

    #[test]
    fn flapping_disagreement_is_not_reported() {
        let mut comparison = HealthComparison::default();
        let peer = states(&[("a", CheckState::Healthy)]);
        let local = states(&[("a", CheckState::Unhealthy)]);
        for _ in 0..3 {
            assert!(comparison.compare(&peer, &local).new.is_empty());
            assert!(comparison.compare(&peer, &peer).new.is_empty());
        }
    }

    #[test]
    fn check_known_on_one_side_is_ignored() {
        let mut comparison = HealthComparison::default();
        let peer = states(&[("a", CheckState::Healthy)]);
        let local = states(&[("b", CheckState::Unhealthy)]);
        comparison.compare(&peer, &local);
        let second = comparison.compare(&peer, &local);
        assert!(second.new.is_empty(), "{second:?}");
    }

    #[test]
    fn describe_limits_the_list() {
        let disagreements: Vec<Disagreement> = ["a", "b", "c"]
            .iter()
            .map(|check| Disagreement {
                check: ("web".to_string(), check.to_string()),
                peer: CheckState::Healthy,
                local: CheckState::Unhealthy,
            })
            .collect();
        assert_eq!(
            describe(&disagreements, 2),
            "web a (peer healthy, here unhealthy); web b (peer healthy, here unhealthy); and 1 more"
        );
    }
}
