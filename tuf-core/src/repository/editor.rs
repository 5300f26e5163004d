//! Editing a repository: staging changes to roles, and collecting key holders'
//! signatures on them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use super::lock::RepositoryLock;
use super::published_store::{read_file, read_metadata, PublishedStore};
use super::{io_error, RepositoryError, Settings};
use crate::client::quote_role_name;
use crate::fs::{create_dir_all_readable, write_atomic};
use crate::keys::{Key, KeyId};
use crate::layout::{RoleKind, FALLBACK_BIN_PREFIX, FALLBACK_PATH_PATTERN, FALLBACK_ROLE};
use crate::metadata::{
    whole_seconds, DelegatedRole, Delegations, Metadata, Role, RoleKeys, Root, SuccinctRoles,
    Targets, UnrecognizedFields, TOP_LEVEL_ROLE_NAMES,
};
use crate::verify::{check_signatures, Authorization, Delegator};

pub(crate) const SETTINGS_FILE: &str = "repository.json";
pub(crate) const STAGED_DIR: &str = "staged";
pub(crate) const PUBLISHED_DIR: &str = "published";
/// Largest settings file read.
const MAX_SETTINGS_BYTES: u64 = 1024 * 1024;

/// How key and threshold edits name all the fallback hash bins at once.
pub const FALLBACK_BINS_ALIAS: &str = "unclaimed-*";

/// Which state of the delegating roles to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// Staged where staged, else published: the state after the next publish.
    AfterPublish,
    /// Only what is published.
    Published,
}

/// Who may sign a role: its keys by keyid, the authorised keyids and the threshold.
#[derive(Debug, Clone)]
pub struct RoleAuthorization {
    /// Keys by keyid (the delegator's key map).
    pub keys: BTreeMap<KeyId, Key>,
    /// Keyids authorised for the role.
    pub keyids: Vec<KeyId>,
    /// Distinct signatures needed.
    pub threshold: u64,
}

/// Keys and threshold for one role.
#[derive(Debug, Clone)]
pub struct RoleKeySpec {
    /// Public keys authorised for the role.
    pub keys: Vec<Key>,
    /// How many of them must sign.
    pub threshold: u64,
}

/// The keys of a new repository's roles.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Root keys (offline).
    pub root: RoleKeySpec,
    /// Top-level targets keys (offline).
    pub targets: RoleKeySpec,
    /// Snapshot keys (online).
    pub snapshot: RoleKeySpec,
    /// Timestamp keys (online).
    pub timestamp: RoleKeySpec,
    /// Keys of the fallback role and its hash bins (online).
    pub fallback: RoleKeySpec,
    /// Expiry periods and bin count.
    pub settings: Settings,
}

/// A repository working directory, locked for the lifetime of this value.
#[derive(Debug)]
pub struct Repository {
    pub(crate) dir: PathBuf,
    pub(crate) settings: Settings,
    _lock: RepositoryLock,
    pub(crate) published: PublishedStore,
    pub(crate) staged_root: Option<Metadata<Root>>,
    pub(crate) staged: BTreeMap<String, Metadata<Targets>>,
    pub(crate) dirty: BTreeSet<String>,
    dropped_signatures: BTreeSet<String>,
}

/// `now` plus `seconds`, in whole seconds; past the last date TUF's four-digit years can
/// write (9999-12-31T23:59:59Z), that date. Never panics, whatever the settings say.
pub(crate) fn expires_at(now: DateTime<Utc>, seconds: u64) -> DateTime<Utc> {
    let last = chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
        .and_then(|d| d.and_hms_opt(23, 59, 59))
        .map_or(DateTime::<Utc>::MAX_UTC, |d| d.and_utc());
    let later = i64::try_from(seconds)
        .ok()
        .and_then(Duration::try_seconds)
        .and_then(|period| now.checked_add_signed(period))
        .unwrap_or(last);
    whole_seconds(later.min(last))
}

pub(crate) fn key_map(keys: &[Key]) -> BTreeMap<KeyId, Key> {
    keys.iter().map(|k| (k.keyid(), k.clone())).collect()
}

pub(crate) fn check_threshold(role: &str, spec: &RoleKeySpec) -> Result<(), RepositoryError> {
    let distinct: BTreeSet<KeyId> = spec.keys.iter().map(Key::keyid).collect();
    if spec.threshold == 0 || spec.threshold > distinct.len() as u64 {
        return Err(RepositoryError::InvalidEdit {
            role: role.to_owned(),
            message: format!(
                "threshold {} needs between 1 and {} (the number of distinct keys)",
                spec.threshold,
                distinct.len()
            ),
        });
    }
    Ok(())
}

