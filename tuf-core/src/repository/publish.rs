//! Publishing: sign the online roles, write snapshot and timestamp, check that a client
//! would accept the result, then switch `published/metadata` to it atomically.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::audit::{audit_repository, check_target_file, AuditOptions, Problem, Severity};
use super::content::hashed_target_path;
use super::editor::{expires_at, Repository, View, PUBLISHED_DIR};
use super::published_store::{
    metadata_bytes, read_file, versioned_file_name, write_published, TARGETS_DIR,
};
use super::signing::RoleSignatures;
use super::source::{DirectorySource, MetadataSource, OverlaySource};
use super::{io_error, MissingSignatures, Progress, RepositoryError, RequiredKeys};
use crate::client::Limits;
use crate::fs::{create_dir_all_readable, make_readable};
use crate::layout::RoleKind;
use crate::metadata::{
    MetaFile, Metadata, Role, Root, Snapshot, Timestamp, DEFAULT_MAX_METADATA_BYTES,
};
use crate::signer::Signer;
use crate::verify::{check_signatures, Delegator};

/// What a publish wrote.
#[derive(Debug, Clone, Serialize)]
pub struct PublishReport {
    /// Root version clients now reach.
    pub root_version: u64,
    /// The new timestamp version.
    pub timestamp_version: u64,
    /// The snapshot version timestamp names.
    pub snapshot_version: u64,
    /// Roles published with a new version.
    pub roles: Vec<PublishedRole>,
    /// Release tarballs newly published.
    pub releases_published: usize,
    /// Crates' signed index files newly published (a new version of each).
    pub index_files_published: usize,
    /// Metadata files written.
    pub files_written: usize,
    /// Bytes of metadata written: what a client that had the previous publish downloads
    /// to reach this one (every new file but a repeated root.json).
    pub bytes_written: u64,
    /// Whether the publish made a new generation directory (it carried a root) rather
    /// than adding its files to the current one.
    pub new_generation: bool,
}

/// A role a publish wrote a new version of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedRole {
    /// The role.
    pub role: String,
    /// Its new version.
    pub version: u64,
}

impl PublishedRole {
    fn new(role: impl Into<String>, version: u64) -> Self {
        Self {
            role: role.into(),
            version,
        }
    }
}

/// Signs `doc` with every signer `authorized` lists, keeping other signatures. Returns
/// how many distinct authorised keys signed.
fn sign_with<T: Role>(
    doc: &mut Metadata<T>,
    online: &[&dyn Signer],
    authorized: &[String],
) -> Result<usize, RepositoryError> {
    let mut signed: BTreeSet<&str> = BTreeSet::new();
    for signer in online {
        if authorized.iter().any(|k| k == signer.keyid()) {
            signed.insert(signer.keyid());
            doc.sign(*signer, true).map_err(|e| match e {
                crate::metadata::SignError::Signer(e) => RepositoryError::Sign(e),
                crate::metadata::SignError::Metadata(source) => RepositoryError::Metadata {
                    path: Path::new("(in memory)").to_owned(),
                    source,
                },
            })?;
        }
    }
    Ok(signed.len())
}

impl Repository {
    /// Publishes every staged role: signs the online roles (the fallback role and its bins)
    /// with `online`, refuses if any other staged role lacks signatures, writes a new
    /// snapshot and timestamp signed with `online`, verifies the whole result from the
    /// published root as a client would, and switches to it atomically.
    pub fn publish(
        &mut self,
        online: &[&dyn Signer],
        now: DateTime<Utc>,
        progress: &dyn Progress,
    ) -> Result<PublishReport, RepositoryError> {
        if self.staged_root.is_none() && self.staged.is_empty() {
            return Err(RepositoryError::NothingToPublish);
        }
        self.publish_roles(online, now, true, true, progress)
    }

