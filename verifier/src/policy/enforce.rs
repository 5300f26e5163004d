//! The policy in force in a running proxy: loaded at start (a broken policy is fatal),
//! reloaded on SIGHUP and when its files change (a broken one keeps the previous policy
//! and says why on `/status` and in the log), and applied to index answers and downloads.
//!
//! A request takes the policy in force once ([`PolicyState::current`]) and judges
//! everything with that one: a reload never lets a request see half of two policies.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use lru::LruCache;

use super::file::{Imported, Policy, PolicyError};
use super::imports::{UrlImportStatus, UrlImports};
use super::judge::{
    developers_to_trust, explain, CheckedAttestation, DependencyFailure, Judge, Release,
    ReleaseSource, Untrusted, Verdict, VerdictStore,
};
use crate::index_answer::{CrateAnswer, Dropped, UpstreamIndex, VersionAnswer};

/// Verdicts kept for the policy in force, per snapshot.
const MAX_KEPT_VERDICTS: NonZeroUsize = match NonZeroUsize::new(200_000) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// One loaded policy and its generation (1 for the first, one more per reload that
/// changed it).
#[derive(Debug)]
pub struct ActivePolicy {
    /// The policy.
    pub policy: Policy,
    /// Its generation.
    pub generation: u64,
    /// When it was loaded.
    pub loaded_at: DateTime<Utc>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// The files say what the policy in force says.
    Unchanged,
    /// A new policy is in force.
    Reloaded {
        /// Its generation.
        generation: u64,
    },
    /// The files are broken: the previous policy stays (the reason).
    Failed(String),
}

/// What `/status` shows of the policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyStatus {
    /// The policy file.
    pub path: PathBuf,
    /// The generation in force.
    pub generation: u64,
    /// When it was loaded.
    pub loaded_at: String,
    /// Trusted developers (imports included).
    pub developers: usize,
    /// Exceptions.
    pub exceptions: usize,
    /// What the last reload found wrong, when the files are broken now.
    pub reload_error: Option<String>,
    /// Warnings of the policy in force (an import's imports, not followed).
    pub warnings: Vec<String>,
    /// The imports the policy in force was read with (what each brought, and its digest).
    pub imports: Vec<Imported>,
    /// The URL imports' kept copies: when each was fetched, and the last failure.
    pub url_imports: Vec<UrlImportStatus>,
}

/// Verdicts of one policy generation under one snapshot.
struct KeptVerdicts {
    generation: u64,
    snapshot: u64,
    verdicts: LruCache<(String, semver::Version), Verdict>,
}

/// The policy of a running proxy.
pub struct PolicyState {
    path: PathBuf,
    url_imports: UrlImports,
    current: RwLock<Arc<ActivePolicy>>,
    last_error: Mutex<Option<String>>,
    kept: Mutex<KeptVerdicts>,
}

impl PolicyState {
    /// Loads the policy at `path`, fetching its URL imports through `url_imports`; an
    /// error is fatal to the caller (it names the file and line). Blocking (file reads,
    /// fetches).
    pub fn load(path: &Path, url_imports: UrlImports) -> Result<Self, PolicyError> {
        let policy = Policy::load(path, &url_imports.reading(true))?;
        for warning in &policy.warnings {
            tracing::warn!(%warning, "trust policy");
        }
        tracing::info!(path = %path.display(), developers = policy.developers.len(), exceptions = policy.exceptions.len(), "trust policy loaded");
        Ok(Self {
            path: path.to_owned(),
            url_imports,
            current: RwLock::new(Arc::new(ActivePolicy {
                policy,
                generation: 1,
                loaded_at: Utc::now(),
            })),
            last_error: Mutex::new(None),
            kept: Mutex::new(KeptVerdicts {
                generation: 0,
                snapshot: 0,
                verdicts: LruCache::new(MAX_KEPT_VERDICTS),
            }),
        })
    }

    /// [`Self::load`] on a blocking thread, for async callers (`serve`, `explain`).
    pub async fn load_off_runtime(
        path: PathBuf,
        url_imports: UrlImports,
    ) -> anyhow::Result<Result<Self, PolicyError>> {
        Ok(tokio::task::spawn_blocking(move || Self::load(&path, url_imports)).await?)
    }

