//! What the proxy trusts: tuf-core's client workflow over the registry's TUF repository,
//! refreshed on an interval, answering "which tarball is signed for this crate version?".
//!
//! The state machine and every check of the TUF specification live in tuf-core
//! (`TrustedMetadataSet`, driven by `Updater`). This module adds what a long-running
//! client needs:
//! * the trusted root in the state directory is used only when it chains from the
//!   operator's root by the §5.3 rules ([`TrustStore::new`]);
//! * each refresh starts a new update (§5.1: the reference time is fixed per update) from
//!   the metadata persisted in the state directory, so rollback is judged against
//!   everything trusted before, across restarts;
//! * a refresh that fails because metadata was refused (a bad signature, a rollback, a
//!   mix-and-match, expired metadata) fails closed at once: nothing is served until a
//!   later refresh succeeds. A refresh that fails to reach the repository keeps the last
//!   trusted state, but only until that state expires;
//! * every answer is checked against the clock when it is used, not only when it was
//!   looked up: the earliest expiry of root, timestamp, snapshot, top-level targets and
//!   every role on the delegation path;
//! * delegated roles are fetched outside any lock shared by all lookups: lookups that
//!   need different roles fetch them at the same time, lookups that need the same role
//!   wait for one fetch. A role refused for a signature or rollback reason stays refused
//!   for the snapshot; one refused for bytes a flaky mirror may have garbled (hashes,
//!   length, parse, version) is fetched again after a backoff;
//! * answers are cached per snapshot in a bounded LRU (clients choose the names looked
//!   up, so the cache must not grow with them).
//!
//! All of it is blocking (metadata is fetched with a blocking client); the server calls
//! it from `spawn_blocking`, except [`TrustStore::lookup_cached`], which never blocks.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lru::LruCache;
use tuf_core::client::{
    read_bounded, DirectoryFetcher, FetchError, Fetcher, Limits, MetadataDir, TargetLookup,
    TargetSearch, TrustError, TrustedMetadataSet, UpdateError, Updater, UpdaterConfig,
};
use tuf_core::layout::{crate_index_path, crate_target_path, LayoutError};
use tuf_core::metadata::format_expires;

use crate::config::MetadataLocation;
use crate::refresh_schedule::{RefreshLog, RefreshStatus};
use crate::signed_target::SignedTarget;
use crate::upstream::MetadataFetcher;

/// Why a refresh of the TUF metadata failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The update was refused or could not reach the repository.
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The update ended without the four top-level roles (a bug in the updater).
    #[error("the update finished without timestamp, snapshot and targets")]
    Incomplete,
    /// The baseline other replicas trusted could not be read from the shared state: no
    /// update is judged without it.
    #[error("cannot read the shared rollback baseline: {0}")]
    SharedBaseline(#[source] crate::shared_state::SharedStateError),
}

impl RefreshError {
    /// True when metadata was refused (fail closed), not merely unreachable.
    pub fn is_refusal(&self) -> bool {
        match self {
            Self::Update(error) => classify(error) != Failure::Unavailable,
            Self::Incomplete => true,
            Self::SharedBaseline(_) => false,
        }
    }
}

/// Why the proxy will not hand out a crate version (or any crate).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The crate name or version is not one the registry layout allows.
    #[error("invalid crate name or version: {0}")]
    InvalidName(Arc<LayoutError>),
    /// No role authorised for the crate's target path lists it.
    #[error("not signed: no key authorised for {target} signed it")]
    NotSigned {
        /// The target path looked up.
        target: String,
    },
    /// A role on the crate's delegation path was refused (e.g. signed by a key its
    /// delegator does not authorise).
    #[error("TUF metadata refused: {error}{}", retry_at.map(|at| format!(" (fetched again after {})", format_expires(&at))).unwrap_or_default())]
    RoleRefused {
        /// Why.
        error: Arc<UpdateError>,
        /// For a refusal that a retry may cure (bytes garbled on the way), when the role
        /// is fetched again.
        retry_at: Option<DateTime<Utc>>,
    },
    /// The last refresh refused the repository's metadata; nothing is served.
    #[error("TUF metadata refused at the last refresh, serving nothing until it recovers: {0}")]
    RepositoryRefused(Arc<RefreshError>),
    /// RefreshedState metadata has expired and could not be refreshed.
    #[error("TUF metadata expired: {role} expired at {}{}", format_expires(expires), last_error.as_ref().map(|e| format!("; the last refresh failed: {e}")).unwrap_or_default())]
    Expired {
        /// The role that expired first.
        role: String,
        /// When.
        expires: DateTime<Utc>,
        /// Why the last refresh failed, if it did.
        last_error: Option<Arc<RefreshError>>,
    },
    /// Metadata has never been trusted since start.
    #[error("no trusted TUF metadata yet: {}", last_error.as_ref().map_or_else(|| "the first refresh has not finished".to_owned(), ToString::to_string))]
    NoMetadata {
        /// Why the last refresh failed, or none if none has finished.
        last_error: Option<Arc<RefreshError>>,
    },
    /// Metadata needed for the lookup could not be fetched (try again).
    #[error("cannot fetch TUF metadata: {0}")]
    MetadataUnavailable(Arc<UpdateError>),
    /// The crate's signed index file could not be read from the TUF repository.
    #[error("{0}")]
    IndexFile(Arc<crate::signed_index::IndexFileError>),
    /// The crate's signed index file is not one (a broken repository).
    #[error("the signed index file {target} is unreadable: {error}")]
    IndexFileUnreadable {
        /// Its target path.
        target: String,
        /// Why.
        error: Arc<tuf_core::crate_index::CrateIndexError>,
    },
    /// The signed target has no sha256 digest to compare with cargo's `cksum`.
    #[error("the signed target {0} has no sha256 digest")]
    NoSha256(String),
    /// The lookup did not finish (its thread panicked); nothing was served.
    #[error("the lookup did not finish: {0}")]
    Internal(Arc<tokio::task::JoinError>),
}

