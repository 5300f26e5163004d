//! The delegation search of §5.6.7, over the roles a [`TrustedMetadataSet`] trusts now:
//! one walk, shared by the updater (which loads the role the walk stops at, and walks
//! again) and by the repository audit (which checks that each listed target is what a
//! client looking it up gets).

use std::borrow::Cow;

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

/// A target found by [`find_target`], borrowed from the trusted roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoundTarget<'t> {
    /// The target path, as the listing role spells it.
    pub path: &'t str,
    /// The signed length, hashes and custom data.
    pub info: &'t TargetFile,
    /// The targets role that listed it.
    pub role: &'t str,
    /// The earliest expiry among the targets roles on the delegation path to `role`.
    pub valid_until: DateTime<Utc>,
}

/// Where a borrowed walk ([`find_target`]) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetFind<'t> {
    /// A trusted role lists the target.
    Found {
        /// What it lists.
        target: FoundTarget<'t>,
        /// The role that delegated the listing role on the search path.
        delegator: Cow<'t, str>,
    },
    /// No role on the search path lists it.
    NotFound,
    /// The search reached `role`, delegated by `delegator`, which is not trusted through
    /// that delegator yet.
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
///
/// The owned answer of [`find_target`], which walks.
pub fn walk_delegations(
    trusted: &TrustedMetadataSet,
    target_path: &str,
    max_delegations: usize,
) -> DelegationWalk {
    match find_target(trusted, target_path, max_delegations) {
        TargetFind::Found { target, delegator } => DelegationWalk::Found(TargetLookup {
            info: target.info.clone(),
            role: target.role.to_owned(),
            delegator: delegator.into_owned(),
            valid_until: target.valid_until,
        }),
        TargetFind::NotFound => DelegationWalk::NotFound,
        TargetFind::Needs { role, delegator } => DelegationWalk::Needs { role, delegator },
    }
}

/// The search of [`walk_delegations`], answering with references into `trusted`: what
/// a caller looking up many paths uses (the repository audit looks up every target), as
/// it copies nothing and allocates only for hash-bin names.
pub fn find_target<'t>(
    trusted: &'t TrustedMetadataSet,
    target_path: &str,
    max_delegations: usize,
) -> TargetFind<'t> {
    // (role, its delegator, the earliest expiry on the path to the delegator)
    let mut stack: Vec<(Cow<'t, str>, Cow<'t, str>, DateTime<Utc>)> = vec![(
        Cow::Borrowed("targets"),
        Cow::Borrowed("root"),
        DateTime::<Utc>::MAX_UTC,
    )];
    // Roles visited: few (a path's search visits one role per delegation level), so a
    // list beats a hash set.
    let mut visited: Vec<Cow<'t, str>> = Vec::new();
    let mut budget = max_delegations;
    while budget > 0 {
        let Some((role, delegator, path_expiry)) = stack.pop() else {
            break;
        };
        // §5.6.7.1: a role already visited is skipped (cycles).
        if visited.contains(&role) {
            continue;
        }
        let Some((role_name, targets)) = trusted.targets_entry_via(&role, &delegator) else {
            return TargetFind::Needs {
                role: role.into_owned(),
                delegator: delegator.into_owned(),
            };
        };
        let signed = targets.signed();
        let path_expiry = path_expiry.min(signed.expires);
        // §5.6.7.2: the first role listing the path decides.
        if let Some((path, info)) = signed.targets.get_key_value(target_path) {
            return TargetFind::Found {
                target: FoundTarget {
                    path,
                    info,
                    role: role_name,
                    valid_until: path_expiry,
                },
                delegator,
            };
        }
        budget -= 1;
        // §5.6.7.2: the delegations covering the path, pre-order (the first listed is
        // searched first); a terminating delegation ends the search after it.
        let step = signed.delegations_for_path(target_path);
        if step.terminating {
            stack.clear();
        }
        stack.extend(
            step.roles
                .into_iter()
                .rev()
                .map(|child| (child, Cow::Borrowed(role_name), path_expiry)),
        );
        visited.push(role);
    }
    TargetFind::NotFound
}