    /// The policy in force: take it once per request.
    #[must_use]
    pub fn current(&self) -> Arc<ActivePolicy> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the files again; a changed, valid policy replaces the one in force in one
    /// step. URL imports are fetched again when their interval has passed, or with
    /// `fetch_imports` (SIGHUP). Blocking (file reads, fetches).
    pub fn reload(&self, fetch_imports: bool) -> Reload {
        let loaded = Policy::load(&self.path, &self.url_imports.reading(fetch_imports));
        let mut last_error = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match loaded {
            Err(error) => {
                let message = error.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %message, "the trust policy cannot be reloaded: keeping the policy in force");
                }
                *last_error = Some(message.clone());
                Reload::Failed(message)
            }
            Ok(policy) => {
                *last_error = None;
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                if current.policy == policy {
                    return Reload::Unchanged;
                }
                for warning in &policy.warnings {
                    tracing::warn!(%warning, "trust policy");
                }
                let generation = current.generation + 1;
                tracing::info!(
                    generation,
                    developers = policy.developers.len(),
                    exceptions = policy.exceptions.len(),
                    "trust policy reloaded"
                );
                *current = Arc::new(ActivePolicy {
                    policy,
                    generation,
                    loaded_at: Utc::now(),
                });
                Reload::Reloaded { generation }
            }
        }
    }

    /// For `/status`.
    pub fn status(&self) -> PolicyStatus {
        let active = self.current();
        PolicyStatus {
            path: self.path.clone(),
            generation: active.generation,
            loaded_at: tuf_core::metadata::format_expires(&active.loaded_at),
            developers: active.policy.developers.len(),
            exceptions: active.policy.exceptions.len(),
            reload_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            warnings: active.policy.warnings.clone(),
            imports: active.policy.imports.clone(),
            url_imports: self.url_imports.status(),
        }
    }

    /// The verdicts kept for `active` under `snapshot`.
    fn store(&self, active: &ActivePolicy, snapshot: u64) -> KeptStore<'_> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.generation != active.generation || kept.snapshot != snapshot {
            kept.generation = active.generation;
            kept.snapshot = snapshot;
            kept.verdicts.clear();
        }
        KeptStore {
            state: self,
            generation: active.generation,
            snapshot,
        }
    }
}

/// A view of the kept verdicts for one generation and snapshot: a verdict of another is
/// neither read nor kept.
struct KeptStore<'a> {
    state: &'a PolicyState,
    generation: u64,
    snapshot: u64,
}

impl VerdictStore for KeptStore<'_> {
    fn get(&self, name: &str, version: &semver::Version) -> Option<Verdict> {
        let mut kept = self.state.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.generation != self.generation || kept.snapshot != self.snapshot {
            return None;
        }
        kept.verdicts
            .get(&(name.to_owned(), version.clone()))
            .cloned()
    }

    fn put(&self, name: &str, version: &semver::Version, verdict: &Verdict) {
        let mut kept = self.state.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.generation == self.generation && kept.snapshot == self.snapshot {
            kept.verdicts
                .put((name.to_owned(), version.clone()), verdict.clone());
        }
    }
}

/// The checked attestations of a served version.
pub fn checked_attestations(name: &str, version: &VersionAnswer) -> Vec<CheckedAttestation> {
    version
        .attestations
        .iter()
        .map(|attestation| {
            let invalid = match (&version.release, &version.entry_digest) {
                (Some(release), Some(digest)) => attestation
                    .verify_for(
                        name,
                        &version.version,
                        release.length,
                        &release.hashes,
                        digest,
                    )
                    .err()
                    .map(|e| e.to_string()),
                _ => Some("the release or its signed entry is missing".to_owned()),
            };
            CheckedAttestation {
                label: attestation.statement.label.clone(),
                keyid: attestation.key.keyid(),
                kind: attestation.statement.kind,
                invalid,
            }
        })
        .collect()
}