impl From<LayoutError> for Refusal {
    fn from(error: LayoutError) -> Self {
        Self::InvalidName(Arc::new(error))
    }
}

impl Refusal {
    /// True for failures that may go away on retry (the repository was unreachable).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::MetadataUnavailable(_) | Self::NoMetadata { .. } | Self::Internal(_) => true,
            Self::IndexFile(error) => error.is_transient(),
            _ => false,
        }
    }

    /// True when the version is not signed (or not one the layout allows): an index line
    /// for it is dropped, and the rest of the index file is still served.
    pub fn is_unsigned(&self) -> bool {
        matches!(
            self,
            Self::NotSigned { .. } | Self::InvalidName(_) | Self::NoSha256(_)
        )
    }
}

/// What a lookup answers: the signed release, or why none is served.
pub type Lookup = Result<Arc<SignedTarget>, Refusal>;

/// How an update error bears on what is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The repository could not be reached: keep what is trusted, try again.
    Unavailable,
    /// Refused for bytes a mirror may have garbled or served stale (hashes, length,
    /// parse, version): refused now, fetched again after a backoff.
    RefusedRetry,
    /// Refused for a reason a retry does not cure (signatures, rollback, a role missing
    /// from snapshot, expiry): refused for the whole snapshot.
    Refused,
}

fn classify(error: &UpdateError) -> Failure {
    match error {
        UpdateError::Trust(
            TrustError::Hashes { .. }
            | TrustError::Invalid { .. }
            | TrustError::VersionMismatch { .. },
        )
        | UpdateError::Fetch(FetchError::TooLong { .. }) => Failure::RefusedRetry,
        // A caller bug, not the repository's doing.
        UpdateError::Trust(TrustError::Order(_)) => Failure::Unavailable,
        UpdateError::Fetch(_)
        | UpdateError::Io { .. }
        | UpdateError::NoTrustedRoot(_)
        | UpdateError::TargetWithoutHashes(_) => Failure::Unavailable,
        // Every other refusal, including kinds added later: fail closed.
        _ => Failure::Refused,
    }
}

/// Where and how to reach the TUF repository.
pub struct TrustConfig {
    /// Where the metadata is.
    pub metadata: MetadataLocation,
    /// The trusted root file given by the operator.
    pub root: PathBuf,
    /// Where trusted metadata is persisted (`<state_dir>/metadata`).
    pub metadata_dir: PathBuf,
    /// Metadata size limits.
    pub limits: Limits,
    /// Connect timeout of metadata requests.
    pub connect_timeout: Duration,
    /// Whole-request timeout of metadata requests.
    pub timeout: Duration,
    /// Most lookups cached per snapshot.
    pub max_cached_lookups: NonZeroUsize,
    /// The rollback baseline shared with other replicas, if configured.
    pub shared: Option<Arc<crate::shared_state::SharedState>>,
}

/// A summary of the trusted state, for `/status` and `/healthz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrustSummary {
    /// Whether requests are being served.
    pub serving: bool,
    /// Why not, when not.
    pub refusal: Option<String>,
    /// RefreshedState root version.
    pub root_version: Option<u64>,
    /// RefreshedState timestamp version.
    pub timestamp_version: Option<u64>,
    /// RefreshedState snapshot version.
    pub snapshot_version: Option<u64>,
    /// When the trusted top-level metadata expires (first of them).
    pub expires: Option<String>,
    /// When the last successful refresh happened.
    pub last_refresh: Option<String>,
    /// The last refresh failure, if the last refresh failed.
    pub last_error: Option<String>,
    /// Crate versions looked up in this snapshot (cached answers).
    pub lookups_cached: usize,
    /// Lookups answered from that cache in this snapshot, with no search.
    pub lookups_reused: u64,
    /// The most answers cached (`max_cached_lookups`).
    pub lookups_budget: usize,
    /// Delegated roles refused under this snapshot, with why.
    pub roles_refused: Vec<String>,
    /// Each trusted top-level role's version and expiry (empty before the first
    /// successful refresh).
    pub roles: Vec<RoleSummary>,
    /// The recent refresh attempts and the next one due.
    pub refresh: RefreshStatus,
}

/// A delegated role that was refused under the current snapshot.
struct RoleFailure {
    error: Arc<UpdateError>,
    /// For a refusal that may be retried: how many times it failed, and when to retry.
    retry: Option<(u32, DateTime<Utc>)>,
}

/// The first retry of a role refused for garbled bytes waits this long; each further
/// failure doubles it, up to [`MAX_ROLE_RETRY`].
const FIRST_ROLE_RETRY: Duration = Duration::from_secs(1);
/// The longest wait before a refused role is fetched again.
const MAX_ROLE_RETRY: Duration = Duration::from_secs(300);

fn role_retry_delay(failures: u32) -> chrono::Duration {
    let delay = FIRST_ROLE_RETRY
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1)))
        .min(MAX_ROLE_RETRY);
    chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
}

/// The answers of one snapshot, and what it knows about its delegated roles.
struct SnapshotCache {
    lookups: LruCache<String, Lookup>,
    /// Lookups answered from `lookups`.
    reused: u64,
    role_failures: HashMap<String, RoleFailure>,
}

/// Whether metadata (or a delegation chain) that expires at `expires` has expired at
/// `now`: at its expiry instant it has, as tuf-core's `is_expired` judges the freeze
/// checks (§5.4.4, §5.5.6, §5.6.5: valid means an expiry *higher* than the time).
fn expired(expires: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires <= now
}

