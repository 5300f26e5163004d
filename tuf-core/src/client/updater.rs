//! The updater: drives [`TrustedMetadataSet`] over a [`Fetcher`], persists what it
//! trusts, resolves targets through delegations lazily, and downloads target files.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::fetch::{FetchError, Fetcher};
use super::search::{walk_delegations, DelegationWalk, TargetLookup};
use super::store::{quote_role_name, MetadataDir};
use super::trusted::{Limits, TrustError, TrustedMetadataSet};
use crate::fs::write_atomic;
use crate::hash::{verify_length_and_hashes, HashError};
use crate::metadata::{RoleKeys, TargetFile};

/// Why an update or download failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// Fetched metadata was refused.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A download failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Reading or writing local files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The metadata directory has no trusted root.
    #[error("{0}: no trusted root.json; initialise the client with a root first")]
    NoTrustedRoot(PathBuf),
    /// More root versions than allowed in one update.
    #[error("root: more than {0} rotations in one update")]
    TooManyRootRotations(u64),
    /// A downloaded target does not match its signed length or hashes.
    #[error("target {path}: {source}")]
    TargetMismatch {
        /// The target path.
        path: String,
        /// The mismatch.
        source: HashError,
    },
    /// The target has no hashes to name its consistent-snapshot file by.
    #[error("target {0}: no hashes")]
    TargetWithoutHashes(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> UpdateError + '_ {
    move |source| UpdateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the delegation search of a target found, or needs ([`Updater::search_target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSearch {
    /// A trusted role lists the target.
    Found(TargetLookup),
    /// No trusted role lists it (§5.6.7: the search ended without it).
    NotFound,
    /// The search cannot go on until this targets role is fetched and trusted.
    NeedsRole(RoleFetch),
}

/// A targets role that a delegation search needs: what to fetch, and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFetch {
    /// The role.
    pub role: String,
    /// The role delegating it on the search path (`root` for top-level targets).
    pub delegator: String,
    /// Its URL (versioned with consistent snapshots, §5.6.1).
    pub url: String,
    /// The most bytes to read: the length snapshot signs, or the configured maximum.
    pub max_length: u64,
}

/// Where and how the updater works.
#[derive(Debug, Clone)]
pub struct UpdaterConfig {
    /// Directory of trusted metadata; must hold `root.json` to start.
    pub metadata_dir: PathBuf,
    /// Base URL of repository metadata, ending in `/`.
    pub metadata_url: String,
    /// Base URL of target files, ending in `/`.
    pub targets_url: Option<String>,
    /// Size and count limits.
    pub limits: Limits,
}

impl UpdaterConfig {
    /// A configuration with default limits and no targets URL.
    pub fn new(metadata_dir: impl Into<PathBuf>, metadata_url: impl Into<String>) -> Self {
        Self {
            metadata_dir: metadata_dir.into(),
            metadata_url: with_slash(metadata_url.into()),
            targets_url: None,
            limits: Limits::default(),
        }
    }
}

fn with_slash(mut url: String) -> String {
    if !url.ends_with('/') {
        url.push('/');
    }
    url
}

/// A TUF client over one repository.
pub struct Updater<F: Fetcher> {
    config: UpdaterConfig,
    fetcher: F,
    store: MetadataDir,
    trusted: TrustedMetadataSet,
    refreshed: bool,
}

impl<F: Fetcher> Updater<F> {
    /// Starts from the trusted `root.json` in the metadata directory, judging expiry
    /// against `reference_time` (§5.1).
    pub fn new(
        config: UpdaterConfig,
        fetcher: F,
        reference_time: DateTime<Utc>,
    ) -> Result<Self, UpdateError> {
        let store = MetadataDir::new(&config.metadata_dir);
        let root_path = store.role_path("root");
        let root = store
            .load("root", config.limits.max_root_length)
            .map_err(io(&root_path))?
            .ok_or_else(|| UpdateError::NoTrustedRoot(config.metadata_dir.clone()))?;
        // §5.2: load the trusted root.
        let trusted = TrustedMetadataSet::new(&root, reference_time, &config.limits)?;
        Ok(Self {
            config,
            fetcher,
            store,
            trusted,
            refreshed: false,
        })
    }

    /// The trusted metadata.
    pub fn trusted(&self) -> &TrustedMetadataSet {
        &self.trusted
    }

    /// Updates root, timestamp, snapshot and top-level targets (§5.3 to §5.6).
    pub fn refresh(&mut self) -> Result<(), UpdateError> {
        self.load_root()?;
        self.load_timestamp()?;
        self.load_snapshot()?;
        self.load_targets("targets", "root")?;
        self.refreshed = true;
        Ok(())
    }

    fn metadata_url(&self, role: &str, version: Option<u64>) -> String {
        match version {
            Some(version) => format!(
                "{}{version}.{}.json",
                self.config.metadata_url,
                quote_role_name(role)
            ),
            None => format!("{}{}.json", self.config.metadata_url, quote_role_name(role)),
        }
    }

    fn persist(&self, role: &str, bytes: &[u8]) -> Result<(), UpdateError> {
        self.store
            .persist(role, bytes)
            .map_err(io(&self.store.role_path(role)))
    }

    /// §5.3: follow the root chain `N.root.json` until the next version is not found.
    fn load_root(&mut self) -> Result<(), UpdateError> {
        let limits = self.config.limits;
        let first = self.trusted.root().signed().version.saturating_add(1);
        for next in first..first.saturating_add(limits.max_root_rotations) {
            let url = self.metadata_url("root", Some(next));
            let bytes = match self.fetcher.fetch(&url, limits.max_root_length) {
                Ok(bytes) => bytes,
                // §5.3.2: the chain ends where the next version does not exist.
                Err(FetchError::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let previous = ["timestamp", "snapshot"].map(|role| role_keys(&self.trusted, role));
            self.trusted.update_root(&bytes, &limits)?;
            // §5.3.7: persist each trusted root.
            self.persist("root", &bytes)?;
            // §5.3.11: fast-forward attack recovery. If the timestamp or snapshot keys
            // changed, both stored files are dropped: either may carry a version (its own,
            // or the snapshot version timestamp names) fast-forwarded by a compromised key.
            let rotated = ["timestamp", "snapshot"]
                .into_iter()
                .zip(previous)
                .any(|(role, old)| old != role_keys(&self.trusted, role));
            if rotated {
                for role in ["timestamp", "snapshot"] {
                    self.store
                        .remove(role)
                        .map_err(io(&self.store.role_path(role)))?;
                }
            }
        }
        Err(UpdateError::TooManyRootRotations(limits.max_root_rotations))
    }

    /// §5.4: timestamp. A stored timestamp, if still verifiable, is the rollback baseline.
    fn load_timestamp(&mut self) -> Result<(), UpdateError> {
        let limits = self.config.limits;
        let path = self.store.role_path("timestamp");
        if let Some(local) = self
            .store
            .load("timestamp", limits.max_timestamp_length)
            .map_err(io(&path))?
        {
            // Failing to trust the local copy (expired, re-keyed, damaged) is not an error:
            // the remote one is checked next, against whatever could be trusted.
            let _ = self.trusted.update_timestamp(&local, &limits);
        }
        let url = self.metadata_url("timestamp", None);
        let bytes = self.fetcher.fetch(&url, limits.max_timestamp_length)?;
        match self.trusted.update_timestamp(&bytes, &limits) {
            Ok(_) => {}
            // §5.4.3.1: same version: keep the trusted one (already stored).
            Err(TrustError::EqualTimestampVersion(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        // §5.4.5: persist.
        self.persist("timestamp", &bytes)
    }

    /// §5.5: snapshot. A stored snapshot that is still the one timestamp names is reused.
    fn load_snapshot(&mut self) -> Result<(), UpdateError> {
        let limits = self.config.limits;
        let path = self.store.role_path("snapshot");
        if let Some(local) = self
            .store
            .load("snapshot", limits.max_snapshot_length)
            .map_err(io(&path))?
        {
            if self.trusted.update_snapshot(&local, true, &limits).is_ok() {
                return Ok(());
            }
        }
        let meta = self
            .trusted
            .timestamp()
            .and_then(|t| t.signed().snapshot_meta())
            .cloned()
            .ok_or(TrustError::Order("snapshot needs a trusted timestamp"))?;
        let max = meta.length.unwrap_or(limits.max_snapshot_length);
        // §5.5.1: consistent snapshots name the file by version.
        let version = self.consistent_snapshot().then_some(meta.version);
        let bytes = self
            .fetcher
            .fetch(&self.metadata_url("snapshot", version), max)?;
        self.trusted.update_snapshot(&bytes, false, &limits)?;
        // §5.5.7: persist.
        self.persist("snapshot", &bytes)
    }

    fn consistent_snapshot(&self) -> bool {
        self.trusted.root().signed().consistent_snapshot()
    }

    /// §5.6: a targets role, from the local copy when it is still the version snapshot
    /// names, else downloaded.
    fn load_targets(&mut self, role: &str, delegator: &str) -> Result<(), UpdateError> {
        if let Some(fetch) = self.load_targets_locally(role, delegator)? {
            let bytes = self.fetcher.fetch(&fetch.url, fetch.max_length)?;
            self.trust_fetched_targets(&fetch, &bytes)?;
        }
        Ok(())
    }

    /// §5.6 without the download: `None` when `role` is trusted through `delegator` now
    /// (already, or from the local copy of the version snapshot names); else what to
    /// fetch.
    fn load_targets_locally(
        &mut self,
        role: &str,
        delegator: &str,
    ) -> Result<Option<RoleFetch>, UpdateError> {
        // Already trusted: only the check against this delegator's keys remains (§5.6.3).
        if self.trusted.trusted_targets_via(role, delegator)?.is_some() {
            return Ok(None);
        }
        let limits = self.config.limits;
        let meta = self
            .trusted
            .snapshot()
            .and_then(|s| s.signed().role_meta(role))
            .cloned()
            .ok_or_else(|| TrustError::NotInSnapshot(role.to_owned()))?;
        let max = meta.length.unwrap_or(limits.max_targets_length);
        let path = self.store.role_path(role);
        if let Some(local) = self.store.load(role, max).map_err(io(&path))? {
            if self
                .trusted
                .update_delegated_targets(&local, role, delegator, &limits)
                .is_ok()
            {
                return Ok(None);
            }
        }
        let version = self.consistent_snapshot().then_some(meta.version);
        Ok(Some(RoleFetch {
            role: role.to_owned(),
            delegator: delegator.to_owned(),
            url: self.metadata_url(role, version),
            max_length: max,
        }))
    }

    /// Trusts the bytes fetched for `fetch` as that targets role (§5.6.2 to §5.6.5) and
    /// persists them (§5.6.6), for a caller that fetched what [`Self::search_target`]
    /// asked for. If the role became trusted meanwhile, the bytes are not needed and
    /// nothing changes.
    pub fn trust_fetched_targets(
        &mut self,
        fetch: &RoleFetch,
        bytes: &[u8],
    ) -> Result<(), UpdateError> {
        if self
            .trusted
            .trusted_targets_via(&fetch.role, &fetch.delegator)?
            .is_some()
        {
            return Ok(());
        }
        let limits = self.config.limits;
        self.trusted
            .update_delegated_targets(bytes, &fetch.role, &fetch.delegator, &limits)?;
        self.persist(&fetch.role, bytes)
    }

    /// Finds the signed entry of `target_path` (§5.6.7): a pre-order depth-first search
    /// of the delegation tree from top-level targets, loading only the roles whose
    /// delegation covers the path, skipping roles already visited (cycles), stopping at
    /// terminating delegations, and visiting at most `max_delegations` roles. Returns
    /// `None` when no trusted role lists the path.
    pub fn get_target_info(
        &mut self,
        target_path: &str,
    ) -> Result<Option<TargetFile>, UpdateError> {
        Ok(self.find_target(target_path)?.map(|found| found.info))
    }

    /// Like [`Self::get_target_info`], and also says which role listed the target and
    /// until when the answer holds: the earliest expiry of the roles on the delegation
    /// path from top-level targets to that role. A long-running client (a proxy) judges
    /// each answer against its own clock with it, since the reference time of §5.1 is
    /// fixed when the update began.
    pub fn find_target(&mut self, target_path: &str) -> Result<Option<TargetLookup>, UpdateError> {
        if !self.refreshed {
            self.refresh()?;
        }
        loop {
            match self.search_target(target_path)? {
                TargetSearch::Found(found) => return Ok(Some(found)),
                TargetSearch::NotFound => return Ok(None),
                TargetSearch::NeedsRole(fetch) => {
                    let bytes = self.fetcher.fetch(&fetch.url, fetch.max_length)?;
                    self.trust_fetched_targets(&fetch, &bytes)?;
                }
            }
        }
    }

    /// The delegation search of [`Self::find_target`] over what is trusted or stored
    /// locally, with no download: it stops at the first role on the path that must be
    /// fetched and says which ([`TargetSearch::NeedsRole`]). A caller that fetches
    /// elsewhere (asynchronously, or one role at a time for many concurrent lookups)
    /// passes the bytes to [`Self::trust_fetched_targets`] and searches again. Call
    /// [`Self::refresh`] first.
    pub fn search_target(&mut self, target_path: &str) -> Result<TargetSearch, UpdateError> {
        if !self.refreshed {
            return Err(TrustError::Order("search_target needs a refresh first").into());
        }
        loop {
            let walk = walk_delegations(
                &self.trusted,
                target_path,
                self.config.limits.max_delegations,
            );
            match walk {
                DelegationWalk::Found(found) => return Ok(TargetSearch::Found(found)),
                DelegationWalk::NotFound => return Ok(TargetSearch::NotFound),
                // Trusted now (already, or from the local copy): walk on from the top.
                DelegationWalk::Needs { role, delegator } => {
                    if let Some(fetch) = self.load_targets_locally(&role, &delegator)? {
                        return Ok(TargetSearch::NeedsRole(fetch));
                    }
                }
            }
        }
    }

    /// The file name a target is stored under in a local directory: the target path
    /// quoted into one safe path segment.
    pub fn local_target_name(target_path: &str) -> String {
        quote_role_name(target_path)
    }

    /// Returns the path of a previously downloaded copy of the target in `dir` if its
    /// length and hashes still match.
    pub fn find_cached_target(
        &self,
        info: &TargetFile,
        target_path: &str,
        dir: &Path,
    ) -> Option<PathBuf> {
        let path = dir.join(Self::local_target_name(target_path));
        let file = std::fs::File::open(&path).ok()?;
        let bytes = super::fetch::read_bounded(file, "", info.length).ok()?;
        verify_length_and_hashes(&bytes, Some(info.length), Some(&info.hashes))
            .ok()
            .map(|()| path)
    }

    /// Downloads a target (§5.7), bounded by its signed length and checked against its
    /// hashes before anything is written, then stores it atomically in `dir`.
    pub fn download_target(
        &mut self,
        info: &TargetFile,
        target_path: &str,
        dir: &Path,
        targets_url: Option<&str>,
    ) -> Result<PathBuf, UpdateError> {
        let base = targets_url
            .map(|u| with_slash(u.to_owned()))
            .or_else(|| self.config.targets_url.clone())
            .unwrap_or_default();
        let url = target_file_url(&base, target_path, &info.hashes, self.consistent_snapshot())
            .ok_or_else(|| UpdateError::TargetWithoutHashes(target_path.to_owned()))?;
        let bytes = self.fetcher.fetch(&url, info.length)?;
        verify_length_and_hashes(&bytes, Some(info.length), Some(&info.hashes)).map_err(
            |source| UpdateError::TargetMismatch {
                path: target_path.to_owned(),
                source,
            },
        )?;
        let path = dir.join(Self::local_target_name(target_path));
        write_atomic(&path, &bytes).map_err(io(&path))?;
        Ok(path)
    }
}

/// The URL of target file `target_path` under `base` (ending in `/`): with consistent
/// snapshots (§5.7.2) the file name is prefixed with its first digest (sha256 before
/// sha512, as the editor writes them); `None` when the target has no digest to name it by.
pub fn target_file_url(
    base: &str,
    target_path: &str,
    hashes: &crate::hash::Hashes,
    consistent_snapshot: bool,
) -> Option<String> {
    if !consistent_snapshot {
        return Some(format!("{base}{target_path}"));
    }
    let hash = hashes.values().next()?;
    Some(match target_path.rsplit_once('/') {
        Some((parent, name)) => format!("{base}{parent}/{hash}.{name}"),
        None => format!("{base}{hash}.{target_path}"),
    })
}

/// The keyids and threshold the trusted root gives a top-level role.
fn role_keys(trusted: &TrustedMetadataSet, role: &str) -> Option<RoleKeys> {
    trusted.root().signed().role(role).cloned()
}
