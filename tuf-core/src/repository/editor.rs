//! Editing a repository: staging changes to roles, and collecting key holders'
//! signatures on them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::layout::{
    self, crate_target_path, namespace_path_pattern, namespace_role_name, FALLBACK_BIN_PREFIX,
    FALLBACK_PATH_PATTERN, FALLBACK_ROLE,
};
use super::published::{read_metadata, Published};
use super::{io_error, RepositoryError, Settings};
use crate::client::{quote_role_name, write_atomic};
use crate::keys::{Key, KeyId};
use crate::metadata::{
    format_expires, whole_seconds, DelegatedRole, Delegations, Metadata, Role, RoleKeys, Root,
    Signature, SuccinctRoles, TargetFile, Targets, UnrecognizedFields, TOP_LEVEL_ROLE_NAMES,
};
use crate::signer::Signer;
use crate::verify::{check_signatures, Authorization, Delegator, SignatureReport};

pub(crate) const SETTINGS_FILE: &str = "repository.json";
pub(crate) const STAGED_DIR: &str = "staged";
pub(crate) const PUBLISHED_DIR: &str = "published";
const LOCK_FILE: &str = ".lock";
/// How long to wait for another process to release the repository lock.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How key and threshold edits name all the fallback hash bins at once.
pub const FALLBACK_BINS_ALIAS: &str = "unclaimed-*";

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

/// The kind of a role in the layout, which decides its expiry and who signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleKind {
    Root,
    Targets,
    Snapshot,
    Timestamp,
    Namespace,
    Fallback,
    FallbackBin,
    Other,
}

pub(crate) fn role_kind(role: &str) -> RoleKind {
    match role {
        "root" => RoleKind::Root,
        "targets" => RoleKind::Targets,
        "snapshot" => RoleKind::Snapshot,
        "timestamp" => RoleKind::Timestamp,
        FALLBACK_ROLE => RoleKind::Fallback,
        _ if layout::is_namespace_role(role) => RoleKind::Namespace,
        _ if role
            .strip_prefix(FALLBACK_BIN_PREFIX)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())) =>
        {
            RoleKind::FallbackBin
        }
        _ => RoleKind::Other,
    }
}

impl RoleKind {
    /// Whether publish signs this role with the online keys.
    pub(crate) fn is_online(self) -> bool {
        matches!(
            self,
            Self::Snapshot | Self::Timestamp | Self::Fallback | Self::FallbackBin
        )
    }
}

/// One difference between the published and the staged version of a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A field that was not there.
    Added {
        /// JSON path of the field.
        path: String,
        /// Its value (compact JSON).
        value: String,
    },
    /// A field that is gone.
    Removed {
        /// JSON path of the field.
        path: String,
        /// Its old value (compact JSON).
        value: String,
    },
    /// A field whose value changed.
    Changed {
        /// JSON path of the field.
        path: String,
        /// Old value (compact JSON).
        old: String,
        /// New value (compact JSON).
        new: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Added { path, value } => write!(f, "+ {path}: {value}"),
            Self::Removed { path, value } => write!(f, "- {path}: {value}"),
            Self::Changed { path, old, new } => write!(f, "~ {path}: {old} -> {new}"),
        }
    }
}

/// A signature made on one machine for staged metadata on another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetachedSignature {
    /// The role signed.
    pub role: String,
    /// Its staged version.
    pub version: u64,
    /// sha256 of the canonical bytes signed, to refuse a signature over other content.
    pub signed_sha256: String,
    /// The signature.
    pub signature: Signature,
}

/// How a role's signatures stand after a signature was added.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureOutcome {
    /// The role.
    pub role: String,
    /// The key that signed.
    pub keyid: KeyId,
    /// Against the keys that authorise the staged role.
    pub report: SignatureReport,
    /// For a new root: against the previous root's root keys, which must also sign it.
    pub previous_root: Option<SignatureReport>,
}

/// What a namespace delegation did.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceEdit {
    /// The namespace (canonical form).
    pub namespace: String,
    /// Its role.
    pub role: String,
    /// Releases moved between the fallback bins and the namespace role.
    pub releases_moved: Vec<String>,
}

/// A release added to staged metadata.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseAdded {
    /// Its target path.
    pub path: String,
    /// The role that lists it.
    pub role: String,
    /// Whether it was already listed with the same content (nothing changed).
    pub unchanged: bool,
}