impl Repository {
    /// Creates a repository in `dir` (created if missing, and must not hold one already)
    /// and stages version 1 of root, targets, the fallback role and its hash bins. Nothing
    /// is published until the root and targets keys have signed and [`Self::publish`] runs.
    pub fn init(
        dir: &Path,
        options: &InitOptions,
        now: DateTime<Utc>,
    ) -> Result<Self, RepositoryError> {
        for (role, spec) in [
            ("root", &options.root),
            ("targets", &options.targets),
            ("snapshot", &options.snapshot),
            ("timestamp", &options.timestamp),
            (FALLBACK_ROLE, &options.fallback),
        ] {
            check_threshold(role, spec)?;
        }
        let bits = options.settings.fallback_bin_bits;
        if !(1..=16).contains(&bits) {
            return Err(RepositoryError::InvalidEdit {
                role: FALLBACK_ROLE.into(),
                message: format!("{bits} bin bits: use 1 to 16 (2 to 65,536 bins)"),
            });
        }
        options
            .settings
            .expiry
            .validate()
            .map_err(|message| RepositoryError::Settings {
                path: dir.join(SETTINGS_FILE),
                message,
            })?;
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let settings_path = dir.join(SETTINGS_FILE);
        if settings_path.exists() {
            return Err(RepositoryError::AlreadyExists(dir.to_owned()));
        }
        let lock = RepositoryLock::acquire(dir)?;
        let staged = dir.join(STAGED_DIR);
        std::fs::create_dir_all(&staged).map_err(io_error(&staged))?;
        // Served by a web server, which may run as another user.
        let published = dir.join(PUBLISHED_DIR);
        create_dir_all_readable(&published).map_err(io_error(&published))?;
        let settings = options.settings.clone();
        let mut root = Root::new(expires_at(now, settings.expiry.root));
        for (role, spec) in [
            ("root", &options.root),
            ("targets", &options.targets),
            ("snapshot", &options.snapshot),
            ("timestamp", &options.timestamp),
        ] {
            root.keys.extend(key_map(&spec.keys));
            let keyids: BTreeSet<KeyId> = spec.keys.iter().map(Key::keyid).collect();
            root.roles.insert(
                role.to_owned(),
                RoleKeys::new(keyids.into_iter().collect(), spec.threshold),
            );
        }
        let fallback_keyids: Vec<KeyId> = options
            .fallback
            .keys
            .iter()
            .map(Key::keyid)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut targets = Targets::new(expires_at(now, settings.expiry.targets));
        // Every crate of this repository gets a signed index file (spec/role-layout.md).
        targets.unrecognized_fields.insert(
            crate::layout::LAYOUT_FIELD.into(),
            serde_json::json!({ "signed_index_entries": true }),
        );
        targets.delegations = Some(Delegations {
            keys: key_map(&options.fallback.keys),
            roles: Some(vec![DelegatedRole {
                name: FALLBACK_ROLE.to_owned(),
                keyids: fallback_keyids.clone(),
                threshold: options.fallback.threshold,
                terminating: true,
                paths: Some(vec![FALLBACK_PATH_PATTERN.to_owned()]),
                path_hash_prefixes: None,
                unrecognized_fields: UnrecognizedFields::new(),
            }]),
            succinct_roles: None,
            unrecognized_fields: UnrecognizedFields::new(),
        });
        let bins = SuccinctRoles::new(
            fallback_keyids,
            options.fallback.threshold,
            bits,
            FALLBACK_BIN_PREFIX,
        );
        let mut fallback = Targets::new(expires_at(now, settings.expiry.fallback));
        fallback.delegations = Some(Delegations {
            keys: key_map(&options.fallback.keys),
            roles: None,
            succinct_roles: Some(bins.clone()),
            unrecognized_fields: UnrecognizedFields::new(),
        });
        let mut repo = Self {
            dir: dir.to_owned(),
            settings,
            _lock: lock,
            published: PublishedStore::load(&dir.join(PUBLISHED_DIR))?,
            staged_root: Some(Metadata::new(root)),
            staged: BTreeMap::new(),
            dirty: BTreeSet::new(),
            dropped_signatures: BTreeSet::new(),
        };
        repo.staged.insert("targets".into(), Metadata::new(targets));
        repo.staged
            .insert(FALLBACK_ROLE.into(), Metadata::new(fallback));
        let bin_expiry = expires_at(now, repo.settings.expiry.fallback);
        for name in bins.role_names() {
            repo.staged
                .insert(name, Metadata::new(Targets::new(bin_expiry)));
        }
        repo.dirty.insert("root".into());
        repo.dirty.extend(repo.staged.keys().cloned());
        let settings_bytes =
            serde_json::to_vec_pretty(&repo.settings).map_err(|e| RepositoryError::Settings {
                path: settings_path.clone(),
                message: e.to_string(),
            })?;
        repo.save()?;
        // The settings file marks the directory as a repository: written last.
        write_atomic(&settings_path, &settings_bytes).map_err(io_error(&settings_path))?;
        Ok(repo)
    }

