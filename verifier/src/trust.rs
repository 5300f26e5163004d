//! What the proxy trusts: tuf-core's client workflow over the registry's TUF repository,
//! refreshed on an interval, answering "which tarball is signed for this crate version?".
//!
//! The state machine and every check of the TUF specification live in tuf-core
//! (`TrustedMetadataSet`, driven by `Updater`). This module adds what a long-running
//! client needs:
//! * each refresh starts a new update (§5.1: the reference time is fixed per update) from
//!   the metadata persisted in the state directory, so rollback is judged against
//!   everything trusted before, across restarts;
//! * a refresh that fails because metadata was refused (a bad signature, a rollback, a
//!   mix-and-match, expired metadata) fails closed at once: nothing is served until a
//!   later refresh succeeds. A refresh that fails to reach the repository keeps the last
//!   trusted state, but only until that state expires;
//! * every answer is checked against the clock when it is used, not only when it was
//!   looked up: the earliest expiry of root, timestamp, snapshot, top-level targets and
//!   every role on the delegation path.
//!
//! All of it is blocking (the updater fetches metadata through a blocking bridge); the
//! server calls it from `spawn_blocking`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use tuf_core::client::{
    read_bounded, DirectoryFetcher, FetchError, Fetcher, Limits, MetadataDir, TrustError,
    UpdateError, Updater, UpdaterConfig,
};
use tuf_core::hash::Hashes;
use tuf_core::layout::crate_target_path;
use tuf_core::metadata::format_expires;

use crate::config::MetadataLocation;

/// Why the proxy will not hand out a crate version (or any crate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The crate name or version is not one the registry layout allows.
    #[error("invalid crate name or version: {0}")]
    InvalidName(String),
    /// No role authorised for the crate's target path lists it.
    #[error("not signed: no key authorised for {target} signed it")]
    NotSigned {
        /// The target path looked up.
        target: String,
    },
    /// A role on the crate's delegation path was refused (e.g. signed by a key its
    /// delegator does not authorise).
    #[error("TUF metadata refused: {0}")]
    RoleRefused(String),
    /// The last refresh refused the repository's metadata; nothing is served.
    #[error("TUF metadata refused at the last refresh, serving nothing until it recovers: {0}")]
    RepositoryRefused(String),
    /// Trusted metadata has expired and could not be refreshed.
    #[error("TUF metadata expired: {role} expired at {expires}{}", last_error.as_ref().map(|e| format!("; the last refresh failed: {e}")).unwrap_or_default())]
    Expired {
        /// The role that expired first.
        role: String,
        /// When.
        expires: String,
        /// Why the last refresh failed, if it did.
        last_error: Option<String>,
    },
    /// Metadata has never been trusted since start.
    #[error("no trusted TUF metadata yet: {0}")]
    NoMetadata(String),
    /// Metadata needed for the lookup could not be fetched (try again).
    #[error("cannot fetch TUF metadata: {0}")]
    MetadataUnavailable(String),
    /// The signed target has no sha256 digest to compare with cargo's `cksum`.
    #[error("the signed target {0} has no sha256 digest")]
    NoSha256(String),
}

impl Refusal {
    /// True for failures that may go away on retry (the repository was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::MetadataUnavailable(_) | Self::NoMetadata(_))
    }
}

/// A release as the TUF repository signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRelease {
    /// The target path (`crates/<ns>/<leaf>/<leaf>-<version>.crate`).
    pub target: String,
    /// The role that signed it.
    pub role: String,
    /// The signed length.
    pub length: u64,
    /// The signed sha256, lowercase hex.
    pub sha256: String,
    /// Every signed digest (all are checked).
    pub hashes: Hashes,
    /// Until when this answer holds (earliest expiry along its delegation path).
    pub valid_until: DateTime<Utc>,
}

/// Fetches metadata for the updater: a local directory, or HTTP through the proxy's
/// async client, blocking on the runtime from a blocking thread.
#[derive(Clone)]
pub enum MetadataFetcher {
    /// A directory of metadata files.
    Directory(DirectoryFetcher),
    /// An HTTP(S) base URL.
    Http {
        /// The async client (its timeouts apply).
        client: reqwest::Client,
        /// The runtime to block on.
        runtime: tokio::runtime::Handle,
    },
}

impl MetadataFetcher {
    /// The fetcher for `location`: HTTP through `client` (from within the current tokio
    /// runtime), or a local directory.
    pub fn for_location(location: &MetadataLocation, client: &reqwest::Client) -> Self {
        match location {
            MetadataLocation::Url(_) => Self::Http {
                client: client.clone(),
                runtime: tokio::runtime::Handle::current(),
            },
            MetadataLocation::Directory(dir) => Self::Directory(DirectoryFetcher::new(dir.clone())),
        }
    }
}