    /// Re-signs the online roles that expire within `within_seconds` (by default half of
    /// each role's validity period): a new timestamp, a new snapshot if it or any online
    /// targets role is due, and the due fallback roles. Staged offline changes are left
    /// staged. Returns `None` when nothing was due.
    pub fn refresh(
        &mut self,
        online: &[&dyn Signer],
        now: DateTime<Utc>,
        within_seconds: Option<u64>,
        progress: &dyn Progress,
    ) -> Result<Option<PublishReport>, RepositoryError> {
        let due = |expires: DateTime<Utc>, period: u64| {
            let window = within_seconds.unwrap_or(period / 2);
            expires <= expires_at(now, window)
        };
        let expiry = self.settings.expiry;
        let Some(timestamp) = self.published.timestamp.as_ref() else {
            return Err(RepositoryError::NothingToPublish);
        };
        let mut timestamp_due = due(timestamp.signed().expires, expiry.timestamp);
        let mut snapshot_due = self
            .published
            .snapshot
            .as_ref()
            .is_some_and(|s| due(s.signed().expires, expiry.snapshot));
        let online_roles: Vec<String> = self
            .published
            .targets_roles()
            .into_iter()
            .filter(|r| RoleKind::of(r).is_online())
            .collect();
        for role in online_roles {
            let expires = self.published.targets(&role)?.map(|d| d.signed().expires);
            if expires.is_some_and(|e| due(e, expiry.fallback)) {
                self.stage_targets(&role, now)?;
                snapshot_due = true;
            }
        }
        // Staged online roles (a release added to a bin) go out too: they need no other
        // signature than the online keys'.
        snapshot_due |= self.staged.keys().any(|r| RoleKind::of(r).is_online());
        timestamp_due |= snapshot_due;
        if !timestamp_due {
            return Ok(None);
        }
        // Renewals are not saved as staged changes: if publishing fails they are dropped.
        self.publish_roles(online, now, false, snapshot_due, progress)
            .map(Some)
    }