/// One role in [`Status`].
#[derive(Debug, Clone, Serialize)]
pub struct RoleStatus {
    /// Role name.
    pub role: String,
    /// Whether publish signs the role with online keys.
    pub online: bool,
    /// Published version.
    pub published_version: Option<u64>,
    /// Published expiry.
    pub published_expires: Option<String>,
    /// Whether the published version expires within the window asked about.
    pub expires_soon: bool,
    /// Staged version, if the role has pending changes.
    pub staged_version: Option<u64>,
    /// Staged expiry.
    pub staged_expires: Option<String>,
    /// For staged roles: the signatures against the authorising keys.
    pub signatures: Option<SignatureReport>,
    /// For a staged root: the signatures against the previous root's keys.
    pub previous_root_signatures: Option<SignatureReport>,
    /// Whether the staged role has all the signatures publish needs (online roles are
    /// signed by publish itself).
    pub ready: bool,
}

/// The state of every role.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When the status was taken.
    pub now: String,
    /// The window for `expires_soon`, in seconds.
    pub within_seconds: u64,
    /// Roles, top-level first.
    pub roles: Vec<RoleStatus>,
}

/// A repository working directory, locked for the lifetime of this value.
#[derive(Debug)]
pub struct Repository {
    pub(crate) dir: PathBuf,
    pub(crate) settings: Settings,
    _lock: File,
    pub(crate) published: Published,
    pub(crate) staged_root: Option<Metadata<Root>>,
    pub(crate) staged: BTreeMap<String, Metadata<Targets>>,
    dirty: BTreeSet<String>,
    dropped_signatures: BTreeSet<String>,
}

fn expires_at(now: DateTime<Utc>, seconds: u64) -> DateTime<Utc> {
    let seconds = i64::try_from(seconds).unwrap_or(i64::MAX);
    whole_seconds(now + Duration::try_seconds(seconds).unwrap_or(Duration::MAX))
}

fn key_map(keys: &[Key]) -> BTreeMap<KeyId, Key> {
    keys.iter().map(|k| (k.keyid(), k.clone())).collect()
}

fn check_threshold(role: &str, spec: &RoleKeySpec) -> Result<(), RepositoryError> {
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

fn lock(dir: &Path) -> Result<File, RepositoryError> {
    let path = dir.join(LOCK_FILE);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error(&path))?;
    // Another process may be signing or publishing: wait for it, but not forever (a
    // cron job must not hang behind a forgotten interactive session).
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                tracing::info!(dir = %dir.display(), "waiting for another tuf-signer process");
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(RepositoryError::Locked(dir.to_owned()))
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(RepositoryError::Io { path, source })
            }
        }
    }
}

fn json_text(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        let short: String = text.chars().take(117).collect();
        format!("{short}...")
    } else {
        text
    }
}