/// What one successful refresh trusts: the updater holding the trusted metadata, and the
/// lookups answered under it. The
/// updater is locked only for work in memory (a search over loaded roles, checking
/// bytes fetched); roles are fetched with no lock held but their own.
struct RefreshedState {
    updater: Mutex<Updater<MetadataFetcher>>,
    fetcher: MetadataFetcher,
    root_version: u64,
    timestamp_version: u64,
    snapshot_version: u64,
    /// The top-level role that expires first.
    first_expiry: FirstExpiry,
    /// Root, timestamp, snapshot and top-level targets: version and expiry.
    top_level: [TopLevelRole; 4],
    refreshed_at: DateTime<Utc>,
    /// Whether top-level targets says every crate has a signed index file.
    signs_index_entries: bool,
    /// Whether the root says target files are named by digest.
    consistent_snapshot: bool,
    cache: Mutex<SnapshotCache>,
    /// One lock per delegated role being fetched: one fetch per role at a time.
    role_fetches: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single assignment or insert, so a panic while
    // one was held cannot leave the data half-updated: a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl RefreshedState {
    /// The cached answer for `target`, unless absent or no longer valid at `now`.
    fn cached(&self, target: &str, now: DateTime<Utc>) -> Option<Lookup> {
        let mut cache = locked(&self.cache);
        let answer = match cache.lookups.get(target)? {
            Ok(release) if !expired(release.valid_until, now) => Ok(Arc::clone(release)),
            Ok(_) => return None,
            Err(refusal) => Err(refusal.clone()),
        };
        cache.reused += 1;
        Some(answer)
    }

    fn remember(&self, target: String, answer: &Lookup) {
        locked(&self.cache).lookups.put(target, answer.clone());
    }

    /// A refusal for `role` if it was refused before and is not due to be fetched again.
    fn refused_role(&self, role: &str, now: DateTime<Utc>) -> Option<Refusal> {
        let cache = locked(&self.cache);
        let failure = cache.role_failures.get(role)?;
        match failure.retry {
            Some((_, retry_at)) if retry_at <= now => None,
            retry => Some(Refusal::RoleRefused {
                error: Arc::clone(&failure.error),
                retry_at: retry.map(|(_, at)| at),
            }),
        }
    }

    /// Records that fetching `role` failed with `error`; returns the refusal to answer.
    fn role_failed(&self, role: &str, error: UpdateError, now: DateTime<Utc>) -> Refusal {
        let kind = classify(&error);
        let error = Arc::new(error);
        if kind == Failure::Unavailable {
            return Refusal::MetadataUnavailable(error);
        }
        let mut cache = locked(&self.cache);
        let failures = cache
            .role_failures
            .get(role)
            .and_then(|f| f.retry)
            .map_or(0, |(n, _)| n)
            .saturating_add(1);
        let retry =
            (kind == Failure::RefusedRetry).then(|| (failures, now + role_retry_delay(failures)));
        tracing::warn!(%role, %error, retry_at = ?retry.map(|(_, at)| format_expires(&at)), "delegated role refused");
        cache.role_failures.insert(
            role.to_owned(),
            RoleFailure {
                error: Arc::clone(&error),
                retry,
            },
        );
        Refusal::RoleRefused {
            error,
            retry_at: retry.map(|(_, at)| at),
        }
    }

    fn role_fetch_lock(&self, role: &str) -> Arc<Mutex<()>> {
        Arc::clone(
            locked(&self.role_fetches)
                .entry(role.to_owned())
                .or_default(),
        )
    }

    /// The §5.6.7 search for `target`, fetching each delegated role it needs: one fetch
    /// per role at a time, with no lock held that other lookups need.
    fn search(&self, target: &str, now: DateTime<Utc>) -> Result<Option<TargetLookup>, Refusal> {
        loop {
            let step = locked(&self.updater).search_target(target);
            let fetch = match step {
                Ok(TargetSearch::Found(found)) => return Ok(Some(found)),
                Ok(TargetSearch::NotFound) => return Ok(None),
                Ok(TargetSearch::NeedsRole(fetch)) => fetch,
                Err(error) => {
                    return Err(match classify(&error) {
                        Failure::Unavailable => Refusal::MetadataUnavailable(Arc::new(error)),
                        _ => Refusal::RoleRefused {
                            error: Arc::new(error),
                            retry_at: None,
                        },
                    })
                }
            };
            if let Some(refusal) = self.refused_role(&fetch.role, now) {
                return Err(refusal);
            }
            let role_lock = self.role_fetch_lock(&fetch.role);
            let _fetching = locked(&role_lock);
            // Another lookup may have fetched it, or failed to, while this one waited.
            let still_needed = matches!(
                locked(&self.updater).search_target(target),
                Ok(TargetSearch::NeedsRole(ref again)) if again.role == fetch.role
            );
            if !still_needed {
                continue;
            }
            if let Some(refusal) = self.refused_role(&fetch.role, now) {
                return Err(refusal);
            }
            let loaded = self
                .fetcher
                .fetch(&fetch.url, fetch.max_length)
                .map_err(UpdateError::from)
                .and_then(|bytes| locked(&self.updater).trust_fetched_targets(&fetch, &bytes));
            match loaded {
                Ok(()) => {
                    locked(&self.cache).role_failures.remove(&fetch.role);
                }
                Err(error) => return Err(self.role_failed(&fetch.role, error, now)),
            }
        }
    }
}

/// A top-level role as trusted: its version and expiry.
#[derive(Debug, Clone, Copy)]
struct TopLevelRole {
    role: &'static str,
    version: u64,
    expires: DateTime<Utc>,
}

/// A top-level role as the status page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleSummary {
    /// `root`, `timestamp`, `snapshot` or `targets`.
    pub role: &'static str,
    /// The trusted version.
    pub version: u64,
    /// When it expires.
    pub expires: String,
    /// Seconds until then (negative once expired).
    pub expires_in_seconds: i64,
}