    fn publish_roles(
        &mut self,
        online: &[&dyn Signer],
        now: DateTime<Utc>,
        include_offline: bool,
        new_snapshot: bool,
        progress: &dyn Progress,
    ) -> Result<PublishReport, RepositoryError> {
        let published_dir = self.dir.join(PUBLISHED_DIR);
        // Which staged roles go out.
        let publish_root = include_offline && self.staged_root.is_some();
        let roles: Vec<String> = self
            .staged
            .keys()
            .filter(|r| include_offline || RoleKind::of(r).is_online())
            .cloned()
            .collect();
        // Delegators as they will be: staged ones too, unless only online roles go out
        // (refresh), when staged offline changes stay staged and do not count.
        let view = if include_offline {
            View::AfterPublish
        } else {
            View::Published
        };
        // Publishing any targets role needs a snapshot naming its new version.
        let new_snapshot = new_snapshot || !roles.is_empty();
        // Sign the online targets roles. One that as many authorised online keys as its
        // threshold have just signed needs no signature check here: they are fresh
        // signatures over its current bytes, and the audit below verifies them as a
        // client does.
        let mut signed_online: BTreeSet<&str> = BTreeSet::new();
        for role in &roles {
            if RoleKind::of(role).is_online() {
                let authorization = self.authorization_in(role, view)?;
                if let Some(doc) = self.staged.get_mut(role) {
                    let signers = sign_with(doc, online, &authorization.keyids)?;
                    if signers as u64 >= authorization.threshold {
                        signed_online.insert(role);
                    }
                }
            }
        }
        // Every other published role must meet its thresholds.
        let mut unsigned = Vec::new();
        let mut check_roles: Vec<String> = roles
            .iter()
            .filter(|r| !signed_online.contains(r.as_str()))
            .cloned()
            .collect();
        if publish_root {
            check_roles.insert(0, "root".into());
        }
        for role in &check_roles {
            let RoleSignatures {
                report,
                previous_root,
            } = self.signatures_in(role, view)?;
            if !report.threshold_met() {
                let keys = if RoleKind::of(role).is_online() {
                    RequiredKeys::Online
                } else {
                    RequiredKeys::Role
                };
                unsigned.push(MissingSignatures {
                    role: role.clone(),
                    keys,
                    report,
                });
            }
            if let Some(previous) = previous_root.filter(|p| !p.threshold_met()) {
                unsigned.push(MissingSignatures {
                    role: "root".into(),
                    keys: RequiredKeys::PreviousRoot,
                    report: previous,
                });
            }
        }
        if !unsigned.is_empty() {
            return Err(RepositoryError::NotSigned(unsigned));
        }
        // The root clients will hold.
        let root: Metadata<Root> = match (publish_root, &self.staged_root, &self.published.root) {
            (true, Some(root), _) | (false, _, Some(root)) => root.clone(),
            _ => return Err(RepositoryError::UnknownRole("root".into())),
        };
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let metadata_dir = published_dir.join(super::published_store::METADATA_LINK);
        if publish_root {
            let path = metadata_dir.join("root.json");
            let bytes = metadata_bytes(&root, &path)?;
            files.push((
                versioned_file_name("root", root.signed().version),
                bytes.clone(),
            ));
            files.push(("root.json".into(), bytes));
        }
        // Targets roles.
        let mut snapshot = match &self.published.snapshot {
            Some(s) => s.signed().clone(),
            None => Snapshot::new(now),
        };
        let mut published_roles = Vec::new();
        let mut needs_hashes = SnapshotHashes::new(&root);
        for role in &roles {
            if !self.staged.contains_key(role) {
                continue;
            }
            let hashed = needs_hashes.of(self, role, view)?;
            let Some(doc) = self.staged.get(role) else {
                continue;
            };
            let version = doc.signed().version;
            let bytes = metadata_bytes(doc, &metadata_dir.join(role))?;
            let file_name = versioned_file_name(role, version);
            // A file of this version already published is left over from a publish cut
            // off before its timestamp: no published metadata names it, and it is
            // replaced now, perhaps with other bytes. A cache in front of the repository
            // may hold the old ones, signed by the same keys, so the entry pins these
            // bytes with their hash whatever the keys.
            let left_over = metadata_dir.join(&file_name).exists();
            let entry = if hashed || left_over {
                MetaFile::with_bytes(version, &bytes)
            } else {
                MetaFile::with_length(version, bytes.len() as u64)
            };
            snapshot.meta.insert(format!("{role}.json"), entry);
            files.push((file_name, bytes));
            published_roles.push(PublishedRole::new(role.clone(), version));
        }
        // An entry published without hashes whose role's signers can no longer sign
        // snapshot and timestamp (their keys changed) gets them now, from its file.
        if new_snapshot {
            let hashless: Vec<(String, u64)> = snapshot
                .meta
                .iter()
                .filter(|(_, meta)| meta.hashes.is_none())
                .filter_map(|(name, meta)| {
                    Some((name.strip_suffix(".json")?.to_owned(), meta.version))
                })
                .collect();
            for (role, version) in hashless {
                if needs_hashes.of(self, &role, view)? {
                    let path = metadata_dir.join(versioned_file_name(&role, version));
                    let bytes = read_file(&path, Limits::default().max_targets_length)?;
                    snapshot.meta.insert(
                        format!("{role}.json"),
                        MetaFile::with_bytes(version, &bytes),
                    );
                }
            }
        }
        // Snapshot (§4.4): every targets role with version and length, and sha256 where
        // `SnapshotHashes` says it protects something.
        let snapshot_bytes;
        let snapshot_version;
        let mut new_snapshot_doc = None;
        if new_snapshot || self.published.snapshot.is_none() {
            snapshot.version = self
                .published
                .snapshot
                .as_ref()
                .map_or(1, |s| s.signed().version.saturating_add(1));
            snapshot.expires = expires_at(now, self.settings.expiry.snapshot);
            let mut doc = Metadata::new(snapshot);
            let keyids = root_keyids(&root, "snapshot");
            sign_with(&mut doc, online, &keyids)?;
            check_online_signed(&root, "snapshot", &doc)?;
            snapshot_version = doc.signed().version;
            snapshot_bytes = metadata_bytes(&doc, &metadata_dir.join("snapshot.json"))?;
            files.push((
                versioned_file_name("snapshot", snapshot_version),
                snapshot_bytes.clone(),
            ));
            published_roles.push(PublishedRole::new("snapshot", snapshot_version));
            new_snapshot_doc = Some(doc);
        } else {
            let current = self
                .published
                .snapshot
                .as_ref()
                .map_or(0, |s| s.signed().version);
            snapshot_version = current;
            let path = metadata_dir.join(versioned_file_name("snapshot", current));
            snapshot_bytes = read_file(&path, DEFAULT_MAX_METADATA_BYTES as u64)?;
        }
        // Timestamp (§4.6).
        let timestamp_version = self
            .published
            .timestamp
            .as_ref()
            .map_or(1, |t| t.signed().version.saturating_add(1));
        let mut timestamp = Timestamp::new(expires_at(now, self.settings.expiry.timestamp));
        timestamp.version = timestamp_version;
        timestamp.meta.insert(
            "snapshot.json".into(),
            MetaFile::with_bytes(snapshot_version, &snapshot_bytes),
        );
        let mut timestamp = Metadata::new(timestamp);
        sign_with(&mut timestamp, online, &root_keyids(&root, "timestamp"))?;
        check_online_signed(&root, "timestamp", &timestamp)?;
        files.push((
            "timestamp.json".into(),
            metadata_bytes(&timestamp, &metadata_dir.join("timestamp.json"))?,
        ));
        published_roles.push(PublishedRole::new("timestamp", timestamp_version));

        // Would a client accept it? Check from the root clients hold now (or the new
        // first root), reading only what changed plus the roles it depends on.
        let trusted_root = match &self.published.root {
            Some(published_root) => {
                let path =
                    metadata_dir.join(versioned_file_name("root", published_root.signed().version));
                read_file(&path, Limits::default().max_root_length)?
            }
            None => metadata_bytes(&root, &metadata_dir.join("1.root.json"))?,
        };
        let base = DirectorySource::new(&metadata_dir);
        let base_ref: Option<&dyn MetadataSource> = metadata_dir.exists().then_some(&base as _);
        let overlay =
            OverlaySource::new(base_ref, files.iter().cloned().collect::<HashMap<_, _>>());
        let mut options = AuditOptions::new(now);
        let mut changed: BTreeSet<String> = roles.iter().cloned().collect();
        if self.published.snapshot.is_none() {
            changed.extend(self.staged.keys().cloned());
        }
        options.changed_roles = Some(changed);
        let report = audit_repository(&overlay, &trusted_root, &options, &());
        if !report.is_ok() {
            return Err(RepositoryError::WouldNotVerify(report.into_errors()));
        }
        // Release tarballs of the new entries: present and matching, then published.
        let moves = self.release_moves(&roles, &published_dir)?;
        progress.set_length(moves.len() as u64 + files.len() as u64);
        for (from, to) in &moves {
            if !to.exists() {
                if let Some(parent) = to.parent() {
                    create_dir_all_readable(parent).map_err(io_error(parent))?;
                }
                std::fs::rename(from, to).map_err(io_error(from))?;
                // Staged before tarballs were staged world-readable: readable now.
                make_readable(to).map_err(io_error(to))?;
                if let Some(parent) = to.parent() {
                    std::fs::File::open(parent)
                        .and_then(|d| d.sync_all())
                        .map_err(io_error(parent))?;
                }
            }
            progress.advance(1);
        }
        // Switched to in one rename: of a new generation's link when root changes, of
        // timestamp.json otherwise.
        let new_generation = write_published(&published_dir, timestamp_version, &files, &())?;
        progress.advance(files.len() as u64);
        // Done: clear what was published from the staging area.
        let staged_dir = self.dir.join(super::editor::STAGED_DIR);
        if publish_root {
            self.staged_root = None;
            super::editor::remove_if_exists(&staged_dir.join("root.json"))?;
        }
        let mut published_targets = Vec::with_capacity(roles.len());
        for role in &roles {
            if let Some(doc) = self.staged.remove(role) {
                published_targets.push((role.clone(), doc));
            }
            super::editor::remove_if_exists(&staged_dir.join(format!("{role}.json")))?;
        }
        let root_version = root.signed().version;
        self.published
            .record_publish(root, timestamp, new_snapshot_doc, published_targets);
        Ok(PublishReport {
            root_version,
            timestamp_version,
            snapshot_version,
            roles: published_roles,
            releases_published: moves
                .iter()
                .filter(|(_, to)| to.extension().is_some_and(|e| e == "crate"))
                .count(),
            index_files_published: moves
                .iter()
                .filter(|(_, to)| to.extension().is_some_and(|e| e == "index"))
                .count(),
            files_written: files.len(),
            bytes_written: files
                .iter()
                .filter(|(name, _)| name != "root.json")
                .map(|(_, bytes)| bytes.len() as u64)
                .sum(),
            new_generation,
        })
    }