impl Fetcher for MetadataFetcher {
    fn fetch(&self, url: &str, max_length: u64) -> Result<Vec<u8>, FetchError> {
        match self {
            Self::Directory(fetcher) => fetcher.fetch(url, max_length),
            Self::Http { client, runtime } => {
                runtime.block_on(crate::upstream::get_bounded(client, url, max_length))
            }
        }
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
}

/// A summary of the trusted state, for `/status` and `/healthz`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrustSummary {
    /// Whether requests are being served.
    pub serving: bool,
    /// Why not, when not.
    pub refusal: Option<String>,
    /// Trusted root version.
    pub root_version: Option<u64>,
    /// Trusted timestamp version.
    pub timestamp_version: Option<u64>,
    /// Trusted snapshot version.
    pub snapshot_version: Option<u64>,
    /// When the trusted top-level metadata expires (first of them).
    pub expires: Option<String>,
    /// When the last successful refresh happened.
    pub last_refresh: Option<String>,
    /// The last refresh failure, if the last refresh failed.
    pub last_error: Option<String>,
    /// Crate versions looked up in this snapshot.
    pub lookups_cached: usize,
}

/// One successful refresh: the trusted metadata and the lookups answered under it. The
/// updater is locked only to look up what the cache does not hold (it may fetch a
/// delegated role), so cached answers never wait behind a slow repository.
struct Trusted {
    updater: Mutex<Updater<MetadataFetcher>>,
    root_version: u64,
    timestamp_version: u64,
    snapshot_version: u64,
    /// The top-level role that expires first, and when.
    first_expiry: (String, DateTime<Utc>),
    refreshed_at: DateTime<Utc>,
    /// Lookups made under this snapshot version.
    lookups: RwLock<HashMap<String, Result<SignedRelease, Refusal>>>,
}

impl Trusted {
    /// The cached answer for `target`, unless absent or no longer valid at `now`.
    fn cached(&self, target: &str, now: DateTime<Utc>) -> Option<Result<SignedRelease, Refusal>> {
        let lookups = self.lookups.read().unwrap_or_else(|e| e.into_inner());
        match lookups.get(target)? {
            Ok(release) if release.valid_until > now => Some(Ok(release.clone())),
            Ok(_) => None,
            Err(refusal) => Some(Err(refusal.clone())),
        }
    }
}

struct State {
    current: Option<Arc<Trusted>>,
    /// Set when the last refresh refused the repository's metadata (fail closed).
    refused: Option<String>,
    last_error: Option<String>,
}

/// The proxy's view of the TUF repository.
pub struct TrustStore {
    config: TrustConfig,
    fetcher: MetadataFetcher,
    state: Mutex<State>,
    /// Serialises refreshes (a slow one must not overlap the next).
    refreshing: Mutex<()>,
}

/// Lookups cached per snapshot version; beyond this many, the cache starts over.
const MAX_CACHED_LOOKUPS: usize = 1_000_000;

impl TrustStore {
    /// Prepares the state directory: the operator's root becomes the trusted root unless
    /// a root is already persisted there (a later version reached by rotation, which the
    /// operator's file cannot roll back).
    pub fn new(config: TrustConfig, fetcher: MetadataFetcher) -> anyhow::Result<Self> {
        use anyhow::Context;
        std::fs::create_dir_all(&config.metadata_dir).with_context(|| {
            format!(
                "cannot create the metadata directory {}",
                config.metadata_dir.display()
            )
        })?;
        let store = MetadataDir::new(&config.metadata_dir);
        let given = read_bounded(
            std::fs::File::open(&config.root).with_context(|| {
                format!("cannot open the trusted root {}", config.root.display())
            })?,
            &config.root.display().to_string(),
            config.limits.max_root_length,
        )?;
        // §5.2: the given root must verify against itself before it is used at all.
        let given_root =
            tuf_core::client::TrustedMetadataSet::new(&given, Utc::now(), &config.limits)
                .with_context(|| format!("{}: not a valid trusted root", config.root.display()))?;
        let stored = store
            .load("root", config.limits.max_root_length)
            .with_context(|| format!("cannot read {}", store.role_path("root").display()))?;
        let keep_stored = stored.as_deref().is_some_and(|bytes| {
            tuf_core::client::TrustedMetadataSet::new(bytes, Utc::now(), &config.limits)
                .is_ok_and(|s| s.root().signed().version >= given_root.root().signed().version)
        });
        if keep_stored {
            tracing::info!(dir = %config.metadata_dir.display(), "using the trusted root persisted in the state directory");
        } else {
            store
                .persist("root", &given)
                .with_context(|| format!("cannot write {}", store.role_path("root").display()))?;
        }
        Ok(Self {
            config,
            fetcher,
            state: Mutex::new(State {
                current: None,
                refused: None,
                last_error: Some("the first refresh has not finished".into()),
            }),
            refreshing: Mutex::new(()),
        })
    }