    /// Opens the repository in `dir`, taking its lock.
    pub fn open(dir: &Path) -> Result<Self, RepositoryError> {
        let settings_path = dir.join(SETTINGS_FILE);
        if !settings_path.exists() {
            return Err(RepositoryError::NotARepository(dir.to_owned()));
        }
        let lock = RepositoryLock::acquire(dir)?;
        let bytes = read_file(&settings_path, MAX_SETTINGS_BYTES)?;
        let settings: Settings =
            serde_json::from_slice(&bytes).map_err(|e| RepositoryError::Settings {
                path: settings_path.clone(),
                message: e.to_string(),
            })?;
        if let Err(message) = settings.expiry.validate() {
            return Err(RepositoryError::Settings {
                path: settings_path,
                message,
            });
        }
        if settings.format != super::SETTINGS_FORMAT {
            return Err(RepositoryError::Settings {
                path: settings_path,
                message: format!(
                    "format {} is not supported by this tuf-signer (it writes format {})",
                    settings.format,
                    super::SETTINGS_FORMAT
                ),
            });
        }
        let published = PublishedStore::load(&dir.join(PUBLISHED_DIR))?;
        let mut repo = Self {
            dir: dir.to_owned(),
            settings,
            _lock: lock,
            published,
            staged_root: None,
            staged: BTreeMap::new(),
            dirty: BTreeSet::new(),
            dropped_signatures: BTreeSet::new(),
        };
        finish_interrupted_save(&repo.staged_dir())?;
        repo.load_staged()?;
        Ok(repo)
    }

    pub(crate) fn staged_dir(&self) -> PathBuf {
        self.dir.join(STAGED_DIR)
    }

    pub(crate) fn staged_path(&self, role: &str) -> PathBuf {
        self.staged_dir()
            .join(format!("{}.json", quote_role_name(role)))
    }