    /// For each target new in the published roles: where its tarball is now (staged, or
    /// already published) checked against the signed length and hashes, and where it goes.
    fn release_moves(
        &mut self,
        roles: &[String],
        published_dir: &Path,
    ) -> Result<Vec<(PathBuf, PathBuf)>, RepositoryError> {
        let staged_targets = self.dir.join(super::editor::STAGED_DIR).join(TARGETS_DIR);
        let published_targets = published_dir.join(TARGETS_DIR);
        let mut moves = Vec::new();
        let mut problems = Vec::new();
        for role in roles {
            let Some(doc) = self.staged.get(role) else {
                continue;
            };
            let old = self.published.targets(role)?;
            for (path, info) in &doc.signed().targets {
                if old.and_then(|o| o.signed().targets.get(path)) == Some(info) {
                    continue;
                }
                // Signed from upstream, which serves the tarball: nothing to move or check
                // here (`verify --fetch-targets` checks upstream's file).
                if crate::layout::tarball_is_upstream(path, info) {
                    continue;
                }
                let relative = hashed_target_path(path, info)?;
                let staged = staged_targets.join(&relative);
                let (dir, from) = if staged.exists() {
                    (&staged_targets, Some(staged))
                } else {
                    (&published_targets, None)
                };
                if let Err(e) = check_target_file(dir, path, info, true) {
                    problems.push(Problem {
                        severity: Severity::Error,
                        role: Some(role.clone()),
                        target: Some(path.clone()),
                        message: format!("{e} (add the release again)"),
                    });
                }
                if let Some(from) = from {
                    moves.push((from, published_targets.join(&relative)));
                }
            }
        }
        if !problems.is_empty() {
            return Err(RepositoryError::WouldNotVerify(problems));
        }
        Ok(moves)
    }
}