/// A served version as the judge reads it; `None` for one not served, or whose version
/// is not semantic (never served: the layout refuses such releases).
fn release_of(name: &str, version: &VersionAnswer) -> Option<Release> {
    if !version.served() {
        return None;
    }
    Some(Release {
        version: semver::Version::parse(&version.version).ok()?,
        attestations: checked_attestations(name, version),
        dependencies: version.signed_dependencies.clone(),
        scan: version.release.as_ref().and_then(|r| r.scan.clone()),
    })
}

/// Releases of dependencies, from the crates' signed index files (a version without a
/// signed entry has no attestations, so it can never be trusted: upstream is not asked).
struct SignedReleases<'a> {
    judge: &'a crate::index_answer::Judge<'a>,
    now: DateTime<Utc>,
}

impl ReleaseSource for SignedReleases<'_> {
    fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
        let index_file = self
            .judge
            .index_file(name, self.now)
            .map_err(|r| r.to_string())?;
        if index_file.is_none() {
            return Ok(Vec::new());
        }
        let answer = self
            .judge
            .judge(name, index_file, &UpstreamIndex::NotAsked, self.now)
            .map_err(|r| r.to_string())?;
        if let Some(refusal) = answer.blocking {
            return Err(refusal.to_string());
        }
        Ok(answer
            .versions
            .iter()
            .filter_map(|v| release_of(name, v))
            .collect())
    }
}

/// Judges every served version of `answer` (crate `name`) under the policy in force:
/// each one the policy does not trust is dropped with the reason, and every served
/// version carries its verdict. Blocking (it may read other crates' signed index files).
pub fn apply(
    state: &PolicyState,
    active: &ActivePolicy,
    judge: &crate::index_answer::Judge<'_>,
    snapshot: u64,
    name: &str,
    answer: &mut CrateAnswer,
    now: DateTime<Utc>,
) {
    let source = SignedReleases { judge, now };
    let store = state.store(active, snapshot);
    let mut policy_judge = Judge::new(&active.policy, &source).with_store(&store);
    let folded = super::file::fold_name(name);
    for version in &mut answer.versions {
        if !version.served() {
            continue;
        }
        // A verdict already kept needs no attestation checked again.
        let known = semver::Version::parse(&version.version)
            .ok()
            .and_then(|parsed| store.get(&folded, &parsed));
        let verdict = match known {
            Some(verdict) => verdict,
            None => {
                let Some(release) = release_of(name, version) else {
                    continue;
                };
                policy_judge.judge(name, &release)
            }
        };
        if let Err(why) = &verdict {
            tracing::info!(crate_name = name, version = %version.version, reason = %super::judge::reason(name, why), "hiding a version the trust policy does not trust");
            version.outcome = Err(Dropped::Policy {
                crate_name: name.to_owned(),
                why: Box::new(why.clone()),
            });
        }
        version.policy = Some(verdict);
    }
}

/// A trust-policy refusal: the words cargo shows, and what would admit the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRefusal {
    /// The refusal in the seed's words (with the policy lines to add, when trusting a
    /// developer would admit it).
    pub text: String,
    /// The command that would admit it, when one would.
    pub fix: Option<String>,
}

impl PolicyRefusal {
    /// The refusal of `name` `version` for `why`.
    pub fn new(name: &str, version: &str, why: &Untrusted) -> Self {
        Self {
            text: explain(name, version, why),
            fix: fix(name, version, why),
        }
    }

    /// A release that cannot be judged now, for `reason`: there is no fix to suggest.
    fn unjudged(reason: String) -> Self {
        Self {
            text: reason,
            fix: None,
        }
    }
}

impl std::fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// What would admit `name` `version`, refused for `why`: trusting the developers who
/// released or vouched for it, or, for a release held for review, a review by a
/// developer the policy trusts. Followed down a dependency that is not trusted.
pub fn fix(name: &str, version: &str, why: &Untrusted) -> Option<String> {
    let developers = developers_to_trust(why);
    if !developers.is_empty() {
        let commands: Vec<String> = developers
            .iter()
            .map(|d| format!("tuf-verifier policy trust {} --key {}", d.label, d.keyid))
            .collect();
        return Some(commands.join(" && "));
    }
    match why {
        Untrusted::HeldForReview { .. } => Some(format!(
            "a developer you trust for {name} reviews it: tuf-signer release attest {name} \
             {version} --key REVIEWER.pem, then publish"
        )),
        Untrusted::Dependency {
            dependency,
            failure,
            ..
        } => match failure.as_ref() {
            DependencyFailure::NoTrustedVersion { newest, why } => fix(dependency, newest, why),
            _ => None,
        },
        _ => None,
    }
}