/// The top-level role that expires first, and when.
struct FirstExpiry {
    role: &'static str,
    expires: DateTime<Utc>,
}

struct State {
    current: Option<Arc<RefreshedState>>,
    /// Set when the last refresh refused the repository's metadata (fail closed).
    refused: Option<Arc<RefreshError>>,
    /// Why the last refresh failed; `None` after a success, or before the first.
    last_error: Option<Arc<RefreshError>>,
}

/// The proxy's view of the TUF repository.
pub struct TrustStore {
    config: TrustConfig,
    fetcher: MetadataFetcher,
    state: Mutex<State>,
    /// Serialises refreshes (a slow one must not overlap the next).
    refreshing: Mutex<()>,
    /// The recent refresh attempts and the next one due.
    refresh_log: RefreshLog,
}

/// Where the roots trusted so far are kept, by version, to check the chain at start.
const ROOT_HISTORY_DIR: &str = "roots";

/// Why the state directory cannot be used with the operator's root.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A root is not valid metadata signed by its own keys.
    #[error("{path}: not a valid trusted root: {source}")]
    InvalidRoot {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<TrustError>,
    },
    /// The metadata client could not be set up.
    #[error("cannot fetch TUF metadata: {0}")]
    Fetcher(FetchError),
    /// The state directory trusts a root that the operator's root does not lead to.
    #[error(
        "the state directory trusts root v{stored} ({path}), which does not chain from the \
         configured root v{given}: {reason}. If the configured root is right, remove {dir} \
         to start again from it; if the state directory is, configure its root"
    )]
    RootDoesNotChain {
        /// The stored root's version.
        stored: u64,
        /// The configured root's version.
        given: u64,
        /// The stored root file.
        path: PathBuf,
        /// The metadata directory to remove.
        dir: PathBuf,
        /// Why the chain failed.
        reason: Box<ChainBreak>,
    },
}