/// Whether the online role `role` (snapshot, timestamp) meets its threshold of root's
/// keys, as a client checks it (python-tuf's `verify_delegate`).
fn check_online_signed<T: Role>(
    root: &Metadata<Root>,
    role: &str,
    doc: &Metadata<T>,
) -> Result<(), RepositoryError> {
    let authorization = root
        .signed()
        .authorization(role)
        .ok_or_else(|| RepositoryError::UnknownRole(role.to_owned()))?;
    let bytes = doc
        .signed_bytes()
        .map_err(|source| RepositoryError::Metadata {
            path: Path::new("(in memory)").to_owned(),
            source,
        })?;
    let report = check_signatures(&authorization, &doc.signatures, bytes);
    if report.threshold_met() {
        return Ok(());
    }
    Err(RepositoryError::NotSigned(vec![MissingSignatures {
        role: role.to_owned(),
        keys: RequiredKeys::Online,
        report,
    }]))
}

/// Which snapshot entries carry hashes (§4.4), decided per role and remembered for the
/// fallback bins, which share one authorization.
///
/// §4.4 lets snapshot leave a role's hashes out when its version alone identifies it.
/// What the hashes add is that a role's own signers cannot sign a second, different
/// document of the version snapshot names and hand it to some clients: the bytes are
/// pinned by the snapshot's and timestamp's signers. That protects nothing when every
/// set of keys that can sign the role can also sign snapshot and timestamp, as for the
/// fallback bins, which the online keys sign: whoever could equivocate a bin could sign
/// a snapshot and timestamp naming its hash just as well. Those entries are written
/// with version and length only (about 51 bytes in place of 138, which keeps the
/// snapshot of a large registry under half its size). Every other role, the top-level
/// targets and the namespaces, signed offline by their owners, keeps its hashes.
struct SnapshotHashes {
    snapshot: Option<(Vec<String>, u64)>,
    timestamp: Option<(Vec<String>, u64)>,
    bins: Option<bool>,
}

