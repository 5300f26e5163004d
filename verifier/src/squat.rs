//! The proxy's typosquat guard (spec/trust-policy.md, "Typosquats"): the names a refused
//! or unknown crate must not look like.
//!
//! The corpus is the well-known names (the shipped list, or `well_known_crates`), the
//! crates the trust policy names (its developers' `crates` and its exceptions, read again
//! when the policy is reloaded), and the crates this proxy has served: a crate with a
//! version that passed every check is a trusted crate. Names learned while serving are
//! kept in memory (at most [`MAX_LEARNED_NAMES`]) and their guard is rebuilt only when a
//! check needs it after new names arrived, which is on the way to a refusal.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tuf_core::typosquat::{LooksLike, SquatGuard};

use crate::policy::enforce::PolicyState;

/// The most names learned from served crates; later ones are not added.
pub const MAX_LEARNED_NAMES: usize = 100_000;

/// The largest `well_known_crates` file read.
const MAX_WELL_KNOWN_BYTES: u64 = 16 * 1024 * 1024;

/// Names learned since start: served crates, and the policy's names.
#[derive(Default)]
struct Learned {
    /// Folded name → the spelling first seen (what messages show).
    names: BTreeMap<String, String>,
    /// The guard over `names`; `None` when names arrived since it was built.
    guard: Option<Arc<SquatGuard>>,
    /// The policy generation whose names are in `names`.
    policy_generation: u64,
}

/// The typosquat guard of a running proxy.
pub struct SquatGuards {
    well_known: SquatGuard,
    well_known_names: usize,
    policy: Option<Arc<PolicyState>>,
    learned: Mutex<Learned>,
}

impl std::fmt::Debug for SquatGuards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SquatGuards")
    }
}

/// Reads a `well_known_crates` file: one name per line, `#` comments.
pub fn read_well_known(path: &Path) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open well_known_crates {}", path.display()))?;
    let bytes = tuf_core::fs::read_bounded(file, MAX_WELL_KNOWN_BYTES)
        .with_context(|| format!("cannot read well_known_crates {}", path.display()))?;
    let text = String::from_utf8(bytes)
        .with_context(|| format!("well_known_crates {}: not UTF-8", path.display()))?;
    Ok(tuf_core::typosquat::parse_names(&text))
}

impl SquatGuards {
    /// A guard over `well_known` (see [`read_well_known`]), the names of `policy` when
    /// there is one, and the crates served from now on.
    pub fn new(well_known: Vec<String>, policy: Option<Arc<PolicyState>>) -> Self {
        let well_known_names = well_known.len();
        let guards = Self {
            well_known: SquatGuard::new(well_known),
            well_known_names,
            policy,
            learned: Mutex::new(Learned::default()),
        };
        guards.learn_policy();
        tracing::info!(
            well_known = well_known_names,
            learned = guards.learned_names(),
            "typosquat guard: names a crate must not look like"
        );
        guards
    }

    /// How many well-known names the guard holds.
    pub fn well_known_names(&self) -> usize {
        self.well_known_names
    }

    /// How many names were learned (the policy's and served crates).
    pub fn learned_names(&self) -> usize {
        self.lock().names.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds the names of the policy in force, if it changed since they were added.
    fn learn_policy(&self) {
        let Some(state) = &self.policy else { return };
        let active = state.current();
        let mut learned = self.lock();
        if learned.policy_generation == active.generation {
            return;
        }
        learned.policy_generation = active.generation;
        let names = active
            .policy
            .developers
            .iter()
            .flat_map(|d| d.crates.iter().cloned())
            .chain(
                active
                    .policy
                    .exceptions
                    .iter()
                    .map(|e| e.crate_name.clone()),
            );
        for name in names {
            add(&mut learned, &name);
        }
    }

    /// Remembers `name` as a trusted crate: one this proxy served a version of.
    pub fn learn_served(&self, name: &str) {
        let folded = tuf_core::typosquat::fold(name);
        let mut learned = self.lock();
        if !learned.names.contains_key(&folded) {
            add(&mut learned, name);
        }
    }

    /// The trusted or well-known names `name` looks like, and how; empty when it looks
    /// like none (or is one of them).
    pub fn looks_like(&self, name: &str) -> Vec<LooksLike> {
        self.learn_policy();
        let learned = {
            let mut learned = self.lock();
            if learned.guard.is_none() && !learned.names.is_empty() {
                learned.guard = Some(Arc::new(SquatGuard::new(learned.names.values())));
            }
            learned.guard.clone()
        };
        let mut found = self.well_known.looks_like(name);
        if let Some(guard) = learned {
            for like in guard.looks_like(name) {
                if !found.iter().any(|f| f.name == like.name) {
                    found.push(like);
                }
            }
        }
        found
    }
}

fn add(learned: &mut Learned, name: &str) {
    if learned.names.len() >= MAX_LEARNED_NAMES {
        return;
    }
    if let std::collections::btree_map::Entry::Vacant(entry) =
        learned.names.entry(tuf_core::typosquat::fold(name))
    {
        entry.insert(name.to_owned());
        learned.guard = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn served_crates_join_the_corpus_and_the_guard_is_rebuilt_only_when_they_do() {
        let guards = SquatGuards::new(vec!["serde_json".into()], None);
        assert_eq!(guards.looks_like("serde_jsno")[0].name, "serde_json");
        assert!(guards.looks_like("acme_ledgr").is_empty());
        guards.learn_served("acme-ledger");
        assert_eq!(guards.learned_names(), 1);
        let found = guards.looks_like("acme_ledgr");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, "acme-ledger", "the spelling served");
        let built = guards.lock().guard.clone().unwrap();
        // Learning a name already known (in any spelling) keeps the guard built.
        guards.learn_served("ACME_ledger");
        assert!(Arc::ptr_eq(&built, &guards.lock().guard.clone().unwrap()));
        guards.learn_served("acme-books");
        assert!(guards.lock().guard.is_none(), "rebuilt at the next check");
        assert_eq!(guards.looks_like("acme_bokos")[0].name, "acme-books");
        // A served crate is not a squat of itself.
        assert!(guards.looks_like("acme_ledger").is_empty());
    }

    #[test]
    fn learning_stops_at_the_cap() {
        let mut learned = Learned::default();
        for i in 0..MAX_LEARNED_NAMES + 10 {
            add(&mut learned, &format!("crate{i}"));
        }
        assert_eq!(learned.names.len(), MAX_LEARNED_NAMES);
    }
}
