//! The proxy's typosquat guard (spec/trust-policy.md, "Typosquats"): the names a refused
//! or unknown crate must not look like.
//!
//! The corpus is the well-known names (the shipped list, or `well_known_crates`), the
//! crates the trust policy names (its developers' `crates` and its exceptions, read again
//! when the policy is reloaded), and the crates this proxy has served: a crate with a
//! version that passed every check is a trusted crate. Names learned while serving are
//! kept in memory (at most [`MAX_LEARNED_NAMES`]).
//!
//! Building a guard costs time that grows with its names (typomania precomputes every
//! name's bit flips: 30 ms for 447 names, 0.17 s for 2,000, 3.3 s for 20,000, here in a
//! release build; 25 s for 100,000), so the
//! guard over learned names is never built on a request: when names arrived, it is built
//! again on a thread of its own, and checks use the previous one until it is done. A
//! build waits at least [`REBUILD_PAUSE_FACTOR`] times the previous build's duration
//! after it, so rebuilding takes at most a tenth of one core however fast crates arrive.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use tuf_core::typosquat::{LooksLike, SquatGuard};

use crate::policy::enforce::PolicyState;

/// The most names learned from served crates and the policy; later ones are not added.
pub const MAX_LEARNED_NAMES: usize = 20_000;

/// How many times the previous build's duration must pass before the next build starts.
pub const REBUILD_PAUSE_FACTOR: u32 = 10;

/// The largest `well_known_crates` file read.
const MAX_WELL_KNOWN_BYTES: u64 = 16 * 1024 * 1024;

/// Names learned since start (served crates, the policy's names) and the state of the
/// guard over them.
#[derive(Default)]
struct Learned {
    /// Folded name → the spelling first seen (what messages show).
    names: BTreeMap<String, String>,
    /// Names arrived since the guard in use was built (or started to be).
    dirty: bool,
    /// A build is running.
    building: bool,
    /// When the last build ended, and how long it took.
    last_build: Option<(Instant, Duration)>,
    /// The policy generation whose names are in `names`.
    policy_generation: u64,
}

/// What the proxy and the thread that builds guards share.
#[derive(Default)]
struct Shared {
    learned: Mutex<Learned>,
    /// The guard over learned names in use (the newest built).
    guard: RwLock<Option<Arc<SquatGuard>>>,
}