impl SnapshotHashes {
    fn new(root: &Metadata<Root>) -> Self {
        let of = |role| {
            root.signed()
                .authorization(role)
                .map(|a| (a.keyids.to_vec(), a.threshold))
        };
        Self {
            snapshot: of("snapshot"),
            timestamp: of("timestamp"),
            bins: None,
        }
    }

    /// Whether the snapshot entry of `role` needs hashes.
    fn of(
        &mut self,
        repo: &mut Repository,
        role: &str,
        view: View,
    ) -> Result<bool, RepositoryError> {
        let bin = RoleKind::of(role) == RoleKind::FallbackBin;
        if let (true, Some(known)) = (bin, self.bins) {
            return Ok(known);
        }
        let authorization = if bin {
            repo.authorization_in(super::editor::FALLBACK_BINS_ALIAS, view)?
        } else {
            repo.authorization_in(role, view)?
        };
        let needed = !self
            .signers_sign_snapshot_and_timestamp(&authorization.keyids, authorization.threshold);
        if bin {
            self.bins = Some(needed);
        }
        Ok(needed)
    }

    /// Whether every `threshold` of `keyids` is also a threshold of snapshot's keys and
    /// of timestamp's.
    fn signers_sign_snapshot_and_timestamp(&self, keyids: &[String], threshold: u64) -> bool {
        [&self.snapshot, &self.timestamp].into_iter().all(|role| {
            role.as_ref().is_some_and(|(role_keyids, role_threshold)| {
                threshold >= (*role_threshold).max(1)
                    && keyids.iter().all(|k| role_keyids.contains(k))
            })
        })
    }
}