/// The refusal of a crate none of whose versions the policy trusts: the newest refused
/// version's reason in the seed's words. `None` when the policy refused none.
pub fn refusal(name: &str, answer: &CrateAnswer) -> Option<PolicyRefusal> {
    let mut refused: Vec<(&VersionAnswer, &super::judge::Untrusted)> = answer
        .versions
        .iter()
        .filter_map(|v| match &v.outcome {
            Err(Dropped::Policy { why, .. }) => Some((v, why.as_ref())),
            _ => None,
        })
        .collect();
    refused.sort_by(|a, b| {
        let version = |v: &VersionAnswer| semver::Version::parse(&v.version).ok();
        version(b.0).cmp(&version(a.0))
    });
    let (newest, why) = refused.first()?;
    Some(PolicyRefusal::new(name, &newest.version, why))
}

/// The verdict on `name` `version` under `policy`: a version the crate's signed index
/// file does not list has no attestation, so it is not vouched for. `Err` when it cannot
/// be judged now (the reason). Blocking.
pub fn release_verdict(
    policy: &Policy,
    store: Option<&dyn VerdictStore>,
    judge: &crate::index_answer::Judge<'_>,
    name: &str,
    version: &str,
    now: DateTime<Utc>,
) -> Result<Verdict, String> {
    let not_vouched = || {
        Err(super::judge::Untrusted::NotVouched {
            trusted: Vec::new(),
            needed: policy.rule.attestations,
            untrusted: Vec::new(),
        })
    };
    // A verdict already known (the index answer that listed the version made it) needs
    // no signed index file read and no attestation checked again.
    if let (Some(store), Ok(parsed)) = (store, semver::Version::parse(version)) {
        if let Some(verdict) = store.get(&super::file::fold_name(name), &parsed) {
            return Ok(verdict);
        }
    }
    let source = SignedReleases { judge, now };
    let releases = source.releases(name)?;
    let Some(release) = releases
        .iter()
        .find(|r| r.version.to_string().eq_ignore_ascii_case(version))
    else {
        return Ok(not_vouched());
    };
    let mut policy_judge = Judge::new(policy, &source);
    if let Some(store) = store {
        policy_judge = policy_judge.with_store(store);
    }
    Ok(policy_judge.judge(name, release))
}

/// [`download_verdict`] when its verdict is already kept (short locks, no I/O): `None`
/// means call [`download_verdict`] on a blocking thread.
pub fn download_verdict_cached(
    state: &PolicyState,
    snapshot: u64,
    name: &str,
    version: &str,
) -> Option<Result<(), PolicyRefusal>> {
    let active = state.current();
    let parsed = semver::Version::parse(version).ok()?;
    let store = state.store(&active, snapshot);
    let verdict = store.get(&super::file::fold_name(name), &parsed)?;
    Some(match verdict {
        Ok(_) => Ok(()),
        Err(why) => Err(PolicyRefusal::new(name, version, &why)),
    })
}

/// Whether `name` `version` may be downloaded under the policy in force: `Err` with the
/// refusal in the seed's words when not. Blocking.
pub fn download_verdict(
    state: &PolicyState,
    judge: &crate::index_answer::Judge<'_>,
    snapshot: u64,
    name: &str,
    version: &str,
    now: DateTime<Utc>,
) -> Result<(), PolicyRefusal> {
    let active = state.current();
    let store = state.store(&active, snapshot);
    match release_verdict(&active.policy, Some(&store), judge, name, version, now)
        .map_err(PolicyRefusal::unjudged)?
    {
        Ok(_) => Ok(()),
        Err(why) => Err(PolicyRefusal::new(name, version, &why)),
    }
}

