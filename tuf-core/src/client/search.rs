//! The delegation search of §5.6.7, over the roles a [`TrustedMetadataSet`] trusts now:
//! one walk, shared by the updater (which loads the role the walk stops at, and walks
//! again) and by the repository audit (which checks that each listed target is what a
//! client looking it up gets).

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::trusted::TrustedMetadataSet;
use crate::metadata::TargetFile;

/// A target found by the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLookup {
    /// The signed length, hashes and custom data.
    pub info: TargetFile,
    /// The targets role that listed it.
    pub role: String,
    /// The role that delegated `role` on the search path (`root` for top-level
    /// targets): with [`TrustedMetadataSet::authorised_keys`], the keys that may sign it.
    pub delegator: String,
    /// The earliest expiry among the targets roles on the delegation path to `role`
    /// (top-level targets included): after it, the answer must be looked up again.
    pub valid_until: DateTime<Utc>,
}

/// Where a walk over the trusted roles ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegationWalk {
    /// A trusted role lists the target.
    Found(TargetLookup),
    /// No role on the search path lists it.
    NotFound,
    /// The search reached `role`, delegated by `delegator`, which is not trusted through
    /// that delegator yet: load it (§5.6) and walk again.
    Needs {
        /// The role to load.
        role: String,
        /// Its delegator on the search path (`root` for top-level targets).
        delegator: String,
    },
}

/// §5.6.7: a pre-order depth-first search from top-level targets for `target_path`,
/// visiting only the roles whose delegation covers the path, skipping roles already
/// visited (cycles), ending at a terminating delegation (the roles still waiting are not
/// consulted), and visiting at most `max_delegations` roles.
pub fn walk_delegations(
    trusted: &TrustedMetadataSet,
    target_path: &str,
    max_delegations: usize,
) -> DelegationWalk {
    // (role, its delegator, the earliest expiry on the path to the delegator)
    let mut stack = vec![(
        "targets".to_owned(),
        "root".to_owned(),
        DateTime::<Utc>::MAX_UTC,
    )];
    let mut visited: HashSet<String> = HashSet::new();
    let mut budget = max_delegations;
    while budget > 0 {
        let Some((role, delegator, path_expiry)) = stack.pop() else {
            break;
        };
        // §5.6.7.1: a role already visited is skipped (cycles).
        if visited.contains(&role) {
            continue;
        }
        let Some(targets) = trusted.targets_via(&role, &delegator) else {
            return DelegationWalk::Needs { role, delegator };
        };
        let path_expiry = path_expiry.min(targets.signed().expires);
        // §5.6.7.2: the first role listing the path decides.
        if let Some(info) = targets.signed().targets.get(target_path) {
            return DelegationWalk::Found(TargetLookup {
                info: info.clone(),
                role,
                delegator,
                valid_until: path_expiry,
            });
        }
        visited.insert(role.clone());
        budget -= 1;
        // §5.6.7.2: the delegations covering the path, pre-order (the first listed is
        // searched first); a terminating delegation ends the search after it.
        let step = targets.signed().delegations_for_path(target_path);
        if step.terminating {
            stack.clear();
        }
        stack.extend(
            step.roles
                .into_iter()
                .rev()
                .map(|child| (child, role.clone(), path_expiry)),
        );
    }
    DelegationWalk::NotFound
}