fn root_keyids(root: &Metadata<Root>, role: &str) -> Vec<String> {
    root.signed()
        .authorization(role)
        .map(|a| a.keyids.to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::index_entry::IndexEntry;
    use crate::repository::published_store::PublishedStore;
    use crate::repository::{InitOptions, RoleKeySpec, Settings};
    use crate::{KeyAlgorithm, PrivateKey};
    use chrono::TimeZone;

    fn spec(key: &PrivateKey) -> RoleKeySpec {
        RoleKeySpec {
            keys: vec![key.public_key().clone()],
            threshold: 1,
        }
    }

    /// Every role's published bytes as `store` holds them.
    fn store_bytes(store: &mut PublishedStore) -> Vec<(String, Vec<u8>)> {
        let path = Path::new("(test)");
        let mut out = vec![
            (
                "root".to_owned(),
                metadata_bytes(store.root.as_ref().unwrap(), path).unwrap(),
            ),
            (
                "timestamp".to_owned(),
                metadata_bytes(store.timestamp.as_ref().unwrap(), path).unwrap(),
            ),
            (
                "snapshot".to_owned(),
                metadata_bytes(store.snapshot.as_ref().unwrap(), path).unwrap(),
            ),
        ];
        for role in store.targets_roles() {
            let doc = store.targets(&role).unwrap().unwrap();
            out.push((role, metadata_bytes(doc, path).unwrap()));
        }
        out
    }

    /// Snapshot and timestamp keys that were not given are named as such before anything
    /// is written, even when the bins' online key was given.
    #[test]
    fn a_snapshot_key_not_given_is_refused_by_name() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let bins = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let snapshot = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let options = InitOptions {
            root: spec(&root),
            targets: spec(&root),
            snapshot: spec(&snapshot),
            timestamp: spec(&snapshot),
            fallback: spec(&bins),
            settings: Settings {
                fallback_bin_bits: 1,
                ..Settings::default()
            },
        };
        let mut repo = Repository::init(dir.path(), &options, now).unwrap();
        repo.sign("root", &root).unwrap();
        repo.sign("targets", &root).unwrap();
        let bins_only: [&dyn Signer; 1] = [&bins];
        let error = repo.publish(&bins_only, now, &()).unwrap_err();
        let RepositoryError::NotSigned(missing) = &error else {
            panic!("{error}")
        };
        assert_eq!(missing.len(), 1, "{error}");
        assert_eq!(missing[0].role, "snapshot", "{error}");
        assert_eq!(missing[0].keys, RequiredKeys::Online, "{error}");
        assert!(!dir.path().join(PUBLISHED_DIR).join("metadata").exists());
        let both: [&dyn Signer; 2] = [&bins, &snapshot];
        repo.publish(&both, now, &()).unwrap();
    }

    /// What a publish records in memory is what reading the new generation back gives,
    /// publish after publish (the editor no longer re-reads what it just wrote).
    #[test]
    fn the_store_a_publish_records_is_what_reading_it_back_gives() {
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let targets = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let online = PrivateKey::generate(KeyAlgorithm::Ed25519);
        let options = InitOptions {
            root: spec(&root),
            targets: spec(&targets),
            snapshot: spec(&online),
            timestamp: spec(&online),
            fallback: spec(&online),
            settings: Settings {
                fallback_bin_bits: 2,
                ..Settings::default()
            },
        };
        let mut repo = Repository::init(dir.path(), &options, now).unwrap();
        repo.sign("root", &root).unwrap();
        repo.sign("targets", &targets).unwrap();
        let online_signers: [&dyn Signer; 1] = [&online];
        repo.publish(&online_signers, now, &()).unwrap();
        for (name, version) in [("alpha", "1.0.0"), ("beta", "0.1.0"), ("alpha", "1.1.0")] {
            let body = format!("{name} {version}");
            let entry = IndexEntry::without_dependencies(name, version, body.as_bytes());
            repo.add_release(name, version, body.as_bytes(), entry, now)
                .unwrap();
            let report = repo.publish(&online_signers, now, &()).unwrap();
            // The release, and its crate's index file (a new version of it).
            assert_eq!(
                (report.releases_published, report.index_files_published),
                (1, 1),
                "{report:?}"
            );
            let mut reread = PublishedStore::load(&dir.path().join(PUBLISHED_DIR)).unwrap();
            assert_eq!(
                store_bytes(&mut repo.published),
                store_bytes(&mut reread),
                "after publishing {name} {version}"
            );
        }
        // A refresh that renews only the timestamp keeps the snapshot it names.
        let later = now + chrono::Duration::days(200);
        repo.refresh(&online_signers, later, Some(u64::MAX / 4), &())
            .unwrap();
        let mut reread = PublishedStore::load(&dir.path().join(PUBLISHED_DIR)).unwrap();
        assert_eq!(store_bytes(&mut repo.published), store_bytes(&mut reread));
    }
}