/// [`download_verdict`] when its blocking thread did not finish.
pub fn unjudged(error: &tokio::task::JoinError) -> PolicyRefusal {
    PolicyRefusal::unjudged(format!("internal error: {error}"))
}

/// How often the policy files are read again to notice a change.
pub const POLICY_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Reloads `state` on SIGHUP and whenever its files change (read again every
/// [`POLICY_POLL_INTERVAL`]; reading is cheap beside a request, and unlike modification
/// times it cannot miss an edit within the same second). URL imports are fetched again
/// on SIGHUP and once per refresh interval ([`UrlImports`]). Runs until the process ends.
pub fn watch(state: Arc<PolicyState>) {
    let polled = Arc::clone(&state);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(POLICY_POLL_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let state = Arc::clone(&polled);
            let _ = tokio::task::spawn_blocking(move || state.reload(false)).await;
        }
    });
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: the policy is reloaded when it changes only");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the trust policy and fetching its URL imports");
            let state = Arc::clone(&state);
            let _ = tokio::task::spawn_blocking(move || state.reload(true)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuf_core::policy::judge::Developer;

    fn developer(label: &str, keyid: &str) -> Developer {
        Developer {
            label: label.into(),
            keyid: keyid.into(),
        }
    }

    fn held(version: &str) -> Untrusted {
        Untrusted::HeldForReview {
            version: version.into(),
            score: 55,
            threshold: 40,
            against: Some("1.0.0".into()),
            flags: vec!["build script changed".into()],
        }
    }

    fn through(dependency: &str, failure: DependencyFailure) -> Untrusted {
        Untrusted::Dependency {
            dependency: dependency.into(),
            req: "^1".into(),
            failure: Box::new(failure),
        }
    }

    #[test]
    fn the_fix_is_the_trust_command_or_the_review_the_release_waits_for() {
        let author = Untrusted::AuthorNotTrusted {
            developers: vec![developer("carol", "7c24"), developer("dave", "d4e5")],
        };
        assert_eq!(
            fix("util", "1.0.0", &author).as_deref(),
            Some("tuf-verifier policy trust carol --key 7c24 && tuf-verifier policy trust dave --key d4e5")
        );
        let vouched = Untrusted::NotVouched {
            trusted: Vec::new(),
            needed: 1,
            untrusted: vec![developer("bob", "b0b0")],
        };
        assert_eq!(
            fix("util", "1.0.0", &vouched).as_deref(),
            Some("tuf-verifier policy trust bob --key b0b0")
        );
        assert_eq!(
            fix("widget", "1.1.0", &held("1.1.0")).as_deref(),
            Some(
                "a developer you trust for widget reviews it: tuf-signer release attest \
                 widget 1.1.0 --key REVIEWER.pem, then publish"
            )
        );
        // Down a dependency: the fix of the dependency's newest version.
        let app = through(
            "widget",
            DependencyFailure::NoTrustedVersion {
                newest: "1.1.0".into(),
                why: held("1.1.0"),
            },
        );
        assert_eq!(
            fix("app", "0.3.0", &app),
            fix("widget", "1.1.0", &held("1.1.0"))
        );
        let app = through(
            "util",
            DependencyFailure::NoTrustedVersion {
                newest: "1.0.0".into(),
                why: author.clone(),
            },
        );
        assert_eq!(fix("app", "0.3.0", &app), fix("util", "1.0.0", &author));
        // Nothing a command would cure.
        for why in [
            Untrusted::EntryNotSigned,
            Untrusted::NotVouched {
                trusted: Vec::new(),
                needed: 1,
                untrusted: Vec::new(),
            },
            through("util", DependencyFailure::NoMatchingVersion),
            through("util", DependencyFailure::Cycle),
        ] {
            assert_eq!(fix("app", "0.3.0", &why), None, "{why:?}");
        }
        let refusal = PolicyRefusal::new("util", "1.0.0", &author);
        assert_eq!(refusal.text, explain("util", "1.0.0", &author));
        assert_eq!(refusal.to_string(), refusal.text);
        assert_eq!(refusal.fix, fix("util", "1.0.0", &author));
    }
}