fn diff_values(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<Change>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, old_value) in a {
                let child = format!("{path}.{key}");
                match b.get(key) {
                    Some(new_value) => diff_values(&child, old_value, new_value, out),
                    None => out.push(Change::Removed {
                        path: child,
                        value: json_text(old_value),
                    }),
                }
            }
            for (key, new_value) in b {
                if !a.contains_key(key) {
                    out.push(Change::Added {
                        path: format!("{path}.{key}"),
                        value: json_text(new_value),
                    });
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ if old != new => out.push(Change::Changed {
            path: path.to_owned(),
            old: json_text(old),
            new: json_text(new),
        }),
        _ => {}
    }
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
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let settings_path = dir.join(SETTINGS_FILE);
        if settings_path.exists() {
            return Err(RepositoryError::AlreadyExists(dir.to_owned()));
        }
        let lock = lock(dir)?;
        for sub in [STAGED_DIR, PUBLISHED_DIR] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
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
            published: Published::load(&dir.join(PUBLISHED_DIR))?,
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
        let lock = lock(dir)?;
        let bytes = std::fs::read(&settings_path).map_err(io_error(&settings_path))?;
        let settings: Settings =
            serde_json::from_slice(&bytes).map_err(|e| RepositoryError::Settings {
                path: settings_path.clone(),
                message: e.to_string(),
            })?;
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
        let published = Published::load(&dir.join(PUBLISHED_DIR))?;
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
        repo.load_staged()?;
        Ok(repo)
    }

    fn staged_dir(&self) -> PathBuf {
        self.dir.join(STAGED_DIR)
    }

    fn staged_path(&self, role: &str) -> PathBuf {
        self.staged_dir()
            .join(format!("{}.json", quote_role_name(role)))
    }

    fn load_staged(&mut self) -> Result<(), RepositoryError> {
        let dir = self.staged_dir();
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

    /// Writes every staged document changed since the last save. Roles that gain
    /// content are written before the roles that delegate to them, so an interruption
    /// leaves staged metadata that at worst lists a release twice, never loses one.
    pub fn save(&mut self) -> Result<(), RepositoryError> {
        let dirty = std::mem::take(&mut self.dirty);
        let rank = |role: &str| match role_kind(role) {
            RoleKind::Root => 3,
            RoleKind::Targets => 2,
            RoleKind::Fallback => 1,
            _ => 0,
        };
        let mut order: Vec<&String> = dirty.iter().collect();
        order.sort_by_key(|role| rank(role));
        for role in order {
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
            match bytes {
                Some(bytes) => write_atomic(&path, &bytes).map_err(io_error(&path))?,
                None => remove_if_exists(&path)?,
            }
        }
        Ok(())
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

    fn expiry_for(&self, role: &str) -> u64 {
        let expiry = &self.settings.expiry;
        match role_kind(role) {
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
        if TOP_LEVEL_ROLE_NAMES.contains(&role) {
            return Ok("root".into());
        }
        for candidate in ["targets", FALLBACK_ROLE] {
            if let Some(doc) = self.current_targets(candidate)? {
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
    pub fn authorization_of(
        &mut self,
        role: &str,
    ) -> Result<(BTreeMap<KeyId, Key>, Vec<KeyId>, u64), RepositoryError> {
        let bin;
        let role = if role == FALLBACK_BINS_ALIAS {
            bin = self.bins()?.bin_name(0);
            bin.as_str()
        } else {
            role
        };
        let delegator = self.delegator_of(role)?;
        let unknown = || RepositoryError::UnknownRole(role.to_owned());
        let owned = |a: Authorization<'_>| (a.keys.clone(), a.keyids.to_vec(), a.threshold);
        if delegator == "root" {
            let root = self.current_root().ok_or_else(unknown)?;
            return root
                .signed()
                .authorization(role)
                .map(owned)
                .ok_or_else(unknown);
        }
        let doc = self.current_targets(&delegator)?.ok_or_else(unknown)?;
        doc.signed()
            .authorization(role)
            .map(owned)
            .ok_or_else(unknown)
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
        })
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
            if (keyids.len() as u64) < threshold {
                return Err(RepositoryError::InvalidEdit {
                    role: role_name.clone(),
                    message: format!(
                        "removing key {keyid} would leave {} keys, below the threshold {threshold}; lower the threshold first",
                        keyids.len()
                    ),
                });
            }
            Ok(())
        })
    }

    /// Sets the threshold of `role`.
    pub fn set_threshold(
        &mut self,
        role: &str,
        threshold: u64,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        let (_, keyids, _) = self.authorization_of(role)?;
        if threshold == 0 || threshold > keyids.len() as u64 {
            return Err(RepositoryError::InvalidEdit {
                role: role.to_owned(),
                message: format!(
                    "threshold {threshold} needs between 1 and {} (its number of keys)",
                    keyids.len()
                ),
            });
        }
        self.apply_threshold(role, threshold, now)
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

    fn apply_threshold(
        &mut self,
        role: &str,
        threshold: u64,
        now: DateTime<Utc>,
    ) -> Result<(), RepositoryError> {
        match self.key_site(role)? {
            KeySite::Root => {
                let root = self.stage_root(now)?;
                if let Some(entry) = root.roles.get_mut(role) {
                    entry.threshold = threshold;
                }
            }
            KeySite::Delegation(delegator) => {
                let role = role.to_owned();
                let doc = self.stage_targets(&delegator, now)?;
                if let Some(d) = doc.delegations.as_mut() {
                    if let Some(entry) = d.roles.iter_mut().flatten().find(|r| r.name == role) {
                        entry.threshold = threshold;
                    }
                }
            }
            KeySite::Bins => {
                let doc = self.stage_targets(FALLBACK_ROLE, now)?;
                if let Some(bins) = doc
                    .delegations
                    .as_mut()
                    .and_then(|d| d.succinct_roles.as_mut())
                {
                    bins.threshold = threshold;
                }
            }
        }
        Ok(())
    }

    fn key_site(&mut self, role: &str) -> Result<KeySite, RepositoryError> {
        if TOP_LEVEL_ROLE_NAMES.contains(&role) {
            return Ok(KeySite::Root);
        }
        if role == FALLBACK_BINS_ALIAS || role_kind(role) == RoleKind::FallbackBin {
            return Ok(KeySite::Bins);
        }
        Ok(KeySite::Delegation(self.delegator_of(role)?))
    }

    /// Applies `edit` to the key map, keyid list and threshold of `role` where they are
    /// defined, staging that document. `unclaimed-*` (or `unclaimed` with `bins`) names
    /// the fallback bins.
    fn edit_role_keys(
        &mut self,
        role: &str,
        now: DateTime<Utc>,
        edit: impl FnOnce(
            &mut BTreeMap<KeyId, Key>,
            &mut Vec<KeyId>,
            u64,
        ) -> Result<(), RepositoryError>,
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
                let mut keyids = entry.keyids.clone();
                edit(&mut root.keys, &mut keyids, entry.threshold)?;
                let staged = self.stage_root(now)?;
                staged.keys = root.keys;
                if let Some(entry) = staged.roles.get_mut(role) {
                    entry.keyids = keyids;
                }
                prune_root_keys(staged);
            }
            KeySite::Delegation(delegator) => {
                let current = self
                    .current_targets(&delegator)?
                    .ok_or_else(|| RepositoryError::UnknownRole(delegator.clone()))?
                    .signed()
                    .clone();
                let mut delegations = current
                    .delegations
                    .clone()
                    .ok_or_else(|| RepositoryError::UnknownRole(role.to_owned()))?;
                let entry = delegations
                    .roles
                    .iter_mut()
                    .flatten()
                    .find(|r| r.name == role)
                    .ok_or_else(|| RepositoryError::UnknownRole(role.to_owned()))?;
                let mut keyids = entry.keyids.clone();
                let threshold = entry.threshold;
                edit(&mut delegations.keys, &mut keyids, threshold)?;
                if let Some(entry) = delegations
                    .roles
                    .iter_mut()
                    .flatten()
                    .find(|r| r.name == role)
                {
                    entry.keyids = keyids;
                }
                prune_delegation_keys(&mut delegations);
                self.stage_targets(&delegator, now)?.delegations = Some(delegations);
            }
            KeySite::Bins => {
                let current = self
                    .current_targets(FALLBACK_ROLE)?
                    .ok_or_else(|| RepositoryError::UnknownRole(FALLBACK_ROLE.into()))?
                    .signed()
                    .clone();
                let mut delegations = current
                    .delegations
                    .clone()
                    .ok_or_else(|| RepositoryError::UnknownRole(role.to_owned()))?;
                let bins = delegations
                    .succinct_roles
                    .as_mut()
                    .ok_or_else(|| RepositoryError::UnknownRole(role.to_owned()))?;
                let mut keyids = bins.keyids.clone();
                let threshold = bins.threshold;
                edit(&mut delegations.keys, &mut keyids, threshold)?;
                if let Some(bins) = delegations.succinct_roles.as_mut() {
                    bins.keyids = keyids;
                }
                prune_delegation_keys(&mut delegations);
                self.stage_targets(FALLBACK_ROLE, now)?.delegations = Some(delegations);
            }
        }
        Ok(())
    }

    // ----- namespaces ----------------------------------------------------------------

    /// Delegates `namespace` (the crate of that name and every `namespace::*` crate) to
    /// `spec`'s keys with a terminating delegation placed before the fallback role.
    /// Releases of the namespace already signed in the fallback bins move into the new
    /// role, so they stay available once its owners sign it.
    pub fn delegate_namespace(
        &mut self,
        namespace: &str,
        spec: &RoleKeySpec,
        now: DateTime<Utc>,
    ) -> Result<NamespaceEdit, RepositoryError> {
        let role = namespace_role_name(namespace)?;
        let pattern = namespace_path_pattern(namespace)?;
        check_threshold(&role, spec)?;
        let targets = self
            .current_targets("targets")?
            .ok_or_else(|| RepositoryError::UnknownRole("targets".into()))?
            .signed()
            .clone();
        let mut delegations = targets.delegations.clone().unwrap_or(Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            unrecognized_fields: UnrecognizedFields::new(),
        });
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        if roles.iter().any(|r| r.name == role) {
            return Err(RepositoryError::NamespaceClaimed(
                layout::canonical_namespace(namespace),
            ));
        }
        let keyids: BTreeSet<KeyId> = spec.keys.iter().map(Key::keyid).collect();
        let entry = DelegatedRole {
            name: role.clone(),
            keyids: keyids.into_iter().collect(),
            threshold: spec.threshold,
            terminating: true,
            paths: Some(vec![pattern.clone()]),
            path_hash_prefixes: None,
            unrecognized_fields: UnrecognizedFields::new(),
        };
        // Namespaces before the fallback role, so the fallback is never consulted for a
        // claimed path.
        let at = roles
            .iter()
            .position(|r| r.name == FALLBACK_ROLE)
            .unwrap_or(roles.len());
        roles.insert(at, entry);
        delegations.keys.extend(key_map(&spec.keys));
        // Move the namespace's releases out of the fallback bins.
        let moved = self.take_from_bins(&pattern, now)?;
        let ns_doc = self.stage_targets(&role, now)?;
        for (path, info) in &moved {
            ns_doc.targets.insert(path.clone(), info.clone());
        }
        self.stage_targets("targets", now)?.delegations = Some(delegations);
        Ok(NamespaceEdit {
            namespace: layout::canonical_namespace(namespace),
            role,
            releases_moved: moved.into_iter().map(|(p, _)| p).collect(),
        })
    }

    /// Removes the delegation of `namespace`. Its releases move to the fallback bins
    /// (signed from then on by the online key) so they stay available; its metadata
    /// stays listed in snapshot, as clients refuse a snapshot that drops a role.
    pub fn undelegate_namespace(
        &mut self,
        namespace: &str,
        now: DateTime<Utc>,
    ) -> Result<NamespaceEdit, RepositoryError> {
        let role = namespace_role_name(namespace)?;
        let targets = self
            .current_targets("targets")?
            .ok_or_else(|| RepositoryError::UnknownRole("targets".into()))?
            .signed()
            .clone();
        let mut delegations = targets
            .delegations
            .clone()
            .ok_or_else(|| RepositoryError::NamespaceNotDelegated(namespace.to_owned()))?;
        let roles = delegations.roles.get_or_insert_with(Vec::new);
        let before = roles.len();
        roles.retain(|r| r.name != role);
        if roles.len() == before {
            return Err(RepositoryError::NamespaceNotDelegated(
                layout::canonical_namespace(namespace),
            ));
        }
        prune_delegation_keys(&mut delegations);
        let releases: Vec<(String, TargetFile)> = self
            .current_targets(&role)?
            .map(|doc| doc.signed().targets.clone().into_iter().collect())
            .unwrap_or_default();
        self.stage_targets("targets", now)?.delegations = Some(delegations);
        for (path, info) in &releases {
            let bin = self.bin_for(path)?;
            self.stage_targets(&bin, now)?
                .targets
                .insert(path.clone(), info.clone());
        }
        Ok(NamespaceEdit {
            namespace: layout::canonical_namespace(namespace),
            role,
            releases_moved: releases.into_iter().map(|(p, _)| p).collect(),
        })
    }

    fn bins(&mut self) -> Result<SuccinctRoles, RepositoryError> {
        self.current_targets(FALLBACK_ROLE)?
            .and_then(|doc| doc.signed().delegations.as_ref())
            .and_then(|d| d.succinct_roles.clone())
            .ok_or_else(|| RepositoryError::UnknownRole(FALLBACK_ROLE.into()))
    }

    fn bin_for(&mut self, target_path: &str) -> Result<String, RepositoryError> {
        Ok(self.bins()?.role_for_target(target_path))
    }

    /// Removes from the fallback bins every release whose path matches `pattern`.
    fn take_from_bins(
        &mut self,
        pattern: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, TargetFile)>, RepositoryError> {
        let bins = self.bins()?;
        let mut moved = Vec::new();
        for bin in bins.role_names() {
            let matching: Vec<(String, TargetFile)> = match self.current_targets(&bin)? {
                Some(doc) => doc
                    .signed()
                    .targets
                    .iter()
                    .filter(|(path, _)| crate::metadata::path_matches_pattern(path, pattern))
                    .map(|(p, t)| (p.clone(), t.clone()))
                    .collect(),
                None => continue,
            };
            if matching.is_empty() {
                continue;
            }
            let doc = self.stage_targets(&bin, now)?;
            for (path, _) in &matching {
                doc.targets.remove(path);
            }
            moved.extend(matching);
        }
        Ok(moved)
    }

    // ----- releases ------------------------------------------------------------------

    /// The role a release path is signed by: the first namespace whose pattern covers it,
    /// else the fallback bin for its hash.
    pub fn role_for_path(&mut self, target_path: &str) -> Result<String, RepositoryError> {
        let targets = self
            .current_targets("targets")?
            .ok_or_else(|| RepositoryError::UnknownRole("targets".into()))?;
        let delegated = targets
            .signed()
            .delegations
            .as_ref()
            .and_then(|d| d.roles.as_ref())
            .and_then(|roles| roles.iter().find(|r| r.is_delegated_path(target_path)))
            .map(|r| r.name.clone());
        match delegated.as_deref() {
            Some(FALLBACK_ROLE) => self.bin_for(target_path),
            Some(role) => Ok(role.to_owned()),
            None => Err(RepositoryError::InvalidEdit {
                role: "targets".into(),
                message: format!("no role is delegated the path {target_path}"),
            }),
        }
    }

    /// Adds the release `name` `version` with the tarball `bytes` (whose name and version
    /// the caller has read from its Cargo.toml) to the role that owns it, and keeps a copy
    /// of the tarball to publish. `custom` becomes the target's custom data.
    pub fn add_release(
        &mut self,
        name: &str,
        version: &str,
        bytes: &[u8],
        custom: Option<serde_json::Value>,
        now: DateTime<Utc>,
    ) -> Result<ReleaseAdded, RepositoryError> {
        let path = crate_target_path(name, version)?;
        let role = self.role_for_path(&path)?;
        let mut info = TargetFile::from_bytes(bytes);
        if let Some(custom) = custom {
            info.unrecognized_fields.insert("custom".into(), custom);
        }
        if let Some(existing) = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path))
        {
            if existing.length == info.length
                && existing.hashes.get("sha256") == info.hashes.get("sha256")
            {
                return Ok(ReleaseAdded {
                    path,
                    role,
                    unchanged: true,
                });
            }
            return Err(RepositoryError::ReleaseConflict {
                path,
                listed_length: existing.length,
                listed_sha256: existing.hashes.get("sha256").cloned().unwrap_or_default(),
            });
        }
        let staged_file = self.staged_target_file(&path, &info)?;
        if let Some(parent) = staged_file.parent() {
            std::fs::create_dir_all(parent).map_err(io_error(parent))?;
        }
        write_atomic(&staged_file, bytes).map_err(io_error(&staged_file))?;
        self.stage_targets(&role, now)?
            .targets
            .insert(path.clone(), info);
        Ok(ReleaseAdded {
            path,
            role,
            unchanged: false,
        })
    }

    /// Removes the release `name` `version` from the role that lists it. Published
    /// tarballs stay on disk (older snapshots refer to them).
    pub fn remove_release(
        &mut self,
        name: &str,
        version: &str,
        now: DateTime<Utc>,
    ) -> Result<String, RepositoryError> {
        let path = crate_target_path(name, version)?;
        let role = self.role_for_path(&path)?;
        let listed = self
            .current_targets(&role)?
            .and_then(|doc| doc.signed().targets.get(&path).cloned());
        let Some(info) = listed else {
            return Err(RepositoryError::ReleaseNotFound {
                name: name.to_owned(),
                version: version.to_owned(),
                path,
            });
        };
        self.stage_targets(&role, now)?.targets.remove(&path);
        let staged_file = self.staged_target_file(&path, &info)?;
        remove_if_exists(&staged_file)?;
        Ok(path)
    }

    /// Where a staged tarball waits for publish: `staged/targets/<dir>/<sha256>.<file>`.
    pub(crate) fn staged_target_file(
        &self,
        path: &str,
        info: &TargetFile,
    ) -> Result<PathBuf, RepositoryError> {
        Ok(self
            .staged_dir()
            .join("targets")
            .join(hashed_target_path(path, info)?))
    }

    // ----- signing -------------------------------------------------------------------

    /// Differences between the published and the staged version of `role`.
    pub fn diff(&mut self, role: &str) -> Result<Vec<Change>, RepositoryError> {
        let (old, new) = if role == "root" {
            let new = self
                .staged_root
                .as_ref()
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            let old = self.published.root.as_ref();
            (
                old.map(|m| serde_json::to_value(m.signed())).transpose(),
                serde_json::to_value(new.signed()),
            )
        } else {
            let new = serde_json::to_value(
                self.staged
                    .get(role)
                    .ok_or_else(|| RepositoryError::NotStaged(role.into()))?
                    .signed(),
            );
            let old = self
                .published
                .targets(role)?
                .map(|m| serde_json::to_value(m.signed()))
                .transpose();
            (old, new)
        };
        let schema = |e: serde_json::Error| RepositoryError::InvalidEdit {
            role: role.to_owned(),
            message: e.to_string(),
        };
        // A new role is compared with an empty object: every field shows as added.
        let old = old
            .map_err(schema)?
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()));
        let new = new.map_err(schema)?;
        let mut changes = Vec::new();
        diff_values("signed", &old, &new, &mut changes);
        Ok(changes)
    }

    /// The canonical bytes a signature of staged `role` covers.
    fn staged_signed_bytes(&self, role: &str) -> Result<(u64, Vec<u8>), RepositoryError> {
        let meta_err = |source| RepositoryError::Metadata {
            path: self.staged_path(role),
            source,
        };
        if role == "root" {
            let root = self
                .staged_root
                .as_ref()
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            Ok((
                root.signed().version,
                root.signed_bytes().map_err(meta_err)?.to_vec(),
            ))
        } else {
            let doc = self
                .staged
                .get(role)
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            Ok((
                doc.signed().version,
                doc.signed_bytes().map_err(meta_err)?.to_vec(),
            ))
        }
    }

    /// Whether `keyid` may sign staged `role`: authorised by its delegator after the next
    /// publish, or (for root) by the published root.
    fn check_authorized(&mut self, role: &str, keyid: &str) -> Result<(), RepositoryError> {
        let (_, keyids, _) = self.authorization_of(role)?;
        let by_previous_root = role == "root"
            && self
                .published
                .root
                .as_ref()
                .and_then(|r| r.signed().role("root"))
                .is_some_and(|r| r.keyids.iter().any(|k| k == keyid));
        if keyids.iter().any(|k| k == keyid) || by_previous_root {
            Ok(())
        } else {
            Err(RepositoryError::KeyNotAuthorized {
                role: role.to_owned(),
                keyid: keyid.to_owned(),
            })
        }
    }

    /// Whether `keyid` may sign staged `role` (see [`Self::sign`]).
    pub fn can_sign(&mut self, role: &str, keyid: &str) -> bool {
        self.check_authorized(role, keyid).is_ok()
    }

    /// Signs staged `role` with `signer`, keeping the other signatures and the signed
    /// bytes unchanged, then checks the new signature.
    pub fn sign(
        &mut self,
        role: &str,
        signer: &dyn Signer,
    ) -> Result<SignatureOutcome, RepositoryError> {
        let detached = self.detached_signature(role, signer)?;
        self.import_signature(&detached)
    }

    /// Makes a signature of staged `role` without changing the repository, to carry to
    /// the machine that collects signatures.
    pub fn detached_signature(
        &mut self,
        role: &str,
        signer: &dyn Signer,
    ) -> Result<DetachedSignature, RepositoryError> {
        self.check_authorized(role, signer.keyid())?;
        let (version, bytes) = self.staged_signed_bytes(role)?;
        let signature = signer.sign(&bytes)?;
        Ok(DetachedSignature {
            role: role.to_owned(),
            version,
            signed_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            signature,
        })
    }

    /// Adds a signature made elsewhere to staged metadata, after checking it is over
    /// exactly the staged bytes, by an authorised key, and valid.
    pub fn import_signature(
        &mut self,
        detached: &DetachedSignature,
    ) -> Result<SignatureOutcome, RepositoryError> {
        let role = detached.role.as_str();
        let (version, bytes) = self.staged_signed_bytes(role)?;
        let staged_sha256 = hex::encode(sha2::Sha256::digest(&bytes));
        if version != detached.version || staged_sha256 != detached.signed_sha256 {
            return Err(RepositoryError::SignatureMismatch {
                role: role.to_owned(),
                staged_version: version,
                staged_sha256,
                signed_version: detached.version,
                signed_sha256: detached.signed_sha256.clone(),
            });
        }
        let keyid = detached.signature.keyid.clone();
        self.check_authorized(role, &keyid)?;
        // Find the key, in the new authorisation or (root) the previous root.
        let (keys, _, _) = self.authorization_of(role)?;
        let key = keys.get(&keyid).cloned().or_else(|| {
            self.published
                .root
                .as_ref()
                .and_then(|r| r.signed().keys.get(&keyid).cloned())
        });
        let key = key.ok_or_else(|| RepositoryError::KeyNotAuthorized {
            role: role.to_owned(),
            keyid: keyid.clone(),
        })?;
        key.verify(&bytes, &detached.signature.sig)
            .map_err(|e| RepositoryError::BadSignature {
                role: role.to_owned(),
                keyid: keyid.clone(),
                reason: e.to_string(),
            })?;
        let signature = detached.signature.clone();
        let add = |signatures: &mut Vec<Signature>| {
            signatures.retain(|s| s.keyid != signature.keyid);
            signatures.push(signature.clone());
        };
        if role == "root" {
            if let Some(root) = self.staged_root.as_mut() {
                add(&mut root.signatures);
            }
        } else if let Some(doc) = self.staged.get_mut(role) {
            add(&mut doc.signatures);
        }
        self.dirty.insert(role.to_owned());
        self.save()?;
        let (report, previous_root) = self.signature_reports(role)?;
        Ok(SignatureOutcome {
            role: role.to_owned(),
            keyid,
            report,
            previous_root,
        })
    }

    /// How the signatures of staged `role` stand: against the keys that will authorise
    /// it and, for root, against the published root too.
    pub fn signature_reports(
        &mut self,
        role: &str,
    ) -> Result<(SignatureReport, Option<SignatureReport>), RepositoryError> {
        let (keys, keyids, threshold) = self.authorization_of(role)?;
        let authorization = Authorization {
            keys: &keys,
            keyids: &keyids,
            threshold,
        };
        let (signatures, bytes) = if role == "root" {
            let root = self
                .staged_root
                .as_ref()
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            (root.signatures.clone(), self.staged_signed_bytes(role)?.1)
        } else {
            let doc = self
                .staged
                .get(role)
                .ok_or_else(|| RepositoryError::NotStaged(role.into()))?;
            (doc.signatures.clone(), self.staged_signed_bytes(role)?.1)
        };
        let report = check_signatures(&authorization, &signatures, &bytes);
        let previous = if role == "root" {
            self.published.root.as_ref().and_then(|old| {
                old.signed()
                    .authorization("root")
                    .map(|authorization| check_signatures(&authorization, &signatures, &bytes))
            })
        } else {
            None
        };
        Ok((report, previous))
    }

    /// Drops every staged change (and staged tarballs).
    pub fn discard(&mut self) -> Result<Vec<String>, RepositoryError> {
        let roles = self.staged_roles();
        self.staged_root = None;
        self.staged.clear();
        self.dirty.clear();
        let dir = self.staged_dir();
        std::fs::remove_dir_all(&dir).map_err(io_error(&dir))?;
        std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(roles)
    }

    // ----- status --------------------------------------------------------------------

    /// Every role's version, expiry and signatures; `expires_soon` marks published roles
    /// expiring within `within_seconds` of `now`.
    pub fn status(
        &mut self,
        now: DateTime<Utc>,
        within_seconds: u64,
    ) -> Result<Status, RepositoryError> {
        let soon = expires_at(now, within_seconds);
        let mut names: Vec<String> = TOP_LEVEL_ROLE_NAMES
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut others: BTreeSet<String> = self.published.targets_roles().into_iter().collect();
        others.extend(self.staged.keys().cloned());
        others.remove("targets");
        names.extend(others);
        let mut roles = Vec::new();
        for role in names {
            let (published_version, published_expires) = match role.as_str() {
                "root" => meta_of(self.published.root.as_ref()),
                "timestamp" => meta_of(self.published.timestamp.as_ref()),
                "snapshot" => meta_of(self.published.snapshot.as_ref()),
                _ => meta_of(self.published.targets(&role)?),
            };
            let (staged_version, staged_expires) = match role.as_str() {
                "root" => meta_of(self.staged_root.as_ref()),
                _ => meta_of(self.staged.get(&role)),
            };
            let staged = staged_version.is_some();
            let (signatures, previous_root_signatures) = if staged {
                let (report, previous) = self.signature_reports(&role)?;
                (Some(report), previous)
            } else {
                (None, None)
            };
            let online = role_kind(&role).is_online();
            let ready = !staged
                || online
                || (signatures
                    .as_ref()
                    .is_some_and(SignatureReport::threshold_met)
                    && previous_root_signatures
                        .as_ref()
                        .is_none_or(SignatureReport::threshold_met));
            roles.push(RoleStatus {
                expires_soon: published_expires.is_some_and(|e| e <= soon),
                role,
                online,
                published_version,
                published_expires: published_expires.map(|e| format_expires(&e)),
                staged_version,
                staged_expires: staged_expires.map(|e| format_expires(&e)),
                signatures,
                previous_root_signatures,
                ready,
            });
        }
        Ok(Status {
            now: format_expires(&whole_seconds(now)),
            within_seconds,
            roles,
        })
    }
}