/// Where the chain from the configured root to the stored one breaks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainBreak {
    /// The stored root has the configured root's version but other content.
    #[error("it is another root of the same version")]
    SameVersionOtherRoot,
    /// An intermediate root could not be fetched to check it.
    #[error("root v{version} cannot be fetched to check it: {error}")]
    Unavailable {
        /// Its version.
        version: u64,
        /// Why.
        error: FetchError,
    },
    /// An intermediate root does not verify against the one before.
    #[error("root v{version}: {error}")]
    Refused {
        /// Its version.
        version: u64,
        /// Why.
        error: Box<TrustError>,
    },
    /// The chain ends at another root of the stored version.
    #[error("the repository's root v{version} is not the one stored")]
    OtherEnd {
        /// The stored version.
        version: u64,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

impl TrustStore {
    /// Prepares the state directory. The operator's root is trusted first (§5.2). A root
    /// persisted in the state directory by an earlier run replaces it only if it is
    /// reached from the operator's root by the §5.3 chain: each version signed by the
    /// threshold of the one before and of its own keys. Blocking (it may fetch roots the
    /// state directory does not hold); call it from a blocking thread.
    pub fn new(config: TrustConfig) -> Result<Self, StateError> {
        std::fs::create_dir_all(&config.metadata_dir).map_err(io_error(&config.metadata_dir))?;
        let fetcher =
            MetadataFetcher::for_location(&config.metadata, config.connect_timeout, config.timeout)
                .map_err(StateError::Fetcher)?;
        let store = TrustStore {
            config,
            fetcher,
            state: Mutex::new(State {
                current: None,
                refused: None,
                last_error: None,
            }),
            refreshing: Mutex::new(()),
            refresh_log: RefreshLog::default(),
        };
        store.choose_root()?;
        Ok(store)
    }

    fn read_root(&self, path: &Path) -> Result<Vec<u8>, StateError> {
        let file = std::fs::File::open(path).map_err(io_error(path))?;
        read_bounded(
            file,
            &path.display().to_string(),
            self.config.limits.max_root_length,
        )
        .map_err(|e| StateError::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })
    }

    fn parse_root(&self, path: &Path, bytes: &[u8]) -> Result<TrustedMetadataSet, StateError> {
        TrustedMetadataSet::new(bytes, Utc::now(), &self.config.limits).map_err(|source| {
            StateError::InvalidRoot {
                path: path.to_owned(),
                source: Box::new(source),
            }
        })
    }

    fn history_path(&self, version: u64) -> PathBuf {
        self.config
            .metadata_dir
            .join(ROOT_HISTORY_DIR)
            .join(format!("{version}.root.json"))
    }

    /// Keeps `bytes`, a root trusted now, in the root history.
    fn remember_root(&self, version: u64, bytes: &[u8]) -> Result<(), StateError> {
        let dir = self.config.metadata_dir.join(ROOT_HISTORY_DIR);
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let path = self.history_path(version);
        tuf_core::fs::write_atomic(&path, bytes).map_err(io_error(&path))
    }

    fn choose_root(&self) -> Result<(), StateError> {
        let given_path = self.config.root.clone();
        let given = self.read_root(&given_path)?;
        // §5.2: the given root must verify against itself before it is used at all.
        let given_set = self.parse_root(&given_path, &given)?;
        let given_version = given_set.root().signed().version;
        let store = MetadataDir::new(&self.config.metadata_dir);
        let stored_path = store.role_path("root");
        let stored = store
            .load("root", self.config.limits.max_root_length)
            .map_err(io_error(&stored_path))?;
        let Some(stored) = stored else {
            store
                .persist("root", &given)
                .map_err(io_error(&stored_path))?;
            return self.remember_root(given_version, &given);
        };
        let stored_set = self.parse_root(&stored_path, &stored)?;
        let stored_version = stored_set.root().signed().version;
        let does_not_chain = |reason: ChainBreak| StateError::RootDoesNotChain {
            stored: stored_version,
            given: given_version,
            path: stored_path.clone(),
            dir: self.config.metadata_dir.clone(),
            reason: Box::new(reason),
        };
        let same_root = |a: &TrustedMetadataSet, b: &TrustedMetadataSet| matches!((a.root().signed_bytes(), b.root().signed_bytes()), (Ok(a), Ok(b)) if a == b);
        if stored_version < given_version {
            tracing::info!(
                stored = stored_version,
                given = given_version,
                "the configured root is newer than the state directory's: using it"
            );
            store
                .persist("root", &given)
                .map_err(io_error(&stored_path))?;
            return self.remember_root(given_version, &given);
        }
        if stored_version == given_version {
            if !same_root(&stored_set, &given_set) {
                return Err(does_not_chain(ChainBreak::SameVersionOtherRoot));
            }
            return self.remember_root(given_version, &given);
        }
        // §5.3: walk from the configured root to the stored one, each version signed by
        // the one before; versions the history lacks come from the repository.
        let mut chain = given_set;
        for version in given_version + 1..=stored_version {
            let local = self.history_path(version);
            let bytes = if local.exists() {
                self.read_root(&local)?
            } else {
                let url = format!("{}{version}.root.json", self.metadata_url());
                self.fetcher
                    .fetch(&url, self.config.limits.max_root_length)
                    .map_err(|error| does_not_chain(ChainBreak::Unavailable { version, error }))?
            };
            chain
                .update_root(&bytes, &self.config.limits)
                .map_err(|error| {
                    does_not_chain(ChainBreak::Refused {
                        version,
                        error: Box::new(error),
                    })
                })?;
            self.remember_root(version, &bytes)?;
        }
        if !same_root(&chain, &stored_set) {
            return Err(does_not_chain(ChainBreak::OtherEnd {
                version: stored_version,
            }));
        }
        tracing::info!(version = stored_version, configured = given_version, dir = %self.config.metadata_dir.display(), "using the later trusted root in the state directory (it chains from the configured root)");
        Ok(())
    }

    fn metadata_url(&self) -> String {
        match &self.config.metadata {
            MetadataLocation::Url(url) => url.clone(),
            MetadataLocation::Directory(dir) => DirectoryFetcher::new(dir.clone()).base_url(""),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        locked(&self.state)
    }

    /// Runs one update (§5.3 to §5.6 from the persisted metadata) and swaps it in.
    pub fn refresh(&self) -> Result<(), Arc<RefreshError>> {
        let _one_at_a_time = locked(&self.refreshing);
        let now = Utc::now();
        let result = self.update(now);
        self.refresh_log.record(
            now,
            Utc::now(),
            result.as_ref().err().map(ToString::to_string),
        );
        let mut state = self.lock();
        match result {
            Ok(next) => {
                if state.refused.take().is_some() {
                    tracing::warn!("TUF metadata trusted again after a refused refresh");
                }
                tracing::info!(
                    timestamp = next.timestamp_version,
                    snapshot = next.snapshot_version,
                    "TUF metadata refreshed"
                );
                // The same snapshot names the same role versions: the same answers.
                if let Some(old) = state.current.take() {
                    if old.snapshot_version == next.snapshot_version {
                        let mut old_cache = locked(&old.cache);
                        let mut new_cache = locked(&next.cache);
                        std::mem::swap(&mut *old_cache, &mut *new_cache);
                    }
                }
                state.current = Some(Arc::new(next));
                state.last_error = None;
                drop(state);
                if let Some(shared) = &self.config.shared {
                    // Failing to share is not failing to trust: the next refresh retries.
                    if let Err(error) =
                        shared.publish_baseline(&self.config.metadata_dir, &self.config.limits)
                    {
                        tracing::warn!(%error, "cannot write the rollback baseline to the shared state");
                    }
                }
                Ok(())
            }
            Err(error) => {
                let error = Arc::new(error);
                if error.is_refusal() {
                    tracing::error!(%error, "TUF metadata refused: failing closed");
                    state.refused = Some(Arc::clone(&error));
                } else {
                    tracing::warn!(%error, "cannot refresh TUF metadata; keeping the trusted state until it expires");
                }
                state.last_error = Some(Arc::clone(&error));
                Err(error)
            }
        }
    }

    fn update(&self, now: DateTime<Utc>) -> Result<RefreshedState, RefreshError> {
        if let Some(shared) = &self.config.shared {
            // What any replica trusted before is the baseline of this update too.
            shared
                .adopt_baseline(&self.config.metadata_dir, &self.config.limits)
                .map_err(RefreshError::SharedBaseline)?;
        }
        let mut config = UpdaterConfig::new(&self.config.metadata_dir, self.metadata_url());
        config.limits = self.config.limits;
        let mut updater = Updater::new(config, self.fetcher.clone(), now)?;
        updater.refresh()?;
        let trusted = updater.trusted();
        let root = trusted.root();
        let (Some(timestamp), Some(snapshot), Some(targets)) = (
            trusted.timestamp(),
            trusted.snapshot(),
            trusted.targets("targets"),
        ) else {
            return Err(RefreshError::Incomplete);
        };
        let signs_index_entries = tuf_core::layout::signs_index_entries(targets.signed());
        let root_version = root.signed().version;
        if !self.history_path(root_version).exists() {
            if let Ok(bytes) = root.to_bytes() {
                // The chain check at the next start can fetch what is missing.
                if let Err(error) = self.remember_root(root_version, &bytes) {
                    tracing::warn!(%error, "cannot keep the trusted root in the root history");
                }
            }
        }
        let top_level = [
            ("root", root_version, root.signed().expires),
            (
                "timestamp",
                timestamp.signed().version,
                timestamp.signed().expires,
            ),
            (
                "snapshot",
                snapshot.signed().version,
                snapshot.signed().expires,
            ),
            (
                "targets",
                targets.signed().version,
                targets.signed().expires,
            ),
        ]
        .map(|(role, version, expires)| TopLevelRole {
            role,
            version,
            expires,
        });
        let first_expiry = top_level
            .iter()
            .min_by_key(|r| r.expires)
            .map(|r| FirstExpiry {
                role: r.role,
                expires: r.expires,
            })
            .unwrap_or(FirstExpiry {
                role: "root",
                expires: root.signed().expires,
            });
        Ok(RefreshedState {
            root_version,
            timestamp_version: timestamp.signed().version,
            snapshot_version: snapshot.signed().version,
            first_expiry,
            top_level,
            refreshed_at: now,
            signs_index_entries,
            consistent_snapshot: root.signed().consistent_snapshot(),
            cache: Mutex::new(SnapshotCache {
                lookups: LruCache::new(self.config.max_cached_lookups),
                reused: 0,
                role_failures: HashMap::new(),
            }),
            role_fetches: Mutex::new(HashMap::new()),
            fetcher: self.fetcher.clone(),
            updater: Mutex::new(updater),
        })
    }

    /// Fails when nothing can be served right now, saying why.
    fn check_serving(state: &State, now: DateTime<Utc>) -> Result<&Arc<RefreshedState>, Refusal> {
        if let Some(error) = &state.refused {
            return Err(Refusal::RepositoryRefused(Arc::clone(error)));
        }
        let Some(current) = &state.current else {
            return Err(Refusal::NoMetadata {
                last_error: state.last_error.clone(),
            });
        };
        let FirstExpiry { role, expires } = current.first_expiry;
        if expired(expires, now) {
            return Err(Refusal::Expired {
                role: role.to_owned(),
                expires,
                last_error: state.last_error.clone(),
            });
        }
        Ok(current)
    }

    /// Whether requests can be served now; the reason when not.
    pub fn serving(&self) -> Result<(), Refusal> {
        Self::check_serving(&self.lock(), Utc::now()).map(|_| ())
    }

    /// The trusted state to answer from at `now`, and the last refresh error.
    fn current(
        &self,
        now: DateTime<Utc>,
    ) -> Result<(Arc<RefreshedState>, Option<Arc<RefreshError>>), Refusal> {
        let state = self.lock();
        let current = Self::check_serving(&state, now)?;
        Ok((Arc::clone(current), state.last_error.clone()))
    }

    /// The answer [`Self::lookup`] would give, if it needs no metadata: a refusal of
    /// everything, or an answer already looked up under the current snapshot. Only short
    /// locks are taken, so async code may call it; `None` means call [`Self::lookup`] on
    /// a blocking thread.
    pub fn lookup_cached(&self, name: &str, version: &str, now: DateTime<Utc>) -> Option<Lookup> {
        self.lookup_target_cached(crate_target_path(name, version), now)
    }

    /// The signed target of crate `name` version `version`, judged at `now`. Blocking:
    /// it may fetch the delegated roles on the crate's delegation path.
    pub fn lookup(&self, name: &str, version: &str, now: DateTime<Utc>) -> Lookup {
        self.lookup_target(&crate_target_path(name, version)?, now)
    }

    /// The signed index file of crate `name` (spec/role-layout.md), judged at `now`.
    /// Blocking, like [`Self::lookup`].
    pub fn lookup_index_file(&self, name: &str, now: DateTime<Utc>) -> Lookup {
        self.lookup_target(&crate_index_path(name)?, now)
    }

    /// The answer [`Self::lookup_index_file`] would give, if it needs no metadata, as
    /// [`Self::lookup_cached`]: async code may call it; `None` means call
    /// [`Self::lookup_index_file`] on a blocking thread.
    pub fn lookup_index_file_cached(&self, name: &str, now: DateTime<Utc>) -> Option<Lookup> {
        self.lookup_target_cached(crate_index_path(name), now)
    }

    /// The cached half of [`Self::lookup_target`]: an invalid name, a refusal of
    /// everything, or an answer already looked up under the current snapshot.
    fn lookup_target_cached(
        &self,
        target: Result<String, LayoutError>,
        now: DateTime<Utc>,
    ) -> Option<Lookup> {
        let target = match target {
            Ok(target) => target,
            Err(e) => return Some(Err(e.into())),
        };
        match self.current(now) {
            Ok((current, _)) => current.cached(&target, now),
            Err(refusal) => Some(Err(refusal)),
        }
    }

    /// Whether the trusted top-level targets says that every crate of this repository has
    /// a signed index file (set by `tuf-signer init` since signed index entries exist).
    pub fn signs_index_entries(&self) -> Option<bool> {
        let state = self.lock();
        let current = state.current.as_ref()?;
        Some(current.signs_index_entries)
    }

    /// Whether the trusted root says the repository uses consistent snapshots (target
    /// files named by their digest, §5.7.2); true before the first refresh.
    pub fn consistent_snapshot(&self) -> bool {
        let state = self.lock();
        state.current.as_ref().is_none_or(|c| c.consistent_snapshot)
    }

    /// The signed target at path `target`, judged at `now`. Blocking.
    fn lookup_target(&self, target: &str, now: DateTime<Utc>) -> Lookup {
        let target = target.to_owned();
        let (current, last_error) = self.current(now)?;
        if let Some(answer) = current.cached(&target, now) {
            return answer;
        }
        let answer: Lookup = match current.search(&target, now)? {
            Some(found) => match found.info.hashes.get("sha256") {
                Some(sha256) => Ok(Arc::new(SignedTarget {
                    target: target.clone(),
                    role: found.role,
                    delegator: found.delegator,
                    length: found.info.length,
                    sha256: sha256.to_ascii_lowercase(),
                    hashes: found.info.hashes.clone(),
                    valid_until: found.valid_until,
                    scan: tuf_core::layout::recorded_scan(&found.info),
                })),
                None => Err(Refusal::NoSha256(target.clone())),
            },
            None => Err(Refusal::NotSigned {
                target: target.clone(),
            }),
        };
        if let Ok(release) = &answer {
            if expired(release.valid_until, now) {
                return Err(Refusal::Expired {
                    role: release.role.clone(),
                    expires: release.valid_until,
                    last_error,
                });
            }
        }
        current.remember(target, &answer);
        answer
    }

    /// The keys authorised to sign `target`'s role, as its delegator lists them (the
    /// owners' keys, for a namespace role); `None` when the state it was looked up in is
    /// gone (a refresh since: look it up again).
    pub fn authorised_keys(&self, target: &SignedTarget) -> Option<Vec<tuf_core::keys::Key>> {
        let state = self.lock();
        let current = state.current.as_ref()?;
        let updater = locked(&current.updater);
        updater
            .trusted()
            .authorised_keys(&target.role, &target.delegator)
    }

    /// The trusted snapshot version (changes when the signed set may have changed).
    pub fn snapshot_version(&self) -> Option<u64> {
        self.lock().current.as_ref().map(|c| c.snapshot_version)
    }

    /// The recent refresh attempts, and when the next one is due (the serve loop
    /// schedules it).
    pub fn refresh_log(&self) -> &RefreshLog {
        &self.refresh_log
    }

    /// A summary for the status page.
    pub fn summary(&self) -> TrustSummary {
        let now = Utc::now();
        let refresh = self.refresh_log.status(now);
        let state = self.lock();
        let serving = Self::check_serving(&state, now).map(|_| ());
        let current = state.current.as_ref();
        let (lookups_cached, lookups_reused, roles_refused) =
            current.map_or((0, 0, Vec::new()), |c| {
                let cache = locked(&c.cache);
                let mut refused: Vec<String> = cache
                    .role_failures
                    .iter()
                    .map(|(role, failure)| format!("{role}: {}", failure.error))
                    .collect();
                refused.sort();
                (cache.lookups.len(), cache.reused, refused)
            });
        TrustSummary {
            serving: serving.is_ok(),
            refusal: serving.err().map(|r| r.to_string()),
            root_version: current.map(|c| c.root_version),
            timestamp_version: current.map(|c| c.timestamp_version),
            snapshot_version: current.map(|c| c.snapshot_version),
            expires: current.map(|c| {
                format!(
                    "{} ({})",
                    format_expires(&c.first_expiry.expires),
                    c.first_expiry.role
                )
            }),
            last_refresh: current.map(|c| format_expires(&c.refreshed_at)),
            last_error: state.last_error.as_ref().map(ToString::to_string),
            lookups_cached,
            lookups_reused,
            lookups_budget: self.config.max_cached_lookups.get(),
            roles_refused,
            roles: current.map_or_else(Vec::new, |c| {
                c.top_level
                    .iter()
                    .map(|r| RoleSummary {
                        role: r.role,
                        version: r.version,
                        expires: format_expires(&r.expires),
                        expires_in_seconds: (r.expires - now).num_seconds(),
                    })
                    .collect()
            }),
            refresh,
        }
    }
}

/// The proxy tests' TUF repository (tuf-core's editor, and forgeries of it), for the
/// trust store's own tests. (A `#[path]` inside `mod tests` would resolve under
/// `src/trust/tests/`.)
#[cfg(test)]
#[path = "../tests/support/tuf_repo.rs"]
#[allow(dead_code, clippy::expect_used, clippy::panic, clippy::unwrap_used)]
pub(crate) mod tuf_repo;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    use super::tuf_repo::{self, TestRepo};

    /// A repository with one release, `demo` 1.0.0.
    fn repository() -> TestRepo {
        let mut repo = TestRepo::new();
        let tarball = tuf_crates_tests::crate_tarball::build_crate_tarball(
            "demo",
            "1.0.0",
            &[],
            "pub fn f() {}\n",
        );
        repo.add_release("demo", "1.0.0", &tarball);
        repo.sign_and_publish();
        repo
    }

    /// A trust store over `repo`'s published files, its state in `state`.
    fn store(repo: &TestRepo, state: &Path) -> TrustStore {
        TrustStore::new(TrustConfig {
            metadata: MetadataLocation::Directory(repo.metadata_dir()),
            root: repo.root_path(),
            metadata_dir: state.join("metadata"),
            limits: Limits::default(),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            max_cached_lookups: NonZeroUsize::new(100).unwrap(),
            shared: None,
        })
        .unwrap()
    }

    #[test]
    fn expiry_is_reached_at_the_expiry_instant() {
        let at = Utc::now();
        let second = chrono::Duration::seconds(1);
        assert!(expired(at, at));
        assert!(expired(at - second, at));
        assert!(!expired(at + second, at));
    }

    #[test]
    fn a_lookup_is_answered_from_the_snapshot_cache_until_its_chain_expires() {
        let mut repo = repository();
        // The release's bin expires in an hour, before the top-level roles do: the
        // cached answer is valid until then only.
        let role = repo.role_for("demo", "1.0.0");
        let bin_expires =
            tuf_core::metadata::whole_seconds(Utc::now() + chrono::Duration::hours(1));
        let online = tuf_repo::clone_key(&repo.keys.online);
        repo.forge(&role, |t| t.expires = bin_expires, &online);
        let state = tempfile::tempdir().unwrap();
        let store = store(&repo, state.path());
        store.refresh().unwrap();
        let now = Utc::now();
        assert!(
            store.lookup_cached("demo", "1.0.0", now).is_none(),
            "nothing cached yet"
        );
        let first = store.lookup("demo", "1.0.0", now).unwrap();
        assert_eq!(first.valid_until, bin_expires);
        assert_eq!(store.summary().lookups_reused, 0);
        let again = store.lookup_cached("demo", "1.0.0", now).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "the cached answer itself");
        store.lookup("demo", "1.0.0", now).unwrap();
        let summary = store.summary();
        assert_eq!((summary.lookups_cached, summary.lookups_reused), (1, 2));
        // At the bin's expiry instant the cached answer is no longer used...
        assert!(
            store.lookup_cached("demo", "1.0.0", bin_expires).is_none(),
            "an answer whose chain has expired is not reused"
        );
        // ...and a lookup then says the chain expired.
        assert!(matches!(
            store.lookup("demo", "1.0.0", bin_expires),
            Err(Refusal::Expired { role: ref expired, .. }) if *expired == role
        ));
        // A refusal is reused too (the same snapshot gives the same answer).
        assert!(matches!(
            store.lookup("absent", "1.0.0", now),
            Err(Refusal::NotSigned { .. })
        ));
        assert!(matches!(
            store.lookup_cached("absent", "1.0.0", now),
            Some(Err(Refusal::NotSigned { .. }))
        ));
    }

    #[test]
    fn a_kept_role_that_cannot_be_read_back_is_unavailable_not_refused() {
        let mut repo = repository();
        let role = repo.role_for("demo", "1.0.0");
        let state = tempfile::tempdir().unwrap();
        let first = store(&repo, state.path());
        first.refresh().unwrap();
        first.lookup("demo", "1.0.0", Utc::now()).unwrap();
        drop(first);
        // The next start finds the role kept but unreadable (a directory in its place):
        // a local fault, answered "unavailable, try again", not a refusal of the role.
        let kept = MetadataDir::new(state.path().join("metadata")).role_path(&role);
        std::fs::remove_file(&kept).unwrap();
        std::fs::create_dir(&kept).unwrap();
        let second = store(&repo, state.path());
        second.refresh().unwrap();
        assert!(matches!(
            second.lookup("demo", "1.0.0", Utc::now()),
            Err(Refusal::MetadataUnavailable(ref error))
                if matches!(**error, UpdateError::Io { .. })
        ));
        assert!(second.summary().roles_refused.is_empty());
    }

    #[test]
    fn every_root_trusted_is_kept_in_the_root_history() {
        let mut repo = repository();
        let state = tempfile::tempdir().unwrap();
        let history = state.path().join("metadata").join(ROOT_HISTORY_DIR);
        let store = store(&repo, state.path());
        // The given root, kept at start.
        assert_eq!(
            std::fs::read(history.join("1.root.json")).unwrap(),
            std::fs::read(repo.root_path()).unwrap()
        );
        assert_eq!(store.summary().root_version, None);
        // A rotation the refresh follows: the new root is kept too.
        let version = repo.forge_root(|_| {});
        assert_eq!(version, 2);
        store.refresh().unwrap();
        assert_eq!(store.summary().root_version, Some(2));
        assert_eq!(
            std::fs::read(history.join("2.root.json")).unwrap(),
            std::fs::read(repo.metadata_dir().join("2.root.json")).unwrap()
        );
    }

    #[test]
    fn what_the_trusted_metadata_says_of_the_repository_is_read_from_it() {
        let mut repo = repository();
        let state = tempfile::tempdir().unwrap();
        let store = store(&repo, state.path());
        // Before the first refresh nothing is known: signed entries are not assumed
        // absent (the caller's `auto` then requires them), and digests name targets.
        assert_eq!(store.signs_index_entries(), None);
        assert!(store.consistent_snapshot());
        store.refresh().unwrap();
        assert_eq!(store.signs_index_entries(), Some(true));
        assert!(store.consistent_snapshot());
        // A repository from before signed index entries: top-level targets without the
        // marker, and a root without consistent snapshots (files by plain names).
        let targets_key = tuf_repo::clone_key(&repo.keys.targets);
        repo.forge(
            "targets",
            |t| {
                t.unrecognized_fields.remove(tuf_core::layout::LAYOUT_FIELD);
            },
            &targets_key,
        );
        repo.forge_root(|root| root.consistent_snapshot = Some(false));
        let generation = repo.current_generation_dir();
        for role in ["snapshot", "targets"] {
            let version = match role {
                "snapshot" => repo.snapshot_version(),
                _ => repo.role_version(role),
            };
            std::fs::copy(
                generation.join(format!("{version}.{role}.json")),
                generation.join(format!("{role}.json")),
            )
            .unwrap();
        }
        store.refresh().unwrap();
        assert_eq!(store.signs_index_entries(), Some(false));
        assert!(!store.consistent_snapshot());
    }

    #[test]
    fn garbled_bytes_are_retried_with_a_growing_backoff_and_bad_signatures_are_not() {
        let garbled = UpdateError::Trust(TrustError::Hashes {
            role: "bin-1".into(),
            referrer: "snapshot",
            source: tuf_core::hash::HashError::LengthMismatch {
                expected: 1,
                actual: 2,
            },
        });
        assert_eq!(classify(&garbled), Failure::RefusedRetry);
        let unavailable = UpdateError::Fetch(FetchError::Status {
            url: "u".into(),
            status: 500,
        });
        assert_eq!(classify(&unavailable), Failure::Unavailable);
        let rollback = UpdateError::Trust(TrustError::Rollback {
            role: "x".into(),
            trusted: 2,
            new: 1,
        });
        assert_eq!(classify(&rollback), Failure::Refused);
        // Steps out of order are the caller's bug, not the repository's: unavailable
        // (answered 503 and retried), never a refusal cached for the whole snapshot.
        let order = UpdateError::Trust(TrustError::Order("search before refresh"));
        assert_eq!(classify(&order), Failure::Unavailable);
        let delays: Vec<i64> = (1..=12)
            .map(|n| role_retry_delay(n).num_seconds())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
    }
}