    fn metadata_url(&self) -> String {
        match &self.config.metadata {
            MetadataLocation::Url(url) => url.clone(),
            MetadataLocation::Directory(dir) => DirectoryFetcher::new(dir.clone()).base_url(""),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated (every
        // update is one assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one update (§5.3 to §5.6 from the persisted metadata) and swaps it in.
    /// Returns the error message when the refresh failed.
    pub fn refresh(&self) -> Result<(), String> {
        let _one_at_a_time = self.refreshing.lock().unwrap_or_else(|e| e.into_inner());
        let now = Utc::now();
        let mut config = UpdaterConfig::new(&self.config.metadata_dir, self.metadata_url());
        config.limits = self.config.limits;
        let result = Updater::new(config, self.fetcher.clone(), now).and_then(|mut updater| {
            updater.refresh()?;
            Ok(updater)
        });
        let mut state = self.lock();
        match result {
            Ok(updater) => {
                let trusted = updater.trusted();
                let root = trusted.root().signed();
                let (Some(timestamp), Some(snapshot), Some(targets)) = (
                    trusted.timestamp(),
                    trusted.snapshot(),
                    trusted.targets("targets"),
                ) else {
                    let message =
                        "the update finished without timestamp, snapshot and targets".to_owned();
                    state.last_error = Some(message.clone());
                    return Err(message);
                };
                let first_expiry = [
                    ("root", root.expires),
                    ("timestamp", timestamp.signed().expires),
                    ("snapshot", snapshot.signed().expires),
                    ("targets", targets.signed().expires),
                ]
                .into_iter()
                .min_by_key(|(_, expires)| *expires)
                .map(|(role, expires)| (role.to_owned(), expires))
                .unwrap_or_else(|| ("root".to_owned(), root.expires));
                let snapshot_version = snapshot.signed().version;
                let lookups = match state.current.take() {
                    // The same snapshot names the same role versions: same answers.
                    Some(old) if old.snapshot_version == snapshot_version => {
                        std::mem::take(&mut *old.lookups.write().unwrap_or_else(|e| e.into_inner()))
                    }
                    _ => HashMap::new(),
                };
                let next = Trusted {
                    root_version: root.version,
                    timestamp_version: timestamp.signed().version,
                    snapshot_version,
                    first_expiry,
                    refreshed_at: now,
                    lookups: RwLock::new(lookups),
                    updater: Mutex::new(updater),
                };
                if state.refused.take().is_some() {
                    tracing::warn!("TUF metadata trusted again after a refused refresh");
                }
                tracing::info!(
                    timestamp = next.timestamp_version,
                    snapshot = next.snapshot_version,
                    "TUF metadata refreshed"
                );
                state.current = Some(Arc::new(next));
                state.last_error = None;
                Ok(())
            }
            Err(error) => {
                let message = error.to_string();
                if is_refusal(&error) {
                    tracing::error!(%message, "TUF metadata refused: failing closed");
                    state.refused = Some(message.clone());
                } else {
                    tracing::warn!(%message, "cannot refresh TUF metadata; keeping the trusted state until it expires");
                }
                state.last_error = Some(message.clone());
                Err(message)
            }
        }
    }

    /// Fails when nothing can be served right now, saying why.
    fn check_serving(state: &State, now: DateTime<Utc>) -> Result<(), Refusal> {
        if let Some(reason) = &state.refused {
            return Err(Refusal::RepositoryRefused(reason.clone()));
        }
        let Some(current) = &state.current else {
            return Err(Refusal::NoMetadata(
                state.last_error.clone().unwrap_or_default(),
            ));
        };
        let (role, expires) = &current.first_expiry;
        if *expires <= now {
            return Err(Refusal::Expired {
                role: role.clone(),
                expires: format_expires(expires),
                last_error: state.last_error.clone(),
            });
        }
        Ok(())
    }

    /// Whether requests can be served now; the reason when not.
    pub fn serving(&self) -> Result<(), Refusal> {
        Self::check_serving(&self.lock(), Utc::now())
    }

    /// The trusted state to answer from at `now`, and the last refresh error.
    fn current(&self, now: DateTime<Utc>) -> Result<(Arc<Trusted>, Option<String>), Refusal> {
        let state = self.lock();
        Self::check_serving(&state, now)?;
        let Some(current) = &state.current else {
            return Err(Refusal::NoMetadata(String::new()));
        };
        Ok((Arc::clone(current), state.last_error.clone()))
    }

    /// The answer [`Self::lookup`] would give, if it needs no metadata fetch: a refusal
    /// of everything, or an answer already looked up under the current snapshot. Only
    /// short locks are taken, so async code may call it; `None` means call
    /// [`Self::lookup`] on a blocking thread.
    pub fn lookup_cached(
        &self,
        name: &str,
        version: &str,
        now: DateTime<Utc>,
    ) -> Option<Result<SignedRelease, Refusal>> {
        let target = match crate_target_path(name, version) {
            Ok(target) => target,
            Err(e) => return Some(Err(Refusal::InvalidName(e.to_string()))),
        };
        match self.current(now) {
            Ok((current, _)) => current.cached(&target, now),
            Err(refusal) => Some(Err(refusal)),
        }
    }

    /// The signed target of crate `name` version `version`, judged at `now`. Blocking:
    /// it may fetch the delegated roles on the crate's delegation path.
    pub fn lookup(
        &self,
        name: &str,
        version: &str,
        now: DateTime<Utc>,
    ) -> Result<SignedRelease, Refusal> {
        let target =
            crate_target_path(name, version).map_err(|e| Refusal::InvalidName(e.to_string()))?;
        let (current, last_error) = self.current(now)?;
        if let Some(answer) = current.cached(&target, now) {
            return answer;
        }
        let mut updater = current.updater.lock().unwrap_or_else(|e| e.into_inner());
        // Another request may have looked it up while this one waited.
        if let Some(answer) = current.cached(&target, now) {
            return answer;
        }
        let answer = match updater.find_target(&target) {
            Ok(Some(found)) => match found.info.hashes.get("sha256") {
                Some(sha256) => Ok(SignedRelease {
                    target: target.clone(),
                    role: found.role,
                    length: found.info.length,
                    sha256: sha256.to_ascii_lowercase(),
                    hashes: found.info.hashes.clone(),
                    valid_until: found.valid_until,
                }),
                None => Err(Refusal::NoSha256(target.clone())),
            },
            Ok(None) => Err(Refusal::NotSigned {
                target: target.clone(),
            }),
            Err(error) if is_refusal(&error) => Err(Refusal::RoleRefused(error.to_string())),
            // Not cached: the repository may be reachable on the next request.
            Err(error) => return Err(Refusal::MetadataUnavailable(error.to_string())),
        };
        if let Ok(release) = &answer {
            if release.valid_until <= now {
                return Err(Refusal::Expired {
                    role: release.role.clone(),
                    expires: format_expires(&release.valid_until),
                    last_error,
                });
            }
        }
        drop(updater);
        let mut lookups = current.lookups.write().unwrap_or_else(|e| e.into_inner());
        if lookups.len() >= MAX_CACHED_LOOKUPS {
            lookups.clear();
        }
        lookups.insert(target, answer.clone());
        answer
    }

    /// The trusted snapshot version (changes when the signed set may have changed).
    pub fn snapshot_version(&self) -> Option<u64> {
        self.lock().current.as_ref().map(|c| c.snapshot_version)
    }

    /// A summary for the status page.
    pub fn summary(&self) -> TrustSummary {
        let state = self.lock();
        let serving = Self::check_serving(&state, Utc::now());
        let current = state.current.as_ref();
        TrustSummary {
            serving: serving.is_ok(),
            refusal: serving.err().map(|r| r.to_string()),
            root_version: current.map(|c| c.root_version),
            timestamp_version: current.map(|c| c.timestamp_version),
            snapshot_version: current.map(|c| c.snapshot_version),
            expires: current.map(|c| {
                format!(
                    "{} ({})",
                    format_expires(&c.first_expiry.1),
                    c.first_expiry.0
                )
            }),
            last_refresh: current.map(|c| format_expires(&c.refreshed_at)),
            last_error: state.last_error.clone(),
            lookups_cached: current.map_or(0, |c| {
                c.lookups.read().unwrap_or_else(|e| e.into_inner()).len()
            }),
        }
    }
}

/// True when an update failed because metadata was refused (an attack, or a
/// repository broken in a way a retry will not fix), not because it was unreachable.
fn is_refusal(error: &UpdateError) -> bool {
    match error {
        UpdateError::Trust(trust) => !matches!(trust, TrustError::Order(_)),
        UpdateError::TooManyRootRotations(_) | UpdateError::TargetMismatch { .. } => true,
        // An endless-data answer is refused too; anything else about fetching is not.
        UpdateError::Fetch(FetchError::TooLong { .. }) => true,
        UpdateError::Fetch(_)
        | UpdateError::Io { .. }
        | UpdateError::NoTrustedRoot(_)
        | UpdateError::TargetWithoutHashes(_) => false,
    }
}