impl Shared {
    fn learned(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The typosquat guard of a running proxy.
pub struct SquatGuards {
    well_known: SquatGuard,
    well_known_names: usize,
    policy: Option<Arc<PolicyState>>,
    shared: Arc<Shared>,
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
    /// there is one, and the crates served from now on. The policy's names are in the
    /// guard when this returns.
    pub fn new(well_known: Vec<String>, policy: Option<Arc<PolicyState>>) -> Self {
        let well_known_names = well_known.len();
        let guards = Self {
            well_known: SquatGuard::new(well_known),
            well_known_names,
            policy,
            shared: Arc::new(Shared::default()),
        };
        if guards.learn_policy() {
            let mut learned = guards.shared.learned();
            learned.dirty = false;
            let names: Vec<String> = learned.names.values().cloned().collect();
            drop(learned);
            build(&guards.shared, &names);
        }
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
        self.shared.learned().names.len()
    }

    /// Adds the names of the policy in force, if it changed since they were added;
    /// whether any name was new.
    fn learn_policy(&self) -> bool {
        let Some(state) = &self.policy else {
            return false;
        };
        let active = state.current();
        let mut learned = self.shared.learned();
        if learned.policy_generation == active.generation {
            return false;
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
        let mut added = false;
        for name in names {
            added |= add(&mut learned, &name);
        }
        added
    }

    /// Remembers `name` as a trusted crate: one this proxy served a version of. Cheap
    /// (a lookup under a short lock) unless the name is new.
    pub fn learn_served(&self, name: &str) {
        let folded = tuf_core::typosquat::fold(name);
        let mut learned = self.shared.learned();
        if learned.names.contains_key(&folded) || !add(&mut learned, name) {
            return;
        }
        self.start_build(learned);
    }

    /// Starts a build of the guard over the learned names on a thread of its own, when
    /// names arrived, none is running, and the pause after the last one has passed.
    fn start_build(&self, mut learned: std::sync::MutexGuard<'_, Learned>) {
        let paused = learned.last_build.is_some_and(|(ended, took)| {
            ended.elapsed() < took.saturating_mul(REBUILD_PAUSE_FACTOR)
        });
        if !learned.dirty || learned.building || paused {
            return;
        }
        learned.dirty = false;
        learned.building = true;
        let names: Vec<String> = learned.names.values().cloned().collect();
        drop(learned);
        let shared = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new()
            .name("typosquat-guard".into())
            .spawn(move || build(&shared, &names));
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start building the typosquat guard: keeping the previous one");
            let mut learned = self.shared.learned();
            learned.building = false;
            learned.dirty = true;
        }
    }

    /// The trusted or well-known names `name` looks like, and how; empty when it looks
    /// like none (or is one of them). Never builds a guard on the caller's thread.
    pub fn looks_like(&self, name: &str) -> Vec<LooksLike> {
        self.learn_policy();
        self.start_build(self.shared.learned());
        let learned = self
            .shared
            .guard
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
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

/// Builds the guard over `names` and puts it in use.
fn build(shared: &Shared, names: &[String]) {
    let started = Instant::now();
    let guard = Arc::new(SquatGuard::new(names));
    *shared.guard.write().unwrap_or_else(|e| e.into_inner()) = Some(guard);
    let took = started.elapsed();
    let mut learned = shared.learned();
    learned.building = false;
    learned.last_build = Some((Instant::now(), took));
    tracing::debug!(
        names = names.len(),
        ?took,
        "typosquat guard over learned names built"
    );
}

/// Adds `name`; whether it was new (and the cap not reached).
fn add(learned: &mut Learned, name: &str) -> bool {
    if learned.names.len() >= MAX_LEARNED_NAMES {
        return false;
    }
    if let std::collections::btree_map::Entry::Vacant(entry) =
        learned.names.entry(tuf_core::typosquat::fold(name))
    {
        entry.insert(name.to_owned());
        learned.dirty = true;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn guard_in_use(guards: &SquatGuards) -> Option<Arc<SquatGuard>> {
        guards.shared.guard.read().unwrap().clone()
    }

    /// Waits until the learned names are all in the guard in use.
    fn wait_built(guards: &SquatGuards) {
        let started = Instant::now();
        loop {
            guards.start_build(guards.shared.learned());
            let learned = guards.shared.learned();
            if !learned.dirty && !learned.building {
                return;
            }
            drop(learned);
            assert!(started.elapsed() < Duration::from_secs(10), "never built");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn served_crates_join_the_corpus_and_the_guard_is_rebuilt_only_when_they_do() {
        let guards = SquatGuards::new(vec!["serde_json".into()], None);
        assert_eq!(guards.looks_like("serde_jsno")[0].name, "serde_json");
        assert!(guards.looks_like("acme_ledgr").is_empty());
        guards.learn_served("acme-ledger");
        assert_eq!(guards.learned_names(), 1);
        wait_built(&guards);
        let found = guards.looks_like("acme_ledgr");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, "acme-ledger", "the spelling served");
        let built = guard_in_use(&guards).unwrap();
        // Learning a name already known (in any spelling) keeps the guard built.
        guards.learn_served("ACME_ledger");
        assert!(!guards.shared.learned().dirty);
        assert!(Arc::ptr_eq(&built, &guard_in_use(&guards).unwrap()));
        guards.learn_served("acme-books");
        {
            let learned = guards.shared.learned();
            assert!(
                learned.dirty || learned.building,
                "a build is due or running"
            );
        }
        wait_built(&guards);
        assert!(!Arc::ptr_eq(&built, &guard_in_use(&guards).unwrap()));
        assert_eq!(guards.looks_like("acme_bokos")[0].name, "acme-books");
        // A served crate is not a squat of itself.
        assert!(guards.looks_like("acme_ledger").is_empty());
    }

    #[test]
    fn a_check_never_builds_a_guard_and_builds_pause_after_each_other() {
        let guards = SquatGuards::new(vec![], None);
        guards.learn_served("acme-ledger");
        wait_built(&guards);
        // The last build took an hour (as if): the next one waits ten hours, and checks
        // meanwhile use the guard already built.
        guards.shared.learned().last_build = Some((Instant::now(), Duration::from_secs(3600)));
        guards.learn_served("acme-books");
        assert!(
            guards.looks_like("acme_bokos").is_empty(),
            "not in the guard yet"
        );
        assert_eq!(guards.looks_like("acme_ledgr")[0].name, "acme-ledger");
        let learned = guards.shared.learned();
        assert!(learned.dirty && !learned.building, "waiting, not building");
        drop(learned);
        // Once the pause has passed, the next check starts the build.
        guards.shared.learned().last_build = Some((Instant::now(), Duration::ZERO));
        guards.looks_like("anything");
        wait_built(&guards);
        assert_eq!(guards.looks_like("acme_bokos")[0].name, "acme-books");
    }

    #[test]
    fn a_build_starts_when_a_name_is_served_with_no_check_needed_and_not_without_news() {
        let guards = SquatGuards::new(vec![], None);
        guards.learn_served("acme-ledger");
        // No check, no start_build from the test: serving the name started the build.
        let started = Instant::now();
        while guard_in_use(&guards).is_none() {
            assert!(started.elapsed() < Duration::from_secs(10), "never built");
            std::thread::sleep(Duration::from_millis(1));
        }
        wait_built(&guards);
        let built = guard_in_use(&guards).unwrap();
        // Checks with nothing new start no build, even with no pause in the way.
        guards.shared.learned().last_build = Some((Instant::now(), Duration::ZERO));
        guards.looks_like("acme_ledgr");
        wait_built(&guards);
        assert!(Arc::ptr_eq(&built, &guard_in_use(&guards).unwrap()));
    }

    #[test]
    fn a_name_both_well_known_and_served_is_named_once() {
        let guards = SquatGuards::new(vec!["serde_json".into(), "tokio".into()], None);
        assert_eq!(guards.well_known_names(), 2);
        guards.learn_served("serde_json");
        wait_built(&guards);
        assert_eq!(guards.learned_names(), 1);
        assert_eq!(guards.looks_like("serde_jsno").len(), 1);
    }

    #[test]
    fn the_policys_names_are_in_the_guard_at_start_and_after_each_reload() {
        use crate::policy::imports::UrlImports;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        let key = "a1".repeat(32);
        let write = |crates: &str| {
            std::fs::write(
                &path,
                format!(
                    "[[developer]]\nlabel = \"alice\"\nkey = \"{key}\"\ncrates = [{crates}]\n\
                     [[exception]]\ncrate = \"acme-audit\"\nversion = \"*\"\nreason = \"r\"\n"
                ),
            )
            .unwrap();
        };
        write("\"acme-ledger\"");
        let timeout = Duration::from_secs(5);
        let state = Arc::new(
            PolicyState::load(&path, UrlImports::for_one_reading(timeout, timeout)).unwrap(),
        );
        let guards = SquatGuards::new(vec![], Some(Arc::clone(&state)));
        assert_eq!(
            guards.learned_names(),
            2,
            "a developer's crate and an exception"
        );
        // The policy keeps cargo's folded names, and so do the messages for them.
        assert_eq!(guards.looks_like("acme_ledgr")[0].name, "acme_ledger");
        assert_eq!(guards.looks_like("acme_audti")[0].name, "acme_audit");
        // The same generation again adds nothing and starts no build.
        assert!(!guards.learn_policy());
        // A reload naming another crate: in the guard once a check has started its build.
        write("\"acme-ledger\", \"acme-books\"");
        assert!(matches!(
            state.reload(false),
            crate::policy::enforce::Reload::Reloaded { .. }
        ));
        guards.looks_like("anything");
        wait_built(&guards);
        assert_eq!(guards.learned_names(), 3);
        assert_eq!(guards.looks_like("acme_bokos")[0].name, "acme_books");
    }

    #[test]
    fn a_well_known_list_is_read_with_its_comments_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("well-known.txt");
        std::fs::write(&path, "# the most downloaded\nserde\n\ntokio  # async\n").unwrap();
        assert_eq!(read_well_known(&path).unwrap(), ["serde", "tokio"]);
        let cap = 16 * 1024 * 1024; // the documented cap
        let mut full = "#".repeat(cap - "\nserde\n".len());
        full.push_str("\nserde\n");
        std::fs::write(&path, &full).unwrap();
        assert_eq!(
            read_well_known(&path).unwrap(),
            ["serde"],
            "exactly 16 MiB is read"
        );
        std::fs::write(&path, format!("#{full}")).unwrap();
        assert!(read_well_known(&path).is_err(), "one byte more is refused");
        assert!(read_well_known(&dir.path().join("missing")).is_err());
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