    fn load_staged(&mut self) -> Result<(), RepositoryError> {
        let dir = self.staged_dir();
        // `discard` removes and recreates the directory: an interruption between the
        // two leaves none, which means nothing is staged.
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let root_path = dir.join("root.json");
        if root_path.exists() {
            let root: Metadata<Root> = read_metadata(&root_path)?;
            let published = self
                .published
                .root
                .as_ref()
                .map_or(0, |r| r.signed().version);
            if root.signed().version > published {
                self.staged_root = Some(root);
            } else {
                // Left behind by a publish interrupted after it switched generations.
                std::fs::remove_file(&root_path).map_err(io_error(&root_path))?;
            }
        }
        for entry in std::fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            let path = entry.path();
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some(quoted) = file_name.strip_suffix(".json") else {
                continue;
            };
            if quoted == "root" || file_name.starts_with('.') {
                continue;
            }
            let metadata: Metadata<Targets> = read_metadata(&path)?;
            // Role names in this layout never need quoting, so the file name is the name.
            let role = quoted.to_owned();
            let published = self.published.targets_version(&role).unwrap_or(0);
            if metadata.signed().version > published {
                self.staged.insert(role, metadata);
            } else {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        Ok(())
    }

    /// Writes every staged document changed since the last save, all together or not
    /// at all: one changed document is written atomically in place; several are first
    /// written into a journal directory (`staged/.saving/`), which a commit file then
    /// makes the new state, and only then moved into place. An interrupted save is
    /// finished or undone when the repository is next opened ([`Self::open`]), so a crash
    /// at any point leaves the staged state before the save or after it: a release
    /// and the crate's signed index file that lists it, say, are staged in different
    /// roles, but never one without the other.
    pub fn save(&mut self) -> Result<(), RepositoryError> {
        let dirty = std::mem::take(&mut self.dirty);
        let mut changes: Vec<(String, Option<Vec<u8>>)> = Vec::with_capacity(dirty.len());
        for role in &dirty {
            let path = self.staged_path(role);
            let bytes = if role == "root" {
                match &self.staged_root {
                    Some(root) => Some(pretty(root, &path)?),
                    None => None,
                }
            } else {
                match self.staged.get(role.as_str()) {
                    Some(doc) => Some(pretty(doc, &path)?),
                    None => None,
                }
            };
            let file_name = format!("{}.json", quote_role_name(role));
            changes.push((file_name, bytes));
        }
        let staged = self.staged_dir();
        match changes.as_slice() {
            [] => Ok(()),
            [(file_name, bytes)] => {
                let path = staged.join(file_name);
                match bytes {
                    Some(bytes) => write_atomic(&path, bytes).map_err(io_error(&path)),
                    None => remove_if_exists(&path),
                }
            }
            _ => save_journaled(&staged, &changes),
        }
    }

    /// The repository directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `published/`: what to serve to clients (`metadata/` and `targets/` below it).
    pub fn published_dir(&self) -> PathBuf {
        self.dir.join(PUBLISHED_DIR)
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Roles whose signatures were dropped by edits since this value was opened.
    pub fn dropped_signatures(&self) -> impl Iterator<Item = &String> {
        self.dropped_signatures.iter()
    }

    /// The names of the roles with pending changes, root first.
    pub fn staged_roles(&self) -> Vec<String> {
        self.staged_root
            .iter()
            .map(|_| "root".to_owned())
            .chain(self.staged.keys().cloned())
            .collect()
    }

    /// The root clients will trust after the next publish: staged, else published.
    pub fn current_root(&self) -> Option<&Metadata<Root>> {
        self.staged_root.as_ref().or(self.published.root.as_ref())
    }

    /// The published root.
    pub fn published_root(&self) -> Option<&Metadata<Root>> {
        self.published.root.as_ref()
    }

    /// The staged metadata of a targets role, if it has pending changes.
    pub fn staged_targets(&self, role: &str) -> Option<&Metadata<Targets>> {
        self.staged.get(role)
    }

    /// A targets role as it will be after the next publish: staged, else published.
    pub fn current_targets(
        &mut self,
        role: &str,
    ) -> Result<Option<&Metadata<Targets>>, RepositoryError> {
        if self.staged.contains_key(role) {
            return Ok(self.staged.get(role));
        }
        self.published.targets(role)
    }

    fn stage_root(&mut self, now: DateTime<Utc>) -> Result<&mut Root, RepositoryError> {
        if self.staged_root.is_none() {
            let published = self
                .published
                .root
                .clone()
                .ok_or_else(|| RepositoryError::UnknownRole("root".into()))?;
            let mut root = published;
            root.signatures.clear();
            let version = root.signed().version.saturating_add(1);
            let signed = root.signed_mut();
            signed.version = version;
            signed.expires = expires_at(now, self.settings.expiry.root);
            self.staged_root = Some(root);
        }
        self.dirty.insert("root".into());
        let root = self
            .staged_root
            .as_mut()
            .ok_or_else(|| RepositoryError::UnknownRole("root".into()))?;
        if !root.signatures.is_empty() {
            root.signatures.clear();
            self.dropped_signatures.insert("root".into());
        }
        Ok(root.signed_mut())
    }

    pub(crate) fn expiry_for(&self, role: &str) -> u64 {
        let expiry = &self.settings.expiry;
        match RoleKind::of(role) {
            RoleKind::Root => expiry.root,
            RoleKind::Targets => expiry.targets,
            RoleKind::Snapshot => expiry.snapshot,
            RoleKind::Timestamp => expiry.timestamp,
            RoleKind::Namespace | RoleKind::Other => expiry.namespace,
            RoleKind::Fallback | RoleKind::FallbackBin => expiry.fallback,
        }
    }

    /// Stages a targets role for editing (a copy of the published one, next version,
    /// fresh expiry) and returns it. Its signatures are dropped: the content is changing.
    pub(crate) fn stage_targets(
        &mut self,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<&mut Targets, RepositoryError> {
        if !self.staged.contains_key(role) {
            let expires = expires_at(now, self.expiry_for(role));
            let doc = match self.published.targets(role)? {
                Some(published) => {
                    let mut doc = published.clone();
                    doc.signatures.clear();
                    let version = doc.signed().version.saturating_add(1);
                    let signed = doc.signed_mut();
                    signed.version = version;
                    signed.expires = expires;
                    doc
                }
                None => Metadata::new(Targets::new(expires)),
            };
            self.staged.insert(role.to_owned(), doc);
        }
        self.dirty.insert(role.to_owned());
        let doc = self
            .staged
            .get_mut(role)
            .ok_or_else(|| RepositoryError::UnknownRole(role.to_owned()))?;
        if !doc.signatures.is_empty() {
            doc.signatures.clear();
            self.dropped_signatures.insert(role.to_owned());
        }
        Ok(doc.signed_mut())
    }

    /// The role that delegates `role`: `root` for top-level roles, else the targets
    /// role whose delegations name it.
    pub fn delegator_of(&mut self, role: &str) -> Result<String, RepositoryError> {
        self.delegator_in(role, View::AfterPublish)
    }

    fn view_targets(
        &mut self,
        role: &str,
        view: View,
    ) -> Result<Option<&Metadata<Targets>>, RepositoryError> {
        match view {
            View::AfterPublish => self.current_targets(role),
            View::Published => self.published.targets(role),
        }
    }

    pub(crate) fn delegator_in(
        &mut self,
        role: &str,
        view: View,
    ) -> Result<String, RepositoryError> {
        if TOP_LEVEL_ROLE_NAMES.contains(&role) {
            return Ok("root".into());
        }
        for candidate in ["targets", FALLBACK_ROLE] {
            if let Some(doc) = self.view_targets(candidate, view)? {
                if doc
                    .signed()
                    .delegations
                    .as_ref()
                    .is_some_and(|d| d.contains_role(role))
                {
                    return Ok(candidate.to_owned());
                }
            }
        }
        Err(RepositoryError::UnknownRole(role.to_owned()))
    }

    /// The keys and threshold that authorise `role` after the next publish.
    pub fn authorization_of(&mut self, role: &str) -> Result<RoleAuthorization, RepositoryError> {
        self.authorization_in(role, View::AfterPublish)
    }

    /// The keys and threshold that authorise `role` in `view`.
    pub(crate) fn authorization_in(
        &mut self,
        role: &str,
        view: View,
    ) -> Result<RoleAuthorization, RepositoryError> {
        let bin;
        let role = if role == FALLBACK_BINS_ALIAS {
            bin = self.bins()?.bin_name(0);
            bin.as_str()
        } else {
            role
        };
        let delegator = self.delegator_in(role, view)?;
        let unknown = || RepositoryError::UnknownRole(role.to_owned());
        let owned = |a: Authorization<'_>| RoleAuthorization {
            keys: a.keys.clone(),
            keyids: a.keyids.to_vec(),
            threshold: a.threshold,
        };
        if delegator == "root" {
            let root = match view {
                View::AfterPublish => self.current_root(),
                View::Published => self.published.root.as_ref(),
            };
            return root
                .ok_or_else(unknown)?
                .signed()
                .authorization(role)
                .map(owned)
                .ok_or_else(unknown);
        }
        let doc = self.view_targets(&delegator, view)?.ok_or_else(unknown)?;
        doc.signed()
            .authorization(role)
            .map(owned)
            .ok_or_else(unknown)
    }

    /// After a key or threshold edit of `role`: if its published signatures no longer
    /// meet the new authorisation, stage it, so its key holders (or publish, for online
    /// roles) sign it anew. `unclaimed-*` and any bin name mean every bin.
    fn restage_if_unverified(
        &mut self,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let roles: Vec<String> =
            if role == FALLBACK_BINS_ALIAS || RoleKind::of(role) == RoleKind::FallbackBin {
                self.bins()?.role_names().collect()
            } else {
                vec![role.to_owned()]
            };
        for role in roles {
            if matches!(
                RoleKind::of(&role),
                RoleKind::Root | RoleKind::Snapshot | RoleKind::Timestamp
            ) || self.staged.contains_key(&role)
            {
                continue;
            }
            let authorization = self.authorization_of(&role)?;
            let path = self.published.metadata_dir.join(&role);
            let Some(doc) = self.published.targets(&role)? else {
                continue;
            };
            let bytes = doc
                .signed_bytes()
                .map_err(|source| RepositoryError::Metadata { path, source })?;
            let report = check_signatures(
                &Authorization {
                    keys: &authorization.keys,
                    keyids: &authorization.keyids,
                    threshold: authorization.threshold,
                },
                &doc.signatures,
                bytes,
            );
            if !report.threshold_met() {
                tracing::info!(role = %role, "staged: its signatures no longer meet its keys");
                self.stage_targets(&role, now)?;
            }
        }
        Ok(())
    }

    // ----- keys and thresholds -------------------------------------------------------

    /// Authorises `key` for `role`: a top-level role (a root change), a namespace role
    /// or the fallback role (a targets change), or the fallback bins (`unclaimed-*`, a
    /// change of the fallback role's succinct delegation).
    pub fn add_key(
        &mut self,
        role: &str,
        key: &Key,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        key.verifying_key()
            .map_err(|e| RepositoryError::InvalidEdit {
                role: role.to_owned(),
                message: format!("unusable key: {e}"),
            })?;
        let keyid = key.keyid();
        self.edit_role_keys(role, now, |keys, keyids, _threshold| {
            keys.insert(keyid.clone(), key.clone());
            if !keyids.contains(&keyid) {
                keyids.push(keyid.clone());
            }
            Ok(())
        })?;
        self.restage_if_unverified(role, now)
    }

    /// Removes `keyid` from `role`. Refused if fewer keys than the threshold would remain.
    pub fn remove_key(
        &mut self,
        role: &str,
        keyid: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let role_name = role.to_owned();
        self.edit_role_keys(role, now, |_keys, keyids, threshold| {
            let before = keyids.len();
            keyids.retain(|k| k != keyid);
            if keyids.len() == before {
                return Err(RepositoryError::InvalidEdit {
                    role: role_name.clone(),
                    message: format!("key {keyid} is not one of its keys"),
                });
            }
            if (keyids.len() as u64) < *threshold {
                return Err(RepositoryError::InvalidEdit {
                    role: role_name.clone(),
                    message: format!(
                        "removing key {keyid} would leave {} keys, below the threshold {threshold}; lower the threshold first",
                        keyids.len()
                    ),
                });
            }
            Ok(())
        })?;
        self.restage_if_unverified(role, now)
    }

    /// Sets the threshold of `role`.
    pub fn set_threshold(
        &mut self,
        role: &str,
        threshold: u64,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let role_name = role.to_owned();
        self.edit_role_keys(role, now, |_keys, keyids, current| {
            if threshold == 0 || threshold > keyids.len() as u64 {
                return Err(RepositoryError::InvalidEdit {
                    role: role_name.clone(),
                    message: format!(
                        "threshold {threshold} needs between 1 and {} (its number of keys)",
                        keyids.len()
                    ),
                });
            }
            *current = threshold;
            Ok(())
        })?;
        self.restage_if_unverified(role, now)
    }

    /// Replaces the root keys and threshold in one step: a root rotation. The new root
    /// must be signed by a threshold of the old root keys and of the new ones.
    pub fn rotate_root(
        &mut self,
        spec: &RoleKeySpec,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        check_threshold("root", spec)?;
        let root = self.stage_root(now)?;
        let keyids: BTreeSet<KeyId> = spec.keys.iter().map(Key::keyid).collect();
        root.keys.extend(key_map(&spec.keys));
        root.roles.insert(
            "root".into(),
            RoleKeys::new(keyids.into_iter().collect(), spec.threshold),
        );
        prune_root_keys(root);
        Ok(())
    }

    fn key_site(&mut self, role: &str) -> Result<KeySite, RepositoryError> {
        if TOP_LEVEL_ROLE_NAMES.contains(&role) {
            return Ok(KeySite::Root);
        }
        if role == FALLBACK_BINS_ALIAS || RoleKind::of(role) == RoleKind::FallbackBin {
            return Ok(KeySite::Bins);
        }
        Ok(KeySite::Delegation(self.delegator_of(role)?))
    }

    /// [`Self::edit_role_keys`] for a role delegated by `delegator`: one of its named
    /// delegations, or (`bins`) its succinct hash bins.
    fn edit_delegation_keys(
        &mut self,
        delegator: &str,
        role: &str,
        bins: bool,
        now: DateTime<Utc>,
        edit: impl KeyEdit,
    ) -> Result<(), RepositoryError> {
        let unknown = || RepositoryError::UnknownRole(role.to_owned());
        let mut delegations = self
            .current_targets(delegator)?
            .and_then(|doc| doc.signed().delegations.clone())
            .ok_or_else(unknown)?;
        let (mut keyids, mut threshold) = if bins {
            let bins = delegations.succinct_roles.as_ref().ok_or_else(unknown)?;
            (bins.keyids.clone(), bins.threshold)
        } else {
            let entry = delegations
                .roles
                .iter()
                .flatten()
                .find(|r| r.name == role)
                .ok_or_else(unknown)?;
            (entry.keyids.clone(), entry.threshold)
        };
        edit(&mut delegations.keys, &mut keyids, &mut threshold)?;
        if bins {
            if let Some(bins) = delegations.succinct_roles.as_mut() {
                bins.keyids = keyids;
                bins.threshold = threshold;
            }
        } else if let Some(entry) = delegations
            .roles
            .iter_mut()
            .flatten()
            .find(|r| r.name == role)
        {
            entry.keyids = keyids;
            entry.threshold = threshold;
        }
        prune_delegation_keys(&mut delegations);
        self.stage_targets(delegator, now)?.delegations = Some(delegations);
        Ok(())
    }

    /// Applies `edit` to the key map, keyid list and threshold of `role` where they are
    /// defined, staging that document. `unclaimed-*` (or any bin's name) names the
    /// fallback bins.
    fn edit_role_keys(
        &mut self,
        role: &str,
        now: DateTime<Utc>,
        edit: impl KeyEdit,
    ) -> Result<(), RepositoryError> {
        match self.key_site(role)? {
            KeySite::Root => {
                // Validate on a copy first, so a refused edit stages nothing.
                let mut root = self
                    .current_root()
                    .ok_or_else(|| RepositoryError::UnknownRole("root".into()))?
                    .signed()
                    .clone();
                let entry = root
                    .roles
                    .get(role)
                    .cloned()
                    .ok_or_else(|| RepositoryError::UnknownRole(role.to_owned()))?;
                let (mut keyids, mut threshold) = (entry.keyids, entry.threshold);
                edit(&mut root.keys, &mut keyids, &mut threshold)?;
                let staged = self.stage_root(now)?;
                staged.keys = root.keys;
                if let Some(entry) = staged.roles.get_mut(role) {
                    entry.keyids = keyids;
                    entry.threshold = threshold;
                }
                prune_root_keys(staged);
            }
            KeySite::Delegation(delegator) => {
                self.edit_delegation_keys(&delegator, role, false, now, edit)?;
            }
            KeySite::Bins => self.edit_delegation_keys(FALLBACK_ROLE, role, true, now, edit)?,
        }
        Ok(())
    }
}

/// An edit of one role's keys: the key map it draws on, its keyids and its threshold.
trait KeyEdit:
    FnOnce(&mut BTreeMap<KeyId, Key>, &mut Vec<KeyId>, &mut u64) -> Result<(), RepositoryError>
{
}

impl<F> KeyEdit for F where
    F: FnOnce(&mut BTreeMap<KeyId, Key>, &mut Vec<KeyId>, &mut u64) -> Result<(), RepositoryError>
{
}

enum KeySite {
    Root,
    Delegation(String),
    Bins,
}

/// The journal of a save of several staged documents, inside `staged/`.
const SAVE_JOURNAL_DIR: &str = ".saving";
/// The journal's commit file: present once every new document is in the journal, and
/// lists what the save does (`write FILE` or `remove FILE`, one per line).
const SAVE_COMMIT_FILE: &str = "COMMIT";
/// Largest commit file read back.
const MAX_SAVE_COMMIT_BYTES: u64 = 16 * 1024 * 1024;

/// Saves several staged documents as one change: each new document is written into the
/// journal, then the commit file (the point after which the save counts as done), then
/// each is moved into place, and the journal is removed.
fn save_journaled(
    staged: &Path,
    changes: &[(String, Option<Vec<u8>>)],
) -> Result<(), RepositoryError> {
    let journal = staged.join(SAVE_JOURNAL_DIR);
    if journal.exists() {
        std::fs::remove_dir_all(&journal).map_err(io_error(&journal))?;
    }
    std::fs::create_dir(&journal).map_err(io_error(&journal))?;
    let mut commit = String::new();
    for (file_name, bytes) in changes {
        match bytes {
            Some(bytes) => {
                // Straight into the journal, which nothing reads before its commit file
                // exists: each file's data synced, its directory once for all.
                let path = journal.join(file_name);
                write_synced(&path, bytes).map_err(io_error(&path))?;
                commit.push_str("write ");
            }
            None => commit.push_str("remove "),
        }
        commit.push_str(file_name);
        commit.push('\n');
    }
    sync_dir(&journal)?;
    let commit_path = journal.join(SAVE_COMMIT_FILE);
    write_atomic(&commit_path, commit.as_bytes()).map_err(io_error(&commit_path))?;
    finish_interrupted_save(staged)
}

/// Completes a journaled save that was committed (its commit file is there), or undoes
/// one that was not (the journal is removed). Moving a document that was already moved
/// is skipped, so finishing twice is the same as once.
fn finish_interrupted_save(staged: &Path) -> Result<(), RepositoryError> {
    let journal = staged.join(SAVE_JOURNAL_DIR);
    if !journal.exists() {
        return Ok(());
    }
    let commit_path = journal.join(SAVE_COMMIT_FILE);
    if commit_path.exists() {
        let commit = read_file(&commit_path, MAX_SAVE_COMMIT_BYTES)?;
        let commit = String::from_utf8(commit).map_err(|_| RepositoryError::SaveJournal {
            path: commit_path.clone(),
            line: String::new(),
        })?;
        for line in commit.lines() {
            let step = line
                .split_once(' ')
                .filter(|(_, file)| is_plain_json_file_name(file));
            match step {
                Some(("write", file)) => {
                    let from = journal.join(file);
                    if from.exists() {
                        let to = staged.join(file);
                        std::fs::rename(&from, &to).map_err(io_error(&from))?;
                    }
                }
                Some(("remove", file)) => remove_if_exists(&staged.join(file))?,
                _ => {
                    return Err(RepositoryError::SaveJournal {
                        path: commit_path,
                        line: line.to_owned(),
                    })
                }
            }
        }
        sync_dir(staged)?;
    }
    std::fs::remove_dir_all(&journal).map_err(io_error(&journal))?;
    sync_dir(staged)
}

/// A file name of a staged document: `NAME.json`, with no path separator and not hidden.
fn is_plain_json_file_name(name: &str) -> bool {
    name.ends_with(".json") && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

/// Writes a new file owner-only (0600, like [`write_atomic`]) and syncs its data.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_data()
}

fn sync_dir(dir: &Path) -> Result<(), RepositoryError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

fn pretty<T: Role>(doc: &Metadata<T>, path: &Path) -> Result<Vec<u8>, RepositoryError> {
    doc.to_pretty_bytes()
        .map_err(|source| RepositoryError::Metadata {
            path: path.to_owned(),
            source,
        })
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<(), RepositoryError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RepositoryError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Drops root keys no top-level role uses any more.
pub(crate) fn prune_root_keys(root: &mut Root) {
    let used: BTreeSet<&KeyId> = root.roles.values().flat_map(|r| r.keyids.iter()).collect();
    root.keys.retain(|keyid, _| used.contains(keyid));
}

/// Drops delegation keys no delegated role (or bin) uses any more.
pub(crate) fn prune_delegation_keys(delegations: &mut Delegations) {
    let mut used: BTreeSet<KeyId> = BTreeSet::new();
    for role in delegations.roles.iter().flatten() {
        used.extend(role.keyids.iter().cloned());
    }
    if let Some(bins) = &delegations.succinct_roles {
        used.extend(bins.keyids.iter().cloned());
    }
    delegations.keys.retain(|keyid, _| used.contains(keyid));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn expiry_dates_saturate_at_the_last_four_digit_year() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap();
        assert_eq!(
            expires_at(now, 90),
            Utc.with_ymd_and_hms(2026, 12, 1, 10, 1, 30).unwrap()
        );
        let last = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap();
        for seconds in [u64::MAX, i64::MAX as u64, 10_000 * 365 * 24 * 3600] {
            assert_eq!(expires_at(now, seconds), last, "{seconds}");
        }
        assert_eq!(
            crate::metadata::format_expires(&expires_at(now, u64::MAX)),
            "9999-12-31T23:59:59Z"
        );
    }
}