enum KeySite {
    Root,
    Delegation(String),
    Bins,
}

fn meta_of<T: Role>(doc: Option<&Metadata<T>>) -> (Option<u64>, Option<DateTime<Utc>>) {
    doc.map_or((None, None), |d| {
        (Some(d.signed().version()), Some(d.signed().expires()))
    })
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

/// The consistent-snapshot file path of a target: `<dir>/<sha256>.<file>` (§5.7.2).
pub(crate) fn hashed_target_path(path: &str, info: &TargetFile) -> Result<String, RepositoryError> {
    let hash = info
        .hashes
        .get("sha256")
        .ok_or_else(|| RepositoryError::InvalidEdit {
            role: "targets".into(),
            message: format!("{path} has no sha256"),
        })?;
    Ok(match path.rsplit_once('/') {
        Some((dir, file)) => format!("{dir}/{hash}.{file}"),
        None => format!("{hash}.{path}"),
    })
}

/// Drops root keys no top-level role uses any more.
fn prune_root_keys(root: &mut Root) {
    let used: BTreeSet<&KeyId> = root.roles.values().flat_map(|r| r.keyids.iter()).collect();
    root.keys.retain(|keyid, _| used.contains(keyid));
}

/// Drops delegation keys no delegated role (or bin) uses any more.
fn prune_delegation_keys(delegations: &mut Delegations) {
    let mut used: BTreeSet<KeyId> = BTreeSet::new();
    for role in delegations.roles.iter().flatten() {
        used.extend(role.keyids.iter().cloned());
    }
    if let Some(bins) = &delegations.succinct_roles {
        used.extend(bins.keyids.iter().cloned());
    }
    delegations.keys.retain(|keyid, _| used.contains(keyid));
}
